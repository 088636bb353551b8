package client

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// Tests in this file run against a real ovsdb-server serving the Debian
// hardware_vtep schema; vtep-ctl reads every result back independently.

var baseDump = lines(
	"bind tor1 eth1 100 vni10100",
	"bind tor1 eth1 200 vni10200",
	"bind tor1 eth2 100 vni10100",
	"bind tor1 eth3 300 theirs",
	"ipaddr 02:00:00:00:01:02 10.1.0.2",
	"ls theirs key=7000 mode=[] owner=",
	"ls vni10100 key=10100 mode=[] owner=torstitch",
	"ls vni10200 key=10200 mode=source_node owner=torstitch",
	"mcast vni10100 unknown-dst -> vxlan_over_ipv4/192.0.2.1",
	"mcast vni10100 unknown-dst -> vxlan_over_ipv4/192.0.2.2",
	"mcast vni10200 unknown-dst -> vxlan_over_ipv4/192.0.2.1",
	"ucast theirs 02:ff:00:00:00:01 -> vxlan_over_ipv4/192.0.2.77",
	"ucast vni10100 02:00:00:00:01:01 -> vxlan_over_ipv4/192.0.2.1",
	"ucast vni10100 02:00:00:00:01:02 -> vxlan_over_ipv4/192.0.2.2",
	"ucast vni10200 02:00:00:00:02:01 -> vxlan_over_ipv4/192.0.2.1",
)

// withForeign seeds a switch with rows another controller made.
func withForeign(s *vteptest.OVSDB) {
	s.AddSwitch("tor1", "192.0.2.100", "eth1", "eth2", "eth3")
	s.VtepCtl("add-ls", "theirs")
	s.VtepCtl("set", "Logical_Switch", "theirs", "tunnel_key=7000")
	s.VtepCtl("bind-ls", "tor1", "eth3", "300", "theirs")
	s.VtepCtl("add-ucast-remote", "theirs", "02:ff:00:00:00:01", "192.0.2.77")
}

// baseSwitch starts a real ovsdb-server with another controller's rows
// (withForeign) and a client that has reconciled desiredBase into it.
func baseSwitch(t *testing.T) (*vteptest.OVSDB, *Client) {
	t.Helper()
	s := vteptest.StartOVSDB(t)
	withForeign(s)
	c := startClient(t, "tor1", s.Endpoint(), 0)
	reconcile(t, c, desiredBase())
	return s, c
}

func reconcile(t *testing.T, c *Client, d *plan.Desired) ApplyResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Reconcile(ctx, d, plan.Options{})
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	return res
}

func checkDump(t *testing.T, s *vteptest.OVSDB, want string) {
	t.Helper()
	if got := s.Dump("tor1"); got != want {
		t.Fatalf("vtep-ctl sees:\n%s\n\nwant:\n%s", got, want)
	}
}

