package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultSocket is where toragent listens and torctl connects by default.
const DefaultSocket = "/run/torstitch/toragent.sock"

// Server timeouts: a request (headers and body) must arrive within
// ReadTimeout, and its answer be written within WriteTimeout of the end of
// its headers (longer than the client's 30 s default, so a slow bind is
// answered, never cut).
const (
	ReadTimeout  = 30 * time.Second
	WriteTimeout = 2 * time.Minute
)

// Timeouts bound what one connection may hold of the server. A zero field
// takes its default (DefaultTimeouts): the server never runs without one.
type Timeouts struct {
	// ReadHeader: from the first byte of a request to the end of its
	// headers (a slowloris client trickling headers is cut here).
	ReadHeader time.Duration
	// Read: the whole request, headers and body.
	Read time.Duration
	// Write: from the end of the request headers to the end of the answer
	// (a client that stops reading is cut here).
	Write time.Duration
	// Idle: a keep-alive connection waiting for its next request.
	Idle time.Duration
}

// DefaultTimeouts are the API server's timeouts (ServeListener).
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 10 * time.Second, Read: ReadTimeout, Write: WriteTimeout, Idle: 2 * time.Minute}
}

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.ReadHeader, &d.ReadHeader}, {&t.Read, &d.Read}, {&t.Write, &d.Write}, {&t.Idle, &d.Idle},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// ShutdownTimeout bounds how long ServeListener waits for requests in flight
// once its context is done.
const ShutdownTimeout = 5 * time.Second

// TLSFiles names the PEM files of a TCP listener. ClientCA is optional: when
// set, clients must present a certificate signed by it.
type TLSFiles struct {
	Cert, Key, ClientCA string
}

// Listen opens the API listener.
//
//   - unix:///PATH (or a bare absolute PATH): the parent directory is created
//     (0755), a stale socket left by a dead agent is removed (a live one is an
//     error), and the socket is created with mode 0600 before it appears at
//     PATH, so no other user can ever connect. Closing the listener removes it.
//   - tcp://IP:PORT: TLS with tlsCfg. Without tlsCfg only a loopback IP is
//     accepted (plain HTTP reachable only from this machine).
func Listen(ctx context.Context, addr string, tlsCfg *TLSFiles) (net.Listener, error) {
	switch {
	case strings.HasPrefix(addr, "unix://"):
		return listenUnix(ctx, strings.TrimPrefix(addr, "unix://"))
	case strings.HasPrefix(addr, "/"):
		return listenUnix(ctx, addr)
	case strings.HasPrefix(addr, "tcp://"):
		return listenTCP(ctx, strings.TrimPrefix(addr, "tcp://"), tlsCfg)
	}
	return nil, fmt.Errorf("api address %q: want unix:///PATH or tcp://IP:PORT", addr)
}

// ServeListener serves h on ln with DefaultTimeouts until ctx is done, then
// shuts down gracefully. It closes ln in every case.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	return ServeListenerTimeouts(ctx, ln, h, DefaultTimeouts())
}

// ServeListenerTimeouts is ServeListener with timeouts of its own (zero
// fields take their defaults).
func ServeListenerTimeouts(ctx context.Context, ln net.Listener, h http.Handler, to Timeouts) error {
	to = to.withDefaults()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: to.ReadHeader,
		ReadTimeout:       to.Read,
		WriteTimeout:      to.Write,
		IdleTimeout:       to.Idle,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		ln.Close()
		return fmt.Errorf("api server on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("api server shutdown: %w", err)
	}
	<-errc
	ln.Close()
	return err
}

// maxSocketPath is the longest unix socket path Linux binds (sun_path is
// 108 bytes with the terminating NUL).
const maxSocketPath = 107

func listenUnix(ctx context.Context, path string) (net.Listener, error) {
	if path == "" || !filepath.IsAbs(path) {
		return nil, fmt.Errorf("api socket %q: want an absolute path", path)
	}
	path = filepath.Clean(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("api socket directory: %w", err)
	}
	if err := removeStale(ctx, path); err != nil {
		return nil, err
	}
	// Bind under a temporary name, restrict it, then move it into place: the
	// socket is never reachable at PATH with a looser mode.
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if len(tmp) > maxSocketPath {
		return nil, fmt.Errorf("api socket %s: path too long: %d bytes, at most %d (a unix socket path holds %d, and the socket is bound under PATH.PID.tmp first)",
			path, len(path), maxSocketPath-(len(tmp)-len(path)), maxSocketPath)
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("api socket %s: %w", path, err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", tmp)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err // names the temporary file, not the configured path
		}
		return nil, fmt.Errorf("api socket %s: %w", path, err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ul.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("api socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fail(err)
	}
	return &unixListener{UnixListener: ul, path: path, fi: fi}, nil
}

// removeStale removes a socket at path that nobody answers on.
func removeStale(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("api socket: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("api socket %s: exists and is not a socket", path)
	}
	d := net.Dialer{Timeout: time.Second}
	if c, err := d.DialContext(ctx, "unix", path); err == nil {
		c.Close()
		return fmt.Errorf("api socket %s: another process is serving it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("api socket: removing stale socket: %w", err)
	}
	return nil
}

// unixListener removes its socket on Close, unless another process has
// replaced it meanwhile.
type unixListener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
	once sync.Once
	err  error
}

func (l *unixListener) Close() error {
	l.once.Do(func() {
		l.err = l.UnixListener.Close()
		if fi, err := os.Stat(l.path); err == nil && os.SameFile(fi, l.fi) {
			os.Remove(l.path)
		}
	})
	return l.err
}

func listenTCP(ctx context.Context, hostport string, files *TLSFiles) (net.Listener, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("api address tcp://%s: %w", hostport, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("api address tcp://%s: want an IP address: %w", hostport, err)
	}
	var cfg *tls.Config
	if files != nil {
		if cfg, err = serverTLS(files); err != nil {
			return nil, err
		}
	} else if !ip.IsLoopback() {
		return nil, fmt.Errorf("api address tcp://%s: TLS (cert and key) is required on a non-loopback address", hostport)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("api listener: %w", err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return ln, nil
}

func serverTLS(files *TLSFiles) (*tls.Config, error) {
	if files.Cert == "" || files.Key == "" {
		return nil, errors.New("api TLS: both cert and key are required")
	}
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		return nil, fmt.Errorf("api TLS: %w", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
	if files.ClientCA != "" {
		pool, err := loadPool(files.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("api TLS client CA: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", file)
	}
	return pool, nil
}
