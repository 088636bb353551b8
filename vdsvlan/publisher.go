package vdsvlan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
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

// PublishCounts are cumulative counters, for metrics.
type PublishCounts struct {
	Created  uint64 `json:"created"`
	Deleted  uint64 `json:"deleted"`
	Restored uint64 `json:"restored"` // drift repaired (rename, VLAN, description, deleted port group recreated)
	Adopted  uint64 `json:"adopted"`  // ownership field set on a port group found with our mark only
	Errors   uint64 `json:"errors"`   // failed vCenter actions and networks entering the error state
}

// PublisherStatus is the publisher's state for the API and metrics.
type PublisherStatus struct {
	Switch   string           `json:"switch"`
	Pool     string           `json:"pool,omitempty"`
	State    string           `json:"state"` // connecting, connected, disconnected, error
	Err      string           `json:"error,omitempty"`
	LastPass time.Time        `json:"last_pass,omitzero"`
	Networks []publish.Status `json:"networks"`
	Counts   PublishCounts    `json:"counts"`
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

// Status returns the publisher's state. Desired networks not yet planned
// show as pending.
func (p *Publisher) Status() PublisherStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PublisherStatus{Switch: p.cfg.PublishSwitch, Pool: p.pool.String(), State: p.state, Err: p.err,
		LastPass: p.lastPass, Counts: p.counts}
	seen := map[l2.VNI]bool{}
	for _, s := range p.statuses {
		s.VMs = slices.Clone(s.VMs)
		st.Networks = append(st.Networks, s)
		seen[s.VNI] = true
	}
	for _, n := range p.desired {
		if !seen[n.VNI] {
			st.Networks = append(st.Networks, publish.Status{VNI: n.VNI, Name: n.Name, VLAN: n.VLAN, Source: n.Source,
				State: publish.StatePending, Error: "waiting for vCenter"})
		}
	}
	// Sources follow the desired set (a network moved from torctl to config).
	src := map[l2.VNI]string{}
	for _, n := range p.desired {
		src[n.VNI] = n.Source
	}
	for i := range st.Networks {
		if s, ok := src[st.Networks[i].VNI]; ok {
			st.Networks[i].Source = s
		}
	}
	sort.SliceStable(st.Networks, func(i, j int) bool { return st.Networks[i].VNI < st.Networks[j].VNI })
	return st
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
		var vms []string
		var names []string
		for _, pg := range obs.PortGroups {
			m, ok := publish.ParseMark(pg.Field)
			if !ok && pg.Field == "" {
				m, ok = publish.ParseMark(pg.Description)
			}
			if ok && m.Owner == p.agent && m.VNI == vni {
				vms = append(vms, pg.VMs...)
				names = append(names, pg.Name)
			}
		}
		if len(vms) > 0 {
			slices.Sort(vms)
			vms = slices.Compact(vms)
			res <- fmt.Errorf("%w to port group %s of VNI %d: %s (detach them first)", ErrAttached, names[0], vni, joinNames(vms))
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

func joinNames(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}

// Run keeps vCenter in step with the desired networks until ctx is done;
// then it returns nil.
func (p *Publisher) Run(ctx context.Context) error {
	var c *conn
	defer func() {
		if c != nil {
			c.close(ctx)
		}
	}()
	backoff := minBackoff
	for ctx.Err() == nil {
		if c == nil {
			var err error
			p.setState(StateConnecting, nil)
			cfg := p.cfg
			cfg.VNIPolicy.Mode = "" // no vAPI session needed
			if c, err = connect(ctx, cfg, p.log); err != nil {
				c = nil
				state := StateDisconnected
				if errors.Is(err, ErrLogin) || errors.Is(err, ErrCertificate) {
					state = StateError
				}
				p.setState(state, err)
				p.finishPass(p.currentGen())
			}
		}
		if c != nil {
			gen := p.currentGen()
			err := p.pass(ctx, c)
			p.finishPass(gen)
			if err != nil && ctx.Err() == nil {
				p.log.Warn("publishing networks: vCenter pass failed; keeping port groups as they are", "err", err)
				c.close(ctx)
				c = nil
				p.setState(StateDisconnected, err)
			} else {
				backoff = minBackoff
			}
		}
		wait := p.cfg.resync()
		if c == nil {
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(backoff*2, maxBackoff)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-p.trigger:
		case <-timer.C:
		case req := <-p.reqs:
			req(ctx, c)
			// The request may have found the session dead; the next pass
			// notices and reconnects.
		}
		timer.Stop()
	}
	p.setState(StateDisconnected, errors.New("stopped"))
	return nil
}

func (p *Publisher) currentGen() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reqGen
}

func (p *Publisher) finishPass(gen uint64) {
	p.mu.Lock()
	if gen > p.doneGen {
		p.doneGen = gen
	}
	close(p.passDone)
	p.passDone = make(chan struct{})
	p.mu.Unlock()
}

func (p *Publisher) setState(state string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state, p.err = state, ""
	if err != nil {
		p.err = err.Error()
	}
}

// maxRounds bounds the plan/apply rounds of one pass: a create is
// followed by a round that adopts the new port group (sets its field).
const maxRounds = 4

// pass plans and applies until nothing is left to do (or maxRounds).
// It returns an error only when vCenter could not be read or written for
// reasons other than the network's own (those go into its status).
func (p *Publisher) pass(ctx context.Context, c *conn) error {
	for round := 0; round < maxRounds; round++ {
		key, _, err := p.fieldKey(ctx, c, false)
		if err != nil {
			return err
		}
		obs, cfgs, err := p.observe(ctx, c, key)
		if err != nil {
			return err
		}
		p.mu.Lock()
		in := publish.Input{Agent: p.agent, Switch: p.cfg.PublishSwitch, Pool: p.pool, Desired: slices.Clone(p.desired),
			Obs: obs, Last: p.last, Prev: p.prev}
		p.mu.Unlock()
		acts, sts := publish.Plan(in)
		failed, err := p.apply(ctx, c, obs, cfgs, acts, sts)
		if err != nil {
			return err
		}
		if len(acts) == 0 || failed {
			return nil // a failed action is retried on the next pass
		}
	}
	return nil
}

// apply runs the actions and records the statuses.
func (p *Publisher) apply(ctx context.Context, c *conn, obs publish.Observed, cfgs map[string]*types.DVPortgroupConfigInfo,
	acts []publish.Action, sts []publish.Status) (bool, error) {
	failed := map[l2.VNI]string{}
	var fatal error
	var cnt PublishCounts
	for _, a := range acts {
		if fatal != nil {
			break
		}
		err := p.do(ctx, c, obs, cfgs, a)
		if err == nil {
			switch a.Kind {
			case publish.Create:
				cnt.Created++
			case publish.Delete:
				cnt.Deleted++
			case publish.Restore:
				cnt.Restored++
			case publish.Adopt:
				cnt.Adopted++
			}
			p.log.Info("published network: "+string(a.Kind), "vni", a.VNI, "name", a.Name, "vlan", a.VLAN, "ref", a.Ref, "why", a.Why)
			continue
		}
		cnt.Errors++
		cerr := classify(err)
		if errors.Is(cerr, ErrUnreachable) || isNotAuthenticated(err) {
			fatal = cerr
		}
		failed[a.VNI] = err.Error()
		p.log.Warn("published network: "+string(a.Kind)+" failed", "vni", a.VNI, "name", a.Name, "err", err)
	}
	prevErr := map[l2.VNI]bool{}
	p.mu.Lock()
	for _, s := range p.statuses {
		prevErr[s.VNI] = s.State == publish.StateError
	}
	for i := range sts {
		if msg, ok := failed[sts[i].VNI]; ok {
			sts[i].State, sts[i].Error = publish.StateError, msg
		}
		if sts[i].State == publish.StateError && !prevErr[sts[i].VNI] {
			cnt.Errors++
		}
		// The last drift report stays visible while the network exists.
		switch d := sts[i].Drift; {
		case d == "":
			sts[i].Drift = p.drift[sts[i].VNI]
		case d != p.drift[sts[i].VNI]:
			p.log.Warn("published network changed in vCenter", "vni", sts[i].VNI, "name", sts[i].Name, "drift", d)
			p.drift[sts[i].VNI] = d
		}
	}
	p.statuses = sts
	p.lastPass = time.Now()
	p.counts.Created += cnt.Created
	p.counts.Deleted += cnt.Deleted
	p.counts.Restored += cnt.Restored
	p.counts.Adopted += cnt.Adopted
	p.counts.Errors += cnt.Errors
	if fatal == nil {
		p.state, p.err = StateConnected, ""
	}
	p.mu.Unlock()
	for _, s := range sts {
		if s.VLAN != 0 && s.State != publish.StateRetiring {
			p.last[s.VNI] = s.VLAN
		}
		if s.Ref != "" || s.State == publish.StateReady {
			p.prev[s.VNI] = s
		}
	}
	for vni := range p.prev {
		if !slices.ContainsFunc(sts, func(s publish.Status) bool { return s.VNI == vni }) {
			delete(p.prev, vni)
		}
	}
	for vni := range p.drift {
		if !slices.ContainsFunc(sts, func(s publish.Status) bool { return s.VNI == vni }) {
			delete(p.drift, vni)
		}
	}
	return len(failed) > 0, fatal
}

// do performs one action.
func (p *Publisher) do(ctx context.Context, c *conn, obs publish.Observed, cfgs map[string]*types.DVPortgroupConfigInfo, a publish.Action) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	switch a.Kind {
	case publish.Create:
		sw, err := p.findSwitch(ctx, c)
		if err != nil {
			return err
		}
		spec := types.DVPortgroupConfigSpec{
			Name: a.Name, Type: string(types.DistributedVirtualPortgroupPortgroupTypeEarlyBinding),
			NumPorts: 8, AutoExpand: types.NewBool(true), Description: a.Mark.Description(),
			DefaultPortConfig: &types.VMwareDVSPortSetting{Vlan: &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: int32(a.VLAN)}},
		}
		task, err := object.NewDistributedVirtualSwitch(c.vim, sw).AddPortgroup(ctx, []types.DVPortgroupConfigSpec{spec})
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("creating port group %q (VNI %d, VLAN %d) on switch %s: %w", a.Name, a.VNI, a.VLAN, p.cfg.PublishSwitch, err)
		}
		return nil
	case publish.Adopt:
		key, _, err := p.fieldKey(ctx, c, true)
		if err != nil {
			return err
		}
		ref := types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: a.Ref}
		m, err := object.GetCustomFieldsManager(c.vim)
		if err != nil {
			return fmt.Errorf("custom fields: %w", err)
		}
		if err := m.Set(ctx, ref, key, a.Mark.String()); err != nil {
			return fmt.Errorf("marking port group %s (%q) as owned: %w", a.Ref, a.Name, err)
		}
		return nil
	case publish.Restore:
		ref := types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: a.Ref}
		pg := object.NewDistributedVirtualPortgroup(c.vim, ref)
		cur := cfgs[a.Ref]
		if cur == nil {
			return fmt.Errorf("port group %s vanished", a.Ref)
		}
		obsPG := findPG(obs, a.Ref)
		if obsPG != nil && obsPG.Name != a.Name {
			task, err := pg.Rename(ctx, a.Name)
			if err == nil {
				err = task.Wait(ctx)
			}
			if err != nil {
				return fmt.Errorf("renaming port group %q back to %q: %w", obsPG.Name, a.Name, err)
			}
		}
		setting := &types.VMwareDVSPortSetting{}
		if s, ok := cur.DefaultPortConfig.(*types.VMwareDVSPortSetting); ok && s != nil {
			cp := *s
			setting = &cp
		}
		setting.Vlan = &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: int32(a.VLAN)}
		spec := types.DVPortgroupConfigSpec{ConfigVersion: cur.ConfigVersion, Name: a.Name, NumPorts: cur.NumPorts,
			Type: cur.Type, Policy: cur.Policy, AutoExpand: cur.AutoExpand, PortNameFormat: cur.PortNameFormat,
			Description: a.Mark.Description(), DefaultPortConfig: setting}
		task, err := pg.Reconfigure(ctx, spec)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("restoring port group %q (VLAN %d): %w", a.Name, a.VLAN, err)
		}
		return nil
	case publish.Delete:
		ref := types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: a.Ref}
		task, err := object.NewDistributedVirtualPortgroup(c.vim, ref).Destroy(ctx)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("deleting port group %q (%s): %w", a.Name, a.Ref, err)
		}
		return nil
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

