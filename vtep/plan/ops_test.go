package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

func TestOpTable(t *testing.T) {
	names := map[string]bool{}
	var last Phase
	for _, o := range Ops() {
		in := o.Info()
		if in.Name == "" || names[in.Name] || in.Table == "" || in.Phase == 0 {
			t.Errorf("op %d: incomplete or repeated description %+v", o, in)
		}
		names[in.Name] = true
		if in.Phase < last {
			t.Errorf("%v: phase %d after phase %d: ops must be numbered in phase order", o, in.Phase, last)
		}
		last = in.Phase
	}
	if Op(0).Valid() || numOps.Valid() || numOps.String() != fmt.Sprintf("op(%d)", numOps) {
		t.Errorf("unknown ops: %v %v %q", Op(0).Valid(), numOps.Valid(), numOps.String())
	}
}

// TestPlanOrder plans every kind of change at once and checks the order of
// the list: the order that keeps one transaction's references valid
// (creates before the rows referring to them, deletes of referring rows
// before the logical switches they refer to).
func TestPlanOrder(t *testing.T) {
	s := newSim("eth1", "eth2")
	s.o.Tunnels = map[string]*vtepdb.Tunnel{"t1": {UUID: "t1"}}
	s.converge(t, base(), Options{})
	d := base()
	// VNI 10100 goes (binding, ucast, mcast and ls deletes), 10300 comes
	// (ls create, binding set, ucast add, mcast set), 10200 changes (ls and
	// ucast updates), BFD is switched on (tunnel).
	d.LogicalSwitches = []LogicalSwitch{{VNI: 10200, ReplicationMode: ServiceNode}, {VNI: 10300}}
	d.Bindings = []PortBinding{{"eth1", 200, 10200}, {"eth1", 0, 10200}, {"eth2", 300, 10300}}
	d.RemoteMACs = []l2.RemoteMAC{
		{VNI: 10200, MAC: l2.MustMAC("02:00:00:00:02:01"), VTEP: ip("192.0.2.9")},
		{VNI: 10300, MAC: l2.MustMAC("02:00:00:00:03:01"), VTEP: ip("192.0.2.1")},
	}
	d.Flood = map[l2.VNI][]netip.Addr{10200: {ip("192.0.2.1")}, 10300: {ip("192.0.2.1")}}
	d.BFD = &BFDParams{MinRxMs: 300, MinTxMs: 100}
	ch, err := Plan(d, s.o, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var seen []Op
	for _, c := range ch.List {
		if len(seen) == 0 || seen[len(seen)-1] != c.Op {
			seen = append(seen, c.Op)
		}
	}
	want := []Op{LSCreate, LSUpdate, BindingSet, UcastAdd, UcastUpdate, McastSet, TunnelBFD,
		BindingDelete, UcastDelete, McastDelete, LSDelete}
	if !slices.Equal(seen, want) {
		t.Fatalf("plan order %v, want %v", seen, want)
	}
	s.apply(t, ch) // fails on a logical switch deleted while referenced
}
