package evpn

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/torstitch/torstitch/vtep/l2"
)

// RemoteState is the best remote state: one entry per (VNI, MAC) that is not
// won by a local MAC, and the flood list (remote VTEPs) of every VNI.
//
// MACs is sorted by (VNI, MAC) and shared with the speaker: read it, do not
// modify it (the speaker never changes a slice it has handed out).
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
	DropVTEPNotIPv4    = "vtep-not-ipv4" // hardware_vtep tunnels are vxlan_over_ipv4
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

// macRoute is what the table keeps of a type-2 route: the MAC key is the
// map key, the id is shared with byID's key.
type macRoute struct {
	id     string
	IP     netip.Addr
	VTEP   netip.Addr
	Seq    uint32
	Sticky bool
}

// routeRef locates a route by its id: the MAC key of a type-2, the VNI and
// VTEP of a type-3.
type routeRef struct {
	kind routeKind
	key  l2.MACKey
	VTEP netip.Addr
}

// remoteTable aggregates received best paths into per-MAC and per-VNI state.
//
// Memory: one byID entry and one macRoute per route (a MAC has one route in
// the common case: a slice of one, not a map). The last snapshot's MACs are
// kept, sorted, with the keys changed since (dirty): the next snapshot
// merges the few changed keys into it instead of sorting every MAC again.
type remoteTable struct {
	byID  map[string]routeRef
	macs  map[l2.MACKey][]macRoute
	flood map[l2.VNI]map[netip.Addr]int // VTEP -> number of type-3 routes

	dirty    map[l2.MACKey]struct{}
	last     []l2.RemoteMAC // sorted; never modified once handed out
	lastOwn  map[netip.Addr]bool
	lastWins map[l2.MACKey]bool
	lastOK   bool
}

func newRemoteTable() *remoteTable {
	return &remoteTable{byID: map[string]routeRef{}, macs: map[l2.MACKey][]macRoute{},
		flood: map[l2.VNI]map[netip.Addr]int{}, dirty: map[l2.MACKey]struct{}{}}
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
		k := old.key
		rs := t.macs[k]
		if i := slices.IndexFunc(rs, func(r macRoute) bool { return r.id == id }); i >= 0 {
			rs = slices.Delete(rs, i, i+1)
		}
		if len(rs) == 0 {
			delete(t.macs, k)
		} else {
			t.macs[k] = rs
		}
		t.dirty[k] = struct{}{}
		return k, true
	case kindIMET:
		if f := t.flood[old.key.VNI]; f != nil {
			if f[old.VTEP]--; f[old.VTEP] <= 0 {
				delete(f, old.VTEP)
			}
			if len(f) == 0 {
				delete(t.flood, old.key.VNI)
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
	switch r.kind {
	case kindMAC:
		nk := l2.MACKey{VNI: r.VNI, MAC: r.MAC}
		t.byID[r.id] = routeRef{kind: kindMAC, key: nk}
		t.macs[nk] = append(t.macs[nk], macRoute{id: r.id, IP: r.IP, VTEP: r.VTEP, Seq: r.Seq, Sticky: r.Sticky})
		t.dirty[nk] = struct{}{}
		return nk, true
	case kindIMET:
		t.byID[r.id] = routeRef{kind: kindIMET, key: l2.MACKey{VNI: r.VNI}, VTEP: r.VTEP}
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
	rs := t.macs[k]
	var b macRoute
	found := false
	for _, r := range rs {
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
	for _, r := range rs {
		if r.VTEP == b.VTEP && r.IP.IsValid() && (!out.IP.IsValid() || r.IP.Less(out.IP)) {
			out.IP = r.IP
		}
	}
	return out, true
}

func better(a, b macRoute) bool {
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

// snapshot builds the RemoteState, leaving out MACs won locally. When own
// and localWins are those of the previous snapshot, only the MACs changed
// since are recomputed and merged into the previous (sorted) list.
func (t *remoteTable) snapshot(own map[netip.Addr]bool, localWins map[l2.MACKey]bool) RemoteState {
	st := RemoteState{Flood: make(map[l2.VNI][]netip.Addr, len(t.flood))}
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
	switch {
	case !t.lastOK || !maps.Equal(own, t.lastOwn) || !maps.Equal(localWins, t.lastWins):
		macs := make([]l2.RemoteMAC, 0, len(t.macs))
		for k := range t.macs {
			if localWins[k] {
				continue
			}
			if m, ok := t.best(k, own); ok {
				macs = append(macs, m)
			}
		}
		slices.SortFunc(macs, l2.CompareRemoteMACs)
		t.last, t.lastOwn, t.lastWins, t.lastOK = macs, maps.Clone(own), maps.Clone(localWins), true
	case len(t.dirty) > 0:
		t.last = t.merge(own, localWins)
	}
	clear(t.dirty)
	st.MACs = t.last
	return st
}

// merge returns a new sorted list: the previous one with every dirty key
// recomputed (kept, replaced, dropped or inserted).
func (t *remoteTable) merge(own map[netip.Addr]bool, localWins map[l2.MACKey]bool) []l2.RemoteMAC {
	keys := make([]l2.MACKey, 0, len(t.dirty))
	for k := range t.dirty {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, l2.MACKey.Compare)
	out := make([]l2.RemoteMAC, 0, len(t.last)+len(keys))
	old := t.last
	for _, k := range keys {
		// copy the unchanged entries before k, skip k's old entry
		i, _ := slices.BinarySearchFunc(old, k, l2.CompareRemoteMACKey)
		out = append(out, old[:i]...)
		old = old[i:]
		if len(old) > 0 && old[0].VNI == k.VNI && old[0].MAC == k.MAC {
			old = old[1:]
		}
		if localWins[k] {
			continue
		}
		if m, ok := t.best(k, own); ok {
			out = append(out, m)
		}
	}
	return append(out, old...)
}

func sortAddrs(l []netip.Addr) { slices.SortFunc(l, netip.Addr.Compare) }
