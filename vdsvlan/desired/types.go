// Package desired is the pure core of vCenter discovery: it turns an
// inventory (distributed switches, port groups, hosts with their uplink
// neighbours, VMs) into the complete desired set of VLAN→VNI bindings for one
// ToR switch pair, plus the VM MACs per VNI and the conflicts it refused to
// apply. It does no I/O and reads no clock, so every rule is unit-testable.
package desired

import (
	"github.com/torstitch/torstitch/vtep/l2"
)

// Inventory is what vCenter knows, reduced to what stitching needs. All
// references between objects are managed-object IDs (Ref fields), except NIC
// backings, which name port groups by their key as vSphere does.
type Inventory struct {
	Switches   []Switch
	PortGroups []PortGroup
	Hosts      []Host
	VMs        []VM
}

// Switch is a distributed virtual switch.
type Switch struct {
	Ref     string
	Name    string
	UUID    string
	Members []Member     // hosts that are members of the switch
	PVLANs  []PVLANEntry // the switch's private-VLAN map
}

// Member is a host's membership in a distributed switch.
type Member struct {
	Host    string   // host Ref
	Uplinks []string // physical NIC devices backing the switch on that host; empty = all of the host's NICs
}

// PVLANEntry is one row of a switch's private-VLAN map.
type PVLANEntry struct {
	Primary   l2.VLAN
	Secondary l2.VLAN
	Type      string // promiscuous, isolated, community
}

// VLANKind says how a port group tags its traffic.
type VLANKind uint8

// VLAN kinds of a port group.
const (
	VLANSingle  VLANKind = iota // one VLAN ID (0 = untagged)
	VLANTrunk                   // guest tagging, a list of ranges
	VLANPrivate                 // private VLAN, identified by its secondary ID
	VLANUnknown                 // a policy this code does not understand
)

func (k VLANKind) String() string {
	switch k {
	case VLANSingle:
		return "vlan"
	case VLANTrunk:
		return "trunk"
	case VLANPrivate:
		return "pvlan"
	}
	return "unknown"
}

// VLANRange is an inclusive range of VLAN IDs.
type VLANRange struct{ Start, End uint32 }

// VLANPolicy is a port group's VLAN setting. IDs are kept as uint32 because
// vCenter (and vcsim) may hand out values beyond 4095; validation happens in
// Compute.
type VLANPolicy struct {
	Kind   VLANKind
	ID     uint32      // VLANSingle: the VLAN; VLANPrivate: the secondary VLAN
	Ranges []VLANRange // VLANTrunk
}

// PortGroup is a distributed port group.
type PortGroup struct {
	Ref    string
	Key    string // the key NIC backings refer to
	Name   string
	Switch string // Switch Ref
	Uplink bool   // uplink port groups carry no VM traffic and are ignored
	VLAN   VLANPolicy
	Tags   []string // names of the tags attached to it in the configured category
	// PublishedVNI is the VNI of a network torstitch published as this port
	// group (from its ownership mark); it wins over the VNI policy.
	PublishedVNI l2.VNI
}

// Host is an ESXi host with the discovery-protocol neighbour of each uplink.
type Host struct {
	Ref        string
	Name       string
	Neighbours []Neighbour
}

// Neighbour is what LLDP or CDP reports on one physical NIC of a host.
type Neighbour struct {
	PNIC     string // vmnic0
	Switch   string // LLDP system name (or chassis ID), CDP device ID
	Port     string // LLDP port ID, CDP port ID
	Protocol string // lldp or cdp
}

// VM is a virtual machine with its network cards.
type VM struct {
	Ref  string
	Name string
	Host string // Host Ref the VM runs on (may be empty)
	NICs []NIC
}

// NIC is one virtual Ethernet card on a distributed port group.
type NIC struct {
	MAC       l2.MAC
	PortGroup string // port group Key
}

// VMMAC is a VM's MAC address in a stitched VNI, with where it lives.
type VMMAC struct {
	VNI       l2.VNI `json:"vni"`
	MAC       l2.MAC `json:"mac"`
	VM        string `json:"vm"`
	Host      string `json:"host,omitempty"`
	PortGroup string `json:"port_group"`
}

// Stats counts what Compute saw; for status and diagnostics.
type Stats struct {
	Switches        int `json:"switches"`
	PortGroups      int `json:"port_groups"`        // non-uplink port groups
	MappedGroups    int `json:"mapped_port_groups"` // port groups with a VNI
	Hosts           int `json:"hosts"`
	HostsWithoutMap int `json:"hosts_without_ports"` // member hosts facing no port of the pair
	VMs             int `json:"vms"`
}

// Result is the output of Compute: complete, sorted and deterministic.
type Result struct {
	Bindings  []l2.Binding
	MACs      []VMMAC
	Conflicts []string
	Stats     Stats
}
