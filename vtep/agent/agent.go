// Package agent is toragent's core: it gathers desired state from the
// configuration, torctl (the store), vCenter and EVPN, reconciles it into
// both switches of the pair, and advertises what the switches learn.
// Sources and sinks never import each other; only this package sees them all.
//
// Reconciliation is level-triggered: any event just wakes the loop, which
// reads every source and writes the difference. Make before break: nothing
// is deleted until the BGP peers have sent End-of-RIB (or their restart timer
// ran out) and vCenter has delivered a first inventory; a switch is only
// planned against after its initial monitor reply. Stopping the agent leaves
// the switches as they are.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/torstitch/torstitch/evpn"
	"github.com/torstitch/torstitch/vdsvlan"
	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/agent/store"
	"github.com/torstitch/torstitch/vtep/client"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/wake"
)

// minGap spaces reconcile passes during bursts of events.
const minGap = 5 * time.Millisecond

type switchState struct {
	name   string
	client *client.Client
	kick   wake.Signal // wakes the switch's writer

	bfd config.BFD // switches[].bfd

	mu            sync.Mutex
	next          *switchJob // latest desired state not yet taken by the writer
	busy          bool       // the writer is applying a job
	lastReconcile time.Time
	lastErr       string
	conflicts     []string // desired state the switch's last plan held back (plan.Conflict)
	replication   string
	remoteDesired int
	bfdShown      []string // remote VTEPs BFD reports down here, for the API
}

// lostSwitchHold is how long the agent keeps a switch's last local MACs and
// tunnel IP after losing its OVSDB session. A lost management session is
// not a dead data plane (an ovsdb-server restart, a management network
// blip): withdrawing the switch's MACs and flood entries would cut traffic
// that still flows, and churn the other switch and the fabric. A MAC that
// really moves (a team failing over to the other switch) is advertised from
// the switch that learned it last anyway (PreferNewest). The hold matches
// the default graceful-restart time that BGP peers give the agent.
const lostSwitchHold = 120 * time.Second

// switchJob is one pass's desired state for one switch. done is closed when
// the writer has applied it (err set) or a newer job replaced it.
type switchJob struct {
	desired     *plan.Desired
	opt         plan.Options
	replication string
	done        chan struct{}
	err         error
}

// switchPassWait bounds how long a reconcile pass waits for the switch
// writers. A switch that hangs (dead but not yet detected: up to the echo
// probe's timeout) must not hold back the other switch or the BGP
// advertisements of the next pass; its writer keeps going and takes the
// newest desired state when it is free again.
const switchPassWait = 500 * time.Millisecond

// submit hands the writer the newest desired state, replacing one it has
// not started yet. It reports whether the writer was idle: a pass waits
// only for idle writers.
func (s *switchState) submit(j *switchJob) (idle bool) {
	s.mu.Lock()
	if s.next != nil {
		close(s.next.done) // superseded
	}
	s.next, idle = j, !s.busy
	s.mu.Unlock()
	s.kick.Notify()
	return idle
}

// Agent runs one switch pair.
type Agent struct {
	cfg     *config.Config
	log     *slog.Logger
	store   *store.Store
	sw      []*switchState
	speaker *evpn.Speaker
	vc      *vdsvlan.Watcher
	pub     *publishing // published networks; nil without vcenter.publish_switch
	met     *metrics
	// listener accepts inbound switches (agent.ovsdb_listen); nil without.
	listener *client.Listener

	wake wake.Signal

	core     *core            // the pure core's state between passes (reconcile loop only)
	now      func() time.Time // the clock (time.Now; tests may set another)
	runStart time.Time        // reconcile loop only
	// lastCompute is how long the last pass worked before waiting for the
	// switch writers (reconcile loop only).
	lastCompute time.Duration

	mu        sync.Mutex
	started   uint64 // reconcile passes started
	gen       uint64 // reconcile passes completed
	genCond   *sync.Cond
	conflicts []string
	keepStale bool
}

// New builds an agent from a validated configuration. It opens the store and
// creates (but does not start) the switch clients, the speaker and the
// vCenter watcher, so that configuration errors surface before anything runs.
func New(cfg *config.Config, log *slog.Logger) (*Agent, error) {
	a, err := build(cfg, log)
	if err != nil {
		return nil, err
	}
	if a.store, err = store.Open(cfg.Agent.StateDir); err != nil {
		return nil, err
	}
	owners, err := store.LoadOwners(cfg.Agent.StateDir)
	if err != nil {
		// A hint, not state: without it a restart may briefly advertise a
		// MAC that both switches report from the wrong one.
		a.log.Warn("ignoring saved MAC owners", "err", err)
	}
	names := make([]string, len(a.sw))
	for i, s := range a.sw {
		names[i] = s.name
	}
	cc := coreConfig{Anycast: cfg.Agent.Mode == config.Anycast, Replication: cfg.EVPN.Replication, ServiceNodes: a.serviceNodes()}
	if cfg.BGP != nil {
		cc.StartupWait = time.Duration(cfg.BGP.StartupWait)
	}
	a.core = newCore(cc, newMACOwnership(lostSwitchHold, names, owners))
	if err := a.loadPublished(); err != nil {
		return nil, err
	}
	return a, nil
}

