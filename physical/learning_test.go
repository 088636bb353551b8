package physical

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/physical/controller"
	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/physical/nstest"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// trunkLab is a switch namespace whose trunk eth1 faces a namespace where the
// test writes raw (tagged or untagged) frames, plus an underlay.
type trunkLab struct {
	*netnstest.Lab
	sw, host, rem *netnstest.Netns
}

func newTrunkLab(t testing.TB) *trunkLab {
	t.Helper()
	netnstest.RequireCommands(t, "ethtool", "bridge", "tc")
	l := &trunkLab{Lab: netnstest.NewLab(t, "tsl")}
	l.sw, l.host, l.rem = l.NS("sw"), l.NS("host"), l.NS("rem")
	l.Veth(l.sw, "und", l.rem, "und", 1600)
	l.sw.Addr("und", swTunnel+"/24")
	l.rem.Addr("und", remTunnel+"/24")
	l.Veth(l.host, "t0", l.sw, "eth1", 0)
	return l
}

func (l *trunkLab) socket(t testing.TB) *nstest.PacketSocket {
	t.Helper()
	s, err := nstest.OpenPacketSocket(l.host, "t0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func send(t testing.TB, s *nstest.PacketSocket, mac string, vlan int) {
	t.Helper()
	hw, _ := net.ParseMAC(mac)
	if err := s.Send(nstest.Frame(hw, vlan, net.IPv4(10, 9, 0, 1), net.IPv4(10, 9, 0, 2))); err != nil {
		t.Fatal(err)
	}
}

// TestLearningAgingAndMACLimit checks that MACs learned from tagged and
// untagged frames become Ucast_Macs_Local rows of the right logical switch,
// that frames of unbound VLANs teach nothing, that the MAC limit raises
// mac_table_exhaustion, and that silent MACs age out and clear the fault.
func TestLearningAgingAndMACLimit(t *testing.T) {
	l := newTrunkLab(t)
	endpoint := startServer(t)
	newSwitch(t, endpoint, controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, MACLimit: 3, StatsInterval: -1,
	}, dataplane.Options{NetNS: l.sw.Handle(), AgeingTime: 2 * time.Second})
	a := newAgent(t, endpoint)
	ls10 := a.logicalSwitch("ls7000", 7000)
	ls0 := a.logicalSwitch("ls7001", 7001)
	a.bind("tor1", "eth1", 10, ls10)
	a.bind("tor1", "eth1", 0, ls0)
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		out, _ := l.sw.Try("ip", "-br", "link")
		return strings.Contains(out, "v10a") && strings.Contains(out, "v0a"), out
	})
	s := l.socket(t)

	t.Run("tagged and untagged", func(t *testing.T) {
		nstest.Eventually(t, 5*time.Second, func() (bool, string) {
			send(t, s, "02:00:00:00:10:01", 10)
			send(t, s, "02:00:00:00:00:01", 0)
			send(t, s, "02:00:00:00:11:01", 11) // unbound VLAN
			return a.hasLocalMAC(ls10, "02:00:00:00:10:01") && a.hasLocalMAC(ls0, "02:00:00:00:00:01"), fmt.Sprint(a.localMACs())
		})
		for ls, macs := range a.localMACs() {
			for _, m := range macs {
				if strings.HasPrefix(m, "02:00:00:00:11:01") {
					t.Errorf("MAC of unbound VLAN 11 learned in %s", ls)
				}
			}
		}
	})
	t.Run("MAC limit", func(t *testing.T) {
		nstest.Eventually(t, 5*time.Second, func() (bool, string) {
			for i := 2; i <= 4; i++ {
				send(t, s, fmt.Sprintf("02:00:00:00:10:%02x", i), 10)
			}
			ps, err := a.physicalSwitch("tor1")
			if err != nil {
				return false, err.Error()
			}
			n := len(a.localMACs()[ls10]) + len(a.localMACs()[ls0])
			return slices.Contains(ps.SwitchFaultStatus, "mac_table_exhaustion") && n == 3,
				fmt.Sprintf("faults %v, %d rows: %v", ps.SwitchFaultStatus, n, a.localMACs())
		})
	})
	t.Run("aging", func(t *testing.T) {
		nstest.Eventually(t, 15*time.Second, func() (bool, string) {
			ps, _ := a.physicalSwitch("tor1")
			rows := a.localMACs()
			return len(rows[ls10])+len(rows[ls0]) == 0 && len(ps.SwitchFaultStatus) == 0,
				fmt.Sprintf("rows %v, faults %v", rows, ps.SwitchFaultStatus)
		})
	})
}

