package vtepdb

// Hand-written names of the hardware_vtep vocabulary that modelgen does not
// declare (it declares table names, e.g. LogicalSwitchTable, and enum
// values, e.g. LogicalSwitchReplicationModeSourceNode). Every other package
// takes these names from here; none spells them out again.

// DatabaseName is the schema's name, the database of every transaction.
const DatabaseName = "hardware_vtep"

// ColumnUUID is the column every OVSDB row has: its UUID (RFC 7047).
const ColumnUUID = "_uuid"

// Column names that torstitch spells out: in selects and in hand-built
// operations (the rows it writes come from the models, see DatabaseModel).
// Each is <model struct>Column<model field>, and TestColumnNames checks it
// against that field's ovsdb tag and the schema. Add the ones a new select
// or hand-built operation needs here.
const (
	LogicalSwitchColumnName      = "name"
	LogicalSwitchColumnTunnelKey = "tunnel_key"

	PhysicalSwitchColumnName = "name"

	PhysicalLocatorColumnEncapsulationType = "encapsulation_type"
	PhysicalLocatorColumnDstIP             = "dst_ip"

	UcastMacsRemoteColumnMAC           = "MAC"
	UcastMacsRemoteColumnLogicalSwitch = "logical_switch"
	UcastMacsRemoteColumnLocator       = "locator"
	UcastMacsRemoteColumnIpaddr        = "ipaddr"
)

// UnknownDst is the MAC column value of the Mcast_Macs_Remote and
// Mcast_Macs_Local rows that hold a logical switch's flood list (vtep(5)):
// where unknown unicast, broadcast and multicast go.
const UnknownDst = "unknown-dst"

// The ownership marker: torstitch owns a Logical_Switch whose other_config
// holds OwnerKey=OwnerValue, and writes OwnerDescription into the
// description of the logical switches it creates.
const (
	OwnerKey         = "managed-by"
	OwnerValue       = "torstitch"
	OwnerDescription = "managed by torstitch"
)

// Keys of Tunnel.bfd_params torstitch writes and of Tunnel.bfd_status it
// reads, and the bfd_status state values (vtep(5)).
const (
	BFDParamEnable = "enable"
	BFDParamMinRx  = "min_rx"
	BFDParamMinTx  = "min_tx"

	BFDStatusEnabled     = "enabled"
	BFDStatusState       = "state"
	BFDStatusRemoteState = "remote_state"

	BFDStateUp        = "up"
	BFDStateDown      = "down"
	BFDStateInit      = "init"
	BFDStateAdminDown = "admin_down"
)

// Fault names of Physical_Switch.switch_fault_status and
// Physical_Port.port_fault_status that torstitch writes or acts on
// (vtep(5)).
const (
	// SwitchFaultUnsupportedSourceNodeReplication: the switch cannot do
	// source_node replication (the agent falls back to service_node).
	SwitchFaultUnsupportedSourceNodeReplication = "unsupported_source_node_replication"
	// SwitchFaultMACTableExhaustion: the switch's MAC table is full.
	SwitchFaultMACTableExhaustion = "mac_table_exhaustion"
	// PortFaultInvalidVLANMap: a vlan_bindings entry the port cannot honour.
	PortFaultInvalidVLANMap = "invalid_vlan_map"
)
