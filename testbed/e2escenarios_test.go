package testbed_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/testbed"
)

// vlanChange: pg-vlan200 is reconfigured to VLAN 300 in vCenter; the
// agent's bindings follow (300 -> 10300 appears, 200 goes), and so does
// traffic once the hosts' VDS ports carry the new VLAN: vm12 <-> vm22 over
// VNI 10300, cut off from kvm12 (VNI 10200). Then back to 200.
func (e *e2e) vlanChange(t *testing.T) {
	waitBinding := func(vlan, vni int, gone int) time.Duration {
		t.Helper()
		start := time.Now()
		waitFor(e.ctx, t, 60*time.Second, fmt.Sprintf("binding %d -> %d from vcenter, none for VLAN %d", vlan, vni, gone), func() error {
			var bs []binding
			if err := torctl(e.ctx, e.lab, &bs, "show", "bindings"); err != nil {
				return err
			}
			m := bindingsString(bs)
			if !strings.HasPrefix(m[vlan], fmt.Sprintf("%d(vcenter):", vni)) || m[gone] != "" {
				return fmt.Errorf("bindings %v", m)
			}
			return nil
		})
		return time.Since(start)
	}
	retag := func(vlan int) {
		e.sh(t, "esx1", fmt.Sprintf("ovs-vsctl set port vm12 tag=%d", vlan))
		e.sh(t, "esx2", fmt.Sprintf("ovs-vsctl set port vm22 tag=%d", vlan))
	}
	untilPing := func(node, ip string) time.Duration {
		t.Helper()
		start := time.Now()
		waitFor(e.ctx, t, 30*time.Second, node+" pings "+ip, func() error { return e.ping(node, ip) })
		return time.Since(start)
	}

	if err := editInventory(e.ctx, e.lab, "{name: pg-vlan200, switch: dvs-lab, vlan: 200}", "{name: pg-vlan200, switch: dvs-lab, vlan: 300}"); err != nil {
		t.Fatal(err)
	}
	bind300 := waitBinding(300, 10300, 200)
	onSwitch := time.Now()
	waitFor(e.ctx, t, 30*time.Second, "tor1 binds VLAN 300 to vni10300", func() error {
		out, err := e.lab.Shell(e.ctx, "tor1", "vtep-ctl list-bindings tor1 eth1")
		if err == nil && !strings.Contains(string(out), "0300 vni10300") {
			return errString(string(out))
		}
		return err
	})
	bindSwitch := bind300 + time.Since(onSwitch)
	retag(300)
	ping300 := untilPing("vm12", "192.168.200.22")
	if err := e.ping("vm12", "192.168.200.32"); err == nil {
		t.Errorf("vm12 on VLAN 300 still reaches kvm12 on VNI 10200")
	}
	if err := e.ping("vm12", "192.168.100.31"); err == nil {
		t.Errorf("vm12 on VLAN 300 reaches kvm11 on VNI 10100")
	}
	if out := e.sh(t, "tor1", "vtep-ctl list-ls"); !strings.Contains(out, "vni10300") {
		t.Errorf("tor1 has no logical switch for VNI 10300: %s", out)
	}

	if err := editInventory(e.ctx, e.lab, "{name: pg-vlan200, switch: dvs-lab, vlan: 300}", "{name: pg-vlan200, switch: dvs-lab, vlan: 200}"); err != nil {
		t.Fatal(err)
	}
	bind200 := waitBinding(200, 10200, 300)
	retag(200)
	ping200 := untilPing("vm12", "192.168.200.32")
	e.result(t, "ok: 200->300 in vCenter: agent binding 300->10300 after %s, on tor1 after %s, vm12<->vm22 over VNI 10300 %s after retag; back to 200: binding after %s, vm12->kvm12 %s after retag",
		bind300.Round(time.Millisecond), bindSwitch.Round(time.Millisecond), ping300.Round(time.Millisecond), bind200.Round(time.Millisecond), ping200.Round(time.Millisecond))
}