// TestInvalidVLANMap checks that a binding the switch cannot program raises
// invalid_vlan_map on its port without disturbing the valid ones, and that
// fixing the logical switch clears it.
func TestInvalidVLANMap(t *testing.T) {
	l := newTrunkLab(t)
	endpoint := startServer(t)
	newSwitch(t, endpoint, controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1,
	}, dataplane.Options{NetNS: l.sw.Handle()})
	a := newAgent(t, endpoint)
	good := a.logicalSwitch("good", 7000)
	bad := a.logicalSwitch("bad", 7000) // duplicate tunnel_key: ambiguous
	a.bind("tor1", "eth1", 10, good)
	a.bind("tor1", "eth1", 20, bad)
	faults := func() []string { return a.port("tor1", "eth1").PortFaultStatus }
	nstest.Eventually(t, 5*time.Second, func() (bool, string) {
		return slices.Contains(faults(), "invalid_vlan_map"), fmt.Sprint(faults())
	})
	// Fix: give "bad" its own key.
	key := 7002
	p := a.lsRow(bad)
	p.TunnelKey = &key
	a.update(&p, &p.TunnelKey)
	nstest.Eventually(t, 5*time.Second, func() (bool, string) {
		out, _ := l.sw.Try("ip", "-br", "link")
		return len(faults()) == 0 && strings.Contains(out, "v20a") && strings.Contains(out, "v10a"),
			fmt.Sprintf("faults %v\n%s", faults(), out)
	})
}

var progID = regexp.MustCompile(`\bid (\d+)`)

func (l *trunkLab) state(t *testing.T) string {
	t.Helper()
	links := l.sw.Run("ip", "-o", "link", "show")
	var keep []string
	for _, line := range strings.Split(links, "\n") {
		if strings.Contains(line, ": ts") {
			f := strings.Fields(line)
			keep = append(keep, f[0]+f[1]) // "ifindex:name@peer:"
		}
	}
	slices.Sort(keep)
	tc := l.sw.Run("tc", "filter", "show", "dev", "eth1", "ingress")
	return strings.Join(keep, " ") + " trunk-prog " + progID.FindString(tc)
}

