package agent

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// tun is one Tunnel row as a test writes it: remote VTEP and bfd_status.
type tun struct {
	uuid, remote string
	status       map[string]string
}

func bfdObserved(tuns ...tun) *plan.Observed {
	o := &plan.Observed{Locators: map[string]*vtepdb.PhysicalLocator{"lloc": {UUID: "lloc", EncapsulationType: plan.EncapVXLAN, DstIP: "10.0.0.11"}},
		Tunnels: map[string]*vtepdb.Tunnel{}}
	for _, t := range tuns {
		loc := "loc-" + t.remote
		o.Locators[loc] = &vtepdb.PhysicalLocator{UUID: loc, EncapsulationType: plan.EncapVXLAN, DstIP: t.remote}
		o.Tunnels[t.uuid] = &vtepdb.Tunnel{UUID: t.uuid, Local: "lloc", Remote: loc, BFDStatus: t.status}
	}
	return o
}

func st(enabled, state string) map[string]string {
	m := map[string]string{}
	if enabled != "" {
		m["enabled"] = enabled
	}
	if state != "" {
		m["state"] = state
	}
	return m
}

// TestTrackBFD runs sequences of bfd_status observations through TrackBFD
// and checks the down set after each step.
func TestTrackBFD(t *testing.T) {
	const r = "10.0.0.21"
	for _, tc := range []struct {
		name  string
		steps [][]tun
		want  []string // down set after each step
	}{
		{"seen up, then down: down",
			[][]tun{{{"t1", r, st("true", "up")}}, {{"t1", r, st("true", "down")}}},
			[]string{"[]", "[10.0.0.21]"}},
		{"never up (a peer without BFD): never down",
			[][]tun{{{"t1", r, st("true", "down")}}, {{"t1", r, st("true", "down")}}, {{"t1", r, st("true", "init")}}},
			[]string{"[]", "[]", "[]"}},
		{"recovery: up, down, up",
			[][]tun{{{"t1", r, st("true", "up")}}, {{"t1", r, st("true", "down")}}, {{"t1", r, st("true", "up")}}},
			[]string{"[]", "[10.0.0.21]", "[]"}},
		{"init after up counts as down",
			[][]tun{{{"t1", r, st("true", "up")}}, {{"t1", r, st("true", "init")}}},
			[]string{"[]", "[10.0.0.21]"}},
		{"enabled false: ignored",
			[][]tun{{{"t1", r, st("false", "up")}}, {{"t1", r, st("false", "down")}}},
			[]string{"[]", "[]"}},
		{"enabled absent: ignored",
			[][]tun{{{"t1", r, st("", "up")}}, {{"t1", r, st("", "down")}}},
			[]string{"[]", "[]"}},
		{"enabled turned off while down: forgotten, then never-up again",
			[][]tun{{{"t1", r, st("true", "up")}}, {{"t1", r, st("false", "down")}}, {{"t1", r, st("true", "down")}}},
			[]string{"[]", "[]", "[]"}},
		{"remote admin_down is not a failure",
			[][]tun{{{"t1", r, st("true", "up")}}, {{"t1", r, map[string]string{"enabled": "true", "state": "down", "remote_state": "admin_down"}}}},
			[]string{"[]", "[]"}},
		{"local admin_down is not a failure",
			[][]tun{{{"t1", r, st("true", "up")}}, {{"t1", r, st("true", "admin_down")}}},
			[]string{"[]", "[]"}},
		{"tunnel row gone and recreated: starts as never-up",
			[][]tun{{{"t1", r, st("true", "up")}}, {}, {{"t2", r, st("true", "down")}}},
			[]string{"[]", "[]", "[]"}},
		{"another tunnel to the same VTEP still up: not down",
			[][]tun{{{"t1", r, st("true", "up")}, {"t2", r, st("true", "up")}}, {{"t1", r, st("true", "down")}, {"t2", r, st("true", "up")}}},
			[]string{"[]", "[]"}},
		{"two VTEPs, one down",
			[][]tun{{{"t1", r, st("true", "up")}, {"t2", "10.0.0.22", st("true", "up")}}, {{"t1", r, st("true", "up")}, {"t2", "10.0.0.22", st("true", "down")}}},
			[]string{"[]", "[10.0.0.22]"}},
		{"no status yet (row just created)",
			[][]tun{{{"t1", r, nil}}},
			[]string{"[]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mem map[string]TunnelMemo
			for i, step := range tc.steps {
				prev := fmt.Sprint(mem)
				next, down := TrackBFD(mem, bfdObserved(step...))
				if fmt.Sprint(mem) != prev {
					t.Fatalf("step %d: TrackBFD modified its input", i)
				}
				mem = next
				if got := fmt.Sprint(down); got != tc.want[i] {
					t.Fatalf("step %d: down = %s, want %s", i, got, tc.want[i])
				}
			}
		})
	}
}

