package agent

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/client"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// inboundPair is a mixed pair: tor1 dials in over SSL with ovs-pki
// certificates (its ovsdb-server serves its Manager rows), tor2 is dialed
// over a unix socket as before.
type inboundPair struct {
	pki        *vteptest.OVSPKI
	tor1, tor2 *vteptest.OVSDB
	cfg        *config.Config
}

func newInboundPair(t testing.TB) *inboundPair {
	t.Helper()
	p := &inboundPair{pki: vteptest.NewOVSPKI(t)}
	agentCert := p.pki.Sign("agent", "agent", "controller")
	p.tor1 = dialingSwitch(t, p.pki, p.pki.Sign("tor1", "tor1", "switch"))
	p.tor1.AddSwitch("tor1", "192.0.2.11", "eth1", "eth2")
	p.tor2 = vteptest.StartOVSDB(t)
	p.tor2.AddSwitch("tor2", "192.0.2.12", "eth1", "eth2")
	dir := t.TempDir()
	cfg, err := config.Parse(fmt.Appendf(nil, `
agent:
  name: pair1
  api: "unix://%s/api.sock"
  state_dir: %s
  resync: 2s
  ovsdb_listen: "pssl:127.0.0.1:0"
  ovsdb_tls: {ca: %s, cert: %s, key: %s}
switches:
  - {name: tor1, ovsdb: inbound, probe_interval: 2s}
  - {name: tor2, ovsdb: "unix:%s"}
`, dir, dir, p.pki.SwitchCA(), agentCert.Cert, agentCert.Key, p.tor2.Sock))
	if err != nil {
		t.Fatal(err)
	}
	p.cfg = cfg
	return p
}

func dialingSwitch(t testing.TB, pki *vteptest.OVSPKI, cert vteptest.Cert) *vteptest.OVSDB {
	t.Helper()
	return vteptest.StartOVSDB(t, "--remote=db:hardware_vtep,Global,managers",
		"--private-key="+cert.Key, "--certificate="+cert.Cert, "--ca-cert="+pki.ControllerCA())
}

