package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/torstitch/torstitch/vtep/api"
)

// TestForeignVNIConflictIsolated: on tor1 another controller's logical
// switch holds VNI 10100. The agent reports that VNI on tor1 as a conflict
// and leaves it alone, while everything else converges on both switches: VNI
// 10200 on tor1 keeps getting tor2's new MACs as remote MACs, and tor2 gets
// VNI 10100 as usual. When the foreign logical switch goes, tor1 converges
// and the conflict clears. (Before plan.Conflict one collision failed tor1's
// whole plan: no remote MAC of any VNI updated there.)
func TestForeignVNIConflictIsolated(t *testing.T) {
	tor1, tor2, cfg := pairWithoutBGP(t, ", resync: 1s")
	tor1.VtepCtl("add-ls", "theirs")
	tor1.VtepCtl("set", "Logical_Switch", "theirs", "tunnel_key=10100")
	r := startAgent(t, cfg)
	ctx := context.Background()
	for _, b := range []api.BindRequest{
		{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1", "tor2:eth1"}},
		{VLAN: 200, VNI: 10200, Ports: []string{"tor1:eth1", "tor2:eth1"}},
	} {
		if err := r.a.Bind(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// The agent does not bind VNI 10100 on tor1 (a binding conflict), and
	// tor1's plan holds the VNI back (a switch conflict).
	want := []string{
		`tor1:eth1 VLAN 100 (torctl): VNI 10100 is held on tor1 by logical switch "theirs", which torstitch does not manage; not applied`,
		`VNI 10100: logical switch "theirs", which torstitch does not manage, uses this VNI; VNI not applied on this switch`,
	}
	conflicts := func() (map[string][]string, error) {
		sws, err := r.a.Switches(ctx)
		if err != nil {
			return nil, err
		}
		m := map[string][]string{}
		for _, s := range sws {
			if s.LastError != "" {
				return nil, fmt.Errorf("%s: last error %q", s.Name, s.LastError)
			}
			m[s.Name] = s.Conflicts
		}
		return m, nil
	}
	// A MAC tor2 learns in VNI 10200 after the conflict: tor1 must get it.
	tor2.VtepCtl("add-ucast-local", "vni10200", "00:50:56:00:02:22", "192.0.2.12")
	eventually(t, 10*time.Second, "tor2's new MAC in VNI 10200 on tor1, tor1's conflict reported", func() error {
		if out := tor1.VtepCtl("list-remote-macs", "vni10200"); !strings.Contains(out, "00:50:56:00:02:22 -> vxlan_over_ipv4/192.0.2.12") {
			return fmt.Errorf("tor1 vni10200:\n%s", out)
		}
		c, err := conflicts()
		if err != nil {
			return err
		}
		if !slices.Equal(c["tor1"], want) || len(c["tor2"]) != 0 {
			return fmt.Errorf("conflicts %q", c)
		}
		return nil
	})
	if got := tor2.VtepCtl("list-bindings", "tor2", "eth1"); !strings.Contains(got, "0100 vni10100") {
		t.Fatalf("tor2's VNI 10100 binding, which has no conflict: %q", got)
	}
	if got := tor1.VtepCtl("list-bindings", "tor1", "eth1"); strings.Contains(got, "0100") || !strings.Contains(got, "0200 vni10200") {
		t.Fatalf("tor1's bindings: %q (want VLAN 200 only)", got)
	}
	if got := tor1.VtepCtl("list-ls"); got != "theirs\nvni10200" {
		t.Fatalf("tor1's logical switches: %q", got)
	}
	if n := testutil.ToFloat64(r.a.met.switchConflicts.WithLabelValues("tor1")); n != 1 {
		t.Fatalf("torstitch_switch_conflicts{switch=tor1} = %v", n)
	}

	// The other controller gives the VNI up: tor1 converges.
	tor1.VtepCtl("destroy", "Logical_Switch", "theirs")
	eventually(t, 10*time.Second, "tor1 converged once the foreign switch went", func() error {
		if got := tor1.VtepCtl("list-bindings", "tor1", "eth1"); !strings.Contains(got, "0100 vni10100") {
			return fmt.Errorf("tor1 bindings %q", got)
		}
		if out := tor1.VtepCtl("list-remote-macs", "vni10100"); !strings.Contains(out, "unknown-dst -> vxlan_over_ipv4/192.0.2.12") {
			return fmt.Errorf("tor1 vni10100:\n%s", out)
		}
		c, err := conflicts()
		if err != nil {
			return err
		}
		if len(c["tor1"]) != 0 {
			return fmt.Errorf("conflicts %q", c)
		}
		return nil
	})
	if n := testutil.ToFloat64(r.a.met.switchConflicts.WithLabelValues("tor1")); n != 0 {
		t.Fatalf("torstitch_switch_conflicts{switch=tor1} = %v after the conflict cleared", n)
	}
}
