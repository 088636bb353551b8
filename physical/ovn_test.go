package physical

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/physical/controller"
	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/physical/nstest"
	"github.com/torstitch/torstitch/physical/ovsdbserver"
)

// ovnLab is torswitch driven by OVN's ovn-controller-vtep, the way OVN's
// tests/ovn-controller-vtep.at sets up a VTEP gateway, with real forwarding:
//
//	vm1 (VLAN 100, eBPF tagger) ── eth1 sw: torswitch "tor1" ── und ── hv1: kernel VXLAN (VNI = OVN datapath key) ── vm3
//	10.77.0.1                               192.168.77.1           192.168.77.2                                    10.77.0.3, MAC of lsp vif1
//
// hv1 stands for an OVN chassis with a VIF: the chassis is registered in the
// SB database (ovn-sbctl chassis-add hv1 vxlan 192.168.77.2) and the logical
// switch port vif1 is bound to it (ovn-sbctl lsp-bind). Its data plane is a
// plain kernel VXLAN device whose flood entry points at torswitch, the part
// of an OVN hypervisor that sends to the VTEP gateway.
type ovnLab struct {
	*netnstest.Lab
	sw, vm1, hv1, vm3 *netnstest.Netns
	vtepDB            string
	ovn               *ovn
	vifMAC            string
	key               int // tunnel_key ovn-controller-vtep gave the vtep logical switch
}

const (
	ovnVifMAC = "f0:00:00:00:00:03"
	ovnVM1IP  = "10.77.0.1"
	ovnVM3IP  = "10.77.0.3"
)

// newOVNLab starts torswitch on the hardware_vtep database vtepDB returns, the
// OVN control plane and ovn-controller-vtep, builds OVN logical switch ls0
// with vif1 (bound to chassis hv1) and the vtep port tor1-ls0 bound to
// tor1/eth1 VLAN 100, and waits until ovn-controller-vtep set the tunnel key.
func newOVNLab(t *testing.T, vtepDB func(t testing.TB) string) *ovnLab {
	t.Helper()
	netnstest.RequireCommands(t, "ethtool", "bridge", "ping", "tc")
	l := &ovnLab{Lab: netnstest.NewLab(t, "tso"), vifMAC: ovnVifMAC}
	l.sw, l.vm1, l.hv1, l.vm3 = l.NS("sw"), l.NS("vm1"), l.NS("hv1"), l.NS("vm3")
	l.Veth(l.sw, "und", l.hv1, "und", 1600)
	l.sw.Addr("und", swTunnel+"/24")
	l.hv1.Addr("und", remTunnel+"/24")
	l.Veth(l.vm1, "eth0", l.sw, "eth1", 0)
	l.vm1.Addr("eth0", ovnVM1IP+"/24")
	if err := nstest.AttachTagger(l.vm1, "eth0", 100); err != nil {
		t.Fatal(err)
	}
	l.Veth(l.hv1, "vif1", l.vm3, "eth0", 0)
	l.vm3.Run("ip", "link", "set", "eth0", "address", ovnVifMAC)
	l.vm3.Addr("eth0", ovnVM3IP+"/24")

	l.vtepDB = vtepDB(t)
	newSwitch(t, l.vtepDB, controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1,
	}, dataplane.Options{NetNS: l.sw.Handle(), ARPSuppression: true})
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		out, _ := vtepctl(l.vtepDB, "list-ports", "tor1")
		return strings.TrimSpace(out) == "eth1", out
	})

	o := startOVN(t, l.vtepDB)
	l.ovn = o
	// ovn-controller-vtep registers the switch as a chassis.
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		out, _ := o.run("ovn-sbctl", "--db="+o.sb, "--columns=name", "list", "Chassis")
		return strings.Contains(out, "tor1"), out
	})
	if enc := o.sbctl("--bare", "--columns=ip", "list", "Encap"); strings.TrimSpace(enc) != swTunnel {
		t.Errorf("chassis tor1 encap ip = %q, want the switch's tunnel_ips %s", enc, swTunnel)
	}

	o.nbctl("ls-add", "ls0")
	o.nbctl("lsp-add", "ls0", "vif1")
	o.nbctl("lsp-set-addresses", "vif1", ovnVifMAC+" "+ovnVM3IP)
	o.nbctl("--wait=sb", "sync")
	o.sbctl("chassis-add", "hv1", "vxlan", remTunnel)
	o.sbctl("lsp-bind", "vif1", "hv1")

	mustVtepctl(t, l.vtepDB, "add-ls", "ls0", "--", "bind-ls", "tor1", "eth1", "100", "ls0")
	o.nbctl("lsp-add", "ls0", "tor1-ls0")
	o.nbctl("lsp-set-type", "tor1-ls0", "vtep")
	o.nbctl("lsp-set-options", "tor1-ls0", "vtep-physical-switch=tor1", "vtep-logical-switch=ls0")

	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		out, _ := vtepctl(l.vtepDB, "get", "Logical_Switch", "ls0", "tunnel_key")
		k, err := strconv.Atoi(strings.TrimSpace(out))
		l.key = k
		return err == nil && k > 0, "Logical_Switch ls0 tunnel_key: " + out
	})
	dpKey := strings.TrimSpace(o.sbctl("--bare", "--columns=tunnel_key", "find", "Datapath_Binding", "external_ids:name=ls0"))
	if dpKey != strconv.Itoa(l.key) {
		t.Errorf("vtep Logical_Switch tunnel_key %d, OVN datapath ls0 tunnel_key %s", l.key, dpKey)
	}

	// hv1's data plane: VNI = the datapath's tunnel key, unknown MACs to the switch.
	l.hv1.Run("ip", "link", "add", "br0", "type", "bridge")
	l.hv1.Run("ip", "link", "add", "vx0", "type", "vxlan", "id", strconv.Itoa(l.key), "local", remTunnel,
		"dstport", "4789", "nolearning")
	l.hv1.Run("ip", "link", "set", "vx0", "master", "br0", "up")
	l.hv1.Run("ip", "link", "set", "vif1", "master", "br0")
	l.hv1.Run("ip", "link", "set", "br0", "up")
	l.hv1.Run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", swTunnel)
	return l
}

