package evpn

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the boundary honest: evpn (non-test code) imports only
// the standard library, GoBGP, protobuf and the project's leaf types.
func TestImports(t *testing.T) {
	allowed := []string{"github.com/osrg/gobgp/v3/", "google.golang.org/protobuf/", "github.com/torstitch/torstitch/vtep/l2"}
	files, _ := filepath.Glob("*.go")
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
		for _, im := range af.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if !strings.Contains(strings.Split(p, "/")[0], ".") {
				continue // standard library
			}
			ok := false
			for _, a := range allowed {
				if strings.HasPrefix(p, a) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}
