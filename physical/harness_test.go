package physical

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/stdr"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/physical/controller"
	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/physical/nstest"
	"github.com/torstitch/torstitch/physical/ovsdbserver"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

func TestMain(m *testing.M) {
	stdr.SetVerbosity(0)
	os.Exit(m.Run())
}

// sw is a torswitch running in-process against a namespace.
type sw struct {
	t        testing.TB
	endpoint string
	cfg      controller.Config
	dpOpts   dataplane.Options
	cancel   context.CancelFunc
	done     chan error
}

// startServer starts torswitch's served database (a supervised
// ovsdb-server over a new database in a temp dir) and returns its endpoint.
func startServer(t testing.TB) string {
	t.Helper()
	return startServed(t).Endpoint()
}

func startServed(t testing.TB) *ovsdbserver.Server {
	t.Helper()
	netnstest.RequireCommands(t, "ovsdb-server", "ovsdb-tool")
	dir, err := os.MkdirTemp("", "ts-db-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	srv, err := ovsdbserver.Start(context.Background(), ovsdbserver.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// startOvsdbServer runs a real ovsdb-server with the hardware_vtep schema.
func startOvsdbServer(t testing.TB) string {
	t.Helper()
	netnstest.RequireCommands(t, "ovsdb-server", "ovsdb-tool")
	dir, err := os.MkdirTemp("", "ts-ovsdb-")
	if err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(dir, "ovsdb-server.pid")
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidfile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
		}
		os.RemoveAll(dir)
	})
	db, sock := filepath.Join(dir, "vtep.db"), filepath.Join(dir, "db.sock")
	for _, args := range [][]string{
		{"ovsdb-tool", "create", db, "/usr/share/openvswitch/vtep.ovsschema"},
		{"ovsdb-server", db, "--remote=punix:" + sock, "--pidfile=" + pidfile, "--detach",
			"--log-file=" + filepath.Join(dir, "ovsdb-server.log"), "--unixctl=" + filepath.Join(dir, "ctl")},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	return "unix:" + sock
}

func newSwitch(t testing.TB, endpoint string, cfg controller.Config, dpOpts dataplane.Options) *sw {
	s := &sw{t: t, endpoint: endpoint, cfg: cfg, dpOpts: dpOpts}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *sw) start() {
	s.t.Helper()
	if s.cfg.Logger == nil {
		lvl := slog.LevelWarn
		if testing.Verbose() {
			lvl = slog.LevelInfo
		}
		s.cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
		s.dpOpts.Logger = s.cfg.Logger
	}
	ctx, cancel := context.WithCancel(context.Background())
	ovs, err := controller.Connect(ctx, s.endpoint, nil)
	if err != nil {
		cancel()
		s.t.Fatal(err)
	}
	dp, err := dataplane.New(s.dpOpts)
	if err != nil {
		cancel()
		ovs.Close()
		s.t.Fatal(err)
	}
	c := controller.New(s.cfg, ovs, dp)
	s.cancel = cancel
	s.done = make(chan error, 1)
	go func() {
		err := c.Run(ctx)
		ovs.Close()
		dp.Close()
		s.done <- err
	}()
}

func (s *sw) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	if err := <-s.done; err != nil {
		s.t.Errorf("torswitch run: %v", err)
	}
	s.cancel = nil
}

// agent writes the hardware_vtep rows a controller (toragent) writes.
type agent struct {
	t       testing.TB
	c       client.Client
	locs    map[string]string // dst IP → locator UUID
	pending map[string]int    // dst IP → index of the op creating it
}

