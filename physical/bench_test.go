package physical

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/physical/controller"
	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/physical/nstest"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkFirstFrameToLocalRow measures the time from a host's first
// VLAN-tagged frame on the trunk to its Ucast_Macs_Local row arriving at an
// OVSDB client of the switch's database (ovs-vtep: about 1 s).
func BenchmarkFirstFrameToLocalRow(b *testing.B) {
	const samples = 200
	l := newTrunkLab(b)
	endpoint := startServer(b)
	newSwitch(b, endpoint, controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1,
	}, dataplane.Options{NetNS: l.sw.Handle()})
	a := newAgent(b, endpoint)
	ls := a.logicalSwitch("ls7000", 7000)
	a.bind("tor1", "eth1", 10, ls)
	nstest.Eventually(b, 10*time.Second, func() (bool, string) {
		out, _ := l.sw.Try("ip", "-br", "link")
		return strings.Contains(out, "v10a"), out
	})
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	notify := make(chan struct{}, 1)
	a.c.Cache().AddEventHandler(&cache.EventHandlerFuncs{AddFunc: func(table string, m model.Model) {
		if r, ok := m.(*vtepdb.UcastMacsLocal); ok {
			mu.Lock()
			arrived[r.MAC] = time.Now()
			mu.Unlock()
			select {
			case notify <- struct{}{}:
			default:
			}
		}
	}})
	s := l.socket(b)
	var lat []time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := 0; i < samples; i++ {
			mac := fmt.Sprintf("02:00:%02x:00:%02x:%02x", n%256, i/256, i%256)
			start := time.Now()
			send(b, s, mac, 10)
			deadline := time.After(5 * time.Second)
			for {
				mu.Lock()
				at, ok := arrived[mac]
				mu.Unlock()
				if ok {
					lat = append(lat, at.Sub(start))
					break
				}
				select {
				case <-notify:
				case <-deadline:
					b.Fatalf("no Ucast_Macs_Local row for %s after 5 s", mac)
				}
			}
		}
	}
	b.StopTimer()
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.Logf("first frame → Ucast_Macs_Local row, %d MACs: p50 %.2f ms, p99 %.2f ms, max %.2f ms",
		len(lat), ms(p50), ms(p99), ms(percentile(lat, 1)))
}

// BenchmarkRemoteMACs10k measures the time from one transaction of 10,000
// Ucast_Macs_Remote rows to 10,000 entries in the kernel's VXLAN FDB, with
// the switch's served database (its supervised ovsdb-server) and with an
// external ovsdb-server (--ovsdb). BenchmarkRemoteMACs10kOvsVtep is the
// same against ovs-vtep.
func BenchmarkRemoteMACs10k(b *testing.B) {
	b.Run("served/50-vteps", func(b *testing.B) { benchRemoteMACs(b, startServer(b), 10000, 50) })
	b.Run("served/1-vtep", func(b *testing.B) { benchRemoteMACs(b, startServer(b), 10000, 1) })
	b.Run("ovsdb-server/50-vteps", func(b *testing.B) { benchRemoteMACs(b, startOvsdbServer(b), 10000, 50) })
}

// benchRemoteMACs writes the rows in transactions of batch rows, spread
// over vteps remote VTEPs (locators).
func benchRemoteMACs(b *testing.B, endpoint string, batch, vteps int) {
	const rows = 10000
	l := newTrunkLab(b)
	newSwitch(b, endpoint, controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1,
	}, dataplane.Options{NetNS: l.sw.Handle()})
	a := newAgent(b, endpoint)
	nl, err := netlink.NewHandleAt(l.sw.Handle())
	if err != nil {
		b.Fatal(err)
	}
	defer nl.Close()
	count := func(dev string) int {
		link, err := nl.LinkByName(dev)
		if err != nil {
			return -1
		}
		fdb, _ := nl.NeighList(link.Attrs().Index, unix.AF_BRIDGE)
		n := 0
		for _, e := range fdb {
			if e.Flags&unix.NTF_SELF != 0 && e.IP != nil && e.HardwareAddr[0] == 0x06 {
				n++
			}
		}
		return n
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		vni := 7000 + n
		dev := fmt.Sprintf("tsvx%d", vni)
		ls := a.logicalSwitch(fmt.Sprintf("ls%d", vni), vni)
		a.bind("tor1", "eth1", 10+n, ls)
		nstest.Eventually(b, 10*time.Second, func() (bool, string) { return count(dev) == 0, "no " + dev })
		b.StartTimer()
		start := time.Now()
		for first := 0; first < rows; first += batch {
			// The locator is created with the first batch (a Physical_Locator
			// nothing references is garbage-collected).
			var ops []ovsdb.Operation
			for i := first; i < first+batch && i < rows; i++ {
				loc := a.locator(fmt.Sprintf("192.168.78.%d", 1+i%vteps), &ops)
				mac := fmt.Sprintf("06:00:%02x:%02x:%02x:%02x", n, i>>16&0xff, i>>8&0xff, i&0xff)
				ops = append(ops, a.create(&vtepdb.UcastMacsRemote{MAC: mac, LogicalSwitch: ls, Locator: loc})...)
			}
			a.commit(ops)
		}
		committed := time.Since(start)
		for count(dev) < rows {
			if time.Since(start) > time.Minute {
				b.Fatalf("%d of %d FDB entries after 1 min", count(dev), rows)
			}
			time.Sleep(5 * time.Millisecond)
		}
		total := time.Since(start)
		b.StopTimer()
		b.ReportMetric(ms(committed), "txn-ms")
		b.ReportMetric(ms(total), "rows-to-fdb-ms")
		b.ReportMetric(ms(total-committed), "commit-to-fdb-ms")
		b.Logf("%d Ucast_Macs_Remote rows (%d VTEPs) in transactions of %d: committed after %.0f ms, all in kernel FDB after %.0f ms (%.0f ms after commit)",
			rows, vteps, batch, ms(committed), ms(total), ms(total-committed))
	}
}

