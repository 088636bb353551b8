package evpn

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/torstitch/torstitch/evpn/evpntest"
	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/l2"
)

// BenchmarkIntakeFloor separates what the speaker adds to route intake from
// what GoBGP v3 itself costs (issue 18). A fabric (a bare GoBGP server in the
// same process, preloaded with n type-2 routes before each session, as the
// shared instrument's evpnload does) serves two receivers in turn, in the
// same run, each over its own fresh session:
//
//   - gobgp: a bare GoBGP v3 server (the version the speaker embeds) with no
//     watcher: its table counted by GetTable. This is the floor the speaker
//     cannot go below while GoBGP receives the routes.
//   - speaker: our Speaker, counted by its remote MACs (decoded, best route
//     chosen, route targets imported).
//   - frr: FRR 8.4 as an EVPN VTEP (kernel VXLAN device, advertise-all-vni)
//     in its own network namespace, counted by the remote entries of its
//     kernel FDB (netlink events, dated as they are read): the peer issue 18
//     compares toragent with, here against the same fabric in the same run.
//
// For each: time from its session Established (for FRR: as the fabric sees
// it) to all n routes, then the fabric withdraws everything in one call and
// the time until none are left; the process CPU of both phases (fabric
// included, the same for all; FRR's own daemons are other processes, so its
// figure is the fabric's and the FDB counter's alone). Rounds rotate the
// order of the receivers.
func BenchmarkIntakeFloor(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) { benchIntakeFloor(b, n) })
	}
}

// intakeReceiver is one side under test: start connects it to the fabric,
// count reports the routes it holds (-1 before Established).
type intakeReceiver struct {
	name     string
	start    func(b *testing.B) (count func() int, stop func())
	external bool // another process: its memory is not this one's heap
}

func benchIntakeFloor(b *testing.B, n int) {
	netnstest.RequireIsolated(b, "/usr/lib/frr/bgpd", "vtysh")
	ctx := context.Background()
	frrNS := netnstest.New(b, "frrfl")
	netnstest.Link(b, frrNS, "ev-frrfl", fabricFRRSide+"/24", "eth0", floorFRR+"/24")
	port := netnstest.FreePort(b, "127.0.0.1")
	gr := GracefulRestart{Enabled: true, RestartTime: 60 * time.Second}
	fabric := newFabric(b, port, n)
	frr := startFloorFRR(b, frrNS, port)
	receivers := []intakeReceiver{
		{name: "gobgp", start: func(b *testing.B) (func() int, func()) { return bareGoBGP(b, port) }},
		{name: "speaker", start: func(b *testing.B) (func() int, func()) {
			rx, err := New(Config{ASN: 65031, RouterID: ip("10.0.0.31"), ListenPort: -1, ConnectRetry: time.Second,
				Neighbors:       []Neighbor{{Address: ip("127.0.0.1"), ASN: 65030, Port: uint16(port), LocalAddress: ip("127.0.0.2")}},
				GracefulRestart: gr}, testLogger(b))
			if err != nil {
				b.Fatal(err)
			}
			if err := rx.Start(ctx); err != nil {
				b.Fatal(err)
			}
			est := false
			count := func() int {
				if !est { // Peers counts GoBGP's RIBs: not on every poll
					ps, err := rx.Peers(ctx)
					if est = err == nil && len(ps) == 1 && ps[0].State == "established"; !est {
						return -1
					}
				}
				return rx.Stats().RemoteMACs
			}
			return count, func() {
				if err := rx.Stop(ctx); err != nil {
					b.Errorf("stop: %v", err)
				}
			}
		}},
		{name: "frr", start: func(b *testing.B) (func() int, func()) { return frr.start(b, fabric) }, external: true},
	}
	// Per receiver, every round: the benchmark log keeps ten lines, so the
	// rounds are summed up at the end (each figure listed, and its median).
	type figures struct{ install, withdraw, cpu, heap []float64 }
	got := map[string]*figures{}
	for i := 0; i < b.N; i++ {
		order := append(slices.Clone(receivers[i%len(receivers):]), receivers[:i%len(receivers)]...)
		for _, r := range order {
			f := got[r.name]
			if f == nil {
				f = &figures{}
				got[r.name] = f
			}
			fabric.load(b)
			heap0 := heapInUse()
			cpu0 := processCPU()
			count, stop := r.start(b)
			up, all := waitCount(b, count, func(c int) bool { return c >= n }, r.name+": all routes")
			f.cpu = append(f.cpu, (processCPU() - cpu0).Seconds())
			f.install = append(f.install, all.Sub(up).Seconds())
			if !r.external {
				f.heap = append(f.heap, float64(heapInUse()-heap0)/float64(n))
			}
			t0 := time.Now()
			fabric.withdrawAll(b)
			_, none := waitCount(b, count, func(c int) bool { return c == 0 }, r.name+": every route withdrawn")
			f.withdraw = append(f.withdraw, none.Sub(t0).Seconds())
			stop()
		}
	}
	for _, r := range receivers {
		f := got[r.name]
		b.ReportMetric(median(f.install), r.name+"-install-s")
		b.ReportMetric(median(f.withdraw), r.name+"-withdraw-s")
		b.ReportMetric(median(f.cpu), r.name+"-install-cpu-s")
		heap := ""
		if len(f.heap) > 0 {
			b.ReportMetric(median(f.heap), r.name+"-heap-B/route")
			heap = fmt.Sprintf("; heap in use grew by %.0f B per route (after GC, all routes held)", median(f.heap))
		}
		b.Logf("%-7s n=%d, %d rounds: install %s s after Established (median %.3f s, %.0f routes/s), withdraw %s s (median %.3f s); process CPU during the install %s s%s",
			r.name, n, len(f.install), list(f.install, "%.3f"), median(f.install), float64(n)/median(f.install),
			list(f.withdraw, "%.3f"), median(f.withdraw), list(f.cpu, "%.2f"), heap)
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func list(v []float64, format string) string {
	var b strings.Builder
	for i, x := range v {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, format, x)
	}
	return b.String()
}

// waitCount polls count: it returns when the receiver first was
// Established and when done held. A poll costs O(routes) for the bare GoBGP
// (GetTable counts its destinations), so each pause is ten times the last
// poll (at least 2 ms): polling takes at most about a tenth of the CPU and
// the resolution stays within a tenth of the time measured.
func waitCount(b *testing.B, count func() int, done func(int) bool, what string) (up, at time.Time) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	last := -1
	for time.Now().Before(deadline) {
		t0 := time.Now()
		c := count()
		now := time.Now()
		if c >= 0 && up.IsZero() {
			up = now
		}
		if c >= 0 && done(c) {
			return up, now
		}
		last = c
		time.Sleep(max(2*time.Millisecond, 10*now.Sub(t0)))
	}
	b.Fatalf("%s: not within 5 minutes (last count %d)", what, last)
	return
}

