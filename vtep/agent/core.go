package agent

import (
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/torstitch/torstitch/evpn"
	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
)

// The agent's reconcile pass is gather → step → apply. gather (agent.go)
// reads every source: the switches' caches, the bindings, the speaker's
// routes. step (here) decides, with no I/O and no clock of its own: which
// switch each MAC is advertised from, the desired state of each switch,
// what to advertise, what to log. apply (agent.go) carries the effects out:
// it hands the jobs to the switch writers, the local state to the speaker,
// the owners to the state file, the events to the log.

// passInput is what gather read for one pass.
type passInput struct {
	Now        time.Time
	SinceStart time.Duration // since the agent's sources started (the startup gate)
	Switches   []switchInput // in configuration order
	Bindings   []l2.Binding  // config, torctl and vCenter, in that order of precedence (Source set)
	VCValid    bool          // vCenter's inventory is complete (or there is no vCenter)
	Speaker    bool          // a BGP speaker runs
	Remote     evpn.RemoteState
	Synced     bool // the speaker's picture is complete (End-of-RIB from every peer)
}

// switchInput is one switch as gathered.
type switchInput struct {
	Name     string
	Observed *plan.Observed // without Ucast_Macs_Remote; nil when not connected
	Alive    time.Time      // its last proof of life (client.Client.Alive)
	BFD      config.BFD
}

// coreConfig is what step needs of the configuration.
type coreConfig struct {
	Anycast      bool
	Replication  string
	ServiceNodes []netip.Addr
	StartupWait  time.Duration
}

// core is what step keeps from one pass to the next (reconcile loop only).
type core struct {
	cfg       coreConfig
	own       *macOwnership
	bfd       map[string]*bfdMemory // per switch with BFD enabled
	adv       advertiseGate
	conflicts []string // binding conflicts of the last pass
	keepStale bool
}

// bfdMemory is one switch's BFD picture: the tunnels seen up, the remote
// VTEPs reported down now.
type bfdMemory struct {
	memo map[string]TunnelMemo
	down []netip.Addr
}

func newCore(cfg coreConfig, own *macOwnership) *core {
	return &core{cfg: cfg, own: own, bfd: map[string]*bfdMemory{}, keepStale: true}
}

// passEffects is what one pass decided: the work for apply.
type passEffects struct {
	Views     []SwitchView
	Out       Outputs
	Jobs      []switchJobSpec         // one per connected switch
	Advertise *evpn.LocalState        // nil: the startup gate is closed
	Owners    map[l2.MACKey]string    // contested MACs' owners to save; nil: unchanged
	BFDDown   map[string][]netip.Addr // per switch with BFD enabled (for the API and metrics)
	KeepStale bool                    // deletes held back: the picture is incomplete
	Events    []event                 // what to log, in order
}

// switchJobSpec is one switch's desired state for the pass.
type switchJobSpec struct {
	Switch      string
	Desired     *plan.Desired
	Opt         plan.Options
	Replication string
}

// event is one log line step asks for.
type event struct {
	Level slog.Level
	Msg   string
	Attrs []any
}

func (fx *passEffects) log(level slog.Level, msg string, attrs ...any) {
	fx.Events = append(fx.Events, event{level, msg, attrs})
}

