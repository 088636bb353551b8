package plan

import (
	"net/netip"
	"slices"

	"github.com/torstitch/torstitch/vtep/l2"
)

// LocalMACs returns the MACs the switch learned (Ucast_Macs_Local) in
// torstitch's logical switches that have a VNI, with the tunnel IP of their locator,
// sorted by VNI and MAC. Rows that are not usable (no VNI, bad MAC, locator
// without a unicast IPv4 address) are skipped: this is where the switch's
// rows are validated, the planner trusts what it is given.
func (o *Observed) LocalMACs() []l2.LocalMAC {
	out := make([]l2.LocalMAC, 0, len(o.UcastLocal))
	for _, r := range o.UcastLocal {
		ls := o.Switches[r.LogicalSwitch]
		if ls == nil || !Owned(ls) || VNIOf(ls) == 0 {
			continue // MACs in another controller's logical switch are not ours to advertise
		}
		mac, ok := normMAC(r.MAC)
		if !ok || mac.ValidateUnicast() != nil {
			continue
		}
		loc, ok := o.Locators[r.Locator]
		if !ok {
			continue
		}
		vtep, err := netip.ParseAddr(loc.DstIP)
		if err != nil || l2.ValidateVTEP(vtep) != nil {
			continue
		}
		ip, _ := netip.ParseAddr(r.Ipaddr)
		if ip.IsUnspecified() || ip.IsMulticast() {
			ip = netip.Addr{} // not a host's address: the MAC without it
		}
		out = append(out, l2.LocalMAC{Switch: o.PhysicalSwitch.Name, VNI: VNIOf(ls), MAC: mac, IP: ip, VTEP: vtep})
	}
	slices.SortFunc(out, l2.CompareLocalMACs)
	return out
}
