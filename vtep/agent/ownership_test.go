package agent

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/agent/store"
	"github.com/torstitch/torstitch/vtep/l2"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestOwnershipScenarios runs the MAC ownership scenarios in
// testdata/ownership/*.scn and compares what each pass decides with the
// .golden file next to it (go test -run TestOwnershipScenarios -update
// rewrites them). A scenario is one command per line:
//
//	tor1 reports 10100/00:50:56:00:01:11 ...   the switch is connected and holds these local MACs
//	tor1 lost                                  its session is lost (its last view is held)
//	tor1 alive                                 it proves alive now (an echo answered)
//	tor1 bfd-down                              BFD says its data plane is down: its held view goes
//	wait 5s                                    the clock moves on
//	pass                                       one reconcile pass: prints what is advertised, dropped, moved, saved
//	restart                                    a new process, seeded with the owners saved so far
//
// Blank lines and lines starting with # are copied as they are.
func TestOwnershipScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/ownership/*.scn")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".scn")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, strings.TrimSuffix(f, ".scn")+".golden", runOwnership(t, string(in)))
		})
	}
}

type ownershipSim struct {
	switches []string
	now      time.Time
	tables   map[string][]l2.LocalMAC // connected switches' local MACs
	alive    map[string]time.Time
	own      *macOwnership
	saved    []store.Owner
}

func runOwnership(t *testing.T, script string) string {
	sim := &ownershipSim{switches: []string{"tor1", "tor2"}, now: time.Unix(0, 0).UTC(),
		tables: map[string][]l2.LocalMAC{}, alive: map[string]time.Time{}}
	sim.own = newMACOwnership(lostSwitchHold, sim.switches, nil)
	start := sim.now
	var out strings.Builder
	sc := bufio.NewScanner(strings.NewReader(script))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		out.WriteString(line + "\n")
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		fail := func(format string, args ...any) { t.Fatalf("line %d %q: %s", n, line, fmt.Sprintf(format, args...)) }
		switch {
		case f[0] == "wait" && len(f) == 2:
			d, err := time.ParseDuration(f[1])
			if err != nil {
				fail("%v", err)
			}
			sim.now = sim.now.Add(d)
		case f[0] == "pass" && len(f) == 1:
			fmt.Fprintf(&out, "  at %s\n", sim.now.Sub(start))
			for _, l := range sim.pass() {
				out.WriteString("  " + l + "\n")
			}
		case f[0] == "restart" && len(f) == 1:
			sim.own = newMACOwnership(lostSwitchHold, sim.switches, sim.saved)
		case len(f) >= 2 && slices.Contains(sim.switches, f[0]):
			sw := f[0]
			switch f[1] {
			case "reports":
				macs := []l2.LocalMAC{}
				for _, s := range f[2:] {
					vni, mac, ok := strings.Cut(s, "/")
					var v l2.VNI
					if _, err := fmt.Sscan(vni, &v); err != nil || !ok {
						fail("want VNI/MAC, got %q", s)
					}
					m, err := l2.ParseMAC(mac)
					if err != nil {
						fail("%v", err)
					}
					macs = append(macs, l2.LocalMAC{Switch: sw, VNI: v, MAC: m})
				}
				if _, was := sim.tables[sw]; !was {
					sim.alive[sw] = sim.now // a new session
				}
				sim.tables[sw] = macs
			case "lost":
				delete(sim.tables, sw)
			case "alive":
				sim.alive[sw] = sim.now
			case "bfd-down":
				sim.own.release(sw)
			default:
				fail("unknown command")
			}
		default:
			fail("unknown command")
		}
	}
	return out.String()
}

// pass builds the views as Agent.views does and describes what resolve
// decided.
func (sim *ownershipSim) pass() []string {
	var views []SwitchView
	for _, sw := range sim.switches {
		v := SwitchView{Name: sw}
		if macs, ok := sim.tables[sw]; ok {
			v.Connected, v.LocalMACs = true, macs
			sim.own.connected(v)
		} else if held, ok := sim.own.away(sim.now, sw); ok {
			v = held
		}
		views = append(views, v)
	}
	st := sim.own.resolve(sim.now, views, sim.alive)
	var out []string
	for _, v := range views {
		state := "connected"
		if !v.Connected {
			state = "away, held"
			if _, held := sim.own.held[v.Name]; !held {
				state = "away, nothing held"
			}
		}
		out = append(out, fmt.Sprintf("%s (%s): advertises %s", v.Name, state, macList(v.LocalMACs)))
	}
	slices.SortFunc(st.Dropped, func(a, b SeenKey) int {
		return cmp.Or(cmp.Compare(a.Switch, b.Switch), a.Key.Compare(b.Key))
	})
	for _, d := range st.Dropped {
		out = append(out, fmt.Sprintf("dropped: %s %d/%s", d.Switch, d.Key.VNI, d.Key.MAC))
	}
	if st.Forgot > 0 {
		out = append(out, fmt.Sprintf("forgotten from held views: %d", st.Forgot))
	}
	for _, m := range st.Moves {
		out = append(out, fmt.Sprintf("moved: %d/%s %s -> %s", m.Key.VNI, m.Key.MAC, m.From, m.To))
	}
	if st.Owners != nil {
		sim.saved = sim.saved[:0]
		for k, sw := range st.Owners {
			sim.saved = append(sim.saved, store.Owner{VNI: k.VNI, MAC: k.MAC, Switch: sw})
		}
		slices.SortFunc(sim.saved, func(a, b store.Owner) int {
			return cmp.Or(cmp.Compare(a.VNI, b.VNI), a.MAC.Compare(b.MAC))
		})
		var l []string
		for _, o := range sim.saved {
			l = append(l, fmt.Sprintf("%d/%s %s", o.VNI, o.MAC, o.Switch))
		}
		out = append(out, "saved owners: ["+strings.Join(l, ", ")+"]")
		sim.own.ownersSaved(st.Owners)
	}
	return out
}

func macList(macs []l2.LocalMAC) string {
	if len(macs) == 0 {
		return "nothing"
	}
	l := make([]string, len(macs))
	for i, m := range macs {
		l[i] = fmt.Sprintf("%d/%s", m.VNI, m.MAC)
	}
	return strings.Join(l, " ")
}
