package vdsvlan

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/torstitch/torstitch/vdsvlan/desired"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/wake"
)

// Connection states reported in Status.State.
const (
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateDisconnected = "disconnected" // lost or unreachable; retrying
	StateError        = "error"        // login or certificate refused; retrying
)

// pollWait is the longest single WaitForUpdatesEx wait.
const pollWait = 10 * time.Second

// Status is the watcher's connection state.
type Status struct {
	State      string        `json:"state"`
	Err        string        `json:"error,omitempty"`
	LastSync   time.Time     `json:"last_sync,omitzero"` // last complete inventory read
	Generation uint64        `json:"generation"`         // bumps whenever the desired content changes
	Stats      desired.Stats `json:"stats"`
	// ApplyTime is how long the last watched update took from its arrival
	// to the new snapshot (decode, recompute, publish).
	ApplyTime time.Duration `json:"apply_time_ns"`
}

// Snapshot is the complete desired state learned from vCenter. While vCenter
// is unreachable the last good bindings stay in place (fail static); only
// Status changes.
type Snapshot struct {
	Bindings  []l2.Binding `json:"bindings"`  // complete desired set for the pair, sorted
	MACs      []VMMAC      `json:"macs"`      // VM MACs in stitched VNIs, sorted by VNI and MAC
	Conflicts []string     `json:"conflicts"` // reported, not applied
	Status    Status       `json:"status"`
	// Valid is false until the first complete inventory: an empty snapshot
	// before that does not mean "no bindings".
	Valid bool `json:"valid"`
}

// Watcher keeps a desired-binding snapshot in step with vCenter.
type Watcher struct {
	cfg     Config
	log     *slog.Logger
	planner *desired.Planner
	now     func() time.Time

	mu      sync.Mutex
	snap    Snapshot
	changed wake.Signal

	// Owned by the Run goroutine.
	neighbours map[string][]desired.Neighbour // host Ref → LLDP/CDP, kept when a query fails
	tags       map[string][]string            // port group Ref → tag names in the category
}

// New validates cfg and returns a watcher; Run does the work.
func New(cfg Config, log *slog.Logger) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pl, err := desired.NewPlanner(cfg.params())
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{
		cfg: cfg, log: log.With("component", "vdsvlan"), planner: pl, now: time.Now,
		snap:       Snapshot{Status: Status{State: StateConnecting}},
		changed:    wake.New(),
		neighbours: map[string][]desired.Neighbour{},
		tags:       map[string][]string{},
	}, nil
}

// Snapshot returns the current snapshot. The slices are shared and must not
// be modified.
func (w *Watcher) Snapshot() Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap
}

// Changed is signalled (coalesced) whenever the snapshot changes, including
// status-only changes. Read Snapshot after a receive.
func (w *Watcher) Changed() <-chan struct{} { return w.changed }

func (w *Watcher) notify() { w.changed.Notify() }

