package vcsimlab

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func vlanSetting(pg PortGroupSpec) (*types.VMwareDVSPortSetting, error) {
	s := &types.VMwareDVSPortSetting{}
	switch {
	case pg.VLAN != nil:
		s.Vlan = &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: *pg.VLAN}
	case len(pg.Trunk) > 0:
		rs, err := parseRanges(pg.Trunk)
		if err != nil {
			return nil, err
		}
		t := &types.VmwareDistributedVirtualSwitchTrunkVlanSpec{}
		for _, r := range rs {
			t.VlanId = append(t.VlanId, types.NumericRange{Start: r[0], End: r[1]})
		}
		s.Vlan = t
	case pg.PVLAN != nil:
		s.Vlan = &types.VmwareDistributedVirtualSwitchPvlanSpec{PvlanId: *pg.PVLAN}
	default:
		s.Vlan = &types.VmwareDistributedVirtualSwitchVlanIdSpec{}
	}
	return s, nil
}

func (l *Lab) switchFor(pg PortGroupSpec) (*object.DistributedVirtualSwitch, error) {
	name := pg.Switch
	if name == "" {
		name = l.spec.Switches[0].Name
	}
	dvs := l.switches[name]
	if dvs == nil {
		return nil, fmt.Errorf("unknown switch %q", name)
	}
	return dvs, nil
}

// AddPortGroup creates a distributed port group and attaches its tags.
func (l *Lab) AddPortGroup(ctx context.Context, pg PortGroupSpec) error {
	dvs, err := l.switchFor(pg)
	if err != nil {
		return err
	}
	setting, err := vlanSetting(pg)
	if err != nil {
		return err
	}
	err = wait(ctx)(dvs.AddPortgroup(ctx, []types.DVPortgroupConfigSpec{{
		Name: pg.Name, Type: string(types.DistributedVirtualPortgroupPortgroupTypeEarlyBinding),
		NumPorts: 8, DefaultPortConfig: setting, Description: pg.Description,
	}}))
	if err != nil {
		return fmt.Errorf("adding port group %s: %w", pg.Name, err)
	}
	sim := l.model.Map().Get(dvs.Reference()).(*simulator.DistributedVirtualSwitch)
	var ref *types.ManagedObjectReference
	l.model.Map().WithLock(l.model.Service.Context, sim, func() {
		for _, r := range sim.Portgroup {
			if p, ok := l.model.Map().Get(r).(*simulator.DistributedVirtualPortgroup); ok && p.Name == pg.Name {
				ref = &r
			}
		}
	})
	if ref == nil {
		return fmt.Errorf("port group %s not found after creation", pg.Name)
	}
	l.mu.Lock()
	l.pgs[pg.Name] = *ref
	l.mu.Unlock()
	for _, t := range pg.Tags {
		if err := l.AttachTag(ctx, pg.Name, t); err != nil {
			return err
		}
	}
	return nil
}

// PortGroupRef returns the managed object reference of a port group.
func (l *Lab) PortGroupRef(name string) (types.ManagedObjectReference, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ref, ok := l.pgs[name]
	if ok {
		return ref, nil
	}
	// Created outside the lab (a published network): look it up.
	for _, e := range l.model.Map().All("DistributedVirtualPortgroup") {
		if pg, ok := e.(*simulator.DistributedVirtualPortgroup); ok && pg.Name == name {
			return pg.Self, nil
		}
	}
	return ref, fmt.Errorf("port group %q: %w", name, errUnknown)
}

// RenamePortGroup renames a port group as a vSphere admin would, and
// publishes the change. It is done in process: vcsim keeps two name fields
// for a port group and its Rename_Task updates only one of them, after
// which renaming back fails with InvalidArgument.
func (l *Lab) RenamePortGroup(_ context.Context, name, to string) error {
	ref, err := l.PortGroupRef(name)
	if err != nil {
		return err
	}
	sim := l.model.Map().Get(ref).(*simulator.DistributedVirtualPortgroup)
	l.update(sim, func() []types.PropertyChange {
		sim.Name, sim.Entity().Name, sim.Config.Name = to, to, to
		return []types.PropertyChange{{Name: "name", Val: to}, {Name: "config", Val: sim.Config}}
	})
	l.mu.Lock()
	if _, ok := l.pgs[name]; ok {
		l.pgs[to] = ref
		delete(l.pgs, name)
	}
	l.mu.Unlock()
	return nil
}

