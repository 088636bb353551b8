// Package l2 holds the leaf value types that every part of torstitch shares:
// VNIs, VLANs, MAC addresses, switch ports, bindings and MAC entries. It has
// no dependencies beyond the standard library so that sources (vdsvlan, evpn)
// and sinks (vtep clients) can all speak it without importing each other.
package l2

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// VNI is a VXLAN network identifier (24 bits; 0 is not a valid VNI).
type VNI uint32

// MaxVNI is the largest valid VNI.
const MaxVNI VNI = 1<<24 - 1

// Validate reports whether v is a usable VNI (1–16777215).
func (v VNI) Validate() error {
	if v < 1 || v > MaxVNI {
		return fmt.Errorf("VNI %d out of range 1-%d", uint64(v), MaxVNI)
	}
	return nil
}

// ParseVNI parses a decimal VNI and validates it.
func ParseVNI(s string) (VNI, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("VNI %q: not a number", s)
	}
	v := VNI(n)
	if n > uint64(MaxVNI) {
		return 0, fmt.Errorf("VNI %s out of range 1-%d", s, MaxVNI)
	}
	return v, v.Validate()
}

// VLAN is an 802.1Q VLAN ID as used in hardware_vtep vlan_bindings. VLAN 0
// means untagged frames.
type VLAN uint16

// MaxVLAN is the largest VLAN ID the hardware_vtep schema accepts.
const MaxVLAN VLAN = 4095

// Validate reports whether v fits the hardware_vtep range 0–4095.
func (v VLAN) Validate() error {
	if v > MaxVLAN {
		return fmt.Errorf("VLAN %d out of range 0-%d", v, MaxVLAN)
	}
	return nil
}

// ValidateUsable is stricter than Validate: 4095 is reserved by 802.1Q and
// refused for operator intent.
func (v VLAN) ValidateUsable() error {
	if v >= MaxVLAN {
		return fmt.Errorf("VLAN %d out of range 0-4094 (0 = untagged, 4095 is reserved)", v)
	}
	return nil
}

// ParseVLAN parses a decimal VLAN ID and checks it with ValidateUsable.
func ParseVLAN(s string) (VLAN, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil {
		return 0, fmt.Errorf("VLAN %q: not a number in 0-4094", s)
	}
	v := VLAN(n)
	return v, v.ValidateUsable()
}

// MAC is an Ethernet address. Unlike net.HardwareAddr it is comparable and can
// key maps.
type MAC [6]byte

