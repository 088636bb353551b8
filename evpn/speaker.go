package evpn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/wake"
)

// Speaker is an EVPN BGP speaker (an embedded GoBGP server) that advertises
// local VTEP state and collects remote state, in project types only.
type Speaker struct {
	cfg  Config
	nbrs []resolvedNeighbor
	log  *slog.Logger
	rts  *rtPolicy

	bgp     *server.BgpServer
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	changed wake.Signal
	kick    wake.Signal

	expMu      sync.Mutex // serializes export reconciliation
	advertised map[advKey]advRoute

	mu        sync.Mutex
	started   bool
	stopped   bool
	startTime time.Time
	local     LocalState
	own       map[netip.Addr]bool
	remote    *remoteTable
	localWins map[l2.MACKey]bool
	mob       *mobility
	dropped   map[string]uint64
	eor       map[netip.Addr]int // End-of-RIB markers received since Start, per neighbor
	synced    bool
	exportErr error
	held      bool                // neighbors not added yet (DeferNeighbors, before the first SetLocal)
	added     map[netip.Addr]bool // neighbors added to GoBGP
	localSet  bool                // SetLocal was called
	// remoteUnread: Changed was notified for received routes and neither
	// Remote nor Stats has been called since.
	remoteUnread bool
}

// New validates cfg (errors name the offending field) and returns a speaker
// that is not yet running.
func New(cfg Config, log *slog.Logger) (*Speaker, error) {
	c := cfg.withDefaults()
	nbrs, err := c.validate()
	if err != nil {
		return nil, fmt.Errorf("evpn config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Speaker{
		cfg: c, nbrs: nbrs, log: log, rts: newRTPolicy(c.ASN, c.RouteTargets),
		changed: wake.New(), kick: wake.New(),
		advertised: map[advKey]advRoute{}, own: map[netip.Addr]bool{}, remote: newRemoteTable(),
		localWins: map[l2.MACKey]bool{}, mob: newMobility(c.MobilityMaxMoves, c.MobilityWindow),
		dropped: map[string]uint64{}, eor: map[netip.Addr]int{}, added: map[netip.Addr]bool{},
	}, nil
}

func secs(d time.Duration) uint64 { return uint64((d + time.Second - 1) / time.Second) }

// Start starts GoBGP, the route watcher and the neighbors.
func (s *Speaker) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("evpn: speaker already started")
	}
	s.started, s.startTime = true, s.cfg.Now()
	s.mu.Unlock()

	s.bgp = server.NewBgpServer(server.LoggerOption(slogAdapter{s.log.With("component", "gobgp")}))
	go s.bgp.Serve()
	g := &api.Global{Asn: s.cfg.ASN, RouterId: s.cfg.RouterID.String(), ListenPort: s.cfg.ListenPort}
	if s.cfg.ListenAddress != "" {
		g.ListenAddresses = []string{s.cfg.ListenAddress}
	}
	if err := s.bgp.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		s.bgp.Stop()
		return fmt.Errorf("starting BGP (as %d, listen port %d): %w", s.cfg.ASN, s.cfg.ListenPort, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	req := &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
		{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true},
		{Type: api.WatchEventRequest_Table_Filter_EOR, Init: true},
	}}}
	if err := s.bgp.WatchEvent(wctx, req, s.onEvent); err != nil {
		s.stopBGP(ctx)
		return fmt.Errorf("watching the BGP table: %w", err)
	}
	if s.cfg.DeferNeighbors {
		s.mu.Lock()
		s.held = true
		s.mu.Unlock()
		s.log.Info("bgp neighbors held until the local routes are known", "neighbors", len(s.nbrs))
	} else if err := s.addNeighbors(ctx); err != nil {
		s.stopBGP(ctx)
		return err
	}
	s.wg.Add(1)
	go s.exportLoop(wctx)
	s.log.Info("evpn speaker started", "asn", s.cfg.ASN, "router_id", s.cfg.RouterID,
		"listen_port", s.cfg.ListenPort, "neighbors", len(s.nbrs))
	return nil
}

// addNeighbors adds the neighbors not added yet (a retry after a partial
// failure skips those that made it).
func (s *Speaker) addNeighbors(ctx context.Context) error {
	for _, n := range s.nbrs {
		s.mu.Lock()
		done := s.added[n.Address]
		s.mu.Unlock()
		if done {
			continue
		}
		if err := s.bgp.AddPeer(ctx, &api.AddPeerRequest{Peer: s.apiPeer(n)}); err != nil {
			return fmt.Errorf("adding neighbor %s (as %d): %w", n.Address, n.ASN, err)
		}
		s.mu.Lock()
		s.added[n.Address] = true
		s.mu.Unlock()
	}
	return nil
}

