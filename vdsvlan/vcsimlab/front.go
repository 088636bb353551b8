package vcsimlab

import (
	"fmt"
	"io"
	"net"
	"sync"
)

// front is a TCP relay in front of the simulator that can be stopped (the
// port refuses connections and open ones are cut) and started again on the
// same address: vCenter going down and coming back.
type front struct {
	addr   string // fixed after the first start
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func startFront(listen, target string) (*front, error) {
	f := &front{addr: listen, target: target, conns: map[net.Conn]struct{}{}}
	if err := f.start(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *front) start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.addr, err)
	}
	f.ln = ln
	f.addr = ln.Addr().String()
	go f.serve(ln)
	return nil
}

func (f *front) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go f.relay(c)
	}
}

func (f *front) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln == nil {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *front) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	_ = c.Close()
}

func (f *front) relay(c net.Conn) {
	if !f.track(c) {
		_ = c.Close()
		return
	}
	defer f.untrack(c)
	up, err := net.Dial("tcp", f.target)
	if err != nil {
		return
	}
	if !f.track(up) {
		_ = up.Close()
		return
	}
	defer f.untrack(up)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

func (f *front) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		_ = f.ln.Close()
		f.ln = nil
	}
	for c := range f.conns {
		_ = c.Close()
	}
}