func findPG(obs publish.Observed, ref string) *publish.PortGroup {
	for i := range obs.PortGroups {
		if obs.PortGroups[i].Ref == ref {
			return &obs.PortGroups[i]
		}
	}
	return nil
}

// fieldKey returns the key of the ownership custom field, creating the
// field when create is set. Without it, -1 (no port group can carry it).
func (p *Publisher) fieldKey(ctx context.Context, c *conn, create bool) (int32, bool, error) {
	m, err := object.GetCustomFieldsManager(c.vim)
	if err != nil {
		return -1, false, fmt.Errorf("custom fields: %w", err)
	}
	key, err := m.FindKey(ctx, publish.FieldName)
	if err == nil {
		return key, true, nil
	}
	if !errors.Is(err, object.ErrKeyNameNotFound) {
		return -1, false, fmt.Errorf("reading custom field %s: %w", publish.FieldName, err)
	}
	if !create {
		return -1, false, nil
	}
	def, err := m.Add(ctx, publish.FieldName, "DistributedVirtualPortgroup", nil, nil)
	if err != nil {
		if key, err2 := m.FindKey(ctx, publish.FieldName); err2 == nil {
			return key, true, nil // created concurrently
		}
		return -1, false, fmt.Errorf("creating custom field %s: %w", publish.FieldName, err)
	}
	return def.Key, true, nil
}

