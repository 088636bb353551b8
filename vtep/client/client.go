// Package client is torstitch's connection to one switch's hardware_vtep
// database. It keeps a monitored cache of the tables torstitch reads,
// reconnects with exponential backoff and jitter, resyncs fully after every
// reconnect (a fresh cache from the initial monitor reply), exposes the
// observed state to the planner and applies plans in batched transactions.
//
// Nothing is planned or applied before the initial monitor reply of the
// current connection is complete, so nothing is ever deleted on the strength
// of a partial picture.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"

	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vtepdb"
	"github.com/torstitch/torstitch/vtep/wake"
)

// ErrNotConnected is returned while the client has no synced connection.
var ErrNotConnected = errors.New("switch database not connected")

// Config configures one switch connection.
type Config struct {
	Name      string // the switch's name (Physical_Switch.name); "" takes the only one
	Endpoint  string // tcp:IP:PORT, ssl:IP:PORT, unix:PATH or Inbound
	TLS       TLSFiles
	BatchRows int // rows per transaction; DefaultBatchRows when 0
	Window    int // transactions in flight at once; DefaultWindow when 0
	// Probe is the inactivity probe: an echo every Probe, the connection
	// is dropped when one is not answered within Probe; 5s when 0.
	Probe time.Duration
	// Resync re-reads Ucast_Macs_Remote (the table torstitch writes and does
	// not monitor) at this interval; 5m when 0.
	Resync time.Duration
	// ConnectTimeout bounds a connection attempt up to the end of the
	// initial monitor reply; 10s when 0.
	ConnectTimeout time.Duration
	// Reconnect backoff: doubles from MinBackoff to MaxBackoff with ±50% jitter.
	MinBackoff, MaxBackoff time.Duration
}

// Status is the connection state, for operators.
type Status struct {
	// Endpoint is the configured endpoint; for an inbound switch
	// "inbound:IP:PORT" (where it dialed from) while connected.
	Endpoint    string    `json:"endpoint"`
	Connected   bool      `json:"connected"`
	Since       time.Time `json:"since,omitzero"`
	Connections int       `json:"connections"` // successful (re)connections so far
	LastError   string    `json:"last_error,omitempty"`
	// Alive is the latest time the switch is known to have been alive: the
	// sending of the last echo it answered, or the current connection's
	// sync.
	Alive time.Time `json:"alive,omitzero"`
}

// Client is one switch's database connection. Run drives it.
type Client struct {
	cfg Config
	log *slog.Logger

	mu   sync.RWMutex
	conn client.Client // nil until the initial monitor reply of the current connection
	// connCtx ends when conn is dropped: transactions on conn are bound to
	// it, so one waiting on a dead switch cannot hold libovsdb's lock (and
	// with it conn.Close and the agent's reconcile loop) forever.
	connCtx context.Context
	status  Status

	applyMu sync.Mutex // serializes plans and applies; guards remote's rows
	remote  remoteTable
	changed wake.Signal
	dbModel model.ClientDBModel

	inbound chan *accepted // identified connections of an inbound switch
	claimed bool           // an inbound connection is held (mu)
}

// New validates the configuration and returns an unconnected client.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	if err := ValidateEndpoint(cfg.Endpoint); err != nil {
		return nil, err
	}
	if _, err := loadTLS(cfg.Endpoint, cfg.Name, cfg.TLS); err != nil {
		return nil, err
	}
	if cfg.Probe <= 0 {
		cfg.Probe = 5 * time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 5 * time.Minute
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		// A switch that comes back is reprogrammed within this (±50 %)
		// after its database answers: until then it forwards with what it
		// held when it went away (remote MACs that moved meanwhile). OVS's
		// own reconnect stops at 8 s, Junos' OVSDB at 1 s; a connection
		// attempt every few seconds costs a dead switch nothing.
		cfg.MaxBackoff = 4 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dbm, err := vtepdb.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("hardware_vtep model: %w", err)
	}
	if cfg.Endpoint == Inbound && cfg.Name == "" {
		return nil, fmt.Errorf("an inbound switch needs a name")
	}
	return &Client{
		inbound: make(chan *accepted),
		cfg:     cfg,
		log:     log.With("switch", cfg.Name, "ovsdb", cfg.Endpoint),
		status:  Status{Endpoint: cfg.Endpoint},
		changed: wake.New(),
		dbModel: dbm,
	}, nil
}

// Changed is signalled (coalesced) after any change of the monitored tables
// and after every (re)connection.
func (c *Client) Changed() <-chan struct{} { return c.changed }

