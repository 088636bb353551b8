package vdsvlan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/torstitch/torstitch/vdsvlan/publish"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/wake"
)

// Publisher creates, keeps and retires the port groups of published
// networks on the configured distributed switch. Each pass reads the
// switch's port groups and the VMs, plans with publish.Plan (pure) and
// applies the actions. The discovery Watcher then reads the port groups like
// any other and takes their VNI from the ownership mark, so a published
// network is bound on the ToRs by the same path as a discovered one.
//
// Passes run on every SetDesired/Sync, every resync interval, and with
// backoff after errors. While vCenter is unreachable nothing changes
// (fail static); the statuses keep their last values.
type Publisher struct {
	cfg   Config
	agent string
	pool  publish.Pool
	log   *slog.Logger

	trigger wake.Signal
	reqs    chan func(context.Context, *conn)

	mu       sync.Mutex
	desired  []publish.Network
	statuses []publish.Status
	state    string
	err      string
	lastPass time.Time
	counts   PublishCounts
	reqGen   uint64        // bumped by Sync/SetDesired
	doneGen  uint64        // reqGen seen by the last finished pass
	passDone chan struct{} // closed and replaced after every pass

	// Run goroutine only.
	last      map[l2.VNI]l2.VLAN
	prev      map[l2.VNI]publish.Status
	drift     map[l2.VNI]string // last drift report per network
	switchRef types.ManagedObjectReference
}

// NewPublisher validates cfg's publishing settings; agent is the owner name
// written into the ownership marks (the agent's name: unique per pair).
func NewPublisher(cfg Config, agent string, log *slog.Logger) (*Publisher, error) {
	if !cfg.Publishing() {
		return nil, errors.New("vcenter: publish_switch not configured")
	}
	if err := cfg.ValidatePublish(); err != nil {
		return nil, err
	}
	if agent == "" {
		return nil, errors.New("publisher: agent name missing")
	}
	var pool publish.Pool
	if cfg.VLANPool != "" {
		var err error
		if pool, err = publish.ParsePool(cfg.VLANPool); err != nil {
			return nil, err
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{cfg: cfg, agent: agent, pool: pool, log: log.With("component", "publisher"),
		trigger: wake.New(), reqs: make(chan func(context.Context, *conn)),
		state: StateConnecting, passDone: make(chan struct{}),
		last: map[l2.VNI]l2.VLAN{}, prev: map[l2.VNI]publish.Status{}, drift: map[l2.VNI]string{}}
	for _, n := range cfg.Publish {
		n.Source = publish.SourceConfig
		p.desired = append(p.desired, n)
	}
	return p, nil
}

// SetDesired replaces the desired networks and wakes the publisher.
func (p *Publisher) SetDesired(nets []publish.Network) {
	p.mu.Lock()
	p.desired = slices.Clone(nets)
	p.reqGen++
	p.mu.Unlock()
	p.kick()
}

func (p *Publisher) kick() { p.trigger.Notify() }

// Sync wakes the publisher and waits until a pass that started after the
// call has finished (successfully or not), or ctx ends.
func (p *Publisher) Sync(ctx context.Context) error {
	p.mu.Lock()
	p.reqGen++
	want := p.reqGen
	p.mu.Unlock()
	p.kick()
	for {
		p.mu.Lock()
		done, ch := p.doneGen >= want, p.passDone
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// ErrAttached is returned by CheckUnpublish when VMs use the port group.
var ErrAttached = errors.New("VMs are attached")

// CheckUnpublish reads vCenter now and refuses (ErrAttached, naming the
// VMs) when a VM NIC is attached to the network's port group. It fails when
// vCenter cannot be read: an unpublish is never decided on stale data.
func (p *Publisher) CheckUnpublish(ctx context.Context, vni l2.VNI) error {
	res := make(chan error, 1)
	req := func(ctx context.Context, c *conn) {
		if c == nil {
			res <- fmt.Errorf("%w: cannot check the VMs attached to VNI %d", ErrUnreachable, vni)
			return
		}
		key, _, err := p.fieldKey(ctx, c, false)
		if err != nil {
			res <- err
			return
		}
		obs, _, err := p.observe(ctx, c, key)
		if err != nil {
			res <- err
			return
		}
		if vms, pg := attached(obs, p.agent, vni); len(vms) > 0 {
			res <- fmt.Errorf("%w to port group %s of VNI %d: %s (detach them first)", ErrAttached, pg, vni, strings.Join(vms, ", "))
			return
		}
		res <- nil
	}
	select {
	case p.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// attached returns the VMs (sorted, once each) attached to the port groups
// agent owns for vni, and the name of the first such port group.
func attached(obs publish.Observed, agent string, vni l2.VNI) (vms []string, portGroup string) {
	found := false
	for _, pg := range obs.PortGroups {
		m, ok := publish.ParseMark(pg.Field)
		if !ok && pg.Field == "" {
			m, ok = publish.ParseMark(pg.Description)
		}
		if ok && m.Owner == agent && m.VNI == vni {
			if !found {
				portGroup, found = pg.Name, true
			}
			vms = append(vms, pg.VMs...)
		}
	}
	slices.Sort(vms)
	return slices.Compact(vms), portGroup
}
