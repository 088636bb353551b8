package vdsvlan_test

import (
	"context"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vdsvlan"
	"github.com/torstitch/torstitch/vdsvlan/vcsimlab"
	"github.com/torstitch/torstitch/vtep/l2"
)

// TestWatcherPolicies reads the lab with each VNI policy: single, trunk and
// PVLAN port groups, tags, LLDP and CDP neighbours, uplink filtering.
func TestWatcherPolicies(t *testing.T) {
	lab := startLab(t, labSpec())
	tests := []struct {
		name   string
		policy vdsvlan.VNIPolicy
		want   []l2.Binding
	}{
		{
			name:   "tag",
			policy: vdsvlan.VNIPolicy{Mode: "tag", Category: "torstitch"},
			// trunk 100-110 expands only to VLAN 100, the one VLAN with a VNI;
			// the isolated PVLAN binds secondary 301 and primary 300.
			want: []l2.Binding{binding(100, 10100, allPorts), binding(300, 20300, allPorts), binding(301, 20300, allPorts)},
		},
		{
			name:   "map",
			policy: vdsvlan.VNIPolicy{Mode: "map", Map: map[string]l2.VNI{"db": 5200, "vlan:105": 5105}},
			want:   []l2.Binding{binding(105, 5105, allPorts), binding(200, 5200, allPorts)},
		},
		{
			name:   "offset",
			policy: vdsvlan.VNIPolicy{Mode: "offset", Base: 10000},
			want: func() []l2.Binding {
				var out []l2.Binding
				for v := l2.VLAN(100); v <= 110; v++ {
					out = append(out, binding(v, 10000+l2.VNI(v), allPorts))
				}
				return append(out, binding(200, 10200, allPorts), binding(300, 10300, allPorts), binding(301, 10300, allPorts))
			}(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := labConfig(t, lab)
			cfg.VNIPolicy = tc.policy
			w := runWatcher(t, cfg)
			s := waitFor(t, w, 30*time.Second, "first sync", func(s vdsvlan.Snapshot) bool { return s.Valid })
			if !reflect.DeepEqual(s.Bindings, tc.want) {
				t.Errorf("bindings:\n got %v\nwant %v", s.Bindings, tc.want)
			}
			if len(s.Conflicts) != 0 {
				t.Errorf("conflicts: %q", s.Conflicts)
			}
			if s.Status.State != vdsvlan.StateConnected || s.Status.LastSync.IsZero() || s.Status.Generation == 0 {
				t.Errorf("status: %+v", s.Status)
			}
			m, ok := macOf(s, "00:50:56:00:00:01")
			wantVNI := map[string]l2.VNI{"tag": 10100, "map": 0, "offset": 10100}[tc.name]
			if wantVNI == 0 {
				if ok {
					t.Errorf("MAC listed on an unmapped port group: %+v", m)
				}
			} else if !ok || m.VNI != wantVNI || m.Host != "esx1" || m.VM != "web1" || m.PortGroup != "web" {
				t.Errorf("MAC: %+v (found %v)", m, ok)
			}
		})
	}
}