// releaseNeighbors adds the held neighbors (DeferNeighbors) once the local
// routes are in the table. Caller holds expMu.
func (s *Speaker) releaseNeighbors(ctx context.Context) error {
	s.mu.Lock()
	held := s.held && s.localSet
	s.mu.Unlock()
	if !held {
		return nil
	}
	if err := s.addNeighbors(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.held = false
	s.mu.Unlock()
	s.log.Info("bgp neighbors added after the local routes", "neighbors", len(s.nbrs), "routes", len(s.advertised))
	return nil
}

func (s *Speaker) apiPeer(n resolvedNeighbor) *api.Peer {
	gr := s.cfg.GracefulRestart.Enabled
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: n.ASN, AuthPassword: n.password},
		Timers: &api.Timers{Config: &api.TimersConfig{ConnectRetry: secs(s.cfg.ConnectRetry),
			HoldTime: secs(s.cfg.HoldTime), KeepaliveInterval: secs(s.cfg.KeepaliveInterval),
			IdleHoldTimeAfterReset: secs(s.cfg.ConnectRetry)}},
		AfiSafis: []*api.AfiSafi{{
			Config:            &api.AfiSafiConfig{Family: evpnFamily, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: gr}},
		}},
		Transport: &api.Transport{RemotePort: uint32(n.Port)},
	}
	if n.LocalAddress.IsValid() {
		p.Transport.LocalAddress = n.LocalAddress.String()
	}
	if n.MultihopTTL > 0 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(n.MultihopTTL)}
	}
	if n.RouteReflectorClient {
		p.RouteReflector = &api.RouteReflector{RouteReflectorClient: true, RouteReflectorClusterId: s.cfg.RouterID.String()}
	}
	if gr {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(secs(s.cfg.GracefulRestart.RestartTime)),
			NotificationEnabled: true}
	}
	return p
}

func (s *Speaker) stopBGP(ctx context.Context) {
	if s.cancel != nil {
		s.cancel()
	}
	if s.cfg.GracefulRestart.Enabled {
		s.resetGracefully(ctx)
	}
	if err := s.bgp.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
		s.log.Warn("stopping BGP", "err", err)
	}
	s.bgp.Stop()
}

// Stop closes all sessions and stops GoBGP. With graceful restart enabled
// the sessions are first closed with a Cease/Administrative Reset, which
// peers that negotiated the N-bit (RFC 8538) treat as a restart: they keep
// our routes for the restart time instead of flushing them. (GoBGP's own
// shutdown sends Peer De-configured, a hard reset.)
func (s *Speaker) Stop(ctx context.Context) error {
	s.mu.Lock()
	started, stopped := s.started, s.stopped
	s.stopped = true
	s.mu.Unlock()
	if !started || stopped || s.bgp == nil {
		return nil
	}
	s.stopBGP(ctx)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping evpn speaker: %w", ctx.Err())
	}
}

// SetLocal sets the complete set of local routes. The speaker advertises
// what is new or changed and withdraws what is gone; identical repeats do
// nothing. Invalid entries are skipped and counted (Stats.Dropped).
func (s *Speaker) SetLocal(ctx context.Context, st LocalState) error {
	own := make(map[netip.Addr]bool)
	for _, v := range st.VTEPs {
		own[v] = true
	}
	for _, m := range st.MACs {
		own[m.VTEP] = true
	}
	for _, im := range st.IMET {
		own[im.VTEP] = true
	}
	local := LocalState{IMET: slices.Clone(st.IMET), MACs: slices.Clone(st.MACs), VTEPs: slices.Clone(st.VTEPs)}
	s.expMu.Lock()
	defer s.expMu.Unlock()
	s.mu.Lock()
	s.local, s.own, s.localSet = local, own, true
	s.mu.Unlock()
	if err := s.reconcileExport(ctx); err != nil {
		return err // the export loop retries, then releases held neighbors
	}
	return s.releaseNeighbors(ctx)
}

