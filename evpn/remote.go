package evpn

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"

	"github.com/torstitch/torstitch/vtep/l2"
)

// RemoteState is the best remote state: one entry per (VNI, MAC) that is not
// won by a local MAC, and the flood list (remote VTEPs) of every VNI.
type RemoteState struct {
	MACs  []l2.RemoteMAC          `json:"macs"`
	Flood map[l2.VNI][]netip.Addr `json:"flood"`
}

// Drop reasons counted in Stats.Dropped.
const (
	DropMalformed      = "malformed"        // undecodable NLRI or attributes
	DropZeroMAC        = "zero-mac"         // 00:00:00:00:00:00
	DropMulticastMAC   = "multicast-mac"    // group bit set
	DropNoVNI          = "unresolvable-vni" // no route target maps to a VNI
	DropNoNextHop      = "missing-next-hop" // type-2 without a usable next hop
	DropNoTunnel       = "no-ingress-replication"
	DropUnsupportedRT  = "unsupported-route-type"
	DropLocalInvalid   = "local-invalid" // invalid entries in SetLocal
	dropReasonsInitCap = 8
)

// rxRoute is a decoded received route, free of GoBGP types. id identifies
// the NLRI (the unit of GoBGP's best-path selection).
type rxRoute struct {
	id       string
	withdraw bool
	kind     routeKind
	VNI      l2.VNI
	MAC      l2.MAC
	IP       netip.Addr
	VTEP     netip.Addr
	Seq      uint32
	Sticky   bool
}

// remoteTable aggregates received best paths into per-MAC and per-VNI state.
type remoteTable struct {
	byID  map[string]rxRoute
	macs  map[l2.MACKey]map[string]rxRoute
	flood map[l2.VNI]map[netip.Addr]int // VTEP -> number of type-3 routes
}

func newRemoteTable() *remoteTable {
	return &remoteTable{byID: map[string]rxRoute{}, macs: map[l2.MACKey]map[string]rxRoute{},
		flood: map[l2.VNI]map[netip.Addr]int{}}
}

// remove deletes the route with id; it returns the MAC key touched, if any.
func (t *remoteTable) remove(id string) (l2.MACKey, bool) {
	old, ok := t.byID[id]
	if !ok {
		return l2.MACKey{}, false
	}
	delete(t.byID, id)
	switch old.kind {
	case kindMAC:
		k := l2.MACKey{VNI: old.VNI, MAC: old.MAC}
		if m := t.macs[k]; m != nil {
			delete(m, id)
			if len(m) == 0 {
				delete(t.macs, k)
			}
		}
		return k, true
	case kindIMET:
		if f := t.flood[old.VNI]; f != nil {
			if f[old.VTEP]--; f[old.VTEP] <= 0 {
				delete(f, old.VTEP)
			}
			if len(f) == 0 {
				delete(t.flood, old.VNI)
			}
		}
	}
	return l2.MACKey{}, false
}

// apply installs r (or withdraws it) and reports the MAC key touched.
func (t *remoteTable) apply(r rxRoute) (l2.MACKey, bool) {
	k, touched := t.remove(r.id)
	if r.withdraw {
		return k, touched
	}
	t.byID[r.id] = r
	switch r.kind {
	case kindMAC:
		nk := l2.MACKey{VNI: r.VNI, MAC: r.MAC}
		m := t.macs[nk]
		if m == nil {
			m = make(map[string]rxRoute, 1)
			t.macs[nk] = m
		}
		m[r.id] = r
		return nk, true
	case kindIMET:
		f := t.flood[r.VNI]
		if f == nil {
			f = map[netip.Addr]int{}
			t.flood[r.VNI] = f
		}
		f[r.VTEP]++
	}
	return k, touched
}

// best selects the winning remote route of a MAC, ignoring VTEPs in own:
// sticky first, then the highest sequence, then the lowest VTEP IP. The IP
// comes from the lowest MAC+IP route of the same VTEP.
func (t *remoteTable) best(k l2.MACKey, own map[netip.Addr]bool) (l2.RemoteMAC, bool) {
	var b rxRoute
	found := false
	for _, r := range t.macs[k] {
		if own[r.VTEP] {
			continue
		}
		if !found || better(r, b) {
			b, found = r, true
		}
	}
	if !found {
		return l2.RemoteMAC{}, false
	}
	out := l2.RemoteMAC{VNI: k.VNI, MAC: k.MAC, VTEP: b.VTEP, Seq: b.Seq}
	for _, r := range t.macs[k] {
		if r.VTEP == b.VTEP && r.IP.IsValid() && (!out.IP.IsValid() || r.IP.Less(out.IP)) {
			out.IP = r.IP
		}
	}
	return out, true
}

func better(a, b rxRoute) bool {
	if a.Sticky != b.Sticky {
		return a.Sticky
	}
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	if a.VTEP != b.VTEP {
		return a.VTEP.Less(b.VTEP)
	}
	return a.IP.IsValid() && !b.IP.IsValid()
}

// snapshot builds the RemoteState, leaving out MACs won locally.
func (t *remoteTable) snapshot(own map[netip.Addr]bool, localWins map[l2.MACKey]bool) RemoteState {
	st := RemoteState{MACs: make([]l2.RemoteMAC, 0, len(t.macs)), Flood: make(map[l2.VNI][]netip.Addr, len(t.flood))}
	for k := range t.macs {
		if localWins[k] {
			continue
		}
		if m, ok := t.best(k, own); ok {
			st.MACs = append(st.MACs, m)
		}
	}
	for vni, f := range t.flood {
		var l []netip.Addr
		for v := range f {
			if !own[v] {
				l = append(l, v)
			}
		}
		if len(l) > 0 {
			sortAddrs(l)
			st.Flood[vni] = l
		}
	}
	sortRemoteMACs(st.MACs)
	return st
}

func sortAddrs(l []netip.Addr) { slices.SortFunc(l, netip.Addr.Compare) }

func sortRemoteMACs(l []l2.RemoteMAC) {
	slices.SortFunc(l, func(a, b l2.RemoteMAC) int {
		if c := cmp.Compare(a.VNI, b.VNI); c != 0 {
			return c
		}
		return bytes.Compare(a.MAC[:], b.MAC[:])
	})
}
