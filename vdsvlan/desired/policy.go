package desired

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/torstitch/torstitch/vtep/l2"
)

// VNI policy modes.
const (
	ModeMap    = "map"    // explicit map: port group name or key (or "vlan:N") → VNI
	ModeTag    = "tag"    // a vSphere tag "vni:N" in Category on the port group
	ModeOffset = "offset" // VNI = Base + VLAN
)

// Host port modes.
const (
	PortsLLDP   = "lldp"   // from the LLDP/CDP neighbour of each uplink
	PortsStatic = "static" // from HostPorts.Static only
)

// VNIPolicy says which VNI a port group's VLAN is stitched into.
//
// Map keys are port group keys or names; keys of the form "vlan:N" give VLAN N
// a VNI wherever it appears without a port-group entry (trunk expansion).
// Trunk port groups expand to every VLAN of their ranges that has a VNI: from
// the policy directly (offset, "vlan:N" map keys) or from a single-VLAN port
// group with that VLAN on the same distributed switch.
type VNIPolicy struct {
	Mode     string            `yaml:"mode" json:"mode"`
	Map      map[string]l2.VNI `yaml:"map,omitempty" json:"map,omitempty"`
	Category string            `yaml:"category,omitempty" json:"category,omitempty"`
	Base     l2.VNI            `yaml:"base,omitempty" json:"base,omitempty"`
}

// Validate checks the policy for its mode.
func (p VNIPolicy) Validate() error {
	switch p.Mode {
	case ModeMap:
		if len(p.Map) == 0 {
			return errors.New("vni_policy: mode map needs a non-empty map")
		}
		for k, v := range p.Map {
			if err := v.Validate(); err != nil {
				return fmt.Errorf("vni_policy: map %q: %w", k, err)
			}
		}
	case ModeTag:
		if p.Category == "" {
			return errors.New("vni_policy: mode tag needs a category")
		}
	case ModeOffset:
		if p.Base == 0 || p.Base+l2.VNI(l2.MaxVLAN) > l2.MaxVNI {
			return fmt.Errorf("vni_policy: offset base %d must be 1-%d", p.Base, l2.MaxVNI-l2.VNI(l2.MaxVLAN))
		}
	case "":
		return errors.New("vni_policy: mode missing (map, tag or offset)")
	default:
		return fmt.Errorf("vni_policy: unknown mode %q (map, tag or offset)", p.Mode)
	}
	return nil
}

// Rewrite turns an LLDP/CDP neighbour name into the pair's Physical_Switch or
// Physical_Port name: Match is a regular expression, Replace its replacement
// ($1 for groups). Rules apply in order; every matching rule applies.
type Rewrite struct {
	Field   string `yaml:"field" json:"field"` // switch or port
	Match   string `yaml:"match" json:"match"`
	Replace string `yaml:"replace" json:"replace"`
}

// HostPorts says which ToR ports face which host. In lldp mode, Static
// entries (if any) override the neighbours of the hosts they name.
type HostPorts struct {
	Mode    string                  `json:"mode"`
	Static  map[string][]l2.PortRef `json:"static,omitempty"` // host name → SWITCH:PORT
	Rewrite []Rewrite               `json:"rewrite,omitempty"`
}

type hostPortsYAML struct {
	Mode    string              `yaml:"mode"`
	Static  map[string][]string `yaml:"static"`
	Rewrite []Rewrite           `yaml:"rewrite"`
}

// UnmarshalYAML accepts the scalar forms `lldp` and `static` as well as a
// mapping {mode, static: {host: ["tor1:eth1"]}, rewrite: [...]}.
func (h *HostPorts) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*h = HostPorts{Mode: n.Value}
		return nil
	}
	var y hostPortsYAML
	dec := n.Decode
	if err := dec(&y); err != nil {
		return err
	}
	out := HostPorts{Mode: y.Mode, Rewrite: y.Rewrite}
	if len(y.Static) > 0 {
		out.Static = make(map[string][]l2.PortRef, len(y.Static))
		for host, ports := range y.Static {
			for _, s := range ports {
				p, err := l2.ParsePortRef(s)
				if err != nil {
					return fmt.Errorf("host_ports: static %s: %w", host, err)
				}
				out.Static[host] = append(out.Static[host], p)
			}
		}
	}
	if out.Mode == "" && len(out.Static) > 0 {
		out.Mode = PortsStatic
	}
	*h = out
	return nil
}

// MarshalYAML writes the scalar form when only the mode is set.
func (h HostPorts) MarshalYAML() (any, error) {
	if len(h.Static) == 0 && len(h.Rewrite) == 0 {
		return h.Mode, nil
	}
	y := hostPortsYAML{Mode: h.Mode, Rewrite: h.Rewrite, Static: map[string][]string{}}
	for host, ports := range h.Static {
		for _, p := range ports {
			y.Static[host] = append(y.Static[host], p.String())
		}
	}
	return y, nil
}

// Validate checks the mode, the static entries and the rewrite rules.
func (h HostPorts) Validate() error {
	switch h.Mode {
	case PortsLLDP:
	case PortsStatic:
		if len(h.Static) == 0 {
			return errors.New("host_ports: mode static needs a static map")
		}
	case "":
		return errors.New("host_ports: mode missing (lldp or static)")
	default:
		return fmt.Errorf("host_ports: unknown mode %q (lldp or static)", h.Mode)
	}
	_, err := compileRewrites(h.Rewrite)
	return err
}

type rewriteRule struct {
	port bool
	re   *regexp.Regexp
	repl string
}

func compileRewrites(rs []Rewrite) ([]rewriteRule, error) {
	out := make([]rewriteRule, 0, len(rs))
	for i, r := range rs {
		var port bool
		switch r.Field {
		case "switch":
		case "port":
			port = true
		default:
			return nil, fmt.Errorf("host_ports: rewrite %d: field %q must be switch or port", i, r.Field)
		}
		re, err := regexp.Compile(r.Match)
		if err != nil {
			return nil, fmt.Errorf("host_ports: rewrite %d: %w", i, err)
		}
		out = append(out, rewriteRule{port: port, re: re, repl: r.Replace})
	}
	return out, nil
}

// Params configures a Planner.
type Params struct {
	VNI   VNIPolicy
	Ports HostPorts
	// Switches names the pair's Physical_Switch names and, for each, the
	// accepted port names. Empty: accept every neighbour. A switch with an
	// empty port list accepts all its ports.
	Switches map[string][]string
}

// Planner computes desired bindings. It is immutable and safe for
// concurrent use.
type Planner struct {
	vni      VNIPolicy
	ports    HostPorts
	rewrites []rewriteRule
	switches map[string]map[string]bool // nil = accept all; inner nil = all ports
}

// NewPlanner validates p and compiles its rewrite rules.
func NewPlanner(p Params) (*Planner, error) {
	if err := p.VNI.Validate(); err != nil {
		return nil, err
	}
	if err := p.Ports.Validate(); err != nil {
		return nil, err
	}
	rw, err := compileRewrites(p.Ports.Rewrite)
	if err != nil {
		return nil, err
	}
	pl := &Planner{vni: p.VNI, ports: p.Ports, rewrites: rw}
	if len(p.Switches) > 0 {
		pl.switches = make(map[string]map[string]bool, len(p.Switches))
		for sw, ports := range p.Switches {
			var set map[string]bool
			if len(ports) > 0 {
				set = make(map[string]bool, len(ports))
				for _, port := range ports {
					set[port] = true
				}
			}
			pl.switches[sw] = set
		}
	}
	return pl, nil
}

// neighbourPort maps an LLDP/CDP neighbour to a port of the pair.
func (p *Planner) neighbourPort(n Neighbour) (l2.PortRef, bool) {
	sw, port := n.Switch, n.Port
	for _, r := range p.rewrites {
		if r.port {
			port = r.re.ReplaceAllString(port, r.repl)
		} else {
			sw = r.re.ReplaceAllString(sw, r.repl)
		}
	}
	if sw == "" || port == "" {
		return l2.PortRef{}, false
	}
	ref := l2.PortRef{Switch: sw, Port: port}
	return ref, p.accept(ref)
}

func (p *Planner) accept(ref l2.PortRef) bool {
	if p.switches == nil {
		return true
	}
	ports, ok := p.switches[ref.Switch]
	if !ok {
		return false
	}
	return ports == nil || ports[ref.Port]
}

// memberPorts lists the pair's ports facing host h as a member of a switch
// that uses the given uplinks (empty = all).
func (p *Planner) memberPorts(h *Host, uplinks []string) []l2.PortRef {
	if static, ok := p.ports.Static[h.Name]; ok {
		out := make([]l2.PortRef, 0, len(static))
		for _, ref := range static {
			if p.accept(ref) {
				out = append(out, ref)
			}
		}
		return out
	}
	if p.ports.Mode != PortsLLDP {
		return nil
	}
	var out []l2.PortRef
	for _, n := range h.Neighbours {
		if len(uplinks) > 0 && !contains(uplinks, n.PNIC) {
			continue
		}
		if ref, ok := p.neighbourPort(n); ok {
			out = append(out, ref)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// tagVNIs extracts the VNIs named by tags of the form "vni:N".
func tagVNIs(tags []string) ([]l2.VNI, []string) {
	var vnis []l2.VNI
	var bad []string
	for _, t := range tags {
		rest, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(t)), "vni:")
		if !ok {
			continue
		}
		v, err := l2.ParseVNI(rest)
		if err != nil {
			bad = append(bad, t)
			continue
		}
		if !containsVNI(vnis, v) {
			vnis = append(vnis, v)
		}
	}
	sort.Slice(vnis, func(i, j int) bool { return vnis[i] < vnis[j] })
	return vnis, bad
}

func containsVNI(list []l2.VNI, v l2.VNI) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
