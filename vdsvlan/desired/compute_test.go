package desired

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/torstitch/torstitch/vtep/l2"
)

// fixture: one switch with two member hosts, each with two uplinks to the
// pair (tor1, tor2), plus a second switch whose only host faces tor1:eth9.
func fixture() Inventory {
	return Inventory{
		Switches: []Switch{
			{Ref: "dvs-1", Name: "DSwitch", Members: []Member{{Host: "host-1"}, {Host: "host-2", Uplinks: []string{"vmnic0", "vmnic1"}}},
				PVLANs: []PVLANEntry{{Primary: 300, Secondary: 300, Type: "promiscuous"}, {Primary: 300, Secondary: 301, Type: "isolated"}, {Primary: 300, Secondary: 302, Type: "community"}}},
			{Ref: "dvs-2", Name: "Other", Members: []Member{{Host: "host-3"}}},
		},
		Hosts: []Host{
			{Ref: "host-1", Name: "esx1", Neighbours: []Neighbour{
				{PNIC: "vmnic0", Switch: "tor1.lab", Port: "Ethernet1", Protocol: "lldp"},
				{PNIC: "vmnic1", Switch: "tor2.lab", Port: "Ethernet1", Protocol: "lldp"}}},
			{Ref: "host-2", Name: "esx2", Neighbours: []Neighbour{
				{PNIC: "vmnic0", Switch: "tor1.lab", Port: "Ethernet2", Protocol: "lldp"},
				{PNIC: "vmnic1", Switch: "tor2.lab", Port: "Ethernet2", Protocol: "cdp"},
				{PNIC: "vmnic2", Switch: "mgmt-sw", Port: "Gi0/1", Protocol: "cdp"}}},
			{Ref: "host-3", Name: "esx3", Neighbours: []Neighbour{
				{PNIC: "vmnic0", Switch: "tor1.lab", Port: "Ethernet9", Protocol: "lldp"}}},
		},
	}
}

var rewrites = []Rewrite{
	{Field: "switch", Match: `\..*$`, Replace: ""},
	{Field: "port", Match: `^Ethernet(\d+)$`, Replace: "eth$1"},
}

func pg(key, sw string, vlan VLANPolicy, tags ...string) PortGroup {
	return PortGroup{Ref: key, Key: key, Name: "pg-" + key, Switch: sw, VLAN: vlan, Tags: tags}
}

func single(v uint32) VLANPolicy { return VLANPolicy{Kind: VLANSingle, ID: v} }
func pvlan(v uint32) VLANPolicy  { return VLANPolicy{Kind: VLANPrivate, ID: v} }
func trunk(rs ...VLANRange) VLANPolicy {
	return VLANPolicy{Kind: VLANTrunk, Ranges: rs}
}

func ports(s ...string) []l2.PortRef {
	out := make([]l2.PortRef, len(s))
	for i, v := range s {
		p, err := l2.ParsePortRef(v)
		if err != nil {
			panic(err)
		}
		out[i] = p
	}
	return out
}

var (
	dvs1Ports = ports("tor1:eth1", "tor1:eth2", "tor2:eth1", "tor2:eth2")
	lldp      = HostPorts{Mode: PortsLLDP, Rewrite: rewrites}
	offset    = VNIPolicy{Mode: ModeOffset, Base: 10000}
	pair      = map[string][]string{"tor1": nil, "tor2": nil}
)

