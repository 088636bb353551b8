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
