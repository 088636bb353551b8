package clab

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no topology file panics the parser; a refused one is refused
// with ErrInvalid. Seeds: the test topology and every lab file.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../../containerlab/*.clab.yml")
	seeds = append(seeds, "testdata/full.clab.yml")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("name: x\ntopology:\n  nodes: {a: {kind: linux}}\n  links: [{endpoints: [\"a:eth1\", \"a:eth1\"]}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if _, err := Parse(b, dir); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error without ErrInvalid: %v", err)
		}
	})
}
