package api_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/api/apitest"
)

// The timeout tests give the server one short timeout (short) and every
// other one long (long), so each test sees the effect of the one it names:
// net/http falls back from ReadHeaderTimeout and IdleTimeout to
// ReadTimeout, and a connection cut by the long one would miss the bound.
const (
	short = 300 * time.Millisecond
	long  = 20 * time.Second
	// slack: how late after its timeout a cut may come on a loaded machine.
	slack = 1500 * time.Millisecond
)

// serveTimeouts serves h on a unix socket with timeouts to until the test
// ends and returns the socket's path.
func serveTimeouts(t *testing.T, h http.Handler, to api.Timeouts) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api.sock")
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := api.Listen(ctx, "unix://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- api.ServeListenerTimeouts(ctx, ln, h, to) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return path
}

func dial(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reads from c until the server closes it, and fails unless
// that happens between min and max after start; data the server sends
// before closing is returned.
func closedWithin(t *testing.T, c net.Conn, r io.Reader, start time.Time, min, max time.Duration) string {
	t.Helper()
	if err := c.SetReadDeadline(start.Add(max)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	took := time.Since(start)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("connection still open %v after start (want closed within %v); read %q", took.Round(time.Millisecond), max, got)
	case err != nil && !errors.Is(err, syscall.ECONNRESET):
		t.Fatalf("read: %v after %v", err, took)
	case took < min:
		t.Fatalf("connection closed after %v, before its timeout (%v)", took.Round(time.Millisecond), min)
	}
	t.Logf("closed by the server after %v", took.Round(time.Millisecond))
	return string(got)
}

// A slowloris client sends a request's headers one line at a time and never
// ends them: the server cuts it ReadHeader after the first byte, and answers
// nothing.
func TestTimeoutSlowlorisHeaders(t *testing.T) {
	t.Parallel()
	path := serveTimeouts(t, api.NewHandler(apitest.Sample(), nil, ""),
		api.Timeouts{ReadHeader: short, Read: long, Write: long, Idle: long})
	c := dial(t, path)
	start := time.Now()
	if _, err := io.WriteString(c, "GET "+api.PathVersion+" HTTP/1.1\r\nHost: toragent\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one more header line every 50 ms until the server hangs up
		tick := time.NewTicker(50 * time.Millisecond)
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
	if got := closedWithin(t, c, c, start, short-50*time.Millisecond, short+slack); got != "" {
		t.Errorf("answer to an unfinished request: %q", got)
	}
}

// A client that sends complete headers announcing a body and then stalls is
// cut Read after the request's first byte.
func TestTimeoutSlowBody(t *testing.T) {
	t.Parallel()
	path := serveTimeouts(t, api.NewHandler(&apitest.Fake{}, nil, ""),
		api.Timeouts{ReadHeader: long, Read: short, Write: long, Idle: long})
	c := dial(t, path)
	start := time.Now()
	if _, err := io.WriteString(c, "POST "+api.PathBindings+" HTTP/1.1\r\nHost: toragent\r\n"+
		"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"vlan\": 1"); err != nil {
		t.Fatal(err)
	}
	got := closedWithin(t, c, c, start, short-50*time.Millisecond, short+slack)
	// The handler sees the read fail and may still answer 400 before the
	// connection is closed; never a success.
	if got != "" && !strings.HasPrefix(got, "HTTP/1.1 400 ") {
		t.Errorf("answer to a stalled body: %q", got)
	}
}

// An idle keep-alive connection is closed Idle after its last answer.
func TestTimeoutIdleKeepAlive(t *testing.T) {
	t.Parallel()
	path := serveTimeouts(t, api.NewHandler(apitest.Sample(), nil, ""),
		api.Timeouts{ReadHeader: long, Read: long, Write: long, Idle: short})
	c := dial(t, path)
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ { // the connection is reused while it is busy
		if _, err := io.WriteString(c, "GET "+api.PathVersion+" HTTP/1.1\r\nHost: toragent\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("request %d: %s close=%v %v", i, resp.Status, resp.Close, err)
		}
	}
	if got := closedWithin(t, c, br, time.Now(), short-50*time.Millisecond, short+slack); got != "" {
		t.Errorf("unsolicited data on an idle connection: %q", got)
	}
}

// A client that asks for a long answer and stops reading blocks the
// server's writes: they fail Write after the request's headers, and the
// connection is closed.
func TestTimeoutSlowReader(t *testing.T) {
	t.Parallel()
	type result struct {
		took time.Duration
		err  error
	}
	res := make(chan result, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				res <- result{time.Since(start), err}
				return
			}
			if time.Since(start) > 2*long { // bounded even if nothing cuts it
				res <- result{time.Since(start), nil}
				return
			}
		}
	})
	path := serveTimeouts(t, h, api.Timeouts{ReadHeader: long, Read: long, Write: short, Idle: long})
	c := dial(t, path)
	if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: toragent\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-res:
		if r.err == nil || r.took > short+slack {
			t.Fatalf("write to a client that does not read: %v after %v (want an error within %v)", r.err, r.took, short+slack)
		}
		t.Logf("write failed after %v: %v", r.took.Round(time.Millisecond), r.err)
	case <-time.After(short + slack + time.Second):
		t.Fatalf("the answer's writes still block %v after the request (WriteTimeout %v)", short+slack+time.Second, short)
	}
	// What the socket buffered is readable, then the connection ends.
	closedWithin(t, c, c, time.Now(), 0, 5*time.Second)
}

// The defaults are set and bounded: a zero Timeouts field never means "no
// timeout".
func TestDefaultTimeouts(t *testing.T) {
	d := api.DefaultTimeouts()
	for name, v := range map[string]time.Duration{"ReadHeader": d.ReadHeader, "Read": d.Read, "Write": d.Write, "Idle": d.Idle} {
		if v <= 0 || v > 5*time.Minute {
			t.Errorf("DefaultTimeouts().%s = %v, want within (0, 5m]", name, v)
		}
	}
	if d.ReadHeader > d.Read || d.Read != api.ReadTimeout || d.Write != api.WriteTimeout {
		t.Errorf("DefaultTimeouts() = %+v (ReadTimeout %v, WriteTimeout %v)", d, api.ReadTimeout, api.WriteTimeout)
	}
}
