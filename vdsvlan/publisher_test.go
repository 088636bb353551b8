package vdsvlan_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vdsvlan"
	"github.com/torstitch/torstitch/vdsvlan/publish"
	"github.com/torstitch/torstitch/vdsvlan/vcsimlab"
	"github.com/torstitch/torstitch/vtep/l2"
)

// publishConfig is labConfig with publishing on DSwitch from pool.
func publishConfig(t testing.TB, lab *vcsimlab.Lab, pool string) vdsvlan.Config {
	cfg := labConfig(t, lab)
	cfg.PublishSwitch, cfg.VLANPool = "DSwitch", pool
	return cfg
}

// runPublisher starts a publisher owned by agent "pair1"; stopped at cleanup.
func runPublisher(t testing.TB, cfg vdsvlan.Config) *vdsvlan.Publisher {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := vdsvlan.NewPublisher(cfg, "pair1", log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("publisher Run did not return after cancel")
		}
	})
	return p
}

func syncPub(t testing.TB, p *vdsvlan.Publisher) vdsvlan.PublisherStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return p.Status()
}

func netStatus(t testing.TB, st vdsvlan.PublisherStatus, vni l2.VNI) publish.Status {
	t.Helper()
	for _, n := range st.Networks {
		if n.VNI == vni {
			return n
		}
	}
	t.Fatalf("VNI %d not in status %+v", vni, st)
	return publish.Status{}
}

func pgsNamed(lab *vcsimlab.Lab, name string) []vcsimlab.PortGroupInfo {
	var out []vcsimlab.PortGroupInfo
	for _, pg := range lab.PortGroups() {
		if pg.Name == name {
			out = append(out, pg)
		}
	}
	return out
}

func ownedBy(pg vcsimlab.PortGroupInfo, want string) bool {
	for _, v := range pg.CustomValue {
		if v == want {
			return true
		}
	}
	return false
}

// TestPublishLifecycle: publish → port group with a pool VLAN, owned →
// binding on the ports of both switches (through the watcher, from the
// mark) → a VM NIC attached → its MAC in the VNI → unpublish refused naming
// the VM → detached → unpublished: port group and binding gone.
func TestPublishLifecycle(t *testing.T) {
	lab := startLab(t, labSpec())
	cfg := publishConfig(t, lab, "3000-3099")
	w := runWatcher(t, cfg)
	p := runPublisher(t, cfg)
	waitFor(t, w, 30*time.Second, "first sync", func(s vdsvlan.Snapshot) bool { return s.Valid })

	p.SetDesired([]publish.Network{{VNI: 10300, Name: "pub-web", Source: publish.SourceTorctl}})
	st := syncPub(t, p)
	n := netStatus(t, st, 10300)
	if n.State != publish.StateReady || n.VLAN != 3000 || n.PortGroup == "" {
		t.Fatalf("status %+v, want ready on VLAN 3000", n)
	}
	pgs := pgsNamed(lab, "pub-web")
	if len(pgs) != 1 || pgs[0].VLAN != 3000 || pgs[0].Switch != "DSwitch" || !ownedBy(pgs[0], "torstitch:owner=pair1,vni=10300") {
		t.Fatalf("port groups named pub-web: %+v", pgs)
	}
	waitFor(t, w, 10*time.Second, "binding 3000→10300 on both switches", func(s vdsvlan.Snapshot) bool {
		return hasBinding(s, binding(3000, 10300, allPorts))
	})

	ctx := context.Background()
	if err := lab.AddVM(ctx, vcsimlab.VMSpec{Name: "pubvm1", Host: "esx1",
		NICs: []vcsimlab.VMNICSpec{{PortGroup: "pub-web", MAC: "00:50:56:00:30:01"}}}); err != nil {
		t.Fatal(err)
	}
	s := waitFor(t, w, 10*time.Second, "the VM's MAC in VNI 10300", func(s vdsvlan.Snapshot) bool {
		m, ok := macOf(s, "00:50:56:00:30:01")
		return ok && m.VNI == 10300
	})
	t.Logf("MAC learned: %+v", must(macOf(s, "00:50:56:00:30:01")))
	if n := netStatus(t, syncPub(t, p), 10300); !slices.Equal(n.VMs, []string{"pubvm1"}) {
		t.Errorf("status VMs %v, want [pubvm1]", n.VMs)
	}

	err := p.CheckUnpublish(ctx, 10300)
	if !errors.Is(err, vdsvlan.ErrAttached) || !strings.Contains(err.Error(), "pubvm1") {
		t.Fatalf("CheckUnpublish while attached: %v, want ErrAttached naming pubvm1", err)
	}
	t.Logf("unpublish refused: %v", err)
	// Even if the desired set drops it, an attached port group is kept.
	p.SetDesired(nil)
	n = netStatus(t, syncPub(t, p), 10300)
	if n.State != publish.StateRetiring || len(pgsNamed(lab, "pub-web")) != 1 {
		t.Fatalf("unpublished while attached: %+v", n)
	}

	if err := lab.RemoveVM(ctx, "pubvm1"); err != nil {
		t.Fatal(err)
	}
	if err := p.CheckUnpublish(ctx, 10300); err != nil {
		t.Fatalf("CheckUnpublish after detaching: %v", err)
	}
	st = syncPub(t, p)
	if len(pgsNamed(lab, "pub-web")) != 0 || len(st.Networks) != 0 {
		t.Fatalf("after unpublish: port groups %+v, status %+v", pgsNamed(lab, "pub-web"), st)
	}
	waitFor(t, w, 10*time.Second, "binding 3000 gone", func(s vdsvlan.Snapshot) bool {
		return !slices.ContainsFunc(s.Bindings, func(b l2.Binding) bool { return b.VLAN == 3000 })
	})
	if st.Counts.Created != 1 || st.Counts.Deleted != 1 {
		t.Errorf("counts %+v", st.Counts)
	}
}

