package ovsdbserver

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/physical/nstest"
)

func TestParseRemote(t *testing.T) {
	tests := []struct {
		in, network, addr, local string
		wantErr                  bool
	}{
		{in: "ptcp:6640:10.0.0.1", network: "tcp", addr: "10.0.0.1:6640", local: "tcp:10.0.0.1:6640"},
		{in: "ptcp:6640", network: "tcp", addr: ":6640", local: "tcp:127.0.0.1:6640"},
		{in: "ptcp:6640:0.0.0.0", network: "tcp", addr: "0.0.0.0:6640", local: "tcp:127.0.0.1:6640"},
		{in: "ptcp:6640:::1", network: "tcp", addr: "[::1]:6640", local: "tcp:[::1]:6640"},
		{in: "pssl:6640:10.0.0.1", network: "tcp", addr: "10.0.0.1:6640", local: "ssl:10.0.0.1:6640"},
		{in: "punix:/run/vtep.sock", network: "unix", addr: "/run/vtep.sock", local: "unix:/run/vtep.sock"},
		{in: "tcp:1.2.3.4:6640", wantErr: true},
		{in: "punix:", wantErr: true},
		{in: "ptcp:", wantErr: true},
		{in: "ptcp:66x0", wantErr: true},
		{in: "ptcp:6640:tor1.example", wantErr: true},
		{in: "pssl:123456", wantErr: true},
	}
	for _, tc := range tests {
		r, err := ParseRemote(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v", tc.in, err)
			continue
		}
		if !tc.wantErr && (r.Network != tc.network || r.Addr != tc.addr || r.Local != tc.local) {
			t.Errorf("%s: got %+v", tc.in, r)
		}
	}
}

func startTest(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tsdb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func vtepctl(t *testing.T, s *Server, args ...string) string {
	t.Helper()
	out, err := exec.Command("vtep-ctl", append([]string{"--db=" + s.Endpoint(), "--timeout=5"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("vtep-ctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestServerKeepsDatabase: the database file outlives a killed server, the
// supervisor restarts it, and a second start over the same directory
// finds the rows.
func TestServerKeepsDatabase(t *testing.T) {
	netnstest.RequireCommands(t, "ovsdb-server", "ovsdb-tool", "vtep-ctl")
	dir := shortDir(t)
	s := startTest(t, Options{Dir: dir})
	if !s.Created() {
		t.Error("first start did not report a created database")
	}
	vtepctl(t, s, "add-ps", "tor1", "--", "add-ls", "ls0", "--", "set", "Logical_Switch", "ls0", "tunnel_key=5000")

	// A second server over the same database is refused: ovsdb-server
	// locks it.
	if _, err := Start(context.Background(), Options{Dir: dir}); err == nil {
		t.Fatal("second server over one database started")
	} else {
		t.Logf("second server refused: %v", err)
	}

	old := s.PID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		if s.PID() == old || s.Restarts() != 1 {
			return false, "not restarted"
		}
		out, err := exec.Command("vtep-ctl", "--db="+s.Endpoint(), "--timeout=1", "list-ls").CombinedOutput()
		return err == nil && strings.TrimSpace(string(out)) == "ls0", string(out)
	})
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, "vtep.db")); err != nil {
		t.Fatal(err)
	}
	s2 := startTest(t, Options{Dir: dir})
	if s2.Created() {
		t.Error("restart over an existing database reported it created")
	}
	if got := vtepctl(t, s2, "list-ps"); got != "tor1" {
		t.Errorf("after restart list-ps = %q", got)
	}
	if got := vtepctl(t, s2, "get", "Logical_Switch", "ls0", "tunnel_key"); got != "5000" {
		t.Errorf("after restart tunnel_key = %q", got)
	}
}

func TestStartRefusesBadOptions(t *testing.T) {
	netnstest.RequireCommands(t, "ovsdb-server", "ovsdb-tool")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	long := "/tmp/" + strings.Repeat("d", 110)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"port taken", Options{Dir: shortDir(t), Remotes: []string{"ptcp:" + strconv.Itoa(port) + ":127.0.0.1"}}, "address already in use"},
		{"bad remote", Options{Dir: shortDir(t), Remotes: []string{"tcp:127.0.0.1:6640"}}, "want ptcp:PORT[:IP]"},
		{"pssl without TLS", Options{Dir: shortDir(t), Remotes: []string{"pssl:0:127.0.0.1"}}, "needs TLS key, certificate and CA"},
		{"missing key file", Options{Dir: shortDir(t), Remotes: []string{"pssl:0:127.0.0.1"}, TLS: TLS{Key: "/nonexistent/k", Cert: "/nonexistent/c", CA: "/nonexistent/ca"}}, "no such file"},
		{"socket path too long", Options{Dir: long}, "too long for a unix socket"},
		{"no directory", Options{}, "directory not set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(context.Background(), tc.opts)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if tc.opts.Dir != "" && tc.opts.Dir != long {
				if _, err := os.Stat(filepath.Join(tc.opts.Dir, "vtep.db")); err == nil {
					t.Error("refused start created a database")
				}
			}
		})
	}
}

// TestStartMissingCommand: a missing ovsdb-tool or ovsdb-server is refused
// with the command's name before anything is written to the directory.
func TestStartMissingCommand(t *testing.T) {
	for _, opts := range []Options{{Tool: "no-such-ovsdb-tool"}, {Server: "no-such-ovsdb-server"}} {
		opts.Dir = t.TempDir()
		_, err := Start(context.Background(), opts)
		name := opts.Tool + opts.Server
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: got %v, want an error naming it", name, err)
		}
		if ents, _ := os.ReadDir(opts.Dir); len(ents) != 0 {
			t.Errorf("%s: wrote %v before failing", name, ents)
		}
	}
}
