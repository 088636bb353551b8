// Package plantest is an in-memory hardware_vtep switch for tests of code
// above vtep/plan: it applies plans the way the OVSDB applier does
// (logical switches and locators resolved, references checked), learns
// local MACs the way a switch does, and prints its tables in the order
// vtep-ctl lists them. It does no I/O.
package plantest

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// Switch is one switch's database.
type Switch struct {
	O    *plan.Observed
	next int
}

// New returns a switch with a Physical_Switch of that name, tunnel IP and
// ports, and nothing else.
func New(name string, tunnelIP netip.Addr, ports ...string) *Switch {
	s := &Switch{O: plan.NewObserved(name)}
	s.O.PhysicalSwitch.TunnelIPs = []string{tunnelIP.String()}
	for _, p := range ports {
		s.O.Ports[p] = &vtepdb.PhysicalPort{UUID: s.uuid(), Name: p, VLANBindings: map[int]string{}}
	}
	return s
}

func (s *Switch) uuid() string { s.next++; return fmt.Sprintf("u%05d", s.next) }

// Observed returns a copy of the tables as a client reads them: the maps
// are new, the rows shared (plans never edit rows in place) but for the
// ports, whose bindings Apply edits.
func (s *Switch) Observed() *plan.Observed {
	o := *s.O
	o.Ports = map[string]*vtepdb.PhysicalPort{}
	for k, p := range s.O.Ports {
		c := *p
		c.VLANBindings = clone(p.VLANBindings)
		o.Ports[k] = &c
	}
	o.Switches, o.Locators, o.LocatorSets = clone(s.O.Switches), clone(s.O.Locators), clone(s.O.LocatorSets)
	o.UcastRemote, o.McastRemote = clone(s.O.UcastRemote), clone(s.O.McastRemote)
	o.UcastLocal, o.McastLocal, o.Tunnels = clone(s.O.UcastLocal), clone(s.O.McastLocal), clone(s.O.Tunnels)
	return &o
}

func clone[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m))
	maps.Copy(c, m)
	return c
}

func (s *Switch) locator(a netip.Addr, ch *plan.Changes) string {
	if u, ok := ch.Locators[a]; ok {
		if _, exists := s.O.Locators[u]; exists {
			return u
		}
	}
	for u, l := range s.O.Locators {
		if l.DstIP == a.String() {
			return u
		}
	}
	u := s.uuid()
	s.O.Locators[u] = &vtepdb.PhysicalLocator{UUID: u, EncapsulationType: plan.EncapVXLAN, DstIP: a.String()}
	return u
}

// Apply applies a plan. It fails, having applied the changes before it,
// on a change a real database would refuse: a reference to a row that does
// not exist, or a logical switch deleted while rows still reference it.
func (s *Switch) Apply(ch *plan.Changes) error {
	ls := clone(ch.LSByVNI)
	for _, c := range ch.List {
		switch c.Op {
		case plan.LSCreate:
			u := s.uuid()
			k := int(c.VNI)
			s.O.Switches[u] = &vtepdb.LogicalSwitch{UUID: u, Name: c.Name, TunnelKey: &k, ReplicationMode: optional(c.ReplicationMode),
				OtherConfig: map[string]string{plan.OwnerKey: plan.OwnerValue}}
			ls[c.VNI] = u
		case plan.LSUpdate:
			o, ok := s.O.Switches[c.UUID]
			if !ok {
				return fmt.Errorf("%s: no logical switch %s", c.Op, c.UUID)
			}
			k := int(c.VNI)
			n := *o
			n.Name, n.TunnelKey = c.Name, &k
			if c.ReplicationMode != "" {
				n.ReplicationMode = optional(c.ReplicationMode)
			}
			s.O.Switches[c.UUID] = &n
		case plan.BindingSet:
			p, ok := s.O.Ports[c.Port]
			if !ok || ls[c.VNI] == "" {
				return fmt.Errorf("%s: port %q or VNI %d unknown", c.Op, c.Port, c.VNI)
			}
			p.VLANBindings[int(c.VLAN)] = ls[c.VNI]
		case plan.BindingDelete:
			delete(s.O.Ports[c.Port].VLANBindings, int(c.VLAN))
		case plan.UcastAdd:
			if ls[c.VNI] == "" {
				return fmt.Errorf("%s %s: no logical switch for VNI %d", c.Op, c.MAC, c.VNI)
			}
			u := s.uuid()
			s.O.UcastRemote[u] = &vtepdb.UcastMacsRemote{UUID: u, LogicalSwitch: ls[c.VNI], MAC: c.MAC.String(), Ipaddr: addr(c.IP), Locator: s.locator(c.VTEP, ch)}
		case plan.UcastUpdate:
			r, ok := s.O.UcastRemote[c.UUID]
			if !ok {
				return fmt.Errorf("%s: no row %s", c.Op, c.UUID)
			}
			n := *r
			n.Ipaddr, n.Locator = addr(c.IP), s.locator(c.VTEP, ch)
			s.O.UcastRemote[c.UUID] = &n
		case plan.UcastDelete:
			delete(s.O.UcastRemote, c.UUID)
		case plan.McastSet:
			set := &vtepdb.PhysicalLocatorSet{UUID: s.uuid()}
			for _, a := range c.VTEPs {
				set.Locators = append(set.Locators, s.locator(a, ch))
			}
			s.O.LocatorSets[set.UUID] = set
			if c.UUID != "" {
				r, ok := s.O.McastRemote[c.UUID]
				if !ok {
					return fmt.Errorf("%s: no row %s", c.Op, c.UUID)
				}
				n := *r
				n.LocatorSet = set.UUID
				s.O.McastRemote[c.UUID] = &n
			} else {
				if ls[c.VNI] == "" {
					return fmt.Errorf("%s: no logical switch for VNI %d", c.Op, c.VNI)
				}
				u := s.uuid()
				s.O.McastRemote[u] = &vtepdb.McastMacsRemote{UUID: u, LogicalSwitch: ls[c.VNI], MAC: plan.UnknownDst, LocatorSet: set.UUID}
			}
		case plan.McastDelete:
			delete(s.O.McastRemote, c.UUID)
		case plan.TunnelBFD:
			t, ok := s.O.Tunnels[c.UUID]
			if !ok {
				return fmt.Errorf("%s: no tunnel %s", c.Op, c.UUID)
			}
			n := *t
			n.BFDParams = clone(t.BFDParams)
			for k, v := range c.BFD {
				n.BFDParams[k] = v
			}
			s.O.Tunnels[c.UUID] = &n
		case plan.LSDelete:
			if err := s.unreferenced(c.UUID); err != nil {
				return err
			}
			delete(s.O.Switches, c.UUID)
		default:
			return fmt.Errorf("unknown change %s", c.Op)
		}
	}
	return nil
}