func TestCompute(t *testing.T) {
	tests := []struct {
		name      string
		vni       VNIPolicy
		ports     HostPorts
		switches  map[string][]string
		pgs       []PortGroup
		prev      []l2.Binding
		want      []l2.Binding
		conflicts []string // substrings, one per expected conflict
	}{
		{
			name: "single VLAN, offset, LLDP with rewrite",
			vni:  offset, ports: lldp, switches: pair,
			pgs:  []PortGroup{pg("pg1", "dvs-1", single(100))},
			want: []l2.Binding{{VLAN: 100, VNI: 10100, Ports: dvs1Ports}},
		},
		{
			name: "without switch filter every neighbour counts",
			vni:  offset, ports: lldp,
			pgs:  []PortGroup{pg("pg1", "dvs-2", single(100))},
			want: []l2.Binding{{VLAN: 100, VNI: 10100, Ports: ports("tor1:eth9")}},
		},
		{
			name: "port filter on the pair's ports",
			vni:  offset, ports: lldp, switches: map[string][]string{"tor1": {"eth1"}},
			pgs:  []PortGroup{pg("pg1", "dvs-1", single(100))},
			want: []l2.Binding{{VLAN: 100, VNI: 10100, Ports: ports("tor1:eth1")}},
		},
		{
			name: "uplink port groups and untagged groups are ignored by offset",
			vni:  offset, ports: lldp, switches: pair,
			pgs: []PortGroup{{Key: "up", Name: "DSwitch-DVUplinks-1", Switch: "dvs-1", Uplink: true, VLAN: single(7)},
				pg("pg0", "dvs-1", single(0))},
			want: []l2.Binding{},
		},
		{
			name:  "explicit map by name, key and vlan:N",
			vni:   VNIPolicy{Mode: ModeMap, Map: map[string]l2.VNI{"pg-a": 5000, "b": 6000, "vlan:30": 7000}},
			ports: lldp, switches: pair,
			pgs: []PortGroup{pg("a", "dvs-1", single(10)), pg("b", "dvs-1", single(20)), pg("c", "dvs-1", single(30)), pg("d", "dvs-1", single(40))},
			want: []l2.Binding{
				{VLAN: 10, VNI: 5000, Ports: dvs1Ports},
				{VLAN: 20, VNI: 6000, Ports: dvs1Ports},
				{VLAN: 30, VNI: 7000, Ports: dvs1Ports},
			},
		},
		{
			name: "tags",
			vni:  VNIPolicy{Mode: ModeTag, Category: "torstitch"}, ports: lldp, switches: pair,
			pgs: []PortGroup{pg("a", "dvs-1", single(10), "vni:10010"), pg("b", "dvs-1", single(20)),
				pg("c", "dvs-1", single(30), "vni:1", "vni:2"), pg("d", "dvs-1", single(40), "vni:x")},
			want:      []l2.Binding{{VLAN: 10, VNI: 10010, Ports: dvs1Ports}},
			conflicts: []string{`pg-c: several VNI tags`, `pg-d: tag "vni:x"`},
		},
		{
			name: "trunk expands to VLANs with a VNI from single port groups",
			vni:  VNIPolicy{Mode: ModeTag, Category: "torstitch"}, ports: lldp, switches: pair,
			pgs: []PortGroup{pg("a", "dvs-1", single(10), "vni:10010"), pg("t", "dvs-1", trunk(VLANRange{1, 4094})),
				pg("o", "dvs-2", trunk(VLANRange{1, 4094}))},
			want: []l2.Binding{{VLAN: 10, VNI: 10010, Ports: dvs1Ports}},
		},
		{
			name: "trunk expands by offset, clipped to 4094",
			vni:  offset, ports: lldp, switches: pair,
			pgs: []PortGroup{pg("t", "dvs-1", trunk(VLANRange{0, 1}, VLANRange{4093, 5000}))},
			want: []l2.Binding{
				{VLAN: 1, VNI: 10001, Ports: dvs1Ports},
				{VLAN: 4093, VNI: 14093, Ports: dvs1Ports},
				{VLAN: 4094, VNI: 14094, Ports: dvs1Ports},
			},
		},
		{
			name: "private VLAN binds secondary and primary into the primary's VNI",
			vni:  offset, ports: lldp, switches: pair,
			pgs: []PortGroup{pg("iso", "dvs-1", pvlan(301)), pg("com", "dvs-1", pvlan(302)), pg("bad", "dvs-1", pvlan(399))},
			want: []l2.Binding{
				{VLAN: 300, VNI: 10300, Ports: dvs1Ports},
				{VLAN: 301, VNI: 10300, Ports: dvs1Ports},
				{VLAN: 302, VNI: 10300, Ports: dvs1Ports},
			},
			conflicts: []string{"pg-bad: private VLAN 399 not in the PVLAN map"},
		},
		{
			name: "VLAN out of range is reported",
			vni:  offset, ports: lldp, switches: pair,
			pgs:       []PortGroup{pg("x", "dvs-1", single(5000))},
			want:      []l2.Binding{},
			conflicts: []string{"pg-x: VLAN 5000 out of range"},
		},
		{
			name: "one VLAN two VNIs: neither applied",
			vni:  VNIPolicy{Mode: ModeMap, Map: map[string]l2.VNI{"a": 1, "b": 2, "c": 3}}, ports: lldp, switches: pair,
			pgs:       []PortGroup{pg("a", "dvs-1", single(10)), pg("b", "dvs-1", single(10)), pg("c", "dvs-1", single(11))},
			want:      []l2.Binding{{VLAN: 11, VNI: 3, Ports: dvs1Ports}},
			conflicts: []string{"VLAN 10 mapped to several VNIs: 1 (pg-a) and 2 (pg-b); not applied (ports tor1:eth1, tor1:eth2, tor2:eth1, tor2:eth2)"},
		},
		{
			name: "one VLAN two VNIs: the previous one is kept",
			vni:  VNIPolicy{Mode: ModeMap, Map: map[string]l2.VNI{"a": 1, "b": 2}}, ports: lldp, switches: pair,
			pgs:       []PortGroup{pg("a", "dvs-1", single(10)), pg("b", "dvs-1", single(10))},
			prev:      []l2.Binding{{VLAN: 10, VNI: 2, Ports: dvs1Ports}},
			want:      []l2.Binding{{VLAN: 10, VNI: 2, Ports: dvs1Ports}},
			conflicts: []string{"keeping VNI 2 as before"},
		},
		{
			name: "same VLAN and VNI from two port groups is no conflict",
			vni:  offset, ports: lldp, switches: pair,
			pgs:  []PortGroup{pg("a", "dvs-1", single(10)), pg("b", "dvs-1", single(10))},
			want: []l2.Binding{{VLAN: 10, VNI: 10010, Ports: dvs1Ports}},
		},
		{
			name: "one VNI two VLANs on a port: neither applied",
			vni:  VNIPolicy{Mode: ModeMap, Map: map[string]l2.VNI{"a": 7, "b": 7}}, ports: lldp, switches: pair,
			pgs:       []PortGroup{pg("a", "dvs-1", single(10)), pg("b", "dvs-1", single(20))},
			want:      []l2.Binding{},
			conflicts: []string{"VNI 7 used by several VLANs 10, 20; not applied"},
		},
		{
			name: "one VNI two VLANs: the previous VLAN is kept",
			vni:  VNIPolicy{Mode: ModeMap, Map: map[string]l2.VNI{"a": 7, "b": 7}}, ports: lldp, switches: pair,
			pgs:       []PortGroup{pg("a", "dvs-1", single(10)), pg("b", "dvs-1", single(20))},
			prev:      []l2.Binding{{VLAN: 20, VNI: 7, Ports: ports("tor1:eth1")}},
			want:      []l2.Binding{{VLAN: 20, VNI: 7, Ports: ports("tor1:eth1")}},
			conflicts: []string{"keeping VLAN 20 as before (ports tor1:eth1)", "VNI 7 used by several VLANs 10, 20; not applied (ports tor1:eth2, tor2:eth1, tor2:eth2)"},
		},
		{
			name: "same VLAN, different VNIs on different switches' ports is fine",
			vni:  VNIPolicy{Mode: ModeMap, Map: map[string]l2.VNI{"a": 1, "b": 2}}, ports: lldp, switches: pair,
			pgs: []PortGroup{pg("a", "dvs-1", single(10)), pg("b", "dvs-2", single(10))},
			want: []l2.Binding{{VLAN: 10, VNI: 1, Ports: dvs1Ports},
				{VLAN: 10, VNI: 2, Ports: ports("tor1:eth9")}},
		},
		{
			name:  "static host ports",
			vni:   offset,
			ports: HostPorts{Mode: PortsStatic, Static: map[string][]l2.PortRef{"esx1": ports("tor1:p1", "tor2:p1"), "esx3": ports("tor1:p3")}},
			pgs:   []PortGroup{pg("a", "dvs-1", single(10))},
			want:  []l2.Binding{{VLAN: 10, VNI: 10010, Ports: ports("tor1:p1", "tor2:p1")}},
		},
		{
			name:  "static entry overrides LLDP for its host",
			vni:   offset,
			ports: HostPorts{Mode: PortsLLDP, Rewrite: rewrites, Static: map[string][]l2.PortRef{"esx2": ports("tor1:p2")}},
			pgs:   []PortGroup{pg("a", "dvs-1", single(10))},
			want:  []l2.Binding{{VLAN: 10, VNI: 10010, Ports: ports("tor1:eth1", "tor1:p2", "tor2:eth1")}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl, err := NewPlanner(Params{VNI: tc.vni, Ports: tc.ports, Switches: tc.switches})
			if err != nil {
				t.Fatal(err)
			}
			inv := fixture()
			inv.PortGroups = tc.pgs
			got := pl.Compute(inv, tc.prev)
			if !reflect.DeepEqual(got.Bindings, tc.want) {
				t.Errorf("bindings:\n got %v\nwant %v", got.Bindings, tc.want)
			}
			if len(got.Conflicts) != len(tc.conflicts) {
				t.Fatalf("conflicts: got %q, want %d matching %q", got.Conflicts, len(tc.conflicts), tc.conflicts)
			}
			for _, want := range tc.conflicts {
				found := false
				for _, c := range got.Conflicts {
					found = found || strings.Contains(c, want)
				}
				if !found {
					t.Errorf("no conflict contains %q: %q", want, got.Conflicts)
				}
			}
			// Deterministic: the same input gives the same output.
			if again := pl.Compute(inv, tc.prev); !reflect.DeepEqual(again, got) {
				t.Errorf("second Compute differs")
			}
		})
	}
}

