package testbed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Published networks (issue 17) in the lab: torctl network publish makes the
// agent create a port group on the simulated vCenter's dvs-lab (VLAN from
// vcenter.vlan_pool in containerlab/nodes/toragent/toragent.yaml), the
// watcher binds that VLAN to the published VNI on the ToR ports facing the
// switch's hosts, and a VM port on esx1 tagged with that VLAN pings a KVM
// VM in the VNI. The VNI (10350) is not what the lab's offset policy would
// give the VLAN: it comes from the port group's ownership mark.

const (
	pubVNI     = 10350
	pubName    = "pub-e2e"
	pubVMIP    = "192.168.35.11"
	pubVMMAC   = "00:50:56:00:35:11"
	pubKVMIP   = "192.168.35.31"
	pubKVMMAC  = "52:54:00:00:35:31"
	pubKVMAddr = "10.0.0.21" // kvm1's VTEP address (stitch.clab.yml)
)

type pubNetworks struct {
	State    string `json:"state"`
	Error    string `json:"error"`
	Networks []struct {
		VNI       int      `json:"vni"`
		Name      string   `json:"name"`
		VLAN      int      `json:"vlan"`
		PortGroup string   `json:"port_group"`
		VMs       []string `json:"vms"`
		State     string   `json:"state"`
		Error     string   `json:"error"`
	} `json:"networks"`
}

type pubBinding struct {
	VLAN   int    `json:"vlan"`
	VNI    int    `json:"vni"`
	Source string `json:"source"`
	Ports  []struct {
		Switch string `json:"switch"`
		Port   string `json:"port"`
	} `json:"ports"`
}

