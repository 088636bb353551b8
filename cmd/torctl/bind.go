package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/l2"
)

// keywordArgs completes the fixed words of "vlan <VLAN> vni <VNI>".
func keywordArgs(words map[int]string) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if w, ok := words[len(args)]; ok {
			return []cobra.Completion{w}, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// parsePorts checks SWITCH:PORT values and returns them canonical, without
// repeats, in the order given.
func parsePorts(values []string) ([]string, error) {
	seen := map[l2.PortRef]bool{}
	var ports []string
	for _, v := range values {
		p, err := l2.ParsePortRef(v)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p.String())
		}
	}
	return ports, nil
}

func bindCmd(g *globals) *cobra.Command {
	var portFlags []string
	const use = "bind vlan <VLAN> vni <VNI> --port SWITCH:PORT [--port ...]"
	cmd := &cobra.Command{
		Use:   use,
		Short: "Bind a VLAN on switch ports to a VNI",
		Long: "Bind VLAN (0-4094; 0 means untagged frames, 4095 is reserved) on each SWITCH:PORT to VNI\n" +
			"(1-16777215). The agent writes the binding to the switches and persists it.",
		Example: "  torctl bind vlan 100 vni 10100 --port tor1:eth1 --port tor2:eth1",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 4 || args[0] != "vlan" || args[2] != "vni" {
				return usageErr("usage: torctl %s", use)
			}
			return nil
		},
		ValidArgsFunction: keywordArgs(map[int]string{0: "vlan", 2: "vni"}),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			var vni l2.VNI
			parseVNI := func() (err error) { vni, err = l2.ParseVNI(args[3]); return err }
			return g.onPorts(cmd, "bind", portFlags, args[1], parseVNI, func(c *api.Client, vlan l2.VLAN, ports []string) error {
				if err := c.Bind(cmd.Context(), api.BindRequest{VLAN: vlan, VNI: vni, Ports: ports}); err != nil {
					return fmt.Errorf("bind VLAN %d to VNI %d: %w", vlan, vni, err)
				}
				fmt.Fprintf(g.stdout, "bound VLAN %d to VNI %d on %s\n", vlan, vni, strings.Join(ports, ", "))
				return nil
			})
		}),
	}
	cmd.Flags().StringArrayVarP(&portFlags, "port", "p", nil, "SWITCH:PORT to bind (repeat for several)")
	return cmd
}

func unbindCmd(g *globals) *cobra.Command {
	var portFlags []string
	const use = "unbind vlan <VLAN> --port SWITCH:PORT [--port ...]"
	cmd := &cobra.Command{
		Use:   use,
		Short: "Remove a torctl binding of a VLAN from switch ports",
		Long: "Remove the binding of VLAN on each SWITCH:PORT that torctl made. Bindings from the\n" +
			"configuration file or from vCenter are not removed by torctl.",
		Example: "  torctl unbind vlan 100 --port tor1:eth1 --port tor2:eth1",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 || args[0] != "vlan" {
				return usageErr("usage: torctl %s", use)
			}
			return nil
		},
		ValidArgsFunction: keywordArgs(map[int]string{0: "vlan"}),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return g.onPorts(cmd, "unbind", portFlags, args[1], nil, func(c *api.Client, vlan l2.VLAN, ports []string) error {
				if err := c.Unbind(cmd.Context(), api.UnbindRequest{VLAN: vlan, Ports: ports}); err != nil {
					return fmt.Errorf("unbind VLAN %d: %w", vlan, err)
				}
				fmt.Fprintf(g.stdout, "unbound VLAN %d from %s\n", vlan, strings.Join(ports, ", "))
				return nil
			})
		}),
	}
	cmd.Flags().StringArrayVarP(&portFlags, "port", "p", nil, "SWITCH:PORT to unbind (repeat for several)")
	return cmd
}

// onPorts checks the input of bind and unbind in one order (at least one
// --port, the VLAN, the command's own arguments, the ports) before it
// connects to the agent and runs do.
func (g *globals) onPorts(cmd *cobra.Command, verb string, portFlags []string, vlanArg string,
	parseRest func() error, do func(c *api.Client, vlan l2.VLAN, ports []string) error) error {
	if len(portFlags) == 0 {
		return usageErr("%s needs at least one --port SWITCH:PORT", verb)
	}
	vlan, err := l2.ParseVLAN(vlanArg)
	if err != nil {
		return err
	}
	if parseRest != nil {
		if err := parseRest(); err != nil {
			return err
		}
	}
	ports, err := parsePorts(portFlags)
	if err != nil {
		return err
	}
	c, err := g.client(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	return do(c, vlan, ports)
}
