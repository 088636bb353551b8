package evpn

import (
	"testing"
	"unicode/utf8"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/torstitch/torstitch/vtep/l2"
)

var fuzzTypeURLs = []string{
	"type.googleapis.com/apipb.EVPNMACIPAdvertisementRoute",
	"type.googleapis.com/apipb.EVPNInclusiveMulticastEthernetTagRoute",
	"type.googleapis.com/apipb.MpReachNLRIAttribute",
	"type.googleapis.com/apipb.NextHopAttribute",
	"type.googleapis.com/apipb.ExtendedCommunitiesAttribute",
	"type.googleapis.com/apipb.PmsiTunnelAttribute",
}

// FuzzDecodePath: no bytes from the wire panic the hand decoder. The NLRI
// and three attributes carry arbitrary bytes under the type URLs it reads.
func FuzzDecodePath(f *testing.F) {
	rts := newRTPolicy(65000, RouteTargets{})
	seed := pathFields{RDKind: 1, RDAdmin: 0xc0000207, RDAssigned: 5000, ESI: make([]byte, 9), MAC: "02:00:00:00:00:01", IP: "10.0.0.1",
		Labels: []uint32{5000}, NextHop: "192.0.2.7", RTSubType: ecSubTypeRouteTarget, RTAdmin: 65001, RTAssigned: 5000, Transitive: true, Seq: 3}.path()
	imet := pathFields{IMET: true, RDKind: 0, RDAdmin: 65001, RDAssigned: 5000, IP: "192.0.2.7", NextHop: "192.0.2.7",
		RTSubType: ecSubTypeRouteTarget, RTAdmin: 65001, RTAssigned: 5000, PMSI: true, PMSIType: pmsiIngressRepl, PMSIID: []byte{192, 0, 2, 7}}.path()
	attr := func(p *api.Path, name string) []byte {
		for _, a := range p.Pattrs {
			if typeName(a.TypeUrl) == name {
				return a.Value
			}
		}
		return nil
	}
	f.Add(uint8(0), seed.Nlri.Value, attr(seed, "MpReachNLRIAttribute"), attr(seed, "ExtendedCommunitiesAttribute"), attr(seed, "PmsiTunnelAttribute"), false)
	f.Add(uint8(1), imet.Nlri.Value, attr(imet, "MpReachNLRIAttribute"), attr(imet, "ExtendedCommunitiesAttribute"), attr(imet, "PmsiTunnelAttribute"), false)
	f.Add(uint8(0), []byte{0x0a, 0x05, 0x0a, 0xff}, []byte{0x12}, []byte{0x0a, 0x80}, []byte{0x22, 0x10}, true)
	f.Fuzz(func(t *testing.T, kind uint8, nlri, mpReach, ecs, pmsi []byte, withdraw bool) {
		p := &api.Path{Family: evpnFamily, IsWithdraw: withdraw,
			Nlri: &anypb.Any{TypeUrl: fuzzTypeURLs[int(kind)%2], Value: nlri},
			Pattrs: []*anypb.Any{
				{TypeUrl: fuzzTypeURLs[2+int(kind>>1)%2], Value: mpReach},
				{TypeUrl: fuzzTypeURLs[4], Value: ecs},
				{TypeUrl: fuzzTypeURLs[5], Value: pmsi},
			}}
		r, reason := decodePath(p, rts)
		if reason == "" && !withdraw && (l2.ValidateVTEP(r.VTEP) != nil || r.VNI == 0 || (r.IP.IsValid() && (r.IP.IsUnspecified() || r.IP.IsMulticast()))) {
			t.Fatalf("accepted route without VTEP or VNI: %+v", r)
		}
		if reason == "" && !withdraw && r.kind == kindMAC && (r.MAC.IsZero() || r.MAC.IsMulticast()) {
			t.Fatalf("accepted route with MAC %s", r.MAC)
		}
	})
}

// FuzzDecodePathFields: for every combination of field values, the hand
// decoder agrees with GoBGP's generated types.
func FuzzDecodePathFields(f *testing.F) {
	rts := newRTPolicy(65000, RouteTargets{})
	f.Add(false, false, uint8(1), uint32(0xc0000207), uint32(5000), uint32(0), "02:00:00:00:00:01", "10.0.0.1", "192.0.2.7", "",
		uint8(0), uint32(2), uint32(65001), uint32(5000), false, uint32(7), false, uint32(0), []byte(nil))
	f.Add(true, false, uint8(0), uint32(65001), uint32(5000), uint32(0), "", "192.0.2.7", "", "192.0.2.7",
		uint8(0), uint32(2), uint32(65001), uint32(5000), false, uint32(0), true, uint32(6), []byte{192, 0, 2, 7})
	f.Fuzz(func(t *testing.T, imet, withdraw bool, rdKind uint8, rdAdmin, rdAssigned, ethTag uint32, mac, ip, nextHop, nextHopAttr string,
		rtKind uint8, rtSub, rtAdmin, rtAssigned uint32, sticky bool, seq uint32, pmsi bool, pmsiType uint32, pmsiID []byte) {
		pf := pathFields{IMET: imet, Withdraw: withdraw, RDKind: rdKind, RDAdmin: rdAdmin, RDAssigned: rdAssigned, EthTag: ethTag,
			MAC: mac, IP: ip, NextHop: nextHop, NextHopAttr: nextHopAttr, RTKind: rtKind, RTSubType: rtSub, RTAdmin: rtAdmin,
			RTAssigned: rtAssigned, Transitive: true, Sticky: sticky, Seq: seq, PMSI: pmsi, PMSIType: pmsiType, PMSIID: pmsiID}
		for _, s := range []string{mac, ip, nextHop, nextHopAttr} {
			if !utf8.ValidString(s) { // proto3 strings are UTF-8; GoBGP never sends others
				return
			}
		}
		checkSame(t, "fuzz", pf.path(), rts)
	})
}
