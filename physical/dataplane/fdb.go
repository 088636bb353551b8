package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/torstitch/torstitch/vtep/l2"
)

type fdbKey struct {
	mac l2.MAC
	dst netip.Addr
}

// syncFDB makes the VXLAN device's own (self) FDB hold exactly sw's remote
// MACs and flood entries.
func (d *Dataplane) syncFDB(vx netlink.Link, sw *Switch, prune bool) (int, error) {
	idx := vx.Attrs().Index
	have, err := d.h.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		return 0, fmt.Errorf("listing FDB of %s: %w", vx.Attrs().Name, err)
	}
	want := map[fdbKey]bool{}
	for mac, vtep := range sw.Remote {
		want[fdbKey{mac, vtep}] = true
	}
	for _, vtep := range sw.Flood {
		want[fdbKey{l2.MAC{}, vtep}] = true
	}
	haveSet := map[fdbKey]bool{}
	haveMAC := map[l2.MAC]int{}
	var errs []error
	changes := 0
	for _, n := range have {
		if n.Flags&unix.NTF_SELF == 0 || n.IP == nil || len(n.HardwareAddr) != 6 {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		k := fdbKey{l2.MAC(n.HardwareAddr), ip.Unmap()}
		if want[k] && !haveSet[k] {
			haveSet[k] = true
			haveMAC[k.mac]++
			continue
		}
		if n.State&unix.NUD_PERMANENT == 0 || !prune {
			continue // not ours, or not yet
		}
		del := netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: unix.NTF_SELF, IP: n.IP, HardwareAddr: n.HardwareAddr}
		if err := d.h.NeighDel(&del); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("deleting FDB %s dst %s on %s: %w", n.HardwareAddr, n.IP, vx.Attrs().Name, err))
			continue
		}
		changes++
	}
	for k := range want {
		if haveSet[k] {
			continue
		}
		n := netlink.Neigh{
			LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: unix.NTF_SELF,
			State: unix.NUD_PERMANENT | unix.NUD_NOARP,
			IP:    net.IP(k.dst.AsSlice()), HardwareAddr: net.HardwareAddr(k.mac[:]),
		}
		var err error
		if k.mac.IsZero() || haveMAC[k.mac] > 0 {
			err = d.h.NeighAppend(&n)
		} else {
			err = d.h.NeighSet(&n) // replaces the MAC's old destination
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("adding FDB %s dst %s on %s: %w", k.mac, k.dst, vx.Attrs().Name, err))
			continue
		}
		haveMAC[k.mac]++
		changes++
	}
	return changes, errors.Join(errs...)
}

// syncNeigh installs remote host IPs as permanent neighbours of the bridge
// and pins their MACs to the VXLAN port, so that the bridge answers ARP
// requests for them on ports with neigh_suppress.
func (d *Dataplane) syncNeigh(br, vx netlink.Link, sw *Switch, prune bool) (int, error) {
	have, err := d.h.NeighList(br.Attrs().Index, unix.AF_INET)
	if err != nil {
		return 0, fmt.Errorf("listing neighbours of %s: %w", br.Attrs().Name, err)
	}
	var errs []error
	changes := 0
	seen := map[netip.Addr]bool{}
	for _, n := range have {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.State&unix.NUD_PERMANENT == 0 {
			continue
		}
		ip = ip.Unmap()
		if mac, ok := sw.Neigh[ip]; ok && len(n.HardwareAddr) == 6 && l2.MAC(n.HardwareAddr) == mac {
			seen[ip] = true
			continue
		}
		if !prune {
			continue
		}
		if err := d.h.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("deleting neighbour %s: %w", ip, err))
			continue
		}
		changes++
	}
	masters := map[l2.MAC]bool{}
	if fdb, err := d.h.NeighList(vx.Attrs().Index, unix.AF_BRIDGE); err == nil {
		for _, n := range fdb {
			if n.Flags&unix.NTF_SELF == 0 && n.State&unix.NUD_NOARP != 0 && len(n.HardwareAddr) == 6 {
				masters[l2.MAC(n.HardwareAddr)] = true
			}
		}
	}
	for ip, mac := range sw.Neigh {
		if !masters[mac] {
			f := netlink.Neigh{
				LinkIndex: vx.Attrs().Index, Family: unix.AF_BRIDGE, Flags: unix.NTF_MASTER,
				State: unix.NUD_NOARP, HardwareAddr: net.HardwareAddr(mac[:]),
			}
			if err := d.h.NeighSet(&f); err != nil {
				errs = append(errs, fmt.Errorf("pinning %s to %s: %w", mac, vx.Attrs().Name, err))
			} else {
				masters[mac] = true
				changes++
			}
		}
		if seen[ip] {
			continue
		}
		n := netlink.Neigh{
			LinkIndex: br.Attrs().Index, Family: unix.AF_INET,
			State: unix.NUD_PERMANENT, IP: net.IP(ip.AsSlice()), HardwareAddr: net.HardwareAddr(mac[:]),
		}
		if !ip.Is4() {
			n.Family = unix.AF_INET6
		}
		if err := d.h.NeighSet(&n); err != nil {
			errs = append(errs, fmt.Errorf("adding neighbour %s: %w", ip, err))
			continue
		}
		changes++
	}
	return changes, errors.Join(errs...)
}
