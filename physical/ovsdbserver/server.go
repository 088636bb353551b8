// Package ovsdbserver runs and supervises a switch's own hardware_vtep
// database the way hardware VTEPs do: a real ovsdb-server process over a
// database file that outlives it. torswitch's controller reaches it on a
// private unix socket; controllers reach it on the passive targets given
// (ptcp:, pssl:, punix:) and through the managers the database itself lists
// (Global.managers, switch-initiated connections).
package ovsdbserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// TLS names the PEM files ovsdb-server uses for pssl: remotes and ssl:
// managers (--private-key, --certificate, --ca-cert).
type TLS struct {
	Key, Cert, CA string
}

func (t TLS) set() bool { return t.Key != "" || t.Cert != "" || t.CA != "" }

// Options configures a Server.
type Options struct {
	// Dir holds the database (vtep.db) and the server's runtime files:
	// its private socket, pidfile, control socket and log. The database
	// is kept across runs.
	Dir string
	// Remotes are passive targets controllers connect to: ptcp:PORT[:IP],
	// pssl:PORT[:IP] or punix:PATH.
	Remotes []string
	// TLS is required with a pssl: remote and used for ssl: managers.
	TLS TLS
	// Server and Tool are the ovsdb-server and ovsdb-tool commands
	// (default: found in PATH).
	Server, Tool string
	// Logger receives the supervisor's events and the server's warnings.
	Logger *slog.Logger
}

// Server is a supervised ovsdb-server.
type Server struct {
	opts    Options
	db      string
	sock    string
	created bool
	log     *slog.Logger

	mu       sync.Mutex
	cmd      *exec.Cmd
	restarts int
	closed   bool

	stop chan struct{}
	done chan struct{}
}

// Remote is a passive OVSDB target split into its parts.
type Remote struct {
	Kind string // ptcp, pssl or punix
	// Network and Addr are what net.Listen takes.
	Network, Addr string
	// Local is the active target a client on this host uses to reach it.
	Local string
}

// ParseRemote checks a passive target (ptcp:PORT[:IP], pssl:PORT[:IP] or
// punix:PATH), as ovsdb-server(1) spells them.
func ParseRemote(target string) (Remote, error) {
	kind, rest, _ := strings.Cut(target, ":")
	bad := fmt.Errorf("listen target %q: want ptcp:PORT[:IP], pssl:PORT[:IP] or punix:PATH", target)
	switch kind {
	case "punix":
		if rest == "" {
			return Remote{}, bad
		}
		return Remote{Kind: kind, Network: "unix", Addr: rest, Local: "unix:" + rest}, nil
	case "ptcp", "pssl":
		port, ip, _ := strings.Cut(rest, ":")
		if port == "" || strings.Trim(port, "0123456789") != "" || len(port) > 5 {
			return Remote{}, bad
		}
		if ip != "" {
			addr := strings.Trim(ip, "[]")
			if net.ParseIP(addr) == nil {
				return Remote{}, fmt.Errorf("listen target %q: %q is not an IP address", target, ip)
			}
			if strings.Contains(addr, ":") {
				ip = "[" + addr + "]"
			}
		}
		local := ip
		if local == "" || local == "0.0.0.0" || local == "[::]" {
			local = "127.0.0.1"
		}
		return Remote{Kind: kind, Network: "tcp", Addr: ip + ":" + port, Local: strings.TrimPrefix(kind, "p") + ":" + local + ":" + port}, nil
	}
	return Remote{}, bad
}

// maxSocketPath is the longest unix socket path the kernel takes.
const maxSocketPath = 107

