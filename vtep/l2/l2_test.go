package l2

import (
	"net/netip"
	"testing"
)

func TestParseMAC(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  bool
	}{
		{"aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff", false},
		{"AA-BB-CC-00-01-02", "aa:bb:cc:00:01:02", false},
		{"aa:bb:cc:dd:ee", "", true},
		{"aa:bb:cc:dd:ee:fg", "", true},
		{"aab:b:cc:dd:ee:ff", "", true},
		{"", "", true},
	} {
		m, err := ParseMAC(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParseMAC(%q) err = %v, want err %v", tc.in, err, tc.err)
			continue
		}
		if !tc.err && m.String() != tc.want {
			t.Errorf("ParseMAC(%q) = %s, want %s", tc.in, m, tc.want)
		}
	}
}

func TestRanges(t *testing.T) {
	for _, tc := range []struct {
		vni VNI
		ok  bool
	}{{0, false}, {1, true}, {16777215, true}, {16777216, false}} {
		if err := tc.vni.Validate(); (err == nil) != tc.ok {
			t.Errorf("VNI %d: err %v", tc.vni, err)
		}
	}
	for _, tc := range []struct {
		s      string
		ok     bool
		usable bool
	}{{"0", true, true}, {"100", true, true}, {"4094", true, true}, {"4095", false, false}, {"5000", false, false}, {"x", false, false}} {
		_, err := ParseVLAN(tc.s)
		if (err == nil) != tc.usable {
			t.Errorf("ParseVLAN(%s): err %v", tc.s, err)
		}
	}
	if err := VLAN(4095).Validate(); err != nil {
		t.Errorf("VLAN 4095 is in the schema range: %v", err)
	}
	if _, err := ParsePortRef("tor1"); err == nil {
		t.Error("ParsePortRef(tor1) should fail")
	}
	if p, err := ParsePortRef("tor1:Ethernet1/1"); err != nil || p.Port != "Ethernet1/1" {
		t.Errorf("ParsePortRef: %v %v", p, err)
	}
}

func TestMACUnicast(t *testing.T) {
	if MustMAC("00:00:00:00:00:00").ValidateUnicast() == nil {
		t.Error("zero MAC accepted")
	}
	if MustMAC("01:00:5e:00:00:01").ValidateUnicast() == nil {
		t.Error("multicast MAC accepted")
	}
	if err := MustMAC("02:00:00:00:00:01").ValidateUnicast(); err != nil {
		t.Error(err)
	}
}

func TestValidateVTEP(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"192.0.2.1", true}, {"10.0.0.11", true},
		{"0.0.0.0", false}, {"255.255.255.255", false}, {"224.0.0.5", false}, {"239.1.1.1", false},
		{"2001:db8::1", false}, {"::ffff:192.0.2.1", false}, {"", false},
	} {
		var a netip.Addr
		if tc.addr != "" {
			a = netip.MustParseAddr(tc.addr)
		}
		if err := ValidateVTEP(a); (err == nil) != tc.ok {
			t.Errorf("ValidateVTEP(%q) = %v, want ok %v", tc.addr, err, tc.ok)
		}
	}
}

func TestAddrString(t *testing.T) {
	for _, tc := range []struct {
		in   netip.Addr
		want string
	}{
		{netip.Addr{}, ""},
		{netip.MustParseAddr("192.0.2.1"), "192.0.2.1"},
		{netip.MustParseAddr("2001:db8::1"), "2001:db8::1"},
		{netip.IPv4Unspecified(), "0.0.0.0"},
	} {
		if got := AddrString(tc.in); got != tc.want {
			t.Errorf("AddrString(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
