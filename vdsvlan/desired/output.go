package desired

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/torstitch/torstitch/vtep/l2"
)

// macs lists the VM MACs on port groups with a VNI, and reports a MAC used by
// two VMs in one VNI.
func (r *run) macs() []VMMAC {
	pgs := make(map[string]*PortGroup, len(r.inv.PortGroups))
	for i := range r.inv.PortGroups {
		pgs[r.inv.PortGroups[i].Key] = &r.inv.PortGroups[i]
	}
	var out []VMMAC
	seen := map[l2.MACKey]string{}
	for _, vm := range r.inv.VMs {
		host := ""
		if h := r.hosts[vm.Host]; h != nil {
			host = h.Name
		}
		for _, nic := range vm.NICs {
			vni, ok := r.pgVNI[nic.PortGroup]
			if !ok {
				continue
			}
			k := l2.MACKey{VNI: vni, MAC: nic.MAC}
			if other, dup := seen[k]; dup && other != vm.Name {
				r.conflict(fmt.Sprintf("MAC %s in VNI %d on VMs %s and %s", nic.MAC, vni, other, vm.Name))
			}
			seen[k] = vm.Name
			out = append(out, VMMAC{VNI: vni, MAC: nic.MAC, VM: vm.Name, Host: host, PortGroup: pgs[nic.PortGroup].Name})
		}
	}
	slices.SortFunc(out, func(a, b VMMAC) int {
		return cmp.Or(cmp.Compare(a.VNI, b.VNI), a.MAC.Compare(b.MAC),
			cmp.Compare(a.VM, b.VM), cmp.Compare(a.PortGroup, b.PortGroup))
	})
	return out
}

// conflictList formats the collected conflicts, each with the ports it
// concerns, sorted.
func (r *run) conflictList() []string {
	out := make([]string, 0, len(r.conflicts))
	for msg, ports := range r.conflicts {
		if len(ports) == 0 {
			out = append(out, msg)
			continue
		}
		slices.SortFunc(ports, l2.PortRef.Compare)
		ports = slices.Compact(ports)
		names := make([]string, 0, min(len(ports), 8))
		for i, port := range ports {
			if i == 8 {
				names = append(names, fmt.Sprintf("and %d more", len(ports)-8))
				break
			}
			names = append(names, port.String())
		}
		out = append(out, msg+" (ports "+strings.Join(names, ", ")+")")
	}
	slices.Sort(out)
	return out
}

func uniqSorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func joinVLANs(vs []l2.VLAN) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.Itoa(int(v))
	}
	return strings.Join(parts, ", ")
}
