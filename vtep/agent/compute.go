package agent

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// FaultNoSourceNode is the switch fault that makes the agent fall back to
// service-node replication.
const FaultNoSourceNode = vtepdb.SwitchFaultUnsupportedSourceNodeReplication

// SwitchView is what the agent knows of one switch for a reconcile.
type SwitchView struct {
	Name      string
	Connected bool
	TunnelIP  netip.Addr      // first Physical_Switch tunnel IP; invalid when unknown
	Ports     map[string]bool // nil when not connected
	Faults    []string
	LocalMACs []l2.LocalMAC
	// ForeignVNIs and ForeignBound are what another controller holds on the
	// switch: VNIs a logical switch torstitch does not manage uses (as its
	// tunnel key, or under torstitch's name for it, vni<N>), and (port,
	// VLAN) bound to such a logical switch; each with that logical switch's
	// name. nil when not connected.
	ForeignVNIs  map[l2.VNI]string
	ForeignBound map[l2.PortVLAN]string
}

// Inputs is everything one reconcile starts from.
type Inputs struct {
	Anycast      bool
	Switches     []SwitchView
	Bindings     []l2.Binding // config, torctl and vCenter, in that order of precedence (Source set)
	RemoteMACs   []l2.RemoteMAC
	RemoteFlood  map[l2.VNI][]netip.Addr
	Replication  string // source_node or service_node
	ServiceNodes []netip.Addr
	// BFDDown lists, per switch, the remote VTEPs whose tunnel BFD that
	// switch reports down (TrackBFD): they are left out of its flood lists
	// and its remote MACs pointing at them are withdrawn (one anchor row per
	// VTEP keeps the tunnel and its BFD session, bfdAnchorMAC).
	BFDDown map[string][]netip.Addr
}

// Outputs is the desired state derived from Inputs.
type Outputs struct {
	PerSwitch   map[string]*plan.Desired
	Replication map[string]string // effective replication mode per switch
	Conflicts   []string          // bindings reported, not applied
	IMET        []IMETRoute
	LocalMACs   []l2.LocalMAC
}

// IMETRoute asks the speaker for one type-3 route.
type IMETRoute struct {
	VNI  l2.VNI
	VTEP netip.Addr
}

// Compute merges the binding sources and the EVPN and switch state into one
// desired state per switch. It is pure: no I/O, no clock.
//
// Both switches of a pair get the same logical switches (every VNI bound
// anywhere in the pair), their own bindings, the remote MACs from EVPN and,
// in independent mode, each other's local MACs and tunnel IPs: the two
// switches are separate VTEPs that must reach each other. Remote routes to
// the pair's own VTEPs never get here: the speaker leaves them out
// (evpn.LocalState.VTEPs, which step fills from the same views).
func Compute(in Inputs) Outputs {
	out := Outputs{PerSwitch: map[string]*plan.Desired{}, Replication: map[string]string{}}
	byName := map[string]*SwitchView{}
	for i := range in.Switches {
		byName[in.Switches[i].Name] = &in.Switches[i]
	}

	// Merge bindings: the first source to bind (port, VLAN) wins.
	chosen := map[l2.PortVLAN]l2.VNI{}
	var order []l2.PortVLAN
	for _, b := range in.Bindings {
		for _, p := range b.Ports {
			k := l2.PortVLAN{Port: p, VLAN: b.VLAN}
			if prev, ok := chosen[k]; ok {
				if prev != b.VNI {
					out.Conflicts = append(out.Conflicts, fmt.Sprintf("%s VLAN %d: %s wants VNI %d but it is bound to VNI %d; not applied", p, b.VLAN, b.Source, b.VNI, prev))
				}
				continue
			}
			sw := byName[p.Switch]
			if sw == nil {
				out.Conflicts = append(out.Conflicts, fmt.Sprintf("%s VLAN %d (%s): switch %q is not in this pair; not applied", p, b.VLAN, b.Source, p.Switch))
				continue
			}
			if sw.Ports != nil && !sw.Ports[p.Port] {
				out.Conflicts = append(out.Conflicts, fmt.Sprintf("%s VLAN %d (%s): switch %s has no port %q; not applied", p, b.VLAN, b.Source, p.Switch, p.Port))
				continue
			}
			if ls, ok := sw.ForeignBound[k]; ok {
				out.Conflicts = append(out.Conflicts, fmt.Sprintf("%s VLAN %d (%s): bound to logical switch %q, which torstitch does not manage; not applied", p, b.VLAN, b.Source, ls))
				continue
			}
			if ls, ok := sw.ForeignVNIs[b.VNI]; ok {
				out.Conflicts = append(out.Conflicts, fmt.Sprintf("%s VLAN %d (%s): VNI %d is held on %s by logical switch %q, which torstitch does not manage; not applied", p, b.VLAN, b.Source, b.VNI, p.Switch, ls))
				continue
			}
			chosen[k] = b.VNI
			order = append(order, k)
		}
	}
	vniSet := map[l2.VNI]bool{}
	boundOn := map[string]map[l2.VNI]bool{}
	for _, k := range order {
		v := chosen[k]
		vniSet[v] = true
		if boundOn[k.Port.Switch] == nil {
			boundOn[k.Port.Switch] = map[l2.VNI]bool{}
		}
		boundOn[k.Port.Switch][v] = true
	}
	vnis := slices.Sorted(maps.Keys(vniSet))

	for i := range in.Switches {
		s := &in.Switches[i]
		mode := in.Replication
		if mode == "" {
			mode = plan.SourceNode
		}
		if slices.Contains(s.Faults, FaultNoSourceNode) && len(in.ServiceNodes) > 0 {
			mode = plan.ServiceNode
		}
		out.Replication[s.Name] = mode
		d := &plan.Desired{Flood: map[l2.VNI][]netip.Addr{}}
		for _, v := range vnis {
			d.LogicalSwitches = append(d.LogicalSwitches, plan.LogicalSwitch{VNI: v, ReplicationMode: mode})
		}
		for _, k := range order {
			if k.Port.Switch == s.Name {
				d.Bindings = append(d.Bindings, plan.PortBinding{Port: k.Port.Port, VLAN: k.VLAN, VNI: chosen[k]})
			}
		}
		d.RemoteMACs, d.Flood = remoteFor(in, s, vniSet, boundOn, mode)
		out.PerSwitch[s.Name] = d
	}

	// What the pair advertises: a type-3 per switch VTEP and VNI bound on it,
	// and every local MAC in a stitched VNI.
	seen := map[IMETRoute]bool{}
	for i := range in.Switches {
		s := &in.Switches[i]
		if !s.TunnelIP.IsValid() {
			continue
		}
		for _, v := range vnis {
			r := IMETRoute{v, s.TunnelIP}
			if boundOn[s.Name][v] && !seen[r] {
				seen[r] = true
				out.IMET = append(out.IMET, r)
			}
		}
		for _, m := range s.LocalMACs {
			if vniSet[m.VNI] {
				out.LocalMACs = append(out.LocalMACs, m)
			}
		}
	}
	return out
}

