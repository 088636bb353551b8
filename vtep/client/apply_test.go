package client

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// TestBuilders checks that every kind of change the planner emits has its
// operations here.
func TestBuilders(t *testing.T) {
	for _, o := range plan.Ops() {
		if int(o) >= len(builders) || builders[o] == nil {
			t.Errorf("no builder for %v", o)
		}
	}
}

// TestOperations pins what each kind of change sends, column by column,
// with the schema's names spelt out here independently of vtepdb. Inserts
// leave out the columns whose value is the default.
func TestOperations(t *testing.T) {
	const (
		ls1  = "11111111-1111-1111-1111-111111111111"
		port = "22222222-2222-2222-2222-222222222222"
		row  = "33333333-3333-3333-3333-333333333333"
		loc1 = "44444444-4444-4444-4444-444444444444"
	)
	vtep1, vtep2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	mac := l2.MustMAC("02:00:00:00:00:01")
	where := func(u string) []ovsdb.Condition {
		return []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: u}}}
	}
	set := func(v ...any) ovsdb.OvsSet { return ovsdb.OvsSet{GoSet: v} }
	ref := func(u string) ovsdb.UUID { return ovsdb.UUID{GoUUID: u} }
	newLoc := func(name, ip string) ovsdb.Operation {
		return ovsdb.Operation{Op: "insert", Table: "Physical_Locator", UUIDName: name,
			Row: ovsdb.Row{"encapsulation_type": "vxlan_over_ipv4", "dst_ip": ip}}
	}
	for _, tc := range []struct {
		name string
		c    plan.Change
		want []ovsdb.Operation
	}{
		{"ls-create", plan.Change{Op: plan.LSCreate, VNI: 5000, Name: "vni5000"}, []ovsdb.Operation{{Op: "insert", Table: "Logical_Switch", UUIDName: "ls1",
			Row: ovsdb.Row{"name": "vni5000", "description": "managed by torstitch", "tunnel_key": set(5000),
				"other_config": ovsdb.OvsMap{GoMap: map[any]any{"managed-by": "torstitch"}}}}}},
		{"ls-create with replication mode", plan.Change{Op: plan.LSCreate, VNI: 5000, Name: "vni5000", ReplicationMode: "source_node"}, []ovsdb.Operation{{Op: "insert", Table: "Logical_Switch", UUIDName: "ls1",
			Row: ovsdb.Row{"name": "vni5000", "description": "managed by torstitch", "tunnel_key": set(5000),
				"other_config": ovsdb.OvsMap{GoMap: map[any]any{"managed-by": "torstitch"}}, "replication_mode": set("source_node")}}}},
		{"ls-update", plan.Change{Op: plan.LSUpdate, UUID: row, VNI: 5000, Name: "x"}, []ovsdb.Operation{{Op: "update", Table: "Logical_Switch", Where: where(row),
			Row: ovsdb.Row{"name": "x", "tunnel_key": set(5000)}}}},
		{"ls-update with replication mode", plan.Change{Op: plan.LSUpdate, UUID: row, VNI: 5000, Name: "x", ReplicationMode: "service_node"}, []ovsdb.Operation{{Op: "update", Table: "Logical_Switch", Where: where(row),
			Row: ovsdb.Row{"name": "x", "tunnel_key": set(5000), "replication_mode": set("service_node")}}}},
		{"ls-delete", plan.Change{Op: plan.LSDelete, UUID: row}, []ovsdb.Operation{{Op: "delete", Table: "Logical_Switch", Where: where(row)}}},
		{"binding-set", plan.Change{Op: plan.BindingSet, PortUUID: port, VLAN: 100, VNI: 10}, []ovsdb.Operation{{Op: "mutate", Table: "Physical_Port", Where: where(port),
			Mutations: []ovsdb.Mutation{{Column: "vlan_bindings", Mutator: "insert", Value: ovsdb.OvsMap{GoMap: map[any]any{100: ref(ls1)}}}}}}},
		{"binding-set rebind", plan.Change{Op: plan.BindingSet, PortUUID: port, VLAN: 100, VNI: 10, Rebind: true}, []ovsdb.Operation{{Op: "mutate", Table: "Physical_Port", Where: where(port),
			Mutations: []ovsdb.Mutation{{Column: "vlan_bindings", Mutator: "delete", Value: set(100)},
				{Column: "vlan_bindings", Mutator: "insert", Value: ovsdb.OvsMap{GoMap: map[any]any{100: ref(ls1)}}}}}}},
		{"binding-delete", plan.Change{Op: plan.BindingDelete, UUID: ls1, PortUUID: port, VLAN: 100}, []ovsdb.Operation{{Op: "mutate", Table: "Physical_Port", Where: where(port),
			Mutations: []ovsdb.Mutation{{Column: "vlan_bindings", Mutator: "delete", Value: ovsdb.OvsMap{GoMap: map[any]any{100: ref(ls1)}}}}}}},
		{"ucast-add, known locator", plan.Change{Op: plan.UcastAdd, VNI: 10, MAC: mac, VTEP: vtep1}, []ovsdb.Operation{{Op: "insert", Table: "Ucast_Macs_Remote",
			Row: ovsdb.Row{"MAC": "02:00:00:00:00:01", "logical_switch": ref(ls1), "locator": ref(loc1)}}}}, // ipaddr: its default, ""
		{"ucast-add, new locator", plan.Change{Op: plan.UcastAdd, VNI: 10, MAC: mac, IP: netip.MustParseAddr("10.0.0.1"), VTEP: vtep2}, []ovsdb.Operation{newLoc("loc1", "192.0.2.2"), {Op: "insert", Table: "Ucast_Macs_Remote",
			Row: ovsdb.Row{"MAC": "02:00:00:00:00:01", "logical_switch": ref(ls1), "locator": ref("loc1"), "ipaddr": "10.0.0.1"}}}},
		{"ucast-update", plan.Change{Op: plan.UcastUpdate, UUID: row, VNI: 10, MAC: mac, VTEP: vtep1}, []ovsdb.Operation{{Op: "update", Table: "Ucast_Macs_Remote", Where: where(row),
			Row: ovsdb.Row{"locator": ref(loc1), "ipaddr": ""}}}},
		{"ucast-delete", plan.Change{Op: plan.UcastDelete, UUID: row}, []ovsdb.Operation{{Op: "delete", Table: "Ucast_Macs_Remote", Where: where(row)}}},
		{"mcast-set, new row", plan.Change{Op: plan.McastSet, VNI: 10, VTEPs: []netip.Addr{vtep1, vtep2}}, []ovsdb.Operation{newLoc("loc1", "192.0.2.2"),
			{Op: "insert", Table: "Physical_Locator_Set", UUIDName: "set2", Row: ovsdb.Row{"locators": set(ref(loc1), ref("loc1"))}},
			{Op: "insert", Table: "Mcast_Macs_Remote", Row: ovsdb.Row{"MAC": "unknown-dst", "logical_switch": ref(ls1), "locator_set": ref("set2")}}}},
		{"mcast-set, existing row", plan.Change{Op: plan.McastSet, UUID: row, VNI: 10, VTEPs: []netip.Addr{vtep1}}, []ovsdb.Operation{
			{Op: "insert", Table: "Physical_Locator_Set", UUIDName: "set1", Row: ovsdb.Row{"locators": set(ref(loc1))}},
			{Op: "update", Table: "Mcast_Macs_Remote", Where: where(row), Row: ovsdb.Row{"locator_set": ref("set1")}}}},
		{"mcast-delete", plan.Change{Op: plan.McastDelete, UUID: row}, []ovsdb.Operation{{Op: "delete", Table: "Mcast_Macs_Remote", Where: where(row)}}},
		{"tunnel-bfd", plan.Change{Op: plan.TunnelBFD, UUID: row, BFD: map[string]string{"enable": "true"}}, []ovsdb.Operation{{Op: "mutate", Table: "Tunnel", Where: where(row),
			Mutations: []ovsdb.Mutation{{Column: "bfd_params", Mutator: "delete", Value: set("enable")},
				{Column: "bfd_params", Mutator: "insert", Value: ovsdb.OvsMap{GoMap: map[any]any{"enable": "true"}}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbm, err := vtepdb.DatabaseModel()
			if err != nil {
				t.Fatal(err)
			}
			b := newBatcher(&plan.Changes{LSByVNI: map[l2.VNI]string{10: ls1}, Locators: map[netip.Addr]string{vtep1: loc1}}, 100, dbm)
			if err := b.add(&tc.c); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(b.cur.ops, tc.want) {
				t.Errorf("operations\n%+v\nwant\n%+v", b.cur.ops, tc.want)
			}
		})
	}
}

// BenchmarkBuildUcastAdd measures building the operations of 100k remote
// MACs (no server): the typed row (libovsdb's mapper over the vtepdb model)
// against the row written by hand. The end-to-end figure is
// BenchmarkInstallRemoteMACs (see ucastAdd).
func BenchmarkBuildUcastAdd(b *testing.B) {
	d := benchDesired(100000, 100, 50)
	ch := &plan.Changes{LSByVNI: map[l2.VNI]string{}, Locators: map[netip.Addr]string{}}
	for i, ls := range d.LogicalSwitches {
		ch.LSByVNI[ls.VNI] = fmt.Sprintf("%08d-0000-0000-0000-000000000000", i)
	}
	for _, m := range d.RemoteMACs {
		if _, ok := ch.Locators[m.VTEP]; !ok {
			ch.Locators[m.VTEP] = fmt.Sprintf("%08d-1111-0000-0000-000000000000", len(ch.Locators))
		}
		ch.List = append(ch.List, plan.Change{Op: plan.UcastAdd, VNI: m.VNI, MAC: m.MAC, IP: m.IP, VTEP: m.VTEP})
	}
	dbm, err := vtepdb.DatabaseModel()
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		build func(*batcher, *plan.Change) error
	}{{"typed", (*batcher).ucastAdd}, {"raw", (*batcher).ucastAddRaw}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				bt := newBatcher(ch, DefaultBatchRows, dbm)
				for i := range ch.List {
					if len(bt.cur.ops) >= DefaultBatchRows {
						bt.take()
					}
					if err := tc.build(bt, &ch.List[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// ucastAddRaw is ucastAdd with the row written by hand, as it was before
// the rows were typed: the reference of BenchmarkBuildUcastAdd.
func (b *batcher) ucastAddRaw(c *plan.Change) error {
	ls, err := b.lsRef(c.VNI)
	if err != nil {
		return fmt.Errorf("remote MAC %s: %w", c.MAC, err)
	}
	loc, err := b.locRef(c.VTEP)
	if err != nil {
		return err
	}
	b.cur.ucast = append(b.cur.ucast, ucastOp{len(b.cur.ops), c})
	b.cur.ops = append(b.cur.ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: vtepdb.UcastMacsRemoteTable,
		Row: ovsdb.Row{vtepdb.UcastMacsRemoteColumnMAC: c.MAC.String(), vtepdb.UcastMacsRemoteColumnLogicalSwitch: uuidRef(ls),
			vtepdb.UcastMacsRemoteColumnLocator: uuidRef(loc), vtepdb.UcastMacsRemoteColumnIpaddr: l2.AddrString(c.IP)}})
	return nil
}
