package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/torstitch/torstitch/physical/shim"
	"github.com/torstitch/torstitch/vtep/l2"
)

// Options configure a Dataplane.
type Options struct {
	// NetNS is the namespace to program; zero or netns.None() means the
	// current one.
	NetNS netns.NsHandle
	// MTU of the VXLAN devices and binding veths (default 1500; the
	// underlay needs 50 bytes more).
	MTU int
	// AgeingTime of learned MACs in the bridges (default 300 s).
	AgeingTime time.Duration
	// ARPSuppression sets neigh_suppress on bridge ports and installs
	// remote host IPs as neighbour entries.
	ARPSuppression bool
	Logger         *slog.Logger
}

// Dataplane programs one network namespace.
type Dataplane struct {
	opts Options
	h    *netlink.Handle
	shim *shim.Manager
	log  *slog.Logger

	mu      sync.Mutex
	ports   map[int]Binding // outer veth ifindex → binding
	bridges map[int]l2.VNI  // bridge ifindex → VNI
	fresh   map[string]bool // links whose attributes were set by this process
	// own holds the MACs of the namespace's own interfaces (veths,
	// bridges, VXLAN devices, trunks): never a host's, never reported.
	own map[l2.MAC]bool
}

// New opens a netlink handle in opts.NetNS.
func New(opts Options) (*Dataplane, error) {
	if opts.MTU == 0 {
		opts.MTU = 1500
	}
	if opts.AgeingTime == 0 {
		opts.AgeingTime = 300 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.NetNS == 0 {
		opts.NetNS = netns.None()
	}
	var h *netlink.Handle
	var err error
	if opts.NetNS.IsOpen() {
		h, err = netlink.NewHandleAt(opts.NetNS)
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return nil, fmt.Errorf("opening netlink handle: %w", err)
	}
	return &Dataplane{
		opts: opts, h: h, shim: shim.NewManager(h), log: opts.Logger,
		ports: map[int]Binding{}, bridges: map[int]l2.VNI{}, fresh: map[string]bool{},
		own: map[l2.MAC]bool{},
	}, nil
}

// Close releases the handle. The kernel state stays: a restarted torswitch
// adopts it without interrupting traffic.
func (d *Dataplane) Close() {
	d.shim.Close()
	d.h.Close()
}

// Result is what Apply reached.
type Result struct {
	// BindingErrors holds the bindings that could not be programmed.
	BindingErrors map[BindingKey]error
	// FDBChanges counts FDB and neighbour entries added or removed.
	FDBChanges int
}

// Apply makes the kernel match cfg. Without prune it only adds and updates
// (make before break: a restarted switch keeps forwarding with the state of
// its previous run until its database is complete); with prune it also
// removes the devices, VLAN mappings, FDB and neighbour entries that cfg no
// longer has.
func (d *Dataplane) Apply(ctx context.Context, cfg Config, prune bool) (Result, error) {
	res := Result{BindingErrors: map[BindingKey]error{}}
	links, err := d.h.LinkList()
	if err != nil {
		return res, fmt.Errorf("listing links: %w", err)
	}
	byName := map[string]netlink.Link{}
	own := map[l2.MAC]bool{}
	for _, l := range links {
		byName[l.Attrs().Name] = l
		if len(l.Attrs().HardwareAddr) == 6 {
			own[l2.MAC(l.Attrs().HardwareAddr)] = true
		}
	}
	d.mu.Lock()
	d.own = own
	d.mu.Unlock()
	var errs []error
	bridges := map[l2.VNI]netlink.Link{}
	vxlans := map[l2.VNI]netlink.Link{}
	for _, vni := range slices.Sorted(maps.Keys(cfg.Switches)) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		br, err := d.ensureBridge(byName, vni)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vx, err := d.ensureVxlan(byName, vni, br, cfg.TunnelIP)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		bridges[vni], vxlans[vni] = br, vx
	}

	trunkWant := map[string]map[uint16]int{}
	for _, p := range cfg.Ports {
		trunkWant[p] = map[uint16]int{}
	}
	ports := map[int]Binding{}
	wantVeth := map[string]bool{}
	for _, b := range cfg.Bindings {
		br, ok := bridges[b.VNI]
		if !ok {
			res.BindingErrors[b.Key()] = fmt.Errorf("logical switch %d not programmed", b.VNI)
			continue
		}
		trunk, ok := byName[b.Port]
		if !ok {
			res.BindingErrors[b.Key()] = fmt.Errorf("port %s not found", b.Port)
			continue
		}
		outer, inner, err := d.ensureBinding(byName, trunk, b, br)
		if err != nil {
			res.BindingErrors[b.Key()] = err
			continue
		}
		wantVeth[outer.Attrs().Name], wantVeth[inner.Attrs().Name] = true, true
		if trunkWant[b.Port] == nil {
			trunkWant[b.Port] = map[uint16]int{}
		}
		trunkWant[b.Port][uint16(b.VLAN)] = inner.Attrs().Index
		ports[outer.Attrs().Index] = b
	}
	for _, name := range slices.Sorted(maps.Keys(trunkWant)) {
		trunk, ok := byName[name]
		if !ok {
			continue
		}
		if trunk.Attrs().Flags&net.FlagUp == 0 {
			if err := d.h.LinkSetUp(trunk); err != nil {
				errs = append(errs, fmt.Errorf("setting %s up: %w", name, err))
			}
		}
		if err := d.shim.SetTrunk(trunk, trunkWant[name], prune); err != nil {
			errs = append(errs, err)
		}
	}

	d.mu.Lock()
	d.ports = ports
	d.bridges = map[int]l2.VNI{}
	for vni, br := range bridges {
		d.bridges[br.Attrs().Index] = vni
	}
	d.mu.Unlock()

	for _, vni := range slices.Sorted(maps.Keys(cfg.Switches)) {
		vx, ok := vxlans[vni]
		if !ok {
			continue
		}
		n, err := d.syncFDB(vx, cfg.Switches[vni], prune)
		res.FDBChanges += n
		if err != nil {
			errs = append(errs, err)
		}
		if d.opts.ARPSuppression {
			n, err := d.syncNeigh(bridges[vni], vx, cfg.Switches[vni], prune)
			res.FDBChanges += n
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if prune {
		errs = append(errs, d.prune(links, cfg.Switches, wantVeth)...)
	}
	return res, errors.Join(errs...)
}

// quiet readies a device torswitch just created, before it is up: its MAC
// is recorded as the switch's own (never reported as a host's), and it gets
// no IPv6 link-local address, so that it sends no frames of its own (router
// solicitations, MLD, DAD) into a logical switch.
func (d *Dataplane) quiet(l netlink.Link) error {
	if err := d.h.LinkSetIP6AddrGenMode(l, nl.IN6_ADDR_GEN_MODE_NONE); err != nil {
		return fmt.Errorf("no IPv6 address generation on %s: %w", l.Attrs().Name, err)
	}
	if len(l.Attrs().HardwareAddr) == 6 {
		d.mu.Lock()
		d.own[l2.MAC(l.Attrs().HardwareAddr)] = true
		d.mu.Unlock()
	}
	return nil
}

func (d *Dataplane) ensureBridge(byName map[string]netlink.Link, vni l2.VNI) (netlink.Link, error) {
	name := bridgeName(vni)
	ageing := uint32(d.opts.AgeingTime / (10 * time.Millisecond))
	l, ok := byName[name]
	if !ok {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, AgeingTime: &ageing}
		if err := d.h.LinkAdd(br); err != nil {
			return nil, fmt.Errorf("adding bridge %s: %w", name, err)
		}
		var err error
		if l, err = d.h.LinkByName(name); err != nil {
			return nil, fmt.Errorf("bridge %s: %w", name, err)
		}
		if err := d.quiet(l); err != nil {
			return nil, err
		}
		d.fresh[name] = true
	} else if !d.fresh[name] {
		// Adopted from a previous run: make sure the ageing time is current.
		if err := d.h.LinkModify(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Index: l.Attrs().Index, Name: name}, AgeingTime: &ageing}); err != nil {
			d.log.Warn("setting bridge ageing time", "bridge", name, "err", err)
		}
		d.fresh[name] = true
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := d.h.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("setting %s up: %w", name, err)
		}
	}
	return l, nil
}

