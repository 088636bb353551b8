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

// pinger runs `ping -D -O -i 0.1` inside a node and records which echo
// requests were answered and when, to measure outages while a scenario
// runs.
type pinger struct {
	name     string
	interval time.Duration
	cmd      *exec.Cmd
	done     chan struct{}

	mu      sync.Mutex
	sent    int               // highest icmp_seq seen (answered or reported unanswered)
	replies map[int]time.Time // answered requests: when the reply came
	missed  map[int]time.Time // requests ping reported unanswered: when
	start   time.Time         // when ping started
}

// pingStats summarizes a pinger's requests over a window.
type pingStats struct {
	Sent, Received, Lost int
	// Outage is the longest run of unanswered requests times the interval;
	// LastBefore and FirstAfter are the answers around that run (zero when
	// nothing was lost).
	Outage                 time.Duration
	LastBefore, FirstAfter time.Time
}

func (s pingStats) String() string {
	return fmt.Sprintf("%d sent, %d lost, longest outage %s", s.Sent, s.Lost, s.Outage)
}

func startPinger(ctx context.Context, t *testing.T, lab testbed.Runtime, node, ip string) *pinger {
	t.Helper()
	p := &pinger{name: node + "->" + ip, interval: 100 * time.Millisecond, done: make(chan struct{}),
		replies: map[int]time.Time{}, missed: map[int]time.Time{}, start: time.Now()}
	cmd, err := lab.Command(ctx, node, "ping", "-D", "-O", "-n", "-i", "0.1", "-W", "1", ip)
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
		at := time.Now()
		if ts, _, ok := strings.Cut(strings.TrimPrefix(line, "["), "]"); ok && strings.HasPrefix(line, "[") {
			if f, err := strconv.ParseFloat(ts, 64); err == nil {
				at = time.Unix(0, int64(f*1e9))
			}
		}
		p.mu.Lock()
		p.sent = max(p.sent, seq)
		if strings.Contains(line, "bytes from") {
			p.replies[seq] = at
		} else if _, ok := p.missed[seq]; !ok {
			p.missed[seq] = at
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
// all answered: traffic flows.
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
		if _, ok := p.replies[s]; !ok {
			run = 0
			continue
		}
		if run++; run >= n {
			return s, true
		}
	}
	return p.sent, false
}

// outage reports whether no reply came in the last 1.5 s (15 requests at
// the 100 ms interval): traffic is down now.
func (p *pinger) outage() bool { return p.outageAt(time.Now()) }

func (p *pinger) outageAt(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	cutoff := now.Add(-1500 * time.Millisecond)
	for _, at := range p.replies {
		if at.After(cutoff) {
			return false
		}
	}
	return true
}

// inFlight is how many of the newest requests may still be answered
// (ping -W 1, plus one interval).
func (p *pinger) inFlight() int { return int(time.Second/p.interval) + 1 }

// stats counts the requests after from up to and including to (0: all
// but those still in flight). The caller makes sure every request up to
// to has had its second to be answered (settle does).
func (p *pinger) stats(from, to int) pingStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	if to <= 0 {
		to = p.sent - p.inFlight()
	}
	var st pingStats
	run := 0
	var last time.Time // the latest answer before the current run
	for s := from + 1; s <= to; s++ {
		st.Sent++
		if at, ok := p.replies[s]; ok {
			st.Received++
			if run > 0 && time.Duration(run)*p.interval == st.Outage && st.FirstAfter.IsZero() {
				st.FirstAfter = at
			}
			run, last = 0, at
			continue
		}
		st.Lost++
		run++
		if d := time.Duration(run) * p.interval; d > st.Outage {
			st.Outage, st.LastBefore, st.FirstAfter = d, last, time.Time{}
		}
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
	return p.stats(0, 0)
}

// settle measures a fault's outage: it waits until converged returns nil
// (the scenario's end state is visible, e.g. in the fabric's FDB), then
// for 10 requests in a row sent after that point all answered, then until
// every request up to those has had its second to be answered (so that a
// loss shorter than ping's wait is counted, and answers from before the
// fault cannot end the measurement). It returns the statistics of the
// requests after from up to there, or an error naming what did not happen
// within timeout (with the statistics so far).
func (p *pinger) settle(ctx context.Context, from int, timeout time.Duration, converged func() error) (pingStats, error) {
	deadline := time.Now().Add(timeout)
	wait := func(what string, cond func() error) error {
		for {
			err := cond()
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("%s: not within %s: %w (%s: %s)", what, timeout, err, p.name, p.stats(from, 0))
			}
			// Polling the lab costs CPU the switches need: a slower poll
			// only delays the end of the measurement, not its figures.
			time.Sleep(250 * time.Millisecond)
		}
	}
	if converged == nil {
		converged = func() error { return nil }
	}
	if err := wait("converged", converged); err != nil {
		return p.stats(from, 0), err
	}
	at := p.seq()
	end := 0
	if err := wait(p.name+" answered 10 in a row after convergence", func() error {
		s, ok := p.runEnd(at, 10)
		if !ok {
			return errString("not yet")
		}
		end = s
		return nil
	}); err != nil {
		return p.stats(from, 0), err
	}
	if err := wait(p.name+" settles", func() error {
		if p.seq() < end+p.inFlight() {
			return errString("requests in flight")
		}
		return nil
	}); err != nil {
		return p.stats(from, end), err
	}
	return p.stats(from, end), nil
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
