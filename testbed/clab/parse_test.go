package clab

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadResolvesDefaultsKindsGroups(t *testing.T) {
	topo, err := Load("testdata/full.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	if topo.Name != "full" || topo.Prefix != "tb" || topo.Dir != dir {
		t.Fatalf("name/prefix/dir = %q %q %q", topo.Name, topo.Prefix, topo.Dir)
	}
	var names []string
	for _, n := range topo.Nodes {
		names = append(names, n.Name)
	}
	if want := []string{"r1", "h1", "br"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("node order %v, want %v", names, want)
	}
	r1 := topo.Node("r1")
	want := &Node{
		Name: "r1", Kind: "linux", Group: "routers", Image: "frr:8.4", Cmd: "sleep infinity",
		Exec: []string{"echo default", "echo group"},
		Binds: []Bind{
			{Host: filepath.Join(dir, "frr"), Container: "/etc/conf"},
			{Host: "/var/log", Container: "/logs"},
		},
		Env:    map[string]string{"A": "default", "B": "kind", "C": "3"},
		Labels: map[string]string{"role": "host"},
		Line:   r1.Line,
	}
	if !reflect.DeepEqual(r1, want) {
		t.Errorf("r1 =\n%+v\nwant\n%+v", r1, want)
	}
	h1 := topo.Node("h1")
	if h1.Image != "debian:12" || !reflect.DeepEqual(h1.Exec, []string{"echo default", "echo node"}) || h1.Labels["role"] != "vm" || h1.Labels["torlab.health"] != "true" {
		t.Errorf("h1 = %+v", h1)
	}
	if !h1.Binds[0].ReadOnly || h1.Binds[0].Host != filepath.Join(dir, "conf") {
		t.Errorf("h1 binds = %+v", h1.Binds)
	}
	br := topo.Node("br")
	if br.Kind != KindBridge || br.Image != "" || len(br.Exec) != 0 || len(br.Binds) != 0 {
		t.Errorf("bridge node inherited run settings: %+v", br)
	}
	if len(topo.Links) != 2 {
		t.Fatalf("links = %v", topo.Links)
	}
	if l := topo.Links[0]; l.A != (Endpoint{"r1", "eth1"}) || l.B != (Endpoint{"h1", "eth1"}) || l.MTU != 1500 {
		t.Errorf("link 0 = %+v", l)
	}
	if l := topo.Links[1]; l.MTU != DefaultMTU || l.B != (Endpoint{"br", "p1"}) {
		t.Errorf("link 1 = %+v", l)
	}
	if got := topo.Endpoints("r1"); len(got) != 2 || got[1].Iface != "eth2" {
		t.Errorf("Endpoints(r1) = %v", got)
	}
}

func TestGroupAndKindResolution(t *testing.T) {
	const y = `name: x
topology:
  defaults: {group: base, image: d}
  kinds:
    bridge: {group: net}
  groups:
    base: {kind: linux, exec: [b]}
    net: {labels: {a: b}}
  nodes:
    n1: {}
    n2: {kind: bridge}
`
	topo, err := Parse([]byte(y), "/")
	if err != nil {
		t.Fatal(err)
	}
	if n := topo.Node("n1"); n.Kind != KindLinux || n.Group != "base" || n.Image != "d" || !reflect.DeepEqual(n.Exec, []string{"b"}) {
		t.Errorf("n1 = %+v", n)
	}
	if n := topo.Node("n2"); n.Kind != KindBridge || n.Group != "net" || n.Labels["a"] != "b" {
		t.Errorf("n2 = %+v", n)
	}
}

func TestDefaultPrefix(t *testing.T) {
	topo, err := Parse([]byte("name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: i}\n"), "/")
	if err != nil {
		t.Fatal(err)
	}
	if topo.Prefix != DefaultPrefix {
		t.Errorf("prefix = %q", topo.Prefix)
	}
	topo, err = Parse([]byte("name: x\nprefix: \"\"\ntopology:\n  nodes:\n    a: {kind: linux, image: i}\n"), "/")
	if err != nil {
		t.Fatal(err)
	}
	if topo.Prefix != "" {
		t.Errorf("empty prefix = %q", topo.Prefix)
	}
}

