package evpn

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
)

func TestNewValidatesConfig(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	empty := filepath.Join(dir, "empty")
	os.WriteFile(pw, []byte("  secret \nignored\n"), 0o600)
	os.WriteFile(empty, []byte("\n"), 0o600)
	good := func() Config {
		return Config{ASN: 65000, RouterID: ip("10.0.0.1"), Neighbors: []Neighbor{{Address: ip("10.0.0.2"), ASN: 65001, PasswordFile: pw}}}
	}
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		wantErr string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no asn", func(c *Config) { c.ASN = 0 }, "asn: must be set"},
		{"router id v6", func(c *Config) { c.RouterID = ip("::1") }, "router_id"},
		{"bad port", func(c *Config) { c.ListenPort = -2 }, "listen_port"},
		{"no listen ok", func(c *Config) { c.ListenPort = -1 }, ""},
		{"bad listen address", func(c *Config) { c.ListenAddress = "nope" }, "listen_address"},
		{"restart time too long", func(c *Config) { c.GracefulRestart.RestartTime = 2 * time.Hour }, "graceful_restart.restart_time"},
		{"neighbor without address", func(c *Config) { c.Neighbors[0].Address = netip.Addr{} }, "neighbors[0].address: must be set"},
		{"duplicate neighbor", func(c *Config) { c.Neighbors = append(c.Neighbors, c.Neighbors[0]) }, "duplicate neighbor"},
		{"neighbor asn", func(c *Config) { c.Neighbors[0].ASN = 0 }, "neighbors[0] (10.0.0.2).asn"},
		{"missing password file", func(c *Config) { c.Neighbors[0].PasswordFile = filepath.Join(dir, "nope") }, "password_file"},
		{"empty password file", func(c *Config) { c.Neighbors[0].PasswordFile = empty }, "is empty"},
		{"multihop on ibgp", func(c *Config) { c.Neighbors[0].ASN = 65000; c.Neighbors[0].MultihopTTL = 2 }, "multihop_ttl"},
		{"rr client on ebgp", func(c *Config) { c.Neighbors[0].RouteReflectorClient = true }, "route_reflector_client"},
		{"bad rt vni", func(c *Config) {
			c.RouteTargets.VNIs = map[l2.VNI]VNIRouteTargets{0: {Import: []RouteTarget{mustRouteTarget("1:1")}}}
		}, "route_targets[0]"},
		{"rt import twice", func(c *Config) {
			rt := []RouteTarget{mustRouteTarget("1:1")}
			c.RouteTargets.VNIs = map[l2.VNI]VNIRouteTargets{1: {Import: rt}, 2: {Import: rt}}
		}, "given for VNIs 1 and 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mod(&c)
			s, err := New(c, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if s.nbrs[0].password != "secret" {
					t.Errorf("password = %q, want first line trimmed", s.nbrs[0].password)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
