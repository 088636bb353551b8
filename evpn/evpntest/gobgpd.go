package evpntest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
)

// GoBGPdConfig describes Debian's gobgpd as an EVPN route reflector.
type GoBGPdConfig struct {
	ASN       uint32
	RouterID  string
	Clients   []string // iBGP route reflector clients (l2vpn-evpn, graceful restart)
	APIPort   int      // gRPC port inside the namespace (default 50051)
	RestartTS int      // graceful restart time in seconds (default 60)
}

// GoBGPd is a gobgpd process in a namespace.
type GoBGPd struct {
	NS  *netnstest.Netns
	Dir string
	cfg GoBGPdConfig
}

// StartGoBGPd starts gobgpd inside ns; it is killed when t ends.
func StartGoBGPd(t testing.TB, ns *netnstest.Netns, cfg GoBGPdConfig) *GoBGPd {
	t.Helper()
	if cfg.APIPort == 0 {
		cfg.APIPort = 50051
	}
	if cfg.RestartTS == 0 {
		cfg.RestartTS = 60
	}
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "[global.config]\n  as = %d\n  router-id = %q\n", cfg.ASN, cfg.RouterID)
	for _, c := range cfg.Clients {
		fmt.Fprintf(&b, `
[[neighbors]]
  [neighbors.config]
    neighbor-address = %q
    peer-as = %d
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [neighbors.route-reflector.config]
    route-reflector-client = true
    route-reflector-cluster-id = %q
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = %d
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "l2vpn-evpn"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
`, c, cfg.ASN, cfg.RouterID, cfg.RestartTS)
	}
	conf := WriteFile(t, dir, "gobgpd.toml", b.String())
	logf, err := os.Create(filepath.Join(dir, "gobgpd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Cmd(context.Background(), nil, "gobgpd", "-f", conf, "-p", "-l", "info",
		"--api-hosts", fmt.Sprintf("127.0.0.1:%d", cfg.APIPort), "--pprof-disable")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting gobgpd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			netnstest.LogTail(t, logf.Name())
		}
	})
	g := &GoBGPd{NS: ns, Dir: dir, cfg: cfg}
	netnstest.Eventually(t, 10*time.Second, 50*time.Millisecond, "gobgpd API up", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := g.CLI(ctx, "global")
		return err
	})
	return g
}

// CLI runs the gobgp command-line client against this gobgpd.
func (g *GoBGPd) CLI(ctx context.Context, args ...string) (string, error) {
	return g.NS.Output(ctx, append([]string{"gobgp", "-u", "127.0.0.1", "-p", fmt.Sprint(g.cfg.APIPort)}, args...)...)
}