// vmMove: vm11 moves from esx1 to esx2 (vCenter relocates it, its NIC is
// re-cabled to esx2's VDS, and it announces itself as ESXi's RARP after a
// vMotion would); kvm11 pings it throughout: the outage is measured and
// bounded (boundVMMove).
func (e *e2e) vmMove(t *testing.T) {
	p := startPinger(e.ctx, t, e.lab, "kvm11", "192.168.100.11")
	waitFor(e.ctx, t, 20*time.Second, "kvm11 -> vm11 flows before the move", func() error {
		if !p.answeredAfter(0, 5) {
			return errString("no answers yet")
		}
		return nil
	})
	tl := newTimeline()
	tl.watchFDB(e.ctx, t, e.lab, "kvm1", []string{"00:50:56:00:01:11"})
	seq := p.seq()
	tl.mark("vm11 moves to esx2 in vCenter, its NIC re-cabled")
	if err := editInventory(e.ctx, e.lab, "{name: vm11, host: esx1,", "{name: vm11, host: esx2,"); err != nil {
		t.Fatal(err)
	}
	unplugged := time.Now()
	tl.mark("vm11 unplugged from esx1")
	e.sh(t, "esx1", "ovs-vsctl del-port vds0 vm11 && ip link del vm11")
	if err := cable(e.ctx, e.lab, "esx2", "vm11", "vm11", "eth1", 1500); err != nil {
		t.Fatal(err)
	}
	e.sh(t, "esx2", "ethtool -K vm11 tx off >/dev/null && ip link set vm11 up && ovs-vsctl add-port vds0 vm11 tag=100")
	e.sh(t, "vm11", "/lab/vm/start.sh >/dev/null && ping -c 1 -W 1 192.168.100.31 >/dev/null || true")
	tl.mark("vm11 up on esx2, announced")
	// The emulated vMotion's switch-over: vm11 has no NIC while the test
	// re-cables it (a real vMotion stuns the VM for well under a second;
	// these shell steps take 1-2 s on a loaded machine). That time is not
	// the network's: the bound applies to the outage beyond it.
	offline := time.Since(unplugged)
	// vCenter reports the VM on esx2; its MAC stays one of tor1's (both
	// hosts' active uplinks are on tor1), now learned on tor1:eth2.
	st, err := p.settle(e.ctx, seq, 30*time.Second, func() error {
		var m macsView
		if err := torctl(e.ctx, e.lab, &m, "show", "macs"); err != nil {
			return err
		}
		for _, l := range m.Local {
			if l.MAC == "00:50:56:00:01:11" && l.Switch == "tor1" {
				return nil
			}
		}
		return fmt.Errorf("vm11's MAC not among tor1's local MACs: %+v", m.Local)
	})
	tl.pings(p, st)
	tl.collect(e.ctx, e.lab)
	if err != nil {
		t.Fatalf("vm11 move: %v\ntimeline:\n%s", err, tl)
	}
	if out := e.sh(t, "esx2", "ovs-vsctl list-ports vds0"); !strings.Contains(out, "vm11") {
		t.Errorf("vm11 not on esx2: %s", out)
	}
	beyond := max(0, st.Outage-offline)
	if beyond > boundVMMove {
		e.result(t, "FAIL: vm11 esx1->esx2: kvm11->vm11 %s, %s of it beyond the %s vm11 was unplugged (bound %s)", st, beyond, offline.Round(time.Millisecond), boundVMMove)
		t.Fatalf("vm11 move: longest outage %s, %s beyond the %s vm11 had no NIC; bound %s (%s)\ntimeline:\n%s",
			st.Outage, beyond, offline.Round(time.Millisecond), boundVMMove, st, tl)
	}
	e.result(t, "ok: vm11 esx1->esx2: kvm11->vm11 %s; vm11 unplugged for %s, outage beyond that %s (bound %s)",
		st, offline.Round(time.Millisecond), beyond.Round(time.Millisecond), boundVMMove)
}

