package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

func singleSwitchConfig(t *testing.T, s *vteptest.OVSDB, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
agent: {name: one, api: "unix://%s/api.sock", state_dir: %s}
switches: [{name: tor1, ovsdb: "unix:%s"}]
bindings: [{vlan: 200, vni: 10200, ports: ["tor1:eth2"]}]
%s`, dir, dir, s.Sock, extra)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestAgentRejectsBadInput sends each kind of bad bind/unbind request to a
// running agent: each gets a clear error, the switch is unchanged, and the
// agent keeps working.
func TestAgentRejectsBadInput(t *testing.T) {
	s := vteptest.StartOVSDB(t)
	s.AddSwitch("tor1", "192.0.2.1", "eth1", "eth2")
	r := startAgent(t, singleSwitchConfig(t, s, ""))
	ctx := context.Background()
	if err := r.a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1"}}); err != nil {
		t.Fatal(err)
	}
	before := s.Dump("tor1")
	if !strings.Contains(before, "bind tor1 eth1 100 vni10100") || !strings.Contains(before, "bind tor1 eth2 200 vni10200") {
		t.Fatalf("setup:\n%s", before)
	}
	tests := []struct {
		name   string
		do     func() error
		is     error
		detail string
	}{
		{"VLAN 4095", func() error {
			return r.a.Bind(ctx, api.BindRequest{VLAN: 4095, VNI: 10100, Ports: []string{"tor1:eth1"}})
		}, api.ErrInvalid, "VLAN 4095"},
		{"VLAN 5000", func() error {
			return r.a.Bind(ctx, api.BindRequest{VLAN: 5000, VNI: 10100, Ports: []string{"tor1:eth1"}})
		}, api.ErrInvalid, "VLAN 5000"},
		{"VNI 0", func() error { return r.a.Bind(ctx, api.BindRequest{VLAN: 300, VNI: 0, Ports: []string{"tor1:eth1"}}) }, api.ErrInvalid, "VNI 0"},
		{"VNI 16777216", func() error {
			return r.a.Bind(ctx, api.BindRequest{VLAN: 300, VNI: 16777216, Ports: []string{"tor1:eth1"}})
		}, api.ErrInvalid, "VNI 16777216"},
		{"port the switch lacks", func() error {
			return r.a.Bind(ctx, api.BindRequest{VLAN: 300, VNI: 10300, Ports: []string{"tor1:eth9"}})
		}, api.ErrInvalid, `no port "eth9"`},
		{"switch not in pair", func() error {
			return r.a.Bind(ctx, api.BindRequest{VLAN: 300, VNI: 10300, Ports: []string{"tor9:eth1"}})
		}, api.ErrInvalid, `switch "tor9" is not in this pair`},
		{"VLAN already bound to another VNI (torctl)", func() error {
			return r.a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10999, Ports: []string{"tor1:eth1"}})
		}, api.ErrConflict, "already bound to VNI 10100"},
		{"VLAN already bound to another VNI (config)", func() error {
			return r.a.Bind(ctx, api.BindRequest{VLAN: 200, VNI: 10999, Ports: []string{"tor1:eth2"}})
		}, api.ErrConflict, "already bound to VNI 10200 by config"},
		{"one bad port among good ones", func() error {
			return r.a.Bind(ctx, api.BindRequest{VLAN: 300, VNI: 10300, Ports: []string{"tor1:eth1", "tor1:eth7"}})
		}, api.ErrInvalid, `no port "eth7"`},
		{"unbind a config binding", func() error { return r.a.Unbind(ctx, api.UnbindRequest{VLAN: 200, Ports: []string{"tor1:eth2"}}) }, api.ErrConflict, "bound by config"},
		{"unbind what is not bound", func() error { return r.a.Unbind(ctx, api.UnbindRequest{VLAN: 300, Ports: []string{"tor1:eth1"}}) }, api.ErrInvalid, "not bound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("error = %v, want %v naming %q", err, tc.is, tc.detail)
			}
			if after := s.Dump("tor1"); after != before {
				t.Fatalf("switch changed by a refused request:\n%s\nwas:\n%s", after, before)
			}
		})
	}
	// Still working: a good unbind goes through.
	if err := r.a.Unbind(ctx, api.UnbindRequest{VLAN: 100, Ports: []string{"tor1:eth1"}}); err != nil {
		t.Fatal(err)
	}
	if after := s.Dump("tor1"); strings.Contains(after, "eth1 100") {
		t.Fatalf("unbind not applied:\n%s", after)
	}
}

func TestAgentUnreadablePasswordFile(t *testing.T) {
	s := vteptest.StartOVSDB(t)
	pw := filepath.Join(t.TempDir(), "missing.pw")
	cfg := singleSwitchConfig(t, s, fmt.Sprintf(`bgp: {asn: 65001, router_id: 192.0.2.1, listen_port: -1, neighbors: [{address: 192.0.2.9, asn: 65002, password_file: %s}]}`, pw))
	_, err := New(cfg, nil)
	if err == nil || !strings.Contains(err.Error(), pw) {
		t.Fatalf("error %v does not name the password file", err)
	}
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, nil); err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error leaks the password: %v", err)
	}
}
