package testbed

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps testbed a leaf of the project: it realizes topologies
// and knows nothing of the product's packages.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"go.yaml.in/yaml/v3":                          true,
		"github.com/vishvananda/netlink":              true,
		"github.com/vishvananda/netns":                true,
		"golang.org/x/sys/unix":                       true,
		"github.com/torstitch/torstitch/testbed/clab": true,
	}
	for _, dir := range []string{".", "clab"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if strings.Contains(strings.Split(p, "/")[0], ".") && !allowed[p] {
					t.Errorf("%s imports %s", f, p)
				}
			}
		}
	}
}