func (d *Dataplane) ensureVxlan(byName map[string]netlink.Link, vni l2.VNI, br netlink.Link, local netip.Addr) (netlink.Link, error) {
	name := vxlanName(vni)
	l, ok := byName[name]
	if ok {
		vx, isVx := l.(*netlink.Vxlan)
		if !isVx || vx.VxlanId != int(vni) || !vx.SrcAddr.Equal(net.IP(local.AsSlice())) || vx.Learning {
			d.log.Info("replacing vxlan device", "dev", name)
			if err := d.h.LinkDel(l); err != nil {
				return nil, fmt.Errorf("deleting %s: %w", name, err)
			}
			ok = false
		}
	}
	if !ok {
		vx := &netlink.Vxlan{
			LinkAttrs: netlink.LinkAttrs{Name: name, MTU: d.opts.MTU, MasterIndex: br.Attrs().Index},
			VxlanId:   int(vni),
			SrcAddr:   net.IP(local.AsSlice()),
			Port:      4789,
			Learning:  false,
		}
		if err := d.h.LinkAdd(vx); err != nil {
			return nil, fmt.Errorf("adding vxlan %s: %w", name, err)
		}
		var err error
		if l, err = d.h.LinkByName(name); err != nil {
			return nil, fmt.Errorf("vxlan %s: %w", name, err)
		}
		if err := d.quiet(l); err != nil {
			return nil, err
		}
		delete(d.fresh, name)
	}
	return l, d.ensurePort(l, br, d.opts.ARPSuppression)
}

