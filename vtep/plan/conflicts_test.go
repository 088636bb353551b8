package plan

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// TestPlanConflictsIsolated: desired state that collides with the switch is
// reported and skipped for its VNI or binding alone; the rest of the switch
// converges, and torstitch's own rows of a held-back VNI are left as they
// are. Once the collision is gone, the held-back part converges too.
func TestPlanConflictsIsolated(t *testing.T) {
	foreign := func(vni int, name string) func(*sim) {
		return func(s *sim) {
			k := vni
			s.o.Switches["f"] = &vtepdb.LogicalSwitch{UUID: "f", Name: name, TunnelKey: &k}
		}
	}
	tests := []struct {
		name     string
		before   bool // converge base() first, so torstitch's own rows exist
		collide  func(s *sim)
		mutate   func(d *Desired)
		want     string
		heldVNI  l2.VNI       // a VNI that must not be touched at all
		heldBind *PortBinding // a binding that must not be written
	}{
		{name: "foreign logical switch holds VNI 10100", collide: foreign(10100, "theirs"),
			want: `VNI 10100: logical switch "theirs", which torstitch does not manage, uses this VNI; VNI not applied on this switch`, heldVNI: 10100},
		{name: "foreign logical switch holds VNI 10100, ours already there", before: true, collide: foreign(10100, "theirs"),
			want: `VNI 10100: logical switch "theirs"`, heldVNI: 10100},
		{name: "foreign logical switch holds the name vni10200", collide: foreign(7, "vni10200"),
			want: `VNI 10200: its name "vni10200" is taken by a logical switch torstitch does not manage`, heldVNI: 10200},
		{name: "port VLAN bound to a foreign logical switch", collide: func(s *sim) {
			foreign(7000, "theirs")(s)
			s.o.Ports["eth2"].VLANBindings[100] = "f"
		}, want: `port eth2 VLAN 100: bound to logical switch "theirs", which torstitch does not manage; binding not applied`,
			heldBind: &PortBinding{"eth2", 100, 10100}},
		{name: "port the switch lacks", mutate: func(d *Desired) { d.Bindings = append(d.Bindings, PortBinding{"eth9", 300, 10100}) },
			want: `port eth9 VLAN 300: switch "tor1" has no port "eth9"`, heldBind: &PortBinding{"eth9", 300, 10100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim("eth1", "eth2")
			d := base()
			if tc.mutate != nil {
				tc.mutate(d)
			}
			if tc.before {
				good := base()
				s.converge(t, good, Options{})
			}
			if tc.collide != nil {
				tc.collide(s)
			}
			held := map[string]bool{}
			for u, ls := range s.o.Switches {
				if tc.heldVNI != 0 && VNIOf(ls) == tc.heldVNI && Owned(ls) {
					held[u] = true
				}
			}
			heldRows := 0
			for _, r := range s.o.UcastRemote {
				if held[r.LogicalSwitch] {
					heldRows++
				}
			}
			ch, err := Plan(d, s.o, Options{})
			if err != nil {
				t.Fatalf("a conflict failed the whole plan: %v", err)
			}
			if len(ch.Conflicts) != 1 || !strings.HasPrefix(ch.Conflicts[0].String(), tc.want) {
				t.Fatalf("conflicts = %q, want one starting %q", ch.Conflicts, tc.want)
			}
			for _, c := range ch.List {
				if tc.heldVNI != 0 && (c.VNI == tc.heldVNI || held[c.UUID]) {
					t.Fatalf("plan touches held-back VNI %d: %+v", tc.heldVNI, c)
				}
				if b := tc.heldBind; b != nil && c.Op == BindingSet && c.Port == b.Port && c.VLAN == b.VLAN {
					t.Fatalf("plan writes held-back binding: %+v", c)
				}
				if c.UUID == "f" {
					t.Fatalf("plan touches the foreign logical switch: %+v", c)
				}
			}
			s.apply(t, ch)
			// Everything else converged: planning again gives nothing but
			// the same conflict.
			again, err := Plan(d, s.o, Options{})
			if err != nil || !again.Empty() || !slices.Equal(again.Conflicts, ch.Conflicts) {
				t.Fatalf("not converged around the conflict: %v, %v, %q", err, again.count(), again.Conflicts)
			}
			n := 0
			for _, r := range s.o.UcastRemote {
				if held[r.LogicalSwitch] {
					n++
				}
			}
			if n != heldRows {
				t.Fatalf("torstitch's rows of the held-back VNI: %d, were %d", n, heldRows)
			}
			for _, m := range d.RemoteMACs { // the other VNIs' remote MACs are in place
				if m.VNI == tc.heldVNI {
					continue
				}
				if !hasRemote(s.o, m) {
					t.Fatalf("remote MAC %s VNI %d missing around the conflict", m.MAC, m.VNI)
				}
			}
			// The collision goes: the held-back part converges.
			delete(s.o.Switches, "f")
			for _, p := range s.o.Ports {
				for v, u := range p.VLANBindings {
					if u == "f" {
						delete(p.VLANBindings, v)
					}
				}
			}
			if tc.heldBind != nil && tc.heldBind.Port == "eth9" {
				return
			}
			s.converge(t, d, Options{})
			if ch, _ := Plan(d, s.o, Options{}); len(ch.Conflicts) != 0 {
				t.Fatalf("conflicts after the collision went: %q", ch.Conflicts)
			}
		})
	}
}

