package plan

import (
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"testing"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// optional returns a pointer to s, nil for "" (an optional column unset).
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// sim is a tiny in-memory stand-in for the switch database: it applies plans
// the way the OVSDB applier does, so tests can check convergence.
type sim struct {
	o    *Observed
	next int
}

func newSim(ports ...string) *sim {
	o := NewObserved("tor1")
	s := &sim{o: o}
	for _, p := range ports {
		o.Ports[p] = &vtepdb.PhysicalPort{UUID: s.uuid(), Name: p, VLANBindings: map[int]string{}}
	}
	return s
}

func (s *sim) uuid() string { s.next++; return fmt.Sprintf("u%05d", s.next) }

func (s *sim) locator(a netip.Addr, ch *Changes) string {
	if u, ok := ch.Locators[a]; ok {
		return u
	}
	for u, l := range s.o.Locators {
		if l.DstIP == a.String() {
			return u
		}
	}
	u := s.uuid()
	s.o.Locators[u] = &vtepdb.PhysicalLocator{UUID: u, EncapsulationType: EncapVXLAN, DstIP: a.String()}
	return u
}

func (s *sim) apply(t *testing.T, ch *Changes) {
	t.Helper()
	ls := map[l2.VNI]string{}
	for k, v := range ch.LSByVNI {
		ls[k] = v
	}
	for _, c := range ch.List {
		switch c.Op {
		case LSCreate:
			u := s.uuid()
			k := int(c.VNI)
			s.o.Switches[u] = &vtepdb.LogicalSwitch{UUID: u, Name: c.Name, TunnelKey: &k, ReplicationMode: optional(c.ReplicationMode), OtherConfig: map[string]string{OwnerKey: OwnerValue}}
			ls[c.VNI] = u
		case LSUpdate:
			k := int(c.VNI)
			o := s.o.Switches[c.UUID]
			o.Name, o.TunnelKey = c.Name, &k
			if c.ReplicationMode != "" {
				o.ReplicationMode = optional(c.ReplicationMode)
			}
		case BindingSet:
			s.o.Ports[c.Port].VLANBindings[int(c.VLAN)] = ls[c.VNI]
		case BindingDelete:
			delete(s.o.Ports[c.Port].VLANBindings, int(c.VLAN))
		case UcastAdd:
			u := s.uuid()
			s.o.UcastRemote[u] = &vtepdb.UcastMacsRemote{UUID: u, LogicalSwitch: ls[c.VNI], MAC: c.MAC.String(), Ipaddr: l2.AddrString(c.IP), Locator: s.locator(c.VTEP, ch)}
		case UcastUpdate:
			r := s.o.UcastRemote[c.UUID]
			r.Ipaddr, r.Locator = l2.AddrString(c.IP), s.locator(c.VTEP, ch)
		case UcastDelete:
			delete(s.o.UcastRemote, c.UUID)
		case McastSet:
			set := s.uuid()
			locs := &vtepdb.PhysicalLocatorSet{UUID: set}
			for _, a := range c.VTEPs {
				locs.Locators = append(locs.Locators, s.locator(a, ch))
			}
			s.o.LocatorSets[set] = locs
			if c.UUID != "" {
				s.o.McastRemote[c.UUID].LocatorSet = set
			} else {
				u := s.uuid()
				s.o.McastRemote[u] = &vtepdb.McastMacsRemote{UUID: u, LogicalSwitch: ls[c.VNI], MAC: UnknownDst, LocatorSet: set}
			}
		case McastDelete:
			delete(s.o.McastRemote, c.UUID)
		case TunnelBFD:
			tun := s.o.Tunnels[c.UUID]
			if tun.BFDParams == nil {
				tun.BFDParams = map[string]string{}
			}
			for k, v := range c.BFD {
				tun.BFDParams[k] = v
			}
		case LSDelete:
			for _, r := range s.o.UcastRemote {
				if r.LogicalSwitch == c.UUID {
					t.Fatalf("LS %s deleted while remote MAC %s references it", c.UUID, r.MAC)
				}
			}
			for _, p := range s.o.Ports {
				for v, l := range p.VLANBindings {
					if l == c.UUID {
						t.Fatalf("LS %s deleted while port %s VLAN %d binds it", c.UUID, p.Name, v)
					}
				}
			}
			delete(s.o.Switches, c.UUID)
		}
	}
}

// converge plans and applies until the plan is empty, returning the ops of the first plan.
func (s *sim) converge(t *testing.T, d *Desired, opt Options) map[Op]int {
	t.Helper()
	ch, err := Plan(d, s.o, opt)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	first := ch.count()
	s.apply(t, ch)
	again, err := Plan(d, s.o, opt)
	if err != nil {
		t.Fatalf("second plan: %v", err)
	}
	if !again.Empty() {
		t.Fatalf("not converged after one apply: %v", again.count())
	}
	return first
}

func base() *Desired {
	return &Desired{
		LogicalSwitches: []LogicalSwitch{{VNI: 10100}, {VNI: 10200, ReplicationMode: SourceNode}},
		Bindings:        []PortBinding{{"eth1", 100, 10100}, {"eth2", 100, 10100}, {"eth1", 200, 10200}, {"eth1", 0, 10200}},
		RemoteMACs: []l2.RemoteMAC{
			{VNI: 10100, MAC: l2.MustMAC("02:00:00:00:01:01"), VTEP: ip("192.0.2.1")},
			{VNI: 10100, MAC: l2.MustMAC("02:00:00:00:01:02"), IP: ip("10.1.0.2"), VTEP: ip("192.0.2.2")},
			{VNI: 10200, MAC: l2.MustMAC("02:00:00:00:02:01"), VTEP: ip("192.0.2.1")},
		},
		Flood: map[l2.VNI][]netip.Addr{10100: {ip("192.0.2.2"), ip("192.0.2.1")}, 10200: {ip("192.0.2.1")}},
	}
}

func TestPlanFromEmptyAndSteadyState(t *testing.T) {
	s := newSim("eth1", "eth2")
	got := s.converge(t, base(), Options{})
	want := map[Op]int{LSCreate: 2, BindingSet: 4, UcastAdd: 3, McastSet: 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("first plan = %v, want %v", got, want)
	}
}

func TestPlanTransitions(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *Desired)
		opt    Options
		want   map[Op]int
	}{
		{"rebind port VLAN to another VNI", func(d *Desired) {
			d.Bindings[0].VNI = 10200
		}, Options{}, map[Op]int{BindingSet: 1}},
		{"unbind", func(d *Desired) { d.Bindings = d.Bindings[1:] }, Options{}, map[Op]int{BindingDelete: 1}},
		{"MAC moves to another VTEP", func(d *Desired) {
			d.RemoteMACs[0].VTEP = ip("192.0.2.9")
		}, Options{}, map[Op]int{UcastUpdate: 1}},
		{"IP learned for MAC", func(d *Desired) {
			d.RemoteMACs[0].IP = ip("10.1.0.1")
		}, Options{}, map[Op]int{UcastUpdate: 1}},
		{"MAC withdrawn", func(d *Desired) { d.RemoteMACs = d.RemoteMACs[1:] }, Options{}, map[Op]int{UcastDelete: 1}},
		{"flood list grows", func(d *Desired) {
			d.Flood[10200] = append(d.Flood[10200], ip("192.0.2.3"))
		}, Options{}, map[Op]int{McastSet: 1}},
		{"flood list emptied", func(d *Desired) { delete(d.Flood, 10200) }, Options{}, map[Op]int{McastDelete: 1}},
		{"VNI change: bindings move to a new VNI, old one goes", func(d *Desired) {
			d.LogicalSwitches[0].VNI = 10101
			for i := range d.Bindings {
				if d.Bindings[i].VNI == 10100 {
					d.Bindings[i].VNI = 10101
				}
			}
			for i := range d.RemoteMACs {
				if d.RemoteMACs[i].VNI == 10100 {
					d.RemoteMACs[i].VNI = 10101
				}
			}
			d.Flood[10101] = d.Flood[10100]
			delete(d.Flood, 10100)
		}, Options{}, map[Op]int{LSCreate: 1, BindingSet: 2, UcastAdd: 2, McastSet: 1, UcastDelete: 2, McastDelete: 1, LSDelete: 1}},
		{"keep stale: withdrawals wait", func(d *Desired) {
			d.Bindings = d.Bindings[1:]
			d.RemoteMACs = d.RemoteMACs[1:]
			delete(d.Flood, 10200)
		}, Options{KeepStale: true}, map[Op]int{}},
		{"replication mode change", func(d *Desired) { d.LogicalSwitches[1].ReplicationMode = ServiceNode }, Options{}, map[Op]int{LSUpdate: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim("eth1", "eth2")
			s.converge(t, base(), Options{})
			d := base()
			tc.mutate(d)
			got := s.converge(t, d, tc.opt)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("plan = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRebindIsOneChange(t *testing.T) {
	s := newSim("eth1", "eth2")
	s.converge(t, base(), Options{})
	d := base()
	d.Bindings[0].VNI = 10200
	ch, err := Plan(d, s.o, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.List) != 1 || ch.List[0].Op != BindingSet || !ch.List[0].Rebind {
		t.Fatalf("rebind should be a single atomic BindingSet with Rebind, got %+v", ch.List)
	}
}

func TestForeignRowsUntouched(t *testing.T) {
	s := newSim("eth1", "eth2", "eth3")
	k := 7000
	s.o.Switches["f1"] = &vtepdb.LogicalSwitch{UUID: "f1", Name: "foreign", TunnelKey: &k}
	s.o.Ports["eth3"].VLANBindings[300] = "f1"
	s.o.Locators["fl"] = &vtepdb.PhysicalLocator{UUID: "fl", EncapsulationType: EncapVXLAN, DstIP: "192.0.2.77"}
	s.o.UcastRemote["fm"] = &vtepdb.UcastMacsRemote{UUID: "fm", LogicalSwitch: "f1", MAC: "02:ff:00:00:00:01", Locator: "fl"}
	s.o.McastRemote["fmc"] = &vtepdb.McastMacsRemote{UUID: "fmc", LogicalSwitch: "f1", MAC: UnknownDst, LocatorSet: "fs"}
	s.converge(t, base(), Options{})
	// Everything torstitch wants removed, the foreign rows stay.
	ch, err := Plan(&Desired{}, s.o, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ch.List {
		if c.UUID == "f1" || c.UUID == "fm" || c.UUID == "fmc" || (c.Port == "eth3" && c.VLAN == 300) {
			t.Fatalf("plan touches a foreign row: %+v", c)
		}
	}
	s.apply(t, ch)
	if len(s.o.Switches) != 1 || s.o.Ports["eth3"].VLANBindings[300] != "f1" || len(s.o.UcastRemote) != 1 || len(s.o.McastRemote) != 1 {
		t.Fatalf("foreign state changed: switches=%d ucast=%d mcast=%d", len(s.o.Switches), len(s.o.UcastRemote), len(s.o.McastRemote))
	}
}

func TestStaleSwitchWaitsForLocalMACs(t *testing.T) {
	s := newSim("eth1", "eth2")
	s.converge(t, base(), Options{})
	ls := ""
	for u, l := range s.o.Switches {
		if VNIOf(l) == 10200 {
			ls = u
		}
	}
	s.o.UcastLocal["l1"] = &vtepdb.UcastMacsLocal{UUID: "l1", LogicalSwitch: ls, MAC: "02:00:00:00:09:09"}
	d := base()
	d.LogicalSwitches = d.LogicalSwitches[:1]
	d.Bindings = []PortBinding{{"eth1", 100, 10100}}
	d.RemoteMACs = d.RemoteMACs[:2]
	delete(d.Flood, 10200)
	ch, err := Plan(d, s.o, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ch.count()[LSDelete] != 0 {
		t.Fatal("logical switch deleted while the switch's local MACs still reference it")
	}
	s.apply(t, ch)
	delete(s.o.UcastLocal, "l1")
	ch, _ = Plan(d, s.o, Options{})
	if ch.count()[LSDelete] != 1 {
		t.Fatalf("stale logical switch not deleted once unreferenced: %v", ch.count())
	}
}

func TestPlanRejectsBadInput(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *Desired, o *Observed)
		want   string
	}{
		{"two VNIs for one port VLAN", func(d *Desired, o *Observed) {
			d.Bindings = append(d.Bindings, PortBinding{"eth1", 100, 10200})
		}, "port eth1 VLAN 100 bound to two VNIs: 10100 and 10200"},
		{"one VNI on two logical switches", func(d *Desired, o *Observed) {
			d.LogicalSwitches = append(d.LogicalSwitches, LogicalSwitch{VNI: 10100, Name: "other"})
		}, `VNI 10100 on two logical switches: "vni10100" and "other"`},
		{"MAC in undeclared VNI", func(d *Desired, o *Observed) { d.RemoteMACs[0].VNI = 999 }, "VNI 999 has no logical switch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim("eth1", "eth2")
			d := base()
			tc.mutate(d, s.o)
			ch, err := Plan(d, s.o, Options{})
			if err == nil {
				t.Fatalf("no error; plan %v", ch.count())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
			if ch != nil {
				t.Fatal("a plan was returned with the error")
			}
		})
	}
}

func BenchmarkPlan100k(b *testing.B) {
	d := &Desired{Flood: map[l2.VNI][]netip.Addr{}}
	for v := l2.VNI(1); v <= 100; v++ {
		d.LogicalSwitches = append(d.LogicalSwitches, LogicalSwitch{VNI: v})
	}
	for i := 0; i < 100000; i++ {
		d.RemoteMACs = append(d.RemoteMACs, l2.RemoteMAC{VNI: l2.VNI(i%100 + 1),
			MAC: l2.MAC{2, 0, byte(i >> 16), byte(i >> 8), byte(i), 1}, VTEP: netip.AddrFrom4([4]byte{192, 0, 2, byte(i%50 + 1)})})
	}
	s := newSim()
	var t testing.T
	s.converge(&t, d, Options{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch, err := Plan(d, s.o, Options{})
		if err != nil || !ch.Empty() {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlanFromEmpty100k(b *testing.B) {
	d := &Desired{Flood: map[l2.VNI][]netip.Addr{}}
	for v := l2.VNI(1); v <= 100; v++ {
		d.LogicalSwitches = append(d.LogicalSwitches, LogicalSwitch{VNI: v})
	}
	for i := 0; i < 100000; i++ {
		d.RemoteMACs = append(d.RemoteMACs, l2.RemoteMAC{VNI: l2.VNI(i%100 + 1),
			MAC: l2.MAC{2, 0, byte(i >> 16), byte(i >> 8), byte(i), 1}, VTEP: netip.AddrFrom4([4]byte{192, 0, 2, byte(i%50 + 1)})})
	}
	s := newSim()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch, err := Plan(d, s.o, Options{})
		if err != nil || len(ch.List) != 100100 {
			b.Fatal(err)
		}
	}
}

func TestTunnelBFDParams(t *testing.T) {
	want := map[string]string{BFDEnable: "true", BFDMinRx: "300", BFDMinTx: "100"}
	for _, tc := range []struct {
		name    string
		bfd     *BFDParams
		params  map[string]string
		changes int
		after   map[string]string
	}{
		{"disabled: nothing touched", nil, map[string]string{BFDEnable: "false"}, 0, map[string]string{BFDEnable: "false"}},
		{"new tunnel row", &BFDParams{300, 100}, nil, 1, want},
		{"already configured: steady state", &BFDParams{300, 100}, want, 0, want},
		{"other keys (a foreign setting) kept", &BFDParams{300, 100},
			map[string]string{BFDEnable: "false", "cpath_down": "true", BFDMinRx: "1000"}, 1,
			map[string]string{BFDEnable: "true", "cpath_down": "true", BFDMinRx: "300", BFDMinTx: "100"}},
		{"timer changed", &BFDParams{500, 100}, want, 1, map[string]string{BFDEnable: "true", BFDMinRx: "500", BFDMinTx: "100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim("eth1", "eth2")
			s.o.Tunnels = map[string]*vtepdb.Tunnel{"t1": {UUID: "t1", Local: "l1", Remote: "l2", BFDParams: maps.Clone(tc.params),
				BFDStatus: map[string]string{"state": "up"}}}
			d := base()
			d.BFD = tc.bfd
			s.converge(t, d, Options{})
			d2 := base()
			d2.BFD = tc.bfd
			ch, err := Plan(d2, s.o, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !ch.Empty() {
				t.Fatalf("not steady: %v", ch.count())
			}
			first := newSim("eth1", "eth2")
			first.o.Tunnels = map[string]*vtepdb.Tunnel{"t1": {UUID: "t1", BFDParams: tc.params}}
			ch, _ = Plan(&Desired{BFD: tc.bfd}, first.o, Options{})
			if n := ch.count()[TunnelBFD]; n != tc.changes {
				t.Fatalf("tunnel-bfd changes = %d, want %d", n, tc.changes)
			}
			got := s.o.Tunnels["t1"]
			if fmt.Sprint(got.BFDParams) != fmt.Sprint(tc.after) {
				t.Fatalf("bfd_params = %v, want %v", got.BFDParams, tc.after)
			}
			if got.Local != "l1" || got.Remote != "l2" || got.BFDStatus["state"] != "up" {
				t.Fatalf("other columns touched: %+v", got)
			}
		})
	}
}

// count returns how many changes of each op the plan holds.
func (c *Changes) count() map[Op]int {
	m := map[Op]int{}
	for i := range c.List {
		m[c.List[i].Op]++
	}
	return m
}
