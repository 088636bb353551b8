package vcsimlab

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/mo"
)

func i32(v int32) *int32 { return &v }

// smallSpec is a two-host lab with one switch, single/trunk/PVLAN port groups
// and two VMs.
func smallSpec() Spec {
	return Spec{
		Switches: []SwitchSpec{{Name: "DSwitch", PVLANs: []PVLANSpec{{300, 300, "promiscuous"}, {300, 301, "isolated"}}}},
		Hosts: []HostSpec{
			{Name: "esx1", NICs: []NICSpec{{Device: "vmnic0", LLDP: &NeighbourSpec{"tor1", "eth1"}}, {Device: "vmnic1", LLDP: &NeighbourSpec{"tor2", "eth1"}}}},
			{Name: "esx2", NICs: []NICSpec{{Device: "vmnic0", CDP: &NeighbourSpec{"tor1", "eth2"}}, {Device: "vmnic1", CDP: &NeighbourSpec{"tor2", "eth2"}}}},
		},
		PortGroups: []PortGroupSpec{
			{Name: "web", VLAN: i32(100), Tags: []string{"vni:10100"}},
			{Name: "trunk", Trunk: []string{"100-110"}},
			{Name: "iso", PVLAN: i32(301)},
		},
		VMs: []VMSpec{{Name: "web1", Host: "esx1", NICs: []VMNICSpec{{PortGroup: "web", MAC: "00:50:56:00:00:01"}}}},
	}
}

func TestStartBuildsInventory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := Start(ctx, smallSpec(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var vm mo.VirtualMachine
	v, err := l.vm("web1")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Properties(ctx, v.Reference(), []string{"name", "runtime.host", "config.hardware.device"}, &vm); err != nil {
		t.Fatal(err)
	}
	t.Logf("vm %s host %v devices %d", vm.Name, vm.Runtime.Host, len(vm.Config.Hardware.Device))
}

func TestLoadSpec(t *testing.T) {
	s, err := LoadSpec("testdata/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Hosts) != 2 || len(s.PortGroups) != 5 || len(s.VMs) != 5 || len(s.Switches[0].PVLANs) != 3 {
		t.Errorf("unexpected spec: %+v", s)
	}
	bad := []struct{ doc, want string }{
		{"hosts: [{name: a, colour: red}]", "field colour not found"},
		{"switches: [{name: s}]\nport_groups: [{name: p, vlan: 1, pvlan: 2}]", "set one of vlan, trunk, pvlan"},
		{"port_groups: [{name: p}]", "unknown switch"},
		{"switches: [{name: s}]\nport_groups: [{name: p, trunk: [x-1]}]", "trunk range"},
		{"vms: [{name: v, host: nope}]", "unknown host"},
	}
	for _, tc := range bad {
		path := filepath.Join(t.TempDir(), "s.yaml")
		if err := os.WriteFile(path, []byte(tc.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSpec(path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.doc, err, tc.want)
		}
	}
}
