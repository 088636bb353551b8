package testbed_test

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/torstitch/torstitch/testbed"
)

// timeline merges what each party logged around a fault, relative to the
// fault (t0): the test's own steps, the pingers' last and first answers,
// the agent's log, the ToRs' logs (ovs-vtep's MAC learning, torswitch),
// the ESXi hosts' team failover and RARP notifications, and the KVM
// VTEP's kernel FDB changes. A scenario that misses its bound prints it.
type timeline struct {
	t0 time.Time

	mu     sync.Mutex
	events []tlEvent
	stops  []func()
	// passes holds, per ovs-vtep ToR, when each pass of ovs-vtep's main
	// loop reached its first logical switch (its per-pass "tunnel key" log
	// line, left out of the events).
	passes map[string][]time.Time
}

type tlEvent struct {
	at        time.Time
	src, text string
}

func newTimeline() *timeline { return &timeline{t0: time.Now()} }

func (tl *timeline) add(at time.Time, src, format string, args ...any) {
	tl.mu.Lock()
	tl.events = append(tl.events, tlEvent{at, src, fmt.Sprintf(format, args...)})
	tl.mu.Unlock()
}

// mark records a step of the test itself, now.
func (tl *timeline) mark(format string, args ...any) { tl.add(time.Now(), "test", format, args...) }

// String renders the events in time order, offsets from t0.
func (tl *timeline) String() string {
	tl.mu.Lock()
	ev := slices.Clone(tl.events)
	tl.mu.Unlock()
	slices.SortStableFunc(ev, func(a, b tlEvent) int { return a.at.Compare(b.at) })
	var b strings.Builder
	for _, e := range ev {
		fmt.Fprintf(&b, "  %+8.3fs  %-9s %s\n", e.at.Sub(tl.t0).Seconds(), e.src, e.text)
	}
	return b.String()
}

// watchFDB records the changes of node's kernel FDB that concern macs
// (`bridge -timestamp monitor fdb`) until the timeline is closed.
func (tl *timeline) watchFDB(ctx context.Context, t *testing.T, lab testbed.Runtime, node string, macs []string) {
	t.Helper()
	var at time.Time
	tl.watch(ctx, t, lab, node, []string{"bridge", "-timestamp", "monitor", "fdb"}, func(line string) {
		// Timestamp: Thu Dec  3 22:14:16 2026 561044 usec
		if rest, ok := strings.CutPrefix(line, "Timestamp: "); ok {
			f := strings.Fields(rest)
			if len(f) == 7 {
				if ts, err := time.ParseInLocation("Mon Jan 2 15:04:05 2006", strings.Join(f[:5], " "), time.Local); err == nil {
					var us int
					fmt.Sscan(f[5], &us)
					at = ts.Add(time.Duration(us) * time.Microsecond)
				}
			}
			return
		}
		if at.IsZero() || !strings.Contains(line, " dst ") {
			return
		}
		for _, m := range macs {
			if strings.Contains(line, m) {
				tl.add(at, node, "fdb %s", strings.TrimSpace(line))
			}
		}
	})
}

// watchFlows records, on an ovs-vtep ToR, the changes of the logical
// switches' MAC tables (OpenFlow table 1: remote MACs to a tunnel, learned
// MACs to a port, cookie 0x5000) that concern macs, stamped when read: where
// the switch sends a VM's frames, and when ovs-vtep's learned entry goes.
func (tl *timeline) watchFlows(ctx context.Context, t *testing.T, lab testbed.Runtime, node string, macs []string) {
	t.Helper()
	// timeout: the monitors end by themselves (killing the local end of a
	// docker exec leaves the command running in the container).
	script := `for b in $(ovs-vsctl list-br | grep _vtep_ls); do timeout 120 ovs-ofctl monitor "$b" watch:table=1 | sed -u "s/^/$b /" & done; wait`
	if lab.Kind() == "containerlab" {
		// A host program in the container's network namespace: the
		// node's OVS sockets are under the container's root (/run, not
		// /var/run: that absolute symlink would resolve to the host's).
		ref, err := lab.NetnsRef(node)
		if err != nil {
			t.Fatal(err)
		}
		script = "export OVS_RUNDIR=/proc/" + ref + "/root/run/openvswitch; " + script
	}
	tl.watch(ctx, t, lab, node, []string{"sh", "-c", script}, func(line string) {
		for _, m := range macs {
			if strings.Contains(line, m) {
				tl.add(time.Now(), node, "flow %s", strings.Join(strings.Fields(line), " "))
			}
		}
	})
}

