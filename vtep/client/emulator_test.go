package client

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// TestOVSVTEPEmulatorPing drives Open vSwitch's ovs-vtep emulator as the
// switch: torstitch writes the binding, the remote MAC and the flood list,
// and a VM on VLAN 100 behind an emulated VDS pings a kernel VXLAN endpoint.
//
//	h1 (10.1.0.1) ─ vds bridge (vm0 tag=100, trunk up0) ─ p1 [ps1, ovs-vtep] ══ VXLAN 10100 ══ kvm: vx10100 ⊂ br0 (10.1.0.2)
//
// emulatorLab builds the topology below around an ovs-vtep emulator (ps1,
// port p1) and returns it with the hosts and the KVM bridge's MAC:
//
//	h1 (10.1.0.1) ─ vds bridge (vm0 tag=100, trunk up0) ─ p1 [ps1, ovs-vtep] ══ VXLAN 10100 ══ kvm: vx10100 ⊂ br0 (10.1.0.2)
func emulatorLab(t *testing.T, prefix string, opt vteptest.EmulatorOptions) (e *vteptest.Emulator, h1, kvm *netnstest.Netns, kvmMAC l2.MAC) {
	netnstest.RequireRoot(t)
	tor := netnstest.New(t, prefix+"-tor")
	h1 = netnstest.New(t, prefix+"-h1")
	kvm = netnstest.New(t, prefix+"-kvm")

	// Underlay: tunnel IP on the internal port of a netdev bridge holding the underlay veth.
	netnstest.Veth(t, tor, "u-tor", kvm, "u-kvm", 1600)
	kvm.Run("ethtool", "-K", "u-kvm", "tx", "off")
	kvm.Run("ip", "addr", "add", "10.99.0.2/24", "dev", "u-kvm")
	e = vteptest.StartEmulatorWith(t, tor, "ps1", "10.99.0.1", opt)
	e.Vsctl("add-br", "ul", "--", "set", "bridge", "ul", "datapath_type=netdev")
	e.Vsctl("add-port", "ul", "u-tor")
	tor.Run("ip", "link", "set", "ul", "mtu", "1600", "up")
	tor.Run("ip", "addr", "add", "10.99.0.1/24", "dev", "ul")

	// The VDS: VM port tagged 100, trunk uplink into the switch's port p1.
	e.Vsctl("add-br", "vds", "--", "set", "bridge", "vds", "datapath_type=netdev")
	netnstest.Veth(t, tor, "up0", tor, "p1", 1500)
	e.Vsctl("add-port", "vds", "up0")
	netnstest.Veth(t, h1, "eth0", tor, "vm0", 1500)
	h1.Run("ethtool", "-K", "eth0", "tx", "off")
	h1.Run("ip", "addr", "add", "10.1.0.1/24", "dev", "eth0")
	e.Vsctl("add-port", "vds", "vm0", "tag=100")
	e.AddPort("p1")
	e.Run()

	// The KVM side: a plain kernel VXLAN VTEP flooding to the ToR.
	kvm.Run("ip", "link", "add", "br0", "type", "bridge")
	kvm.Run("ip", "link", "add", "vx10100", "type", "vxlan", "id", "10100", "local", "10.99.0.2", "dstport", "4789", "nolearning")
	kvm.Run("ip", "link", "set", "vx10100", "master", "br0")
	kvm.Run("ip", "link", "set", "vx10100", "up")
	kvm.Run("ip", "link", "set", "br0", "up")
	kvm.Run("ip", "addr", "add", "10.1.0.2/24", "dev", "br0")
	kvm.Run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx10100", "dst", "10.99.0.1")
	kvmMAC = l2.MustMAC(kvm.Run("cat", "/sys/class/net/br0/address"))

	return e, h1, kvm, kvmMAC
}

