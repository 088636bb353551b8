package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/torstitch/torstitch/testbed"
)

func newInspectCmd(g *globalFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show the lab's nodes, processes and interfaces",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := testbed.Inspect(cmd.Context(), args[0], g.options())
			if err != nil {
				return err
			}
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			case "table", "":
				printTable(cmd.OutOrStdout(), info)
				return nil
			}
			return fmt.Errorf("unknown output format %q (table, json)", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func printTable(w io.Writer, info *testbed.Info) {
	state := "not deployed"
	if info.Deployed {
		state = "deployed, run dir " + info.RunDir
	}
	fmt.Fprintf(w, "lab %s (%s)\n", info.Lab, state)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tSTATE\tNETNS\tINTERFACES")
	for _, n := range info.Nodes {
		var ifs []string
		for _, i := range n.Interfaces {
			s := i.Name
			if len(i.Addrs) > 0 {
				s += "=" + strings.Join(i.Addrs, ",")
			}
			ifs = append(ifs, s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, n.Kind, n.State, n.Netns, strings.Join(ifs, " "))
	}
	tw.Flush()
}
