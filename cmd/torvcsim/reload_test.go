package main

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/torstitch/torstitch/vdsvlan/vcsimlab"
)

type fakeSim struct{ calls []string }

func (f *fakeSim) SetPortGroupVLAN(_ context.Context, pg vcsimlab.PortGroupSpec) error {
	f.calls = append(f.calls, "vlan "+pg.Name+" "+fmtVLAN(pg))
	return nil
}

func (f *fakeSim) MoveVM(_ context.Context, name, host string) error {
	f.calls = append(f.calls, "move "+name+" "+host)
	return nil
}

func vlan(v int32) *int32 { return &v }

func TestReload(t *testing.T) {
	base := vcsimlab.Spec{
		PortGroups: []vcsimlab.PortGroupSpec{{Name: "a", VLAN: vlan(100)}, {Name: "t", Trunk: []string{"100"}}},
		VMs:        []vcsimlab.VMSpec{{Name: "vm1", Host: "esx1"}},
	}
	tests := []struct {
		name  string
		edit  func(s *vcsimlab.Spec)
		calls []string
	}{
		{"unchanged", func(*vcsimlab.Spec) {}, nil},
		{"vlan", func(s *vcsimlab.Spec) { s.PortGroups[0].VLAN = vlan(300) }, []string{"vlan a 300"}},
		{"trunk", func(s *vcsimlab.Spec) { s.PortGroups[1].Trunk = []string{"100", "300"} }, []string{"vlan t trunk [100 300]"}},
		{"move", func(s *vcsimlab.Spec) { s.VMs[0].Host = "esx2" }, []string{"move vm1 esx2"}},
		{"new objects ignored", func(s *vcsimlab.Spec) {
			s.PortGroups = append(s.PortGroups, vcsimlab.PortGroupSpec{Name: "new", VLAN: vlan(5)})
			s.VMs = append(s.VMs, vcsimlab.VMSpec{Name: "vm9", Host: "esx1"})
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := base
			next.PortGroups = slices.Clone(base.PortGroups)
			next.VMs = slices.Clone(base.VMs)
			tt.edit(&next)
			sim := &fakeSim{}
			served, err := reload(context.Background(), sim, base, next, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sim.calls, tt.calls) {
				t.Errorf("calls %q, want %q", sim.calls, tt.calls)
			}
			// Reloading the same file again changes nothing.
			sim.calls = nil
			if _, err := reload(context.Background(), sim, served, next, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil || len(sim.calls) != 0 {
				t.Errorf("second reload: calls %q, err %v", sim.calls, err)
			}
			if *base.PortGroups[0].VLAN != 100 || base.VMs[0].Host != "esx1" {
				t.Errorf("reload modified its input: %+v", base)
			}
		})
	}
}