// Outage bounds of the lab's faults (issue 14), each enforced on every run
// as the longest run of unanswered pings (100 ms apart).
const (
	boundFailoverTorswitch = time.Second             // tor1 down, tor1 back: torswitch ToRs
	boundFailoverOVSVTEP   = 2500 * time.Millisecond // the same with ovs-vtep ToRs (its main loop polls learned MACs)
	boundVMMove            = time.Second
	boundBothRRs           = time.Second // both route reflectors restarting, the agent's part
	// boundOurs bounds a failover's outage beyond the time ovs-vtep took to
	// report the VMs' MACs (checkOutage).
	boundOurs = time.Second
)

var vmMACs = []string{"00:50:56:00:01:11", "00:50:56:00:02:12"}

// failoverBound is the outage bound for tor1 down and back in this lab.
func (e *e2e) failoverBound() time.Duration {
	if e.ovsVTEP {
		return boundFailoverOVSVTEP
	}
	return boundFailoverTorswitch
}

// fdbAt reports whether node's kernel FDB (the FRR VTEP's) sends each of
// macs to vtep and to no other VTEP: the fabric has converged on it.
func (e *e2e) fdbAt(node, vtep string, macs []string) func() error {
	return func() error {
		out, err := e.lab.Shell(e.ctx, node, "bridge fdb show | grep ' dst '")
		if err != nil {
			return fmt.Errorf("%s: %w: %s", node, err, out)
		}
		for _, mac := range macs {
			var dsts []string
			for _, l := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(l, mac+" ") {
					_, d, _ := strings.Cut(l, " dst ")
					d, _, _ = strings.Cut(d, " ")
					dsts = append(dsts, d)
				}
			}
			if len(dsts) == 0 || slices.ContainsFunc(dsts, func(d string) bool { return d != vtep }) {
				return fmt.Errorf("%s's FDB sends %s to %v, want only %s", node, mac, dsts, vtep)
			}
		}
		return nil
	}
}

// checkOutage fails the test when a failover's longest outage is above
// the lab's bound. With ovs-vtep ToRs an outage above it passes only when
// the timeline shows where the excess went: ovs-vtep reported the VMs'
// MACs late (its main loop, ovsVTEPReport), and what remains (the teams'
// failover, the agent, BGP, the FRR VTEP) is within boundOurs. It returns
// a note for the result line.
func (e *e2e) checkOutage(t *testing.T, what string, worst time.Duration, line string, tl *timeline, tor string) string {
	t.Helper()
	bound := e.failoverBound()
	if worst <= bound {
		return fmt.Sprintf(" (bound %s)", bound)
	}
	if e.ovsVTEP {
		if peer, ok := tl.ovsVTEPReport(tor, vmMACs); ok && worst-peer <= boundOurs {
			return fmt.Sprintf(" [above the %s target: %s's ovs-vtep reported the VMs' MACs %s after the team failover%s; the outage beyond that, %s, is within %s]",
				bound, tor, peer.Round(time.Millisecond), tl.ovsVTEPPassNote(tor, peer), max(0, worst-peer).Round(time.Millisecond), boundOurs)
		}
	}
	e.result(t, "FAIL: %s (bound %s)", line, bound)
	t.Fatalf("%s: longest outage %s, bound %s (%s)\ntimeline:\n%s", what, worst, bound, line, tl)
	return ""
}

