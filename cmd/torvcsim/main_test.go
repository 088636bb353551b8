package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vdsvlan"
	"github.com/torstitch/torstitch/vtep/l2"
)

// TestTorvcsim builds the command, serves the lab inventory as a separate
// process, and reads it with a vdsvlan watcher through the files it writes.
func TestTorvcsim(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the command; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "torvcsim")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "out")
	cmd := exec.Command(bin, "--inventory", "../../vdsvlan/vcsimlab/testdata/lab.yaml", "--out", out)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})

	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(out, "ready")); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("torvcsim exited early: %v\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready file; stderr:\n%s", stderr.String())
		}
	}
	url, err := os.ReadFile(filepath.Join(out, "url"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout.String()+stderr.String(), "lab-only-password") {
		t.Errorf("password printed:\n%s%s", stdout.String(), stderr.String())
	}
	cfg := vdsvlan.Config{
		URL: strings.TrimSpace(string(url)), UsernameFile: filepath.Join(out, "username"),
		PasswordFile: filepath.Join(out, "password"), CAFile: filepath.Join(out, "ca.pem"),
		VNIPolicy: vdsvlan.VNIPolicy{Mode: "tag", Category: "torstitch"},
		HostPorts: vdsvlan.HostPorts{Mode: "lldp"},
	}
	w, err := vdsvlan.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.Run(ctx) }()
	var s vdsvlan.Snapshot
	for end := time.Now().Add(time.Minute); !s.Valid; {
		select {
		case <-w.Changed():
		case <-time.After(100 * time.Millisecond):
		}
		s = w.Snapshot()
		if time.Now().After(end) {
			t.Fatalf("no sync: %+v", s.Status)
		}
	}
	ports := []l2.PortRef{{Switch: "tor1", Port: "eth1"}, {Switch: "tor1", Port: "eth2"}, {Switch: "tor2", Port: "eth1"}, {Switch: "tor2", Port: "eth2"}}
	want := []l2.Binding{{VLAN: 100, VNI: 10100, Ports: ports}, {VLAN: 200, VNI: 10200, Ports: ports},
		{VLAN: 300, VNI: 10300, Ports: ports}, {VLAN: 301, VNI: 10300, Ports: ports}}
	if !slices.EqualFunc(s.Bindings, want, func(a, b l2.Binding) bool {
		return a.VLAN == b.VLAN && a.VNI == b.VNI && slices.Equal(a.Ports, b.Ports)
	}) {
		t.Errorf("bindings:\n got %v\nwant %v", s.Bindings, want)
	}
	if len(s.MACs) != 4 {
		t.Errorf("MACs: %+v", s.MACs)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "--inventory and --out are required"},
		{[]string{"--inventory", "x.yaml"}, "--inventory and --out are required"},
		{[]string{"extra"}, "unknown command"},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
	}
	for _, tc := range tests {
		cmd := newCommand()
		cmd.SetArgs(tc.args)
		cmd.SetOut(&strings.Builder{})
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	var out strings.Builder
	cmd := newCommand()
	cmd.SetArgs([]string{"--version"})
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil || !strings.HasPrefix(out.String(), "torvcsim ") {
		t.Errorf("--version: %v %q", err, out.String())
	}
}
