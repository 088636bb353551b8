package physical

import (
	"context"
	"fmt"
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

// Helpers that run OVS and OVN programs (ovsdb-server, ovn-northd,
// ovn-controller-vtep, vtep-ctl, ovn-nbctl, ovn-sbctl) as the peers of
// torswitch in tests. Every daemon gets its own directory for sockets, pid and
// log files, and is killed at cleanup.

// daemons owns OVS/OVN daemons started with --detach in one directory.
type daemons struct {
	t   testing.TB
	dir string
	env []string
}

func newDaemons(t testing.TB, prefix string) *daemons {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemons{t: t, dir: dir}
	d.env = append(os.Environ(),
		"OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir, "OVS_SYSCONFDIR="+dir,
		"OVN_RUNDIR="+dir, "OVN_DBDIR="+dir, "OVN_LOGDIR="+dir, "OVN_SYSCONFDIR="+dir)
	t.Cleanup(func() {
		if t.Failed() {
			d.dumpLogs()
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".pid") {
				d.kill(strings.TrimSuffix(e.Name(), ".pid"), syscall.SIGKILL)
			}
		}
		os.RemoveAll(dir)
	})
	return d
}

func (d *daemons) path(name string) string { return filepath.Join(d.dir, name) }

// run runs a command with the daemons' environment; it returns the combined
// output and the exit code (-1 when it could not run).
func (d *daemons) run(args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	c.Env = d.env
	c.Dir = d.dir
	out, err := c.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		return string(out) + err.Error(), -1
	}
	return string(out), 0
}

// must runs a command and fails the test when it exits non-zero.
func (d *daemons) must(args ...string) string {
	d.t.Helper()
	out, rc := d.run(args...)
	if rc != 0 {
		d.t.Fatalf("%s: exit %d\n%s", strings.Join(args, " "), rc, out)
	}
	return out
}

// start starts daemon name (its program is args[0]) detached, with a pid file
// and a log file named after it. Its unixctl socket is the default one in the
// daemons' run directory (ovn-controller-vtep has no --unixctl option).
func (d *daemons) start(name string, args ...string) {
	d.t.Helper()
	args = append(args, "--detach", "--no-chdir", "--pidfile="+d.path(name+".pid"),
		"--log-file="+d.path(name+".log"))
	d.must(args...)
}

// ctl is the unixctl socket of daemon name: PROGRAM.PID.ctl in the run directory.
func (d *daemons) ctl(name string) string {
	return d.path(fmt.Sprintf("%s.%d.ctl", name, d.pid(name)))
}

func (d *daemons) pid(name string) int {
	b, err := os.ReadFile(d.path(name + ".pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// kill sends sig to daemon name and waits until it is gone.
func (d *daemons) kill(name string, sig syscall.Signal) {
	pid := d.pid(name)
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, sig)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && alive(pid) {
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(d.path(name + ".pid"))
}

// alive reports whether process pid exists and is not a zombie. Detached
// daemons are reparented to PID 1, which may reap them only seconds later.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces; state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// exit asks daemon name to exit through its unixctl socket and waits until it is gone.
func (d *daemons) exit(name string) {
	d.t.Helper()
	pid := d.pid(name)
	d.must("ovs-appctl", "--timeout=10", "-t", d.ctl(name), "exit")
	nstest.Eventually(d.t, 10*time.Second, func() (bool, string) {
		return !alive(pid), fmt.Sprintf("%s (pid %d) still running", name, pid)
	})
	os.Remove(d.path(name + ".pid"))
}

// ovsdb starts an ovsdb-server called name serving a new database of schema
// and returns its endpoint.
func (d *daemons) ovsdb(name, schema string) string {
	d.t.Helper()
	db, sock := d.path(name+".db"), d.path(name+".sock")
	d.must("ovsdb-tool", "create", db, schema)
	d.start(name, "ovsdb-server", db, "--remote=punix:"+sock)
	return "unix:" + sock
}

func (d *daemons) dumpLogs() {
	entries, _ := os.ReadDir(d.dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			b, _ := os.ReadFile(d.path(e.Name()))
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			d.t.Logf("--- %s (last %d lines)\n%s", e.Name(), len(lines), strings.Join(lines, "\n"))
		}
	}
}

// ovn is an OVN control plane (NB and SB ovsdb-servers, ovn-northd) and an
// ovn-controller-vtep driving the hardware_vtep database at vtepDB.
type ovn struct {
	*daemons
	nb, sb, vtepDB string
}

const (
	ovnNBSchema = "/usr/share/ovn/ovn-nb.ovsschema"
	ovnSBSchema = "/usr/share/ovn/ovn-sb.ovsschema"
)

func startOVN(t testing.TB, vtepDB string) *ovn {
	t.Helper()
	netnstest.RequireCommands(t, "ovsdb-server", "ovsdb-tool", "ovn-northd", "ovn-controller-vtep", "ovn-nbctl",
		"ovn-sbctl", "vtep-ctl", "ovs-appctl")
	for _, s := range []string{ovnNBSchema, ovnSBSchema} {
		if _, err := os.Stat(s); err != nil {
			t.Skipf("needs %s (Debian ovn-common)", s)
		}
	}
	o := &ovn{daemons: newDaemons(t, "tsovn-"), vtepDB: vtepDB}
	o.nb = o.ovsdb("nb", ovnNBSchema)
	o.sb = o.ovsdb("sb", ovnSBSchema)
	o.nbctl("init")
	o.sbctl("init")
	o.start("ovn-northd", "ovn-northd", "--ovnnb-db="+o.nb, "--ovnsb-db="+o.sb)
	o.startControllerVtep()
	return o
}

func (o *ovn) startControllerVtep() {
	o.t.Helper()
	o.start("ovn-controller-vtep", "ovn-controller-vtep", "--vtep-db="+o.vtepDB, "--ovnsb-db="+o.sb)
}

func (o *ovn) nbctl(args ...string) string {
	o.t.Helper()
	return o.must(append([]string{"ovn-nbctl", "--timeout=20", "--db=" + o.nb}, args...)...)
}

func (o *ovn) sbctl(args ...string) string {
	o.t.Helper()
	return o.must(append([]string{"ovn-sbctl", "--timeout=20", "--db=" + o.sb}, args...)...)
}

// vtepctl runs vtep-ctl against the hardware_vtep database at endpoint.
func vtepctl(endpoint string, args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "vtep-ctl", append([]string{"--timeout=20", "--db=" + endpoint}, args...)...)
	var stdout, stderr strings.Builder
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	out := stdout.String()
	if s := stderr.String(); s != "" {
		out += "stderr: " + s
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return out, ee.ExitCode()
		}
		return out + err.Error(), -1
	}
	return out, 0
}

func mustVtepctl(t testing.TB, endpoint string, args ...string) string {
	t.Helper()
	out, rc := vtepctl(endpoint, args...)
	if rc != 0 {
		t.Fatalf("vtep-ctl %s: exit %d\n%s", strings.Join(args, " "), rc, out)
	}
	return out
}
