package plan

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// Options tune a plan.
type Options struct {
	// KeepStale suppresses every delete: rows torstitch owns but no longer
	// wants stay until a later plan without KeepStale. The agent sets it until
	// its picture of the world is complete (make before break).
	KeepStale bool
}

type portVLAN struct {
	port string
	vlan l2.VLAN
}

type planner struct {
	d   *Desired
	o   *Observed
	opt Options
	p   problems
	out *Changes

	locIP     map[string]netip.Addr // vxlan locator UUID -> destination IP
	desiredLS map[l2.VNI]LogicalSwitch
	canonical map[string]l2.VNI // owned LS UUID -> VNI, for the one LS kept per desired VNI
	// frozen: owned logical switches of a VNI held back by a conflict; they
	// and their rows stay as they are.
	frozen map[string]bool

	// changes holds the planned changes by op; Plan concatenates them in
	// op order.
	changes [numOps][]Change
}

// add plans one change.
func (pl *planner) add(c Change) { pl.changes[c.Op] = append(pl.changes[c.Op], c) }

// Plan computes the changes that bring the observed switch to the desired
// state. It validates first: on any error nothing is planned and the error
// names every offending item. Desired state that collides with the switch
// (a foreign logical switch holding a VNI or its name, a foreign binding, a
// port the switch lacks) is no error: Changes.Conflicts names it, the plan
// skips it, and everything else converges. A switch already in the desired
// state yields an empty plan.
func Plan(d *Desired, o *Observed, opt Options) (*Changes, error) {
	if err := Validate(d); err != nil {
		return nil, err
	}
	pl := &planner{d: d, o: o, opt: opt, out: &Changes{
		LSByVNI:  map[l2.VNI]string{},
		Locators: map[netip.Addr]string{},
	}}
	pl.conflicts()
	pl.locators()
	pl.logicalSwitches()
	pl.bindings()
	pl.ucastRemote()
	pl.mcastRemote()
	pl.staleSwitches()
	pl.tunnelBFD()
	if err := pl.p.err(); err != nil {
		return nil, err
	}
	n := 0
	for _, part := range pl.changes {
		n += len(part)
	}
	list := make([]Change, 0, n)
	for _, part := range pl.changes {
		list = append(list, part...)
	}
	pl.out.List = list
	return pl.out, nil
}

func (pl *planner) locators() {
	pl.locIP = make(map[string]netip.Addr, len(pl.o.Locators))
	for uuid, loc := range pl.o.Locators {
		if loc.EncapsulationType != EncapVXLAN || loc.TunnelKey != nil {
			continue
		}
		ip, err := netip.ParseAddr(loc.DstIP)
		if err != nil {
			continue
		}
		pl.locIP[uuid] = ip
		if prev, ok := pl.out.Locators[ip]; !ok || uuid < prev {
			pl.out.Locators[ip] = uuid
		}
	}
}

func (pl *planner) logicalSwitches() {
	pl.desiredLS = make(map[l2.VNI]LogicalSwitch, len(pl.d.LogicalSwitches))
	wantName := make(map[string]l2.VNI)
	for _, ls := range pl.d.LogicalSwitches {
		if ls.Name == "" {
			ls.Name = DefaultName(ls.VNI)
		}
		pl.desiredLS[ls.VNI] = ls
		wantName[ls.Name] = ls.VNI
	}
	owned := map[l2.VNI][]*vtepdb.LogicalSwitch{}
	ownedByName := map[string]*vtepdb.LogicalSwitch{}
	for _, uuid := range slices.Sorted(maps.Keys(pl.o.Switches)) {
		ls := pl.o.Switches[uuid]
		if !Owned(ls) || pl.frozen[uuid] {
			continue // foreign collisions are conflicts (conflicts.go)
		}
		owned[VNIOf(ls)] = append(owned[VNIOf(ls)], ls)
		ownedByName[ls.Name] = ls
	}
	pl.canonical = map[string]l2.VNI{}
	for _, v := range slices.Sorted(maps.Keys(pl.desiredLS)) {
		spec := pl.desiredLS[v]
		var pick *vtepdb.LogicalSwitch
		for _, ls := range owned[v] {
			if ls.Name == spec.Name {
				pick = ls
			}
		}
		if pick == nil && len(owned[v]) > 0 {
			pick = owned[v][0] // sorted by UUID
		}
		if pick == nil {
			// An owned switch may hold the name under a VNI nobody wants any more: reuse it.
			if ls, ok := ownedByName[spec.Name]; ok {
				if _, wanted := pl.desiredLS[VNIOf(ls)]; !wanted {
					pick = ls
				}
			}
		}
		if pick == nil {
			pl.add(Change{Op: LSCreate, VNI: v, Name: spec.Name, ReplicationMode: spec.ReplicationMode})
			continue
		}
		pl.canonical[pick.UUID] = v
		pl.out.LSByVNI[v] = pick.UUID
		if pick.Name != spec.Name || VNIOf(pick) != v ||
			(spec.ReplicationMode != "" && replicationMode(pick) != spec.ReplicationMode) {
			pl.add(Change{Op: LSUpdate, UUID: pick.UUID, VNI: v, Name: spec.Name, ReplicationMode: spec.ReplicationMode})
		}
	}
}

