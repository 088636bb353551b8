package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// TestAgentSwitchFaults: a switch that reports it cannot do source-node
// replication gets service-node replication with the configured service
// nodes; every fault shows in the API and in the metrics.
func TestAgentSwitchFaults(t *testing.T) {
	s := vteptest.StartOVSDB(t)
	s.AddSwitch("tor1", "192.0.2.1", "eth1", "eth2")
	r := startAgent(t, singleSwitchConfig(t, s, "evpn: {service_nodes: [192.0.2.50]}"))
	ctx := context.Background()
	if err := r.a.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1"}}); err != nil {
		t.Fatal(err)
	}
	if got := s.VtepCtl("get", "Logical_Switch", "vni10100", "replication_mode"); got != "source_node" {
		t.Fatalf("replication before the fault: %q", got)
	}
	s.VtepCtl("set", "Physical_Switch", "tor1", "switch_fault_status=unsupported_source_node_replication")
	s.VtepCtl("set", "Physical_Port", "eth2", "port_fault_status=invalid_vlan_map")
	eventually(t, 10*time.Second, "service-node fallback", func() error {
		if got := s.VtepCtl("get", "Logical_Switch", "vni10100", "replication_mode"); got != "service_node" {
			return fmt.Errorf("replication_mode %q", got)
		}
		if out := s.VtepCtl("list-remote-macs", "vni10100"); !strings.Contains(out, "unknown-dst -> vxlan_over_ipv4/192.0.2.50") {
			return fmt.Errorf("flood list:\n%s", out)
		}
		return nil
	})
	sw, err := r.a.Switches(ctx)
	if err != nil || len(sw) != 1 {
		t.Fatal(sw, err)
	}
	if sw[0].Replication != "service_node" || len(sw[0].Faults) != 1 || sw[0].Faults[0] != "unsupported_source_node_replication" ||
		len(sw[0].PortFaults["eth2"]) != 1 {
		t.Fatalf("switch view = %+v", sw[0])
	}
	if err := r.a.waitPass(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(r.a.Metrics(), "torstitch_switch_fault")
	if err != nil || n != 2 {
		t.Fatalf("torstitch_switch_fault series = %d (%v), want 2", n, err)
	}
	for _, name := range []string{"torstitch_reconciles_total", "torstitch_reconcile_duration_seconds", "torstitch_ovsdb_transactions_total",
		"torstitch_ovsdb_rows_written_total", "torstitch_local_macs", "torstitch_remote_macs", "torstitch_switch_connected", "torstitch_bindings"} {
		if c, err := testutil.GatherAndCount(r.a.Metrics(), name); err != nil || c == 0 {
			t.Errorf("metric %s: %d series (%v)", name, c, err)
		}
	}
}
