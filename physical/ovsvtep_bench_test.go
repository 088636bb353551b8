package physical

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/physical/nstest"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// BenchmarkFirstFrameToLocalRowOvsVtep is BenchmarkFirstFrameToLocalRow run
// against Open vSwitch's ovs-vtep emulator instead of torswitch, for the
// parity table in docs/torswitch.md.
func BenchmarkFirstFrameToLocalRowOvsVtep(b *testing.B) {
	const samples = 10
	l := nstest.New(b, "tsv")
	host := l.NS("host")
	swNS := vteptest.NewNetns(b, fmt.Sprintf("tsv-ovsvtep-%d", os.Getpid()%100000))
	rem := l.NS("rem")
	l.Veth(swNS.Name, "und", rem, "und", 1600)
	l.Addr(swNS.Name, "und", swTunnel+"/24")
	l.Veth(host, "t0", swNS.Name, "eth1", 0)
	e := vteptest.StartEmulator(b, swNS, "tor1", swTunnel)
	e.AddPort("eth1")
	e.Run()
	a := newAgent(b, e.Endpoint())
	ls := a.logicalSwitch("ls7000", 7000)
	a.bind("tor1", "eth1", 10, ls)
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