func TestRealOVSDBLifecycle(t *testing.T) {
	s := vteptest.StartOVSDB(t)
	withForeign(s)
	c := startClient(t, "tor1", s.Endpoint(), 0)

	res := reconcile(t, c, desiredBase())
	if res.Transactions != 2 {
		t.Errorf("initial state took %d transactions, want 2 (logical switches, then what refers to them)", res.Transactions)
	}
	checkDump(t, s, baseDump)
	if res := reconcile(t, c, desiredBase()); res.Transactions != 0 {
		t.Fatalf("steady state issued %d transactions", res.Transactions)
	}

	steps := []struct {
		name   string
		mutate func(d *plan.Desired)
		want   []string // lines that replace/extend baseDump
		drop   []string
	}{
		{"rebind eth1 VLAN 100 to VNI 10200", func(d *plan.Desired) { d.Bindings[0].VNI = 10200 },
			[]string{"bind tor1 eth1 100 vni10200"}, []string{"bind tor1 eth1 100 vni10100"}},
		{"unbind eth2 VLAN 100", func(d *plan.Desired) {
			d.Bindings = d.Bindings[:1:1]
			d.Bindings = append(d.Bindings, plan.PortBinding{Port: "eth1", VLAN: 200, VNI: 10200})
		},
			nil, []string{"bind tor1 eth2 100 vni10100"}},
		{"MAC moves and learns an IP", func(d *plan.Desired) {
			d.RemoteMACs[0].VTEP = ip("192.0.2.3")
			d.RemoteMACs[0].IP = ip("10.1.0.1")
		}, []string{"ucast vni10100 02:00:00:00:01:01 -> vxlan_over_ipv4/192.0.2.3", "ipaddr 02:00:00:00:01:01 10.1.0.1"},
			[]string{"ucast vni10100 02:00:00:00:01:01 -> vxlan_over_ipv4/192.0.2.1"}},
	}
	d := desiredBase()
	want := splitLines(baseDump)
	for _, st := range steps {
		st.mutate(d)
		want = edit(want, st.drop, st.want)
		res := reconcile(t, c, d)
		if res.Transactions != 1 {
			t.Errorf("%s: %d transactions, want 1", st.name, res.Transactions)
		}
		checkDump(t, s, lines(want...))
	}

	// VNI change: everything of 10100 moves to 10101; the old logical switch goes.
	d = desiredBase()
	d.LogicalSwitches[0].VNI = 10101
	for i := range d.Bindings {
		if d.Bindings[i].VNI == 10100 {
			d.Bindings[i].VNI = 10101
		}
	}
	for i := range d.RemoteMACs {
		if d.RemoteMACs[i].VNI == 10100 {
			d.RemoteMACs[i].VNI = 10101
		}
	}
	d.Flood = map[l2.VNI][]netipAddr{10101: d.Flood[10100], 10200: d.Flood[10200]}
	reconcile(t, c, d)
	checkDump(t, s, lines(
		"bind tor1 eth1 100 vni10101",
		"bind tor1 eth1 200 vni10200",
		"bind tor1 eth2 100 vni10101",
		"bind tor1 eth3 300 theirs",
		"ipaddr 02:00:00:00:01:02 10.1.0.2",
		"ls theirs key=7000 mode=[] owner=",
		"ls vni10101 key=10101 mode=[] owner=torstitch",
		"ls vni10200 key=10200 mode=source_node owner=torstitch",
		"mcast vni10101 unknown-dst -> vxlan_over_ipv4/192.0.2.1",
		"mcast vni10101 unknown-dst -> vxlan_over_ipv4/192.0.2.2",
		"mcast vni10200 unknown-dst -> vxlan_over_ipv4/192.0.2.1",
		"ucast theirs 02:ff:00:00:00:01 -> vxlan_over_ipv4/192.0.2.77",
		"ucast vni10101 02:00:00:00:01:01 -> vxlan_over_ipv4/192.0.2.1",
		"ucast vni10101 02:00:00:00:01:02 -> vxlan_over_ipv4/192.0.2.2",
		"ucast vni10200 02:00:00:00:02:01 -> vxlan_over_ipv4/192.0.2.1",
	))

	// Remove everything torstitch wants: only the foreign rows remain.
	reconcile(t, c, &plan.Desired{})
	checkDump(t, s, lines(
		"bind tor1 eth3 300 theirs",
		"ls theirs key=7000 mode=[] owner=",
		"ucast theirs 02:ff:00:00:00:01 -> vxlan_over_ipv4/192.0.2.77",
	))
}

