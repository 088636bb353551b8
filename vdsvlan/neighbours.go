package vdsvlan

import (
	"context"
	"fmt"
	"sync"

	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/torstitch/torstitch/vdsvlan/desired"
)

// hintWorkers bounds concurrent QueryNetworkHint calls.
const hintWorkers = 8

// queryNeighbours asks hosts (all cached hosts when refs is nil) for the
// LLDP/CDP neighbour of each physical NIC. A host that cannot answer (for
// example disconnected) keeps its previous answer: fail static. Hosts that
// left the inventory are forgotten.
func (w *Watcher) queryNeighbours(ctx context.Context, c *conn, wt *watch, refs []types.ManagedObjectReference) {
	if w.cfg.HostPorts.Mode != desired.PortsLLDP {
		return
	}
	hosts := wt.hosts()
	var todo []string
	if refs == nil {
		for ref := range hosts {
			todo = append(todo, ref)
		}
		for ref := range w.neighbours {
			if _, ok := hosts[ref]; !ok {
				delete(w.neighbours, ref)
			}
		}
	} else {
		for _, r := range refs {
			todo = append(todo, r.Value)
		}
	}
	type answer struct {
		ref string
		ns  []desired.Neighbour
		err error
	}
	jobs := make(chan string)
	answers := make(chan answer)
	var wg sync.WaitGroup
	for range min(hintWorkers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ref := range jobs {
				ns, err := queryHost(ctx, c, hosts[ref])
				answers <- answer{ref, ns, err}
			}
		}()
	}
	go func() {
		for _, ref := range todo {
			jobs <- ref
		}
		close(jobs)
		wg.Wait()
		close(answers)
	}()
	for a := range answers {
		if a.err != nil {
			w.log.Warn("LLDP/CDP query failed; keeping the previous answer", "host", hosts[a.ref].name, "err", a.err)
			continue
		}
		w.neighbours[a.ref] = a.ns
	}
}

func queryHost(ctx context.Context, c *conn, h hostRef) ([]desired.Neighbour, error) {
	if h.netSys == nil {
		return nil, fmt.Errorf("host %s has no network system", h.name)
	}
	if !h.connected {
		return nil, fmt.Errorf("host %s is not connected", h.name)
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	res, err := methods.QueryNetworkHint(ctx, c.vim, &types.QueryNetworkHint{This: *h.netSys})
	if err != nil {
		return nil, fmt.Errorf("querying network hints of %s: %w", h.name, err)
	}
	return decodeHints(res.Returnval), nil
}

// readTags maps port group Refs to the names of their tags in category.
func readTags(ctx context.Context, c *conn, category string) (map[string][]string, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	m := tags.NewManager(c.rest)
	list, err := m.GetTagsForCategory(ctx, category)
	if err != nil {
		return nil, fmt.Errorf("reading tags of category %q: %w", category, err)
	}
	if len(list) == 0 {
		return map[string][]string{}, nil
	}
	names := make(map[string]string, len(list))
	ids := make([]string, 0, len(list))
	for _, t := range list {
		names[t.ID] = t.Name
		ids = append(ids, t.ID)
	}
	attached, err := m.ListAttachedObjectsOnTags(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("reading tag attachments of category %q: %w", category, err)
	}
	out := map[string][]string{}
	for _, a := range attached {
		for _, obj := range a.ObjectIDs {
			ref := obj.Reference()
			if ref.Type != "DistributedVirtualPortgroup" {
				continue
			}
			out[ref.Value] = append(out[ref.Value], names[a.TagID])
		}
	}
	return out, nil
}