// step runs one pass over what gather read.
func (c *core) step(in passInput) passEffects {
	var fx passEffects
	views := make([]SwitchView, 0, len(in.Switches))
	obs := map[string]*plan.Observed{}
	alive := make(map[string]time.Time, len(in.Switches))
	for _, s := range in.Switches {
		alive[s.Name] = s.Alive
		if s.Observed == nil {
			v := SwitchView{Name: s.Name}
			if held, ok := c.own.away(in.Now, s.Name); ok {
				v = held
			}
			views = append(views, v)
			continue
		}
		obs[s.Name] = s.Observed
		v := viewOf(s.Name, s.Observed)
		c.own.connected(v)
		views = append(views, v)
	}
	c.trackBFD(&fx, in.Switches, views, obs)
	if !c.cfg.Anycast {
		st := c.own.resolve(in.Now, views, alive)
		if len(st.Dropped) > 0 {
			fx.log(slog.LevelDebug, "MACs local on both switches: advertising the newest", "stale", len(st.Dropped))
		}
		if st.Forgot > 0 {
			fx.log(slog.LevelInfo, "lost switch's held MACs learned elsewhere since: no longer held", "macs", st.Forgot)
		}
		for i, mv := range st.Moves {
			if i == maxMoveLines {
				fx.log(slog.LevelInfo, "MACs moved between switches", "more", len(st.Moves)-maxMoveLines)
				break
			}
			fx.log(slog.LevelInfo, "MAC moved between switches", "vni", mv.Key.VNI, "mac", mv.Key.MAC, "from", mv.From, "to", mv.To)
		}
		fx.Owners = st.Owners
	}
	fx.Views = views

	cin := Inputs{
		Anycast:      c.cfg.Anycast,
		Switches:     views,
		Bindings:     in.Bindings,
		Replication:  c.cfg.Replication,
		ServiceNodes: c.cfg.ServiceNodes,
		BFDDown:      c.bfdDownInputs(),
	}
	synced := true
	if in.Speaker {
		cin.RemoteMACs, cin.RemoteFlood = in.Remote.MACs, in.Remote.Flood
		synced = in.Synced
	}
	out := Compute(cin)
	fx.Out = out
	fx.KeepStale = !synced || !in.VCValid
	opt := plan.Options{KeepStale: fx.KeepStale}
	for _, s := range in.Switches {
		if s.Observed == nil {
			continue
		}
		d := out.PerSwitch[s.Name]
		d.BFD = bfdParams(s.BFD)
		fx.Jobs = append(fx.Jobs, switchJobSpec{Switch: s.Name, Desired: d, Opt: opt, Replication: out.Replication[s.Name]})
	}
	if in.Speaker && c.adv.ready(&fx, len(obs), len(in.Switches), in.VCValid, in.SinceStart, c.cfg.StartupWait) {
		ls := evpn.LocalState{MACs: out.LocalMACs}
		for _, v := range views { // the speaker leaves routes to these out of the remote state
			if v.TunnelIP.IsValid() && !slices.Contains(ls.VTEPs, v.TunnelIP) {
				ls.VTEPs = append(ls.VTEPs, v.TunnelIP)
			}
		}
		for _, r := range out.IMET {
			ls.IMET = append(ls.IMET, evpn.IMET{VNI: r.VNI, VTEP: r.VTEP})
		}
		fx.Advertise = &ls
	}
	for _, cf := range out.Conflicts {
		if !slices.Contains(c.conflicts, cf) {
			fx.log(slog.LevelWarn, "binding conflict", "conflict", cf)
		}
	}
	if c.keepStale && !fx.KeepStale {
		fx.log(slog.LevelInfo, "picture complete: stale state may now be removed")
	}
	c.conflicts, c.keepStale = out.Conflicts, fx.KeepStale
	return fx
}

// viewOf is what the agent takes from a connected switch's tables.
func viewOf(name string, o *plan.Observed) SwitchView {
	v := SwitchView{Name: name, Connected: true, Ports: make(map[string]bool, len(o.Ports)), Faults: o.PhysicalSwitch.SwitchFaultStatus}
	for p := range o.Ports {
		v.Ports[p] = true
	}
	for _, t := range o.PhysicalSwitch.TunnelIPs {
		if ip, err := netip.ParseAddr(t); err == nil && l2.ValidateVTEP(ip) == nil {
			v.TunnelIP = ip
			break
		}
	}
	v.LocalMACs = o.LocalMACs()
	for _, ls := range o.Switches {
		if plan.Owned(ls) {
			continue
		}
		if vni := plan.VNIOf(ls); vni != 0 {
			v.ForeignVNIs = mapSet(v.ForeignVNIs, vni, ls.Name)
		}
		if vni, ok := plan.VNIOfName(ls.Name); ok {
			v.ForeignVNIs = mapSet(v.ForeignVNIs, vni, ls.Name)
		}
	}
	for _, p := range o.Ports {
		for vlan, u := range p.VLANBindings {
			if ls := o.Switches[u]; ls == nil || !plan.Owned(ls) {
				lsName := u
				if ls != nil {
					lsName = ls.Name
				}
				v.ForeignBound = mapSet(v.ForeignBound, l2.PortVLAN{Port: l2.PortRef{Switch: v.Name, Port: p.Name}, VLAN: l2.VLAN(vlan)}, lsName)
			}
		}
	}
	return v
}