// pubTorctl runs torctl in the agent's node; with v it asks for JSON.
func pubTorctl(ctx context.Context, e *e2e, v any, args ...string) (string, error) {
	if v != nil {
		args = append(args, "-o", "json")
	}
	out, err := e.lab.Exec(ctx, "toragent", append([]string{"torctl"}, args...)...)
	if err != nil {
		return string(out), fmt.Errorf("torctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	if v != nil {
		return string(out), json.Unmarshal(out, v)
	}
	return string(out), nil
}

// pubWait polls cond every 100 ms until it holds or timeout.
func pubWait(ctx context.Context, t *testing.T, timeout time.Duration, what string, cond func() error) {
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
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *e2e) pubShell(t *testing.T, node, cmd string) {
	t.Helper()
	if out, err := e.lab.Shell(e.ctx, node, cmd); err != nil {
		t.Fatalf("%s: %s: %v\n%s", node, cmd, err, out)
	}
}

// publishNetwork is the "publish" scenario.
func (e *e2e) publishNetwork(t *testing.T) {
	ctx := e.ctx
	t0 := time.Now()
	out, err := pubTorctl(ctx, e, nil, "network", "publish", "--vni", fmt.Sprint(pubVNI), "--name", pubName)
	if err != nil {
		t.Fatal(err)
	}
	published := time.Since(t0)
	t.Logf("torctl: %s", strings.TrimSpace(out))
	t.Cleanup(func() {
		// Best effort, in reverse: the VM ports, then the network.
		_, _ = e.lab.Shell(context.Background(), "esx1", "ovs-vsctl --if-exists del-port vds0 pub0")
		_, _ = e.lab.Shell(context.Background(), "kvm1", "ip link del vxlan"+fmt.Sprint(pubVNI)+" 2>/dev/null; ip link del br"+fmt.Sprint(pubVNI)+" 2>/dev/null; true")
	})
	var ns pubNetworks
	if _, err := pubTorctl(ctx, e, &ns, "show", "networks"); err != nil {
		t.Fatal(err)
	}
	vlan := 0
	for _, n := range ns.Networks {
		if n.VNI == pubVNI && n.State == "ready" {
			vlan = n.VLAN
		}
	}
	if vlan == 0 {
		t.Fatalf("VNI %d not ready after publish: %+v", pubVNI, ns)
	}

	// The binding: the published VLAN to the published VNI on the four host ports.
	want := "tor1:eth1,tor1:eth2,tor2:eth1,tor2:eth2"
	pubWait(ctx, t, 30*time.Second, "binding of the published VLAN", func() error {
		var bs []pubBinding
		if _, err := pubTorctl(ctx, e, &bs, "show", "bindings"); err != nil {
			return err
		}
		for _, b := range bs {
			if b.VLAN != vlan {
				continue
			}
			var ports []string
			for _, p := range b.Ports {
				ports = append(ports, p.Switch+":"+p.Port)
			}
			if got := strings.Join(ports, ","); b.VNI == pubVNI && b.Source == "vcenter" && got == want {
				return nil
			}
			return fmt.Errorf("VLAN %d bound as %+v", vlan, b)
		}
		return fmt.Errorf("VLAN %d not bound yet", vlan)
	})
	bound := time.Since(t0)

	// A VM port on esx1 in the published port group's VLAN; a KVM VM in the
	// VNI on kvm1 (its own bridge and VXLAN device, as the KVM host does for
	// its VNIs; FRR's advertise-all-vni picks the VNI up).
	vni := fmt.Sprint(pubVNI)
	e.pubShell(t, "kvm1", "ip link add br"+vni+" type bridge && ip link set br"+vni+" address "+pubKVMMAC+
		" && ip link add vxlan"+vni+" type vxlan id "+vni+" local "+pubKVMAddr+" dstport 4789 nolearning"+
		" && ip link set vxlan"+vni+" master br"+vni+" mtu 1500 up && bridge link set dev vxlan"+vni+" learning off neigh_suppress off"+
		" && ip link set br"+vni+" mtu 1500 up && ip addr add "+pubKVMIP+"/24 dev br"+vni)
	e.pubShell(t, "esx1", fmt.Sprintf("ovs-vsctl --may-exist add-port vds0 pub0 tag=%d -- set interface pub0 type=internal"+
		" && ip link set pub0 address %s mtu 1500 && (ethtool -K pub0 tx off >/dev/null 2>&1 || true)"+
		" && ip addr add %s/24 dev pub0 && ip link set pub0 up", vlan, pubVMMAC, pubVMIP))
	t1 := time.Now()
	pubWait(ctx, t, 60*time.Second, "esx1 VM on the published network pings kvm1's VM in VNI "+vni, func() error {
		out, err := e.lab.Exec(ctx, "esx1", "ping", "-c", "1", "-W", "1", "-I", "pub0", pubKVMIP)
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
	pinged := time.Since(t1)
	if out, err := e.lab.Exec(ctx, "kvm1", "ping", "-c", "1", "-W", "2", pubVMIP); err != nil {
		t.Fatalf("kvm1 -> published network VM: %v\n%s", err, out)
	}

	// Unpublish: the port group goes (no vCenter VM is attached to it), and so does the binding.
	if out, err := pubTorctl(ctx, e, nil, "network", "unpublish", "--vni", vni); err != nil {
		t.Fatalf("unpublish: %v", err)
	} else {
		t.Logf("torctl: %s", strings.TrimSpace(out))
	}
	pubWait(ctx, t, 30*time.Second, "binding of the unpublished VLAN gone", func() error {
		var bs []pubBinding
		if _, err := pubTorctl(ctx, e, &bs, "show", "bindings"); err != nil {
			return err
		}
		for _, b := range bs {
			if b.VLAN == vlan {
				return fmt.Errorf("VLAN %d still bound: %+v", vlan, b)
			}
		}
		return nil
	})
	e.result(t, "ok: VNI %d published on VLAN %d in %s, bound on both ToRs %s after the publish; "+
		"VM on esx1 -> KVM VM ping within %s of the VM ports; unpublished and unbound",
		pubVNI, vlan, published.Round(time.Millisecond), bound.Round(time.Millisecond), pinged.Round(time.Millisecond))
}
