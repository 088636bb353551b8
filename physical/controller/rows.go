package controller

import (
	"context"
	"fmt"
	"slices"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// transact runs ops as one transaction and checks every result.
func (c *Controller) transact(ctx context.Context, what string, ops []ovsdb.Operation) error {
	if len(ops) == 0 {
		return nil
	}
	res, err := c.ovs.Transact(ctx, ops...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (c *Controller) create(ops *[]ovsdb.Operation, m model.Model) error {
	o, err := c.ovs.Create(m)
	if err != nil {
		return err
	}
	*ops = append(*ops, o...)
	return nil
}

// ensureSwitch creates or updates the Physical_Switch row, its ports and the
// Global row's reference to it.
func (c *Controller) ensureSwitch(ctx context.Context) error {
	var sws []vtepdb.PhysicalSwitch
	if err := c.ovs.WhereCache(func(p *vtepdb.PhysicalSwitch) bool { return p.Name == c.cfg.Name }).List(ctx, &sws); err != nil {
		return fmt.Errorf("reading Physical_Switch: %w", err)
	}
	var ports []vtepdb.PhysicalPort
	if err := c.ovs.List(ctx, &ports); err != nil {
		return fmt.Errorf("reading Physical_Port: %w", err)
	}
	var globals []vtepdb.Global
	if err := c.ovs.List(ctx, &globals); err != nil {
		return fmt.Errorf("reading Global: %w", err)
	}
	tunnelIPs := []string{c.cfg.TunnelIP.String()}
	var mgmt []string
	for _, ip := range c.cfg.ManagementIPs {
		mgmt = append(mgmt, ip.String())
	}
	var ops []ovsdb.Operation
	psUUID := "ts_ps"
	var have map[string]bool
	if len(sws) == 0 {
		ps := &vtepdb.PhysicalSwitch{UUID: psUUID, Name: c.cfg.Name, Description: c.cfg.Description, TunnelIPs: tunnelIPs, ManagementIPs: mgmt}
		for i, name := range c.cfg.Ports {
			u := fmt.Sprintf("ts_port%d", i)
			if err := c.create(&ops, &vtepdb.PhysicalPort{UUID: u, Name: name}); err != nil {
				return err
			}
			ps.Ports = append(ps.Ports, u)
		}
		if err := c.create(&ops, ps); err != nil {
			return err
		}
	} else {
		ps := sws[0]
		psUUID = ps.UUID
		if !slices.Equal(ps.TunnelIPs, tunnelIPs) || !slices.Equal(ps.ManagementIPs, mgmt) {
			ps.TunnelIPs, ps.ManagementIPs = tunnelIPs, mgmt
			o, err := c.ovs.Where(&ps).Update(&ps, &ps.TunnelIPs, &ps.ManagementIPs)
			if err != nil {
				return err
			}
			ops = append(ops, o...)
		}
		have = map[string]bool{}
		mine := map[string]bool{}
		for _, u := range ps.Ports {
			mine[u] = true
		}
		for _, p := range ports {
			if mine[p.UUID] {
				have[p.Name] = true
			}
		}
		var add []string
		for i, name := range c.cfg.Ports {
			if have[name] {
				continue
			}
			u := fmt.Sprintf("ts_port%d", i)
			if err := c.create(&ops, &vtepdb.PhysicalPort{UUID: u, Name: name}); err != nil {
				return err
			}
			add = append(add, u)
		}
		if len(add) > 0 {
			o, err := c.ovs.Where(&ps).Mutate(&ps, model.Mutation{Field: &ps.Ports, Mutator: ovsdb.MutateOperationInsert, Value: add})
			if err != nil {
				return err
			}
			ops = append(ops, o...)
		}
	}
	newManagers, err := c.missingManagers(ctx, globals, &ops)
	if err != nil {
		return err
	}
	switch {
	case len(globals) == 0:
		if err := c.create(&ops, &vtepdb.Global{UUID: "ts_global", Switches: []string{psUUID}, Managers: newManagers}); err != nil {
			return err
		}
	default:
		g := globals[0]
		var muts []model.Mutation
		if !slices.Contains(g.Switches, psUUID) {
			muts = append(muts, model.Mutation{Field: &g.Switches, Mutator: ovsdb.MutateOperationInsert, Value: []string{psUUID}})
		}
		if len(newManagers) > 0 {
			muts = append(muts, model.Mutation{Field: &g.Managers, Mutator: ovsdb.MutateOperationInsert, Value: newManagers})
		}
		if len(muts) > 0 {
			o, err := c.ovs.Where(&g).Mutate(&g, muts...)
			if err != nil {
				return err
			}
			ops = append(ops, o...)
		}
	}
	return c.transact(ctx, "creating switch rows", ops)
}

// missingManagers adds Manager rows for the configured manager targets
// the Global row does not list yet and returns their named UUIDs. Managers
// an operator added (vtep-ctl set-manager) are left alone.
func (c *Controller) missingManagers(ctx context.Context, globals []vtepdb.Global, ops *[]ovsdb.Operation) ([]string, error) {
	if len(c.cfg.Managers) == 0 {
		return nil, nil
	}
	have := map[string]bool{}
	if len(globals) > 0 {
		listed := map[string]bool{}
		for _, u := range globals[0].Managers {
			listed[u] = true
		}
		var ms []vtepdb.Manager
		if err := c.ovs.List(ctx, &ms); err != nil {
			return nil, fmt.Errorf("reading Manager: %w", err)
		}
		for _, m := range ms {
			if listed[m.UUID] {
				have[m.Target] = true
			}
		}
	}
	var uuids []string
	for i, target := range c.cfg.Managers {
		if have[target] {
			continue
		}
		u := fmt.Sprintf("ts_mgr%d", i)
		if err := c.create(ops, &vtepdb.Manager{UUID: u, Target: target}); err != nil {
			return nil, err
		}
		uuids = append(uuids, u)
	}
	return uuids, nil
}

// localLocator returns the UUID of the switch's own VXLAN locator, adding
// the operation that creates it (as a named UUID) when it does not exist.
func (c *Controller) localLocator(s Snapshot, ops *[]ovsdb.Operation) (string, error) {
	ip := c.cfg.TunnelIP.String()
	for _, l := range s.Locators {
		if l.DstIP == ip && l.EncapsulationType == vtepdb.PhysicalLocatorEncapsulationTypeVxlanOverIpv4 && l.TunnelKey == nil {
			return l.UUID, nil
		}
	}
	const named = "ts_loc"
	return named, c.create(ops, &vtepdb.PhysicalLocator{UUID: named, DstIP: ip, EncapsulationType: vtepdb.PhysicalLocatorEncapsulationTypeVxlanOverIpv4})
}

func (c *Controller) writePortFaults(ctx context.Context, s Snapshot, f Faults) error {
	mine := map[string]bool{}
	for _, u := range s.Switch.Ports {
		mine[u] = true
	}
	var ops []ovsdb.Operation
	for _, p := range s.Ports {
		if !mine[p.UUID] {
			continue
		}
		want := f.Port[p.Name]
		if slices.Equal(p.PortFaultStatus, want) || (len(want) == 0 && len(p.PortFaultStatus) == 0) {
			continue
		}
		p.PortFaultStatus = want
		if p.PortFaultStatus == nil {
			p.PortFaultStatus = []string{}
		}
		o, err := c.ovs.Where(&p).Update(&p, &p.PortFaultStatus)
		if err != nil {
			return err
		}
		ops = append(ops, o...)
	}
	return c.transact(ctx, "writing port faults", ops)
}
