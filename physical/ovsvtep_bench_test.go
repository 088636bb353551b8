package physical

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/physical/nstest"
	"github.com/torstitch/torstitch/vtep/vtepdb"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// ovsVtepLab is the benchmarks' trunk lab with the ovs-vtep emulator as
// the switch: host namespace (its t0 is the switch's eth1), an underlay,
// and logical switch ls7000 (VNI 7000) bound to eth1 VLAN 10. It returns
// the host namespace, the emulator, the controller stand-in and the
// logical switch's UUID.
func ovsVtepLab(b *testing.B, prefix string) (*netnstest.Netns, *vteptest.Emulator, *agent, string) {
	b.Helper()
	l := netnstest.NewLab(b, prefix)
	host := l.NS("host")
	swNS := netnstest.New(b, prefix+"-ovsvtep") // not one of the Lab's: IPv6 stays on
	rem := l.NS("rem")
	l.Veth(swNS, "und", rem, "und", 1600)
	swNS.Addr("und", swTunnel+"/24")
	l.Veth(host, "t0", swNS, "eth1", 0)
	e := vteptest.StartEmulator(b, swNS, "tor1", swTunnel)
	e.AddPort("eth1")
	e.Run()
	a := newAgent(b, e.Endpoint())
	ls := a.logicalSwitch("ls7000", 7000)
	a.bind("tor1", "eth1", 10, ls)
	return host, e, a, ls
}

// BenchmarkFirstFrameToLocalRowOvsVtep is BenchmarkFirstFrameToLocalRow run
// against Open vSwitch's ovs-vtep emulator instead of torswitch, for the
// parity table in docs/torswitch.md.
func BenchmarkFirstFrameToLocalRowOvsVtep(b *testing.B) {
	const samples = 10
	host, _, a, ls := ovsVtepLab(b, "tsv")
	s, err := nstest.OpenPacketSocket(host, "t0")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// Warm up: ovs-vtep creates its logical-switch bridge asynchronously.
	nstest.Eventually(b, 30*time.Second, func() (bool, string) {
		send(b, s, "02:00:00:ff:00:01", 10)
		return a.hasLocalMAC(ls, "02:00:00:ff:00:01"), "warm-up MAC not learned"
	})
	var lat []time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := 0; i < samples; i++ {
			mac := fmt.Sprintf("02:00:%02x:01:00:%02x", n%256, i)
			start := time.Now()
			send(b, s, mac, 10)
			for !a.hasLocalMAC(ls, strings.ToLower(mac)) {
				if time.Since(start) > 10*time.Second {
					b.Fatalf("ovs-vtep: no Ucast_Macs_Local row for %s after 10 s", mac)
				}
				time.Sleep(2 * time.Millisecond)
			}
			lat = append(lat, time.Since(start))
		}
	}
	b.StopTimer()
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.Logf("ovs-vtep first frame → Ucast_Macs_Local row, %d MACs: p50 %.0f ms, p99 %.0f ms", len(lat), ms(p50), ms(p99))
}

// BenchmarkRemoteMACs10kOvsVtep is BenchmarkRemoteMACs10k against the
// ovs-vtep emulator, in the same run: one transaction of 10,000
// Ucast_Macs_Remote rows behind one VTEP, timed until ovs-vtep has a flow
// for every MAC in its logical switch bridge (its data path). ovs-vtep
// installs one flow per ovs-ofctl process, so it is given at most 2 minutes
// and the count reached is reported when it does not finish.
func BenchmarkRemoteMACs10kOvsVtep(b *testing.B) {
	rows := 10000
	if n, err := strconv.Atoi(os.Getenv("TORSTITCH_OVSVTEP_ROWS")); err == nil && n > 0 {
		rows = n // a smaller run, to see ovs-vtep's rate
	}
	_, e, a, ls := ovsVtepLab(b, "tsr")
	var br string
	nstest.Eventually(b, 30*time.Second, func() (bool, string) {
		for _, name := range strings.Fields(e.Vsctl("list-br")) {
			if strings.HasPrefix(name, "tor1_vtep_ls") { // ovs-vtep's bridge of the logical switch
				br = name
			}
		}
		return br != "", "ovs-vtep has not created the logical switch bridge"
	})
	flows := func() int {
		out, err := exec.Command("ovs-ofctl", "dump-flows", "unix:"+filepath.Join(e.Dir, br+".mgmt")).Output()
		if err != nil {
			return -1
		}
		return strings.Count(string(out), "dl_dst=06:")
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		start := time.Now()
		var ops []ovsdb.Operation
		loc := a.locator("192.168.78.1", &ops)
		for i := 0; i < rows; i++ {
			mac := fmt.Sprintf("06:00:%02x:%02x:%02x:%02x", n, i>>16&0xff, i>>8&0xff, i&0xff)
			ops = append(ops, a.create(&vtepdb.UcastMacsRemote{MAC: mac, LogicalSwitch: ls, Locator: loc})...)
		}
		a.commit(ops)
		committed := time.Since(start)
		got := 0
		limit := 2 * time.Minute
		if d, err := time.ParseDuration(os.Getenv("TORSTITCH_OVSVTEP_LIMIT")); err == nil {
			limit = d
		}
		for got = flows(); got < rows && time.Since(start) < limit; got = flows() {
			time.Sleep(200 * time.Millisecond) // polling a process-based count
		}
		total := time.Since(start)
		b.StopTimer()
		b.ReportMetric(ms(committed), "txn-ms")
		b.ReportMetric(float64(got), "flows")
		b.ReportMetric(ms(total), "rows-to-flows-ms")
		b.Logf("ovs-vtep: %d Ucast_Macs_Remote rows committed after %.0f ms; %d flows after %.0f ms", rows, ms(committed), got, ms(total))
		if got < rows {
			out, _ := exec.Command("ovs-ofctl", "dump-flows", "unix:"+filepath.Join(e.Dir, br+".mgmt")).Output()
			b.Logf("bridge %s flows (head):\n%.2000s", br, out)
			if log, err := os.ReadFile(filepath.Join(e.Dir, "ovs-vtep.log")); err == nil {
				b.Logf("ovs-vtep.log (tail):\n%s", log[max(0, len(log)-3000):])
			}
		}
	}
}