// TestRestartKeepsKernelState restarts torswitch against a persistent
// database (a real ovsdb-server, as with --ovsdb) and checks that it adopts the kernel state (same devices, same
// trunk program, same Ucast_Macs_Local rows) instead of rebuilding it, and
// that with a database that starts empty it removes nothing until its
// hold-down has passed.
func TestRestartKeepsKernelState(t *testing.T) {
	l := newTrunkLab(t)
	endpoint := startOvsdbServer(t)
	cfg := controller.Config{Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1}
	dpOpts := dataplane.Options{NetNS: l.sw.Handle()}
	first := newSwitch(t, endpoint, cfg, dpOpts)
	a := newAgent(t, endpoint)
	ls := a.logicalSwitch("ls7000", 7000)
	a.bind("tor1", "eth1", 10, ls)
	a.remoteMACs(ls, remTunnel, map[string]string{"02:00:00:00:99:01": ""})
	a.flood(ls, remTunnel)
	nstest.Eventually(t, 10*time.Second, func() (bool, string) { return fdbHas(l.sw, "tsvx7000", "02:00:00:00:99:01", remTunnel) })
	s := l.socket(t)
	nstest.Eventually(t, 5*time.Second, func() (bool, string) {
		send(t, s, "02:00:00:00:10:01", 10)
		return a.hasLocalMAC(ls, "02:00:00:00:10:01"), fmt.Sprint(a.localMACs())
	})
	before := l.state(t)
	rowsBefore := a.localMACRowUUIDs()

	first.stop()
	if after := l.state(t); after != before {
		t.Fatalf("stopping torswitch changed the kernel:\nbefore %s\nafter  %s", before, after)
	}
	newSwitch(t, endpoint, cfg, dpOpts)
	a.remoteMACs(ls, remTunnel, map[string]string{"02:00:00:00:99:02": ""})
	nstest.Eventually(t, 10*time.Second, func() (bool, string) { return fdbHas(l.sw, "tsvx7000", "02:00:00:00:99:02", remTunnel) })
	if after := l.state(t); after != before {
		t.Errorf("restart rebuilt kernel state:\nbefore %s\nafter  %s", before, after)
	}
	if ok, out := fdbHas(l.sw, "tsvx7000", "02:00:00:00:99:01", remTunnel); !ok {
		t.Errorf("restart lost remote MAC:\n%s", out)
	}
	if got := a.localMACRowUUIDs(); !slices.Equal(got, rowsBefore) {
		t.Errorf("restart rewrote Ucast_Macs_Local: before %v, after %v", rowsBefore, got)
	}

	t.Run("empty database waits for hold-down", func(t *testing.T) {
		empty := startServer(t)
		cfg := cfg
		cfg.HoldDown = 1500 * time.Millisecond
		start := time.Now()
		newSwitch(t, empty, cfg, dpOpts)
		b := newAgent(t, empty)
		b.port("tor1", "eth1") // the switch is up
		if time.Since(start) < cfg.HoldDown {
			if ok, out := fdbHas(l.sw, "tsvx7000", "02:00:00:00:99:01", remTunnel); !ok {
				t.Errorf("state flushed before hold-down ended:\n%s", out)
			}
		}
		nstest.Eventually(t, 10*time.Second, func() (bool, string) {
			out, _ := l.sw.Try("ip", "-br", "link")
			return !strings.Contains(out, "tsvx7000"), out
		})
	})
}

// TestTrunkCabledLater checks that a binding on a port that does not exist
// yet is programmed as soon as the port appears (containerlab adds
// interfaces after the node's process starts).
func TestTrunkCabledLater(t *testing.T) {
	l := newTrunkLab(t)
	endpoint := startServer(t)
	newSwitch(t, endpoint, controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1", "eth2"}, StatsInterval: -1, ResyncInterval: -1,
	}, dataplane.Options{NetNS: l.sw.Handle()})
	a := newAgent(t, endpoint)
	ls := a.logicalSwitch("ls7000", 7000)
	a.bind("tor1", "eth2", 10, ls)
	nstest.Eventually(t, 5*time.Second, func() (bool, string) {
		out, _ := l.sw.Try("ip", "-br", "link")
		return strings.Contains(out, "tsvx7000"), out
	})
	l.Veth(l.host, "t2", l.sw, "eth2", 0)
	nstest.Eventually(t, 5*time.Second, func() (bool, string) {
		out, _ := l.sw.Try("tc", "filter", "show", "dev", "eth2", "ingress")
		links, _ := l.sw.Try("ip", "-br", "link")
		return strings.Contains(out, "ts_trunk") && strings.Contains(links, "v10a"), out + links
	})
}

