package agent

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/torstitch/torstitch/vtep/l2"
)

func TestMACLocations(t *testing.T) {
	mac := func(s string) l2.MAC {
		m, err := l2.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := mac("00:50:56:00:01:11"), mac("00:50:56:00:02:12")
	view := func(name string, macs ...l2.MAC) SwitchView {
		v := SwitchView{Name: name, Connected: true}
		for _, m := range macs {
			v.LocalMACs = append(v.LocalMACs, l2.LocalMAC{Switch: name, VNI: 10100, MAC: m})
		}
		return v
	}
	locs := macLocations{}
	steps := []struct {
		name  string
		views []SwitchView
		want  string
	}{
		{"first sight is not a move", []SwitchView{view("tor1", a, b), view("tor2")}, ""},
		{"unchanged", []SwitchView{view("tor1", a, b), view("tor2")}, ""},
		{"failover", []SwitchView{view("tor1"), view("tor2", b, a)}, "00:50:56:00:01:11 tor1->tor2,00:50:56:00:02:12 tor1->tor2"},
		{"one gone", []SwitchView{view("tor1"), view("tor2", b)}, ""},
		{"it comes back elsewhere: new, not a move", []SwitchView{view("tor1", a), view("tor2", b)}, ""},
		{"failback of b", []SwitchView{view("tor1", a, b), view("tor2")}, "00:50:56:00:02:12 tor2->tor1"},
	}
	for _, s := range steps {
		var got []string
		for _, m := range locs.update(s.views) {
			got = append(got, m.Key.MAC.String()+" "+m.From+"->"+m.To)
		}
		if g := strings.Join(got, ","); g != s.want {
			t.Errorf("%s: moves %q, want %q", s.name, g, s.want)
		}
	}
}

func TestLogMovesBounded(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	moves := make([]macMove, maxMoveLines+5)
	logMoves(log, moves)
	if n := strings.Count(buf.String(), "msg=\"MAC moved between switches\""); n != maxMoveLines {
		t.Errorf("%d per-MAC lines, want %d", n, maxMoveLines)
	}
	if !strings.Contains(buf.String(), "more=5") {
		t.Errorf("no summary of the rest:\n%s", buf.String())
	}
}
