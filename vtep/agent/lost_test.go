package agent

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/api"
)

// TestAgentKeepsLostSwitchState: tor1's ovsdb-server goes away (its data
// plane may well still forward). tor1's local MAC, cross-installed on tor2,
// and its flood entry stay on tor2 for the hold time, then go.
func TestAgentKeepsLostSwitchState(t *testing.T) {
	tor1, tor2, cfg := pairWithoutBGP(t, ", resync: 1s")
	r := startAgent(t, cfg)
	const hold = 3 * time.Second
	r.a.core.own.hold = hold // read by the reconcile loop only while a switch is away; set before the first loss
	ctx := context.Background()
	if err := r.a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1", "tor2:eth1"}}); err != nil {
		t.Fatal(err)
	}
	tor1.VtepCtl("add-ucast-local", "vni10100", "00:50:56:00:01:11", "192.0.2.11")
	onTor2 := func() error {
		out := tor2.VtepCtl("list-remote-macs", "vni10100")
		for _, want := range []string{"00:50:56:00:01:11 -> vxlan_over_ipv4/192.0.2.11", "unknown-dst -> vxlan_over_ipv4/192.0.2.11"} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("tor2 lacks %q:\n%s", want, out)
			}
		}
		return nil
	}
	eventually(t, 10*time.Second, "tor1's MAC and flood entry on tor2", onTor2)

	tor1.Stop()
	lost := time.Now()
	r.waitConnected(t, 0, false, 10*time.Second)
	for range 2 { // passes after the loss
		if err := r.a.waitPass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if since := time.Since(lost); since >= hold {
		t.Fatalf("the two passes after the loss ended %s after it, past the %s hold: nothing was checked", since, hold)
	}
	if err := onTor2(); err != nil {
		t.Fatalf("tor1's state left tor2 %s after tor1's ovsdb-server stopped (hold %s): %v", time.Since(lost), hold, err)
	}
	eventually(t, 3*hold, "tor1's MAC gone from tor2 after the hold", func() error {
		if out := tor2.VtepCtl("list-remote-macs", "vni10100"); strings.Contains(out, "192.0.2.11") {
			return fmt.Errorf("still there:\n%s", out)
		}
		return nil
	})
	if gone := time.Since(lost); gone < hold {
		t.Fatalf("removed after %s, before the hold of %s", gone, hold)
	}
}