// Start creates the database in opts.Dir if it does not exist (upgrading
// it when the schema changed), starts ovsdb-server on it and returns once
// the server answers. The server is restarted whenever it exits, until
// Close or until ctx ends.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("database directory not set")
	}
	if opts.Server == "" {
		opts.Server = "ovsdb-server"
	}
	if opts.Tool == "" {
		opts.Tool = "ovsdb-tool"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// Both commands found before anything is written to the directory.
	for _, c := range []*string{&opts.Server, &opts.Tool} {
		p, err := exec.LookPath(*c)
		if err != nil {
			return nil, fmt.Errorf("%w (both come with the Debian package openvswitch-common)", err)
		}
		*c = p
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("database directory %s: %w", opts.Dir, err)
	}
	opts.Dir = dir
	s := &Server{
		opts: opts, db: filepath.Join(dir, "vtep.db"), sock: filepath.Join(dir, "db.sock"),
		log: opts.Logger, stop: make(chan struct{}), done: make(chan struct{}),
	}
	if len(s.sock) > maxSocketPath || len(s.ctl()) > maxSocketPath {
		return nil, fmt.Errorf("database directory %s: path too long for a unix socket (at most %d characters with %q)", dir, maxSocketPath, "/ovsdb-server.ctl")
	}
	needTLS := false
	for _, r := range opts.Remotes {
		rem, err := ParseRemote(r)
		if err != nil {
			return nil, err
		}
		if rem.Kind == "pssl" {
			needTLS = true
		}
		if rem.Network == "tcp" {
			// ovsdb-server only logs a taken port and retries: fail early.
			l, err := net.Listen(rem.Network, rem.Addr)
			if err != nil {
				return nil, fmt.Errorf("listen target %s: %w", r, err)
			}
			l.Close()
		}
	}
	if needTLS && (opts.TLS.Key == "" || opts.TLS.Cert == "" || opts.TLS.CA == "") {
		return nil, errors.New("a pssl: listen target needs TLS key, certificate and CA files")
	}
	for what, f := range map[string]string{"TLS key": opts.TLS.Key, "TLS certificate": opts.TLS.Cert, "TLS CA": opts.TLS.CA} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("database directory: %w", err)
	}
	if c, err := net.Dial("unix", s.sock); err == nil {
		c.Close()
		return nil, fmt.Errorf("database directory %s: another ovsdb-server serves it (%s answers)", dir, s.sock)
	}
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	exited, err := s.spawn()
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, exited); err != nil {
		if !errors.Is(err, errExited) {
			s.terminate(exited)
		}
		return nil, err
	}
	s.log.Info("ovsdb-server serving hardware_vtep", "db", s.db, "created", s.created, "remotes", opts.Remotes, "pid", s.PID())
	go s.supervise(ctx, exited)
	return s, nil
}

func (s *Server) ctl() string    { return filepath.Join(s.opts.Dir, "ovsdb-server.ctl") }
func (s *Server) schema() string { return filepath.Join(s.opts.Dir, "hardware_vtep.ovsschema") }