// TestDatabaseWipe restarts the external ovsdb-server with an empty database
// (a switch that lost its configuration): torswitch reconnects, recreates its
// rows, reports its learned MACs again and keeps the kernel forwarding state
// through the hold-down instead of flushing it.
func TestDatabaseWipe(t *testing.T) {
	l := newTrunkLab(t)
	db := vteptest.StartOVSDB(t)
	newSwitch(t, db.Endpoint(), controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1, HoldDown: 3 * time.Second,
	}, dataplane.Options{NetNS: l.sw.Handle()})
	a := newAgent(t, db.Endpoint())
	ls := a.logicalSwitch("ls7000", 7000)
	a.bind("tor1", "eth1", 10, ls)
	a.remoteMACs(ls, remTunnel, map[string]string{"02:00:00:00:99:01": ""})
	nstest.Eventually(t, 10*time.Second, func() (bool, string) { return fdbHas(l.sw, "tsvx7000", "02:00:00:00:99:01", remTunnel) })
	s := l.socket(t)
	nstest.Eventually(t, 5*time.Second, func() (bool, string) {
		send(t, s, "02:00:00:00:10:01", 10)
		return a.hasLocalMAC(ls, "02:00:00:00:10:01"), fmt.Sprint(a.localMACs())
	})

	db.Restart(true)
	wiped := time.Now()
	b := newAgent(t, db.Endpoint())
	b.port("tor1", "eth1") // torswitch recreated its rows
	if ok, out := fdbHas(l.sw, "tsvx7000", "02:00:00:00:99:01", remTunnel); !ok && time.Since(wiped) < 3*time.Second {
		t.Fatalf("kernel state flushed right after the wipe:\n%s", out)
	}
	// The controller writes its picture again; the learned MAC comes back.
	ls2 := b.logicalSwitch("ls7000", 7000)
	b.bind("tor1", "eth1", 10, ls2)
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		return b.hasLocalMAC(ls2, "02:00:00:00:10:01"), fmt.Sprint(b.localMACs())
	})
	// Remote MACs the new picture lacks go once the hold-down has passed.
	nstest.Eventually(t, 15*time.Second, func() (bool, string) {
		ok, out := fdbHas(l.sw, "tsvx7000", "02:00:00:00:99:01", remTunnel)
		return !ok, out
	})
}

// TestOnlyHostMACsReported: a bind creates the switch's own devices (the
// binding veths, a bridge, a VXLAN device); none of their MACs may appear in
// Ucast_Macs_Local, where a controller would advertise them as hosts. After
// a bind and before any host sends a frame the table stays empty (watched
// through the window in which a new interface sends its IPv6 DAD probes,
// router solicitations and MLD reports); after two hosts speak it holds
// exactly their MACs, with the IPs their ARP showed.
func TestOnlyHostMACsReported(t *testing.T) {
	l := newTrunkLab(t)
	// The test kit turns IPv6 off in its namespaces; a switch has it on,
	// and a new interface then speaks on its own.
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0"} {
		l.sw.Run("sysctl", "-q", "-w", k)
	}
	endpoint := startServer(t)
	newSwitch(t, endpoint, controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1,
	}, dataplane.Options{NetNS: l.sw.Handle(), ARPSuppression: true})
	a := newAgent(t, endpoint)
	ls := a.logicalSwitch("ls7000", 7000)
	a.bind("tor1", "eth1", 10, ls)
	a.flood(ls, remTunnel)
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		out, _ := l.sw.Try("ip", "-br", "link")
		return strings.Contains(out, "v10a") && strings.Contains(out, "v10b") && strings.Contains(out, "tsvx7000"), out
	})
	// Dynamic (learned) FDB entries of the switch's bridge: what would
	// become Ucast_Macs_Local rows.
	learned := func() string {
		out, _ := l.sw.Try("bridge", "fdb", "show", "br", "tsbr7000")
		var dyn []string
		for _, line := range strings.Split(out, "\n") {
			if line != "" && !strings.Contains(line, "permanent") && !strings.Contains(line, " dst ") {
				dyn = append(dyn, line)
			}
		}
		return strings.Join(dyn, "; ")
	}
	// Watch a window long enough for DAD (1 s) and the first router
	// solicitation.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if rows := a.localMACs(); len(rows) != 0 {
			t.Fatalf("Ucast_Macs_Local before any host traffic: %v (kernel learned: %s)", rows, learned())
		}
		if d := learned(); d != "" {
			t.Fatalf("bridge learned MACs before any host traffic: %s", d)
		}
		time.Sleep(50 * time.Millisecond) // sampling a watched window, not waiting for a condition
	}

	s := l.socket(t)
	hosts := map[string]net.IP{"02:00:00:00:10:01": net.IPv4(10, 9, 0, 1), "02:00:00:00:10:02": net.IPv4(10, 9, 0, 2)}
	want := []string{"02:00:00:00:10:01@" + swTunnel, "02:00:00:00:10:02@" + swTunnel}
	nstest.Eventually(t, 5*time.Second, func() (bool, string) {
		for mac, ip := range hosts {
			hw, _ := net.ParseMAC(mac)
			if err := s.Send(nstest.Frame(hw, 10, ip, net.IPv4(10, 9, 0, 99))); err != nil {
				t.Fatal(err)
			}
		}
		got := slices.Sorted(slices.Values(a.localMACs()[ls]))
		return slices.Equal(got, want) && a.localMACIP(ls, "02:00:00:00:10:01") == "10.9.0.1" && a.localMACIP(ls, "02:00:00:00:10:02") == "10.9.0.2",
			fmt.Sprintf("rows %v, ipaddr %q %q", a.localMACs(), a.localMACIP(ls, "02:00:00:00:10:01"), a.localMACIP(ls, "02:00:00:00:10:02"))
	})
	if rows := a.localMACs(); len(rows) != 1 || len(rows[ls]) != 2 {
		t.Errorf("Ucast_Macs_Local holds more than the two hosts: %v", rows)
	}
}

