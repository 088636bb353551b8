package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/torstitch/torstitch/vdsvlan"
	"github.com/torstitch/torstitch/vdsvlan/publish"
	"github.com/torstitch/torstitch/vtep/agent/store"
	"github.com/torstitch/torstitch/vtep/api"
)

// Published networks (issue 17): the agent owns the desired set (config
// vcenter.publish ∪ torctl networks persisted in state_dir/networks.json)
// and hands it to a vdsvlan.Publisher. The port groups it creates come back
// through the vCenter watcher like any other, with their VNI from the
// ownership mark, so their bindings take the discovered-binding path.

// publishWait bounds how long a publish or unpublish waits for vCenter.
const publishWait = 20 * time.Second

var _ api.NetworkBackend = (*Agent)(nil)

type publishing struct {
	p      *vdsvlan.Publisher
	mu     sync.Mutex      // serializes Publish/Unpublish
	torctl []store.Network // persisted (guarded by mu)
}

// buildPublisher creates the publisher when vcenter.publish_switch is set.
func (a *Agent) buildPublisher() error {
	v := a.cfg.VCenter
	if v == nil || !v.Publishing() {
		return nil
	}
	p, err := vdsvlan.NewPublisher(*v, a.cfg.Agent.Name, a.log)
	if err != nil {
		return err
	}
	a.pub = &publishing{p: p}
	a.met.reg.MustRegister(publishCollector{a: a, m: newPublishMetrics()})
	return nil
}

// loadPublished reads the torctl networks saved in the state directory.
func (a *Agent) loadPublished() error {
	if a.pub == nil {
		return nil
	}
	nets, err := store.LoadNetworks(a.cfg.Agent.StateDir)
	if err != nil {
		return err
	}
	a.pub.mu.Lock()
	defer a.pub.mu.Unlock()
	a.pub.torctl = nets
	a.pub.p.SetDesired(a.desiredNetworks(nets))
	return nil
}

// desiredNetworks is config ∪ torctl; a VNI in the config wins.
func (a *Agent) desiredNetworks(torctl []store.Network) []publish.Network {
	var out []publish.Network
	for _, n := range a.cfg.VCenter.Publish {
		n.Source = publish.SourceConfig
		out = append(out, n)
	}
	for _, n := range torctl {
		if !slices.ContainsFunc(out, func(x publish.Network) bool { return x.VNI == n.VNI }) {
			out = append(out, publish.Network{VNI: n.VNI, Name: n.Name, VLAN: n.VLAN, Source: publish.SourceTorctl})
		}
	}
	return out
}

func (a *Agent) startPublisher(ctx context.Context, start func(func())) {
	if a.pub == nil {
		return
	}
	start(func() {
		if err := a.pub.p.Run(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("publishing networks stopped", "err", err)
		}
	})
}

func toAPINetwork(s publish.Status) api.Network {
	n := api.Network{VNI: s.VNI, Name: s.Name, VLAN: s.VLAN, PortGroup: s.PortGroup, VMs: slices.Clone(s.VMs),
		State: s.State, Error: s.Error, Drift: s.Drift, Source: s.Source}
	if n.VMs == nil {
		n.VMs = []string{}
	}
	return n
}

// Networks implements api.NetworkBackend.
func (a *Agent) Networks(context.Context) (api.Networks, error) {
	if a.pub == nil {
		return api.Networks{Networks: []api.Network{}}, nil
	}
	st := a.pub.p.Status()
	out := api.Networks{Configured: true, Switch: st.Switch, Pool: st.Pool, State: st.State, Error: st.Err,
		LastPass: st.LastPass, Networks: []api.Network{}}
	// VMs attached since the publisher's last pass are in the watcher's
	// snapshot already (it follows vCenter's updates).
	var macs []vdsvlan.VMMAC
	if a.vc != nil {
		macs = a.vc.Snapshot().MACs
	}
	for _, s := range st.Networks {
		n := toAPINetwork(s)
		for _, m := range macs {
			if m.VNI == s.VNI && m.PortGroup == s.Name && !slices.Contains(n.VMs, m.VM) {
				n.VMs = append(n.VMs, m.VM)
			}
		}
		slices.Sort(n.VMs)
		out.Networks = append(out.Networks, n)
	}
	return out, nil
}