// ensurePort makes l an up port of bridge br. With suppress (the VXLAN port
// when ARP suppression is on) it sets neigh_suppress: the bridge then answers
// ARP requests from the other (local) ports for IPs it has neighbour entries
// for, and does not flood them into the tunnel.
func (d *Dataplane) ensurePort(l, br netlink.Link, suppress bool) error {
	name := l.Attrs().Name
	if l.Attrs().MasterIndex != br.Attrs().Index {
		if err := d.h.LinkSetMasterByIndex(l, br.Attrs().Index); err != nil {
			return fmt.Errorf("attaching %s to %s: %w", name, br.Attrs().Name, err)
		}
		delete(d.fresh, name)
	}
	if !d.fresh[name] {
		if suppress {
			if err := d.h.LinkSetBrNeighSuppress(l, true); err != nil {
				return fmt.Errorf("neigh_suppress on %s: %w", name, err)
			}
		}
		d.fresh[name] = true
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := d.h.LinkSetUp(l); err != nil {
			return fmt.Errorf("setting %s up: %w", name, err)
		}
	}
	return nil
}

// ensureBinding creates the binding's veth pair, plugs the outer end into
// the bridge and attaches the return program to the inner end.
func (d *Dataplane) ensureBinding(byName map[string]netlink.Link, trunk netlink.Link, b Binding, br netlink.Link) (outer, inner netlink.Link, err error) {
	on, in := vethNames(trunk.Attrs().Index, b.VLAN)
	outer, okO := byName[on]
	inner, okI := byName[in]
	if !okO || !okI {
		if okO {
			_ = d.h.LinkDel(outer)
		}
		if okI {
			_ = d.h.LinkDel(inner)
		}
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: on, MTU: d.opts.MTU}, PeerName: in}
		if err := d.h.LinkAdd(v); err != nil {
			return nil, nil, fmt.Errorf("adding veth %s: %w", on, err)
		}
		if outer, err = d.h.LinkByName(on); err != nil {
			return nil, nil, fmt.Errorf("veth %s: %w", on, err)
		}
		if inner, err = d.h.LinkByName(in); err != nil {
			return nil, nil, fmt.Errorf("veth %s: %w", in, err)
		}
		for _, l := range []netlink.Link{outer, inner} {
			if err := d.quiet(l); err != nil {
				return nil, nil, err
			}
		}
		delete(d.fresh, on)
	}
	if err := d.ensurePort(outer, br, false); err != nil {
		return nil, nil, err
	}
	if inner.Attrs().Flags&net.FlagUp == 0 {
		if err := d.h.LinkSetUp(inner); err != nil {
			return nil, nil, fmt.Errorf("setting %s up: %w", in, err)
		}
	}
	if err := d.shim.SetReturn(inner, trunk.Attrs().Index, uint16(b.VLAN)); err != nil {
		return nil, nil, err
	}
	return outer, inner, nil
}

func (d *Dataplane) prune(links []netlink.Link, switches map[l2.VNI]*Switch, wantVeth map[string]bool) []error {
	var errs []error
	del := func(l netlink.Link) {
		if err := d.h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("deleting %s: %w", l.Attrs().Name, err))
		} else {
			d.log.Info("removed", "dev", l.Attrs().Name)
			delete(d.fresh, l.Attrs().Name)
		}
	}
	for _, l := range links {
		name := l.Attrs().Name
		if ownedVeth.MatchString(name) && !wantVeth[name] && name[len(name)-1] == 'a' {
			del(l) // deleting one end removes the pair
		}
	}
	for _, l := range links {
		name := l.Attrs().Name
		if vni, ok := parseVNI(ownedVxlan, name); ok && switches[vni] == nil {
			del(l)
		}
	}
	for _, l := range links {
		name := l.Attrs().Name
		if vni, ok := parseVNI(ownedBridge, name); ok && switches[vni] == nil {
			del(l)
		}
	}
	return errs
}

// Stats returns the counters of every programmed binding.
func (d *Dataplane) Stats() (map[BindingKey]Counters, error) {
	d.mu.Lock()
	ports := maps.Clone(d.ports)
	d.mu.Unlock()
	out := map[BindingKey]Counters{}
	for idx, b := range ports {
		l, err := d.h.LinkByIndex(idx)
		if err != nil {
			continue
		}
		s := l.Attrs().Statistics
		if s == nil {
			continue
		}
		out[b.Key()] = Counters{
			PacketsFromLocal: s.RxPackets, BytesFromLocal: s.RxBytes,
			PacketsToLocal: s.TxPackets, BytesToLocal: s.TxBytes,
		}
	}
	return out, nil
}
