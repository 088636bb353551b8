package api

import (
	"context"
	"net/http"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
)

// PathNetworks is the published-networks endpoint (issue 17).
const PathNetworks = "/v1/networks"

// Network sources (a network published in the config file cannot be
// unpublished through the API).
const (
	NetworkSourceConfig = "config"
	NetworkSourceTorctl = "torctl"
)

// Network states.
const (
	NetworkReady    = "ready"    // the port group exists as published
	NetworkPending  = "pending"  // being created or restored, or waiting for vCenter
	NetworkError    = "error"    // cannot be published; Error says why
	NetworkRetiring = "retiring" // unpublished, kept while VMs are attached
)

// Network is one published network: a VNI offered to vSphere admins as a
// distributed port group.
type Network struct {
	VNI       l2.VNI   `json:"vni"`
	Name      string   `json:"name"`
	VLAN      l2.VLAN  `json:"vlan,omitempty"`
	PortGroup string   `json:"port_group,omitempty"` // key in vCenter
	VMs       []string `json:"vms"`                  // VMs with a NIC on the port group
	State     string   `json:"state"`
	Error     string   `json:"error,omitempty"`
	Drift     string   `json:"drift,omitempty"` // the last change a vSphere admin made (restored)
	Source    string   `json:"source"`          // config or torctl
}

// Networks is the published-network state of the agent.
type Networks struct {
	Configured bool      `json:"configured"` // vcenter.publish_switch is set
	Switch     string    `json:"switch,omitempty"`
	Pool       string    `json:"pool,omitempty"`
	State      string    `json:"state,omitempty"` // the publisher's vCenter session
	Error      string    `json:"error,omitempty"`
	LastPass   time.Time `json:"last_pass,omitzero"`
	Networks   []Network `json:"networks"`
}

// PublishRequest publishes VNI as a port group named Name; VLAN 0 takes one
// from the pool.
type PublishRequest struct {
	VNI  l2.VNI  `json:"vni"`
	Name string  `json:"name"`
	VLAN l2.VLAN `json:"vlan,omitempty"`
}

// UnpublishRequest retires the port group of VNI.
type UnpublishRequest struct {
	VNI l2.VNI `json:"vni"`
}

// NetworkBackend is implemented by backends that publish networks; the
// handler serves PathNetworks only for them.
type NetworkBackend interface {
	Networks(ctx context.Context) (Networks, error)
	// Publish persists the request and answers with the network's state
	// after one attempt (pending while vCenter is away). Terminal refusals
	// (pool exhausted, name or VLAN taken, switch missing) are ErrConflict
	// and leave nothing behind.
	Publish(ctx context.Context, req PublishRequest) (Network, error)
	// Unpublish refuses (ErrConflict, naming them) while VMs are attached.
	Unpublish(ctx context.Context, req UnpublishRequest) error
}

// MaxNetworkName bounds a published network's name (vSphere's limit).
const MaxNetworkName = 80

func (h *handler) addNetworkRoutes(b Backend) {
	nb, ok := b.(NetworkBackend)
	if !ok {
		return
	}
	h.routes[PathNetworks] = map[string]route{
		http.MethodGet: {fn: func(r *http.Request) (any, error) {
			n, err := nb.Networks(r.Context())
			if n.Networks == nil {
				n.Networks = []Network{}
			}
			return n, err
		}},
		http.MethodPost: {fn: func(r *http.Request) (any, error) {
			var req PublishRequest
			if err := decodeBody(r, &req); err != nil {
				return nil, err
			}
			if err := req.VNI.Validate(); err != nil {
				return nil, badRequest("%v", err)
			}
			if err := CheckNetworkName(req.Name); err != nil {
				return nil, badRequest("%v", err)
			}
			if req.VLAN != 0 {
				if err := req.VLAN.ValidateUsable(); err != nil {
					return nil, badRequest("%v", err)
				}
			}
			n, err := nb.Publish(r.Context(), req)
			if err != nil {
				return nil, err
			}
			if n.VMs == nil {
				n.VMs = []string{}
			}
			return n, nil
		}},
		http.MethodDelete: {fn: func(r *http.Request) (any, error) {
			var req UnpublishRequest
			if err := decodeBody(r, &req); err != nil {
				return nil, err
			}
			if err := req.VNI.Validate(); err != nil {
				return nil, badRequest("%v", err)
			}
			return nil, nb.Unpublish(r.Context(), req)
		}},
	}
}

// CheckNetworkName checks a published network's (port group's) name.
func CheckNetworkName(s string) error {
	if s == "" {
		return badRequest("name missing")
	}
	if err := l2.CheckName(s); err != nil {
		return badRequest("name %s %v", l2.QuoteShort(s), err)
	}
	if len(s) > MaxNetworkName {
		return badRequest("name %s is %d bytes long (at most %d)", l2.QuoteShort(s), len(s), MaxNetworkName)
	}
	for _, c := range s {
		if c == '%' || c == '/' || c == '\\' {
			return badRequest("name %s: %%, / and \\ are not allowed in port group names", l2.QuoteShort(s))
		}
	}
	return nil
}

// Networks returns the published networks.
func (c *Client) Networks(ctx context.Context) (Networks, error) {
	var v Networks
	return v, c.do(ctx, http.MethodGet, PathNetworks, nil, &v)
}

// Publish publishes a network.
func (c *Client) Publish(ctx context.Context, req PublishRequest) (Network, error) {
	var v Network
	return v, c.do(ctx, http.MethodPost, PathNetworks, req, &v)
}

// Unpublish retires a published network.
func (c *Client) Unpublish(ctx context.Context, req UnpublishRequest) error {
	return c.do(ctx, http.MethodDelete, PathNetworks, req, nil)
}