func must[T any](v T, _ bool) T { return v }

// TestPublishRefused: bad requests end in an error status naming the input
// and leave nothing in vCenter.
func TestPublishRefused(t *testing.T) {
	lab := startLab(t, labSpec())
	tests := []struct {
		name, sw, pool string
		net            publish.Network
		want           string
	}{
		{"pool exhausted", "DSwitch", "100,200", publish.Network{VNI: 10301, Name: "full"}, "VLAN pool 100,200 exhausted on switch DSwitch"},
		{"name taken", "DSwitch", "3000-3099", publish.Network{VNI: 10302, Name: "db"}, `name "db" is taken by port group`},
		{"explicit VLAN used", "DSwitch", "3000-3099", publish.Network{VNI: 10303, Name: "v200", VLAN: 200}, `VLAN 200 is used by port group "db"`},
		{"switch missing", "NoSuchSwitch", "3000-3099", publish.Network{VNI: 10304, Name: "nosw"}, `distributed switch "NoSuchSwitch" not found`},
	}
	before := len(lab.PortGroups())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := labConfig(t, lab)
			cfg.PublishSwitch, cfg.VLANPool = tc.sw, tc.pool
			p := runPublisher(t, cfg)
			p.SetDesired([]publish.Network{tc.net})
			st := syncPub(t, p)
			n := netStatus(t, st, tc.net.VNI)
			if n.State != publish.StateError || !strings.Contains(n.Error, tc.want) {
				t.Fatalf("status %+v, want error containing %q", n, tc.want)
			}
			t.Logf("%s: %s", tc.name, n.Error)
			if got := len(lab.PortGroups()); got != before {
				t.Fatalf("%d port groups, want %d (nothing made)", got, before)
			}
			if st.Counts.Errors == 0 {
				t.Errorf("errors not counted: %+v", st.Counts)
			}
		})
	}
}