// watch runs argv in node and hands each line of its output to onLine
// (one goroutine) until the timeline is closed; a watcher that printed
// nothing but errors leaves them in the timeline.
func (tl *timeline) watch(ctx context.Context, t *testing.T, lab testbed.Runtime, node string, argv []string, onLine func(string)) {
	t.Helper()
	cmd, err := lab.Command(ctx, node, argv...)
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var lines atomic.Int64
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines.Add(1)
			onLine(sc.Text())
		}
	}()
	tl.stops = append(tl.stops, func() {
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		_ = cmd.Wait()
		if msg := strings.TrimSpace(stderr.String()); lines.Load() == 0 && msg != "" {
			tl.add(time.Now(), node, "%s printed nothing but: %s", argv[0], msg)
		}
	})
}

// pings records where p's longest outage among the requests after from
// began and ended.
func (tl *timeline) pings(p *pinger, st pingStats) {
	if st.Lost == 0 {
		tl.add(time.Now(), "ping", "%s: %s", p.name, st)
		return
	}
	if !st.LastBefore.IsZero() {
		tl.add(st.LastBefore, "ping", "%s: last answer before its longest outage (%s)", p.name, st)
	}
	if !st.FirstAfter.IsZero() {
		tl.add(st.FirstAfter, "ping", "%s: answered again", p.name)
	}
}

// collect stops the watchers and adds the logs of the lab's nodes from
// one second before t0 until now.
func (tl *timeline) collect(ctx context.Context, lab testbed.Runtime) {
	for _, stop := range tl.stops {
		stop()
	}
	tl.stops = nil
	from, until := tl.t0.Add(-time.Second), time.Now()
	in := func(at time.Time) bool { return !at.Before(from) && !at.After(until) }
	var pm passMarker
	defer func() {
		tl.mu.Lock()
		tl.passes = pm.passes
		tl.mu.Unlock()
	}()
	for _, n := range lab.Topo().Nodes {
		if n.Kind != "linux" {
			continue
		}
		role := nodeRole(n.Name, n.Exec, n.Cmd)
		switch role {
		case "toragent", "torswitch":
			b, err := lab.Logs(ctx, n.Name)
			if err != nil {
				tl.add(until, n.Name, "logs: %v", err)
				continue
			}
			for _, l := range lines(b) {
				if at, text, ok := slogLine(l); ok && in(at) {
					tl.add(at, n.Name, "%s", clip(text, 220))
				}
			}
		case "ovs-vtep":
			b, _ := lab.Shell(ctx, n.Name, "cat /var/run/openvswitch/ovs-vtep.log 2>/dev/null")
			for _, l := range lines(b) {
				// 2026-12-03T22:14:16.497Z|00032|ovs-vtep|INFO|adding local ucast ...
				f := strings.SplitN(l, "|", 5)
				if len(f) < 5 {
					continue
				}
				at, err := time.Parse("2006-01-02T15:04:05.000Z", strings.TrimSpace(f[0]))
				if err != nil || !in(at) {
					continue
				}
				if strings.Contains(f[4], "tunnel key") {
					pm.mark(n.Name, at, f[4])
					continue
				}
				tl.add(at, n.Name, "ovs-vtep: %s", clip(strings.TrimSpace(f[4]), 200))
			}
		case "esx":
			b, _ := lab.Shell(ctx, n.Name, "cat /var/run/openvswitch/notify.log 2>/dev/null")
			for _, l := range lines(b) {
				// [22:14:13.123] esx1: team failover eth1 -> eth2
				ts, text, ok := strings.Cut(strings.TrimPrefix(l, "["), "] ")
				if !ok {
					continue
				}
				c, err := time.Parse("15:04:05.000", ts)
				if err != nil {
					continue
				}
				d := tl.t0.UTC()
				at := time.Date(d.Year(), d.Month(), d.Day(), c.Hour(), c.Minute(), c.Second(), c.Nanosecond(), time.UTC)
				if in(at) {
					tl.add(at, n.Name, "%s", clip(text, 200))
				}
			}
		}
	}
}

