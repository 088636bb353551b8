package agent

import (
	"net/netip"
	"time"

	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/agent/store"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
)

// views gathers what the switches report for a pass (each switch's view:
// its local MACs, or the held view of a lost switch), lets macOwnership
// decide which switch each MAC is advertised from, and carries out what it
// returns: the owners saved for a restart, the moves logged.

func (a *Agent) views() ([]SwitchView, map[string]*plan.Observed) {
	now := a.now()
	views := make([]SwitchView, 0, len(a.sw))
	obs := map[string]*plan.Observed{}
	for _, s := range a.sw {
		v := SwitchView{Name: s.name}
		if o, err := s.client.ObservedWithoutRemote(); err == nil {
			obs[s.name] = o
			v.Connected = true
			v.Ports = make(map[string]bool, len(o.Ports))
			for p := range o.Ports {
				v.Ports[p] = true
			}
			v.Faults = o.SwitchFaults
			for _, t := range o.TunnelIPs {
				if ip, err := netip.ParseAddr(t); err == nil {
					v.TunnelIP = ip
					break
				}
			}
			v.LocalMACs = o.LocalMACs()
			a.own.connected(v)
		} else if v2, kept := a.own.away(now, s.name); kept {
			v = v2
		}
		views = append(views, v)
	}
	a.trackBFD(views, obs)
	if a.cfg.Agent.Mode == config.Anycast {
		return views, obs
	}
	alive := make(map[string]time.Time, len(a.sw))
	for _, s := range a.sw {
		alive[s.name] = s.client.Alive()
	}
	st := a.own.resolve(now, views, alive)
	if len(st.Dropped) > 0 {
		a.log.Debug("MACs local on both switches: advertising the newest", "stale", len(st.Dropped))
	}
	if st.Owners != nil {
		a.saveOwners(st.Owners)
	}
	if st.Forgot > 0 {
		a.log.Info("lost switch's held MACs learned elsewhere since: no longer held", "macs", st.Forgot)
	}
	logMoves(a.log, st.Moves)
	return views, obs
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
	a.own.ownersSaved(w)
}
