package vteptest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
)

// Emulator is Open vSwitch's ovs-vtep hardware-VTEP emulator running inside
// a namespace on the userspace (netdev) datapath: one ovsdb-server serving
// conf.db and vtep.db, ovs-vswitchd, and ovs-vtep for one physical switch.
// The recipe follows the environment notes.
type Emulator struct {
	*netnstest.OVS
	Switch string
}

// Endpoint is the unix socket the controller (torstitch) connects to.
func (e *Emulator) Endpoint() string { return "unix:" + e.Socket() }

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
	if _, err := os.Stat(ovsVtep); err != nil {
		RequireBinaries(t, ovsVtep)
	}
	e := &Emulator{Switch: ps, OVS: netnstest.StartOVS(t, ns, netnstest.OVSOptions{
		Databases: []netnstest.Database{{File: "vtep.db", Schema: SchemaPath}},
		DBArgs:    append([]string{"--remote=db:hardware_vtep,Global,managers"}, opt.DBArgs...),
		DBInNetns: !opt.DBOutsideNetns,
	})}
	e.Vsctl("add-br", ps, "--", "set", "bridge", ps, "datapath_type=netdev")
	e.VtepCtl("add-ps", ps)
	e.VtepCtl("set", "Physical_Switch", ps, "tunnel_ips="+tunnelIP)
	return e
}

// ovsVtep is the emulator's script (Debian package openvswitch-vtep).
const ovsVtep = "/usr/share/openvswitch/scripts/ovs-vtep"

// AddPort adds a port to the physical switch: to its OVS bridge and, first,
// to the vtep database (ovs-vtep races its own add otherwise).
func (e *Emulator) AddPort(port string) {
	e.VtepCtl("add-port", e.Switch, port)
	e.Vsctl("add-port", e.Switch, port)
}

// Run starts ovs-vtep itself (after the ports exist).
func (e *Emulator) Run() {
	e.Daemon("/usr/bin/python3", ovsVtep, "--pidfile", "--detach", "--no-chdir", "--log-file", "-vconsole:off", e.Switch)
}

// VtepCtl runs vtep-ctl against the emulator's vtep.db.
func (e *Emulator) VtepCtl(args ...string) string {
	return e.NS.RunEnv(e.Env, append([]string{"vtep-ctl", "--timeout=20"}, args...)...)
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
