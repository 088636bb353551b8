package shim

import (
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const (
	trunkFilterName  = "ts_trunk"
	returnFilterName = "ts_return"
)

// Manager attaches the shim programs through one netlink handle (so to one
// network namespace) and keeps the trunk maps it needs to update. Programs
// stay attached when the process exits; a new Manager adopts the maps of
// programs a previous run attached, so a restart does not interrupt traffic.
type Manager struct {
	h      *netlink.Handle
	mu     sync.Mutex
	trunks map[int]*trunk // by trunk ifindex
}

type trunk struct {
	m      *ebpf.Map
	progID ebpf.ProgramID
}

// NewManager returns a Manager working through h.
func NewManager(h *netlink.Handle) *Manager {
	return &Manager{h: h, trunks: map[int]*trunk{}}
}

// Close releases the maps held by the Manager; attached programs keep working.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, t := range m.trunks {
		t.m.Close()
		delete(m.trunks, k)
	}
}

// SetTrunk makes link's VLAN map hold want (VLAN → ifindex of the binding's
// inner veth end), removing other VLANs when prune is set, and makes sure the
// trunk program is attached.
func (m *Manager) SetTrunk(link netlink.Link, want map[uint16]int, prune bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	name := link.Attrs().Name
	t, err := m.trunk(link, want)
	if err != nil {
		return fmt.Errorf("trunk %s: %w", name, err)
	}
	have := map[uint32]uint32{}
	var k, v uint32
	it := t.m.Iterate()
	for it.Next(&k, &v) {
		have[k] = v
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("trunk %s: reading VLAN map: %w", name, err)
	}
	for vlan, ifindex := range want {
		if have[uint32(vlan)] == uint32(ifindex) {
			continue
		}
		if err := t.m.Put(uint32(vlan), uint32(ifindex)); err != nil {
			return fmt.Errorf("trunk %s: mapping VLAN %d: %w", name, vlan, err)
		}
	}
	for vlan := range have {
		if _, ok := want[uint16(vlan)]; !ok && prune {
			if err := t.m.Delete(vlan); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("trunk %s: unmapping VLAN %d: %w", name, vlan, err)
			}
		}
	}
	return nil
}

// trunk returns the state of an attached trunk program, adopting one a
// previous run attached, or attaching a new one whose map is filled with
// want before it sees a frame.
func (m *Manager) trunk(link netlink.Link, want map[uint16]int) (*trunk, error) {
	idx := link.Attrs().Index
	f, err := m.filter(link)
	if err != nil {
		return nil, err
	}
	if t, ok := m.trunks[idx]; ok && f != nil && f.Name == trunkFilterName && ebpf.ProgramID(f.Id) == t.progID {
		return t, nil
	}
	if t, ok := m.trunks[idx]; ok {
		t.m.Close()
		delete(m.trunks, idx)
	}
	if f != nil && f.Name == trunkFilterName {
		if t, err := adopt(ebpf.ProgramID(f.Id)); err == nil {
			m.trunks[idx] = t
			return t, nil
		}
	}
	vm, err := NewVLANMap()
	if err != nil {
		return nil, err
	}
	for vlan, ifindex := range want {
		if err := vm.Put(uint32(vlan), uint32(ifindex)); err != nil {
			vm.Close()
			return nil, fmt.Errorf("mapping VLAN %d: %w", vlan, err)
		}
	}
	prog, err := LoadTrunkProgram(vm)
	if err != nil {
		vm.Close()
		return nil, err
	}
	defer prog.Close()
	if err := m.attach(link, prog, trunkFilterName); err != nil {
		vm.Close()
		return nil, err
	}
	info, err := prog.Info()
	if err != nil {
		vm.Close()
		return nil, fmt.Errorf("program info: %w", err)
	}
	id, _ := info.ID()
	t := &trunk{m: vm, progID: id}
	m.trunks[idx] = t
	return t, nil
}

func adopt(id ebpf.ProgramID) (*trunk, error) {
	prog, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return nil, err
	}
	ids, ok := info.MapIDs()
	if !ok || len(ids) != 1 {
		return nil, errors.New("program has no single map")
	}
	vm, err := ebpf.NewMapFromID(ids[0])
	if err != nil {
		return nil, err
	}
	return &trunk{m: vm, progID: id}, nil
}

// SetReturn attaches to link (a binding's inner veth end) the program that
// tags frames with vlan and sends them out of the trunk. It is a no-op when
// the same program is already attached.
func (m *Manager) SetReturn(link netlink.Link, trunkIfindex int, vlan uint16) error {
	name := returnFilterName + ":" + strconv.Itoa(trunkIfindex) + ":" + strconv.Itoa(int(vlan))
	f, err := m.filter(link)
	if err != nil {
		return fmt.Errorf("%s: %w", link.Attrs().Name, err)
	}
	if f != nil && f.Name == name {
		return nil
	}
	prog, err := LoadReturnProgram(trunkIfindex, vlan)
	if err != nil {
		return err
	}
	defer prog.Close()
	if err := m.attach(link, prog, name); err != nil {
		return fmt.Errorf("%s: %w", link.Attrs().Name, err)
	}
	return nil
}

func (m *Manager) filter(link netlink.Link) (*netlink.BpfFilter, error) {
	fs, err := m.h.FilterList(link, netlink.HANDLE_MIN_INGRESS)
	if err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil, nil // no clsact qdisc yet
		}
		return nil, fmt.Errorf("listing filters: %w", err)
	}
	for _, f := range fs {
		if bf, ok := f.(*netlink.BpfFilter); ok && bf.Attrs().Handle == 1 && bf.Attrs().Priority == 1 {
			return bf, nil
		}
	}
	return nil, nil
}

func (m *Manager) attach(link netlink.Link, prog *ebpf.Program, name string) error {
	q := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: link.Attrs().Index,
			Handle:    netlink.MakeHandle(0xffff, 0),
			Parent:    netlink.HANDLE_CLSACT,
		},
		QdiscType: "clsact",
	}
	if err := m.h.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding clsact qdisc: %w", err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: link.Attrs().Index,
			Parent:    netlink.HANDLE_MIN_INGRESS,
			Handle:    1,
			Priority:  1,
			Protocol:  unix.ETH_P_ALL,
		},
		Fd:           prog.FD(),
		Name:         name,
		DirectAction: true,
	}
	if err := m.h.FilterReplace(f); err != nil {
		return fmt.Errorf("attaching %s: %w", name, err)
	}
	return nil
}
