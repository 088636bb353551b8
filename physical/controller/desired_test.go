package controller

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

func ptr[T any](v T) *T { return &v }

func baseSnapshot() Snapshot {
	return Snapshot{
		TunnelIP:  netip.MustParseAddr("10.0.0.1"),
		PortNames: []string{"eth1", "eth2"},
		Switch:    vtepdb.PhysicalSwitch{Name: "tor1", Ports: []string{"p1", "p2"}},
		Ports: []vtepdb.PhysicalPort{
			{UUID: "p1", Name: "eth1", VLANBindings: map[int]string{100: "ls5000"}},
			{UUID: "p2", Name: "eth2"},
			{UUID: "px", Name: "other-switch-port", VLANBindings: map[int]string{7: "ls5000"}},
		},
		LogicalSwitch: []vtepdb.LogicalSwitch{
			{UUID: "ls5000", Name: "ls5000", TunnelKey: ptr(5000)},
			{UUID: "ls6000", Name: "ls6000", TunnelKey: ptr(6000)},
			{UUID: "nokey", Name: "nokey"},
		},
		Locators: []vtepdb.PhysicalLocator{
			{UUID: "l1", DstIP: "10.0.0.1"}, {UUID: "l2", DstIP: "10.0.0.2"}, {UUID: "l3", DstIP: "10.0.0.3"},
		},
		LocatorSets: []vtepdb.PhysicalLocatorSet{{UUID: "s23", Locators: []string{"l3", "l2", "l1"}}},
		UcastRemote: []vtepdb.UcastMacsRemote{
			{MAC: "02:00:00:00:00:01", LogicalSwitch: "ls5000", Locator: "l2", Ipaddr: "192.168.1.1"},
			{MAC: "02:00:00:00:00:02", LogicalSwitch: "ls6000", Locator: "l2"}, // unbound switch
			{MAC: "ff:ff:ff:ff:ff:ff", LogicalSwitch: "ls5000", Locator: "l2"}, // not unicast
		},
		McastRemote: []vtepdb.McastMacsRemote{{MAC: "unknown-dst", LogicalSwitch: "ls5000", LocatorSet: "s23"}},
	}
}

func TestDesired(t *testing.T) {
	mac1 := l2.MustMAC("02:00:00:00:00:01")
	tests := []struct {
		name       string
		mutate     func(*Snapshot)
		bindings   []dataplane.Binding
		switches   map[l2.VNI]*dataplane.Switch
		portFaults map[string][]string
	}{
		{
			name:     "binding, remote MAC with ipaddr, source_node flood without own locator",
			bindings: []dataplane.Binding{{Port: "eth1", VLAN: 100, VNI: 5000}},
			switches: map[l2.VNI]*dataplane.Switch{5000: {
				VNI:    5000,
				Remote: map[l2.MAC]netip.Addr{mac1: netip.MustParseAddr("10.0.0.2")},
				Flood:  []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")},
				Neigh:  map[netip.Addr]l2.MAC{netip.MustParseAddr("192.168.1.1"): mac1},
			}},
			portFaults: map[string][]string{},
		},
		{
			name: "service_node floods to one locator",
			mutate: func(s *Snapshot) {
				s.LogicalSwitch[0].ReplicationMode = ptr(vtepdb.LogicalSwitchReplicationModeServiceNode)
			},
			bindings: []dataplane.Binding{{Port: "eth1", VLAN: 100, VNI: 5000}},
			switches: map[l2.VNI]*dataplane.Switch{5000: {
				VNI:    5000,
				Remote: map[l2.MAC]netip.Addr{mac1: netip.MustParseAddr("10.0.0.2")},
				Flood:  []netip.Addr{netip.MustParseAddr("10.0.0.2")},
				Neigh:  map[netip.Addr]l2.MAC{netip.MustParseAddr("192.168.1.1"): mac1},
			}},
			portFaults: map[string][]string{},
		},
		{
			name: "logical switch without tunnel_key is an invalid VLAN map",
			mutate: func(s *Snapshot) {
				s.Ports[0].VLANBindings = map[int]string{100: "nokey", 200: "ls6000"}
				s.UcastRemote, s.McastRemote = nil, nil
			},
			bindings:   []dataplane.Binding{{Port: "eth1", VLAN: 200, VNI: 6000}},
			switches:   map[l2.VNI]*dataplane.Switch{6000: {VNI: 6000, Remote: map[l2.MAC]netip.Addr{}, Neigh: map[netip.Addr]l2.MAC{}}},
			portFaults: map[string][]string{"eth1": {vtepdb.PortFaultInvalidVLANMap}},
		},
		{
			name: "VLAN 4095 and duplicate tunnel keys are invalid",
			mutate: func(s *Snapshot) {
				s.Ports[0].VLANBindings = map[int]string{4095: "ls5000"}
				s.Ports[1].VLANBindings = map[int]string{0: "dup"}
				s.LogicalSwitch = append(s.LogicalSwitch, vtepdb.LogicalSwitch{UUID: "dup", TunnelKey: ptr(6000)})
				s.UcastRemote, s.McastRemote = nil, nil
			},
			switches:   map[l2.VNI]*dataplane.Switch{},
			portFaults: map[string][]string{"eth1": {vtepdb.PortFaultInvalidVLANMap}, "eth2": {vtepdb.PortFaultInvalidVLANMap}},
		},
		{
			name: "two VLANs of one port in one logical switch",
			mutate: func(s *Snapshot) {
				s.Ports[0].VLANBindings = map[int]string{100: "ls5000", 200: "ls5000"}
				s.UcastRemote, s.McastRemote = nil, nil
			},
			bindings:   []dataplane.Binding{{Port: "eth1", VLAN: 100, VNI: 5000}, {Port: "eth1", VLAN: 200, VNI: 5000}},
			switches:   map[l2.VNI]*dataplane.Switch{5000: {VNI: 5000, Remote: map[l2.MAC]netip.Addr{}, Neigh: map[netip.Addr]l2.MAC{}}},
			portFaults: map[string][]string{},
		},
		{
			name: "untagged binding (VLAN 0)",
			mutate: func(s *Snapshot) {
				s.Ports[1].VLANBindings = map[int]string{0: "ls6000"}
				s.Ports[0].VLANBindings = nil
				s.UcastRemote, s.McastRemote = nil, nil
			},
			bindings:   []dataplane.Binding{{Port: "eth2", VLAN: 0, VNI: 6000}},
			switches:   map[l2.VNI]*dataplane.Switch{6000: {VNI: 6000, Remote: map[l2.MAC]netip.Addr{}, Neigh: map[netip.Addr]l2.MAC{}}},
			portFaults: map[string][]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSnapshot()
			if tc.mutate != nil {
				tc.mutate(&s)
			}
			p := Desired(s)
			if !slices.Equal(p.Config.Bindings, tc.bindings) {
				t.Errorf("bindings = %v, want %v", p.Config.Bindings, tc.bindings)
			}
			if !reflect.DeepEqual(p.Config.Switches, tc.switches) {
				for k, v := range p.Config.Switches {
					t.Logf("got switch %d: %+v", k, *v)
				}
				t.Errorf("switches differ")
			}
			if !reflect.DeepEqual(p.Faults.Port, tc.portFaults) {
				t.Errorf("port faults = %v, want %v", p.Faults.Port, tc.portFaults)
			}
			if !slices.Equal(p.Config.Ports, []string{"eth1", "eth2"}) {
				t.Errorf("ports = %v", p.Config.Ports)
			}
		})
	}
}
