package evpn

import (
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
)

func TestMobilityDecide(t *testing.T) {
	k := l2.MACKey{VNI: 5000, MAC: l2.MustMAC("02:00:00:00:00:01")}
	low, high := ip("10.0.0.1"), ip("10.0.0.9")
	t0 := time.Unix(1_000_000, 0)
	type step struct {
		vtep    string
		remote  *remoteBest
		wantSeq uint32
		wantAdv bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"fresh local MAC", []step{{"10.0.0.5", nil, 0, true}, {"10.0.0.5", nil, 0, true}}},
		{"learned while known remotely: next sequence", []step{{"10.0.0.5", &remoteBest{VTEP: low, Seq: 3}, 4, true}}},
		{"remote with higher sequence: yield, then take over when it goes", []step{
			{"10.0.0.5", nil, 0, true},
			{"10.0.0.5", &remoteBest{VTEP: high, Seq: 1}, 0, false},
			{"10.0.0.5", &remoteBest{VTEP: high, Seq: 1}, 0, false},
			{"10.0.0.5", nil, 2, true},
		}},
		{"equal sequence, lower remote IP wins", []step{{"10.0.0.5", nil, 0, true}, {"10.0.0.5", &remoteBest{VTEP: low, Seq: 0}, 0, false}}},
		{"equal sequence, higher remote IP loses", []step{{"10.0.0.5", nil, 0, true}, {"10.0.0.5", &remoteBest{VTEP: high, Seq: 0}, 0, true}}},
		{"remote with lower sequence loses", []step{{"10.0.0.5", &remoteBest{VTEP: low, Seq: 3}, 4, true}, {"10.0.0.5", &remoteBest{VTEP: low, Seq: 3}, 4, true}}},
		{"move between the switches of a pair", []step{{"10.0.0.5", nil, 0, true}, {"10.0.0.6", nil, 1, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMobility(5, 180*time.Second)
			for i, s := range tc.steps {
				seq, adv := m.decide(k, ip(s.vtep), s.remote, t0.Add(time.Duration(i)*time.Second))
				if seq != s.wantSeq || adv != s.wantAdv {
					t.Fatalf("step %d: got seq %d adv %v, want seq %d adv %v", i, seq, adv, s.wantSeq, s.wantAdv)
				}
			}
		})
	}
}

// A MAC flapping between us and a remote VTEP is frozen after 5 moves in
// 180 s, reported, held in place, and released after the window.
func TestMobilityDuplicateDetection(t *testing.T) {
	k := l2.MACKey{VNI: 5000, MAC: l2.MustMAC("02:00:00:00:00:01")}
	us, them := ip("10.0.0.5"), ip("10.0.0.9")
	m := newMobility(5, 180*time.Second)
	now := time.Unix(1_000_000, 0)
	remoteSeq := uint32(0)
	var seq uint32
	var adv bool
	for i := 0; i < 3; i++ { // local learn (move to us), remote takes it (move away): 2 moves per round
		now = now.Add(10 * time.Second)
		m.forget(map[l2.MACKey]bool{}, now) // MAC aged out locally
		seq, adv = m.decide(k, us, &remoteBest{VTEP: them, Seq: remoteSeq}, now)
		if !adv || seq != remoteSeq+1 {
			if len(m.frozenKeys(now)) == 0 {
				t.Fatalf("round %d: seq %d adv %v, want advertised with %d", i, seq, adv, remoteSeq+1)
			}
		}
		remoteSeq = seq + 1
		now = now.Add(10 * time.Second)
		seq, adv = m.decide(k, us, &remoteBest{VTEP: them, Seq: remoteSeq}, now)
	}
	frozen := m.frozenKeys(now)
	if len(frozen) != 1 || frozen[0].MAC != k.MAC {
		t.Fatalf("frozen = %+v, want %s", frozen, k.MAC)
	}
	// Held: a higher remote sequence changes nothing while frozen.
	s2, a2 := m.decide(k, us, &remoteBest{VTEP: them, Seq: 100}, now.Add(time.Second))
	if s2 != seq || a2 != adv {
		t.Errorf("frozen MAC changed: seq %d adv %v, was %d %v", s2, a2, seq, adv)
	}
	// After the window it is evaluated again.
	later := now.Add(181 * time.Second)
	if len(m.frozenKeys(later)) != 0 {
		t.Errorf("still frozen after the window")
	}
	if _, a := m.decide(k, us, nil, later); !a {
		t.Errorf("not advertised after release with no remote route")
	}
}

func TestWanted(t *testing.T) {
	vtepA, vtepB := ip("192.0.2.1"), ip("192.0.2.2")
	mac := l2.MustMAC("02:00:00:00:00:01")
	rts := newRTPolicy(65000, RouteTargets{})
	mob := newMobility(5, 180*time.Second)
	st := LocalState{
		IMET: []IMET{{VNI: 70000, VTEP: vtepA}, {VNI: 0, VTEP: vtepA}},
		MACs: []l2.LocalMAC{
			{Switch: "tor1", VNI: 70000, MAC: mac, IP: ip("10.1.0.9"), VTEP: vtepA},
			{Switch: "tor2", VNI: 70000, MAC: mac, IP: ip("10.1.0.2"), VTEP: vtepA}, // anycast twin
			{Switch: "tor1", VNI: 70000, MAC: l2.MustMAC("01:00:5e:00:00:01"), VTEP: vtepA},
			{Switch: "tor1", VNI: 70000, MAC: l2.MustMAC("02:00:00:00:00:02"), VTEP: vtepB},
		},
	}
	res := wanted(st, rts, mob, func(l2.MACKey) *remoteBest { return nil }, time.Unix(0, 0))
	if res.invalid != 2 {
		t.Errorf("invalid = %d, want 2 (VNI 0, multicast MAC)", res.invalid)
	}
	want := advKey{Kind: kindMAC, VNI: 70000, VTEP: vtepA, RDNum: 4464, MAC: mac, IP: ip("10.1.0.2")}
	r, ok := res.routes[want]
	if !ok || r.Seq != 0 || len(r.RTs) != 1 || r.RTs[0] != mustRouteTarget("65000:70000") {
		t.Errorf("route %+v missing or wrong in %+v", want, res.routes)
	}
	if len(res.routes) != 3 { // one type-3, two type-2 (the anycast twin is one route)
		t.Errorf("got %d routes, want 3: %+v", len(res.routes), res.routes)
	}
	// Identical input: no change.
	res2 := wanted(st, rts, mob, func(l2.MACKey) *remoteBest { return nil }, time.Unix(1, 0))
	if add, del := diffRoutes(res.routes, res2.routes); len(add)+len(del) != 0 {
		t.Errorf("repeat planned changes: add %v del %v", add, del)
	}
	// Withdraw one MAC.
	st.MACs = st.MACs[:2]
	res3 := wanted(st, rts, mob, func(l2.MACKey) *remoteBest { return nil }, time.Unix(2, 0))
	add, del := diffRoutes(res.routes, res3.routes)
	if len(add) != 0 || len(del) != 1 || del[0].MAC != l2.MustMAC("02:00:00:00:00:02") {
		t.Errorf("withdraw: add %v del %v", add, del)
	}
}
