package agent

import (
	"cmp"
	"log/slog"
	"slices"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
)

// macMove is a local MAC now advertised from another switch of the pair (a
// host whose team failed over or back, a VM that moved).
type macMove struct {
	Key      l2.MACKey
	From, To string
}

// macLocations remembers which switch of the pair each local MAC was last
// advertised from (after PreferNewest), to report moves.
type macLocations map[l2.MACKey]string

// update records views' local MACs and returns those that changed switch,
// in VNI and MAC order. MACs that appear or go are not moves.
func (m macLocations) update(views []SwitchView) []macMove {
	var moves []macMove
	seen := make(map[l2.MACKey]bool, len(m))
	for _, v := range views {
		for _, lm := range v.LocalMACs {
			k := l2.MACKey{VNI: lm.VNI, MAC: lm.MAC}
			seen[k] = true
			if prev, ok := m[k]; ok && prev != v.Name {
				moves = append(moves, macMove{Key: k, From: prev, To: v.Name})
			}
			m[k] = v.Name
		}
	}
	for k := range m {
		if !seen[k] {
			delete(m, k)
		}
	}
	slices.SortFunc(moves, func(a, b macMove) int {
		if c := cmp.Compare(a.Key.VNI, b.Key.VNI); c != 0 {
			return c
		}
		return slices.Compare(a.Key.MAC[:], b.Key.MAC[:])
	})
	return moves
}

// maxMoveLines bounds the per-MAC lines one pass logs.
const maxMoveLines = 10

// logMoves logs each move (up to maxMoveLines, then a count): the line an
// operator looks for after a failover.
func logMoves(log *slog.Logger, moves []macMove) {
	for i, mv := range moves {
		if i == maxMoveLines {
			log.Info("MACs moved between switches", "more", len(moves)-maxMoveLines)
			return
		}
		log.Info("MAC moved between switches", "vni", mv.Key.VNI, "mac", mv.Key.MAC, "from", mv.From, "to", mv.To)
	}
}

// forgetMoved removes from the held view of every switch that is not
// connected (switchState.last, kept for lostSwitchHold) the MACs whose claim
// PreferNewest dropped: another switch learned them after it. A held claim
// is a snapshot of a switch that cannot be asked; once its MAC has moved it
// must not win the MAC back when the new owner's entry goes (ovs-vtep
// deletes a learned flow together with the remote MAC row the agent
// removes, and reports the MAC gone until the host sends again: the dead
// switch's claim came back and sent the fabric to it). A switch that is
// really alive reports the MAC again when it reconnects, as new.
func forgetMoved(sw []*switchState, views []SwitchView, dropped []SeenKey) int {
	if len(dropped) == 0 {
		return 0
	}
	held := map[string]map[l2.MACKey]bool{}
	for _, v := range views {
		if !v.Connected {
			held[v.Name] = map[l2.MACKey]bool{}
		}
	}
	n := 0
	for _, d := range dropped {
		if m, ok := held[d.Switch]; ok {
			m[d.Key] = true
			n++
		}
	}
	if n == 0 {
		return 0
	}
	for _, s := range sw {
		gone := held[s.name]
		if len(gone) == 0 || s.last == nil {
			continue
		}
		s.last.LocalMACs = slices.DeleteFunc(slices.Clone(s.last.LocalMACs), func(m l2.LocalMAC) bool {
			return gone[l2.MACKey{VNI: m.VNI, MAC: m.MAC}]
		})
	}
	return n
}

// supersededClaims remembers the claims PreferNewest dropped: a switch's
// entry for a MAC that another switch learned after it. The entry is
// identified by when the agent first saw it (firstSeen). A dropped claim
// stays dropped, even when the newer owner's entry goes, until the switch
// proves it is alive after the drop (an echo answered or a new session) or
// its entry changes or goes: a dead switch whose session is not yet seen as
// lost keeps reporting its last table until the echo probe fails, and its
// entry must not win the MAC back when ovs-vtep on the new switch drops its
// learned flow with the remote row the agent removed (and reports the MAC
// gone until the host sends again). With no claim left the MAC is not
// advertised: the fabric floods to it and the host answers. A switch that
// is alive reports its table as it is: its entry (the host back on it, or
// stale and ageing out) is a claim again within one probe interval. Once
// the dead switch is seen as lost, forgetMoved removes the claim from its
// held view for good. supersededHold bounds all of it.
type supersededClaims map[SeenKey]superseded

type superseded struct {
	entry time.Time // the claim's firstSeen
	at    time.Time // when it was dropped
}

// supersededHold is the longest a superseded claim stays dropped; as long
// as a lost switch's hold.
const supersededHold = lostSwitchHold

// filter drops from views the claims that were superseded and are still
// the same entry of a switch not seen alive since, and forgets the others
// (entry changed or gone, switch alive after the drop, hold over). alive
// holds each switch's Client.Alive. It returns the claims it dropped.
func (s supersededClaims) filter(now time.Time, views []SwitchView, firstSeen map[SeenKey]time.Time, alive map[string]time.Time) []SeenKey {
	for k, c := range s {
		if fs, ok := firstSeen[k]; !ok || !fs.Equal(c.entry) || alive[k.Switch].After(c.at) || now.Sub(c.at) >= supersededHold {
			delete(s, k)
		}
	}
	if len(s) == 0 {
		return nil
	}
	var dropped []SeenKey
	for i := range views {
		kept := views[i].LocalMACs[:0:0]
		for _, m := range views[i].LocalMACs {
			k := SeenKey{views[i].Name, l2.MACKey{VNI: m.VNI, MAC: m.MAC}}
			if _, gone := s[k]; gone {
				dropped = append(dropped, k)
				continue
			}
			kept = append(kept, m)
		}
		if len(kept) != len(views[i].LocalMACs) {
			views[i].LocalMACs = kept // a new slice: the old one may be a switch's kept view
		}
	}
	return dropped
}

// note records the claims PreferNewest dropped at now.
func (s supersededClaims) note(now time.Time, dropped []SeenKey, firstSeen map[SeenKey]time.Time) {
	for _, k := range dropped {
		if at, ok := firstSeen[k]; ok {
			if c, ok := s[k]; !ok || !c.entry.Equal(at) {
				s[k] = superseded{entry: at, at: now}
			}
		}
	}
}
