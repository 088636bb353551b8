package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// ovsVtepPair builds two ovs-vtep emulators (tor1 10.99.0.1, tor2
// 10.99.0.2), each in its own namespace on the OVS userspace datapath, with
// a real underlay between them: a veth u1 ⇄ u2, each end in a netdev bridge
// whose internal port holds the tunnel IP. Each switch has a port p1.
//
//	[tor1: ovs-vtep, ul(10.99.0.1) ∋ u1] ── veth ── [tor2: ovs-vtep, ul(10.99.0.2) ∋ u2]
func ovsVtepPair(t *testing.T, prefix string) (e1, e2 *vteptest.Emulator) {
	netnstest.RequireRoot(t)
	ns1, ns2 := netnstest.New(t, prefix+"-t1"), netnstest.New(t, prefix+"-t2")
	netnstest.Veth(t, ns1, "u1", ns2, "u2", 1600)
	start := func(ns *netnstest.Netns, name, ul, tip string) *vteptest.Emulator {
		e := vteptest.StartEmulator(t, ns, name, tip)
		e.Vsctl("add-br", "ul", "--", "set", "bridge", "ul", "datapath_type=netdev")
		e.Vsctl("add-port", "ul", ul)
		ns.Run("ip", "link", "set", "ul", "mtu", "1600", "up")
		ns.Run("ip", "addr", "add", tip+"/24", "dev", "ul")
		netnstest.Veth(t, ns, "p1", ns, "x1", 1500)
		e.AddPort("p1")
		e.Run()
		return e
	}
	return start(ns1, "tor1", "u1", "10.99.0.1"), start(ns2, "tor2", "u2", "10.99.0.2")
}

// bfdWatch polls one switch's database (vtep-ctl, about every 50 ms) and
// records when the tunnel to remote first reports BFD state want, and when
// the switch's remote MACs and flood list first stop (or start again)
// pointing at remote.
type bfdWatch struct {
	e      *vteptest.Emulator
	remote string
}

func (w bfdWatch) state() string { st, _, _, _ := w.snapshot("-"); return st }

// snapshot reads the tunnel's BFD state and the rows pointing at the remote
// VTEP in one vtep-ctl transaction (one consistent view of the database).
func (w bfdWatch) snapshot(mac string) (state string, macThere, floodThere, anchor bool) {
	out, err := w.e.NS.Try("sh", "-c", fmt.Sprintf("OVS_RUNDIR=%s vtep-ctl --timeout=5 --bare --columns=bfd_status list Tunnel -- list-remote-macs vni10100", w.e.Dir))
	if err != nil {
		return "error: " + err.Error(), true, true, false
	}
	for _, f := range strings.Fields(out) {
		if s, ok := strings.CutPrefix(f, "state="); ok && state == "" {
			state = s
		}
	}
	macThere = strings.Contains(out, mac+" -> vxlan_over_ipv4/"+w.remote)
	floodThere = strings.Contains(out, "unknown-dst -> vxlan_over_ipv4/"+w.remote)
	anchor = strings.Contains(out, "02:bf:")
	return state, macThere, floodThere, anchor
}

// pointsAt reports whether the switch's remote MACs (other than the BFD
// anchor row) or its flood list for VNI 10100 refer to the remote VTEP, and
// whether the anchor row is there.
func (w bfdWatch) pointsAt(mac string) (macThere, floodThere, anchor bool) {
	_, m, f, a := w.snapshot(mac)
	return m, f, a
}

// timeline polls one snapshot at a time until the tunnel reports state and
// rows(…) holds, and returns when each was first seen (a snapshot's
// granularity; both in one snapshot when the agent was faster than a poll).
func (w bfdWatch) timeline(t *testing.T, d time.Duration, state string, rows func(macThere, floodThere, anchor bool) bool) (tState, tRows time.Time) {
	t.Helper()
	const mac2 = "00:50:56:00:02:22"
	w.until(t, d, "BFD "+state+" in the Tunnel table and the rows changed", func() bool {
		now := time.Now()
		st, m, f, a := w.snapshot(mac2)
		if tState.IsZero() && st == state {
			tState = now
		}
		if tRows.IsZero() && rows(m, f, a) {
			tRows = now
		}
		return !tState.IsZero() && !tRows.IsZero()
	})
	return tState, tRows
}

