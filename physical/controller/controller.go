// Package controller is torswitch's core: it keeps the switch's rows in its
// hardware_vtep database, turns the database into kernel forwarding state
// through the dataplane package, and writes the MACs the kernel learns back
// as Ucast_Macs_Local rows, with binding statistics and fault statuses.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"

	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/vtepdb"
	"github.com/torstitch/torstitch/vtep/wake"
)

// Config configures a Controller.
type Config struct {
	Name          string
	Description   string
	TunnelIP      netip.Addr
	ManagementIPs []netip.Addr
	Ports         []string
	// Managers are OVSDB targets (ssl:IP:PORT, tcp:IP:PORT) the database
	// connects out to, kept in Global.managers: switch-initiated
	// connections to a controller.
	Managers []string
	// MACLimit caps the number of Ucast_Macs_Local rows (0: no limit);
	// MACs beyond it are not reported and mac_table_exhaustion is raised.
	MACLimit int
	// StatsInterval is how often vlan_stats are refreshed (0: 10 s, <0: never).
	StatsInterval time.Duration
	// HoldDown delays removing kernel state after start: until it has
	// passed, the switch only adds to what a previous run left (make before
	// break for a database that starts empty, as the served one does).
	HoldDown time.Duration
	// ResyncInterval is how often the kernel is reconciled without any
	// event (0: 60 s, <0: never).
	ResyncInterval time.Duration
	Logger         *slog.Logger
}

// Dataplane is what the controller needs from the kernel side.
type Dataplane interface {
	Apply(ctx context.Context, cfg dataplane.Config, prune bool) (dataplane.Result, error)
	Learn(ctx context.Context, out chan<- dataplane.Learned) error
	Snapshot() ([]dataplane.Learned, error)
	Stats() (map[dataplane.BindingKey]dataplane.Counters, error)
	WatchLinks(ctx context.Context, ports []string, changed func()) error
	SnoopARP(ctx context.Context, out chan<- dataplane.HostIP) error
}

// Controller runs one switch.
type Controller struct {
	cfg Config
	ovs client.Client
	dp  Dataplane
	log *slog.Logger

	kernelDirty wake.Signal
	localDirty  wake.Signal

	learned map[l2.MACKey]dataplane.BindingKey
	hostIPs map[l2.MACKey]netip.Addr // ipaddr of local MACs, from ARP
	// bindingErrs are the bindings the last kernel pass could not program.
	bindingErrs map[dataplane.BindingKey]string
	want        Want
	applied     bool
	pruneFrom   time.Time
}

// Connect opens a libovsdb client to a hardware_vtep database at endpoint
// (tcp:IP:PORT or unix:PATH) and monitors every table. The client logs
// through log (nil: nowhere).
func Connect(ctx context.Context, endpoint string, log *slog.Logger) (client.Client, error) {
	m, err := vtepdb.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("hardware_vtep model: %w", err)
	}
	lg := logr.Discard()
	if log != nil {
		lg = logr.FromSlogHandler(log.Handler())
	}
	// Reconnect quickly (the database is usually a local ovsdb-server that
	// its supervisor restarts at once) and forever: libovsdb panics when
	// the backoff gives up.
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = 50*time.Millisecond, time.Second, 0
	c, err := client.NewOVSDBClient(m, client.WithEndpoint(endpoint), client.WithLogger(&lg),
		client.WithReconnect(10*time.Second, bo))
	if err != nil {
		return nil, fmt.Errorf("OVSDB client for %s: %w", endpoint, err)
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", endpoint, err)
	}
	if _, err := c.MonitorAll(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("monitoring %s: %w", endpoint, err)
	}
	return c, nil
}

// New returns a Controller for the database behind ovs (a connected,
// monitoring client) and the kernel behind dp.
func New(cfg Config, ovs client.Client, dp Dataplane) *Controller {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StatsInterval == 0 {
		cfg.StatsInterval = 10 * time.Second
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = 60 * time.Second
	}
	return &Controller{
		cfg: cfg, ovs: ovs, dp: dp, log: cfg.Logger,
		kernelDirty: wake.New(),
		localDirty:  wake.New(),
		learned:     map[l2.MACKey]dataplane.BindingKey{},
		hostIPs:     map[l2.MACKey]netip.Addr{},
	}
}

var errNoSwitch = errors.New("no Physical_Switch row")

// wipeHoldDown is how long kernel state is kept after the database lost the
// switch's rows, when Config.HoldDown does not say.
const wipeHoldDown = 60 * time.Second

