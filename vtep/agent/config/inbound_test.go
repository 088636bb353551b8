package config

import (
	"strings"
	"testing"
	"time"
)

const goodInbound = `
agent:
  name: pair1
  ovsdb_listen: "pssl:6640"
  ovsdb_tls: {ca: /etc/switchca.pem, cert: /etc/agent-cert.pem, key: /etc/agent-key.pem}
switches:
  - {name: tor1, ovsdb: inbound, tls: {peer_cert: /etc/tor1-cert.pem}, probe_interval: 10s}
  - {name: tor2, ovsdb: "ssl:10.0.0.12:6640", tls: {ca: /etc/ca.pem, cert: /etc/c.pem, key: /etc/k.pem, server_name: tor2}}
`

func TestParseInbound(t *testing.T) {
	c, err := Parse([]byte(goodInbound))
	if err != nil {
		t.Fatal(err)
	}
	if c.Agent.OVSDBListen != "pssl:6640" || c.Agent.OVSDBTLS.CA != "/etc/switchca.pem" ||
		c.Switches[0].OVSDB != "inbound" || c.Switches[0].TLS.PeerCert != "/etc/tor1-cert.pem" ||
		time.Duration(c.Switches[0].ProbeInterval) != 10*time.Second || c.Switches[1].TLS.ServerName != "tor2" {
		t.Fatalf("parsed %+v %+v", c.Agent, c.Switches)
	}
}

func TestParseInboundBad(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"no listener", `  ovsdb_listen: "pssl:6640"` + "\n", "", "line 6: switches[0].ovsdb: inbound needs agent.ovsdb_listen"},
		{"bad listener", `"pssl:6640"`, `"ssl:6640"`, `agent.ovsdb_listen: "ssl:6640": unknown protocol "ssl"`},
		{"listener host name", `"pssl:6640"`, `"pssl:agent.example:6640"`, `agent.ovsdb_listen: "pssl:agent.example:6640": "agent.example" is not an IP address`},
		{"pssl without TLS", "  ovsdb_tls: {ca: /etc/switchca.pem, cert: /etc/agent-cert.pem, key: /etc/agent-key.pem}\n", "",
			"pssl needs agent.ovsdb_tls.ca, agent.ovsdb_tls.cert and agent.ovsdb_tls.key"},
		{"pssl without CA", "ca: /etc/switchca.pem, ", "", "pssl needs agent.ovsdb_tls.ca"},
		{"ptcp with TLS", `"pssl:6640"`, `"ptcp:6640"`, "agent.ovsdb_tls: agent.ovsdb_listen \"ptcp:6640\" is ptcp (no TLS)"},
		{"no inbound switch", "ovsdb: inbound, tls: {peer_cert: /etc/tor1-cert.pem}", `ovsdb: "tcp:10.0.0.11:6640"`, `agent.ovsdb_listen: "pssl:6640": no switch has ovsdb: inbound`},
		{"inbound with own CA", "tls: {peer_cert: /etc/tor1-cert.pem}", "tls: {ca: /etc/x.pem}", "switches[0].tls.ca: an inbound switch uses agent.ovsdb_tls"},
		{"probe too short", "probe_interval: 10s", "probe_interval: 100ms", "switches[0].probe_interval: 100ms: want 1s to 10m0s"},
		{"probe too long", "probe_interval: 10s", "probe_interval: 1h", "switches[0].probe_interval: 1h0m0s: want 1s to 10m0s"},
		{"probe unknown key", "probe_interval: 10s", "inactivity_probe: 10s", "switches[0].inactivity_probe: unknown key"},
		{"listen TLS unknown key", "key: /etc/agent-key.pem}", "key: /etc/agent-key.pem, peer_cert: /x}", "agent.ovsdb_tls.peer_cert: unknown key (want ca, cert, key)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(goodInbound, tc.from, tc.to, 1)
			if in == goodInbound {
				t.Fatalf("test input unchanged: %q not found", tc.from)
			}
			_, err := Parse([]byte(in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not contain %q", err, tc.want)
			}
		})
	}
}
