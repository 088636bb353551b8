package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `
agent: {name: pair1, api: "unix:///run/torstitch/t.sock", state_dir: /tmp/x, metrics: "127.0.0.1:9464"}
switches:
  - {name: tor1, ovsdb: "tcp:10.0.0.11:6640"}
  - {name: tor2, ovsdb: "ssl:10.0.0.12:6640", tls: {ca: /etc/ca.pem, cert: /etc/c.pem, key: /etc/k.pem}}
bgp:
  asn: 65000
  router_id: 10.0.0.11
  listen_port: -1
  neighbors: [{address: 10.0.0.1, asn: 65000}]
  graceful_restart: {enabled: true, restart_time: 120}
evpn: {route_targets: auto, replication: source_node}
bindings: [{vlan: 100, vni: 10100, ports: ["tor1:eth1", "tor2:eth1"]}, {vlan: 0, vni: 10000, ports: ["tor1:eth2"]}]
`

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Agent.Mode != Independent || len(c.Switches) != 2 || c.BGP.ASN != 65000 || *c.BGP.ListenPort != -1 || !c.EVPN.RouteTargets.Auto {
		t.Fatalf("parsed %+v", c)
	}
	sc, err := c.Speaker()
	if err != nil || sc.ListenPort != -1 || sc.GracefulRestart.RestartTime.Seconds() != 120 || !sc.DeferNeighbors ||
		time.Duration(c.BGP.StartupWait) != DefaultStartupWait {
		t.Fatalf("speaker config %+v %v", sc, err)
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		name, from, to, want string
	}{
		{"unknown key with its line", "evpn: {", "evpn: {colour: blue, ", "line 12: evpn.colour: unknown key (want route_targets, replication, service_nodes)"},
		{"unknown top-level key", "bindings:", "bindingz:", "bindingz: unknown key"},
		{"bad router id", "router_id: 10.0.0.11", "router_id: 10.0.0.300", `line 8: bgp.router_id: "10.0.0.300": not an IPv4 address`},
		{"bad neighbor IP", "address: 10.0.0.1,", "address: banana,", `line 10: bgp.neighbors[0].address: "banana": not an IP address`},
		{"bad endpoint protocol", `"tcp:10.0.0.11:6640"`, `"http:10.0.0.11:6640"`, `unknown protocol "http"`},
		{"bad endpoint port", `"tcp:10.0.0.11:6640"`, `"tcp:10.0.0.11:99999"`, `port "99999" is not 1-65535`},
		{"VLAN 4095 reserved", "vlan: 100", "vlan: 4095", "VLAN 4095 out of range 0-4094"},
		{"VLAN 5000", "vlan: 100", "vlan: 5000", "VLAN 5000 out of range"},
		{"VNI 0", "vni: 10100", "vni: 0", "VNI 0 out of range"},
		{"VNI too big", "vni: 10100", "vni: 16777216", "VNI 16777216 out of range"},
		{"switch not in pair", `"tor2:eth1"]`, `"tor3:eth1"]`, `switch "tor3" is not in this pair`},
		{"port without switch", `"tor2:eth1"]`, `"eth1"]`, `port "eth1": want SWITCH:PORT`},
		{"three switches", "bgp:", "  - {name: tor3, ovsdb: \"unix:/x\"}\nbgp:", "want one switch or a pair, got 3"},
		{"bad mode", "metrics:", "mode: mlag, metrics:", `agent.mode: "mlag"`},
		{"route targets", "route_targets: auto", "route_targets: sometimes", `"sometimes" is not auto`},
		{"service node without nodes", "replication: source_node", "replication: service_node", "needs evpn.service_nodes"},
		{"multicast service node", "replication: source_node", "replication: service_node, service_nodes: [239.1.1.1]", `evpn.service_nodes[0]: "239.1.1.1": not a unicast IPv4 address`},
		{"IPv6 service node", "replication: source_node", "replication: service_node, service_nodes: [\"2001:db8::1\"]", `evpn.service_nodes[0]: "2001:db8::1": not a unicast IPv4 address`},
		{"connect retry too short", "listen_port: -1", "listen_port: -1\n  connect_retry: 100ms", "bgp.connect_retry: 100ms: want 1s to 10m"},
		{"negative startup wait", "listen_port: -1", "listen_port: -1\n  startup_wait: -5s", "bgp.startup_wait: -5s: want 0 (default 30s) to 10m"},
		{"tcp API without TLS", `api: "unix:///run/torstitch/t.sock"`, `api: "tcp://0.0.0.0:8443"`, "needs api_tls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(good, tc.from, tc.to, 1)
			if in == good {
				t.Fatalf("test input unchanged: %q not found", tc.from)
			}
			_, err := Parse([]byte(in))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("error %v does not name the file", err)
	}
	p := filepath.Join(t.TempDir(), "empty.yaml")
	_ = os.WriteFile(p, nil, 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty config: %v", err)
	}
}

func TestParseBFD(t *testing.T) {
	for _, tc := range []struct {
		name, tor1     string
		enabled        bool
		minRx, minTx   time.Duration
		tor2Rx, tor2Tx time.Duration
	}{
		{"default: off, default timers", `{name: tor1, ovsdb: "tcp:10.0.0.11:6640"}`, false, 300 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, 100 * time.Millisecond},
		{"enabled, default timers", `{name: tor1, ovsdb: "tcp:10.0.0.11:6640", bfd: {enabled: true}}`, true, 300 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, 100 * time.Millisecond},
		{"timers set", `{name: tor1, ovsdb: "tcp:10.0.0.11:6640", bfd: {enabled: true, min_rx: 1s, min_tx: 50ms}}`, true, time.Second, 50 * time.Millisecond, 300 * time.Millisecond, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(strings.Replace(good, `{name: tor1, ovsdb: "tcp:10.0.0.11:6640"}`, tc.tor1, 1)))
			if err != nil {
				t.Fatal(err)
			}
			b, b2 := c.Switches[0].BFD, c.Switches[1].BFD
			if b.Enabled != tc.enabled || time.Duration(b.MinRx) != tc.minRx || time.Duration(b.MinTx) != tc.minTx ||
				b2.Enabled || time.Duration(b2.MinRx) != tc.tor2Rx || time.Duration(b2.MinTx) != tc.tor2Tx {
				t.Fatalf("tor1 bfd %+v, tor2 bfd %+v", b, b2)
			}
		})
	}
}
