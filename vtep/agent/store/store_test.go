package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/torstitch/torstitch/vtep/l2"
)

func TestStorePersistsAndFailsAtomically(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p1 := l2.PortRef{Switch: "tor1", Port: "eth1"}
	p2 := l2.PortRef{Switch: "tor2", Port: "eth1"}
	if err := s.Update(func(m map[PortVLAN]l2.VNI) error {
		m[PortVLAN{p1, 100}] = 10100
		m[PortVLAN{p2, 100}] = 10100
		m[PortVLAN{p1, 0}] = 10000
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := s.Update(func(m map[PortVLAN]l2.VNI) error {
		delete(m, PortVLAN{p1, 100})
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("update error = %v", err)
	}
	re, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := re.Bindings()
	if len(got) != 2 || got[0].VLAN != 0 || got[1].VLAN != 100 || len(got[1].Ports) != 2 {
		t.Fatalf("reloaded bindings = %+v", got)
	}
	if v, ok := re.VNI(p1, 100); !ok || v != 10100 {
		t.Fatalf("failed update leaked: %v %v", v, ok)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("corrupt store opened without error")
	}
}
