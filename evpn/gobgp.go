package evpn

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

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
		nlri = mustAny(&api.EVPNMACIPAdvertisementRoute{Rd: rd, Esi: &api.EthernetSegmentIdentifier{Value: make([]byte, 9)},
			MacAddress: r.MAC.String(), IpAddress: l2.AddrString(r.IP), Labels: []uint32{uint32(r.VNI)}})
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

// The received path is decoded straight from the protobuf wire format of
// GoBGP's API messages (field numbers from GoBGP's attribute.proto): this
// avoids reflection-based unmarshalling of every Any on the import path.
// Measured (BenchmarkDecodePath, issue 15): about 4-8 µs and 13 allocations
// a type-2 path by hand, 15-33 µs and 44 allocations through GoBGP's
// generated types (decodePathTyped in decode_typed_test.go), against about
// 85 µs of speaker CPU a received route in BenchmarkReceive (100k routes in
// 8.5 CPU-s): the generated types would add 15-30 % to the intake's CPU.
// TestDecodePathEveryField and FuzzDecodePathFields check that both
// decoders agree on every field GoBGP defines for the imported routes.

// walk calls fn for each field of an encoded message: v holds the bytes of
// length-delimited fields, u the value of varints. It reports well-formedness.
func walk(b []byte, fn func(num protowire.Number, v []byte, u uint64)) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			u, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			fn(num, nil, u)
			b = b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			fn(num, v, 0)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return false
			}
			b = b[n:]
		}
	}
	return true
}

// typeName is the message name of an Any's type URL ("apipb.X" -> "X").
func typeName(url string) string {
	if i := strings.LastIndexByte(url, '/'); i >= 0 {
		url = url[i+1:]
	}
	return strings.TrimPrefix(url, "apipb.")
}

// decodeAnyBytes splits an encoded google.protobuf.Any.
func decodeAnyBytes(b []byte) (name string, value []byte, ok bool) {
	ok = walk(b, func(num protowire.Number, v []byte, _ uint64) {
		switch num {
		case 1:
			name = typeName(string(v))
		case 2:
			value = v
		}
	})
	return name, value, ok
}