// TestLostSwitchClaimDoesNotComeBack: tor1 is lost holding vm11's MAC; the
// host fails over and tor2 learns it (the MAC moves to tor2); then tor2's
// entry goes (ovs-vtep deletes its learned flow with the remote row the
// agent removes, and reports the MAC gone until the host sends again). The
// held claim of the lost tor1 must not win the MAC back: that pointed the
// fabric and tor2 at the dead switch for good (seen in the lab: 20 s of
// loss after a failover).
func TestLostSwitchClaimDoesNotComeBack(t *testing.T) {
	tor1, tor2, cfg := pairWithoutBGP(t, ", resync: 1s")
	r := startAgent(t, cfg)
	ctx := context.Background()
	if err := r.a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1", "tor2:eth1"}}); err != nil {
		t.Fatal(err)
	}
	const mac = "00:50:56:00:01:11"
	tor1.VtepCtl("add-ucast-local", "vni10100", mac, "192.0.2.11")
	remoteOnTor2 := func() bool {
		return strings.Contains(tor2.VtepCtl("list-remote-macs", "vni10100"), mac+" -> vxlan_over_ipv4/192.0.2.11")
	}
	eventually(t, 10*time.Second, "tor1's MAC on tor2", func() error {
		if !remoteOnTor2() {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	tor1.Stop()
	r.waitConnected(t, 0, false, 10*time.Second)
	tor2.VtepCtl("add-ucast-local", "vni10100", mac, "192.0.2.12") // the team failed over
	eventually(t, 10*time.Second, "the MAC local on tor2, no longer remote there", func() error {
		if remoteOnTor2() {
			return fmt.Errorf("still remote")
		}
		return nil
	})
	for range 2 {
		if err := r.a.waitPass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tor2.VtepCtl("del-ucast-local", "vni10100", mac) // ovs-vtep lost its learned flow
	for range 3 {
		if err := r.a.waitPass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if remoteOnTor2() {
		t.Fatalf("the lost tor1's held claim came back: %s points at 192.0.2.11 on tor2 again:\n%s", mac, tor2.VtepCtl("list-remote-macs", "vni10100"))
	}
}

// TestSupersededClaimStaysDropped: tor1 freezes (dead, its session not yet
// seen as lost) still reporting a MAC that tor2 then learns (the host
// failed over). When tor2's entry goes (ovs-vtep drops its learned flow),
// tor1's old entry must not win the MAC back: the MAC is advertised nowhere
// (the fabric floods to it) rather than at the dead tor1 (seen in the lab:
// 15 s of loss after a failover), also once tor1 is seen as lost. When tor1
// thaws it is alive and its table counts again.
func TestSupersededClaimStaysDropped(t *testing.T) {
	tor1, tor2, cfg := pairWithoutBGP(t, ", resync: 1s")
	cfg.Switches[0].ProbeInterval = config.Duration(2 * time.Second)
	r := startAgent(t, cfg)
	ctx := context.Background()
	if err := r.a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1", "tor2:eth1"}}); err != nil {
		t.Fatal(err)
	}
	const mac = "00:50:56:00:01:11"
	tor1.VtepCtl("add-ucast-local", "vni10100", mac, "192.0.2.11")
	remoteOn := func(sw interface{ VtepCtl(...string) string }, vtep string) bool {
		return strings.Contains(sw.VtepCtl("list-remote-macs", "vni10100"), mac+" -> vxlan_over_ipv4/"+vtep)
	}
	eventually(t, 10*time.Second, "tor1's MAC on tor2", func() error {
		if !remoteOn(tor2, "192.0.2.11") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	thaw := func() { _ = syscall.Kill(tor1.PID(), syscall.SIGCONT) }
	t.Cleanup(thaw)
	if err := syscall.Kill(tor1.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	tor2.VtepCtl("add-ucast-local", "vni10100", mac, "192.0.2.12") // learned later on tor2
	eventually(t, 10*time.Second, "the MAC advertised from tor2 (no longer remote at tor1 on tor2)", func() error {
		if remoteOn(tor2, "192.0.2.11") {
			return fmt.Errorf("not yet:\ntor2: %s", tor2.VtepCtl("list-remote-macs", "vni10100"))
		}
		return nil
	})
	if !r.a.sw[0].client.Connected() {
		t.Fatal("tor1 already seen as lost: nothing is checked while its session is up")
	}
	tor2.VtepCtl("del-ucast-local", "vni10100", mac) // tor2's entry goes; frozen tor1's stays
	for range 3 {
		if err := r.a.waitPass(ctx); err != nil {
			t.Fatal(err)
		}
		if remoteOn(tor2, "192.0.2.11") {
			t.Fatalf("frozen tor1's superseded entry won the MAC back: tor2 sends it to tor1 again:\n%s", tor2.VtepCtl("list-remote-macs", "vni10100"))
		}
	}
	r.waitConnected(t, 0, false, 10*time.Second)
	for range 2 {
		if err := r.a.waitPass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if remoteOn(tor2, "192.0.2.11") {
		t.Fatalf("lost tor1's held claim won the MAC back:\n%s", tor2.VtepCtl("list-remote-macs", "vni10100"))
	}
	thaw() // alive again: its entry is a claim like any other
	eventually(t, 20*time.Second, "thawed tor1's entry advertised again", func() error {
		if !remoteOn(tor2, "192.0.2.11") {
			return fmt.Errorf("not yet:\n%s", tor2.VtepCtl("list-remote-macs", "vni10100"))
		}
		return nil
	})
}

// TestSupersededClaimLiveAfterReconnect: tor1's entry lost the MAC to a
// newer one on tor2, then tor1 was away and came back reporting the MAC
// (the host failing back to it). When tor2's entry ages out, tor1's entry
// is the MAC's owner again at once, not after the superseded hold: seen in
// the lab as a failback that never converged (the MAC advertised nowhere).
func TestSupersededClaimLiveAfterReconnect(t *testing.T) {
	tor1, tor2, cfg := pairWithoutBGP(t, ", resync: 1s")
	cfg.Switches[0].ProbeInterval = config.Duration(time.Second)
	r := startAgent(t, cfg)
	ctx := context.Background()
	if err := r.a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1", "tor2:eth1"}}); err != nil {
		t.Fatal(err)
	}
	const mac = "00:50:56:00:01:11"
	remoteOn := func(sw interface{ VtepCtl(...string) string }, vtep string) bool {
		return strings.Contains(sw.VtepCtl("list-remote-macs", "vni10100"), mac+" -> vxlan_over_ipv4/"+vtep)
	}
	tor1.VtepCtl("add-ucast-local", "vni10100", mac, "192.0.2.11")
	eventually(t, 10*time.Second, "tor1's MAC on tor2", func() error {
		if !remoteOn(tor2, "192.0.2.11") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	tor2.VtepCtl("add-ucast-local", "vni10100", mac, "192.0.2.12") // the host failed over
	eventually(t, 10*time.Second, "the MAC advertised from tor2", func() error {
		if !remoteOn(tor1, "192.0.2.12") || remoteOn(tor2, "192.0.2.11") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	tor1.Stop()
	r.waitConnected(t, 0, false, 10*time.Second)
	for range 2 {
		if err := r.a.waitPass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tor1.Start() // back, its table still holding the MAC
	r.waitConnected(t, 0, true, 20*time.Second)
	for range 2 {
		if err := r.a.waitPass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tor2.VtepCtl("del-ucast-local", "vni10100", mac) // tor2's entry ages out
	eventually(t, 10*time.Second, "tor1 the MAC's owner again", func() error {
		if !remoteOn(tor2, "192.0.2.11") {
			return fmt.Errorf("tor2 does not send %s to tor1:\n%s", mac, tor2.VtepCtl("list-remote-macs", "vni10100"))
		}
		return nil
	})
}

// waitConnected waits until the agent sees its switch i connected (or not).
func (r *running) waitConnected(t *testing.T, i int, want bool, within time.Duration) {
	t.Helper()
	eventually(t, within, fmt.Sprintf("%s connected=%v", r.a.sw[i].name, want), func() error {
		if got := r.a.sw[i].client.Connected(); got != want {
			return fmt.Errorf("connected=%v", got)
		}
		return nil
	})
}
