package evpn

import (
	"net/netip"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
)

// mobility implements RFC 7432 §15 for locally learned MACs: the sequence
// number we advertise, yielding to a remote route with a higher sequence, and
// duplicate detection (maxMoves moves within window freeze the MAC). It is
// pure: time comes in as an argument.
type mobility struct {
	maxMoves int
	window   time.Duration
	st       map[l2.MACKey]*macState // MACs currently local
	hist     map[l2.MACKey]*moveHist // move history, kept while the MAC is away
}

type macState struct {
	seq       uint32     // sequence number we advertise (or last advertised)
	vtep      netip.Addr // our VTEP that holds the MAC
	yielded   bool       // a remote route won: not advertised
	remoteSeq uint32     // sequence of the remote route we yielded to
}

type moveHist struct {
	moves       []time.Time
	frozenSince time.Time // zero: not frozen
}

// remoteBest is the winning remote route for a MAC, as the planner sees it.
type remoteBest struct {
	VTEP netip.Addr
	Seq  uint32
}

func newMobility(maxMoves int, window time.Duration) *mobility {
	return &mobility{maxMoves: maxMoves, window: window,
		st: map[l2.MACKey]*macState{}, hist: map[l2.MACKey]*moveHist{}}
}

// beats reports whether remote route r wins over our advertisement with seq
// from vtep: the higher sequence wins, on a tie the lower VTEP IP.
func (r remoteBest) beats(seq uint32, vtep netip.Addr) bool {
	if r.Seq != seq {
		return r.Seq > seq
	}
	return r.VTEP.Less(vtep)
}

// frozen reports whether key is frozen as a duplicate at now. A freeze lasts
// one detection window, after which the MAC is evaluated afresh.
func (m *mobility) frozen(key l2.MACKey, now time.Time) bool {
	h := m.hist[key]
	if h == nil || h.frozenSince.IsZero() {
		return false
	}
	if now.Sub(h.frozenSince) >= m.window {
		h.frozenSince = time.Time{}
		h.moves = nil
		return false
	}
	return true
}

// move records one move of key and freezes it when the limit is reached.
func (m *mobility) move(key l2.MACKey, now time.Time) {
	h := m.hist[key]
	if h == nil {
		h = &moveHist{}
		m.hist[key] = h
	}
	keep := h.moves[:0]
	for _, t := range h.moves {
		if now.Sub(t) < m.window {
			keep = append(keep, t)
		}
	}
	h.moves = append(keep, now)
	if len(h.moves) >= m.maxMoves && h.frozenSince.IsZero() {
		h.frozenSince = now
	}
}

// decide returns the sequence number for local MAC key held by vtep, and
// whether we advertise it, given the best remote route r (nil: none).
func (m *mobility) decide(key l2.MACKey, vtep netip.Addr, r *remoteBest, now time.Time) (uint32, bool) {
	st := m.st[key]
	frozen := m.frozen(key, now)
	if st == nil {
		st = &macState{vtep: vtep}
		m.st[key] = st
		if r != nil { // learned here while known remotely: a move to us
			if frozen {
				st.yielded, st.remoteSeq, st.seq = true, r.Seq, r.Seq
				return st.seq, false
			}
			st.seq = r.Seq + 1
			m.move(key, now)
		}
		return st.seq, true
	}
	if frozen {
		return st.seq, !st.yielded
	}
	if st.vtep != vtep { // moved between the switches of a pair
		st.vtep = vtep
		base := st.seq
		if r != nil && r.Seq > base {
			base = r.Seq
		}
		st.seq, st.yielded = base+1, false
		m.move(key, now)
		return st.seq, true
	}
	if !st.yielded {
		if r != nil && r.beats(st.seq, vtep) { // moved away from us
			st.yielded, st.remoteSeq = true, r.Seq
			m.move(key, now)
		}
		return st.seq, !st.yielded
	}
	// Yielded: stay quiet while the remote route exists; take over when it goes.
	if r == nil {
		st.yielded = false
		if st.remoteSeq >= st.seq {
			st.seq = st.remoteSeq + 1
		}
		return st.seq, true
	}
	st.remoteSeq = r.Seq
	return st.seq, false
}

// forget drops state for MACs that are no longer local; their move history
// is kept for one window so that a flapping MAC is still detected.
func (m *mobility) forget(present map[l2.MACKey]bool, now time.Time) {
	for k := range m.st {
		if !present[k] {
			delete(m.st, k)
		}
	}
	for k, h := range m.hist {
		if !h.frozenSince.IsZero() {
			continue
		}
		if n := len(h.moves); n == 0 || now.Sub(h.moves[n-1]) >= m.window {
			delete(m.hist, k)
		}
	}
}

// frozenKeys lists the MACs frozen at now.
func (m *mobility) frozenKeys(now time.Time) []FrozenMAC {
	var out []FrozenMAC
	for k, h := range m.hist {
		if !h.frozenSince.IsZero() && now.Sub(h.frozenSince) < m.window {
			out = append(out, FrozenMAC{VNI: k.VNI, MAC: k.MAC, Since: h.frozenSince})
		}
	}
	return out
}
