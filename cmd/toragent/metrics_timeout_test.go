package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// The /metrics server has every timeout set and bounded, and a slowloris
// client trickling headers is cut at its ReadHeaderTimeout (the real one,
// about 5 s: the test runs in parallel with the others).
func TestMetricsServerTimeouts(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "torstitch_build_info 1\n") })
	srv, err := metricsServer("127.0.0.1:0", nil, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		v, max time.Duration
	}{
		{"ReadHeaderTimeout", srv.ReadHeaderTimeout, 10 * time.Second},
		{"ReadTimeout", srv.ReadTimeout, time.Minute},
		{"WriteTimeout", srv.WriteTimeout, 2 * time.Minute},
		{"IdleTimeout", srv.IdleTimeout, 5 * time.Minute},
	} {
		if c.v <= 0 || c.v > c.max {
			t.Errorf("metrics server %s = %v, want within (0, %v]", c.name, c.v, c.max)
		}
	}
	if t.Failed() {
		return
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: toragent\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one more header line every 100 ms until the server hangs up
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := io.WriteString(c, "X-Slow: a\r\n"); err != nil {
					return
				}
			}
		}
	}()
	bound := srv.ReadHeaderTimeout + 2*time.Second
	if err := c.SetReadDeadline(start.Add(bound)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	took := time.Since(start)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("slowloris connection still open after %v (ReadHeaderTimeout %v)", took.Round(time.Millisecond), srv.ReadHeaderTimeout)
	case err != nil && !errors.Is(err, syscall.ECONNRESET):
		t.Fatalf("read: %v after %v", err, took)
	case took < srv.ReadHeaderTimeout-100*time.Millisecond:
		t.Fatalf("closed after %v, before ReadHeaderTimeout %v", took, srv.ReadHeaderTimeout)
	case len(got) != 0:
		t.Errorf("answer to an unfinished request: %q", got)
	}
	t.Logf("slowloris cut after %v (ReadHeaderTimeout %v)", took.Round(time.Millisecond), srv.ReadHeaderTimeout)
}