// PortGroupInfo is what a test reads back about a port group.
type PortGroupInfo struct {
	Ref         types.ManagedObjectReference
	Name        string
	VLAN        int32 // -1 unless a single VLAN
	Description string
	Switch      string // switch name
	CustomValue map[int32]string
}

// PortGroups lists the simulator's port groups (uplinks included).
func (l *Lab) PortGroups() []PortGroupInfo {
	var out []PortGroupInfo
	sctx := l.model.Service.Context
	for _, e := range l.model.Map().All("DistributedVirtualPortgroup") {
		pg, ok := e.(*simulator.DistributedVirtualPortgroup)
		if !ok {
			continue
		}
		l.model.Map().WithLock(sctx, pg, func() {
			info := PortGroupInfo{Ref: pg.Self, Name: pg.Name, VLAN: -1, Description: pg.Config.Description, CustomValue: map[int32]string{}}
			if s, ok := pg.Config.DefaultPortConfig.(*types.VMwareDVSPortSetting); ok && s != nil {
				if v, ok := s.Vlan.(*types.VmwareDistributedVirtualSwitchVlanIdSpec); ok {
					info.VLAN = v.VlanId
				}
			}
			if pg.Config.DistributedVirtualSwitch != nil {
				if sw, ok := l.model.Map().Get(*pg.Config.DistributedVirtualSwitch).(*simulator.DistributedVirtualSwitch); ok {
					info.Switch = sw.Name
				}
			}
			for _, v := range pg.CustomValue {
				if sv, ok := v.(*types.CustomFieldStringValue); ok {
					info.CustomValue[sv.Key] = sv.Value
				}
			}
			out = append(out, info)
		})
	}
	return out
}

// AttachTag attaches the tag (created in the lab's category when missing).
func (l *Lab) AttachTag(ctx context.Context, pgName, tag string) error {
	ref, err := l.PortGroupRef(pgName)
	if err != nil {
		return err
	}
	l.mu.Lock()
	id, ok := l.tagIDs[tag]
	l.mu.Unlock()
	if !ok {
		if id, err = l.tagMgr.CreateTag(ctx, &tags.Tag{Name: tag, CategoryID: l.category}); err != nil {
			return fmt.Errorf("creating tag %s: %w", tag, err)
		}
		l.mu.Lock()
		l.tagIDs[tag] = id
		l.mu.Unlock()
	}
	if err := l.tagMgr.AttachTag(ctx, id, ref); err != nil {
		return fmt.Errorf("attaching tag %s to %s: %w", tag, pgName, err)
	}
	return nil
}

// SetPortGroupVLAN reconfigures a port group's VLAN policy (pg.Name names
// it) and publishes the property change, which vcsim does not do by itself.
func (l *Lab) SetPortGroupVLAN(ctx context.Context, pg PortGroupSpec) error {
	ref, err := l.PortGroupRef(pg.Name)
	if err != nil {
		return err
	}
	setting, err := vlanSetting(pg)
	if err != nil {
		return err
	}
	sim := l.model.Map().Get(ref).(*simulator.DistributedVirtualPortgroup)
	var spec types.DVPortgroupConfigSpec
	l.model.Map().WithLock(l.model.Service.Context, sim, func() {
		c := sim.Config
		spec = types.DVPortgroupConfigSpec{ConfigVersion: c.ConfigVersion, Name: c.Name, NumPorts: c.NumPorts,
			Type: c.Type, Policy: c.Policy, AutoExpand: c.AutoExpand, Description: c.Description,
			DefaultPortConfig: setting}
	})
	obj := object.NewDistributedVirtualPortgroup(l.client.Client, ref)
	if err := wait(ctx)(obj.Reconfigure(ctx, spec)); err != nil {
		return fmt.Errorf("reconfiguring port group %s: %w", pg.Name, err)
	}
	l.update(sim, func() []types.PropertyChange {
		return []types.PropertyChange{{Name: "config", Val: sim.Config}}
	})
	return nil
}

// DestroyPortGroup deletes a port group.
func (l *Lab) DestroyPortGroup(ctx context.Context, name string) error {
	ref, err := l.PortGroupRef(name)
	if err != nil {
		return err
	}
	if err := wait(ctx)(object.NewDistributedVirtualPortgroup(l.client.Client, ref).Destroy(ctx)); err != nil {
		return fmt.Errorf("destroying port group %s: %w", name, err)
	}
	l.mu.Lock()
	delete(l.pgs, name)
	l.mu.Unlock()
	return nil
}

