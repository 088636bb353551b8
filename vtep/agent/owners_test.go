package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/agent/store"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/l2"
)

// After a restart the agent has no history of which switch learned a MAC
// last. The owner saved before the restart must win, whichever switch is
// read first; without it the switch read last would.
func TestSavedOwnerWinsAfterRestart(t *testing.T) {
	mac := l2.MustMAC("00:50:56:00:01:11")
	view := func(name string, connected bool) SwitchView {
		v := SwitchView{Name: name, Connected: connected}
		if connected {
			v.LocalMACs = []l2.LocalMAC{{Switch: name, VNI: 10100, MAC: mac}}
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		saved  []store.Owner
		winner string
	}{
		{"no saved owner: the switch read last wins", nil, "tor1"},
		{"saved owner wins", []store.Owner{{VNI: 10100, MAC: mac, Switch: "tor2"}}, "tor2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newMACOwnership(lostSwitchHold, []string{"tor1", "tor2"}, tc.saved)
			// tor2 is read one pass before tor1.
			t0 := time.Unix(1000, 0)
			o.resolve(t0, []SwitchView{view("tor1", false), view("tor2", true)}, nil)
			views := []SwitchView{view("tor1", true), view("tor2", true)}
			o.resolve(t0.Add(time.Second), views, nil)
			for _, v := range views {
				if got := len(v.LocalMACs) == 1; got != (v.Name == tc.winner) {
					t.Fatalf("%s keeps the MAC: %v; want the winner to be %s", v.Name, got, tc.winner)
				}
			}
		})
	}
}

// The agent saves the owner of a MAC both switches report.
func TestAgentSavesOwners(t *testing.T) {
	tor1, tor2, cfg := pairWithoutBGP(t, "")
	r := startAgent(t, cfg)
	if err := r.a.Bind(t.Context(), api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1", "tor2:eth1"}}); err != nil {
		t.Fatal(err)
	}
	tor1.VtepCtl("add-ucast-local", "vni10100", "00:50:56:00:01:11", "192.0.2.11")
	eventually(t, 10*time.Second, "tor1's MAC on tor2", remoteHas(tor2, "00:50:56:00:01:11", "192.0.2.11"))
	tor2.VtepCtl("add-ucast-local", "vni10100", "00:50:56:00:01:11", "192.0.2.12")
	path := filepath.Join(cfg.Agent.StateDir, store.OwnersFileName)
	eventually(t, 10*time.Second, "tor2 saved as the owner", func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), `"switch": "tor2"`) {
			return fmt.Errorf("%s:\n%s", path, b)
		}
		return nil
	})
	tor1.VtepCtl("del-ucast-local", "vni10100", "00:50:56:00:01:11")
	eventually(t, 10*time.Second, "no contested MAC left", func() error {
		owners, err := store.LoadOwners(cfg.Agent.StateDir)
		if err != nil || len(owners) != 0 {
			return fmt.Errorf("owners %+v, %v", owners, err)
		}
		return nil
	})
}