// bareGoBGP starts a GoBGP v3 server that peers with the fabric and counts
// the type-2 destinations of its global EVPN table.
func bareGoBGP(b *testing.B, fabricPort int) (count func() int, stop func()) {
	ctx := context.Background()
	s := server.NewBgpServer(server.LoggerOption(slogAdapter{slog.New(slog.DiscardHandler)}))
	go s.Serve()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65032, RouterId: "10.0.0.32", ListenPort: -1}}); err != nil {
		b.Fatal(err)
	}
	peer := &api.Peer{
		Conf:   &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65030},
		Timers: &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1}},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: evpnFamily, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}}},
		GracefulRestart: &api.GracefulRestart{Enabled: true, RestartTime: 60, NotificationEnabled: true},
		Transport:       &api.Transport{RemotePort: uint32(fabricPort), LocalAddress: "127.0.0.3"},
	}
	if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: peer}); err != nil {
		b.Fatal(err)
	}
	est := false
	count = func() int {
		if !est {
			if err := s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
				est = p.GetState().GetSessionState() == api.PeerState_ESTABLISHED
			}); err != nil || !est {
				return -1
			}
		}
		t, err := s.GetTable(ctx, &api.GetTableRequest{TableType: api.TableType_GLOBAL, Family: evpnFamily})
		if err != nil {
			return -1
		}
		return int(t.NumDestination)
	}
	return count, func() { s.Stop() }
}

// intakeFabric is a bare GoBGP v3 server that serves n type-2 routes
// (genLocal's MACs, as the speaker would advertise them) to the receivers:
// preloaded before each session, withdrawn all at once.
type intakeFabric struct {
	s     *server.BgpServer
	paths []*api.Path
}

func newFabric(b *testing.B, port, n int) *intakeFabric {
	s := fabricServer(b, port, []string{"127.0.0.1", fabricFRRSide},
		passivePeer{"127.0.0.2", 65031}, passivePeer{"127.0.0.3", 65032}, passivePeer{floorFRR, floorFRRASN})
	b.Cleanup(s.Stop)
	return &intakeFabric{s: s, paths: type2Paths(b, n)}
}