// reconcileExport plans the advertisements and applies the difference to
// GoBGP: additions (and replacements) first, withdrawals after. Caller holds
// expMu.
func (s *Speaker) reconcileExport(ctx context.Context) error {
	s.mu.Lock()
	if !s.started || s.stopped {
		s.mu.Unlock()
		return errors.New("evpn: speaker not running")
	}
	res := wanted(s.local, s.rts, s.mob, func(k l2.MACKey) *remoteBest {
		if m, ok := s.remote.best(k, s.own); ok {
			return &remoteBest{VTEP: m.VTEP, Seq: m.Seq}
		}
		return nil
	}, s.cfg.Now())
	winsChanged := !maps.Equal(s.localWins, res.localWins)
	s.localWins = res.localWins
	s.dropped[DropLocalInvalid] = uint64(res.invalid)
	s.mu.Unlock()
	if winsChanged {
		s.notify()
	}

	add, del := diffRoutes(s.advertised, res.routes)
	var errs []error
	// Additions and replacements first, withdrawals after (make before
	// break). Each phase runs several calls in flight: GoBGP handles them one
	// by one on its loop, and the pipelining hides the round trips.
	for _, phase := range []struct {
		routes   []advRoute
		withdraw bool
	}{{add, false}, {del, true}} {
		done, perrs := s.applyRoutes(ctx, phase.routes, phase.withdraw)
		for _, r := range done {
			if phase.withdraw {
				delete(s.advertised, r.advKey)
			} else {
				s.advertised[r.advKey] = r
			}
		}
		errs = append(errs, perrs...)
	}
	err := errors.Join(errs...)
	s.mu.Lock()
	s.exportErr = err
	s.mu.Unlock()
	if err != nil {
		s.kickExport() // retried by the export loop after a pause
	}
	return err
}

func (r advRoute) describe() string {
	if r.Kind == kindIMET {
		return fmt.Sprintf("type-3 vni %d vtep %s", r.VNI, r.VTEP)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "type-2 vni %d mac %s", r.VNI, r.MAC)
	if r.IP.IsValid() {
		fmt.Fprintf(&b, " ip %s", r.IP)
	}
	fmt.Fprintf(&b, " vtep %s seq %d", r.VTEP, r.Seq)
	return b.String()
}

func (s *Speaker) kickExport() { s.kick.Notify() }

func (s *Speaker) notify() { s.changed.Notify() }

// exportLoop re-plans when remote routes touch local MACs (MAC mobility)
// and retries failed exports.
func (s *Speaker) exportLoop(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		s.expMu.Lock()
		err := s.reconcileExport(ctx)
		if err == nil {
			err = s.releaseNeighbors(ctx)
		}
		s.expMu.Unlock()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("evpn export incomplete, retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// resetGracefully closes established sessions with an Administrative Reset
// and waits (at most 3 s) until none is established, so that the hard reset
// sent by StopBgp reaches no peer.
func (s *Speaker) resetGracefully(ctx context.Context) {
	for _, n := range s.nbrs {
		if err := s.bgp.ResetPeer(ctx, &api.ResetPeerRequest{Address: n.Address.String(), Communication: "torstitch restart"}); err != nil {
			s.log.Warn("graceful reset of BGP session", "neighbor", n.Address, "err", err)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		up := false
		err := s.bgp.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
			if p.GetState().GetSessionState() == api.PeerState_ESTABLISHED {
				up = true
			}
		})
		if err != nil || !up {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exportWorkers is the number of GoBGP calls kept in flight by SetLocal.
const exportWorkers = 8

// applyRoutes advertises (or withdraws) routes; it returns those that
// succeeded and the errors of the others.
func (s *Speaker) applyRoutes(ctx context.Context, routes []advRoute, withdraw bool) ([]advRoute, []error) {
	if len(routes) == 0 {
		return nil, nil
	}
	type result struct {
		r   advRoute
		err error
	}
	in := make(chan advRoute)
	out := make(chan result)
	var wg sync.WaitGroup
	for range min(exportWorkers, len(routes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range in {
				var err error
				if withdraw {
					w := r
					w.Seq = 0 // GoBGP rejects a withdrawal whose sequence is below a remote one
					err = s.bgp.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: evpnFamily, Path: toAPIPath(w, true)})
					if err != nil {
						err = fmt.Errorf("withdrawing %s: %w", r.describe(), err)
					}
				} else {
					_, err = s.bgp.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: toAPIPath(r, false)})
					if err != nil {
						err = fmt.Errorf("advertising %s: %w", r.describe(), err)
					}
				}
				out <- result{r, err}
			}
		}()
	}
	go func() {
		defer close(in)
		for _, r := range routes {
			if ctx.Err() != nil {
				return
			}
			in <- r
		}
	}()
	go func() { wg.Wait(); close(out) }()
	var done []advRoute
	var errs []error
	for res := range out {
		if res.err != nil {
			errs = append(errs, res.err)
			continue
		}
		done = append(done, res.r)
	}
	if len(done)+len(errs) < len(routes) && ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return done, errs
}
