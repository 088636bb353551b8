// Package dataplane programs torswitch's forwarding state into the Linux
// kernel through netlink: per logical switch a bridge and a VXLAN device, per
// VLAN binding a veth pair into that bridge fed by the eBPF VLAN shim, remote
// MACs and flood lists as VXLAN FDB entries, host IPs as neighbour entries
// for ARP suppression. It also reports the MACs the bridges learn on binding
// ports. Apply is level-triggered: it reads the kernel, compares with the
// wanted Config and changes only the difference.
package dataplane

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"

	"github.com/torstitch/torstitch/vtep/l2"
)

// Config is the whole forwarding state torswitch wants in the kernel.
type Config struct {
	TunnelIP netip.Addr
	// Ports are the switch's physical (trunk) ports. Each gets the trunk
	// program; VLANs without a binding are dropped on them.
	Ports    []string
	Switches map[l2.VNI]*Switch
	Bindings []Binding
}

// Switch is the state of one logical switch.
type Switch struct {
	VNI l2.VNI
	// Remote maps a remote unicast MAC to the tunnel IP of its VTEP.
	Remote map[l2.MAC]netip.Addr
	// Flood lists the VTEPs that receive broadcast, unknown unicast and
	// multicast (all-zero FDB entries).
	Flood []netip.Addr
	// Neigh maps remote host IPs to their MACs (ipaddr), answered locally
	// when ARP suppression is on.
	Neigh map[netip.Addr]l2.MAC
}

// Binding maps a VLAN on a physical port to a logical switch.
type Binding struct {
	Port string
	VLAN l2.VLAN
	VNI  l2.VNI
}

// BindingKey identifies a binding independently of its VNI.
type BindingKey struct {
	Port string
	VLAN l2.VLAN
}

// Key returns b's key.
func (b Binding) Key() BindingKey { return BindingKey{Port: b.Port, VLAN: b.VLAN} }

// Counters are a binding's traffic counters, seen from the bridge.
type Counters struct {
	PacketsFromLocal, BytesFromLocal uint64
	PacketsToLocal, BytesToLocal     uint64
}

// Learned is a MAC the kernel bridge learned (or forgot) on a binding port.
type Learned struct {
	VNI     l2.VNI
	MAC     l2.MAC
	Binding BindingKey
	Gone    bool
	// Resync asks the consumer to re-read Snapshot: notifications may
	// have been lost. The other fields are empty.
	Resync bool
}

func bridgeName(vni l2.VNI) string { return "tsbr" + strconv.FormatUint(uint64(vni), 10) }
func vxlanName(vni l2.VNI) string  { return "tsvx" + strconv.FormatUint(uint64(vni), 10) }

// vethNames returns the outer (bridge port) and inner (shim) ends of a binding's veth pair.
func vethNames(trunkIndex int, vlan l2.VLAN) (outer, inner string) {
	base := fmt.Sprintf("ts%dv%d", trunkIndex, vlan)
	return base + "a", base + "b"
}

var (
	ownedBridge = regexp.MustCompile(`^tsbr([0-9]+)$`)
	ownedVxlan  = regexp.MustCompile(`^tsvx([0-9]+)$`)
	ownedVeth   = regexp.MustCompile(`^ts([0-9]+)v([0-9]+)[ab]$`)
)

func parseVNI(re *regexp.Regexp, name string) (l2.VNI, bool) {
	m := re.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil {
		return 0, false
	}
	return l2.VNI(n), true
}
