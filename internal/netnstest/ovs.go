package netnstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// OVS is Open vSwitch for one namespace on the userspace (netdev) datapath:
// ovsdb-server serving conf.db (and more databases) and ovs-vswitchd inside
// the namespace, their pid files, logs and sockets in Dir. When the test
// ends the daemons that wrote a pid file to Dir are stopped (and, after a
// failure, the ends of the logs in Dir shown) and Dir is removed.
type OVS struct {
	t   testing.TB
	NS  *Netns
	Dir string
	// Env points OVS programs at Dir (OVS_RUNDIR and friends).
	Env []string
}

// OVSOptions varies ovsdb-server.
type OVSOptions struct {
	// Databases are more databases to serve, by file name in Dir, each with
	// its schema file.
	Databases []Database
	// DBArgs are extra ovsdb-server arguments (remotes, SSL key files).
	DBArgs []string
	// DBInNetns runs ovsdb-server inside the namespace rather than in the
	// test's own (where a manager target such as ssl:127.0.0.1:PORT reaches
	// a listener of the test process).
	DBInNetns bool
}

// Database is a database file of ovsdb-server and its schema.
type Database struct{ File, Schema string }

// StartOVS creates conf.db (and opt.Databases) in a temporary directory and
// starts ovsdb-server and ovs-vswitchd for ns.
func StartOVS(t testing.TB, ns *Netns, opt OVSOptions) *OVS {
	t.Helper()
	RequireCommands(t, "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovsdb-tool")
	dir, err := os.MkdirTemp("", "ts-ovs-")
	if err != nil {
		t.Fatal(err)
	}
	o := &OVS{t: t, NS: ns, Dir: dir,
		Env: []string{"OVS_RUNDIR=" + dir, "OVS_DBDIR=" + dir, "OVS_LOGDIR=" + dir, "OVS_SYSCONFDIR=" + dir}}
	t.Cleanup(o.stop)
	dbs := append([]Database{{"conf.db", "/usr/share/openvswitch/vswitch.ovsschema"}}, opt.Databases...)
	server := []string{"ovsdb-server"}
	for _, db := range dbs {
		path := filepath.Join(dir, db.File)
		Host(t, "ovsdb-tool", "create", path, db.Schema)
		server = append(server, path)
	}
	server = append(server, "--remote=punix:"+o.Socket())
	server = append(append(server, daemonArgs...), opt.DBArgs...)
	if opt.DBInNetns {
		ns.RunEnv(o.Env, server...)
	} else {
		cmd := exec.Command(server[0], server[1:]...)
		cmd.Env = append(os.Environ(), o.Env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ovsdb-server: %v\n%s", err, out)
		}
	}
	o.Vsctl("--no-wait", "init")
	o.Daemon(append([]string{"ovs-vswitchd", "unix:" + o.Socket()}, daemonArgs...)...)
	return o
}

// daemonArgs make an OVS program a daemon with its pid file and log in
// OVS_RUNDIR and OVS_LOGDIR.
var daemonArgs = []string{"--pidfile", "--detach", "--no-chdir", "--log-file", "-vconsole:off"}

// Socket is ovsdb-server's unix socket.
func (o *OVS) Socket() string { return filepath.Join(o.Dir, "db.sock") }

// Daemon runs a program in the namespace with Env (one that detaches, with
// its pid file in Dir, is stopped when the test ends).
func (o *OVS) Daemon(args ...string) {
	o.t.Helper()
	o.NS.RunEnv(o.Env, args...)
}

// Vsctl runs ovs-vsctl against conf.db.
func (o *OVS) Vsctl(args ...string) string {
	o.t.Helper()
	return o.NS.RunEnv(o.Env, append([]string{"ovs-vsctl", "--timeout=30"}, args...)...)
}

func (o *OVS) stop() {
	pids, _ := filepath.Glob(filepath.Join(o.Dir, "*.pid"))
	for _, p := range pids {
		KillPIDFile(p, syscall.SIGTERM)
	}
	if o.t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(o.Dir, "*.log"))
		LogTail(o.t, logs...)
	}
	_ = os.RemoveAll(o.Dir)
}