func TestComputeMACs(t *testing.T) {
	pl, err := NewPlanner(Params{VNI: offset, Ports: lldp, Switches: map[string][]string{"tor1": {"eth1", "eth2"}, "tor2": nil}})
	if err != nil {
		t.Fatal(err)
	}
	inv := fixture()
	inv.PortGroups = []PortGroup{pg("a", "dvs-1", single(10)), pg("t", "dvs-1", trunk(VLANRange{1, 20})), pg("u", "dvs-1", single(0))}
	m1, m2 := l2.MustMAC("00:50:56:00:00:01"), l2.MustMAC("00:50:56:00:00:02")
	inv.VMs = []VM{
		{Ref: "vm-2", Name: "web2", Host: "host-2", NICs: []NIC{{MAC: m2, PortGroup: "a"}, {MAC: m1, PortGroup: "t"}}},
		{Ref: "vm-1", Name: "web1", Host: "host-1", NICs: []NIC{{MAC: m1, PortGroup: "a"}, {MAC: m2, PortGroup: "u"}}},
		{Ref: "vm-3", Name: "dup", Host: "gone", NICs: []NIC{{MAC: m1, PortGroup: "a"}}},
	}
	got := pl.Compute(inv, nil)
	want := []VMMAC{
		{VNI: 10010, MAC: m1, VM: "dup", PortGroup: "pg-a"},
		{VNI: 10010, MAC: m1, VM: "web1", Host: "esx1", PortGroup: "pg-a"},
		{VNI: 10010, MAC: m2, VM: "web2", Host: "esx2", PortGroup: "pg-a"},
	}
	if !reflect.DeepEqual(got.MACs, want) {
		t.Errorf("MACs:\n got %+v\nwant %+v", got.MACs, want)
	}
	if len(got.Conflicts) != 1 || !strings.Contains(got.Conflicts[0], "MAC 00:50:56:00:00:01 in VNI 10010 on VMs web1 and dup") {
		t.Errorf("conflicts: %q", got.Conflicts)
	}
	wantStats := Stats{Switches: 2, PortGroups: 3, MappedGroups: 2, Hosts: 3, HostsWithoutMap: 1, VMs: 3}
	if got.Stats != wantStats {
		t.Errorf("stats: got %+v want %+v", got.Stats, wantStats)
	}
}

