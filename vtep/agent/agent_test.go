package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/torstitch/torstitch/evpn/evpntest"
	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// TestMain runs the package's tests inside their own network namespace
// when root, so FRR and the agent's BGP listener never touch the host.
func TestMain(m *testing.M) { os.Exit(netnstest.RunIsolated(m, "ag-t")) }

const (
	frrMAC  = "02:00:00:f0:00:01"
	tor1MAC = "02:00:00:a1:00:01"
)

type pair struct {
	tor1, tor2 *vteptest.OVSDB
	frr        *evpntest.FRR
	cfg        *config.Config
	state      string
}

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// newPair starts two real ovsdb-servers (tor1, tor2) and an FRR VTEP with
// graceful restart, peering over eBGP with the agent's address.
func newPair(t *testing.T) *pair {
	netnstest.RequireIsolated(t, "/usr/lib/frr/bgpd", "vtysh", "ovsdb-server", "vtep-ctl")
	frrNS := netnstest.New(t, "frr")
	netnstest.Link(t, frrNS, "ag-frr", "10.99.5.1/24", "eth0", "10.99.5.2/24")
	frr := evpntest.StartFRR(t, frrNS, evpntest.FRRConfig{ASN: 65002, RouterID: "10.99.5.2", VTEP: "10.99.5.2",
		VNIs: []uint32{10100}, Neighbors: []evpntest.FRRNeighbor{{Address: "10.99.5.1", ASN: 65001}}})
	enableFRRGracefulRestart(t, frr)
	p := &pair{tor1: vteptest.StartOVSDB(t), tor2: vteptest.StartOVSDB(t), frr: frr, state: t.TempDir()}
	p.tor1.AddSwitch("tor1", "10.99.5.11", "eth1", "eth2")
	p.tor2.AddSwitch("tor2", "10.99.5.12", "eth1", "eth2")
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
agent: {name: pair1, api: "unix://%s/api.sock", state_dir: %s, resync: 2s}
switches:
  - {name: tor1, ovsdb: "unix:%s"}
  - {name: tor2, ovsdb: "unix:%s"}
bgp:
  asn: 65001
  router_id: 10.99.5.1
  listen_address: 10.99.5.1
  neighbors: [{address: 10.99.5.2, asn: 65002}]
  graceful_restart: {enabled: true, restart_time: 20}
evpn: {route_targets: auto}
`, p.state, p.state, p.tor1.Sock, p.tor2.Sock)))
	if err != nil {
		t.Fatal(err)
	}
	p.cfg = cfg
	return p
}

// enableFRRGracefulRestart restarts FRR's bgpd with `bgp graceful-restart`,
// so that the agent's speaker keeps FRR's routes while FRR restarts.
func enableFRRGracefulRestart(t *testing.T, f *evpntest.FRR) {
	conf := filepath.Join(f.Dir, "bgpd.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), " no bgp ebgp-requires-policy\n", " no bgp ebgp-requires-policy\n bgp graceful-restart\n bgp graceful-restart restart-time 20\n", 1)
	if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	restartBGPD(t, f)
}

// restartBGPD kills FRR's bgpd without warning and starts it again.
func restartBGPD(t *testing.T, f *evpntest.FRR) {
	pidFile := filepath.Join(f.Dir, "bgpd.pid")
	if b, err := os.ReadFile(pidFile); err == nil {
		_ = exec.Command("kill", "-9", strings.TrimSpace(string(b))).Run()
		netnstest.Eventually(t, 5*time.Second, 10*time.Millisecond, "bgpd gone", func() error {
			if exec.Command("kill", "-0", strings.TrimSpace(string(b))).Run() == nil {
				return fmt.Errorf("bgpd %s still alive", strings.TrimSpace(string(b)))
			}
			return nil
		})
		_ = os.Remove(pidFile)
	}
	f.NS.Run("/usr/lib/frr/bgpd", "-d", "-z", filepath.Join(f.Dir, "zserv.api"), "--vty_socket", f.Dir,
		"-u", "frr", "-g", "frr", "-f", filepath.Join(f.Dir, "bgpd.conf"), "-i", pidFile)
}

// running is an agent started by a test.
type running struct {
	a    *Agent
	stop func()
}

func startAgent(t *testing.T, cfg *config.Config) *running {
	t.Helper()
	a, err := New(cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := a.Run(ctx); err != nil {
			t.Errorf("agent: %v", err)
		}
		close(done)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	// A bind made before a switch is connected is persisted and applied on
	// connection; the tests check the applied case, so they start from there.
	eventually(t, 20*time.Second, "switches connected", func() error {
		for _, s := range a.sw {
			if !s.client.Connected() {
				return fmt.Errorf("%s not connected", s.name)
			}
		}
		return nil
	})
	return &running{a: a, stop: stop}
}

func hasLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}

func eventually(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	netnstest.Eventually(t, d, 20*time.Millisecond, what, cond)
}

func remoteHas(s *vteptest.OVSDB, mac, vtep string) func() error {
	return func() error {
		out := s.VtepCtl("list-remote-macs", "vni10100")
		if !hasLine(out, mac+" -> vxlan_over_ipv4/"+vtep) {
			return fmt.Errorf("%s -> %s not in\n%s", mac, vtep, out)
		}
		return nil
	}
}

func frrFDBHas(f *evpntest.FRR, mac, dst string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l, err := f.RemoteFDB(ctx, 10100)
		if err != nil {
			return err
		}
		for _, e := range l {
			if e.MAC == mac && e.Dst == dst {
				return nil
			}
		}
		return fmt.Errorf("FRR FDB has no %s dst %s: %v", mac, dst, l)
	}
}

// watchRemote polls both switches for a remote MAC until the returned
// function is called; it returns how many polls did not find it.
func watchRemote(p *pair, mac, vtep string) (stop func() int64) {
	var missing atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range []*vteptest.OVSDB{p.tor1, p.tor2} {
		wg.Add(1)
		go func(s *vteptest.OVSDB) {
			defer wg.Done()
			for ctx.Err() == nil {
				if remoteHas(s, mac, vtep)() != nil {
					missing.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}(s)
	}
	return func() int64 { cancel(); wg.Wait(); return missing.Load() }
}

// TestAgentPairWithFRR is the whole agent against two real ovsdb-servers
// and an FRR VTEP: bind, advertise, import, restart, wipe, peer restart.
func TestAgentPairWithFRR(t *testing.T) {
	p := newPair(t)
	r := startAgent(t, p.cfg)
	ctx := context.Background()

	// torctl bind → rows on both switches.
	start := time.Now()
	if err := r.a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1", "tor2:eth1"}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*vteptest.OVSDB{p.tor1, p.tor2} {
		if got := s.VtepCtl("list-bindings", map[*vteptest.OVSDB]string{p.tor1: "tor1", p.tor2: "tor2"}[s], "eth1"); got != "0100 vni10100" {
			t.Fatalf("bindings after bind: %q", got)
		}
	}
	t.Logf("bind → rows on both switches: %v", time.Since(start).Round(time.Millisecond))
	// Bound state is persisted.
	if b, err := os.ReadFile(filepath.Join(p.state, "bindings.json")); err != nil || !strings.Contains(string(b), "tor2") {
		t.Fatalf("bindings not persisted: %v %s", err, b)
	}

	// FRR receives both switches' type-3 routes and installs flood entries.
	eventually(t, 60*time.Second, "FRR flood entry for tor1", frrFDBHas(p.frr, "00:00:00:00:00:00", "10.99.5.11"))
	eventually(t, 10*time.Second, "FRR flood entry for tor2", frrFDBHas(p.frr, "00:00:00:00:00:00", "10.99.5.12"))
	// The peer's state is read at scrape time.
	mfs, err := r.a.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	established := false
	for _, mf := range mfs {
		if mf.GetName() == "torstitch_bgp_peer_established" {
			for _, m := range mf.GetMetric() {
				established = established || m.GetGauge().GetValue() == 1
			}
		}
	}
	if !established {
		t.Fatal("metrics: torstitch_bgp_peer_established is not 1 for the FRR peer")
	}

	// A MAC learned by tor1 reaches FRR's FDB and tor2's remote MACs.
	p.tor1.VtepCtl("add-ucast-local", "vni10100", tor1MAC, "10.99.5.11")
	eventually(t, 10*time.Second, "tor1's local MAC in FRR", frrFDBHas(p.frr, tor1MAC, "10.99.5.11"))
	eventually(t, 10*time.Second, "tor1's local MAC on tor2", remoteHas(p.tor2, tor1MAC, "10.99.5.11"))

	// FRR's VM MAC reaches both switches.
	p.frr.AddLocalMAC(t, 10100, frrMAC)
	for _, s := range []*vteptest.OVSDB{p.tor1, p.tor2} {
		eventually(t, 20*time.Second, "FRR MAC on switch", remoteHas(s, frrMAC, "10.99.5.2"))
	}
	dump1, dump2 := p.tor1.Dump("tor1"), p.tor2.Dump("tor2")

	// Agent killed and restarted: no remote MAC ever deleted in between.
	missing := watchRemote(p, frrMAC, "10.99.5.2")
	r.stop()
	// In one process the stopped speaker's listener may linger a moment
	// (GoBGP closes it asynchronously); a new process would not see it.
	eventually(t, 10*time.Second, "BGP port released", func() error {
		l, err := net.Listen("tcp4", "10.99.5.1:179")
		if err != nil {
			return err
		}
		return l.Close()
	})
	r2 := startAgent(t, p.cfg)
	eventually(t, 60*time.Second, "restarted agent synced", func() error {
		if !r2.a.speaker.Synced() {
			return fmt.Errorf("speaker not synced")
		}
		return nil
	})
	// Give it a full pass after sync, then compare.
	if err := r2.a.waitPass(ctx); err != nil {
		t.Fatal(err)
	}
	if n := missing(); n > 0 {
		t.Fatalf("FRR's MAC was missing from a switch %d times during the agent restart", n)
	}
	if d := p.tor1.Dump("tor1"); d != dump1 {
		t.Fatalf("tor1 changed across the agent restart:\n%s\nwas:\n%s", d, dump1)
	}
	if d := p.tor2.Dump("tor2"); d != dump2 {
		t.Fatalf("tor2 changed across the agent restart:\n%s\nwas:\n%s", d, dump2)
	}

	// tor2's database is wiped: the agent restores it.
	p.tor2.Restart(true)
	p.tor2.AddSwitch("tor2", "10.99.5.12", "eth1", "eth2")
	eventually(t, 30*time.Second, "tor2 restored", func() error {
		if d := p.tor2.Dump("tor2"); d != dump2 {
			return fmt.Errorf("tor2:\n%s\nwant:\n%s", d, dump2)
		}
		return nil
	})

	// FRR's bgpd crashes and restarts with graceful restart: nothing deleted.
	missing = watchRemote(p, frrMAC, "10.99.5.2")
	restartBGPD(t, p.frr)
	eventually(t, 60*time.Second, "FRR session back", func() error {
		peers, err := r2.a.Peers(ctx)
		if err != nil || len(peers) != 1 || peers[0].State != "established" {
			return fmt.Errorf("peers %+v %v", peers, err)
		}
		return nil
	})
	eventually(t, 30*time.Second, "tor1 MAC re-learned by FRR", frrFDBHas(p.frr, tor1MAC, "10.99.5.11"))
	if n := missing(); n > 0 {
		t.Fatalf("FRR's MAC was missing from a switch %d times during FRR's graceful restart", n)
	}
}
