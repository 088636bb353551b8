package evpn

import (
	"net"
	"net/netip"
	"strconv"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/torstitch/torstitch/vtep/l2"
)

// decodePathTyped is decodePath written with GoBGP's generated types
// (anypb.UnmarshalNew on every Any). It is the reference the hand decoder
// is checked against (TestDecodePathEveryField, FuzzDecodePathFields) and
// the alternative BenchmarkDecodePath measures it against.
func decodePathTyped(p *api.Path, rts *rtPolicy) (rxRoute, string) {
	var r rxRoute
	if p.Nlri == nil {
		return r, DropMalformed
	}
	r.withdraw = p.IsWithdraw
	var macStr, ipStr string
	n, err := p.Nlri.UnmarshalNew()
	if err != nil {
		if typeName(p.Nlri.TypeUrl) == "EVPNMACIPAdvertisementRoute" || typeName(p.Nlri.TypeUrl) == "EVPNInclusiveMulticastEthernetTagRoute" {
			return r, DropMalformed
		}
		return r, DropUnsupportedRT
	}
	switch n := n.(type) {
	case *api.EVPNMACIPAdvertisementRoute:
		r.kind = kindMAC
		rd, ok := rdStringTyped(n.Rd)
		if !ok {
			return r, DropMalformed
		}
		macStr, ipStr = n.MacAddress, n.IpAddress
		r.id = "2|" + rd + "|" + strconv.FormatUint(uint64(n.EthernetTag), 10) + "|" + macStr + "|" + ipStr
	case *api.EVPNInclusiveMulticastEthernetTagRoute:
		r.kind = kindIMET
		rd, ok := rdStringTyped(n.Rd)
		if !ok {
			return r, DropMalformed
		}
		ipStr = n.IpAddress
		r.id = "3|" + rd + "|" + strconv.FormatUint(uint64(n.EthernetTag), 10) + "|" + ipStr
	default:
		return r, DropUnsupportedRT
	}
	if r.withdraw {
		return r, ""
	}
	var (
		nextHop netip.Addr
		rtList  []RouteTarget
		pmsi    *api.PmsiTunnelAttribute
	)
	for _, a := range p.Pattrs {
		m, err := a.UnmarshalNew()
		if err != nil {
			switch typeName(a.TypeUrl) {
			case "MpReachNLRIAttribute", "NextHopAttribute", "ExtendedCommunitiesAttribute", "PmsiTunnelAttribute":
				return r, DropMalformed
			}
			continue
		}
		switch m := m.(type) {
		case *api.MpReachNLRIAttribute:
			nextHop = netip.Addr{}
			if len(m.NextHops) > 0 {
				nextHop, _ = netip.ParseAddr(m.NextHops[0])
			}
		case *api.NextHopAttribute:
			if !nextHop.IsValid() {
				nextHop, _ = netip.ParseAddr(m.NextHop)
			}
		case *api.ExtendedCommunitiesAttribute:
			for _, c := range m.Communities {
				ec, err := c.UnmarshalNew()
				if err != nil {
					continue
				}
				switch ec := ec.(type) {
				case *api.TwoOctetAsSpecificExtended:
					if ec.SubType == ecSubTypeRouteTarget {
						rtList = append(rtList, RouteTarget{Kind: RTAS2, Admin: ec.Asn, Assigned: ec.LocalAdmin})
					}
				case *api.FourOctetAsSpecificExtended:
					if ec.SubType == ecSubTypeRouteTarget {
						rtList = append(rtList, RouteTarget{Kind: RTAS4, Admin: ec.Asn, Assigned: ec.LocalAdmin})
					}
				case *api.IPv4AddressSpecificExtended:
					if a, err := netip.ParseAddr(ec.Address); err == nil && a.Is4() && ec.SubType == ecSubTypeRouteTarget {
						b := a.As4()
						rtList = append(rtList, RouteTarget{Kind: RTIPv4, Admin: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), Assigned: ec.LocalAdmin})
					}
				case *api.MacMobilityExtended:
					r.Sticky, r.Seq = ec.IsSticky, ec.SequenceNum
				}
			}
		case *api.PmsiTunnelAttribute:
			pmsi = m
		}
	}
	vni, ok := rts.importVNI(rtList)
	if !ok {
		return r, DropNoVNI
	}
	r.VNI = vni
	switch r.kind {
	case kindMAC:
		hw, err := net.ParseMAC(macStr)
		if err != nil || len(hw) != 6 {
			return r, DropMalformed
		}
		r.MAC = l2.MAC(hw)
		if r.MAC.IsZero() {
			return r, DropZeroMAC
		}
		if r.MAC.IsMulticast() {
			return r, DropMulticastMAC
		}
		if ipStr != "" && ipStr != "<nil>" {
			ip, err := netip.ParseAddr(ipStr)
			if err != nil {
				return r, DropMalformed
			}
			if ip = ip.Unmap(); !ip.IsUnspecified() && !ip.IsMulticast() {
				r.IP = ip
			}
		}
		if !nextHop.IsValid() || nextHop.IsUnspecified() {
			return r, DropNoNextHop
		}
		r.VTEP = nextHop.Unmap()
	case kindIMET:
		if pmsi == nil || pmsi.Type != pmsiIngressRepl {
			return r, DropNoTunnel
		}
		orig, err := netip.ParseAddr(ipStr)
		if err != nil || orig.IsUnspecified() {
			var ok bool
			if orig, ok = netip.AddrFromSlice(pmsi.Id); !ok {
				return r, DropMalformed
			}
		}
		r.VTEP = orig.Unmap()
	}
	if l2.ValidateVTEP(r.VTEP) != nil {
		return r, DropVTEPNotIPv4
	}
	return r, ""
}

func rdStringTyped(a *anypb.Any) (string, bool) {
	if a == nil {
		return "", true // as the hand decoder renders an absent RD
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return "", false
	}
	switch m := m.(type) {
	case *api.RouteDistinguisherTwoOctetASN:
		return strconv.FormatUint(uint64(m.Admin), 10) + ":" + strconv.FormatUint(uint64(m.Assigned), 10), true
	case *api.RouteDistinguisherFourOctetASN:
		return strconv.FormatUint(uint64(m.Admin), 10) + ":" + strconv.FormatUint(uint64(m.Assigned), 10), true
	case *api.RouteDistinguisherIPAddress:
		return m.Admin + ":" + strconv.FormatUint(uint64(m.Assigned), 10), true
	}
	return "0:0", true
}
