package agent

import (
	"bufio"
	"cmp"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/evpn"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/plan/plantest"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// TestCoreScenarios runs the agent core (step, then the switches' plans
// applied to in-memory switches) through the scenarios in
// testdata/core/*.scn and compares the transcript with the .golden file
// next to each (go test -run TestCoreScenarios -update rewrites them). One
// command per line:
//
//	switch-up tor1 192.0.2.11 eth1 eth2   tor1 connected (created on first use with that tunnel IP and ports)
//	switch-down tor1                      its session lost (its database stays as it was)
//	foreign-ls tor1 theirs 10100          another controller's logical switch on tor1
//	foreign-ls-del tor1 theirs            ... deleted by that controller
//	foreign-bind tor1 eth2 300 theirs     that controller binds VLAN 300 of tor1's eth2 to its logical switch
//	bind 100 10100 tor1:eth1 tor2:eth1    a torctl binding
//	unbind 100 10100                      the torctl binding of VLAN 100 to VNI 10100 removed
//	learn tor1 10100 00:50:56:00:01:11    the switch learns a MAC (Ucast_Macs_Local)
//	forget tor1 10100 00:50:56:00:01:11   the switch forgets it
//	route-add 10100 52:54:00:aa:bb:01 192.0.2.50 [IP]   a type-2 route from the fabric
//	route-del 10100 52:54:00:aa:bb:01
//	flood-add 10100 192.0.2.50            a type-3 route from the fabric
//	synced | unsynced                     the speaker has (not) End-of-RIB from every peer
//	vcenter-incomplete | vcenter-complete
//	wait 5s                               the clock moves on
//	reconcile                             one pass: log lines, what is advertised, owners saved, each switch's plan
//	dump-db tor1                          tor1's tables
//
// Blank lines and # comments are copied as they are.
func TestCoreScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/core/*.scn")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".scn"), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, strings.TrimSuffix(f, ".scn")+".golden", runCore(t, string(in)))
		})
	}
}

// compareGolden compares got with the golden file, or rewrites it with -update.
func compareGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Fatalf("%s: got\n%s\nwant:\n%s", golden, got, want)
	}
}

type coreSim struct {
	t        *testing.T
	start    time.Time
	now      time.Time
	c        *core
	order    []string
	db       map[string]*plantest.Switch
	up       map[string]bool
	alive    map[string]time.Time
	bindings []api.Binding
	remote   map[l2.MACKey]l2.RemoteMAC
	flood    map[l2.VNI][]netip.Addr
	synced   bool
	vcValid  bool
	out      strings.Builder
}

func runCore(t *testing.T, script string) string {
	s := &coreSim{t: t, start: time.Unix(0, 0).UTC(), db: map[string]*plantest.Switch{}, up: map[string]bool{},
		alive: map[string]time.Time{}, remote: map[l2.MACKey]l2.RemoteMAC{}, flood: map[l2.VNI][]netip.Addr{}, vcValid: true}
	s.now = s.start
	sc := bufio.NewScanner(strings.NewReader(script))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		s.out.WriteString(line + "\n")
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if err := s.run(f); err != nil {
			t.Fatalf("line %d %q: %v", n, line, err)
		}
	}
	return s.out.String()
}

func (s *coreSim) printf(format string, args ...any) { fmt.Fprintf(&s.out, "  "+format+"\n", args...) }

func (s *coreSim) run(f []string) error {
	args := f[1:]
	need := func(n int) error {
		if len(args) < n {
			return fmt.Errorf("%s wants %d arguments", f[0], n)
		}
		return nil
	}
	if err := need(map[string]int{"switch-up": 2, "switch-down": 1, "foreign-ls": 3, "foreign-ls-del": 2, "foreign-bind": 4, "bind": 3, "unbind": 2, "learn": 3, "forget": 3,
		"route-add": 3, "route-del": 2, "flood-add": 2, "wait": 1, "dump-db": 1}[f[0]]); err != nil {
		return err
	}
	switch f[0] {
	case "switch-up":
		name := args[0]
		if _, ok := s.db[name]; !ok {
			ip, err := netip.ParseAddr(args[1])
			if err != nil {
				return err
			}
			s.db[name] = plantest.New(name, ip, args[2:]...)
			s.order = append(s.order, name)
		}
		if !s.up[name] {
			s.alive[name] = s.now // a new session
		}
		s.up[name] = true
	case "switch-down":
		s.up[args[0]] = false
	case "foreign-ls":
		vni, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		db, err := s.switchDB(args[0])
		if err != nil {
			return err
		}
		db.O.Switches["foreign-"+args[1]] = &vtepdb.LogicalSwitch{UUID: "foreign-" + args[1], Name: args[1], TunnelKey: &vni}
	case "foreign-ls-del":
		db, err := s.switchDB(args[0])
		if err != nil {
			return err
		}
		delete(db.O.Switches, "foreign-"+args[1])
	case "foreign-bind":
		db, err := s.switchDB(args[0])
		if err != nil {
			return err
		}
		p, ok := db.O.Ports[args[1]]
		vlan, err := strconv.Atoi(args[2])
		if !ok || err != nil {
			return fmt.Errorf("want PORT VLAN of the switch, got %q %q", args[1], args[2])
		}
		p.VLANBindings[vlan] = "foreign-" + args[3]
	case "bind":
		var b api.Binding
		if err := scanVLANVNI(args, &b.VLAN, &b.VNI); err != nil {
			return err
		}
		for _, p := range args[2:] {
			ref, err := l2.ParsePortRef(p)
			if err != nil {
				return err
			}
			b.Ports = append(b.Ports, ref)
		}
		b.Source = api.SourceTorctl
		s.bindings = append(s.bindings, b)
	case "unbind":
		var vlan l2.VLAN
		var vni l2.VNI
		if err := scanVLANVNI(args, &vlan, &vni); err != nil {
			return err
		}
		s.bindings = slices.DeleteFunc(s.bindings, func(b api.Binding) bool { return b.VLAN == vlan && b.VNI == vni })
	case "learn", "forget":
		db, err := s.switchDB(args[0])
		if err != nil {
			return err
		}
		k, err := parseKey(args[1], args[2])
		if err != nil {
			return err
		}
		if f[0] == "forget" {
			db.Forget(k.VNI, k.MAC)
			return nil
		}
		return db.Learn(k.VNI, k.MAC)
	case "route-add":
		k, err := parseKey(args[0], args[1])
		if err != nil {
			return err
		}
		r := l2.RemoteMAC{VNI: k.VNI, MAC: k.MAC}
		if r.VTEP, err = netip.ParseAddr(args[2]); err != nil {
			return err
		}
		if len(args) > 3 {
			if r.IP, err = netip.ParseAddr(args[3]); err != nil {
				return err
			}
		}
		s.remote[k] = r
	case "route-del":
		k, err := parseKey(args[0], args[1])
		if err != nil {
			return err
		}
		delete(s.remote, k)
	case "flood-add":
		vni, err := strconv.Atoi(args[0])
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(args[1])
		if err != nil {
			return err
		}
		s.flood[l2.VNI(vni)] = append(s.flood[l2.VNI(vni)], ip)
	case "synced", "unsynced":
		s.synced = f[0] == "synced"
	case "vcenter-incomplete", "vcenter-complete":
		s.vcValid = f[0] == "vcenter-complete"
	case "wait":
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return err
		}
		s.now = s.now.Add(d)
	case "reconcile":
		return s.reconcile()
	case "dump-db":
		db, err := s.switchDB(args[0])
		if err != nil {
			return err
		}
		for _, l := range db.Dump() {
			s.printf("%s", l)
		}
	default:
		return fmt.Errorf("unknown command %q", f[0])
	}
	return nil
}

func (s *coreSim) switchDB(name string) (*plantest.Switch, error) {
	db, ok := s.db[name]
	if !ok {
		return nil, fmt.Errorf("no switch %q (switch-up first)", name)
	}
	return db, nil
}

func scanVLANVNI(args []string, vlan *l2.VLAN, vni *l2.VNI) error {
	v, err1 := strconv.Atoi(args[0])
	n, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("want VLAN VNI, got %q %q", args[0], args[1])
	}
	*vlan, *vni = l2.VLAN(v), l2.VNI(n)
	return nil
}

func parseKey(vni, mac string) (l2.MACKey, error) {
	v, err := strconv.Atoi(vni)
	if err != nil {
		return l2.MACKey{}, err
	}
	m, err := l2.ParseMAC(mac)
	return l2.MACKey{VNI: l2.VNI(v), MAC: m}, err
}

// reconcile runs one pass the way Agent.reconcile does, with the switch
// writers replaced by plan + in-memory apply.
func (s *coreSim) reconcile() error {
	if s.c == nil {
		s.c = newCore(coreConfig{Replication: plan.SourceNode, StartupWait: 30 * time.Second},
			newMACOwnership(lostSwitchHold, s.order, nil))
	}
	in := passInput{Now: s.now, SinceStart: s.now.Sub(s.start), Bindings: s.bindings, VCValid: s.vcValid, Speaker: true, Synced: s.synced}
	for _, name := range s.order {
		si := switchInput{Name: name, Alive: s.alive[name]}
		if s.up[name] {
			si.Observed = s.db[name].Observed()
		}
		in.Switches = append(in.Switches, si)
	}
	for _, r := range s.remote {
		in.Remote.MACs = append(in.Remote.MACs, r)
	}
	slices.SortFunc(in.Remote.MACs, l2.CompareRemoteMACs)
	in.Remote.Flood = s.flood
	fx := s.c.step(in)
	s.printf("at %s", s.now.Sub(s.start))
	for _, e := range fx.Events {
		if e.Level == slog.LevelDebug {
			continue
		}
		s.printf("log %s %s%s", e.Level, e.Msg, attrString(e.Attrs))
	}
	if fx.KeepStale {
		s.printf("deletes held back (picture incomplete)")
	}
	if fx.Advertise != nil {
		s.printf("advertise: %s", advertised(fx.Advertise))
	}
	if fx.Owners != nil {
		var l []string
		for k, sw := range fx.Owners {
			l = append(l, fmt.Sprintf("%d/%s %s", k.VNI, k.MAC, sw))
		}
		slices.Sort(l)
		s.printf("owners saved: [%s]", strings.Join(l, ", "))
		s.c.own.ownersSaved(fx.Owners)
	}
	for _, j := range fx.Jobs {
		db := s.db[j.Switch]
		ch, err := plan.Plan(j.Desired, db.Observed(), j.Opt)
		if err != nil {
			s.printf("%s: plan failed: %v", j.Switch, err)
			continue
		}
		for _, c := range ch.Conflicts {
			s.printf("%s: conflict: %s", j.Switch, c)
		}
		s.printf("%s: %s", j.Switch, opCounts(ch))
		if err := db.Apply(ch); err != nil {
			return fmt.Errorf("%s: applying the plan: %w", j.Switch, err)
		}
	}
	return nil
}

func attrString(attrs []any) string {
	var b strings.Builder
	for i := 0; i+1 < len(attrs); i += 2 {
		fmt.Fprintf(&b, " %v=%v", attrs[i], attrs[i+1])
	}
	return b.String()
}

func advertised(ls *evpn.LocalState) string {
	var l []string
	for _, m := range ls.MACs {
		l = append(l, fmt.Sprintf("type-2 %d/%s via %s", m.VNI, m.MAC, m.VTEP))
	}
	imet := slices.Clone(ls.IMET)
	slices.SortFunc(imet, func(a, b evpn.IMET) int { return cmp.Or(cmp.Compare(a.VNI, b.VNI), a.VTEP.Compare(b.VTEP)) })
	for _, r := range imet {
		l = append(l, fmt.Sprintf("type-3 %d via %s", r.VNI, r.VTEP))
	}
	if len(l) == 0 {
		return "nothing"
	}
	return strings.Join(l, ", ")
}

func opCounts(ch *plan.Changes) string {
	if ch.Empty() {
		return "no change"
	}
	counts := map[plan.Op]int{}
	for _, c := range ch.List {
		counts[c.Op]++
	}
	ops := make([]plan.Op, 0, len(counts))
	for op := range counts {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	l := make([]string, len(ops))
	for i, op := range ops {
		l[i] = fmt.Sprintf("%s %d", op, counts[op])
	}
	return strings.Join(l, ", ")
}
