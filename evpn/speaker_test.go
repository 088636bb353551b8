package evpn

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/l2"
)

// pair starts two in-process speakers on loopback: A listens, B connects.
func pair(t *testing.T, asnA, asnB uint32) (a, b *Speaker) {
	t.Helper()
	port := netnstest.FreePort(t, "127.0.0.1")
	a = startSpeaker(t, Config{ASN: asnA, RouterID: ip("10.0.0.1"), ListenAddress: "127.0.0.1", ListenPort: int32(port),
		Neighbors:       []Neighbor{{Address: ip("127.0.0.2"), ASN: asnB, Port: 1}}, // never dials a real peer
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 30 * time.Second}})
	b = startSpeaker(t, Config{ASN: asnB, RouterID: ip("10.0.0.2"), ListenPort: -1, ConnectRetry: time.Second,
		Neighbors:       []Neighbor{{Address: ip("127.0.0.1"), ASN: asnA, Port: uint16(port), LocalAddress: ip("127.0.0.2")}},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 30 * time.Second}})
	return a, b
}

func TestTwoSpeakersExchangeRoutes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		asnA, asnB uint32
	}{{"ebgp", 65001, 65002}, {"ibgp", 65000, 65000}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t, tc.asnA, tc.asnB)
			ctx := context.Background()
			vtepA, vtepB := ip("192.0.2.1"), ip("192.0.2.2")
			mac1, mac2 := l2.MustMAC("02:00:00:00:00:01"), l2.MustMAC("02:00:00:00:00:02")
			err := a.SetLocal(ctx, LocalState{
				IMET: []IMET{{VNI: 5000, VTEP: vtepA}, {VNI: 70000, VTEP: vtepA}},
				MACs: []l2.LocalMAC{
					{Switch: "tor1", VNI: 5000, MAC: mac1, IP: ip("10.1.0.1"), VTEP: vtepA},
					{Switch: "tor2", VNI: 5000, MAC: mac1, IP: ip("10.1.0.1"), VTEP: vtepA}, // anycast pair: one route
					{Switch: "tor1", VNI: 70000, MAC: mac2, VTEP: vtepA},
				}})
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Stats().Advertised; got != 4 {
				t.Errorf("advertised %d routes, want 4 (2 type-3, 2 type-2)", got)
			}
			t.Cleanup(func() { t.Logf("B stats %+v", b.Stats()) })
			waitRemote(t, b, 5*time.Second, "routes at B", both(
				hasMAC(l2.RemoteMAC{VNI: 5000, MAC: mac1, IP: ip("10.1.0.1"), VTEP: vtepA}),
				hasMAC(l2.RemoteMAC{VNI: 70000, MAC: mac2, VTEP: vtepA}),
				floodIs(5000, vtepA), floodIs(70000, vtepA)))
			// Routes to one of B's own VTEPs (an earlier incarnation's, say)
			// are never remote at B: not as MACs, not in flood lists.
			if err := b.SetLocal(ctx, LocalState{VTEPs: []netip.Addr{vtepA}}); err != nil {
				t.Fatal(err)
			}
			waitRemote(t, b, 5*time.Second, "own VTEP left out at B", both(
				noMAC(5000, mac1), noMAC(70000, mac2), floodIs(5000), floodIs(70000)))
			if err := b.SetLocal(ctx, LocalState{}); err != nil {
				t.Fatal(err)
			}
			waitRemote(t, b, 5*time.Second, "routes at B again", both(
				hasMAC(l2.RemoteMAC{VNI: 5000, MAC: mac1, IP: ip("10.1.0.1"), VTEP: vtepA}), floodIs(5000, vtepA)))
			netnstest.Eventually(t, 10*time.Second, 20*time.Millisecond, "B synced", func() error {
				if !b.Synced() {
					return errNotYet
				}
				return nil
			})

			// The MAC moves to B: B advertises sequence 1 and wins at A.
			if err := b.SetLocal(ctx, LocalState{IMET: []IMET{{VNI: 5000, VTEP: vtepB}},
				MACs: []l2.LocalMAC{{Switch: "tor3", VNI: 5000, MAC: mac1, VTEP: vtepB}}}); err != nil {
				t.Fatal(err)
			}
			waitRemote(t, a, 10*time.Second, "moved MAC at A", both(
				hasMAC(l2.RemoteMAC{VNI: 5000, MAC: mac1, VTEP: vtepB, Seq: 1}), floodIs(5000, vtepB)))
			// A yields: it stops advertising mac1, so B sees no remote mac1.
			waitRemote(t, b, 10*time.Second, "A withdrew mac1", noMAC(5000, mac1))
			if st := a.Stats(); st.LocalWins != 1 {
				t.Errorf("A local wins = %d, want 1 (mac2 only)", st.LocalWins)
			}

			// Withdraw everything from A.
			if err := a.SetLocal(ctx, LocalState{}); err != nil {
				t.Fatal(err)
			}
			waitRemote(t, b, 10*time.Second, "withdrawn at B", both(noMAC(70000, mac2), floodIs(5000), floodIs(70000)))
			peers, err := a.Peers(ctx)
			if err != nil || len(peers) != 1 || peers[0].State != "established" || peers[0].Received == 0 {
				t.Errorf("A peers = %+v, %v; want one established peer with received routes", peers, err)
			}
		})
	}
}

type sentinel string

func (s sentinel) Error() string { return string(s) }

const errNotYet = sentinel("not yet")

// Our speaker as iBGP route reflector: B's routes reach C through A.
func TestRouteReflectorClient(t *testing.T) {
	port := netnstest.FreePort(t, "127.0.0.1")
	gr := GracefulRestart{Enabled: true, RestartTime: 30 * time.Second}
	startSpeaker(t, Config{ASN: 65000, RouterID: ip("10.0.0.1"), ListenAddress: "127.0.0.1", ListenPort: int32(port),
		Neighbors: []Neighbor{
			{Address: ip("127.0.0.2"), ASN: 65000, Port: 1, RouteReflectorClient: true},
			{Address: ip("127.0.0.3"), ASN: 65000, Port: 1, RouteReflectorClient: true},
		}, GracefulRestart: gr})
	client := func(id, local string) *Speaker {
		return startSpeaker(t, Config{ASN: 65000, RouterID: ip(id), ListenPort: -1, ConnectRetry: time.Second,
			Neighbors:       []Neighbor{{Address: ip("127.0.0.1"), ASN: 65000, Port: uint16(port), LocalAddress: ip(local)}},
			GracefulRestart: gr})
	}
	b, c := client("10.0.0.2", "127.0.0.2"), client("10.0.0.3", "127.0.0.3")
	mac := l2.MustMAC("02:00:00:00:00:0b")
	if err := b.SetLocal(context.Background(), LocalState{IMET: []IMET{{VNI: 100, VTEP: ip("192.0.2.2")}},
		MACs: []l2.LocalMAC{{Switch: "tor1", VNI: 100, MAC: mac, VTEP: ip("192.0.2.2")}}}); err != nil {
		t.Fatal(err)
	}
	waitRemote(t, c, 20*time.Second, "reflected routes at C", both(
		hasMAC(l2.RemoteMAC{VNI: 100, MAC: mac, VTEP: ip("192.0.2.2")}), floodIs(100, ip("192.0.2.2"))))
}
