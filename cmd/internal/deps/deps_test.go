package deps

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// A rule constrains the non-test code of the packages pkgs names. Package
// names are relative to the module ("vtep/plan"); a name ending in "/..." is
// that package and every package below it, "..." alone the whole module.
type rule struct {
	pkgs string
	why  string
	// mine: the module's packages it may import directly. Every package has
	// a rule, so this also bounds what it depends on indirectly.
	mine []string
	// others: when not nil, the only packages outside the module and the
	// standard library it may import directly (full paths, "/..." as above).
	others []string
	// never: packages it must not depend on at all, directly or not (module
	// names relative, others full).
	never []string
	// pure: no I/O, no clock, no randomness among its direct imports.
	pure bool
}

// noIO is what a pure package may not import directly: files, processes,
// the network, logging, the clock, randomness, and the I/O side of the
// libraries torstitch uses. (Indirectly even fmt reaches os; the rules on
// the module's packages keep the rest of a pure package's graph pure.)
var noIO = []string{
	"os/...", "syscall", "io/fs", "io/ioutil", "net", "net/http/...", "net/rpc/...", "net/smtp",
	"log/...", "time", "math/rand/...", "crypto/rand",
	"github.com/ovn-org/libovsdb/...", "github.com/osrg/gobgp/...", "github.com/vmware/...",
	"github.com/vishvananda/...", "github.com/cilium/...", "golang.org/x/sys/...",
	"github.com/prometheus/...",
}

// The sources and sink of docs/architecture.md ("Import direction"): none
// of them depends on another; only vtep/agent (and its config types) sees
// them all.
var sourcesAndSinks = []string{"vdsvlan/...", "evpn/...", "vtep/agent/store", "vtep/client"}

// The controller side, which the switch side (physical, torswitch) never
// depends on.
var controllerSide = []string{"vtep/agent/...", "vtep/client", "vtep/plan", "vtep/api/...", "evpn/...", "vdsvlan/..."}

// Test harnesses, for tests and labs only.
var harnesses = []string{"internal/netnstest", "vtep/vteptest", "vtep/api/apitest", "vtep/plan/plantest", "evpn/evpntest", "physical/nstest", "vdsvlan/vcsimlab",
	"github.com/vmware/govmomi/simulator/...", "github.com/vmware/govmomi/vapi/simulator/..."}

// none: no package outside the module and the standard library.
var none = []string{}

var testbedOthers = []string{"go.yaml.in/yaml/v3", "github.com/vishvananda/netlink", "github.com/vishvananda/netns", "golang.org/x/sys/unix"}

