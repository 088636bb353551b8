package agent

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/torstitch/torstitch/vtep/l2"
)

// TestRemoteListMatchesMap checks the merge of a sorted remote list with
// the pair switch's MACs against the map it replaces, on random inputs,
// sorted (the speaker's order) and not.
func TestRemoteListMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 2))
	vteps := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}
	randMAC := func() l2.RemoteMAC {
		return l2.RemoteMAC{VNI: l2.VNI(100 + rng.IntN(3)), MAC: l2.MAC{2, 0, 0, byte(rng.IntN(2)), 0, byte(rng.IntN(40))},
			VTEP: vteps[rng.IntN(2)], Seq: uint32(rng.IntN(3))}
	}
	for round := range 500 {
		var remote []l2.RemoteMAC
		for range rng.IntN(60) {
			remote = append(remote, randMAC())
		}
		if round%2 == 0 { // as the speaker hands it out: sorted, one entry per key
			byKey := map[l2.MACKey]l2.RemoteMAC{}
			for _, m := range remote {
				byKey[l2.MACKey{VNI: m.VNI, MAC: m.MAC}] = m
			}
			remote = slices.Collect(maps.Values(byKey))
			sortRemote(remote)
		}
		over := map[l2.MACKey]l2.RemoteMAC{}
		for range rng.IntN(10) {
			m := randMAC()
			over[l2.MACKey{VNI: m.VNI, MAC: m.MAC}] = m
		}
		skip := l2.VNI(100 + rng.IntN(4))
		keep := func(m *l2.RemoteMAC) bool { return m.VNI != skip && m.VTEP != vteps[round%2] }

		want := map[l2.MACKey]l2.RemoteMAC{}
		for _, m := range remote {
			if keep(&m) {
				want[l2.MACKey{VNI: m.VNI, MAC: m.MAC}] = m
			}
		}
		maps.Copy(want, over)
		wantList := slices.Collect(maps.Values(want))
		sortRemote(wantList)

		got := remoteList(remote, over, keep)
		if !slices.Equal(got, wantList) {
			t.Fatalf("round %d: remoteList\n got %v\nwant %v", round, got, wantList)
		}
	}
}
