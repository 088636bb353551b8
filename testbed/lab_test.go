package testbed_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/torstitch/torstitch/testbed"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

const smallLab = "testdata/small.clab.yml"

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, veths, mounts)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// cleanLab destroys any leftover of a lab before and after a test.
func cleanLab(t *testing.T, file string, opts testbed.Options) {
	t.Helper()
	ctx := context.Background()
	if err := testbed.Destroy(ctx, file, opts); err != nil {
		t.Fatalf("destroying leftovers: %v", err)
	}
	t.Cleanup(func() {
		if err := testbed.Destroy(context.Background(), file, opts); err != nil {
			t.Errorf("cleanup destroy: %v", err)
		}
	})
}

func ping(ctx context.Context, t *testing.T, lab *testbed.Lab, node, addr string) {
	t.Helper()
	if out, err := lab.Exec(ctx, node, "ping", "-c", "1", "-W", "2", addr); err != nil {
		t.Fatalf("ping %s -> %s: %v\n%s", node, addr, err, out)
	}
}

func linkIndex(t *testing.T, nsName, iface string) int {
	t.Helper()
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(iface)
	if err != nil {
		t.Fatalf("%s in %s: %v", iface, nsName, err)
	}
	return l.Attrs().Index
}

// assertGone checks that nothing of the lab is left on the machine.
func assertGone(t *testing.T, lab *testbed.Lab, pids []int) {
	t.Helper()
	for _, n := range lab.Topology.Nodes {
		if _, err := os.Stat(filepath.Join("/run/netns", lab.Netns(n.Name))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("netns %s still exists (%v)", lab.Netns(n.Name), err)
		}
	}
	for _, l := range lab.Topology.Links {
		a, b := testbed.TempNames(lab.Name, l)
		for _, name := range []string{a, b} {
			if _, err := netlink.LinkByName(name); err == nil {
				t.Errorf("temporary veth %s still exists", name)
			}
		}
	}
	if _, err := os.Stat(lab.RunDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("run dir %s still exists (%v)", lab.RunDir, err)
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(stat), ") Z") {
				t.Errorf("process %d of the lab survives: %s", pid, stat)
			}
		}
	}
}

// labPIDs lists all processes in the lab's namespaces.
func labPIDs(t *testing.T, lab *testbed.Lab) []int {
	t.Helper()
	var all []int
	for _, n := range lab.Topology.Nodes {
		pids, err := lab.PIDs(n.Name)
		if err != nil {
			continue // namespace not made (crashed deploy)
		}
		all = append(all, pids...)
	}
	return all
}

