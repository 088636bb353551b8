package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/l2"
)

const showTargets = "bindings, macs, switches, peers, vcenter or networks"

func showCmd(g *globals) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "show bindings|macs|switches|peers|vcenter|networks",
		Short: "Show the agent's bindings, MACs, switches, BGP peers, vCenter state or published networks",
		Args:  cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("show what? want %s", showTargets)
			}
			return usageErr("show %q: want %s", args[0], showTargets)
		},
	}
	out.register(cmd)

	// leaf builds a show subcommand: path is the API resource printed raw for
	// -o json, table fetches the typed value and prints it.
	leaf := func(name, short string, path func() (string, error), table func(ctx context.Context, c *api.Client, w io.Writer) error) *cobra.Command {
		return &cobra.Command{
			Use:   name,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: action(func(cmd *cobra.Command, _ []string) error {
				if err := out.check(); err != nil {
					return err
				}
				p, err := path()
				if err != nil {
					return err
				}
				c, err := g.client(cmd)
				if err != nil {
					return err
				}
				defer c.Close()
				if out.format == "json" {
					raw, err := c.GetRaw(cmd.Context(), p)
					if err != nil {
						return err
					}
					return writeIndented(g.stdout, raw)
				}
				return table(cmd.Context(), c, g.stdout)
			}),
		}
	}
	fixed := func(p string) func() (string, error) { return func() (string, error) { return p, nil } }

	var vniFlag string
	macsVNI := func() (l2.VNI, error) {
		if vniFlag == "" {
			return 0, nil
		}
		return l2.ParseVNI(vniFlag)
	}
	macsPath := func() (string, error) {
		vni, err := macsVNI()
		return api.MACsPath(vni), err
	}
	macs := leaf("macs", "Show local (switch-learned) and remote (EVPN) MACs", macsPath,
		func(ctx context.Context, c *api.Client, w io.Writer) error {
			vni, _ := macsVNI() // checked by macsPath before
			m, err := c.MACs(ctx, vni)
			if err != nil {
				return err
			}
			return macsTable(w, m)
		})
	macs.Flags().StringVar(&vniFlag, "vni", "", "only this VNI")

	cmd.AddCommand(
		leaf("bindings", "Show bindings and where each came from (config, torctl, vcenter)", fixed(api.PathBindings),
			func(ctx context.Context, c *api.Client, w io.Writer) error {
				b, err := c.Bindings(ctx)
				if err != nil {
					return err
				}
				return bindingsTable(w, b)
			}),
		macs,
		leaf("switches", "Show the switches of the pair, their state and faults", fixed(api.PathSwitches),
			func(ctx context.Context, c *api.Client, w io.Writer) error {
				s, err := c.Switches(ctx)
				if err != nil {
					return err
				}
				return switchesTable(w, s)
			}),
		leaf("peers", "Show the BGP peers", fixed(api.PathPeers),
			func(ctx context.Context, c *api.Client, w io.Writer) error {
				p, err := c.Peers(ctx)
				if err != nil {
					return err
				}
				return peersTable(w, p)
			}),
		leaf("vcenter", "Show the vCenter discovery state", fixed(api.PathVCenter),
			func(ctx context.Context, c *api.Client, w io.Writer) error {
				v, err := c.VCenter(ctx)
				if err != nil {
					return err
				}
				return vcenterTable(w, v)
			}),
		leaf("networks", "Show published networks: VNI, name, VLAN, port group, attached VMs, state", fixed(api.PathNetworks), showNetworks),
	)
	return cmd
}

