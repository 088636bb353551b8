package physical

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/physical/controller"
	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/physical/nstest"
)

var (
	uuidRE    = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	vlogPrefx = regexp.MustCompile(`\d{4}-\d\d-\d\dT[0-9:.]+Z\|\d+\|`)
)

// normalizeVtepctl makes the output of vtep-ctl comparable between two
// databases: row UUIDs and log time stamps differ from run to run.
func normalizeVtepctl(s string) string {
	return vlogPrefx.ReplaceAllString(uuidRE.ReplaceAllString(s, "<uuid>"), "")
}

// vtepctlStep is one step of the parity table.
type vtepctlStep struct {
	args []string // vtep-ctl arguments, run against both databases and compared
	// plain, when set, replaces args on the plain ovsdb-server and sw on
	// torswitch's: what the switch does by itself (learning a MAC) done by
	// hand on the plain database. Nothing is compared.
	plain []string
	sw    func(t *testing.T)
	// sync waits, after args ran, until torswitch's kernel follows its database.
	sync func(t *testing.T)
}

// TestVtepCtlParity runs a table of vtep-ctl commands against torswitch's
// database (the ovsdb-server torswitch supervises, startServer, with
// torswitch running on it: Physical_Switch tor1, ports eth1 and eth2) and against a plain ovsdb-server holding the same
// Physical_Switch and ports made with vtep-ctl, and checks that every command
// prints the same (UUIDs and log time stamps normalized) and exits with the
// same code. Between mutating steps it waits until torswitch's kernel state
// follows, so that anything torswitch writes back by itself is visible to the
// next listing.
func TestVtepCtlParity(t *testing.T) {
	testVtepCtlParity(t, startServer)
}