// TestPublishRestartAdopts: a crash between the create and the ownership
// field leaves a port group with the mark in its description only; a
// restarted publisher adopts it (no duplicate, no orphan), and a second
// restart finds nothing to do.
func TestPublishRestartAdopts(t *testing.T) {
	lab := startLab(t, labSpec())
	mark := publish.Mark{Owner: "pair1", VNI: 10310}
	if err := lab.AddPortGroup(context.Background(), vcsimlab.PortGroupSpec{Name: "half", VLAN: i32(3005), Description: mark.Description()}); err != nil {
		t.Fatal(err)
	}
	cfg := publishConfig(t, lab, "3000-3099")
	cfg.Publish = []publish.Network{{VNI: 10310, Name: "half"}}
	for round := range 2 {
		p := runPublisher(t, cfg)
		st := syncPub(t, p)
		n := netStatus(t, st, 10310)
		pgs := pgsNamed(lab, "half")
		if n.State != publish.StateReady || n.VLAN != 3005 || len(pgs) != 1 || !ownedBy(pgs[0], mark.String()) {
			t.Fatalf("round %d: status %+v, port groups %+v", round, n, pgs)
		}
		wantAdopted := uint64(1 - round)
		if st.Counts.Created != 0 || st.Counts.Adopted != wantAdopted {
			t.Fatalf("round %d: counts %+v, want adopted %d and nothing created", round, st.Counts, wantAdopted)
		}
	}
	// A port group that carries another agent's mark is not ours: its name is taken.
	other := publish.Mark{Owner: "pair2", VNI: 10311}
	if err := lab.AddPortGroup(context.Background(), vcsimlab.PortGroupSpec{Name: "theirs", VLAN: i32(3006), Description: other.Description()}); err != nil {
		t.Fatal(err)
	}
	cfg.Publish = append(cfg.Publish, publish.Network{VNI: 10311, Name: "theirs"})
	p := runPublisher(t, cfg)
	n := netStatus(t, syncPub(t, p), 10311)
	if n.State != publish.StateError || !strings.Contains(n.Error, "does not own") {
		t.Fatalf("another agent's port group: %+v", n)
	}
}

// TestPublishDrift: an admin's rename, re-VLAN or deletion of an owned port
// group is reported (status drift, log) and undone: the policy is that the
// published network is the desired state.
func TestPublishDrift(t *testing.T) {
	lab := startLab(t, labSpec())
	cfg := publishConfig(t, lab, "3000-3099")
	p := runPublisher(t, cfg)
	p.SetDesired([]publish.Network{{VNI: 10320, Name: "drifty"}})
	if n := netStatus(t, syncPub(t, p), 10320); n.State != publish.StateReady || n.VLAN != 3000 {
		t.Fatalf("publish: %+v", n)
	}
	ctx := context.Background()
	tests := []struct {
		name   string
		change func() error
		drift  string
	}{
		{"renamed", func() error { return lab.RenamePortGroup(ctx, "drifty", "renamed-by-admin") }, `renamed to "renamed-by-admin"`},
		{"re-VLANed", func() error {
			return lab.SetPortGroupVLAN(ctx, vcsimlab.PortGroupSpec{Name: "drifty", VLAN: i32(3050)})
		}, "VLAN changed to 3050"},
		{"deleted", func() error { return lab.DestroyPortGroup(ctx, "drifty") }, "deleted in vCenter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.change(); err != nil {
				t.Fatal(err)
			}
			st := syncPub(t, p)
			n := netStatus(t, st, 10320)
			pgs := pgsNamed(lab, "drifty")
			if n.State != publish.StateReady || !strings.Contains(n.Drift, tc.drift) {
				t.Fatalf("status %+v, want ready with drift %q", n, tc.drift)
			}
			if len(pgs) != 1 || pgs[0].VLAN != 3000 || !ownedBy(pgs[0], "torstitch:owner=pair1,vni=10320") {
				t.Fatalf("port group not restored: %+v", pgs)
			}
			t.Logf("%s: drift %q; counts %+v", tc.name, n.Drift, st.Counts)
		})
	}
}

// TestPublishFailStatic: with vCenter gone the statuses stay, the state says
// why, nothing is deleted; after it comes back the publisher carries on.
func TestPublishFailStatic(t *testing.T) {
	lab := startLab(t, labSpec())
	cfg := publishConfig(t, lab, "3000-3099")
	p := runPublisher(t, cfg)
	p.SetDesired([]publish.Network{{VNI: 10330, Name: "steady"}})
	syncPub(t, p)
	lab.Stop()
	p.SetDesired([]publish.Network{{VNI: 10330, Name: "steady"}, {VNI: 10331, Name: "later"}})
	st := syncPub(t, p)
	if st.State == vdsvlan.StateConnected || netStatus(t, st, 10330).State != publish.StateReady {
		t.Fatalf("vCenter down: %+v", st)
	}
	if n := netStatus(t, st, 10331); n.State != publish.StatePending {
		t.Fatalf("new network while vCenter is down: %+v", n)
	}
	t.Logf("vCenter down: state %s: %s", st.State, st.Err)
	if err := lab.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st = syncPub(t, p)
		if st.State == vdsvlan.StateConnected && netStatus(t, st, 10331).State == publish.StateReady {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(pgsNamed(lab, "steady")) != 1 || len(pgsNamed(lab, "later")) != 1 {
		t.Fatalf("port groups after recovery: %+v", lab.PortGroups())
	}
}