// TestRealOVSDBBadInputChangesNothing: an inconsistent desired state is an
// error and sends no transaction. (Values, such as VLAN and VNI ranges or
// IPv4 VTEPs, are validated where they enter torstitch, not here.)
func TestRealOVSDBBadInputChangesNothing(t *testing.T) {
	s, c := baseSwitch(t)
	tests := []struct {
		name   string
		mutate func(d *plan.Desired)
	}{
		{"port VLAN bound to two VNIs", func(d *plan.Desired) {
			d.Bindings = append(d.Bindings, plan.PortBinding{Port: "eth1", VLAN: 100, VNI: 10200})
		}},
		{"VNI on two logical switches", func(d *plan.Desired) {
			d.LogicalSwitches = append(d.LogicalSwitches, plan.LogicalSwitch{VNI: 10100, Name: "other"})
		}},
		{"remote MAC in an undeclared VNI", func(d *plan.Desired) {
			d.RemoteMACs = append(d.RemoteMACs, l2.RemoteMAC{VNI: 999, MAC: l2.MustMAC("02:00:00:00:09:09"), VTEP: ip("192.0.2.9")})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := desiredBase()
			d.RemoteMACs = append(d.RemoteMACs, l2.RemoteMAC{VNI: 10100, MAC: l2.MustMAC("02:00:00:00:07:07"), VTEP: ip("192.0.2.7")})
			tc.mutate(d)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := c.Reconcile(ctx, d, plan.Options{})
			if err == nil {
				t.Fatal("bad desired state accepted")
			}
			t.Logf("error: %v", err)
			if res.Transactions != 0 {
				t.Fatalf("%d transactions sent for a bad desired state", res.Transactions)
			}
			checkDump(t, s, baseDump)
		})
	}
}

// TestRealOVSDBConflictsIsolated: desired state colliding with the rows of
// another controller (or a port the switch lacks) is returned as a conflict
// and skipped alone; a new remote MAC of an unaffected VNI is written in the
// same reconcile (vtep-ctl shows it). Before plan.Conflict one collision
// failed the switch's whole plan and stopped all its remote MACs.
func TestRealOVSDBConflictsIsolated(t *testing.T) {
	s, c := baseSwitch(t)
	tests := []struct {
		name   string
		mutate func(d *plan.Desired)
		want   string
	}{
		{"port the switch lacks", func(d *plan.Desired) {
			d.Bindings = append(d.Bindings, plan.PortBinding{Port: "eth9", VLAN: 5, VNI: 10100})
		}, `port eth9 VLAN 5: switch "tor1" has no port "eth9"; binding not applied`},
		{"VNI held by a foreign logical switch", func(d *plan.Desired) {
			d.LogicalSwitches = append(d.LogicalSwitches, plan.LogicalSwitch{VNI: 7000})
			d.Bindings = append(d.Bindings, plan.PortBinding{Port: "eth2", VLAN: 700, VNI: 7000})
			d.RemoteMACs = append(d.RemoteMACs, l2.RemoteMAC{VNI: 7000, MAC: l2.MustMAC("02:00:00:00:70:00"), VTEP: ip("192.0.2.7")})
			d.Flood[7000] = []netip.Addr{ip("192.0.2.7")}
		}, `VNI 7000: logical switch "theirs", which torstitch does not manage, uses this VNI; VNI not applied on this switch`},
		{"port VLAN bound to a foreign logical switch", func(d *plan.Desired) {
			d.Bindings = append(d.Bindings, plan.PortBinding{Port: "eth3", VLAN: 300, VNI: 10100})
		}, `port eth3 VLAN 300: bound to logical switch "theirs", which torstitch does not manage; binding not applied`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := desiredBase()
			mac := l2.MustMAC(fmt.Sprintf("02:00:00:00:0a:%02x", i))
			d.RemoteMACs = append(d.RemoteMACs, l2.RemoteMAC{VNI: 10200, MAC: mac, VTEP: ip("192.0.2.1")})
			tc.mutate(d)
			res := reconcile(t, c, d)
			if len(res.Conflicts) != 1 || res.Conflicts[0].String() != tc.want {
				t.Fatalf("conflicts = %q, want [%q]", res.Conflicts, tc.want)
			}
			checkDump(t, s, baseDump+"\nucast vni10200 "+mac.String()+" -> vxlan_over_ipv4/192.0.2.1")
			if again := reconcile(t, c, d); again.Transactions != 0 || len(again.Conflicts) != 1 {
				t.Fatalf("second reconcile: %d transactions, conflicts %q", again.Transactions, again.Conflicts)
			}
		})
	}
	reconcile(t, c, desiredBase())
	checkDump(t, s, baseDump)
}

