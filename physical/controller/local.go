package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

type lsMAC struct {
	ls  string
	mac string
}

// reconcileLocal makes Ucast_Macs_Local hold the learned MACs of bound
// logical switches (up to the MAC limit), Mcast_Macs_Local hold an
// unknown-dst row with the switch's own locator per bound logical switch,
// and switch_fault_status reflect MAC table exhaustion.
func (c *Controller) reconcileLocal(ctx context.Context) error {
	if !c.applied {
		return nil
	}
	s, err := c.snapshot(ctx, false)
	if err != nil {
		return err
	}
	var ops []ovsdb.Operation
	loc, err := c.localLocator(s, &ops)
	if err != nil {
		return err
	}
	locOK := func(u string) bool { return u == loc }

	keys := make([]l2.MACKey, 0, len(c.learned))
	for k := range c.learned {
		if _, ok := c.want.BoundLS[k.VNI]; ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, l2.MACKey.Compare)
	want := map[lsMAC]string{} // → ipaddr
	for _, k := range keys {
		ip := ""
		if a, ok := c.hostIPs[k]; ok {
			ip = a.String()
		}
		want[lsMAC{c.want.BoundLS[k.VNI], k.MAC.String()}] = ip
	}
	kept := map[lsMAC]bool{}
	for _, r := range s.UcastLocal {
		k := lsMAC{r.LogicalSwitch, strings.ToLower(r.MAC)}
		if ip, ok := want[k]; ok && locOK(r.Locator) && !kept[k] {
			kept[k] = true
			if ip != "" && r.Ipaddr != ip {
				r.Ipaddr = ip
				o, err := c.ovs.Where(&r).Update(&r, &r.Ipaddr)
				if err != nil {
					return err
				}
				ops = append(ops, o...)
			}
			continue
		}
		o, err := c.ovs.Where(&vtepdb.UcastMacsLocal{UUID: r.UUID}).Delete()
		if err != nil {
			return err
		}
		ops = append(ops, o...)
	}
	exhausted := false
	count := len(kept)
	for _, k := range keys {
		lm := lsMAC{c.want.BoundLS[k.VNI], k.MAC.String()}
		if kept[lm] {
			continue
		}
		if c.cfg.MACLimit > 0 && count >= c.cfg.MACLimit {
			exhausted = true
			continue
		}
		count++
		if err := c.create(&ops, &vtepdb.UcastMacsLocal{MAC: lm.mac, LogicalSwitch: lm.ls, Locator: loc, Ipaddr: want[lm]}); err != nil {
			return err
		}
	}

	// Mcast_Macs_Local unknown-dst → {own locator} per bound logical switch.
	sets := map[string][]string{}
	for _, ls := range s.LocatorSets {
		sets[ls.UUID] = ls.Locators
	}
	haveMcast := map[string]bool{}
	for _, r := range s.McastLocal {
		if r.MAC == vtepdb.UnknownDst && isBound(c.want, r.LogicalSwitch) && !haveMcast[r.LogicalSwitch] &&
			len(sets[r.LocatorSet]) == 1 && locOK(sets[r.LocatorSet][0]) {
			haveMcast[r.LogicalSwitch] = true
			continue
		}
		o, err := c.ovs.Where(&vtepdb.McastMacsLocal{UUID: r.UUID}).Delete()
		if err != nil {
			return err
		}
		ops = append(ops, o...)
	}
	for i, vni := range slices.Sorted(maps.Keys(c.want.BoundLS)) {
		ls := c.want.BoundLS[vni]
		if haveMcast[ls] {
			continue
		}
		set := fmt.Sprintf("ts_set%d", i)
		if err := c.create(&ops, &vtepdb.PhysicalLocatorSet{UUID: set, Locators: []string{loc}}); err != nil {
			return err
		}
		if err := c.create(&ops, &vtepdb.McastMacsLocal{MAC: vtepdb.UnknownDst, LogicalSwitch: ls, LocatorSet: set}); err != nil {
			return err
		}
	}

	// switch_fault_status
	ps := s.Switch
	hasFault := slices.Contains(ps.SwitchFaultStatus, vtepdb.SwitchFaultMACTableExhaustion)
	if hasFault != exhausted {
		if exhausted {
			c.log.Warn("MAC table exhausted", "limit", c.cfg.MACLimit, "learned", len(keys))
		}
		ps.SwitchFaultStatus = slices.DeleteFunc(slices.Clone(ps.SwitchFaultStatus), func(f string) bool { return f == vtepdb.SwitchFaultMACTableExhaustion })
		if exhausted {
			ps.SwitchFaultStatus = append(ps.SwitchFaultStatus, vtepdb.SwitchFaultMACTableExhaustion)
		}
		if ps.SwitchFaultStatus == nil {
			ps.SwitchFaultStatus = []string{}
		}
		o, err := c.ovs.Where(&ps).Update(&ps, &ps.SwitchFaultStatus)
		if err != nil {
			return err
		}
		ops = append(ops, o...)
	}
	if loc == "ts_loc" && len(ops) == 1 {
		return nil // only the locator: nothing references it yet
	}
	return c.transact(ctx, "writing local MACs", ops)
}