var kernelTables = map[string]bool{
	vtepdb.PhysicalSwitchTable: true, vtepdb.PhysicalPortTable: true, vtepdb.LogicalSwitchTable: true,
	vtepdb.UcastMacsRemoteTable: true, vtepdb.McastMacsRemoteTable: true,
	vtepdb.PhysicalLocatorTable: true, vtepdb.PhysicalLocatorSetTable: true,
}

var localTables = map[string]bool{
	vtepdb.UcastMacsLocalTable: true, vtepdb.McastMacsLocalTable: true,
	vtepdb.PhysicalLocatorTable: true, vtepdb.PhysicalSwitchTable: true,
}

// ownWrite reports whether an update only touched columns torswitch itself
// writes (statistics, fault statuses), which need no reconciliation.
func ownWrite(old, new model.Model) bool {
	switch o := old.(type) {
	case *vtepdb.PhysicalPort:
		n, ok := new.(*vtepdb.PhysicalPort)
		return ok && o.Name == n.Name && maps.Equal(o.VLANBindings, n.VLANBindings)
	case *vtepdb.PhysicalSwitch:
		n, ok := new.(*vtepdb.PhysicalSwitch)
		return ok && o.Name == n.Name && slices.Equal(o.Ports, n.Ports) && slices.Equal(o.TunnelIPs, n.TunnelIPs)
	case *vtepdb.LogicalBindingStats:
		return true
	}
	return false
}

func (c *Controller) onEvent(table string) {
	if kernelTables[table] {
		c.kernelDirty.Notify()
	}
	if localTables[table] {
		c.localDirty.Notify()
	}
}

// Run creates the switch's rows, programs the kernel and keeps both in step
// until ctx ends. The kernel state is left in place on return.
func (c *Controller) Run(ctx context.Context) error {
	if err := c.ensureSwitch(ctx); err != nil {
		return err
	}
	c.pruneFrom = time.Now().Add(c.cfg.HoldDown)
	if c.cfg.HoldDown > 0 {
		t := time.AfterFunc(c.cfg.HoldDown, func() { c.kernelDirty.Notify() })
		defer t.Stop()
	}
	c.ovs.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc: func(table string, _ model.Model) { c.onEvent(table) },
		UpdateFunc: func(table string, old, new model.Model) {
			if !ownWrite(old, new) {
				c.onEvent(table)
			}
		},
		DeleteFunc: func(table string, _ model.Model) { c.onEvent(table) },
	})
	learnCh := make(chan dataplane.Learned, 4096)
	if err := c.dp.Learn(ctx, learnCh); err != nil {
		return err
	}
	if err := c.dp.WatchLinks(ctx, c.cfg.Ports, func() { c.kernelDirty.Notify() }); err != nil {
		return err
	}
	arpCh := make(chan dataplane.HostIP, 1024)
	if err := c.dp.SnoopARP(ctx, arpCh); err != nil {
		// ipaddr is optional: keep switching without it.
		c.log.Warn("no ARP snooping, Ucast_Macs_Local.ipaddr stays empty", "err", err)
	}
	if c.cfg.ResyncInterval > 0 {
		t := time.NewTicker(c.cfg.ResyncInterval)
		defer t.Stop()
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					c.kernelDirty.Notify()
				}
			}
		}()
	}
	if err := c.reconcileKernel(ctx); err != nil {
		c.log.Error("initial kernel reconcile", "err", err)
	}
	if err := c.resyncLearned(); err != nil {
		c.log.Error("reading learned MACs", "err", err)
	}
	c.localDirty.Notify()
	var statsC <-chan time.Time
	if c.cfg.StatsInterval > 0 {
		t := time.NewTicker(c.cfg.StatsInterval)
		defer t.Stop()
		statsC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.kernelDirty:
			if err := c.reconcileKernel(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("kernel reconcile", "err", err)
				// Retry; the level is recomputed from scratch.
				time.AfterFunc(time.Second, func() { c.kernelDirty.Notify() })
			}
		case ev := <-learnCh:
			c.learn(ev)
		drain:
			for {
				select {
				case ev := <-learnCh:
					c.learn(ev)
				default:
					break drain
				}
			}
			c.localDirty.Notify()
		case h := <-arpCh:
			k := l2.MACKey{VNI: h.VNI, MAC: h.MAC}
			if c.hostIPs[k] != h.IP {
				c.hostIPs[k] = h.IP
				c.localDirty.Notify()
			}
		case <-c.localDirty:
			if err := c.reconcileLocal(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("local MAC reconcile", "err", err)
				// Retry later; the level is recomputed from scratch.
				time.AfterFunc(200*time.Millisecond, func() { c.localDirty.Notify() })
			}
		case <-statsC:
			if err := c.writeStats(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("binding stats", "err", err)
			}
		}
	}
}

