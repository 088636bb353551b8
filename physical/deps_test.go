package physical

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps torswitch's import graph honest: its non-test code uses
// netlink, eBPF, libovsdb and the vtep models and leaf types only, never the
// controller side of torstitch (agent, client, planner, EVPN, vCenter).
func TestImports(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./...", "../cmd/torswitch").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{
		"github.com/torstitch/torstitch/physical",
		"github.com/torstitch/torstitch/cmd/torswitch",
		"github.com/torstitch/torstitch/vtep/vtepdb",
		"github.com/torstitch/torstitch/vtep/l2",
		// leaves: the version every binary prints, the CLI wiring
		// (--version, gen-docs) every command shares
		"github.com/torstitch/torstitch/vtep/buildinfo",
		"github.com/torstitch/torstitch/cmd/internal/cli",
	}
	for _, p := range strings.Fields(string(out)) {
		if !strings.HasPrefix(p, "github.com/torstitch/torstitch/") {
			continue
		}
		ok := false
		for _, a := range allowed {
			if p == a || strings.HasPrefix(p, a+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("torswitch depends on %s", p)
		}
	}
}
