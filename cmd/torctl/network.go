package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/l2"
)

// networkCmd is "torctl network publish|unpublish" (issue 17): overlay
// networks offered to vCenter as distributed port groups.
func networkCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network publish|unpublish",
		Short: "Publish a VNI to vCenter as a distributed port group, or retire it",
		Args:  cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("network what? want publish or unpublish")
			}
			return usageErr("network %q: want publish or unpublish", args[0])
		},
	}
	var vniFlag, nameFlag, vlanFlag string
	publish := &cobra.Command{
		Use:   "publish --vni VNI --name NAME [--vlan VLAN]",
		Short: "Create a port group for VNI on the agent's distributed switch and bind it on the ToRs",
		Long: "Publish VNI (1-16777215) as a distributed port group named NAME on the switch configured as\n" +
			"vcenter.publish_switch, with VLAN (1-4094) or, without --vlan, a VLAN from vcenter.vlan_pool that\n" +
			"no other port group on that switch uses. The agent owns the port group (custom attribute\n" +
			"torstitch.owner), binds its VLAN to VNI on the ToR ports facing the switch's hosts, and keeps the\n" +
			"network across restarts. VMs attached to the port group reach the VNI.",
		Example: "  torctl network publish --vni 10300 --name web\n  torctl network publish --vni 10301 --name app --vlan 3050",
		Args:    cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, _ []string) error {
			if vniFlag == "" || nameFlag == "" {
				return usageErr("network publish needs --vni VNI and --name NAME")
			}
			vni, err := l2.ParseVNI(vniFlag)
			if err != nil {
				return err
			}
			if err := api.CheckNetworkName(nameFlag); err != nil {
				return err
			}
			var vlan l2.VLAN
			if vlanFlag != "" {
				if vlan, err = l2.ParseVLAN(vlanFlag); err != nil {
					return err
				}
				if vlan == 0 {
					return fmt.Errorf("VLAN 0 (untagged) cannot be published; give 1-4094 or leave --vlan out to take one from the pool")
				}
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			n, err := c.Publish(cmd.Context(), api.PublishRequest{VNI: vni, Name: nameFlag, VLAN: vlan})
			if err != nil {
				return fmt.Errorf("publish VNI %d as %q: %w", vni, nameFlag, err)
			}
			msg := fmt.Sprintf("published VNI %d as port group %s", n.VNI, n.Name)
			if n.PortGroup != "" {
				msg += " (" + n.PortGroup + ")"
			}
			if n.VLAN != 0 {
				msg += fmt.Sprintf(" on VLAN %d", n.VLAN)
			}
			msg += ": " + n.State
			if n.Error != "" {
				msg += " (" + n.Error + ")"
			}
			fmt.Fprintln(g.stdout, msg)
			return nil
		}),
	}
	publish.Flags().StringVar(&vniFlag, "vni", "", "VNI to publish (1-16777215)")
	publish.Flags().StringVar(&nameFlag, "name", "", "port group name")
	publish.Flags().StringVar(&vlanFlag, "vlan", "", "VLAN (1-4094); default: one from vcenter.vlan_pool")

	var unVNI string
	unpublish := &cobra.Command{
		Use:   "unpublish --vni VNI",
		Short: "Delete the port group of a published VNI (refused while VMs are attached)",
		Long: "Delete the port group the agent created for VNI and remove its ToR bindings. Only networks\n" +
			"published with torctl; those of the configuration file are removed there. Refused, naming\n" +
			"them, while VM network cards are attached to the port group.",
		Example: "  torctl network unpublish --vni 10300",
		Args:    cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, _ []string) error {
			if unVNI == "" {
				return usageErr("network unpublish needs --vni VNI")
			}
			vni, err := l2.ParseVNI(unVNI)
			if err != nil {
				return err
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Unpublish(cmd.Context(), api.UnpublishRequest{VNI: vni}); err != nil {
				return fmt.Errorf("unpublish VNI %d: %w", vni, err)
			}
			fmt.Fprintf(g.stdout, "unpublished VNI %d\n", vni)
			return nil
		}),
	}
	unpublish.Flags().StringVar(&unVNI, "vni", "", "VNI to unpublish")
	cmd.AddCommand(publish, unpublish)
	return cmd
}

// showNetworks prints "torctl show networks".
func showNetworks(ctx context.Context, c *api.Client, w io.Writer) error {
	ns, err := c.Networks(ctx)
	if err != nil {
		return err
	}
	return networksTable(w, ns)
}

func networksTable(w io.Writer, ns api.Networks) error {
	if !ns.Configured {
		_, err := fmt.Fprintln(w, "publishing networks is not configured (vcenter.publish_switch)")
		return err
	}
	head := fmt.Sprintf("switch %s, VLAN pool %s, vCenter %s", ns.Switch, orDash(ns.Pool), orDash(ns.State))
	if ns.Error != "" {
		head += ": " + ns.Error
	}
	fmt.Fprintln(w, head)
	t := newTable(w, "VNI", "NAME", "VLAN", "PORT-GROUP", "VMS", "STATE", "SOURCE", "NOTE")
	for _, n := range ns.Networks {
		vlan := "-"
		if n.VLAN != 0 {
			vlan = strconv.Itoa(int(n.VLAN))
		}
		vms := "-"
		if len(n.VMs) > 0 {
			vms = strings.Join(n.VMs, ",")
		}
		var note []string
		if n.Error != "" {
			note = append(note, n.Error)
		}
		if n.Drift != "" {
			note = append(note, n.Drift)
		}
		t.row(strconv.FormatUint(uint64(n.VNI), 10), n.Name, vlan, orDash(n.PortGroup), vms, n.State, orDash(n.Source),
			orDash(strings.Join(note, "; ")))
	}
	return t.flush()
}
