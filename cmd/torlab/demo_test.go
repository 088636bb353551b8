package main

import (
	"testing"

	"github.com/torstitch/torstitch/testbed/clab"
)

func TestStitchVMsForThePingMatrix(t *testing.T) {
	topo, err := clab.Load("../../containerlab/stitch.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	vms := labVMs(topo)
	want := map[string]vm{
		"vm11":  {"vm11", "10100", "192.168.100.11"},
		"vm12":  {"vm12", "10200", "192.168.200.12"},
		"vm21":  {"vm21", "10100", "192.168.100.21"},
		"vm22":  {"vm22", "10200", "192.168.200.22"},
		"kvm11": {"kvm11", "10100", "192.168.100.31"},
		"kvm12": {"kvm12", "10200", "192.168.200.32"},
	}
	if len(vms) != len(want) {
		t.Fatalf("VMs %v", vms)
	}
	for _, v := range vms {
		if want[v.name] != v {
			t.Errorf("VM %+v, want %+v", v, want[v.name])
		}
	}
}