type passivePeer struct {
	addr string
	asn  uint32
}

// fabricServer starts a bare GoBGP v3 server (AS 65030) listening on port
// at the listen addresses, with a passive EVPN session for each peer.
func fabricServer(b *testing.B, port int, listen []string, peers ...passivePeer) *server.BgpServer {
	ctx := context.Background()
	s := server.NewBgpServer(server.LoggerOption(slogAdapter{slog.New(slog.DiscardHandler)}))
	go s.Serve()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65030, RouterId: "10.0.0.30",
		ListenPort: int32(port), ListenAddresses: listen}}); err != nil {
		b.Fatal(err)
	}
	for _, nb := range peers {
		if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
			Conf:            &api.PeerConf{NeighborAddress: nb.addr, PeerAsn: nb.asn},
			Transport:       &api.Transport{PassiveMode: true},
			AfiSafis:        []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: evpnFamily, Enabled: true}}},
			GracefulRestart: &api.GracefulRestart{Enabled: true, RestartTime: 60},
		}}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// type2Paths is n type-2 routes (genLocal's MACs, as the speaker would
// advertise them with AS 65030's route targets) as GoBGP API paths.
func type2Paths(b *testing.B, n int) []*api.Path {
	res := wanted(genLocal(n, 5000, ip("192.0.2.1")), newRTPolicy(65030, RouteTargets{}), newMobility(5, 180*time.Second),
		func(l2.MACKey) *remoteBest { return nil }, time.Unix(0, 0))
	var paths []*api.Path
	for _, r := range res.routes {
		if r.Kind == kindMAC {
			paths = append(paths, toAPIPath(r, false))
		}
	}
	if len(paths) != n {
		b.Fatalf("%d type-2 paths, want %d", len(paths), n)
	}
	return paths
}

// load puts every route into the fabric's table (before a session).
func (f *intakeFabric) load(b *testing.B) {
	for _, p := range f.paths {
		if _, err := f.s.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p}); err != nil {
			b.Fatal(err)
		}
	}
}

// withdrawAll deletes every EVPN route of the fabric in one call.
func (f *intakeFabric) withdrawAll(b *testing.B) {
	if err := f.s.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: evpnFamily}); err != nil {
		b.Fatal(err)
	}
}

// The FRR receiver's addresses: the fabric's end of the link and FRR's.
const (
	fabricFRRSide = "10.99.9.1"
	floorFRR      = "10.99.9.2"
	floorFRRASN   = 65033
)

// floorFRRPeer is FRR 8.4 as a VTEP receiving the fabric's routes: its
// neighbor is shut down between rounds, so each round is a fresh session.
type floorFRRPeer struct {
	f *evpntest.FRR
}

func startFloorFRR(b *testing.B, ns *netnstest.Netns, fabricPort int) *floorFRRPeer {
	ns.Run("ip", "route", "add", "192.0.2.0/24", "via", fabricFRRSide) // the routes' next hop (genLocal's VTEP)
	f := evpntest.StartFRR(b, ns, evpntest.FRRConfig{ASN: floorFRRASN, RouterID: floorFRR, VTEP: floorFRR,
		VNIs:      []uint32{5000},
		Neighbors: []evpntest.FRRNeighbor{{Address: fabricFRRSide, ASN: 65030, Port: fabricPort, Shutdown: true}}})
	return &floorFRRPeer{f: f}
}

