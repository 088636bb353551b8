package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/buildinfo"
	"github.com/torstitch/torstitch/vtep/l2"
)

var _ api.Backend = (*Agent)(nil)

// applyWait bounds how long a bind or unbind waits for the switches.
const applyWait = 5 * time.Second

// Version implements api.Backend.
func (a *Agent) Version(context.Context) (api.Version, error) {
	bi := buildinfo.Get()
	return api.Version{Version: bi.Version, Agent: a.cfg.Agent.Name, GoVersion: bi.GoVersion, Revision: bi.Revision}, nil
}

// Bindings implements api.Backend: every desired binding with its source.
func (a *Agent) Bindings(context.Context) ([]api.Binding, error) {
	bs, _ := a.allBindings()
	return bs, nil
}

// parsePorts parses SWITCH:PORT arguments. With mustExist, a port the
// (connected) switch does not have is refused; unbinding accepts it, so that
// a binding on a port that went away can still be removed.
func (a *Agent) parsePorts(raw []string, mustExist bool) ([]l2.PortRef, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: no port given (--port SWITCH:PORT)", api.ErrInvalid)
	}
	var out []l2.PortRef
	for _, s := range raw {
		p, err := l2.ParsePortRef(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", api.ErrInvalid, err)
		}
		i := slices.IndexFunc(a.sw, func(x *switchState) bool { return x.name == p.Switch })
		if i < 0 {
			return nil, fmt.Errorf("%w: switch %q is not in this pair (%v)", api.ErrInvalid, p.Switch, a.cfg.SwitchNames())
		}
		if mustExist {
			if o, err := a.sw[i].client.ObservedWithoutRemote(); err == nil {
				if _, ok := o.Ports[p.Port]; !ok {
					return nil, fmt.Errorf("%w: switch %s has no port %q", api.ErrInvalid, p.Switch, p.Port)
				}
			}
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// Bind implements api.Backend: it validates, persists, and waits for the
// next reconcile pass so that the caller sees the switches updated.
func (a *Agent) Bind(ctx context.Context, req api.BindRequest) error {
	if err := req.VLAN.ValidateUsable(); err != nil {
		return fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	if err := req.VNI.Validate(); err != nil {
		return fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	ports, err := a.parsePorts(req.Ports, true)
	if err != nil {
		return err
	}
	current, _ := a.allBindings()
	for _, b := range current {
		if b.Source == api.SourceTorctl || b.VLAN != req.VLAN || b.VNI == req.VNI {
			continue
		}
		for _, p := range ports {
			if slices.Contains(b.Ports, p) {
				return fmt.Errorf("%w: %s VLAN %d is already bound to VNI %d by %s", api.ErrConflict, p, req.VLAN, b.VNI, b.Source)
			}
		}
	}
	err = a.store.Update(func(m map[l2.PortVLAN]l2.VNI) error {
		for _, p := range ports {
			k := l2.PortVLAN{Port: p, VLAN: req.VLAN}
			if v, ok := m[k]; ok && v != req.VNI {
				return fmt.Errorf("%w: %s VLAN %d is already bound to VNI %d (torctl unbind it first)", api.ErrConflict, p, req.VLAN, v)
			}
			m[k] = req.VNI
		}
		return nil
	})
	if err != nil {
		return err
	}
	a.log.Info("bound", "vlan", req.VLAN, "vni", req.VNI, "ports", ports)
	return a.settle(ctx)
}

// Unbind implements api.Backend: only torctl bindings can be removed here.
func (a *Agent) Unbind(ctx context.Context, req api.UnbindRequest) error {
	if err := req.VLAN.Validate(); err != nil {
		return fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	ports, err := a.parsePorts(req.Ports, false)
	if err != nil {
		return err
	}
	current, _ := a.allBindings()
	err = a.store.Update(func(m map[l2.PortVLAN]l2.VNI) error {
		for _, p := range ports {
			k := l2.PortVLAN{Port: p, VLAN: req.VLAN}
			if _, ok := m[k]; ok {
				delete(m, k)
				continue
			}
			for _, b := range current {
				if b.VLAN == req.VLAN && slices.Contains(b.Ports, p) {
					return fmt.Errorf("%w: %s VLAN %d is bound by %s, not torctl: change it there", api.ErrConflict, p, req.VLAN, b.Source)
				}
			}
			return fmt.Errorf("%w: %s VLAN %d is not bound", api.ErrInvalid, p, req.VLAN)
		}
		return nil
	})
	if err != nil {
		return err
	}
	a.log.Info("unbound", "vlan", req.VLAN, "ports", ports)
	return a.settle(ctx)
}

// settle waits for a reconcile pass; a timeout is not an error for the
// caller (the change is persisted and will be applied), but is logged.
func (a *Agent) settle(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, applyWait)
	defer cancel()
	if err := a.waitPass(wctx); err != nil && ctx.Err() == nil {
		a.log.Warn("change persisted but not yet applied", "err", err)
	}
	return nil
}

// MACs implements api.Backend.
func (a *Agent) MACs(_ context.Context, vni l2.VNI) (api.MACs, error) {
	var out api.MACs
	for _, s := range a.sw {
		o, err := s.client.ObservedWithoutRemote()
		if err != nil {
			continue
		}
		for _, m := range o.LocalMACs() {
			if vni == 0 || m.VNI == vni {
				out.Local = append(out.Local, m)
			}
		}
	}
	if a.speaker != nil {
		for _, m := range a.speaker.Remote().MACs {
			if vni == 0 || m.VNI == vni {
				out.Remote = append(out.Remote, m)
			}
		}
	}
	return out, nil
}

// Switches implements api.Backend.
func (a *Agent) Switches(context.Context) ([]api.Switch, error) {
	var out []api.Switch
	for _, s := range a.sw {
		st := s.client.Status()
		v := api.Switch{Name: s.name, Endpoint: st.Endpoint, Connected: st.Connected, Since: st.Since,
			PortFaults: map[string][]string{}}
		if o, err := s.client.ObservedWithoutRemote(); err == nil {
			v.TunnelIPs, v.Faults, v.Ports = o.PhysicalSwitch.TunnelIPs, o.PhysicalSwitch.SwitchFaultStatus, len(o.Ports)
			v.LogicalSws = len(o.Switches)
			v.LocalMACs = len(o.UcastLocal)
			v.RemoteMACs = s.client.RemoteCount()
			for name, p := range o.Ports {
				if len(p.PortFaultStatus) > 0 {
					v.PortFaults[name] = p.PortFaultStatus
				}
			}
		}
		s.mu.Lock()
		v.LastReconcile, v.LastError, v.Replication = s.lastReconcile, s.lastErr, s.replication
		v.BFDDown = s.bfdShown
		v.Conflicts = slices.Clone(s.conflicts)
		s.mu.Unlock()
		// The pair's binding conflicts on this switch's ports come first:
		// "tor1:eth1 VLAN 100 (torctl): ...".
		a.mu.Lock()
		var mine []string
		for _, c := range a.conflicts {
			if strings.HasPrefix(c, s.name+":") {
				mine = append(mine, c)
			}
		}
		a.mu.Unlock()
		v.Conflicts = append(mine, v.Conflicts...)
		if v.LastError == "" && !st.Connected {
			v.LastError = st.LastError
		}
		out = append(out, v)
	}
	return out, nil
}

// Peers implements api.Backend.
func (a *Agent) Peers(ctx context.Context) ([]api.Peer, error) {
	if a.speaker == nil {
		return nil, nil
	}
	ps, err := a.speaker.Peers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Peer, 0, len(ps))
	for _, p := range ps {
		out = append(out, api.Peer{Address: p.Address, ASN: p.ASN, State: p.State, Uptime: p.Uptime,
			Received: p.Received, Accepted: p.Accepted, Advertised: p.Advertised, EndOfRIB: p.EndOfRIB})
	}
	return out, nil
}

// VCenter implements api.Backend.
func (a *Agent) VCenter(context.Context) (api.VCenter, error) {
	if a.vc == nil {
		return api.VCenter{}, nil
	}
	snap := a.vc.Snapshot()
	v := api.VCenter{Configured: true, URL: a.cfg.VCenter.URL, State: snap.Status.State, Error: snap.Status.Err,
		LastSync: snap.Status.LastSync, Valid: snap.Valid, VMMACs: len(snap.MACs), Conflicts: snap.Conflicts}
	for _, b := range snap.Bindings {
		v.Bindings += len(b.Ports)
	}
	a.mu.Lock()
	v.Conflicts = append(slices.Clone(v.Conflicts), a.conflicts...)
	a.mu.Unlock()
	return v, nil
}
