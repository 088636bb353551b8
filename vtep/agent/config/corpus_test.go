package config

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeCorpus writes one seed of a fuzz target in the format of
// testdata/fuzz (go test fuzz v1), named by its content's hash.
func writeCorpus(t *testing.T, dir string, values ...any) {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		default:
			t.Fatalf("corpus value %T", v)
		}
	}
	sum := sha256.Sum256([]byte(b.String()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%x", sum[:8])), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWriteCorpus (TORSTITCH_WRITE_CORPUS=1) writes the bad inputs of
// TestBadInputs as seed corpora of FuzzParse, FuzzHandler and the state
// file fuzz targets.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("TORSTITCH_WRITE_CORPUS") == "" {
		t.Skip("set TORSTITCH_WRITE_CORPUS=1 to rewrite the seed corpora")
	}
	dir := "testdata/fuzz/FuzzParse"
	writeCorpus(t, dir, []byte(good))
	writeCorpus(t, dir, []byte(goodInbound))
	for _, bc := range append(append([]badConfig{}, badConfigs...), warnConfigs...) {
		in := badBase + bc.to
		if bc.from != "" {
			in = strings.Replace(badBase, bc.from, bc.to, 1)
		}
		writeCorpus(t, dir, []byte(strings.ReplaceAll(in, "DIR", "/etc/torstitch")))
	}
	for _, r := range apiRequests {
		if len(r.body) < 10000 {
			writeCorpus(t, "../../api/testdata/fuzz/FuzzHandler", r.method, r.path, []byte(r.body))
		}
	}
	for _, s := range stateFiles {
		target := "FuzzDecodeBindings"
		if strings.HasPrefix(s.name, "MAC owners") {
			target = "FuzzDecodeOwners"
		}
		writeCorpus(t, "../store/testdata/fuzz/"+target, []byte(s.body))
	}
}