func TestDeployConnectivityRedeployDestroy(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := testbed.Options{Logger: testLogger(t), HealthTimeout: 30 * time.Second}
	cleanLab(t, smallLab, opts)

	start := time.Now()
	lab, err := testbed.Deploy(ctx, smallLab, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("deploy took %s", time.Since(start).Round(time.Millisecond))
	if got, want := lab.Netns("h1"), "tb-tb-small-h1"; got != want {
		t.Errorf("netns name %q, want %q", got, want)
	}
	ping(ctx, t, lab, "h1", "10.99.0.2") // across the bridge node
	ping(ctx, t, lab, "h2", "10.99.0.1")
	ping(ctx, t, lab, "h3", "10.99.1.1") // point-to-point
	if _, err := lab.Exec(ctx, "h2", "ping", "-c", "1", "-W", "1", "10.99.1.2"); err == nil {
		t.Error("h2 reaches h3 without a route: namespaces are not isolated")
	}

	out, err := lab.Exec(ctx, "h3", "cat", "/run/tb-small-bind/hello.txt")
	if err != nil || strings.TrimSpace(string(out)) != "hello from the host" {
		t.Errorf("bind mount: %q %v", out, err)
	}
	if _, err := lab.Shell(ctx, "h3", "echo x > /run/tb-small-bind/new"); err == nil {
		t.Error("read-only bind is writable")
	}
	if _, err := os.Stat("/run/tb-small-bind/hello.txt"); err == nil {
		t.Error("bind mount leaked into the host mount namespace")
	}
	if b, err := os.ReadFile(filepath.Join(lab.NodeDir("h3"), "names")); err != nil || string(b) != "h3 of tb-small\n" {
		t.Errorf("magic variables in exec: %q %v", b, err)
	}
	if _, err := lab.Shell(ctx, "h2", "echo private > /run/tb-small-priv/f"); err != nil {
		t.Errorf("writing through the node-dir bind: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(lab.NodeDir("h2"), "priv", "f")); err != nil || string(b) != "private\n" {
		t.Errorf("__clabNodeDir__ bind: %q %v", b, err)
	}
	out, err = lab.Shell(ctx, "h2", "echo $GREETING $TORLAB_NODE $TORLAB_NETNS $CLAB_INTFS")
	if err != nil || strings.TrimSpace(string(out)) != "hi h2 tb-tb-small-h2 1" {
		t.Errorf("env: %q %v", out, err)
	}

	// Redeploy: nothing is recreated or restarted.
	before := map[string]int{
		"h1:eth1": linkIndex(t, lab.Netns("h1"), "eth1"),
		"h3:eth1": linkIndex(t, lab.Netns("h3"), "eth1"),
		"sw:p2":   linkIndex(t, lab.Netns("sw"), "p2"),
	}
	pids1, err := lab.PIDs("h1")
	if err != nil || len(pids1) != 1 {
		t.Fatalf("h1 processes: %v %v", pids1, err)
	}
	if _, err := testbed.Deploy(ctx, smallLab, opts); err != nil {
		t.Fatalf("redeploy: %v", err)
	}
	for ep, idx := range before {
		node, iface, _ := strings.Cut(ep, ":")
		if got := linkIndex(t, lab.Netns(node), iface); got != idx {
			t.Errorf("redeploy recreated %s (ifindex %d -> %d)", ep, idx, got)
		}
	}
	if pids2, _ := lab.PIDs("h1"); !slices.Equal(pids1, pids2) {
		t.Errorf("redeploy restarted h1's cmd: %v -> %v", pids1, pids2)
	}
	if n := execRuns(t, lab, "h1"); n != 1 {
		t.Errorf("redeploy re-ran h1's exec: ran %d times", n)
	}
	ping(ctx, t, lab, "h1", "10.99.0.2")

	// A node stopped (processes killed, links kept) and started again.
	if err := lab.StopNode(ctx, "h1", time.Second); err != nil {
		t.Fatal(err)
	}
	if pids, err := lab.PIDs("h1"); err != nil || len(pids) != 0 {
		t.Fatalf("h1 after StopNode: pids %v %v", pids, err)
	}
	if info, err := lab.Inspect(ctx); err != nil || info.Nodes[0].Name != "h1" || info.Nodes[0].State != "stopped" {
		t.Errorf("inspect after StopNode: %+v %v", info, err)
	}
	if err := lab.StartNode(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if pids, err := lab.PIDs("h1"); err != nil || len(pids) != 1 || slices.Equal(pids, pids1) {
		t.Errorf("h1 after StartNode: pids %v (before %v) %v", pids, pids1, err)
	}
	ping(ctx, t, lab, "h2", "10.99.0.1")
	if n := execRuns(t, lab, "h1"); n != 2 {
		t.Errorf("StartNode: h1's exec ran %d times in all, want 2", n)
	}

	info, err := lab.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range info.Nodes {
		if n.Name == "sw" {
			if n.State != "up" || len(n.Interfaces) != 3 || n.Interfaces[0].Name != "p1" || n.Interfaces[0].Master != "sw" {
				t.Errorf("inspect sw: %+v", n)
			}
		}
		if n.Name == "h3" && (len(n.Interfaces) != 1 || n.Interfaces[0].MTU != 9500 || len(n.Interfaces[0].Addrs) != 1) {
			t.Errorf("inspect h3: %+v", n)
		}
	}

	// StopNode with a grace sends SIGTERM first; with none (a crash) only
	// SIGKILL: no process gets to act on its way out. Kill is that SIGKILL
	// without the wait; the node's network stays reachable meanwhile.
	termFile, ready := filepath.Join(lab.NodeDir("h3"), "term"), filepath.Join(lab.NodeDir("h3"), "trapped")
	for _, c := range []struct {
		name   string
		termed bool
		stop   func() error
	}{
		{"StopNode(1s)", true, func() error { return lab.StopNode(ctx, "h3", time.Second) }},
		{"StopNode(0)", false, func() error { return lab.StopNode(ctx, "h3", 0) }},
		{"Kill", false, func() error {
			if err := lab.Kill(ctx, "h3"); err != nil {
				return err
			}
			if _, err := lab.Shell(ctx, "h3", "ip link set eth1 down"); err != nil {
				return fmt.Errorf("h3's links after Kill: %w", err)
			}
			return lab.StopNode(ctx, "h3", 0)
		}},
	} {
		_, _ = os.Remove(termFile), os.Remove(ready)
		// Returns once the trap is set (a SIGTERM before it would kill the shell).
		trap := fmt.Sprintf(`setsid sh -c 'trap "echo term > %s; exit 0" TERM; touch %s; while :; do sleep 0.05; done' </dev/null >/dev/null 2>&1 &
			while [ ! -e %s ]; do sleep 0.01; done`, termFile, ready, ready)
		if _, err := lab.Shell(ctx, "h3", trap); err != nil {
			t.Fatal(err)
		}
		if err := c.stop(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if pids, err := lab.PIDs("h3"); err != nil || len(pids) != 0 {
			t.Errorf("h3 after %s: pids %v %v", c.name, pids, err)
		}
		_, err := os.Stat(termFile)
		if termed := err == nil; termed != c.termed {
			t.Errorf("%s: the node's process saw SIGTERM: %v, want %v", c.name, termed, c.termed)
		}
		if err := lab.StartNode(ctx, "h3"); err != nil {
			t.Fatal(err)
		}
	}

	pids := labPIDs(t, lab)
	if err := lab.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	assertGone(t, lab, pids)
	if _, err := os.Stat("/run/tb-small-bind"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("created mount point left behind: %v", err)
	}
}

func TestDestroyAfterCrash(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := testbed.Options{Logger: testLogger(t), Name: "tb-crash", HealthTimeout: 30 * time.Second}
	cleanLab(t, smallLab, opts)

	crash := opts
	testbed.SetCrashAfterLinks(&crash, 2)
	if _, err := testbed.Deploy(ctx, smallLab, crash); !errors.Is(err, testbed.ErrCrashed) {
		t.Fatalf("deploy with crash hook: %v", err)
	}
	lab, err := testbed.Open(smallLab, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The crash also left the third link's veth in the host namespace
	// (killed between create and move) and a process in h1's namespace.
	a, b := testbed.TempNames(lab.Name, lab.Topology.Links[2])
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a}, PeerName: b}); err != nil {
		t.Fatal(err)
	}
	// ... and h3's namespace file without the namespace mounted on it
	// (killed between creating the file and the bind mount).
	if out, err := exec.Command("ip", "netns", "delete", lab.Netns("h3")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join("/run/netns", lab.Netns("h3")), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	stray := exec.Command("ip", "netns", "exec", lab.Netns("h1"), "sh", "-c", "exec sleep 300", "torlab-h1")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = stray.Wait() }()

	var pids []int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if pids = labPIDs(t, lab); slices.Contains(pids, stray.Process.Pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stray process %d not in the lab's namespaces %v", stray.Process.Pid, pids)
		}
	}
	if err := testbed.Destroy(ctx, smallLab, opts); err != nil {
		t.Fatal(err)
	}
	assertGone(t, lab, pids)
}

func TestRedeployRepairsHalfDeployedLab(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := testbed.Options{Logger: testLogger(t), Name: "tb-repair", HealthTimeout: 30 * time.Second}
	cleanLab(t, smallLab, opts)

	crash := opts
	testbed.SetCrashAfterLinks(&crash, 1)
	if _, err := testbed.Deploy(ctx, smallLab, crash); !errors.Is(err, testbed.ErrCrashed) {
		t.Fatalf("deploy with crash hook: %v", err)
	}
	lab, err := testbed.Open(smallLab, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Break the first link in half: only h1's end survives.
	ns, err := netns.GetFromName(lab.Netns("sw"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := h.LinkByName("p1")
	if err == nil {
		err = h.LinkSetNsFd(p1, int(mustHostNS(t)))
	}
	h.Close()
	ns.Close()
	if err != nil {
		t.Fatalf("moving sw:p1 away: %v", err)
	}
	// And h3's namespace is only a leftover file.
	if out, err := exec.Command("ip", "netns", "delete", lab.Netns("h3")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join("/run/netns", lab.Netns("h3")), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName("p1"); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	if err := lab.Deploy(ctx); err != nil {
		t.Fatalf("redeploy after crash: %v", err)
	}
	ping(ctx, t, lab, "h1", "10.99.0.2")
	ping(ctx, t, lab, "h3", "10.99.1.1")
}

// execRuns counts how often h1's first exec command ran in node (from its exec log).
func execRuns(t *testing.T, lab *testbed.Lab, node string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(lab.NodeDir(node), "exec.log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "$ ip addr replace 10.99.0.1/24 dev eth1\n")
}

func mustHostNS(t *testing.T) netns.NsHandle {
	t.Helper()
	h, err := netns.GetFromPid(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}
