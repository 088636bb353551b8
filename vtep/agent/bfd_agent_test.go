package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// TestAgentBFDStateFromTunnelTable drives the agent with two real
// ovsdb-servers where the test plays tor1's switch side in the Tunnel table
// (vtep-ctl writes bfd_status as a switch would): bfd_params written once;
// a tunnel that never came up is not acted on; up then down withdraws tor2
// (the pair peer) from tor1's flood list and remote MACs, leaving the anchor
// row; up again restores them; with tor2's OVSDB session lost too, its
// lost-switch hold is released at once.
func TestAgentBFDStateFromTunnelTable(t *testing.T) {
	tor1, tor2 := vteptest.StartOVSDB(t), vteptest.StartOVSDB(t)
	tor1.AddSwitch("tor1", "192.0.2.11", "eth1")
	tor2.AddSwitch("tor2", "192.0.2.12", "eth1")
	dir := t.TempDir()
	cfg, err := config.Parse(fmt.Appendf(nil, `
agent: {name: pair1, api: "unix://%s/api.sock", state_dir: %s, resync: 1s}
switches:
  - {name: tor1, ovsdb: "unix:%s", bfd: {enabled: true, min_rx: 300ms, min_tx: 100ms}}
  - {name: tor2, ovsdb: "unix:%s"}
`, dir, dir, tor1.Sock, tor2.Sock))
	if err != nil {
		t.Fatal(err)
	}
	r := startAgent(t, cfg)
	ctx := context.Background()
	if err := r.a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1", "tor2:eth1"}}); err != nil {
		t.Fatal(err)
	}
	const mac2 = "00:50:56:00:02:22"
	const anchor = "02:bf:c0:00:02:0c" // 02:bf + 192.0.2.12
	tor2.VtepCtl("add-ucast-local", "vni10100", mac2, "192.0.2.12")
	present := func() error {
		out := tor1.VtepCtl("list-remote-macs", "vni10100")
		for _, want := range []string{mac2 + " -> vxlan_over_ipv4/192.0.2.12", "unknown-dst -> vxlan_over_ipv4/192.0.2.12"} {
			if !hasLine(out, want) {
				return fmt.Errorf("tor1 lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, anchor) {
			return fmt.Errorf("anchor row still there:\n%s", out)
		}
		return nil
	}
	withdrawn := func() error {
		out := tor1.VtepCtl("list-remote-macs", "vni10100")
		if strings.Contains(out, mac2) || strings.Contains(out, "unknown-dst -> vxlan_over_ipv4/192.0.2.12") {
			return fmt.Errorf("tor1 still points at 192.0.2.12:\n%s", out)
		}
		if !hasLine(out, anchor+" -> vxlan_over_ipv4/192.0.2.12") {
			return fmt.Errorf("no anchor row:\n%s", out)
		}
		return nil
	}
	eventually(t, 10*time.Second, "tor2's MAC and flood entry on tor1", present)

	// The switch creates the Tunnel row (tor1's own locator, tor2's as the remote).
	remoteLoc := strings.TrimSpace(tor1.VtepCtl("--bare", "--columns=_uuid", "find", "Physical_Locator", "dst_ip=192.0.2.12"))
	tor1.VtepCtl("--", "--id=@l", "create", "Physical_Locator", "dst_ip=192.0.2.11", "encapsulation_type=vxlan_over_ipv4",
		"--", "--id=@t", "create", "Tunnel", "local=@l", "remote="+remoteLoc, "bfd_params:cpath_down=false",
		"--", "add", "Physical_Switch", "tor1", "tunnels", "@t")
	tun := strings.TrimSpace(tor1.VtepCtl("--bare", "--columns=_uuid", "list", "Tunnel"))
	eventually(t, 10*time.Second, "bfd_params written", func() error {
		got := tor1.VtepCtl("get", "Tunnel", tun, "bfd_params")
		if got != `{cpath_down="false", enable="true", min_rx="300", min_tx="100"}` {
			return fmt.Errorf("bfd_params %s", got)
		}
		return nil
	})
	txs := func() float64 { return testutil.ToFloat64(r.a.met.transactions.WithLabelValues("tor1")) }
	setStatus := func(state string) {
		tor1.VtepCtl("set", "Tunnel", tun, "bfd_status:enabled=true", "bfd_status:state="+state)
		for range 2 {
			if err := r.a.waitPass(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := txs()
	setStatus("down") // never up: a peer that does not speak BFD
	setStatus("init")
	if err := present(); err != nil {
		t.Fatalf("a tunnel that never came up was acted on: %v", err)
	}
	setStatus("up")
	if n := txs() - before; n != 0 {
		t.Fatalf("bfd_status changes cost %v transactions on tor1 (steady state: 0)", n)
	}

	start := time.Now()
	setStatus("down")
	eventually(t, 5*time.Second, "tor2 withdrawn from tor1", withdrawn)
	t.Logf("BFD down -> tor1 rows changed in %v", time.Since(start).Round(time.Millisecond))
	if err := remoteHas(tor2, mac2, "192.0.2.12")(); err == nil {
		t.Fatal("tor2's own MAC cross-installed on tor2")
	}
	ss, _ := r.a.Switches(ctx)
	if fmt.Sprint(ss[0].BFDDown) != "[192.0.2.12]" || ss[1].BFDDown != nil {
		t.Fatalf("show switches BFDDown: tor1 %v tor2 %v", ss[0].BFDDown, ss[1].BFDDown)
	}
	if n := testutil.ToFloat64(r.a.met.bfdDown.WithLabelValues("tor1")); n != 1 {
		t.Fatalf("torstitch_bfd_down_tunnels{switch=tor1} = %v", n)
	}

	start = time.Now()
	setStatus("up")
	eventually(t, 5*time.Second, "tor2 restored on tor1", present)
	t.Logf("BFD up -> tor1 rows restored in %v", time.Since(start).Round(time.Millisecond))
	if n := testutil.ToFloat64(r.a.met.bfdDown.WithLabelValues("tor1")); n != 0 {
		t.Fatalf("torstitch_bfd_down_tunnels{switch=tor1} = %v after recovery", n)
	}

	// tor2's data plane and its OVSDB session both lost: the hold (120 s)
	// is released at once, so nothing on tor1 refers to tor2 any more.
	setStatus("down")
	eventually(t, 5*time.Second, "tor2 withdrawn from tor1", withdrawn)
	tor2.Stop()
	lost := time.Now()
	eventually(t, 20*time.Second, "tor2's held state released on tor1", func() error {
		if out := tor1.VtepCtl("list-remote-macs", "vni10100"); strings.Contains(out, "192.0.2.12") {
			return fmt.Errorf("tor1 still refers to 192.0.2.12:\n%s", out)
		}
		return nil
	})
	if d := time.Since(lost); d >= lostSwitchHold {
		t.Fatalf("released after %v, not before the %v hold", d, lostSwitchHold)
	}
	t.Logf("tor2 lost with BFD down: hold released, anchor gone %v after its ovsdb-server stopped", time.Since(lost).Round(time.Millisecond))
}
