package agent

import (
	"net/netip"
	"slices"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// BFD state use (pure: no I/O, no clock).
//
// A switch reports BFD per Tunnel row (local, remote locator) in bfd_status.
// A remote VTEP counts as down on that switch only when one of its tunnels
// was seen up before and is now down (state down or init): a peer that never
// answered BFD (a Linux or FRR VTEP that does not speak it) is down from the
// start and must not be cut off. A tunnel whose bfd_status:enabled is not
// "true", or whose remote signals admin_down (RFC 5880 §6.8.6: not a
// connectivity failure), does not count. A tunnel row that disappears is
// forgotten: its next incarnation starts as never-up.

// TunnelMemo is what the agent remembers of one Tunnel row between passes.
type TunnelMemo struct {
	Remote netip.Addr
	SeenUp bool
}

// TrackBFD folds one switch's observed Tunnel rows into the memory of the
// previous pass (keyed by Tunnel UUID; prev is not modified) and returns the
// new memory and the remote VTEPs whose BFD the switch reports down, sorted.
func TrackBFD(prev map[string]TunnelMemo, o *plan.Observed) (map[string]TunnelMemo, []netip.Addr) {
	next := make(map[string]TunnelMemo, len(o.Tunnels))
	down := map[netip.Addr]bool{}
	up := map[netip.Addr]bool{}
	for uuid, t := range o.Tunnels {
		loc, ok := o.Locators[t.Remote]
		if !ok {
			continue
		}
		remote, err := netip.ParseAddr(loc.DstIP)
		if err != nil {
			continue
		}
		st := t.BFDStatus
		if st[plan.BFDStatusEnabled] != "true" {
			continue // BFD off or unsupported on this tunnel: forget it
		}
		m := prev[uuid]
		if m.Remote != remote {
			m = TunnelMemo{Remote: remote}
		}
		switch state := st[plan.BFDStatusState]; {
		case state == vtepdb.BFDStateUp:
			m.SeenUp = true
			up[remote] = true
		case (state == vtepdb.BFDStateDown || state == vtepdb.BFDStateInit) && m.SeenUp && st[plan.BFDStatusRemoteState] != vtepdb.BFDStateAdminDown:
			down[remote] = true
		}
		next[uuid] = m
	}
	var out []netip.Addr
	for ip := range down {
		if !up[ip] { // another tunnel to the same VTEP still up: reachable
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return next, out
}

// bfdAnchorMAC is the remote MAC that keeps a switch's tunnel (and with it
// its BFD session) to a VTEP that BFD reports down. Switches create and
// destroy Tunnel rows with the tunnels their remote MACs and flood lists
// need (ovs-vtep does): withdrawing everything that points at a down VTEP
// would also end the BFD session that is to report its recovery. One row per
// down VTEP stays: a locally administered unicast MAC made of 02:bf and the
// VTEP's IPv4 address, which no host uses (traffic to it goes nowhere).
func bfdAnchorMAC(vtep netip.Addr) (l2.MAC, bool) {
	if !vtep.Is4() {
		return l2.MAC{}, false
	}
	a := vtep.As4()
	return l2.MAC{0x02, 0xbf, a[0], a[1], a[2], a[3]}, true
}

// withoutDown removes the VTEPs in down from a switch's remote MACs and flood
// lists. For each down VTEP that was referenced, one anchor MAC row stays in
// the lowest VNI that referenced it, preferring a VNI bound on the switch
// (ovs-vtep only builds tunnels for logical switches it has bindings for).
func withoutDown(macs []l2.RemoteMAC, flood map[l2.VNI][]netip.Addr, down map[netip.Addr]bool,
	bound map[l2.VNI]bool) ([]l2.RemoteMAC, map[l2.VNI][]netip.Addr) {
	if len(down) == 0 {
		return macs, flood
	}
	anchorVNI := map[netip.Addr]l2.VNI{}
	note := func(ip netip.Addr, v l2.VNI) {
		cur, ok := anchorVNI[ip]
		better := !ok || (bound[v] && !bound[cur]) || (bound[v] == bound[cur] && v < cur)
		if better {
			anchorVNI[ip] = v
		}
	}
	kept := macs[:0:0]
	have := map[l2.MACKey]bool{}
	for _, m := range macs {
		if down[m.VTEP] {
			note(m.VTEP, m.VNI)
			continue
		}
		have[l2.MACKey{VNI: m.VNI, MAC: m.MAC}] = true
		kept = append(kept, m)
	}
	fl := make(map[l2.VNI][]netip.Addr, len(flood))
	for v, ips := range flood {
		for _, ip := range ips {
			if down[ip] {
				note(ip, v)
				continue
			}
			fl[v] = append(fl[v], ip)
		}
	}
	for ip, v := range anchorVNI {
		mac, ok := bfdAnchorMAC(ip)
		if !ok || have[l2.MACKey{VNI: v, MAC: mac}] {
			continue
		}
		kept = append(kept, l2.RemoteMAC{VNI: v, MAC: mac, VTEP: ip})
	}
	return kept, fl
}
