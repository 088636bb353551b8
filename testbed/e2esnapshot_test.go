package testbed_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/torstitch/torstitch/testbed"
)

// shellRecorder is a Runtime whose Shell answers with the node and command.
type shellRecorder struct {
	testbed.Runtime
	calls atomic.Int32
}

func (r *shellRecorder) Shell(_ context.Context, node, cmd string) ([]byte, error) {
	r.calls.Add(1)
	return []byte("out of " + node + "\nline 2\n"), nil
}

func TestSnapshotWhileDown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		down  func(n int) bool // n: how many times down was asked before
		calls int32
	}{
		{"outage lasts: every offset", func(int) bool { return true }, 4},
		{"recovered before the first offset: nothing", func(int) bool { return false }, 0},
		{"recovered after the first offset", func(n int) bool { return n == 0 }, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab := &shellRecorder{}
			tl := newTimeline()
			asked := 0
			tl.snapshotWhileDown(context.Background(), lab, []time.Duration{5 * time.Millisecond, 20 * time.Millisecond},
				func() bool { d := tc.down(asked); asked++; return d },
				[]nodeCmd{{"tor2", "dump"}, {"kvm1", "fdb"}})
			deadline := time.Now().Add(5 * time.Second)
			for lab.calls.Load() < tc.calls && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			for _, stop := range tl.stops { // what collect does first
				stop()
			}
			if got := lab.calls.Load(); got != tc.calls {
				t.Fatalf("%d commands run, want %d", got, tc.calls)
			}
			out := tl.String()
			if n := strings.Count(out, "snapshot during the outage"); n != int(tc.calls) {
				t.Fatalf("%d snapshots in the timeline, want %d:\n%s", n, tc.calls, out)
			}
			if tc.calls > 0 && !strings.Contains(out, "tor2      snapshot during the outage: dump\n                      out of tor2\n                      line 2") {
				t.Fatalf("snapshot not rendered as expected:\n%s", out)
			}
		})
	}
}

func TestPingerOutage(t *testing.T) {
	now := time.Now()
	p := &pinger{interval: 100 * time.Millisecond, replies: map[int]time.Time{}}
	if !p.outageAt(now) {
		t.Fatal("nothing answered: want an outage")
	}
	p.replies[14] = now.Add(-3200 * time.Millisecond) // the last answer before the outage
	if !p.outageAt(now) {
		t.Fatal("last answer 3.2 s ago: want an outage")
	}
	p.replies[40] = now.Add(-200 * time.Millisecond)
	if p.outageAt(now) {
		t.Fatal("an answer 200 ms ago: traffic flows")
	}
	delete(p.replies, 40)
	p.replies[30] = now.Add(-1400 * time.Millisecond)
	if p.outageAt(now) {
		t.Fatal("an answer 1.4 s ago: within the 1.5 s window")
	}
}

// TestOVSVTEPPasses: the passes of ovs-vtep's main loop come from its
// per-pass "tunnel key" lines, one per logical switch in a fixed order; a
// pass opens where the node's first logical switch comes round again.
func TestOVSVTEPPasses(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var pm passMarker
	for _, l := range []struct {
		node string
		ms   int
		text string
	}{
		{"tor1", 0, "update_remote_macs: using tunnel key 10100 in vni10100"},
		{"tor1", 900, "update_remote_macs: using tunnel key 10200 in vni10200"},
		{"tor2", 100, "update_remote_macs: using tunnel key 10200 in vni10200"},
		{"tor1", 2000, "update_remote_macs: using tunnel key 10100 in vni10100"},
		{"tor1", 2500, "update_remote_macs: using tunnel key 10200 in vni10200"},
		{"tor2", 1100, "update_remote_macs: using tunnel key 10200 in vni10200"},
		{"tor1", 6500, "update_remote_macs: using tunnel key 10100 in vni10100"},
		{"tor1", 7000, "a line without the logical switch"},
		{"tor1", 7600, "update_remote_macs: using tunnel key 10100 in vni10100"},
	} {
		pm.mark(l.node, at(l.ms), l.text)
	}
	tl := &timeline{t0: t0, passes: pm.passes}
	for _, tc := range []struct {
		name        string
		tor         string
		from, until int
		longest     time.Duration
		n           int
		ok          bool
	}{
		{"all of tor1", "tor1", 0, 8000, 4500 * time.Millisecond, 3, true},
		{"tor1 before the long pass", "tor1", 0, 1500, 2 * time.Second, 1, true},
		{"tor1 after it", "tor1", 7000, 9000, 1100 * time.Millisecond, 1, true},
		{"tor2 by its own first switch", "tor2", 0, 2000, time.Second, 1, true},
		{"no pass in the window", "tor2", 3000, 4000, 0, 0, false},
		{"unknown switch", "tor3", 0, 9000, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			longest, n, ok := tl.ovsVTEPPasses(tc.tor, at(tc.from), at(tc.until))
			if longest != tc.longest || n != tc.n || ok != tc.ok {
				t.Errorf("ovsVTEPPasses(%s, %d, %d) = %s, %d, %v; want %s, %d, %v",
					tc.tor, tc.from, tc.until, longest, n, ok, tc.longest, tc.n, tc.ok)
			}
		})
	}
	tl.add(at(1000), "esx1", "esx1: team failover eth2 -> eth1")
	for _, tc := range []struct {
		report time.Duration
		want   string
	}{
		{6 * time.Second, " (its main loop ran 3 passes meanwhile, the longest 4.5s)"},
		{500 * time.Millisecond, " (its main loop ran 1 pass meanwhile, of 2s)"},
	} {
		if got := tl.ovsVTEPPassNote("tor1", tc.report); got != tc.want {
			t.Errorf("ovsVTEPPassNote(tor1, %s) = %q, want %q", tc.report, got, tc.want)
		}
	}
}