// torFailover: tor1 dies (its host ports lose carrier, its processes are killed):
// the ESXi teams fail over to tor2, the agent advertises the VMs' MACs from
// tor2 and traffic resumes. Then tor1 comes back and the teams return.
// Both outages are bounded (failoverBound); a miss or a failure to converge
// fails with the timeline of every party's logs.
func (e *e2e) torFailover(t *testing.T) {
	pv, pw := e.startFlows(t, "failure")
	// From a converged fabric only: a VM MAC that tor1 has not reported
	// yet (ovs-vtep reports once per pass of its loop) is unknown to kvm1,
	// which floods it to both ToRs, and its flow then survives tor1's death
	// unmeasured (a targeted run measured 0.2 s so).
	waitFor(e.ctx, t, 30*time.Second, "kvm1's FDB sends the VMs to tor1 before the failure", e.fdbAt("kvm1", "10.0.0.11", vmMACs))
	tl := newTimeline()
	tl.watchFDB(e.ctx, t, e.lab, "kvm1", vmMACs)
	if e.ovsVTEP {
		tl.watchFlows(e.ctx, t, e.lab, "tor2", vmMACs)
	}
	sv, sw := pv.seq(), pw.seq()
	e.snapshotOutage(tl, pv, pw, "tor2")
	// tor1 dies: its processes killed (SIGKILL, no grace: a dying switch
	// does not shut down in order), at once its host ports down (carrier
	// lost, as when a switch dies; torswitch's kernel data path would
	// forward on), then the wait until the processes are gone. Killed
	// first because a live torswitch sets its bound ports up again: with
	// the ports down first and docker stop's SIGTERM half a second later,
	// the teams stayed on tor1 until the kill (1.2 s in CI). The ports go
	// down before the wait because an ovs-vtep ToR stops forwarding with
	// its killed ovs-vswitchd: the wait (1.6 s once in CI) was outage.
	tl.mark("tor1 killed")
	if err := e.lab.Kill(e.ctx, "tor1"); err != nil {
		t.Fatal(err)
	}
	tl.mark("tor1's host ports down")
	e.sh(t, "tor1", "ip link set eth1 down && ip link set eth2 down")
	if err := e.lab.StopNode(e.ctx, "tor1", 0); err != nil {
		t.Fatal(err)
	}
	tl.mark("tor1's processes gone")
	// A failure below must not leave tor1 dead for the scenarios after
	// this one: they would fail for it, not for what they test.
	started, back := false, false
	t.Cleanup(func() {
		if back || e.ctx.Err() != nil {
			return
		}
		// As the scenario does it: tor1's daemons, then (once tor1 is
		// programmed) its ports, then kvm1 back on tor1; the scenarios
		// after this one start from a converged lab, not from a failback.
		if !started {
			if err := e.lab.StartNode(e.ctx, "tor1"); err != nil {
				t.Logf("restoring tor1 after the failure: %v", err)
				return
			}
		}
		if err := poll(e.ctx, 60*time.Second, func() error { return e.programmed("tor1") }); err != nil {
			t.Logf("restoring tor1 after the failure: not programmed: %v", err)
		}
		if _, err := e.lab.Exec(e.ctx, "tor1", "sh", "-c", "ip link set eth1 up && ip link set eth2 up"); err != nil {
			t.Logf("restoring tor1's ports after the failure: %v", err)
		}
		if err := poll(e.ctx, 60*time.Second, e.fdbAt("kvm1", "10.0.0.11", vmMACs)); err != nil {
			t.Logf("restoring tor1 after the failure: kvm1 not back on tor1: %v", err)
		}
	})
	conv := e.fdbAt("kvm1", "10.0.0.12", vmMACs)
	down1, err1 := pv.settle(e.ctx, sv, 30*time.Second, conv)
	down2, err2 := pw.settle(e.ctx, sw, 30*time.Second, conv)
	tl.pings(pv, down1)
	tl.pings(pw, down2)
	tl.collect(e.ctx, e.lab)
	downLine := fmt.Sprintf("tor1 down: kvm11->vm11 %s; vm12->kvm12 %s", down1, down2)
	if err := errors.Join(err1, err2); err != nil {
		e.result(t, "FAIL: %s: not converged", downLine)
		t.Fatalf("tor1 down: %v\ntimeline:\n%s\n%s", err, tl, diagnose(e.ctx, e.lab))
	}
	downLine += e.checkOutage(t, "tor1 down", max(down1.Outage, down2.Outage), downLine, tl, "tor2")
	t.Logf("tor1 down, timeline:\n%s", tl)
	for _, esx := range []string{"esx1", "esx2"} {
		if out := e.sh(t, esx, "ovs-appctl bond/show uplink"); !strings.Contains(out, "active member") || !strings.Contains(out, "(eth2)") {
			t.Errorf("%s's team is not on eth2 (tor2):\n%s", esx, out)
		}
	}

	// tor1 back: its daemons restart from its vtep.db, the agent reconnects,
	// then its ports come up and the teams return to their primary.
	start := time.Now()
	if err := e.lab.StartNode(e.ctx, "tor1"); err != nil {
		t.Fatal(err)
	}
	started = true
	waitFor(e.ctx, t, 60*time.Second, "the agent reconnected to tor1", func() error {
		var sws []struct {
			Name      string `json:"name"`
			Connected bool   `json:"connected"`
		}
		if err := torctl(e.ctx, e.lab, &sws, "show", "switches"); err != nil {
			return err
		}
		for _, s := range sws {
			if s.Name == "tor1" && s.Connected {
				return nil
			}
		}
		return fmt.Errorf("switches %+v", sws)
	})
	reconnected := time.Since(start)
	// Like a real switch, tor1 brings its host ports up once it is
	// programmed: ovs-vtep has rebuilt its flows from vtep.db.
	waitFor(e.ctx, t, 60*time.Second, "tor1 programmed again", func() error { return e.programmed("tor1") })
	programmed := time.Since(start)
	tl = newTimeline()
	tl.watchFDB(e.ctx, t, e.lab, "kvm1", vmMACs)
	if e.ovsVTEP {
		tl.watchFlows(e.ctx, t, e.lab, "tor1", vmMACs)
		tl.watchFlows(e.ctx, t, e.lab, "tor2", vmMACs)
	}
	sv, sw = pv.seq(), pw.seq()
	e.snapshotOutage(tl, pv, pw, "tor1")
	tl.mark("tor1's host ports up")
	e.sh(t, "tor1", "ip link set eth1 up && ip link set eth2 up")
	back = true
	conv = e.fdbAt("kvm1", "10.0.0.11", vmMACs)
	up1, err1 := pv.settle(e.ctx, sv, 30*time.Second, conv)
	up2, err2 := pw.settle(e.ctx, sw, 30*time.Second, conv)
	tl.pings(pv, up1)
	tl.pings(pw, up2)
	tl.collect(e.ctx, e.lab)
	upLine := fmt.Sprintf("tor1 back (agent reconnected %s, programmed %s after restart), ports up: kvm11->vm11 %s; vm12->kvm12 %s",
		reconnected.Round(time.Millisecond), programmed.Round(time.Millisecond), up1, up2)
	if err := errors.Join(err1, err2); err != nil {
		e.result(t, "FAIL: %s | %s: not converged", downLine, upLine)
		t.Fatalf("tor1 back: %v\ntimeline:\n%s\n%s", err, tl, diagnose(e.ctx, e.lab))
	}
	if out := e.sh(t, "esx1", "ovs-appctl bond/show uplink"); !strings.Contains(out, "(eth1)") {
		t.Errorf("esx1's team did not return to eth1 (tor1):\n%s", out)
	}
	upLine += e.checkOutage(t, "tor1 back", max(up1.Outage, up2.Outage), downLine+" | "+upLine, tl, "tor1")
	t.Logf("tor1 back, timeline:\n%s", tl)
	e.result(t, "ok: %s | %s", downLine, upLine)
}

