package evpn

import (
	"os"
	"testing"

	"github.com/torstitch/torstitch/internal/netnstest"
)

// TestMain runs the package's tests inside their own network namespace
// when root, so FRR, gobgpd and our listeners never touch the host.
func TestMain(m *testing.M) { os.Exit(netnstest.RunIsolated(m, "ev-t")) }
