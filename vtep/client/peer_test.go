package client

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

func TestCertMatchesName(t *testing.T) {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: "tor1 id:0cff98a9-c3e5-4959-988c-028f8a787473"},
		DNSNames:    []string{"tor1 id:0cff98a9-c3e5-4959-988c-028f8a787473", "*.tor.example", "sw7.example"},
		IPAddresses: []net.IP{net.ParseIP("10.0.0.11")}}
	for name, want := range map[string]bool{
		"tor1": true, "TOR1": true, "tor": false, "id:0cff98a9-c3e5-4959-988c-028f8a787473": false,
		"a.tor.example": true, "sw7.example": true, "10.0.0.11": true, "10.0.0.12": false, "": false,
	} {
		if got := CertMatchesName(c, name); got != want {
			t.Errorf("CertMatchesName(%q) = %v, want %v", name, got, want)
		}
	}
	if got := PeerName(c); got != "tor1" {
		t.Errorf("PeerName = %q", got)
	}
}

func TestParseListen(t *testing.T) {
	for _, tc := range []struct {
		in, addr string
		tls      bool
		err      string
	}{
		{"pssl:6640", ":6640", true, ""},
		{"ptcp:127.0.0.1:0", "127.0.0.1:0", false, ""},
		{"pssl:[::1]:6640", "[::1]:6640", true, ""},
		{"pssl:tor.example:6640", "", false, "not an IP address"},
		{"ssl:1.2.3.4:6640", "", false, `unknown protocol "ssl"`},
		{"ptcp:70000", "", false, "not 0-65535"},
		{"pssl:6640:10.0.0.1", "", false, "write pssl:10.0.0.1:6640 (IP first"},
		{"ptcp:", "", false, "want ptcp"},
	} {
		addr, useTLS, err := ParseListen(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseListen(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || addr != tc.addr || useTLS != tc.tls {
			t.Errorf("ParseListen(%q) = %q, %v, %v; want %q, %v", tc.in, addr, useTLS, err, tc.addr, tc.tls)
		}
	}
}

// TestOutboundOVSPKI: the failure (ovs-pki certificates name the
// switch, no IP SAN: "cannot validate certificate for 127.0.0.1") is gone;
// tls.server_name and tls.peer_cert are honoured; a wrong name or pin is
// refused, never ignored.
func TestOutboundOVSPKI(t *testing.T) {
	pki := vteptest.NewOVSPKI(t)
	agent := pki.Sign("agent", "agent", "controller")
	tor1 := pki.Sign("tor1", "tor1", "switch")
	other := pki.Sign("other", "tor1", "switch")
	port := netnstest.FreePort(t, "127.0.0.1")
	s := vteptest.StartOVSDB(t, fmt.Sprintf("--remote=pssl:%d:127.0.0.1", port),
		"--private-key="+tor1.Key, "--certificate="+tor1.Cert, "--ca-cert="+pki.ControllerCA())
	withForeign(s)
	ep := fmt.Sprintf("ssl:127.0.0.1:%d", port)
	files := func(serverName, pin string) TLSFiles {
		return TLSFiles{CA: pki.SwitchCA(), Cert: agent.Cert, Key: agent.Key, ServerName: serverName, PeerCert: pin}
	}
	for _, tc := range []struct {
		name, sw string
		files    TLSFiles
		ok       bool
		err      string
	}{
		{"switch name", "tor1", files("", ""), true, ""},
		{"server_name", "rack7-a", files("tor1", ""), true, ""},
		{"pinned", "rack7-a", TLSFiles{Cert: agent.Cert, Key: agent.Key, PeerCert: tor1.Cert}, true, ""},
		{"wrong name", "tor2", files("", ""), false, "does not name tor2 or 127.0.0.1"},
		{"wrong server_name", "tor1", files("tor9", ""), false, "does not name tor9"},
		{"pin mismatch", "tor1", files("", other.Cert), false, "not the pinned tls.peer_cert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ok {
				c := startClientConfig(t, Config{Name: tc.sw, Endpoint: ep, TLS: tc.files})
				if _, err := c.ObservedWithoutRemote(); err != nil {
					t.Fatal(err)
				}
				return
			}
			c, err := New(Config{Name: tc.sw, Endpoint: ep, TLS: tc.files, MinBackoff: 20 * time.Millisecond}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			go func() { _ = c.Run(ctx) }()
			waitFor(t, "TLS refusal", 10*time.Second, func() bool { return strings.Contains(c.Status().LastError, tc.err) })
			if c.Connected() {
				t.Fatal("connected")
			}
		})
	}
}

func TestInboundMatchAndParse(t *testing.T) {
	var clients []*Client
	for _, n := range []string{"tor1", "tor2"} {
		c, err := New(Config{Name: n, Endpoint: Inbound}, nil)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	l, err := NewListener(ListenerConfig{Address: "ptcp:127.0.0.1:0"}, clients, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rows         []string
		name, reason string
	}{
		{[]string{"tor1"}, "tor1", ""},
		{[]string{"other", "tor2"}, "tor2", ""},
		{nil, "", RefusedUnknown},
		{[]string{"tor3"}, "tor3", RefusedUnknown},
		{[]string{"tor1", "tor2"}, "tor1,tor2", RefusedAmbiguous},
	} {
		name, reason, err := l.match(tc.rows, nil, time.Now())
		if name != tc.name || reason != tc.reason || (err != nil) != (tc.reason != "") {
			t.Errorf("match(%v) = %q, %q, %v; want %q, %q", tc.rows, name, reason, err, tc.name, tc.reason)
		}
	}
	for _, tc := range []struct {
		result, rpcErr string
		names          []string
		err            string
	}{
		{`[{"rows":[{"name":"tor1"},{"name":"x"}]}]`, `null`, []string{"tor1", "x"}, ""},
		{`[{"rows":[]}]`, ``, []string{}, ""},
		{`[{"error":"unknown table","details":"no table Physical_Switch"}]`, `null`, nil, "unknown table: no table Physical_Switch"},
		{`null`, `"unknown database"`, nil, `OVSDB error reading Physical_Switch: "unknown database"`},
		{`{"rows":[]}`, `null`, nil, "not an OVSDB transact reply"},
	} {
		names, err := parseIdentify([]byte(tc.result), []byte(tc.rpcErr))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseIdentify(%s, %s) error %v, want %q", tc.result, tc.rpcErr, err, tc.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(names) != fmt.Sprint(tc.names) {
			t.Errorf("parseIdentify(%s) = %v, %v; want %v", tc.result, names, err, tc.names)
		}
	}
	if _, err := NewListener(ListenerConfig{Address: "pssl:127.0.0.1:0"}, clients, nil); err == nil || !strings.Contains(err.Error(), "pssl needs ca, cert and key") {
		t.Errorf("pssl without TLS files: %v", err)
	}
}