func writeIndented(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("agent answer is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// table writes aligned rows: cells joined by tabs, rows by newlines.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) { fmt.Fprintln(t.tw, strings.Join(cells, "\t")) }

func (t *table) flush() error { return t.tw.Flush() }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func vlanString(v l2.VLAN) string {
	if v == 0 {
		return "untagged"
	}
	return strconv.Itoa(int(v))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func bindingsTable(w io.Writer, bs []api.Binding) error {
	bs = slices.Clone(bs)
	slices.SortStableFunc(bs, func(a, b api.Binding) int {
		return cmp.Or(cmp.Compare(a.VLAN, b.VLAN), cmp.Compare(a.VNI, b.VNI), cmp.Compare(a.Source, b.Source))
	})
	t := newTable(w, "VLAN", "VNI", "SOURCE", "PORTS")
	for _, b := range bs {
		ports := slices.Clone(b.Ports)
		slices.SortFunc(ports, l2.PortRef.Compare)
		ps := make([]string, len(ports))
		for i, p := range ports {
			ps[i] = p.String()
		}
		t.row(vlanString(b.VLAN), strconv.FormatUint(uint64(b.VNI), 10), orDash(b.Source), orDash(strings.Join(ps, ",")))
	}
	return t.flush()
}

func macsTable(w io.Writer, m api.MACs) error {
	type row struct {
		vni    l2.VNI
		mac    l2.MAC
		kind   string
		cells  []string
		origin string
	}
	var rows []row
	for _, l := range m.Local {
		rows = append(rows, row{l.VNI, l.MAC, "local", []string{
			l.Switch, orDash(l2.AddrString(l.VTEP)), orDash(l2.AddrString(l.IP)), "-"}, l.Switch})
	}
	for _, r := range m.Remote {
		rows = append(rows, row{r.VNI, r.MAC, "remote", []string{
			"-", orDash(l2.AddrString(r.VTEP)), orDash(l2.AddrString(r.IP)), strconv.FormatUint(uint64(r.Seq), 10)}, ""})
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.vni, b.vni), a.mac.Compare(b.mac),
			cmp.Compare(a.kind, b.kind), cmp.Compare(a.origin, b.origin))
	})
	t := newTable(w, "VNI", "MAC", "TYPE", "SWITCH", "VTEP", "IP", "SEQ")
	for _, r := range rows {
		t.row(append([]string{strconv.FormatUint(uint64(r.vni), 10), r.mac.String(), r.kind}, r.cells...)...)
	}
	return t.flush()
}

func switchFaults(s api.Switch) string {
	faults := slices.Clone(s.Faults)
	for port, fs := range s.PortFaults {
		for _, f := range fs {
			faults = append(faults, port+":"+f)
		}
	}
	slices.Sort(faults[len(s.Faults):])
	return orDash(strings.Join(faults, ","))
}

func switchesTable(w io.Writer, ss []api.Switch) error {
	t := newTable(w, "NAME", "STATE", "ENDPOINT", "TUNNEL-IPS", "REPLICATION", "PORTS", "LS", "LOCAL", "REMOTE", "FAULTS", "BFD-DOWN", "CONFLICTS", "LAST-RECONCILE", "LAST-ERROR")
	for _, s := range ss {
		state := "down"
		if s.Connected {
			state = "up"
		}
		t.row(s.Name, state, orDash(s.Endpoint), orDash(strings.Join(s.TunnelIPs, ",")), orDash(s.Replication),
			strconv.Itoa(s.Ports), strconv.Itoa(s.LogicalSws), strconv.Itoa(s.LocalMACs), strconv.Itoa(s.RemoteMACs),
			switchFaults(s), orDash(strings.Join(s.BFDDown, ",")), strconv.Itoa(len(s.Conflicts)), timeString(s.LastReconcile), orDash(s.LastError))
	}
	if err := t.flush(); err != nil {
		return err
	}
	// Conflicts are sentences: listed under the table, one per line.
	for _, s := range ss {
		for _, c := range s.Conflicts {
			if _, err := fmt.Fprintf(w, "conflict on %s: %s\n", s.Name, c); err != nil {
				return err
			}
		}
	}
	return nil
}

func peersTable(w io.Writer, ps []api.Peer) error {
	t := newTable(w, "ADDRESS", "ASN", "STATE", "UPTIME", "RECEIVED", "ACCEPTED", "ADVERTISED", "EOR")
	for _, p := range ps {
		up := "-"
		if p.Uptime > 0 {
			up = p.Uptime.Truncate(time.Second).String()
		}
		t.row(orDash(l2.AddrString(p.Address)), strconv.FormatUint(uint64(p.ASN), 10), orDash(p.State), up,
			strconv.FormatUint(p.Received, 10), strconv.FormatUint(p.Accepted, 10),
			strconv.FormatUint(p.Advertised, 10), yesNo(p.EndOfRIB))
	}
	return t.flush()
}

func vcenterTable(w io.Writer, v api.VCenter) error {
	t := newTable(w)
	t.row("CONFIGURED:", yesNo(v.Configured))
	if v.Configured {
		t.row("URL:", orDash(v.URL))
		t.row("STATE:", orDash(v.State))
		t.row("LAST-SYNC:", timeString(v.LastSync))
		t.row("VALID:", yesNo(v.Valid))
		t.row("BINDINGS:", strconv.Itoa(v.Bindings))
		t.row("VM-MACS:", strconv.Itoa(v.VMMACs))
		if v.Error != "" {
			t.row("ERROR:", v.Error)
		}
		if len(v.Conflicts) == 0 {
			t.row("CONFLICTS:", "-")
		}
		for i, c := range v.Conflicts {
			key := ""
			if i == 0 {
				key = "CONFLICTS:"
			}
			t.row(key, c)
		}
	}
	return t.flush()
}
