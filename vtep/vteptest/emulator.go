package vteptest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
)

// Emulator is Open vSwitch's ovs-vtep hardware-VTEP emulator running inside
// a namespace on the userspace (netdev) datapath: one ovsdb-server serving
// conf.db and vtep.db, ovs-vswitchd, and ovs-vtep for one physical switch.
// The recipe follows the environment notes.
type Emulator struct {
	t      testing.TB
	NS     *netnstest.Netns
	Dir    string
	Switch string
	env    []string
}

// Endpoint is the unix socket the controller (torstitch) connects to.
func (e *Emulator) Endpoint() string { return "unix:" + filepath.Join(e.Dir, "db.sock") }

// StartEmulator starts the emulator for physical switch ps with the given
// tunnel IP. The tunnel IP must already be configured on an interface in
// the namespace (see UnderlayBridge).
func StartEmulator(t testing.TB, ns *netnstest.Netns, ps, tunnelIP string) *Emulator {
	t.Helper()
	return StartEmulatorWith(t, ns, ps, tunnelIP, EmulatorOptions{})
}

// EmulatorOptions varies the emulator's ovsdb-server.
type EmulatorOptions struct {
	// DBOutsideNetns runs ovsdb-server in the caller's network namespace
	// (ovs-vswitchd and ovs-vtep stay in ns): a Manager target such as
	// ssl:127.0.0.1:PORT then reaches a listener in the test process.
	DBOutsideNetns bool
	// DBArgs are extra ovsdb-server arguments (SSL key files).
	DBArgs []string
}

// StartEmulatorWith is StartEmulator with options.
func StartEmulatorWith(t testing.TB, ns *netnstest.Netns, ps, tunnelIP string, opt EmulatorOptions) *Emulator {
	t.Helper()
	RequireBinaries(t, "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "vtep-ctl", "ovsdb-tool")
	const script = "/usr/share/openvswitch/scripts/ovs-vtep"
	if _, err := os.Stat(script); err != nil {
		RequireBinaries(t, script)
	}
	dir, err := os.MkdirTemp("", "torstitch-ovsvtep-")
	if err != nil {
		t.Fatal(err)
	}
	e := &Emulator{t: t, NS: ns, Dir: dir, Switch: ps,
		env: []string{"OVS_RUNDIR=" + dir, "OVS_DBDIR=" + dir, "OVS_LOGDIR=" + dir, "OVS_SYSCONFDIR=" + dir}}
	t.Cleanup(func() {
		for _, p := range []string{"ovs-vtep", "ovs-vswitchd", "ovsdb-server"} {
			if b, err := os.ReadFile(filepath.Join(dir, p+".pid")); err == nil {
				_ = exec.Command("kill", strings.TrimSpace(string(b))).Run()
			}
		}
		if t.Failed() {
			for _, f := range []string{"ovs-vtep.log", "ovs-vswitchd.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					t.Logf("%s (tail):\n%s", f, tail(string(b), 3000))
				}
			}
		}
		_ = os.RemoveAll(dir)
	})
	for _, db := range []struct{ file, schema string }{
		{"conf.db", "/usr/share/openvswitch/vswitch.ovsschema"},
		{"vtep.db", SchemaPath},
	} {
		if out, err := exec.Command("ovsdb-tool", "create", filepath.Join(dir, db.file), db.schema).CombinedOutput(); err != nil {
			t.Fatalf("ovsdb-tool create %s: %v: %s", db.file, err, out)
		}
	}
	dbArgs := append([]string{"ovsdb-server", filepath.Join(dir, "conf.db"), filepath.Join(dir, "vtep.db"),
		"--remote=punix:" + filepath.Join(dir, "db.sock"), "--remote=db:hardware_vtep,Global,managers",
		"--pidfile", "--detach", "--no-chdir", "--log-file", "-vconsole:off"}, opt.DBArgs...)
	if opt.DBOutsideNetns {
		cmd := exec.Command(dbArgs[0], dbArgs[1:]...)
		cmd.Env = append(os.Environ(), e.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ovsdb-server: %v: %s", err, out)
		}
	} else {
		ns.RunEnv(e.env, dbArgs...)
	}
	e.Vsctl("--no-wait", "init")
	ns.RunEnv(e.env, "ovs-vswitchd", "unix:"+filepath.Join(dir, "db.sock"), "--pidfile", "--detach", "--no-chdir", "--log-file", "-vconsole:off")
	e.Vsctl("add-br", ps, "--", "set", "bridge", ps, "datapath_type=netdev")
	e.VtepCtl("add-ps", ps)
	e.VtepCtl("set", "Physical_Switch", ps, "tunnel_ips="+tunnelIP)
	return e
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// AddPort adds a port to the physical switch: to its OVS bridge and, first,
// to the vtep database (ovs-vtep races its own add otherwise).
func (e *Emulator) AddPort(port string) {
	e.t.Helper()
	e.VtepCtl("add-port", e.Switch, port)
	e.Vsctl("add-port", e.Switch, port)
}

// Run starts ovs-vtep itself (after the ports exist).
func (e *Emulator) Run() {
	e.t.Helper()
	e.NS.RunEnv(e.env, "/usr/bin/python3", "/usr/share/openvswitch/scripts/ovs-vtep",
		"--pidfile", "--detach", "--no-chdir", "--log-file", "-vconsole:off", e.Switch)
}

// Vsctl runs ovs-vsctl against the emulator's conf.db.
func (e *Emulator) Vsctl(args ...string) string {
	e.t.Helper()
	return e.NS.RunEnv(e.env, append([]string{"ovs-vsctl", "--timeout=20"}, args...)...)
}

// VtepCtl runs vtep-ctl against the emulator's vtep.db.
func (e *Emulator) VtepCtl(args ...string) string {
	e.t.Helper()
	return e.NS.RunEnv(e.env, append([]string{"vtep-ctl", "--timeout=20"}, args...)...)
}

// WaitPing pings dst from inside ns until one reply arrives or the
// deadline passes; it returns the number of attempts.
func WaitPing(t testing.TB, ns *netnstest.Netns, dst string, deadline time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	for i := 1; ; i++ {
		if _, err := ns.Try("ping", "-c", "1", "-W", "1", dst); err == nil {
			return i
		}
		if ctx.Err() != nil {
			t.Fatalf("[%s] no ping reply from %s within %v", ns.Name, dst, deadline)
		}
	}
}