func (s *Switch) unreferenced(lsUUID string) error {
	for _, r := range s.O.UcastRemote {
		if r.LogicalSwitch == lsUUID {
			return fmt.Errorf("logical switch %s deleted while remote MAC %s references it", lsUUID, r.MAC)
		}
	}
	for _, r := range s.O.McastRemote {
		if r.LogicalSwitch == lsUUID {
			return fmt.Errorf("logical switch %s deleted while its flood row references it", lsUUID)
		}
	}
	for _, p := range s.O.Ports {
		for v, l := range p.VLANBindings {
			if l == lsUUID {
				return fmt.Errorf("logical switch %s deleted while port %s VLAN %d binds it", lsUUID, p.Name, v)
			}
		}
	}
	return nil
}

// optional returns a pointer to s, nil for "" (an optional column unset).
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func addr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Learn adds a Ucast_Macs_Local row the way the switch does when a host
// sends from a bound port: in the logical switch of that VNI, behind the
// switch's tunnel IP.
func (s *Switch) Learn(vni l2.VNI, mac l2.MAC) error {
	lsUUID := s.lsOf(vni)
	if lsUUID == "" {
		return fmt.Errorf("switch %s has no logical switch for VNI %d", s.O.PhysicalSwitch.Name, vni)
	}
	ip, _ := netip.ParseAddr(s.O.PhysicalSwitch.TunnelIPs[0])
	var loc string
	for u, l := range s.O.Locators {
		if l.DstIP == ip.String() {
			loc = u
		}
	}
	if loc == "" {
		loc = s.uuid()
		s.O.Locators[loc] = &vtepdb.PhysicalLocator{UUID: loc, EncapsulationType: plan.EncapVXLAN, DstIP: ip.String()}
	}
	s.Forget(vni, mac)
	u := s.uuid()
	s.O.UcastLocal[u] = &vtepdb.UcastMacsLocal{UUID: u, LogicalSwitch: lsUUID, MAC: mac.String(), Locator: loc}
	return nil
}

// Forget removes a learned MAC (aged out, or the host left).
func (s *Switch) Forget(vni l2.VNI, mac l2.MAC) {
	lsUUID := s.lsOf(vni)
	for u, r := range s.O.UcastLocal {
		if r.LogicalSwitch == lsUUID && strings.EqualFold(r.MAC, mac.String()) {
			delete(s.O.UcastLocal, u)
		}
	}
}

func (s *Switch) lsOf(vni l2.VNI) string {
	for _, u := range slices.Sorted(maps.Keys(s.O.Switches)) {
		if plan.VNIOf(s.O.Switches[u]) == vni {
			return u
		}
	}
	return ""
}

// Dump lists the tables, one sorted line per row:
//
//	ls NAME key=VNI owner=torstitch|-
//	bind PORT VLAN LS
//	remote LS MAC [IP] -> VTEP
//	flood LS -> VTEP,VTEP
//	local LS MAC -> VTEP
func (s *Switch) Dump() []string {
	var out []string
	name := func(u string) string {
		if ls := s.O.Switches[u]; ls != nil {
			return ls.Name
		}
		return "?" + u
	}
	locIP := func(u string) string {
		if l := s.O.Locators[u]; l != nil {
			return l.DstIP
		}
		return ""
	}
	for _, ls := range s.O.Switches {
		owner := "-"
		if plan.Owned(ls) {
			owner = plan.OwnerValue
		}
		out = append(out, fmt.Sprintf("ls %s key=%d owner=%s", ls.Name, plan.VNIOf(ls), owner))
	}
	for _, p := range s.O.Ports {
		for v, u := range p.VLANBindings {
			out = append(out, fmt.Sprintf("bind %s %d %s", p.Name, v, name(u)))
		}
	}
	for _, r := range s.O.UcastRemote {
		ip := ""
		if r.Ipaddr != "" {
			ip = " " + r.Ipaddr
		}
		out = append(out, fmt.Sprintf("remote %s %s%s -> %s", name(r.LogicalSwitch), r.MAC, ip, locIP(r.Locator)))
	}
	for _, r := range s.O.McastRemote {
		var ips []string
		if set := s.O.LocatorSets[r.LocatorSet]; set != nil {
			for _, u := range set.Locators {
				ips = append(ips, locIP(u))
			}
		}
		slices.Sort(ips)
		out = append(out, fmt.Sprintf("flood %s -> %s", name(r.LogicalSwitch), strings.Join(ips, ",")))
	}
	for _, r := range s.O.UcastLocal {
		out = append(out, fmt.Sprintf("local %s %s -> %s", name(r.LogicalSwitch), r.MAC, locIP(r.Locator)))
	}
	slices.Sort(out)
	return out
}
