package agent

import (
	"maps"
	"slices"
	"time"

	"github.com/torstitch/torstitch/vtep/agent/store"
	"github.com/torstitch/torstitch/vtep/l2"
)

// macOwnership decides, pass by pass, which switch of an independent pair
// each local MAC is advertised from, and keeps what that needs: the last
// view of a switch that is away (held for a while: a lost management
// session is not a dead data plane), when each switch's entry for a MAC
// first appeared, the claims dropped for a newer owner, where each MAC was
// advertised from last (to report moves), and the contested owners as
// saved for a restart. It does no I/O and reads no clock: the agent hands
// it the time, the views and the switches' liveness, and carries out what
// it returns (save the owners, log the moves). Reconcile loop only.
type macOwnership struct {
	hold       time.Duration // how long a lost switch's last view is kept (lostSwitchHold)
	held       map[string]heldView
	firstSeen  map[SeenKey]time.Time
	superseded supersededClaims
	locations  macLocations
	saved      map[l2.MACKey]string // contested MACs' owners as last saved
}

type heldView struct {
	view   SwitchView // TunnelIP and LocalMACs only
	lostAt time.Time  // zero while the switch is connected
}

// newMACOwnership starts from the owners saved before a restart: each wins
// the first comparison, whichever switch is read first (a MAC both switches
// report as local, one of them stale, has no history in a new process).
// The other switches' claims are recorded as seen long ago; a claim that
// disappears and comes back later is new again.
func newMACOwnership(hold time.Duration, switches []string, saved []store.Owner) *macOwnership {
	o := &macOwnership{hold: hold, held: map[string]heldView{}, firstSeen: map[SeenKey]time.Time{},
		superseded: supersededClaims{}, locations: macLocations{}, saved: map[l2.MACKey]string{}}
	for _, s := range saved {
		k := l2.MACKey{VNI: s.VNI, MAC: s.MAC}
		o.saved[k] = s.Switch
		for _, name := range switches {
			if name != s.Switch {
				o.firstSeen[SeenKey{name, k}] = time.Unix(0, 1)
			}
		}
	}
	return o
}

// connected records a connected switch's view as its last one. The view's
// LocalMACs are never edited in place afterwards (PreferNewest and the
// filters replace the slice), so no copy is needed.
func (o *macOwnership) connected(v SwitchView) {
	o.held[v.Name] = heldView{view: SwitchView{TunnelIP: v.TunnelIP, LocalMACs: v.LocalMACs}}
}

// away returns the last view of a switch that is not connected, marked not
// connected, while it has been away for less than the hold.
func (o *macOwnership) away(now time.Time, name string) (SwitchView, bool) {
	h, ok := o.held[name]
	if !ok {
		return SwitchView{}, false
	}
	if h.lostAt.IsZero() {
		h.lostAt = now
		o.held[name] = h
	}
	if now.Sub(h.lostAt) >= o.hold {
		delete(o.held, name)
		return SwitchView{}, false
	}
	return SwitchView{Name: name, TunnelIP: h.view.TunnelIP, LocalMACs: slices.Clone(h.view.LocalMACs)}, true
}

// release forgets a lost switch's last view at once (BFD reports its data
// plane down).
func (o *macOwnership) release(name string) { delete(o.held, name) }

// ownershipStep is what one pass decided.
type ownershipStep struct {
	Dropped []SeenKey // claims not advertised: stale or superseded
	Forgot  int       // claims of held views forgotten: their MAC was learned elsewhere since
	Moves   []macMove // MACs now advertised from another switch, in VNI and MAC order
	// Owners is set when the contested MACs' owners changed and every switch
	// is connected (a partial picture would overwrite what a restart needs):
	// the agent saves it, then calls ownersSaved.
	Owners map[l2.MACKey]string
}

// resolve takes the pass's views (connected switches and held ones) and
// leaves in them only the claims to advertise: of the switches reporting a
// MAC, the one that learned it last (PreferNewest), with superseded claims
// of switches not seen alive since kept dropped. alive holds each switch's
// last proof of life (Client.Alive).
func (o *macOwnership) resolve(now time.Time, views []SwitchView, alive map[string]time.Time) ownershipStep {
	o.noteFirstSeen(now, views)
	stale := o.superseded.filter(now, views, o.firstSeen, alive)
	dropped := PreferNewest(views, o.firstSeen)
	o.superseded.note(now, dropped, o.firstSeen)
	var st ownershipStep
	st.Dropped = append(dropped, stale...)
	st.Forgot = o.forgetMoved(views, st.Dropped)
	st.Owners = o.owners(views, st.Dropped)
	st.Moves = o.locations.update(views)
	return st
}

// ownersSaved records the owners the agent saved.
func (o *macOwnership) ownersSaved(w map[l2.MACKey]string) { o.saved = w }

// noteFirstSeen records when each switch's local MACs first appeared, and
// forgets MACs a switch no longer reports. A switch that is not connected
// keeps its entries (its table is unknown, not empty).
func (o *macOwnership) noteFirstSeen(now time.Time, views []SwitchView) {
	present := map[SeenKey]bool{}
	connected := map[string]bool{}
	for _, v := range views {
		connected[v.Name] = v.Connected
		if !v.Connected {
			continue
		}
		for _, m := range v.LocalMACs {
			k := SeenKey{v.Name, l2.MACKey{VNI: m.VNI, MAC: m.MAC}}
			present[k] = true
			if _, ok := o.firstSeen[k]; !ok {
				o.firstSeen[k] = now
			}
		}
	}
	for k := range o.firstSeen {
		if connected[k.Switch] && !present[k] {
			delete(o.firstSeen, k)
		}
	}
}