// vx is the name of torswitch's VXLAN device for the OVN logical switch.
func (l *ovnLab) vx() string { return fmt.Sprintf("tsvx%d", l.key) }

// waitFDB waits until torswitch's VXLAN device has (want) or lacks (!want) mac → dst.
func (l *ovnLab) waitFDB(t *testing.T, mac, dst string, want bool) {
	t.Helper()
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		ok, out := fdbHas(l.sw, l.vx(), mac, dst)
		return ok == want, fmt.Sprintf("want %s dst %s present=%v in fdb of %s:\n%s\nUcast_Macs_Remote:\n%s",
			mac, dst, want, l.vx(), out, l.remoteMACs())
	})
}

func (l *ovnLab) remoteMACs() string {
	out, _ := vtepctl(l.vtepDB, "list-remote-macs", "ls0")
	return out
}

func (l *ovnLab) ping(from *netnstest.Netns, to string) error {
	out, err := from.Try("ping", "-c", "1", "-W", "1", to)
	if err != nil {
		return fmt.Errorf("ping %s from %s: %v\n%s", to, from.Name, err, out)
	}
	return nil
}

func (l *ovnLab) pingEventually(t *testing.T, from *netnstest.Netns, to string) {
	t.Helper()
	nstest.Eventually(t, 15*time.Second, func() (bool, string) {
		err := l.ping(from, to)
		return err == nil, fmt.Sprint(err)
	})
}

