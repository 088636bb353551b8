package ovsdbserver

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/torstitch/torstitch/vtep/vtepdb"
)

func TestParseListen(t *testing.T) {
	tests := []struct {
		in, network, addr, endpoint string
		wantErr                     bool
	}{
		{in: "ptcp:6640:10.0.0.1", network: "tcp", addr: "10.0.0.1:6640", endpoint: "tcp:10.0.0.1:6640"},
		{in: "ptcp:6640", network: "tcp", addr: ":6640", endpoint: "tcp:127.0.0.1:6640"},
		{in: "ptcp:6640:0.0.0.0", network: "tcp", addr: "0.0.0.0:6640", endpoint: "tcp:127.0.0.1:6640"},
		{in: "ptcp:6640:::1", network: "tcp", addr: "[::1]:6640", endpoint: "tcp:[::1]:6640"},
		{in: "punix:/run/vtep.sock", network: "unix", addr: "/run/vtep.sock", endpoint: "unix:/run/vtep.sock"},
		{in: "tcp:1.2.3.4:6640", wantErr: true},
		{in: "punix:", wantErr: true},
		{in: "ptcp:", wantErr: true},
	}
	for _, tc := range tests {
		n, a, e, err := ParseListen(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v", tc.in, err)
			continue
		}
		if !tc.wantErr && (n != tc.network || a != tc.addr || e != tc.endpoint) {
			t.Errorf("%s: got %s %s %s", tc.in, n, a, e)
		}
	}
}

func TestServe(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "db.sock")
	s, err := Serve(context.Background(), "punix:"+sock)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Endpoint() != "unix:"+sock {
		t.Fatalf("endpoint %s", s.Endpoint())
	}
	ctx := context.Background()
	m, _ := vtepdb.FullDatabaseModel()
	c, err := client.NewOVSDBClient(m, client.WithEndpoint(s.Endpoint()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ops, err := c.Create(&vtepdb.PhysicalSwitch{Name: "tor1", TunnelIPs: []string{"10.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Transact(ctx, ops...)
	if err == nil {
		_, err = ovsdb.CheckOperationResults(res, ops)
	}
	if err != nil {
		t.Fatalf("insert into served hardware_vtep: %v", err)
	}
	if _, err := Serve(ctx, "punix:"+sock); err == nil {
		t.Error("second server on the same socket did not fail")
	}
}