// Run connects, watches, resyncs and reconnects with backoff until ctx is
// done; then it returns nil.
func (w *Watcher) Run(ctx context.Context) error {
	bo := newBackoff()
	var lastErr error // kept in the status while reconnecting
	for ctx.Err() == nil {
		w.setState(StateConnecting, lastErr)
		synced, err := w.session(ctx)
		lastErr = err
		if ctx.Err() != nil {
			break
		}
		w.setState(failedState(err), err)
		if synced {
			bo.reset()
		}
		if isNotAuthenticated(err) {
			w.log.Info("vCenter session expired or was terminated; logging in again")
			bo.reset()
		}
		wait := bo.next()
		w.log.Warn("vCenter session ended; keeping last bindings", "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	w.setState(StateDisconnected, errors.New("stopped"))
	return nil
}

// session runs one login: repeated full syncs, each followed by watching
// until the resync interval is up. It reports whether a sync completed.
func (w *Watcher) session(ctx context.Context) (bool, error) {
	c, err := connect(ctx, w.cfg, w.log)
	if err != nil {
		return false, err
	}
	defer c.close(ctx)
	w.log.Info("connected to vCenter", "url", w.cfg.URL)
	synced := false
	for {
		start := w.now()
		wt, err := openWatch(ctx, c, w.cfg.Datacenter)
		if err != nil {
			return synced, classify(err)
		}
		if err := w.fullSync(ctx, c, wt); err != nil {
			wt.close(ctx)
			return synced, classify(err)
		}
		synced = true
		w.log.Debug("vCenter inventory synced", "objects", len(wt.objs), "took", w.now().Sub(start))
		deadline := start.Add(w.cfg.resync())
		for {
			left := deadline.Sub(w.now())
			if left < time.Second {
				break
			}
			r, err := wt.poll(ctx, min(left, pollWait))
			if err != nil {
				wt.close(ctx)
				return synced, classify(err)
			}
			if len(r.newHosts) > 0 {
				w.queryNeighbours(ctx, c, wt, r.newHosts)
			}
			if r.changed {
				w.publish(wt.objs, false, r.arrived)
			}
		}
		wt.close(ctx)
	}
}

// fullSync reads the whole inventory, every host's neighbours and the tags,
// and publishes a complete snapshot.
func (w *Watcher) fullSync(ctx context.Context, c *conn, wt *watch) error {
	t0 := time.Now()
	if err := wt.initial(ctx); err != nil {
		return err
	}
	t1 := time.Now()
	w.queryNeighbours(ctx, c, wt, nil)
	t2 := time.Now()
	if c.rest != nil {
		tags, err := readTags(ctx, c, w.cfg.VNIPolicy.Category)
		if err != nil {
			return err
		}
		w.tags = tags
	}
	t3 := time.Now()
	w.publish(wt.objs, true, time.Time{})
	w.log.Debug("full sync", "inventory", t1.Sub(t0), "neighbours", t2.Sub(t1), "tags", t3.Sub(t2), "publish", time.Since(t3))
	return nil
}

// publish recomputes the desired set from the cached inventory.
// arrived (if set) is when the update that caused it arrived.
func (w *Watcher) publish(objs objects, full bool, arrived time.Time) {
	t0 := time.Now()
	inv := objs.inventory(w.neighbours, w.tags)
	t1 := time.Now()
	// Only this goroutine writes Bindings, so reading them unlocked is safe;
	// computing outside the lock keeps Snapshot() readers unblocked.
	res := w.planner.Compute(inv, w.Snapshot().Bindings)
	t2 := time.Now()
	if !arrived.IsZero() {
		w.log.Debug("watched update applied", "since_arrival", t0.Sub(arrived), "decode", t1.Sub(t0), "compute", t2.Sub(t1))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.snap
	changedContent := !s.Valid || !slices.EqualFunc(res.Bindings, s.Bindings, equalBinding) ||
		!slices.Equal(res.MACs, s.MACs) || !slices.Equal(res.Conflicts, s.Conflicts)
	if changedContent {
		s.Bindings, s.MACs, s.Conflicts = res.Bindings, res.MACs, res.Conflicts
		s.Status.Generation++
	}
	stateChanged := s.Status.State != StateConnected || s.Status.Stats != res.Stats
	s.Status.State, s.Status.Err, s.Status.Stats = StateConnected, "", res.Stats
	if full {
		s.Status.LastSync = w.now()
	}
	if !arrived.IsZero() && changedContent {
		s.Status.ApplyTime = w.now().Sub(arrived)
	}
	s.Valid = true
	w.snap = s
	if changedContent || stateChanged {
		if changedContent {
			w.log.Info("desired bindings changed", "generation", s.Status.Generation,
				"bindings", len(s.Bindings), "macs", len(s.MACs), "conflicts", len(s.Conflicts))
		}
		w.notify()
	}
}

func equalBinding(a, b l2.Binding) bool {
	return a.VLAN == b.VLAN && a.VNI == b.VNI && slices.Equal(a.Ports, b.Ports)
}

func (w *Watcher) setState(state string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if w.snap.Status.State == state && w.snap.Status.Err == msg {
		return
	}
	w.snap.Status.State, w.snap.Status.Err = state, msg
	w.notify()
}
