package clab

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// resolveNode merges a node with its group, kind and the defaults, the way
// containerlab does. The group is the node's, else its kind's, else the
// defaults'; the kind is the node's, else its group's, else the defaults'.
// Scalars (image, cmd): node, then group, then kind, then defaults (first
// set wins). Exec: concatenated defaults, kind, group, node, duplicates
// dropped. Binds: the same order; a later bind to the same container path
// replaces an earlier one. Env and labels: maps merged in the same order.
func resolveNode(dir, name string, at *yaml.Node, r, defaults *rawNode, kinds, groups map[string]*rawNode) (*Node, error) {
	lookupGroup := func(g *string) (*rawNode, error) {
		if g == nil || *g == "" {
			return nil, nil
		}
		if gr, ok := groups[*g]; ok {
			return gr, nil
		}
		return nil, errAt(at, "node %q: no group %q in topology.groups", name, *g)
	}
	group, err := lookupGroup(r.Group)
	if err != nil {
		return nil, err
	}
	defGroup, err := lookupGroup(defaults.Group)
	if err != nil {
		return nil, err
	}
	kind := firstString(r.Kind, field(group, func(g *rawNode) *string { return g.Kind }),
		field(defGroup, func(g *rawNode) *string { return g.Kind }), defaults.Kind)
	if kind == "" {
		return nil, errAt(at, "node %q: no kind (set kind on the node, its group or topology.defaults)", name)
	}
	if err := checkKind(at, kind); err != nil {
		return nil, err
	}
	kindDefs := kinds[kind]
	groupName := firstString(r.Group, field(kindDefs, func(k *rawNode) *string { return k.Group }), defaults.Group)
	if group, err = lookupGroup(&groupName); err != nil {
		return nil, err
	}
	layers := []*rawNode{defaults, kindDefs, group, r} // lowest precedence first
	n := &Node{Name: name, Kind: kind, Group: groupName, Line: at.Line, Env: map[string]string{}, Labels: map[string]string{}}
	if kind == KindBridge {
		// Bridges run nothing: settings inherited from defaults do not apply,
		// settings on the node itself are mistakes.
		if r.Cmd != nil || len(r.Exec) > 0 || len(r.Binds) > 0 || len(r.Env) > 0 || r.Image != nil {
			return nil, errAt(at, "node %q: kind bridge takes no image, cmd, exec, binds or env", name)
		}
		for _, l := range layers {
			if l != nil {
				mergeMap(n.Labels, l.Labels)
			}
		}
		return n, nil
	}
	for _, l := range layers {
		if l == nil {
			continue
		}
		if l.Image != nil && *l.Image != "" {
			n.Image = *l.Image
		}
		if l.Cmd != nil && *l.Cmd != "" {
			n.Cmd = *l.Cmd
		}
		for _, e := range l.Exec {
			if !contains(n.Exec, e) {
				n.Exec = append(n.Exec, e)
			}
		}
		mergeMap(n.Env, l.Env)
		mergeMap(n.Labels, l.Labels)
		for _, s := range l.Binds {
			b, err := parseBind(dir, s)
			if err != nil {
				return nil, errAt(at, "node %q: %v", name, err)
			}
			n.Binds = replaceBind(n.Binds, b)
		}
	}
	if n.Image == "" {
		return nil, errAt(at, "node %q: kind linux needs an image", name)
	}
	return n, nil
}

func field(r *rawNode, f func(*rawNode) *string) *string {
	if r == nil {
		return nil
	}
	return f(r)
}

func firstString(vals ...*string) string {
	for _, v := range vals {
		if v != nil {
			return *v
		}
	}
	return ""
}

func mergeMap(dst, src map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(src)) {
		dst[k] = src[k]
	}
}

func replaceBind(binds []Bind, b Bind) []Bind {
	for i := range binds {
		if binds[i].Container == b.Container {
			binds[i] = b
			return binds
		}
	}
	return append(binds, b)
}

// containerlab's magic bind sources: the lab directory and the node's own
// directory inside it. Binds starting with them keep them unresolved.
const (
	MagicLabDir  = "__clabDir__"
	MagicNodeDir = "__clabNodeDir__"
)

// IsMagic reports whether a bind source starts with a magic directory.
func IsMagic(host string) bool {
	for _, m := range []string{MagicLabDir, MagicNodeDir} {
		if host == m || strings.HasPrefix(host, m+"/") {
			return true
		}
	}
	return false
}

type bindError string

func (e bindError) Error() string { return string(e) }

// parseBind parses HOST:CONTAINER[:ro|rw]; a relative host path is relative to dir.
func parseBind(dir, s string) (Bind, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Bind{}, bindError("bind " + quote(s) + ": want HOST:CONTAINER[:ro|rw]")
	}
	b := Bind{Host: parts[0], Container: parts[1]}
	if strings.HasPrefix(b.Host, "~") {
		return Bind{}, bindError("bind " + quote(s) + ": ~ in host paths is not supported by torlab")
	}
	switch {
	case IsMagic(b.Host):
		// resolved by the runner: the lab's or the node's own directory
	case !filepath.IsAbs(b.Host):
		b.Host = filepath.Clean(filepath.Join(dir, b.Host))
	default:
		b.Host = filepath.Clean(b.Host)
	}
	if !filepath.IsAbs(b.Container) {
		return Bind{}, bindError("bind " + quote(s) + ": container path must be absolute")
	}
	b.Container = filepath.Clean(b.Container)
	if b.Container == "/" {
		return Bind{}, bindError("bind " + quote(s) + ": cannot bind over /")
	}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				b.ReadOnly = true
			case "rw":
				b.ReadOnly = false
			default:
				return Bind{}, bindError("bind " + quote(s) + ": mount option " + quote(o) + " is not supported by torlab (ro, rw)")
			}
		}
	}
	return b, nil
}

func quote(s string) string { return `"` + s + `"` }
