package evpn

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/torstitch/torstitch/vtep/l2"
)

// This file and speaker.go are the only places that know GoBGP types.

var evpnFamily = &api.Family{Afi: api.Family_AFI_L2VPN, Safi: api.Family_SAFI_EVPN}

const (
	ecSubTypeRouteTarget = 0x02
	tunnelTypeVXLAN      = 8
	pmsiIngressRepl      = 6
)

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(fmt.Sprintf("evpn: marshal %T: %v", m, err)) // only on programming errors
	}
	return a
}

func rtToAPI(rt RouteTarget) *anypb.Any {
	switch rt.Kind {
	case RTIPv4:
		a := rt.Admin
		return mustAny(&api.IPv4AddressSpecificExtended{IsTransitive: true, SubType: ecSubTypeRouteTarget,
			Address: netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}).String(), LocalAdmin: rt.Assigned})
	case RTAS4:
		return mustAny(&api.FourOctetAsSpecificExtended{IsTransitive: true, SubType: ecSubTypeRouteTarget, Asn: rt.Admin, LocalAdmin: rt.Assigned})
	default:
		return mustAny(&api.TwoOctetAsSpecificExtended{IsTransitive: true, SubType: ecSubTypeRouteTarget, Asn: rt.Admin, LocalAdmin: rt.Assigned})
	}
}

// toAPIPath encodes an advertised route. Withdrawals only need the NLRI and
// the next hop, but carrying the full path does no harm.
func toAPIPath(r advRoute, withdraw bool) *api.Path {
	rd := mustAny(&api.RouteDistinguisherIPAddress{Admin: r.VTEP.String(), Assigned: uint32(r.RDNum)})
	var nlri *anypb.Any
	ecs := make([]*anypb.Any, 0, len(r.RTs)+2)
	for _, rt := range r.RTs {
		ecs = append(ecs, rtToAPI(rt))
	}
	ecs = append(ecs, mustAny(&api.EncapExtended{TunnelType: tunnelTypeVXLAN}))
	attrs := []*anypb.Any{mustAny(&api.OriginAttribute{Origin: 0})}
	switch r.Kind {
	case kindMAC:
		ip := ""
		if r.IP.IsValid() {
			ip = r.IP.String()
		}
		nlri = mustAny(&api.EVPNMACIPAdvertisementRoute{Rd: rd, Esi: &api.EthernetSegmentIdentifier{Value: make([]byte, 9)},
			MacAddress: r.MAC.String(), IpAddress: ip, Labels: []uint32{uint32(r.VNI)}})
		if r.Seq > 0 {
			ecs = append(ecs, mustAny(&api.MacMobilityExtended{SequenceNum: r.Seq}))
		}
	case kindIMET:
		nlri = mustAny(&api.EVPNInclusiveMulticastEthernetTagRoute{Rd: rd, IpAddress: r.VTEP.String()})
		attrs = append(attrs, mustAny(&api.PmsiTunnelAttribute{Type: pmsiIngressRepl, Label: uint32(r.VNI), Id: r.VTEP.AsSlice()}))
	}
	attrs = append(attrs,
		mustAny(&api.MpReachNLRIAttribute{Family: evpnFamily, NextHops: []string{r.VTEP.String()}, Nlris: []*anypb.Any{nlri}}),
		mustAny(&api.ExtendedCommunitiesAttribute{Communities: ecs}))
	return &api.Path{Family: evpnFamily, Nlri: nlri, Pattrs: attrs, IsWithdraw: withdraw}
}

func rdString(a *anypb.Any) string {
	if a == nil {
		return ""
	}
	var ip api.RouteDistinguisherIPAddress
	if a.MessageIs(&ip) && a.UnmarshalTo(&ip) == nil {
		return ip.Admin + ":" + strconv.FormatUint(uint64(ip.Assigned), 10)
	}
	var as2 api.RouteDistinguisherTwoOctetASN
	if a.MessageIs(&as2) && a.UnmarshalTo(&as2) == nil {
		return strconv.FormatUint(uint64(as2.Admin), 10) + ":" + strconv.FormatUint(uint64(as2.Assigned), 10)
	}
	var as4 api.RouteDistinguisherFourOctetASN
	if a.MessageIs(&as4) && a.UnmarshalTo(&as4) == nil {
		return strconv.FormatUint(uint64(as4.Admin), 10) + "L:" + strconv.FormatUint(uint64(as4.Assigned), 10)
	}
	return "?"
}