// rdString renders an encoded RD Any as ADMIN:N.
func rdString(b []byte) (string, bool) {
	name, v, ok := decodeAnyBytes(b)
	if !ok {
		return "", false
	}
	var admin string
	var assigned uint64
	ok = walk(v, func(num protowire.Number, s []byte, u uint64) {
		switch num {
		case 1:
			if name == "RouteDistinguisherIPAddress" {
				admin = string(s)
			} else {
				admin = strconv.FormatUint(u, 10)
			}
		case 2:
			assigned = u
		}
	})
	return admin + ":" + strconv.FormatUint(assigned, 10), ok
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
	var (
		rd, macStr, ipStr string
		etag              uint64
		rdOK              = true
	)
	switch typeName(p.Nlri.TypeUrl) {
	case "EVPNMACIPAdvertisementRoute":
		r.kind = kindMAC
		if !walk(p.Nlri.Value, func(num protowire.Number, v []byte, u uint64) {
			switch num {
			case 1:
				rd, rdOK = rdString(v)
			case 3:
				etag = u
			case 4:
				macStr = string(v)
			case 5:
				ipStr = string(v)
			}
		}) || !rdOK {
			return r, DropMalformed
		}
		r.id = "2|" + rd + "|" + strconv.FormatUint(etag, 10) + "|" + macStr + "|" + ipStr
	case "EVPNInclusiveMulticastEthernetTagRoute":
		r.kind = kindIMET
		if !walk(p.Nlri.Value, func(num protowire.Number, v []byte, u uint64) {
			switch num {
			case 1:
				rd, rdOK = rdString(v)
			case 2:
				etag = u
			case 3:
				ipStr = string(v)
			}
		}) || !rdOK {
			return r, DropMalformed
		}
		r.id = "3|" + rd + "|" + strconv.FormatUint(etag, 10) + "|" + ipStr
	default:
		return r, DropUnsupportedRT
	}
	if r.withdraw {
		return r, ""
	}
	var (
		nextHop  netip.Addr
		rtList   []RouteTarget
		pmsiType uint64
		pmsiID   []byte
		hasPMSI  bool
	)
	for _, a := range p.Pattrs {
		ok := true
		switch typeName(a.TypeUrl) {
		case "MpReachNLRIAttribute":
			var nh string
			nh, ok = mpReachNextHop(a.Value)
			nextHop, _ = netip.ParseAddr(nh)
		case "NextHopAttribute":
			ok = walk(a.Value, func(num protowire.Number, v []byte, _ uint64) {
				if num == 1 && !nextHop.IsValid() {
					nextHop, _ = netip.ParseAddr(string(v))
				}
			})
		case "ExtendedCommunitiesAttribute":
			ok = walk(a.Value, func(num protowire.Number, v []byte, _ uint64) {
				if num != 1 {
					return
				}
				name, val, aok := decodeAnyBytes(v)
				if !aok {
					ok = false
					return
				}
				decodeEC(name, val, &r, &rtList)
			})
		case "PmsiTunnelAttribute":
			hasPMSI = true
			ok = walk(a.Value, func(num protowire.Number, v []byte, u uint64) {
				switch num {
				case 2:
					pmsiType = u
				case 4:
					pmsiID = v
				}
			})
		}
		if !ok {
			return r, DropMalformed
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
		if ipStr != "" && ipStr != "<nil>" { // GoBGP prints a missing IP as <nil>
			ip, err := netip.ParseAddr(ipStr)
			if err != nil {
				return r, DropMalformed
			}
			if ip = ip.Unmap(); !ip.IsUnspecified() && !ip.IsMulticast() {
				r.IP = ip // an unusable IP is left out, the MAC route stays
			}
		}
		if !nextHop.IsValid() || nextHop.IsUnspecified() {
			return r, DropNoNextHop
		}
		r.VTEP = nextHop.Unmap()
	case kindIMET:
		// FRR uses the originator IP; fall back to the PMSI tunnel ID.
		if !hasPMSI || pmsiType != pmsiIngressRepl {
			return r, DropNoTunnel
		}
		orig, err := netip.ParseAddr(ipStr)
		if err != nil || orig.IsUnspecified() {
			var ok bool
			orig, ok = netip.AddrFromSlice(pmsiID)
			if !ok {
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

// decodeEC records a route target or a MAC mobility extended community.
func decodeEC(name string, v []byte, r *rxRoute, rts *[]RouteTarget) {
	var f [5]uint64 // varint fields 1-4
	var addr string
	walk(v, func(num protowire.Number, s []byte, u uint64) {
		if num >= 1 && num <= 4 {
			f[num] = u
		}
		if num == 3 {
			addr = string(s)
		}
	})
	switch name {
	case "TwoOctetAsSpecificExtended":
		if f[2] == ecSubTypeRouteTarget {
			*rts = append(*rts, RouteTarget{Kind: RTAS2, Admin: uint32(f[3]), Assigned: uint32(f[4])})
		}
	case "FourOctetAsSpecificExtended":
		if f[2] == ecSubTypeRouteTarget {
			*rts = append(*rts, RouteTarget{Kind: RTAS4, Admin: uint32(f[3]), Assigned: uint32(f[4])})
		}
	case "IPv4AddressSpecificExtended":
		if a, err := netip.ParseAddr(addr); err == nil && a.Is4() && f[2] == ecSubTypeRouteTarget {
			b := a.As4()
			*rts = append(*rts, RouteTarget{Kind: RTIPv4, Admin: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), Assigned: uint32(f[4])})
		}
	case "MacMobilityExtended":
		r.Sticky, r.Seq = f[1] != 0, uint32(f[2])
	}
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
