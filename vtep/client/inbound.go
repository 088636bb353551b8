package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// Inbound is the endpoint of a switch that dials in to the agent
// (agent.ovsdb_listen): the switch's ovsdb-server has a Manager row
// ssl:AGENT:PORT and connects out; the agent is the OVSDB client on the
// connection it accepted.
const Inbound = "inbound"

// Reasons an inbound connection is refused (the reason label of the
// refusal metric).
const (
	RefusedHandshake   = "tls_handshake" // TLS failed, or no client certificate
	RefusedCertificate = "certificate"   // chain, pin or name did not match
	RefusedNotOVSDB    = "not_ovsdb"     // garbage, or an OVSDB error on the identifying read
	RefusedTimeout     = "timeout"       // no answer to the identifying read in time
	RefusedUnknown     = "unknown"       // no configured inbound switch by that name
	RefusedAmbiguous   = "ambiguous"     // the database holds several configured switches
	RefusedDuplicate   = "duplicate"     // the switch is already connected
)

// DefaultIdentifyTimeout bounds the TLS handshake and the identifying read
// of an inbound connection.
const DefaultIdentifyTimeout = 10 * time.Second

// ListenerConfig configures the inbound listener.
type ListenerConfig struct {
	Address string   // ptcp:[IP:]PORT or pssl:[IP:]PORT (PORT 0: any free port)
	TLS     TLSFiles // pssl: the CA switch certificates must chain to, and the agent's cert and key
	// IdentifyTimeout bounds handshake and identification; DefaultIdentifyTimeout when 0.
	IdentifyTimeout time.Duration
	// OnRefused is called once per refused connection with its reason.
	OnRefused func(reason string)
}

// ParseListen parses ptcp:[IP:]PORT or pssl:[IP:]PORT into a host:port for
// net.Listen and whether TLS is used.
func ParseListen(s string) (addr string, useTLS bool, err error) {
	proto, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return "", false, fmt.Errorf("%q: want ptcp:[IP:]PORT or pssl:[IP:]PORT", s)
	}
	switch proto {
	case "ptcp":
	case "pssl":
		useTLS = true
	default:
		return "", false, fmt.Errorf("%q: unknown protocol %q (want ptcp or pssl)", s, proto)
	}
	host, port := "", rest
	if i := strings.LastIndex(rest, ":"); i >= 0 {
		host, port = rest[:i], rest[i+1:]
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if net.ParseIP(host) == nil {
			if _, err := strconv.Atoi(host); err == nil && net.ParseIP(port) != nil {
				return "", false, fmt.Errorf("%q: write %s:%s:%s (IP first; ovsdb-server's own order PORT:IP is not used here)", s, proto, port, host)
			}
			return "", false, fmt.Errorf("%q: %q is not an IP address", s, host)
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", false, fmt.Errorf("%q: port %q is not 0-65535", s, port)
	}
	return net.JoinHostPort(host, port), useTLS, nil
}

// Listener accepts switch-initiated OVSDB connections, identifies each
// switch by its Physical_Switch name (and, with TLS, its certificate), and
// hands the connection to that switch's Client. It never writes to a
// connection it refuses: the only request it sends is a select.
type Listener struct {
	cfg     ListenerConfig
	log     *slog.Logger
	addr    string
	tlsCfg  *tls.Config
	roots   PeerPolicy // chain only: the CA
	clients map[string]*Client
	policy  map[string]PeerPolicy

	mu    sync.Mutex
	bound net.Addr
	ready chan struct{}
}

