package vteptest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Netns is a network namespace created for one test and deleted after it.
type Netns struct {
	t    testing.TB
	Name string
}

// NewNetns creates a namespace (removing a stale one of the same name) with
// loopback up, and deletes it when the test ends.
func NewNetns(t testing.TB, name string) *Netns {
	t.Helper()
	RequireRoot(t)
	RequireBinaries(t, "ip")
	_ = exec.Command("ip", "netns", "del", name).Run()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	n := &Netns{t: t, Name: name}
	t.Cleanup(func() {
		// Kill what still runs inside before removing the namespace.
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		_ = exec.Command("ip", "netns", "del", name).Run()
	})
	n.Run("ip", "link", "set", "lo", "up")
	return n
}

// Cmd returns a command that runs inside the namespace.
func (n *Netns) Cmd(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// Run runs a command inside the namespace and fails the test on error.
func (n *Netns) Run(args ...string) string {
	n.t.Helper()
	return n.RunEnv(nil, args...)
}

// RunEnv is Run with extra environment variables.
func (n *Netns) RunEnv(env []string, args ...string) string {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := n.Cmd(ctx, env, args...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("[%s] %s: %v: %s", n.Name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Try runs a command inside the namespace and returns its error.
func (n *Netns) Try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := n.Cmd(ctx, nil, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Veth creates a veth pair with one end in each namespace (nil = the
// current one), sets MTU and brings both ends up.
func Veth(t testing.TB, a *Netns, aName string, b *Netns, bName string, mtu int) {
	t.Helper()
	tmpA, tmpB := fmt.Sprintf("vt%da", os.Getpid()%100000), fmt.Sprintf("vt%db", os.Getpid()%100000)
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("link", "add", tmpA, "mtu", fmt.Sprint(mtu), "type", "veth", "peer", "name", tmpB, "mtu", fmt.Sprint(mtu))
	place := func(tmp string, ns *Netns, name string) {
		if ns != nil {
			run("link", "set", tmp, "netns", ns.Name)
			ns.Run("ip", "link", "set", tmp, "name", name)
			ns.Run("ip", "link", "set", name, "up")
		} else {
			run("link", "set", tmp, "name", name)
			run("link", "set", name, "up")
		}
	}
	place(tmpA, a, aName)
	place(tmpB, b, bName)
}