// passMarker finds the passes of ovs-vtep's main loop in its log: each
// pass logs "update_remote_macs: using tunnel key K in LS" once per
// logical switch, in the same order; a pass starts where the first logical
// switch of a node's log comes round again.
type passMarker struct {
	first  map[string]string // node -> the logical switch that opens a pass
	passes map[string][]time.Time
}

// mark notes one "tunnel key" line of node's ovs-vtep log.
func (pm *passMarker) mark(node string, at time.Time, text string) {
	_, ls, ok := strings.Cut(text, " in ")
	if !ok {
		return
	}
	ls = strings.TrimSpace(ls)
	if pm.first == nil {
		pm.first, pm.passes = map[string]string{}, map[string][]time.Time{}
	}
	if f, seen := pm.first[node]; !seen {
		pm.first[node] = ls
	} else if f != ls {
		return
	}
	pm.passes[node] = append(pm.passes[node], at)
}

// ovsVTEPPasses describes how long the passes of tor's ovs-vtep main loop
// took between from and until (its log): how many passes overlap the
// window and the longest of them. ok is false without one.
func (tl *timeline) ovsVTEPPasses(tor string, from, until time.Time) (longest time.Duration, n int, ok bool) {
	tl.mu.Lock()
	p := tl.passes[tor]
	tl.mu.Unlock()
	for i := 1; i < len(p); i++ {
		if p[i].Before(from) || p[i-1].After(until) {
			continue
		}
		n++
		longest = max(longest, p[i].Sub(p[i-1]))
	}
	return longest, n, n > 0
}

// ovsVTEPPassNote describes, for a result line, the passes of tor's
// ovs-vtep main loop during its report (the report takes up to two: the
// pass that finds the learned flow, after the one under way).
func (tl *timeline) ovsVTEPPassNote(tor string, report time.Duration) string {
	failover, ok := tl.first("esx", "team failover ")
	if !ok {
		return ""
	}
	longest, n, ok := tl.ovsVTEPPasses(tor, failover, failover.Add(report))
	if !ok {
		return ""
	}
	if n == 1 {
		return fmt.Sprintf(" (its main loop ran 1 pass meanwhile, of %s)", longest.Round(time.Millisecond))
	}
	return fmt.Sprintf(" (its main loop ran %d passes meanwhile, the longest %s)", n, longest.Round(time.Millisecond))
}

// nodeRole tells which logs a node of the stitch labs has.
func nodeRole(name string, exec []string, cmd string) string {
	all := cmd + " " + strings.Join(exec, " ")
	switch {
	case strings.Contains(all, "toragent"):
		return "toragent"
	case strings.Contains(all, "torswitch"):
		return "torswitch"
	case strings.Contains(all, "/lab/tor/"):
		return "ovs-vtep"
	case strings.Contains(all, "/lab/esx/"):
		return "esx"
	}
	return name
}

