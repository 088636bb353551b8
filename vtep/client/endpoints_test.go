package client

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// TestRealOVSDBTCPAndSSL writes through tcp: and ssl: endpoints of a real
// ovsdb-server (the SSL one verifying both sides against a test CA).
func TestRealOVSDBTCPAndSSL(t *testing.T) {
	pki := vteptest.NewPKI(t)
	tcpPort, sslPort := netnstest.FreePort(t, "127.0.0.1"), netnstest.FreePort(t, "127.0.0.1")
	s := vteptest.StartOVSDB(t,
		fmt.Sprintf("--remote=ptcp:%d:127.0.0.1", tcpPort),
		fmt.Sprintf("--remote=pssl:%d:127.0.0.1", sslPort),
		"--private-key="+pki.ServerKey, "--certificate="+pki.ServerCert, "--ca-cert="+pki.CA)
	withForeign(s)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"tcp", Config{Name: "tor1", Endpoint: fmt.Sprintf("tcp:127.0.0.1:%d", tcpPort)}},
		{"ssl", Config{Name: "tor1", Endpoint: fmt.Sprintf("ssl:127.0.0.1:%d", sslPort),
			TLS: TLSFiles{CA: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startClientConfig(t, tc.cfg)
			// Write over this endpoint: remove everything torstitch owns, then restore it.
			if res := reconcile(t, c, &plan.Desired{}); res.Transactions == 0 && tc.name == "ssl" {
				t.Fatal("nothing written over ssl")
			}
			checkDump(t, s, lines("bind tor1 eth3 300 theirs", "ls theirs key=7000 mode=[] owner=",
				"ucast theirs 02:ff:00:00:00:01 -> vxlan_over_ipv4/192.0.2.77"))
			if res := reconcile(t, c, desiredBase()); res.Transactions == 0 {
				t.Fatal("nothing written")
			}
			checkDump(t, s, baseDump)
		})
	}
	// A client whose CA does not match the server's certificate is refused.
	other := vteptest.NewPKI(t)
	c, err := New(Config{Name: "tor1", Endpoint: fmt.Sprintf("ssl:127.0.0.1:%d", sslPort), MinBackoff: 20 * time.Millisecond,
		TLS: TLSFiles{CA: other.CA, Cert: other.ClientCert, Key: other.ClientKey}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	go func() { _ = c.Run(ctx) }()
	waitFor(t, "TLS failure reported", 10*time.Second, func() bool {
		return strings.Contains(c.Status().LastError, "certificate")
	})
	if c.Connected() {
		t.Fatal("connected with an untrusted certificate")
	}
}

func TestEndpointValidation(t *testing.T) {
	for _, tc := range []struct {
		ep   string
		ok   bool
		tls  TLSFiles
		want string
	}{
		{"unix:/run/db.sock", true, TLSFiles{}, ""},
		{"tcp:10.0.0.1:6640", true, TLSFiles{}, ""},
		{"tcp:10.0.0.1", false, TLSFiles{}, "missing port"},
		{"tcp::6640", false, TLSFiles{}, "missing host"},
		{"udp:10.0.0.1:6640", false, TLSFiles{}, `unknown protocol "udp"`},
		{"10.0.0.1:6640", false, TLSFiles{}, "unknown protocol"},
		{"ssl:10.0.0.1:6640", false, TLSFiles{}, "ssl needs tls.cert, tls.key and tls.ca (or tls.peer_cert)"},
		{"ssl:10.0.0.1:6640", false, TLSFiles{CA: "/nonexistent/ca.pem", Cert: "c", Key: "k"}, "reading CA file"},
	} {
		_, err := New(Config{Endpoint: tc.ep, TLS: tc.tls}, nil)
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("New(%q) error = %v, want ok=%v %q", tc.ep, err, tc.ok, tc.want)
		}
	}
}
