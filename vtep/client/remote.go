package client

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// remoteTable is the client's own copy of Ucast_Macs_Remote.
//
// The controller is the only writer of that table (the switch reads it), and
// it is by far the largest one: monitoring it would make ovsdb-server send
// every row torstitch writes straight back, doubling the work of installing
// 100k MACs. Instead the table is read with one select after each
// (re)connection and at every resync interval, and the client applies the
// outcome of its own transactions to this copy. Changes made behind
// torstitch's back by another writer are seen at the next resync.
//
// idx holds the same rows by (logical switch, parsed MAC), kept with rows,
// so that the planner need not build it on every plan (100k rows and more).
type remoteTable struct {
	mu   sync.RWMutex
	rows map[string]*vtepdb.UcastMacsRemote
	idx  map[plan.UcastKey]*vtepdb.UcastMacsRemote
}

// indexRows builds the index of rows; rows sharing a key or with an
// unparsable MAC are left out (the planner then reads the rows instead).
func indexRows(rows map[string]*vtepdb.UcastMacsRemote) map[plan.UcastKey]*vtepdb.UcastMacsRemote {
	idx := make(map[plan.UcastKey]*vtepdb.UcastMacsRemote, len(rows))
	for _, r := range rows {
		if m, err := l2.ParseMAC(r.MAC); err == nil {
			idx[plan.UcastKey{LS: r.LogicalSwitch, MAC: m}] = r
		}
	}
	return idx
}

// unindex removes r from the index if the index points at it.
func (t *remoteTable) unindex(r *vtepdb.UcastMacsRemote) {
	if m, err := l2.ParseMAC(r.MAC); err == nil {
		k := plan.UcastKey{LS: r.LogicalSwitch, MAC: m}
		if t.idx[k] == r {
			delete(t.idx, k)
		}
	}
}

func uuidOf(v any) string {
	if u, ok := v.(ovsdb.UUID); ok {
		return u.GoUUID
	}
	return ""
}

// loadRemote reads all Ucast_Macs_Remote rows.
func loadRemote(ctx context.Context, tx transactor) (map[string]*vtepdb.UcastMacsRemote, error) {
	op := ovsdb.Operation{Op: ovsdb.OperationSelect, Table: vtepdb.UcastMacsRemoteTable, Where: []ovsdb.Condition{},
		Columns: []string{vtepdb.ColumnUUID, vtepdb.UcastMacsRemoteColumnMAC, vtepdb.UcastMacsRemoteColumnLogicalSwitch,
			vtepdb.UcastMacsRemoteColumnLocator, vtepdb.UcastMacsRemoteColumnIpaddr}}
	res, err := tx.Transact(ctx, op)
	if err != nil {
		return nil, fmt.Errorf("reading Ucast_Macs_Remote: %w", err)
	}
	if _, err := ovsdb.CheckOperationResults(res, []ovsdb.Operation{op}); err != nil {
		return nil, fmt.Errorf("reading Ucast_Macs_Remote: %w", err)
	}
	rows := make(map[string]*vtepdb.UcastMacsRemote, len(res[0].Rows))
	for _, r := range res[0].Rows {
		row := &vtepdb.UcastMacsRemote{UUID: uuidOf(r[vtepdb.ColumnUUID]), LogicalSwitch: uuidOf(r[vtepdb.UcastMacsRemoteColumnLogicalSwitch]),
			Locator: uuidOf(r[vtepdb.UcastMacsRemoteColumnLocator])}
		row.MAC, _ = r[vtepdb.UcastMacsRemoteColumnMAC].(string)
		row.Ipaddr, _ = r[vtepdb.UcastMacsRemoteColumnIpaddr].(string)
		rows[row.UUID] = row
	}
	return rows, nil
}

func (t *remoteTable) replace(rows map[string]*vtepdb.UcastMacsRemote) {
	idx := indexRows(rows)
	t.mu.Lock()
	t.rows, t.idx = rows, idx
	t.mu.Unlock()
}

// snapshot returns a copy of the map safe to hand out; the rows are shared
// (record replaces a row, never edits it).
func (t *remoteTable) snapshot() map[string]*vtepdb.UcastMacsRemote {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]*vtepdb.UcastMacsRemote, len(t.rows))
	maps.Copy(out, t.rows)
	return out
}

// live returns the table itself and its index; the caller must hold the
// client's apply lock.
func (t *remoteTable) live() (map[string]*vtepdb.UcastMacsRemote, map[plan.UcastKey]*vtepdb.UcastMacsRemote) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.rows, t.idx
}

func (t *remoteTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.rows)
}

// record applies the remote-MAC changes of one committed transaction.
func (t *remoteTable) record(b *batcher, bt *batch, results []ovsdb.OperationResult) {
	if len(bt.ucast) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, u := range bt.ucast {
		c := u.change
		switch c.Op {
		case plan.UcastAdd:
			uuid := results[u.op].UUID.GoUUID
			r := &vtepdb.UcastMacsRemote{UUID: uuid, LogicalSwitch: b.ls[c.VNI], MAC: c.MAC.String(), Ipaddr: l2.AddrString(c.IP), Locator: b.loc[c.VTEP]}
			t.rows[uuid] = r
			if t.idx != nil {
				t.idx[plan.UcastKey{LS: r.LogicalSwitch, MAC: c.MAC}] = r
			}
		case plan.UcastUpdate:
			r, ok := t.rows[c.UUID]
			if ok && results[u.op].Count > 0 {
				nr := *r
				nr.Ipaddr, nr.Locator = l2.AddrString(c.IP), b.loc[c.VTEP]
				t.rows[c.UUID] = &nr
				if m, err := l2.ParseMAC(r.MAC); err == nil && t.idx[plan.UcastKey{LS: r.LogicalSwitch, MAC: m}] == r {
					t.idx[plan.UcastKey{LS: r.LogicalSwitch, MAC: m}] = &nr
				}
			} else if ok {
				delete(t.rows, c.UUID)
				t.unindex(r)
			}
		case plan.UcastDelete:
			if r, ok := t.rows[c.UUID]; ok {
				delete(t.rows, c.UUID)
				t.unindex(r)
			}
		}
	}
}