// Check does everything New does that can fail on bad configuration
// (endpoints, TLS files, BGP password files, vCenter settings) without
// touching the state directory or the network.
func Check(cfg *config.Config) error {
	_, err := build(cfg, nil)
	return err
}

func build(cfg *config.Config, log *slog.Logger) (*Agent, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var err error
	a := &Agent{cfg: cfg, log: log, met: newMetrics(), wake: wake.New(), keepStale: true, now: time.Now}
	a.met.reg.MustRegister(speakerCollector{a})
	a.genCond = sync.NewCond(&a.mu)
	var inbound []*client.Client
	for _, s := range cfg.Switches {
		c, err := client.New(client.Config{Name: s.Name, Endpoint: s.OVSDB, TLS: s.TLS, Probe: time.Duration(s.ProbeInterval)}, log)
		if err != nil {
			return nil, fmt.Errorf("switch %s: %w", s.Name, err)
		}
		if s.OVSDB == client.Inbound {
			inbound = append(inbound, c)
		}
		a.sw = append(a.sw, &switchState{name: s.Name, client: c, kick: wake.New(), bfd: s.BFD})
	}
	if len(inbound) > 0 {
		lc := client.ListenerConfig{Address: cfg.Agent.OVSDBListen,
			OnRefused: func(reason string) { a.met.inboundRefused.WithLabelValues(reason).Inc() }}
		if t := cfg.Agent.OVSDBTLS; t != nil {
			lc.TLS = client.TLSFiles{CA: t.CA, Cert: t.Cert, Key: t.Key}
		}
		if a.listener, err = client.NewListener(lc, inbound, log); err != nil {
			return nil, fmt.Errorf("agent.ovsdb_listen: %w", err)
		}
	}
	if cfg.BGP != nil {
		sc, err := cfg.Speaker()
		if err != nil {
			return nil, err
		}
		if a.speaker, err = evpn.New(sc, log); err != nil {
			return nil, fmt.Errorf("bgp: %w", err)
		}
	}
	if cfg.VCenter != nil {
		vcfg := *cfg.VCenter
		if a.vc, err = vdsvlan.New(vcfg, log); err != nil {
			return nil, err
		}
		if err := a.buildPublisher(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Metrics returns the agent's Prometheus registry.
func (a *Agent) Metrics() *prometheus.Registry { return a.met.reg }

// Kick wakes the reconcile loop.
func (a *Agent) Kick() {
	a.wake.Notify()
}

func (a *Agent) forward(ctx context.Context, ch <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			a.Kick()
		}
	}
}

// Run runs the agent until ctx ends, then stops the speaker gracefully and
// leaves the switches forwarding.
func (a *Agent) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	if a.listener != nil {
		ln, err := a.listener.Listen(runCtx)
		if err != nil {
			return err
		}
		start(func() {
			if err := a.listener.Serve(runCtx, ln); err != nil && runCtx.Err() == nil {
				a.log.Error("inbound OVSDB listener stopped", "err", err)
			}
		})
	}
	for _, s := range a.sw {
		s := s
		start(func() { _ = s.client.Run(runCtx) })
		start(func() { a.forward(runCtx, s.client.Changed()) })
		start(func() { a.switchWriter(runCtx, s) })
	}
	if a.speaker != nil {
		if err := a.speaker.Start(runCtx); err != nil {
			return fmt.Errorf("starting BGP speaker: %w", err)
		}
		start(func() { a.forward(runCtx, a.speaker.Changed()) })
	}
	if a.vc != nil {
		start(func() {
			if err := a.vc.Run(runCtx); err != nil && runCtx.Err() == nil {
				a.log.Error("vCenter discovery stopped", "err", err)
			}
		})
		start(func() { a.forward(runCtx, a.vc.Changed()) })
		a.startPublisher(runCtx, start)
	}
	a.runStart = time.Now()
	if a.speaker != nil {
		time.AfterFunc(time.Duration(a.cfg.BGP.StartupWait), a.Kick)
	}
	a.log.Info("toragent running", "agent", a.cfg.Agent.Name, "switches", a.cfg.SwitchNames(), "mode", a.cfg.Agent.Mode)
	resync := time.NewTicker(time.Duration(a.cfg.Agent.Resync))
	defer resync.Stop()
	a.loop(ctx, runCtx, resync.C, a.reconcile)
	return nil
}

