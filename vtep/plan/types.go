// Package plan is the pure core of the hardware_vtep writer: it takes the
// desired state of one switch and the state observed in its database and
// returns the changes that turn one into the other. It does no I/O.
//
// Ownership: torstitch owns a Logical_Switch row when its other_config holds
// OwnerKey=OwnerValue ("managed-by"="torstitch"). It owns the Ucast/Mcast
// remote MAC rows inside such a logical switch and the vlan_bindings entries
// that point at one. Everything else in the database is foreign: the planner
// never emits a change that modifies or deletes it, and desired state that
// would collide with it is a Conflict: skipped for that VNI or binding alone.
package plan

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// The hardware_vtep names the planner uses, declared once in vtepdb; these
// are aliases so that callers can keep writing plan.OwnerKey and so on.

// Ownership marker written into Logical_Switch.other_config.
const (
	OwnerKey   = vtepdb.OwnerKey
	OwnerValue = vtepdb.OwnerValue
)

// Replication modes of hardware_vtep Logical_Switch.replication_mode
// (modelgen declares enum values as variables).
var (
	SourceNode  = vtepdb.LogicalSwitchReplicationModeSourceNode
	ServiceNode = vtepdb.LogicalSwitchReplicationModeServiceNode
)

// UnknownDst is the Mcast_Macs_Remote MAC for the flood list.
const UnknownDst = vtepdb.UnknownDst

// EncapVXLAN is the only encapsulation hardware_vtep 1.7 defines.
var EncapVXLAN = vtepdb.PhysicalLocatorEncapsulationTypeVxlanOverIpv4

// LogicalSwitch is the desired state of one logical switch.
type LogicalSwitch struct {
	VNI             l2.VNI
	Name            string // default DefaultName(VNI)
	ReplicationMode string // "", SourceNode or ServiceNode; "" leaves the switch's default
}

// DefaultName is the Logical_Switch name torstitch gives a VNI.
func DefaultName(v l2.VNI) string { return "vni" + strconv.FormatUint(uint64(v), 10) }

// VNIOfName returns the VNI whose DefaultName is name.
func VNIOfName(name string) (l2.VNI, bool) {
	digits, ok := strings.CutPrefix(name, "vni")
	if !ok || digits == "" || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil || l2.VNI(n).Validate() != nil {
		return 0, false
	}
	return l2.VNI(n), true
}

// PortBinding maps VLAN on a physical port to a VNI.
type PortBinding struct {
	Port string
	VLAN l2.VLAN
	VNI  l2.VNI
}

// Desired is the complete desired state of one switch.
type Desired struct {
	LogicalSwitches []LogicalSwitch
	Bindings        []PortBinding
	RemoteMACs      []l2.RemoteMAC          // VNI, MAC, optional IP, remote VTEP
	Flood           map[l2.VNI][]netip.Addr // unknown-dst locators per VNI
	// BFD, when set, is written into bfd_params of every Tunnel row of the
	// switch whose enable/min_rx/min_tx differ; nil leaves Tunnel rows alone.
	BFD *BFDParams
}

// BFDParams is what torstitch sets in Tunnel.bfd_params: enable=true and the
// two intervals in milliseconds. Other bfd_params keys are never touched.
type BFDParams struct {
	MinRxMs int
	MinTxMs int
}

// Map returns the bfd_params entries torstitch owns.
func (p BFDParams) Map() map[string]string {
	return map[string]string{BFDEnable: "true", BFDMinRx: strconv.Itoa(p.MinRxMs), BFDMinTx: strconv.Itoa(p.MinTxMs)}
}

// Tunnel bfd_params keys torstitch writes, and bfd_status keys it reads.
const (
	BFDEnable = vtepdb.BFDParamEnable
	BFDMinRx  = vtepdb.BFDParamMinRx
	BFDMinTx  = vtepdb.BFDParamMinTx

	BFDStatusEnabled     = vtepdb.BFDStatusEnabled
	BFDStatusState       = vtepdb.BFDStatusState
	BFDStatusRemoteState = vtepdb.BFDStatusRemoteState
)

