// Package apitest provides a fake api.Backend that records its calls, for
// tests of the API server, its client and torctl.
package apitest

import (
	"context"
	"slices"
	"sync"

	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/l2"
)

// Call is one recorded Backend call.
type Call struct {
	Method string // "Bind", "MACs", ...
	Arg    any    // the request (BindRequest, UnbindRequest, l2.VNI) or nil
}

// Fake is an in-memory Backend. Set its fields before serving it (or under
// no concurrent use). Bind and Unbind edit Bindings like an agent would for
// torctl bindings; MACs filters by VNI.
type Fake struct {
	mu           sync.Mutex
	VersionInfo  api.Version
	BindingList  []api.Binding
	MACTable     api.MACs
	SwitchList   []api.Switch
	PeerList     []api.Peer
	VCenterState api.VCenter
	NetworkState api.Networks // published networks (issue 17)
	// Errs makes the named method ("Bind", ...) fail with the error.
	Errs  map[string]error
	calls []Call
}

var _ api.Backend = (*Fake)(nil)

// Calls returns the calls made so far.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// SetErr makes method fail with err (nil clears it).
func (f *Fake) SetErr(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Errs == nil {
		f.Errs = map[string]error{}
	}
	f.Errs[method] = err
}

func (f *Fake) record(method string, arg any) error {
	f.calls = append(f.calls, Call{Method: method, Arg: arg})
	return f.Errs[method]
}

// Version implements api.Backend.
func (f *Fake) Version(context.Context) (api.Version, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.VersionInfo, f.record("Version", nil)
}

// Bindings implements api.Backend.
func (f *Fake) Bindings(context.Context) ([]api.Binding, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.BindingList), f.record("Bindings", nil)
}

// Bind implements api.Backend: it adds the ports to the torctl binding of
// the VLAN.
func (f *Fake) Bind(_ context.Context, req api.BindRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("Bind", req); err != nil {
		return err
	}
	var ports []l2.PortRef
	for _, p := range req.Ports {
		pr, err := l2.ParsePortRef(p)
		if err != nil {
			return err
		}
		ports = append(ports, pr)
	}
	for i, b := range f.BindingList {
		if b.Source == api.SourceTorctl && b.VLAN == req.VLAN && b.VNI == req.VNI {
			for _, p := range ports {
				if !slices.Contains(b.Ports, p) {
					b.Ports = append(b.Ports, p)
				}
			}
			f.BindingList[i] = b
			return nil
		}
	}
	f.BindingList = append(f.BindingList, api.Binding{VLAN: req.VLAN, VNI: req.VNI, Ports: ports, Source: api.SourceTorctl})
	return nil
}

// Unbind implements api.Backend: it removes the ports from torctl bindings
// of the VLAN.
func (f *Fake) Unbind(_ context.Context, req api.UnbindRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("Unbind", req); err != nil {
		return err
	}
	var out []api.Binding
	for _, b := range f.BindingList {
		if b.Source == api.SourceTorctl && b.VLAN == req.VLAN {
			b.Ports = slices.DeleteFunc(slices.Clone(b.Ports), func(p l2.PortRef) bool {
				return slices.Contains(req.Ports, p.String())
			})
			if len(b.Ports) == 0 {
				continue
			}
		}
		out = append(out, b)
	}
	f.BindingList = out
	return nil
}

// MACs implements api.Backend.
func (f *Fake) MACs(_ context.Context, vni l2.VNI) (api.MACs, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var m api.MACs
	for _, l := range f.MACTable.Local {
		if vni == 0 || l.VNI == vni {
			m.Local = append(m.Local, l)
		}
	}
	for _, r := range f.MACTable.Remote {
		if vni == 0 || r.VNI == vni {
			m.Remote = append(m.Remote, r)
		}
	}
	return m, f.record("MACs", vni)
}

// Switches implements api.Backend.
func (f *Fake) Switches(context.Context) ([]api.Switch, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.SwitchList), f.record("Switches", nil)
}

// Peers implements api.Backend.
func (f *Fake) Peers(context.Context) ([]api.Peer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.PeerList), f.record("Peers", nil)
}

// VCenter implements api.Backend.
func (f *Fake) VCenter(context.Context) (api.VCenter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.VCenterState, f.record("VCenter", nil)
}