// BenchmarkIperfVLANToVXLAN measures TCP throughput from a VLAN-tagged host
// through torswitch to a kernel VXLAN VTEP, next to a plain kernel VXLAN
// bridge in the same namespaces, in the same run.
func BenchmarkIperfVLANToVXLAN(b *testing.B) {
	netnstest.RequireCommands(b, "iperf3")
	l := newTrunkLab(b)
	rem := l.rem
	hb, ra, rb := l.NS("hb"), l.NS("ra"), l.NS("rb")
	// Remote VTEP: VNI 7000 (torswitch path) and 7100 (plain path).
	for _, r := range []struct {
		vni  int
		host *netnstest.Netns
		ip   string
	}{{7000, ra, "10.88.1.2/24"}, {7100, rb, "10.88.2.2/24"}} {
		br, vx := fmt.Sprintf("br%d", r.vni), fmt.Sprintf("vx%d", r.vni)
		rem.Run("ip", "link", "add", br, "type", "bridge")
		rem.Run("ip", "link", "add", vx, "type", "vxlan", "id", fmt.Sprint(r.vni), "local", remTunnel, "dstport", "4789", "nolearning")
		rem.Run("ip", "link", "set", vx, "master", br, "up")
		rem.Run("ip", "link", "set", br, "up")
		rem.Run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", vx, "dst", swTunnel)
		l.Veth(rem, fmt.Sprintf("p%d", r.vni), r.host, "eth0", 0)
		rem.Run("ip", "link", "set", fmt.Sprintf("p%d", r.vni), "master", br)
		r.host.Addr("eth0", r.ip)
	}
	// Plain kernel VXLAN next to torswitch in the switch namespace.
	l.sw.Run("ip", "link", "add", "plbr", "type", "bridge")
	l.sw.Run("ip", "link", "add", "plvx", "type", "vxlan", "id", "7100", "local", swTunnel, "dstport", "4789", "nolearning")
	l.sw.Run("ip", "link", "set", "plvx", "master", "plbr", "up")
	l.sw.Run("ip", "link", "set", "plbr", "up")
	l.sw.Run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "plvx", "dst", remTunnel)
	l.Veth(l.sw, "plh", hb, "eth0", 0)
	l.sw.Run("ip", "link", "set", "plh", "master", "plbr")
	hb.Addr("eth0", "10.88.2.1/24")
	// VLAN host on the torswitch trunk.
	l.host.Addr("t0", "10.88.1.1/24")
	if err := nstest.AttachTagger(l.host, "t0", 10); err != nil {
		b.Fatal(err)
	}
	endpoint := startServer(b)
	newSwitch(b, endpoint, controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1,
	}, dataplane.Options{NetNS: l.sw.Handle()})
	a := newAgent(b, endpoint)
	ls := a.logicalSwitch("ls7000", 7000)
	a.bind("tor1", "eth1", 10, ls)
	a.flood(ls, remTunnel)
	for _, p := range []struct {
		from *netnstest.Netns
		to   string
	}{{l.host, "10.88.1.2"}, {hb, "10.88.2.2"}} {
		nstest.Eventually(b, 20*time.Second, func() (bool, string) {
			out, err := p.from.Try("ping", "-c", "1", "-W", "1", p.to)
			return err == nil, out
		})
	}
	iperf := func(client, server *netnstest.Netns, ip string) float64 {
		srv := server.Cmd(context.Background(), nil, "iperf3", "-s", "-1")
		if err := srv.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
		var res struct {
			Error string `json:"error"`
			End   struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		// iperf3 -J exits 0 on "connection refused": retry until the server listens.
		nstest.Eventually(b, 10*time.Second, func() (bool, string) {
			out, err := client.Try("iperf3", "-c", ip, "-t", "3", "-J")
			if err != nil {
				return false, out
			}
			res.Error = ""
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				return false, out
			}
			return res.Error == "", res.Error
		})
		return res.End.SumReceived.BitsPerSecond / 1e9
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		ts := iperf(l.host, ra, "10.88.1.2")
		plain := iperf(hb, rb, "10.88.2.2")
		b.ReportMetric(ts, "torswitch-Gbit/s")
		b.ReportMetric(plain, "plain-vxlan-Gbit/s")
		b.Logf("iperf3 TCP 3 s: VLAN→torswitch→VXLAN %.2f Gbit/s, plain kernel VXLAN bridge %.2f Gbit/s (ratio %.2f)", ts, plain, ts/plain)
	}
}
