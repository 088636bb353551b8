package vdsvlan

import (
	"slices"
	"strings"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/torstitch/torstitch/vdsvlan/desired"
	"github.com/torstitch/torstitch/vdsvlan/publish"
	"github.com/torstitch/torstitch/vtep/l2"
)

// Property paths watched per object type. Distributed switches are
// "VmwareDistributedVirtualSwitch" in vCenter and "DistributedVirtualSwitch"
// in vcsim; the base type matches both in container views and property specs.
var watchedPaths = map[string][]string{
	"DistributedVirtualSwitch":    {"name", "uuid", "config"},
	"DistributedVirtualPortgroup": {"name", "key", "config"},
	"HostSystem":                  {"name", "configManager.networkSystem", "runtime.connectionState"},
	"VirtualMachine":              {"name", "runtime.host", "config.hardware.device"},
}

// kindOf maps a managed object type to the key of watchedPaths.
func kindOf(moType string) string {
	if strings.HasSuffix(moType, "DistributedVirtualSwitch") {
		return "DistributedVirtualSwitch"
	}
	return moType
}

// props is the cached property set of one managed object.
type props map[string]types.AnyType

func (p props) str(name string) string {
	s, _ := p[name].(string)
	return s
}

func (p props) ref(name string) *types.ManagedObjectReference {
	switch v := p[name].(type) {
	case types.ManagedObjectReference:
		return &v
	case *types.ManagedObjectReference:
		return v
	}
	return nil
}

// objects is the watched inventory: managed object → properties.
type objects map[types.ManagedObjectReference]props

// inventory decodes the cached objects into the pure model. neighbours holds
// the LLDP/CDP answers per host Ref, tags the tag names per port group Ref.
func (o objects) inventory(neighbours map[string][]desired.Neighbour, tags map[string][]string) desired.Inventory {
	var inv desired.Inventory
	for ref, p := range o {
		switch kindOf(ref.Type) {
		case "DistributedVirtualSwitch":
			inv.Switches = append(inv.Switches, decodeSwitch(ref, p))
		case "DistributedVirtualPortgroup":
			inv.PortGroups = append(inv.PortGroups, decodePortGroup(ref, p, o, tags[ref.Value]))
		case "HostSystem":
			inv.Hosts = append(inv.Hosts, desired.Host{Ref: ref.Value, Name: p.str("name"), Neighbours: neighbours[ref.Value]})
		case "VirtualMachine":
			inv.VMs = append(inv.VMs, decodeVM(ref, p))
		}
	}
	// Map iteration order is random; the planner's output is sorted, but
	// stable input keeps messages deterministic too.
	slices.SortFunc(inv.Switches, func(a, b desired.Switch) int { return strings.Compare(a.Ref, b.Ref) })
	slices.SortFunc(inv.PortGroups, func(a, b desired.PortGroup) int { return strings.Compare(a.Ref, b.Ref) })
	slices.SortFunc(inv.Hosts, func(a, b desired.Host) int { return strings.Compare(a.Ref, b.Ref) })
	slices.SortFunc(inv.VMs, func(a, b desired.VM) int { return strings.Compare(a.Ref, b.Ref) })
	return inv
}

func decodeSwitch(ref types.ManagedObjectReference, p props) desired.Switch {
	sw := desired.Switch{Ref: ref.Value, Name: p.str("name"), UUID: p.str("uuid")}
	cfg := dvsConfig(p)
	if cfg == nil {
		return sw
	}
	for _, h := range cfg.GetDVSConfigInfo().Host {
		if h.Config.Host == nil {
			continue
		}
		m := desired.Member{Host: h.Config.Host.Value}
		if b, ok := h.Config.Backing.(*types.DistributedVirtualSwitchHostMemberPnicBacking); ok {
			for _, spec := range b.PnicSpec {
				m.Uplinks = append(m.Uplinks, spec.PnicDevice)
			}
		}
		sw.Members = append(sw.Members, m)
	}
	if vm, ok := cfg.(*types.VMwareDVSConfigInfo); ok {
		for _, e := range vm.PvlanConfig {
			if e.PrimaryVlanId < 0 || e.PrimaryVlanId > int32(l2.MaxVLAN) || e.SecondaryVlanId < 0 || e.SecondaryVlanId > int32(l2.MaxVLAN) {
				continue
			}
			sw.PVLANs = append(sw.PVLANs, desired.PVLANEntry{
				Primary: l2.VLAN(e.PrimaryVlanId), Secondary: l2.VLAN(e.SecondaryVlanId), Type: e.PvlanType})
		}
	}
	return sw
}

// dvsConfig returns a switch's config; the property collector hands it out
// as a value or a pointer depending on the path taken.
func dvsConfig(p props) types.BaseDVSConfigInfo {
	switch v := p["config"].(type) {
	case types.VMwareDVSConfigInfo:
		return &v
	case types.DVSConfigInfo:
		return &v
	case types.BaseDVSConfigInfo:
		return v
	}
	return nil
}

