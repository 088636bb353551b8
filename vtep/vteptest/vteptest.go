// Package vteptest starts hardware_vtep databases for tests: a real
// ovsdb-server (the peer that matters) and libovsdb's in-memory server (for
// fast unit tests), plus vtep-ctl as an independent reader.
package vteptest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SchemaPath is where Debian's openvswitch-vtep installs the schema.
const SchemaPath = "/usr/share/openvswitch/vtep.ovsschema"

// RequireBinaries fails the test when a program is missing and we are root
// (CI installs them with `make deps`), and skips it when not root.
func RequireBinaries(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Geteuid() != 0 {
				t.Skipf("%s not installed and not root: skipping (run `make deps` as root)", n)
			}
			t.Fatalf("%s not installed: run `make deps` (installs the Debian packages)", n)
		}
	}
}

// OVSDB is a real ovsdb-server serving a hardware_vtep database from a
// temporary directory on a unix socket.
type OVSDB struct {
	t     testing.TB
	extra []string
	Dir   string
	DB    string
	Sock  string
	cmd   *exec.Cmd
	done  chan struct{}
}

// Endpoint is the libovsdb/vtep-ctl endpoint of the server.
func (s *OVSDB) Endpoint() string { return "unix:" + s.Sock }

// StartOVSDB creates an empty hardware_vtep database and serves it.
//
// extra arguments are passed to ovsdb-server (for example more --remote
// options and SSL key files).
func StartOVSDB(t testing.TB, extra ...string) *OVSDB {
	t.Helper()
	RequireBinaries(t, "ovsdb-server", "ovsdb-tool", "vtep-ctl")
	dir := t.TempDir()
	s := &OVSDB{t: t, extra: extra, Dir: dir, DB: filepath.Join(dir, "vtep.db"), Sock: filepath.Join(dir, "db.sock")}
	s.create()
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

func (s *OVSDB) create() {
	s.t.Helper()
	if out, err := exec.Command("ovsdb-tool", "create", s.DB, SchemaPath).CombinedOutput(); err != nil {
		s.t.Fatalf("ovsdb-tool create: %v: %s", err, out)
	}
}

// Start runs ovsdb-server on the existing database and waits for its socket.
func (s *OVSDB) Start() {
	s.t.Helper()
	_ = os.Remove(s.Sock)
	args := append([]string{s.DB,
		"--remote=punix:" + s.Sock,
		"--unixctl=" + filepath.Join(s.Dir, "ovsdb.ctl"),
		"--log-file=" + filepath.Join(s.Dir, "ovsdb-server.log"),
		"--no-chdir", "-vconsole:off"}, s.extra...)
	s.cmd = exec.Command("ovsdb-server", args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting ovsdb-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(s.cmd, s.done)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, err := s.vtepCtl(ctx, "--timeout=1", "list-ps"); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("ovsdb-server did not come up on %s", s.Sock)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop kills the server (the database file stays).
func (s *OVSDB) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart stops the server and starts it again; with wipe the database is
// recreated empty first (a switch that lost its configuration).
func (s *OVSDB) Restart(wipe bool) {
	s.t.Helper()
	s.Stop()
	if wipe {
		_ = os.Remove(s.DB)
		s.create()
	}
	s.Start()
}

// PID returns the server's process ID, 0 when stopped.
func (s *OVSDB) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *OVSDB) vtepCtl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "vtep-ctl", append([]string{"--db=" + s.Endpoint()}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// VtepCtl runs vtep-ctl against the server and returns its trimmed output.
func (s *OVSDB) VtepCtl(args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := s.vtepCtl(ctx, args...)
	if err != nil {
		s.t.Fatalf("vtep-ctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// AddSwitch creates a Physical_Switch with a tunnel IP and ports, as the
// switch's own agent (the HSC) would.
func (s *OVSDB) AddSwitch(name, tunnelIP string, ports ...string) {
	s.t.Helper()
	s.VtepCtl("add-ps", name)
	if tunnelIP != "" {
		s.VtepCtl("set", "Physical_Switch", name, "tunnel_ips="+tunnelIP)
	}
	for _, p := range ports {
		s.VtepCtl("add-port", name, p)
	}
}