// owners returns which switch each contested MAC is advertised from, when
// that differs from what was saved and every switch is connected; nil
// otherwise.
func (o *macOwnership) owners(views []SwitchView, dropped []SeenKey) map[l2.MACKey]string {
	for _, v := range views {
		if !v.Connected {
			return nil
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
			if sw, ok := kept[d.Key]; ok { // a MAC whose every claim is dropped has no owner
				winner[d.Key] = sw
			}
		}
	}
	if maps.Equal(winner, o.saved) {
		return nil
	}
	return winner
}

// forgetMoved removes from the held view of every switch that is not
// connected the MACs whose claim PreferNewest dropped: another switch
// learned them after it. A held claim is a snapshot of a switch that cannot
// be asked; once its MAC has moved it must not win the MAC back when the
// new owner's entry goes (ovs-vtep deletes a learned flow together with the
// remote MAC row the agent removes, and reports the MAC gone until the host
// sends again: the dead switch's claim came back and sent the fabric to
// it). A switch that is really alive reports the MAC again when it
// reconnects, as new.
func (o *macOwnership) forgetMoved(views []SwitchView, dropped []SeenKey) int {
	if len(dropped) == 0 {
		return 0
	}
	gone := map[string]map[l2.MACKey]bool{}
	for _, v := range views {
		if !v.Connected {
			gone[v.Name] = map[l2.MACKey]bool{}
		}
	}
	n := 0
	for _, d := range dropped {
		if m, ok := gone[d.Switch]; ok {
			m[d.Key] = true
			n++
		}
	}
	for name, macs := range gone {
		h, ok := o.held[name]
		if !ok || len(macs) == 0 {
			continue
		}
		h.view.LocalMACs = slices.DeleteFunc(slices.Clone(h.view.LocalMACs), func(m l2.LocalMAC) bool {
			return macs[l2.MACKey{VNI: m.VNI, MAC: m.MAC}]
		})
		o.held[name] = h
	}
	return n
}

// supersededClaims remembers the claims PreferNewest dropped: a switch's
// entry for a MAC that another switch learned after it. The entry is
// identified by when the agent first saw it (firstSeen). A dropped claim
// stays dropped, even when the newer owner's entry goes, until the switch
// proves it is alive after the drop (an echo answered or a new session) or
// its entry changes or goes: a dead switch whose session is not yet seen as
// lost keeps reporting its last table until the echo probe fails, and its
// entry must not win the MAC back when ovs-vtep on the new switch drops its
// learned flow with the remote row the agent removed (and reports the MAC
// gone until the host sends again). With no claim left the MAC is not
// advertised: the fabric floods to it and the host answers. A switch that
// is alive reports its table as it is: its entry (the host back on it, or
// stale and ageing out) is a claim again within one probe interval. Once
// the dead switch is seen as lost, forgetMoved removes the claim from its
// held view for good. supersededHold bounds all of it.
type supersededClaims map[SeenKey]superseded

type superseded struct {
	entry time.Time // the claim's firstSeen
	at    time.Time // when it was dropped
}

// supersededHold is the longest a superseded claim stays dropped; as long
// as a lost switch's hold.
const supersededHold = lostSwitchHold

// filter drops from views the claims that were superseded and are still
// the same entry of a switch not seen alive since, and forgets the others
// (entry changed or gone, switch alive after the drop, hold over). alive
// holds each switch's Client.Alive. It returns the claims it dropped.
func (s supersededClaims) filter(now time.Time, views []SwitchView, firstSeen map[SeenKey]time.Time, alive map[string]time.Time) []SeenKey {
	for k, c := range s {
		if fs, ok := firstSeen[k]; !ok || !fs.Equal(c.entry) || alive[k.Switch].After(c.at) || now.Sub(c.at) >= supersededHold {
			delete(s, k)
		}
	}
	if len(s) == 0 {
		return nil
	}
	var dropped []SeenKey
	for i := range views {
		kept := views[i].LocalMACs[:0:0]
		for _, m := range views[i].LocalMACs {
			k := SeenKey{views[i].Name, l2.MACKey{VNI: m.VNI, MAC: m.MAC}}
			if _, gone := s[k]; gone {
				dropped = append(dropped, k)
				continue
			}
			kept = append(kept, m)
		}
		if len(kept) != len(views[i].LocalMACs) {
			views[i].LocalMACs = kept // a new slice: the old one may be a switch's kept view
		}
	}
	return dropped
}

// note records the claims PreferNewest dropped at now.
func (s supersededClaims) note(now time.Time, dropped []SeenKey, firstSeen map[SeenKey]time.Time) {
	for _, k := range dropped {
		if at, ok := firstSeen[k]; ok {
			if c, ok := s[k]; !ok || !c.entry.Equal(at) {
				s[k] = superseded{entry: at, at: now}
			}
		}
	}
}
