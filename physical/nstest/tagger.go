package nstest

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/torstitch/torstitch/internal/netnstest"
)

// AttachTagger makes dev in namespace ns behave like an 802.1Q access
// interface on a kernel without 802.1Q: an eBPF TC program pushes vlan on
// every frame it sends and another pops the tag of frames it receives. It
// stands in for a VM port of a VDS at kernel speed in throughput tests.
func AttachTagger(ns *netnstest.Netns, dev string, vlan uint16) error {
	h, err := netns.GetFromName(ns.Name)
	if err != nil {
		return err
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return err
	}
	defer nl.Close()
	link, err := nl.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("%s: %w", dev, err)
	}
	q := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := nl.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("clsact on %s: %w", dev, err)
	}
	push := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.Mov.Imm(asm.R2, int32(htons(0x8100))),
		asm.Mov.Imm(asm.R3, int32(vlan)),
		asm.FnSkbVlanPush.Call(),
		asm.Mov.Imm(asm.R0, 0), // TC_ACT_OK
		asm.Return(),
	}
	pop := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 20, asm.Word), // vlan_present
		asm.JEq.Imm(asm.R2, 0, "out"),
		asm.FnSkbVlanPop.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}
	for _, p := range []struct {
		insns  asm.Instructions
		parent uint32
	}{{push, netlink.HANDLE_MIN_EGRESS}, {pop, netlink.HANDLE_MIN_INGRESS}} {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: p.insns})
		if err != nil {
			return fmt.Errorf("loading tagger: %w", err)
		}
		f := &netlink.BpfFilter{
			FilterAttrs:  netlink.FilterAttrs{LinkIndex: link.Attrs().Index, Parent: p.parent, Handle: 1, Priority: 1, Protocol: unix.ETH_P_ALL},
			Fd:           prog.FD(),
			Name:         "ts_tagger",
			DirectAction: true,
		}
		err = nl.FilterReplace(f)
		prog.Close()
		if err != nil {
			return fmt.Errorf("attaching tagger to %s: %w", dev, err)
		}
	}
	return nil
}
