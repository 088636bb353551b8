package vteptest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
)

// RowCount counts a table's rows as an independent observer: a plain
// JSON-RPC monitor of one column over its own connection, no libovsdb and
// no cache, so that it costs the test process little while the code under
// test writes (the server still sends it every row once).
type RowCount struct {
	conn    net.Conn
	mu      sync.Mutex
	n       int
	err     error
	changed chan struct{} // closed and replaced on every update
	done    chan struct{}
}

// CountRows starts monitoring table's column on the server at endpoint
// ("unix:PATH" or "tcp:HOST:PORT"); it returns once the initial contents are
// counted.
func CountRows(ctx context.Context, endpoint, table, column string) (*RowCount, error) {
	network, addr, ok := strings.Cut(endpoint, ":")
	if !ok || (network != "unix" && network != "tcp") {
		return nil, fmt.Errorf("endpoint %q: want unix:PATH or tcp:HOST:PORT", endpoint)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	req := fmt.Sprintf(`{"id":"count","method":"monitor","params":["hardware_vtep",null,{%q:{"columns":[%q],"select":{"initial":true,"insert":true,"delete":true,"modify":false}}}]}`, table, column)
	if _, err := conn.Write([]byte(req)); err != nil {
		conn.Close()
		return nil, err
	}
	c := &RowCount{conn: conn, changed: make(chan struct{}), done: make(chan struct{})}
	dec := json.NewDecoder(conn)
	var reply rpcMessage
	for reply.Method != "" || reply.ID == nil {
		reply = rpcMessage{}
		if err := dec.Decode(&reply); err != nil {
			conn.Close()
			return nil, fmt.Errorf("monitor reply: %w", err)
		}
		if reply.Method == "echo" {
			c.echo(reply)
		}
	}
	if len(reply.Error) > 0 && string(reply.Error) != "null" {
		conn.Close()
		return nil, fmt.Errorf("monitor: %s", reply.Error)
	}
	if err := c.apply(reply.Result, table); err != nil {
		conn.Close()
		return nil, err
	}
	go c.read(dec, table)
	return c, nil
}

type rpcMessage struct {
	ID     json.RawMessage   `json:"id"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
	Result json.RawMessage   `json:"result"`
	Error  json.RawMessage   `json:"error"`
}

type rowUpdate struct {
	Old json.RawMessage `json:"old"`
	New json.RawMessage `json:"new"`
}

func (c *RowCount) echo(m rpcMessage) {
	params, _ := json.Marshal(m.Params)
	_, _ = fmt.Fprintf(c.conn, `{"id":%s,"result":%s,"error":null}`, m.ID, params)
}

func (c *RowCount) apply(updates json.RawMessage, table string) error {
	var tu map[string]map[string]rowUpdate
	if err := json.Unmarshal(updates, &tu); err != nil {
		return fmt.Errorf("table updates: %w", err)
	}
	delta := 0
	for _, u := range tu[table] {
		if u.New != nil {
			delta++
		}
		if u.Old != nil {
			delta--
		}
	}
	c.mu.Lock()
	c.n += delta
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return nil
}

func (c *RowCount) read(dec *json.Decoder, table string) {
	defer close(c.done)
	for {
		var m rpcMessage
		err := dec.Decode(&m)
		if err == nil {
			switch m.Method {
			case "update":
				if len(m.Params) == 2 {
					err = c.apply(m.Params[1], table)
				}
			case "echo":
				c.echo(m)
			}
		}
		if err != nil {
			c.mu.Lock()
			c.err = err
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
			return
		}
	}
}

// N returns the rows counted so far.
func (c *RowCount) N() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Wait blocks until at least n rows are counted, the monitor fails, or ctx
// ends.
func (c *RowCount) Wait(ctx context.Context, n int) error {
	return c.WaitFor(ctx, fmt.Sprintf("at least %d rows", n), func(got int) bool { return got >= n })
}

// WaitFor blocks until ok holds for the count (what describes ok for the
// error), the monitor fails, or ctx ends.
func (c *RowCount) WaitFor(ctx context.Context, what string, ok func(n int) bool) error {
	for {
		c.mu.Lock()
		got, err, ch := c.n, c.err, c.changed
		c.mu.Unlock()
		if ok(got) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("waiting for %s: %d rows, monitor ended: %w", what, got, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %d rows: %w", what, got, ctx.Err())
		case <-ch:
		}
	}
}

// Close ends the monitor.
func (c *RowCount) Close() {
	c.conn.Close()
	<-c.done
}
