package l2

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
)

func TestMACKeyCompare(t *testing.T) {
	k := func(vni VNI, mac string) MACKey { return MACKey{VNI: vni, MAC: MustMAC(mac)} }
	for _, tc := range []struct {
		name string
		a, b MACKey
		want int
	}{
		{"equal", k(10, "02:00:00:00:00:01"), k(10, "02:00:00:00:00:01"), 0},
		{"VNI first", k(9, "ff:ff:ff:ff:ff:fe"), k(10, "00:00:00:00:00:01"), -1},
		{"VNI first, reversed", k(10, "00:00:00:00:00:01"), k(9, "ff:ff:ff:ff:ff:fe"), 1},
		{"last byte", k(10, "02:00:00:00:00:01"), k(10, "02:00:00:00:00:02"), -1},
		{"first byte outweighs the rest", k(10, "01:ff:ff:ff:ff:ff"), k(10, "02:00:00:00:00:00"), -1},
		{"bytes unsigned", k(10, "80:00:00:00:00:00"), k(10, "7f:ff:ff:ff:ff:ff"), 1},
		{"byte 1 outweighs bytes 2-5 (the two halves of the number)", k(10, "00:01:00:00:00:00"), k(10, "00:00:ff:ff:ff:ff"), 1},
		{"largest VNI", k(MaxVNI, "00:00:00:00:00:00"), k(MaxVNI-1, "ff:ff:ff:ff:ff:ff"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Compare(tc.b); got != tc.want {
				t.Errorf("%v.Compare(%v) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			if got := tc.b.Compare(tc.a); got != -tc.want {
				t.Errorf("%v.Compare(%v) = %d, want %d", tc.b, tc.a, got, -tc.want)
			}
			if tc.a.VNI == tc.b.VNI {
				// MAC.Compare is the byte order bytes.Compare has.
				if got, want := tc.a.MAC.Compare(tc.b.MAC), bytes.Compare(tc.a.MAC[:], tc.b.MAC[:]); got != want {
					t.Errorf("MAC.Compare = %d, bytes.Compare = %d", got, want)
				}
			}
			ra := RemoteMAC{VNI: tc.a.VNI, MAC: tc.a.MAC, VTEP: netip.MustParseAddr("192.0.2.1"), Seq: 3}
			rb := RemoteMAC{VNI: tc.b.VNI, MAC: tc.b.MAC, VTEP: netip.MustParseAddr("192.0.2.2")}
			if got := CompareRemoteMACs(ra, rb); got != tc.want {
				t.Errorf("CompareRemoteMACs = %d, want %d (VTEP and Seq do not count)", got, tc.want)
			}
			if got := ra.CompareKey(&rb); got != tc.want {
				t.Errorf("CompareKey = %d, want %d", got, tc.want)
			}
			if got := CompareRemoteMACKey(ra, tc.b); got != tc.want {
				t.Errorf("CompareRemoteMACKey = %d, want %d", got, tc.want)
			}
			la := LocalMAC{Switch: "tor2", VNI: tc.a.VNI, MAC: tc.a.MAC}
			lb := LocalMAC{Switch: "tor1", VNI: tc.b.VNI, MAC: tc.b.MAC}
			if got := CompareLocalMACs(la, lb); got != tc.want {
				t.Errorf("CompareLocalMACs = %d, want %d (the switch does not count)", got, tc.want)
			}
		})
	}
}

// MAC.Compare agrees with bytes.Compare on every pair of a set of MACs that
// differ in each byte position.
func TestMACCompareBytes(t *testing.T) {
	var macs []MAC
	for i := range 6 {
		for _, v := range []byte{0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff} {
			var m MAC
			m[i] = v
			macs = append(macs, m)
			m = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
			m[i] = v
			macs = append(macs, m)
		}
	}
	for _, a := range macs {
		for _, b := range macs {
			if got, want := a.Compare(b), bytes.Compare(a[:], b[:]); got != want {
				t.Fatalf("%v.Compare(%v) = %d, bytes.Compare = %d", a, b, got, want)
			}
		}
	}
}

func TestSortMACs(t *testing.T) {
	r := func(vni VNI, mac string) RemoteMAC { return RemoteMAC{VNI: vni, MAC: MustMAC(mac)} }
	got := []RemoteMAC{r(20, "02:00:00:00:00:01"), r(10, "02:00:00:00:01:00"), r(10, "02:00:00:00:00:ff"), r(10, "00:ff:00:00:00:00")}
	slices.SortFunc(got, CompareRemoteMACs)
	want := []RemoteMAC{r(10, "00:ff:00:00:00:00"), r(10, "02:00:00:00:00:ff"), r(10, "02:00:00:00:01:00"), r(20, "02:00:00:00:00:01")}
	if !slices.Equal(got, want) {
		t.Errorf("sorted: %v, want %v", got, want)
	}
}
