package agent

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/torstitch/torstitch/vdsvlan"
	"github.com/torstitch/torstitch/vtep/buildinfo"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
)

// metrics are the agent's Prometheus series, registered on their own registry.
type metrics struct {
	reg             *prometheus.Registry
	reconciles      *prometheus.CounterVec
	reconcileSecs   prometheus.Histogram
	transactions    *prometheus.CounterVec
	rows            *prometheus.CounterVec
	localMACs       *prometheus.GaugeVec
	remoteMACs      *prometheus.GaugeVec
	switchUp        *prometheus.GaugeVec
	switchFaults    *prometheus.GaugeVec
	peerUp          *prometheus.GaugeVec
	vcenterUp       prometheus.Gauge
	droppedRoutes   *prometheus.Desc // a counter kept by the speaker
	conflicts       prometheus.Gauge
	switchConflicts *prometheus.GaugeVec
	frozenMACs      prometheus.Gauge
	bindingsByType  *prometheus.GaugeVec
	inboundRefused  *prometheus.CounterVec
	bfdDown         *prometheus.GaugeVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "torstitch_reconciles_total",
			Help: "Reconcile passes, by result."}, []string{"result"}),
		reconcileSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "torstitch_reconcile_duration_seconds",
			Help: "Duration of reconcile passes.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "torstitch_ovsdb_transactions_total",
			Help: "OVSDB transactions sent, per switch."}, []string{"switch"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "torstitch_ovsdb_rows_written_total",
			Help: "OVSDB operations (rows) written, per switch."}, []string{"switch"}),
		localMACs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "torstitch_local_macs",
			Help: "MACs the switch learned (Ucast_Macs_Local)."}, []string{"switch"}),
		remoteMACs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "torstitch_remote_macs",
			Help: "Remote MACs desired on the switch (Ucast_Macs_Remote)."}, []string{"switch"}),
		switchUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "torstitch_switch_connected",
			Help: "1 when the switch database is connected and synced."}, []string{"switch"}),
		switchFaults: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "torstitch_switch_fault",
			Help: "1 for each fault a switch or port reports (switch_fault_status, port_fault_status)."}, []string{"switch", "port", "fault"}),
		peerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "torstitch_bgp_peer_established",
			Help: "1 when the BGP session is established."}, []string{"peer"}),
		vcenterUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "torstitch_vcenter_connected",
			Help: "1 when vCenter discovery is connected."}),
		droppedRoutes: prometheus.NewDesc("torstitch_evpn_dropped_routes_total",
			"Received EVPN routes dropped, by reason.", []string{"reason"}, nil),
		conflicts: prometheus.NewGauge(prometheus.GaugeOpts{Name: "torstitch_binding_conflicts",
			Help: "Bindings reported as conflicts and not applied."}),
		switchConflicts: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "torstitch_switch_conflicts",
			Help: "VNIs and bindings a switch's last plan held back: they collide with rows torstitch does not manage or with the switch's ports."},
			[]string{"switch"}),
		frozenMACs: prometheus.NewGauge(prometheus.GaugeOpts{Name: "torstitch_evpn_frozen_macs",
			Help: "MACs frozen by duplicate detection."}),
		bindingsByType: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "torstitch_bindings",
			Help: "Desired bindings (port, VLAN), by source."}, []string{"source"}),
		inboundRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "torstitch_ovsdb_inbound_refused_total",
			Help: "Inbound OVSDB connections refused, by reason (tls_handshake, certificate, not_ovsdb, timeout, unknown, ambiguous, duplicate)."},
			[]string{"reason"}),
		bfdDown: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "torstitch_bfd_down_tunnels",
			Help: "Remote VTEPs whose tunnel BFD the switch reports down after having been up (withdrawn from that switch)."}, []string{"switch"}),
	}
	m.reg.MustRegister(m.bfdDown)
	m.reg.MustRegister(m.reconciles, m.reconcileSecs, m.transactions, m.rows, m.localMACs, m.remoteMACs,
		m.switchUp, m.switchFaults, m.vcenterUp, m.conflicts, m.switchConflicts, m.bindingsByType, m.inboundRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(buildInfoGauge(buildinfo.Get()))
	return m
}

// buildInfoGauge is torstitch_build_info{version,goversion,revision} 1, the
// Prometheus convention for joining a build's identity onto other series.
func buildInfoGauge(bi buildinfo.Info) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "torstitch_build_info",
		Help: "Always 1; the labels identify the running toragent build."}, []string{"version", "goversion", "revision"})
	g.WithLabelValues(bi.Version, bi.GoVersion, bi.Revision).Set(1)
	return g
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (a *Agent) updateGauges(views []SwitchView, obs map[string]*plan.Observed, out Outputs, bindings []l2.Binding) {
	m := a.met
	m.switchFaults.Reset()
	for _, v := range views {
		m.switchUp.WithLabelValues(v.Name).Set(boolGauge(v.Connected))
		m.localMACs.WithLabelValues(v.Name).Set(float64(len(v.LocalMACs)))
		if d := out.PerSwitch[v.Name]; d != nil {
			m.remoteMACs.WithLabelValues(v.Name).Set(float64(len(d.RemoteMACs)))
		}
		if o := obs[v.Name]; o != nil {
			for _, f := range o.PhysicalSwitch.SwitchFaultStatus {
				m.switchFaults.WithLabelValues(v.Name, "", f).Set(1)
			}
			for name, p := range o.Ports {
				for _, f := range p.PortFaultStatus {
					m.switchFaults.WithLabelValues(v.Name, name, f).Set(1)
				}
			}
		}
	}
	m.conflicts.Set(float64(len(out.Conflicts)))
	bySource := map[string]int{}
	for _, b := range bindings {
		bySource[b.Source] += len(b.Ports)
	}
	for _, src := range []string{l2.SourceConfig, l2.SourceTorctl, l2.SourceVCenter} {
		m.bindingsByType.WithLabelValues(src).Set(float64(bySource[src]))
	}
	if a.vc != nil {
		m.vcenterUp.Set(boolGauge(a.vc.Snapshot().Status.State == vdsvlan.StateConnected))
	}
}

// speakerCollector reads the EVPN speaker's peers and counters when
// Prometheus scrapes, not on every reconcile pass (listing peers is a call
// into GoBGP's loop).
type speakerCollector struct {
	a *Agent
}

func (c speakerCollector) Describe(ch chan<- *prometheus.Desc) {
	c.a.met.peerUp.Describe(ch)
	ch <- c.a.met.droppedRoutes
	c.a.met.frozenMACs.Describe(ch)
}

func (c speakerCollector) Collect(ch chan<- prometheus.Metric) {
	m, sp := c.a.met, c.a.speaker
	if sp != nil {
		st := sp.Stats()
		for reason, n := range st.Dropped {
			ch <- prometheus.MustNewConstMetric(m.droppedRoutes, prometheus.CounterValue, float64(n), reason)
		}
		m.frozenMACs.Set(float64(len(st.Frozen)))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if peers, err := sp.Peers(ctx); err == nil {
			for _, p := range peers {
				m.peerUp.WithLabelValues(p.Address.String()).Set(boolGauge(p.State == "established"))
			}
		}
		cancel()
	}
	m.peerUp.Collect(ch)
	m.frozenMACs.Collect(ch)
}
