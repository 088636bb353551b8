package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// claim marks the inbound switch as connected; false when it already is.
// The claim lasts until the accepted connection is closed (release).
func (c *Client) claim() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.claimed {
		return false
	}
	c.claimed = true
	return true
}

func (c *Client) release() {
	c.mu.Lock()
	c.claimed = false
	c.mu.Unlock()
}

// offer hands an identified connection to Run; the claim is held.
func (c *Client) offer(ctx context.Context, a *accepted) {
	select {
	case c.inbound <- a:
	case <-ctx.Done():
		a.Close()
		c.release()
	}
}

// bridgeAcceptTimeout bounds how long a bridge waits for libovsdb to dial it.
const bridgeAcceptTimeout = 10 * time.Second

// bridge makes an accepted switch connection reachable as a unix socket
// endpoint, so that libovsdb (which only dials) runs unchanged for inbound
// switches: one code path for both directions. The socket lives in a
// private (0700) temporary directory, accepts one connection and is removed
// at once; the bytes are then copied both ways until either side closes,
// which closes the other and releases the switch's claim.
//
// abort stops waiting for libovsdb (an attempt that failed before dialing);
// after the bridge is connected it does nothing.
func (c *Client) bridge(ctx context.Context, a *accepted) (endpoint string, abort func(), err error) {
	dir, err := os.MkdirTemp("", "torstitch-in-")
	if err != nil {
		return "", nil, fmt.Errorf("bridge for inbound switch: %w", err)
	}
	path := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("bridge for inbound switch: %w", err)
	}
	_ = ln.SetDeadline(time.Now().Add(bridgeAcceptTimeout))
	go func() {
		defer c.release()
		u, err := ln.Accept()
		ln.Close()
		os.RemoveAll(dir)
		if err != nil {
			a.Close()
			return
		}
		var once sync.Once
		closeBoth := func() { once.Do(func() { u.Close(); a.Close() }) }
		stop := context.AfterFunc(ctx, closeBoth)
		defer stop()
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = io.Copy(u, a.r); closeBoth() }()
		go func() { defer wg.Done(); _, _ = io.Copy(a.Conn, u); closeBoth() }()
		wg.Wait()
	}()
	return "unix:" + path, func() { ln.Close() }, nil
}
