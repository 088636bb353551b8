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

	"github.com/torstitch/torstitch/physical/controller"
	"github.com/torstitch/torstitch/physical/nstest"
	"github.com/torstitch/torstitch/vtep/vtepdb"
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

// TestBinaryInNamespace runs the built binary inside a namespace the way the
// lab does and checks the rows it serves and the trunk program it attaches.
func TestBinaryInNamespace(t *testing.T) {
	l := nstest.New(t, "tsc")
	nstest.RequireCommands(t, "tc", "ethtool")
	bin := filepath.Join(t.TempDir(), "torswitch")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sw, peer := l.NS("sw"), l.NS("peer")
	l.Veth(sw, "eth1", peer, "t0", 0)
	dbDir, err := os.MkdirTemp("", "tsc-db-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dbDir) })
	sock := filepath.Join(t.TempDir(), "vtep.sock")
	cmd := exec.Command("ip", "netns", "exec", sw, bin, "--name", "tor1", "--tunnel-ip", "192.0.2.1",
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
		if _, err := os.Stat(sock); err != nil {
			return false, "no socket yet"
		}
		c, err := controller.Connect(context.Background(), "unix:"+sock, nil)
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		var sws []vtepdb.PhysicalSwitch
		_ = c.List(context.Background(), &sws)
		if len(sws) != 1 || sws[0].Name != "tor1" || strings.Join(sws[0].TunnelIPs, ",") != "192.0.2.1" ||
			strings.Join(sws[0].ManagementIPs, ",") != "198.51.100.1" || len(sws[0].Ports) != 1 {
			return false, "Physical_Switch rows not there yet"
		}
		return true, ""
	})
	nstest.Eventually(t, 5*time.Second, func() (bool, string) {
		out, _ := l.Try(sw, "tc", "filter", "show", "dev", "eth1", "ingress")
		return strings.Contains(out, "ts_trunk"), out
	})
	// The served database is a real ovsdb-server: vtep-ctl works against
	// it, and the --manager target is in Global.managers.
	if out, err := exec.Command("vtep-ctl", "--db=unix:"+sock, "--timeout=5", "get-manager").CombinedOutput(); err != nil ||
		strings.TrimSpace(string(out)) != "tcp:127.0.0.1:1" {
		t.Errorf("vtep-ctl get-manager: %v: %q", err, out)
	}
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
