// Command torswitch is a Linux software hardware-VTEP switch: it serves (or
// attaches to) a hardware_vtep OVSDB database and forwards between VLANs on
// its trunk ports and VXLAN on the kernel data path.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/stdr"
	"github.com/spf13/cobra"

	"github.com/torstitch/torstitch/physical/controller"
	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/physical/ovsdbserver"
)

type options struct {
	name, tunnelIP, ports, listen, ovsdb, mgmt, logLevel string
	macLimit                                             int
	mtu                                                  int
	aging, stats, holdDown                               time.Duration
	arpSuppress                                          bool
}

func main() {
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "torswitch:", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:           "torswitch --name NAME --tunnel-ip IP --ports eth1[,eth2] (--listen ptcp:6640[:IP]|punix:PATH | --ovsdb tcp:IP:PORT|unix:PATH)",
		Short:         "Linux software hardware_vtep switch on the kernel data path",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "Physical_Switch name (required)")
	f.StringVar(&o.tunnelIP, "tunnel-ip", "", "VXLAN tunnel source IP (required)")
	f.StringVar(&o.ports, "ports", "", "comma-separated trunk ports, e.g. eth1,eth2")
	f.StringVar(&o.listen, "listen", "", "serve the switch's own hardware_vtep DB on ptcp:PORT[:IP] or punix:PATH")
	f.StringVar(&o.ovsdb, "ovsdb", "", "use an external hardware_vtep DB at tcp:IP:PORT or unix:PATH")
	f.StringVar(&o.mgmt, "management-ips", "", "comma-separated management IPs for Physical_Switch")
	f.IntVar(&o.macLimit, "mac-limit", 0, "maximum Ucast_Macs_Local rows (0: unlimited); beyond it mac_table_exhaustion is raised")
	f.IntVar(&o.mtu, "mtu", 1500, "MTU of VXLAN devices and binding ports")
	f.DurationVar(&o.aging, "mac-aging", 300*time.Second, "ageing time of learned local MACs")
	f.DurationVar(&o.stats, "stats-interval", 10*time.Second, "vlan_stats refresh interval (negative: off)")
	f.DurationVar(&o.holdDown, "hold-down", -1, "keep the kernel state of a previous run this long before removing what the database lacks (default: 60s with --listen, whose database starts empty; 0 with --ovsdb)")
	f.BoolVar(&o.arpSuppress, "arp-suppression", true, "answer ARP for remote hosts with ipaddr locally (neigh_suppress)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func run(ctx context.Context, o options) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if o.name == "" {
		return errors.New("--name is required")
	}
	tip, err := netip.ParseAddr(o.tunnelIP)
	if err != nil {
		return fmt.Errorf("--tunnel-ip: %w", err)
	}
	if (o.listen == "") == (o.ovsdb == "") {
		return errors.New("give exactly one of --listen and --ovsdb")
	}
	var mgmt []netip.Addr
	for _, s := range splitList(o.mgmt) {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("--management-ips: %w", err)
		}
		mgmt = append(mgmt, ip)
	}
	stdr.SetVerbosity(0) // libovsdb's server logs every request otherwise

	endpoint := o.ovsdb
	if o.listen != "" {
		srv, err := ovsdbserver.Serve(ctx, o.listen)
		if err != nil {
			return err
		}
		defer srv.Close()
		endpoint = srv.Endpoint()
		log.Info("serving hardware_vtep", "listen", o.listen)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ovs, err := controller.Connect(cctx, endpoint, log)
	cancel()
	if err != nil {
		return err
	}
	defer ovs.Close()
	dp, err := dataplane.New(dataplane.Options{MTU: o.mtu, AgeingTime: o.aging, ARPSuppression: o.arpSuppress, Logger: log})
	if err != nil {
		return err
	}
	defer dp.Close()
	holdDown := o.holdDown
	if holdDown < 0 {
		holdDown = 0
		if o.listen != "" {
			holdDown = 60 * time.Second
		}
	}
	c := controller.New(controller.Config{
		Name: o.name, TunnelIP: tip, ManagementIPs: mgmt, Ports: splitList(o.ports),
		MACLimit: o.macLimit, StatsInterval: o.stats, HoldDown: holdDown, Logger: log,
	}, ovs, dp)
	log.Info("torswitch running", "name", o.name, "tunnel_ip", tip, "ports", o.ports)
	return c.Run(ctx)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
