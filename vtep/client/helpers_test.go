package client

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startClient runs a client against endpoint until the test ends and waits
// for its first sync.
func startClient(t testing.TB, name, endpoint string, batch int) *Client {
	t.Helper()
	return startClientConfig(t, Config{Name: name, Endpoint: endpoint, BatchRows: batch})
}

func startClientConfig(t testing.TB, cfg Config) *Client {
	t.Helper()
	cfg.MinBackoff, cfg.MaxBackoff, cfg.Probe = 20*time.Millisecond, 200*time.Millisecond, time.Second
	c, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func desiredBase() *plan.Desired {
	return &plan.Desired{
		LogicalSwitches: []plan.LogicalSwitch{{VNI: 10100}, {VNI: 10200, ReplicationMode: plan.SourceNode}},
		Bindings:        []plan.PortBinding{{Port: "eth1", VLAN: 100, VNI: 10100}, {Port: "eth2", VLAN: 100, VNI: 10100}, {Port: "eth1", VLAN: 200, VNI: 10200}},
		RemoteMACs: []l2.RemoteMAC{
			{VNI: 10100, MAC: l2.MustMAC("02:00:00:00:01:01"), VTEP: ip("192.0.2.1")},
			{VNI: 10100, MAC: l2.MustMAC("02:00:00:00:01:02"), IP: ip("10.1.0.2"), VTEP: ip("192.0.2.2")},
			{VNI: 10200, MAC: l2.MustMAC("02:00:00:00:02:01"), VTEP: ip("192.0.2.1")},
		},
		Flood: map[l2.VNI][]netip.Addr{10100: {ip("192.0.2.1"), ip("192.0.2.2")}, 10200: {ip("192.0.2.1")}},
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lines(s ...string) string { return strings.Join(s, "\n") }
