package config

import (
	"strings"
	"testing"
)

// FuzzParse: no input panics the parser; an accepted configuration
// validates again unchanged, and every problem of a refused one names a
// key path or a line.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(goodInbound))
	f.Add([]byte("agent: {resync: 1e12}\nswitches: [{name: tor1, ovsdb: \"tcp:10.0.0.1:6640\"}]\n"))
	f.Add([]byte("a: &x [*x, *x]\n"))
	f.Add([]byte("bindings: [{vlan: 100.9, vni: 1, ports: [\"tor1:e\\x01\"]}]\n---\n{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			for _, e := range asErrors(err) {
				if e.Msg == "" {
					t.Fatalf("empty message in %v", err)
				}
				if strings.Contains(e.Msg, "config.") || strings.Contains(e.Msg, "vdsvlan.") {
					t.Fatalf("Go type name in %q", e.Msg)
				}
			}
			return
		}
		if errs := c.validate(); len(errs) > 0 {
			t.Fatalf("accepted configuration fails validation: %v", Errors(errs))
		}
		if c.BGP != nil {
			if _, err := c.Speaker(); err != nil {
				t.Fatalf("accepted configuration has no speaker config: %v", err)
			}
		}
	})
}
