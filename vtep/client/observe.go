package client

import (
	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// monitored lists the tables (and columns) the client watches: only what the
// planner and the agent read.
// monitorOptions lists the tables the agent reads. Not
// Logical_Binding_Stats: nothing here reads its counters (Physical_Port's
// vlan_stats carries the references), and ovs-vtep rewrites them with one
// transaction per counter on every main-loop pass, so monitoring it woke
// the agent for a reconcile pass many times a second per switch.
func monitorOptions() []client.MonitorOption {
	return []client.MonitorOption{
		client.WithTable(&vtepdb.PhysicalSwitch{}),
		client.WithTable(&vtepdb.PhysicalPort{}),
		client.WithTable(&vtepdb.LogicalSwitch{}),
		client.WithTable(&vtepdb.PhysicalLocator{}),
		client.WithTable(&vtepdb.PhysicalLocatorSet{}),
		client.WithTable(&vtepdb.McastMacsRemote{}),
		client.WithTable(&vtepdb.UcastMacsLocal{}),
		client.WithTable(&vtepdb.McastMacsLocal{}),
		client.WithTable(&vtepdb.Tunnel{}),
	}
}

func rows(tc *cache.TableCache, table string) map[string]model.Model {
	rc := tc.Table(table)
	if rc == nil {
		return nil
	}
	return rc.RowsShallow()
}

// observe builds the planner's view of the switch from the cache. switchName
// selects the Physical_Switch when the database holds several; "" takes the
// only one.
func observe(tc *cache.TableCache, switchName string) *plan.Observed {
	o := plan.NewObserved("")
	var ps *vtepdb.PhysicalSwitch
	for _, m := range rows(tc, vtepdb.PhysicalSwitchTable) {
		s := m.(*vtepdb.PhysicalSwitch)
		if switchName == "" || s.Name == switchName {
			if ps == nil || s.Name < ps.Name {
				ps = s
			}
		}
	}
	portRows := rows(tc, vtepdb.PhysicalPortTable)
	if ps != nil {
		o.SwitchName = ps.Name
		o.TunnelIPs = ps.TunnelIPs
		o.SwitchFaults = ps.SwitchFaultStatus
		for _, pu := range ps.Ports {
			m, ok := portRows[pu]
			if !ok {
				continue
			}
			p := m.(*vtepdb.PhysicalPort)
			port := &plan.Port{UUID: p.UUID, Name: p.Name, Faults: p.PortFaultStatus,
				Bindings: make(map[l2.VLAN]string, len(p.VLANBindings)), Stats: make(map[l2.VLAN]string, len(p.VLANStats))}
			for v, ls := range p.VLANBindings {
				port.Bindings[l2.VLAN(v)] = ls
			}
			for v, st := range p.VLANStats {
				port.Stats[l2.VLAN(v)] = st
			}
			o.Ports[p.Name] = port
		}
	}
	for u, m := range rows(tc, vtepdb.LogicalSwitchTable) {
		ls := m.(*vtepdb.LogicalSwitch)
		ol := &plan.ObservedLS{UUID: u, Name: ls.Name, Description: ls.Description, TunnelKey: ls.TunnelKey, OtherConfig: ls.OtherConfig}
		if ls.ReplicationMode != nil {
			ol.ReplicationMode = string(*ls.ReplicationMode)
		}
		o.Switches[u] = ol
	}
	for u, m := range rows(tc, vtepdb.PhysicalLocatorTable) {
		l := m.(*vtepdb.PhysicalLocator)
		o.Locators[u] = plan.Locator{Encap: string(l.EncapsulationType), DstIP: l.DstIP, TunnelKey: l.TunnelKey}
	}
	for u, m := range rows(tc, vtepdb.PhysicalLocatorSetTable) {
		o.LocatorSets[u] = m.(*vtepdb.PhysicalLocatorSet).Locators
	}
	for u, m := range rows(tc, vtepdb.UcastMacsLocalTable) {
		r := m.(*vtepdb.UcastMacsLocal)
		o.UcastLocal[u] = &plan.MACRow{UUID: u, LS: r.LogicalSwitch, MAC: r.MAC, IP: r.Ipaddr, Locator: r.Locator}
	}
	for u, m := range rows(tc, vtepdb.McastMacsRemoteTable) {
		r := m.(*vtepdb.McastMacsRemote)
		o.McastRemote[u] = &plan.McastRow{UUID: u, LS: r.LogicalSwitch, MAC: r.MAC, IP: r.Ipaddr, LocatorSet: r.LocatorSet}
	}
	for u, m := range rows(tc, vtepdb.McastMacsLocalTable) {
		r := m.(*vtepdb.McastMacsLocal)
		o.McastLocal[u] = &plan.McastRow{UUID: u, LS: r.LogicalSwitch, MAC: r.MAC, IP: r.Ipaddr, LocatorSet: r.LocatorSet}
	}
	for u, m := range rows(tc, vtepdb.TunnelTable) {
		t := m.(*vtepdb.Tunnel)
		o.Tunnels[u] = &plan.Tunnel{UUID: u, Local: t.Local, Remote: t.Remote, BFDParams: t.BFDParams, BFDStatus: t.BFDStatus}
	}
	return o
}
