// Package ovsdbserver serves a switch's own hardware_vtep database with
// libovsdb's in-memory OVSDB server, for torswitch runs without an external
// ovsdb-server.
package ovsdbserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/ovn-org/libovsdb/database/inmemory"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/server"

	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// Server is a running hardware_vtep OVSDB server.
type Server struct {
	srv      *server.OvsdbServer
	endpoint string
	errc     chan error
}

// ParseListen turns an OVSDB passive target (ptcp:PORT[:IP] or punix:PATH)
// into a network and address for net.Listen, and the active target a
// local client uses to reach it (tcp:IP:PORT or unix:PATH).
func ParseListen(target string) (network, addr, endpoint string, err error) {
	kind, rest, _ := strings.Cut(target, ":")
	switch kind {
	case "punix":
		if rest == "" {
			break
		}
		return "unix", rest, "unix:" + rest, nil
	case "ptcp":
		port, ip, _ := strings.Cut(rest, ":")
		if port == "" {
			break
		}
		if strings.Contains(ip, ":") && !strings.HasPrefix(ip, "[") {
			ip = "[" + ip + "]"
		}
		cl := ip
		if cl == "" || cl == "0.0.0.0" || cl == "[::]" {
			cl = "127.0.0.1"
		}
		return "tcp", ip + ":" + port, "tcp:" + cl + ":" + port, nil
	}
	return "", "", "", fmt.Errorf("listen target %q: want ptcp:PORT[:IP] or punix:PATH", target)
}

// Serve starts serving an empty hardware_vtep database on target and
// returns once it accepts connections.
func Serve(ctx context.Context, target string) (*Server, error) {
	network, addr, endpoint, err := ParseListen(target)
	if err != nil {
		return nil, err
	}
	clientModel, err := vtepdb.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("hardware_vtep model: %w", err)
	}
	schema := vtepdb.Schema()
	dbModel, errs := model.NewDatabaseModel(schema, clientModel)
	if len(errs) > 0 {
		return nil, fmt.Errorf("hardware_vtep model: %v", errs)
	}
	db := inmemory.NewDatabase(map[string]model.ClientDBModel{schema.Name: clientModel})
	srv, err := server.NewOvsdbServer(db, dbModel)
	if err != nil {
		return nil, fmt.Errorf("creating OVSDB server: %w", err)
	}
	if network == "unix" {
		// A socket file left by a crashed run: remove it if nobody answers.
		if c, err := net.Dial("unix", addr); err == nil {
			c.Close()
			return nil, fmt.Errorf("listening on %s: another server is running", target)
		}
		_ = os.Remove(addr)
	}
	// Fail early on a taken address, the server itself only logs it.
	if network == "tcp" {
		l, err := net.Listen(network, addr)
		if err != nil {
			return nil, fmt.Errorf("listening on %s: %w", target, err)
		}
		l.Close()
	}
	s := &Server{srv: srv, endpoint: endpoint, errc: make(chan error, 1)}
	go func() { s.errc <- srv.Serve(network, addr) }()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !srv.Ready() {
		select {
		case err := <-s.errc:
			return nil, fmt.Errorf("serving on %s: %w", target, err)
		case <-ctx.Done():
			srv.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	return s, nil
}

// Endpoint is the active OVSDB target a local client connects to.
func (s *Server) Endpoint() string { return s.endpoint }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }
