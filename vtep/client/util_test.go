package client

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
)

type netipAddr = netip.Addr

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func edit(base, drop, add []string) []string {
	var out []string
	for _, l := range base {
		if !slices.Contains(drop, l) {
			out = append(out, l)
		}
	}
	out = append(out, add...)
	slices.Sort(out)
	return out
}

// scaleDesired builds n remote MACs spread over vnis logical switches and
// vteps remote VTEPs, with a flood list of all VTEPs per VNI.
func scaleDesired(n, vnis, vteps int) *plan.Desired {
	d := &plan.Desired{Flood: map[l2.VNI][]netip.Addr{}}
	all := make([]netip.Addr, vteps)
	for i := range all {
		all[i] = netip.AddrFrom4([4]byte{198, 51, byte(100 + i/250), byte(i%250 + 1)})
	}
	for v := 1; v <= vnis; v++ {
		vni := l2.VNI(100000 + v)
		d.LogicalSwitches = append(d.LogicalSwitches, plan.LogicalSwitch{VNI: vni})
		d.Flood[vni] = all
	}
	d.RemoteMACs = make([]l2.RemoteMAC, n)
	for i := range n {
		d.RemoteMACs[i] = l2.RemoteMAC{
			VNI:  l2.VNI(100000 + i%vnis + 1),
			MAC:  l2.MAC{0x02, 0x10, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)},
			VTEP: all[i%vteps],
		}
	}
	return d
}

// benchDesired is scaleDesired without flood lists: exactly the rows the raw
// benchmark inserts (logical switches, locators, remote MACs).
func benchDesired(n, vnis, vteps int) *plan.Desired {
	d := scaleDesired(n, vnis, vteps)
	d.Flood = nil
	return d
}