// TestOVNControllerVtepForwarding: ovn-controller-vtep programs torswitch.
// Its Ucast_Macs_Remote rows (the VIF's MAC behind chassis hv1) and its
// unknown-dst flood entry appear in torswitch's kernel FDB, a VLAN-tagged
// host pings the VIF behind the kernel VXLAN endpoint both ways, and OVN
// changes (a second VIF on a second chassis, a second MAC on a VIF) are
// followed into the kernel and removed again.
func TestOVNControllerVtepForwarding(t *testing.T) {
	l := newOVNLab(t, startServer)
	o := l.ovn

	t.Run("remote MAC and flood entry in the kernel", func(t *testing.T) {
		l.waitFDB(t, ovnVifMAC, remTunnel, true)
		l.waitFDB(t, "00:00:00:00:00:00", remTunnel, true)
		if ok, out := fdbHas(l.sw, l.vx(), "00:00:00:00:00:00", swTunnel); ok {
			t.Errorf("flood list holds the switch's own tunnel IP:\n%s", out)
		}
		out := l.sw.Run("ip", "-d", "link", "show", l.vx())
		if !strings.Contains(out, fmt.Sprintf("vxlan id %d ", l.key)) {
			t.Errorf("%s is not VNI %d:\n%s", l.vx(), l.key, out)
		}
	})
	t.Run("OVN sees the switch's binding", func(t *testing.T) {
		if out := o.sbctl("--bare", "--columns=vtep_logical_switches", "find", "Chassis", "name=tor1"); strings.TrimSpace(out) != "ls0" {
			t.Errorf("chassis tor1 vtep_logical_switches = %q, want ls0", out)
		}
		nstest.Eventually(t, 10*time.Second, func() (bool, string) {
			out, _ := o.run("ovn-sbctl", "--db="+o.sb, "--bare", "--columns=chassis", "find", "Port_Binding", "logical_port=tor1-ls0")
			return strings.TrimSpace(out) != "", "Port_Binding tor1-ls0 has no chassis"
		})
	})
	// ovn-controller-vtep (OVN 23.03) leaves Ucast_Macs_Remote.ipaddr empty
	// even when the lsp has an IP, so torswitch has no ARP-suppression
	// entry to install: ARP crosses the tunnel (flood entry) instead.
	t.Run("ping VLAN 100 host to VIF and back", func(t *testing.T) {
		l.pingEventually(t, l.vm1, ovnVM3IP)
		l.pingEventually(t, l.vm3, ovnVM1IP)
	})
	t.Run("only the host's MAC is reported local", func(t *testing.T) {
		vm1 := l.vm1.MAC("eth0")
		want := "ucast-mac-local\n  " + vm1 + " -> vxlan_over_ipv4/" + swTunnel + "\n\nmcast-mac-local\n"
		nstest.Eventually(t, 10*time.Second, func() (bool, string) {
			out, _ := vtepctl(l.vtepDB, "list-local-macs", "ls0")
			return strings.HasPrefix(out, want), "want:\n" + want + "got:\n" + out
		})
	})
	t.Run("second VIF on a second chassis", func(t *testing.T) {
		const mac2, hv2 = "f0:00:00:00:00:22", "192.168.77.3"
		o.nbctl("lsp-add", "ls0", "vif2")
		o.nbctl("lsp-set-addresses", "vif2", mac2)
		o.nbctl("--wait=sb", "sync")
		o.sbctl("chassis-add", "hv2", "vxlan", hv2)
		o.sbctl("lsp-bind", "vif2", "hv2")
		l.waitFDB(t, mac2, hv2, true)
		l.waitFDB(t, "00:00:00:00:00:00", hv2, true)
		l.waitFDB(t, "00:00:00:00:00:00", remTunnel, true)

		o.nbctl("lsp-del", "vif2")
		l.waitFDB(t, mac2, hv2, false)
		l.waitFDB(t, "00:00:00:00:00:00", hv2, false)
		l.waitFDB(t, ovnVifMAC, remTunnel, true)
		l.waitFDB(t, "00:00:00:00:00:00", remTunnel, true)
	})
	t.Run("second MAC on a VIF added and removed", func(t *testing.T) {
		const mac3 = "f0:00:00:00:00:33"
		o.nbctl("lsp-set-addresses", "vif1", ovnVifMAC+" "+ovnVM3IP, mac3)
		l.waitFDB(t, mac3, remTunnel, true)
		o.nbctl("lsp-set-addresses", "vif1", ovnVifMAC+" "+ovnVM3IP)
		l.waitFDB(t, mac3, remTunnel, false)
		l.waitFDB(t, ovnVifMAC, remTunnel, true)
		l.pingEventually(t, l.vm1, ovnVM3IP)
	})
}

