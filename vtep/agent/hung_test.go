package agent

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// TestAgentHungSwitch: tor1's ovsdb-server freezes (SIGSTOP: the connection
// stays up, nothing is answered), so the agent's transaction to tor1 hangs
// until the liveness probe gives up. Meanwhile tor2 must keep getting every
// change: a hanging switch delays only itself. When tor1 thaws it gets the
// whole state.
func TestAgentHungSwitch(t *testing.T) {
	tor1, tor2, cfg := pairWithoutBGP(t, "")
	r := startAgent(t, cfg)
	ctx := context.Background()
	if err := r.a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1", "tor2:eth1"}}); err != nil {
		t.Fatal(err)
	}
	thaw := func() { _ = syscall.Kill(tor1.PID(), syscall.SIGCONT) }
	t.Cleanup(thaw)
	if err := syscall.Kill(tor1.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Until the probe gives up, tor1 counts as connected and its
	// transaction is pending.
	tor1Writing := func() bool { return r.a.sw[0].client.Connected() }
	for i, b := range []api.BindRequest{
		{VLAN: 200, VNI: 10200, Ports: []string{"tor1:eth2", "tor2:eth2"}},
		{VLAN: 300, VNI: 10300, Ports: []string{"tor2:eth1"}},
	} {
		if err := r.a.Bind(ctx, b); err != nil {
			t.Fatal(err)
		}
		ls := fmt.Sprintf("vni%d", b.VNI)
		eventually(t, 20*time.Second, "tor2 has "+ls, func() error {
			if out := tor2.VtepCtl("list-ls"); !strings.Contains(out, ls) {
				return fmt.Errorf("logical switches: %q", out)
			}
			return nil
		})
		if !tor1Writing() {
			t.Fatalf("bind %d reached tor2 only after tor1's hanging transaction ended", i+1)
		}
	}
	thaw()
	eventually(t, 30*time.Second, "tor1 has every logical switch after it thawed", func() error {
		out := tor1.VtepCtl("list-ls")
		for _, ls := range []string{"vni10100", "vni10200", "vni10300"} { // one logical switch set for the pair
			if !strings.Contains(out, ls) {
				return fmt.Errorf("logical switches: %q", out)
			}
		}
		return nil
	})
}

// pairWithoutBGP starts two real ovsdb-servers, tor1 (192.0.2.11) and tor2
// (192.0.2.12) with ports eth1 and eth2, and returns an agent configuration
// for the pair without BGP; agentExtra goes into the agent's settings.
func pairWithoutBGP(t *testing.T, agentExtra string) (tor1, tor2 *vteptest.OVSDB, cfg *config.Config) {
	t.Helper()
	tor1, tor2 = vteptest.StartOVSDB(t), vteptest.StartOVSDB(t)
	tor1.AddSwitch("tor1", "192.0.2.11", "eth1", "eth2")
	tor2.AddSwitch("tor2", "192.0.2.12", "eth1", "eth2")
	dir := t.TempDir()
	cfg, err := config.Parse(fmt.Appendf(nil, `
agent: {name: pair1, api: "unix://%s/api.sock", state_dir: %s%s}
switches:
  - {name: tor1, ovsdb: "unix:%s"}
  - {name: tor2, ovsdb: "unix:%s"}
`, dir, dir, agentExtra, tor1.Sock, tor2.Sock))
	if err != nil {
		t.Fatal(err)
	}
	return tor1, tor2, cfg
}
