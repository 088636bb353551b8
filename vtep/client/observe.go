package client

import (
	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"

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

// observe builds the planner's view of the switch from the cache: the
// cached rows themselves, which the cache never edits in place (read-only).
// UcastRemote is left to the caller (the table is not monitored). switchName
// selects the Physical_Switch when the database holds several; "" takes the
// only one.
func observe(tc *cache.TableCache, switchName string) *plan.Observed {
	o := &plan.Observed{
		Ports:       map[string]*vtepdb.PhysicalPort{},
		Switches:    typed[vtepdb.LogicalSwitch](rows(tc, vtepdb.LogicalSwitchTable)),
		Locators:    typed[vtepdb.PhysicalLocator](rows(tc, vtepdb.PhysicalLocatorTable)),
		LocatorSets: typed[vtepdb.PhysicalLocatorSet](rows(tc, vtepdb.PhysicalLocatorSetTable)),
		McastRemote: typed[vtepdb.McastMacsRemote](rows(tc, vtepdb.McastMacsRemoteTable)),
		UcastLocal:  typed[vtepdb.UcastMacsLocal](rows(tc, vtepdb.UcastMacsLocalTable)),
		McastLocal:  typed[vtepdb.McastMacsLocal](rows(tc, vtepdb.McastMacsLocalTable)),
		Tunnels:     typed[vtepdb.Tunnel](rows(tc, vtepdb.TunnelTable)),
	}
	var ps *vtepdb.PhysicalSwitch
	for _, m := range rows(tc, vtepdb.PhysicalSwitchTable) {
		s := m.(*vtepdb.PhysicalSwitch)
		if switchName == "" || s.Name == switchName {
			if ps == nil || s.Name < ps.Name {
				ps = s
			}
		}
	}
	if ps == nil {
		return o
	}
	o.PhysicalSwitch = *ps
	portRows := rows(tc, vtepdb.PhysicalPortTable)
	for _, pu := range ps.Ports {
		if m, ok := portRows[pu]; ok {
			p := m.(*vtepdb.PhysicalPort)
			o.Ports[p.Name] = p
		}
	}
	return o
}

// typed returns the rows of one table as their model, by UUID.
func typed[T any](rows map[string]model.Model) map[string]*T {
	out := make(map[string]*T, len(rows))
	for u, m := range rows {
		out[u] = m.(*T)
	}
	return out
}
