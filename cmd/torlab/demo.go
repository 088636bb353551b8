package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/torstitch/torstitch/testbed"
	"github.com/torstitch/torstitch/testbed/clab"
)

// SegmentLabel marks a VM node with its L2 segment (the VNI its VLAN is
// stitched into): VMs of one segment must reach each other, others not.
const SegmentLabel = "torstitch.segment"

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
			ok := pingMatrix(ctx, out, lab, converge)
			printMACTables(ctx, out, lab)
			if teardown {
				if err := lab.Destroy(ctx); err != nil {
					return err
				}
				fmt.Fprintln(out, "\nlab destroyed")
			} else {
				fmt.Fprintf(out, "\nlab %s is up (runtime %s).\n%s", lab.LabName(), lab.Kind(), how)
			}
			if !ok {
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

type vm struct {
	name, segment, ip string
}

func labVMs(t *clab.Topology) []vm {
	var vms []vm
	for _, n := range t.Nodes {
		seg, ok := n.Labels[SegmentLabel]
		ip, _, _ := strings.Cut(n.Env["VM_IP"], "/")
		if ok && ip != "" {
			vms = append(vms, vm{n.Name, seg, ip})
		}
	}
	return vms
}

// pingMatrix pings every VM from every other, in parallel per source, and
// prints the matrix; it reports whether it matches the segments.
func pingMatrix(ctx context.Context, w io.Writer, lab testbed.Runtime, converge time.Duration) bool {
	vms := labVMs(lab.Topo())
	got := make([][]bool, len(vms))
	var wg sync.WaitGroup
	for i := range vms {
		got[i] = make([]bool, len(vms))
		for j := range vms {
			if i == j {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				want := vms[i].segment == vms[j].segment
				deadline := time.Now().Add(converge)
				if !want {
					deadline = time.Now() // one try: isolation must hold at once
				}
				for {
					_, err := lab.Exec(ctx, vms[i].name, "ping", "-c", "1", "-W", "1", vms[j].ip)
					got[i][j] = err == nil
					if got[i][j] || time.Now().After(deadline) || ctx.Err() != nil {
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	header := []string{"from \\ to"}
	for _, v := range vms {
		header = append(header, fmt.Sprintf("%s(%s)", v.name, v.segment))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	ok := true
	for i, src := range vms {
		row := []string{src.name}
		for j, dst := range vms {
			cell := "-"
			if i != j {
				want := src.segment == dst.segment
				switch {
				case got[i][j] && want:
					cell = "ok"
				case !got[i][j] && !want:
					cell = "isolated"
				case got[i][j]:
					cell = "LEAK"
				default:
					cell = "FAIL"
				}
				if got[i][j] != want {
					ok = false
				}
			}
			row = append(row, cell)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	fmt.Fprintf(w, "matrix %s\n", map[bool]string{true: "as expected", false: "NOT as expected"}[ok])
	return ok
}
