package evpn

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/torstitch/torstitch/vtep/l2"
)

// RTKind is the encoding of a route target extended community.
type RTKind uint8

// Route target encodings (RFC 4360, RFC 5668).
const (
	RTAS2  RTKind = iota // 2-octet AS : 4-octet number (FRR's auto RT)
	RTIPv4               // IPv4 address : 2-octet number
	RTAS4                // 4-octet AS : 2-octet number
)

// RouteTarget is a route target extended community. It is comparable.
type RouteTarget struct {
	Kind     RTKind
	Admin    uint32 // AS number, or the IPv4 address as a big-endian number
	Assigned uint32
}

// ParseRouteTarget parses "ASN:N", "A.B.C.D:N" or "ASN4:N" (an ASN above
// 65535 selects the 4-octet AS form, whose number is 16 bits).
func ParseRouteTarget(s string) (RouteTarget, error) {
	admin, num, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return RouteTarget{}, fmt.Errorf("route target %q: want ADMIN:NUMBER", s)
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return RouteTarget{}, fmt.Errorf("route target %q: bad number %q", s, num)
	}
	if ip, err := netip.ParseAddr(admin); err == nil {
		if !ip.Is4() || n > 0xFFFF {
			return RouteTarget{}, fmt.Errorf("route target %q: want IPv4:0-65535", s)
		}
		b := ip.As4()
		return RouteTarget{Kind: RTIPv4, Admin: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), Assigned: uint32(n)}, nil
	}
	as, err := strconv.ParseUint(admin, 10, 32)
	if err != nil || as == 0 {
		return RouteTarget{}, fmt.Errorf("route target %q: bad administrator %q", s, admin)
	}
	if as <= 0xFFFF {
		return RouteTarget{Kind: RTAS2, Admin: uint32(as), Assigned: uint32(n)}, nil
	}
	if n > 0xFFFF {
		return RouteTarget{}, fmt.Errorf("route target %q: a 4-octet AS allows numbers 0-65535", s)
	}
	return RouteTarget{Kind: RTAS4, Admin: uint32(as), Assigned: uint32(n)}, nil
}

func (rt RouteTarget) String() string {
	switch rt.Kind {
	case RTIPv4:
		a := rt.Admin
		return fmt.Sprintf("%d.%d.%d.%d:%d", a>>24, a>>16&0xff, a>>8&0xff, a&0xff, rt.Assigned)
	default:
		return fmt.Sprintf("%d:%d", rt.Admin, rt.Assigned)
	}
}

// AutoRouteTarget is FRR's default route target for a VNI: (ASN & 0xFFFF):VNI.
func AutoRouteTarget(asn uint32, vni l2.VNI) RouteTarget {
	return RouteTarget{Kind: RTAS2, Admin: asn & 0xFFFF, Assigned: uint32(vni)}
}

// RouteTargets selects route targets. VNIs not listed use auto: export
// (ASN & 0xFFFF):VNI and import any 2-octet-AS route target whose number is
// the VNI (FRR's behaviour). A VNI listed with Import switches that VNI to
// exact matching on the listed targets.
type RouteTargets struct {
	VNIs map[l2.VNI]VNIRouteTargets
}

// VNIRouteTargets holds explicit route targets for one VNI; an empty list
// keeps auto for that direction.
type VNIRouteTargets struct {
	Import []RouteTarget
	Export []RouteTarget
}

func (r RouteTargets) checkImportConflicts() error {
	owner := make(map[RouteTarget]l2.VNI)
	for _, vni := range slices.Sorted(maps.Keys(r.VNIs)) {
		for _, rt := range r.VNIs[vni].Import {
			if o, ok := owner[rt]; ok && o != vni {
				return fmt.Errorf("route_targets: import %s given for VNIs %d and %d", rt, uint32(o), uint32(vni))
			}
			owner[rt] = vni
		}
	}
	return nil
}

// rtPolicy is the resolved route target configuration.
type rtPolicy struct {
	asn      uint32
	export   map[l2.VNI][]RouteTarget
	imports  map[RouteTarget]l2.VNI
	explicit map[l2.VNI]bool // VNIs with explicit imports: no auto match
}

func newRTPolicy(asn uint32, r RouteTargets) *rtPolicy {
	p := &rtPolicy{asn: asn, export: map[l2.VNI][]RouteTarget{}, imports: map[RouteTarget]l2.VNI{}, explicit: map[l2.VNI]bool{}}
	for vni, v := range r.VNIs {
		if len(v.Export) > 0 {
			p.export[vni] = slices.Clone(v.Export)
		}
		for _, rt := range v.Import {
			p.imports[rt] = vni
			p.explicit[vni] = true
		}
	}
	return p
}

// exportRTs returns the route targets attached to routes of vni.
func (p *rtPolicy) exportRTs(vni l2.VNI) []RouteTarget {
	if rts, ok := p.export[vni]; ok {
		return rts
	}
	return []RouteTarget{AutoRouteTarget(p.asn, vni)}
}

// importVNI resolves the VNI of a received route from its route targets:
// explicit imports first, then auto (the number of a 2-octet-AS target).
func (p *rtPolicy) importVNI(rts []RouteTarget) (l2.VNI, bool) {
	for _, rt := range rts {
		if vni, ok := p.imports[rt]; ok {
			return vni, true
		}
	}
	for _, rt := range rts {
		if rt.Kind != RTAS2 {
			continue
		}
		vni := l2.VNI(rt.Assigned)
		if vni.Validate() == nil && !p.explicit[vni] {
			return vni, true
		}
	}
	return 0, false
}

// assignRDNumbers returns the assigned number n of the type-1 route
// distinguisher VTEP-IP:n for each VNI of one VTEP. n is the low 16 bits of
// the VNI, so VNIs up to 65535 get n = VNI and the result does not depend on
// other state: it is stable across restarts. VNIs above 65535 whose low 16
// bits collide with another VNI of the same VTEP are resolved in ascending
// VNI order: the lower VNI keeps its number, the higher one takes the next
// free number (wrapping). Uniqueness per VTEP is guaranteed for up to 65536
// VNIs.
func assignRDNumbers(vnis []l2.VNI) map[l2.VNI]uint16 {
	sorted := slices.Clone(vnis)
	slices.SortFunc(sorted, func(a, b l2.VNI) int { return cmp.Compare(a, b) })
	sorted = slices.Compact(sorted)
	out := make(map[l2.VNI]uint16, len(sorted))
	used := make(map[uint16]bool, len(sorted))
	var collided []l2.VNI
	for _, v := range sorted { // first pass: everyone whose own number is free
		n := uint16(v & 0xFFFF)
		if used[n] {
			collided = append(collided, v)
			continue
		}
		used[n] = true
		out[v] = n
	}
	for _, v := range collided {
		n := uint16(v & 0xFFFF)
		for i := 0; i < 1<<16 && used[n]; i++ {
			n++
		}
		used[n] = true
		out[v] = n
	}
	return out
}
