package physical

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/physical/controller"
	"github.com/torstitch/torstitch/physical/dataplane"
	"github.com/torstitch/torstitch/physical/nstest"
	"github.com/torstitch/torstitch/physical/ovsdbserver"
	"github.com/torstitch/torstitch/vtep/vtepdb"
	"github.com/torstitch/torstitch/vtep/vteptest"
)

// fdbSampler counts a VXLAN device's remote FDB entries (with a dst) every
// few milliseconds and keeps the smallest count seen.
type fdbSampler struct {
	mu      sync.Mutex
	min     int
	samples int
	stop    chan struct{}
	done    chan struct{}
}

func sampleFDB(l *trunkLab, dev string) *fdbSampler {
	s := &fdbSampler{min: -1, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			out, err := l.sw.Try("bridge", "fdb", "show", "dev", dev)
			if err == nil {
				n := strings.Count(out, " dst ")
				s.mu.Lock()
				if s.min < 0 || n < s.min {
					s.min = n
				}
				s.samples++
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *fdbSampler) end() (minimum, samples int) {
	close(s.stop)
	<-s.done
	return s.min, s.samples
}

// TestServedDatabaseRestart: torswitch's ovsdb-server is killed; the
// supervisor restarts it over the same database file, torswitch reconnects
// and resyncs, and the kernel keeps every entry throughout (no flush).
func TestServedDatabaseRestart(t *testing.T) {
	l := newTrunkLab(t)
	srv := startServed(t)
	newSwitch(t, srv.Endpoint(), controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1,
	}, dataplane.Options{NetNS: l.sw.Handle()})
	a := newAgent(t, srv.Endpoint())
	ls := a.logicalSwitch("ls7000", 7000)
	a.bind("tor1", "eth1", 10, ls)
	a.flood(ls, remTunnel)
	macs := map[string]string{}
	for i := 1; i <= 200; i++ {
		macs[fmt.Sprintf("06:00:00:00:%02x:%02x", i>>8, i&0xff)] = ""
	}
	a.remoteMACs(ls, remTunnel, macs)
	want := len(macs) + 1 // and the flood entry
	count := func() int {
		out, _ := l.sw.Try("bridge", "fdb", "show", "dev", "tsvx7000")
		return strings.Count(out, " dst ")
	}
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		n := count()
		return n == want, fmt.Sprintf("%d of %d FDB entries", n, want)
	})

	sampler := sampleFDB(l, "tsvx7000")
	old := srv.PID()
	killed := time.Now()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// A MAC written after the restart reaches the kernel: torswitch has
	// reconnected and follows the database again.
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		if srv.PID() == old {
			return false, "ovsdb-server not restarted"
		}
		return true, ""
	})
	restarted := time.Since(killed)
	nstest.Eventually(t, 10*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		// The agent's client reconnects too; write through it once it has.
		ops, err := a.c.Create(&vtepdb.UcastMacsRemote{MAC: "06:00:00:00:ff:ff", LogicalSwitch: ls, Locator: a.locs[remTunnel]})
		if err != nil {
			return false, err.Error()
		}
		if ok, _ := fdbHas(l.sw, "tsvx7000", "06:00:00:00:ff:ff", remTunnel); ok {
			return true, ""
		}
		if res, err := a.c.Transact(ctx, ops...); err != nil {
			return false, "write: " + err.Error()
		} else if _, err := ovsdb.CheckOperationResults(res, ops); err != nil && !strings.Contains(err.Error(), "constraint") {
			return false, "write: " + err.Error()
		}
		return false, "new MAC not in the kernel yet"
	})
	resynced := time.Since(killed)
	minimum, samples := sampler.end()
	t.Logf("ovsdb-server back after %s, new MAC in the kernel after %s; %d FDB samples, fewest entries %d of %d",
		restarted.Round(time.Millisecond), resynced.Round(time.Millisecond), samples, minimum, want)
	if minimum < want {
		t.Errorf("kernel FDB dropped to %d of %d entries while ovsdb-server restarted", minimum, want)
	}
	if n := count(); n != want+1 {
		t.Errorf("after the restart the kernel has %d FDB entries, want %d", n, want+1)
	}
}

