// Package netnstest is the network-namespace kit of torstitch's tests:
// named namespaces removed (with whatever still runs in them) when the test
// ends, commands run inside them, veth pairs and bridges, test binaries
// re-executed inside a namespace of their own, Open vSwitch on the
// userspace datapath for a namespace, daemons' pid files and logs, free
// ports and condition polling. It knows nothing of the product. The domain
// kits build on it: physical/nstest (frames, a VLAN tagger), evpn/evpntest
// (FRR, gobgpd) and vtep/vteptest (ovsdb-server, the ovs-vtep emulator, PKI).
//
// Everything here needs root; the Require functions skip a test, saying why,
// when it does not run as root or a program is missing.
package netnstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// cmdTimeout bounds every command Try, Run and Host start.
const cmdTimeout = 2 * time.Minute

// RequireRoot skips the test unless it runs as root with iproute2.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces: skipping; CI runs as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
}

// RequireCommands skips the test when a program (a name looked up in PATH,
// or a path) is missing.
func RequireCommands(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s (Debian package; `make deps`, see Makefile APT_PKGS)", p)
		}
	}
}

// Host runs a command in the test's own namespace and fails the test on
// error. It returns the trimmed combined output.
func Host(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Netns is a network namespace created for one test.
type Netns struct {
	t    testing.TB
	Name string
}

// New creates a namespace for the test with loopback up, and removes it
// when the test ends, killing what still runs inside first. Its name is
// unique to the test binary: OWN-name inside the binary's own namespace (see
// RunIsolated), name-PID otherwise. A stale namespace of that name is
// removed first.
func New(t testing.TB, name string) *Netns {
	t.Helper()
	RequireRoot(t)
	full := fmt.Sprintf("%s-%d", name, os.Getpid()%100000)
	if own := Own(); own != "" {
		full = own + "-" + name
	}
	remove(full)
	Host(t, "ip", "netns", "add", full)
	n := &Netns{t: t, Name: full}
	t.Cleanup(func() { remove(full) })
	n.Run("ip", "link", "set", "lo", "up")
	return n
}

// remove kills the processes in namespace name and deletes it.
func remove(name string) {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
}

// Cmd returns a command that runs inside the namespace with env added to
// the test's environment.
func (n *Netns) Cmd(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// Output runs a command inside the namespace and returns its trimmed
// combined output.
func (n *Netns) Output(ctx context.Context, args ...string) (string, error) {
	out, err := n.Cmd(ctx, nil, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Try is Output with a timeout of two minutes.
func (n *Netns) Try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return n.Output(ctx, args...)
}

// Run runs a command inside the namespace, fails the test on error and
// returns the trimmed combined output.
func (n *Netns) Run(args ...string) string {
	n.t.Helper()
	return n.RunEnv(nil, args...)
}

// RunEnv is Run with env added to the test's environment.
func (n *Netns) RunEnv(env []string, args ...string) string {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := n.Cmd(ctx, env, args...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("[%s] %s: %v\n%s", n.Name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Handle opens a handle to the namespace, closed when the test ends.
func (n *Netns) Handle() netns.NsHandle {
	n.t.Helper()
	h, err := netns.GetFromName(n.Name)
	if err != nil {
		n.t.Fatalf("opening netns %s: %v", n.Name, err)
	}
	n.t.Cleanup(func() { h.Close() })
	return h
}

// Addr adds an address to a device of the namespace.
func (n *Netns) Addr(dev, cidr string) {
	n.t.Helper()
	n.Run("ip", "addr", "add", cidr, "dev", dev)
}

// MAC returns the MAC address of a device of the namespace.
func (n *Netns) MAC(dev string) string {
	n.t.Helper()
	return n.Run("cat", "/sys/class/net/"+dev+"/address")
}

// DisableIPv6 turns IPv6 off in the namespace: no stray neighbour discovery
// frames for a switch under test to learn or age.
func (n *Netns) DisableIPv6() {
	n.t.Helper()
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"} {
		n.Run("sysctl", "-q", "-w", k)
	}
}

// Veth connects device aName of a to device bName of b (nil: the test's own
// namespace; a and b may be the same) with a veth pair of the given MTU
// (0: the default) and sets both ends up. An end in the test's own
// namespace is deleted when the test ends.
func Veth(t testing.TB, a *Netns, aName string, b *Netns, bName string, mtu int) {
	t.Helper()
	if a != nil && b == nil {
		a, aName, b, bName = b, bName, a, aName
	}
	args := []string{"ip", "link", "add", aName}
	if mtu > 0 {
		args = append(args, "mtu", strconv.Itoa(mtu))
	}
	args = append(args, "type", "veth", "peer", "name", bName)
	if mtu > 0 {
		args = append(args, "mtu", strconv.Itoa(mtu))
	}
	if b != nil {
		args = append(args, "netns", b.Name)
	}
	runIn(t, a, args...)
	if a == nil {
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", aName).Run() })
	}
	runIn(t, a, "ip", "link", "set", aName, "up")
	runIn(t, b, "ip", "link", "set", bName, "up")
}

// runIn runs a command in ns (nil: the test's own namespace) and fails the
// test on error.
func runIn(t testing.TB, ns *Netns, args ...string) {
	t.Helper()
	if ns == nil {
		Host(t, args...)
	} else {
		ns.Run(args...)
	}
}

// Link connects the test's own namespace to ns with a veth pair: hostIf
// gets hostCIDR, the end peerIf in ns gets peerCIDR ("": no address).
func Link(t testing.TB, ns *Netns, hostIf, hostCIDR, peerIf, peerCIDR string) {
	t.Helper()
	Veth(t, nil, hostIf, ns, peerIf, 0)
	if hostCIDR != "" {
		Host(t, "ip", "addr", "add", hostCIDR, "dev", hostIf)
	}
	if peerCIDR != "" {
		ns.Addr(peerIf, peerCIDR)
	}
}

// Bridge is a Linux bridge in the test's own namespace.
type Bridge struct {
	t    testing.TB
	Name string
}

// NewBridge creates bridge name with address cidr ("": none) in the test's
// own namespace, deleted when the test ends.
func NewBridge(t testing.TB, name, cidr string) *Bridge {
	t.Helper()
	Host(t, "ip", "link", "add", name, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", name).Run() })
	if cidr != "" {
		Host(t, "ip", "addr", "add", cidr, "dev", name)
	}
	Host(t, "ip", "link", "set", name, "up")
	return &Bridge{t: t, Name: name}
}

// Attach connects ns to the bridge with a veth: hostIf on the bridge,
// peerIf with peerCIDR in ns.
func (b *Bridge) Attach(ns *Netns, hostIf, peerIf, peerCIDR string) {
	b.t.Helper()
	Link(b.t, ns, hostIf, "", peerIf, peerCIDR)
	Host(b.t, "ip", "link", "set", hostIf, "master", b.Name)
}

// Lab makes the namespaces of a data-path test: each quiet (IPv6 off),
// named PREFIX-name, joined by veths with TX checksum offload off, which
// OVS userspace ports and AF_PACKET peers need.
type Lab struct {
	t      testing.TB
	prefix string
}

// NewLab returns a Lab whose namespaces are named prefix-name (see New).
func NewLab(t testing.TB, prefix string) *Lab {
	t.Helper()
	RequireRoot(t)
	return &Lab{t: t, prefix: prefix}
}

// NS creates a quiet namespace.
func (l *Lab) NS(name string) *Netns {
	l.t.Helper()
	n := New(l.t, l.prefix+"-"+name)
	n.DisableIPv6()
	return n
}

// Veth is Veth with TX checksum offload turned off on both ends.
func (l *Lab) Veth(a *Netns, aName string, b *Netns, bName string, mtu int) {
	l.t.Helper()
	RequireCommands(l.t, "ethtool")
	Veth(l.t, a, aName, b, bName, mtu)
	runIn(l.t, a, "ethtool", "-K", aName, "tx", "off")
	runIn(l.t, b, "ethtool", "-K", bName, "tx", "off")
}
