package evpn

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/torstitch/torstitch/vtep/l2"
)

// fullSnapshot is the reference: every MAC's best route, sorted.
func fullSnapshot(t *remoteTable, own map[netip.Addr]bool, wins map[l2.MACKey]bool) []l2.RemoteMAC {
	var out []l2.RemoteMAC
	for k := range t.macs {
		if wins[k] {
			continue
		}
		if m, ok := t.best(k, own); ok {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, l2.CompareRemoteMACs)
	return out
}

// TestRemoteSnapshotIncremental applies random routes and withdrawals and
// checks that every snapshot (merged from the previous one) equals one built
// from scratch, and that a slice handed out is never modified afterwards.
func TestRemoteSnapshotIncremental(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 18))
	tb := newRemoteTable()
	vteps := []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")}
	own := map[netip.Addr]bool{}
	wins := map[l2.MACKey]bool{}
	var handed [][]l2.RemoteMAC
	var copies [][]l2.RemoteMAC
	for round := range 300 {
		for range rng.IntN(40) {
			vni := l2.VNI(5000 + rng.IntN(3))
			mac := l2.MAC{0x02, 0, 0, 0, byte(rng.IntN(2)), byte(rng.IntN(30))}
			vtep := vteps[rng.IntN(len(vteps))]
			id := fmt.Sprintf("2|%s:1|0|%s|", vtep, mac)
			r := rxRoute{id: id, kind: kindMAC, VNI: vni, MAC: mac, VTEP: vtep, Seq: uint32(rng.IntN(3))}
			if rng.IntN(4) == 0 {
				r.IP = netip.AddrFrom4([4]byte{10, 1, 0, byte(rng.IntN(5))})
				r.id += r.IP.String()
			}
			r.withdraw = rng.IntN(3) == 0
			tb.apply(r)
		}
		switch round % 50 {
		case 17:
			own = map[netip.Addr]bool{vteps[rng.IntN(len(vteps))]: true}
		case 33:
			wins = map[l2.MACKey]bool{{VNI: 5000, MAC: l2.MAC{0x02, 0, 0, 0, 0, byte(rng.IntN(30))}}: true}
		}
		got := tb.snapshot(own, wins).MACs
		want := fullSnapshot(tb, own, wins)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: incremental snapshot differs:\n got %v\nwant %v", round, got, want)
		}
		handed = append(handed, got)
		copies = append(copies, slices.Clone(got))
	}
	for i := range handed {
		if !slices.Equal(handed[i], copies[i]) {
			t.Fatalf("snapshot %d was modified after it was handed out", i)
		}
	}
	for id := range tb.byID {
		tb.apply(rxRoute{id: id, withdraw: true})
	}
	if got := tb.snapshot(own, wins).MACs; len(got) != 0 || len(tb.macs) != 0 {
		t.Fatalf("after withdrawing everything: %d MACs in the snapshot, %d in the table", len(got), len(tb.macs))
	}
}