// loop runs pass at once and then whenever the agent is woken or resync
// ticks, until ctx ends; then it shuts down. pass gets runCtx.
func (a *Agent) loop(ctx, runCtx context.Context, resync <-chan time.Time, pass func(context.Context)) {
	a.Kick()
	for {
		select {
		case <-ctx.Done():
			a.shutdown()
			return
		case <-a.wake:
		case <-resync:
		}
		pass(runCtx)
		// Let a burst of events coalesce into the next pass: wait at least
		// minGap, and as long as the pass computed, so that during a burst
		// (thousands of routes arriving) the loop takes at most half a
		// core from the speaker receiving them.
		select {
		case <-ctx.Done():
		case <-time.After(max(minGap, a.lastCompute)):
		}
	}
}

func (a *Agent) shutdown() {
	a.log.Info("stopping: switches keep their state")
	if a.speaker != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.speaker.Stop(sctx); err != nil {
			a.log.Warn("stopping BGP speaker", "err", err)
		}
	}
	a.mu.Lock()
	a.gen++
	a.genCond.Broadcast()
	a.mu.Unlock()
}

// staticBindings returns config and torctl bindings, in precedence order.
func (a *Agent) staticBindings() []l2.Binding {
	out := a.cfg.StaticBindings()
	for _, b := range a.store.Bindings() {
		b.Source = l2.SourceTorctl
		out = append(out, b)
	}
	return out
}

func (a *Agent) allBindings() (bs []l2.Binding, vcValid bool) {
	bs = a.staticBindings()
	vcValid = true
	if a.vc != nil {
		snap := a.vc.Snapshot()
		vcValid = snap.Valid
		for _, b := range snap.Bindings {
			b.Source = l2.SourceVCenter
			bs = append(bs, b)
		}
	}
	return bs, vcValid
}

func (a *Agent) serviceNodes() []netip.Addr {
	var out []netip.Addr
	for _, s := range a.cfg.EVPN.ServiceNodes {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip)
		}
	}
	return out
}

// reconcile is one level-triggered pass over every source and switch:
// gather, step (core.go), apply.
func (a *Agent) reconcile(ctx context.Context) { a.pass(ctx, nil, nil) }

// pass is reconcile; editIn and editFx, when not nil, change what was
// gathered before step and what step decided before apply (benchmarks that
// feed remote state without BGP).
func (a *Agent) pass(ctx context.Context, editIn func(*passInput), editFx func(*passEffects)) {
	start := time.Now()
	a.mu.Lock()
	a.started++
	a.mu.Unlock()
	in := a.gather()
	if editIn != nil {
		editIn(&in)
	}
	fx := a.core.step(in)
	if editFx != nil {
		editFx(&fx)
	}
	a.apply(ctx, start, in, fx)
}

// gather reads every source for a pass.
func (a *Agent) gather() passInput {
	in := passInput{Now: a.now(), SinceStart: time.Since(a.runStart), Speaker: a.speaker != nil}
	in.Bindings, in.VCValid = a.allBindings()
	for _, s := range a.sw {
		si := switchInput{Name: s.name, Alive: s.client.Alive(), BFD: s.bfd}
		if o, err := s.client.ObservedWithoutRemote(); err == nil {
			si.Observed = o
		}
		in.Switches = append(in.Switches, si)
	}
	if a.speaker != nil {
		in.Remote = a.speaker.Remote()
		in.Synced = a.speaker.Synced()
	}
	return in
}

// apply carries out what step decided: the log lines, the owners saved,
// the switch writers' jobs, the speaker's local state; then it waits a
// little for the writers and updates the API's and the metrics' picture.
func (a *Agent) apply(ctx context.Context, start time.Time, in passInput, fx passEffects) {
	for _, e := range fx.Events {
		a.log.Log(ctx, e.Level, e.Msg, e.Attrs...)
	}
	if fx.Owners != nil {
		a.saveOwners(fx.Owners)
	}
	for _, s := range a.sw {
		if down, ok := fx.BFDDown[s.name]; ok {
			shown := make([]string, len(down))
			for i, ip := range down {
				shown[i] = ip.String()
			}
			s.mu.Lock()
			s.bfdShown = shown
			s.mu.Unlock()
			a.met.bfdDown.WithLabelValues(s.name).Set(float64(len(down)))
		}
	}
	var failed bool
	var waits []*switchJob
	for _, spec := range fx.Jobs {
		s := a.switchNamed(spec.Switch)
		j := &switchJob{desired: spec.Desired, opt: spec.Opt, replication: spec.Replication, done: make(chan struct{})}
		if s.submit(j) {
			waits = append(waits, j)
		}
	}
	if fx.Advertise != nil {
		if err := a.speaker.SetLocal(ctx, *fx.Advertise); err != nil && ctx.Err() == nil {
			failed = true
			a.log.Error("advertising local state", "err", err)
		}
	}
	a.lastCompute = time.Since(start)
	deadline := time.NewTimer(switchPassWait)
	defer deadline.Stop()
wait:
	for _, j := range waits {
		select {
		case <-j.done:
			failed = failed || j.err != nil
		case <-deadline.C:
			break wait // the writer goes on; the next pass does not wait for it
		case <-ctx.Done():
			break wait
		}
	}

	a.mu.Lock()
	a.conflicts, a.keepStale = fx.Out.Conflicts, fx.KeepStale
	a.gen++
	a.genCond.Broadcast()
	a.mu.Unlock()

	result := "ok"
	if failed {
		result = "error"
	}
	a.met.reconciles.WithLabelValues(result).Inc()
	a.met.reconcileSecs.Observe(time.Since(start).Seconds())
	obs := map[string]*plan.Observed{}
	for _, s := range in.Switches {
		if s.Observed != nil {
			obs[s.Name] = s.Observed
		}
	}
	a.updateGauges(fx.Views, obs, fx.Out, in.Bindings)
}

