package store

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestNetworksRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if got, err := LoadNetworks(dir); err != nil || got != nil {
		t.Fatalf("no file: %v, %v", got, err)
	}
	want := []Network{{VNI: 10300, Name: "web"}, {VNI: 10200, Name: "db", VLAN: 3001}}
	if err := SaveNetworks(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := LoadNetworks(dir)
	if err != nil || !reflect.DeepEqual(got, []Network{want[1], want[0]}) {
		t.Fatalf("loaded %v, %v", got, err)
	}
	bad := `{"version":1,"networks":[{"vni":0,"name":"","vlan":4095},{"vni":0,"name":"x"}]}`
	if err := os.WriteFile(filepath.Join(dir, NetworksFileName), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadNetworks(dir)
	for _, part := range []string{"networks.json", "networks[0]: VNI 0 out of range", "networks[0]: name", "networks[1]: VNI 0 twice"} {
		if err == nil || !strings.Contains(err.Error(), part) {
			t.Errorf("error %v, want %q", err, part)
		}
	}
}

// FuzzDecodeNetworks: no networks.json panics the loader.
func FuzzDecodeNetworks(f *testing.F) {
	f.Add([]byte(`{"version":1,"networks":[{"vni":10300,"name":"web","vlan":3001}]}`))
	f.Add([]byte(`{"version":1,"networks":[{"vni":10300,"name":"web"},{"vni":10300,"name":"x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeNetworks(b)
	})
}