// prepare writes the schema next to the database and creates or converts
// the database.
func (s *Server) prepare(ctx context.Context) error {
	if err := writeIfChanged(s.schema(), vtepdb.SchemaJSON); err != nil {
		return fmt.Errorf("writing schema: %w", err)
	}
	if _, err := os.Stat(s.db); errors.Is(err, os.ErrNotExist) {
		if _, err := s.tool(ctx, "create", s.db, s.schema()); err != nil {
			return err
		}
		s.created = true
		return nil
	}
	out, err := s.tool(ctx, "needs-conversion", s.db, s.schema())
	if err != nil {
		return fmt.Errorf("database %s: %w", s.db, err)
	}
	if strings.TrimSpace(out) == "yes" {
		s.log.Info("converting database to the schema", "db", s.db)
		if _, err := s.tool(ctx, "convert", s.db, s.schema()); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) tool(ctx context.Context, args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, s.opts.Tool, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ovsdb-tool %s: %w: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// args are ovsdb-server's arguments: the database, the private socket, the
// managers the database lists, the passive targets, TLS files and the
// runtime files in Dir.
func (s *Server) args() []string {
	a := []string{
		s.db,
		"--remote=punix:" + s.sock,
		"--remote=db:hardware_vtep,Global,managers",
		"--pidfile=" + filepath.Join(s.opts.Dir, "ovsdb-server.pid"),
		"--unixctl=" + s.ctl(),
		"--log-file=" + filepath.Join(s.opts.Dir, "ovsdb-server.log"),
		"--no-chdir",
		"-vconsole:warn",
	}
	for _, r := range s.opts.Remotes {
		a = append(a, "--remote="+r)
	}
	if s.opts.TLS.set() {
		a = append(a, "--private-key="+s.opts.TLS.Key, "--certificate="+s.opts.TLS.Cert, "--ca-cert="+s.opts.TLS.CA)
	}
	return a
}

// spawn starts one ovsdb-server process; the channel gets its exit.
func (s *Server) spawn() (<-chan error, error) {
	cmd := exec.Command(s.opts.Server, s.args()...)
	// The server dies with torswitch; the database file stays.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting ovsdb-server: %w", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	exited := make(chan error, 1)
	go func() {
		s.relay(stderr)
		exited <- cmd.Wait()
	}()
	return exited, nil
}

// relay logs what ovsdb-server prints on its console (warnings and worse).
func (s *Server) relay(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		s.log.Warn("ovsdb-server", "msg", sc.Text())
	}
}

var errExited = errors.New("ovsdb-server exited at start")

// waitReady returns once the private socket accepts connections.
func (s *Server) waitReady(ctx context.Context, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if c, err := net.Dial("unix", s.sock); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("%w (%v): %s", errExited, err, s.lastLog())
		case <-ctx.Done():
			return fmt.Errorf("waiting for ovsdb-server on %s: %w", s.sock, ctx.Err())
		case <-t.C:
		}
	}
}

// lastLog returns the last lines of the server's log file, for errors.
func (s *Server) lastLog() string {
	b, err := os.ReadFile(filepath.Join(s.opts.Dir, "ovsdb-server.log"))
	if err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " | ")
}

// supervise restarts the server whenever it exits, with a backoff that
// resets after a healthy run.
func (s *Server) supervise(ctx context.Context, exited <-chan error) {
	defer close(s.done)
	const minDelay, maxDelay, healthy = 50 * time.Millisecond, 5 * time.Second, 10 * time.Second
	delay := minDelay
	started := time.Now()
	for {
		select {
		case <-ctx.Done():
			s.terminate(exited)
			return
		case <-s.stop:
			s.terminate(exited)
			return
		case err := <-exited:
			if time.Since(started) > healthy {
				delay = minDelay
			}
			s.log.Error("ovsdb-server exited, restarting", "err", err, "after", delay, "log", s.lastLog())
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, maxDelay)
			started = time.Now()
			var serr error
			exited, serr = s.spawn()
			for serr != nil {
				s.log.Error("restarting ovsdb-server", "err", serr)
				select {
				case <-ctx.Done():
					return
				case <-s.stop:
					return
				case <-time.After(maxDelay):
				}
				exited, serr = s.spawn()
			}
			s.mu.Lock()
			s.restarts++
			s.mu.Unlock()
			s.log.Info("ovsdb-server restarted", "pid", s.PID())
		}
	}
}

// terminate stops the current process (SIGTERM, SIGKILL after 5 s) and
// waits for its exit on exited.
func (s *Server) terminate(exited <-chan error) {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	select {
	case <-exited: // already gone
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Endpoint is the server's private socket (unix:PATH), for torswitch's own
// controller and local tools (vtep-ctl --db=...).
func (s *Server) Endpoint() string { return "unix:" + s.sock }

// Created reports whether this start created the database (it did not
// exist): the kernel may then hold state the database does not describe.
func (s *Server) Created() bool { return s.created }

// PID is the current ovsdb-server process ID (0 if none).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Restarts counts the times the supervisor restarted the server.
func (s *Server) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// Close stops the server and waits for it; the database file stays.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
}
