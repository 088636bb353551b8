package vdsvlan

import (
	"context"
	"fmt"
	"slices"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/torstitch/torstitch/vdsvlan/publish"
	"github.com/torstitch/torstitch/vtep/l2"
)

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
	root, err := p.root(ctx, c)
	if err != nil {
		return publish.Observed{}, nil, err
	}
	objs, err := retrieveNetworks(ctx, c, root)
	if err != nil {
		return publish.Observed{}, nil, err
	}
	obs, cfgs, swRef := observed(objs, p.cfg.PublishSwitch, fieldKey)
	if swRef != nil {
		p.switchRef = *swRef
	}
	return obs, cfgs, nil
}

// retrieveNetworks reads the switches, networks and VMs below root.
func retrieveNetworks(ctx context.Context, c *conn, root types.ManagedObjectReference) (objects, error) {
	kinds := []string{"DistributedVirtualSwitch", "Network", "VirtualMachine"}
	v, err := view.NewManager(c.vim).CreateContainerView(ctx, root, kinds, true)
	if err != nil {
		return nil, fmt.Errorf("creating container view: %w", err)
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
		return nil, fmt.Errorf("reading networks and VMs: %w", err)
	}
	objs := objects{}
	for _, oc := range res.Returnval {
		pr := props{}
		for _, dp := range oc.PropSet {
			pr[dp.Name] = dp.Val
		}
		objs[oc.Obj] = pr
	}
	return objs, nil
}

// observed decodes what the publisher plans with from objs: the port
// groups of switch swName (with their VLANs, the VMs attached and the
// ownership field fieldKey) and every other network's name. It also
// returns the port groups' configurations by reference and the switch's
// reference, nil (and nothing observed) when there is no such switch.
func observed(objs objects, swName string, fieldKey int32) (publish.Observed, map[string]*types.DVPortgroupConfigInfo, *types.ManagedObjectReference) {
	var obs publish.Observed
	var swRef *types.ManagedObjectReference
	var pvlans map[uint32]uint32
	for ref, pr := range objs {
		if kindOf(ref.Type) == "DistributedVirtualSwitch" && pr.str("name") == swName {
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
	return obs, cfgs, swRef
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
