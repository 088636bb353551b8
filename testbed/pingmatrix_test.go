package testbed_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torstitch/torstitch/testbed"
	"github.com/torstitch/torstitch/testbed/clab"
)

func TestVMsOfTheStitchLab(t *testing.T) {
	topo, err := clab.Load(stitchLab)
	if err != nil {
		t.Fatal(err)
	}
	want := []testbed.VM{
		{Name: "vm11", Segment: "10100", IP: "192.168.100.11"},
		{Name: "vm12", Segment: "10200", IP: "192.168.200.12"},
		{Name: "vm21", Segment: "10100", IP: "192.168.100.21"},
		{Name: "vm22", Segment: "10200", IP: "192.168.200.22"},
		{Name: "kvm11", Segment: "10100", IP: "192.168.100.31"},
		{Name: "kvm12", Segment: "10200", IP: "192.168.200.32"},
	}
	got := testbed.VMs(topo)
	slices.SortFunc(got, func(a, b testbed.VM) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(want, func(a, b testbed.VM) int { return strings.Compare(a.Name, b.Name) })
	if !slices.Equal(got, want) {
		t.Fatalf("VMs %v, want %v", got, want)
	}
}

// pingLab is a Runtime whose VMs answer pings as answer says; only Topo and
// Exec are implemented.
type pingLab struct {
	testbed.Runtime
	topo   *clab.Topology
	answer func(from, to string, try int) bool

	mu    sync.Mutex
	tries map[[2]string]int
	calls [][2]string // in order
}

func (l *pingLab) Topo() *clab.Topology { return l.topo }

func (l *pingLab) Exec(_ context.Context, node string, args ...string) ([]byte, error) {
	if len(args) != 6 || strings.Join(args[:5], " ") != "ping -c 1 -W 1" {
		return nil, errors.New("unexpected command " + strings.Join(args, " "))
	}
	to := ""
	for _, n := range l.topo.Nodes {
		if strings.HasPrefix(n.Env["VM_IP"], args[5]+"/") {
			to = n.Name
		}
	}
	k := [2]string{node, to}
	l.mu.Lock()
	l.tries[k]++
	try := l.tries[k]
	l.calls = append(l.calls, k)
	l.mu.Unlock()
	if l.answer(node, to, try) {
		return nil, nil
	}
	return []byte("100% packet loss"), errors.New("exit status 1")
}

func vmNode(name, seg, ip string) *clab.Node {
	return &clab.Node{Name: name, Labels: map[string]string{testbed.SegmentLabel: seg}, Env: map[string]string{"VM_IP": ip + "/16"}}
}

func TestPingMatrix(t *testing.T) {
	topo := &clab.Topology{Nodes: []*clab.Node{
		vmNode("a1", "10", "10.0.0.1"), vmNode("a2", "10", "10.0.0.2"), vmNode("b1", "20", "10.0.1.1"),
		{Name: "tor1"}, // no label: not a VM
	}}
	seg := map[string]string{"a1": "10", "a2": "10", "b1": "20"}
	lab := &pingLab{topo: topo, tries: map[[2]string]int{}, answer: func(from, to string, try int) bool {
		switch {
		case from == "a1" && to == "a2":
			return try >= 3 // converges on the third try
		case from == "a2" && to == "a1":
			return false // never
		case from == "b1" && to == "a1":
			return true // a leak
		}
		return false
	}}
	m := testbed.PingMatrix(context.Background(), lab, 50*time.Millisecond)

	if got := lab.tries[[2]string{"a1", "a2"}]; got != 3 {
		t.Errorf("a1 -> a2 tried %d times, want 3 (until it answers)", got)
	}
	if got := lab.tries[[2]string{"a2", "a1"}]; got < 2 {
		t.Errorf("a2 -> a1 tried %d times, want retries until the deadline", got)
	}
	lastSame, firstCross := -1, len(lab.calls)
	for i, c := range lab.calls {
		if seg[c[0]] == seg[c[1]] {
			lastSame = i
		} else {
			firstCross = min(firstCross, i)
			if n := lab.tries[c]; n != 1 {
				t.Errorf("cross-segment %v tried %d times, want once", c, n)
			}
		}
	}
	if lastSame > firstCross {
		t.Errorf("a cross-segment pair was tried before the same-segment pairs were done: %v", lab.calls)
	}
	if reach, isolated := m.Counts(); reach != 2 || isolated != 4 {
		t.Errorf("Counts = %d, %d, want 2, 4", reach, isolated)
	}
	if m.OK() {
		t.Error("OK with a failing pair and a leak")
	}
	wantFails := []string{"a2(10) cannot reach a1(10)", "LEAK b1(20) reaches a1(10)"}
	if got := m.Failures(); !slices.Equal(got, wantFails) {
		t.Errorf("Failures = %q, want %q", got, wantFails)
	}
	var b bytes.Buffer
	m.WriteTable(&b)
	want := `from \ to a1(10) a2(10)   b1(20)
a1        -      ok       isolated
a2        FAIL   -        isolated
b1        LEAK   isolated -
matrix NOT as expected
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestPingMatrixAsExpected(t *testing.T) {
	topo := &clab.Topology{Nodes: []*clab.Node{vmNode("a1", "10", "10.0.0.1"), vmNode("a2", "10", "10.0.0.2"), vmNode("b1", "20", "10.0.1.1")}}
	seg := map[string]string{"a1": "10", "a2": "10", "b1": "20"}
	lab := &pingLab{topo: topo, tries: map[[2]string]int{}, answer: func(from, to string, _ int) bool { return seg[from] == seg[to] }}
	m := testbed.PingMatrix(context.Background(), lab, time.Minute)
	if !m.OK() || len(m.Failures()) != 0 {
		t.Fatalf("not OK: %q", m.Failures())
	}
	var b bytes.Buffer
	m.WriteTable(&b)
	if !strings.HasSuffix(b.String(), "\nmatrix as expected\n") {
		t.Errorf("table:\n%s", b.String())
	}
}