func testVtepCtlParity(t *testing.T, switchDB func(testing.TB) string) {
	netnstest.RequireCommands(t, "vtep-ctl")
	l := newTrunkLab(t)
	l.Veth(l.host, "t2", l.sw, "eth2", 0)
	tsDB := switchDB(t)
	newSwitch(t, tsDB, controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1", "eth2"}, StatsInterval: -1,
	}, dataplane.Options{NetNS: l.sw.Handle()})
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		out, _ := vtepctl(tsDB, "list-ports", "tor1")
		return out == "eth1\neth2\n", out
	})
	plainDB := startOvsdbServer(t)
	mustVtepctl(t, plainDB, "add-ps", "tor1", "--", "set", "Physical_Switch", "tor1", "tunnel_ips="+swTunnel,
		"--", "add-port", "tor1", "eth1", "--", "add-port", "tor1", "eth2")

	links := func(want bool, names ...string) func(t *testing.T) {
		return func(t *testing.T) {
			nstest.Eventually(t, 10*time.Second, func() (bool, string) {
				out, _ := l.sw.Try("ip", "-br", "link")
				for _, n := range names {
					if strings.Contains(out, n) != want {
						return false, fmt.Sprintf("want %s present=%v:\n%s", n, want, out)
					}
				}
				return true, ""
			})
		}
	}
	fdb := func(want bool, mac, dst string) func(t *testing.T) {
		return func(t *testing.T) {
			nstest.Eventually(t, 10*time.Second, func() (bool, string) {
				ok, out := fdbHas(l.sw, "tsvx5000", mac, dst)
				return ok == want, fmt.Sprintf("want %s dst %s present=%v:\n%s", mac, dst, want, out)
			})
		}
	}
	// localMAC is what torswitch writes by itself into Ucast_Macs_Local /
	// Mcast_Macs_Local: wait until torswitch's database shows line in
	// list-local-macs ls (or no longer shows it).
	localMAC := func(ls, line string, want bool) func(t *testing.T) {
		return func(t *testing.T) {
			nstest.Eventually(t, 10*time.Second, func() (bool, string) {
				out, _ := vtepctl(tsDB, "list-local-macs", ls)
				return strings.Contains(out, line) == want, fmt.Sprintf("want %q present=%v:\n%s", line, want, out)
			})
		}
	}
	flood := "unknown-dst -> vxlan_over_ipv4/" + swTunnel
	steps := []vtepctlStep{
		{args: []string{"list-ps"}},
		{args: []string{"list-ports", "tor1"}},
		{args: []string{"list-ports", "nosuch"}},
		{args: []string{"list-ls"}},
		{args: []string{"add-ls", "ls0"}},
		{args: []string{"add-ls", "ls0"}},
		{args: []string{"--may-exist", "add-ls", "ls0"}},
		{args: []string{"add-ls", "ls1"}},
		{args: []string{"set", "Logical_Switch", "ls0", "tunnel_key=5000"}},
		{args: []string{"set", "Logical_Switch", "ls1", "tunnel_key=5001"}},
		{args: []string{"get", "Logical_Switch", "ls0", "tunnel_key"}},
		{args: []string{"list-ls"}},
		{args: []string{"bind-ls", "tor1", "eth1", "100", "ls0"}, sync: links(true, "tsvx5000", "v100a")},
		{args: []string{"bind-ls", "tor1", "eth1", "200", "ls1"}, sync: links(true, "tsvx5001", "v200a", "v100a")},
		{args: []string{"bind-ls", "tor1", "eth2", "0", "ls0"}, sync: links(true, "v0a")},
		{args: []string{"list-bindings", "tor1", "eth1"}},
		{args: []string{"list-bindings", "tor1", "eth2"}},
		// A bound logical switch gets the switch's own flood entry (ovs-vtep
		// writes the same row); on the plain server it is written by hand.
		{plain: []string{"add-mcast-local", "ls0", "unknown-dst", swTunnel}, sw: localMAC("ls0", flood, true)},
		{plain: []string{"add-mcast-local", "ls1", "unknown-dst", swTunnel}, sw: localMAC("ls1", flood, true)},
		{args: []string{"list-local-macs", "ls0"}},
		{args: []string{"list-local-macs", "ls1"}},
		// Errors.
		{args: []string{"bind-ls", "tor1", "eth9", "100", "ls0"}},
		{args: []string{"bind-ls", "tor1", "eth1", "5000", "ls0"}},
		{args: []string{"bind-ls", "tor1", "eth1", "-1", "ls0"}},
		{args: []string{"bind-ls", "tor1", "eth1", "100", "nosuch"}},
		{args: []string{"bind-ls", "nosuch", "eth1", "100", "ls0"}},
		{args: []string{"set", "Logical_Switch", "ls0", "replication_mode=bogus"}},
		{args: []string{"del-ps", "nosuch"}},
		{args: []string{"list-bindings", "tor1", "eth1"}},
		// Remote MACs.
		{args: []string{"add-ucast-remote", "ls0", "02:00:00:00:00:01", remTunnel}, sync: fdb(true, "02:00:00:00:00:01", remTunnel)},
		{args: []string{"add-ucast-remote", "ls0", "02:00:00:00:00:02", "vxlan_over_ipv4", "192.168.77.3"},
			sync: fdb(true, "02:00:00:00:00:02", "192.168.77.3")},
		{args: []string{"add-ucast-remote", "ls0", "02:00:00:00:00:03", "bogus_encap", "192.168.77.3"}},
		{args: []string{"add-ucast-remote", "ls0", "not-a-mac", remTunnel}},
		{args: []string{"add-mcast-remote", "ls0", "unknown-dst", remTunnel}, sync: fdb(true, "00:00:00:00:00:00", remTunnel)},
		{args: []string{"add-mcast-remote", "ls0", "unknown-dst", "192.168.77.3"}, sync: fdb(true, "00:00:00:00:00:00", "192.168.77.3")},
		{args: []string{"list-remote-macs", "ls0"}},
		{args: []string{"list-remote-macs", "ls1"}},
		{args: []string{"list-remote-macs", "nosuch"}},
		{args: []string{"del-ucast-remote", "ls0", "02:00:00:00:00:01"}, sync: fdb(false, "02:00:00:00:00:01", remTunnel)},
		{args: []string{"del-mcast-remote", "ls0", "unknown-dst", "192.168.77.3"}, sync: fdb(false, "00:00:00:00:00:00", "192.168.77.3")},
		{args: []string{"list-remote-macs", "ls0"}},
		// A host behind VLAN 100: torswitch learns its MAC; on the plain
		// server the same row is written by hand, as a switch would.
		{plain: []string{"add-ucast-local", "ls0", "02:00:00:00:10:01", swTunnel}, sw: func(t *testing.T) {
			s := l.socket(t)
			nstest.Eventually(t, 5*time.Second, func() (bool, string) {
				send(t, s, "02:00:00:00:10:01", 100)
				out, _ := vtepctl(tsDB, "list-local-macs", "ls0")
				return strings.Contains(out, "02:00:00:00:10:01"), out
			})
		}},
		{args: []string{"list-local-macs", "ls0"}},
		{args: []string{"clear-remote-macs", "ls0"}, sync: func(t *testing.T) {
			fdb(false, "02:00:00:00:00:02", "192.168.77.3")(t)
			fdb(false, "00:00:00:00:00:00", remTunnel)(t)
		}},
		{args: []string{"list-remote-macs", "ls0"}},
		{args: []string{"unbind-ls", "tor1", "eth1", "200"}, sync: links(false, "v200a", "tsvx5001")},
		{args: []string{"unbind-ls", "tor1", "eth1", "200"}},
		{args: []string{"unbind-ls", "tor1", "eth1", "4096"}},
		{args: []string{"unbind-ls", "tor1", "eth9", "100"}},
		{args: []string{"list-bindings", "tor1", "eth1"}},
		// ls1 is no longer bound: the switch withdraws its flood entry.
		{plain: []string{"clear-local-macs", "ls1"}, sw: localMAC("ls1", flood, false)},
		{args: []string{"list-local-macs", "ls1"}},
		{args: []string{"del-ls", "ls1"}},
		// Still bound and holding local rows: ovsdb-server refuses.
		{args: []string{"del-ls", "ls0"}},
		{args: []string{"unbind-ls", "tor1", "eth1", "100"}, sync: links(false, "v100a")},
		{args: []string{"unbind-ls", "tor1", "eth2", "0"}, sync: links(false, "tsvx5000")},
		{args: []string{"list-bindings", "tor1", "eth1"}},
		// ls0 is no longer bound: the switch withdraws its local rows.
		{plain: []string{"clear-local-macs", "ls0"}, sw: func(t *testing.T) {
			localMAC("ls0", flood, false)(t)
			localMAC("ls0", "02:00:00:00:10:01", false)(t)
		}},
		{args: []string{"list-local-macs", "ls0"}},
		{args: []string{"del-ls", "ls0"}},
		{args: []string{"list-ls"}},
		{args: []string{"del-ls", "ls0"}},
		{args: []string{"--if-exists", "del-ls", "ls0"}},
		{args: []string{"list-ps"}},
		{args: []string{"list-ports", "tor1"}},
	}
	for i, st := range steps {
		if st.plain != nil {
			mustVtepctl(t, plainDB, st.plain...)
			st.sw(t)
			continue
		}
		swOut, swRC := vtepctl(tsDB, st.args...)
		plainOut, plainRC := vtepctl(plainDB, st.args...)
		if st.sync != nil {
			st.sync(t)
		}
		cmd := "vtep-ctl " + strings.Join(st.args, " ")
		t.Logf("step %d: %s: exit %d\n%s", i, cmd, plainRC, normalizeVtepctl(plainOut))
		if swRC != plainRC {
			t.Errorf("step %d: %s: exit %d on torswitch's database, %d on a plain ovsdb-server\ntorswitch:\n%s\nplain:\n%s",
				i, cmd, swRC, plainRC, swOut, plainOut)
		}
		if a, b := normalizeVtepctl(swOut), normalizeVtepctl(plainOut); a != b {
			t.Errorf("step %d: %s: output differs\ntorswitch's database:\n%s\nplain ovsdb-server:\n%s", i, cmd, a, b)
		}
	}
}
