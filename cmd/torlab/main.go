// Command torlab runs containerlab topology files on one machine without a
// container engine: one network namespace per node, veth pairs per link
// (see docs/lab.md).
//
//	torlab deploy  FILE.clab.yml
//	torlab inspect FILE.clab.yml [-o json]
//	torlab exec    FILE.clab.yml NODE -- CMD [ARG...]
//	torlab destroy FILE.clab.yml
//	torlab demo    [--destroy] [--runtime netns|containerlab]
//	torlab prepare FILE.clab.yml   # what `containerlab deploy` needs beforehand
//
// With --runtime containerlab, deploy, destroy and demo use containerlab
// and Docker (containerlab/setup/clab-env.sh) instead of namespaces.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/torstitch/torstitch/cmd/internal/cli"
	"github.com/torstitch/torstitch/testbed"
	"github.com/torstitch/torstitch/testbed/clab"
)

type globalFlags struct {
	name          string
	runRoot       string
	binDirs       []string
	nodes         []string
	healthTimeout time.Duration
	keepOnError   bool
	verbose       bool
	runtime       string
	clabEnv       string
}

func (g *globalFlags) options() testbed.Options {
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	bins := g.binDirs
	if len(bins) == 0 {
		// `make build` puts toragent, torctl and torvcsim beside torlab.
		if exe, err := os.Executable(); err == nil {
			bins = []string{filepath.Dir(exe)}
		}
	}
	return testbed.Options{
		Name: g.name, RunRoot: g.runRoot, BinDirs: bins, Nodes: g.nodes,
		HealthTimeout: g.healthTimeout, KeepOnError: g.keepOnError,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "torlab",
		Short:         "Run containerlab topologies with network namespaces (no Docker)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.name, "name", "", "override the lab name of the file")
	pf.StringVar(&g.runRoot, "run-root", testbed.DefaultRunRoot, "directory of lab state and logs")
	pf.StringSliceVar(&g.binDirs, "bin-dir", nil, "directories prepended to PATH of node processes (default: torlab's own directory)")
	pf.StringSliceVar(&g.nodes, "node-filter", nil, "deploy only these nodes (and the links between them)")
	pf.DurationVar(&g.healthTimeout, "health-timeout", 2*time.Minute, "how long deploy waits for node health")
	pf.BoolVar(&g.keepOnError, "keep-on-error", false, "leave a failed first deployment in place for debugging")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "debug logging")
	pf.StringVar(&g.runtime, "runtime", "netns", "netns (torlab's namespaces) or containerlab (Docker; deploy, destroy, demo)")
	pf.StringVar(&g.clabEnv, "clab-env", "containerlab/setup/clab-env.sh", "set-up script that reports (status) the Docker engine and containerlab to use")

	execCmd := &cobra.Command{
		Use:   "exec FILE NODE [--] CMD [ARG...]",
		Short: "Run a command inside a node (its netns and binds)",
		Args:  cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			lab, err := testbed.Open(args[0], g.options())
			if err != nil {
				return err
			}
			argv := args[2:]
			if argv[0] == "--" { // kept in args: interspersed flags are off
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return errors.New("exec: no command")
			}
			c, err := lab.Command(cmd.Context(), args[1], argv...)
			if err != nil {
				return err
			}
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			return c.Run()
		},
	}
	// Flags after FILE belong to the command run in the node.
	execCmd.Flags().SetInterspersed(false)

	root.AddCommand(
		&cobra.Command{
			Use:   "deploy FILE",
			Short: "Create the lab's namespaces, links and processes and wait for health",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if g.runtime == "containerlab" {
					l, err := g.clabLab(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if err := l.Deploy(cmd.Context()); err != nil {
						return err
					}
					out, err := l.Inspect(cmd.Context())
					cmd.OutOrStdout().Write(out)
					return err
				}
				lab, err := testbed.Deploy(cmd.Context(), args[0], g.options())
				if err != nil {
					return err
				}
				info, err := lab.Inspect(cmd.Context())
				if err != nil {
					return err
				}
				printTable(cmd.OutOrStdout(), info)
				return nil
			},
		},
		&cobra.Command{
			Use:   "destroy FILE",
			Short: "Remove everything the lab made (also after a crash or a failed deploy)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if g.runtime == "containerlab" {
					l, err := g.clabLab(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					return l.Destroy(cmd.Context())
				}
				return testbed.Destroy(cmd.Context(), args[0], g.options())
			},
		},
		newPrepareCmd(g),
		newInspectCmd(g),
		execCmd,
		newDemoCmd(g),
	)
	cli.Setup(root, "1")
	return root
}

// clabLab opens file for containerlab with the environment the set-up
// script reports (it must already be up: `clab-env.sh up`).
func (g *globalFlags) clabLab(ctx context.Context, file string) (*testbed.ClabLab, error) {
	env, err := testbed.LoadClabEnv(ctx, g.clabEnv, "status")
	if err != nil {
		return nil, fmt.Errorf("no Docker engine + containerlab (run %s up): %w", g.clabEnv, err)
	}
	o := g.options()
	return testbed.OpenContainerlab(file, testbed.ClabOptions{Name: g.name, Env: env, HealthTimeout: g.healthTimeout, Logger: o.Logger})
}

func newPrepareCmd(g *globalFlags) *cobra.Command {
	var netns string
	cmd := &cobra.Command{
		Use:   "prepare FILE",
		Short: "Make what `containerlab deploy -t FILE` expects to exist: node dirs of __clabNodeDir__ binds, bridge nodes' bridges",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := clab.Load(args[0])
			if err != nil {
				return err
			}
			if g.name != "" {
				t.Name = g.name
			}
			return testbed.PrepareContainerlab(cmd.Context(), t, netns)
		},
	}
	cmd.Flags().StringVar(&netns, "netns", os.Getenv("CLAB_NETNS"), "network namespace of the Docker engine, where bridge nodes' bridges go (default $CLAB_NETNS; empty: this one)")
	return cmd
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "\n  ")
		fmt.Fprintln(os.Stderr, "torlab:", msg)
		os.Exit(1)
	}
}