// NewListener validates the configuration and loads the TLS files; clients
// are the inbound switches' clients.
func NewListener(cfg ListenerConfig, clients []*Client, log *slog.Logger) (*Listener, error) {
	addr, useTLS, err := ParseListen(cfg.Address)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.IdentifyTimeout <= 0 {
		cfg.IdentifyTimeout = DefaultIdentifyTimeout
	}
	l := &Listener{cfg: cfg, log: log.With("ovsdb_listen", cfg.Address), addr: addr, clients: map[string]*Client{},
		policy: map[string]PeerPolicy{}, ready: make(chan struct{})}
	if useTLS {
		if cfg.TLS.CA == "" || cfg.TLS.Cert == "" || cfg.TLS.Key == "" {
			return nil, fmt.Errorf("%s: pssl needs ca, cert and key", cfg.Address)
		}
		cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("loading certificate %s: %w", cfg.TLS.Cert, err)
		}
		if l.roots, err = (TLSFiles{CA: cfg.TLS.CA}).policy(nil, x509.ExtKeyUsageClientAuth); err != nil {
			return nil, err
		}
		// The chain is checked by VerifyChain after the handshake, the name
		// once the switch has said which it is: crypto/tls only insists on
		// a certificate being presented.
		l.tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert,
			MinVersion: tls.VersionTLS12}
	}
	for _, c := range clients {
		if c.cfg.Endpoint != Inbound {
			return nil, fmt.Errorf("switch %s is not inbound", c.cfg.Name)
		}
		l.clients[c.cfg.Name] = c
		if useTLS {
			f := c.cfg.TLS
			f.CA = cfg.TLS.CA
			p, err := f.policy([]string{c.cfg.Name}, x509.ExtKeyUsageClientAuth)
			if err != nil {
				return nil, fmt.Errorf("switch %s: %w", c.cfg.Name, err)
			}
			l.policy[c.cfg.Name] = p
		}
	}
	return l, nil
}

// Addr returns the bound address once listening (nil before).
func (l *Listener) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bound
}

// Ready is closed once the listener is bound.
func (l *Listener) Ready() <-chan struct{} { return l.ready }

// Run listens and serves until ctx ends.
func (l *Listener) Run(ctx context.Context) error {
	ln, err := l.Listen(ctx)
	if err != nil {
		return err
	}
	return l.Serve(ctx, ln)
}

// Listen binds the listening socket (so that a port in use is an error of
// the caller's start-up, not of a goroutine).
func (l *Listener) Listen(ctx context.Context) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", l.addr)
	if err != nil {
		return nil, fmt.Errorf("ovsdb_listen %s: %w", l.cfg.Address, err)
	}
	l.mu.Lock()
	l.bound = ln.Addr()
	l.mu.Unlock()
	close(l.ready)
	return ln, nil
}

// Serve accepts switches on ln until ctx ends.
func (l *Listener) Serve(ctx context.Context, ln net.Listener) error {
	l.log.Info("waiting for switches to dial in", "addr", ln.Addr().String(), "switches", slices.Sorted(maps.Keys(l.clients)))
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("ovsdb_listen %s: accept: %w", l.cfg.Address, err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); l.handle(ctx, conn) }()
	}
}

// handle identifies one accepted connection and hands it over, or refuses it.
func (l *Listener) handle(ctx context.Context, raw net.Conn) {
	remote := raw.RemoteAddr().String()
	refuse := func(reason, name string, err error) {
		l.log.Warn("inbound OVSDB connection refused", "remote", remote, "switch", name, "reason", reason, "err", err)
		if l.cfg.OnRefused != nil {
			l.cfg.OnRefused(reason)
		}
		raw.Close()
	}
	ictx, cancel := context.WithTimeout(ctx, l.cfg.IdentifyTimeout)
	defer cancel()
	_ = raw.SetDeadline(time.Now().Add(l.cfg.IdentifyTimeout))
	stopClose := context.AfterFunc(ictx, func() { _ = raw.SetDeadline(time.Now()) })
	defer stopClose()

	var conn net.Conn = raw
	var chain []*x509.Certificate
	if l.tlsCfg != nil {
		tc := tls.Server(raw, l.tlsCfg)
		if err := tc.HandshakeContext(ictx); err != nil {
			refuse(RefusedHandshake, "", err)
			return
		}
		chain = tc.ConnectionState().PeerCertificates
		if err := l.roots.VerifyChain(chain, time.Now()); err != nil {
			refuse(RefusedCertificate, PeerName(chain[0]), err)
			return
		}
		conn = tc
	}
	names, rest, err := identify(conn)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			refuse(RefusedTimeout, "", fmt.Errorf("no answer to the Physical_Switch read within %s", l.cfg.IdentifyTimeout))
			return
		}
		refuse(RefusedNotOVSDB, "", err)
		return
	}
	name, reason, err := l.match(names, chain, time.Now())
	if err != nil {
		refuse(reason, name, err)
		return
	}
	c := l.clients[name]
	if !c.claim() {
		refuse(RefusedDuplicate, name, errors.New("this switch is already connected"))
		return
	}
	if !stopClose() || raw.SetDeadline(time.Time{}) != nil {
		c.release()
		refuse(RefusedTimeout, name, errors.New("identified too late"))
		return
	}
	l.log.Info("inbound switch identified", "remote", remote, "switch", name, "tls", l.tlsCfg != nil)
	c.offer(ctx, &accepted{Conn: conn, r: rest, remote: remote})
}