func (l *Lab) addVMs(ctx context.Context, vms []VMSpec) error {
	jobs := make(chan VMSpec)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for vm := range jobs {
				if first == nil {
					first = l.AddVM(ctx, vm)
				}
			}
			errs <- first
		}()
	}
	for _, vm := range vms {
		jobs <- vm
	}
	close(jobs)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// AddVM creates a VM on a host with NICs on port groups (manual MACs).
func (l *Lab) AddVM(ctx context.Context, vm VMSpec) error {
	h := l.hosts[vm.Host]
	if h == nil {
		return fmt.Errorf("vm %s: unknown host %q", vm.Name, vm.Host)
	}
	pool, err := h.ResourcePool(ctx)
	if err != nil {
		return err
	}
	cfg := types.VirtualMachineConfigSpec{
		Name: vm.Name, GuestId: string(types.VirtualMachineGuestOsIdentifierOtherGuest),
		Files: &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
	}
	for i, nic := range vm.NICs {
		pgRef, err := l.PortGroupRef(nic.PortGroup)
		if err != nil {
			return err
		}
		sim := l.model.Map().Get(pgRef).(*simulator.DistributedVirtualPortgroup)
		dvs := l.model.Map().Get(*sim.Config.DistributedVirtualSwitch).(*simulator.DistributedVirtualSwitch)
		unit := int32(7 + i)
		card := &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: types.VirtualEthernetCard{
			VirtualDevice: types.VirtualDevice{
				Key: int32(-1 - i), ControllerKey: 100, UnitNumber: &unit,
				Backing: &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
					Port: types.DistributedVirtualSwitchPortConnection{SwitchUuid: dvs.Uuid, PortgroupKey: sim.Key},
				},
			},
			AddressType: string(types.VirtualEthernetCardMacTypeManual),
			MacAddress:  nic.MAC,
		}}}
		cfg.DeviceChange = append(cfg.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: card})
	}
	task, err := l.folders.VmFolder.CreateVM(ctx, cfg, pool, h)
	if err != nil {
		return fmt.Errorf("creating vm %s: %w", vm.Name, err)
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return fmt.Errorf("creating vm %s: %w", vm.Name, err)
	}
	l.mu.Lock()
	l.vms[vm.Name] = object.NewVirtualMachine(l.client.Client, info.Result.(types.ManagedObjectReference))
	l.mu.Unlock()
	return nil
}

func (l *Lab) vm(name string) (*object.VirtualMachine, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	vm := l.vms[name]
	if vm == nil {
		return nil, fmt.Errorf("vm %q: %w", name, errUnknown)
	}
	return vm, nil
}

// RemoveVM destroys a VM.
func (l *Lab) RemoveVM(ctx context.Context, name string) error {
	vm, err := l.vm(name)
	if err != nil {
		return err
	}
	if err := wait(ctx)(vm.Destroy(ctx)); err != nil {
		return fmt.Errorf("destroying vm %s: %w", name, err)
	}
	l.mu.Lock()
	delete(l.vms, name)
	l.mu.Unlock()
	return nil
}

// MoveVM relocates a VM to another host.
func (l *Lab) MoveVM(ctx context.Context, name, host string) error {
	vm, err := l.vm(name)
	if err != nil {
		return err
	}
	h := l.hosts[host]
	if h == nil {
		return fmt.Errorf("unknown host %q", host)
	}
	pool, err := h.ResourcePool(ctx)
	if err != nil {
		return err
	}
	href, pref := h.Reference(), pool.Reference()
	spec := types.VirtualMachineRelocateSpec{Host: &href, Pool: &pref}
	if err := wait(ctx)(vm.Relocate(ctx, spec, types.VirtualMachineMovePriorityDefaultPriority)); err != nil {
		return fmt.Errorf("moving vm %s to %s: %w", name, host, err)
	}
	return nil
}

// TerminateSessions ends every session except the lab's own, as an expired
// or administratively killed session would.
func (l *Lab) TerminateSessions(ctx context.Context) (int, error) {
	sm := session.NewManager(l.client.Client)
	own, err := sm.UserSession(ctx)
	if err != nil {
		return 0, err
	}
	var m mo.SessionManager
	pc := property.DefaultCollector(l.client.Client)
	if err := pc.RetrieveOne(ctx, *l.client.ServiceContent.SessionManager, []string{"sessionList"}, &m); err != nil {
		return 0, fmt.Errorf("listing sessions: %w", err)
	}
	var ids []string
	for _, s := range m.SessionList {
		if s.Key != own.Key {
			ids = append(ids, s.Key)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	return len(ids), sm.TerminateSession(ctx, ids)
}
