package physical

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/physical/controller"
	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/physical/nstest"
	"github.com/torstitch/torstitch/vtep/client"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
)

// TestDrivenByAgentClient drives torswitch with the agent's own switch
// client (vtep/client) the way toragent drives ovs-vtep: reconcile a desired
// state, then read the learned MACs back.
func TestDrivenByAgentClient(t *testing.T) {
	l := newTrunkLab(t)
	endpoint := startServer(t)
	newSwitch(t, endpoint, controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1,
	}, dataplane.Options{NetNS: l.Handle(l.sw), ARPSuppression: true})

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
		ok1, out := fdbHas(l.Lab, l.sw, "tsvx7000", "06:00:00:00:01:2c", remTunnel)
		ok2, _ := fdbHas(l.Lab, l.sw, "tsvx7000", "00:00:00:00:00:00", remTunnel)
		return ok1 && ok2, out
	})
	if out, _ := l.Try(l.sw, "ip", "neigh", "show", "dev", "tsbr7000"); !strings.Contains(out, "10.9.0.200 lladdr 06:00:00:00:00:01") {
		t.Errorf("ipaddr of a remote MAC not installed for ARP suppression:\n%s", out)
	}
	if ok, out := fdbHas(l.Lab, l.sw, "tsvx7000", "00:00:00:00:00:00", swTunnel); ok {
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
