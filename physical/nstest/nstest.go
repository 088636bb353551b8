// Package nstest builds small network-namespace topologies for torswitch's
// tests: namespaces, veth pairs, commands run inside them, an OVS userspace
// (netdev) bridge that emulates a VDS, and condition polling. Everything it
// creates is removed by t.Cleanup, also when the test fails.
package nstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// RequireRoot skips the test unless it runs as root with the ip tool.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
}

// RequireCommands skips the test when a command is missing.
func RequireCommands(t testing.TB, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("needs %s (Debian package; see Makefile APT_PKGS)", c)
		}
	}
}

// Lab owns the namespaces of one test.
type Lab struct {
	t      testing.TB
	prefix string
}

// New returns a Lab whose namespaces are named prefix-<name>-<pid>.
func New(t testing.TB, prefix string) *Lab {
	t.Helper()
	RequireRoot(t)
	return &Lab{t: t, prefix: prefix}
}

// NS creates a namespace with loopback up and IPv6 off (no stray neighbour
// discovery frames to learn or age) and returns its full name.
func (l *Lab) NS(name string) string {
	l.t.Helper()
	full := fmt.Sprintf("%s-%s-%d", l.prefix, name, os.Getpid()%100000)
	_ = exec.Command("ip", "netns", "del", full).Run()
	l.Host("ip", "netns", "add", full)
	l.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", full).Run() })
	l.Run(full, "ip", "link", "set", "lo", "up")
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"} {
		l.Run(full, "sysctl", "-q", "-w", k)
	}
	return full
}

// Handle opens a handle to namespace ns, closed at cleanup.
func (l *Lab) Handle(ns string) netns.NsHandle {
	l.t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		l.t.Fatalf("opening netns %s: %v", ns, err)
	}
	l.t.Cleanup(func() { h.Close() })
	return h
}

// Host runs a command in the test's own namespace and fails the test on error.
func (l *Lab) Host(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Run runs a command inside ns and fails the test on error.
func (l *Lab) Run(ns string, args ...string) string {
	l.t.Helper()
	out, err := l.Try(ns, args...)
	if err != nil {
		l.t.Fatalf("[%s] %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return out
}

// Try runs a command inside ns and returns its combined output.
func (l *Lab) Try(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// Veth connects ns1/if1 to ns2/if2, sets both up with the given MTU (0:
// default) and turns TX checksum offload off on both ends, which OVS
// userspace ports and AF_PACKET peers need.
func (l *Lab) Veth(ns1, if1, ns2, if2 string, mtu int) {
	l.t.Helper()
	l.Run(ns1, "ip", "link", "add", if1, "type", "veth", "peer", "name", if2, "netns", ns2)
	for _, e := range [][2]string{{ns1, if1}, {ns2, if2}} {
		if mtu > 0 {
			l.Run(e[0], "ip", "link", "set", e[1], "mtu", strconv.Itoa(mtu))
		}
		l.Run(e[0], "ethtool", "-K", e[1], "tx", "off")
		l.Run(e[0], "ip", "link", "set", e[1], "up")
	}
}

// Addr adds an address to a device in ns.
func (l *Lab) Addr(ns, dev, cidr string) {
	l.t.Helper()
	l.Run(ns, "ip", "addr", "add", cidr, "dev", dev)
}

// MAC returns the MAC address of dev in ns.
func (l *Lab) MAC(ns, dev string) string {
	l.t.Helper()
	out := l.Run(ns, "cat", "/sys/class/net/"+dev+"/address")
	return strings.TrimSpace(out)
}

// Eventually polls cond every 20 ms until it returns true or timeout passes,
// then fails the test with cond's last message.
func Eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %s", timeout, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// OVS is an ovsdb-server + ovs-vswitchd pair; the switch daemon runs inside
// a namespace and its bridges use the userspace (netdev) datapath.
type OVS struct {
	l   *Lab
	dir string
	env []string
}

// StartOVS starts OVS for namespace ns with its state in a temporary directory.
func (l *Lab) StartOVS(ns string) *OVS {
	l.t.Helper()
	RequireCommands(l.t, "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovsdb-tool")
	dir, err := os.MkdirTemp("", "ts-ovs-")
	if err != nil {
		l.t.Fatal(err)
	}
	o := &OVS{l: l, dir: dir, env: append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir)}
	l.t.Cleanup(func() {
		for _, p := range []string{"ovs-vswitchd.pid", "ovsdb-server.pid"} {
			if b, err := os.ReadFile(filepath.Join(dir, p)); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					if proc, err := os.FindProcess(pid); err == nil {
						_ = proc.Kill()
					}
				}
			}
		}
		os.RemoveAll(dir)
	})
	sock := filepath.Join(dir, "db.sock")
	o.cmd("ovsdb-tool", "create", filepath.Join(dir, "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema")
	o.cmd("ovsdb-server", filepath.Join(dir, "conf.db"), "--remote=punix:"+sock,
		"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"), "--detach", "--log-file="+filepath.Join(dir, "ovsdb-server.log"))
	o.Vsctl("--no-wait", "init")
	o.cmd("ip", "netns", "exec", ns, "ovs-vswitchd", "unix:"+sock,
		"--pidfile="+filepath.Join(dir, "ovs-vswitchd.pid"), "--detach", "--log-file="+filepath.Join(dir, "ovs-vswitchd.log"))
	return o
}

func (o *OVS) cmd(args ...string) string {
	o.l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	c.Env = o.env
	out, err := c.CombinedOutput()
	if err != nil {
		o.l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Vsctl runs ovs-vsctl against this OVS.
func (o *OVS) Vsctl(args ...string) string {
	o.l.t.Helper()
	return o.cmd(append([]string{"ovs-vsctl", "--timeout=30", "--db=unix:" + filepath.Join(o.dir, "db.sock")}, args...)...)
}
