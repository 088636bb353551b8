package agent

import (
	"maps"
	"net/netip"
	"time"

	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/agent/store"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
)

// What the switches report, gathered for a pass: each switch's view (its
// local MACs, or the held view of a lost switch), which switch each MAC is
// advertised from when both report it, and the owners persisted for a
// restart.

func (a *Agent) views() ([]SwitchView, map[string]*plan.Observed) {
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
			// PreferNewest replaces a view's LocalMACs, never edits them in
			// place: the slice can be kept without a copy.
			s.last, s.lostAt = &SwitchView{TunnelIP: v.TunnelIP, LocalMACs: v.LocalMACs}, time.Time{}
		} else if v2, kept := s.retained(time.Now()); kept {
			v = v2
		}
		views = append(views, v)
	}
	a.trackBFD(views, obs)
	if a.cfg.Agent.Mode != config.Anycast {
		a.noteFirstSeen(views)
		now := time.Now()
		alive := make(map[string]time.Time, len(a.sw))
		for _, s := range a.sw {
			alive[s.name] = s.client.Alive()
		}
		stale := a.superseded.filter(now, views, a.firstSeen, alive)
		dropped := PreferNewest(views, a.firstSeen)
		a.superseded.note(now, dropped, a.firstSeen)
		dropped = append(dropped, stale...)
		if len(dropped) > 0 {
			a.log.Debug("MACs local on both switches: advertising the newest", "stale", len(dropped))
		}
		a.saveOwners(views, dropped)
		if n := forgetMoved(a.sw, views, dropped); n > 0 {
			a.log.Info("lost switch's held MACs learned elsewhere since: no longer held", "macs", n)
		}
		logMoves(a.log, a.locations.update(views))
	}
	return views, obs
}

// noteFirstSeen records when each switch's local MACs first appeared, and
// forgets MACs a switch no longer reports. A switch that is not connected
// keeps its entries (its table is unknown, not empty).
func (a *Agent) noteFirstSeen(views []SwitchView) {
	now := time.Now()
	if a.firstSeen == nil {
		a.firstSeen = map[SeenKey]time.Time{}
	}
	present := map[SeenKey]bool{}
	for _, v := range views {
		if !v.Connected {
			continue
		}
		for _, m := range v.LocalMACs {
			k := SeenKey{v.Name, l2.MACKey{VNI: m.VNI, MAC: m.MAC}}
			present[k] = true
			if _, ok := a.firstSeen[k]; !ok {
				a.firstSeen[k] = now
			}
		}
	}
	connected := map[string]bool{}
	for _, v := range views {
		connected[v.Name] = v.Connected
	}
	for k := range a.firstSeen {
		if connected[k.Switch] && !present[k] {
			delete(a.firstSeen, k)
		}
	}
}

// seedOwners makes the owners saved before a restart win the first
// comparison: a MAC both switches report as local (one of them stale, a
// host failed over and back) has no history in a new process, and which
// switch is read first must not decide. The other switches' claims are
// recorded as seen long ago; a claim that disappears and comes back later
// is new again (noteFirstSeen).
func (a *Agent) seedOwners(owners []store.Owner) {
	if a.firstSeen == nil {
		a.firstSeen = map[SeenKey]time.Time{}
	}
	a.owners = map[l2.MACKey]string{}
	for _, o := range owners {
		k := l2.MACKey{VNI: o.VNI, MAC: o.MAC}
		a.owners[k] = o.Switch
		for _, s := range a.sw {
			if s.name != o.Switch {
				a.firstSeen[SeenKey{s.name, k}] = time.Unix(0, 1)
			}
		}
	}
}

// saveOwners persists which switch each contested MAC is advertised from,
// when that changed and every switch is connected (a partial picture would
// overwrite what a restart needs).
func (a *Agent) saveOwners(views []SwitchView, dropped []SeenKey) {
	for _, v := range views {
		if !v.Connected {
			return
		}
	}
	winner := map[l2.MACKey]string{}
	if len(dropped) > 0 {
		kept := map[l2.MACKey]string{} // after PreferNewest a MAC is in one view only
		for _, v := range views {
			for _, m := range v.LocalMACs {
				kept[l2.MACKey{VNI: m.VNI, MAC: m.MAC}] = v.Name
			}
		}
		for _, d := range dropped {
			winner[d.Key] = kept[d.Key]
		}
	}
	if maps.Equal(winner, a.owners) {
		return
	}
	out := make([]store.Owner, 0, len(winner))
	for k, sw := range winner {
		out = append(out, store.Owner{VNI: k.VNI, MAC: k.MAC, Switch: sw})
	}
	if err := store.SaveOwners(a.cfg.Agent.StateDir, out); err != nil {
		a.log.Warn("saving MAC owners", "err", err)
		return
	}
	a.owners = winner
}