var rules = []rule{
	// Leaves.
	{pkgs: "vtep/l2", why: "leaf value types: the standard library only", mine: nil, others: none, pure: true},
	{pkgs: "vtep/buildinfo", why: "the version every binary prints", mine: nil, others: none},
	{pkgs: "vtep/wake", why: "the coalescing wake-up of every loop: the standard library only", mine: nil, others: none, pure: true},
	{pkgs: "vtep/vtepdb", why: "schema and generated models", mine: nil,
		others: []string{"github.com/ovn-org/libovsdb/model", "github.com/ovn-org/libovsdb/ovsdb"}},

	// Pure cores.
	{pkgs: "vtep/plan", why: "the planner does no I/O", mine: []string{"vtep/l2", "vtep/vtepdb"}, others: none, pure: true},
	{pkgs: "vtep/plan/plantest", why: "an in-memory switch for tests above the planner: no I/O", mine: []string{"vtep/l2", "vtep/plan", "vtep/vtepdb"}, others: none, pure: true},
	{pkgs: "vdsvlan/desired", why: "vCenter discovery's pure core: no vCenter, no I/O, no clock",
		mine: []string{"vtep/l2"}, never: []string{"github.com/vmware/..."}, pure: true},
	{pkgs: "vdsvlan/publish", why: "published networks' pure core: no vCenter, no I/O, no clock",
		mine: []string{"vtep/l2"}, never: []string{"github.com/vmware/..."}, pure: true},

	// Sources and the sink.
	{pkgs: "vdsvlan", why: "vCenter discovery: its cores and leaf types; the simulator stays out of the agent",
		mine: []string{"vtep/l2", "vtep/wake", "vdsvlan/desired", "vdsvlan/publish"}, never: without(slices.Concat(sourcesAndSinks, harnesses), "vdsvlan/...")},
	{pkgs: "evpn", why: "the only package that sees GoBGP: GoBGP, protobuf and leaf types",
		mine: []string{"vtep/l2", "vtep/wake"}, others: []string{"github.com/osrg/gobgp/v3/...", "google.golang.org/protobuf/..."},
		never: without(sourcesAndSinks, "evpn/...")},
	{pkgs: "vtep/agent/store", why: "torctl's bindings on disk", mine: []string{"vtep/l2"}, others: none,
		never: without(sourcesAndSinks, "vtep/agent/store")},
	{pkgs: "vtep/client", why: "one switch's database: planner, models, leaf types",
		mine: []string{"vtep/l2", "vtep/wake", "vtep/plan", "vtep/vtepdb"}, never: without(sourcesAndSinks, "vtep/client")},

	// The agent and its API.
	{pkgs: "vtep/api", why: "the operator API knows leaf types only", mine: []string{"vtep/l2"}},
	{pkgs: "vtep/agent/config", why: "configuration: the config types of evpn, vdsvlan and client",
		mine: []string{"vtep/l2", "vtep/plan", "vtep/client", "evpn", "vdsvlan", "vdsvlan/publish"}, never: harnesses},
	{pkgs: "vtep/agent", why: "the core sees every source and sink, no harness, not the switch side",
		mine: []string{"vtep/l2", "vtep/wake", "vtep/plan", "vtep/vtepdb", "vtep/client", "vtep/api", "vtep/buildinfo", "vtep/agent/config",
			"vtep/agent/store", "evpn", "vdsvlan", "vdsvlan/publish"},
		never: slices.Concat(harnesses, []string{"physical/...", "testbed/..."})},

	// The switch side (torswitch) never depends on the controller side.
	{pkgs: "physical/...", why: "torswitch: netlink, eBPF, libovsdb, models and leaf types",
		mine: []string{"physical/...", "vtep/l2", "vtep/wake", "vtep/vtepdb", "internal/netnstest"}, never: controllerSide},

	// Test harnesses.
	{pkgs: "internal/netnstest", why: "the one network-namespace kit of the tests: it knows nothing of the product",
		mine: nil, others: []string{"github.com/vishvananda/netns"}},
	{pkgs: "vtep/vteptest", why: "hardware_vtep databases for tests, and raw rows of a desired state (the raw-limit benchmarks)", mine: []string{"vtep/vtepdb", "vtep/l2", "vtep/plan", "internal/netnstest"}},
	{pkgs: "vtep/api/apitest", why: "a fake Backend for API tests", mine: []string{"vtep/api", "vtep/l2"}},
	{pkgs: "evpn/evpntest", why: "FRR and gobgpd for tests", mine: []string{"internal/netnstest"}},
	{pkgs: "vdsvlan/vcsimlab", why: "a vCenter simulator lab", mine: nil},

	// The lab: a leaf of the project, it knows nothing of the product.
	{pkgs: "testbed", why: "containerlab files to namespaces", mine: []string{"testbed/clab"}, others: testbedOthers},
	{pkgs: "testbed/clab", why: "containerlab files", mine: nil, others: testbedOthers},

	// Commands: wiring.
	{pkgs: "cmd/internal/cli", why: "CLI wiring every command shares", mine: []string{"vtep/buildinfo"}},
	{pkgs: "cmd/internal/deps", why: "this test", mine: nil},
	{pkgs: "cmd/dist", why: "packaging (its test only)", mine: nil},
	{pkgs: "cmd/toragent", why: "the agent's wiring: no harness, not the switch side",
		mine: []string{"..."}, never: slices.Concat(harnesses, []string{"physical/...", "testbed/..."})},
	{pkgs: "cmd/torctl", why: "talks to the agent through the API client only",
		mine: []string{"cmd/internal/cli", "vtep/api", "vtep/buildinfo", "vtep/l2"}},
	{pkgs: "cmd/torswitch", why: "torswitch's wiring, the switch side",
		mine: []string{"cmd/internal/cli", "physical/...", "vtep/l2", "vtep/vtepdb"}, never: controllerSide},
	{pkgs: "cmd/torlab", why: "the lab's wiring", mine: []string{"cmd/internal/cli", "testbed/..."}},
	{pkgs: "cmd/torvcsim", why: "the vCenter simulator's wiring", mine: []string{"cmd/internal/cli", "vdsvlan/vcsimlab"}},
}

