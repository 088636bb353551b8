package evpn

import (
	"testing"

	"github.com/torstitch/torstitch/vtep/l2"
)

func TestParseRouteTarget(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    RouteTarget
		wantErr bool
	}{
		{in: "65000:5000", want: RouteTarget{Kind: RTAS2, Admin: 65000, Assigned: 5000}},
		{in: "65000:16777215", want: RouteTarget{Kind: RTAS2, Admin: 65000, Assigned: 16777215}},
		{in: "10.0.0.1:7", want: RouteTarget{Kind: RTIPv4, Admin: 0x0a000001, Assigned: 7}},
		{in: "4200000000:7", want: RouteTarget{Kind: RTAS4, Admin: 4200000000, Assigned: 7}},
		{in: "4200000000:70000", wantErr: true},
		{in: "10.0.0.1:70000", wantErr: true},
		{in: "0:1", wantErr: true},
		{in: "65000", wantErr: true},
		{in: "x:1", wantErr: true},
		{in: "::1:5", wantErr: true},
	} {
		got, err := ParseRouteTarget(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("ParseRouteTarget(%q) = %+v, %v; want %+v, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func TestImportVNI(t *testing.T) {
	p := newRTPolicy(4200000001, RouteTargets{VNIs: map[l2.VNI]VNIRouteTargets{
		6000: {Import: []RouteTarget{mustRouteTarget("10.0.0.1:6")}, Export: []RouteTarget{mustRouteTarget("10.0.0.1:6")}},
	}})
	if got := p.exportRTs(5000); len(got) != 1 || got[0] != (RouteTarget{Kind: RTAS2, Admin: 4200000001 & 0xFFFF, Assigned: 5000}) {
		t.Errorf("auto export RT = %v", got)
	}
	if got := p.exportRTs(6000); got[0] != mustRouteTarget("10.0.0.1:6") {
		t.Errorf("explicit export RT = %v", got)
	}
	for _, tc := range []struct {
		name string
		rts  []RouteTarget
		want l2.VNI // 0: unresolvable
	}{
		{"auto matches the VNI part of any ASN", []RouteTarget{mustRouteTarget("65099:5000")}, 5000},
		{"VNI above 65535", []RouteTarget{mustRouteTarget("65099:70000")}, 70000},
		{"explicit import", []RouteTarget{mustRouteTarget("10.0.0.1:6")}, 6000},
		{"explicit VNI takes no auto match", []RouteTarget{mustRouteTarget("65099:6000")}, 0},
		{"IPv4 RT not explicit", []RouteTarget{mustRouteTarget("10.0.0.2:5000")}, 0},
		{"number not a VNI", []RouteTarget{mustRouteTarget("65000:0")}, 0},
		{"number above 24 bits", []RouteTarget{{Kind: RTAS2, Admin: 1, Assigned: 1 << 24}}, 0},
		{"no RT", nil, 0},
		{"first usable wins", []RouteTarget{mustRouteTarget("10.0.0.9:1"), mustRouteTarget("1:7")}, 7},
	} {
		got, ok := p.importVNI(tc.rts)
		if ok != (tc.want != 0) || got != tc.want {
			t.Errorf("%s: importVNI(%v) = %d, %v; want %d", tc.name, tc.rts, got, ok, tc.want)
		}
	}
}

func TestAssignRDNumbers(t *testing.T) {
	for _, tc := range []struct {
		name string
		vnis []l2.VNI
		want map[l2.VNI]uint16
	}{
		{"small VNIs keep their number", []l2.VNI{5000, 10, 5000}, map[l2.VNI]uint16{5000: 5000, 10: 10}},
		{"large VNI uses the low 16 bits", []l2.VNI{70000}, map[l2.VNI]uint16{70000: 4464}},
		{"collision: lower VNI keeps, higher probes", []l2.VNI{70000, 4464, 4465}, map[l2.VNI]uint16{4464: 4464, 4465: 4465, 70000: 4466}},
		{"wraps at 65535", []l2.VNI{65535, 131071}, map[l2.VNI]uint16{65535: 65535, 131071: 0}},
	} {
		got := assignRDNumbers(tc.vnis)
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			continue
		}
		for v, n := range tc.want {
			if got[v] != n {
				t.Errorf("%s: VNI %d -> %d, want %d", tc.name, v, got[v], n)
			}
		}
	}
	// Unique per VTEP for many colliding VNIs.
	var vnis []l2.VNI
	for i := range 300 {
		vnis = append(vnis, l2.VNI(1+i*65536))
	}
	seen := map[uint16]bool{}
	for _, n := range assignRDNumbers(vnis) {
		if seen[n] {
			t.Fatalf("duplicate RD number %d", n)
		}
		seen[n] = true
	}
}

// mustRouteTarget is ParseRouteTarget for constants; it panics on error.
func mustRouteTarget(s string) RouteTarget {
	rt, err := ParseRouteTarget(s)
	if err != nil {
		panic(err)
	}
	return rt
}
