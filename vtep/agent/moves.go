package agent

import (
	"log/slog"
	"slices"

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
	slices.SortFunc(moves, func(a, b macMove) int { return a.Key.Compare(b.Key) })
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
