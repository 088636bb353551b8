package apitest

import (
	"context"
	"fmt"
	"slices"

	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/l2"
)

var _ api.NetworkBackend = (*Fake)(nil)

// Networks implements api.NetworkBackend.
func (f *Fake) Networks(context.Context) (api.Networks, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.NetworkState
	n.Networks = slices.Clone(n.Networks)
	return n, f.record("Networks", nil)
}

// Publish implements api.NetworkBackend: the network is ready at once, on
// its VLAN or the first pool VLAN not used by another network (3000 up).
func (f *Fake) Publish(_ context.Context, req api.PublishRequest) (api.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("Publish", req); err != nil {
		return api.Network{}, err
	}
	for _, n := range f.NetworkState.Networks {
		if n.VNI == req.VNI {
			if n.Name == req.Name && (req.VLAN == 0 || req.VLAN == n.VLAN) {
				return n, nil
			}
			return api.Network{}, fmt.Errorf("%w: VNI %d is already published as %q", api.ErrConflict, req.VNI, n.Name)
		}
	}
	vlan := req.VLAN
	for v := l2.VLAN(3000); vlan == 0; v++ {
		if !slices.ContainsFunc(f.NetworkState.Networks, func(n api.Network) bool { return n.VLAN == v }) {
			vlan = v
		}
	}
	n := api.Network{VNI: req.VNI, Name: req.Name, VLAN: vlan, PortGroup: fmt.Sprintf("dvportgroup-%d", 100+len(f.NetworkState.Networks)),
		VMs: []string{}, State: api.NetworkReady, Source: api.NetworkSourceTorctl}
	f.NetworkState.Networks = append(f.NetworkState.Networks, n)
	return n, nil
}

// Unpublish implements api.NetworkBackend: refused while VMs are attached.
func (f *Fake) Unpublish(_ context.Context, req api.UnpublishRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("Unpublish", req); err != nil {
		return err
	}
	i := slices.IndexFunc(f.NetworkState.Networks, func(n api.Network) bool { return n.VNI == req.VNI })
	if i < 0 {
		return fmt.Errorf("%w: VNI %d is not published", api.ErrInvalid, req.VNI)
	}
	n := f.NetworkState.Networks[i]
	if len(n.VMs) > 0 {
		return fmt.Errorf("%w: VMs are attached to port group %s of VNI %d: %v (detach them first)", api.ErrConflict, n.Name, n.VNI, n.VMs)
	}
	f.NetworkState.Networks = slices.Delete(slices.Clone(f.NetworkState.Networks), i, i+1)
	return nil
}