func decodePortGroup(ref types.ManagedObjectReference, p props, o objects, tags []string) desired.PortGroup {
	pg := desired.PortGroup{Ref: ref.Value, Key: p.str("key"), Name: p.str("name"), Tags: tags}
	if pg.Key == "" {
		pg.Key = ref.Value
	}
	cfg, ok := p["config"].(types.DVPortgroupConfigInfo)
	if !ok {
		if c, ok2 := p["config"].(*types.DVPortgroupConfigInfo); ok2 && c != nil {
			cfg, ok = *c, true
		}
	}
	if !ok {
		pg.VLAN.Kind = desired.VLANUnknown
		return pg
	}
	if cfg.DistributedVirtualSwitch != nil {
		pg.Switch = cfg.DistributedVirtualSwitch.Value
	}
	pg.Uplink = isUplink(ref, pg.Name, cfg, o)
	pg.VLAN = decodeVLAN(cfg.DefaultPortConfig)
	if m, ok := publish.ParseMark(cfg.Description); ok {
		pg.PublishedVNI = m.VNI
	}
	return pg
}

// isUplink recognises uplink port groups: the config flag (vCenter), the
// switch's uplink list, or vcsim's "-DVUplinks-" name.
func isUplink(ref types.ManagedObjectReference, name string, cfg types.DVPortgroupConfigInfo, o objects) bool {
	if cfg.Uplink != nil && *cfg.Uplink {
		return true
	}
	if cfg.DistributedVirtualSwitch != nil {
		if sw, ok := o[*cfg.DistributedVirtualSwitch]; ok {
			if c := dvsConfig(sw); c != nil {
				if slices.ContainsFunc(c.GetDVSConfigInfo().UplinkPortgroup, func(r types.ManagedObjectReference) bool { return r.Value == ref.Value }) {
					return true
				}
			}
		}
	}
	return strings.Contains(name, "-DVUplinks-")
}

func decodeVLAN(setting types.BaseDVPortSetting) desired.VLANPolicy {
	s, ok := setting.(*types.VMwareDVSPortSetting)
	if !ok || s == nil || s.Vlan == nil {
		return desired.VLANPolicy{Kind: desired.VLANSingle} // no VLAN policy: untagged
	}
	switch v := s.Vlan.(type) {
	case *types.VmwareDistributedVirtualSwitchVlanIdSpec:
		return desired.VLANPolicy{Kind: desired.VLANSingle, ID: clampID(v.VlanId)}
	case *types.VmwareDistributedVirtualSwitchPvlanSpec:
		return desired.VLANPolicy{Kind: desired.VLANPrivate, ID: clampID(v.PvlanId)}
	case *types.VmwareDistributedVirtualSwitchTrunkVlanSpec:
		pol := desired.VLANPolicy{Kind: desired.VLANTrunk}
		for _, r := range v.VlanId {
			pol.Ranges = append(pol.Ranges, desired.VLANRange{Start: clampID(r.Start), End: clampID(r.End)})
		}
		return pol
	}
	return desired.VLANPolicy{Kind: desired.VLANUnknown}
}

func clampID(v int32) uint32 {
	if v < 0 {
		return 1 << 31 // reported as out of range
	}
	return uint32(v)
}

func decodeVM(ref types.ManagedObjectReference, p props) desired.VM {
	vm := desired.VM{Ref: ref.Value, Name: p.str("name")}
	if h := p.ref("runtime.host"); h != nil {
		vm.Host = h.Value
	}
	var devs []types.BaseVirtualDevice
	switch d := p["config.hardware.device"].(type) {
	case types.ArrayOfVirtualDevice:
		devs = d.VirtualDevice
	case []types.BaseVirtualDevice:
		devs = d
	}
	for _, dev := range devs {
		card, ok := dev.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		eth := card.GetVirtualEthernetCard()
		b, ok := eth.Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo)
		if !ok || b.Port.PortgroupKey == "" {
			continue
		}
		mac, err := l2.ParseMAC(eth.MacAddress)
		if err != nil {
			continue
		}
		vm.NICs = append(vm.NICs, desired.NIC{MAC: mac, PortGroup: b.Port.PortgroupKey})
	}
	return vm
}

// decodeHints turns a QueryNetworkHint answer into neighbours. LLDP wins over
// CDP on the same NIC; the LLDP system name (else the chassis ID) names the
// switch.
func decodeHints(hints []types.PhysicalNicHintInfo) []desired.Neighbour {
	var out []desired.Neighbour
	for _, h := range hints {
		if l := h.LldpInfo; l != nil && l.PortId != "" {
			sw := l.ChassisId
			for _, kv := range l.Parameter {
				if strings.EqualFold(kv.Key, "System Name") {
					if s, ok := kv.Value.(string); ok && s != "" {
						sw = s
					}
				}
			}
			out = append(out, desired.Neighbour{PNIC: h.Device, Switch: sw, Port: l.PortId, Protocol: "lldp"})
			continue
		}
		if c := h.ConnectedSwitchPort; c != nil && c.PortId != "" {
			sw := c.DevId
			if sw == "" {
				sw = c.SystemName
			}
			out = append(out, desired.Neighbour{PNIC: h.Device, Switch: sw, Port: c.PortId, Protocol: "cdp"})
		}
	}
	slices.SortFunc(out, func(a, b desired.Neighbour) int { return strings.Compare(a.PNIC, b.PNIC) })
	return out
}
