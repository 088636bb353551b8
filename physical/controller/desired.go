package controller

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// Snapshot is the part of the hardware_vtep database the switch acts on.
type Snapshot struct {
	Switch        vtepdb.PhysicalSwitch
	Ports         []vtepdb.PhysicalPort
	LogicalSwitch []vtepdb.LogicalSwitch
	UcastRemote   []vtepdb.UcastMacsRemote
	McastRemote   []vtepdb.McastMacsRemote
	Locators      []vtepdb.PhysicalLocator
	LocatorSets   []vtepdb.PhysicalLocatorSet
	UcastLocal    []vtepdb.UcastMacsLocal
	McastLocal    []vtepdb.McastMacsLocal
	BindingStats  []vtepdb.LogicalBindingStats
	PortNames     []string // the ports torswitch was started with
	TunnelIP      netip.Addr
}

// Faults are the fault statuses the switch reports.
type Faults struct {
	// Port maps a port name to its port_fault_status.
	Port map[string][]string
}

// Want is what the database asks of the kernel (Desired computes it).
type Want struct {
	Config dataplane.Config
	Faults Faults
	// BoundLS maps the VNI of every bound logical switch to its row UUID.
	BoundLS map[l2.VNI]string
}

// Desired computes the kernel configuration and port faults from a database
// snapshot. It does no I/O.
func Desired(s Snapshot) Want {
	p := Want{
		Config:  dataplane.Config{TunnelIP: s.TunnelIP, Ports: slices.Clone(s.PortNames), Switches: map[l2.VNI]*dataplane.Switch{}},
		Faults:  Faults{Port: map[string][]string{}},
		BoundLS: map[l2.VNI]string{},
	}
	ls := map[string]vtepdb.LogicalSwitch{}
	keyCount := map[int]int{}
	for _, l := range s.LogicalSwitch {
		ls[l.UUID] = l
		if l.TunnelKey != nil {
			keyCount[*l.TunnelKey]++
		}
	}
	vniOf := func(uuid string) (l2.VNI, bool) {
		l, ok := ls[uuid]
		if !ok || l.TunnelKey == nil || keyCount[*l.TunnelKey] > 1 {
			return 0, false
		}
		v := l2.VNI(*l.TunnelKey)
		if *l.TunnelKey < 0 || v.Validate() != nil {
			return 0, false
		}
		return v, true
	}
	mine := map[string]bool{}
	for _, u := range s.Switch.Ports {
		mine[u] = true
	}
	lsOfVNI := map[l2.VNI]string{}
	for _, port := range s.Ports {
		if !mine[port.UUID] {
			continue
		}
		invalid := false
		// Several VLANs of one port may share a logical switch (vtep(5)
		// allows it, ovs-vtep and OVN's tests use it): each gets its own
		// binding port in the logical switch's bridge.
		for _, vlan := range slices.Sorted(maps.Keys(port.VLANBindings)) {
			vni, ok := vniOf(port.VLANBindings[vlan])
			if !ok || l2.VLAN(vlan).ValidateUsable() != nil || vlan < 0 {
				invalid = true
				continue
			}
			p.Config.Bindings = append(p.Config.Bindings, dataplane.Binding{Port: port.Name, VLAN: l2.VLAN(vlan), VNI: vni})
			lsOfVNI[vni] = port.VLANBindings[vlan]
			if p.Config.Switches[vni] == nil {
				p.Config.Switches[vni] = &dataplane.Switch{VNI: vni, Remote: map[l2.MAC]netip.Addr{}, Neigh: map[netip.Addr]l2.MAC{}}
			}
		}
		if invalid {
			p.Faults.Port[port.Name] = []string{vtepdb.PortFaultInvalidVLANMap}
		}
	}
	p.BoundLS = lsOfVNI
	locIP := map[string]netip.Addr{}
	for _, l := range s.Locators {
		if ip, err := netip.ParseAddr(l.DstIP); err == nil {
			locIP[l.UUID] = ip
		}
	}
	sets := map[string][]string{}
	for _, ls := range s.LocatorSets {
		sets[ls.UUID] = ls.Locators
	}
	for _, r := range s.UcastRemote {
		vni, ok := vniOf(r.LogicalSwitch)
		sw := p.Config.Switches[vni]
		if !ok || sw == nil {
			continue
		}
		mac, err := l2.ParseMAC(r.MAC)
		ip, okIP := locIP[r.Locator]
		if err != nil || !okIP || mac.ValidateUnicast() != nil {
			continue
		}
		sw.Remote[mac] = ip
		if host, err := netip.ParseAddr(r.Ipaddr); err == nil && host.Is4() {
			sw.Neigh[host] = mac
		}
	}
	for _, r := range s.McastRemote {
		vni, ok := vniOf(r.LogicalSwitch)
		sw := p.Config.Switches[vni]
		if !ok || sw == nil || r.MAC != vtepdb.UnknownDst {
			continue
		}
		var ips []netip.Addr
		for _, u := range sets[r.LocatorSet] {
			if ip, ok := locIP[u]; ok && ip != s.TunnelIP {
				ips = append(ips, ip)
			}
		}
		slices.SortFunc(ips, netip.Addr.Compare)
		ips = slices.Compact(ips)
		if mode := ls[r.LogicalSwitch].ReplicationMode; mode != nil && *mode == vtepdb.LogicalSwitchReplicationModeServiceNode && len(ips) > 1 {
			// service_node: one service node replicates; take the first.
			ips = ips[:1]
		}
		sw.Flood = append(sw.Flood, ips...)
	}
	return p
}