// ParseMAC parses "aa:bb:cc:dd:ee:ff" (also with '-' separators, any case).
func ParseMAC(s string) (MAC, error) {
	var m MAC
	t := strings.TrimSpace(s)
	if len(t) != 17 {
		return m, fmt.Errorf("invalid MAC address %q", s)
	}
	for i := 0; i < 6; i++ {
		if i > 0 && t[i*3-1] != ':' && t[i*3-1] != '-' {
			return m, fmt.Errorf("invalid MAC address %q", s)
		}
		hi, ok1 := unhex(t[i*3])
		lo, ok2 := unhex(t[i*3+1])
		if !ok1 || !ok2 {
			return m, fmt.Errorf("invalid MAC address %q", s)
		}
		m[i] = hi<<4 | lo
	}
	return m, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// MustMAC is ParseMAC for constants in tests and examples; it panics on error.
func MustMAC(s string) MAC {
	m, err := ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

const hexDigits = "0123456789abcdef"

// String formats m as lower-case colon-separated hex, the form hardware_vtep uses.
func (m MAC) String() string {
	var b [17]byte
	for i, v := range m {
		if i > 0 {
			b[i*3-1] = ':'
		}
		b[i*3] = hexDigits[v>>4]
		b[i*3+1] = hexDigits[v&0xf]
	}
	return string(b[:])
}

// Compare orders MACs byte by byte (as 48-bit big-endian numbers); it
// returns -1, 0 or +1.
func (m MAC) Compare(o MAC) int { return compareUint(m.uint48(), o.uint48()) }

// uint48 is m as a number: one integer comparison instead of six bytes. A
// pointer, so that comparisons read the MACs where they are, in place.
// Bytes 0-3 and 4-5 rather than 0-1 and 2-5: a MAC after a VNI (MACKey,
// RemoteMAC) starts 4 bytes into its struct, and a load of bytes 2-5 would
// straddle the two 8-byte stores that copied a MACKey, which stalls.
func (m *MAC) uint48() uint64 {
	return uint64(binary.BigEndian.Uint32(m[0:4]))<<16 | uint64(binary.BigEndian.Uint16(m[4:6]))
}

// compareUint is cmp.Compare for integers, cheaper for the inliner.
func compareUint(a, b uint64) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// IsMulticast reports whether the group bit is set (includes broadcast).
func (m MAC) IsMulticast() bool { return m[0]&1 == 1 }

// ValidateUnicast rejects the all-zero and group addresses, which can never be
// a host's address in a MAC table.
func (m MAC) ValidateUnicast() error {
	if m.IsZero() || m.IsMulticast() {
		return fmt.Errorf("MAC %s is not a unicast host address", m)
	}
	return nil
}

// ValidateVTEP rejects what cannot be a hardware_vtep tunnel endpoint: the
// schema's locators are vxlan_over_ipv4, so only a unicast IPv4 address.
func ValidateVTEP(a netip.Addr) error {
	if !a.Is4() || a.IsUnspecified() || a.IsMulticast() || a.As4() == [4]byte{255, 255, 255, 255} {
		return fmt.Errorf("VTEP %q is not a unicast IPv4 address", AddrString(a))
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *MAC) UnmarshalText(b []byte) error {
	v, err := ParseMAC(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// PortRef names one port of one switch of the pair, written SWITCH:PORT.
type PortRef struct {
	Switch string `json:"switch"`
	Port   string `json:"port"`
}

// ParsePortRef parses "SWITCH:PORT". Port names may contain ':' after the
// first. Both names must pass CheckName.
func ParsePortRef(s string) (PortRef, error) {
	sw, port, ok := strings.Cut(s, ":")
	if !ok || sw == "" || port == "" {
		return PortRef{}, fmt.Errorf("port %s: want SWITCH:PORT", QuoteShort(s))
	}
	p := PortRef{Switch: sw, Port: port}
	if err := p.Validate(); err != nil {
		return PortRef{}, err
	}
	return p, nil
}

// Validate checks both names of p with CheckName.
func (p PortRef) Validate() error {
	if p.Switch == "" || p.Port == "" {
		return fmt.Errorf("port %s: want SWITCH:PORT", QuoteShort(p.String()))
	}
	if err := CheckName(p.Switch); err != nil {
		return fmt.Errorf("port %s: switch name %w", QuoteShort(p.String()), err)
	}
	if err := CheckName(p.Port); err != nil {
		return fmt.Errorf("port %s: port name %w", QuoteShort(p.String()), err)
	}
	return nil
}

// MaxNameLen bounds switch and port names, in bytes.
const MaxNameLen = 255

// CheckName refuses a switch or port name that is empty, longer than
// MaxNameLen bytes, not UTF-8, or holds white space or control characters.
func CheckName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is empty")
	case len(s) > MaxNameLen:
		return fmt.Errorf("is %d bytes long (at most %d)", len(s), MaxNameLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("is not UTF-8")
	}
	for _, r := range s {
		if unicode.IsSpace(r) {
			return fmt.Errorf("has white space (%q)", r)
		}
		if unicode.IsControl(r) || r == utf8.RuneError {
			return fmt.Errorf("has a control character (%q)", r)
		}
	}
	return nil
}

// QuoteShort quotes s for a message, cut to its first 40 bytes.
func QuoteShort(s string) string {
	if len(s) <= 40 {
		return strconv.Quote(s)
	}
	cut := 40
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("... (%d bytes)", len(s))
}

func (p PortRef) String() string { return p.Switch + ":" + p.Port }

// Compare orders port references by switch, then port.
func (p PortRef) Compare(q PortRef) int {
	if c := strings.Compare(p.Switch, q.Switch); c != 0 {
		return c
	}
	return strings.Compare(p.Port, q.Port)
}

// Binding maps a VLAN on a set of switch ports to a VNI. It is the one
// binding type from the sources (config file, torctl, vCenter) through the
// agent to the API; the planner takes one switch's part as plan.PortBinding.
type Binding struct {
	VLAN  VLAN      `json:"vlan"`
	VNI   VNI       `json:"vni"`
	Ports []PortRef `json:"ports"`
	// Source is where the binding comes from: SourceConfig, SourceTorctl or
	// SourceVCenter, in that order of precedence; empty inside a source.
	Source string `json:"source,omitempty"`
}

// Binding sources, in order of precedence.
const (
	SourceConfig  = "config"
	SourceTorctl  = "torctl"
	SourceVCenter = "vcenter"
)

// PortVLAN is a VLAN on one switch port: what a binding binds.
type PortVLAN struct {
	Port PortRef
	VLAN VLAN
}

// RemoteMAC is a MAC reachable through a remote VTEP: a Ucast_Macs_Remote row
// on the switch side, a type-2 route on the EVPN side.
type RemoteMAC struct {
	VNI  VNI        `json:"vni"`
	MAC  MAC        `json:"mac"`
	IP   netip.Addr `json:"ip,omitzero"`   // optional host IP (ipaddr), for ARP suppression
	VTEP netip.Addr `json:"vtep"`          // remote tunnel endpoint
	Seq  uint32     `json:"seq,omitempty"` // MAC mobility sequence number
}

// LocalMAC is a MAC learned by a switch on one of its bound ports: a
// Ucast_Macs_Local row, advertised as a type-2 route.
type LocalMAC struct {
	Switch string     `json:"switch"`
	VNI    VNI        `json:"vni"`
	MAC    MAC        `json:"mac"`
	IP     netip.Addr `json:"ip,omitzero"`
	VTEP   netip.Addr `json:"vtep"` // tunnel IP of the switch that learned it
}

// AddrString formats a, or returns "" for the zero Addr (an optional address
// left out, such as RemoteMAC.IP): the form of hardware_vtep's ipaddr column
// and of a type-2 route without an IP. netip.Addr.String would say
// "invalid IP".
func AddrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// MACKey identifies a MAC within a VNI.
type MACKey struct {
	VNI VNI
	MAC MAC
}

// Compare orders keys by VNI, then MAC (MAC.Compare): the order of every
// sorted MAC list in torstitch. It returns -1, 0 or +1.
func (k MACKey) Compare(o MACKey) int { return compareKeys(k.VNI, &k.MAC, o.VNI, &o.MAC) }

// compareKeys is MACKey.Compare on the fields where they are. It is written
// so that the compiler inlines it (plain comparisons, no cmp.Compare, no
// copies of the MACs): the planner, the agent and the speaker compare 100k
// keys per pass.
func compareKeys(av VNI, am *MAC, bv VNI, bm *MAC) int {
	if av != bv {
		return compareUint(uint64(av), uint64(bv))
	}
	return compareUint(am.uint48(), bm.uint48())
}

// CompareRemoteMACs orders remote MACs by their keys (MACKey.Compare) alone:
// two entries of one key compare equal whatever their VTEP, IP or sequence
// number. For slices.SortFunc and IsSortedFunc.
func CompareRemoteMACs(a, b RemoteMAC) int { return compareKeys(a.VNI, &a.MAC, b.VNI, &b.MAC) }

// CompareKey is CompareRemoteMACs(*m, *o) without copying either: for loops
// over long lists.
func (m *RemoteMAC) CompareKey(o *RemoteMAC) int { return compareKeys(m.VNI, &m.MAC, o.VNI, &o.MAC) }

// CompareRemoteMACKey orders a remote MAC against a key as CompareRemoteMACs
// does: for slices.BinarySearchFunc over a sorted list.
func CompareRemoteMACKey(m RemoteMAC, k MACKey) int { return compareKeys(m.VNI, &m.MAC, k.VNI, &k.MAC) }

// CompareLocalMACs orders local MACs by their keys (MACKey.Compare) alone,
// whatever their switch, VTEP or IP.
func CompareLocalMACs(a, b LocalMAC) int { return compareKeys(a.VNI, &a.MAC, b.VNI, &b.MAC) }
