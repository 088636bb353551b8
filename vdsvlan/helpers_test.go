package vdsvlan_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vdsvlan"
	"github.com/torstitch/torstitch/vdsvlan/vcsimlab"
	"github.com/torstitch/torstitch/vtep/l2"
)

func i32(v int32) *int32 { return &v }

// labSpec: one switch with a PVLAN map, two hosts cabled to tor1/tor2 (LLDP
// on esx1, CDP on esx2, a management NIC to another switch on esx1), single,
// trunk and private-VLAN port groups, one VM.
func labSpec() vcsimlab.Spec {
	return vcsimlab.Spec{
		Switches: []vcsimlab.SwitchSpec{{Name: "DSwitch", Uplinks: []string{"vmnic0", "vmnic1"},
			PVLANs: []vcsimlab.PVLANSpec{{Primary: 300, Secondary: 300, Type: "promiscuous"}, {Primary: 300, Secondary: 301, Type: "isolated"}}}},
		Hosts: []vcsimlab.HostSpec{
			{Name: "esx1", NICs: []vcsimlab.NICSpec{
				{Device: "vmnic0", LLDP: &vcsimlab.NeighbourSpec{Switch: "tor1.lab", Port: "Ethernet1"}},
				{Device: "vmnic1", LLDP: &vcsimlab.NeighbourSpec{Switch: "tor2.lab", Port: "Ethernet1"}},
				{Device: "vmnic2", LLDP: &vcsimlab.NeighbourSpec{Switch: "tor1.lab", Port: "Ethernet48"}}}},
			{Name: "esx2", NICs: []vcsimlab.NICSpec{
				{Device: "vmnic0", CDP: &vcsimlab.NeighbourSpec{Switch: "tor1.lab", Port: "Ethernet2"}},
				{Device: "vmnic1", CDP: &vcsimlab.NeighbourSpec{Switch: "tor2.lab", Port: "Ethernet2"}}}},
		},
		PortGroups: []vcsimlab.PortGroupSpec{
			{Name: "web", VLAN: i32(100), Tags: []string{"vni:10100"}},
			{Name: "db", VLAN: i32(200)},
			{Name: "trunk", Trunk: []string{"100-110"}},
			{Name: "iso", PVLAN: i32(301), Tags: []string{"vni:20300"}},
		},
		VMs: []vcsimlab.VMSpec{{Name: "web1", Host: "esx1", NICs: []vcsimlab.VMNICSpec{{PortGroup: "web", MAC: "00:50:56:00:00:01"}}}},
	}
}

func startLab(t testing.TB, spec vcsimlab.Spec) *vcsimlab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab, err := vcsimlab.Start(ctx, spec, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	return lab
}

// labConfig is a watcher configuration for lab: credentials in files, the
// certificate verified against the lab's CA file, LLDP with name rewrites.
func labConfig(t testing.TB, lab *vcsimlab.Lab) vdsvlan.Config {
	t.Helper()
	dir := t.TempDir()
	user, pass := filepath.Join(dir, "user"), filepath.Join(dir, "pass")
	if err := os.WriteFile(user, []byte(lab.Username+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pass, []byte(lab.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return vdsvlan.Config{
		URL: lab.URL.String(), UsernameFile: user, PasswordFile: pass, CAFile: lab.CAFile,
		VNIPolicy: vdsvlan.VNIPolicy{Mode: "tag", Category: "torstitch"},
		HostPorts: vdsvlan.HostPorts{Mode: "lldp", Rewrite: []vdsvlan.Rewrite{
			{Field: "switch", Match: `\..*$`, Replace: ""},
			{Field: "port", Match: `^Ethernet(\d+)$`, Replace: "eth$1"}}},
		Switches:       map[string][]string{"tor1": nil, "tor2": nil},
		ResyncInterval: time.Minute,
	}
}

// runWatcher starts a watcher and stops it at cleanup.
func runWatcher(t testing.TB, cfg vdsvlan.Config) *vdsvlan.Watcher {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := vdsvlan.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return w
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// waitFor waits until cond holds for the snapshot, or fails after timeout.
func waitFor(t testing.TB, w *vdsvlan.Watcher, timeout time.Duration, what string, cond func(vdsvlan.Snapshot) bool) vdsvlan.Snapshot {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s := w.Snapshot()
		if cond(s) {
			return s
		}
		select {
		case <-w.Changed():
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s; snapshot: valid=%v %d bindings %d MACs conflicts=%q status=%+v",
				timeout, what, s.Valid, len(s.Bindings), len(s.MACs), s.Conflicts, s.Status)
		}
	}
}

var allPorts = mustPorts("tor1:eth1", "tor1:eth2", "tor2:eth1", "tor2:eth2")

func mustPorts(s ...string) []l2.PortRef {
	out := make([]l2.PortRef, 0, len(s))
	for _, v := range s {
		p, err := l2.ParsePortRef(v)
		if err != nil {
			panic(err)
		}
		out = append(out, p)
	}
	return out
}

func binding(vlan l2.VLAN, vni l2.VNI, ports []l2.PortRef) l2.Binding {
	return l2.Binding{VLAN: vlan, VNI: vni, Ports: ports}
}

func hasBinding(s vdsvlan.Snapshot, b l2.Binding) bool {
	return slices.ContainsFunc(s.Bindings, func(x l2.Binding) bool {
		return x.VLAN == b.VLAN && x.VNI == b.VNI && slices.Equal(x.Ports, b.Ports)
	})
}

func macOf(s vdsvlan.Snapshot, mac string) (vdsvlan.VMMAC, bool) {
	m := l2.MustMAC(mac)
	for _, x := range s.MACs {
		if x.MAC == m {
			return x, true
		}
	}
	return vdsvlan.VMMAC{}, false
}
