package desired

import (
	"fmt"
	"testing"

	"github.com/torstitch/torstitch/vtep/l2"
)

// benchInventory: 20 hosts cabled to tor1/tor2, 500 tagged port groups, a
// trunk, 2000 VMs with one NIC each.
func benchInventory() Inventory {
	inv := Inventory{Switches: []Switch{{Ref: "dvs-1", Name: "DSwitch"}}}
	for i := range 20 {
		ref := fmt.Sprintf("host-%d", i)
		inv.Switches[0].Members = append(inv.Switches[0].Members, Member{Host: ref, Uplinks: []string{"vmnic0", "vmnic1"}})
		inv.Hosts = append(inv.Hosts, Host{Ref: ref, Name: fmt.Sprintf("esx%d", i), Neighbours: []Neighbour{
			{PNIC: "vmnic0", Switch: "tor1", Port: fmt.Sprintf("eth%d", i)},
			{PNIC: "vmnic1", Switch: "tor2", Port: fmt.Sprintf("eth%d", i)}}})
	}
	for i := range 500 {
		key := fmt.Sprintf("dvportgroup-%d", i)
		inv.PortGroups = append(inv.PortGroups, PortGroup{Ref: key, Key: key, Name: "pg" + key, Switch: "dvs-1",
			VLAN: VLANPolicy{Kind: VLANSingle, ID: uint32(2 + i)}, Tags: []string{fmt.Sprintf("vni:%d", 10002+i)}})
	}
	inv.PortGroups = append(inv.PortGroups, PortGroup{Ref: "trunk", Key: "trunk", Name: "trunk", Switch: "dvs-1",
		VLAN: VLANPolicy{Kind: VLANTrunk, Ranges: []VLANRange{{1, 4094}}}})
	for i := range 2000 {
		inv.VMs = append(inv.VMs, VM{Ref: fmt.Sprintf("vm-%d", i), Name: fmt.Sprintf("vm%d", i), Host: fmt.Sprintf("host-%d", i%20),
			NICs: []NIC{{MAC: l2.MAC{0, 0x50, 0x56, 0, byte(i >> 8), byte(i)}, PortGroup: fmt.Sprintf("dvportgroup-%d", i%500)}}})
	}
	return inv
}

// BenchmarkCompute: the pure part alone, 500 port groups + 2000 VMs.
func BenchmarkCompute(b *testing.B) {
	pl, err := NewPlanner(Params{VNI: VNIPolicy{Mode: ModeTag, Category: "torstitch"}, Ports: HostPorts{Mode: PortsLLDP}})
	if err != nil {
		b.Fatal(err)
	}
	inv := benchInventory()
	var res Result
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res = pl.Compute(inv, res.Bindings)
	}
	if len(res.Bindings) != 500 || len(res.MACs) != 2000 || len(res.Conflicts) != 0 {
		b.Fatalf("got %d bindings, %d MACs, conflicts %q", len(res.Bindings), len(res.MACs), res.Conflicts)
	}
}