// without returns l less the entry self.
func without(l []string, self string) []string {
	return slices.DeleteFunc(slices.Clone(l), func(s string) bool { return s == self })
}

// match reports whether path matches pattern ("a/b", "a/b/...", "...").
func match(pattern, path string) bool {
	if pattern == "..." {
		return true
	}
	if tree, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == tree || strings.HasPrefix(path, tree+"/")
	}
	return path == pattern
}

func matchAny(patterns []string, path string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, path) })
}

type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string
	Module     *struct{ Path string }
}

// list runs go list once over the module and over the standard library
// (to tell standard packages from others).
func list(t *testing.T) (mod string, pkgs []pkg, std map[string]bool) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool")
	}
	run := func(args ...string) []byte {
		cmd := exec.Command("go", args...)
		cmd.Dir = "../../.."
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out
	}
	dec := json.NewDecoder(bytes.NewReader(run("list", "-json=ImportPath,Imports,Deps,Module", "./...")))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Module == nil {
			t.Fatalf("%s: not in a module", p.ImportPath)
		}
		if mod == "" {
			mod = p.Module.Path
		}
		pkgs = append(pkgs, p)
	}
	std = map[string]bool{}
	for _, p := range strings.Fields(string(run("list", "std"))) {
		std[p] = true
	}
	return mod, pkgs, std
}

// TestImports checks every package of the module against the rules above;
// a package no rule covers, or a rule that covers no package, fails.
func TestImports(t *testing.T) {
	mod, pkgs, std := list(t)
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	// rel returns a module package's name relative to the module.
	rel := func(path string) (string, bool) {
		if path == mod {
			return ".", true
		}
		r, ok := strings.CutPrefix(path, mod+"/")
		return r, ok
	}
	used := make([]bool, len(rules))
	for _, p := range pkgs {
		name, _ := rel(p.ImportPath)
		covered := false
		for i, r := range rules {
			if !match(r.pkgs, name) {
				continue
			}
			covered, used[i] = true, true
			for _, imp := range p.Imports {
				if m, ok := rel(imp); ok {
					if !matchAny(r.mine, m) {
						t.Errorf("%s imports %s (rule %s: %s)", name, m, r.pkgs, r.why)
					}
					continue
				}
				if r.pure && matchAny(noIO, imp) {
					t.Errorf("%s imports %s: no I/O, clock or randomness here (rule %s: %s)", name, imp, r.pkgs, r.why)
				}
				if r.others != nil && !std[imp] && !matchAny(r.others, imp) {
					t.Errorf("%s imports %s (rule %s: %s)", name, imp, r.pkgs, r.why)
				}
			}
			for _, dep := range p.Deps {
				d := dep
				if m, ok := rel(dep); ok {
					d = m
				}
				if matchAny(r.never, d) {
					t.Errorf("%s depends on %s (rule %s: %s)", name, d, r.pkgs, r.why)
				}
			}
		}
		if !covered {
			t.Errorf("%s: no rule covers it; add one to %s", name, "cmd/internal/deps/deps_test.go")
		}
	}
	for i, r := range rules {
		if !used[i] {
			t.Errorf("rule %s covers no package", r.pkgs)
		}
	}
}

// TestMatch checks the pattern syntax the rules use.
func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"vtep/plan", "vtep/plan", true},
		{"vtep/plan", "vtep/planner", false},
		{"vtep/plan", "vtep/plan/x", false},
		{"physical/...", "physical", true},
		{"physical/...", "physical/controller", true},
		{"physical/...", "physicalx", false},
		{"...", "anything/at/all", true},
		{"net", "net", true},
		{"net", "net/netip", false},
		{"os/...", "os/exec", true},
	} {
		if got := match(tc.pattern, tc.path); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}
