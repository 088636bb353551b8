package testbed

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"

	"github.com/torstitch/torstitch/testbed/clab"
	"github.com/vishvananda/netlink"
)

// Info describes a lab as it is on the machine.
type Info struct {
	Lab      string     `json:"lab"`
	File     string     `json:"file"`
	RunDir   string     `json:"run_dir"`
	Deployed bool       `json:"deployed"`
	Nodes    []NodeInfo `json:"nodes"`
}

// NodeInfo describes one node.
type NodeInfo struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Image string `json:"image,omitempty"`
	Netns string `json:"netns"`
	// State: running (has processes), stopped (its cmd is gone), up (a
	// bridge, or a node with nothing to run), absent (no namespace).
	State      string      `json:"state"`
	PIDs       []int       `json:"pids,omitempty"`
	Interfaces []IfaceInfo `json:"interfaces,omitempty"`
}

// IfaceInfo describes one interface of a node (loopback left out).
type IfaceInfo struct {
	Name   string   `json:"name"`
	MAC    string   `json:"mac"`
	MTU    int      `json:"mtu"`
	State  string   `json:"state"`
	Master string   `json:"master,omitempty"`
	Addrs  []string `json:"addrs,omitempty"`
}

// Inspect reports the lab's nodes, their processes and interfaces.
func (l *Lab) Inspect(ctx context.Context) (*Info, error) {
	info := &Info{Lab: l.Name, File: l.Topology.File, RunDir: l.RunDir}
	if _, err := os.Stat(filepath.Join(l.RunDir, "state.json")); err == nil {
		info.Deployed = true
	}
	for _, n := range l.Topology.Nodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ni := NodeInfo{Name: n.Name, Kind: n.Kind, Image: n.Image, Netns: l.Netns(n.Name), State: "absent"}
		if isNetns(ni.Netns) {
			ifs, err := interfaces(ni.Netns)
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", n.Name, err)
			}
			ni.Interfaces = ifs
			ni.PIDs, _ = pidsInNetns(ni.Netns)
			slices.Sort(ni.PIDs)
			switch {
			case n.Kind == clab.KindBridge:
				ni.State = "up"
			case len(ni.PIDs) > 0:
				ni.State = "running"
			case n.Cmd != "":
				ni.State = "stopped" // its cmd is gone
			default:
				ni.State = "up" // configured by exec, nothing to run
			}
		}
		info.Nodes = append(info.Nodes, ni)
	}
	return info, nil
}

// Inspect reports on the lab a topology file describes.
func Inspect(ctx context.Context, file string, opts Options) (*Info, error) {
	l, err := Open(file, opts)
	if err != nil {
		return nil, err
	}
	return l.Inspect(ctx)
}

func interfaces(ns string) ([]IfaceInfo, error) {
	nsh, h, err := nsHandle(ns)
	if err != nil {
		return nil, err
	}
	defer nsh.Close()
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	names := map[int]string{}
	for _, lk := range links {
		names[lk.Attrs().Index] = lk.Attrs().Name
	}
	var out []IfaceInfo
	for _, lk := range links {
		a := lk.Attrs()
		if a.Flags&net.FlagLoopback != 0 {
			continue
		}
		ii := IfaceInfo{Name: a.Name, MAC: a.HardwareAddr.String(), MTU: a.MTU, State: a.OperState.String(), Master: names[a.MasterIndex]}
		addrs, err := h.AddrList(lk, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", a.Name, err)
		}
		for _, ad := range addrs {
			if ad.IP.IsLinkLocalUnicast() {
				continue
			}
			ii.Addrs = append(ii.Addrs, ad.IPNet.String())
		}
		out = append(out, ii)
	}
	slices.SortFunc(out, func(a, b IfaceInfo) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}