func TestParseErrors(t *testing.T) {
	const head = "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: i}\n    b: {kind: linux, image: i}\n"
	tests := []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"unknown top field", "name: x\nfoo: 1\ntopology: {nodes: {}}\n", []string{"line 2", `unknown field "foo"`}},
		{"unsupported mgmt", "name: x\nmgmt: {network: m}\ntopology: {nodes: {}}\n", []string{"line 2", `"mgmt" is not supported`}},
		{"missing name", "topology: {nodes: {}}\n", []string{`"name"`}},
		{"missing topology", "name: x\n", []string{`"topology"`}},
		{"bad lab name", "name: 'a b'\ntopology: {nodes: {}}\n", []string{"lab name"}},
		{"unknown topology field", "name: x\ntopology:\n  nodes: {}\n  extra: 1\n", []string{"line 4", `unknown field "extra"`}},
		{"unknown node field", "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      image: i\n      colour: red\n", []string{"line 7", "node a", `unknown field "colour"`}},
		{"unsupported node field", "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      image: i\n      ports: [80:80]\n", []string{"line 7", `"ports" is not supported`}},
		{"unsupported mgmt ip", "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: i, mgmt-ipv4: 1.2.3.4}\n", []string{"line 4", `"mgmt-ipv4"`}},
		{"unsupported kind", "name: x\ntopology:\n  nodes:\n    a: {kind: nokia_srlinux, image: i}\n", []string{"line 4", `kind "nokia_srlinux" is not supported`}},
		{"unsupported kind in kinds", "name: x\ntopology:\n  kinds:\n    ceos: {image: i}\n  nodes: {}\n", []string{"line 4", `kind "ceos"`}},
		{"no kind", "name: x\ntopology:\n  nodes:\n    a: {image: i}\n", []string{"line 4", "no kind"}},
		{"no image", "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n", []string{"needs an image"}},
		{"unknown group", "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: i, group: g}\n", []string{`no group "g"`}},
		{"unknown group in defaults", "name: x\ntopology:\n  defaults: {group: g}\n  nodes:\n    a: {kind: linux, image: i}\n", []string{`no group "g"`}},
		{"bridge with exec", "name: x\ntopology:\n  nodes:\n    a: {kind: bridge, exec: [ls]}\n", []string{"kind bridge takes no"}},
		{"exec wrong type", "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: i, exec: {a: b}}\n", []string{"line 4"}},
		{"bind relative container", head + "    c: {kind: linux, image: i, binds: [a:b]}\n", []string{"container path must be absolute"}},
		{"bind option", head + "    c: {kind: linux, image: i, binds: ['a:/b:z']}\n", []string{`mount option "z"`}},
		{"bind tilde", head + "    c: {kind: linux, image: i, binds: ['~/a:/b']}\n", []string{"~"}},
		{"duplicate node", "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: i}\n    a: {kind: linux, image: i}\n", []string{"line 5", `duplicate key "a"`}},
		{"link unknown field", head + "  links:\n    - endpoints: [a:eth1, b:eth1]\n      colour: red\n", []string{"line 8", `unknown field "colour"`}},
		{"link extended format", head + "  links:\n    - type: veth\n      endpoints: [a:eth1, b:eth1]\n", []string{"line 7", `"type" is not supported`}},
		{"link three endpoints", head + "  links:\n    - endpoints: [a:eth1, b:eth1, a:eth2]\n", []string{"want 2 endpoints"}},
		{"link unknown node", head + "  links:\n    - endpoints: [a:eth1, z:eth1]\n", []string{"line 7", `no node "z"`}},
		{"link host endpoint", head + "  links:\n    - endpoints: [a:eth1, host:veth1]\n", []string{`"host" endpoints are not supported`}},
		{"link no colon", head + "  links:\n    - endpoints: [a, b:eth1]\n", []string{"want NODE:INTERFACE"}},
		{"link long iface", head + "  links:\n    - endpoints: [a:eth1, b:abcdefghijklmnop]\n", []string{"at most 15"}},
		{"link eth0", head + "  links:\n    - endpoints: [a:eth0, b:eth1]\n", []string{"reserved"}},
		{"link reused endpoint", head + "  links:\n    - endpoints: [a:eth1, b:eth1]\n    - endpoints: [a:eth1, b:eth2]\n", []string{"line 8", "already used"}},
		{"link bad mtu", head + "  links:\n    - endpoints: [a:eth1, b:eth1]\n      mtu: big\n", []string{"mtu"}},
		{"not yaml", "name: [\n", []string{"yaml"}},
		{"links not a list", head + "  links: {a: b}\n", []string{"expected a list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "/lab")
			if err == nil {
				t.Fatalf("no error for\n%s", tt.yaml)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestRepoTopologies parses every topology file under containerlab/.
func TestRepoTopologies(t *testing.T) {
	var files []string
	err := filepath.WalkDir("../../containerlab", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".clab.yml") || strings.HasSuffix(path, ".clab.yaml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no *.clab.yml files under containerlab/")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			topo, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range topo.Nodes {
				for _, b := range n.Binds {
					if IsMagic(b.Host) {
						continue
					}
					if _, err := os.Stat(b.Host); err != nil {
						t.Errorf("node %s: bind source %s: %v", n.Name, b.Host, err)
					}
				}
			}
			if len(topo.Nodes) == 0 {
				t.Error("no nodes")
			}
		})
	}
}
