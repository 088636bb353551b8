package store

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeBindings: no bindings.json panics the loader; what it accepts
// is written back and read again to the same bindings.
func FuzzDecodeBindings(f *testing.F) {
	f.Add([]byte(`{"version":1,"bindings":[{"vlan":100,"vni":10100,"ports":[{"switch":"tor1","port":"eth1"}]}]}`))
	f.Add([]byte(`{"version":2,"bindings":[]}`))
	f.Add([]byte(`{"version":1,"bindings":[{"vlan":4095,"vni":0,"ports":[{"switch":"tor1","port":"e\u0001"}]}]}`))
	f.Add([]byte(`{"version":1,"bindings":null} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeBindings(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(fileFormat{Version: FormatVersion, Bindings: group(m)})
		if err != nil {
			t.Fatal(err)
		}
		m2, err := decodeBindings(out)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %v\n%v\n%v", err, m, m2)
		}
	})
}

// FuzzDecodeOwners: no mac-owners.json panics the loader.
func FuzzDecodeOwners(f *testing.F) {
	f.Add([]byte(`{"version":1,"owners":[{"vni":10100,"mac":"00:50:56:00:01:11","switch":"tor1"}]}`))
	f.Add([]byte(`{"version":1,"owners":[{"vni":0,"mac":"01:00:5e:00:00:01","switch":""}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		owners, err := decodeOwners(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(ownersFormat{Version: FormatVersion, Owners: owners})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeOwners(out); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}
