package desired

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/torstitch/torstitch/vtep/l2"
)

// maxUsableVLAN is the largest VLAN a port group can carry (4095 is reserved).
const maxUsableVLAN = uint32(l2.MaxVLAN) - 1

// cand is one VLAN→VNI mapping a port group asks for on its switch's ports.
// group says which VLANs may share a VNI on one port: the VLANs of one
// private-VLAN domain may, others may not.
type cand struct {
	vlan  l2.VLAN
	vni   l2.VNI
	group string
}

// entry is one VLAN→VNI mapping on a class of ports, with the port groups
// asking for it.
type entry struct {
	group string
	pgs   []string
}

type bkey struct {
	vlan l2.VLAN
	vni  l2.VNI
}

// hasConflict reports whether a port with these candidates breaks a rule:
// a VLAN with several VNIs, or a VNI reached from several VLAN groups.
func hasConflict(vlans map[l2.VLAN]map[l2.VNI]*entry) bool {
	groupOf := map[l2.VNI]string{}
	for _, vnis := range vlans {
		if len(vnis) > 1 {
			return true
		}
		for vni, e := range vnis {
			if g, ok := groupOf[vni]; ok && g != e.group {
				return true
			}
			groupOf[vni] = e.group
		}
	}
	return false
}

// resolvePort applies the conflict rules on one port, preferring what prev
// (the port's previous VLAN→VNI map) had, and adds the survivors to out.
func (r *run) resolvePort(port l2.PortRef, vlans map[l2.VLAN]map[l2.VNI]*entry, prev map[l2.VLAN]l2.VNI, out map[bkey][]l2.PortRef) {
	// Rule 1: one VLAN maps to one VNI on a port.
	chosen := map[l2.VLAN]l2.VNI{}
	groups := map[l2.VLAN]string{}
	for vlan, vnis := range vlans {
		if len(vnis) == 1 {
			for vni, e := range vnis {
				chosen[vlan], groups[vlan] = vni, e.group
			}
			continue
		}
		var parts []string
		for _, vni := range slices.Sorted(maps.Keys(vnis)) {
			parts = append(parts, fmt.Sprintf("%d (%s)", vni, strings.Join(uniqSorted(vnis[vni].pgs), ", ")))
		}
		msg := fmt.Sprintf("VLAN %d mapped to several VNIs: %s", vlan, strings.Join(parts, " and "))
		if pv, ok := prev[vlan]; ok && vnis[pv] != nil {
			chosen[vlan], groups[vlan] = pv, vnis[pv].group
			msg += fmt.Sprintf("; keeping VNI %d as before", pv)
		} else {
			msg += "; not applied"
		}
		r.conflict(msg, port)
	}
	// Rule 2: one VNI is reached by one VLAN (or one private-VLAN domain) on a port.
	byVNI := map[l2.VNI][]l2.VLAN{}
	for vlan, vni := range chosen {
		byVNI[vni] = append(byVNI[vni], vlan)
	}
	for vni, vlanList := range byVNI {
		slices.Sort(vlanList)
		keep := vlanList
		gset := map[string]bool{}
		for _, v := range vlanList {
			gset[groups[v]] = true
		}
		if len(gset) > 1 {
			keepGroup := ""
			for _, v := range vlanList {
				if pv, ok := prev[v]; ok && pv == vni {
					keepGroup = groups[v]
					break
				}
			}
			keep = nil
			for _, v := range vlanList {
				if keepGroup != "" && groups[v] == keepGroup {
					keep = append(keep, v)
				}
			}
			msg := fmt.Sprintf("VNI %d used by several VLANs %s", vni, joinVLANs(vlanList))
			if len(keep) > 0 {
				msg += fmt.Sprintf("; keeping VLAN %s as before", joinVLANs(keep))
			} else {
				msg += "; not applied"
			}
			r.conflict(msg, port)
		}
		for _, v := range keep {
			k := bkey{v, vni}
			out[k] = append(out[k], port)
		}
	}
}

// run holds the state of one Compute call.
type run struct {
	p         *Planner
	inv       *Inventory
	hosts     map[string]*Host
	conflicts map[string][]l2.PortRef // message → ports (nil for port-less messages)
	pgVNI     map[string]l2.VNI       // port group key → VNI of its own VLAN (not trunks)
}

func (r *run) conflict(msg string, ports ...l2.PortRef) {
	r.conflicts[msg] = append(r.conflicts[msg], ports...)
}

