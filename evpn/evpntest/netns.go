// Package evpntest holds test helpers for the evpn package: running a test
// binary inside its own network namespace, creating namespaces and veth
// links, and starting FRR and gobgpd as real EVPN peers.
package evpntest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envNetns marks a test binary re-executed inside its namespace.
const envNetns = "EVPNTEST_NETNS"

// RunInNetns is for TestMain. As root it re-executes the test binary inside
// a fresh network namespace named PREFIX<pid>, so that BGP listeners, FRR
// peers and veth links never touch the host namespace; afterwards it kills
// what is left in PREFIX<pid>* namespaces and deletes them. Not as root (or
// without iproute2) it runs the tests in place. It returns the exit code.
func RunInNetns(m *testing.M, prefix string) int {
	if ns := os.Getenv(envNetns); ns != "" {
		_ = exec.Command("ip", "link", "set", "lo", "up").Run()
		return m.Run()
	}
	if os.Getuid() != 0 {
		return m.Run()
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return m.Run()
	}
	name := fmt.Sprintf("%s%d", prefix, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "evpntest: ip netns add %s: %v: %s\n", name, err, out)
		return 1
	}
	defer sweep(name)
	cmd := exec.Command("ip", append([]string{"netns", "exec", name, os.Args[0]}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envNetns+"="+name)
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "evpntest: running tests in %s: %v\n", name, err)
		return 1
	}
	return 0
}

// NetnsPrefix returns the prefix for namespaces created by this test binary
// (its own namespace name), or "" when not running in one.
func NetnsPrefix() string { return os.Getenv(envNetns) }

// sweep kills processes left in the namespace family of name and deletes
// the namespaces.
func sweep(name string) {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		ns := e.Name()
		if ns != name && !strings.HasPrefix(ns, name+"-") {
			continue
		}
		killNetnsPids(ns)
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

func killNetnsPids(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// RequireNetns skips t unless the binary runs as root inside its own
// namespace (see RunInNetns) and the named programs exist.
func RequireNetns(t testing.TB, programs ...string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: network namespaces, FRR and gobgpd run only as root")
	}
	if NetnsPrefix() == "" {
		t.Skip("not running inside a test network namespace (TestMain must call evpntest.RunInNetns)")
	}
	for _, p := range programs {
		if _, err := os.Stat(p); err != nil {
			if _, err := exec.LookPath(p); err != nil {
				t.Skipf("%s not installed (Debian packages frr, gobgpd; `make deps`)", p)
			}
		}
	}
}

// Run runs a command and fails t with its output on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Netns is a named network namespace created for one test.
type Netns struct{ Name string }

// NewNetns creates namespace PREFIX-suffix (PREFIX from NetnsPrefix) with
// loopback up, removed (after killing its processes) when t ends.
func NewNetns(t testing.TB, suffix string) *Netns {
	t.Helper()
	name := NetnsPrefix() + "-" + suffix
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		killNetnsPids(name)
		_ = exec.Command("ip", "netns", "del", name).Run()
	})
	ns := &Netns{Name: name}
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Run runs a command inside the namespace.
func (n *Netns) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return Run(t, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Output runs a command inside the namespace and returns its output.
func (n *Netns) Output(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}

// Link connects the test's own namespace to ns with a veth pair: hostIf
// (in the test namespace) gets hostCIDR, the peer end named peerIf gets
// peerCIDR. Both ends are removed with the namespace.
func Link(t testing.TB, ns *Netns, hostIf, hostCIDR, peerIf, peerCIDR string) {
	t.Helper()
	Run(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", peerIf, "netns", ns.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostIf).Run() })
	if hostCIDR != "" {
		Run(t, "ip", "addr", "add", hostCIDR, "dev", hostIf)
	}
	Run(t, "ip", "link", "set", hostIf, "up")
	if peerCIDR != "" {
		ns.Run(t, "ip", "addr", "add", peerCIDR, "dev", peerIf)
	}
	ns.Run(t, "ip", "link", "set", peerIf, "up")
}

// Bridge creates a Linux bridge in the test's namespace with address cidr
// and attaches veths to namespaces with Attach.
type Bridge struct{ Name string }

// NewBridge creates bridge name with cidr in the test namespace.
func NewBridge(t testing.TB, name, cidr string) *Bridge {
	t.Helper()
	Run(t, "ip", "link", "add", name, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", name).Run() })
	if cidr != "" {
		Run(t, "ip", "addr", "add", cidr, "dev", name)
	}
	Run(t, "ip", "link", "set", name, "up")
	return &Bridge{Name: name}
}

// Attach connects ns to the bridge with a veth (hostIf on the bridge,
// peerIf with peerCIDR in ns).
func (b *Bridge) Attach(t testing.TB, ns *Netns, hostIf, peerIf, peerCIDR string) {
	t.Helper()
	Link(t, ns, hostIf, "", peerIf, peerCIDR)
	Run(t, "ip", "link", "set", hostIf, "master", b.Name)
}

// FreePort returns a TCP port that was free on addr a moment ago.
func FreePort(t testing.TB, addr string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatalf("finding a free port on %s: %v", addr, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Eventually polls cond every interval until it returns nil or timeout
// passes, then fails t with the last error.
func Eventually(t testing.TB, timeout, interval time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s: %v", what, timeout, err)
		}
		time.Sleep(interval)
	}
}

// WriteFile writes a file under dir and returns its path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