// runAgent starts the agent without waiting for its switches (an inbound
// switch cannot dial before the agent listens) and returns the manager
// target switches dial.
func runAgent(t testing.TB, cfg *config.Config) (*Agent, string) {
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
	t.Cleanup(func() { once.Do(func() { cancel(); <-done }) })
	deadline := time.Now().Add(10 * time.Second)
	for ovsdbListenAddr(a) == nil {
		if time.Now().After(deadline) {
			t.Fatal("agent not listening for switches")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return a, fmt.Sprintf("ssl:127.0.0.1:%d", ovsdbListenAddr(a).(*net.TCPAddr).Port)
}

func connected(a *Agent, name string) func() error {
	return func() error {
		for _, s := range a.sw {
			if s.name == name && s.client.Connected() {
				return nil
			}
		}
		return fmt.Errorf("%s not connected", name)
	}
}

// TestAgentInboundSwitch: a mixed pair, tor1 dialing in with ovs-pki
// certificates. Bindings and cross-installed MACs reach both switches;
// tor1's restart and its database wipe are survived (nothing deleted,
// everything restored); a third switch is refused and counted, and
// nothing is written to it.
func TestAgentInboundSwitch(t *testing.T) {
	p := newInboundPair(t)
	a, manager := runAgent(t, p.cfg)
	p.tor1.VtepCtl("set-manager", manager)
	eventually(t, 20*time.Second, "tor1 dialed in", connected(a, "tor1"))
	eventually(t, 20*time.Second, "tor2 connected", connected(a, "tor2"))
	ctx := context.Background()
	if err := a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1", "tor2:eth1"}}); err != nil {
		t.Fatal(err)
	}
	p.tor2.VtepCtl("add-ucast-local", "vni10100", "00:50:56:00:02:22", "192.0.2.12")
	p.tor1.VtepCtl("add-ucast-local", "vni10100", "00:50:56:00:01:11", "192.0.2.11")
	eventually(t, 10*time.Second, "tor2's MAC on tor1 (inbound)", remoteHas(p.tor1, "00:50:56:00:02:22", "192.0.2.12"))
	eventually(t, 10*time.Second, "tor1's MAC on tor2", remoteHas(p.tor2, "00:50:56:00:01:11", "192.0.2.11"))
	sws, err := a.Switches(ctx)
	if err != nil || len(sws) != 2 || !strings.HasPrefix(sws[0].Endpoint, "inbound:127.0.0.1:") || sws[1].Endpoint != "unix:"+p.tor2.Sock {
		t.Fatalf("torctl show switches: %+v, %v; want tor1 at inbound:127.0.0.1:PORT", sws, err)
	}
	want := p.tor1.Dump("tor1")
	for _, l := range []string{"bind tor1 eth1 100 vni10100", "ucast vni10100 00:50:56:00:02:22 -> vxlan_over_ipv4/192.0.2.12"} {
		if !hasLine(want, l) {
			t.Fatalf("tor1 lacks %q:\n%s", l, want)
		}
	}

	// Restart with the database intact: the switch dials again; nothing
	// was deleted meanwhile, nothing is rewritten after.
	first := a.sw[0].client.Status().Connections
	p.tor1.Restart(false)
	eventually(t, 20*time.Second, "tor1 dialed in again", func() error {
		if n := a.sw[0].client.Status().Connections; n <= first || !a.sw[0].client.Connected() {
			return fmt.Errorf("connections %d", n)
		}
		return nil
	})
	if err := a.waitPass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.tor1.Dump("tor1"); got != want {
		t.Fatalf("tor1 after restart:\n%s\nwant:\n%s", got, want)
	}

	// Wipe: the switch's own configuration recreates its Physical_Switch,
	// ports and Manager row; the agent restores the rest.
	p.tor1.Restart(true)
	p.tor1.AddSwitch("tor1", "192.0.2.11", "eth1", "eth2")
	p.tor1.VtepCtl("set-manager", manager)
	eventually(t, 20*time.Second, "tor1's logical switch restored", func() error {
		if out := p.tor1.VtepCtl("list-ls"); !hasLine(out, "vni10100") {
			return fmt.Errorf("logical switches: %q", out)
		}
		return nil
	})
	p.tor1.VtepCtl("add-ucast-local", "vni10100", "00:50:56:00:01:11", "192.0.2.11") // the host is learned again
	eventually(t, 20*time.Second, "tor1 restored after a wipe", func() error {
		if got := p.tor1.Dump("tor1"); got != want {
			return fmt.Errorf("tor1:\n%s\nwant:\n%s", got, want)
		}
		return nil
	})

	// A third switch dials in: refused, counted, untouched; the pair goes on.
	refused := a.met.inboundRefused.WithLabelValues(client.RefusedUnknown)
	tor3 := dialingSwitch(t, p.pki, p.pki.Sign("tor3", "tor3", "switch"))
	tor3.AddSwitch("tor3", "192.0.2.13", "eth1")
	before := tor3.Dump("tor3")
	tor3.VtepCtl("set-manager", manager)
	eventually(t, 20*time.Second, "tor3 refused", func() error {
		if n := testutil.ToFloat64(refused); n < 1 {
			return fmt.Errorf("torstitch_ovsdb_inbound_refused_total{reason=unknown} = %v", n)
		}
		return nil
	})
	if got := tor3.Dump("tor3"); got != before {
		t.Fatalf("tor3 written to:\n%s\nwas:\n%s", got, before)
	}
	if err := connected(a, "tor1")(); err != nil {
		t.Fatal(err)
	}
	if err := a.waitPass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.tor1.Dump("tor1"); got != want {
		t.Fatalf("tor1 after tor3's refusal:\n%s\nwant:\n%s", got, want)
	}
}

// ovsdbListenAddr returns the address inbound switches dial, once the
// agent is running (nil before, or without agent.ovsdb_listen).
func ovsdbListenAddr(a *Agent) net.Addr {
	if a.listener == nil {
		return nil
	}
	return a.listener.Addr()
}
