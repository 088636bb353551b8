package testbed_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/torstitch/torstitch/testbed"
)

// buildProduct builds the binaries the stitch lab runs (the agent, its CLI
// and the simulated vCenter) into a temporary directory for Options.BinDirs.
func buildProduct(t *testing.T, extra ...string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
		if _, err := os.Stat(goBin); err != nil {
			t.Skip("needs the go command to build toragent, torctl and torvcsim")
		}
	}
	dir := t.TempDir()
	start := time.Now()
	args := []string{"build", "-o", dir + "/", "../cmd/toragent", "../cmd/torctl", "../cmd/torvcsim"}
	for _, c := range extra {
		args = append(args, "../cmd/"+c)
	}
	cmd := exec.Command(goBin, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built toragent, torctl, torvcsim %v in %s", extra, time.Since(start).Round(time.Millisecond))
	return dir
}

// pinger runs `ping -i INTERVAL` inside a node and records which echo
// requests were answered, to measure outages while a scenario runs.
type pinger struct {
	name     string
	interval time.Duration
	cmd      *exec.Cmd
	done     chan struct{}

	mu      sync.Mutex
	sent    int // highest icmp_seq seen (answered or reported unanswered)
	replies map[int]bool
}

// pingStats summarizes a pinger's run.
type pingStats struct {
	Sent, Received, Lost int
	// Outage is the longest run of unanswered requests times the interval.
	Outage time.Duration
}

func (s pingStats) String() string {
	return fmt.Sprintf("%d sent, %d lost, longest outage %s", s.Sent, s.Lost, s.Outage)
}

func startPinger(ctx context.Context, t *testing.T, lab testbed.Runtime, node, ip string) *pinger {
	t.Helper()
	p := &pinger{name: node + "->" + ip, interval: 100 * time.Millisecond, done: make(chan struct{}), replies: map[int]bool{}}
	cmd, err := lab.Command(ctx, node, "ping", "-O", "-n", "-i", "0.1", "-W", "1", ip)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	go p.read(out)
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *pinger) read(r io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		_, rest, ok := strings.Cut(line, "icmp_seq=")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, " ")
		seq, err := strconv.Atoi(num)
		if err != nil {
			continue
		}
		p.mu.Lock()
		p.sent = max(p.sent, seq)
		if strings.Contains(line, "bytes from") {
			p.replies[seq] = true
		}
		p.mu.Unlock()
	}
}

// seq is the highest sequence number seen so far.
func (p *pinger) seq() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// answeredAfter reports whether the n requests after seq (all sent) were
// all answered: traffic flows again.
func (p *pinger) answeredAfter(seq, n int) bool {
	_, ok := p.runEnd(seq, n)
	return ok
}

// runEnd finds the first run of n answered requests in a row after seq and
// returns the sequence number that completes it.
func (p *pinger) runEnd(seq, n int) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	run := 0
	for s := seq + 1; s <= p.sent; s++ {
		if !p.replies[s] {
			run = 0
			continue
		}
		if run++; run >= n {
			return s, true
		}
	}
	return p.sent, false
}

// stats counts from request `from` on (0: all).
func (p *pinger) stats(from int) pingStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var st pingStats
	run := 0
	// The last second of requests may still be in flight: ignore them.
	last := p.sent - int(time.Second/p.interval)
	for s := from + 1; s <= last; s++ {
		st.Sent++
		if p.replies[s] {
			st.Received++
			run = 0
			continue
		}
		st.Lost++
		run++
		st.Outage = max(st.Outage, time.Duration(run)*p.interval)
	}
	return st
}

// stop ends ping (idempotent) and returns the whole run's statistics.
func (p *pinger) stop() pingStats {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		_ = p.cmd.Wait()
	}
	return p.stats(0)
}

// waitRecovered waits until requests after seq are answered again in a
// row (traffic resumed) and returns the statistics since seq.
func (p *pinger) waitRecovered(ctx context.Context, t *testing.T, seq int, timeout time.Duration) pingStats {
	t.Helper()
	waitFor(ctx, t, timeout, p.name+" answered again", func() error {
		if !p.answeredAfter(seq, 10) {
			return errString(fmt.Sprintf("not yet (%s)", p.stats(seq)))
		}
		return nil
	})
	// Let the in-flight second settle so stats count every request.
	waitFor(ctx, t, 5*time.Second, p.name+" settles", func() error {
		if p.seq() < p.seqAfter(seq)+int(time.Second/p.interval) {
			return errString("settling")
		}
		return nil
	})
	return p.stats(seq)
}

// seqAfter returns the sequence number that completes the first run of 10
// answers after seq (the last sent when there is none yet).
func (p *pinger) seqAfter(seq int) int {
	s, _ := p.runEnd(seq, 10)
	return s
}

// torctl runs `torctl ARGS -o json` in the agent's node and decodes it.
func torctl(ctx context.Context, lab testbed.Runtime, v any, args ...string) error {
	out, err := lab.Exec(ctx, "toragent", append(append([]string{"torctl"}, args...), "-o", "json")...)
	if err != nil {
		return fmt.Errorf("torctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return json.Unmarshal(out, v)
}

type binding struct {
	VLAN   int    `json:"vlan"`
	VNI    int    `json:"vni"`
	Source string `json:"source"`
	Ports  []struct {
		Switch string `json:"switch"`
		Port   string `json:"port"`
	} `json:"ports"`
}

type macsView struct {
	Local []struct {
		Switch string `json:"switch"`
		VNI    int    `json:"vni"`
		MAC    string `json:"mac"`
		VTEP   string `json:"vtep"`
	} `json:"local"`
	Remote []struct {
		VNI  int    `json:"vni"`
		MAC  string `json:"mac"`
		VTEP string `json:"vtep"`
	} `json:"remote"`
}

// bindingsString renders bindings as "VLAN->VNI(source):ports" sorted by VLAN.
func bindingsString(bs []binding) map[int]string {
	m := map[int]string{}
	for _, b := range bs {
		var ports []string
		for _, p := range b.Ports {
			ports = append(ports, p.Switch+":"+p.Port)
		}
		m[b.VLAN] = fmt.Sprintf("%d(%s):%s", b.VNI, b.Source, strings.Join(ports, ","))
	}
	return m
}

// editInventory rewrites the simulated vCenter's inventory copy (old must
// occur) and makes torvcsim apply it.
func editInventory(ctx context.Context, lab testbed.Runtime, old, new string) error {
	path := filepath.Join(lab.NodeDir("vcenter"), "inventory.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), old) {
		return fmt.Errorf("inventory has no %q", old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		return err
	}
	return lab.Signal(ctx, "vcenter", "torvcsim", syscall.SIGHUP)
}

// cable connects a new veth pair between aNode:aIf and bNode:bIf (MTU mtu),
// made from the host directly in the two nodes' network namespaces, as a
// re-cabled VM NIC is wired in either runtime.
func cable(ctx context.Context, lab testbed.Runtime, aNode, aIf, bNode, bIf string, mtu int) error {
	ra, err := lab.NetnsRef(aNode)
	if err != nil {
		return err
	}
	rb, err := lab.NetnsRef(bNode)
	if err != nil {
		return err
	}
	m := strconv.Itoa(mtu)
	out, err := exec.CommandContext(ctx, "ip", "link", "add", aIf, "mtu", m, "netns", ra,
		"type", "veth", "peer", "name", bIf, "mtu", m, "netns", rb).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cabling %s:%s <-> %s:%s: %w: %s", aNode, aIf, bNode, bIf, err, out)
	}
	return nil
}