// Compute turns the inventory into the complete desired set. prev is the
// previous desired set: when two mappings conflict, the one already in prev is
// kept (so a newly misconfigured port group cannot take a working VLAN down);
// without one, neither is applied. Conflicts are reported either way.
func (p *Planner) Compute(inv Inventory, prev []l2.Binding) Result {
	r := &run{
		p:         p,
		inv:       &inv,
		hosts:     make(map[string]*Host, len(inv.Hosts)),
		conflicts: map[string][]l2.PortRef{},
		pgVNI:     map[string]l2.VNI{},
	}
	var res Result
	for i := range inv.Hosts {
		r.hosts[inv.Hosts[i].Ref] = &inv.Hosts[i]
	}
	res.Stats.Switches = len(inv.Switches)
	res.Stats.Hosts = len(inv.Hosts)
	res.Stats.VMs = len(inv.VMs)

	// Ports of the pair facing each switch's member hosts.
	switchPorts := make(map[string][]l2.PortRef, len(inv.Switches))
	unmapped := map[string]bool{}
	for i := range inv.Switches {
		sw := &inv.Switches[i]
		set := map[l2.PortRef]bool{}
		for _, m := range sw.Members {
			h := r.hosts[m.Host]
			if h == nil {
				continue
			}
			ports := p.memberPorts(h, m.Uplinks)
			if len(ports) == 0 {
				unmapped[h.Ref] = true
			}
			for _, ref := range ports {
				set[ref] = true
			}
		}
		switchPorts[sw.Ref] = slices.SortedFunc(maps.Keys(set), l2.PortRef.Compare)
	}
	res.Stats.HostsWithoutMap = len(unmapped)

	// Candidate mappings per switch, with the port groups asking for them.
	perSwitch := r.candidates(&res.Stats)

	// Ports facing the same set of switches see the same candidates: build
	// and check them once per such class of ports.
	portSwitches := map[l2.PortRef][]string{}
	for _, swRef := range slices.Sorted(maps.Keys(switchPorts)) {
		for _, port := range switchPorts[swRef] {
			portSwitches[port] = append(portSwitches[port], swRef)
		}
	}
	classes := map[string][]l2.PortRef{}
	classSwitches := map[string][]string{}
	for port, sws := range portSwitches {
		key := strings.Join(sws, "\x00")
		classes[key] = append(classes[key], port)
		classSwitches[key] = sws
	}

	prevMap := map[l2.PortRef]map[l2.VLAN]l2.VNI{}
	for _, b := range prev {
		for _, port := range b.Ports {
			if prevMap[port] == nil {
				prevMap[port] = map[l2.VLAN]l2.VNI{}
			}
			prevMap[port][b.VLAN] = b.VNI
		}
	}

	out := map[bkey][]l2.PortRef{}
	for key, ports := range classes {
		vlans := map[l2.VLAN]map[l2.VNI]*entry{}
		for _, swRef := range classSwitches[key] {
			for c, pgs := range perSwitch[swRef] {
				vnis := vlans[c.vlan]
				if vnis == nil {
					vnis = map[l2.VNI]*entry{}
					vlans[c.vlan] = vnis
				}
				e := vnis[c.vni]
				if e == nil {
					e = &entry{group: c.group}
					vnis[c.vni] = e
				}
				e.pgs = append(e.pgs, pgs...)
			}
		}
		if !hasConflict(vlans) {
			for vlan, vnis := range vlans {
				for vni := range vnis {
					k := bkey{vlan, vni}
					out[k] = append(out[k], ports...)
				}
			}
			continue
		}
		for _, port := range ports {
			r.resolvePort(port, vlans, prevMap[port], out)
		}
	}

	keys := make([]bkey, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b bkey) int {
		return cmp.Or(cmp.Compare(a.vlan, b.vlan), cmp.Compare(a.vni, b.vni))
	})
	res.Bindings = make([]l2.Binding, 0, len(keys))
	for _, k := range keys {
		ports := out[k]
		slices.SortFunc(ports, l2.PortRef.Compare)
		res.Bindings = append(res.Bindings, l2.Binding{VLAN: k.vlan, VNI: k.vni, Ports: ports})
	}

	res.MACs = r.macs()
	res.Conflicts = r.conflictList()
	return res
}