// snapshotOutage dumps, while an outage outlasts the bound, what tor (the
// switch the VMs are on) and kvm1 forward for the VMs' MACs: the datapath
// flows and the logical switches' MAC tables (ovs-vtep ToRs; on torswitch
// ToRs the kernel FDB), and kvm1's FDB.
func (e *e2e) snapshotOutage(tl *timeline, pv, pw *pinger, tor string) {
	grep := "grep -i -e " + strings.Join(vmMACs, " -e ")
	torCmd := "bridge fdb show | " + grep
	if e.ovsVTEP {
		torCmd = "ovs-appctl dpctl/dump-flows 2>&1 | " + grep + " | head -20; " +
			"for b in $(ovs-vsctl list-br | grep _vtep_ls); do echo $b; ovs-ofctl dump-flows $b table=1 | " + grep + "; done"
	}
	bound := e.failoverBound()
	tl.snapshotWhileDown(e.ctx, e.lab, []time.Duration{bound + time.Second, bound + 4*time.Second},
		func() bool { return pv.outage() || pw.outage() },
		[]nodeCmd{{tor, torCmd}, {"kvm1", "bridge fdb show | " + grep}})
}

// startFlows pings kvm11 -> vm11 (VNI 10100) and vm12 -> kvm12 (VNI 10200)
// every 100 ms and waits until both are answered.
func (e *e2e) startFlows(t *testing.T, before string) (kvmToVM, vmToKVM *pinger) {
	t.Helper()
	pv := startPinger(e.ctx, t, e.lab, "kvm11", "192.168.100.11")
	pw := startPinger(e.ctx, t, e.lab, "vm12", "192.168.200.32")
	waitFor(e.ctx, t, 20*time.Second, "traffic flows before the "+before, func() error {
		if !pv.answeredAfter(0, 5) || !pw.answeredAfter(0, 5) {
			return errString("no answers yet")
		}
		return nil
	})
	return pv, pw
}

