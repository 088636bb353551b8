package plan

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// indexOf builds the index the client keeps: rows by (LS, parsed MAC); a
// repeated key or an unparsable MAC leaves a row out.
func indexOf(rows map[string]*vtepdb.UcastMacsRemote) map[UcastKey]*vtepdb.UcastMacsRemote {
	idx := map[UcastKey]*vtepdb.UcastMacsRemote{}
	for _, r := range rows {
		if m, ok := normMAC(r.MAC); ok {
			idx[UcastKey{LS: r.LogicalSwitch, MAC: m}] = r
		}
	}
	return idx
}

func indexedPlanner(d *Desired, o *Observed, opt Options) *planner {
	pl := &planner{d: d, o: o, opt: opt, out: &Changes{LSByVNI: map[l2.VNI]string{}, Locators: map[netip.Addr]string{}}}
	pl.locators()
	pl.logicalSwitches()
	return pl
}

// TestPlanIndexedSameChanges plans random transitions with and without the
// client's index and requires the same changes, with foreign rows, rows in
// a non-canonical owned switch, repeated and unparsable rows mixed in (the
// last two make the planner fall back to reading the rows).
func TestPlanIndexedSameChanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 3))
	randDesired := func() *Desired {
		d := &Desired{LogicalSwitches: []LogicalSwitch{{VNI: 100}, {VNI: 200}}}
		byKey := map[l2.MACKey]l2.RemoteMAC{}
		for range rng.IntN(80) {
			m := l2.RemoteMAC{VNI: l2.VNI(100 * (1 + rng.IntN(2))), MAC: l2.MAC{2, 0, 0, 0, byte(rng.IntN(2)), byte(rng.IntN(50))},
				VTEP: netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + rng.IntN(3))})}
			if rng.IntN(3) == 0 {
				m.IP = netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + rng.IntN(3))})
			}
			byKey[l2.MACKey{VNI: m.VNI, MAC: m.MAC}] = m
		}
		d.RemoteMACs = slices.SortedFunc(maps.Values(byKey), l2.CompareRemoteMACs)
		return d
	}
	fast := 0
	for round := range 200 {
		s := newSim()
		s.converge(t, randDesired(), Options{})
		var lsUUID string
		for u := range s.o.Switches {
			lsUUID = u
		}
		foreign, extra := s.uuid(), s.uuid()
		k := 300
		s.o.Switches[foreign] = &vtepdb.LogicalSwitch{UUID: foreign, Name: "theirs", TunnelKey: &k}
		k2 := 100
		s.o.Switches[extra] = &vtepdb.LogicalSwitch{UUID: extra, Name: "vni100-old", TunnelKey: &k2, OtherConfig: map[string]string{OwnerKey: OwnerValue}}
		addRow := func(ls, mac string) {
			u := s.uuid()
			s.o.UcastRemote[u] = &vtepdb.UcastMacsRemote{UUID: u, LogicalSwitch: ls, MAC: mac, Locator: s.locator(ip("192.0.2.9"), &Changes{})}
		}
		addRow(foreign, "02:00:00:00:00:01")
		if round%3 == 0 {
			addRow(extra, "02:00:00:00:00:02")
		}
		clean := round%4 != 1
		if !clean {
			if round%8 == 1 {
				addRow(lsUUID, "not-a-mac")
			} else {
				for _, r := range s.o.UcastRemote { // repeat an existing row
					addRow(r.LogicalSwitch, r.MAC)
					break
				}
			}
		}
		d := randDesired()
		for _, opt := range []Options{{}, {KeepStale: true}} {
			o := *s.o
			o.UcastRemoteIndex = nil
			want, err := Plan(d, &o, opt)
			if err != nil {
				t.Fatal(err)
			}
			o.UcastRemoteIndex = indexOf(o.UcastRemote)
			got, err := Plan(d, &o, opt)
			if err != nil {
				t.Fatal(err)
			}
			if took := indexedPlanner(d, &o, opt).ucastRemoteIndexed(); took != clean {
				t.Fatalf("round %d: indexed path taken=%v, want %v", round, took, clean)
			} else if took {
				fast++
			}
			if !slices.EqualFunc(got.List, want.List, func(a, b Change) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
				t.Fatalf("round %d %+v: indexed plan differs\n got %v\nwant %v", round, opt, got.List, want.List)
			}
		}
	}
	if fast == 0 {
		t.Fatal("the indexed path never ran")
	}
}

func BenchmarkPlan100kIndexed(b *testing.B) {
	d := &Desired{Flood: map[l2.VNI][]netip.Addr{}}
	for v := l2.VNI(1); v <= 100; v++ {
		d.LogicalSwitches = append(d.LogicalSwitches, LogicalSwitch{VNI: v})
	}
	for i := 0; i < 100000; i++ {
		d.RemoteMACs = append(d.RemoteMACs, l2.RemoteMAC{VNI: l2.VNI(i%100 + 1),
			MAC: l2.MAC{2, 0, byte(i >> 16), byte(i >> 8), byte(i), 1}, VTEP: netip.AddrFrom4([4]byte{192, 0, 2, byte(i%50 + 1)})})
	}
	slices.SortFunc(d.RemoteMACs, l2.CompareRemoteMACs)
	s := newSim()
	var t testing.T
	s.converge(&t, d, Options{})
	s.o.UcastRemoteIndex = indexOf(s.o.UcastRemote)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch, err := Plan(d, s.o, Options{})
		if err != nil || !ch.Empty() {
			b.Fatal(err)
		}
	}
}
