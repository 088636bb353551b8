package testbed_test

import (
	"context"
	"os"
	"os/exec"
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

// TestStitchToRScriptsVLANToVXLAN deploys part of the stitch lab from its
// own scripts (tor1 with ovsdb-server + ovs-vtep, esx1 with its VDS and
// vm11 on VLAN 100, kvm1 with kernel VXLAN + FRR and kvm11 on VNI 10100),
// binds VLAN 100 to VNI 10100 with vtep-ctl as the agent would, adds the
// remote MAC and flood entries by hand on both sides, and pings across.
func TestStitchToRScriptsVLANToVXLAN(t *testing.T) {
	requireStitchPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := testbed.Options{
		Logger:        testLogger(t),
		Name:          "tb-stitch",
		Nodes:         []string{"underlay", "tor1", "esx1", "vm11", "kvm1", "kvm11"},
		HealthTimeout: time.Minute,
	}
	cleanLab(t, stitchLab, opts)
	start := time.Now()
	lab, err := testbed.Deploy(ctx, stitchLab, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stitch subset deployed and healthy in %s", time.Since(start).Round(time.Millisecond))
	sh := func(node, cmd string) string {
		t.Helper()
		out, err := lab.Shell(ctx, node, cmd)
		if err != nil {
			t.Fatalf("%v", err)
		}
		return string(out)
	}

	// The agent's path: hardware_vtep reachable over the underlay.
	if out := sh("kvm1", "ovsdb-client --timeout=5 list-dbs tcp:10.0.0.11:6640"); !strings.Contains(out, "hardware_vtep") {
		t.Fatalf("tor1's ovsdb over the underlay lists %q", out)
	}

	// Standing in for the agent: VLAN 100 on tor1:eth1 <-> VNI 10100, kvm1
	// as the remote VTEP for kvm11's MAC and for flooding.
	bindStart := time.Now()
	sh("tor1", "vtep-ctl add-ls ls10100 -- set Logical_Switch ls10100 tunnel_key=10100 && "+
		"vtep-ctl bind-ls tor1 eth1 100 ls10100 && "+
		"vtep-ctl add-ucast-remote ls10100 52:54:00:00:01:31 10.0.0.21 && "+
		"vtep-ctl add-mcast-remote ls10100 unknown-dst 10.0.0.21")
	// Standing in for FRR's EVPN: tor1 as flood target and as the VTEP of vm11.
	sh("kvm1", "bridge fdb append 00:00:00:00:00:00 dev vxlan10100 dst 10.0.0.11 && "+
		"bridge fdb replace 00:50:56:00:01:11 dev vxlan10100 dst 10.0.0.11 self static")

	waitFor(ctx, t, 30*time.Second, "vm11 pings kvm11 across VLAN 100 -> VNI 10100", func() error {
		_, err := lab.Exec(ctx, "vm11", "ping", "-c", "1", "-W", "1", "192.168.100.31")
		return err
	})
	t.Logf("first ping vm11 -> kvm11 %s after the binding", time.Since(bindStart).Round(time.Millisecond))
	if out, err := lab.Exec(ctx, "kvm11", "ping", "-c", "3", "-i", "0.2", "-W", "1", "192.168.100.11"); err != nil {
		t.Fatalf("kvm11 -> vm11: %v\n%s", err, out)
	}
	// TCP-sized frames too (checksums and MTU across OVS userspace).
	if out, err := lab.Exec(ctx, "vm11", "ping", "-c", "2", "-s", "1400", "-M", "do", "-W", "1", "192.168.100.31"); err != nil {
		t.Fatalf("1400-byte ping vm11 -> kvm11: %v\n%s", err, out)
	}
	// ovs-vtep reports vm11's MAC as local (what the agent advertises).
	waitFor(ctx, t, 10*time.Second, "vm11's MAC in tor1's Ucast_Macs_Local", func() error {
		out, err := lab.Shell(ctx, "tor1", "vtep-ctl list-local-macs ls10100")
		if err == nil && !strings.Contains(string(out), "00:50:56:00:01:11") {
			return errString("not yet: " + string(out))
		}
		return err
	})
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