func hasRemote(o *Observed, m l2.RemoteMAC) bool {
	for _, r := range o.UcastRemote {
		ls := o.Switches[r.LogicalSwitch]
		if ls != nil && VNIOf(ls) == m.VNI && strings.EqualFold(r.MAC, m.MAC.String()) {
			return true
		}
	}
	return false
}

func TestVNIOfName(t *testing.T) {
	for _, tc := range []struct {
		name string
		vni  l2.VNI
		ok   bool
	}{
		{"vni10100", 10100, true}, {"vni1", 1, true}, {"vni16777215", 16777215, true},
		{"vni0", 0, false}, {"vni16777216", 0, false}, {"vni010", 0, false}, {"vni", 0, false},
		{"vni-1", 0, false}, {"VNI10", 0, false}, {"theirs", 0, false}, {"vni10a", 0, false},
	} {
		if v, ok := VNIOfName(tc.name); v != tc.vni || ok != tc.ok {
			t.Errorf("VNIOfName(%q) = %d, %v; want %d, %v", tc.name, v, ok, tc.vni, tc.ok)
		}
		if tc.ok && DefaultName(tc.vni) != tc.name {
			t.Errorf("DefaultName(%d) = %q, want %q", tc.vni, DefaultName(tc.vni), tc.name)
		}
	}
}

// TestLocalMACsOwnedOnly: MACs a switch learned in another controller's
// logical switch are not torstitch's to advertise, nor MACs behind a
// locator that is no IPv4 VTEP.
func TestLocalMACsOwnedOnly(t *testing.T) {
	s := newSim("eth1")
	s.converge(t, base(), Options{})
	k := 7000
	s.o.Switches["f"] = &vtepdb.LogicalSwitch{UUID: "f", Name: "theirs", TunnelKey: &k}
	s.o.Locators["me"] = &vtepdb.PhysicalLocator{UUID: "me", EncapsulationType: EncapVXLAN, DstIP: "192.0.2.100"}
	ours := ""
	for u, ls := range s.o.Switches {
		if Owned(ls) && VNIOf(ls) == 10100 {
			ours = u
		}
	}
	s.o.UcastLocal["l1"] = &vtepdb.UcastMacsLocal{UUID: "l1", LogicalSwitch: ours, MAC: "00:50:56:00:01:11", Locator: "me", Ipaddr: "224.0.0.5"}
	s.o.UcastLocal["l2"] = &vtepdb.UcastMacsLocal{UUID: "l2", LogicalSwitch: "f", MAC: "00:50:56:00:70:00", Locator: "me"}
	// Rows the planner could not use are skipped here, where the switch's
	// rows enter: a locator that is not a unicast IPv4 address.
	for i, dst := range []string{"2001:db8::1", "239.1.1.1", "0.0.0.0", "not-an-ip"} {
		u := fmt.Sprintf("bad%d", i)
		s.o.Locators[u] = &vtepdb.PhysicalLocator{UUID: u, EncapsulationType: EncapVXLAN, DstIP: dst}
		s.o.UcastLocal[u] = &vtepdb.UcastMacsLocal{UUID: u, LogicalSwitch: ours, MAC: fmt.Sprintf("00:50:56:00:09:%02x", i), Locator: u}
	}
	got := s.o.LocalMACs()
	if len(got) != 1 || got[0].MAC != l2.MustMAC("00:50:56:00:01:11") || got[0].VNI != 10100 {
		t.Fatalf("LocalMACs = %+v, want only 00:50:56:00:01:11 in VNI 10100", got)
	}
	if got[0].IP.IsValid() {
		t.Fatalf("multicast ipaddr %s kept: want the MAC without an IP", got[0].IP)
	}
}
