package evpn

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeCorpus writes one seed in the testdata/fuzz format (go test fuzz v1).
func writeCorpus(t *testing.T, dir string, values ...any) {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case uint8:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		case uint32:
			fmt.Fprintf(&b, "uint32(%d)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		default:
			t.Fatalf("corpus value %T", v)
		}
	}
	sum := sha256.Sum256([]byte(b.String()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%x", sum[:8])), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWriteCorpus (TORSTITCH_WRITE_CORPUS=1) writes seed corpora of the
// EVPN path fuzz targets: a type-2 and a type-3 path and variants of them.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("TORSTITCH_WRITE_CORPUS") == "" {
		t.Skip("set TORSTITCH_WRITE_CORPUS=1 to rewrite the seed corpora")
	}
	base := pathFields{RDKind: 1, RDAdmin: 0xc0000207, RDAssigned: 5000, ESI: make([]byte, 9), MAC: "02:00:00:00:00:01", IP: "10.0.0.1",
		Labels: []uint32{5000}, NextHop: "192.0.2.7", RTSubType: ecSubTypeRouteTarget, RTAdmin: 65001, RTAssigned: 5000, Transitive: true, Seq: 7}
	imet := pathFields{IMET: true, RDKind: 0, RDAdmin: 65001, RDAssigned: 5000, IP: "192.0.2.7", NextHop: "192.0.2.7",
		RTSubType: ecSubTypeRouteTarget, RTAdmin: 65001, RTAssigned: 5000, PMSI: true, PMSIType: pmsiIngressRepl, PMSIID: []byte{192, 0, 2, 7}}
	variants := []pathFields{base, imet}
	for _, mod := range []func(*pathFields){
		func(f *pathFields) { f.IP = "<nil>" }, func(f *pathFields) { f.NextHop, f.NextHopAttr = "", "192.0.2.8" },
		func(f *pathFields) { f.RTKind, f.RTAdmin = 2, 0x0a000001 }, func(f *pathFields) { f.RTKind = 1 },
		func(f *pathFields) { f.MAC = "01:00:5e:00:00:01" }, func(f *pathFields) { f.Sticky = true },
		func(f *pathFields) { f.NextHop = "2001:db8::7" }, func(f *pathFields) { f.Withdraw = true },
	} {
		v := base
		mod(&v)
		variants = append(variants, v)
	}
	for _, mod := range []func(*pathFields){
		func(f *pathFields) { f.IP = "" }, func(f *pathFields) { f.PMSI = false }, func(f *pathFields) { f.PMSIID = []byte{1, 2, 3} },
	} {
		v := imet
		mod(&v)
		variants = append(variants, v)
	}
	attr := func(p []byte, pf pathFields, name string) []byte {
		for _, a := range pf.path().Pattrs {
			if typeName(a.TypeUrl) == name {
				return a.Value
			}
		}
		return p
	}
	for _, v := range variants {
		p := v.path()
		kind := uint8(0)
		if v.IMET {
			kind = 1
		}
		writeCorpus(t, "testdata/fuzz/FuzzDecodePath", kind, p.Nlri.Value, attr(nil, v, "MpReachNLRIAttribute"),
			attr(nil, v, "ExtendedCommunitiesAttribute"), attr(nil, v, "PmsiTunnelAttribute"), v.Withdraw)
		writeCorpus(t, "testdata/fuzz/FuzzDecodePathFields", v.IMET, v.Withdraw, v.RDKind, v.RDAdmin, v.RDAssigned, v.EthTag, v.MAC, v.IP,
			v.NextHop, v.NextHopAttr, v.RTKind, v.RTSubType, v.RTAdmin, v.RTAssigned, v.Sticky, v.Seq, v.PMSI, v.PMSIType, v.PMSIID)
	}
}