func remoteFor(in Inputs, s *SwitchView, vniSet map[l2.VNI]bool,
	boundOn map[string]map[l2.VNI]bool, mode string) ([]l2.RemoteMAC, map[l2.VNI][]netip.Addr) {
	localHere := map[l2.MACKey]bool{}
	for _, m := range s.LocalMACs {
		localHere[l2.MACKey{VNI: m.VNI, MAC: m.MAC}] = true
	}
	peerMACs := map[l2.MACKey]l2.RemoteMAC{} // the pair switch's local MACs (independent mode)
	flood := map[l2.VNI][]netip.Addr{}
	if mode == plan.ServiceNode {
		for v := range vniSet {
			flood[v] = slices.Clone(in.ServiceNodes)
		}
	} else {
		for v, vteps := range in.RemoteFlood {
			if !vniSet[v] {
				continue
			}
			flood[v] = slices.Clone(vteps)
		}
	}
	if !in.Anycast {
		for i := range in.Switches {
			peer := &in.Switches[i]
			if peer.Name == s.Name || !peer.TunnelIP.IsValid() || peer.TunnelIP == s.TunnelIP {
				continue
			}
			for _, m := range peer.LocalMACs {
				k := l2.MACKey{VNI: m.VNI, MAC: m.MAC}
				if vniSet[m.VNI] && !localHere[k] {
					peerMACs[k] = l2.RemoteMAC{VNI: m.VNI, MAC: m.MAC, IP: m.IP, VTEP: m.VTEP}
				}
			}
			if mode != plan.ServiceNode {
				for v := range boundOn[peer.Name] {
					flood[v] = append(flood[v], peer.TunnelIP)
				}
			}
		}
	}
	list := remoteList(in.RemoteMACs, peerMACs, func(m *l2.RemoteMAC) bool {
		return vniSet[m.VNI] && !localHere[l2.MACKey{VNI: m.VNI, MAC: m.MAC}]
	})
	if down := in.BFDDown[s.Name]; len(down) > 0 {
		set := make(map[netip.Addr]bool, len(down))
		for _, ip := range down {
			set[ip] = true
		}
		list, flood = withoutDown(list, flood, set, boundOn[s.Name])
	}
	sortRemote(list)
	return list, flood
}

// SeenKey identifies a MAC learned by one switch.
type SeenKey struct {
	Switch string
	Key    l2.MACKey
}

// PreferNewest resolves MACs that several switches of a pair report as local
// (independent mode): only the switch that learned the MAC most recently
// keeps it; the others' entries are stale (a host that failed over and back
// is still in the old switch's table until it ages out). firstSeen holds when
// the agent first saw each (switch, MAC); it is read only. Each view's
// LocalMACs is replaced by a new slice (the old one is left intact: the
// agent keeps it as the switch's last view); the dropped claims are returned.
func PreferNewest(views []SwitchView, firstSeen map[SeenKey]time.Time) []SeenKey {
	owner := map[l2.MACKey]string{}
	for i := range views {
		for _, m := range views[i].LocalMACs {
			k := l2.MACKey{VNI: m.VNI, MAC: m.MAC}
			cur, ok := owner[k]
			if !ok {
				owner[k] = views[i].Name
				continue
			}
			t1, t2 := firstSeen[SeenKey{cur, k}], firstSeen[SeenKey{views[i].Name, k}]
			if t2.After(t1) || (t2.Equal(t1) && views[i].Name < cur) {
				owner[k] = views[i].Name
			}
		}
	}
	var dropped []SeenKey
	for i := range views {
		kept := views[i].LocalMACs[:0:0]
		for _, m := range views[i].LocalMACs {
			k := l2.MACKey{VNI: m.VNI, MAC: m.MAC}
			if owner[k] == views[i].Name {
				kept = append(kept, m)
			} else {
				dropped = append(dropped, SeenKey{views[i].Name, k})
			}
		}
		views[i].LocalMACs = kept
	}
	return dropped
}