func (p *Publisher) root(ctx context.Context, c *conn) (types.ManagedObjectReference, error) {
	root := c.vim.ServiceContent.RootFolder
	if p.cfg.Datacenter != "" {
		dc, err := find.NewFinder(c.vim, false).Datacenter(ctx, p.cfg.Datacenter)
		if err != nil {
			return root, fmt.Errorf("finding datacenter %q: %w", p.cfg.Datacenter, err)
		}
		root = dc.Reference()
	}
	return root, nil
}

// findSwitch returns the configured switch's reference.
func (p *Publisher) findSwitch(ctx context.Context, c *conn) (types.ManagedObjectReference, error) {
	obs, _, err := p.observe(ctx, c, -1)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	if !obs.SwitchFound {
		return types.ManagedObjectReference{}, fmt.Errorf("distributed switch %q not found", p.cfg.PublishSwitch)
	}
	return p.switchRef, nil
}

// observe reads the switch, every network and every VM in one property
// retrieval over a container view.
func (p *Publisher) observe(ctx context.Context, c *conn, fieldKey int32) (publish.Observed, map[string]*types.DVPortgroupConfigInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var obs publish.Observed
	root, err := p.root(ctx, c)
	if err != nil {
		return obs, nil, err
	}
	kinds := []string{"DistributedVirtualSwitch", "Network", "VirtualMachine"}
	v, err := view.NewManager(c.vim).CreateContainerView(ctx, root, kinds, true)
	if err != nil {
		return obs, nil, fmt.Errorf("creating container view: %w", err)
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()
	spec := types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{Obj: v.Reference(), Skip: types.NewBool(true),
			SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view"}}}},
		PropSet: []types.PropertySpec{
			{Type: "DistributedVirtualSwitch", PathSet: []string{"name", "config"}},
			{Type: "Network", PathSet: []string{"name"}},
			{Type: "DistributedVirtualPortgroup", PathSet: []string{"name", "key", "config", "customValue"}},
			{Type: "VirtualMachine", PathSet: watchedPaths["VirtualMachine"]},
		},
	}
	res, err := property.DefaultCollector(c.vim).RetrieveProperties(ctx, types.RetrieveProperties{SpecSet: []types.PropertyFilterSpec{spec}})
	if err != nil {
		return obs, nil, fmt.Errorf("reading networks and VMs: %w", err)
	}
	objs := objects{}
	for _, oc := range res.Returnval {
		pr := props{}
		for _, dp := range oc.PropSet {
			pr[dp.Name] = dp.Val
		}
		objs[oc.Obj] = pr
	}
	var swRef *types.ManagedObjectReference
	var pvlans map[uint32]uint32
	for ref, pr := range objs {
		if kindOf(ref.Type) == "DistributedVirtualSwitch" && pr.str("name") == p.cfg.PublishSwitch {
			r := ref
			swRef = &r
			sw := decodeSwitch(ref, pr)
			pvlans = map[uint32]uint32{}
			for _, e := range sw.PVLANs {
				pvlans[uint32(e.Secondary)] = uint32(e.Primary)
			}
		}
	}
	if swRef == nil {
		return obs, nil, nil
	}
	obs.SwitchFound = true
	p.switchRef = *swRef
	vmsOn := map[string][]string{} // port group key → VM names
	for ref, pr := range objs {
		if ref.Type == "VirtualMachine" {
			vm := decodeVM(ref, pr)
			for _, n := range vm.NICs {
				if !slices.Contains(vmsOn[n.PortGroup], vm.Name) {
					vmsOn[n.PortGroup] = append(vmsOn[n.PortGroup], vm.Name)
				}
			}
		}
	}
	cfgs := map[string]*types.DVPortgroupConfigInfo{}
	for ref, pr := range objs {
		switch {
		case ref.Type == "DistributedVirtualPortgroup":
			cfg := pgConfig(pr)
			if cfg == nil || cfg.DistributedVirtualSwitch == nil || cfg.DistributedVirtualSwitch.Value != swRef.Value {
				obs.OtherNames = append(obs.OtherNames, pr.str("name"))
				continue
			}
			d := decodePortGroup(ref, pr, objs, nil)
			pg := publish.PortGroup{Ref: ref.Value, Key: d.Key, Name: pr.str("name"), VLAN: -1, Description: cfg.Description,
				Field: customValue(pr, fieldKey)}
			if d.Uplink {
				obs.OtherNames = append(obs.OtherNames, pg.Name)
				continue
			}
			switch d.VLAN.Kind.String() {
			case "vlan":
				if d.VLAN.ID <= uint32(l2.MaxVLAN) {
					pg.VLAN = int(d.VLAN.ID)
					if d.VLAN.ID > 0 {
						pg.Uses = []l2.VLAN{l2.VLAN(d.VLAN.ID)}
					}
				}
			case "pvlan":
				if d.VLAN.ID <= uint32(l2.MaxVLAN) {
					pg.Uses = []l2.VLAN{l2.VLAN(d.VLAN.ID)}
					if pr, ok := pvlans[d.VLAN.ID]; ok && pr <= uint32(l2.MaxVLAN) {
						pg.Uses = append(pg.Uses, l2.VLAN(pr))
					}
				}
			}
			pg.VMs = vmsOn[pg.Key]
			slices.Sort(pg.VMs)
			cfgs[ref.Value] = cfg
			obs.PortGroups = append(obs.PortGroups, pg)
		case ref.Type != "VirtualMachine" && kindOf(ref.Type) != "DistributedVirtualSwitch":
			obs.OtherNames = append(obs.OtherNames, pr.str("name"))
		}
	}
	slices.SortFunc(obs.PortGroups, func(a, b publish.PortGroup) int {
		if a.Ref < b.Ref {
			return -1
		}
		if a.Ref > b.Ref {
			return 1
		}
		return 0
	})
	slices.Sort(obs.OtherNames)
	return obs, cfgs, nil
}

func pgConfig(pr props) *types.DVPortgroupConfigInfo {
	switch v := pr["config"].(type) {
	case types.DVPortgroupConfigInfo:
		return &v
	case *types.DVPortgroupConfigInfo:
		return v
	}
	return nil
}

// customValue returns the value of custom field key on the object.
func customValue(pr props, key int32) string {
	if key < 0 {
		return ""
	}
	var vals []types.BaseCustomFieldValue
	switch v := pr["customValue"].(type) {
	case types.ArrayOfCustomFieldValue:
		vals = v.CustomFieldValue
	case []types.BaseCustomFieldValue:
		vals = v
	}
	for _, bv := range vals {
		if sv, ok := bv.(*types.CustomFieldStringValue); ok && sv.Key == key {
			return sv.Value
		}
	}
	return ""
}
