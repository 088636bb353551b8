package evpn

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/l2"
)

// Peer loss: with graceful restart the receiver keeps the routes of a peer
// that went away until the restart time runs out; without it, they go at once.
func TestPeerLoss(t *testing.T) {
	for _, tc := range []struct {
		name string
		gr   bool
	}{{"graceful-restart", true}, {"no-graceful-restart", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			port := netnstest.FreePort(t, "127.0.0.1")
			gr := GracefulRestart{Enabled: tc.gr, RestartTime: 3 * time.Second}
			a, err := New(Config{ASN: 65001, RouterID: ip("10.0.0.1"), ListenAddress: "127.0.0.1", ListenPort: int32(port),
				Neighbors: []Neighbor{{Address: ip("127.0.0.2"), ASN: 65002, Port: 1}}, GracefulRestart: gr}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Start(ctx); err != nil {
				t.Fatal(err)
			}
			var once sync.Once
			stopA := func() { once.Do(func() { _ = a.Stop(ctx) }) }
			t.Cleanup(stopA)
			b := startSpeaker(t, Config{ASN: 65002, RouterID: ip("10.0.0.2"), ListenPort: -1, ConnectRetry: time.Second,
				Neighbors:       []Neighbor{{Address: ip("127.0.0.1"), ASN: 65001, Port: uint16(port), LocalAddress: ip("127.0.0.2")}},
				GracefulRestart: gr})
			mac := l2.MustMAC("02:00:00:00:00:01")
			want := l2.RemoteMAC{VNI: 5000, MAC: mac, VTEP: ip("192.0.2.1")}
			if err := a.SetLocal(ctx, LocalState{MACs: []l2.LocalMAC{{Switch: "tor1", VNI: 5000, MAC: mac, VTEP: want.VTEP}}}); err != nil {
				t.Fatal(err)
			}
			waitRemote(t, b, 10*time.Second, "route at B", hasMAC(want))

			stopA()
			lost := time.Now()
			if tc.gr {
				// Kept (stale) for the restart time, then removed.
				for time.Since(lost) < 1500*time.Millisecond {
					if err := hasMAC(want)(b.Remote()); err != nil {
						t.Fatalf("route dropped %s after peer loss despite graceful restart: %v", time.Since(lost), err)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			waitRemote(t, b, 15*time.Second, "route removed", noMAC(5000, mac))
			if gone := time.Since(lost); !tc.gr && gone > 2*time.Second {
				t.Errorf("without graceful restart the route stayed %s", gone)
			}
		})
	}
}

// Synced turns true when the restart time has passed although the peer
// never came up (clock injected).
func TestSyncedAfterRestartTime(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := startSpeaker(t, Config{ASN: 65001, RouterID: ip("10.0.0.1"), ListenPort: -1, Now: clock,
		Neighbors:       []Neighbor{{Address: ip("127.0.0.9"), ASN: 65002, Port: 1}},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 30 * time.Second}})
	if s.Synced() {
		t.Fatal("synced before End-of-RIB or restart time")
	}
	mu.Lock()
	now = now.Add(29 * time.Second)
	mu.Unlock()
	if s.Synced() {
		t.Fatal("synced before the restart time ran out")
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if !s.Synced() {
		t.Fatal("not synced after the restart time")
	}
	peers, err := s.Peers(context.Background())
	if err != nil || len(peers) != 1 || peers[0].State == "established" {
		t.Errorf("peers = %+v, %v", peers, err)
	}
}
