package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/torstitch/torstitch/testbed"
)

const small = "testdata/cli.clab.yml"

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestInspectJSONOfUndeployedLab(t *testing.T) {
	out, err := run(t, "inspect", "--run-root", t.TempDir(), "--name", "tb-cli-none", "-o", "json", small)
	if err != nil {
		t.Fatal(err)
	}
	var info testbed.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("inspect -o json is not JSON: %v\n%s", err, out)
	}
	if info.Lab != "tb-cli-none" || info.Deployed || len(info.Nodes) != 3 {
		t.Fatalf("info = %+v", info)
	}
	for _, n := range info.Nodes {
		if n.State != "absent" || n.Netns != "tb-tb-cli-none-"+n.Name {
			t.Errorf("node %+v", n)
		}
	}
}

func TestCLIErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.clab.yml")
	if err := os.WriteFile(bad, []byte("name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: i, ports: [1]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"inspect", "-o", "yaml", small}, `unknown output format "yaml"`},
		{[]string{"deploy", bad}, `line 4: node a: containerlab field "ports" is not supported`},
		{[]string{"inspect", "/nonexistent.clab.yml"}, "no such file"},
		{[]string{"deploy"}, "accepts 1 arg"},
		{[]string{"deploy", "--node-filter", "zz", small}, `no node "zz"`},
	}
	for _, tt := range tests {
		_, err := run(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("torlab %v: error %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestDeployInspectDestroy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	args := []string{"--name", "tb-cli"}
	t.Cleanup(func() { _, _ = run(t, append([]string{"destroy"}, append(args, small)...)...) })
	out, err := run(t, append([]string{"deploy"}, append(args, small)...)...)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	if !strings.Contains(out, "h1") || !strings.Contains(out, "eth1=10.98.0.1/24") {
		t.Errorf("deploy table:\n%s", out)
	}
	out, err = run(t, append([]string{"inspect", "-o", "json"}, append(args, small)...)...)
	if err != nil {
		t.Fatal(err)
	}
	var info testbed.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, n := range info.Nodes {
		states[n.Name] = n.State
	}
	if !info.Deployed || states["h1"] != "running" || states["h2"] != "up" || states["sw"] != "up" {
		t.Errorf("states %v deployed %v", states, info.Deployed)
	}
	if out, err := run(t, append([]string{"exec"}, append(args, small, "h2", "ping", "-c1", "-W2", "10.98.0.1")...)...); err != nil {
		t.Errorf("exec ping: %v\n%s", err, out)
	}
	if _, err := run(t, append([]string{"destroy"}, append(args, small)...)...); err != nil {
		t.Fatal(err)
	}
	out, _ = run(t, append([]string{"inspect"}, append(args, small)...)...)
	if !strings.Contains(out, "not deployed") || strings.Contains(out, "running") {
		t.Errorf("after destroy:\n%s", out)
	}
}
