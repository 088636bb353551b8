package plan

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/torstitch/torstitch/vtep/l2"
)

// maxReported caps how many problems one error lists.
const maxReported = 20

type problems struct {
	errs []error
	more int
}

func (p *problems) add(format string, args ...any) {
	if len(p.errs) >= maxReported {
		p.more++
		return
	}
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	if p.more > 0 {
		p.errs = append(p.errs, fmt.Errorf("... and %d more problems", p.more))
	}
	return errors.Join(p.errs...)
}

// Validate checks that desired state is consistent: one VNI per (port,
// VLAN), one logical switch per VNI and per name, references to declared
// logical switches only, and no MAC listed twice. The values themselves
// (VLAN and VNI ranges, replication modes, unicast MACs, IPv4 VTEPs) are
// validated once, where they enter torstitch: the configuration, the API,
// the state file, the EVPN decoder, the switch's own rows (LocalMACs); the
// planner trusts the types it is given. The error names every offending
// item (up to a limit). What depends on the switch (its ports, foreign
// rows) is a Conflict, not an error.
func Validate(d *Desired) error {
	var p problems
	byVNI := make(map[l2.VNI]string, len(d.LogicalSwitches))
	byName := make(map[string]l2.VNI, len(d.LogicalSwitches))
	for _, ls := range d.LogicalSwitches {
		name := ls.Name
		if name == "" {
			name = DefaultName(ls.VNI)
		}
		if prev, ok := byVNI[ls.VNI]; ok && prev != name {
			p.add("VNI %d on two logical switches: %q and %q", ls.VNI, prev, name)
			continue
		}
		if prev, ok := byName[name]; ok && prev != ls.VNI {
			p.add("logical switch name %q used for VNI %d and VNI %d", name, prev, ls.VNI)
			continue
		}
		byVNI[ls.VNI] = name
		byName[name] = ls.VNI
	}

	bound := make(map[portVLAN]l2.VNI, len(d.Bindings))
	for _, b := range d.Bindings {
		where := fmt.Sprintf("binding port %s VLAN %d", b.Port, b.VLAN)
		if _, ok := byVNI[b.VNI]; !ok {
			p.add("%s: VNI %d has no logical switch in the desired state", where, b.VNI)
		}
		k := portVLAN{b.Port, b.VLAN}
		if prev, ok := bound[k]; ok && prev != b.VNI {
			p.add("port %s VLAN %d bound to two VNIs: %d and %d", b.Port, b.VLAN, prev, b.VNI)
			continue
		}
		bound[k] = b.VNI
	}

	// A list sorted by (VNI, MAC) without repeats (what the agent hands in)
	// cannot list a MAC twice: no map of 100k keys is needed to check.
	var seen map[l2.MACKey]netip.Addr
	if !strictlySortedMACs(d.RemoteMACs) {
		seen = make(map[l2.MACKey]netip.Addr, len(d.RemoteMACs))
	}
	for i := range d.RemoteMACs {
		m := &d.RemoteMACs[i]
		if _, ok := byVNI[m.VNI]; !ok {
			p.add("remote MAC %s VNI %d: VNI %d has no logical switch in the desired state", m.MAC, m.VNI, m.VNI)
			continue
		}
		if seen == nil {
			continue
		}
		k := l2.MACKey{VNI: m.VNI, MAC: m.MAC}
		if prev, ok := seen[k]; ok && prev != m.VTEP {
			p.add("remote MAC %s VNI %d: listed twice, behind VTEPs %s and %s", m.MAC, m.VNI, prev, m.VTEP)
			continue
		}
		seen[k] = m.VTEP
	}

	for _, v := range slices.Sorted(maps.Keys(d.Flood)) {
		if _, ok := byVNI[v]; !ok {
			p.add("flood list of VNI %d: VNI has no logical switch in the desired state", v)
		}
	}
	return p.err()
}

// normMAC parses a MAC column value; ok is false for values that are not MACs.
func normMAC(s string) (l2.MAC, bool) {
	m, err := l2.ParseMAC(strings.TrimSpace(s))
	return m, err == nil
}

// strictlySortedMACs reports whether l is sorted by (VNI, MAC) with no key
// listed twice.
func strictlySortedMACs(l []l2.RemoteMAC) bool {
	for i := 1; i < len(l); i++ {
		if l[i-1].CompareKey(&l[i]) >= 0 {
			return false
		}
	}
	return true
}
