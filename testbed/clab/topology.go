// Package clab reads containerlab topology files (*.clab.yml) strictly and
// resolves them into a flat description that testbed realizes.
//
// It supports the subset of the containerlab format that torlab can run
// without a container engine: name, prefix, topology.{defaults, kinds,
// groups, nodes, links}; node fields kind (linux, bridge), group, image, cmd,
// exec, binds, env, labels; links in the brief form
// `endpoints: ["a:eth1", "b:eth1"]` with an optional mtu. Unknown fields are
// errors naming the field and its line; valid containerlab features that
// torlab does not implement are rejected by name.
package clab

import "fmt"

// Supported node kinds.
const (
	KindLinux  = "linux"
	KindBridge = "bridge"
)

// DefaultPrefix is containerlab's default name prefix.
const DefaultPrefix = "clab"

// DefaultMTU is the MTU containerlab gives veth links that set none.
const DefaultMTU = 9500

// Topology is a resolved lab: defaults, kinds and groups merged into each node.
type Topology struct {
	Name string
	// Prefix is containerlab's name prefix: "clab" when the file sets none,
	// "" when the file sets an empty prefix.
	Prefix string
	// File is the absolute path of the topology file ("" when parsed from bytes).
	File string
	// Dir is the directory relative bind paths are resolved against.
	Dir   string
	Nodes []*Node // in file order
	Links []*Link // in file order
}

// Node is one resolved node.
type Node struct {
	Name   string
	Kind   string
	Group  string
	Image  string
	Cmd    string
	Exec   []string
	Binds  []Bind
	Env    map[string]string
	Labels map[string]string
	Line   int // line of the node's key in the file
}

// Bind is a host path made visible inside a node at a container path.
type Bind struct {
	Host      string // absolute
	Container string // absolute
	ReadOnly  bool
}

func (b Bind) String() string {
	s := b.Host + ":" + b.Container
	if b.ReadOnly {
		s += ":ro"
	}
	return s
}

// Endpoint is one end of a link.
type Endpoint struct {
	Node  string
	Iface string
}

func (e Endpoint) String() string { return e.Node + ":" + e.Iface }

// Link is a point-to-point veth link.
type Link struct {
	A, B Endpoint
	MTU  int
	Line int
}

func (l *Link) String() string { return fmt.Sprintf("%s <-> %s", l.A, l.B) }

// Node returns the node with the given name, or nil.
func (t *Topology) Node(name string) *Node {
	for _, n := range t.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Endpoints returns the endpoints of the links attached to node, in link order.
func (t *Topology) Endpoints(node string) []Endpoint {
	var eps []Endpoint
	for _, l := range t.Links {
		for _, e := range []Endpoint{l.A, l.B} {
			if e.Node == node {
				eps = append(eps, e)
			}
		}
	}
	return eps
}
