package client

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	libovsdb "github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vtepdb"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// seedSwitch creates a Physical_Switch with ports, as the switch's own
// agent would, through a plain libovsdb client.
func seedSwitch(t *testing.T, endpoint, name string, ports ...string) {
	t.Helper()
	dbm, _ := vtepdb.FullDatabaseModel()
	discard := logr.Discard()
	c, err := libovsdb.NewOVSDBClient(dbm, libovsdb.WithEndpoint(endpoint), libovsdb.WithLogger(&discard))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ops []ovsdb.Operation
	var refs []any
	for i, p := range ports {
		n := "p" + string(rune('a'+i))
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: vtepdb.PhysicalPortTable, UUIDName: n, Row: ovsdb.Row{"name": p}})
		refs = append(refs, ovsdb.UUID{GoUUID: n})
	}
	// Physical_Switch is not a root table: the Global row must refer to it.
	ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: vtepdb.PhysicalSwitchTable, UUIDName: "ps",
		Row: ovsdb.Row{"name": name, "ports": ovsdb.OvsSet{GoSet: refs}, "tunnel_ips": ovsdb.OvsSet{GoSet: []any{"192.0.2.100"}}}},
		ovsdb.Operation{Op: ovsdb.OperationInsert, Table: vtepdb.GlobalTable,
			Row: ovsdb.Row{"switches": ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: "ps"}}}}})
	res, err := c.Transact(ctx, ops...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		t.Fatal(err)
	}
}

// TestInMemoryConvergence is the fast unit test of the applier: named
// UUIDs across batches, the client's copy of Ucast_Macs_Remote, and zero
// transactions in steady state, on libovsdb's in-memory server.
func TestInMemoryConvergence(t *testing.T) {
	ep := vteptest.InMemory(t)
	seedSwitch(t, ep, "tor1", "eth1", "eth2", "eth3")
	c := startClientConfig(t, Config{Name: "tor1", Endpoint: ep, BatchRows: 7})
	d := desiredBase()
	more := scaleDesired(40, 2, 3)
	d.LogicalSwitches = append(d.LogicalSwitches, more.LogicalSwitches...)
	d.RemoteMACs = append(d.RemoteMACs, more.RemoteMACs...)
	for v, f := range more.Flood {
		d.Flood[v] = f
	}
	res := reconcile(t, c, d)
	if res.Transactions < 8 {
		t.Fatalf("batches of 7 rows: only %d transactions", res.Transactions)
	}
	if c.RemoteCount() != 43 {
		t.Fatalf("client's copy holds %d remote MACs, want 43", c.RemoteCount())
	}
	waitFor(t, "cache to see the logical switches", 5*time.Second, func() bool {
		o, err := c.Observed()
		return err == nil && len(o.Switches) == 4
	})
	if res := reconcile(t, c, d); res.Transactions != 0 {
		t.Fatalf("steady state: %d transactions", res.Transactions)
	}
	// Withdraw half of the scale MACs and move one: deletes and an update.
	d.RemoteMACs = d.RemoteMACs[:23]
	d.RemoteMACs[0].VTEP = ip("192.0.2.99")
	if res := reconcile(t, c, d); res.Changes != 21 {
		t.Fatalf("withdraw 20 + move 1: %d changes", res.Changes)
	}
	if c.RemoteCount() != 23 {
		t.Fatalf("copy holds %d after withdrawals", c.RemoteCount())
	}
	if res := reconcile(t, c, d); res.Transactions != 0 {
		t.Fatalf("steady state after withdrawals: %d transactions", res.Transactions)
	}
	if res := reconcile(t, c, &plan.Desired{}); res.Transactions == 0 || c.RemoteCount() != 0 {
		t.Fatalf("removing everything: %d transactions, %d left", res.Transactions, c.RemoteCount())
	}
}
