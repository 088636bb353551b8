package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/torstitch/torstitch/vtep/l2"
)

// NetworksFileName is the file of networks published with torctl (or the
// API) inside the state directory.
const NetworksFileName = "networks.json"

// Network is a published network: a VNI offered to vCenter as a port group
// named Name; VLAN 0 means "from the pool".
type Network struct {
	VNI  l2.VNI  `json:"vni"`
	Name string  `json:"name"`
	VLAN l2.VLAN `json:"vlan,omitempty"`
}

type networksFormat struct {
	Version  int       `json:"version"`
	Networks []Network `json:"networks"`
}

// LoadNetworks reads the published networks saved in dir; none when there
// is no file.
func LoadNetworks(dir string) ([]Network, error) {
	path := filepath.Join(dir, NetworksFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	nets, err := decodeNetworks(b)
	if err != nil {
		return nil, fileError(path, err)
	}
	return nets, nil
}

// decodeNetworks reads networks.json, checking its version and every value.
func decodeNetworks(b []byte) ([]Network, error) {
	var f networksFormat
	if err := decodeJSON(b, &f); err != nil {
		return nil, err
	}
	if err := checkVersion(f.Version); err != nil {
		return nil, err
	}
	var errs []error
	seen := map[l2.VNI]bool{}
	for i, n := range f.Networks {
		if err := n.VNI.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("networks[%d]: %w", i, err))
		}
		if seen[n.VNI] {
			errs = append(errs, fmt.Errorf("networks[%d]: VNI %d twice", i, n.VNI))
		}
		seen[n.VNI] = true
		if err := l2.CheckName(n.Name); err != nil {
			errs = append(errs, fmt.Errorf("networks[%d]: name %w", i, err))
		}
		if err := n.VLAN.ValidateUsable(); err != nil {
			errs = append(errs, fmt.Errorf("networks[%d]: %w", i, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f.Networks, nil
}

// SaveNetworks replaces the saved published networks in dir (sorted by
// VNI, atomic).
func SaveNetworks(dir string, nets []Network) error {
	nets = slices.Clone(nets)
	slices.SortFunc(nets, func(a, b Network) int { return int(a.VNI) - int(b.VNI) })
	if nets == nil {
		nets = []Network{}
	}
	b, err := json.MarshalIndent(networksFormat{Version: FormatVersion, Networks: nets}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, NetworksFileName), append(b, '\n')); err != nil {
		return fmt.Errorf("saving published networks: %w", err)
	}
	return nil
}
