// Package evpntest starts FRR and gobgpd as real EVPN peers for tests, in
// network namespaces of the kit internal/netnstest.
package evpntest

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFile writes a file under dir and returns its path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