// pingThroughStitch writes the stitch (binding, KVM's MAC, flood list) into
// the emulator through c and pings both ways.
func pingThroughStitch(t *testing.T, c *Client, h1, kvm *netnstest.Netns, kvmMAC l2.MAC) *plan.Desired {
	d := &plan.Desired{
		LogicalSwitches: []plan.LogicalSwitch{{VNI: 10100, ReplicationMode: plan.SourceNode}},
		Bindings:        []plan.PortBinding{{Port: "p1", VLAN: 100, VNI: 10100}},
		RemoteMACs:      []l2.RemoteMAC{{VNI: 10100, MAC: kvmMAC, IP: ip("10.1.0.2"), VTEP: ip("10.99.0.2")}},
		Flood:           map[l2.VNI][]netip.Addr{10100: {ip("10.99.0.2")}},
	}
	reconcile(t, c, d)
	start := time.Now()
	n := vteptest.WaitPing(t, h1, "10.1.0.2", 30*time.Second)
	t.Logf("VLAN 100 -> VNI 10100 ping after %d attempts, %v", n, time.Since(start).Round(time.Millisecond))
	vteptest.WaitPing(t, kvm, "10.1.0.1", 10*time.Second)
	return d
}

func TestOVSVTEPEmulatorPing(t *testing.T) {
	e, h1, kvm, kvmMAC := emulatorLab(t, "tsv", vteptest.EmulatorOptions{})
	c := startClient(t, "ps1", e.Endpoint(), 0)
	d := pingThroughStitch(t, c, h1, kvm, kvmMAC)

	// ovs-vtep learned h1's MAC: torstitch sees it as a local MAC with the tunnel IP.
	h1MAC := l2.MustMAC(h1.Run("cat", "/sys/class/net/eth0/address"))
	waitFor(t, "h1's MAC in Ucast_Macs_Local", 10*time.Second, func() bool {
		o, err := c.Observed()
		if err != nil {
			return false
		}
		for _, m := range o.LocalMACs() {
			if m.MAC == h1MAC && m.VNI == 10100 && m.VTEP == ip("10.99.0.1") {
				return true
			}
		}
		return false
	})
	if res := reconcile(t, c, d); res.Transactions != 0 {
		t.Fatalf("steady state against ovs-vtep: %d transactions", res.Transactions)
	}
}

// TestInboundOVSVTEPEmulatorPing: the same stitch with the emulator's
// ovsdb-server dialing in (Manager row ssl:127.0.0.1:PORT, ovs-pki
// certificates) instead of being dialed: traffic passes VLAN 100 ⇄ VNI
// 10100 with everything written over the accepted connection.
func TestInboundOVSVTEPEmulatorPing(t *testing.T) {
	netnstest.RequireRoot(t)
	pki := vteptest.NewOVSPKI(t)
	agentCert := pki.Sign("agent", "agent", "controller")
	ps1 := pki.Sign("ps1", "ps1", "switch")
	e, h1, kvm, kvmMAC := emulatorLab(t, "tsi", vteptest.EmulatorOptions{DBOutsideNetns: true,
		DBArgs: []string{"--private-key=" + ps1.Key, "--certificate=" + ps1.Cert, "--ca-cert=" + pki.ControllerCA()}})
	var ref refusals
	c := inboundClient(t, "ps1", TLSFiles{})
	port := startListener(t, ListenerConfig{Address: "pssl:127.0.0.1:0",
		TLS: TLSFiles{CA: pki.SwitchCA(), Cert: agentCert.Cert, Key: agentCert.Key}}, &ref, c)
	e.VtepCtl("set-manager", fmt.Sprintf("ssl:127.0.0.1:%d", port))
	waitFor(t, "ps1 dialed in", 20*time.Second, c.Connected)
	d := pingThroughStitch(t, c, h1, kvm, kvmMAC)
	if res := reconcile(t, c, d); res.Transactions != 0 {
		t.Fatalf("steady state against ovs-vtep (inbound): %d transactions", res.Transactions)
	}
	if !strings.HasPrefix(c.Status().Endpoint, "inbound:") {
		t.Fatalf("status endpoint %q", c.Status().Endpoint)
	}
}
