package publish

import (
	"fmt"
	"strings"
	"testing"

	"github.com/torstitch/torstitch/vtep/l2"
)

func TestParsePool(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"3000-3099", "3000-3099", ""},
		{"3000-3049, 3100", "3000-3049,3100", ""},
		{"", "", "empty"},
		{"0-10", "", `"0" is not a VLAN 1-4094`},
		{"4095", "", `"4095" is not a VLAN`},
		{"20-10", "", "backwards"},
		{"a-b", "", "is not a VLAN"},
	}
	for _, tc := range tests {
		p, err := ParsePool(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePool(%q) = %v, %v; want error %q", tc.in, p, err, tc.err)
			}
			continue
		}
		if err != nil || p.String() != tc.want {
			t.Errorf("ParsePool(%q) = %v, %v; want %s", tc.in, p, err, tc.want)
		}
	}
}

func TestMark(t *testing.T) {
	m := Mark{Owner: "pair1", VNI: 10300}
	for _, s := range []string{m.String(), m.Description(), "admin note. " + m.String() + " more"} {
		if got, ok := ParseMark(s); !ok || got != m {
			t.Errorf("ParseMark(%q) = %v, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "torstitch:owner=,vni=1", "torstitch:owner=a,vni=x", "torstitch:owner=a,vni=0", "torstitch:owner=a b,vni=5"} {
		if got, ok := ParseMark(s); ok {
			t.Errorf("ParseMark(%q) = %v, want no mark", s, got)
		}
	}
}

// owned is a port group carrying agent pair1's field for vni.
func owned(ref, name string, vlan int, vni l2.VNI, vms ...string) PortGroup {
	m := Mark{Owner: "pair1", VNI: vni}
	return PortGroup{Ref: ref, Key: ref, Name: name, VLAN: vlan, Uses: []l2.VLAN{l2.VLAN(vlan)}, Field: m.String(),
		Description: m.Description(), VMs: vms}
}

func foreign(ref, name string, vlan int) PortGroup {
	return PortGroup{Ref: ref, Key: ref, Name: name, VLAN: vlan, Uses: []l2.VLAN{l2.VLAN(vlan)}}
}

func TestPlan(t *testing.T) {
	pool, _ := ParsePool("3000-3002")
	web := Network{VNI: 10300, Name: "web"}
	tests := []struct {
		name    string
		desired []Network
		pgs     []PortGroup
		found   bool
		last    map[l2.VNI]l2.VLAN
		acts    string // kind:vni:vlan ...
		states  string // vni:state:vlan ...
		errPart string
	}{
		{"create from pool, skipping used VLANs", []Network{web}, []PortGroup{foreign("pg1", "db", 3000)}, true, nil,
			"create:10300:3001", "10300:pending:3001", ""},
		{"explicit VLAN", []Network{{VNI: 10300, Name: "web", VLAN: 42}}, nil, true, nil,
			"create:10300:42", "10300:pending:42", ""},
		{"steady state does nothing", []Network{web}, []PortGroup{owned("pg1", "web", 3002, 10300)}, true, nil,
			"", "10300:ready:3002", ""},
		{"crash before the field: adopt", []Network{web}, []PortGroup{{Ref: "pg1", Key: "pg1", Name: "web", VLAN: 3000,
			Uses: []l2.VLAN{3000}, Description: Mark{"pair1", 10300}.Description()}}, true, nil,
			"adopt:10300:3000", "10300:pending:3000", ""},
		{"renamed: restore", []Network{web}, []PortGroup{owned("pg1", "web-old", 3000, 10300)}, true, nil,
			"restore:10300:3000", "10300:pending:3000", ""},
		{"re-VLANed out of the pool: back to the last VLAN", []Network{web}, []PortGroup{owned("pg1", "web", 77, 10300)}, true,
			map[l2.VNI]l2.VLAN{10300: 3001}, "restore:10300:3001", "10300:pending:3001", ""},
		{"deleted: recreate on the last VLAN", []Network{web}, nil, true, map[l2.VNI]l2.VLAN{10300: 3002},
			"create:10300:3002", "10300:pending:3002", ""},
		{"name taken", []Network{web}, []PortGroup{foreign("pg1", "web", 10)}, true, nil,
			"", "10300:error:0", `name "web" is taken by port group pg1`},
		{"another agent's port group is foreign", []Network{web}, []PortGroup{{Ref: "pg1", Key: "pg1", Name: "web", VLAN: 3000,
			Field: Mark{"pair2", 10300}.String()}}, true, nil, "", "10300:error:0", "does not own"},
		{"pool exhausted", []Network{web}, []PortGroup{foreign("a", "a", 3000), foreign("b", "b", 3001), foreign("c", "c", 3002)}, true, nil,
			"", "10300:error:0", "VLAN pool 3000-3002 exhausted on switch DSwitch"},
		{"explicit VLAN used", []Network{{VNI: 10300, Name: "web", VLAN: 10}}, []PortGroup{foreign("pg1", "db", 10)}, true, nil,
			"", "10300:error:10", `VLAN 10 is used by port group "db"`},
		{"switch missing", []Network{web}, nil, false, nil, "", "10300:error:0", `distributed switch "DSwitch" not found`},
		{"unpublished: delete", nil, []PortGroup{owned("pg1", "web", 3000, 10300)}, true, nil,
			"delete:10300:0", "", ""},
		{"unpublished but attached: keep", nil, []PortGroup{owned("pg1", "web", 3000, 10300, "vm1", "vm2")}, true, nil,
			"", "10300:retiring:3000", "VMs attached: vm1, vm2"},
		{"duplicate owned: delete the extra", []Network{web}, []PortGroup{owned("pg1", "web", 3000, 10300), owned("pg2", "web-2", 3001, 10300)}, true, nil,
			"delete:10300:0", "10300:ready:3000", ""},
		{"two networks never share a VLAN", []Network{web, {VNI: 10301, Name: "app"}}, []PortGroup{owned("pg1", "web", 3000, 10300)}, true, nil,
			"create:10301:3001", "10300:ready:3000 10301:pending:3001", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			acts, sts := Plan(Input{Agent: "pair1", Switch: "DSwitch", Pool: pool, Desired: tc.desired,
				Obs: Observed{SwitchFound: tc.found, PortGroups: tc.pgs}, Last: tc.last})
			var a, s []string
			for _, x := range acts {
				a = append(a, fmt.Sprintf("%s:%d:%d", x.Kind, x.VNI, x.VLAN))
			}
			errs := ""
			for _, x := range sts {
				s = append(s, fmt.Sprintf("%d:%s:%d", x.VNI, x.State, x.VLAN))
				errs += x.Error
			}
			if got := strings.Join(a, " "); got != tc.acts {
				t.Errorf("actions %q, want %q", got, tc.acts)
			}
			if got := strings.Join(s, " "); got != tc.states {
				t.Errorf("states %q, want %q", got, tc.states)
			}
			if tc.errPart != "" && !strings.Contains(errs, tc.errPart) {
				t.Errorf("errors %q, want %q", errs, tc.errPart)
			}
		})
	}
}
