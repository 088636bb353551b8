package vteptest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ovn-org/libovsdb/database/inmemory"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/server"

	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// InMemory serves a hardware_vtep database from libovsdb's in-memory
// server on a unix socket in the test's temporary directory, for fast unit
// tests. The real peer is ovsdb-server (StartOVSDB).
func InMemory(t testing.TB) (endpoint string) {
	t.Helper()
	dbm, err := vtepdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	schema := vtepdb.Schema()
	dbModel, errs := model.NewDatabaseModel(schema, dbm)
	if len(errs) > 0 {
		t.Fatalf("database model: %v", errs)
	}
	db := inmemory.NewDatabase(map[string]model.ClientDBModel{schema.Name: dbm})
	srv, err := server.NewOvsdbServer(db, dbModel)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "mem.sock")
	go func() { _ = srv.Serve("unix", sock) }()
	t.Cleanup(srv.Close)
	deadline := time.Now().Add(5 * time.Second)
	for !srv.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("in-memory OVSDB server not ready")
		}
		time.Sleep(time.Millisecond)
	}
	return "unix:" + sock
}
