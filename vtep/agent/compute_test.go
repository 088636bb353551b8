package agent

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
)

func a4(s string) netip.Addr { return netip.MustParseAddr(s) }

func pr(s string) l2.PortRef { p, _ := l2.ParsePortRef(s); return p }

func pairInputs() Inputs {
	return Inputs{
		Switches: []SwitchView{
			{Name: "tor1", Connected: true, TunnelIP: a4("10.0.0.11"), Ports: map[string]bool{"eth1": true, "eth2": true},
				LocalMACs: []l2.LocalMAC{{Switch: "tor1", VNI: 10100, MAC: l2.MustMAC("02:00:00:00:00:11"), VTEP: a4("10.0.0.11")}}},
			{Name: "tor2", Connected: true, TunnelIP: a4("10.0.0.12"), Ports: map[string]bool{"eth1": true, "eth2": true}},
		},
		Bindings: []api.Binding{
			{VLAN: 100, VNI: 10100, Ports: []l2.PortRef{pr("tor1:eth1"), pr("tor2:eth1")}, Source: api.SourceConfig},
			{VLAN: 200, VNI: 10200, Ports: []l2.PortRef{pr("tor1:eth2")}, Source: api.SourceVCenter},
		},
		RemoteMACs: []l2.RemoteMAC{
			{VNI: 10100, MAC: l2.MustMAC("02:00:00:00:00:21"), VTEP: a4("10.0.0.21")},
			{VNI: 10100, MAC: l2.MustMAC("02:00:00:00:00:11"), VTEP: a4("10.0.0.21")}, // also local on tor1
			{VNI: 10999, MAC: l2.MustMAC("02:00:00:00:00:99"), VTEP: a4("10.0.0.21")}, // VNI not stitched here
		},
		// Routes to the pair's own VTEPs are left out by the speaker
		// (evpn.LocalState.VTEPs; TestTwoSpeakersExchangeRoutes).
		RemoteFlood: map[l2.VNI][]netip.Addr{10100: {a4("10.0.0.21")}},
		Replication: plan.SourceNode,
	}
}

func macsOf(d *plan.Desired) []string {
	var out []string
	for _, m := range d.RemoteMACs {
		out = append(out, m.MAC.String()+"@"+m.VTEP.String())
	}
	return out
}

func TestComputeIndependentPair(t *testing.T) {
	out := Compute(pairInputs())
	t1, t2 := out.PerSwitch["tor1"], out.PerSwitch["tor2"]
	if len(t1.LogicalSwitches) != 2 || len(t2.LogicalSwitches) != 2 {
		t.Fatalf("both switches get every VNI of the pair: %v / %v", t1.LogicalSwitches, t2.LogicalSwitches)
	}
	if len(t1.Bindings) != 2 || len(t2.Bindings) != 1 {
		t.Fatalf("bindings tor1=%v tor2=%v", t1.Bindings, t2.Bindings)
	}
	if got := macsOf(t1); !slices.Equal(got, []string{"02:00:00:00:00:21@10.0.0.21"}) {
		t.Fatalf("tor1 remote MACs = %v (own local MAC and foreign VNI excluded)", got)
	}
	if got := macsOf(t2); !slices.Equal(got, []string{"02:00:00:00:00:11@10.0.0.11", "02:00:00:00:00:21@10.0.0.21"}) {
		t.Fatalf("tor2 remote MACs = %v (tor1's local MAC via tor1's tunnel IP)", got)
	}
	if got := t1.Flood[10100]; !slices.Equal(got, []netip.Addr{a4("10.0.0.21"), a4("10.0.0.12")}) {
		t.Fatalf("tor1 flood = %v", got)
	}
	if got := t2.Flood[10100]; !slices.Equal(got, []netip.Addr{a4("10.0.0.21"), a4("10.0.0.11")}) {
		t.Fatalf("tor2 flood = %v", got)
	}
	if !slices.Contains(out.IMET, IMETRoute{10100, a4("10.0.0.11")}) || !slices.Contains(out.IMET, IMETRoute{10100, a4("10.0.0.12")}) ||
		!slices.Contains(out.IMET, IMETRoute{10200, a4("10.0.0.11")}) || slices.Contains(out.IMET, IMETRoute{10200, a4("10.0.0.12")}) {
		t.Fatalf("type-3 routes = %v (per switch VTEP and VNI bound on it)", out.IMET)
	}
	if len(out.LocalMACs) != 1 {
		t.Fatalf("local MACs = %v", out.LocalMACs)
	}
}

