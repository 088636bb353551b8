package evpn

import (
	"fmt"
	"net/netip"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// pathFields are the values a received EVPN path carries, every field that
// GoBGP's messages define for the two route types we import.
type pathFields struct {
	IMET        bool
	Withdraw    bool
	RDKind      uint8 // 0 two-octet AS, 1 IP address, 2 four-octet AS, 3 none
	RDAdmin     uint32
	RDAssigned  uint32
	ESI         []byte
	EthTag      uint32
	MAC, IP     string
	Labels      []uint32
	NextHop     string // MpReachNLRIAttribute.next_hops[0]
	NextHopAttr string // NextHopAttribute
	RTKind      uint8  // 0 AS2, 1 AS4, 2 IPv4, 3 none
	RTSubType   uint32
	RTAdmin     uint32
	RTAssigned  uint32
	Transitive  bool
	Sticky      bool
	Seq         uint32
	PMSI        bool
	PMSIFlags   uint32
	PMSIType    uint32
	PMSILabel   uint32
	PMSIID      []byte
}

func anyOf(m proto.Message) *anypb.Any { return mustAny(m) }

func (f pathFields) path() *api.Path {
	var rd *anypb.Any
	switch f.RDKind % 4 {
	case 0:
		rd = anyOf(&api.RouteDistinguisherTwoOctetASN{Admin: f.RDAdmin, Assigned: f.RDAssigned})
	case 1:
		a := f.RDAdmin
		rd = anyOf(&api.RouteDistinguisherIPAddress{Admin: netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}).String(), Assigned: f.RDAssigned})
	case 2:
		rd = anyOf(&api.RouteDistinguisherFourOctetASN{Admin: f.RDAdmin, Assigned: f.RDAssigned})
	}
	var nlri *anypb.Any
	if f.IMET {
		nlri = anyOf(&api.EVPNInclusiveMulticastEthernetTagRoute{Rd: rd, EthernetTag: f.EthTag, IpAddress: f.IP})
	} else {
		nlri = anyOf(&api.EVPNMACIPAdvertisementRoute{Rd: rd, Esi: &api.EthernetSegmentIdentifier{Type: 0, Value: f.ESI},
			EthernetTag: f.EthTag, MacAddress: f.MAC, IpAddress: f.IP, Labels: f.Labels})
	}
	var ecs []*anypb.Any
	switch f.RTKind % 4 {
	case 0:
		ecs = append(ecs, anyOf(&api.TwoOctetAsSpecificExtended{IsTransitive: f.Transitive, SubType: f.RTSubType, Asn: f.RTAdmin, LocalAdmin: f.RTAssigned}))
	case 1:
		ecs = append(ecs, anyOf(&api.FourOctetAsSpecificExtended{IsTransitive: f.Transitive, SubType: f.RTSubType, Asn: f.RTAdmin, LocalAdmin: f.RTAssigned}))
	case 2:
		a := f.RTAdmin
		ecs = append(ecs, anyOf(&api.IPv4AddressSpecificExtended{IsTransitive: f.Transitive, SubType: f.RTSubType,
			Address: netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}).String(), LocalAdmin: f.RTAssigned}))
	}
	ecs = append(ecs, anyOf(&api.EncapExtended{TunnelType: tunnelTypeVXLAN}), anyOf(&api.RouterMacExtended{Mac: "02:00:00:00:00:99"}))
	if f.Sticky || f.Seq != 0 {
		ecs = append(ecs, anyOf(&api.MacMobilityExtended{IsSticky: f.Sticky, SequenceNum: f.Seq}))
	}
	attrs := []*anypb.Any{anyOf(&api.OriginAttribute{Origin: 0}), anyOf(&api.AsPathAttribute{})}
	if f.NextHop != "" {
		attrs = append(attrs, anyOf(&api.MpReachNLRIAttribute{Family: evpnFamily, NextHops: []string{f.NextHop, "192.0.2.254"}, Nlris: []*anypb.Any{nlri}}))
	}
	if f.NextHopAttr != "" {
		attrs = append(attrs, anyOf(&api.NextHopAttribute{NextHop: f.NextHopAttr}))
	}
	attrs = append(attrs, anyOf(&api.ExtendedCommunitiesAttribute{Communities: ecs}))
	if f.PMSI {
		attrs = append(attrs, anyOf(&api.PmsiTunnelAttribute{Flags: f.PMSIFlags, Type: f.PMSIType, Label: f.PMSILabel, Id: f.PMSIID}))
	}
	return &api.Path{Family: evpnFamily, Nlri: nlri, Pattrs: attrs, IsWithdraw: f.Withdraw, NeighborIp: "192.0.2.100"}
}