// decodePath turns a best path from GoBGP's watcher into an rxRoute. It
// returns a drop reason ("" for none) for routes that must not be passed on;
// the id is set whenever the NLRI could be decoded, so that a dropped
// replacement still removes the route it replaces.
func decodePath(p *api.Path, rts *rtPolicy) (rxRoute, string) {
	var r rxRoute
	if p.Nlri == nil {
		return r, DropMalformed
	}
	r.withdraw = p.IsWithdraw
	var mac api.EVPNMACIPAdvertisementRoute
	var imet api.EVPNInclusiveMulticastEthernetTagRoute
	switch {
	case p.Nlri.MessageIs(&mac):
		if err := p.Nlri.UnmarshalTo(&mac); err != nil {
			return r, DropMalformed
		}
		r.kind = kindMAC
		r.id = "2|" + rdString(mac.Rd) + "|" + strconv.FormatUint(uint64(mac.EthernetTag), 10) + "|" + mac.MacAddress + "|" + mac.IpAddress
	case p.Nlri.MessageIs(&imet):
		if err := p.Nlri.UnmarshalTo(&imet); err != nil {
			return r, DropMalformed
		}
		r.kind = kindIMET
		r.id = "3|" + rdString(imet.Rd) + "|" + strconv.FormatUint(uint64(imet.EthernetTag), 10) + "|" + imet.IpAddress
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
		var mp api.MpReachNLRIAttribute
		var ec api.ExtendedCommunitiesAttribute
		var pm api.PmsiTunnelAttribute
		var nh api.NextHopAttribute
		switch {
		case a.MessageIs(&mp):
			nh, ok := mpReachNextHop(a.Value)
			if !ok {
				return r, DropMalformed
			}
			nextHop, _ = netip.ParseAddr(nh)
		case a.MessageIs(&nh):
			if a.UnmarshalTo(&nh) == nil && !nextHop.IsValid() {
				nextHop, _ = netip.ParseAddr(nh.NextHop)
			}
		case a.MessageIs(&ec):
			if a.UnmarshalTo(&ec) != nil {
				return r, DropMalformed
			}
			for _, c := range ec.Communities {
				rt, mob, ok := decodeEC(c)
				if ok {
					rtList = append(rtList, rt)
				}
				if mob != nil {
					r.Seq, r.Sticky = mob.SequenceNum, mob.IsSticky
				}
			}
		case a.MessageIs(&pm):
			if a.UnmarshalTo(&pm) != nil {
				return r, DropMalformed
			}
			pmsi = &pm
		}
	}
	vni, ok := rts.importVNI(rtList)
	if !ok {
		return r, DropNoVNI
	}
	r.VNI = vni
	switch r.kind {
	case kindMAC:
		hw, err := net.ParseMAC(mac.MacAddress)
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
		if a := mac.IpAddress; a != "" && a != "<nil>" { // GoBGP prints a missing IP as <nil>
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return r, DropMalformed
			}
			if !ip.IsUnspecified() {
				r.IP = ip.Unmap()
			}
		}
		if !nextHop.IsValid() || nextHop.IsUnspecified() {
			return r, DropNoNextHop
		}
		r.VTEP = nextHop.Unmap()
	case kindIMET:
		// FRR uses the originator IP; fall back to the PMSI tunnel ID.
		if pmsi == nil || pmsi.Type != pmsiIngressRepl {
			return r, DropNoTunnel
		}
		orig, err := netip.ParseAddr(imet.IpAddress)
		if err != nil || orig.IsUnspecified() {
			var ok bool
			orig, ok = netip.AddrFromSlice(pmsi.Id)
			if !ok {
				return r, DropMalformed
			}
		}
		r.VTEP = orig.Unmap()
	}
	return r, ""
}

// decodeEC decodes a route target or a MAC mobility extended community.
func decodeEC(c *anypb.Any) (RouteTarget, *api.MacMobilityExtended, bool) {
	var as2 api.TwoOctetAsSpecificExtended
	var ip4 api.IPv4AddressSpecificExtended
	var as4 api.FourOctetAsSpecificExtended
	var mob api.MacMobilityExtended
	switch {
	case c.MessageIs(&as2):
		if c.UnmarshalTo(&as2) == nil && as2.SubType == ecSubTypeRouteTarget {
			return RouteTarget{Kind: RTAS2, Admin: as2.Asn, Assigned: as2.LocalAdmin}, nil, true
		}
	case c.MessageIs(&ip4):
		if c.UnmarshalTo(&ip4) == nil && ip4.SubType == ecSubTypeRouteTarget {
			if a, err := netip.ParseAddr(ip4.Address); err == nil && a.Is4() {
				b := a.As4()
				return RouteTarget{Kind: RTIPv4, Admin: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), Assigned: ip4.LocalAdmin}, nil, true
			}
		}
	case c.MessageIs(&as4):
		if c.UnmarshalTo(&as4) == nil && as4.SubType == ecSubTypeRouteTarget {
			return RouteTarget{Kind: RTAS4, Admin: as4.Asn, Assigned: as4.LocalAdmin}, nil, true
		}
	case c.MessageIs(&mob):
		if c.UnmarshalTo(&mob) == nil {
			return RouteTarget{}, &mob, false
		}
	}
	return RouteTarget{}, nil, false
}

// mpReachNextHop reads the first next hop (field 2) of an encoded
// MpReachNLRIAttribute without decoding the NLRIs it repeats.
func mpReachNextHop(b []byte) (string, bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
		if num == 2 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", false
			}
			return string(v), true
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
	}
	return "", true
}