func TestComputeAnycast(t *testing.T) {
	in := pairInputs()
	in.Anycast = true
	in.Switches[1].TunnelIP = a4("10.0.0.11")
	in.Switches[1].LocalMACs = slices.Clone(in.Switches[0].LocalMACs)
	in.RemoteMACs = in.RemoteMACs[:3] // 10.0.0.12 is no longer ours
	out := Compute(in)
	if got := macsOf(out.PerSwitch["tor2"]); !slices.Equal(got, []string{"02:00:00:00:00:21@10.0.0.21"}) {
		t.Fatalf("anycast: no cross entries between the pair, got %v", got)
	}
	if got := out.PerSwitch["tor1"].Flood[10100]; !slices.Equal(got, []netip.Addr{a4("10.0.0.21")}) {
		t.Fatalf("anycast flood = %v", got)
	}
	n := 0
	for _, r := range out.IMET {
		if r.VNI == 10100 {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("anycast: one type-3 per VNI, got %v", out.IMET)
	}
}

func TestComputeServiceNodeFallback(t *testing.T) {
	in := pairInputs()
	in.ServiceNodes = []netip.Addr{a4("10.0.0.100")}
	in.Switches[1].Faults = []string{FaultNoSourceNode}
	out := Compute(in)
	if out.Replication["tor1"] != plan.SourceNode || out.Replication["tor2"] != plan.ServiceNode {
		t.Fatalf("replication = %v", out.Replication)
	}
	for _, ls := range out.PerSwitch["tor2"].LogicalSwitches {
		if ls.ReplicationMode != plan.ServiceNode {
			t.Fatalf("tor2 logical switch %d mode %q", ls.VNI, ls.ReplicationMode)
		}
	}
	if got := out.PerSwitch["tor2"].Flood[10100]; !slices.Equal(got, []netip.Addr{a4("10.0.0.100")}) {
		t.Fatalf("service-node flood = %v", got)
	}
}

func TestComputeConflicts(t *testing.T) {
	in := pairInputs()
	in.Bindings = append(in.Bindings,
		api.Binding{VLAN: 100, VNI: 10555, Ports: []l2.PortRef{pr("tor1:eth1")}, Source: api.SourceVCenter},
		api.Binding{VLAN: 300, VNI: 10300, Ports: []l2.PortRef{pr("tor1:eth9")}, Source: api.SourceVCenter},
		api.Binding{VLAN: 300, VNI: 10300, Ports: []l2.PortRef{pr("tor7:eth1")}, Source: api.SourceTorctl},
	)
	out := Compute(in)
	want := []string{"vcenter wants VNI 10555 but it is bound to VNI 10100", `has no port "eth9"`, `switch "tor7" is not in this pair`}
	if len(out.Conflicts) != len(want) {
		t.Fatalf("conflicts = %v", out.Conflicts)
	}
	for i, w := range want {
		if !strings.Contains(out.Conflicts[i], w) {
			t.Fatalf("conflict %d = %q, want %q", i, out.Conflicts[i], w)
		}
	}
	for _, b := range out.PerSwitch["tor1"].Bindings {
		if b.VNI == 10555 || b.VNI == 10300 {
			t.Fatalf("conflicting binding applied: %+v", b)
		}
	}
}

func TestPreferNewest(t *testing.T) {
	mac := l2.MustMAC("02:00:00:00:00:11")
	k := l2.MACKey{VNI: 10100, MAC: mac}
	in := pairInputs()
	in.Switches[1].LocalMACs = []l2.LocalMAC{{Switch: "tor2", VNI: 10100, MAC: mac, VTEP: a4("10.0.0.12")}}
	t0 := time.Unix(1000, 0)
	// The host failed over to tor2 and back to tor1: tor1 learned it last.
	seen := map[SeenKey]time.Time{{"tor2", k}: t0, {"tor1", k}: t0.Add(time.Minute)}
	dropped := PreferNewest(in.Switches, seen)
	if len(dropped) != 1 || dropped[0].Switch != "tor2" {
		t.Fatalf("dropped = %v, want tor2's stale claim", dropped)
	}
	out := Compute(in)
	if len(out.LocalMACs) != 1 || out.LocalMACs[0].VTEP != a4("10.0.0.11") {
		t.Fatalf("advertised %v, want only tor1's", out.LocalMACs)
	}
	if got := macsOf(out.PerSwitch["tor2"]); !slices.Contains(got, "02:00:00:00:00:11@10.0.0.11") {
		t.Fatalf("tor2 should forward the MAC to tor1: %v", got)
	}
	// Seen the other way round, tor2 keeps it.
	in = pairInputs()
	in.Switches[1].LocalMACs = []l2.LocalMAC{{Switch: "tor2", VNI: 10100, MAC: mac, VTEP: a4("10.0.0.12")}}
	seen = map[SeenKey]time.Time{{"tor1", k}: t0, {"tor2", k}: t0.Add(time.Minute)}
	PreferNewest(in.Switches, seen)
	if len(in.Switches[0].LocalMACs) != 0 || len(in.Switches[1].LocalMACs) != 1 {
		t.Fatalf("tor2 learned it last: %v / %v", in.Switches[0].LocalMACs, in.Switches[1].LocalMACs)
	}
}
