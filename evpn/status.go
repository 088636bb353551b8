package evpn

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/torstitch/torstitch/vtep/l2"
)

// onEvent receives GoBGP's best-path and End-of-RIB events (one goroutine).
// Routes are decoded before taking the lock; our own paths are skipped
// without decoding.
func (s *Speaker) onEvent(resp *api.WatchEventResponse) {
	tbl := resp.GetTable()
	if tbl == nil {
		return
	}
	type decoded struct {
		r      rxRoute
		reason string
	}
	rs := make([]decoded, 0, len(tbl.Paths))
	var eors []netip.Addr
	for _, p := range tbl.Paths {
		if f := p.GetFamily(); f.GetAfi() != api.Family_AFI_L2VPN || f.GetSafi() != api.Family_SAFI_EVPN {
			continue
		}
		if p.NeighborIp == "" || p.NeighborIp == "<nil>" { // our own route: never imported
			continue
		}
		if p.Nlri == nil && len(p.Pattrs) == 0 { // End-of-RIB marker
			if a, err := netip.ParseAddr(p.NeighborIp); err == nil {
				eors = append(eors, a.Unmap())
			}
			continue
		}
		r, reason := decodePath(p, s.rts)
		if reason != "" {
			s.log.Debug("dropping received EVPN route", "reason", reason, "from", p.NeighborIp, "nlri", r.id)
			r.withdraw = true // a dropped replacement still removes what it replaces
		}
		rs = append(rs, decoded{r, reason})
	}
	if len(rs) == 0 && len(eors) == 0 {
		return
	}
	changed, kick, wake := false, false, false
	s.mu.Lock()
	for _, a := range eors {
		s.eor[a]++
	}
	for _, d := range rs {
		if d.reason != "" {
			s.dropped[d.reason]++
		}
		if d.r.id == "" {
			continue
		}
		if _, had := s.remote.byID[d.r.id]; !had && d.r.withdraw {
			continue
		}
		k, touched := s.remote.apply(d.r)
		changed = true
		if touched && s.mob.st[k] != nil {
			kick = true
		}
	}
	if changed && !s.remoteUnread {
		// One notification until the remote state is read: during a burst
		// (one event per route) the consumer is not woken for every route.
		s.remoteUnread, wake = true, true
	}
	s.mu.Unlock()
	if kick {
		s.kickExport()
	}
	if wake {
		s.notify()
	}
}

// Remote returns a snapshot of the best remote state. MACs that are local
// and advertised by us (our route wins) are left out.
func (s *Speaker) Remote() RemoteState {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remoteUnread = false
	return s.remote.snapshot(s.own, s.localWins)
}

// Changed delivers a coalesced notification whenever Remote may have changed.
// After a notification for received routes the next one comes once the
// remote state has been read (Remote or Stats) and changes again.
func (s *Speaker) Changed() <-chan struct{} { return s.changed }

// Synced reports whether every configured neighbor has sent End-of-RIB for
// l2vpn-evpn since Start, or the restart time (graceful restart's, 120 s by
// default) has passed since Start. Once true it stays true.
func (s *Speaker) Synced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.synced {
		return true
	}
	if !s.started {
		return false
	}
	if s.cfg.Now().Sub(s.startTime) >= s.cfg.GracefulRestart.RestartTime {
		s.synced = true
		return true
	}
	for _, n := range s.nbrs {
		if s.eor[n.Address.Unmap()] == 0 {
			return false
		}
	}
	s.synced = true
	return true
}

// StateHeld is the state of a neighbor not yet connected because the local
// routes are not known yet (Config.DeferNeighbors).
const StateHeld = "held"

// PeerStatus describes one BGP neighbor, for `torctl show peers`.
type PeerStatus struct {
	Address    netip.Addr    `json:"address"`
	ASN        uint32        `json:"asn"`
	State      string        `json:"state"` // held, idle, connect, active, opensent, openconfirm, established
	Uptime     time.Duration `json:"uptime"`
	Received   uint64        `json:"received"`
	Accepted   uint64        `json:"accepted"`
	Advertised uint64        `json:"advertised"`
	EndOfRIB   bool          `json:"end_of_rib"` // End-of-RIB received since Start
}

// Peers lists the configured neighbors and their session state.
func (s *Speaker) Peers(ctx context.Context) ([]PeerStatus, error) {
	if s.bgp == nil {
		return nil, fmt.Errorf("evpn: speaker not started")
	}
	var out []PeerStatus
	now := time.Now()
	err := s.bgp.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		ps := PeerStatus{}
		if c := p.GetConf(); c != nil {
			ps.Address, _ = netip.ParseAddr(c.NeighborAddress)
			ps.ASN = c.PeerAsn
		}
		st := p.GetState()
		ps.State = strings.ToLower(strings.TrimPrefix(st.GetSessionState().String(), "SESSION_STATE_"))
		if st.GetSessionState() == api.PeerState_ESTABLISHED {
			if up := p.GetTimers().GetState().GetUptime(); up != nil {
				ps.Uptime = now.Sub(up.AsTime()).Truncate(time.Second)
			}
		}
		for _, a := range p.GetAfiSafis() {
			if a.GetState().GetFamily().GetAfi() == api.Family_AFI_L2VPN {
				ps.Received, ps.Accepted, ps.Advertised = a.State.Received, a.State.Accepted, a.State.Advertised
			}
		}
		out = append(out, ps)
	})
	if err != nil {
		return nil, fmt.Errorf("listing BGP peers: %w", err)
	}
	s.mu.Lock()
	for i := range out {
		out[i].EndOfRIB = s.eor[out[i].Address] > 0
	}
	if s.held {
		for _, n := range s.nbrs {
			if !s.added[n.Address] {
				out = append(out, PeerStatus{Address: n.Address, ASN: n.ASN, State: StateHeld})
			}
		}
	}
	s.mu.Unlock()
	return out, nil
}

// FrozenMAC is a MAC that moved too often (duplicate detection).
type FrozenMAC struct {
	VNI   l2.VNI    `json:"vni"`
	MAC   l2.MAC    `json:"mac"`
	Since time.Time `json:"since"`
}

// Stats are counters for monitoring.
type Stats struct {
	Dropped       map[string]uint64 `json:"dropped"`         // received routes dropped, by reason
	Frozen        []FrozenMAC       `json:"frozen"`          // duplicate MACs held in place
	RemoteMACs    int               `json:"remote_macs"`     // (VNI, MAC) keys with a remote route
	RemoteRoutes  int               `json:"remote_routes"`   // accepted remote routes (type-2 and type-3)
	Advertised    int               `json:"advertised"`      // routes we advertise
	LocalWins     int               `json:"local_wins"`      // local MACs advertised by us
	LastExportErr string            `json:"last_export_err"` // empty when the last export succeeded
}

// Stats returns counters.
func (s *Speaker) Stats() Stats {
	s.mu.Lock()
	s.remoteUnread = false
	st := Stats{
		Dropped: maps.Clone(s.dropped), Frozen: s.mob.frozenKeys(s.cfg.Now()),
		RemoteMACs: len(s.remote.macs), RemoteRoutes: len(s.remote.byID), LocalWins: len(s.localWins),
	}
	if s.exportErr != nil {
		st.LastExportErr = s.exportErr.Error()
	}
	s.mu.Unlock()
	if s.expMu.TryLock() {
		st.Advertised = len(s.advertised)
		s.expMu.Unlock()
	} else {
		st.Advertised = -1
	}
	return st
}
