// Package vcsimlab serves a simulated vCenter (govmomi's vcsim, in process)
// with a given inventory of distributed switches, port groups, hosts with
// LLDP/CDP neighbours and VMs, and changes it the way tests need: VMs added,
// moved and removed, VLANs reconfigured (with the property change vcsim
// itself does not publish), port groups destroyed, tags attached, and the
// whole endpoint stopped and restarted on the same address.
package vcsimlab

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Spec is a lab inventory, usually read from YAML.
type Spec struct {
	Username    string          `yaml:"username"`     // default "torstitch"
	Password    string          `yaml:"password"`     // default "vcsim-password"
	TagCategory string          `yaml:"tag_category"` // default "torstitch"
	Switches    []SwitchSpec    `yaml:"switches"`
	Hosts       []HostSpec      `yaml:"hosts"`
	PortGroups  []PortGroupSpec `yaml:"port_groups"`
	VMs         []VMSpec        `yaml:"vms"`
}

// SwitchSpec is a distributed switch.
type SwitchSpec struct {
	Name    string      `yaml:"name"`
	Hosts   []string    `yaml:"hosts"`   // member hosts; default all
	Uplinks []string    `yaml:"uplinks"` // pNICs backing the switch on each host; default vmnic0, vmnic1
	PVLANs  []PVLANSpec `yaml:"pvlans"`
}

// PVLANSpec is one private-VLAN map entry.
type PVLANSpec struct {
	Primary   int32  `yaml:"primary"`
	Secondary int32  `yaml:"secondary"`
	Type      string `yaml:"type"` // promiscuous, isolated, community
}

// HostSpec is an ESXi host with its uplinks.
type HostSpec struct {
	Name string    `yaml:"name"`
	NICs []NICSpec `yaml:"nics"`
}

// NICSpec is a host uplink and the switch port it reports via LLDP or CDP.
type NICSpec struct {
	Device string         `yaml:"device"`
	LLDP   *NeighbourSpec `yaml:"lldp"`
	CDP    *NeighbourSpec `yaml:"cdp"`
}

// NeighbourSpec names the ToR switch and port an uplink is cabled to.
type NeighbourSpec struct {
	Switch string `yaml:"switch"`
	Port   string `yaml:"port"`
}

// PortGroupSpec is a distributed port group: exactly one of VLAN, Trunk or
// PVLAN (none: untagged).
type PortGroupSpec struct {
	Name   string   `yaml:"name"`
	Switch string   `yaml:"switch"` // default: the first switch
	VLAN   *int32   `yaml:"vlan"`
	Trunk  []string `yaml:"trunk"` // "100-200", "300"
	PVLAN  *int32   `yaml:"pvlan"` // secondary VLAN ID
	Tags   []string `yaml:"tags"`  // tag names in the tag category, e.g. "vni:10100"
	// Description of the port group (a published network's mark, in tests).
	Description string `yaml:"description"`
}

// VMSpec is a VM with its network cards.
type VMSpec struct {
	Name string      `yaml:"name"`
	Host string      `yaml:"host"`
	NICs []VMNICSpec `yaml:"nics"`
}

// VMNICSpec is a VM network card with a manual MAC on a port group.
type VMNICSpec struct {
	PortGroup string `yaml:"port_group"`
	MAC       string `yaml:"mac"`
}

// LoadSpec reads a YAML spec strictly (unknown keys are errors).
func LoadSpec(path string) (Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return Spec{}, fmt.Errorf("reading lab inventory: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("parsing lab inventory %s: %w", path, err)
	}
	return s, s.Validate()
}

// Validate checks names and references.
func (s Spec) Validate() error {
	hosts := map[string]bool{}
	for _, h := range s.Hosts {
		if h.Name == "" || hosts[h.Name] {
			return fmt.Errorf("host name %q empty or duplicate", h.Name)
		}
		hosts[h.Name] = true
	}
	switches := map[string]bool{}
	for _, sw := range s.Switches {
		if sw.Name == "" || switches[sw.Name] {
			return fmt.Errorf("switch name %q empty or duplicate", sw.Name)
		}
		switches[sw.Name] = true
		for _, h := range sw.Hosts {
			if !hosts[h] {
				return fmt.Errorf("switch %s: unknown host %q", sw.Name, h)
			}
		}
	}
	pgs := map[string]bool{}
	for _, pg := range s.PortGroups {
		if pg.Name == "" || pgs[pg.Name] {
			return fmt.Errorf("port group name %q empty or duplicate", pg.Name)
		}
		pgs[pg.Name] = true
		if pg.Switch != "" && !switches[pg.Switch] || len(s.Switches) == 0 {
			return fmt.Errorf("port group %s: unknown switch %q", pg.Name, pg.Switch)
		}
		n := 0
		for _, set := range []bool{pg.VLAN != nil, len(pg.Trunk) > 0, pg.PVLAN != nil} {
			if set {
				n++
			}
		}
		if n > 1 {
			return fmt.Errorf("port group %s: set one of vlan, trunk, pvlan", pg.Name)
		}
		if _, err := parseRanges(pg.Trunk); err != nil {
			return fmt.Errorf("port group %s: %w", pg.Name, err)
		}
	}
	for _, vm := range s.VMs {
		if !hosts[vm.Host] {
			return fmt.Errorf("vm %s: unknown host %q", vm.Name, vm.Host)
		}
		for _, nic := range vm.NICs {
			if !pgs[nic.PortGroup] {
				return fmt.Errorf("vm %s: unknown port group %q", vm.Name, nic.PortGroup)
			}
		}
	}
	return nil
}

func parseRanges(rs []string) ([][2]int32, error) {
	var out [][2]int32
	for _, r := range rs {
		a, b, found := strings.Cut(r, "-")
		lo, err := strconv.ParseInt(strings.TrimSpace(a), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("trunk range %q: %w", r, err)
		}
		hi := lo
		if found {
			if hi, err = strconv.ParseInt(strings.TrimSpace(b), 10, 32); err != nil {
				return nil, fmt.Errorf("trunk range %q: %w", r, err)
			}
		}
		out = append(out, [2]int32{int32(lo), int32(hi)})
	}
	return out, nil
}

// Generate builds a large inventory for benchmarks: hosts cabled to tor1 and
// tor2 (vmnic0 → tor1:ethN, vmnic1 → tor2:ethN), port groups on VLANs 2..,
// tagged "vni:<10000+VLAN>", and VMs with one NIC (manual MAC) spread over
// port groups and hosts.
func Generate(hosts, portGroups, vms int) Spec {
	s := Spec{Switches: []SwitchSpec{{Name: "DSwitch"}}}
	for i := range hosts {
		s.Hosts = append(s.Hosts, HostSpec{Name: fmt.Sprintf("esx%d", i+1), NICs: []NICSpec{
			{Device: "vmnic0", LLDP: &NeighbourSpec{Switch: "tor1", Port: fmt.Sprintf("eth%d", i+1)}},
			{Device: "vmnic1", LLDP: &NeighbourSpec{Switch: "tor2", Port: fmt.Sprintf("eth%d", i+1)}},
		}})
	}
	for i := range portGroups {
		vlan := int32(2 + i)
		s.PortGroups = append(s.PortGroups, PortGroupSpec{Name: fmt.Sprintf("pg-%d", vlan), VLAN: &vlan,
			Tags: []string{fmt.Sprintf("vni:%d", 10000+vlan)}})
	}
	for i := range vms {
		s.VMs = append(s.VMs, VMSpec{
			Name: fmt.Sprintf("vm%d", i+1), Host: s.Hosts[i%hosts].Name,
			NICs: []VMNICSpec{{PortGroup: s.PortGroups[i%portGroups].Name,
				MAC: fmt.Sprintf("00:50:56:%02x:%02x:%02x", (i>>16)&0xff, (i>>8)&0xff, i&0xff)}},
		})
	}
	return s
}
