package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// envOwn names the namespace a test binary was re-executed in.
const envOwn = "NETNSTEST_OWN"

// RunIsolated is for TestMain. As root it re-executes the test binary
// inside a fresh namespace named PREFIX<pid>, so that listeners, daemons and
// links never touch the host's namespace; afterwards it kills what is left
// in that namespace and the ones New made from it, and deletes them. Not as
// root (or without iproute2) it runs the tests in place. It returns the exit
// code.
func RunIsolated(m *testing.M, prefix string) int {
	if os.Getenv(envOwn) != "" {
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
		fmt.Fprintf(os.Stderr, "netnstest: ip netns add %s: %v: %s\n", name, err, out)
		return 1
	}
	defer sweep(name)
	cmd := exec.Command("ip", append([]string{"netns", "exec", name, os.Args[0]}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envOwn+"="+name)
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "netnstest: running tests in %s: %v\n", name, err)
		return 1
	}
	return 0
}

// Own returns the name of the namespace RunIsolated runs the test binary
// in, "" when it runs in place.
func Own() string { return os.Getenv(envOwn) }

// sweep removes namespace name and the ones New made from it.
func sweep(name string) {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if ns := e.Name(); ns == name || strings.HasPrefix(ns, name+"-") {
			remove(ns)
		}
	}
}

// RequireIsolated skips the test unless it runs as root inside its own
// namespace (TestMain calls RunIsolated) and the programs exist.
func RequireIsolated(t testing.TB, programs ...string) {
	t.Helper()
	RequireRoot(t)
	if Own() == "" {
		t.Skip("not running inside a test network namespace (TestMain must call netnstest.RunIsolated)")
	}
	RequireCommands(t, programs...)
}
