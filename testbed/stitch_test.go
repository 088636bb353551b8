package testbed_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/testbed"
)

const stitchLab = "../containerlab/stitch.clab.yml"

func requireStitchPeers(t *testing.T) {
	t.Helper()
	requireRoot(t)
	for _, bin := range []string{"ovsdb-server", "ovs-vswitchd", "vtep-ctl", "ovsdb-client", "ethtool", "bridge", "/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "vtysh"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (make deps installs openvswitch-vtep, frr, iproute2, ethtool)", bin)
		}
	}
	if _, err := os.Stat("/usr/share/openvswitch/scripts/ovs-vtep"); err != nil {
		t.Skip("needs the ovs-vtep emulator (Debian openvswitch-vtep)")
	}
}

// TestStitchFabricScripts deploys the whole stitch lab from its own
// scripts, with stand-ins (sleep) for the agent and the simulated vCenter:
// the underlay, the FRR route reflector and KVM VTEP, both ToRs (ovsdb-server +
// ovs-vtep), both ESXi VDS bridges and the VMs. It checks what the agent
// will rely on (hardware_vtep over the underlay, EVPN between FRR peers),
// then, standing in for the agent, binds VLAN 100 to VNI 10100 on tor1 with
// vtep-ctl, adds the remote MAC and flood entries by hand on both sides, and
// pings from VMware VMs on VLAN 100 to the KVM VM on VNI 10100.
func TestStitchFabricScripts(t *testing.T) {
	requireStitchPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Stand-ins for binaries other packages build (cmd/toragent, cmd/torvcsim).
	bin := t.TempDir()
	for _, name := range []string{"toragent", "torvcsim"} {
		stub := "#!/bin/sh\necho \"stand-in $0 $*\"\nexec sleep 600\n"
		if err := os.WriteFile(filepath.Join(bin, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := testbed.Options{Logger: testLogger(t), Name: "tb-stitch", BinDirs: []string{bin}, HealthTimeout: time.Minute}
	cleanLab(t, stitchLab, opts)
	start := time.Now()
	lab, err := testbed.Deploy(ctx, stitchLab, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stitch lab (%d nodes, %d links) deployed and healthy in %s",
		len(lab.Topology.Nodes), len(lab.Topology.Links), time.Since(start).Round(time.Millisecond))
	sh := func(node, cmd string) string {
		t.Helper()
		out, err := lab.Shell(ctx, node, cmd)
		if err != nil {
			t.Fatalf("%v", err)
		}
		return string(out)
	}

	// The agent node: its cmd runs with its config, /run/torstitch is its own.
	if b, err := os.ReadFile(filepath.Join(lab.NodeDir("toragent"), "cmd.log")); err != nil ||
		!strings.Contains(string(b), "--config /lab/toragent/toragent.yaml") {
		t.Errorf("toragent cmd log: %q %v", b, err)
	}
	sh("toragent", "touch /run/torstitch/probe")
	if _, err := os.Stat(filepath.Join(lab.NodeDir("toragent"), "probe")); err != nil {
		t.Errorf("toragent's /run/torstitch is not its node dir: %v", err)
	}
	// The agent's paths: both switches' hardware_vtep over the underlay.
	for _, tor := range []string{"10.0.0.11", "10.0.0.12"} {
		if out := sh("toragent", "ovsdb-client --timeout=5 list-dbs tcp:"+tor+":6640"); !strings.Contains(out, "hardware_vtep") {
			t.Fatalf("ovsdb at %s over the underlay lists %q", tor, out)
		}
	}
	// EVPN: kvm1 peers with the route reflector and announces both VNIs.
	waitFor(ctx, t, 45*time.Second, "rr holds kvm1's type-3 routes for VNI 10100 and 10200", func() error {
		out, err := lab.Shell(ctx, "rr", "vtysh -c 'show bgp l2vpn evpn route type multicast'")
		if err != nil {
			return err
		}
		for _, rt := range []string{"RT:65000:10100", "RT:65000:10200"} {
			if !strings.Contains(string(out), rt) {
				return errString("missing " + rt + ":\n" + string(out))
			}
		}
		return nil
	})
	t.Logf("EVPN type-3 routes at the route reflector %s after deploy", time.Since(start).Round(time.Millisecond))
	// ESXi: active-backup teams, tor1 active.
	for _, esx := range []string{"esx1", "esx2"} {
		if out := sh(esx, "ovs-appctl bond/show uplink"); !strings.Contains(out, "active member mac") || !strings.Contains(out, "(eth1)") {
			t.Errorf("%s team not active on eth1:\n%s", esx, out)
		}
	}

	// Standing in for the agent: VLAN 100 on tor1's ESXi ports <-> VNI
	// 10100; kvm1 as the VTEP of kvm11's MAC and as flood target.
	bindStart := time.Now()
	for _, tor := range []string{"tor1", "tor2"} {
		sh(tor, "vtep-ctl add-ls ls10100 -- set Logical_Switch ls10100 tunnel_key=10100 && "+
			"vtep-ctl bind-ls "+tor+" eth1 100 ls10100 && vtep-ctl bind-ls "+tor+" eth2 100 ls10100 && "+
			"vtep-ctl add-ucast-remote ls10100 52:54:00:00:01:31 10.0.0.21 && "+
			"vtep-ctl add-mcast-remote ls10100 unknown-dst 10.0.0.21")
	}
	// Standing in for EVPN routes from the agent: both ToRs as flood
	// targets, tor1 as the VTEP of vm11 at kvm1.
	sh("kvm1", "bridge fdb append 00:00:00:00:00:00 dev vxlan10100 dst 10.0.0.11 && "+
		"bridge fdb append 00:00:00:00:00:00 dev vxlan10100 dst 10.0.0.12 && "+
		"bridge fdb replace 00:50:56:00:01:11 dev vxlan10100 dst 10.0.0.11 self static")

	waitFor(ctx, t, 30*time.Second, "vm11 pings kvm11 across VLAN 100 -> VNI 10100", func() error {
		_, err := lab.Exec(ctx, "vm11", "ping", "-c", "1", "-W", "1", "192.168.100.31")
		return err
	})
	t.Logf("first ping vm11 -> kvm11 %s after the binding", time.Since(bindStart).Round(time.Millisecond))
	for _, p := range []struct{ from, to string }{
		{"kvm11", "192.168.100.11"}, // VXLAN -> VLAN
		{"vm21", "192.168.100.31"},  // esx2 -> kvm1 (flooded ARP, then unicast to kvm1)
		{"vm21", "192.168.100.11"},  // esx2 -> esx1 through tor1's logical switch
	} {
		pairStart := time.Now()
		waitFor(ctx, t, 15*time.Second, p.from+" pings "+p.to, func() error {
			_, err := lab.Exec(ctx, p.from, "ping", "-c", "1", "-W", "1", p.to)
			if err != nil {
				err = fmt.Errorf("%w\n%s", err, diagnose(ctx, lab))
			}
			return err
		})
		t.Logf("%s -> %s answered after %s", p.from, p.to, time.Since(pairStart).Round(time.Millisecond))
	}
	// Full-size frames (checksums and MTU across OVS userspace and VXLAN).
	if out, err := lab.Exec(ctx, "vm11", "ping", "-c", "2", "-s", "1472", "-M", "do", "-W", "1", "192.168.100.31"); err != nil {
		t.Errorf("1500-byte frames vm11 -> kvm11: %v\n%s", err, out)
	}
	// Layer 2 isolation (all VMs share one /16): VLAN 200 is not bound, so
	// its VMs stay cut off, and VLAN 100 reaches nothing of VNI 10200.
	for _, p := range []struct{ from, to string }{
		{"vm12", "192.168.200.22"},  // VLAN 200 esx1 -> esx2
		{"vm11", "192.168.200.12"},  // VLAN 100 -> VLAN 200
		{"vm11", "192.168.200.32"},  // VLAN 100 -> VNI 10200
		{"kvm12", "192.168.100.11"}, // VNI 10200 -> VLAN 100
	} {
		if _, err := lab.Exec(ctx, p.from, "ping", "-c", "1", "-W", "1", p.to); err == nil {
			t.Errorf("%s reaches %s across segments", p.from, p.to)
		}
	}
	// ovs-vtep reports vm11's MAC as local (what the agent advertises).
	waitFor(ctx, t, 10*time.Second, "vm11's MAC in tor1's Ucast_Macs_Local", func() error {
		out, err := lab.Shell(ctx, "tor1", "vtep-ctl list-local-macs ls10100")
		if err == nil && !strings.Contains(string(out), "00:50:56:00:01:11") {
			return errString("not yet: " + string(out))
		}
		return err
	})

	// Uplink failover: tor1's port to esx1 loses carrier, esx1's team moves
	// to eth2 (tor2); kvm1 learns vm11 behind tor2 (by hand, as an EVPN MAC
	// move would tell it).
	failStart := time.Now()
	sh("tor1", "ip link set eth1 down")
	waitFor(ctx, t, 10*time.Second, "esx1's team fails over to eth2", func() error {
		out, err := lab.Shell(ctx, "esx1", "ovs-appctl bond/show uplink")
		if err == nil && !strings.Contains(string(out), "(eth2)") {
			return errString("active member still eth1:\n" + string(out))
		}
		return err
	})
	sh("kvm1", "bridge fdb replace 00:50:56:00:01:11 dev vxlan10100 dst 10.0.0.12 self static")
	waitFor(ctx, t, 20*time.Second, "vm11 pings kvm11 through tor2", func() error {
		_, err := lab.Exec(ctx, "vm11", "ping", "-c", "1", "-W", "1", "192.168.100.31")
		return err
	})
	t.Logf("traffic through tor2 %s after tor1's port went down", time.Since(failStart).Round(time.Millisecond))
	if out, err := lab.Exec(ctx, "kvm11", "ping", "-c", "2", "-i", "0.2", "-W", "2", "192.168.100.11"); err != nil {
		t.Errorf("kvm11 -> vm11 through tor2: %v\n%s", err, out)
	}

	// tor1 crashes and comes back: its scripts restart it with the
	// hardware_vtep contents it had (persisted in its vtep.db).
	if err := lab.StopNode(ctx, "tor1", time.Second); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	if err := lab.StartNode(ctx, "tor1"); err != nil {
		t.Fatal(err)
	}
	t.Logf("tor1 restarted and healthy in %s", time.Since(restart).Round(time.Millisecond))
	if out := sh("toragent", "ovsdb-client --timeout=5 list-dbs tcp:10.0.0.11:6640"); !strings.Contains(out, "hardware_vtep") {
		t.Errorf("tor1's ovsdb after restart lists %q", out)
	}
	if out := sh("tor1", "vtep-ctl list-ls"); !strings.Contains(out, "ls10100") {
		t.Errorf("tor1 lost its logical switch over the restart: %q", out)
	}
}

// diagnose collects what explains a failed ping in the stitch lab.
func diagnose(ctx context.Context, lab *testbed.Lab) string {
	var b strings.Builder
	for _, c := range []struct{ node, cmd string }{
		{"esx1", "ovs-appctl bond/show uplink | grep -E 'active member|^member|may_enable'"},
		{"esx2", "ovs-appctl bond/show uplink | grep -E 'active member|^member|may_enable'"},
		{"tor1", "vtep-ctl list-local-macs ls10100; vtep-ctl list-remote-macs ls10100"},
		{"tor2", "vtep-ctl list-local-macs ls10100"},
		{"kvm1", "bridge fdb show dev vxlan10100 | grep dst"},
	} {
		out, err := lab.Shell(ctx, c.node, c.cmd)
		fmt.Fprintf(&b, "--- %s: %s (%v)\n%s", c.node, c.cmd, err, out)
	}
	return b.String()
}

type errString string

func (e errString) Error() string { return string(e) }

func waitFor(ctx context.Context, t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
