package evpn

import (
	"net/netip"
	"slices"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
)

// IMET asks for a type-3 inclusive multicast route: VTEP floods VNI.
type IMET struct {
	VNI  l2.VNI     `json:"vni"`
	VTEP netip.Addr `json:"vtep"`
}

// LocalState is everything the speaker should advertise: one type-3 route
// per IMET entry and one type-2 route per (VNI, MAC). The same MAC on several
// switches with the same VTEP IP (an anycast pair) is one route.
//
// VTEPs are our own tunnel endpoints (every switch of the pair) besides
// those of the MACs and IMET entries. The speaker is the one place where
// routes to our own VTEPs are left out: they are never remote (Remote,
// flood lists) and never win against a local MAC (mobility); the fabric
// may still hold such routes, e.g. an earlier incarnation's.
type LocalState struct {
	IMET  []IMET        `json:"imet"`
	MACs  []l2.LocalMAC `json:"macs"`
	VTEPs []netip.Addr  `json:"vteps,omitempty"`
}

type routeKind uint8

const (
	kindMAC  routeKind = 2
	kindIMET routeKind = 3
)

// advKey identifies an advertised route (its NLRI, plus the VTEP).
type advKey struct {
	Kind  routeKind
	VNI   l2.VNI
	VTEP  netip.Addr
	RDNum uint16
	MAC   l2.MAC
	IP    netip.Addr
}

// advRoute is a route we advertise, free of GoBGP types.
type advRoute struct {
	advKey
	Seq uint32
	RTs []RouteTarget
}

func (a advRoute) equal(b advRoute) bool {
	return a.advKey == b.advKey && a.Seq == b.Seq && slices.Equal(a.RTs, b.RTs)
}

// wantedRoutes is the desired set of advertisements.
type wantedRoutes struct {
	routes    map[advKey]advRoute
	localWins map[l2.MACKey]bool // local MACs we advertise (not yielded)
	invalid   int                // local entries skipped as invalid
}

// wanted computes the routes to advertise for local state st. remote returns
// the best remote route of a MAC (ignoring our own VTEPs). It updates the
// mobility state.
func wanted(st LocalState, rts *rtPolicy, mob *mobility, remote func(l2.MACKey) *remoteBest, now time.Time) wantedRoutes {
	res := wantedRoutes{routes: make(map[advKey]advRoute, len(st.MACs)+len(st.IMET)), localWins: make(map[l2.MACKey]bool, len(st.MACs))}

	// Candidates per MAC, and the VNIs of each VTEP for RD numbering.
	vnisOf := map[netip.Addr][]l2.VNI{}
	type cand struct {
		vteps []netip.Addr
		ips   map[netip.Addr]netip.Addr // VTEP -> lowest IP seen
	}
	cands := make(map[l2.MACKey]*cand, len(st.MACs))
	var keys []l2.MACKey
	for _, m := range st.MACs {
		if m.VNI.Validate() != nil || m.MAC.ValidateUnicast() != nil || !m.VTEP.Is4() {
			res.invalid++
			continue
		}
		k := l2.MACKey{VNI: m.VNI, MAC: m.MAC}
		c := cands[k]
		if c == nil {
			c = &cand{ips: map[netip.Addr]netip.Addr{}}
			cands[k] = c
			keys = append(keys, k)
		}
		if !slices.Contains(c.vteps, m.VTEP) {
			c.vteps = append(c.vteps, m.VTEP)
		}
		if m.IP.IsValid() {
			if cur, ok := c.ips[m.VTEP]; !ok || m.IP.Less(cur) {
				c.ips[m.VTEP] = m.IP
			}
		}
		vnisOf[m.VTEP] = append(vnisOf[m.VTEP], m.VNI)
	}
	var imets []IMET
	for _, im := range st.IMET {
		if im.VNI.Validate() != nil || !im.VTEP.Is4() {
			res.invalid++
			continue
		}
		imets = append(imets, im)
		vnisOf[im.VTEP] = append(vnisOf[im.VTEP], im.VNI)
	}
	rdNums := make(map[netip.Addr]map[l2.VNI]uint16, len(vnisOf))
	for vtep, vnis := range vnisOf {
		rdNums[vtep] = assignRDNumbers(vnis)
	}
	for _, im := range imets {
		k := advKey{Kind: kindIMET, VNI: im.VNI, VTEP: im.VTEP, RDNum: rdNums[im.VTEP][im.VNI]}
		res.routes[k] = advRoute{advKey: k, RTs: rts.exportRTs(im.VNI)}
	}

	present := make(map[l2.MACKey]bool, len(keys))
	for _, k := range keys {
		c := cands[k]
		present[k] = true
		vtep := slices.MinFunc(c.vteps, func(a, b netip.Addr) int { return a.Compare(b) })
		if prev := mob.st[k]; prev != nil && slices.Contains(c.vteps, prev.vtep) {
			vtep = prev.vtep // sticky while the previous holder still has it
		}
		seq, adv := mob.decide(k, vtep, remote(k), now)
		if !adv {
			continue
		}
		res.localWins[k] = true
		ak := advKey{Kind: kindMAC, VNI: k.VNI, VTEP: vtep, RDNum: rdNums[vtep][k.VNI], MAC: k.MAC, IP: c.ips[vtep]}
		res.routes[ak] = advRoute{advKey: ak, Seq: seq, RTs: rts.exportRTs(k.VNI)}
	}
	mob.forget(present, now)
	return res
}

// diffRoutes returns the routes to add (new or changed) and to withdraw.
func diffRoutes(have, want map[advKey]advRoute) (add, del []advRoute) {
	for k, w := range want {
		if h, ok := have[k]; !ok || !h.equal(w) {
			add = append(add, w)
		}
	}
	for k, h := range have {
		if _, ok := want[k]; !ok {
			del = append(del, h)
		}
	}
	return add, del
}
