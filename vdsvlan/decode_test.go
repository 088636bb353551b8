package vdsvlan

import (
	"reflect"
	"testing"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/torstitch/torstitch/vdsvlan/desired"
	"github.com/torstitch/torstitch/vtep/l2"
)

func TestDecodeVLAN(t *testing.T) {
	tests := []struct {
		name string
		in   types.BaseDVPortSetting
		want desired.VLANPolicy
	}{
		{"no setting", nil, desired.VLANPolicy{Kind: desired.VLANSingle}},
		{"single", &types.VMwareDVSPortSetting{Vlan: &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: 100}},
			desired.VLANPolicy{Kind: desired.VLANSingle, ID: 100}},
		{"trunk", &types.VMwareDVSPortSetting{Vlan: &types.VmwareDistributedVirtualSwitchTrunkVlanSpec{
			VlanId: []types.NumericRange{{Start: 100, End: 200}, {Start: 300, End: 300}}}},
			desired.VLANPolicy{Kind: desired.VLANTrunk, Ranges: []desired.VLANRange{{Start: 100, End: 200}, {Start: 300, End: 300}}}},
		{"pvlan", &types.VMwareDVSPortSetting{Vlan: &types.VmwareDistributedVirtualSwitchPvlanSpec{PvlanId: 301}},
			desired.VLANPolicy{Kind: desired.VLANPrivate, ID: 301}},
		{"negative", &types.VMwareDVSPortSetting{Vlan: &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: -1}},
			desired.VLANPolicy{Kind: desired.VLANSingle, ID: 1 << 31}},
		{"other setting type", &types.DVPortSetting{}, desired.VLANPolicy{Kind: desired.VLANSingle}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := decodeVLAN(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v want %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeHints(t *testing.T) {
	hints := []types.PhysicalNicHintInfo{
		{Device: "vmnic1", ConnectedSwitchPort: &types.PhysicalNicCdpInfo{DevId: "tor2", PortId: "Ethernet1/1"}},
		{Device: "vmnic0", LldpInfo: &types.LinkLayerDiscoveryProtocolInfo{ChassisId: "00:11:22:33:44:55", PortId: "eth1",
			Parameter: []types.KeyAnyValue{{Key: "System Name", Value: "tor1.lab"}}},
			ConnectedSwitchPort: &types.PhysicalNicCdpInfo{DevId: "ignored", PortId: "x"}},
		{Device: "vmnic2", LldpInfo: &types.LinkLayerDiscoveryProtocolInfo{ChassisId: "00:11:22:33:44:66", PortId: "eth9"}},
		{Device: "vmnic3"}, // nothing heard
		{Device: "vmnic4", ConnectedSwitchPort: &types.PhysicalNicCdpInfo{SystemName: "sw9", PortId: "Gi0/1"}},
	}
	want := []desired.Neighbour{
		{PNIC: "vmnic0", Switch: "tor1.lab", Port: "eth1", Protocol: "lldp"},
		{PNIC: "vmnic1", Switch: "tor2", Port: "Ethernet1/1", Protocol: "cdp"},
		{PNIC: "vmnic2", Switch: "00:11:22:33:44:66", Port: "eth9", Protocol: "lldp"},
		{PNIC: "vmnic4", Switch: "sw9", Port: "Gi0/1", Protocol: "cdp"},
	}
	if got := decodeHints(hints); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestDecodeVM(t *testing.T) {
	unit := int32(7)
	nic := func(mac, pg string) types.BaseVirtualDevice {
		return &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: types.VirtualEthernetCard{
			VirtualDevice: types.VirtualDevice{ControllerKey: 100, UnitNumber: &unit,
				Backing: &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
					Port: types.DistributedVirtualSwitchPortConnection{PortgroupKey: pg}}},
			MacAddress: mac}}}
	}
	std := &types.VirtualE1000{VirtualEthernetCard: types.VirtualEthernetCard{
		VirtualDevice: types.VirtualDevice{Backing: &types.VirtualEthernetCardNetworkBackingInfo{}}, MacAddress: "00:50:56:00:00:09"}}
	p := props{
		"name":         "web1",
		"runtime.host": types.ManagedObjectReference{Type: "HostSystem", Value: "host-1"},
		"config.hardware.device": types.ArrayOfVirtualDevice{VirtualDevice: []types.BaseVirtualDevice{
			&types.VirtualIDEController{}, nic("00:50:56:00:00:01", "dvportgroup-1"), std, nic("bogus", "dvportgroup-2")}},
	}
	got := decodeVM(types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-1"}, p)
	want := desired.VM{Ref: "vm-1", Name: "web1", Host: "host-1",
		NICs: []desired.NIC{{MAC: l2.MustMAC("00:50:56:00:00:01"), PortGroup: "dvportgroup-1"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v want %+v", got, want)
	}
}

// TestApplyMarksSubPathChanges: a change below a watched path (as vCenter
// reports device edits) is not applied blindly but marks the object for a
// re-read; leave drops the object.
func TestApplyMarksSubPathChanges(t *testing.T) {
	vm := types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-1"}
	w := &watch{objs: objects{}}
	refetch := map[types.ManagedObjectReference]bool{}
	entered := w.apply(types.ObjectUpdate{Kind: types.ObjectUpdateKindEnter, Obj: vm, ChangeSet: []types.PropertyChange{
		{Name: "name", Op: types.PropertyChangeOpAssign, Val: "web1"}}}, refetch)
	if !entered || w.objs[vm].str("name") != "web1" || len(refetch) != 0 {
		t.Fatalf("enter: %v %+v %v", entered, w.objs, refetch)
	}
	w.apply(types.ObjectUpdate{Kind: types.ObjectUpdateKindModify, Obj: vm, ChangeSet: []types.PropertyChange{
		{Name: "name", Op: types.PropertyChangeOpAssign, Val: "web2"},
		{Name: "config.hardware.device[4000].backing", Op: types.PropertyChangeOpAssign, Val: nil}}}, refetch)
	if w.objs[vm].str("name") != "web2" || !refetch[vm] {
		t.Fatalf("modify: %+v %v", w.objs, refetch)
	}
	w.apply(types.ObjectUpdate{Kind: types.ObjectUpdateKindLeave, Obj: vm}, refetch)
	if _, ok := w.objs[vm]; ok || refetch[vm] {
		t.Fatalf("leave: %+v %v", w.objs, refetch)
	}
}