func (w bfdWatch) until(t *testing.T, d time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			out, err := w.e.NS.Try("sh", "-c", fmt.Sprintf("export OVS_RUNDIR=%s; vtep-ctl --timeout=5 list-remote-macs vni10100; vtep-ctl --timeout=5 list Tunnel", w.e.Dir))
			t.Fatalf("%s: not within %v; the switch's database:\n%s (%v)", what, d, out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAgentBFDWithOVSVTEP: two ovs-vtep emulators run BFD to each other
// over a real underlay, configured by the agent (bfd_params on the Tunnel
// rows ovs-vtep creates). tor2's underlay goes down: tor1's BFD goes down,
// and tor1's remote MACs and flood list stop pointing at tor2 within a
// bound derived from the BFD timers and ovs-vtep's loop; when the underlay
// comes back, BFD comes up and everything is restored. The timeline is
// printed.
func TestAgentBFDWithOVSVTEP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two ovs-vtep emulators")
	}
	e1, e2 := ovsVtepPair(t, "bfd")
	const minRx, minTx = 300 * time.Millisecond, 100 * time.Millisecond
	dir := t.TempDir()
	cfg, err := config.Parse(fmt.Appendf(nil, `
agent: {name: pair1, api: "unix://%s/api.sock", state_dir: %s, resync: 5s}
switches:
  - {name: tor1, ovsdb: "%s", bfd: {enabled: true, min_rx: %s, min_tx: %s}}
  - {name: tor2, ovsdb: "%s", bfd: {enabled: true, min_rx: %s, min_tx: %s}}
`, dir, dir, e1.Endpoint(), minRx, minTx, e2.Endpoint(), minRx, minTx))
	if err != nil {
		t.Fatal(err)
	}
	logs := &logTimes{store: &logStore{}}
	logs.inner = testLog(t).Handler()
	r := startAgentWith(t, cfg, slog.New(logs))
	ctx := context.Background()
	if err := r.a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:p1", "tor2:p1"}}); err != nil {
		t.Fatal(err)
	}
	// A MAC local on tor2 (as ovs-vtep would report it), cross-installed on
	// tor1. Added once ovs-vtep has set up the logical switch: its set-up
	// clears the switch's local MACs (clear-local-macs, then its own
	// unknown-dst mcast-local row).
	const mac2 = "00:50:56:00:02:22"
	bfdWatch{e: e2}.until(t, 30*time.Second, "ovs-vtep set up vni10100 on tor2", func() bool {
		out, err := e2.NS.Try("sh", "-c", fmt.Sprintf("OVS_RUNDIR=%s vtep-ctl --timeout=5 list-local-macs vni10100", e2.Dir))
		return err == nil && strings.Contains(out, "unknown-dst -> vxlan_over_ipv4/10.99.0.2")
	})
	e2.VtepCtl("add-ucast-local", "vni10100", mac2, "10.99.0.2")
	w := bfdWatch{e: e1, remote: "10.99.0.2"}
	setup := time.Now()
	w.until(t, 30*time.Second, "tor2's MAC and flood entry on tor1", func() bool {
		m, f, _ := w.pointsAt(mac2)
		return m && f
	})
	tUp := w.until(t, 60*time.Second, "BFD up on tor1's tunnel to tor2", func() bool { return w.state() == "up" })
	t.Logf("set-up: BFD up on tor1 %v after the bind", tUp.Sub(setup).Round(time.Millisecond))
	params := e1.VtepCtl("--bare", "--columns=bfd_params", "list", "Tunnel")
	for _, want := range []string{"enable=true", "min_rx=300", "min_tx=100"} {
		if !strings.Contains(params, want) {
			t.Fatalf("tor1 Tunnel bfd_params %q lacks %s", params, want)
		}
	}
	// Steady state: BFD up costs no writes.
	before := metricValue(t, r, "torstitch_ovsdb_transactions_total", "tor1")
	time.Sleep(3 * time.Second)
	if after := metricValue(t, r, "torstitch_ovsdb_transactions_total", "tor1"); after != before {
		t.Fatalf("steady state with BFD up: %v transactions on tor1 in 3 s", after-before)
	}

	// tor2's data plane goes away: its underlay link down.
	t0 := time.Now()
	e2.NS.Run("ip", "link", "set", "u2", "down")
	tDown, tRows := w.timeline(t, 30*time.Second, "down", func(m, f, a bool) bool { return !m && !f && a })
	// Bound: BFD detection (3 × the slower of tor1's min_rx and tor2's
	// min_tx) + two of ovs-vtep's main-loop passes on tor1 (1 s sleep + its
	// vtep-ctl/ovs-vsctl work; the longest pass is read from its log, at
	// least 3 s) to copy bfd_status into the Tunnel table + the agent's
	// pass and write (1 s of slack).
	detect := 3 * max(minRx, minTx)
	pass := max(3*time.Second, longestPass(t, e1))
	bound := detect + 2*pass + time.Second
	aDown := logs.first("BFD down", "tor1", t0)
	aWrite := logs.first("switch updated", "tor1", aDown)
	t.Logf("timeline (tor2 underlay down at t0): agent saw tor1's Tunnel bfd_status:state=down at t0+%v, tor1's rows written by t0+%v; "+
		"vtep-ctl snapshots: state=down first at t0+%v, rows changed first at t0+%v; bound %v (detect %v + 2 ovs-vtep passes of %v + 1 s)",
		since(t0, aDown), since(t0, aWrite), since(t0, tDown), since(t0, tRows), bound, detect, pass)
	if d := tRows.Sub(t0); d > bound {
		t.Fatalf("tor1 stopped pointing at tor2 %v after its underlay went down, over the bound %v", d, bound)
	}
	ss, _ := r.a.Switches(ctx)
	if fmt.Sprint(ss[0].BFDDown) != "[10.99.0.2]" {
		t.Fatalf("torctl show switches: tor1 bfd_down = %v", ss[0].BFDDown)
	}

	// Back: underlay up, BFD up, rows restored.
	t1 := time.Now()
	e2.NS.Run("ip", "link", "set", "u2", "up")
	defer func() {
		if t.Failed() {
			t.Logf("tor2 local MACs:\n%s", e2.VtepCtl("list-local-macs", "vni10100"))
		}
	}()
	tUp2, tBack := w.timeline(t, 60*time.Second, "up", func(m, f, a bool) bool { return m && f && !a })
	aUp := logs.first("BFD no longer down", "tor1", t1)
	aWrite = logs.first("switch updated", "tor1", aUp)
	t.Logf("timeline (tor2 underlay up at t1): agent saw tor1's Tunnel state=up at t1+%v, rows written by t1+%v; "+
		"vtep-ctl snapshots: state=up first at t1+%v, rows restored first at t1+%v",
		since(t1, aUp), since(t1, aWrite), since(t1, tUp2), since(t1, tBack))
	// BFD needs a few exchanges to come up (down → init → up on both
	// ends, ovs-vtep re-reading bfd_status) before the agent may restore.
	pass = max(pass, longestPass(t, e1))
	if back := 2*detect + 3*pass + time.Second; tBack.Sub(t1) > back {
		t.Fatalf("restored %v after the underlay came back, over %v (2 × detect + 3 ovs-vtep passes of %v + 1 s)", tBack.Sub(t1), back, pass)
	}

	// tor2 dies for good: underlay down, then its ovsdb-server gone. The
	// agent would hold tor2's last MACs and tunnel IP for 120 s for a lost
	// OVSDB session alone; with tor1's BFD down on tor2 the hold ends at
	// once and nothing on tor1 refers to 10.99.0.2 any more (anchor row
	// included).
	e2.NS.Run("ip", "link", "set", "u2", "down")
	w.timeline(t, 2*bound, "down", func(m, f, a bool) bool { return !m && !f && a })
	pid, err := os.ReadFile(filepath.Join(e2.Dir, "ovsdb-server.pid"))
	if err != nil {
		t.Fatal(err)
	}
	t2 := time.Now()
	if out, err := exec.Command("kill", strings.TrimSpace(string(pid))).CombinedOutput(); err != nil {
		t.Fatalf("kill tor2's ovsdb-server: %v: %s", err, out)
	}
	gone := w.until(t, 30*time.Second, "tor1 no longer refers to tor2 at all", func() bool {
		m, f, a := w.pointsAt(mac2)
		return !m && !f && !a
	})
	released := logs.first("peer switch data plane down (BFD)", "tor2", t2)
	lost := logs.first("switch database connection lost", "tor2", t2)
	t.Logf("timeline (tor2's ovsdb-server killed at t2, BFD already down): session lost at t2+%v, hold released at t2+%v, tor1's anchor row gone by t2+%v (hold %v)",
		since(t2, lost), since(t2, released), since(t2, gone), lostSwitchHold)
	if released.IsZero() {
		t.Fatal("no \"peer switch data plane down (BFD)\" log for tor2")
	}
}

