// Package api is toragent's operator API: JSON over HTTP on a unix socket
// (mode 0600) by default, or TCP with TLS and a bearer token. The agent
// implements Backend; torctl talks to it only through Client.
package api

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
)

// Binding sources (l2's).
const (
	SourceConfig  = l2.SourceConfig
	SourceTorctl  = l2.SourceTorctl
	SourceVCenter = l2.SourceVCenter
)

// ErrInvalid marks a request the agent refuses as bad input (HTTP 400).
// Backends wrap it: fmt.Errorf("%w: VLAN 4095 is reserved", api.ErrInvalid).
var ErrInvalid = errors.New("invalid request")

// ErrConflict marks a request that contradicts existing state (HTTP 409),
// e.g. a VLAN on a port already bound to another VNI.
var ErrConflict = errors.New("conflict")

// Binding is one desired binding and where it came from (Source).
type Binding = l2.Binding

// BindRequest binds VLAN on ports (SWITCH:PORT) to VNI.
type BindRequest struct {
	VLAN  l2.VLAN  `json:"vlan"`
	VNI   l2.VNI   `json:"vni"`
	Ports []string `json:"ports"`
}

// UnbindRequest removes the torctl binding of VLAN from ports.
type UnbindRequest struct {
	VLAN  l2.VLAN  `json:"vlan"`
	Ports []string `json:"ports"`
}

// MACs lists local MACs (learned by the switches) and remote MACs (from EVPN).
type MACs struct {
	Local  []l2.LocalMAC  `json:"local"`
	Remote []l2.RemoteMAC `json:"remote"`
}

// Switch is one switch of the pair as the agent sees it.
type Switch struct {
	Name          string              `json:"name"`
	Endpoint      string              `json:"endpoint"`
	Connected     bool                `json:"connected"`
	Since         time.Time           `json:"since,omitzero"`
	TunnelIPs     []string            `json:"tunnel_ips"`
	Faults        []string            `json:"faults"`      // switch_fault_status
	PortFaults    map[string][]string `json:"port_faults"` // port -> port_fault_status
	Ports         int                 `json:"ports"`
	LogicalSws    int                 `json:"logical_switches"`
	LocalMACs     int                 `json:"local_macs"`
	RemoteMACs    int                 `json:"remote_macs"`
	Replication   string              `json:"replication"` // source_node or service_node (fallback)
	LastReconcile time.Time           `json:"last_reconcile,omitzero"`
	LastError     string              `json:"last_error,omitempty"`
	// BFDDown lists the remote VTEPs whose tunnel BFD this switch reports
	// down (after having been up): withdrawn from its flood lists and remote MACs.
	BFDDown []string `json:"bfd_down,omitempty"`
	// Conflicts lists the VNIs and bindings this switch's last plan held
	// back: they collide with rows torstitch does not manage (or name a
	// port the switch lacks). Everything else on the switch converges.
	Conflicts []string `json:"conflicts,omitempty"`
}

// Peer is one BGP neighbor.
type Peer struct {
	Address    netip.Addr    `json:"address"`
	ASN        uint32        `json:"asn"`
	State      string        `json:"state"`
	Uptime     time.Duration `json:"uptime"`
	Received   uint64        `json:"received"`
	Accepted   uint64        `json:"accepted"`
	Advertised uint64        `json:"advertised"`
	EndOfRIB   bool          `json:"end_of_rib"`
}

// VCenter is the vCenter discovery state.
type VCenter struct {
	Configured bool      `json:"configured"`
	URL        string    `json:"url,omitempty"`
	State      string    `json:"state,omitempty"`
	Error      string    `json:"error,omitempty"`
	LastSync   time.Time `json:"last_sync,omitzero"`
	Valid      bool      `json:"valid"`
	Bindings   int       `json:"bindings"`
	VMMACs     int       `json:"vm_macs"`
	Conflicts  []string  `json:"conflicts"`
}

// Version identifies the agent build (vtep/buildinfo).
type Version struct {
	Version   string `json:"version"`
	Agent     string `json:"agent"` // the agent's configured name
	GoVersion string `json:"go_version,omitempty"`
	Revision  string `json:"revision,omitempty"`
}

// ErrorBody is the JSON body of every non-2xx answer.
type ErrorBody struct {
	Error string `json:"error"`
}

// Backend is what the agent provides to the API server.
type Backend interface {
	Version(ctx context.Context) (Version, error)
	Bindings(ctx context.Context) ([]Binding, error)
	Bind(ctx context.Context, req BindRequest) error
	Unbind(ctx context.Context, req UnbindRequest) error
	MACs(ctx context.Context, vni l2.VNI) (MACs, error) // vni 0: all
	Switches(ctx context.Context) ([]Switch, error)
	Peers(ctx context.Context) ([]Peer, error)
	VCenter(ctx context.Context) (VCenter, error)
}