func (c *Controller) learn(ev dataplane.Learned) {
	if ev.Resync {
		if err := c.resyncLearned(); err != nil {
			c.log.Warn("reading learned MACs", "err", err)
		}
		return
	}
	k := l2.MACKey{VNI: ev.VNI, MAC: ev.MAC}
	if ev.Gone {
		if old, ok := c.learned[k]; ok && (ev.Binding == dataplane.BindingKey{} || ev.Binding == old) {
			delete(c.learned, k)
			delete(c.hostIPs, k)
		}
		return
	}
	c.learned[k] = ev.Binding
}

func (c *Controller) resyncLearned() error {
	snap, err := c.dp.Snapshot()
	if err != nil {
		return err
	}
	c.learned = map[l2.MACKey]dataplane.BindingKey{}
	for _, ev := range snap {
		c.learn(ev)
	}
	for k := range c.hostIPs {
		if _, ok := c.learned[k]; !ok {
			delete(c.hostIPs, k)
		}
	}
	return nil
}

// snapshot copies the database cache; remote tables only when remote is set.
func (c *Controller) snapshot(ctx context.Context, remote bool) (Snapshot, error) {
	s := Snapshot{PortNames: c.cfg.Ports, TunnelIP: c.cfg.TunnelIP}
	var sws []vtepdb.PhysicalSwitch
	err := errors.Join(
		c.ovs.WhereCache(func(p *vtepdb.PhysicalSwitch) bool { return p.Name == c.cfg.Name }).List(ctx, &sws),
		c.ovs.List(ctx, &s.Ports),
		c.ovs.List(ctx, &s.LogicalSwitch),
		c.ovs.List(ctx, &s.Locators),
		c.ovs.List(ctx, &s.LocatorSets),
		c.ovs.List(ctx, &s.UcastLocal),
		c.ovs.List(ctx, &s.McastLocal),
	)
	if remote && err == nil {
		err = errors.Join(c.ovs.List(ctx, &s.UcastRemote), c.ovs.List(ctx, &s.McastRemote))
	}
	if err != nil {
		return s, fmt.Errorf("reading database cache: %w", err)
	}
	if len(sws) != 1 {
		return s, fmt.Errorf("physical switch %q: %d rows: %w", c.cfg.Name, len(sws), errNoSwitch)
	}
	s.Switch = sws[0]
	return s, nil
}

func (c *Controller) reconcileKernel(ctx context.Context) error {
	s, err := c.snapshot(ctx, true)
	if errors.Is(err, errNoSwitch) {
		// The database lost our rows (wiped, or a new empty server after a
		// reconnect): recreate them; the kernel keeps forwarding meanwhile.
		if err := c.ensureSwitch(ctx); err != nil {
			return err
		}
		// Give the controller time to write its picture again before
		// anything is removed (make before break).
		hold := c.cfg.HoldDown
		if hold <= 0 {
			hold = wipeHoldDown
		}
		c.pruneFrom = time.Now().Add(hold)
		time.AfterFunc(hold, func() { c.kernelDirty.Notify() })
		c.log.Warn("switch rows missing from the database: recreated them, holding kernel state", "hold_down", hold)
		s, err = c.snapshot(ctx, true)
	}
	if err != nil {
		return err
	}
	want := Desired(s)
	start := time.Now()
	res, err := c.dp.Apply(ctx, want.Config, !time.Now().Before(c.pruneFrom))
	c.log.Debug("kernel applied", "switches", len(want.Config.Switches), "bindings", len(want.Config.Bindings),
		"fdb_changes", res.FDBChanges, "took", time.Since(start))
	bindingsChanged := !c.applied || !sameBindings(c.want.Config.Bindings, want.Config.Bindings)
	c.want, c.applied = want, true
	// Log a binding's error when it appears or changes, not on every pass
	// (a binding on an uncabled port stays unprogrammed until it appears).
	errs := map[dataplane.BindingKey]string{}
	for k, e := range res.BindingErrors {
		errs[k] = e.Error()
		if c.bindingErrs[k] != errs[k] {
			c.log.Warn("binding not programmed", "port", k.Port, "vlan", k.VLAN, "err", e)
		}
	}
	for k := range c.bindingErrs {
		if _, ok := errs[k]; !ok {
			c.log.Info("binding programmed", "port", k.Port, "vlan", k.VLAN)
		}
	}
	c.bindingErrs = errs
	if bindingsChanged {
		if err := c.resyncLearned(); err != nil {
			c.log.Warn("reading learned MACs", "err", err)
		}
	}
	c.localDirty.Notify()
	return errors.Join(err, c.writePortFaults(ctx, s, want.Faults))
}

func sameBindings(a, b []dataplane.Binding) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