func (pl *planner) owned(lsUUID string) bool {
	ls := pl.o.Switches[lsUUID]
	return ls != nil && Owned(ls)
}

func (pl *planner) bindings() {
	want := make(map[portVLAN]l2.VNI, len(pl.d.Bindings))
	order := make([]portVLAN, 0, len(pl.d.Bindings))
	for _, b := range pl.d.Bindings {
		k := portVLAN{b.Port, b.VLAN}
		if _, dup := want[k]; !dup {
			order = append(order, k)
		}
		want[k] = b.VNI
	}
	present := make(map[portVLAN]bool)
	for _, name := range slices.Sorted(maps.Keys(pl.o.Ports)) {
		port := pl.o.Ports[name]
		for _, v := range slices.Sorted(maps.Keys(port.VLANBindings)) {
			lsUUID, vlan := port.VLANBindings[v], l2.VLAN(v)
			k := portVLAN{name, vlan}
			vni, desired := want[k]
			switch {
			case pl.frozen[lsUUID]:
			case desired:
				present[k] = true
				if pl.out.LSByVNI[vni] != lsUUID || lsUUID == "" {
					pl.add(Change{Op: BindingSet, Port: name, PortUUID: port.UUID, VLAN: vlan, VNI: vni, Rebind: true})
				}
			case pl.owned(lsUUID) && !pl.opt.KeepStale:
				pl.add(Change{Op: BindingDelete, UUID: lsUUID, Port: name, PortUUID: port.UUID, VLAN: vlan, VNI: VNIOf(pl.o.Switches[lsUUID])})
			}
		}
	}
	for _, k := range order {
		if present[k] {
			continue
		}
		pl.add(Change{Op: BindingSet, Port: k.port, PortUUID: pl.o.Ports[k.port].UUID, VLAN: k.vlan, VNI: want[k]})
	}
}

func sameIP(col string, a netip.Addr) bool {
	if !a.IsValid() {
		return col == ""
	}
	b, err := netip.ParseAddr(col)
	return err == nil && b == a
}

// ucastRemote compares the desired remote MACs with the owned rows. It
// runs over the whole table (100k rows and more) on every plan: one map of
// the observed rows by key, then one pass over the desired list.
func (pl *planner) ucastRemote() {
	if pl.ucastRemoteIndexed() {
		return
	}
	type obsRow struct {
		uuid string
		row  *vtepdb.UcastMacsRemote
	}
	have := make(map[l2.MACKey]obsRow, len(pl.o.UcastRemote))
	del := func(uuid string, v l2.VNI, mac l2.MAC) {
		if !pl.opt.KeepStale {
			pl.add(Change{Op: UcastDelete, UUID: uuid, VNI: v, MAC: mac})
		}
	}
	for uuid, row := range pl.o.UcastRemote {
		if !pl.owned(row.LogicalSwitch) || pl.frozen[row.LogicalSwitch] {
			continue
		}
		v, canonical := pl.canonical[row.LogicalSwitch]
		mac, okMAC := normMAC(row.MAC)
		if !canonical || !okMAC {
			del(uuid, v, mac)
			continue
		}
		k := l2.MACKey{VNI: v, MAC: mac}
		if prev, dup := have[k]; dup { // two rows for one MAC: keep the lower UUID
			if prev.uuid < uuid {
				del(uuid, v, mac)
				continue
			}
			del(prev.uuid, v, mac)
		}
		have[k] = obsRow{uuid, row}
	}
	adds := make([]Change, 0, max(0, len(pl.d.RemoteMACs)-len(have))) // the bulk: appended in place
	for i := range pl.d.RemoteMACs {
		w := &pl.d.RemoteMACs[i]
		k := l2.MACKey{VNI: w.VNI, MAC: w.MAC}
		o, ok := have[k]
		switch {
		case !ok:
			adds = append(adds, Change{Op: UcastAdd, VNI: w.VNI, MAC: w.MAC, IP: w.IP, VTEP: w.VTEP})
			have[k] = obsRow{} // done: a repeated entry adds nothing
			continue
		case o.row == nil:
			continue // listed twice
		}
		have[k] = obsRow{}
		if loc, ok := pl.locIP[o.row.Locator]; ok && loc == w.VTEP && sameIP(o.row.Ipaddr, w.IP) {
			continue
		}
		pl.add(Change{Op: UcastUpdate, UUID: o.uuid, VNI: k.VNI, MAC: k.MAC, IP: w.IP, VTEP: w.VTEP})
	}
	pl.changes[UcastAdd] = adds
	for k, o := range have {
		if o.row != nil { // owned, not desired
			del(o.uuid, k.VNI, k.MAC)
		}
	}
	slices.SortFunc(pl.changes[UcastUpdate], func(a, b Change) int { return cmp.Compare(a.UUID, b.UUID) })
	slices.SortFunc(pl.changes[UcastDelete], func(a, b Change) int { return cmp.Compare(a.UUID, b.UUID) })
}