func since(t0, t time.Time) string {
	if t.IsZero() {
		return "(not seen)"
	}
	return t.Sub(t0).Round(time.Millisecond).String()
}

// logTimes is a slog handler that keeps each record's time, message and
// "switch" attribute, for timelines taken from the agent's own log.
type logTimes struct {
	inner slog.Handler
	sw    string
	store *logStore
}

type logStore struct {
	mu   sync.Mutex
	recs []logRec
}

type logRec struct {
	at      time.Time
	msg, sw string
}

func (h *logTimes) Enabled(ctx context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *logTimes) Handle(ctx context.Context, r slog.Record) error {
	sw := h.sw
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "switch" {
			sw = a.Value.String()
		}
		return true
	})
	h.store.mu.Lock()
	h.store.recs = append(h.store.recs, logRec{r.Time, r.Message, sw})
	h.store.mu.Unlock()
	if h.inner.Enabled(ctx, r.Level) {
		return h.inner.Handle(ctx, r)
	}
	return nil
}

func (h *logTimes) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.inner = h.inner.WithAttrs(as)
	for _, a := range as {
		if a.Key == "switch" {
			n.sw = a.Value.String()
		}
	}
	return &n
}

func (h *logTimes) WithGroup(g string) slog.Handler {
	n := *h
	n.inner = h.inner.WithGroup(g)
	return &n
}

