package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// refusals counts the listener's refusals by reason.
type refusals struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *refusals) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[reason]++
}

func (r *refusals) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

// inboundClient makes an inbound switch's client and runs it until the test ends.
func inboundClient(t *testing.T, name string, f TLSFiles) *Client {
	t.Helper()
	c, err := New(Config{Name: name, Endpoint: Inbound, TLS: f, Probe: time.Second}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// startListener runs a listener for clients until the test ends and
// returns its port.
func startListener(t *testing.T, cfg ListenerConfig, r *refusals, clients ...*Client) int {
	t.Helper()
	cfg.OnRefused = r.add
	if cfg.IdentifyTimeout == 0 {
		cfg.IdentifyTimeout = 2 * time.Second
	}
	l, err := NewListener(cfg, clients, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := l.Run(ctx); err != nil {
			t.Errorf("listener: %v", err)
		}
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-l.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("listener not ready")
	}
	return l.Addr().(*net.TCPAddr).Port
}

// dialingSwitch starts a real ovsdb-server that connects out to its
// Manager rows, with the certificate cert (trusting the controller CA).
func dialingSwitch(t *testing.T, pki *vteptest.OVSPKI, cert vteptest.Cert) *vteptest.OVSDB {
	t.Helper()
	return vteptest.StartOVSDB(t, "--remote=db:hardware_vtep,Global,managers",
		"--private-key="+cert.Key, "--certificate="+cert.Cert, "--ca-cert="+pki.ControllerCA())
}

// TestInboundOVSPKI: a switch's ovsdb-server dials in over SSL with
// certificates from ovs-pki; the agent side writes through the accepted
// connection, keeps everything over a switch restart (the switch dials
// again), and refuses a third switch, a foreign CA, a pinned-certificate
// mismatch, a name its certificate does not carry, and a second switch
// claiming a connected name, without disturbing the connected one.
func TestInboundOVSPKI(t *testing.T) {
	pki := vteptest.NewOVSPKI(t)
	agentCert := pki.Sign("agent", "agent", "controller")
	tor1Cert := pki.Sign("tor1", "tor1", "switch")
	var ref refusals
	tor1 := inboundClient(t, "tor1", TLSFiles{})
	port := startListener(t, ListenerConfig{Address: "pssl:127.0.0.1:0",
		TLS: TLSFiles{CA: pki.SwitchCA(), Cert: agentCert.Cert, Key: agentCert.Key}}, &ref, tor1)
	manager := fmt.Sprintf("ssl:127.0.0.1:%d", port)

	s := dialingSwitch(t, pki, tor1Cert)
	withForeign(s)
	s.VtepCtl("set-manager", manager)
	waitFor(t, "tor1 dialed in and synced", 20*time.Second, tor1.Connected)
	if ep := tor1.Status().Endpoint; !strings.HasPrefix(ep, "inbound:127.0.0.1:") {
		t.Fatalf("status endpoint %q, want inbound:127.0.0.1:PORT", ep)
	}
	reconcile(t, tor1, desiredBase())
	checkDump(t, s, baseDump)

	// Restart: the switch dials again, the client resyncs, nothing is lost.
	first := tor1.Status().Connections
	s.Restart(false)
	waitFor(t, "tor1 dialed in again", 20*time.Second, func() bool { return tor1.Connected() && tor1.Status().Connections > first })
	if res := reconcile(t, tor1, desiredBase()); res.Transactions != 0 {
		t.Fatalf("after a restart with the database intact: %d transactions, want 0", res.Transactions)
	}
	checkDump(t, s, baseDump)

	// Refused dialers; each is checked to write nothing into its database
	// (its dump stays as seeded) and tor1 to stay connected.
	other := vteptest.NewOVSPKI(t)
	for _, tc := range []struct {
		name, ps, reason string
		cert             func() vteptest.Cert
		trust            string // CA the dialer trusts for the agent's certificate
	}{
		{"third switch", "tor3", RefusedUnknown, func() vteptest.Cert { return pki.Sign("tor3", "tor3", "switch") }, ""},
		{"foreign CA", "tor1", RefusedCertificate, func() vteptest.Cert { return other.Sign("tor1", "tor1", "switch") }, ""},
		{"name not in certificate", "tor1", RefusedCertificate, func() vteptest.Cert { return pki.Sign("tor2", "tor2", "switch") }, ""},
		{"second tor1", "tor1", RefusedDuplicate, func() vteptest.Cert { return pki.Sign("tor1b", "tor1", "switch") }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ref.get(tc.reason)
			d := dialingSwitch(t, pki, tc.cert())
			d.AddSwitch(tc.ps, "192.0.2.200", "eth1")
			want := d.Dump(tc.ps)
			d.VtepCtl("set-manager", manager)
			waitFor(t, tc.reason+" refusal", 20*time.Second, func() bool { return ref.get(tc.reason) > before })
			if got := d.Dump(tc.ps); got != want {
				t.Fatalf("refused switch's database changed:\n%s\nwant:\n%s", got, want)
			}
			if !tor1.Connected() {
				t.Fatal("tor1 lost its connection")
			}
		})
	}
	if res := reconcile(t, tor1, desiredBase()); res.Transactions != 0 {
		t.Fatalf("tor1 after the refusals: %d transactions, want 0", res.Transactions)
	}
}

// TestInboundPinnedCertificate: with tls.peer_cert, only that certificate
// is accepted, even another one of the same name from the same CA.
func TestInboundPinnedCertificate(t *testing.T) {
	pki := vteptest.NewOVSPKI(t)
	agentCert := pki.Sign("agent", "agent", "controller")
	pinned := pki.Sign("pinned", "tor1", "switch")
	otherTor1 := pki.Sign("other", "tor1", "switch")
	var ref refusals
	tor1 := inboundClient(t, "tor1", TLSFiles{PeerCert: pinned.Cert})
	port := startListener(t, ListenerConfig{Address: "pssl:127.0.0.1:0",
		TLS: TLSFiles{CA: pki.SwitchCA(), Cert: agentCert.Cert, Key: agentCert.Key}}, &ref, tor1)

	s := dialingSwitch(t, pki, otherTor1)
	withForeign(s)
	s.VtepCtl("set-manager", fmt.Sprintf("ssl:127.0.0.1:%d", port))
	waitFor(t, "pin mismatch refused", 20*time.Second, func() bool { return ref.get(RefusedCertificate) > 0 })
	if tor1.Connected() {
		t.Fatal("connected with a certificate that is not the pinned one")
	}
	s.Stop()

	s2 := dialingSwitch(t, pki, pinned)
	withForeign(s2)
	s2.VtepCtl("set-manager", fmt.Sprintf("ssl:127.0.0.1:%d", port))
	waitFor(t, "pinned certificate accepted", 20*time.Second, tor1.Connected)
	reconcile(t, tor1, desiredBase())
	checkDump(t, s2, baseDump)
}

// TestInboundBadInput: garbage, a TLS handshake without a certificate and a
// peer that never answers are refused with their reason; a connected switch
// is not disturbed.
func TestInboundBadInput(t *testing.T) {
	pki := vteptest.NewOVSPKI(t)
	agentCert := pki.Sign("agent", "agent", "controller")
	var ref refusals
	tor1 := inboundClient(t, "tor1", TLSFiles{})
	tlsPort := startListener(t, ListenerConfig{Address: "pssl:127.0.0.1:0", IdentifyTimeout: 500 * time.Millisecond,
		TLS: TLSFiles{CA: pki.SwitchCA(), Cert: agentCert.Cert, Key: agentCert.Key}}, &ref, tor1)
	s := dialingSwitch(t, pki, pki.Sign("tor1", "tor1", "switch"))
	withForeign(s)
	s.VtepCtl("set-manager", fmt.Sprintf("ssl:127.0.0.1:%d", tlsPort))
	waitFor(t, "tor1 connected", 20*time.Second, tor1.Connected)
	reconcile(t, tor1, desiredBase())

	// A plain-TCP listener for an unauthenticated switch (tor2).
	var plainRef refusals
	tor2 := inboundClient(t, "tor2", TLSFiles{})
	tcpPort := startListener(t, ListenerConfig{Address: "ptcp:127.0.0.1:0", IdentifyTimeout: 500 * time.Millisecond}, &plainRef, tor2)

	dial := func(port int) net.Conn {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Garbage on both ports.
	for _, port := range []int{tlsPort, tcpPort} {
		c := dial(port)
		_, _ = io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	}
	waitFor(t, "garbage refused (TLS port)", 10*time.Second, func() bool { return ref.get(RefusedHandshake) > 0 })
	waitFor(t, "garbage refused (TCP port)", 10*time.Second, func() bool { return plainRef.get(RefusedNotOVSDB) > 0 })

	// A TLS client without a certificate.
	before := ref.get(RefusedHandshake)
	tc := tls.Client(dial(tlsPort), &tls.Config{InsecureSkipVerify: true}) // the test client, not torstitch
	_ = tc.Handshake()
	_, _ = tc.Read(make([]byte, 1)) // TLS 1.3: the server's refusal arrives after the handshake
	waitFor(t, "handshake without certificate refused", 10*time.Second, func() bool { return ref.get(RefusedHandshake) > before })

	// Peers that never answer the identifying read: plain and after TLS.
	silent := dial(tcpPort)
	waitFor(t, "silent peer refused", 10*time.Second, func() bool { return plainRef.get(RefusedTimeout) > 0 })
	if _, err := silent.Read(make([]byte, 4096)); err != nil {
		t.Fatalf("the agent sent no request to the silent peer: %v", err)
	}
	if tor1.Connected() == false || tor2.Connected() {
		t.Fatalf("tor1 connected=%v (want true), tor2 connected=%v (want false)", tor1.Connected(), tor2.Connected())
	}
	if res := reconcile(t, tor1, desiredBase()); res.Transactions != 0 {
		t.Fatalf("tor1 after bad input: %d transactions, want 0", res.Transactions)
	}
	checkDump(t, s, baseDump)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := tor2.Reconcile(ctx, desiredBase(), plan.Options{}); err == nil {
		t.Fatal("tor2 reconciled without a switch")
	}
}

// TestInboundSilentAfterIdentify: a peer that names itself tor2 and then
// answers nothing (list_dbs, schema, monitor) is dropped after the connect
// timeout without a single write; tor2's name is free again, and the real
// tor2 connects.
func TestInboundSilentAfterIdentify(t *testing.T) {
	c, err := New(Config{Name: "tor2", Endpoint: Inbound, ConnectTimeout: 500 * time.Millisecond}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	var ref refusals
	port := startListener(t, ListenerConfig{Address: "ptcp:127.0.0.1:0"}, &ref, c)

	fake, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	dec := json.NewDecoder(fake)
	var first struct {
		ID     string `json:"id"`
		Method string `json:"method"`
	}
	if err := dec.Decode(&first); err != nil || first.Method != "transact" {
		t.Fatalf("first request %+v, %v; want the identifying transact", first, err)
	}
	fmt.Fprintf(fake, `{"id":%q,"result":[{"rows":[{"name":"tor2"}]}],"error":null}`, first.ID)
	var methods []string
	_ = fake.SetReadDeadline(time.Now().Add(5 * time.Second))
	for { // until the agent side gives up and closes
		var m struct {
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if err := dec.Decode(&m); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the silent peer's connection was not closed within 5 s (connect timeout 500 ms)")
			}
			break
		}
		methods = append(methods, m.Method)
		if m.Method == "transact" {
			t.Fatalf("a write was sent to a switch that never answered: %s", m.Params)
		}
	}
	if len(methods) == 0 || methods[0] != "list_dbs" {
		t.Fatalf("requests seen %v, want list_dbs first", methods)
	}
	waitFor(t, "connect timeout reported", 5*time.Second, func() bool { return strings.Contains(c.Status().LastError, "connecting") })
	if c.Connected() {
		t.Fatal("connected to a silent peer")
	}

	s := vteptest.StartOVSDB(t, "--remote=db:hardware_vtep,Global,managers")
	s.AddSwitch("tor2", "192.0.2.12", "eth1")
	s.VtepCtl("set-manager", fmt.Sprintf("tcp:127.0.0.1:%d", port))
	waitFor(t, "the real tor2 connected", 20*time.Second, c.Connected)
	if n := ref.get(RefusedDuplicate); n != 0 {
		t.Fatalf("%d duplicate refusals: the silent peer's claim was not released", n)
	}
}