func isBound(p Want, ls string) bool {
	for _, u := range p.BoundLS {
		if u == ls {
			return true
		}
	}
	return false
}

// writeStats refreshes Logical_Binding_Stats of every programmed binding.
func (c *Controller) writeStats(ctx context.Context) error {
	st, err := c.dp.Stats()
	if err != nil {
		return err
	}
	s, err := c.snapshot(ctx, false)
	if err != nil {
		return err
	}
	var rows []vtepdb.LogicalBindingStats
	if err := c.ovs.List(ctx, &rows); err != nil {
		return err
	}
	byUUID := map[string]vtepdb.LogicalBindingStats{}
	for _, r := range rows {
		byUUID[r.UUID] = r
	}
	mine := map[string]bool{}
	for _, u := range s.Switch.Ports {
		mine[u] = true
	}
	var ops []ovsdb.Operation
	n := 0
	for _, p := range s.Ports {
		if !mine[p.UUID] {
			continue
		}
		add := map[int]string{}
		var del []int
		for vlan := range p.VLANStats {
			if _, bound := st[dataplane.BindingKey{Port: p.Name, VLAN: l2.VLAN(vlan)}]; !bound {
				del = append(del, vlan)
			}
		}
		for _, vlan := range slices.Sorted(maps.Keys(p.VLANBindings)) {
			cnt, ok := st[dataplane.BindingKey{Port: p.Name, VLAN: l2.VLAN(vlan)}]
			if !ok {
				continue
			}
			row := vtepdb.LogicalBindingStats{
				PacketsFromLocal: int(cnt.PacketsFromLocal), BytesFromLocal: int(cnt.BytesFromLocal),
				PacketsToLocal: int(cnt.PacketsToLocal), BytesToLocal: int(cnt.BytesToLocal),
			}
			if u, ok := p.VLANStats[vlan]; ok {
				if old, ok := byUUID[u]; ok {
					row.UUID = u
					if old == row {
						continue
					}
					o, err := c.ovs.Where(&row).Update(&row)
					if err != nil {
						return err
					}
					ops = append(ops, o...)
					continue
				}
				del = append(del, vlan)
			}
			row.UUID = fmt.Sprintf("ts_stats%d", n)
			n++
			if err := c.create(&ops, &row); err != nil {
				return err
			}
			add[vlan] = row.UUID
		}
		if len(del) > 0 {
			o, err := c.ovs.Where(&p).Mutate(&p, model.Mutation{Field: &p.VLANStats, Mutator: ovsdb.MutateOperationDelete, Value: del})
			if err != nil {
				return err
			}
			ops = append(ops, o...)
		}
		if len(add) > 0 {
			o, err := c.ovs.Where(&p).Mutate(&p, model.Mutation{Field: &p.VLANStats, Mutator: ovsdb.MutateOperationInsert, Value: add})
			if err != nil {
				return err
			}
			ops = append(ops, o...)
		}
	}
	return c.transact(ctx, "writing binding stats", ops)
}