// saveOwners persists which switch each contested MAC is advertised from.
func (a *Agent) saveOwners(w map[l2.MACKey]string) {
	out := make([]store.Owner, 0, len(w))
	for k, sw := range w {
		out = append(out, store.Owner{VNI: k.VNI, MAC: k.MAC, Switch: sw})
	}
	if err := store.SaveOwners(a.cfg.Agent.StateDir, out); err != nil {
		a.log.Warn("saving MAC owners", "err", err)
		return
	}
	a.core.own.ownersSaved(w)
}

// switchNamed returns the switch of that name (one of a.sw).
func (a *Agent) switchNamed(name string) *switchState {
	for _, s := range a.sw {
		if s.name == name {
			return s
		}
	}
	panic("agent: no switch " + name) // step plans only the switches gather read
}

// waitPass blocks until a reconcile pass that started after the call has
// completed, or ctx ends.
func (a *Agent) waitPass(ctx context.Context) error {
	a.mu.Lock()
	target := a.started + 1 // the first pass to start after this call
	a.mu.Unlock()
	a.Kick()
	done := make(chan struct{})
	go func() {
		a.mu.Lock()
		for a.gen < target && ctx.Err() == nil {
			a.genCond.Wait()
		}
		a.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		a.mu.Lock()
		a.genCond.Broadcast()
		a.mu.Unlock()
		return ctx.Err()
	}
}

// switchWriter applies the newest desired state to one switch, one job at
// a time, so that a slow or hanging switch delays only itself.
func (a *Agent) switchWriter(ctx context.Context, s *switchState) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		s.mu.Lock()
		j := s.next
		s.next = nil
		s.busy = j != nil
		s.mu.Unlock()
		if j == nil {
			continue
		}
		res, err := s.client.Reconcile(ctx, j.desired, j.opt)
		a.met.transactions.WithLabelValues(s.name).Add(float64(res.Transactions))
		a.met.rows.WithLabelValues(s.name).Add(float64(res.Rows))
		planned := err == nil || res.Conflicts != nil // a plan ran: its conflicts are current
		if errors.Is(err, client.ErrNotConnected) {
			err = nil
		}
		if planned {
			a.noteConflicts(s, res.Conflicts)
		}
		s.mu.Lock()
		s.busy = false
		s.lastReconcile = time.Now()
		s.replication = j.replication
		s.remoteDesired = len(j.desired.RemoteMACs)
		s.lastErr = ""
		if err != nil {
			s.lastErr = err.Error()
		}
		s.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			a.log.Error("reconcile failed", "switch", s.name, "err", err)
		} else if res.Transactions > 0 {
			a.log.Info("switch updated", "switch", s.name, "changes", res.Changes, "transactions", res.Transactions,
				"rows", res.Rows, "took", res.Duration.Round(time.Microsecond), "keep_stale", j.opt.KeepStale)
		}
		j.err = err
		close(j.done)
	}
}

// noteConflicts records what the switch's last plan held back, logs each
// conflict when it appears and when it clears, and sets the metric.
func (a *Agent) noteConflicts(s *switchState, cs []plan.Conflict) {
	now := make([]string, len(cs))
	for i, c := range cs {
		now[i] = c.String()
	}
	s.mu.Lock()
	before := s.conflicts
	s.conflicts = now
	s.mu.Unlock()
	for _, c := range now {
		if !slices.Contains(before, c) {
			a.log.Warn("switch conflict: held back, the rest of the switch converges", "switch", s.name, "conflict", c)
		}
	}
	for _, c := range before {
		if !slices.Contains(now, c) {
			a.log.Info("switch conflict cleared", "switch", s.name, "conflict", c)
		}
	}
	a.met.switchConflicts.WithLabelValues(s.name).Set(float64(len(now)))
}
