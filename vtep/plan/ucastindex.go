package plan

import (
	"cmp"
	"slices"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// ucastRemoteIndexed is ucastRemote over the client's index of the table
// (Observed.UcastRemoteIndex): one lookup per desired MAC, and a look at the
// rows only when some are not desired. It applies when the index covers
// every row exactly once and the desired list is sorted without repeats
// (what the agent hands in); it reports false, having planned nothing,
// otherwise. The changes are the same as ucastRemote's.
func (pl *planner) ucastRemoteIndexed() bool {
	idx := pl.o.UcastRemoteIndex
	if idx == nil || len(idx) != len(pl.o.UcastRemote) || !strictlySortedMACs(pl.d.RemoteMACs) {
		return false
	}
	var adds, updates []Change
	matched := 0
	for i := range pl.d.RemoteMACs {
		w := &pl.d.RemoteMACs[i]
		ls, ok := pl.out.LSByVNI[w.VNI]
		var row *vtepdb.UcastMacsRemote
		if ok {
			row, ok = idx[UcastKey{LS: ls, MAC: w.MAC}]
		}
		if !ok {
			adds = append(adds, Change{Op: UcastAdd, VNI: w.VNI, MAC: w.MAC, IP: w.IP, VTEP: w.VTEP})
			continue
		}
		matched++
		if loc, ok := pl.locIP[row.Locator]; ok && loc == w.VTEP && sameIP(row.Ipaddr, w.IP) {
			continue
		}
		updates = append(updates, Change{Op: UcastUpdate, UUID: row.UUID, VNI: w.VNI, MAC: w.MAC, IP: w.IP, VTEP: w.VTEP})
	}
	var dels []Change
	if matched < len(idx) && !pl.opt.KeepStale {
		for k, row := range idx {
			if !pl.owned(k.LS) || pl.frozen[k.LS] {
				continue
			}
			v, canonical := pl.canonical[k.LS]
			if canonical {
				if _, desired := slices.BinarySearchFunc(pl.d.RemoteMACs, l2.MACKey{VNI: v, MAC: k.MAC}, l2.CompareRemoteMACKey); desired {
					continue
				}
			}
			dels = append(dels, Change{Op: UcastDelete, UUID: row.UUID, VNI: v, MAC: k.MAC})
		}
	}
	pl.changes[UcastAdd], pl.changes[UcastUpdate], pl.changes[UcastDelete] = adds, updates, dels
	slices.SortFunc(pl.changes[UcastUpdate], func(a, b Change) int { return cmp.Compare(a.UUID, b.UUID) })
	slices.SortFunc(pl.changes[UcastDelete], func(a, b Change) int { return cmp.Compare(a.UUID, b.UUID) })
	return true
}