// first returns the time of the first record at or after from whose
// message starts with prefix, logged for switch sw.
func (h *logTimes) first(prefix, sw string, from time.Time) time.Time {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	for _, r := range h.store.recs {
		if !r.at.Before(from) && r.sw == sw && strings.HasPrefix(r.msg, prefix) {
			return r.at
		}
	}
	return time.Time{}
}

// startAgentWith is startAgent with the given logger.
func startAgentWith(t *testing.T, cfg *config.Config, log *slog.Logger) *running {
	t.Helper()
	a, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := a.Run(ctx); err != nil {
			t.Errorf("agent: %v", err)
		}
		close(done)
	}()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	eventually(t, 20*time.Second, "switches connected", func() error {
		for _, s := range a.sw {
			if !s.client.Connected() {
				return fmt.Errorf("%s not connected", s.name)
			}
		}
		return nil
	})
	return &running{a: a, stop: stop}
}

var passLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d+)\.?Z .*update_remote_macs: using tunnel key`)

// longestPass reads the emulator's log: ovs-vtep logs one
// update_remote_macs line per logical switch and main-loop pass; the
// longest gap between two is its longest pass (sleep included).
func longestPass(t *testing.T, e *vteptest.Emulator) time.Duration {
	b, err := os.ReadFile(filepath.Join(e.Dir, "ovs-vtep.log"))
	if err != nil {
		t.Fatal(err)
	}
	var prev time.Time
	var longest time.Duration
	for _, l := range strings.Split(string(b), "\n") {
		m := passLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ts, err := time.Parse("2006-01-02T15:04:05", m[1])
		if err != nil {
			continue
		}
		ms, _ := strconv.Atoi(m[2])
		ts = ts.Add(time.Duration(ms) * time.Millisecond)
		if !prev.IsZero() {
			longest = max(longest, ts.Sub(prev))
		}
		prev = ts
	}
	return longest
}

func metricValue(t *testing.T, r *running, name, sw string) float64 {
	t.Helper()
	mfs, err := r.a.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "switch" && l.GetValue() == sw {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