// mapSet sets m[k] = v, making m when nil.
func mapSet[K comparable, V any](m map[K]V, k K, v V) map[K]V {
	if m == nil {
		m = map[K]V{}
	}
	m[k] = v
	return m
}

// bfdParams returns what a switch's writer sets in bfd_params, nil when
// BFD is off for the switch (Tunnel rows are then left alone).
func bfdParams(b config.BFD) *plan.BFDParams {
	if !b.Enabled {
		return nil
	}
	return &plan.BFDParams{MinRxMs: int(time.Duration(b.MinRx).Milliseconds()), MinTxMs: int(time.Duration(b.MinTx).Milliseconds())}
}

// trackBFD folds each connected switch's Tunnel table into its BFD memory
// (TrackBFD), logs the transitions, and releases the lost-switch hold of a
// pair switch whose tunnel IP the other switch's BFD reports down: a lost
// OVSDB session alone is not a dead data plane, but with BFD down too it
// is, and the held MACs must not stay advertised and cross-installed. It
// edits views in place.
func (c *core) trackBFD(fx *passEffects, switches []switchInput, views []SwitchView, obs map[string]*plan.Observed) {
	for _, s := range switches {
		if !s.BFD.Enabled {
			continue
		}
		m := c.bfd[s.Name]
		if m == nil {
			m = &bfdMemory{}
			c.bfd[s.Name] = m
		}
		if fx.BFDDown == nil {
			fx.BFDDown = map[string][]netip.Addr{}
		}
		o, ok := obs[s.Name]
		if !ok {
			fx.BFDDown[s.Name] = m.down
			continue // not connected: its Tunnel table is unknown, keep what we knew
		}
		memo, down := TrackBFD(m.memo, o)
		for _, ip := range down {
			if !slices.Contains(m.down, ip) {
				fx.log(slog.LevelInfo, "BFD down: remote VTEP withdrawn from the switch's flood lists and remote MACs", "switch", s.Name, "vtep", ip)
			}
		}
		for _, ip := range m.down {
			if !slices.Contains(down, ip) {
				fx.log(slog.LevelInfo, "BFD no longer down: remote VTEP restored on the switch", "switch", s.Name, "vtep", ip)
			}
		}
		m.memo, m.down = memo, down
		fx.BFDDown[s.Name] = down
	}
	for i := range views {
		v := &views[i]
		if v.Connected || !v.TunnelIP.IsValid() {
			continue
		}
		for name, m := range c.bfd {
			if name == v.Name || !slices.Contains(m.down, v.TunnelIP) {
				continue
			}
			c.own.release(v.Name)
			fx.log(slog.LevelInfo, "peer switch data plane down (BFD): lost-switch hold released", "switch", v.Name,
				"tunnel_ip", v.TunnelIP, "reported_by", name, "held_macs", len(v.LocalMACs))
			*v = SwitchView{Name: v.Name}
			break
		}
	}
}

// bfdDownInputs returns, per switch, the remote VTEPs to leave out (Inputs.BFDDown).
func (c *core) bfdDownInputs() map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for name, m := range c.bfd {
		if len(m.down) > 0 {
			out[name] = m.down
		}
	}
	return out
}

// advertiseGate holds the first advertisement (and with it the BGP sessions,
// evpn.Config.DeferNeighbors) until the local state is complete: every
// switch read and vCenter's first inventory in, or startup_wait passed. A
// restarted agent thus sends its whole table before End-of-RIB, and a
// graceful restart helper keeps every route it held.
type advertiseGate struct {
	open   bool
	logged bool
}

func (g *advertiseGate) ready(fx *passEffects, read, switches int, vcValid bool, since, wait time.Duration) bool {
	if g.open {
		return true
	}
	complete := read == switches && vcValid
	if !complete && since < wait {
		if !g.logged {
			g.logged = true
			fx.log(slog.LevelInfo, "BGP held until the local state is read", "switches_read", read, "switches", switches,
				"vcenter_valid", vcValid, "at_most", wait)
		}
		return false
	}
	g.open = true
	if complete {
		fx.log(slog.LevelInfo, "local state read: advertising and opening BGP sessions", "after", since.Round(time.Millisecond))
	} else {
		fx.log(slog.LevelWarn, "startup_wait passed with the local state incomplete: advertising what is known",
			"switches_read", read, "switches", switches, "vcenter_valid", vcValid, "after", since.Round(time.Millisecond))
	}
	return true
}
