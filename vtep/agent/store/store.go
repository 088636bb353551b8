// Package store persists the bindings operators make with torctl in the
// agent's state directory, with atomic writes: a crash leaves either the old
// or the new file, never a torn one.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/torstitch/torstitch/vtep/l2"
)

// FileName is the store's file inside the state directory.
const FileName = "bindings.json"

// Store holds torctl bindings: (port, VLAN) -> VNI.
type Store struct {
	path string
	mu   sync.Mutex
	m    map[l2.PortVLAN]l2.VNI
}

type fileFormat struct {
	Version  int          `json:"version"`
	Bindings []l2.Binding `json:"bindings"`
}

// Open loads the store from dir, creating dir when missing.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	s := &Store{path: filepath.Join(dir, FileName), m: map[l2.PortVLAN]l2.VNI{}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.path, err)
	}
	m, err := decodeBindings(b)
	if err != nil {
		return nil, fileError(s.path, err)
	}
	s.m = m
	return s, nil
}

var errCorrupt = errors.New("is corrupt")

// fileError names the state file in err: "PATH is corrupt: ..." or
// "PATH: bindings[2].vlan: ...".
func fileError(path string, err error) error {
	if errors.Is(err, errCorrupt) {
		return fmt.Errorf("%s %w", path, err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// FormatVersion is the version of the state files this agent writes and reads.
const FormatVersion = 1

// decodeJSON decodes exactly one JSON object, refusing unknown fields.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the JSON object", errCorrupt)
	}
	return nil
}

func checkVersion(v int) error {
	switch {
	case v == FormatVersion:
		return nil
	case v == 0:
		return fmt.Errorf("version missing (want %d)", FormatVersion)
	case v > FormatVersion:
		return fmt.Errorf("version %d: this agent reads version %d (written by a newer toragent?)", v, FormatVersion)
	}
	return fmt.Errorf("version %d: want %d", v, FormatVersion)
}

// decodeBindings reads bindings.json, checking its version and every value.
func decodeBindings(b []byte) (map[l2.PortVLAN]l2.VNI, error) {
	var f fileFormat
	if err := decodeJSON(b, &f); err != nil {
		return nil, err
	}
	if err := checkVersion(f.Version); err != nil {
		return nil, err
	}
	m := map[l2.PortVLAN]l2.VNI{}
	var errs []error
	for i, bd := range f.Bindings {
		if err := bd.VLAN.ValidateUsable(); err != nil {
			errs = append(errs, fmt.Errorf("bindings[%d]: %w", i, err))
		}
		if err := bd.VNI.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("bindings[%d]: %w", i, err))
		}
		if len(bd.Ports) == 0 {
			errs = append(errs, fmt.Errorf("bindings[%d]: no ports", i))
		}
		for j, p := range bd.Ports {
			if err := p.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("bindings[%d].ports[%d]: %w", i, j, err))
				continue
			}
			k := l2.PortVLAN{Port: p, VLAN: bd.VLAN}
			if v, dup := m[k]; dup && v != bd.VNI {
				errs = append(errs, fmt.Errorf("bindings[%d].ports[%d]: %s VLAN %d bound to VNI %d and %d", i, j, p, bd.VLAN, v, bd.VNI))
			}
			m[k] = bd.VNI
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// Bindings returns the stored bindings grouped by (VLAN, VNI), sorted.
func (s *Store) Bindings() []l2.Binding {
	s.mu.Lock()
	defer s.mu.Unlock()
	return group(s.m)
}

func group(m map[l2.PortVLAN]l2.VNI) []l2.Binding {
	type key struct {
		vlan l2.VLAN
		vni  l2.VNI
	}
	idx := map[key]int{}
	var out []l2.Binding
	for pv, vni := range m {
		k := key{pv.VLAN, vni}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, l2.Binding{VLAN: pv.VLAN, VNI: vni})
		}
		out[i].Ports = append(out[i].Ports, pv.Port)
	}
	for i := range out {
		slices.SortFunc(out[i].Ports, l2.PortRef.Compare)
	}
	slices.SortFunc(out, func(a, b l2.Binding) int {
		if a.VLAN != b.VLAN {
			return int(a.VLAN) - int(b.VLAN)
		}
		return int(a.VNI) - int(b.VNI)
	})
	return out
}

// Update applies fn to a copy of the bindings and persists the result
// atomically; on any error the store is unchanged.
func (s *Store) Update(fn func(m map[l2.PortVLAN]l2.VNI) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[l2.PortVLAN]l2.VNI, len(s.m))
	maps.Copy(next, s.m)
	if err := fn(next); err != nil {
		return err
	}
	if err := s.write(next); err != nil {
		return err
	}
	s.m = next
	return nil
}

func (s *Store) write(m map[l2.PortVLAN]l2.VNI) error {
	b, err := json.MarshalIndent(fileFormat{Version: 1, Bindings: group(m)}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(s.path, append(b, '\n')); err != nil {
		return fmt.Errorf("saving bindings: %w", err)
	}
	return nil
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, synced, renamed over path, and the directory synced.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// OwnersFileName is the file of MAC owners inside the state directory.
const OwnersFileName = "mac-owners.json"

// Owner says which switch of the pair the agent advertises a MAC from that
// several switches report as local (the one that learned it last).
type Owner struct {
	VNI    l2.VNI `json:"vni"`
	MAC    l2.MAC `json:"mac"`
	Switch string `json:"switch"`
}

type ownersFormat struct {
	Version int     `json:"version"`
	Owners  []Owner `json:"owners"`
}

// LoadOwners reads the MAC owners saved in dir; none when there is no file.
func LoadOwners(dir string) ([]Owner, error) {
	path := filepath.Join(dir, OwnersFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	owners, err := decodeOwners(b)
	if err != nil {
		return nil, fileError(path, err)
	}
	return owners, nil
}

// decodeOwners reads mac-owners.json, checking its version and every value.
func decodeOwners(b []byte) ([]Owner, error) {
	var f ownersFormat
	if err := decodeJSON(b, &f); err != nil {
		return nil, err
	}
	if err := checkVersion(f.Version); err != nil {
		return nil, err
	}
	var errs []error
	for i, o := range f.Owners {
		if err := o.VNI.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("owners[%d]: %w", i, err))
		}
		if err := o.MAC.ValidateUnicast(); err != nil {
			errs = append(errs, fmt.Errorf("owners[%d]: %w", i, err))
		}
		if err := l2.CheckName(o.Switch); err != nil {
			errs = append(errs, fmt.Errorf("owners[%d]: switch name %w", i, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f.Owners, nil
}

// SaveOwners replaces the saved MAC owners in dir (sorted, atomic).
func SaveOwners(dir string, owners []Owner) error {
	owners = slices.Clone(owners)
	slices.SortFunc(owners, func(a, b Owner) int {
		return l2.MACKey{VNI: a.VNI, MAC: a.MAC}.Compare(l2.MACKey{VNI: b.VNI, MAC: b.MAC})
	})
	b, err := json.MarshalIndent(ownersFormat{Version: 1, Owners: owners}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, OwnersFileName), append(b, '\n')); err != nil {
		return fmt.Errorf("saving MAC owners: %w", err)
	}
	return nil
}
