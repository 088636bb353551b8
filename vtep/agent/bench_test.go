package agent

import (
	"context"

	"github.com/go-logr/logr"
	libovsdb "github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/ovsdb"

	"fmt"
	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/vtepdb"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/torstitch/torstitch/evpn"
	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*q)]
}

// BenchmarkAgent measures the agent end to end against two real
// ovsdb-servers and an in-process GoBGP EVPN peer (run with -benchtime 1x):
// torctl bind → rows on both switches; a local MAC row → the type-2 at the
// peer; 10k type-2 routes at the peer → Ucast_Macs_Remote on both switches.
func BenchmarkAgent(b *testing.B) {
	netnstest.RequireIsolated(b, "ovsdb-server", "vtep-ctl")
	tor1, tor2 := vteptest.StartOVSDB(b), vteptest.StartOVSDB(b)
	var ports []string
	for i := 1; i <= 40; i++ {
		ports = append(ports, fmt.Sprintf("eth%d", i))
	}
	tor1.AddSwitch("tor1", "10.0.0.11", ports...)
	tor2.AddSwitch("tor2", "10.0.0.12", ports...)
	port := netnstest.FreePort(b, "127.0.0.1")
	peer, err := evpn.New(evpn.Config{ASN: 65020, RouterID: netip.MustParseAddr("10.0.0.20"), ListenAddress: "127.0.0.1",
		ListenPort: int32(port), GracefulRestart: evpn.GracefulRestart{Enabled: true},
		Neighbors: []evpn.Neighbor{{Address: netip.MustParseAddr("127.0.0.2"), ASN: 65001, Port: 1}}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := peer.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer peer.Stop(context.Background())
	dir := b.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
agent: {name: bench, api: "unix://%s/api.sock", state_dir: %s}
switches: [{name: tor1, ovsdb: "unix:%s"}, {name: tor2, ovsdb: "unix:%s"}]
bgp: {asn: 65001, router_id: 10.0.0.1, listen_port: -1, graceful_restart: {enabled: true},
      neighbors: [{address: 127.0.0.1, asn: 65020, port: %d, local_address: 127.0.0.2}]}
`, dir, dir, tor1.Sock, tor2.Sock, port)))
	if err != nil {
		b.Fatal(err)
	}
	startAgent := func() (*Agent, func()) {
		a, err := New(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		actx, acancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = a.Run(actx); close(done) }()
		return a, func() { acancel(); <-done }
	}
	a, stopAgent := startAgent()
	defer func() { stopAgent() }()
	netnstest.Eventually(b, 30*time.Second, 10*time.Millisecond, "agent synced with the peer", func() error {
		if !a.speaker.Synced() || !a.sw[0].client.Connected() || !a.sw[1].client.Connected() {
			return fmt.Errorf("not yet")
		}
		return nil
	})

	b.Run("bind-to-rows-both-switches", func(b *testing.B) {
		var lat []time.Duration
		for i := range 30 {
			vlan := l2.VLAN(100 + i)
			start := time.Now()
			if err := a.Bind(ctx, api.BindRequest{VLAN: vlan, VNI: l2.VNI(10100 + i),
				Ports: []string{fmt.Sprintf("tor1:eth%d", i+1), fmt.Sprintf("tor2:eth%d", i+1)}}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			for _, c := range a.sw {
				o, err := c.client.Observed()
				if err != nil || o.Ports[fmt.Sprintf("eth%d", i+1)].VLANBindings[int(vlan)] == "" {
					b.Fatalf("bind returned before %s had the binding", c.name)
				}
			}
		}
		b.ReportMetric(float64(quantile(lat, 0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
	})

	b.Run("local-mac-to-peer-type2", func(b *testing.B) {
		// The switch's side is played by a plain libovsdb client writing
		// Ucast_Macs_Local rows, timed from just before its transaction.
		dbm, err := vtepdb.FullDatabaseModel()
		if err != nil {
			b.Fatal(err)
		}
		discard := logr.Discard()
		hsc, err := libovsdb.NewOVSDBClient(dbm, libovsdb.WithEndpoint(tor1.Endpoint()), libovsdb.WithLogger(&discard))
		if err != nil {
			b.Fatal(err)
		}
		if err := hsc.Connect(ctx); err != nil {
			b.Fatal(err)
		}
		defer hsc.Close()
		o, err := a.sw[0].client.Observed()
		if err != nil {
			b.Fatal(err)
		}
		lsUUID := ""
		for u, ls := range o.Switches {
			if ls.Name == "vni10100" {
				lsUUID = u
			}
		}
		var lat []time.Duration
		for i := range 20 {
			mac := l2.MAC{0x02, 0xaa, 0, 0, 0, byte(i + 1)}
			ops := []ovsdb.Operation{
				{Op: ovsdb.OperationInsert, Table: vtepdb.PhysicalLocatorTable, UUIDName: "loc",
					Row: ovsdb.Row{"encapsulation_type": "vxlan_over_ipv4", "dst_ip": "10.0.0.11"}},
				{Op: ovsdb.OperationInsert, Table: vtepdb.UcastMacsLocalTable,
					Row: ovsdb.Row{"MAC": mac.String(), "logical_switch": ovsdb.UUID{GoUUID: lsUUID}, "locator": ovsdb.UUID{GoUUID: "loc"}, "ipaddr": ""}},
			}
			if i > 0 { // the locator exists now: reference it by its index
				ops = ops[1:]
				ops[0].Row["locator"] = ovsdb.UUID{GoUUID: locUUID(b, a)}
			}
			start := time.Now()
			res, err := hsc.Transact(ctx, ops...)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
				b.Fatal(err)
			}
			netnstest.Eventually(b, 10*time.Second, 100*time.Microsecond, "type-2 at the peer", func() error {
				for _, m := range peer.Remote().MACs {
					if m.MAC == mac && m.VNI == 10100 {
						return nil
					}
				}
				return fmt.Errorf("not yet")
			})
			lat = append(lat, time.Since(start))
		}
		b.ReportMetric(float64(quantile(lat, 0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
	})

	b.Run("10k-type2-to-both-switches", func(b *testing.B) {
		const n = 10000
		st := evpn.LocalState{IMET: []evpn.IMET{{VNI: 10100, VTEP: netip.MustParseAddr("10.0.0.20")}}}
		for i := range n {
			st.MACs = append(st.MACs, l2.LocalMAC{VNI: 10100, MAC: l2.MAC{0x02, 0xbb, 0, byte(i >> 16), byte(i >> 8), byte(i)},
				VTEP: netip.MustParseAddr("10.0.0.20")})
		}
		if err := a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1", "tor2:eth1"}}); err != nil {
			b.Fatal(err)
		}
		// The routes are at the peer before the agent's session comes up:
		// stop the agent, load the peer, start the agent, and time from the
		// session's establishment.
		stopAgent()
		if err := peer.SetLocal(ctx, st); err != nil {
			b.Fatal(err)
		}
		a, stopAgent = startAgent()
		netnstest.Eventually(b, 30*time.Second, time.Millisecond, "session established", func() error {
			ps, err := a.speaker.Peers(ctx)
			if err != nil || len(ps) != 1 || ps[0].State != "established" {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		start := time.Now()
		var inRIB time.Time // when the agent's speaker holds all n routes
		netnstest.Eventually(b, 60*time.Second, 2*time.Millisecond, "10k remote MACs on both switches", func() error {
			if inRIB.IsZero() && a.speaker.Stats().RemoteMACs >= n {
				inRIB = time.Now()
			}
			for _, s := range a.sw {
				if got := s.client.RemoteCount(); got < n {
					return fmt.Errorf("%s has %d", s.name, got)
				}
			}
			return nil
		})
		took := time.Since(start)
		b.ReportMetric(took.Seconds(), "s")
		b.ReportMetric(n/took.Seconds(), "routes/s")
		b.ReportMetric(inRIB.Sub(start).Seconds(), "bgp-transfer-s")
		b.ReportMetric(time.Since(inRIB).Seconds()*1000, "rib-to-both-switches-ms")
	})
}

// locUUID finds tor1's own locator (10.0.0.11) as the agent sees it.
func locUUID(b *testing.B, a *Agent) string {
	var u string
	netnstest.Eventually(b, 5*time.Second, time.Millisecond, "locator visible", func() error {
		o, err := a.sw[0].client.Observed()
		if err != nil {
			return err
		}
		for id, l := range o.Locators {
			if l.DstIP == "10.0.0.11" {
				u = id
				return nil
			}
		}
		return fmt.Errorf("no locator 10.0.0.11")
	})
	return u
}
