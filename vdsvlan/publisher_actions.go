package vdsvlan

import (
	"context"
	"errors"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/torstitch/torstitch/vdsvlan/publish"
	"github.com/torstitch/torstitch/vtep/l2"
)

// runActions performs the actions in order until one fails in a way that
// ends the session (vCenter unreachable, session gone). It returns the
// errors of the failed networks, the counts and that fatal error.
func (p *Publisher) runActions(ctx context.Context, c *conn, obs publish.Observed, cfgs map[string]*types.DVPortgroupConfigInfo,
	acts []publish.Action) (map[l2.VNI]string, PublishCounts, error) {
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
	return failed, cnt, fatal
}

// do performs one action.
func (p *Publisher) do(ctx context.Context, c *conn, obs publish.Observed, cfgs map[string]*types.DVPortgroupConfigInfo, a publish.Action) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	switch a.Kind {
	case publish.Create:
		return p.create(ctx, c, a)
	case publish.Adopt:
		return p.adopt(ctx, c, a)
	case publish.Restore:
		return restore(ctx, c, findPG(obs, a.Ref), cfgs[a.Ref], a)
	case publish.Delete:
		return destroy(ctx, c, a)
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

// taskDone waits for a vCenter task started without error.
func taskDone(ctx context.Context, task *object.Task, err error) error {
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

// pgRef is the reference of port group ref.
func pgRef(ref string) types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: ref}
}

// create adds the network's port group to the switch, with its VLAN and
// the ownership mark in the description.
func (p *Publisher) create(ctx context.Context, c *conn, a publish.Action) error {
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
	if err := taskDone(ctx, task, err); err != nil {
		return fmt.Errorf("creating port group %q (VNI %d, VLAN %d) on switch %s: %w", a.Name, a.VNI, a.VLAN, p.cfg.PublishSwitch, err)
	}
	return nil
}

// adopt sets the ownership field on a port group found with our mark only,
// creating the field first when vCenter lacks it.
func (p *Publisher) adopt(ctx context.Context, c *conn, a publish.Action) error {
	key, _, err := p.fieldKey(ctx, c, true)
	if err != nil {
		return err
	}
	m, err := object.GetCustomFieldsManager(c.vim)
	if err != nil {
		return fmt.Errorf("custom fields: %w", err)
	}
	if err := m.Set(ctx, pgRef(a.Ref), key, a.Mark.String()); err != nil {
		return fmt.Errorf("marking port group %s (%q) as owned: %w", a.Ref, a.Name, err)
	}
	return nil
}

// restore repairs drift: it renames the port group back (seen: as last
// observed) and sets its VLAN and description again, keeping the rest of
// its configuration cur.
func restore(ctx context.Context, c *conn, seen *publish.PortGroup, cur *types.DVPortgroupConfigInfo, a publish.Action) error {
	pg := object.NewDistributedVirtualPortgroup(c.vim, pgRef(a.Ref))
	if cur == nil {
		return fmt.Errorf("port group %s vanished", a.Ref)
	}
	if seen != nil && seen.Name != a.Name {
		task, err := pg.Rename(ctx, a.Name)
		if err := taskDone(ctx, task, err); err != nil {
			return fmt.Errorf("renaming port group %q back to %q: %w", seen.Name, a.Name, err)
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
	if err := taskDone(ctx, task, err); err != nil {
		return fmt.Errorf("restoring port group %q (VLAN %d): %w", a.Name, a.VLAN, err)
	}
	return nil
}

// destroy deletes a retired network's port group.
func destroy(ctx context.Context, c *conn, a publish.Action) error {
	task, err := object.NewDistributedVirtualPortgroup(c.vim, pgRef(a.Ref)).Destroy(ctx)
	if err := taskDone(ctx, task, err); err != nil {
		return fmt.Errorf("deleting port group %q (%s): %w", a.Name, a.Ref, err)
	}
	return nil
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