func TestRealOVSDBRestartAndOutage(t *testing.T) {
	s, c := baseSwitch(t)
	checkDump(t, s, baseDump)
	first := c.Status().Connections

	// The switch restarts with an empty database; its own agent recreates the
	// Physical_Switch and ports (here: by hand), torstitch restores the rest.
	s.Restart(true)
	withForeign(s)
	waitFor(t, "reconnection after wipe", 20*time.Second, func() bool { return c.Connected() && c.Status().Connections > first })
	waitFor(t, "ports visible", 10*time.Second, func() bool { o, err := c.Observed(); return err == nil && len(o.Ports) == 3 })
	reconcile(t, c, desiredBase())
	checkDump(t, s, baseDump)

	// The server goes away for a while: nothing can be applied, nothing is lost.
	second := c.Status().Connections
	s.Stop()
	waitFor(t, "disconnect noticed", 20*time.Second, func() bool { return !c.Connected() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Reconcile(ctx, desiredBase(), plan.Options{}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("reconcile while down: %v, want ErrNotConnected", err)
	}
	s.Start()
	waitFor(t, "reconnection after outage", 20*time.Second, func() bool { return c.Connected() && c.Status().Connections > second })
	if res := reconcile(t, c, desiredBase()); res.Transactions != 0 {
		t.Fatalf("after an outage with the database intact, %d transactions (want 0: nothing lost)", res.Transactions)
	}
	checkDump(t, s, baseDump)
}

func TestRealOVSDBLocalMACs(t *testing.T) {
	s, c := baseSwitch(t)
	// Drain the notifications of the connection and our own writes.
	for len(c.Changed()) > 0 {
		<-c.Changed()
	}
	s.VtepCtl("add-ucast-local", "vni10100", "02:00:00:aa:00:01", "192.0.2.100")
	select {
	case <-c.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("no local MAC notification")
	}
	waitFor(t, "local MAC in observed state", 5*time.Second, func() bool {
		o, err := c.Observed()
		return err == nil && len(o.LocalMACs()) == 1
	})
	o, _ := c.Observed()
	got := o.LocalMACs()[0]
	if got.VNI != 10100 || got.MAC != l2.MustMAC("02:00:00:aa:00:01") || got.VTEP != ip("192.0.2.100") || got.Switch != "tor1" {
		t.Fatalf("local MAC = %+v", got)
	}
	if o.PhysicalSwitch.Name != "tor1" || len(o.PhysicalSwitch.TunnelIPs) != 1 || o.PhysicalSwitch.TunnelIPs[0] != "192.0.2.100" {
		t.Fatalf("physical switch = %q %v", o.PhysicalSwitch.Name, o.PhysicalSwitch.TunnelIPs)
	}
}

func TestRealOVSDBBatching(t *testing.T) {
	s := vteptest.StartOVSDB(t)
	s.AddSwitch("tor1", "192.0.2.100", "eth1")
	c := startClient(t, "tor1", s.Endpoint(), 300)
	d := scaleDesired(2000, 10, 5)
	res := reconcile(t, c, d)
	// 10 logical switches (one transaction), then 2000 MACs + 5 locators +
	// 10 flood lists (set + row) in transactions of at most 300 rows.
	if res.Rows != 2035 || res.Transactions != 8 {
		t.Fatalf("2000 MACs: %d rows in %d transactions, want 2035 rows in 8", res.Rows, res.Transactions)
	}
	n := len(splitLines(s.VtepCtl("--format=csv", "--no-headings", "--columns=MAC", "list", "Ucast_Macs_Remote")))
	if n != 2000 {
		t.Fatalf("vtep-ctl counts %d remote MACs, want 2000", n)
	}
	if res := reconcile(t, c, d); res.Transactions != 0 {
		t.Fatalf("steady state after batching: %d transactions", res.Transactions)
	}
}
