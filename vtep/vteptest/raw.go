package vteptest

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// Raw writes rows the way the raw-limit benchmarks do: hand-built libovsdb
// transactions, no monitor, no planning. It is the yardstick torstitch's
// writers are measured against (BenchmarkInstallVsRaw,
// BenchmarkPairInstallVsRaw).
type Raw struct {
	cli     client.Client
	lsUUID  map[l2.VNI]string
	locUUID map[netip.Addr]string
}

// DialRaw connects to a hardware_vtep database without monitoring it.
func DialRaw(ctx context.Context, endpoint string) (*Raw, error) {
	dbm, err := vtepdb.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	discard := logr.Discard()
	cli, err := client.NewOVSDBClient(dbm, client.WithEndpoint(endpoint), client.WithLogger(&discard))
	if err != nil {
		return nil, err
	}
	if err := cli.Connect(ctx); err != nil {
		return nil, err
	}
	return &Raw{cli: cli, lsUUID: map[l2.VNI]string{}, locUUID: map[netip.Addr]string{}}, nil
}

// Close disconnects.
func (r *Raw) Close() { r.cli.Close() }

// AddSwitches inserts d's logical switches (named plan.DefaultName, tunnel
// key the VNI) in one transaction.
func (r *Raw) AddSwitches(ctx context.Context, d *plan.Desired) error {
	ops := make([]ovsdb.Operation, 0, len(d.LogicalSwitches))
	for _, ls := range d.LogicalSwitches {
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: vtepdb.LogicalSwitchTable,
			Row: ovsdb.Row{vtepdb.LogicalSwitchColumnName: plan.DefaultName(ls.VNI), vtepdb.LogicalSwitchColumnTunnelKey: ovsdb.OvsSet{GoSet: []any{int(ls.VNI)}}}})
	}
	res, err := r.transact(ctx, ops)
	if err != nil {
		return err
	}
	for i, ls := range d.LogicalSwitches {
		r.lsUUID[ls.VNI] = res[i].UUID.GoUUID
	}
	return nil
}

// InsertRemote inserts one Ucast_Macs_Remote row per MAC, batch rows per
// transaction, one transaction after the other; a remote VTEP's locator is
// inserted with its first MAC. The MACs' logical switches must have been
// added by AddSwitches.
func (r *Raw) InsertRemote(ctx context.Context, macs []l2.RemoteMAC, batch int) error {
	var ops []ovsdb.Operation
	pendingLoc := map[int]netip.Addr{}
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		res, err := r.transact(ctx, ops)
		if err != nil {
			return err
		}
		for i, a := range pendingLoc {
			r.locUUID[a] = res[i].UUID.GoUUID
		}
		clear(pendingLoc)
		ops = ops[:0]
		return nil
	}
	for i, m := range macs {
		ls, ok := r.lsUUID[m.VNI]
		if !ok {
			return fmt.Errorf("VNI %d: no logical switch (AddSwitches first)", m.VNI)
		}
		loc, ok := r.locUUID[m.VTEP]
		if !ok {
			loc = "loc" + strconv.Itoa(i)
			pendingLoc[len(ops)] = m.VTEP
			r.locUUID[m.VTEP] = loc
			ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: vtepdb.PhysicalLocatorTable, UUIDName: loc,
				Row: ovsdb.Row{vtepdb.PhysicalLocatorColumnEncapsulationType: vtepdb.PhysicalLocatorEncapsulationTypeVxlanOverIpv4, vtepdb.PhysicalLocatorColumnDstIP: m.VTEP.String()}})
		}
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: vtepdb.UcastMacsRemoteTable,
			Row: ovsdb.Row{vtepdb.UcastMacsRemoteColumnMAC: m.MAC.String(), vtepdb.UcastMacsRemoteColumnLogicalSwitch: ovsdb.UUID{GoUUID: ls},
				vtepdb.UcastMacsRemoteColumnLocator: ovsdb.UUID{GoUUID: loc}, vtepdb.UcastMacsRemoteColumnIpaddr: ""}})
		if len(ops) >= batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (r *Raw) transact(ctx context.Context, ops []ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	res, err := r.cli.Transact(ctx, ops...)
	if err != nil {
		return nil, err
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		return nil, err
	}
	return res, nil
}
