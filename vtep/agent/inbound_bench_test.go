package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/api"
)

// countRows reads, over the switch's unix socket and without libovsdb, how
// many Ucast_Macs_Remote rows it holds and whether port's VLAN binding
// exists.
func countRows(ctx context.Context, sock, port string) (remote int, bound bool, err error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return 0, false, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	req := fmt.Sprintf(`{"id":1,"method":"transact","params":["hardware_vtep",`+
		`{"op":"select","table":"Ucast_Macs_Remote","where":[],"columns":["_uuid"]},`+
		`{"op":"select","table":"Physical_Port","where":[["name","==",%q]],"columns":["vlan_bindings"]}]}`, port)
	if _, err := c.Write([]byte(req)); err != nil {
		return 0, false, err
	}
	var resp struct {
		Result []struct {
			Rows []struct {
				VLANBindings []any `json:"vlan_bindings"`
			} `json:"rows"`
		} `json:"result"`
	}
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return 0, false, err
	}
	if len(resp.Result) != 2 {
		return 0, false, fmt.Errorf("unexpected reply")
	}
	ports := resp.Result[1].Rows
	// An OVSDB map is ["map", [[k, v], ...]]: bound when non-empty.
	bound = len(ports) == 1 && len(ports[0].VLANBindings) == 2 && fmt.Sprint(ports[0].VLANBindings[1]) != "[]"
	return len(resp.Result[0].Rows), bound, nil
}

// BenchmarkInboundSwitch measures an inbound switch (SSL, ovs-pki
// certificates) against a real ovsdb-server (run with -benchtime 1x):
//   - connect: a switch with a wiped database gets its Manager row; from
//     the commit of that row (the switch dials) until its binding and
//     1,000 remote MACs (tor2's local MACs) are written, over 20
//     reconnects; also until the session is synced (TLS, identification,
//     initial monitor), and the time including vtep-ctl's run;
//   - restart: the switch's ovsdb-server is restarted (database intact)
//     while a new remote MAC is pending; from the start of the restart
//     until that MAC is written, over 10 restarts.
func BenchmarkInboundSwitch(b *testing.B) {
	const macs = 1000
	p := newInboundPair(b)
	a, manager := runAgent(b, p.cfg)
	p.tor1.VtepCtl("set-manager", manager)
	waitB(b, 20*time.Second, "tor1 dialed in", connected(a, "tor1"))
	waitB(b, 20*time.Second, "tor2 connected", connected(a, "tor2"))
	ctx := context.Background()
	if err := a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1", "tor2:eth1"}}); err != nil {
		b.Fatal(err)
	}
	waitB(b, 10*time.Second, "vni10100 on tor2", func() error {
		if !hasLine(p.tor2.VtepCtl("list-ls"), "vni10100") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	var args []string
	for i := range macs {
		args = append(args, "--", "add-ucast-local", "vni10100", fmt.Sprintf("00:50:56:%02x:%02x:%02x", 0xa0, i>>8, i&0xff), "192.0.2.12")
	}
	p.tor2.VtepCtl(args[1:]...)
	complete := func(want int) func() error {
		return func() error {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			n, bound, err := countRows(cctx, p.tor1.Sock, "eth1")
			if err != nil {
				return err
			}
			if n < want || !bound {
				return fmt.Errorf("%d remote MACs, bound %v", n, bound)
			}
			return nil
		}
	}
	waitB(b, 20*time.Second, "tor1 complete", complete(macs))

	b.ResetTimer()
	var connect, withCtl, synced, restart []time.Duration
	for range b.N {
		for range 20 {
			p.tor1.Restart(true)
			p.tor1.AddSwitch("tor1", "192.0.2.11", "eth1", "eth2")
			n0 := a.sw[0].client.Status().Connections
			// The Manager row is committed when vtep-ctl returns; the
			// switch dials right after. vtep-ctl's own run (15-30 ms here)
			// is not the agent's: it is reported apart.
			before := time.Now()
			p.tor1.VtepCtl("set-manager", manager)
			start := time.Now()
			waitB(b, 20*time.Second, "tor1 complete after connecting", complete(macs))
			connect = append(connect, time.Since(start))
			withCtl = append(withCtl, time.Since(before))
			st := a.sw[0].client.Status()
			if st.Connections != n0+1 {
				b.Errorf("connections %d -> %d: the switch was refused or dialed twice", n0, st.Connections)
			}
			synced = append(synced, st.Since.Sub(start))
		}
		for i := range 10 {
			p.tor1.Stop()
			mac := fmt.Sprintf("00:50:56:b0:00:%02x", i)
			p.tor2.VtepCtl("add-ucast-local", "vni10100", mac, "192.0.2.12")
			if err := a.waitPass(ctx); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			p.tor1.Start()
			waitB(b, 20*time.Second, "pending MAC on tor1 after restart", remoteHas(p.tor1, mac, "192.0.2.12"))
			restart = append(restart, time.Since(start))
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(quantile(connect, 0.5)), "connect_p50_ms")
	b.ReportMetric(ms(quantile(connect, 0.99)), "connect_p99_ms")
	b.ReportMetric(ms(quantile(synced, 0.99)), "connect_synced_p99_ms")
	b.ReportMetric(ms(quantile(withCtl, 0.99)), "connect_incl_vtepctl_p99_ms")
	b.ReportMetric(ms(quantile(restart, 0.5)), "restart_p50_ms")
	b.ReportMetric(ms(quantile(restart, 0.99)), "restart_p99_ms")
	b.Logf("connect → bindings + %d remote MACs written (%d runs): %v", macs, len(connect), strings.Trim(fmt.Sprint(connect), "[]"))
	b.Logf("restart → pending MAC written (%d runs): %v", len(restart), strings.Trim(fmt.Sprint(restart), "[]"))
}

// waitB polls cond every 2 ms (fine enough for the figures) until it holds.
func waitB(b testing.TB, d time.Duration, what string, cond func() error) {
	b.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: not within %s: %v", what, d, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
