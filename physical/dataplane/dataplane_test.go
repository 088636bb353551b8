package dataplane

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/l2"
)

func fdbDump(t *testing.T, h *netlink.Handle, dev string) []string {
	t.Helper()
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := h.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range ns {
		if n.Flags&unix.NTF_SELF != 0 && n.IP != nil {
			out = append(out, n.HardwareAddr.String()+" "+n.IP.String())
		}
	}
	slices.Sort(out)
	return out
}

func linkIndexes(t *testing.T, h *netlink.Handle) map[string]int {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, "ts") {
			out[l.Attrs().Name] = l.Attrs().Index
		}
	}
	return out
}

// TestApplyIsLevelTriggered checks that Apply converges on the wanted state,
// changes nothing when repeated, removes only what a new config drops, and
// with an empty config and prune removes every device it created.
func TestApplyIsLevelTriggered(t *testing.T) {
	l := netnstest.NewLab(t, "tsd")
	sw, peer := l.NS("sw"), l.NS("peer")
	l.Veth(sw, "eth1", peer, "t0", 0)
	ns := sw.Handle()
	d, err := New(Options{NetNS: ns, ARPSuppression: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	ip := netip.MustParseAddr
	m1, m2 := l2.MustMAC("02:00:00:00:00:01"), l2.MustMAC("02:00:00:00:00:02")
	cfg := Config{
		TunnelIP: ip("192.0.2.1"),
		Ports:    []string{"eth1"},
		Switches: map[l2.VNI]*Switch{5000: {
			VNI:    5000,
			Remote: map[l2.MAC]netip.Addr{m1: ip("192.0.2.2"), m2: ip("192.0.2.3")},
			Flood:  []netip.Addr{ip("192.0.2.2"), ip("192.0.2.3")},
			Neigh:  map[netip.Addr]l2.MAC{ip("10.1.0.1"): m1},
		}},
		Bindings: []Binding{{Port: "eth1", VLAN: 100, VNI: 5000}, {Port: "eth1", VLAN: 0, VNI: 5000}},
	}
	res, err := d.Apply(ctx, cfg, true)
	if err != nil || len(res.BindingErrors) > 0 {
		t.Fatalf("apply: %v %v", err, res.BindingErrors)
	}
	want := []string{
		"00:00:00:00:00:00 192.0.2.2", "00:00:00:00:00:00 192.0.2.3",
		"02:00:00:00:00:01 192.0.2.2", "02:00:00:00:00:02 192.0.2.3",
	}
	if got := fdbDump(t, h, "tsvx5000"); !slices.Equal(got, want) {
		t.Fatalf("FDB = %v, want %v", got, want)
	}
	links := linkIndexes(t, h)
	for _, name := range []string{"tsbr5000", "tsvx5000"} {
		if links[name] == 0 {
			t.Fatalf("no %s in %v", name, links)
		}
	}

	res, err = d.Apply(ctx, cfg, true)
	if err != nil || res.FDBChanges != 0 {
		t.Fatalf("repeated apply: err %v, %d FDB changes", err, res.FDBChanges)
	}
	if got := linkIndexes(t, h); !maps.Equal(got, links) {
		t.Fatalf("repeated apply changed links: %v → %v", links, got)
	}

	// m2 moves to another VTEP, m1 goes, the flood list shrinks, VLAN 0 is unbound.
	cfg.Switches[5000].Remote = map[l2.MAC]netip.Addr{m2: ip("192.0.2.4")}
	cfg.Switches[5000].Flood = []netip.Addr{ip("192.0.2.2")}
	cfg.Bindings = cfg.Bindings[:1]
	if _, err := d.Apply(ctx, cfg, true); err != nil {
		t.Fatal(err)
	}
	want = []string{"00:00:00:00:00:00 192.0.2.2", "02:00:00:00:00:02 192.0.2.4"}
	if got := fdbDump(t, h, "tsvx5000"); !slices.Equal(got, want) {
		t.Fatalf("FDB after change = %v, want %v", got, want)
	}
	after := linkIndexes(t, h)
	for name, idx := range after {
		if links[name] != idx {
			t.Errorf("%s recreated or new", name)
		}
	}
	if len(after) != len(links)-2 {
		t.Errorf("unbinding VLAN 0 should remove one veth pair: %v → %v", links, after)
	}

	if _, err := d.Apply(ctx, Config{TunnelIP: cfg.TunnelIP, Ports: []string{"eth1"}}, true); err != nil {
		t.Fatal(err)
	}
	if got := linkIndexes(t, h); len(got) != 0 {
		t.Fatalf("empty config left %v", got)
	}
}
