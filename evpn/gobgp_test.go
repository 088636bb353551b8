package evpn

import (
	"net/netip"

	"testing"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/torstitch/torstitch/vtep/l2"
)

// Round trip through the GoBGP API types, and drop reasons for useless routes.
func TestDecodePath(t *testing.T) {
	rts := newRTPolicy(65000, RouteTargets{})
	vtep := ip("192.0.2.7")
	macRoute := func(mac string, seq uint32, rt ...RouteTarget) *api.Path {
		p := toAPIPath(advRoute{advKey: advKey{Kind: kindMAC, VNI: 5000, VTEP: vtep, RDNum: 5000, MAC: l2.MustMAC(mac), IP: ip("10.0.0.1")},
			Seq: seq, RTs: rt}, false)
		p.NeighborIp = "192.0.2.100"
		return p
	}
	imet := func() *api.Path {
		p := toAPIPath(advRoute{advKey: advKey{Kind: kindIMET, VNI: 5000, VTEP: vtep, RDNum: 5000}, RTs: []RouteTarget{AutoRouteTarget(65001, 5000)}}, false)
		p.NeighborIp = "192.0.2.100"
		return p
	}
	without := func(p *api.Path, drop func(*anypb.Any) bool) *api.Path {
		var keep []*anypb.Any
		for _, a := range p.Pattrs {
			if !drop(a) {
				keep = append(keep, a)
			}
		}
		p.Pattrs = keep
		return p
	}
	rt := mustRouteTarget("65001:5000")

	r, reason := decodePath(macRoute("02:00:00:00:00:01", 7, rt), rts)
	if reason != "" || r.kind != kindMAC || r.VNI != 5000 || r.MAC != l2.MustMAC("02:00:00:00:00:01") ||
		r.IP != ip("10.0.0.1") || r.VTEP != vtep || r.Seq != 7 || r.id == "" {
		t.Errorf("type-2 decoded as %+v (%q)", r, reason)
	}
	explicit := newRTPolicy(65000, RouteTargets{VNIs: map[l2.VNI]VNIRouteTargets{
		6000: {Import: []RouteTarget{mustRouteTarget("10.0.0.1:6")}}, 7000: {Import: []RouteTarget{mustRouteTarget("4200000000:7")}}}})
	for rtStr, vni := range map[string]l2.VNI{"10.0.0.1:6": 6000, "4200000000:7": 7000} {
		r, reason = decodePath(macRoute("02:00:00:00:00:01", 0, mustRouteTarget(rtStr)), explicit)
		if reason != "" || r.VNI != vni {
			t.Errorf("RT %s decoded to VNI %d (%q), want %d", rtStr, r.VNI, reason, vni)
		}
	}
	r, reason = decodePath(imet(), rts)
	if reason != "" || r.kind != kindIMET || r.VNI != 5000 || r.VTEP != vtep {
		t.Errorf("type-3 decoded as %+v (%q)", r, reason)
	}
	for _, tc := range []struct {
		name string
		p    *api.Path
		want string
	}{
		{"zero MAC", macRoute("00:00:00:00:00:00", 0, rt), DropZeroMAC},
		{"multicast MAC", macRoute("01:00:5e:00:00:01", 0, rt), DropMulticastMAC},
		{"no route target", macRoute("02:00:00:00:00:01", 0), DropNoVNI},
		{"missing next hop", without(macRoute("02:00:00:00:00:01", 0, rt), func(a *anypb.Any) bool {
			return a.MessageIs(&api.MpReachNLRIAttribute{})
		}), DropNoNextHop},
		{"type-3 without PMSI", without(imet(), func(a *anypb.Any) bool { return a.MessageIs(&api.PmsiTunnelAttribute{}) }), DropNoTunnel},
		{"no NLRI", &api.Path{Family: evpnFamily, Pattrs: []*anypb.Any{mustAny(&api.OriginAttribute{})}}, DropMalformed},
		{"other route type", &api.Path{Family: evpnFamily, Nlri: mustAny(&api.EVPNEthernetSegmentRoute{})}, DropUnsupportedRT},
	} {
		if _, reason := decodePath(tc.p, rts); reason != tc.want {
			t.Errorf("%s: reason %q, want %q", tc.name, reason, tc.want)
		}
	}
}

func TestRemoteTableBest(t *testing.T) {
	k := l2.MACKey{VNI: 5000, MAC: l2.MustMAC("02:00:00:00:00:01")}
	tb := newRemoteTable()
	add := func(id, vtep string, seq uint32, ipaddr string) {
		r := rxRoute{id: id, kind: kindMAC, VNI: k.VNI, MAC: k.MAC, VTEP: ip(vtep), Seq: seq}
		if ipaddr != "" {
			r.IP = ip(ipaddr)
		}
		tb.apply(r)
	}
	add("a", "10.0.0.2", 0, "")
	add("a-ip", "10.0.0.2", 0, "10.1.0.5")
	add("b", "10.0.0.1", 0, "")
	m, _ := tb.best(k, nil)
	if m.VTEP != ip("10.0.0.1") || m.IP.IsValid() {
		t.Errorf("equal seq: best %+v, want lowest VTEP 10.0.0.1 without IP", m)
	}
	add("a", "10.0.0.2", 2, "")
	if m, _ = tb.best(k, nil); m.VTEP != ip("10.0.0.2") || m.Seq != 2 || m.IP != ip("10.1.0.5") {
		t.Errorf("higher seq: best %+v, want 10.0.0.2 seq 2 with IP from its MAC+IP route", m)
	}
	if m, _ = tb.best(k, map[netip.Addr]bool{ip("10.0.0.2"): true}); m.VTEP != ip("10.0.0.1") {
		t.Errorf("own VTEP not ignored: %+v", m)
	}
	for _, id := range []string{"a", "a-ip", "b"} {
		tb.apply(rxRoute{id: id, withdraw: true})
	}
	if _, ok := tb.best(k, nil); ok || len(tb.macs) != 0 || len(tb.byID) != 0 {
		t.Errorf("table not empty after withdrawals: %+v", tb)
	}
}
