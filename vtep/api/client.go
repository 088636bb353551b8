package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
)

// EnvToken is the environment variable clients read the bearer token from
// when no token file is given (a token never goes on a command line).
const EnvToken = "TORSTITCH_TOKEN"

// maxResponse bounds what the client reads (a full MAC table can be large).
const maxResponse = 256 << 20

// Client is a typed client of the operator API. It implements Backend.
type Client struct {
	addr  string // as given, for error messages
	base  string // URL prefix of every request
	hc    *http.Client
	token string
}

var _ Backend = (*Client)(nil)

type clientConfig struct {
	token             string
	tokenFile         string
	caFile            string
	certFile, keyFile string
	timeout           time.Duration
}

// ClientOption configures NewClient.
type ClientOption func(*clientConfig)

// WithToken sends "Authorization: Bearer token" with every request.
func WithToken(token string) ClientOption { return func(c *clientConfig) { c.token = token } }

// WithTokenFile reads the bearer token from file (surrounding white space
// ignored). It takes precedence over WithToken.
func WithTokenFile(file string) ClientOption { return func(c *clientConfig) { c.tokenFile = file } }

// WithCAFile verifies an https server against the PEM certificates in file
// instead of the system roots.
func WithCAFile(file string) ClientOption { return func(c *clientConfig) { c.caFile = file } }

// WithClientCert presents a client certificate to an https server that
// requires one.
func WithClientCert(certFile, keyFile string) ClientOption {
	return func(c *clientConfig) { c.certFile, c.keyFile = certFile, keyFile }
}

// WithTimeout bounds every request (default 30s; 0 means no bound beyond ctx).
func WithTimeout(d time.Duration) ClientOption { return func(c *clientConfig) { c.timeout = d } }

// NewClient returns a client of the agent at addr: a unix socket path,
// unix:///PATH, https://HOST:PORT, or http://IP:PORT for a loopback IP.
func NewClient(addr string, opts ...ClientOption) (*Client, error) {
	cfg := clientConfig{timeout: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	c := &Client{addr: addr, token: cfg.token}
	if cfg.tokenFile != "" {
		tok, err := ReadTokenFile(cfg.tokenFile)
		if err != nil {
			return nil, err
		}
		c.token = tok
	}
	if strings.ContainsAny(c.token, "\r\n") {
		return nil, errors.New("token contains a line break")
	}
	tr := &http.Transport{
		MaxIdleConns:        4,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	switch {
	case strings.HasPrefix(addr, "unix://") || strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "."):
		path := strings.TrimPrefix(addr, "unix://")
		if path == "" {
			return nil, fmt.Errorf("agent address %q: empty socket path", addr)
		}
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		}
		c.addr = path
		c.base = "http://toragent"
	case strings.HasPrefix(addr, "https://"):
		u, err := parseBase(addr)
		if err != nil {
			return nil, err
		}
		tc, err := clientTLS(cfg)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
		c.base = "https://" + u.Host
	case strings.HasPrefix(addr, "http://"):
		u, err := parseBase(addr)
		if err != nil {
			return nil, err
		}
		if ip, err := netip.ParseAddr(u.Hostname()); (err != nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
			return nil, fmt.Errorf("agent address %q: plain http only to a loopback address, use https://", addr)
		}
		c.base = "http://" + u.Host
	default:
		return nil, fmt.Errorf("agent address %q: want a socket path, unix:///PATH or https://HOST:PORT", addr)
	}
	c.hc = &http.Client{Transport: tr, Timeout: cfg.timeout}
	return c, nil
}

func parseBase(addr string) (*url.URL, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("agent address: %w", err)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("agent address %q: want SCHEME://HOST:PORT", addr)
	}
	return u, nil
}

func clientTLS(cfg clientConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.caFile != "" {
		pool, err := loadPool(cfg.caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		tc.RootCAs = pool
	}
	if cfg.certFile != "" || cfg.keyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.certFile, cfg.keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// ReadTokenFile reads a bearer token from file, without surrounding white
// space. An empty file is an error.
func ReadTokenFile(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", file)
	}
	return tok, nil
}

// StatusError is an error answer of the agent. It unwraps to ErrInvalid for
// 400 and ErrConflict for 409, so callers can test with errors.Is.
type StatusError struct {
	Code    int
	Message string // the agent's ErrorBody.Error
}

func (e *StatusError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("agent answered %d %s", e.Code, http.StatusText(e.Code))
}

func (e *StatusError) Unwrap() error {
	switch e.Code {
	case http.StatusBadRequest:
		return ErrInvalid
	case http.StatusConflict:
		return ErrConflict
	}
	return nil
}

// Version implements Backend.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	return v, c.do(ctx, http.MethodGet, PathVersion, nil, &v)
}

// Bindings implements Backend.
func (c *Client) Bindings(ctx context.Context) ([]Binding, error) {
	var v []Binding
	return v, c.do(ctx, http.MethodGet, PathBindings, nil, &v)
}

// Bind implements Backend.
func (c *Client) Bind(ctx context.Context, req BindRequest) error {
	return c.do(ctx, http.MethodPost, PathBindings, req, nil)
}

// Unbind implements Backend.
func (c *Client) Unbind(ctx context.Context, req UnbindRequest) error {
	return c.do(ctx, http.MethodDelete, PathBindings, req, nil)
}

// MACs implements Backend; vni 0 asks for all VNIs.
func (c *Client) MACs(ctx context.Context, vni l2.VNI) (MACs, error) {
	var v MACs
	return v, c.do(ctx, http.MethodGet, MACsPath(vni), nil, &v)
}

// MACsPath is the request path of MACs(vni).
func MACsPath(vni l2.VNI) string {
	if vni == 0 {
		return PathMACs
	}
	return PathMACs + "?vni=" + strconv.FormatUint(uint64(vni), 10)
}

// Switches implements Backend.
func (c *Client) Switches(ctx context.Context) ([]Switch, error) {
	var v []Switch
	return v, c.do(ctx, http.MethodGet, PathSwitches, nil, &v)
}

// Peers implements Backend.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var v []Peer
	return v, c.do(ctx, http.MethodGet, PathPeers, nil, &v)
}

// VCenter implements Backend.
func (c *Client) VCenter(ctx context.Context) (VCenter, error) {
	var v VCenter
	return v, c.do(ctx, http.MethodGet, PathVCenter, nil, &v)
}

// GetRaw returns the agent's JSON answer to GET path (e.g. PathBindings or
// MACsPath(vni)) as it came, for tools that print it.
func (c *Client) GetRaw(ctx context.Context, path string) (json.RawMessage, error) {
	var v json.RawMessage
	return v, c.do(ctx, http.MethodGet, path, nil, &v)
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("request %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("cannot reach toragent at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("reading answer of toragent at %s: %w", c.addr, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(fmt.Sprintf("agent answered %s %.200s", resp.Status, data))
		}
		return &StatusError{Code: resp.StatusCode, Message: eb.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding answer to %s %s: %w", method, path, err)
	}
	return nil
}