// match picks the configured inbound switch among the database's
// Physical_Switch names and checks its certificate.
func (l *Listener) match(names []string, chain []*x509.Certificate, now time.Time) (name, reason string, err error) {
	var found []string
	for _, n := range names {
		if _, ok := l.clients[n]; ok {
			found = append(found, n)
		}
	}
	switch {
	case len(names) == 0:
		return "", RefusedUnknown, errors.New("the database has no Physical_Switch")
	case len(found) == 0:
		return strings.Join(names, ","), RefusedUnknown, fmt.Errorf("Physical_Switch %s is not an inbound switch of this agent", strings.Join(names, ", "))
	case len(found) > 1:
		return strings.Join(found, ","), RefusedAmbiguous, fmt.Errorf("the database holds several configured switches (%s)", strings.Join(found, ", "))
	}
	name = found[0]
	if l.tlsCfg != nil {
		if err := l.policy[name].Verify(chain, now); err != nil {
			return name, RefusedCertificate, err
		}
	}
	return name, "", nil
}

// identifyID is the JSON-RPC id of the identifying select.
const identifyID = "torstitch-identify"

// maxIdentifyBytes bounds what a peer may send before it is identified.
const maxIdentifyBytes = 1 << 20

// identify asks the switch's ovsdb-server for its Physical_Switch names,
// answering its echo probes meanwhile. It returns the names and a reader
// that continues the stream where the decoder stopped (the decoder may
// have read ahead).
func identify(conn net.Conn) ([]string, io.Reader, error) {
	req := fmt.Sprintf(`{"id":%q,"method":"transact","params":[%q,{"op":"select","table":%q,"where":[],"columns":[%q]}]}`,
		identifyID, vtepdb.DatabaseName, vtepdb.PhysicalSwitchTable, vtepdb.PhysicalSwitchColumnName)
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, nil, fmt.Errorf("sending the Physical_Switch read: %w", err)
	}
	dec := json.NewDecoder(io.LimitReader(conn, maxIdentifyBytes))
	for range 64 {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			var ne net.Error
			if errors.As(err, &ne) {
				return nil, nil, err
			}
			return nil, nil, fmt.Errorf("not an OVSDB peer: %w", err)
		}
		switch {
		case m.Method == "echo":
			params := m.Params
			if len(params) == 0 {
				params = json.RawMessage("[]")
			}
			reply := fmt.Sprintf(`{"id":%s,"result":%s,"error":null}`, m.ID, params)
			if _, err := io.WriteString(conn, reply); err != nil {
				return nil, nil, fmt.Errorf("answering echo: %w", err)
			}
		case string(m.ID) == strconv.Quote(identifyID):
			names, err := parseIdentify(m.Result, m.Error)
			if err != nil {
				return nil, nil, err
			}
			return names, io.MultiReader(dec.Buffered(), conn), nil
		}
	}
	return nil, nil, errors.New("not an OVSDB peer: no answer among 64 messages")
}

// parseIdentify reads the transact reply of the identifying select.
func parseIdentify(result, rpcErr json.RawMessage) ([]string, error) {
	if len(rpcErr) > 0 && string(rpcErr) != "null" {
		return nil, fmt.Errorf("OVSDB error reading Physical_Switch: %s", rpcErr)
	}
	var ops []struct {
		Rows    []map[string]json.RawMessage `json:"rows"`
		Error   string                       `json:"error"`
		Details string                       `json:"details"`
	}
	if err := json.Unmarshal(result, &ops); err != nil || len(ops) != 1 {
		return nil, fmt.Errorf("not an OVSDB transact reply: %s", truncate(result, 200))
	}
	if ops[0].Error != "" {
		return nil, fmt.Errorf("OVSDB error reading Physical_Switch: %s: %s", ops[0].Error, ops[0].Details)
	}
	names := make([]string, 0, len(ops[0].Rows))
	for _, r := range ops[0].Rows {
		var name string
		if v, ok := r[vtepdb.PhysicalSwitchColumnName]; ok {
			if err := json.Unmarshal(v, &name); err != nil {
				return nil, fmt.Errorf("not an OVSDB transact reply: %s", truncate(result, 200))
			}
		}
		names = append(names, name)
	}
	return names, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// accepted is an identified inbound connection; reads continue from r.
type accepted struct {
	net.Conn
	r      io.Reader
	remote string
}