// TestOVNControllerVtepBindingAndExit: unbinding the VLAN in torswitch's
// database (vtep-ctl) stops forwarding and rebinding restores it while
// ovn-controller-vtep keeps running; when ovn-controller-vtep dies (SIGKILL)
// the database and so torswitch's kernel state stay; when it exits cleanly
// (ovs-appctl exit) it removes what it wrote and torswitch's kernel follows
// the database.
func TestOVNControllerVtepBindingAndExit(t *testing.T) {
	l := newOVNLab(t, startServer)
	o := l.ovn
	l.waitFDB(t, ovnVifMAC, remTunnel, true)
	l.pingEventually(t, l.vm1, ovnVM3IP)

	t.Run("unbind and rebind", func(t *testing.T) {
		mustVtepctl(t, l.vtepDB, "unbind-ls", "tor1", "eth1", "100")
		nstest.Eventually(t, 10*time.Second, func() (bool, string) {
			out, _ := l.sw.Try("ip", "-br", "link")
			return !strings.Contains(out, "v100a"), out
		})
		// OVN releases the vtep port from the switch's chassis.
		nstest.Eventually(t, 10*time.Second, func() (bool, string) {
			out, _ := o.run("ovn-sbctl", "--db="+o.sb, "--bare", "--columns=chassis", "find", "Port_Binding", "logical_port=tor1-ls0")
			return strings.TrimSpace(out) == "", "Port_Binding tor1-ls0 chassis: " + out
		})
		if err := l.ping(l.vm1, ovnVM3IP); err == nil {
			t.Error("VLAN 100 still forwards after unbind-ls")
		}
		// ovn-controller-vtep withdraws ls0's remote MACs (seen with OVN 23.03);
		// torswitch keeps no kernel entry towards hv1.
		if fdb, _ := l.sw.Try("bridge", "fdb", "show"); strings.Contains(fdb, "dst "+remTunnel) {
			t.Errorf("kernel entries towards hv1 left after unbind:\n%s\nremote MACs:\n%s", fdb, l.remoteMACs())
		}

		mustVtepctl(t, l.vtepDB, "bind-ls", "tor1", "eth1", "100", "ls0")
		nstest.Eventually(t, 10*time.Second, func() (bool, string) {
			out, _ := o.run("ovn-sbctl", "--db="+o.sb, "--bare", "--columns=chassis", "find", "Port_Binding", "logical_port=tor1-ls0")
			return strings.TrimSpace(out) != "", "Port_Binding tor1-ls0 chassis: " + out
		})
		l.waitFDB(t, ovnVifMAC, remTunnel, true)
		l.waitFDB(t, "00:00:00:00:00:00", remTunnel, true)
		l.pingEventually(t, l.vm1, ovnVM3IP)
		l.pingEventually(t, l.vm3, ovnVM1IP)
	})

	t.Run("controller killed: state kept", func(t *testing.T) {
		o.kill("ovn-controller-vtep", syscall.SIGKILL)
		if rows := l.remoteMACs(); !strings.Contains(rows, ovnVifMAC) {
			t.Fatalf("Ucast_Macs_Remote changed after SIGKILL:\n%s", rows)
		}
		if err := l.ping(l.vm1, ovnVM3IP); err != nil {
			t.Errorf("forwarding stopped with the controller gone: %v", err)
		}
		l.waitFDB(t, ovnVifMAC, remTunnel, true)
		l.waitFDB(t, "00:00:00:00:00:00", remTunnel, true)
	})

	t.Run("controller restarted then exits cleanly", func(t *testing.T) {
		o.startControllerVtep()
		// It takes over the rows it finds; an OVN change proves it is in charge.
		const mac4 = "f0:00:00:00:00:44"
		o.nbctl("lsp-set-addresses", "vif1", ovnVifMAC+" "+ovnVM3IP, mac4)
		l.waitFDB(t, mac4, remTunnel, true)
		l.waitFDB(t, ovnVifMAC, remTunnel, true)
		l.pingEventually(t, l.vm1, ovnVM3IP)

		// On "exit" ovn-controller-vtep cleans up what it wrote: its remote
		// MACs and flood entries go and the logical switch's tunnel_key is
		// cleared (seen with OVN 23.03). The binding stays. torswitch follows
		// the database: a logical switch without a key has no VXLAN device.
		o.exit("ovn-controller-vtep")
		if out := strings.TrimSpace(mustVtepctl(t, l.vtepDB, "get", "Logical_Switch", "ls0", "tunnel_key")); out != "[]" {
			t.Errorf("tunnel_key after ovn-controller-vtep exit = %s, want [] (OVN's cleanup)", out)
		}
		if out := mustVtepctl(t, l.vtepDB, "list-remote-macs", "ls0"); strings.Contains(out, ":") {
			t.Errorf("remote MACs left after ovn-controller-vtep exit:\n%s", out)
		}
		if out := mustVtepctl(t, l.vtepDB, "list-bindings", "tor1", "eth1"); !strings.Contains(out, "0100 ls0") {
			t.Errorf("binding lost on ovn-controller-vtep exit:\n%s", out)
		}
		nstest.Eventually(t, 10*time.Second, func() (bool, string) {
			links, _ := l.sw.Try("ip", "-br", "link")
			fdb, _ := l.sw.Try("bridge", "fdb", "show")
			return !strings.Contains(links, l.vx()) && !strings.Contains(fdb, ovnVifMAC) && !strings.Contains(fdb, mac4) &&
				!strings.Contains(fdb, "dst "+remTunnel), links + fdb
		})
		if err := l.ping(l.vm1, ovnVM3IP); err == nil {
			t.Error("VLAN 100 still forwards after the controller withdrew the logical switch")
		}
	})

	t.Run("controller back", func(t *testing.T) {
		o.startControllerVtep()
		nstest.Eventually(t, 10*time.Second, func() (bool, string) {
			out, _ := vtepctl(l.vtepDB, "get", "Logical_Switch", "ls0", "tunnel_key")
			return strings.TrimSpace(out) == strconv.Itoa(l.key), "tunnel_key " + out
		})
		l.waitFDB(t, ovnVifMAC, remTunnel, true)
		l.waitFDB(t, "00:00:00:00:00:00", remTunnel, true)
		l.pingEventually(t, l.vm1, ovnVM3IP)
		l.pingEventually(t, l.vm3, ovnVM1IP)
	})
}

