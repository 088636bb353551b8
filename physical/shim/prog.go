// Package shim is torswitch's VLAN demultiplexer for kernels without 802.1Q
// subinterfaces: two small eBPF TC programs, written with cilium/ebpf's asm
// package (no clang), that pop the 802.1Q tag of frames arriving on a trunk
// port and redirect them into a per-binding veth, and push the tag back on
// frames leaving that veth towards the trunk.
package shim

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// TC verdicts used by the programs (include/uapi/linux/pkt_cls.h).
const (
	actShot     = 2
	actRedirect = 7
)

// __sk_buff field offsets (include/uapi/linux/bpf.h).
const (
	skbVlanPresent = 20
	skbVlanTCI     = 24
	skbData        = 76
	skbDataEnd     = 80
)

// UntaggedKey is the trunk map key for untagged (and priority-tagged) frames,
// hardware_vtep's VLAN 0.
const UntaggedKey = 0

// TrunkIngressInstructions returns the program attached to a trunk port's TC
// ingress hook. It derives the VLAN ID (0 for untagged) from the skb metadata
// or, when the tag is still in the packet data (as in BPF_PROG_TEST_RUN), from
// the Ethernet header; looks it up in vlanMap (uint32 VLAN → uint32 ifindex);
// pops the tag and redirects the frame out of the mapped interface. Frames of
// VLANs without a binding are dropped, which isolates VLANs from each other.
func TrunkIngressInstructions(vlanMap *ebpf.Map) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // r6 = ctx
		asm.Mov.Imm(asm.R7, 0),      // r7 = vid
		asm.Mov.Imm(asm.R9, 0),      // r9 = tagged?
		asm.LoadMem(asm.R2, asm.R6, skbVlanPresent, asm.Word),
		asm.JEq.Imm(asm.R2, 0, "data"),
		asm.Mov.Imm(asm.R9, 1),
		asm.LoadMem(asm.R7, asm.R6, skbVlanTCI, asm.Word),
		asm.Ja.Label("mask"),
		// The tag may still be in the packet data.
		asm.LoadMem(asm.R2, asm.R6, skbData, asm.Word).WithSymbol("data"),
		asm.LoadMem(asm.R3, asm.R6, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 18),
		asm.JGT.Reg(asm.R4, asm.R3, "lookup"),
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.HostTo(asm.BE, asm.R5, asm.Half),
		asm.JEq.Imm(asm.R5, 0x8100, "datatag"),
		asm.JNE.Imm(asm.R5, 0x88a8, "lookup"),
		asm.LoadMem(asm.R7, asm.R2, 14, asm.Half).WithSymbol("datatag"),
		asm.HostTo(asm.BE, asm.R7, asm.Half),
		asm.Mov.Imm(asm.R9, 1),
		asm.And.Imm(asm.R7, 0x0fff).WithSymbol("mask"),
		// value = map[vid]
		asm.StoreMem(asm.RFP, -4, asm.R7, asm.Word).WithSymbol("lookup"),
		asm.LoadMapPtr(asm.R1, vlanMap.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.LoadMem(asm.R8, asm.R0, 0, asm.Word), // r8 = target ifindex
		asm.JEq.Imm(asm.R9, 0, "redirect"),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnSkbVlanPop.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),
		asm.Mov.Reg(asm.R1, asm.R8).WithSymbol("redirect"),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, actShot).WithSymbol("drop"),
		asm.Return(),
	}
}

// ReturnInstructions returns the program attached to the TC ingress hook of a
// binding's inner veth end: frames the bridge sends towards the binding get
// the binding's VLAN tag pushed (none for VLAN 0) and leave through the trunk.
func ReturnInstructions(trunkIfindex int, vlan uint16) asm.Instructions {
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	if vlan != 0 {
		insns = append(insns,
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Imm(asm.R2, int32(htons(0x8100))),
			asm.Mov.Imm(asm.R3, int32(vlan)),
			asm.FnSkbVlanPush.Call(),
			asm.JNE.Imm(asm.R0, 0, "drop"),
		)
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R1, int32(trunkIfindex)),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
	)
	if vlan != 0 {
		insns = append(insns, asm.Mov.Imm(asm.R0, actShot).WithSymbol("drop"), asm.Return())
	}
	return insns
}

// htons converts v to network byte order as the helpers expect it in a register.
func htons(v uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v))
}

// NewVLANMap creates the trunk's VLAN → ifindex map.
func NewVLANMap() (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "ts_vlan", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 4096,
	})
	if err != nil {
		return nil, fmt.Errorf("creating VLAN map: %w", err)
	}
	return m, nil
}

// LoadTrunkProgram loads TrunkIngressInstructions for vlanMap.
func LoadTrunkProgram(vlanMap *ebpf.Map) (*ebpf.Program, error) {
	return load("ts_trunk", TrunkIngressInstructions(vlanMap))
}

// LoadReturnProgram loads ReturnInstructions.
func LoadReturnProgram(trunkIfindex int, vlan uint16) (*ebpf.Program, error) {
	return load("ts_return", ReturnInstructions(trunkIfindex, vlan))
}

func load(name string, insns asm.Instructions) (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: name, Type: ebpf.SchedCLS, License: "GPL", Instructions: insns,
	})
	if err != nil {
		return nil, fmt.Errorf("loading %s program: %w", name, err)
	}
	return p, nil
}
