// Command torvcsim serves a simulated vCenter (govmomi's vcsim) with the
// inventory of a YAML file, for the lab: distributed switches, port groups
// (VLAN, trunk, private VLAN, tags), hosts with LLDP/CDP neighbours and VMs.
//
//	torvcsim --inventory lab.yaml --out /run/torstitch/vcsim [--listen 127.0.0.1:8989]
//
// It writes into --out: url, username, password (mode 0600), ca.pem,
// thumbprint, and last a file named ready (holding the URL). It prints the
// URL and the directory (never the password) and runs until SIGINT/SIGTERM.
//
// SIGHUP re-reads the inventory file and applies what a running simulator
// can change: port group VLAN policies and VM hosts (the lab's hook for
// "VLAN reconfigured in vCenter" and "VM moved"); other edits are logged
// and need a restart.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/torstitch/torstitch/cmd/internal/cli"
	"github.com/torstitch/torstitch/vdsvlan/vcsimlab"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "torvcsim:", err)
		os.Exit(1)
	}
}

type options struct {
	inventory, out, listen string
}

func newCommand() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "torvcsim --inventory FILE --out DIR [--listen ADDR]",
		Short: "Serve a simulated vCenter (govmomi's vcsim) with a YAML inventory, for the lab",
		Long: `torvcsim serves a simulated vCenter with the inventory of a YAML file: distributed
switches, port groups (VLAN, trunk, private VLAN, tags), hosts with LLDP/CDP neighbours and VMs.

It writes into --out: url, username, password (mode 0600), ca.pem, thumbprint, and last a
file named ready (holding the URL). It prints the URL (never the password) and runs until
SIGINT or SIGTERM. SIGHUP re-reads the inventory and applies port group VLAN policies and
VM hosts; other edits are logged and need a restart.`,
		Args:                  cobra.NoArgs,
		SilenceUsage:          true,
		SilenceErrors:         true,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.inventory == "" || o.out == "" {
				return fmt.Errorf("--inventory and --out are required")
			}
			return run(cmd.Context(), o)
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return cli.SingleDashHint(c, os.Args[1:], err) })
	f := cmd.Flags()
	f.StringVar(&o.inventory, "inventory", "", "inventory YAML `FILE` (required)")
	f.StringVar(&o.out, "out", "", "`DIR` to write url, username, password, ca.pem, thumbprint and ready into (required)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "`ADDR` (host:port) to serve on")
	cli.Setup(cmd, "1")
	cmd.CompletionOptions.HiddenDefaultCmd = true
	return cmd
}

func run(ctx context.Context, o options) error {
	inventory, out, listen := &o.inventory, &o.out, &o.listen
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	spec, err := vcsimlab.LoadSpec(*inventory)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", *out, err)
	}
	_ = os.Remove(filepath.Join(*out, "ready"))

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	buildCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	lab, err := vcsimlab.Start(buildCtx, spec, *listen, *out)
	if err != nil {
		return err
	}
	defer lab.Close()

	files := []struct {
		name, content string
		mode          os.FileMode
	}{
		{"url", lab.URL.String() + "\n", 0o644},
		{"username", lab.Username + "\n", 0o600},
		{"password", lab.Password + "\n", 0o600},
		{"thumbprint", lab.Thumbprint + "\n", 0o644},
		{"ready", lab.URL.String() + "\n", 0o644},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(*out, f.name), f.content, f.mode); err != nil {
			return err
		}
	}
	log.Info("simulated vCenter ready", "url", lab.URL.String(), "dir", *out,
		"hosts", len(spec.Hosts), "port_groups", len(spec.PortGroups), "vms", len(spec.VMs),
		"took", time.Since(start).Round(time.Millisecond))
	fmt.Println(lab.URL.String())
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			return nil
		case <-hup:
			next, err := vcsimlab.LoadSpec(*inventory)
			if err != nil {
				log.Error("reload: inventory not applied", "err", err)
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			spec, err = reload(rctx, lab, spec, next, log)
			cancel()
			if err != nil {
				log.Error("reload failed", "err", err)
			}
		}
	}
}

// writeFile writes atomically (temp file + rename) so readers never see a
// partial file.
func writeFile(path, content string, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