// candidates resolves every port group's VLAN policy and VNI into mappings
// per switch Ref.
func (r *run) candidates(st *Stats) map[string]map[cand][]string {
	perSwitch := map[string]map[cand][]string{}
	add := func(sw string, c cand, pg string) {
		m := perSwitch[sw]
		if m == nil {
			m = map[cand][]string{}
			perSwitch[sw] = m
		}
		m[c] = append(m[c], pg)
	}
	switches := make(map[string]*Switch, len(r.inv.Switches))
	for i := range r.inv.Switches {
		switches[r.inv.Switches[i].Ref] = &r.inv.Switches[i]
	}
	// VNIs of single-VLAN port groups per switch and VLAN, for trunk expansion.
	vlanVNIs := map[string]map[l2.VLAN][]l2.VNI{}
	var trunks []*PortGroup
	for i := range r.inv.PortGroups {
		pg := &r.inv.PortGroups[i]
		if pg.Uplink {
			continue
		}
		st.PortGroups++
		sw := switches[pg.Switch]
		if sw == nil {
			continue
		}
		switch pg.VLAN.Kind {
		case VLANTrunk:
			trunks = append(trunks, pg)
			continue
		case VLANSingle:
			if pg.VLAN.ID > maxUsableVLAN {
				r.conflict(fmt.Sprintf("port group %s: VLAN %d out of range 0-%d; ignored", pg.Name, pg.VLAN.ID, maxUsableVLAN))
				continue
			}
			vlan := l2.VLAN(pg.VLAN.ID)
			vni, ok := r.pgVNIFor(pg, vlan)
			if !ok {
				continue
			}
			st.MappedGroups++
			r.pgVNI[pg.Key] = vni
			add(sw.Ref, cand{vlan: vlan, vni: vni, group: "vlan:" + strconv.Itoa(int(vlan))}, pg.Name)
			if vlanVNIs[sw.Ref] == nil {
				vlanVNIs[sw.Ref] = map[l2.VLAN][]l2.VNI{}
			}
			if !containsVNI(vlanVNIs[sw.Ref][vlan], vni) {
				vlanVNIs[sw.Ref][vlan] = append(vlanVNIs[sw.Ref][vlan], vni)
			}
		case VLANPrivate:
			sec := pg.VLAN.ID
			var primary uint32
			found := false
			for _, e := range sw.PVLANs {
				if uint32(e.Secondary) == sec {
					primary, found = uint32(e.Primary), true
					break
				}
			}
			if !found || sec > maxUsableVLAN || primary > maxUsableVLAN || primary == 0 {
				r.conflict(fmt.Sprintf("port group %s: private VLAN %d not in the PVLAN map of switch %s; ignored", pg.Name, sec, sw.Name))
				continue
			}
			vni, ok := r.pgVNIFor(pg, l2.VLAN(primary))
			if !ok {
				continue
			}
			st.MappedGroups++
			r.pgVNI[pg.Key] = vni
			group := fmt.Sprintf("pvlan:%s/%d", sw.Ref, primary)
			add(sw.Ref, cand{vlan: l2.VLAN(sec), vni: vni, group: group}, pg.Name)
			add(sw.Ref, cand{vlan: l2.VLAN(primary), vni: vni, group: group}, pg.Name)
		default:
			r.conflict(fmt.Sprintf("port group %s: VLAN policy not understood; ignored", pg.Name))
		}
	}
	for _, pg := range trunks {
		mapped := false
		for _, rg := range pg.VLAN.Ranges {
			start, end := rg.Start, min(rg.End, maxUsableVLAN)
			for v := start; v <= end && start <= end; v++ {
				vlan := l2.VLAN(v)
				vni, ok := r.directVNI(vlan)
				if !ok {
					vs := vlanVNIs[pg.Switch][vlan]
					if len(vs) != 1 {
						continue // no VNI, or ambiguous (reported through the single-VLAN groups)
					}
					vni = vs[0]
				}
				mapped = true
				add(pg.Switch, cand{vlan: vlan, vni: vni, group: "vlan:" + strconv.Itoa(int(v))}, pg.Name)
			}
		}
		if mapped {
			st.MappedGroups++
		}
	}
	return perSwitch
}

// pgVNIFor applies the VNI policy to a single-VLAN or private-VLAN port group;
// vlan is the VLAN the offset and "vlan:N" rules use.
func (r *run) pgVNIFor(pg *PortGroup, vlan l2.VLAN) (l2.VNI, bool) {
	if pg.PublishedVNI != 0 {
		return pg.PublishedVNI, true
	}
	pol := r.p.vni
	switch pol.Mode {
	case ModeMap:
		if v, ok := pol.Map[pg.Key]; ok {
			return v, true
		}
		if v, ok := pol.Map[pg.Name]; ok {
			return v, true
		}
		return r.directVNI(vlan)
	case ModeTag:
		vnis, bad := tagVNIs(pg.Tags)
		for _, t := range bad {
			r.conflict(fmt.Sprintf("port group %s: tag %q is not a valid vni:N", pg.Name, t))
		}
		switch len(vnis) {
		case 0:
			return 0, false
		case 1:
			return vnis[0], true
		}
		r.conflict(fmt.Sprintf("port group %s: several VNI tags %v; not applied", pg.Name, vnis))
		return 0, false
	case ModeOffset:
		return r.directVNI(vlan)
	}
	return 0, false
}

// directVNI is the VNI the policy gives a VLAN by itself (offset mode, or a
// "vlan:N" map key).
func (r *run) directVNI(vlan l2.VLAN) (l2.VNI, bool) {
	pol := r.p.vni
	switch pol.Mode {
	case ModeOffset:
		if vlan == 0 {
			return 0, false // untagged port groups are not stitched by offset
		}
		return pol.Base + l2.VNI(vlan), true
	case ModeMap:
		v, ok := pol.Map["vlan:"+strconv.Itoa(int(vlan))]
		return v, ok
	}
	return 0, false
}