// start brings FRR's session up and counts the remote MACs of its kernel
// FDB from netlink events (a subscription opened before the session, so
// none is missed; the count is -1 until the fabric sees the session
// Established).
func (p *floorFRRPeer) start(b *testing.B, fabric *intakeFabric) (count func() int, stop func()) {
	ctx := context.Background()
	var mu sync.Mutex
	macs := map[string]bool{}
	var lost error
	updates, done := make(chan netlink.NeighUpdate, 4096), make(chan struct{})
	h := p.f.NS.Handle()
	if err := netlink.NeighSubscribeWithOptions(updates, done, netlink.NeighSubscribeOptions{
		Namespace: &h, ReceiveBufferSize: 256 << 20, ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) { mu.Lock(); lost = err; mu.Unlock() },
	}); err != nil {
		b.Fatal(err)
	}
	go func() {
		for u := range updates {
			if u.Family != unix.AF_BRIDGE || u.IP == nil || len(u.HardwareAddr) != 6 || isZeroMAC(u.HardwareAddr) {
				continue
			}
			mu.Lock()
			switch u.Type {
			case unix.RTM_NEWNEIGH:
				macs[u.HardwareAddr.String()] = true
			case unix.RTM_DELNEIGH:
				delete(macs, u.HardwareAddr.String())
			}
			mu.Unlock()
		}
	}()
	if err := p.f.SetShutdown(ctx, fabricFRRSide, false); err != nil {
		b.Fatal(err)
	}
	est := false
	count = func() int {
		if !est {
			if err := fabric.s.ListPeer(ctx, &api.ListPeerRequest{Address: floorFRR}, func(pe *api.Peer) {
				est = pe.GetState().GetSessionState() == api.PeerState_ESTABLISHED
			}); err != nil || !est {
				return -1
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if lost != nil {
			b.Fatalf("frr: netlink FDB events lost, the count is wrong: %v", lost)
		}
		return len(macs)
	}
	return count, func() {
		if err := p.f.SetShutdown(ctx, fabricFRRSide, true); err != nil {
			b.Errorf("frr: %v", err)
		}
		close(done)
	}
}

func isZeroMAC(m []byte) bool {
	for _, c := range m {
		if c != 0 {
			return false
		}
	}
	return true
}

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkAdvertiseFloor separates what the speaker adds to advertising
// from what GoBGP v3 itself costs (issue 18's advertise target). The same
// receiver (a bare GoBGP v3 server counting its table) gets n type-2 routes
// in the same run from two senders in turn, each over a fresh session that
// is Established before the clock starts:
//
//   - speaker: our Speaker, SetLocal with n local MACs;
//   - gobgp: a bare GoBGP v3 server given the same n paths by AddPath, with
//     as many calls in flight as the speaker keeps (exportWorkers).
//
// Reported: routes/s from the first call until the receiver holds all n.
func BenchmarkAdvertiseFloor(b *testing.B) {
	netnstest.RequireIsolated(b)
	const n = 10_000
	ctx := context.Background()
	st := genLocal(n, 5000, ip("192.0.2.1"))
	paths := type2Paths(b, n)
	senders := []struct {
		name string
		// start listens on port for the receiver; send advertises the n routes.
		start func(b *testing.B, port int) (send func(), stop func())
	}{
		{"speaker", func(b *testing.B, port int) (func(), func()) {
			tx, err := New(Config{ASN: 65030, RouterID: ip("10.0.0.30"), ListenAddress: "127.0.0.1", ListenPort: int32(port),
				Neighbors:       []Neighbor{{Address: ip("127.0.0.3"), ASN: 65032, Port: 1}},
				GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 60 * time.Second}}, testLogger(b))
			if err != nil {
				b.Fatal(err)
			}
			if err := tx.Start(ctx); err != nil {
				b.Fatal(err)
			}
			return func() {
					if err := tx.SetLocal(ctx, st); err != nil {
						b.Fatal(err)
					}
				}, func() {
					if err := tx.Stop(ctx); err != nil {
						b.Errorf("stop: %v", err)
					}
				}
		}},
		{"gobgp", func(b *testing.B, port int) (func(), func()) {
			s := fabricServer(b, port, []string{"127.0.0.1"}, passivePeer{"127.0.0.3", 65032})
			return func() {
				in := make(chan *api.Path)
				var wg sync.WaitGroup
				for range exportWorkers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for p := range in {
							if _, err := s.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p}); err != nil {
								b.Error(err)
							}
						}
					}()
				}
				for _, p := range paths {
					in <- p
				}
				close(in)
				wg.Wait()
			}, s.Stop
		}},
	}
	rates := map[string][]float64{}
	for i := 0; i < b.N; i++ {
		for j := range senders {
			snd := senders[(i+j)%len(senders)]
			port := netnstest.FreePort(b, "127.0.0.1")
			send, stopTx := snd.start(b, port)
			count, stopRx := bareGoBGP(b, port)
			waitCount(b, count, func(c int) bool { return c >= 0 }, snd.name+": session")
			t0 := time.Now()
			send()
			_, all := waitCount(b, count, func(c int) bool { return c >= n }, snd.name+": all routes at the receiver")
			rates[snd.name] = append(rates[snd.name], float64(n)/all.Sub(t0).Seconds())
			stopRx()
			stopTx()
		}
	}
	for _, snd := range senders {
		r := rates[snd.name]
		b.ReportMetric(median(r), snd.name+"-routes/s")
		b.Logf("%-7s n=%d, %d rounds: all at the receiver at %s routes/s from the first call (median %.0f)", snd.name, n, len(r), list(r, "%.0f"), median(r))
	}
}
