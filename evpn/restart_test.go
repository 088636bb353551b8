package evpn

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/l2"
)

// A restarting speaker must send its routes before End-of-RIB: the helper
// (B) deletes every stale route the End-of-RIB did not refresh. With
// DeferNeighbors the new incarnation connects only after SetLocal, so B
// keeps all routes throughout the restart; without it, the session comes up
// with an empty table and B drops them (shown here as the failure mode the
// option prevents).
func TestRestartKeepsRoutesAtHelper(t *testing.T) {
	const n = 200
	vtep := ip("192.0.2.1")
	var local LocalState
	for i := range n {
		mac := l2.MAC{0x02, 0, 0, 0, byte(i >> 8), byte(i)}
		local.MACs = append(local.MACs, l2.LocalMAC{Switch: "tor1", VNI: 5000, MAC: mac, VTEP: vtep})
	}
	local.IMET = []IMET{{VNI: 5000, VTEP: vtep}}
	complete := func(st RemoteState) error {
		if len(st.MACs) != n || len(st.Flood) != 1 {
			return fmt.Errorf("%d MACs, %d flood lists (want %d, 1)", len(st.MACs), len(st.Flood), n)
		}
		return nil
	}
	for _, tc := range []struct {
		name     string
		deferred bool
	}{{"deferred-neighbors", true}, {"neighbors-at-start", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			port := netnstest.FreePort(t, "127.0.0.1")
			gr := GracefulRestart{Enabled: true, RestartTime: 30 * time.Second}
			b := startSpeaker(t, Config{ASN: 65002, RouterID: ip("10.0.0.2"), ListenAddress: "127.0.0.1", ListenPort: int32(port),
				Neighbors: []Neighbor{{Address: ip("127.0.0.2"), ASN: 65001, Port: 1}}, GracefulRestart: gr})
			aCfg := Config{ASN: 65001, RouterID: ip("10.0.0.1"), ListenPort: -1, ConnectRetry: time.Second, GracefulRestart: gr,
				DeferNeighbors: tc.deferred,
				Neighbors:      []Neighbor{{Address: ip("127.0.0.1"), ASN: 65002, Port: uint16(port), LocalAddress: ip("127.0.0.2")}}}
			a, err := New(aCfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if err := a.SetLocal(ctx, local); err != nil {
				t.Fatal(err)
			}
			waitRemote(t, b, 10*time.Second, "all routes at B", complete)
			if err := a.Stop(ctx); err != nil {
				t.Fatal(err)
			}

			// Watch B from the stop of A until the new A is in sync.
			var mu sync.Mutex
			var worst RemoteState
			minMACs := n
			watchCtx, stopWatch := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for watchCtx.Err() == nil {
					st := b.Remote()
					mu.Lock()
					if len(st.MACs) < minMACs || len(st.Flood) == 0 {
						minMACs, worst = len(st.MACs), st
					}
					mu.Unlock()
					time.Sleep(2 * time.Millisecond)
				}
			}()
			a2 := startSpeaker(t, aCfg)
			if tc.deferred {
				ps, err := a2.Peers(ctx)
				if err != nil || len(ps) != 1 || ps[0].State != StateHeld {
					t.Fatalf("before SetLocal: peers %+v, %v; want one %q", ps, err, StateHeld)
				}
			} else {
				// The session comes up with an empty table: its End-of-RIB
				// makes B drop the stale routes.
				waitRemote(t, b, 10*time.Second, "stale routes dropped at B", func(st RemoteState) error {
					if len(st.MACs) != 0 {
						return fmt.Errorf("%d MACs", len(st.MACs))
					}
					return nil
				})
			}
			if err := a2.SetLocal(ctx, local); err != nil {
				t.Fatal(err)
			}
			netnstest.Eventually(t, 10*time.Second, 5*time.Millisecond, "B has End-of-RIB from the new A", func() error {
				if got := b.endOfRIBs(ip("127.0.0.2")); got < 2 {
					return fmt.Errorf("%d End-of-RIB markers", got)
				}
				return nil
			})
			waitRemote(t, b, 10*time.Second, "all routes at B after the restart", complete)
			stopWatch()
			wg.Wait()
			if tc.deferred {
				if minMACs < n {
					t.Errorf("B lost routes during the restart: down to %d MACs, flood %v", minMACs, worst.Flood)
				}
				t.Logf("fewest MACs at B during the restart: %d of %d", minMACs, n)
			}
		})
	}
}
