package shim

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load eBPF programs")
	}
}

func frame(vlan int) []byte {
	dst := []byte{0x02, 0, 0, 0, 0, 2}
	src := []byte{0x02, 0, 0, 0, 0, 1}
	b := append(append([]byte{}, dst...), src...)
	if vlan >= 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, uint16(vlan))
	}
	b = binary.BigEndian.AppendUint16(b, 0x0800)
	return append(b, make([]byte, 46)...)
}

func TestTrunkProgram(t *testing.T) {
	requireRoot(t)
	m, err := NewVLANMap()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for k, v := range map[uint32]uint32{100: 7, UntaggedKey: 9} {
		if err := m.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	prog, err := LoadTrunkProgram(m)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	tests := []struct {
		name    string
		in      []byte
		want    uint32
		wantOut []byte
	}{
		{"bound VLAN is popped and redirected", frame(100), actRedirect, frame(-1)},
		{"priority bits are ignored", frame(100 | 5<<13), actRedirect, frame(-1)},
		{"unbound VLAN is dropped", frame(200), actShot, nil},
		{"untagged goes to VLAN 0 binding", frame(-1), actRedirect, frame(-1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]byte, len(tc.in)+64)
			ret, err := prog.Run(&ebpf.RunOptions{Data: tc.in, DataOut: out})
			if err != nil {
				t.Fatal(err)
			}
			if ret != tc.want {
				t.Fatalf("verdict %d, want %d", ret, tc.want)
			}
			if tc.wantOut != nil && !bytes.HasPrefix(out, tc.wantOut) {
				t.Fatalf("output % x\nwant   % x", out[:len(tc.wantOut)], tc.wantOut)
			}
		})
	}
}

func TestReturnProgram(t *testing.T) {
	requireRoot(t)
	for _, vlan := range []uint16{0, 100} {
		prog, err := LoadReturnProgram(1, vlan)
		if err != nil {
			t.Fatal(err)
		}
		ret, err := prog.Run(&ebpf.RunOptions{Data: frame(-1)})
		prog.Close()
		if err != nil {
			t.Fatal(err)
		}
		if ret != actRedirect {
			t.Fatalf("vlan %d: verdict %d, want redirect", vlan, ret)
		}
	}
}