// TestTwoVLANsOneLogicalSwitch: two VLANs of one port bound to the same
// logical switch (vtep(5) allows it; OVN's tests and ovs-vtep use it) are
// both programmed, raise no fault, and share one layer-2 segment: a
// broadcast from a host on VLAN 10 comes back out of the trunk on VLAN 20.
// Adding the second binding leaves the first one in place.
func TestTwoVLANsOneLogicalSwitch(t *testing.T) {
	l := newTrunkLab(t)
	endpoint := startServer(t)
	newSwitch(t, endpoint, controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1,
	}, dataplane.Options{NetNS: l.sw.Handle()})
	a := newAgent(t, endpoint)
	ls := a.logicalSwitch("ls7000", 7000)
	a.bind("tor1", "eth1", 10, ls)
	var first string
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		out, _ := l.sw.Try("ip", "-o", "link", "show", "master", "tsbr7000")
		first = out
		return strings.Contains(out, "v10a"), out
	})
	idx := strings.Fields(first)[0]
	a.bind("tor1", "eth1", 20, ls)
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		out, _ := l.sw.Try("ip", "-o", "link", "show", "master", "tsbr7000")
		return strings.Contains(out, "v10a") && strings.Contains(out, "v20a"), out
	})
	if out := l.sw.Run("ip", "-o", "link", "show", "master", "tsbr7000"); !strings.Contains(out, idx+" ts") {
		t.Errorf("the VLAN 10 binding port was recreated when VLAN 20 was bound (was %s):\n%s", idx, out)
	}
	if f := a.port("tor1", "eth1").PortFaultStatus; len(f) != 0 {
		t.Errorf("port faults %v", f)
	}
	s := l.socket(t)
	hw, _ := net.ParseMAC("02:00:00:00:10:01")
	nstest.Eventually(t, 5*time.Second, func() (bool, string) {
		if err := s.Send(nstest.Frame(hw, 10, net.IPv4(10, 9, 0, 1), net.IPv4(10, 9, 0, 99))); err != nil {
			t.Fatal(err)
		}
		frames, err := s.CollectIncoming(200 * time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames {
			if len(f) >= 12 && net.HardwareAddr(f[6:12]).String() == hw.String() {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d frames back on the trunk, none from the VLAN 10 host", len(frames))
	})
}
