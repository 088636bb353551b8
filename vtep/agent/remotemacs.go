package agent

import (
	"maps"
	"slices"

	"github.com/torstitch/torstitch/vtep/l2"
)

// The remote-MAC part of Compute handles the whole EVPN table (100k MACs and
// more) on every pass, so it avoids maps and sorts where the input allows:
// the speaker hands out its MACs sorted by (VNI, MAC) with one entry per key
// (evpn.RemoteState), and a filtered sorted list stays sorted.

// strictlySorted reports whether l is sorted by (VNI, MAC) without duplicates.
func strictlySorted(l []l2.RemoteMAC) bool {
	for i := 1; i < len(l); i++ {
		if l[i-1].CompareKey(&l[i]) >= 0 {
			return false
		}
	}
	return true
}

// sortRemote sorts by (VNI, MAC) unless already sorted.
func sortRemote(l []l2.RemoteMAC) {
	if slices.IsSortedFunc(l, l2.CompareRemoteMACs) {
		return
	}
	slices.SortFunc(l, l2.CompareRemoteMACs)
}

// remoteList returns the remote MACs that keep passes, with the pair
// switch's MACs (over) replacing a remote entry of the same key, sorted by
// (VNI, MAC). The result may be remote itself: callers must not modify it. A remote list that is not strictly sorted (duplicate keys:
// the last one wins) goes through a map as before.
func remoteList(remote []l2.RemoteMAC, over map[l2.MACKey]l2.RemoteMAC, keep func(*l2.RemoteMAC) bool) []l2.RemoteMAC {
	extra := slices.Collect(maps.Values(over))
	slices.SortFunc(extra, l2.CompareRemoteMACs)
	if !strictlySorted(remote) {
		macs := make(map[l2.MACKey]l2.RemoteMAC, len(remote)+len(over))
		for i := range remote {
			if m := &remote[i]; keep(m) {
				macs[l2.MACKey{VNI: m.VNI, MAC: m.MAC}] = *m
			}
		}
		maps.Copy(macs, over)
		list := slices.Collect(maps.Values(macs))
		sortRemote(list)
		return list
	}
	if len(extra) == 0 {
		// The common case (one switch, or anycast, or no local MACs on the
		// pair switch): the speaker's list itself when nothing is left out.
		// It is shared and read only, like the speaker's.
		i := 0
		for i < len(remote) && keep(&remote[i]) {
			i++
		}
		if i == len(remote) {
			return remote
		}
	}
	list := make([]l2.RemoteMAC, 0, len(remote)+len(extra))
	j := 0
	for i := range remote {
		m := &remote[i]
		for j < len(extra) && extra[j].CompareKey(m) < 0 {
			list = append(list, extra[j])
			j++
		}
		if j < len(extra) && extra[j].CompareKey(m) == 0 {
			continue // replaced by the pair switch's entry, appended next
		}
		if keep(m) {
			list = append(list, *m)
		}
	}
	return append(list, extra[j:]...)
}
