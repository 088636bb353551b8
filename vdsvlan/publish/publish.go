// Package publish is the pure core of published networks ("cap and grow"):
// overlay VNIs offered to vSphere admins as distributed port groups that
// torstitch creates, owns and retires. Plan compares the desired networks
// with the port groups observed on the configured distributed switch and
// returns the vCenter actions to take and the status of every network. It
// does no I/O and reads no clock.
package publish

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/torstitch/torstitch/vtep/l2"
)

// Sources of a desired network.
const (
	SourceConfig = "config"
	SourceTorctl = "torctl"
)

// Network is a VNI to publish as a port group named Name. VLAN 0 means
// "allocate from the pool".
type Network struct {
	VNI    l2.VNI  `yaml:"vni" json:"vni"`
	Name   string  `yaml:"name" json:"name"`
	VLAN   l2.VLAN `yaml:"vlan,omitempty" json:"vlan,omitempty"`
	Source string  `yaml:"-" json:"source,omitempty"`
}

// MaxNameLen bounds a port group name (vSphere allows 80 characters).
const MaxNameLen = 80

// Validate checks one network's shape.
func (n Network) Validate() error {
	var errs []error
	if err := n.VNI.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := CheckName(n.Name); err != nil {
		errs = append(errs, err)
	}
	if n.VLAN > l2.MaxVLAN-1 {
		errs = append(errs, fmt.Errorf("VLAN %d out of range 1-%d", n.VLAN, l2.MaxVLAN-1))
	}
	return errors.Join(errs...)
}

// CheckName checks a port group name.
func CheckName(s string) error {
	if s == "" {
		return errors.New("name missing")
	}
	if err := l2.CheckName(s); err != nil {
		return fmt.Errorf("name %s %w", l2.QuoteShort(s), err)
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("name %s is %d bytes long (at most %d)", l2.QuoteShort(s), len(s), MaxNameLen)
	}
	if strings.ContainsAny(s, "%/\\") {
		return fmt.Errorf("name %s: %%, / and \\ are not allowed in port group names", l2.QuoteShort(s))
	}
	return nil
}

// Range is an inclusive range of VLAN IDs.
type Range struct{ Start, End l2.VLAN }

// Pool is the set of VLANs published networks may be given.
type Pool []Range

// ParsePool reads "3000-3099" or a comma-separated list of ranges and
// single VLANs ("3000-3049,3100"). VLANs are 1-4094.
func ParsePool(s string) (Pool, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty VLAN pool")
	}
	var p Pool
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parsePoolVLAN(lo)
		if err != nil {
			return nil, fmt.Errorf("VLAN pool %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = parsePoolVLAN(hi); err != nil {
				return nil, fmt.Errorf("VLAN pool %q: %w", s, err)
			}
		}
		if b < a {
			return nil, fmt.Errorf("VLAN pool %q: range %s is backwards", s, part)
		}
		p = append(p, Range{a, b})
	}
	return p, nil
}

func parsePoolVLAN(s string) (l2.VLAN, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n < 1 || n > uint64(l2.MaxVLAN-1) {
		return 0, fmt.Errorf("%q is not a VLAN 1-%d", strings.TrimSpace(s), l2.MaxVLAN-1)
	}
	return l2.VLAN(n), nil
}

// Contains reports whether v is in the pool.
func (p Pool) Contains(v l2.VLAN) bool {
	return slices.ContainsFunc(p, func(r Range) bool { return v >= r.Start && v <= r.End })
}

// Size is the number of VLANs in the pool (overlaps counted twice).
func (p Pool) Size() int {
	n := 0
	for _, r := range p {
		n += int(r.End-r.Start) + 1
	}
	return n
}

func (p Pool) String() string {
	parts := make([]string, len(p))
	for i, r := range p {
		if r.Start == r.End {
			parts[i] = strconv.Itoa(int(r.Start))
		} else {
			parts[i] = fmt.Sprintf("%d-%d", r.Start, r.End)
		}
	}
	return strings.Join(parts, ",")
}

