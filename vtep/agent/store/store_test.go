package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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
	if err := s.Update(func(m map[l2.PortVLAN]l2.VNI) error {
		m[l2.PortVLAN{Port: p1, VLAN: 100}] = 10100
		m[l2.PortVLAN{Port: p2, VLAN: 100}] = 10100
		m[l2.PortVLAN{Port: p1, VLAN: 0}] = 10000
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := s.Update(func(m map[l2.PortVLAN]l2.VNI) error {
		delete(m, l2.PortVLAN{Port: p1, VLAN: 100})
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
	if v, ok := storedVNI(re, p1, 100); !ok || v != 10100 {
		t.Fatalf("failed update leaked: %v %v", v, ok)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("corrupt store opened without error")
	}
}

func TestOwnersRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if got, err := LoadOwners(dir); err != nil || got != nil {
		t.Fatalf("no file: %v, %v", got, err)
	}
	want := []Owner{{VNI: 10200, MAC: l2.MustMAC("00:50:56:00:02:12"), Switch: "tor1"},
		{VNI: 10100, MAC: l2.MustMAC("00:50:56:00:01:11"), Switch: "tor2"}}
	if err := SaveOwners(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := LoadOwners(dir)
	if err != nil || len(got) != 2 || got[0] != want[1] || got[1] != want[0] { // sorted by VNI
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, OwnersFileName), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOwners(dir); err == nil || !strings.Contains(err.Error(), "mac-owners.json is corrupt") {
		t.Fatalf("corrupt file: %v", err)
	}
}

// storedVNI returns the stored VNI of (port, VLAN).
func storedVNI(s *Store, p l2.PortRef, vlan l2.VLAN) (l2.VNI, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[l2.PortVLAN{Port: p, VLAN: vlan}]
	return v, ok
}