func (a *Agent) networkStatus(vni uint32) (publish.Status, bool) {
	for _, s := range a.pub.p.Status().Networks {
		if uint32(s.VNI) == vni {
			return s, true
		}
	}
	return publish.Status{}, false
}

// Publish implements api.NetworkBackend: it persists the network, waits for
// one publisher pass and answers with the network's state. A terminal
// refusal (pool exhausted, name or VLAN taken, switch missing) is undone and
// returned as ErrConflict; with vCenter away the network stays pending.
func (a *Agent) Publish(ctx context.Context, req api.PublishRequest) (api.Network, error) {
	if a.pub == nil {
		return api.Network{}, fmt.Errorf("%w: publishing networks is not configured (vcenter.publish_switch)", api.ErrInvalid)
	}
	n := publish.Network{VNI: req.VNI, Name: req.Name, VLAN: req.VLAN, Source: publish.SourceTorctl}
	if err := n.Validate(); err != nil {
		return api.Network{}, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	if n.VLAN == 0 && a.cfg.VCenter.VLANPool == "" {
		return api.Network{}, fmt.Errorf("%w: no vcenter.vlan_pool configured: give a VLAN", api.ErrInvalid)
	}
	a.pub.mu.Lock()
	defer a.pub.mu.Unlock()
	old := a.pub.torctl
	for _, d := range a.desiredNetworks(old) {
		same := d.VNI == n.VNI && d.Name == n.Name && (n.VLAN == 0 || n.VLAN == d.VLAN)
		switch {
		case same:
			s, _ := a.networkStatus(uint32(n.VNI))
			return toAPINetwork(s), nil // already published: idempotent
		case d.VNI == n.VNI && d.Source == publish.SourceConfig:
			return api.Network{}, fmt.Errorf("%w: VNI %d is published by the config file as %q (vcenter.publish)", api.ErrConflict, n.VNI, d.Name)
		case d.VNI == n.VNI:
			return api.Network{}, fmt.Errorf("%w: VNI %d is already published as %q (VLAN %d); unpublish it first", api.ErrConflict, n.VNI, d.Name, d.VLAN)
		case d.Name == n.Name:
			return api.Network{}, fmt.Errorf("%w: name %q is already used by VNI %d", api.ErrConflict, n.Name, d.VNI)
		case n.VLAN != 0 && d.VLAN == n.VLAN:
			return api.Network{}, fmt.Errorf("%w: VLAN %d is already asked for by VNI %d", api.ErrConflict, n.VLAN, d.VNI)
		}
	}
	next := append(slices.Clone(old), store.Network{VNI: n.VNI, Name: n.Name, VLAN: n.VLAN})
	if err := a.setTorctlNetworks(next); err != nil {
		return api.Network{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	_ = a.pub.p.Sync(wctx)
	s, _ := a.networkStatus(uint32(n.VNI))
	if s.State == publish.StateError {
		if err := a.setTorctlNetworks(old); err != nil {
			a.log.Error("undoing a refused publish", "vni", n.VNI, "err", err)
		}
		_ = a.pub.p.Sync(wctx) // best effort: the next pass retires anything left
		return api.Network{}, fmt.Errorf("%w: %s", api.ErrConflict, s.Error)
	}
	if s.VNI == 0 {
		s = publish.Status{VNI: n.VNI, Name: n.Name, VLAN: n.VLAN, State: publish.StatePending, Source: publish.SourceTorctl,
			Error: "waiting for vCenter"}
	}
	a.log.Info("published network", "vni", n.VNI, "name", n.Name, "vlan", s.VLAN, "state", s.State)
	return toAPINetwork(s), nil
}

// setTorctlNetworks persists the torctl networks and hands the desired set
// to the publisher (a.pub.mu held).
func (a *Agent) setTorctlNetworks(nets []store.Network) error {
	if err := store.SaveNetworks(a.cfg.Agent.StateDir, nets); err != nil {
		return err
	}
	a.pub.torctl = nets
	a.pub.p.SetDesired(a.desiredNetworks(nets))
	return nil
}

// Unpublish implements api.NetworkBackend: only torctl networks, and only
// when no VM NIC is attached to the port group (checked in vCenter now).
func (a *Agent) Unpublish(ctx context.Context, req api.UnpublishRequest) error {
	if a.pub == nil {
		return fmt.Errorf("%w: publishing networks is not configured (vcenter.publish_switch)", api.ErrInvalid)
	}
	a.pub.mu.Lock()
	defer a.pub.mu.Unlock()
	if slices.ContainsFunc(a.cfg.VCenter.Publish, func(n publish.Network) bool { return n.VNI == req.VNI }) {
		return fmt.Errorf("%w: VNI %d is published by the config file (vcenter.publish): remove it there", api.ErrConflict, req.VNI)
	}
	i := slices.IndexFunc(a.pub.torctl, func(n store.Network) bool { return n.VNI == req.VNI })
	if i < 0 {
		return fmt.Errorf("%w: VNI %d is not published", api.ErrInvalid, req.VNI)
	}
	wctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	if err := a.pub.p.CheckUnpublish(wctx, req.VNI); err != nil {
		if errors.Is(err, vdsvlan.ErrAttached) {
			return fmt.Errorf("%w: %v", api.ErrConflict, err)
		}
		return err
	}
	if err := a.setTorctlNetworks(slices.Delete(slices.Clone(a.pub.torctl), i, i+1)); err != nil {
		return err
	}
	_ = a.pub.p.Sync(wctx)
	a.log.Info("unpublished network", "vni", req.VNI)
	return nil
}

// publishMetrics are the published-network series.
type publishMetrics struct {
	networks  *prometheus.Desc
	errors    *prometheus.Desc
	actions   *prometheus.Desc
	connected *prometheus.Desc
}

func newPublishMetrics() publishMetrics {
	return publishMetrics{
		networks: prometheus.NewDesc("torstitch_vcenter_published_networks",
			"Published networks (port groups torstitch creates in vCenter), by state.", []string{"state"}, nil),
		errors: prometheus.NewDesc("torstitch_vcenter_publish_errors_total",
			"Failed vCenter actions for published networks, and networks entering the error state.", nil, nil),
		actions: prometheus.NewDesc("torstitch_vcenter_publish_actions_total",
			"vCenter actions done for published networks (create, delete, restore after drift, adopt).", []string{"action"}, nil),
		connected: prometheus.NewDesc("torstitch_vcenter_publish_connected",
			"1 when the publisher's vCenter session is up.", nil, nil),
	}
}

// publishCollector reads the publisher's state when Prometheus scrapes.
type publishCollector struct {
	a *Agent
	m publishMetrics
}

func (c publishCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.networks
	ch <- c.m.errors
	ch <- c.m.actions
	ch <- c.m.connected
}

func (c publishCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.pub.p.Status()
	by := map[string]int{publish.StateReady: 0, publish.StatePending: 0, publish.StateError: 0, publish.StateRetiring: 0}
	for _, n := range st.Networks {
		by[n.State]++
	}
	for state, n := range by {
		ch <- prometheus.MustNewConstMetric(c.m.networks, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(c.m.errors, prometheus.CounterValue, float64(st.Counts.Errors))
	for action, n := range map[string]uint64{"create": st.Counts.Created, "delete": st.Counts.Deleted,
		"restore": st.Counts.Restored, "adopt": st.Counts.Adopted} {
		ch <- prometheus.MustNewConstMetric(c.m.actions, prometheus.CounterValue, float64(n), action)
	}
	ch <- prometheus.MustNewConstMetric(c.m.connected, prometheus.GaugeValue, boolGauge(st.State == vdsvlan.StateConnected))
}
