package vdsvlan

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps the import graph honest: the pure core does no vCenter
// I/O, the watcher does not pull the simulator into the agent, and no part of
// vdsvlan reaches into sinks (vtep clients) or other sources.
func TestImports(t *testing.T) {
	const mod = "github.com/torstitch/torstitch/"
	tests := []struct {
		dir       string
		allowMine []string // project packages allowed
		forbidden []string // import path prefixes forbidden
	}{
		{".", []string{"vtep/l2", "vdsvlan/desired", "vdsvlan/publish"}, []string{"github.com/vmware/govmomi/simulator", "github.com/vmware/govmomi/vapi/simulator"}},
		{"desired", []string{"vtep/l2"}, []string{"github.com/vmware/"}},
		{"publish", []string{"vtep/l2"}, []string{"github.com/vmware/"}},
		{"vcsimlab", nil, nil},
	}
	for _, tc := range tests {
		pkg, err := build.ImportDir(tc.dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", tc.dir, err)
		}
		for _, imp := range pkg.Imports {
			if rest, ok := strings.CutPrefix(imp, mod); ok {
				allowed := false
				for _, a := range tc.allowMine {
					allowed = allowed || rest == a
				}
				if !allowed {
					t.Errorf("%s imports %s", tc.dir, imp)
				}
			}
			for _, f := range tc.forbidden {
				if strings.HasPrefix(imp, f) {
					t.Errorf("%s imports %s", tc.dir, imp)
				}
			}
		}
	}
}