// Mark is torstitch's ownership mark on a port group: the agent that owns it
// and the VNI it carries. It is written twice: as the value of the custom
// field FieldName (the ownership record) and into the port group's
// description at creation (atomic with the create, and seen by the
// discovery watcher, which reads the VNI from it).
type Mark struct {
	Owner string
	VNI   l2.VNI
}

// FieldName is the custom attribute (CustomFieldsManager) that marks owned
// port groups.
const FieldName = "torstitch.owner"

const markPrefix = "torstitch:owner="

// String is the mark's text: "torstitch:owner=pair1,vni=10300".
func (m Mark) String() string {
	return fmt.Sprintf("%s%s,vni=%d", markPrefix, m.Owner, m.VNI)
}

// Description is the port-group description carrying the mark.
func (m Mark) Description() string {
	return "Published by torstitch; do not edit. " + m.String()
}

// ParseMark finds a mark anywhere in s.
func ParseMark(s string) (Mark, bool) {
	i := strings.Index(s, markPrefix)
	if i < 0 {
		return Mark{}, false
	}
	rest := s[i+len(markPrefix):]
	owner, rest, ok := strings.Cut(rest, ",vni=")
	if !ok || owner == "" || strings.ContainsAny(owner, " ,") {
		return Mark{}, false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	vni, err := l2.ParseVNI(rest[:end])
	if err != nil {
		return Mark{}, false
	}
	return Mark{Owner: owner, VNI: vni}, true
}

// PortGroup is a port group observed on the configured switch.
type PortGroup struct {
	Ref  string
	Key  string
	Name string
	// VLAN is its single VLAN ID, or -1 for trunk, private-VLAN or unknown
	// policies.
	VLAN int
	// Uses lists the VLAN IDs it occupies: its single VLAN, or the primary
	// and secondary of a private VLAN. Trunks occupy none.
	Uses        []l2.VLAN
	Description string
	Field       string   // value of the FieldName custom attribute ("" = none)
	VMs         []string // names of VMs with a NIC on it
}

// Observed is what vCenter shows.
type Observed struct {
	SwitchFound bool
	PortGroups  []PortGroup // on the configured switch
	// OtherNames are names of networks outside the switch (they block a
	// port group name in the datacenter's network folder too).
	OtherNames []string
}

// Input is one planning round.
type Input struct {
	Agent   string // owner name written into marks (agent.name)
	Switch  string // the configured distributed switch, for messages
	Pool    Pool
	Desired []Network
	Obs     Observed
	// Last is the VLAN each network had when last seen, kept by the caller
	// across rounds, so a port group deleted by an admin comes back on the
	// same VLAN when it is still free.
	Last map[l2.VNI]l2.VLAN
	// Prev are the statuses of the previous round (drift reports).
	Prev map[l2.VNI]Status
}

// ActionKind says what to do in vCenter.
type ActionKind string

// Actions.
const (
	Create  ActionKind = "create"  // create a port group (the mark in its description), then set the field
	Adopt   ActionKind = "adopt"   // set the ownership field on a port group created before a crash
	Restore ActionKind = "restore" // rename / re-VLAN / re-describe an owned port group back
	Delete  ActionKind = "delete"  // destroy an owned port group no longer desired
)

// Action is one vCenter change.
type Action struct {
	Kind ActionKind
	VNI  l2.VNI
	Name string  // desired name
	VLAN l2.VLAN // desired VLAN
	Ref  string  // existing port group (not for Create)
	Mark Mark
	Why  string // for logs
}

// States of a network.
const (
	StateReady    = "ready"    // the port group exists, owned, as desired
	StatePending  = "pending"  // being created, adopted or restored
	StateError    = "error"    // cannot be published; Error says why
	StateRetiring = "retiring" // unpublished, but VMs are still attached
)

// Status is one network's state.
type Status struct {
	VNI       l2.VNI   `json:"vni"`
	Name      string   `json:"name"`
	VLAN      l2.VLAN  `json:"vlan,omitempty"`
	PortGroup string   `json:"port_group,omitempty"` // key
	Ref       string   `json:"ref,omitempty"`
	VMs       []string `json:"vms,omitempty"`
	State     string   `json:"state"`
	Error     string   `json:"error,omitempty"`
	Drift     string   `json:"drift,omitempty"` // what an admin changed, as last seen
	Source    string   `json:"source,omitempty"`
}

// Plan returns the actions that bring vCenter to the desired networks and
// the status of each network (desired ones, then retiring ones), sorted by
// VNI. Terminal problems (switch missing, name taken, VLAN used, pool
// exhausted) produce an error status and no action for that network.
func Plan(in Input) ([]Action, []Status) {
	desired := slices.Clone(in.Desired)
	slices.SortFunc(desired, func(a, b Network) int { return cmp.Compare(a.VNI, b.VNI) })
	var acts []Action
	var sts []Status
	if !in.Obs.SwitchFound {
		for _, n := range desired {
			sts = append(sts, Status{VNI: n.VNI, Name: n.Name, VLAN: n.VLAN, Source: n.Source, State: StateError,
				Error: fmt.Sprintf("distributed switch %q not found in vCenter (vcenter.publish_switch)", in.Switch)})
		}
		return nil, sts
	}

	// Owned port groups by VNI: the field says so, or (crash between the
	// create and the field) the description does and no field is set.
	owned := map[l2.VNI][]*PortGroup{}
	adopt := map[string]bool{}
	for i := range in.Obs.PortGroups {
		pg := &in.Obs.PortGroups[i]
		if pg.Field != "" {
			if m, ok := ParseMark(pg.Field); ok && m.Owner == in.Agent {
				owned[m.VNI] = append(owned[m.VNI], pg)
			}
			continue
		}
		if m, ok := ParseMark(pg.Description); ok && m.Owner == in.Agent {
			owned[m.VNI] = append(owned[m.VNI], pg)
			adopt[pg.Ref] = true
		}
	}
	// One port group per VNI: prefer the desired name, then the lowest key.
	want := map[l2.VNI]Network{}
	for _, n := range desired {
		want[n.VNI] = n
	}
	primary := map[l2.VNI]*PortGroup{}
	var extra []*PortGroup
	for vni, pgs := range owned {
		slices.SortFunc(pgs, func(a, b *PortGroup) int {
			an, bn := a.Name == want[vni].Name, b.Name == want[vni].Name
			if an != bn {
				if an {
					return -1
				}
				return 1
			}
			return cmp.Compare(a.Key, b.Key)
		})
		primary[vni] = pgs[0]
		extra = append(extra, pgs[1:]...)
	}

	ownedRef := func(pg *PortGroup) (l2.VNI, bool) {
		for vni, p := range primary {
			if p == pg {
				return vni, true
			}
		}
		return 0, false
	}
	// VLANs in use by port groups that are not the primary of a desired network.
	usedBy := map[l2.VLAN]string{}
	for i := range in.Obs.PortGroups {
		pg := &in.Obs.PortGroups[i]
		if vni, ok := ownedRef(pg); ok {
			if _, desiredToo := want[vni]; desiredToo {
				continue
			}
		}
		for _, v := range pg.Uses {
			if _, ok := usedBy[v]; !ok {
				usedBy[v] = pg.Name
			}
		}
	}
	nameOwner := map[string]*PortGroup{}
	for i := range in.Obs.PortGroups {
		pg := &in.Obs.PortGroups[i]
		nameOwner[pg.Name] = pg
	}
	otherNames := map[string]bool{}
	for _, n := range in.Obs.OtherNames {
		otherNames[n] = true
	}
	assigned := map[l2.VLAN]l2.VNI{} // VLANs given in this round
	// Existing owned port groups keep their VLANs first, so that a new
	// network never takes the VLAN of an existing one.
	expected := map[l2.VNI]l2.VLAN{}
	for _, n := range desired {
		pg := primary[n.VNI]
		if pg == nil {
			continue
		}
		v, ok := keepVLAN(n, pg, in, usedBy, assigned)
		if ok {
			expected[n.VNI] = v
			assigned[v] = n.VNI
		}
	}

	for _, n := range desired {
		st := Status{VNI: n.VNI, Name: n.Name, Source: n.Source}
		mark := Mark{Owner: in.Agent, VNI: n.VNI}
		pg := primary[n.VNI]
		if pg != nil {
			st.PortGroup, st.Ref, st.VMs = pg.Key, pg.Ref, pg.VMs
			vlan, ok := expected[n.VNI]
			if !ok {
				var err error
				if vlan, err = allocate(n, in, usedBy, assigned); err != nil {
					st.State, st.Error = StateError, fmt.Sprintf("port group %s: %v", pg.Name, err)
					if pg.VLAN >= 0 {
						st.VLAN = l2.VLAN(pg.VLAN)
					}
					sts = append(sts, st)
					continue
				}
				assigned[vlan] = n.VNI
			}
			st.VLAN = vlan
			var drift []string
			if pg.Name != n.Name {
				if o := nameOwner[n.Name]; (o != nil && o != pg) || otherNames[n.Name] {
					st.State, st.Error = StateError, fmt.Sprintf("port group %s was renamed and its name %q is now taken by another network", pg.Name, n.Name)
					sts = append(sts, st)
					continue
				}
				drift = append(drift, fmt.Sprintf("renamed to %q", pg.Name))
			}
			if pg.VLAN != int(vlan) {
				if pg.VLAN < 0 {
					drift = append(drift, "VLAN policy changed")
				} else {
					drift = append(drift, fmt.Sprintf("VLAN changed to %d", pg.VLAN))
				}
			}
			descOK := func() bool { m, ok := ParseMark(pg.Description); return ok && m == mark }()
			if !descOK {
				drift = append(drift, "description changed")
			}
			switch {
			case len(drift) > 0:
				st.State = StatePending
				st.Drift = "changed in vCenter: " + strings.Join(drift, ", ") + " (undone)"
				acts = append(acts, Action{Kind: Restore, VNI: n.VNI, Name: n.Name, VLAN: vlan, Ref: pg.Ref, Mark: mark, Why: st.Drift})
			default:
				st.State = StateReady
			}
			if adopt[pg.Ref] || pg.Field != mark.String() {
				acts = append(acts, Action{Kind: Adopt, VNI: n.VNI, Name: n.Name, VLAN: vlan, Ref: pg.Ref, Mark: mark,
					Why: "ownership field missing or stale"})
				if st.State == StateReady {
					st.State = StatePending
				}
			}
			sts = append(sts, st)
			continue
		}
		// Not there: create it, unless the name or the VLAN is taken.
		if o := nameOwner[n.Name]; o != nil || otherNames[n.Name] {
			what := "a network outside switch " + in.Switch
			if o != nil {
				what = "port group " + o.Key + " on switch " + in.Switch
			}
			st.State, st.Error = StateError, fmt.Sprintf("name %q is taken by %s, which torstitch does not own", n.Name, what)
			st.VLAN = n.VLAN
			sts = append(sts, st)
			continue
		}
		vlan, err := allocate(n, in, usedBy, assigned)
		if err != nil {
			st.State, st.Error, st.VLAN = StateError, err.Error(), n.VLAN
			sts = append(sts, st)
			continue
		}
		assigned[vlan] = n.VNI
		st.VLAN, st.State = vlan, StatePending
		if p, ok := in.Prev[n.VNI]; ok && p.Ref != "" {
			st.Drift = fmt.Sprintf("port group %s deleted in vCenter (recreated)", p.PortGroup)
		}
		acts = append(acts, Action{Kind: Create, VNI: n.VNI, Name: n.Name, VLAN: vlan, Mark: mark, Why: "published"})
		sts = append(sts, st)
	}

	// Owned port groups no longer desired (or duplicates): delete unless
	// VMs are attached.
	var retire []*PortGroup
	for vni, pg := range primary {
		if _, ok := want[vni]; !ok {
			retire = append(retire, pg)
		}
	}
	retire = append(retire, extra...)
	slices.SortFunc(retire, func(a, b *PortGroup) int { return cmp.Compare(a.Key, b.Key) })
	for _, pg := range retire {
		m, _ := ParseMark(pg.Field)
		if pg.Field == "" {
			m, _ = ParseMark(pg.Description)
		}
		st := Status{VNI: m.VNI, Name: pg.Name, PortGroup: pg.Key, Ref: pg.Ref, VMs: pg.VMs}
		if pg.VLAN >= 0 {
			st.VLAN = l2.VLAN(pg.VLAN)
		}
		if len(pg.VMs) > 0 {
			st.State = StateRetiring
			st.Error = fmt.Sprintf("not deleted: VMs attached: %s", strings.Join(pg.VMs, ", "))
			sts = append(sts, st)
			continue
		}
		why := "unpublished"
		if _, ok := want[m.VNI]; ok {
			why = "duplicate of the network's port group"
		}
		acts = append(acts, Action{Kind: Delete, VNI: m.VNI, Name: pg.Name, Ref: pg.Ref, Mark: m, Why: why})
	}
	slices.SortStableFunc(sts, func(a, b Status) int { return cmp.Compare(a.VNI, b.VNI) })
	return acts, sts
}

// keepVLAN is the VLAN an existing owned port group should keep: the
// explicit one; else the one it had (Last) when still free; else its
// current one when in the pool and free.
func keepVLAN(n Network, pg *PortGroup, in Input, usedBy map[l2.VLAN]string, assigned map[l2.VLAN]l2.VNI) (l2.VLAN, bool) {
	free := func(v l2.VLAN) bool {
		_, used := usedBy[v]
		_, taken := assigned[v]
		return !used && !taken
	}
	if n.VLAN != 0 {
		return n.VLAN, free(n.VLAN)
	}
	if v, ok := in.Last[n.VNI]; ok && in.Pool.Contains(v) && free(v) {
		return v, true
	}
	if pg.VLAN > 0 && in.Pool.Contains(l2.VLAN(pg.VLAN)) && free(l2.VLAN(pg.VLAN)) {
		return l2.VLAN(pg.VLAN), true
	}
	return 0, false
}

// allocate picks a VLAN for a network: its explicit one (must be free), the
// one it had before when still free, else the lowest free pool VLAN.
func allocate(n Network, in Input, usedBy map[l2.VLAN]string, assigned map[l2.VLAN]l2.VNI) (l2.VLAN, error) {
	if n.VLAN != 0 {
		if pg, ok := usedBy[n.VLAN]; ok {
			return 0, fmt.Errorf("VLAN %d is used by port group %q on switch %s", n.VLAN, pg, in.Switch)
		}
		if vni, ok := assigned[n.VLAN]; ok {
			return 0, fmt.Errorf("VLAN %d is already given to VNI %d", n.VLAN, vni)
		}
		return n.VLAN, nil
	}
	if len(in.Pool) == 0 {
		return 0, errors.New("no VLAN given and no vcenter.vlan_pool configured")
	}
	free := func(v l2.VLAN) bool {
		_, used := usedBy[v]
		_, taken := assigned[v]
		return !used && !taken
	}
	if v, ok := in.Last[n.VNI]; ok && in.Pool.Contains(v) && free(v) {
		return v, nil
	}
	for _, r := range in.Pool {
		for v := r.Start; v <= r.End && v >= r.Start; v++ {
			if free(v) {
				return v, nil
			}
		}
	}
	return 0, fmt.Errorf("VLAN pool %s exhausted on switch %s: all %d VLANs are in use", in.Pool, in.Switch, in.Pool.Size())
}