// TestMisbehavingClients: garbage on torswitch's listening port, a client
// that sends half a message, and a monitoring client that never reads
// affect nobody: the controller's commits take as long as without them
// (measured first, in the same test) and reach the kernel, and torswitch
// keeps running.
func TestMisbehavingClients(t *testing.T) {
	l := newTrunkLab(t)
	srv := startServed(t)
	sock := strings.TrimPrefix(srv.Endpoint(), "unix:")
	newSwitch(t, srv.Endpoint(), controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1,
	}, dataplane.Options{NetNS: l.sw.Handle()})
	a := newAgent(t, srv.Endpoint())
	ls := a.logicalSwitch("ls7000", 7000)
	a.bind("tor1", "eth1", 10, ls)

	// commits writes batches of 1000 remote MACs and returns the slowest
	// commit.
	batch := 0
	commits := func(n int) time.Duration {
		var slowest time.Duration
		for ; n > 0; n-- {
			macs := map[string]string{}
			for i := 0; i < 1000; i++ {
				macs[fmt.Sprintf("06:00:00:%02x:%02x:%02x", batch, i>>8, i&0xff)] = fmt.Sprintf("10.%d.%d.%d", batch, i>>8, i&0xff)
			}
			batch++
			start := time.Now()
			a.remoteMACs(ls, remTunnel, macs)
			slowest = max(slowest, time.Since(start))
		}
		return slowest
	}
	// The same commits with nobody misbehaving, on this machine now.
	baseline := commits(5)

	for _, msg := range []string{"{}", "not json at all", `{"method":"transact","params":["hardware_vtep",{"op":"delete","table":"Physical_Switch","where":[]}]`, "\x00\xff\xfe"} {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte(msg))
		defer c.Close()
	}
	// A monitor of every table that is never read: ovsdb-server buffers
	// its updates (and eventually drops the client), nobody waits for it.
	stuck, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	var tables []string
	for name := range vtepdb.Schema().Tables {
		tables = append(tables, fmt.Sprintf("%q:{}", name))
	}
	req := fmt.Sprintf(`{"id":1,"method":"monitor","params":["hardware_vtep",null,{%s}]}`, strings.Join(tables, ","))
	if _, err := stuck.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}

	slowest := commits(5)
	t.Logf("commits of 1000 rows: slowest %s alone, %s with garbage clients and a non-reading monitor attached",
		baseline.Round(time.Millisecond), slowest.Round(time.Millisecond))
	// A stalled server (the in-memory one blocked every commit on the
	// non-reader, 8 s each) fails this; machine load affects both figures.
	if slowest > 2*baseline+250*time.Millisecond {
		t.Errorf("a commit took %s with a non-reading monitor attached, %s without (want at most 2x + 250 ms)", slowest, baseline)
	}
	nstest.Eventually(t, 20*time.Second, func() (bool, string) {
		out, _ := l.sw.Try("bridge", "fdb", "show", "dev", "tsvx7000")
		n := strings.Count(out, " dst ")
		return n == 10000, fmt.Sprintf("%d of 10000 remote MACs in the kernel", n)
	})
	// The database still has the switch (the garbage delete did nothing).
	if _, err := a.physicalSwitch("tor1"); err != nil {
		t.Error(err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestServedTLSAndManager: torswitch's database with certificates made by
// ovs-pki, as operators make them. Controllers reach it on pssl: (vtep-ctl
// with a controller certificate works, one the switch does not trust is
// refused), and a --manager target makes the database dial out to a
// controller over SSL, which then speaks OVSDB on the connection it
// accepted (the way hardware VTEPs reach their controller).
func TestServedTLSAndManager(t *testing.T) {
	netnstest.RequireCommands(t, "ovsdb-server", "ovsdb-tool", "vtep-ctl")
	l := newTrunkLab(t)
	pki := vteptest.NewOVSPKI(t)
	swCert := pki.Sign("tor1", "tor1", "switch")
	ctlCert := pki.Sign("ctl", "ctl", "controller")
	rogue := pki.Sign("rogue", "rogue", "switch") // signed by the switch CA: no controller

	// The controller's end of the switch-initiated connection.
	cert, err := tls.LoadX509KeyPair(ctlCert.Cert, ctlCert.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(pki.SwitchCA())
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(ca)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	manager := fmt.Sprintf("ssl:127.0.0.1:%d", ln.Addr().(*net.TCPAddr).Port)

	dir, err := os.MkdirTemp("", "ts-db-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pssl := freePort(t)
	srv, err := ovsdbserver.Start(context.Background(), ovsdbserver.Options{
		Dir: dir, Remotes: []string{fmt.Sprintf("pssl:%d:127.0.0.1", pssl)},
		TLS: ovsdbserver.TLS{Key: swCert.Key, Cert: swCert.Cert, CA: pki.ControllerCA()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	newSwitch(t, srv.Endpoint(), controller.Config{
		Name: "tor1", TunnelIP: mustAddr(swTunnel), Ports: []string{"eth1"}, StatsInterval: -1, Managers: []string{manager},
	}, dataplane.Options{NetNS: l.sw.Handle()})

	t.Run("manager: the switch dials the controller", func(t *testing.T) {
		type result struct {
			cn  string
			dbs string
			err error
		}
		got := make(chan result, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- result{err: err}
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			tc := c.(*tls.Conn)
			if err := tc.Handshake(); err != nil {
				got <- result{err: err}
				return
			}
			cn := tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			if _, err := c.Write([]byte(`{"id":1,"method":"transact","params":["hardware_vtep",{"op":"select","table":"Physical_Switch","where":[],"columns":["name"]}]}`)); err != nil {
				got <- result{err: err}
				return
			}
			var reply struct {
				Result []struct {
					Rows []struct {
						Name string `json:"name"`
					} `json:"rows"`
				} `json:"result"`
			}
			dec := json.NewDecoder(c)
			for {
				var msg map[string]json.RawMessage
				if err := dec.Decode(&msg); err != nil {
					got <- result{err: err}
					return
				}
				if string(msg["id"]) == "1" {
					raw, _ := json.Marshal(msg)
					_ = json.Unmarshal(raw, &reply)
					break
				}
				// ovsdb-server probes with echo requests: answer them.
				if string(msg["method"]) == `"echo"` {
					_, _ = c.Write([]byte(fmt.Sprintf(`{"id":%s,"result":%s,"error":null}`, msg["id"], msg["params"])))
				}
			}
			var names []string
			for _, r := range reply.Result {
				for _, row := range r.Rows {
					names = append(names, row.Name)
				}
			}
			got <- result{cn: cn, dbs: strings.Join(names, ",")}
		}()
		select {
		case r := <-got:
			if r.err != nil {
				t.Fatalf("switch-initiated connection: %v", r.err)
			}
			if !strings.HasPrefix(r.cn, "tor1 ") && r.cn != "tor1" {
				t.Errorf("switch certificate CN %q", r.cn)
			}
			if r.dbs != "tor1" {
				t.Errorf("Physical_Switch over the accepted connection: %q", r.dbs)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("the switch did not connect to its manager %s", manager)
		}
	})
	t.Run("pssl: vtep-ctl with a controller certificate", func(t *testing.T) {
		db := fmt.Sprintf("--db=ssl:127.0.0.1:%d", pssl)
		out, err := exec.Command("vtep-ctl", db, "--timeout=5", "--private-key="+ctlCert.Key, "--certificate="+ctlCert.Cert,
			"--ca-cert="+pki.SwitchCA(), "list-ps").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "tor1" {
			t.Errorf("vtep-ctl over pssl: %v: %s", err, out)
		}
		out, err = exec.Command("vtep-ctl", db, "--timeout=3", "--private-key="+rogue.Key, "--certificate="+rogue.Cert,
			"--ca-cert="+pki.SwitchCA(), "list-ps").CombinedOutput()
		if err == nil {
			t.Errorf("a certificate not signed by the controller CA was accepted: %s", out)
		}
	})
}