func sortedSet(ips []netip.Addr) []netip.Addr {
	s := slices.Clone(ips)
	slices.SortFunc(s, netip.Addr.Compare)
	return slices.Compact(s)
}

func (pl *planner) mcastRemote() {
	done := map[l2.VNI]bool{}
	for _, uuid := range slices.Sorted(maps.Keys(pl.o.McastRemote)) {
		row := pl.o.McastRemote[uuid]
		if !pl.owned(row.LogicalSwitch) || pl.frozen[row.LogicalSwitch] {
			continue
		}
		v, canonical := pl.canonical[row.LogicalSwitch]
		want := sortedSet(pl.d.Flood[v])
		if !canonical || row.MAC != UnknownDst || len(want) == 0 || done[v] {
			if !pl.opt.KeepStale {
				pl.add(Change{Op: McastDelete, UUID: uuid, VNI: v})
			}
			continue
		}
		done[v] = true
		if slices.Equal(pl.locatorSetIPs(row.LocatorSet), want) && row.Ipaddr == "" {
			continue
		}
		pl.add(Change{Op: McastSet, UUID: uuid, VNI: v, VTEPs: want})
	}
	for _, v := range slices.Sorted(maps.Keys(pl.d.Flood)) {
		want := sortedSet(pl.d.Flood[v])
		if done[v] || len(want) == 0 {
			continue
		}
		pl.add(Change{Op: McastSet, VNI: v, VTEPs: want})
	}
}

// locatorSetIPs returns the sorted destination IPs of a locator set; an
// unknown set or a non-VXLAN locator yields nil so that the set is rewritten.
func (pl *planner) locatorSetIPs(set string) []netip.Addr {
	ls, ok := pl.o.LocatorSets[set]
	if !ok {
		return nil
	}
	ips := make([]netip.Addr, 0, len(ls.Locators))
	for _, u := range ls.Locators {
		loc, ok := pl.o.Locators[u]
		if !ok || loc.EncapsulationType != EncapVXLAN || loc.TunnelKey != nil {
			return nil
		}
		ip, err := netip.ParseAddr(loc.DstIP)
		if err != nil {
			return nil
		}
		ips = append(ips, ip)
	}
	return sortedSet(ips)
}

// staleSwitches deletes owned logical switches that are not kept, once
// nothing else references them. Rows the switch itself wrote (local MACs)
// still pointing at one hold the delete back until a later plan.
func (pl *planner) staleSwitches() {
	if pl.opt.KeepStale {
		return
	}
	referenced := map[string]bool{}
	for _, r := range pl.o.UcastLocal {
		referenced[r.LogicalSwitch] = true
	}
	for _, r := range pl.o.McastLocal {
		referenced[r.LogicalSwitch] = true
	}
	for _, uuid := range slices.Sorted(maps.Keys(pl.o.Switches)) {
		ls := pl.o.Switches[uuid]
		if !Owned(ls) {
			continue
		}
		if _, keep := pl.canonical[uuid]; keep || referenced[uuid] || pl.frozen[uuid] {
			continue
		}
		pl.add(Change{Op: LSDelete, UUID: uuid, VNI: VNIOf(ls), Name: ls.Name})
	}
}

// tunnelBFD sets torstitch's bfd_params keys (enable, min_rx, min_tx) on
// every Tunnel row where one of them differs. The switch creates Tunnel rows;
// torstitch never creates or deletes one and never touches their other
// columns or other bfd_params keys. Steady state: nothing.
func (pl *planner) tunnelBFD() {
	if pl.d.BFD == nil {
		return
	}
	want := pl.d.BFD.Map()
	for _, uuid := range slices.Sorted(maps.Keys(pl.o.Tunnels)) {
		t := pl.o.Tunnels[uuid]
		same := true
		for k, v := range want {
			same = same && t.BFDParams[k] == v
		}
		if !same {
			pl.add(Change{Op: TunnelBFD, UUID: uuid, BFD: want})
		}
	}
}
