package plan

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/torstitch/torstitch/vtep/l2"
)

// Conflict is desired state that collides with rows torstitch does not
// manage, or with the switch's inventory. The planner skips what the
// conflict names and plans everything else: a foreign logical switch
// holding one VNI stops that VNI on that switch only, a foreign binding
// stops that (port, VLAN) only.
type Conflict struct {
	VNI    l2.VNI  // the VNI held back; 0 when only a binding is
	Port   string  // the binding held back, if any
	VLAN   l2.VLAN //
	Reason string
}

// String names what is held back, why, and that it was not applied.
func (c Conflict) String() string {
	if c.Port != "" {
		return fmt.Sprintf("port %s VLAN %d: %s; binding not applied", c.Port, c.VLAN, c.Reason)
	}
	return fmt.Sprintf("VNI %d: %s; VNI not applied on this switch", c.VNI, c.Reason)
}

func compareConflicts(a, b Conflict) int {
	return cmp.Or(cmp.Compare(a.VNI, b.VNI), cmp.Compare(a.Port, b.Port), cmp.Compare(a.VLAN, b.VLAN), cmp.Compare(a.Reason, b.Reason))
}

// conflicts finds the desired VNIs and bindings that collide with foreign
// rows or missing ports, reports them, and narrows the desired state to the
// rest. torstitch's own rows of a held-back VNI are frozen: neither changed
// nor deleted while the conflict lasts.
func (pl *planner) conflicts() {
	var out []Conflict
	blocked := map[l2.VNI]bool{}
	wantName := make(map[string]l2.VNI, len(pl.d.LogicalSwitches))
	wantVNI := make(map[l2.VNI]bool, len(pl.d.LogicalSwitches))
	for _, ls := range pl.d.LogicalSwitches {
		name := ls.Name
		if name == "" {
			name = DefaultName(ls.VNI)
		}
		wantName[name] = ls.VNI
		wantVNI[ls.VNI] = true
	}
	for _, uuid := range slices.Sorted(maps.Keys(pl.o.Switches)) {
		ls := pl.o.Switches[uuid]
		if Owned(ls) {
			continue
		}
		if v := VNIOf(ls); v != 0 && wantVNI[v] {
			blocked[v] = true
			out = append(out, Conflict{VNI: v, Reason: fmt.Sprintf("logical switch %q, which torstitch does not manage, uses this VNI", ls.Name)})
		}
		if v, ok := wantName[ls.Name]; ok && VNIOf(ls) != v {
			blocked[v] = true
			out = append(out, Conflict{VNI: v, Reason: fmt.Sprintf("its name %q is taken by a logical switch torstitch does not manage", ls.Name)})
		}
	}
	skip := map[portVLAN]bool{}
	for _, b := range pl.d.Bindings {
		k := portVLAN{b.Port, b.VLAN}
		port, ok := pl.o.Ports[b.Port]
		if !ok {
			skip[k] = true
			out = append(out, Conflict{Port: b.Port, VLAN: b.VLAN, Reason: fmt.Sprintf("switch %q has no port %q", pl.o.PhysicalSwitch.Name, b.Port)})
			continue
		}
		lsUUID, bound := port.VLANBindings[int(b.VLAN)]
		if !bound || pl.owned(lsUUID) {
			continue
		}
		name := lsUUID
		if ls := pl.o.Switches[lsUUID]; ls != nil {
			name = ls.Name
		}
		skip[k] = true
		out = append(out, Conflict{Port: b.Port, VLAN: b.VLAN, Reason: fmt.Sprintf("bound to logical switch %q, which torstitch does not manage", name)})
	}
	if len(out) == 0 {
		return
	}
	slices.SortFunc(out, compareConflicts)
	pl.out.Conflicts = slices.Compact(out)
	pl.frozen = map[string]bool{}
	for uuid, ls := range pl.o.Switches {
		if Owned(ls) && blocked[VNIOf(ls)] {
			pl.frozen[uuid] = true
		}
	}
	pl.d = narrow(pl.d, blocked, skip)
}

// narrow returns d without the held-back VNIs and bindings (d itself when
// nothing of it is held back; never modified).
func narrow(d *Desired, blocked map[l2.VNI]bool, skip map[portVLAN]bool) *Desired {
	n := *d
	if len(blocked) > 0 {
		n.LogicalSwitches = slices.DeleteFunc(slices.Clone(d.LogicalSwitches), func(ls LogicalSwitch) bool { return blocked[ls.VNI] })
		n.RemoteMACs = slices.DeleteFunc(slices.Clone(d.RemoteMACs), func(m l2.RemoteMAC) bool { return blocked[m.VNI] })
		n.Flood = make(map[l2.VNI][]netip.Addr, len(d.Flood))
		for v, l := range d.Flood {
			if !blocked[v] {
				n.Flood[v] = l
			}
		}
	}
	n.Bindings = slices.DeleteFunc(slices.Clone(d.Bindings), func(b PortBinding) bool {
		return blocked[b.VNI] || skip[portVLAN{b.Port, b.VLAN}]
	})
	return &n
}
