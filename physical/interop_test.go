package physical

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/torstitch/torstitch/physical/controller"
	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/physical/nstest"
	"github.com/torstitch/torstitch/physical/ovsdbserver"
	"github.com/torstitch/torstitch/vtep/client"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// TestDrivenByAgentClient drives torswitch with the agent's own switch
// client (vtep/client) the way toragent drives ovs-vtep: reconcile a desired
// state, then read the learned MACs back.
func TestDrivenByAgentClient(t *testing.T) {
	l := newTrunkLab(t)
	endpoint := startServer(t)
	newSwitch(t, endpoint, controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1,
	}, dataplane.Options{NetNS: l.sw.Handle(), ARPSuppression: true})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := client.New(client.Config{Name: "tor1", Endpoint: endpoint}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}

	rem := netip.MustParseAddr(remTunnel)
	var remote []l2.RemoteMAC
	for i := 1; i <= 300; i++ {
		remote = append(remote, l2.RemoteMAC{VNI: 7000, MAC: l2.MAC{0x06, 0, 0, 0, byte(i >> 8), byte(i)}, VTEP: rem})
	}
	remote[0].IP = netip.MustParseAddr("10.9.0.200")
	desired := &plan.Desired{
		LogicalSwitches: []plan.LogicalSwitch{{VNI: 7000}},
		Bindings:        []plan.PortBinding{{Port: "eth1", VLAN: 10, VNI: 7000}},
		RemoteMACs:      remote,
		Flood:           map[l2.VNI][]netip.Addr{7000: {rem, netip.MustParseAddr(swTunnel)}},
	}
	// The client needs the switch's Physical_Port rows, which torswitch creates.
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		_, err := c.Reconcile(ctx, desired, plan.Options{})
		return err == nil, fmt.Sprint(err)
	})
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		ok1, out := fdbHas(l.sw, "tsvx7000", "06:00:00:00:01:2c", remTunnel)
		ok2, _ := fdbHas(l.sw, "tsvx7000", "00:00:00:00:00:00", remTunnel)
		return ok1 && ok2, out
	})
	if out, _ := l.sw.Try("ip", "neigh", "show", "dev", "tsbr7000"); !strings.Contains(out, "10.9.0.200 lladdr 06:00:00:00:00:01") {
		t.Errorf("ipaddr of a remote MAC not installed for ARP suppression:\n%s", out)
	}
	if ok, out := fdbHas(l.sw, "tsvx7000", "00:00:00:00:00:00", swTunnel); ok {
		t.Errorf("flood list includes the switch's own tunnel IP:\n%s", out)
	}

	s := l.socket(t)
	host := l2.MustMAC("02:00:00:00:10:01")
	nstest.Eventually(t, 5*time.Second, func() (bool, string) {
		send(t, s, host.String(), 10)
		o, err := c.Observed()
		if err != nil {
			return false, err.Error()
		}
		for _, m := range o.LocalMACs() {
			if m.MAC == host && m.VNI == 7000 && m.VTEP == netip.MustParseAddr(swTunnel) {
				return m.IP == netip.MustParseAddr("10.9.0.1"), fmt.Sprintf("ipaddr %v", m.IP)
			}
		}
		return false, fmt.Sprint(o.LocalMACs())
	})
	// Steady state: planning again against what torswitch reports changes nothing.
	res, err := c.Reconcile(ctx, desired, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changes != 0 {
		t.Errorf("second reconcile changed %d rows: torswitch rewrote agent-owned state", res.Changes)
	}
}

// TestDialsIntoAgent: torswitch as a hardware VTEP is deployed with a
// manager target: its database dials the agent (vtep/client's inbound
// listener, ovs-pki certificates both ways), the agent identifies it by
// its Physical_Switch name and certificate and writes through the accepted
// connection; the kernel follows. After torswitch's ovsdb-server is
// killed, the supervisor restarts it, it dials again and the agent's next
// change reaches the kernel.
func TestDialsIntoAgent(t *testing.T) {
	l := newTrunkLab(t)
	pki := vteptest.NewOVSPKI(t)
	agentCert := pki.Sign("agent", "agent", "controller")
	swCert := pki.Sign("tor1", "tor1", "switch")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := client.New(client.Config{Name: "tor1", Endpoint: client.Inbound, Probe: time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); _ = c.Run(ctx) }()
	ln, err := client.NewListener(client.ListenerConfig{Address: "pssl:127.0.0.1:0",
		TLS: client.TLSFiles{CA: pki.SwitchCA(), Cert: agentCert.Cert, Key: agentCert.Key}}, []*client.Client{c}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = ln.Run(ctx) }()
	select {
	case <-ln.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("agent listener not ready")
	}
	manager := fmt.Sprintf("ssl:127.0.0.1:%d", ln.Addr().(*net.TCPAddr).Port)

	dir, err := os.MkdirTemp("", "ts-db-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	srv, err := ovsdbserver.Start(context.Background(), ovsdbserver.Options{
		Dir: dir, TLS: ovsdbserver.TLS{Key: swCert.Key, Cert: swCert.Cert, CA: pki.ControllerCA()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	newSwitch(t, srv.Endpoint(), controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1, Managers: []string{manager},
	}, dataplane.Options{NetNS: l.sw.Handle()})

	rem := netip.MustParseAddr(remTunnel)
	desired := func(n int) *plan.Desired {
		var remote []l2.RemoteMAC
		for i := 1; i <= n; i++ {
			remote = append(remote, l2.RemoteMAC{VNI: 7000, MAC: l2.MAC{0x06, 0, 0, 0, 0, byte(i)}, VTEP: rem})
		}
		return &plan.Desired{
			LogicalSwitches: []plan.LogicalSwitch{{VNI: 7000}},
			Bindings:        []plan.PortBinding{{Port: "eth1", VLAN: 10, VNI: 7000}},
			RemoteMACs:      remote,
			Flood:           map[l2.VNI][]netip.Addr{7000: {rem}},
		}
	}
	reconciled := func(n int) {
		t.Helper()
		nstest.Eventually(t, 20*time.Second, func() (bool, string) {
			if !c.Connected() {
				return false, "tor1 has not dialed in"
			}
			_, err := c.Reconcile(ctx, desired(n), plan.Options{})
			return err == nil, fmt.Sprint(err)
		})
		mac := l2.MAC{0x06, 0, 0, 0, 0, byte(n)}.String()
		nstest.Eventually(t, 10*time.Second, func() (bool, string) {
			ok, out := fdbHas(l.sw, "tsvx7000", mac, remTunnel)
			return ok, out
		})
	}
	reconciled(2)
	if ep := c.Status().Endpoint; !strings.HasPrefix(ep, "inbound:127.0.0.1:") {
		t.Errorf("agent's view of tor1's connection: %q", ep)
	}

	old := srv.PID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	nstest.Eventually(t, 10*time.Second, func() (bool, string) { return srv.PID() != old, "not restarted" })
	reconciled(3) // dialed again; the new MAC reaches the kernel
	if ok, out := fdbHas(l.sw, "tsvx7000", l2.MAC{0x06, 0, 0, 0, 0, 1}.String(), remTunnel); !ok {
		t.Errorf("a remote MAC left the kernel across the restart:\n%s", out)
	}
}