// TestWatcherChanges: VM add/move/remove, a VLAN reconfigured and a port
// group destroyed are each reflected within 1 s through the watch (the
// resync interval is a minute), and a new tag after a resync.
func TestWatcherChanges(t *testing.T) {
	lab := startLab(t, labSpec())
	cfg := labConfig(t, lab)
	cfg.ResyncInterval = time.Minute
	w := runWatcher(t, cfg)
	waitFor(t, w, 30*time.Second, "first sync", func(s vdsvlan.Snapshot) bool { return s.Valid })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const mac = "00:50:56:00:00:02"

	steps := []struct {
		name   string
		change func() error
		cond   func(vdsvlan.Snapshot) bool
	}{
		{"vm added", func() error {
			return lab.AddVM(ctx, vcsimlab.VMSpec{Name: "web2", Host: "esx1", NICs: []vcsimlab.VMNICSpec{{PortGroup: "web", MAC: mac}}})
		}, func(s vdsvlan.Snapshot) bool { m, ok := macOf(s, mac); return ok && m.Host == "esx1" && m.VNI == 10100 }},
		{"vm moved", func() error { return lab.MoveVM(ctx, "web2", "esx2") },
			func(s vdsvlan.Snapshot) bool { m, ok := macOf(s, mac); return ok && m.Host == "esx2" }},
		{"vm removed", func() error { return lab.RemoveVM(ctx, "web2") },
			func(s vdsvlan.Snapshot) bool { _, ok := macOf(s, mac); return !ok }},
		{"vlan reconfigured", func() error {
			return lab.SetPortGroupVLAN(ctx, vcsimlab.PortGroupSpec{Name: "web", VLAN: i32(150)})
		}, func(s vdsvlan.Snapshot) bool {
			return hasBinding(s, binding(150, 10100, allPorts)) && !hasBinding(s, binding(100, 10100, allPorts))
		}},
		{"port group destroyed", func() error { return lab.DestroyPortGroup(ctx, "iso") },
			func(s vdsvlan.Snapshot) bool {
				return !hasBinding(s, binding(300, 20300, allPorts)) && !hasBinding(s, binding(301, 20300, allPorts))
			}},
	}
	for _, st := range steps {
		start := time.Now()
		if err := st.change(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		s := waitFor(t, w, 10*time.Second, st.name, st.cond) // end to end, includes vcsim; the 1 s rule is on ApplyTime
		if s.Status.ApplyTime <= 0 || s.Status.ApplyTime > time.Second {
			t.Errorf("%s: update arrival to snapshot took %v", st.name, s.Status.ApplyTime)
		}
		t.Logf("%s: reflected after %v (%v after the update arrived)", st.name, time.Since(start).Round(time.Millisecond), s.Status.ApplyTime)
	}
	if s := w.Snapshot(); !reflect.DeepEqual(s.Bindings, []l2.Binding{binding(150, 10100, allPorts)}) {
		t.Errorf("final bindings: %v", s.Bindings)
	}
}

// TestWatcherResync: changes the property collector never reports (tags,
// LLDP neighbours) arrive with the next resync.
func TestWatcherResync(t *testing.T) {
	lab := startLab(t, labSpec())
	cfg := labConfig(t, lab)
	cfg.ResyncInterval = 2 * time.Second
	w := runWatcher(t, cfg)
	waitFor(t, w, 30*time.Second, "first sync", func(s vdsvlan.Snapshot) bool { return s.Valid })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := lab.AttachTag(ctx, "db", "vni:10200"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w, 10*time.Second, "tag on db", func(s vdsvlan.Snapshot) bool { return hasBinding(s, binding(200, 10200, allPorts)) })
	// esx2 recabled to eth7 on both switches.
	err := lab.SetNeighbours(ctx, "esx2", []vcsimlab.NICSpec{
		{Device: "vmnic0", LLDP: &vcsimlab.NeighbourSpec{Switch: "tor1", Port: "eth7"}},
		{Device: "vmnic1", LLDP: &vcsimlab.NeighbourSpec{Switch: "tor2", Port: "eth7"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := mustPorts("tor1:eth1", "tor1:eth7", "tor2:eth1", "tor2:eth7")
	waitFor(t, w, 10*time.Second, "recabled esx2", func(s vdsvlan.Snapshot) bool { return hasBinding(s, binding(200, 10200, want)) })
}

// TestWatcherConnectErrors: bad credentials, an untrusted certificate and an
// unreachable URL each give a clear error; thumbprint and insecure connect.
func TestWatcherConnectErrors(t *testing.T) {
	lab := startLab(t, labSpec())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + ln.Addr().String() + "/sdk"
	ln.Close()
	tests := []struct {
		name    string
		mutate  func(*vdsvlan.Config)
		state   string
		errText string
	}{
		{"bad password", func(c *vdsvlan.Config) {
			c.PasswordFile = ""
			t.Setenv(vdsvlan.EnvPassword, "wrong")
		}, vdsvlan.StateError, "vCenter login failed: invalid username or password"},
		{"untrusted certificate", func(c *vdsvlan.Config) { c.CAFile = "" }, vdsvlan.StateError, "vCenter certificate not trusted"},
		{"unreachable", func(c *vdsvlan.Config) { c.URL = closed }, vdsvlan.StateDisconnected, "vCenter unreachable"},
		{"thumbprint", func(c *vdsvlan.Config) { c.CAFile, c.Thumbprint = "", lab.Thumbprint }, vdsvlan.StateConnected, ""},
		{"insecure", func(c *vdsvlan.Config) { c.CAFile, c.Insecure = "", true }, vdsvlan.StateConnected, ""},
		{"datacenter", func(c *vdsvlan.Config) { c.Datacenter = "DC0" }, vdsvlan.StateConnected, ""},
		{"unknown datacenter", func(c *vdsvlan.Config) { c.Datacenter = "DC9" }, vdsvlan.StateDisconnected, `finding datacenter "DC9"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := labConfig(t, lab)
			tc.mutate(&cfg)
			w := runWatcher(t, cfg)
			s := waitFor(t, w, 30*time.Second, tc.state, func(s vdsvlan.Snapshot) bool { return s.Status.State == tc.state })
			if !strings.Contains(s.Status.Err, tc.errText) {
				t.Errorf("error %q does not contain %q", s.Status.Err, tc.errText)
			}
			if tc.state != vdsvlan.StateConnected && s.Valid {
				t.Errorf("snapshot valid without a sync: %+v", s)
			}
			if strings.Contains(s.Status.Err, lab.Password) {
				t.Errorf("password leaked into the status: %q", s.Status.Err)
			}
		})
	}
}

// TestWatcherFailStatic: vCenter stopped and restarted; the bindings stay
// throughout, and a change made while it was away shows after the restart.
func TestWatcherFailStatic(t *testing.T) {
	lab := startLab(t, labSpec())
	cfg := labConfig(t, lab)
	w := runWatcher(t, cfg)
	before := waitFor(t, w, 30*time.Second, "first sync", func(s vdsvlan.Snapshot) bool { return s.Valid })
	if len(before.Bindings) == 0 {
		t.Fatal("no bindings")
	}
	lab.Stop()
	down := waitFor(t, w, 30*time.Second, "disconnect", func(s vdsvlan.Snapshot) bool {
		return s.Status.State == vdsvlan.StateDisconnected || s.Status.State == vdsvlan.StateConnecting && s.Status.Err != ""
	})
	if !down.Valid || !reflect.DeepEqual(down.Bindings, before.Bindings) || !reflect.DeepEqual(down.MACs, before.MACs) {
		t.Fatalf("bindings changed while vCenter is down:\nbefore %v\nafter  %v", before.Bindings, down.Bindings)
	}
	// Still down through several retries: nothing is dropped.
	waitFor(t, w, 30*time.Second, "retrying", func(s vdsvlan.Snapshot) bool {
		return strings.Contains(s.Status.Err, "unreachable")
	})
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		select {
		case <-w.Changed():
		case <-time.After(100 * time.Millisecond):
		}
		if s := w.Snapshot(); !s.Valid || !reflect.DeepEqual(s.Bindings, before.Bindings) {
			t.Fatalf("bindings changed while retrying: %+v", s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := lab.DestroyPortGroup(ctx, "iso"); err != nil { // through the lab's own connection
		t.Fatal(err)
	}
	if err := lab.Restart(); err != nil {
		t.Fatal(err)
	}
	after := waitFor(t, w, 90*time.Second, "reconnect", func(s vdsvlan.Snapshot) bool {
		return s.Status.State == vdsvlan.StateConnected && s.Status.Err == ""
	})
	want := []l2.Binding{binding(100, 10100, allPorts)}
	if !reflect.DeepEqual(after.Bindings, want) {
		t.Errorf("after restart: %v, want %v", after.Bindings, want)
	}
}

// TestWatcherRelogin: a terminated (expired) session is replaced by a new
// login, and the bindings stay meanwhile.
func TestWatcherRelogin(t *testing.T) {
	lab := startLab(t, labSpec())
	w := runWatcher(t, labConfig(t, lab))
	before := waitFor(t, w, 30*time.Second, "first sync", func(s vdsvlan.Snapshot) bool { return s.Valid })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := lab.TerminateSessions(ctx)
	if err != nil || n == 0 {
		t.Fatalf("terminated %d sessions: %v", n, err)
	}
	waitFor(t, w, 30*time.Second, "session loss noticed", func(s vdsvlan.Snapshot) bool { return s.Status.Err != "" })
	after := waitFor(t, w, 30*time.Second, "logged in again", func(s vdsvlan.Snapshot) bool {
		return s.Status.State == vdsvlan.StateConnected && s.Status.LastSync.After(before.Status.LastSync)
	})
	if !reflect.DeepEqual(after.Bindings, before.Bindings) {
		t.Errorf("bindings changed: %v -> %v", before.Bindings, after.Bindings)
	}
}
