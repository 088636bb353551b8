package vdsvlan

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// callSlack is added to a long poll's wait for the request deadline.
const callSlack = 30 * time.Second

// watch is one property-collector filter over a container view: its first
// answer is the complete inventory, later answers are changes to it.
type watch struct {
	c       *conn
	view    *view.ContainerView
	pc      *property.Collector
	version string
	objs    objects
}

// openWatch creates the container view (over the datacenter, or the whole
// inventory) and a private property collector with one filter on it.
func openWatch(ctx context.Context, c *conn, datacenter string) (*watch, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	root := c.vim.ServiceContent.RootFolder
	if datacenter != "" {
		dc, err := find.NewFinder(c.vim, false).Datacenter(ctx, datacenter)
		if err != nil {
			return nil, fmt.Errorf("finding datacenter %q: %w", datacenter, err)
		}
		root = dc.Reference()
	}
	kinds := slices.Sorted(maps.Keys(watchedPaths))
	v, err := view.NewManager(c.vim).CreateContainerView(ctx, root, kinds, true)
	if err != nil {
		return nil, fmt.Errorf("creating container view: %w", err)
	}
	w := &watch{c: c, view: v, objs: objects{}}
	pc, err := property.DefaultCollector(c.vim).Create(ctx)
	if err != nil {
		w.close(ctx)
		return nil, fmt.Errorf("creating property collector: %w", err)
	}
	w.pc = pc
	spec := types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{
			Obj:  v.Reference(),
			Skip: types.NewBool(true),
			SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{
				Type: "ContainerView", Path: "view",
			}},
		}},
	}
	for _, kind := range kinds {
		spec.PropSet = append(spec.PropSet, types.PropertySpec{Type: kind, PathSet: watchedPaths[kind]})
	}
	if _, err := pc.CreateFilter(ctx, types.CreateFilter{Spec: spec}); err != nil {
		w.close(ctx)
		return nil, fmt.Errorf("creating property filter: %w", err)
	}
	return w, nil
}

// close destroys the collector (and its filter) and the view, best effort.
func (w *watch) close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if w.pc != nil {
		_ = w.pc.Destroy(ctx)
	}
	_ = w.view.Destroy(ctx)
}

// initial reads the complete inventory (all pages of the first update set).
func (w *watch) initial(ctx context.Context) error {
	_, err := w.poll(ctx, 0)
	return err
}

// pollResult says what one poll saw.
type pollResult struct {
	changed  bool
	newHosts []types.ManagedObjectReference
	arrived  time.Time // when the first update set arrived
}

// poll waits up to maxWait for changes, applies them to the cache and
// reports whether anything changed and which hosts appeared. Truncated
// update sets are read to the end before returning.
func (w *watch) poll(ctx context.Context, maxWait time.Duration) (pollResult, error) {
	secs := int32(maxWait / time.Second)
	var r pollResult
	refetch := map[types.ManagedObjectReference]bool{}
	for {
		cctx, cancel := context.WithTimeout(ctx, maxWait+callSlack)
		res, err := methods.WaitForUpdatesEx(cctx, w.c.vim, &types.WaitForUpdatesEx{
			This:    w.pc.Reference(),
			Version: w.version,
			Options: &types.WaitOptions{MaxWaitSeconds: &secs},
		})
		cancel()
		if err != nil {
			return r, fmt.Errorf("waiting for inventory updates: %w", err)
		}
		set := res.Returnval
		if set == nil {
			break // MaxWaitSeconds passed without changes
		}
		if r.arrived.IsZero() {
			r.arrived = time.Now()
		}
		w.version = set.Version
		for _, fs := range set.FilterSet {
			for _, u := range fs.ObjectSet {
				r.changed = true
				if w.apply(u, refetch) && kindOf(u.Obj.Type) == "HostSystem" {
					r.newHosts = append(r.newHosts, u.Obj)
				}
			}
		}
		if set.Truncated == nil || !*set.Truncated {
			break
		}
	}
	if len(refetch) > 0 {
		if err := w.fetch(ctx, slices.Collect(maps.Keys(refetch))); err != nil {
			return r, err
		}
	}
	return r, nil
}

// apply folds one object update into the cache and reports an object that
// entered. Changes below a watched path (vCenter may report
// "config.hardware.device[4000].backing") mark the object for a re-read.
func (w *watch) apply(u types.ObjectUpdate, refetch map[types.ManagedObjectReference]bool) bool {
	switch u.Kind {
	case types.ObjectUpdateKindLeave:
		delete(w.objs, u.Obj)
		delete(refetch, u.Obj)
		return false
	case types.ObjectUpdateKindEnter:
		p := props{}
		for _, ch := range u.ChangeSet {
			if ch.Op == types.PropertyChangeOpAssign {
				p[ch.Name] = ch.Val
			}
		}
		w.objs[u.Obj] = p
		return true
	}
	p := w.objs[u.Obj]
	if p == nil {
		p = props{}
		w.objs[u.Obj] = p
	}
	paths := watchedPaths[kindOf(u.Obj.Type)]
	for _, ch := range u.ChangeSet {
		if !slices.Contains(paths, ch.Name) {
			refetch[u.Obj] = true
			continue
		}
		switch ch.Op {
		case types.PropertyChangeOpAssign:
			p[ch.Name] = ch.Val
		case types.PropertyChangeOpRemove, types.PropertyChangeOpIndirectRemove:
			delete(p, ch.Name)
		default:
			refetch[u.Obj] = true
		}
	}
	return false
}

// fetch re-reads the watched properties of some objects.
func (w *watch) fetch(ctx context.Context, refs []types.ManagedObjectReference) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	byKind := map[string][]types.ManagedObjectReference{}
	for _, r := range refs {
		byKind[kindOf(r.Type)] = append(byKind[kindOf(r.Type)], r)
	}
	for kind, rs := range byKind {
		spec := types.PropertyFilterSpec{PropSet: []types.PropertySpec{{Type: kind, PathSet: watchedPaths[kind]}}}
		for _, r := range rs {
			spec.ObjectSet = append(spec.ObjectSet, types.ObjectSpec{Obj: r})
		}
		res, err := w.pc.RetrieveProperties(ctx, types.RetrieveProperties{SpecSet: []types.PropertyFilterSpec{spec}})
		if err != nil {
			if strings.Contains(err.Error(), "ManagedObjectNotFound") {
				continue // gone; the leave update follows
			}
			return fmt.Errorf("re-reading %d %s objects: %w", len(rs), kind, err)
		}
		for _, oc := range res.Returnval {
			p := props{}
			for _, dp := range oc.PropSet {
				p[dp.Name] = dp.Val
			}
			w.objs[oc.Obj] = p
		}
	}
	return nil
}

// hosts lists the cached hosts with their network system.
func (w *watch) hosts() map[string]hostRef {
	out := map[string]hostRef{}
	for ref, p := range w.objs {
		if ref.Type != "HostSystem" {
			continue
		}
		out[ref.Value] = hostRef{
			name:      p.str("name"),
			netSys:    p.ref("configManager.networkSystem"),
			connected: p["runtime.connectionState"] == nil || fmt.Sprint(p["runtime.connectionState"]) == string(types.HostSystemConnectionStateConnected),
		}
	}
	return out
}

type hostRef struct {
	name      string
	netSys    *types.ManagedObjectReference
	connected bool
}
