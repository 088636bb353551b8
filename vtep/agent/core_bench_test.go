package agent

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/plan/plantest"
)

// BenchmarkCoreStep times one pass of the pure core (views, MAC ownership,
// Compute, jobs) for a pair with 100 VNIs bound on 40 ports each, 2,000
// local MACs per switch and 100,000 remote MACs from the fabric: the work
// every reconcile pass does before the switch writers plan.
func BenchmarkCoreStep(b *testing.B) {
	const vnis, ports, local, remote = 100, 40, 2000, 100_000
	in := passInput{Now: time.Unix(1000, 0), SinceStart: time.Hour, VCValid: true, Speaker: true, Synced: true}
	var portNames []string
	for p := 1; p <= ports; p++ {
		portNames = append(portNames, fmt.Sprintf("eth%d", p))
	}
	for i, name := range []string{"tor1", "tor2"} {
		db := plantest.New(name, netip.AddrFrom4([4]byte{192, 0, 2, byte(11 + i)}), portNames...)
		d := &plan.Desired{}
		for v := 1; v <= vnis; v++ {
			vni := l2.VNI(10000 + v)
			d.LogicalSwitches = append(d.LogicalSwitches, plan.LogicalSwitch{VNI: vni})
			d.Bindings = append(d.Bindings, plan.PortBinding{Port: portNames[v%ports], VLAN: l2.VLAN(v), VNI: vni})
		}
		ch, err := plan.Plan(d, db.Observed(), plan.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Apply(ch); err != nil {
			b.Fatal(err)
		}
		for m := 0; m < local; m++ {
			mac := l2.MAC{0x00, 0x50, 0x56, byte(i), byte(m >> 8), byte(m)}
			if err := db.Learn(l2.VNI(10001+m%vnis), mac); err != nil {
				b.Fatal(err)
			}
		}
		in.Switches = append(in.Switches, switchInput{Name: name, Observed: db.Observed(), Alive: in.Now})
	}
	for v := 1; v <= vnis; v++ {
		var ps []l2.PortRef
		for _, sw := range []string{"tor1", "tor2"} {
			ps = append(ps, l2.PortRef{Switch: sw, Port: portNames[v%ports]})
		}
		in.Bindings = append(in.Bindings, l2.Binding{VLAN: l2.VLAN(v), VNI: l2.VNI(10000 + v), Ports: ps, Source: l2.SourceTorctl})
	}
	for m := 0; m < remote; m++ {
		in.Remote.MACs = append(in.Remote.MACs, l2.RemoteMAC{VNI: l2.VNI(10001 + m/(remote/vnis)),
			MAC: l2.MAC{0x52, 0x54, 0x00, byte(m >> 16), byte(m >> 8), byte(m)}, VTEP: netip.AddrFrom4([4]byte{192, 0, 2, byte(50 + m%8)})})
	}
	c := newCore(coreConfig{Replication: plan.SourceNode}, newMACOwnership(lostSwitchHold, []string{"tor1", "tor2"}, nil))
	c.step(in) // the first pass sees every MAC for the first time
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		in.Now = in.Now.Add(time.Second)
		fx := c.step(in)
		if len(fx.Jobs) != 2 || len(fx.Jobs[0].Desired.RemoteMACs) < remote {
			b.Fatalf("jobs %d, remote MACs %d", len(fx.Jobs), len(fx.Jobs[0].Desired.RemoteMACs))
		}
	}
}
