package vdsvlan_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/torstitch/torstitch/vdsvlan"
)

// The agent's use: run the watcher, and on every (coalesced) change read the
// complete snapshot; ignore it until it is Valid.
func ExampleWatcher() {
	cfg := vdsvlan.Config{
		URL:          "https://vc.example/sdk",
		UsernameFile: "/etc/torstitch/vc.user",
		PasswordFile: "/etc/torstitch/vc.pass",
		CAFile:       "/etc/torstitch/vc-ca.pem",
		VNIPolicy:    vdsvlan.VNIPolicy{Mode: "tag", Category: "torstitch"},
		HostPorts:    vdsvlan.HostPorts{Mode: "lldp"},
		Switches:     map[string][]string{"tor1": nil, "tor2": nil},
	}
	w, err := vdsvlan.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() { _ = w.Run(ctx) }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.Changed():
		}
		s := w.Snapshot()
		if !s.Valid {
			continue // not synced yet: not "no bindings"
		}
		for _, b := range s.Bindings {
			fmt.Println(b.VLAN, b.VNI, b.Ports)
		}
	}
}
