package agent

import (
	"net/netip"
	"slices"
	"time"

	"github.com/torstitch/torstitch/vtep/plan"
)

// bfdParams returns what the switch's writer sets in bfd_params, nil when
// BFD is off for the switch (Tunnel rows are then left alone).
func (s *switchState) bfdParams() *plan.BFDParams {
	if !s.bfd.Enabled {
		return nil
	}
	return &plan.BFDParams{MinRxMs: int(time.Duration(s.bfd.MinRx).Milliseconds()), MinTxMs: int(time.Duration(s.bfd.MinTx).Milliseconds())}
}

// trackBFD folds each connected switch's Tunnel table into its BFD memory
// (TrackBFD), logs the transitions, and releases the lost-switch hold of a
// pair switch whose tunnel IP the other switch's BFD reports down: a lost
// OVSDB session alone is not a dead data plane, but with BFD down too it
// is, and the held MACs must not stay advertised and cross-installed. It
// edits views in place (reconcile loop only).
func (a *Agent) trackBFD(views []SwitchView, obs map[string]*plan.Observed) {
	for _, s := range a.sw {
		if !s.bfd.Enabled {
			continue
		}
		o, ok := obs[s.name]
		if !ok {
			continue // not connected: its Tunnel table is unknown, keep what we knew
		}
		memo, down := TrackBFD(s.bfdMemo, o)
		for _, ip := range down {
			if !slices.Contains(s.bfdDown, ip) {
				a.log.Info("BFD down: remote VTEP withdrawn from the switch's flood lists and remote MACs", "switch", s.name, "vtep", ip)
			}
		}
		for _, ip := range s.bfdDown {
			if !slices.Contains(down, ip) {
				a.log.Info("BFD no longer down: remote VTEP restored on the switch", "switch", s.name, "vtep", ip)
			}
		}
		s.bfdMemo, s.bfdDown = memo, down
		shown := make([]string, len(down))
		for i, ip := range down {
			shown[i] = ip.String()
		}
		s.mu.Lock()
		s.bfdShown = shown
		s.mu.Unlock()
		a.met.bfdDown.WithLabelValues(s.name).Set(float64(len(down)))
	}
	for i := range views {
		v := &views[i]
		if v.Connected || !v.TunnelIP.IsValid() {
			continue
		}
		for _, s := range a.sw {
			if s.name == v.Name || !slices.Contains(s.bfdDown, v.TunnelIP) {
				continue
			}
			a.own.release(v.Name)
			a.log.Info("peer switch data plane down (BFD): lost-switch hold released", "switch", v.Name,
				"tunnel_ip", v.TunnelIP, "reported_by", s.name, "held_macs", len(v.LocalMACs))
			*v = SwitchView{Name: v.Name}
			break
		}
	}
}

// bfdDownInputs returns, per switch, the remote VTEPs to leave out (Inputs.BFDDown).
func (a *Agent) bfdDownInputs() map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, s := range a.sw {
		if s.bfd.Enabled && len(s.bfdDown) > 0 {
			out[s.name] = s.bfdDown
		}
	}
	return out
}
