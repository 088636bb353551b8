package evpn

import (
	"context"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/torstitch/torstitch/evpn/evpntest"
	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/l2"
)

// genLocal returns n local MACs on vni behind vtep, plus the type-3 route.
func genLocal(n int, vni l2.VNI, vtep netip.Addr) LocalState {
	st := LocalState{IMET: []IMET{{VNI: vni, VTEP: vtep}}, MACs: make([]l2.LocalMAC, n)}
	for i := range n {
		mac := l2.MAC{0x02, 0x10, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		st.MACs[i] = l2.LocalMAC{Switch: "tor1", VNI: vni, MAC: mac, VTEP: vtep}
	}
	return st
}

// established polls the sender's view of its sessions and returns when
// each listed neighbor came up.
func established(b *testing.B, tx *Speaker, addrs ...netip.Addr) map[netip.Addr]time.Time {
	up := map[netip.Addr]time.Time{}
	deadline := time.Now().Add(60 * time.Second)
	for len(up) < len(addrs) {
		if time.Now().After(deadline) {
			b.Fatalf("sessions not established within 60s: %v", up)
		}
		peers, err := tx.Peers(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range peers {
			if _, ok := up[p.Address]; !ok && p.State == "established" {
				up[p.Address] = time.Now()
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return up
}

// BenchmarkReceive: FRR (a separate process, VTEP with n local MACs) sends
// n type-2 routes to our speaker and, in the same run, to a second FRR.
// Reported: time from session up until our speaker delivers all of them as
// remote MACs (a Remote() snapshot included), and until the second FRR has
// them all in its kernel FDB.
func BenchmarkReceive(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) { benchReceive(b, n) })
	}
}

func benchReceive(b *testing.B, n int) {
	netnstest.RequireIsolated(b, "/usr/lib/frr/bgpd", "vtysh", "ss")
	ctx := context.Background()
	br := netnstest.NewBridge(b, "ev-br3", "10.99.3.10/24")
	srcNS, dstNS := netnstest.New(b, "bsrc"), netnstest.New(b, "bdst")
	br.Attach(srcNS, "ev-bsrc", "eth0", "10.99.3.3/24")
	br.Attach(dstNS, "ev-bdst", "eth0", "10.99.3.2/24")
	rxAddr, srcAddr, dstAddr := ip("10.99.3.10"), "10.99.3.3", "10.99.3.2"

	src := evpntest.StartFRR(b, srcNS, evpntest.FRRConfig{ASN: 65030, RouterID: srcAddr, VTEP: srcAddr,
		VNIs: []uint32{frrVNI}, Neighbors: []evpntest.FRRNeighbor{
			{Address: rxAddr.String(), ASN: 65012, Shutdown: true}, {Address: dstAddr, ASN: 65011, Shutdown: true}}})
	dst := evpntest.StartFRR(b, dstNS, evpntest.FRRConfig{ASN: 65011, RouterID: dstAddr, VTEP: dstAddr,
		VNIs: []uint32{frrVNI}, Neighbors: []evpntest.FRRNeighbor{{Address: srcAddr, ASN: 65030}}})
	rx := startSpeaker(b, Config{ASN: 65012, RouterID: rxAddr, ListenAddress: rxAddr.String(), ConnectRetry: time.Second,
		Neighbors:       []Neighbor{{Address: ip(srcAddr), ASN: 65030}},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 60 * time.Second}})

	t0 := time.Now()
	macs := make([]string, n)
	for i := range n {
		macs[i] = l2.MAC{0x02, 0x10, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}.String()
	}
	src.AddLocalMACs(b, frrVNI, macs)
	netnstest.Eventually(b, 120*time.Second, 500*time.Millisecond, "sender FRR has all local routes", func() error {
		c, err := src.LocalMACRoutes(ctx)
		if err == nil && c < n {
			err = fmt.Errorf("%d of %d", c, n)
		}
		return err
	})
	b.Logf("sender FRR loaded %d local MACs in %s", n, time.Since(t0).Round(time.Millisecond))

	type result struct {
		who            string
		up, first, end time.Time
		err            error
	}
	done := make(chan result, 2)
	go func() { // our speaker: session up, then all n MACs delivered through Remote()
		var r result
		r.who = "speaker"
		deadline := time.Now().Add(120 * time.Second)
		for r.up.IsZero() && time.Now().Before(deadline) {
			if ps, err := rx.Peers(ctx); err == nil && len(ps) == 1 && ps[0].State == "established" {
				r.up = time.Now()
			}
			time.Sleep(5 * time.Millisecond)
		}
		for time.Now().Before(deadline) {
			select {
			case <-rx.Changed():
			case <-time.After(time.Second):
			}
			c := rx.Stats().RemoteMACs
			if c > 0 && r.first.IsZero() {
				r.first = time.Now()
			}
			if c >= n && len(rx.Remote().MACs) >= n {
				r.end = time.Now()
				done <- r
				return
			}
		}
		r.err = fmt.Errorf("up %v, only %d of %d remote MACs", !r.up.IsZero(), rx.Stats().RemoteMACs, n)
		done <- r
	}()
	go func() { // FRR: TCP session up, then n entries (+ the flood entry) in the kernel FDB
		var r result
		r.who = "frr"
		deadline := time.Now().Add(120 * time.Second)
		for r.up.IsZero() && time.Now().Before(deadline) {
			if up, err := dst.TCPUp(ctx, srcAddr); err == nil && up {
				r.up = time.Now()
			}
			time.Sleep(5 * time.Millisecond)
		}
		for time.Now().Before(deadline) {
			c, err := dst.CountRemoteFDB(ctx, frrVNI)
			if c > 1 && r.first.IsZero() {
				r.first = time.Now()
			}
			if err == nil && c >= n+1 {
				r.end = time.Now()
				done <- r
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		r.err = fmt.Errorf("up %v, FRR FDB incomplete", !r.up.IsZero())
		done <- r
	}()
	cpu0 := processCPU()
	for _, a := range []string{rxAddr.String(), dstAddr} {
		if err := src.SetShutdown(ctx, a, false); err != nil {
			b.Fatal(err)
		}
	}
	for range 2 {
		r := <-done
		if r.err != nil {
			b.Fatalf("%s: %v", r.who, r.err)
		}
		d := r.end.Sub(r.up)
		b.ReportMetric(d.Seconds(), r.who+"-s")
		b.ReportMetric(float64(n)/d.Seconds(), r.who+"-routes/s")
		b.Logf("%-7s has all %d type-2 routes %s after session up: %.0f routes/s (first route after %s)", r.who, n,
			d.Round(time.Millisecond), float64(n)/d.Seconds(), r.first.Sub(r.up).Round(time.Millisecond))
		if r.who == "speaker" {
			cpu := processCPU() - cpu0
			b.ReportMetric(cpu.Seconds(), "speaker-cpu-s")
			b.Logf("speaker process CPU time while receiving: %s (%.0f routes per CPU second)", cpu.Round(time.Millisecond), float64(n)/cpu.Seconds())
		}
	}
}

// processCPU is the CPU time (user + system) used by this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAdvertise10k: 10k local MACs handed to SetLocal with the session
// up; reported: SetLocal time (routes in our RIB) and time until the peer
// (a second speaker) has them all.
func BenchmarkAdvertise10k(b *testing.B) {
	const n = 10_000
	port := netnstest.FreePort(b, "127.0.0.1")
	tx := startSpeaker(b, Config{ASN: 65020, RouterID: ip("10.0.0.20"), ListenAddress: "127.0.0.1", ListenPort: int32(port),
		Neighbors:       []Neighbor{{Address: ip("127.0.0.2"), ASN: 65021, Port: 1}},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 60 * time.Second}})
	rx := startSpeaker(b, Config{ASN: 65021, RouterID: ip("10.0.0.21"), ListenPort: -1, ConnectRetry: time.Second,
		Neighbors:       []Neighbor{{Address: ip("127.0.0.1"), ASN: 65020, Port: uint16(port), LocalAddress: ip("127.0.0.2")}},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 60 * time.Second}})
	established(b, tx, ip("127.0.0.2"))
	st := genLocal(n, 5000, ip("192.0.2.1"))
	ctx := context.Background()
	cpu0 := processCPU()
	t0 := time.Now()
	if err := tx.SetLocal(ctx, st); err != nil {
		b.Fatal(err)
	}
	dSet := time.Since(t0)
	deadline := time.After(60 * time.Second)
	for rx.Stats().RemoteMACs < n {
		select {
		case <-rx.Changed():
		case <-deadline:
			b.Fatalf("peer has %d of %d", rx.Stats().RemoteMACs, n)
		}
	}
	dAll := time.Since(t0)
	cpu := processCPU() - cpu0
	b.ReportMetric(cpu.Seconds(), "cpu-s")
	b.ReportMetric(float64(n)/dSet.Seconds(), "setlocal-routes/s")
	b.ReportMetric(float64(n)/dAll.Seconds(), "at-peer-routes/s")
	b.Logf("advertise %d local MACs: SetLocal %s (%.0f routes/s), at the peer after %s (%.0f routes/s); CPU of both speakers %s",
		n, dSet.Round(time.Millisecond), float64(n)/dSet.Seconds(), dAll.Round(time.Millisecond), float64(n)/dAll.Seconds(), cpu.Round(time.Millisecond))

	// Steady state: an identical SetLocal changes nothing.
	t1 := time.Now()
	if err := tx.SetLocal(ctx, st); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(time.Since(t1).Seconds()*1000, "noop-setlocal-ms")
}

// BenchmarkWanted10k: the pure planning step of SetLocal for 10k local MACs
// (steady state: nothing changes).
func BenchmarkWanted10k(b *testing.B) {
	st := genLocal(10_000, 5000, ip("192.0.2.1"))
	rts := newRTPolicy(65000, RouteTargets{})
	mob := newMobility(5, 180*time.Second)
	none := func(l2.MACKey) *remoteBest { return nil }
	prev := wanted(st, rts, mob, none, time.Unix(0, 0)).routes
	for b.Loop() {
		res := wanted(st, rts, mob, none, time.Unix(1, 0))
		if add, del := diffRoutes(prev, res.routes); len(add)+len(del) != 0 {
			b.Fatal("steady state planned changes")
		}
	}
}