func lines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// slogLine splits a log/slog text line: time=2026-...Z level=INFO msg=...
func slogLine(l string) (time.Time, string, bool) {
	rest, ok := strings.CutPrefix(l, "time=")
	if !ok {
		return time.Time{}, "", false
	}
	ts, text, _ := strings.Cut(rest, " ")
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", false
	}
	return at, text, true
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// span returns the longest time one of macs had no entry in node's FDB:
// from a "Deleted MAC" change to the next change that adds it back (until
// now when none did).
func (tl *timeline) span(node, deleted string, macs []string) time.Duration {
	tl.mu.Lock()
	ev := slices.Clone(tl.events)
	tl.mu.Unlock()
	slices.SortStableFunc(ev, func(a, b tlEvent) int { return a.at.Compare(b.at) })
	var longest time.Duration
	for _, mac := range macs {
		var gone time.Time
		for _, e := range ev {
			if e.src != node || !strings.Contains(e.text, mac) {
				continue
			}
			if strings.Contains(e.text, deleted+mac) {
				if gone.IsZero() {
					gone = e.at
				}
				continue
			}
			if !gone.IsZero() {
				longest = max(longest, e.at.Sub(gone))
				gone = time.Time{}
			}
		}
		if !gone.IsZero() {
			longest = max(longest, time.Since(gone))
		}
	}
	return longest
}

// first returns when the first event of src (a prefix of the source's
// name: "esx" matches esx1 and esx2) containing text happened.
func (tl *timeline) first(src, text string) (time.Time, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var at time.Time
	for _, e := range tl.events {
		if strings.HasPrefix(e.src, src) && strings.Contains(e.text, text) && (at.IsZero() || e.at.Before(at)) {
			at = e.at
		}
	}
	return at, !at.IsZero()
}

// ovsVTEPReport is the part of a failover or failback that ovs-vtep's main
// loop takes: from the first ESXi team failover towards tor until tor's
// ovs-vtep has reported the last of macs in Ucast_Macs_Local (ovs-vtep
// polls its learned flows once per pass of a loop that runs about a
// hundred vtep-ctl/ovs-vsctl processes).
func (tl *timeline) ovsVTEPReport(tor string, macs []string) (time.Duration, bool) {
	failover, ok := tl.first("esx", "team failover ")
	if !ok {
		return 0, false
	}
	var last time.Time // MACs it reported before the window were local there already
	for _, m := range macs {
		// ovs-vtep's log line, or (when ovs-vtep's log lacks it) the agent's
		// move to tor, which follows the row within one pass.
		at, ok := tl.first(tor, "adding local ucast "+m)
		if moved, ok2 := tl.first("toragent", "mac="+m+" from="); ok2 && (!ok || moved.Before(at)) {
			if tl.has(moved, "toragent", "to="+tor) {
				at, ok = moved, true
			}
		}
		if ok && at.After(last) {
			last = at
		}
	}
	if last.Before(failover) {
		return 0, false
	}
	return last.Sub(failover), true
}

// has reports whether src logged an event at exactly at containing text.
func (tl *timeline) has(at time.Time, src, text string) bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, e := range tl.events {
		if e.at.Equal(at) && strings.HasPrefix(e.src, src) && strings.Contains(e.text, text) {
			return true
		}
	}
	return false
}

// nodeCmd is a shell command to run in a node.
type nodeCmd struct{ node, cmd string }

// snapshotWhileDown runs cmds at each offset after t0 for as long as down
// reports an outage, and adds their output to the timeline: the forwarding
// state in the middle of an outage, which no log shows afterwards (issue
// 14: an ovs-vtep failover that stayed down with every table right). A
// fast recovery runs nothing.
func (tl *timeline) snapshotWhileDown(ctx context.Context, lab testbed.Runtime, offsets []time.Duration, down func() bool, cmds []nodeCmd) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, off := range offsets {
			select {
			case <-time.After(time.Until(tl.t0.Add(off))):
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
			if !down() {
				return
			}
			for _, c := range cmds {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				at := time.Now()
				out, err := lab.Shell(cctx, c.node, c.cmd)
				cancel()
				text := strings.TrimRight(string(out), "\n")
				if err != nil {
					text += fmt.Sprintf("\n(%v)", err)
				}
				tl.add(at, c.node, "snapshot during the outage: %s\n%s", c.cmd, indent(text, 22))
			}
		}
	}()
	tl.stops = append(tl.stops, func() { close(stop); <-done })
}

// indent prefixes every line of s with n spaces.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}
