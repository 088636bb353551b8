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
			lab, err := testbed.Deploy(ctx, file, g.options())
			if err != nil {
				return err
			}
			info, err := lab.Inspect(ctx)
			if err != nil {
				return err
			}
			printTable(out, info)
			if lab.Topology.Node("toragent") != nil {
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
				me := os.Args[0]
				fmt.Fprintf(out, "\nlab %s is up.\n  inspect: %s inspect %s\n  a shell: %s exec %s NODE -- bash\n"+
					"  the agent: %s exec %s toragent -- torctl show bindings|macs|switches|peers|vcenter\n"+
					"  destroy: %s destroy %s   (or: make demo-destroy)\n",
					lab.Name, me, file, me, file, me, file, me, file)
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
func showIn(ctx context.Context, out io.Writer, lab *testbed.Lab, node, cmdline string) {
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
func printMACTables(ctx context.Context, out io.Writer, lab *testbed.Lab) {
	if lab.Topology.Node("toragent") != nil {
		showIn(ctx, out, lab, "toragent", "torctl show macs")
	}
	for _, n := range lab.Topology.Nodes {
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
func pingMatrix(ctx context.Context, w io.Writer, lab *testbed.Lab, converge time.Duration) bool {
	vms := labVMs(lab.Topology)
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
