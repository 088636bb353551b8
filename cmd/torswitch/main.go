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

	"github.com/spf13/cobra"

	"github.com/torstitch/torstitch/cmd/internal/cli"
	"github.com/torstitch/torstitch/physical/controller"
	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/physical/ovsdbserver"
)

type options struct {
	name, tunnelIP, ports, ovsdb, mgmt, logLevel string
	dbDir                                        string
	listen, managers                             []string
	tls                                          ovsdbserver.TLS
	macLimit                                     int
	mtu                                          int
	aging, stats, holdDown                       time.Duration
	arpSuppress                                  bool
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
		Use: "torswitch --name NAME --tunnel-ip IP --ports eth1[,eth2] [--listen ptcp:6640[:IP]|pssl:6640[:IP]|punix:PATH] [--manager ssl:IP:PORT] | --ovsdb tcp:IP:PORT|unix:PATH",
		Long: `torswitch keeps its hardware_vtep database in a real ovsdb-server, which it starts
and supervises over the database file in --db-dir (kept across restarts). Controllers
connect to the --listen targets, or the database connects out to each --manager
(Global.managers, as on hardware VTEPs). With --ovsdb, torswitch uses an
ovsdb-server run by someone else instead.`,
		Short:                 "Linux software hardware_vtep switch on the kernel data path",
		Args:                  cobra.NoArgs,
		SilenceUsage:          true,
		SilenceErrors:         true,
		DisableFlagsInUseLine: true,
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
	f.StringSliceVar(&o.listen, "listen", nil, "serve the database to controllers on ptcp:PORT[:IP], pssl:PORT[:IP] or punix:PATH (repeatable)")
	f.StringSliceVar(&o.managers, "manager", nil, "controller the database connects to: ssl:IP:PORT or tcp:IP:PORT (repeatable; kept in Global.managers)")
	f.StringVar(&o.dbDir, "db-dir", "/var/lib/torswitch", "directory of the served database (vtep.db) and ovsdb-server's runtime files")
	f.StringVar(&o.tls.Key, "tls-key", "", "PEM private key for pssl: and ssl: (ovsdb-server --private-key)")
	f.StringVar(&o.tls.Cert, "tls-cert", "", "PEM certificate for pssl: and ssl: (ovsdb-server --certificate)")
	f.StringVar(&o.tls.CA, "tls-ca", "", "PEM CA certificate that controllers' certificates are checked against (ovsdb-server --ca-cert)")
	f.StringVar(&o.ovsdb, "ovsdb", "", "use an external hardware_vtep database at tcp:IP:PORT, ssl:IP:PORT or unix:PATH instead of serving one")
	f.StringVar(&o.mgmt, "management-ips", "", "comma-separated management IPs for Physical_Switch")
	f.IntVar(&o.macLimit, "mac-limit", 0, "maximum Ucast_Macs_Local rows (0: unlimited); beyond it mac_table_exhaustion is raised")
	f.IntVar(&o.mtu, "mtu", 1500, "MTU of VXLAN devices and binding ports")
	f.DurationVar(&o.aging, "mac-aging", 300*time.Second, "ageing time of learned local MACs")
	f.DurationVar(&o.stats, "stats-interval", 10*time.Second, "vlan_stats refresh interval (negative: off)")
	o.holdDown = -1
	f.Var((*holdDown)(&o.holdDown), "hold-down", "keep the kernel state of a previous run this long before removing what the database lacks; auto: 60s when the served database was just created, else 0")
	f.BoolVar(&o.arpSuppress, "arp-suppression", true, "answer ARP for remote hosts with ipaddr locally (neigh_suppress)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return cli.SingleDashHint(c, os.Args[1:], err) })
	cli.Setup(cmd, "8")
	cmd.CompletionOptions.HiddenDefaultCmd = true
	return cmd
}

// holdDown is the --hold-down value: a duration, or auto (any negative
// duration, e.g. the former -1, also means auto).
type holdDown time.Duration

func (h *holdDown) String() string {
	if *h < 0 {
		return "auto"
	}
	return time.Duration(*h).String()
}

func (h *holdDown) Set(s string) error {
	if s == "auto" {
		*h = -1
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration (e.g. 90s) or auto")
	}
	*h = holdDown(d)
	return nil
}

func (h *holdDown) Type() string { return "duration|auto" }

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
	if o.ovsdb != "" && (len(o.listen) > 0 || len(o.managers) > 0 || o.tls != (ovsdbserver.TLS{})) {
		return errors.New("--ovsdb uses an external database: --listen, --manager and --tls-* belong to the served one")
	}
	for _, r := range o.listen {
		if _, err := ovsdbserver.ParseRemote(r); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
	}
	for _, m := range o.managers {
		if err := checkManager(m); err != nil {
			return fmt.Errorf("--manager: %w", err)
		}
		if strings.HasPrefix(m, "ssl:") && (o.tls.Key == "" || o.tls.Cert == "" || o.tls.CA == "") {
			return fmt.Errorf("--manager %s: ssl: needs --tls-key, --tls-cert and --tls-ca", m)
		}
	}
	var mgmt []netip.Addr
	for _, s := range splitList(o.mgmt) {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("--management-ips: %w", err)
		}
		mgmt = append(mgmt, ip)
	}

	endpoint, created := o.ovsdb, false
	if o.ovsdb == "" {
		srv, err := ovsdbserver.Start(ctx, ovsdbserver.Options{Dir: o.dbDir, Remotes: o.listen, TLS: o.tls, Logger: log})
		if err != nil {
			return err
		}
		defer srv.Close()
		endpoint, created = srv.Endpoint(), srv.Created()
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
		if created {
			// A new, empty database: the kernel may still forward what a
			// previous run programmed; keep it until controllers wrote again.
			holdDown = 60 * time.Second
		}
	}
	c := controller.New(controller.Config{
		Name: o.name, TunnelIP: tip, ManagementIPs: mgmt, Ports: splitList(o.ports), Managers: o.managers,
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

// checkManager accepts the active targets a hardware_vtep database's
// Manager rows hold: ssl:IP:PORT or tcp:IP:PORT.
func checkManager(target string) error {
	kind, rest, _ := strings.Cut(target, ":")
	if kind != "ssl" && kind != "tcp" {
		return fmt.Errorf("%q: want ssl:IP:PORT or tcp:IP:PORT", target)
	}
	ap, err := netip.ParseAddrPort(rest)
	if err != nil {
		if i := strings.LastIndex(rest, ":"); i > 0 {
			ap, err = netip.ParseAddrPort("[" + rest[:i] + "]" + rest[i:])
		}
	}
	if err != nil || ap.Port() == 0 {
		return fmt.Errorf("%q: want ssl:IP:PORT or tcp:IP:PORT", target)
	}
	return nil
}
