package vdsvlan_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vdsvlan"
	"github.com/torstitch/torstitch/vdsvlan/vcsimlab"
	"github.com/torstitch/torstitch/vtep/l2"
)

const (
	benchHosts      = 20
	benchPortGroups = 500
	benchVMs        = 2000
)

// benchLab builds the 500 port group / 2000 VM inventory (not timed).
func benchLab(b *testing.B) *vcsimlab.Lab {
	b.Helper()
	if testing.Short() {
		b.Skip("large simulator inventory; skipped with -short")
	}
	start := time.Now()
	lab := startLab(b, vcsimlab.Generate(benchHosts, benchPortGroups, benchVMs))
	b.Logf("simulator inventory of %d hosts, %d port groups, %d VMs built in %v",
		benchHosts, benchPortGroups, benchVMs, time.Since(start).Round(time.Millisecond))
	return lab
}

func heapMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// BenchmarkFullInventory: a fresh watcher connects, reads the whole
// inventory (tag policy, LLDP on every host) and publishes the desired set.
// Reports seconds per full sync, bytes allocated per sync and the heap the
// watcher holds afterwards.
func BenchmarkFullInventory(b *testing.B) {
	lab := benchLab(b)
	cfg := labConfig(b, lab)
	cfg.ResyncInterval = time.Hour
	var total time.Duration
	var allocMB, heldMB float64
	var snap vdsvlan.Snapshot
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		base := heapMB()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		log := slog.New(slog.NewTextHandler(testWriter{b}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		w, err := vdsvlan.New(cfg, log)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- w.Run(ctx) }()
		snap = waitFor(b, w, 5*time.Minute, "full sync", func(s vdsvlan.Snapshot) bool { return s.Valid })
		total += time.Since(start)
		runtime.ReadMemStats(&m1)
		allocMB += float64(m1.TotalAlloc-m0.TotalAlloc) / (1 << 20)
		heldMB += heapMB() - base
		cancel()
		<-done
	}
	b.StopTimer()
	if len(snap.Bindings) != benchPortGroups || len(snap.MACs) != benchVMs {
		b.Fatalf("got %d bindings and %d MACs, want %d and %d; conflicts %v",
			len(snap.Bindings), len(snap.MACs), benchPortGroups, benchVMs, snap.Conflicts)
	}
	n := float64(b.N)
	b.ReportMetric(total.Seconds()/n, "s/sync")
	b.ReportMetric(allocMB/n, "alloc-MB/sync")
	b.ReportMetric(heldMB/n, "held-MB")
	b.Logf("full sync of %d port groups + %d VMs: %.3f s, %.1f MB allocated, %.1f MB held; %d bindings, %d MACs",
		benchPortGroups, benchVMs, total.Seconds()/n, allocMB/n, heldMB/n, len(snap.Bindings), len(snap.MACs))
}

// BenchmarkWatchedChange: with a watcher synced on the large inventory, the
// time from a change in vCenter (a port group's VLAN, a VM added) to the new
// desired set.
func BenchmarkWatchedChange(b *testing.B) {
	lab := benchLab(b)
	cfg := labConfig(b, lab)
	cfg.ResyncInterval = time.Hour // changes must arrive through the watch
	w := runWatcher(b, cfg)
	waitFor(b, w, 5*time.Minute, "full sync", func(s vdsvlan.Snapshot) bool { return s.Valid })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var vlanTotal, vmTotal, vlanCall, vmCall, apply time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vlan := int32(3000 + i%1000)
		start := time.Now()
		if err := lab.SetPortGroupVLAN(ctx, vcsimlab.PortGroupSpec{Name: "pg-2", VLAN: &vlan}); err != nil {
			b.Fatal(err)
		}
		vlanCall += time.Since(start)
		s := waitFor(b, w, time.Minute, "VLAN change", func(s vdsvlan.Snapshot) bool {
			return len(s.Bindings) > 0 && s.Bindings[len(s.Bindings)-1].VLAN == l2.VLAN(vlan)
		})
		vlanTotal += time.Since(start)
		apply += s.Status.ApplyTime

		mac := fmt.Sprintf("02:00:00:00:%02x:%02x", (i>>8)&0xff, i&0xff)
		start = time.Now()
		err := lab.AddVM(ctx, vcsimlab.VMSpec{Name: fmt.Sprintf("bench%d", i), Host: "esx1",
			NICs: []vcsimlab.VMNICSpec{{PortGroup: "pg-3", MAC: mac}}})
		if err != nil {
			b.Fatal(err)
		}
		vmCall += time.Since(start)
		s = waitFor(b, w, time.Minute, "VM added", func(s vdsvlan.Snapshot) bool { _, ok := macOf(s, mac); return ok })
		vmTotal += time.Since(start)
		apply += s.Status.ApplyTime
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(vlanTotal.Seconds()*1000/n, "ms/vlan-change")
	b.ReportMetric(vmTotal.Seconds()*1000/n, "ms/vm-add")
	b.ReportMetric(apply.Seconds()*1000/(2*n), "ms/update-arrival-to-snapshot")
	b.ReportMetric((vlanTotal-vlanCall).Seconds()*1000/n, "ms/vlan-after-call")
	b.ReportMetric((vmTotal-vmCall).Seconds()*1000/n, "ms/vm-after-call")
	b.Logf("watched update arrival to new snapshot: %.1f ms (our processing; the rest is vcsim computing the update)", apply.Seconds()*1000/(2*n))
	b.Logf("change to new desired set on %d port groups + %d VMs: VLAN change %.1f ms (call %.1f ms), VM add %.1f ms (call %.1f ms)",
		benchPortGroups, benchVMs, vlanTotal.Seconds()*1000/n, vlanCall.Seconds()*1000/n, vmTotal.Seconds()*1000/n, vmCall.Seconds()*1000/n)
}