// TestOVNControllerVtepDatabaseRestart: torswitch's supervised ovsdb-server
// is killed while ovn-controller-vtep drives it. The supervisor restarts it
// over the same database file; the kernel keeps the OVN-programmed entries
// and forwarding throughout, and both torswitch and ovn-controller-vtep
// reconnect: an OVN change made afterwards reaches the kernel.
func TestOVNControllerVtepDatabaseRestart(t *testing.T) {
	var srv *ovsdbserver.Server
	l := newOVNLab(t, func(t testing.TB) string {
		srv = startServed(t)
		return srv.Endpoint()
	})
	o := l.ovn
	l.waitFDB(t, ovnVifMAC, remTunnel, true)
	l.waitFDB(t, "00:00:00:00:00:00", remTunnel, true)
	l.pingEventually(t, l.vm1, ovnVM3IP)

	old, restarts := srv.PID(), srv.Restarts()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ok, out := fdbHas(l.sw, l.vx(), ovnVifMAC, remTunnel); !ok {
		t.Errorf("remote MAC gone right after the database died:\n%s", out)
	}
	if err := l.ping(l.vm1, ovnVM3IP); err != nil {
		t.Errorf("forwarding stopped with the database down: %v", err)
	}
	nstest.Eventually(t, 15*time.Second, func() (bool, string) {
		return srv.Restarts() > restarts && srv.PID() != 0 && srv.PID() != old,
			fmt.Sprintf("restarts %d, pid %d (was %d)", srv.Restarts(), srv.PID(), old)
	})
	const mac5 = "f0:00:00:00:00:55"
	o.nbctl("lsp-set-addresses", "vif1", ovnVifMAC+" "+ovnVM3IP, mac5)
	l.waitFDB(t, mac5, remTunnel, true)
	l.waitFDB(t, ovnVifMAC, remTunnel, true)
	l.waitFDB(t, "00:00:00:00:00:00", remTunnel, true)
	l.pingEventually(t, l.vm1, ovnVM3IP)
	l.pingEventually(t, l.vm3, ovnVM1IP)
	// The host's MAC, learned around the kill, is in the database again.
	vm1 := l.vm1.MAC("eth0")
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		out, _ := vtepctl(l.vtepDB, "list-local-macs", "ls0")
		return strings.Contains(out, vm1+" -> vxlan_over_ipv4/"+swTunnel), out
	})
}
