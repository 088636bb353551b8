package physical

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/physical/controller"
	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/physical/nstest"
)

// vdsLab is the namespace topology of the end-to-end tests:
//
//	h1 (VLAN 100) ─┐
//	h2 (VLAN 200) ─┼─ vds: OVS netdev bridge ── trunk ── sw: torswitch ── underlay ── rem: kernel VXLAN
//	h3 (VLAN 300) ─┘    (emulated ESXi VDS)    eth1                       192.168.77.0/24     │ VNI 5000 → rh5 10.77.0.3
//	                                                                                          │ VNI 6000 → rh6 10.77.0.4
type vdsLab struct {
	*netnstest.Lab
	sw, vds, h1, h2, h3, rem, rh5, rh6 *netnstest.Netns
}

const (
	swTunnel  = "192.168.77.1"
	remTunnel = "192.168.77.2"
)

func newVDSLab(t *testing.T) *vdsLab {
	t.Helper()
	netnstest.RequireCommands(t, "ethtool", "bridge", "ping")
	l := &vdsLab{Lab: netnstest.NewLab(t, "ts")}
	l.sw, l.vds, l.rem = l.NS("sw"), l.NS("vds"), l.NS("rem")
	l.h1, l.h2, l.h3 = l.NS("h1"), l.NS("h2"), l.NS("h3")
	l.rh5, l.rh6 = l.NS("rh5"), l.NS("rh6")

	// Underlay.
	l.Veth(l.sw, "und", l.rem, "und", 1600)
	l.sw.Addr("und", swTunnel+"/24")
	l.rem.Addr("und", remTunnel+"/24")

	// Remote plain kernel VTEP with one host per VNI.
	for _, r := range []struct {
		vni  int
		host *netnstest.Netns
		ip   string
	}{{5000, l.rh5, "10.77.0.3/24"}, {6000, l.rh6, "10.77.0.4/24"}} {
		br, vx := fmt.Sprintf("br%d", r.vni), fmt.Sprintf("vx%d", r.vni)
		l.rem.Run("ip", "link", "add", br, "type", "bridge")
		l.rem.Run("ip", "link", "add", vx, "type", "vxlan", "id", fmt.Sprint(r.vni), "local", remTunnel,
			"dstport", "4789")
		l.rem.Run("ip", "link", "set", vx, "master", br, "up")
		l.rem.Run("ip", "link", "set", br, "up")
		l.rem.Run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", vx, "dst", swTunnel)
		l.Veth(l.rem, "p"+fmt.Sprint(r.vni), r.host, "eth0", 0)
		l.rem.Run("ip", "link", "set", "p"+fmt.Sprint(r.vni), "master", br)
		r.host.Addr("eth0", r.ip)
	}

	// The VDS: an OVS userspace bridge tagging host ports, trunk to the switch.
	l.Veth(l.vds, "trunk", l.sw, "eth1", 0)
	ovs := netnstest.StartOVS(t, l.vds, netnstest.OVSOptions{})
	ovs.Vsctl("add-br", "vds", "--", "set", "bridge", "vds", "datapath_type=netdev")
	ovs.Vsctl("add-port", "vds", "trunk")
	for i, h := range []struct {
		ns   *netnstest.Netns
		ip   string
		vlan int
	}{{l.h1, "10.77.0.1/24", 100}, {l.h2, "10.77.0.2/24", 200}, {l.h3, "10.77.0.5/24", 300}} {
		p := fmt.Sprintf("vm%d", i+1)
		l.Veth(l.vds, p, h.ns, "eth0", 0)
		h.ns.Addr("eth0", h.ip)
		ovs.Vsctl("add-port", "vds", p, fmt.Sprintf("tag=%d", h.vlan))
	}
	return l
}

func (l *vdsLab) ping(from *netnstest.Netns, to string) error {
	out, err := from.Try("ping", "-c", "1", "-W", "1", to)
	if err != nil {
		return fmt.Errorf("ping %s from %s: %v\n%s", to, from.Name, err, out)
	}
	return nil
}

func (l *vdsLab) pingEventually(t *testing.T, from *netnstest.Netns, to string) {
	t.Helper()
	nstest.Eventually(t, 20*time.Second, func() (bool, string) {
		err := l.ping(from, to)
		return err == nil, fmt.Sprint(err)
	})
}