func TestNewPlannerRejects(t *testing.T) {
	tests := []struct {
		p    Params
		want string
	}{
		{Params{VNI: VNIPolicy{}, Ports: lldp}, "mode missing"},
		{Params{VNI: VNIPolicy{Mode: "magic"}, Ports: lldp}, `unknown mode "magic"`},
		{Params{VNI: VNIPolicy{Mode: ModeMap}, Ports: lldp}, "non-empty map"},
		{Params{VNI: VNIPolicy{Mode: ModeMap, Map: map[string]l2.VNI{"x": 0}}, Ports: lldp}, "VNI 0 out of range"},
		{Params{VNI: VNIPolicy{Mode: ModeTag}, Ports: lldp}, "needs a category"},
		{Params{VNI: VNIPolicy{Mode: ModeOffset}, Ports: lldp}, "offset base"},
		{Params{VNI: offset, Ports: HostPorts{Mode: "cdp"}}, `unknown mode "cdp"`},
		{Params{VNI: offset, Ports: HostPorts{Mode: PortsStatic}}, "needs a static map"},
		{Params{VNI: offset, Ports: HostPorts{Mode: PortsLLDP, Rewrite: []Rewrite{{Field: "host"}}}}, "must be switch or port"},
		{Params{VNI: offset, Ports: HostPorts{Mode: PortsLLDP, Rewrite: []Rewrite{{Field: "port", Match: "("}}}}, "rewrite 0"},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			_, err := NewPlanner(tc.p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}