func newAgent(t testing.TB, endpoint string) *agent {
	t.Helper()
	c, err := controller.Connect(context.Background(), endpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &agent{t: t, c: c, locs: map[string]string{}, pending: map[string]int{}}
}

func (a *agent) transact(ops []ovsdb.Operation) []ovsdb.OperationResult {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := a.c.Transact(ctx, ops...)
	if err == nil {
		_, err = ovsdb.CheckOperationResults(res, ops)
	}
	if err != nil {
		a.t.Fatalf("transact: %v", err)
	}
	return res
}

func (a *agent) create(m model.Model) []ovsdb.Operation {
	a.t.Helper()
	ops, err := a.c.Create(m)
	if err != nil {
		a.t.Fatal(err)
	}
	return ops
}

func (a *agent) logicalSwitch(name string, vni int) string {
	a.t.Helper()
	res := a.transact(a.create(&vtepdb.LogicalSwitch{Name: name, TunnelKey: &vni}))
	return res[0].UUID.GoUUID
}

// port returns the Physical_Port row of switch swName called name.
func (a *agent) port(swName, name string) vtepdb.PhysicalPort {
	a.t.Helper()
	var out vtepdb.PhysicalPort
	nstest.Eventually(a.t, 10*time.Second, func() (bool, string) {
		var sws []vtepdb.PhysicalSwitch
		_ = a.c.WhereCache(func(p *vtepdb.PhysicalSwitch) bool { return p.Name == swName }).List(context.Background(), &sws)
		if len(sws) != 1 {
			return false, "no Physical_Switch " + swName
		}
		var ports []vtepdb.PhysicalPort
		_ = a.c.WhereCache(func(p *vtepdb.PhysicalPort) bool { return p.Name == name }).List(context.Background(), &ports)
		for _, p := range ports {
			for _, u := range sws[0].Ports {
				if u == p.UUID {
					out = p
					return true, ""
				}
			}
		}
		return false, "no Physical_Port " + name
	})
	return out
}

func (a *agent) bind(swName, port string, vlan int, ls string) {
	a.t.Helper()
	p := a.port(swName, port)
	ops, err := a.c.Where(&p).Mutate(&p,
		model.Mutation{Field: &p.VLANBindings, Mutator: ovsdb.MutateOperationDelete, Value: []int{vlan}},
		model.Mutation{Field: &p.VLANBindings, Mutator: ovsdb.MutateOperationInsert, Value: map[int]string{vlan: ls}})
	if err != nil {
		a.t.Fatal(err)
	}
	a.transact(ops)
}

func (a *agent) unbind(swName, port string, vlan int) {
	a.t.Helper()
	p := a.port(swName, port)
	ops, err := a.c.Where(&p).Mutate(&p,
		model.Mutation{Field: &p.VLANBindings, Mutator: ovsdb.MutateOperationDelete, Value: []int{vlan}})
	if err != nil {
		a.t.Fatal(err)
	}
	a.transact(ops)
}

// locator returns the UUID of the locator for ip, adding the operations that
// create it to ops when needed.
func (a *agent) locator(ip string, ops *[]ovsdb.Operation) string {
	if u, ok := a.locs[ip]; ok {
		return u
	}
	var have []vtepdb.PhysicalLocator
	_ = a.c.WhereCache(func(l *vtepdb.PhysicalLocator) bool { return l.DstIP == ip }).List(context.Background(), &have)
	if len(have) > 0 {
		a.locs[ip] = have[0].UUID
		return have[0].UUID
	}
	named := "loc_" + strings.NewReplacer(".", "_", ":", "_").Replace(ip)
	a.pending[ip] = len(*ops)
	*ops = append(*ops, a.create(&vtepdb.PhysicalLocator{UUID: named, DstIP: ip, EncapsulationType: vtepdb.PhysicalLocatorEncapsulationTypeVxlanOverIpv4})...)
	a.locs[ip] = named
	return named
}

// remoteMACs adds Ucast_Macs_Remote rows (MAC → ipaddr, all behind vtep) in one transaction.
func (a *agent) remoteMACs(ls, vtep string, macs map[string]string) {
	a.t.Helper()
	var ops []ovsdb.Operation
	loc := a.locator(vtep, &ops)
	for mac, ip := range macs {
		ops = append(ops, a.create(&vtepdb.UcastMacsRemote{MAC: mac, Ipaddr: ip, LogicalSwitch: ls, Locator: loc})...)
	}
	a.commit(ops)
}

// commit transacts ops and records the UUIDs of locators they created.
func (a *agent) commit(ops []ovsdb.Operation) {
	a.t.Helper()
	res := a.transact(ops)
	for ip, i := range a.pending {
		a.locs[ip] = res[i].UUID.GoUUID
	}
	a.pending = map[string]int{}
}

// flood sets the unknown-dst flood list of ls.
func (a *agent) flood(ls string, vteps ...string) {
	a.t.Helper()
	var ops []ovsdb.Operation
	var locs []string
	for _, v := range vteps {
		locs = append(locs, a.locator(v, &ops))
	}
	ops = append(ops, a.create(&vtepdb.PhysicalLocatorSet{UUID: "set", Locators: locs})...)
	ops = append(ops, a.create(&vtepdb.McastMacsRemote{MAC: "unknown-dst", LogicalSwitch: ls, LocatorSet: "set"})...)
	a.commit(ops)
}

// localMACs returns the Ucast_Macs_Local rows as "MAC@locatorIP" per logical switch UUID.
func (a *agent) localMACs() map[string][]string {
	var rows []vtepdb.UcastMacsLocal
	var locs []vtepdb.PhysicalLocator
	_ = a.c.List(context.Background(), &rows)
	_ = a.c.List(context.Background(), &locs)
	ip := map[string]string{}
	for _, l := range locs {
		ip[l.UUID] = l.DstIP
	}
	out := map[string][]string{}
	for _, r := range rows {
		out[r.LogicalSwitch] = append(out[r.LogicalSwitch], r.MAC+"@"+ip[r.Locator])
	}
	return out
}

func (a *agent) hasLocalMAC(ls, mac string) bool {
	for _, m := range a.localMACs()[ls] {
		if strings.HasPrefix(m, mac+"@") {
			return true
		}
	}
	return false
}

func (a *agent) physicalSwitch(name string) (vtepdb.PhysicalSwitch, error) {
	var sws []vtepdb.PhysicalSwitch
	_ = a.c.WhereCache(func(p *vtepdb.PhysicalSwitch) bool { return p.Name == name }).List(context.Background(), &sws)
	if len(sws) != 1 {
		return vtepdb.PhysicalSwitch{}, errors.New("no Physical_Switch " + name)
	}
	return sws[0], nil
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func fdbHas(ns *netnstest.Netns, dev, mac, dst string) (bool, string) {
	out, _ := ns.Try("bridge", "fdb", "show", "dev", dev)
	return strings.Contains(out, fmt.Sprintf("%s dst %s", mac, dst)), out
}

func (a *agent) bindingStats(swName, port string, vlan int) vtepdb.LogicalBindingStats {
	p := a.port(swName, port)
	var rows []vtepdb.LogicalBindingStats
	_ = a.c.WhereCache(func(r *vtepdb.LogicalBindingStats) bool { return r.UUID == p.VLANStats[vlan] }).List(context.Background(), &rows)
	if len(rows) != 1 {
		return vtepdb.LogicalBindingStats{}
	}
	return rows[0]
}

func (a *agent) lsRow(uuid string) vtepdb.LogicalSwitch {
	var rows []vtepdb.LogicalSwitch
	_ = a.c.WhereCache(func(r *vtepdb.LogicalSwitch) bool { return r.UUID == uuid }).List(context.Background(), &rows)
	if len(rows) != 1 {
		a.t.Fatalf("no Logical_Switch %s", uuid)
	}
	return rows[0]
}

func (a *agent) update(m model.Model, fields ...any) {
	a.t.Helper()
	ops, err := a.c.Where(m).Update(m, fields...)
	if err != nil {
		a.t.Fatal(err)
	}
	a.transact(ops)
}

func (a *agent) localMACRowUUIDs() []string {
	var rows []vtepdb.UcastMacsLocal
	_ = a.c.List(context.Background(), &rows)
	var out []string
	for _, r := range rows {
		out = append(out, r.UUID)
	}
	slices.Sort(out)
	return out
}

func (a *agent) localMACIP(ls, mac string) string {
	var rows []vtepdb.UcastMacsLocal
	_ = a.c.WhereCache(func(r *vtepdb.UcastMacsLocal) bool { return r.LogicalSwitch == ls && r.MAC == mac }).List(context.Background(), &rows)
	if len(rows) != 1 {
		return ""
	}
	return rows[0].Ipaddr
}
