package clab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// fieldSet names the fields allowed at one level of the file and the valid
// containerlab fields at that level that torlab rejects by name.
type fieldSet struct {
	where       string
	allowed     []string
	unsupported []string
}

var (
	topFields = fieldSet{
		where:       "top level",
		allowed:     []string{"name", "prefix", "topology"},
		unsupported: []string{"mgmt", "settings", "debug"},
	}
	topologyFields = fieldSet{
		where:   "topology",
		allowed: []string{"defaults", "kinds", "groups", "nodes", "links"},
	}
	// containerlab node fields that torlab does not implement.
	unsupportedNodeFields = []string{
		"type", "image-pull-policy", "license", "position", "entrypoint", "ports",
		"mgmt-ipv4", "mgmt-ipv6", "mac-address", "publish", "env-files", "user",
		"network-mode", "runtime", "cpu", "cpu-set", "memory", "sysctls", "extras",
		"wait-for", "startup-config", "startup-delay", "enforce-startup-config",
		"suppress-startup-config", "auto-remove", "restart-policy", "dns",
		"certificate", "healthcheck", "config", "devices", "cap-add", "shm-size",
		"aliases", "stages", "components", "kernel-modules", "SANs", "sandbox", "kernel",
	}
	linkFields = fieldSet{
		where:   "link",
		allowed: []string{"endpoints", "mtu"},
		unsupported: []string{"type", "endpoint", "labels", "vars", "host-interface",
			"mode", "remote", "vni", "udp-port", "parent-interface"},
	}
	// special endpoint "nodes" of containerlab that torlab does not implement.
	unsupportedEndpointNodes = []string{"host", "mgmt-net", "macvlan", "vxlan", "vxlan-stitch", "dummy"}

	nameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	ifaceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$`)
)

func nodeFieldSet(where string, withKind, withGroup bool) fieldSet {
	allowed := []string{"image", "cmd", "exec", "binds", "env", "labels"}
	if withKind {
		allowed = append(allowed, "kind")
	}
	if withGroup {
		allowed = append(allowed, "group")
	}
	return fieldSet{where: where, allowed: allowed, unsupported: unsupportedNodeFields}
}

// ErrInvalid is wrapped by every error about the file's contents.
var ErrInvalid = errors.New("invalid topology")

func errAt(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrInvalid, n.Line, fmt.Sprintf(format, args...))
}

// Load reads and resolves a topology file.
func Load(path string) (*Topology, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("topology path %s: %w", path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("reading topology: %w", err)
	}
	t, err := Parse(data, filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.File = abs
	return t, nil
}

// Parse parses and resolves a topology; relative bind paths are resolved
// against dir.
func Parse(data []byte, dir string) (*Topology, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(doc.Content) != 1 {
		return nil, fmt.Errorf("%w: empty document", ErrInvalid)
	}
	root := doc.Content[0]
	f, err := mapping(root, topFields)
	if err != nil {
		return nil, err
	}
	t := &Topology{Prefix: DefaultPrefix, Dir: dir}
	nameNode, ok := f["name"]
	if !ok {
		return nil, errAt(root, "missing required field \"name\"")
	}
	if err := nameNode.value.Decode(&t.Name); err != nil {
		return nil, errAt(nameNode.value, "name: %v", err)
	}
	if !nameRE.MatchString(t.Name) {
		return nil, errAt(nameNode.value, "lab name %q must match %s", t.Name, nameRE)
	}
	if p, ok := f["prefix"]; ok {
		if err := p.value.Decode(&t.Prefix); err != nil {
			return nil, errAt(p.value, "prefix: %v", err)
		}
		if t.Prefix != "" && t.Prefix != "__lab-name" && !nameRE.MatchString(t.Prefix) {
			return nil, errAt(p.value, "prefix %q must match %s", t.Prefix, nameRE)
		}
	}
	topo, ok := f["topology"]
	if !ok {
		return nil, errAt(root, "missing required field \"topology\"")
	}
	if err := parseTopology(t, topo.value); err != nil {
		return nil, err
	}
	return t, nil
}

type entry struct {
	key   *yaml.Node
	value *yaml.Node
}

// mapping checks that n is a mapping whose keys are all allowed and returns
// its entries by key.
func mapping(n *yaml.Node, fs fieldSet) (map[string]entry, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "%s: expected a mapping", fs.where)
	}
	out := map[string]entry{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case contains(fs.allowed, k.Value):
		case contains(fs.unsupported, k.Value):
			return nil, errAt(k, "%s: containerlab field %q is not supported by torlab", fs.where, k.Value)
		default:
			return nil, errAt(k, "%s: unknown field %q", fs.where, k.Value)
		}
		if _, dup := out[k.Value]; dup {
			return nil, errAt(k, "%s: duplicate field %q", fs.where, k.Value)
		}
		out[k.Value] = entry{key: k, value: v}
	}
	return out, nil
}

// orderedEntries returns the entries of a free-form mapping (node names,
// kind names) in file order.
func orderedEntries(n *yaml.Node, where string) ([]entry, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "%s: expected a mapping", where)
	}
	var out []entry
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if seen[k.Value] {
			return nil, errAt(k, "%s: duplicate key %q", where, k.Value)
		}
		seen[k.Value] = true
		out = append(out, entry{key: k, value: n.Content[i+1]})
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// rawNode holds node fields as written; nil means not set.
type rawNode struct {
	Kind   *string           `yaml:"kind"`
	Group  *string           `yaml:"group"`
	Image  *string           `yaml:"image"`
	Cmd    *string           `yaml:"cmd"`
	Exec   []string          `yaml:"exec"`
	Binds  []string          `yaml:"binds"`
	Env    map[string]string `yaml:"env"`
	Labels map[string]string `yaml:"labels"`

	line int
}

func decodeNode(n *yaml.Node, fs fieldSet) (*rawNode, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return &rawNode{line: n.Line}, nil // `node1:` with no fields
	}
	if _, err := mapping(n, fs); err != nil {
		return nil, err
	}
	var r rawNode
	if err := n.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, fs.where, err)
	}
	r.line = n.Line
	return &r, nil
}

func parseTopology(t *Topology, n *yaml.Node) error {
	f, err := mapping(n, topologyFields)
	if err != nil {
		return err
	}
	defaults := &rawNode{}
	if d, ok := f["defaults"]; ok {
		if defaults, err = decodeNode(d.value, nodeFieldSet("topology.defaults", true, true)); err != nil {
			return err
		}
	}
	kinds := map[string]*rawNode{}
	if k, ok := f["kinds"]; ok {
		es, err := orderedEntries(k.value, "topology.kinds")
		if err != nil {
			return err
		}
		for _, e := range es {
			if err := checkKind(e.key, e.key.Value); err != nil {
				return err
			}
			r, err := decodeNode(e.value, nodeFieldSet("kind "+e.key.Value, false, true))
			if err != nil {
				return err
			}
			kinds[e.key.Value] = r
		}
	}
	groups := map[string]*rawNode{}
	if g, ok := f["groups"]; ok {
		es, err := orderedEntries(g.value, "topology.groups")
		if err != nil {
			return err
		}
		for _, e := range es {
			r, err := decodeNode(e.value, nodeFieldSet("group "+e.key.Value, true, false))
			if err != nil {
				return err
			}
			groups[e.key.Value] = r
		}
	}
	nodesEntry, ok := f["nodes"]
	if !ok {
		return errAt(n, "topology: missing required field \"nodes\"")
	}
	es, err := orderedEntries(nodesEntry.value, "topology.nodes")
	if err != nil {
		return err
	}
	for _, e := range es {
		name := e.key.Value
		if !nameRE.MatchString(name) {
			return errAt(e.key, "node name %q must match %s", name, nameRE)
		}
		if contains(unsupportedEndpointNodes, name) {
			return errAt(e.key, "node name %q is reserved by containerlab", name)
		}
		r, err := decodeNode(e.value, nodeFieldSet("node "+name, true, true))
		if err != nil {
			return err
		}
		r.line = e.key.Line
		node, err := resolveNode(t.Dir, name, e.key, r, defaults, kinds, groups)
		if err != nil {
			return err
		}
		t.Nodes = append(t.Nodes, node)
	}
	if l, ok := f["links"]; ok {
		if err := parseLinks(t, l.value); err != nil {
			return err
		}
	}
	return nil
}

func checkKind(at *yaml.Node, kind string) error {
	if kind != KindLinux && kind != KindBridge {
		return errAt(at, "kind %q is not supported by torlab (supported: %s, %s)", kind, KindLinux, KindBridge)
	}
	return nil
}

func parseLinks(t *Topology, n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return errAt(n, "topology.links: expected a list")
	}
	used := map[Endpoint]int{}
	for _, ln := range n.Content {
		f, err := mapping(ln, linkFields)
		if err != nil {
			return err
		}
		ep, ok := f["endpoints"]
		if !ok {
			return errAt(ln, "link: missing required field \"endpoints\"")
		}
		var raw []string
		if err := ep.value.Decode(&raw); err != nil {
			return errAt(ep.value, "link endpoints: %v", err)
		}
		if len(raw) != 2 {
			return errAt(ep.value, "link endpoints: want 2 endpoints, got %d", len(raw))
		}
		link := &Link{MTU: DefaultMTU, Line: ln.Line}
		for i, s := range raw {
			e, err := parseEndpoint(t, ep.value.Content[i], s)
			if err != nil {
				return err
			}
			if prev, dup := used[e]; dup {
				return errAt(ep.value.Content[i], "endpoint %s already used by the link on line %d", e, prev)
			}
			used[e] = ln.Line
			if i == 0 {
				link.A = e
			} else {
				link.B = e
			}
		}
		if m, ok := f["mtu"]; ok {
			if err := m.value.Decode(&link.MTU); err != nil || link.MTU < 68 || link.MTU > 65535 {
				return errAt(m.value, "link mtu: want an integer in 68..65535, got %q", m.value.Value)
			}
		}
		t.Links = append(t.Links, link)
	}
	return nil
}

func parseEndpoint(t *Topology, at *yaml.Node, s string) (Endpoint, error) {
	node, iface, ok := strings.Cut(s, ":")
	if !ok || node == "" || iface == "" {
		return Endpoint{}, errAt(at, "endpoint %q: want NODE:INTERFACE", s)
	}
	if contains(unsupportedEndpointNodes, node) {
		return Endpoint{}, errAt(at, "endpoint %q: containerlab %q endpoints are not supported by torlab", s, node)
	}
	if t.Node(node) == nil {
		return Endpoint{}, errAt(at, "endpoint %q: no node %q", s, node)
	}
	if !ifaceRE.MatchString(iface) {
		return Endpoint{}, errAt(at, "endpoint %q: interface name must match %s (at most 15 characters)", s, ifaceRE)
	}
	if iface == "eth0" || iface == "lo" {
		return Endpoint{}, errAt(at, "endpoint %q: %s is reserved (eth0 is containerlab's management interface)", s, iface)
	}
	return Endpoint{Node: node, Iface: iface}, nil
}