// TestVLANToVXLAN drives torswitch through OVSDB the way the agent drives
// ovs-vtep and checks the kernel mappings, forwarding both ways between
// VLAN-tagged hosts behind an OVS-emulated VDS and a plain kernel VXLAN
// VTEP, isolation between VLANs, and local MAC learning.
func TestVLANToVXLAN(t *testing.T) {
	l := newVDSLab(t)
	endpoint := startServer(t)
	newSwitch(t, endpoint, controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: 500 * time.Millisecond,
	}, dataplane.Options{NetNS: l.sw.Handle(), ARPSuppression: true})
	a := newAgent(t, endpoint)

	ls5 := a.logicalSwitch("ls5000", 5000)
	ls6 := a.logicalSwitch("ls6000", 6000)
	a.bind("tor1", "eth1", 100, ls5)
	a.bind("tor1", "eth1", 200, ls6)
	rh5, rh6 := l.rh5.MAC("eth0"), l.rh6.MAC("eth0")
	a.remoteMACs(ls5, remTunnel, map[string]string{rh5: "10.77.0.3"})
	a.remoteMACs(ls6, remTunnel, map[string]string{rh6: "10.77.0.4"})
	a.flood(ls5, remTunnel)
	a.flood(ls6, remTunnel)

	t.Run("switch rows", func(t *testing.T) {
		ps, err := a.physicalSwitch("tor1")
		if err != nil {
			t.Fatal(err)
		}
		if len(ps.TunnelIPs) != 1 || ps.TunnelIPs[0] != swTunnel {
			t.Fatalf("tunnel_ips = %v, want [%s]", ps.TunnelIPs, swTunnel)
		}
	})
	t.Run("kernel mappings", func(t *testing.T) {
		for _, c := range []struct{ dev, mac string }{
			{"tsvx5000", rh5}, {"tsvx5000", "00:00:00:00:00:00"}, {"tsvx6000", rh6}, {"tsvx6000", "00:00:00:00:00:00"},
		} {
			nstest.Eventually(t, 10*time.Second, func() (bool, string) { return fdbHas(l.sw, c.dev, c.mac, remTunnel) })
		}
		out := l.sw.Run("ip", "-d", "link", "show", "tsvx5000")
		for _, want := range []string{"vxlan id 5000", "local " + swTunnel, "dstport 4789", "nolearning", "master tsbr5000"} {
			if !strings.Contains(out, want) {
				t.Errorf("tsvx5000 lacks %q:\n%s", want, out)
			}
		}
		out = l.sw.Run("ip", "neigh", "show", "dev", "tsbr5000")
		if !strings.Contains(out, "10.77.0.3 lladdr "+rh5) {
			t.Errorf("no ARP-suppression neighbour for 10.77.0.3:\n%s", out)
		}
	})
	t.Run("VLAN 100 to VNI 5000 and back", func(t *testing.T) {
		l.pingEventually(t, l.h1, "10.77.0.3")
		l.pingEventually(t, l.rh5, "10.77.0.1")
	})
	t.Run("VLAN 200 to VNI 6000", func(t *testing.T) {
		l.pingEventually(t, l.h2, "10.77.0.4")
	})
	t.Run("isolation", func(t *testing.T) {
		for _, c := range []struct {
			from *netnstest.Netns
			to   string
		}{
			{l.h1, "10.77.0.4"}, // VLAN 100 must not reach VNI 6000
			{l.h2, "10.77.0.3"}, // VLAN 200 must not reach VNI 5000
			{l.h3, "10.77.0.3"}, // unbound VLAN 300 reaches nothing
			{l.h3, "10.77.0.1"}, // nor other VLANs on the same trunk
		} {
			if err := l.ping(c.from, c.to); err == nil {
				t.Errorf("ping %s from %s succeeded across VLANs", c.to, c.from.Name)
			}
		}
	})
	t.Run("local MAC learning", func(t *testing.T) {
		h1, h2 := l.h1.MAC("eth0"), l.h2.MAC("eth0")
		nstest.Eventually(t, 5*time.Second, func() (bool, string) {
			return a.hasLocalMAC(ls5, h1) && a.hasLocalMAC(ls6, h2), fmt.Sprint(a.localMACs())
		})
		for _, m := range a.localMACs()[ls5] {
			if !strings.HasSuffix(m, "@"+swTunnel) {
				t.Errorf("local MAC %s: locator is not the switch's tunnel IP", m)
			}
			if strings.HasPrefix(m, rh5) {
				t.Errorf("remote MAC %s reported as local", m)
			}
		}
		if a.hasLocalMAC(ls6, h1) || a.hasLocalMAC(ls5, h2) {
			t.Errorf("MAC reported in the wrong logical switch: %v", a.localMACs())
		}
		// ipaddr comes from the hosts' ARP packets.
		nstest.Eventually(t, 5*time.Second, func() (bool, string) {
			return a.localMACIP(ls5, h1) == "10.77.0.1" && a.localMACIP(ls6, h2) == "10.77.0.2",
				fmt.Sprintf("ipaddr h1 %q h2 %q", a.localMACIP(ls5, h1), a.localMACIP(ls6, h2))
		})
	})
	t.Run("ARP suppression", func(t *testing.T) {
		sock, err := nstest.OpenPacketSocket(l.rh5, "eth0")
		if err != nil {
			t.Fatal(err)
		}
		defer sock.Close()
		if _, err := sock.Collect(50 * time.Millisecond); err != nil { // drain
			t.Fatal(err)
		}
		l.h1.Run("ip", "neigh", "flush", "dev", "eth0")
		if err := l.ping(l.h1, "10.77.0.3"); err != nil {
			t.Fatal(err)
		}
		if out := l.h1.Run("ip", "neigh", "show", "10.77.0.3"); !strings.Contains(out, rh5) {
			t.Fatalf("h1 did not resolve 10.77.0.3 to %s: %s", rh5, out)
		}
		frames, err := sock.Collect(300 * time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames {
			if nstest.IsARPRequestFor(f, net.ParseIP("10.77.0.3")) {
				t.Fatal("ARP request for a known remote IP crossed the tunnel")
			}
		}
	})
	t.Run("vlan_stats", func(t *testing.T) {
		nstest.Eventually(t, 5*time.Second, func() (bool, string) {
			st := a.bindingStats("tor1", "eth1", 100)
			return st.PacketsFromLocal > 0 && st.PacketsToLocal > 0, fmt.Sprintf("%+v", st)
		})
	})
	t.Run("unbind removes the binding port", func(t *testing.T) {
		a.unbind("tor1", "eth1", 200)
		nstest.Eventually(t, 10*time.Second, func() (bool, string) {
			out, _ := l.sw.Try("ip", "-br", "link")
			return !strings.Contains(out, "v200a"), out
		})
		if err := l.ping(l.h2, "10.77.0.4"); err == nil {
			t.Error("VLAN 200 still forwards after unbind")
		}
		l.pingEventually(t, l.h1, "10.77.0.3")
	})
}