// Status returns the connection state.
func (c *Client) Status() Status {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.status
}

// Alive returns the latest time the switch is known to have been alive (see
// Status.Alive); zero before the first connection.
func (c *Client) Alive() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.status.Alive
}

// Connected reports whether the client holds a synced connection.
func (c *Client) Connected() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.conn != nil
}

// WaitConnected blocks until the client holds a synced connection.
func (c *Client) WaitConnected(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !c.Connected() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for switch %s: %w", c.cfg.Name, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Run connects and keeps the connection until ctx ends. It never gives up:
// connection failures are logged and retried with backoff.
func (c *Client) Run(ctx context.Context) error {
	backoff := c.cfg.MinBackoff
	for {
		conn, err := c.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if c.cfg.Endpoint == Inbound {
				// Nothing to retry against: the switch dials again.
				c.log.Warn("inbound switch connection failed", "err", err)
				c.setErr(err)
				continue
			}
			wait := jitter(backoff)
			c.log.Warn("switch database unreachable", "err", err, "retry_in", wait.Round(time.Millisecond))
			c.setErr(err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			backoff = min(backoff*2, c.cfg.MaxBackoff)
			continue
		}
		backoff = c.cfg.MinBackoff
		c.serve(ctx, conn)
		if ctx.Err() != nil {
			return nil
		}
	}
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

func (c *Client) setErr(err error) {
	c.mu.Lock()
	c.status.LastError = err.Error()
	c.mu.Unlock()
}

// connect opens a connection with a fresh cache and waits for the initial
// monitor reply.
func (c *Client) connect(ctx context.Context) (_ client.Client, err error) {
	// libovsdb logs through logr: V(n) maps to slog level -n, below Debug.
	lg := logr.FromSlogHandler(c.log.Handler())
	endpoint := c.cfg.Endpoint
	var in *accepted
	if endpoint == Inbound {
		select {
		case in = <-c.inbound:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var ep string
		var abort func()
		ep, abort, err = c.bridge(ctx, in) // err: the named result, seen by the defer below
		if err != nil {
			in.Close()
			c.release()
			return nil, err
		}
		defer func() {
			if err != nil {
				abort()
			}
		}()
		endpoint = ep
	}
	opts := []client.Option{client.WithEndpoint(endpoint), client.WithLogger(&lg)}
	tlsCfg, err := loadTLS(c.cfg.Endpoint, c.cfg.Name, c.cfg.TLS)
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		opts = append(opts, client.WithTLSConfig(tlsCfg))
	}
	conn, err := client.NewOVSDBClient(c.dbModel, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating OVSDB client: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	if in != nil {
		// Whatever ends this attempt early ends the switch's connection
		// too, and with it the bridge and the claim.
		defer func() {
			if err != nil {
				in.Close()
				c.mu.Lock()
				c.status.Endpoint = Inbound
				c.mu.Unlock()
			}
		}()
		c.mu.Lock()
		c.status.Endpoint = "inbound:" + in.remote
		c.mu.Unlock()
	}
	if err := conn.Connect(cctx); err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	conn.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(string, model.Model) { c.changed.Notify() },
		UpdateFunc: func(string, model.Model, model.Model) { c.changed.Notify() },
		DeleteFunc: func(string, model.Model) { c.changed.Notify() },
	})
	if _, err := conn.Monitor(cctx, conn.NewMonitor(monitorOptions()...)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("monitoring hardware_vtep: %w", err)
	}
	if err := c.resyncRemote(cctx, conn); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// resyncRemote replaces the copy of Ucast_Macs_Remote with what the
// database holds.
func (c *Client) resyncRemote(ctx context.Context, conn client.Client) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	rows, err := loadRemote(ctx, conn)
	if err != nil {
		return err
	}
	before := c.remote.len()
	c.remote.replace(rows)
	if before != len(rows) {
		c.changed.Notify()
	}
	return nil
}

// serve publishes a synced connection and holds it until it drops, the
// liveness probe fails, or ctx ends.
func (c *Client) serve(ctx context.Context, conn client.Client) {
	connCtx, cancelConn := context.WithCancel(ctx)
	c.mu.Lock()
	c.conn = conn
	c.connCtx = connCtx
	c.status.Connected = true
	c.status.Since = time.Now()
	c.status.Connections++
	c.status.LastError = ""
	c.status.Alive = c.status.Since
	n := c.status.Connections
	c.mu.Unlock()
	c.log.Info("switch database synced", "connection", n)
	c.changed.Notify()

	defer func() {
		cancelConn() // first: ends transactions in flight so Close can lock
		c.mu.Lock()
		c.conn = nil
		c.connCtx = nil
		c.status.Connected = false
		c.status.Since = time.Now()
		if c.cfg.Endpoint == Inbound {
			c.status.Endpoint = Inbound // until the switch dials again
		}
		c.mu.Unlock()
		conn.Close()
		c.changed.Notify()
	}()
	probe := time.NewTicker(c.cfg.Probe)
	defer probe.Stop()
	resync := time.NewTicker(c.cfg.Resync)
	defer resync.Stop()
	for {
		select {
		case <-resync.C:
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			err := c.resyncRemote(rctx, conn)
			cancel()
			if err != nil && ctx.Err() == nil {
				c.log.Warn("resync of remote MACs failed", "err", err)
				c.setErr(err)
				return
			}
		case <-ctx.Done():
			return
		case <-conn.DisconnectNotify():
			c.log.Warn("switch database connection lost")
			c.setErr(errors.New("connection lost"))
			return
		case <-probe.C:
			pctx, cancel := context.WithTimeout(ctx, c.cfg.Probe)
			sent := time.Now()
			err := conn.Echo(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				c.log.Warn("switch database not answering", "err", err)
				c.setErr(fmt.Errorf("echo: %w", err))
				return
			}
			if err == nil {
				c.mu.Lock()
				c.status.Alive = sent
				c.mu.Unlock()
			}
		}
	}
}

func (c *Client) current() client.Client {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.conn
}

// currentBound returns the current connection and ctx narrowed to that
// connection's lifetime (release with the returned cancel func).
func (c *Client) currentBound(ctx context.Context) (client.Client, context.Context, context.CancelFunc) {
	c.mu.RLock()
	conn, connCtx := c.conn, c.connCtx
	c.mu.RUnlock()
	ctx, cancel := context.WithCancel(ctx)
	if connCtx == nil {
		return conn, ctx, cancel
	}
	stop := context.AfterFunc(connCtx, cancel)
	return conn, ctx, func() { stop(); cancel() }
}

// Observed returns the switch's state as the planner sees it.
func (c *Client) Observed() (*plan.Observed, error) {
	conn := c.current()
	if conn == nil {
		return nil, ErrNotConnected
	}
	o := observe(conn.Cache(), c.cfg.Name)
	o.UcastRemote = c.remote.snapshot()
	return o, nil
}

// ObservedWithoutRemote is Observed without Ucast_Macs_Remote (nil), for
// callers that need ports, faults, tunnel IPs and local MACs: it does not copy
// the largest table.
func (c *Client) ObservedWithoutRemote() (*plan.Observed, error) {
	conn := c.current()
	if conn == nil {
		return nil, ErrNotConnected
	}
	return observe(conn.Cache(), c.cfg.Name), nil
}

// Reconcile plans desired against the observed state and applies the
// difference. A switch already in the desired state costs no transaction.
// Desired state that collides with the switch is skipped and returned in
// ApplyResult.Conflicts; the rest is applied.
func (c *Client) Reconcile(ctx context.Context, d *plan.Desired, opt plan.Options) (ApplyResult, error) {
	c.applyMu.Lock()
	conn, ctx, release := c.currentBound(ctx)
	defer release()
	if conn == nil {
		c.applyMu.Unlock()
		return ApplyResult{}, ErrNotConnected
	}
	o := observe(conn.Cache(), c.cfg.Name)
	o.UcastRemote, o.UcastRemoteIndex = c.remote.live()
	ch, err := plan.Plan(d, o, opt)
	if err != nil {
		c.applyMu.Unlock()
		return ApplyResult{}, fmt.Errorf("switch %s: %w", c.cfg.Name, err)
	}
	res, err := apply(ctx, conn, ch, c.cfg.BatchRows, c.cfg.Window, &c.remote)
	c.applyMu.Unlock()
	res.Conflicts = ch.Conflicts
	if err != nil {
		return res, fmt.Errorf("switch %s: %w", c.cfg.Name, err)
	}
	if res.Transactions > 0 {
		c.log.Debug("reconciled", "changes", res.Changes, "transactions", res.Transactions, "rows", res.Rows, "took", res.Duration)
	}
	return res, nil
}

// RemoteCount returns how many Ucast_Macs_Remote rows the switch holds (as
// of the last resync plus torstitch's own committed writes).
func (c *Client) RemoteCount() int { return c.remote.len() }
