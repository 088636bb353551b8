package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vdsvlan/vcsimlab"
	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// publishLab is a switch pair (real ovsdb-servers) facing two ESXi hosts of
// a simulated vCenter (static host map), and an agent that publishes
// networks on DSwitch from the pool 3000-3099. The VNI policy is offset
// (base 10000): a published port group's VNI comes from its mark instead.
type publishLab struct {
	tor1, tor2 *vteptest.OVSDB
	lab        *vcsimlab.Lab
	cfg        *config.Config
}

func newPublishLab(t *testing.T) *publishLab {
	t.Helper()
	vteptest.RequireBinaries(t, "ovsdb-server", "vtep-ctl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := vcsimlab.Spec{
		Switches: []vcsimlab.SwitchSpec{{Name: "DSwitch"}},
		Hosts:    []vcsimlab.HostSpec{{Name: "esx1"}, {Name: "esx2"}},
	}
	dir := t.TempDir()
	lab, err := vcsimlab.Start(ctx, spec, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	user, pass := filepath.Join(dir, "vc.user"), filepath.Join(dir, "vc.pass")
	for f, v := range map[string]string{user: lab.Username, pass: lab.Password} {
		if err := os.WriteFile(f, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l := &publishLab{tor1: vteptest.StartOVSDB(t), tor2: vteptest.StartOVSDB(t), lab: lab}
	l.tor1.AddSwitch("tor1", "10.99.6.11", "eth1", "eth2")
	l.tor2.AddSwitch("tor2", "10.99.6.12", "eth1", "eth2")
	state := t.TempDir()
	l.cfg, err = config.Parse([]byte(fmt.Sprintf(`
agent: {name: pair1, api: "unix://%s/api.sock", state_dir: %s, resync: 2s}
switches:
  - {name: tor1, ovsdb: "unix:%s"}
  - {name: tor2, ovsdb: "unix:%s"}
vcenter:
  url: %s
  username_file: %s
  password_file: %s
  ca_file: %s
  resync_interval: 10s
  vni_policy: {mode: offset, base: 10000}
  host_ports: {mode: static, static: {esx1: ["tor1:eth1", "tor2:eth1"], esx2: ["tor1:eth2", "tor2:eth2"]}}
  publish_switch: DSwitch
  vlan_pool: 3000-3099
`, state, state, l.tor1.Sock, l.tor2.Sock, lab.URL.String(), user, pass, lab.CAFile)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// boundOnBoth reports whether VLAN is bound to VNI on eth1 and eth2 of both
// switches, as the switches' databases say.
func boundOnBoth(a *Agent, vlan l2.VLAN, vni l2.VNI) error {
	for _, s := range a.sw {
		o, err := s.client.ObservedWithoutRemote()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		for _, port := range []string{"eth1", "eth2"} {
			p := o.Ports[port]
			if p == nil {
				return fmt.Errorf("%s has no %s", s.name, port)
			}
			ls := o.Switches[p.VLANBindings[int(vlan)]]
			if ls == nil || plan.VNIOf(ls) != vni {
				return fmt.Errorf("%s:%s VLAN %d not bound to VNI %d", s.name, port, vlan, vni)
			}
		}
	}
	return nil
}

func unbound(a *Agent, vlan l2.VLAN) error {
	for _, s := range a.sw {
		o, err := s.client.ObservedWithoutRemote()
		if err != nil {
			return err
		}
		for name, p := range o.Ports {
			if _, ok := p.VLANBindings[int(vlan)]; ok {
				return fmt.Errorf("%s:%s still binds VLAN %d", s.name, name, vlan)
			}
		}
	}
	return nil
}

// TestAgentPublishNetwork: torctl's publish (through the API backend) →
// port group with a pool VLAN → binding on both switches (offset policy
// overridden by the mark) → a VM on it → its MAC in the VNI → unpublish
// refused naming the VM → after the VM is gone, unpublished and unbound;
// the torctl network survives an agent restart.
func TestAgentPublishNetwork(t *testing.T) {
	l := newPublishLab(t)
	r := startAgent(t, l.cfg)
	ctx := context.Background()
	n, err := r.a.Publish(ctx, api.PublishRequest{VNI: 10300, Name: "web-pub"})
	if err != nil || n.State != api.NetworkReady || n.VLAN != 3000 {
		t.Fatalf("Publish: %+v, %v", n, err)
	}
	eventually(t, 10*time.Second, "VLAN 3000 bound to VNI 10300 on both switches", func() error { return boundOnBoth(r.a, 3000, 10300) })
	if got := publishMetric(t, r.a, "torstitch_vcenter_published_networks", "ready"); got != 1 {
		t.Errorf("torstitch_vcenter_published_networks{state=ready} = %v, want 1", got)
	}
	if got := publishMetric(t, r.a, "torstitch_vcenter_publish_actions_total", "create"); got != 1 {
		t.Errorf("torstitch_vcenter_publish_actions_total{action=create} = %v, want 1", got)
	}

	if err := l.lab.AddVM(ctx, vcsimlab.VMSpec{Name: "pubvm", Host: "esx1",
		NICs: []vcsimlab.VMNICSpec{{PortGroup: "web-pub", MAC: "00:50:56:00:30:09"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the VM's MAC in VNI 10300", func() error {
		for _, m := range r.a.vc.Snapshot().MACs {
			if m.MAC == l2.MustMAC("00:50:56:00:30:09") && m.VNI == 10300 {
				return nil
			}
		}
		return errors.New("not yet")
	})
	err = r.a.Unpublish(ctx, api.UnpublishRequest{VNI: 10300})
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "pubvm") {
		t.Fatalf("Unpublish while attached: %v", err)
	}
	t.Logf("refused: %v", err)
	ns, _ := r.a.Networks(ctx)
	if len(ns.Networks) != 1 || !slices.Equal(ns.Networks[0].VMs, []string{"pubvm"}) {
		t.Fatalf("Networks: %+v", ns)
	}

	// Restart: the torctl network is persisted; nothing is created twice.
	r.stop()
	r = startAgent(t, l.cfg)
	eventually(t, 20*time.Second, "ready after restart", func() error {
		ns, _ := r.a.Networks(ctx)
		if len(ns.Networks) != 1 || ns.Networks[0].State != api.NetworkReady {
			return fmt.Errorf("%+v", ns)
		}
		return nil
	})
	count := 0
	for _, pg := range l.lab.PortGroups() {
		if pg.Name == "web-pub" {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("%d port groups named web-pub after restart", count)
	}

	if err := l.lab.RemoveVM(ctx, "pubvm"); err != nil {
		t.Fatal(err)
	}
	if err := r.a.Unpublish(ctx, api.UnpublishRequest{VNI: 10300}); err != nil {
		t.Fatalf("Unpublish: %v", err)
	}
	eventually(t, 10*time.Second, "VLAN 3000 unbound", func() error { return unbound(r.a, 3000) })
	// A refused publish (name taken by a port group not ours) is undone.
	if err := l.lab.AddPortGroup(ctx, vcsimlab.PortGroupSpec{Name: "taken", VLAN: ptr(int32(5))}); err != nil {
		t.Fatal(err)
	}
	_, err = r.a.Publish(ctx, api.PublishRequest{VNI: 10302, Name: "taken"})
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), `name "taken" is taken by port group`) {
		t.Fatalf("Publish of a taken name: %v", err)
	}
	t.Logf("refused: %v", err)
	if ns, _ := r.a.Networks(ctx); len(ns.Networks) != 0 {
		t.Fatalf("refused publish left %+v", ns.Networks)
	}
	if b, _ := os.ReadFile(filepath.Join(l.cfg.Agent.StateDir, "networks.json")); strings.Contains(string(b), "10302") {
		t.Fatalf("refused publish persisted: %s", b)
	}
}

func ptr[T any](v T) *T { return &v }

// publishMetric reads a published-network series by its one label value.
func publishMetric(t *testing.T, a *Agent, name, label string) float64 {
	t.Helper()
	mfs, err := a.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				if m.GetGauge() != nil {
					return m.GetGauge().GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s}", name, label)
	return 0
}

// TestPublishBenchmark measures publish → port group created and bound on
// both switches, 20 times (figures in docs/benchmarks.md). Not a timed
// assertion: it prints the distribution.
func TestPublishBenchmark(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark")
	}
	l := newPublishLab(t)
	r := startAgent(t, l.cfg)
	ctx := context.Background()
	var lat, api1 []time.Duration
	for i := range 20 {
		vni := l2.VNI(10400 + i)
		t0 := time.Now()
		n, err := r.a.Publish(ctx, api.PublishRequest{VNI: vni, Name: fmt.Sprintf("bench-%02d", i)})
		if err != nil || n.State != api.NetworkReady {
			t.Fatalf("Publish %d: %+v, %v", vni, n, err)
		}
		t1 := time.Now()
		deadline := t0.Add(30 * time.Second)
		for boundOnBoth(r.a, n.VLAN, vni) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("VNI %d not bound: %v", vni, boundOnBoth(r.a, n.VLAN, vni))
			}
			time.Sleep(2 * time.Millisecond)
		}
		lat = append(lat, time.Since(t0))
		api1 = append(api1, t1.Sub(t0))
	}
	slices.Sort(lat)
	slices.Sort(api1)
	p := func(s []time.Duration, q float64) time.Duration { return s[int(q*float64(len(s)-1)+0.5)] }
	t.Logf("publish → bound on both switches, n=%d: min %v p50 %v p90 %v p99 %v max %v",
		len(lat), lat[0].Round(time.Millisecond), p(lat, .5).Round(time.Millisecond), p(lat, .9).Round(time.Millisecond),
		p(lat, .99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	t.Logf("of which the API call (port group created and owned): p50 %v p99 %v",
		p(api1, .5).Round(time.Millisecond), p(api1, .99).Round(time.Millisecond))
}