func floodOf(d *plan.Desired, v l2.VNI) []string {
	var out []string
	for _, ip := range d.Flood[v] {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return out
}

// TestComputeBFDDown: a VTEP BFD reports down on a switch leaves that
// switch's flood lists and remote MACs (one anchor row stays); the other
// switch is unaffected; without the down report everything is back.
func TestComputeBFDDown(t *testing.T) {
	anchor21 := "02:bf:0a:00:00:15@10.0.0.21"
	anchor12 := "02:bf:0a:00:00:0c@10.0.0.12"
	for _, tc := range []struct {
		name      string
		down      map[string][]netip.Addr
		tor1MACs  []string
		tor1Flood []string
		tor2MACs  []string
		tor2Flood []string
	}{
		{name: "nothing down",
			tor1MACs: []string{"02:00:00:00:00:21@10.0.0.21"}, tor1Flood: []string{"10.0.0.12", "10.0.0.21"},
			tor2MACs: []string{"02:00:00:00:00:11@10.0.0.11", "02:00:00:00:00:21@10.0.0.21"}, tor2Flood: []string{"10.0.0.11", "10.0.0.21"}},
		{name: "fabric VTEP down on tor1 only", down: map[string][]netip.Addr{"tor1": {a4("10.0.0.21")}},
			tor1MACs: []string{anchor21}, tor1Flood: []string{"10.0.0.12"},
			tor2MACs: []string{"02:00:00:00:00:11@10.0.0.11", "02:00:00:00:00:21@10.0.0.21"}, tor2Flood: []string{"10.0.0.11", "10.0.0.21"}},
		{name: "pair peer down on tor2", down: map[string][]netip.Addr{"tor2": {a4("10.0.0.11")}},
			tor1MACs: []string{"02:00:00:00:00:21@10.0.0.21"}, tor1Flood: []string{"10.0.0.12", "10.0.0.21"},
			tor2MACs: []string{"02:bf:0a:00:00:0b@10.0.0.11", "02:00:00:00:00:21@10.0.0.21"}, tor2Flood: []string{"10.0.0.21"}},
		{name: "a VTEP down that nothing points at: no anchor", down: map[string][]netip.Addr{"tor1": {a4("10.0.0.99")}},
			tor1MACs: []string{"02:00:00:00:00:21@10.0.0.21"}, tor1Flood: []string{"10.0.0.12", "10.0.0.21"},
			tor2MACs: []string{"02:00:00:00:00:11@10.0.0.11", "02:00:00:00:00:21@10.0.0.21"}, tor2Flood: []string{"10.0.0.11", "10.0.0.21"}},
		{name: "both down on tor1", down: map[string][]netip.Addr{"tor1": {a4("10.0.0.21"), a4("10.0.0.12")}},
			tor1MACs: []string{anchor12, anchor21}, tor1Flood: nil,
			tor2MACs: []string{"02:00:00:00:00:11@10.0.0.11", "02:00:00:00:00:21@10.0.0.21"}, tor2Flood: []string{"10.0.0.11", "10.0.0.21"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := pairInputs()
			in.BFDDown = tc.down
			out := Compute(in)
			t1, t2 := out.PerSwitch["tor1"], out.PerSwitch["tor2"]
			check := func(what string, got, want []string) {
				t.Helper()
				slices.Sort(got)
				w := slices.Clone(want)
				slices.Sort(w)
				if !slices.Equal(got, w) {
					t.Fatalf("%s = %v, want %v", what, got, w)
				}
			}
			check("tor1 remote MACs", macsOf(t1), tc.tor1MACs)
			check("tor1 flood 10100", floodOf(t1, 10100), tc.tor1Flood)
			check("tor2 remote MACs", macsOf(t2), tc.tor2MACs)
			check("tor2 flood 10100", floodOf(t2, 10100), tc.tor2Flood)
			for _, d := range []*plan.Desired{t1, t2} {
				if _, err := plan.Plan(d, emptyObserved("eth1", "eth2"), plan.Options{}); err != nil {
					t.Fatalf("desired state does not validate: %v", err)
				}
			}
		})
	}
}

// TestBFDAnchorPrefersBoundVNI: the anchor goes to a VNI bound on the
// switch (ovs-vtep builds tunnels only for logical switches it has a binding
// for), the lowest one.
func TestBFDAnchorPrefersBoundVNI(t *testing.T) {
	down := a4("10.0.0.21")
	macs := []l2.RemoteMAC{
		{VNI: 10050, MAC: l2.MustMAC("02:00:00:00:00:01"), VTEP: down},
		{VNI: 10300, MAC: l2.MustMAC("02:00:00:00:00:02"), VTEP: down},
		{VNI: 10300, MAC: l2.MustMAC("02:00:00:00:00:03"), VTEP: a4("10.0.0.22")},
	}
	flood := map[l2.VNI][]netip.Addr{10200: {down, a4("10.0.0.22")}}
	got, fl := withoutDown(macs, flood, map[netip.Addr]bool{down: true}, map[l2.VNI]bool{10200: true, 10300: true})
	want := []l2.RemoteMAC{macs[2], {VNI: 10200, MAC: l2.MustMAC("02:bf:0a:00:00:15"), VTEP: down}}
	if !slices.Equal(got, want) {
		t.Fatalf("macs = %v, want %v", got, want)
	}
	if fmt.Sprint(fl) != "map[10200:[10.0.0.22]]" {
		t.Fatalf("flood = %v", fl)
	}
	if !isBFDAnchor(got[1]) || isBFDAnchor(got[0]) {
		t.Fatal("isBFDAnchor")
	}
	if fmt.Sprint(macs[0].VTEP) != "10.0.0.21" {
		t.Fatal("input modified")
	}
}

func emptyObserved(ports ...string) *plan.Observed {
	o := plan.NewObserved("tor1")
	for _, p := range ports {
		o.Ports[p] = &vtepdb.PhysicalPort{UUID: "p-" + p, Name: p, VLANBindings: map[int]string{}}
	}
	return o
}

// isBFDAnchor reports whether m is the anchor row kept for a down VTEP.
func isBFDAnchor(m l2.RemoteMAC) bool {
	want, ok := bfdAnchorMAC(m.VTEP)
	return ok && m.MAC == want
}