// agentRestart: toragent stops and starts again. The switches keep their
// tables; rr (FRR, no graceful-restart helper for EVPN) flushes the agent's
// routes, rr2 (gobgpd) keeps them stale and reflecting, and the new agent
// opens its sessions only with its full table: no ping may be lost, counted
// over the restart and the 5 s after it.
func (e *e2e) agentRestart(t *testing.T) {
	pv, pw := e.startFlows(t, "restart")
	tl := newTimeline()
	tl.watchFDB(e.ctx, t, e.lab, "kvm1", vmMACs)
	sv, sw := pv.seq(), pw.seq()
	start := time.Now()
	tl.mark("toragent stopped")
	if err := e.lab.StopNode(e.ctx, "toragent", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := e.lab.StartNode(e.ctx, "toragent"); err != nil {
		t.Fatal(err)
	}
	healthy := time.Since(start)
	tl.mark("toragent started again and healthy")
	fiveMore := func(p *pinger) func() error {
		after := p.seq() + 50
		return func() error {
			if p.seq() < after {
				return errString("pinging on for 5 s after the restart")
			}
			return nil
		}
	}
	s1, err1 := pv.settle(e.ctx, sv, 30*time.Second, fiveMore(pv))
	s2, err2 := pw.settle(e.ctx, sw, 30*time.Second, fiveMore(pw))
	tl.pings(pv, s1)
	tl.pings(pw, s2)
	tl.collect(e.ctx, e.lab)
	if err := errors.Join(err1, err2); err != nil || s1.Lost > 0 || s2.Lost > 0 {
		e.result(t, "FAIL: agent back and healthy in %s; pings LOST: kvm11->vm11 %s; vm12->kvm12 %s",
			healthy.Round(time.Millisecond), s1, s2)
		t.Fatalf("toragent restart lost pings (%v): kvm11->vm11 %s; vm12->kvm12 %s\ntimeline:\n%s\n%s", err, s1, s2, tl, diagnose(e.ctx, e.lab))
	}
	e.result(t, "ok: agent back and healthy in %s; no ping lost: kvm11->vm11 %s; vm12->kvm12 %s",
		healthy.Round(time.Millisecond), s1, s2)
}

// rrRestart: each route reflector in turn (rr: FRR, rr2: gobgpd) stops and
// starts again, then both at once. With one left the agent and kvm1 keep
// its paths: no ping may be lost. With none, kvm1 (FRR 8.4: no graceful
// restart for the EVPN address family, FRRouting/frr#9749, added in FRR
// 10.5) deletes the agent's MACs from its FDB until its sessions return,
// while the agent keeps kvm1's (GoBGP's graceful restart). That outage is
// bounded by boundBothRRs unless the test sees kvm1's FDB lose the VMs'
// MACs: then the bound applies to what is ours, the outage beyond the time
// kvm1 held no entry for a VM.
func (e *e2e) rrRestart(t *testing.T) {
	var out []string
	for _, rrs := range [][]string{{"rr"}, {"rr2"}, {"rr", "rr2"}} {
		pv, pw := e.startFlows(t, "restart")
		// Where kvm1 sends the VMs' MACs now (tor1, with both teams on
		// it): the same place once the restart is over.
		vtepBefore := "10.0.0.11"
		if e.fdbAt("kvm1", vtepBefore, vmMACs)() != nil {
			vtepBefore = "10.0.0.12"
		}
		waitFor(e.ctx, t, 10*time.Second, "kvm1's FDB sends both VMs to one ToR", e.fdbAt("kvm1", vtepBefore, vmMACs))
		tl := newTimeline()
		tl.watchFDB(e.ctx, t, e.lab, "kvm1", vmMACs)
		sv, sw := pv.seq(), pw.seq()
		start := time.Now()
		tl.mark("%s stopped", strings.Join(rrs, "+"))
		for _, rr := range rrs {
			if err := e.lab.StopNode(e.ctx, rr, time.Second); err != nil {
				t.Fatal(err)
			}
		}
		for _, rr := range rrs {
			if err := e.lab.StartNode(e.ctx, rr); err != nil {
				t.Fatal(err)
			}
		}
		tl.mark("%s started again", strings.Join(rrs, "+"))
		var established time.Duration
		sessions := func() error {
			var peers []struct {
				State string `json:"state"`
			}
			if err := torctl(e.ctx, e.lab, &peers, "show", "peers"); err != nil {
				return err
			}
			if len(peers) != 2 {
				return fmt.Errorf("peers %+v (want rr and rr2)", peers)
			}
			for _, p := range peers {
				if !strings.EqualFold(p.State, "established") {
					return fmt.Errorf("peers %+v", peers)
				}
			}
			if established == 0 {
				established = time.Since(start)
				tl.mark("the agent's sessions with rr and rr2 are Established")
			}
			return nil
		}
		conv := func() error {
			if err := sessions(); err != nil {
				return err
			}
			return e.fdbAt("kvm1", vtepBefore, vmMACs)()
		}
		s1, err1 := pv.settle(e.ctx, sv, 60*time.Second, conv)
		s2, err2 := pw.settle(e.ctx, sw, 60*time.Second, conv)
		pv.stop()
		pw.stop()
		tl.pings(pv, s1)
		tl.pings(pw, s2)
		tl.collect(e.ctx, e.lab)
		name := strings.Join(rrs, "+")
		line := fmt.Sprintf("%s restarted, agent sessions Established %s after the stop; kvm11->vm11 %s; vm12->kvm12 %s",
			name, established.Round(time.Millisecond), s1, s2)
		if err := errors.Join(err1, err2); err != nil {
			e.result(t, "FAIL: %s: not converged", line)
			t.Fatalf("%s restart: %v\ntimeline:\n%s\n%s", name, err, tl, diagnose(e.ctx, e.lab))
		}
		worst := max(s1.Outage, s2.Outage)
		switch {
		case len(rrs) == 1 && (s1.Lost > 0 || s2.Lost > 0):
			e.result(t, "FAIL: %s", line)
			t.Fatalf("%s restart lost pings with the other route reflector up: %s\ntimeline:\n%s", name, line, tl)
		case len(rrs) == 2 && worst > boundBothRRs:
			flushed := tl.span("kvm1", "Deleted ", vmMACs)
			if flushed == 0 || worst > flushed+boundBothRRs {
				e.result(t, "FAIL: %s (bound %s; kvm1 held no entry for %s)", line, boundBothRRs, flushed)
				t.Fatalf("%s restart: longest outage %s, bound %s beyond the %s kvm1 (FRR) held no entry for a VM\ntimeline:\n%s",
					name, worst, boundBothRRs, flushed.Round(time.Millisecond), tl)
			}
			line += fmt.Sprintf(" [peer limitation: kvm1 (FRR 8.4, no EVPN graceful restart) deleted the VMs' MACs for %s; the rest is within %s]",
				flushed.Round(time.Millisecond), boundBothRRs)
		}
		out = append(out, line)
	}
	e.result(t, "ok: %s", strings.Join(out, " | "))
}

// diagnose collects what explains a failed scenario in the stitch lab.
func diagnose(ctx context.Context, lab testbed.Runtime) string {
	var b strings.Builder
	for _, c := range []struct{ node, cmd string }{
		{"toragent", "torctl show switches; torctl show peers; torctl show bindings; torctl show macs"},
		{"esx1", "ovs-appctl bond/show uplink | grep -E 'active member|^member|may_enable'"},
		{"esx2", "ovs-appctl bond/show uplink | grep -E 'active member|^member|may_enable'"},
		{"tor1", "for l in $(vtep-ctl list-ls); do echo $l; vtep-ctl list-local-macs $l; vtep-ctl list-remote-macs $l; done"},
		{"tor2", "for l in $(vtep-ctl list-ls); do echo $l; vtep-ctl list-local-macs $l; vtep-ctl list-remote-macs $l; done"},
		// ovs-vtep ToRs: the logical switches' MAC tables (learned flows
		// have cookie 0x5000); nothing on torswitch ToRs.
		{"tor1", "for b in $(ovs-vsctl list-br 2>/dev/null | grep _vtep_ls); do echo $b; ovs-ofctl dump-flows $b table=1; done"},
		{"tor2", "for b in $(ovs-vsctl list-br 2>/dev/null | grep _vtep_ls); do echo $b; ovs-ofctl dump-flows $b table=1; done"},
		{"kvm1", "bridge fdb show | grep dst"},
		// The fabric's view of the VMs' MACs: kvm1's and rr's (FRR) EVPN
		// tables, rr2's (gobgpd) RIB.
		{"kvm1", "vtysh -c 'show bgp l2vpn evpn route type macip' 2>&1 | grep -B1 -A3 '00:50:56' | head -60; vtysh -c 'show evpn mac vni all' 2>&1 | head -30"},
		{"rr", "vtysh -c 'show bgp l2vpn evpn route type macip' 2>&1 | grep -B1 -A3 '00:50:56' | head -60"},
		{"rr2", "gobgp -u 127.0.0.1 -p 50051 global rib -a evpn 2>&1 | grep -i '00:50:56' | head -20"},
	} {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if ctx.Err() == nil {
			cctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		}
		out, err := lab.Shell(cctx, c.node, c.cmd)
		cancel()
		fmt.Fprintf(&b, "--- %s: %s (%v)\n%s", c.node, c.cmd, err, out)
	}
	return b.String()
}

type errString string

func (e errString) Error() string { return string(e) }

// waitFor polls cond every 200 ms until it returns nil, failing the test
// after timeout.
func waitFor(ctx context.Context, t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := poll(ctx, timeout, cond); err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

// poll calls cond every 200 ms until it returns nil (then nil) or timeout
// passes (then cond's last error).
func poll(ctx context.Context, timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