// Observed is what the switch's database holds, as read from the client's
// cache: the rows are vtepdb's generated models, shared with the cache and
// so read-only (a client's cache replaces a row, never edits it). Maps are
// keyed by row UUID unless noted.
type Observed struct {
	// PhysicalSwitch is the switch's row (zero when the database has none).
	PhysicalSwitch vtepdb.PhysicalSwitch
	Ports          map[string]*vtepdb.PhysicalPort // the switch's ports, by name
	Switches       map[string]*vtepdb.LogicalSwitch
	Locators       map[string]*vtepdb.PhysicalLocator
	LocatorSets    map[string]*vtepdb.PhysicalLocatorSet
	UcastRemote    map[string]*vtepdb.UcastMacsRemote
	// UcastRemoteIndex, when set, holds UcastRemote's rows (the same
	// pointers) by logical switch UUID and parsed MAC (the client keeps it
	// with its copy of the table). The planner then checks the desired remote MACs against the
	// table without building a map of it on every plan; it falls back to
	// reading UcastRemote whenever the index does not cover every row once.
	UcastRemoteIndex map[UcastKey]*vtepdb.UcastMacsRemote
	McastRemote      map[string]*vtepdb.McastMacsRemote
	UcastLocal       map[string]*vtepdb.UcastMacsLocal
	McastLocal       map[string]*vtepdb.McastMacsLocal
	Tunnels          map[string]*vtepdb.Tunnel
}

// NewObserved returns an Observed of the named switch with every map made
// and empty.
func NewObserved(switchName string) *Observed {
	return &Observed{
		PhysicalSwitch: vtepdb.PhysicalSwitch{Name: switchName},
		Ports:          map[string]*vtepdb.PhysicalPort{},
		Switches:       map[string]*vtepdb.LogicalSwitch{},
		Locators:       map[string]*vtepdb.PhysicalLocator{},
		LocatorSets:    map[string]*vtepdb.PhysicalLocatorSet{},
		UcastRemote:    map[string]*vtepdb.UcastMacsRemote{},
		McastRemote:    map[string]*vtepdb.McastMacsRemote{},
		UcastLocal:     map[string]*vtepdb.UcastMacsLocal{},
		McastLocal:     map[string]*vtepdb.McastMacsLocal{},
		Tunnels:        map[string]*vtepdb.Tunnel{},
	}
}

// Owned reports whether torstitch created the logical switch.
func Owned(ls *vtepdb.LogicalSwitch) bool { return ls.OtherConfig[OwnerKey] == OwnerValue }

// VNIOf returns the logical switch's tunnel key, or 0 when it has none.
func VNIOf(ls *vtepdb.LogicalSwitch) l2.VNI {
	if ls.TunnelKey == nil || *ls.TunnelKey < 0 {
		return 0
	}
	return l2.VNI(*ls.TunnelKey)
}

// replicationMode returns the logical switch's replication mode, "" when
// unset.
func replicationMode(ls *vtepdb.LogicalSwitch) string {
	if ls.ReplicationMode == nil {
		return ""
	}
	return *ls.ReplicationMode
}

// UcastKey identifies a Ucast_Macs_Remote row: logical switch UUID and MAC.
type UcastKey struct {
	LS  string
	MAC l2.MAC
}

// Change is one row-level change. Which fields matter depends on Op.
type Change struct {
	Op              Op
	UUID            string // existing row (LSUpdate, UcastUpdate, McastSet on an existing row, deletes)
	VNI             l2.VNI // the logical switch the change refers to
	Name            string // LSCreate, LSUpdate
	ReplicationMode string // LSCreate, LSUpdate
	Port            string // BindingSet, BindingDelete
	PortUUID        string
	VLAN            l2.VLAN
	Rebind          bool // BindingSet replaces an existing binding of (port, VLAN)
	MAC             l2.MAC
	IP              netip.Addr
	VTEP            netip.Addr        // UcastAdd, UcastUpdate
	VTEPs           []netip.Addr      // McastSet
	BFD             map[string]string // TunnelBFD: the bfd_params entries to set
}

// Changes is a plan: an ordered list of changes plus the references the
// applier needs to resolve logical switches and locators to row UUIDs.
type Changes struct {
	List      []Change
	Conflicts []Conflict            // desired state skipped for this switch, sorted
	LSByVNI   map[l2.VNI]string     // existing logical switches torstitch uses, by VNI
	Locators  map[netip.Addr]string // existing vxlan locators, by destination IP
}

// Empty reports whether the plan changes nothing.
func (c *Changes) Empty() bool { return c == nil || len(c.List) == 0 }
