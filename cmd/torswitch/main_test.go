package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/physical/nstest"
)

func TestFlagValidation(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--tunnel-ip", "10.0.0.1", "--listen", "punix:/x"}, "--name is required"},
		{[]string{"--name", "t", "--tunnel-ip", "nope", "--listen", "punix:/x"}, "--tunnel-ip"},
		{[]string{"--name", "t", "--tunnel-ip", "10.0.0.1", "--listen", "punix:/x", "--ovsdb", "unix:/y"}, "--ovsdb uses an external database"},
		{[]string{"--name", "t", "--tunnel-ip", "10.0.0.1", "--manager", "ssl:10.0.0.9:6640", "--ovsdb", "unix:/y"}, "--ovsdb uses an external database"},
		{[]string{"--name", "t", "--tunnel-ip", "10.0.0.1", "--listen", "tcp:1:2"}, "want ptcp:PORT"},
		{[]string{"--name", "t", "--tunnel-ip", "10.0.0.1", "--manager", "ptcp:6640"}, "want ssl:IP:PORT or tcp:IP:PORT"},
		{[]string{"--name", "t", "--tunnel-ip", "10.0.0.1", "--manager", "ssl:controller:6640"}, "want ssl:IP:PORT or tcp:IP:PORT"},
		{[]string{"--name", "t", "--tunnel-ip", "10.0.0.1", "--manager", "ssl:10.0.0.9:6640"}, "ssl: needs --tls-key"},
		{[]string{"--name", "t", "--tunnel-ip", "10.0.0.1", "--listen", "punix:/x", "--management-ips", "bad"}, "--management-ips"},
		{[]string{"extra"}, "unknown command"},
	}
	for _, tc := range tests {
		cmd := newCommand()
		cmd.SetArgs(tc.args)
		cmd.SetOut(&strings.Builder{})
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestHoldDownFlag: one default in the help (auto), durations and auto
// accepted, a negative duration (the former default -1ns) still meaning auto.
func TestHoldDownFlag(t *testing.T) {
	var help strings.Builder
	cmd := newCommand()
	cmd.SetArgs([]string{"--help"})
	cmd.SetOut(&help)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(help.String(), "\n") {
		if strings.Contains(l, "--hold-down") && (strings.Count(l, "default") != 1 || !strings.HasSuffix(l, "(default auto)")) {
			t.Errorf("help line: %q", l)
		}
	}
	for arg, want := range map[string]time.Duration{"auto": -1, "-1ns": -1, "-1s": -1, "90s": 90 * time.Second, "0": 0} {
		var h holdDown
		if err := h.Set(arg); err != nil || (want < 0) != (h < 0) || (want >= 0 && time.Duration(h) != want) {
			t.Errorf("--hold-down %s: %v %v", arg, time.Duration(h), err)
		}
	}
	var version strings.Builder
	cmd = newCommand()
	cmd.SetArgs([]string{"--version"})
	cmd.SetOut(&version)
	if err := cmd.Execute(); err != nil || !strings.HasPrefix(version.String(), "torswitch ") {
		t.Errorf("--version: %v %q", err, version.String())
	}
}

// TestBinaryInNamespace runs the built binary inside a namespace the way the
// lab does and checks the rows it serves (through vtep-ctl, against the
// ovsdb-server torswitch supervises) and the trunk program it attaches. Then
// it stops torswitch (its ovsdb-server goes with it) and starts it again
// over the same database directory: the database still holds what the
// controller wrote, and the kernel kept its state and is not pruned.
func TestBinaryInNamespace(t *testing.T) {
	l := netnstest.NewLab(t, "tsc")
	netnstest.RequireCommands(t, "tc", "ethtool", "vtep-ctl", "ovsdb-server", "bridge")
	bin := filepath.Join(t.TempDir(), "torswitch")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sw, peer := l.NS("sw"), l.NS("peer")
	l.Veth(sw, "eth1", peer, "t0", 0)
	sw.Run("ip", "addr", "add", "192.0.2.1/24", "dev", "eth1")
	dbDir, err := os.MkdirTemp("", "tsc-db-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dbDir) })
	sock := filepath.Join(t.TempDir(), "vtep.sock")
	vtepctl := func(args ...string) (string, error) {
		out, err := exec.Command("vtep-ctl", append([]string{"--db=unix:" + sock, "--timeout=5"}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	fdb := func() string {
		out, _ := sw.Try("bridge", "fdb", "show", "dev", "tsvx5000")
		return out
	}

	// run starts torswitch and returns a function that stops it with
	// SIGTERM and checks that it and its ovsdb-server are gone.
	run := func() func() {
		cmd := sw.Cmd(context.Background(), nil, bin, "--name", "tor1", "--tunnel-ip", "192.0.2.1",
			"--ports", "eth1", "--listen", "punix:"+sock, "--management-ips", "198.51.100.1",
			"--db-dir", dbDir, "--manager", "tcp:127.0.0.1:1")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		nstest.Eventually(t, 15*time.Second, func() (bool, string) {
			out, err := vtepctl("get", "Physical_Switch", "tor1", "tunnel_ips", "management_ips", "ports")
			return err == nil && strings.HasPrefix(out, "[\"192.0.2.1\"]\n[\"198.51.100.1\"]\n[") && !strings.HasSuffix(out, "[]"), out
		})
		return func() {
			t.Helper()
			pid, err := os.ReadFile(filepath.Join(dbDir, "ovsdb-server.pid"))
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("torswitch exited with %v after SIGTERM", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("torswitch did not stop after SIGTERM")
			}
			// No ovsdb-server is left behind.
			nstest.Eventually(t, 5*time.Second, func() (bool, string) {
				_, err := os.Stat("/proc/" + strings.TrimSpace(string(pid)))
				return os.IsNotExist(err), "ovsdb-server " + strings.TrimSpace(string(pid)) + " still running"
			})
		}
	}

	stop := run()
	nstest.Eventually(t, 5*time.Second, func() (bool, string) {
		out, _ := sw.Try("tc", "filter", "show", "dev", "eth1", "ingress")
		return strings.Contains(out, "ts_trunk"), out
	})
	if out, err := vtepctl("get-manager"); err != nil || out != "tcp:127.0.0.1:1" {
		t.Errorf("vtep-ctl get-manager: %v: %q", err, out)
	}
	if out, err := vtepctl("add-ls", "ls0", "--", "set", "Logical_Switch", "ls0", "tunnel_key=5000", "--",
		"bind-ls", "tor1", "eth1", "100", "ls0", "--", "add-ucast-remote", "ls0", "06:00:00:00:00:01", "192.0.2.9"); err != nil {
		t.Fatalf("vtep-ctl: %v: %s", err, out)
	}
	nstest.Eventually(t, 5*time.Second, func() (bool, string) {
		out := fdb()
		return strings.Contains(out, "06:00:00:00:00:01 dst 192.0.2.9"), out
	})
	stop()

	stop = run()
	defer stop()
	if out, err := vtepctl("list-remote-macs", "ls0"); err != nil || !strings.Contains(out, "06:00:00:00:00:01 -> vxlan_over_ipv4/192.0.2.9") {
		t.Errorf("after a restart the database lost the remote MAC: %v: %s", err, out)
	}
	// A MAC written now reaches the kernel (the new run reconciles) and
	// the old one is still there (nothing pruned, nothing flushed).
	if out, err := vtepctl("add-ucast-remote", "ls0", "06:00:00:00:00:02", "192.0.2.9"); err != nil {
		t.Fatalf("vtep-ctl: %v: %s", err, out)
	}
	nstest.Eventually(t, 5*time.Second, func() (bool, string) {
		out := fdb()
		return strings.Contains(out, "06:00:00:00:00:02 dst 192.0.2.9"), out
	})
	if out := fdb(); !strings.Contains(out, "06:00:00:00:00:01 dst 192.0.2.9") {
		t.Errorf("the restart removed a remote MAC from the kernel:\n%s", out)
	}
}
