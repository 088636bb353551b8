// Package nstest holds torswitch's data-path test helpers, built on the
// namespace kit internal/netnstest: an OVS userspace (netdev) bridge that
// emulates a VDS, raw frames on AF_PACKET sockets, an eBPF VLAN tagger, and
// condition polling. Everything it starts is stopped by t.Cleanup, also when
// the test fails.
package nstest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
)

// Eventually polls cond every 20 ms until it returns true or timeout passes,
// then fails the test with cond's last message.
func Eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	netnstest.Eventually(t, timeout, 20*time.Millisecond, "condition", func() error {
		if ok, msg := cond(); !ok {
			return errors.New(msg)
		}
		return nil
	})
}

// OVS is an ovsdb-server + ovs-vswitchd pair; the switch daemon runs inside
// a namespace and its bridges use the userspace (netdev) datapath.
type OVS struct {
	t   testing.TB
	dir string
	env []string
}

// StartOVS starts OVS for namespace ns with its state in a temporary directory.
func StartOVS(t testing.TB, ns *netnstest.Netns) *OVS {
	t.Helper()
	netnstest.RequireCommands(t, "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovsdb-tool")
	dir, err := os.MkdirTemp("", "ts-ovs-")
	if err != nil {
		t.Fatal(err)
	}
	o := &OVS{t: t, dir: dir, env: append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir)}
	t.Cleanup(func() {
		for _, p := range []string{"ovs-vswitchd.pid", "ovsdb-server.pid"} {
			if b, err := os.ReadFile(filepath.Join(dir, p)); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					if proc, err := os.FindProcess(pid); err == nil {
						_ = proc.Kill()
					}
				}
			}
		}
		os.RemoveAll(dir)
	})
	sock := filepath.Join(dir, "db.sock")
	o.cmd("ovsdb-tool", "create", filepath.Join(dir, "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema")
	o.cmd("ovsdb-server", filepath.Join(dir, "conf.db"), "--remote=punix:"+sock,
		"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"), "--detach", "--log-file="+filepath.Join(dir, "ovsdb-server.log"))
	o.Vsctl("--no-wait", "init")
	o.cmd("ip", "netns", "exec", ns.Name, "ovs-vswitchd", "unix:"+sock,
		"--pidfile="+filepath.Join(dir, "ovs-vswitchd.pid"), "--detach", "--log-file="+filepath.Join(dir, "ovs-vswitchd.log"))
	return o
}

func (o *OVS) cmd(args ...string) string {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	c.Env = o.env
	out, err := c.CombinedOutput()
	if err != nil {
		o.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Vsctl runs ovs-vsctl against this OVS.
func (o *OVS) Vsctl(args ...string) string {
	o.t.Helper()
	return o.cmd(append([]string{"ovs-vsctl", "--timeout=30", "--db=unix:" + filepath.Join(o.dir, "db.sock")}, args...)...)
}