// checkSame decodes p with the hand decoder and GoBGP's generated types and
// fails when they disagree.
func checkSame(t *testing.T, name string, p *api.Path, rts *rtPolicy) (rxRoute, string) {
	t.Helper()
	r, reason := decodePath(p, rts)
	r2, reason2 := decodePathTyped(p, rts)
	if reason != reason2 || (reason == "" && fmt.Sprintf("%+v", r) != fmt.Sprintf("%+v", r2)) || r.id != r2.id {
		t.Errorf("%s: hand decoder %+v (%q), generated types %+v (%q)", name, r, reason, r2, reason2)
	}
	return r, reason
}

// TestDecodePathEveryField: each field GoBGP defines on the imported route
// types and attributes, varied one at a time, decodes the same by hand as
// through GoBGP's generated types, and to the values expected.
func TestDecodePathEveryField(t *testing.T) {
	rts := newRTPolicy(65000, RouteTargets{})
	base := pathFields{RDKind: 1, RDAdmin: 0xc0000207, RDAssigned: 5000, ESI: make([]byte, 9), EthTag: 0,
		MAC: "02:00:00:00:00:01", IP: "10.0.0.1", Labels: []uint32{5000}, NextHop: "192.0.2.7",
		RTKind: 0, RTSubType: ecSubTypeRouteTarget, RTAdmin: 65001, RTAssigned: 5000, Transitive: true, Seq: 7}
	r, reason := checkSame(t, "base", base.path(), rts)
	if reason != "" || r.VNI != 5000 || r.MAC.String() != "02:00:00:00:00:01" || r.IP != netip.MustParseAddr("10.0.0.1") ||
		r.VTEP != netip.MustParseAddr("192.0.2.7") || r.Seq != 7 || r.Sticky || r.id != "2|192.0.2.7:5000|0|02:00:00:00:00:01|10.0.0.1" {
		t.Fatalf("base decoded as %+v (%q)", r, reason)
	}
	imet := base
	imet.IMET, imet.IP, imet.PMSI, imet.PMSIType, imet.PMSIID, imet.PMSILabel = true, "192.0.2.7", true, pmsiIngressRepl, []byte{192, 0, 2, 7}, 5000
	if r, reason := checkSame(t, "imet", imet.path(), rts); reason != "" || r.kind != kindIMET || r.VTEP != netip.MustParseAddr("192.0.2.7") {
		t.Fatalf("imet decoded as %+v (%q)", r, reason)
	}
	type variant struct {
		name   string
		mod    func(*pathFields)
		reason string
	}
	vary := func(f pathFields, vs []variant) {
		for _, v := range vs {
			g := f
			v.mod(&g)
			if _, reason := checkSame(t, v.name, g.path(), rts); reason != v.reason {
				t.Errorf("%s: reason %q, want %q", v.name, reason, v.reason)
			}
		}
	}
	vary(base, []variant{
		{"withdraw", func(f *pathFields) { f.Withdraw = true }, ""},
		{"rd two-octet AS", func(f *pathFields) { f.RDKind, f.RDAdmin = 0, 65001 }, ""},
		{"rd four-octet AS", func(f *pathFields) { f.RDKind, f.RDAdmin = 2, 4200000000 }, ""},
		{"no rd", func(f *pathFields) { f.RDKind = 3 }, ""},
		{"esi", func(f *pathFields) { f.ESI = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8} }, ""},
		{"ethernet tag", func(f *pathFields) { f.EthTag = 4094 }, ""},
		{"no ip", func(f *pathFields) { f.IP = "" }, ""},
		{"gobgp <nil> ip", func(f *pathFields) { f.IP = "<nil>" }, ""},
		{"ipv6 ip", func(f *pathFields) { f.IP = "2001:db8::1" }, ""},
		{"unspecified ip", func(f *pathFields) { f.IP = "0.0.0.0" }, ""},
		{"bad ip", func(f *pathFields) { f.IP = "10.0.0" }, DropMalformed},
		{"bad mac", func(f *pathFields) { f.MAC = "02:00:00:00:00" }, DropMalformed},
		{"eui-64 mac", func(f *pathFields) { f.MAC = "02:00:00:00:00:00:00:01" }, DropMalformed},
		{"zero mac", func(f *pathFields) { f.MAC = "00:00:00:00:00:00" }, DropZeroMAC},
		{"multicast mac", func(f *pathFields) { f.MAC = "01:00:5e:00:00:01" }, DropMulticastMAC},
		{"labels", func(f *pathFields) { f.Labels = []uint32{5000, 16777215} }, ""},
		{"ipv6 next hop", func(f *pathFields) { f.NextHop = "2001:db8::7" }, DropVTEPNotIPv4},
		{"multicast next hop", func(f *pathFields) { f.NextHop = "239.1.1.1" }, DropVTEPNotIPv4},
		{"broadcast next hop", func(f *pathFields) { f.NextHop = "255.255.255.255" }, DropVTEPNotIPv4},
		{"multicast ip", func(f *pathFields) { f.IP = "224.0.0.5" }, ""},
		{"v4-mapped next hop", func(f *pathFields) { f.NextHop = "::ffff:192.0.2.7" }, ""},
		{"next hop attribute only", func(f *pathFields) { f.NextHop, f.NextHopAttr = "", "192.0.2.8" }, ""},
		{"both next hops", func(f *pathFields) { f.NextHopAttr = "192.0.2.8" }, ""},
		{"bad next hop", func(f *pathFields) { f.NextHop = "banana" }, DropNoNextHop},
		{"unspecified next hop", func(f *pathFields) { f.NextHop = "0.0.0.0" }, DropNoNextHop},
		{"no next hop", func(f *pathFields) { f.NextHop = "" }, DropNoNextHop},
		{"rt four-octet AS", func(f *pathFields) { f.RTKind, f.RTAdmin = 1, 65001 }, DropNoVNI},
		{"rt ipv4", func(f *pathFields) { f.RTKind, f.RTAdmin = 2, 0x0a000001 }, DropNoVNI},
		{"rt not transitive", func(f *pathFields) { f.Transitive = false }, ""},
		{"rt other subtype", func(f *pathFields) { f.RTSubType = 3 }, DropNoVNI},
		{"no rt", func(f *pathFields) { f.RTKind = 3 }, DropNoVNI},
		{"rt other VNI", func(f *pathFields) { f.RTAssigned = 6000 }, ""},
		{"sticky", func(f *pathFields) { f.Sticky = true }, ""},
		{"seq max", func(f *pathFields) { f.Seq = 1<<32 - 1 }, ""},
		{"pmsi on type-2", func(f *pathFields) { f.PMSI, f.PMSIType = true, pmsiIngressRepl }, ""},
	})
	vary(imet, []variant{
		{"imet withdraw", func(f *pathFields) { f.Withdraw = true }, ""},
		{"imet ethernet tag", func(f *pathFields) { f.EthTag = 100 }, ""},
		{"imet pmsi flags", func(f *pathFields) { f.PMSIFlags = 1 }, ""},
		{"imet pmsi label", func(f *pathFields) { f.PMSILabel = 0 }, ""},
		{"imet pmsi other type", func(f *pathFields) { f.PMSIType = 3 }, DropNoTunnel},
		{"imet no pmsi", func(f *pathFields) { f.PMSI = false }, DropNoTunnel},
		{"imet originator from pmsi", func(f *pathFields) { f.IP = "" }, ""},
		{"imet ipv6 pmsi id", func(f *pathFields) { f.IP, f.PMSIID = "", netip.MustParseAddr("2001:db8::7").AsSlice() }, DropVTEPNotIPv4},
		{"imet ipv6 originator", func(f *pathFields) { f.IP = "2001:db8::7" }, DropVTEPNotIPv4},
		{"imet bad pmsi id", func(f *pathFields) { f.IP, f.PMSIID = "", []byte{1, 2, 3} }, DropMalformed},
		{"imet unspecified originator", func(f *pathFields) { f.IP = "0.0.0.0" }, ""},
		{"imet no rt", func(f *pathFields) { f.RTKind = 3 }, DropNoVNI},
	})
}

// BenchmarkDecodePath compares the hand decoder with GoBGP's generated
// types on a typical FRR type-2 path (the EVPN intake's per-route cost).
func BenchmarkDecodePath(b *testing.B) {
	rts := newRTPolicy(65000, RouteTargets{})
	p := pathFields{RDKind: 1, RDAdmin: 0xc0000207, RDAssigned: 5000, ESI: make([]byte, 9), MAC: "02:00:00:00:00:01", IP: "10.0.0.1",
		Labels: []uint32{5000}, NextHop: "192.0.2.7", RTSubType: ecSubTypeRouteTarget, RTAdmin: 65001, RTAssigned: 5000, Transitive: true}.path()
	for _, dec := range []struct {
		name string
		fn   func(*api.Path, *rtPolicy) (rxRoute, string)
	}{{"hand", decodePath}, {"generated", decodePathTyped}} {
		b.Run(dec.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, reason := dec.fn(p, rts); reason != "" {
					b.Fatal(reason)
				}
			}
		})
	}
}
