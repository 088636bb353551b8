package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/torstitch/torstitch/testbed"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	var (
		file     string
		teardown bool
		converge time.Duration
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Deploy the stitch lab and show bindings, peers, MACs and a ping matrix",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			var lab testbed.Runtime
			me := os.Args[0]
			var how string
			switch g.runtime {
			case "netns":
				l, err := testbed.Deploy(ctx, file, g.options())
				if err != nil {
					return err
				}
				info, err := l.Inspect(ctx)
				if err != nil {
					return err
				}
				printTable(out, info)
				lab = l
				how = fmt.Sprintf("  inspect: %s inspect %s\n  a shell: %s exec %s NODE -- bash\n"+
					"  the agent: %s exec %s toragent -- torctl show bindings|macs|switches|peers|vcenter\n"+
					"  destroy: %s destroy %s   (or: make demo-destroy)\n",
					me, file, me, file, me, file, me, file)
			case "containerlab":
				l, err := g.clabLab(ctx, file)
				if err != nil {
					return err
				}
				_ = l.Destroy(ctx) // leftovers of an earlier demo
				if err := l.Deploy(ctx); err != nil {
					return err
				}
				if b, err := l.Inspect(ctx); err == nil {
					out.Write(b)
				}
				lab = l
				how = fmt.Sprintf("  (. /run/torstitch-clab/env first: DOCKER_HOST, and $CLAB, containerlab in the engine's network namespace)\n"+
					"  inspect: $CLAB inspect -t %s\n  a shell: docker exec -it %s bash\n"+
					"  the agent: docker exec %s torctl show bindings|macs|switches|peers|vcenter\n"+
					"  destroy: %s destroy --runtime containerlab %s   (or: make demo-destroy; containerlab destroy --cleanup leaves the bridge %s)\n",
					file, l.Container("NODE"), l.Container("toragent"), me, file, "underlay")
			default:
				return fmt.Errorf("--runtime %q: netns or containerlab", g.runtime)
			}
			topo := lab.Topo()
			if topo.Node("toragent") != nil {
				for _, what := range []string{"vcenter", "bindings", "peers", "switches"} {
					showIn(ctx, out, lab, "toragent", "torctl show "+what)
				}
			}
			fmt.Fprintf(out, "\n== ping matrix (VMs of one segment reach each other, others do not)\n")
			matrix := testbed.PingMatrix(ctx, lab, converge)
			matrix.WriteTable(out)
			printMACTables(ctx, out, lab)
			if teardown {
				if err := lab.Destroy(ctx); err != nil {
					return err
				}
				fmt.Fprintln(out, "\nlab destroyed")
			} else {
				fmt.Fprintf(out, "\nlab %s is up (runtime %s).\n%s", lab.LabName(), lab.Kind(), how)
			}
			if !matrix.OK() {
				return errors.New("ping matrix does not match the expected reachability")
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "containerlab/stitch.clab.yml", "topology file")
	cmd.Flags().BoolVar(&teardown, "destroy", false, "destroy the lab at the end")
	cmd.Flags().DurationVar(&converge, "converge-timeout", time.Minute, "how long a pair that must reach each other may take")
	return cmd
}

// showIn prints a command's output in a node under a heading.
func showIn(ctx context.Context, out io.Writer, lab testbed.Runtime, node, cmdline string) {
	fmt.Fprintf(out, "\n== %s: %s\n", node, cmdline)
	b, err := lab.Shell(ctx, node, cmdline)
	if err != nil {
		fmt.Fprintf(out, "(failed: %v)\n", firstLine(err))
		return
	}
	out.Write(b)
}

// printMACTables shows the MACs as the agent sees them, then each switch's
// own tables (hardware_vtep of the ToRs, the kernel FDB of KVM VTEPs).
func printMACTables(ctx context.Context, out io.Writer, lab testbed.Runtime) {
	if lab.Topo().Node("toragent") != nil {
		showIn(ctx, out, lab, "toragent", "torctl show macs")
	}
	for _, n := range lab.Topo().Nodes {
		switch {
		case strings.HasPrefix(n.Name, "tor") && n.Env["TUNNEL_IP"] != "":
			// The ToR's hardware_vtep tables, on the port the agent uses
			// (ovs-vtep and torswitch both serve it from ovsdb-server).
			showIn(ctx, out, lab, n.Name, `db=--db=tcp:127.0.0.1:${OVSDB_PORT:-6640}; `+
				`for ls in $(vtep-ctl $db --timeout=2 list-ls); do echo "logical switch $ls:"; `+
				`vtep-ctl $db list-local-macs $ls; vtep-ctl $db list-remote-macs $ls; done`)
		case n.Env["VNI_PORTS"] != "":
			showIn(ctx, out, lab, n.Name, "bridge fdb show | grep dst | grep -v ' master '")
		}
	}
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
