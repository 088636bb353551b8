package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/api/apitest"
	"github.com/torstitch/torstitch/vtep/l2"
)

const testToken = "s3cret-token-value"

func TestHandler(t *testing.T) {
	bearer := "Bearer " + testToken
	type tc struct {
		name     string
		method   string
		path     string
		body     string
		auth     string            // Authorization header; "" sends none
		errs     map[string]error  // backend failures
		code     int               // wanted status
		calls    []apitest.Call    // wanted backend calls (nil: none)
		contains string            // in the body
		headers  map[string]string // wanted response headers
	}
	call := func(m string, arg any) []apitest.Call { return []apitest.Call{{Method: m, Arg: arg}} }
	big := `{"vlan":1,"vni":1,"ports":["` + strings.Repeat("x", api.MaxRequestBody) + `"]}`
	cases := []tc{
		{name: "version", method: "GET", path: "/v1/version", auth: bearer, code: 200, calls: call("Version", nil), contains: `"agent":"pair1"`},
		{name: "bindings", method: "GET", path: "/v1/bindings", auth: bearer, code: 200, calls: call("Bindings", nil), contains: `"source":"vcenter"`},
		{name: "bind", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":300,"vni":10300,"ports":["tor1:eth5","tor2:eth5"]}`, code: 204,
			calls: call("Bind", api.BindRequest{VLAN: 300, VNI: 10300, Ports: []string{"tor1:eth5", "tor2:eth5"}})},
		{name: "bind untagged", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":0,"vni":1,"ports":["tor1:eth5"]}`, code: 204,
			calls: call("Bind", api.BindRequest{VLAN: 0, VNI: 1, Ports: []string{"tor1:eth5"}})},
		{name: "unbind", method: "DELETE", path: "/v1/bindings", auth: bearer, body: `{"vlan":100,"ports":["tor1:eth1"]}`, code: 204,
			calls: call("Unbind", api.UnbindRequest{VLAN: 100, Ports: []string{"tor1:eth1"}})},
		{name: "macs all", method: "GET", path: "/v1/macs", auth: bearer, code: 200, calls: call("MACs", l2.VNI(0)), contains: `52:54:00:aa:bb:02`},
		{name: "macs one vni", method: "GET", path: "/v1/macs?vni=10100", auth: bearer, code: 200, calls: call("MACs", l2.VNI(10100)), contains: `"remote":[{"vni":10100`},
		{name: "macs vni 0", method: "GET", path: "/v1/macs?vni=0", auth: bearer, code: 400, contains: "VNI 0 out of range"},
		{name: "macs vni too big", method: "GET", path: "/v1/macs?vni=16777216", auth: bearer, code: 400, contains: "out of range"},
		{name: "macs unknown query", method: "GET", path: "/v1/macs?vlan=3", auth: bearer, code: 400, contains: `unknown query parameter \"vlan\"`},
		{name: "switches", method: "GET", path: "/v1/switches", auth: bearer, code: 200, calls: call("Switches", nil), contains: `unsupported_source_node_replication`},
		{name: "peers", method: "GET", path: "/v1/peers", auth: bearer, code: 200, calls: call("Peers", nil), contains: `"address":"10.0.0.1"`},
		{name: "vcenter", method: "GET", path: "/v1/vcenter", auth: bearer, code: 200, calls: call("VCenter", nil), contains: `"vm_macs":7`},
		{name: "unknown route", method: "GET", path: "/v1/nope", auth: bearer, code: 404, contains: "no such endpoint /v1/nope"},
		{name: "unknown method", method: "PUT", path: "/v1/bindings", auth: bearer, body: `{}`, code: 405,
			contains: "method PUT not allowed", headers: map[string]string{"Allow": "DELETE, GET, POST"}},
		{name: "get only", method: "POST", path: "/v1/version", auth: bearer, code: 405, headers: map[string]string{"Allow": "GET"}},
		{name: "no token", method: "GET", path: "/v1/bindings", code: 401, contains: "unauthorized",
			headers: map[string]string{"WWW-Authenticate": `Bearer realm="toragent"`}},
		{name: "wrong token", method: "GET", path: "/v1/bindings", auth: "Bearer nope", code: 401},
		{name: "token prefix", method: "GET", path: "/v1/bindings", auth: bearer[:len(bearer)-1], code: 401},
		{name: "wrong scheme", method: "GET", path: "/v1/bindings", auth: "Basic " + testToken, code: 401},
		{name: "no token bind", method: "POST", path: "/v1/bindings", body: `{"vlan":300,"vni":10300,"ports":["tor1:eth5"]}`, code: 401},
		{name: "no token unknown route", method: "GET", path: "/v1/nope", code: 401},
		{name: "lower-case scheme", method: "GET", path: "/v1/version", auth: "bearer " + testToken, code: 200, calls: call("Version", nil)},
		{name: "bad json", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":300,`, code: 400, contains: "truncated JSON"},
		{name: "syntax error", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":300 "vni":1}`, code: 400, contains: "malformed JSON"},
		{name: "unknown field", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":300,"vni":10300,"ports":["a:b"],"colour":"red"}`, code: 400,
			contains: `unknown field \"colour\"`},
		{name: "trailing data", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":300,"vni":10300,"ports":["a:b"]} {}`, code: 400, contains: "trailing data"},
		{name: "empty body", method: "DELETE", path: "/v1/bindings", auth: bearer, code: 400, contains: "empty"},
		{name: "wrong type", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":"x","vni":10300,"ports":["a:b"]}`, code: 400, contains: `field \"vlan\"`},
		{name: "vlan overflow", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":70000,"vni":10300,"ports":["a:b"]}`, code: 400, contains: `field \"vlan\"`},
		{name: "array body", method: "POST", path: "/v1/bindings", auth: bearer, body: `[1]`, code: 400, contains: "want a JSON object"},
		{name: "too large", method: "POST", path: "/v1/bindings", auth: bearer, body: big, code: 413, contains: "larger than"},
		{name: "vlan 4095", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":4095,"vni":10300,"ports":["a:b"]}`, code: 400, contains: "reserved"},
		{name: "vlan 5000", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":5000,"vni":10300,"ports":["a:b"]}`, code: 400, contains: "VLAN 5000"},
		{name: "vni 0", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":1,"vni":0,"ports":["a:b"]}`, code: 400, contains: "VNI 0"},
		{name: "vni too big", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":1,"vni":16777216,"ports":["a:b"]}`, code: 400, contains: "VNI 16777216"},
		{name: "port without colon", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":1,"vni":1,"ports":["eth1"]}`, code: 400, contains: "SWITCH:PORT"},
		{name: "no ports", method: "DELETE", path: "/v1/bindings", auth: bearer, body: `{"vlan":1}`, code: 400, contains: "no ports"},
		{name: "backend invalid", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":1,"vni":1,"ports":["tor9:eth1"]}`,
			errs: map[string]error{"Bind": fmt.Errorf("%w: switch tor9 is not in the pair", api.ErrInvalid)}, code: 400,
			calls: call("Bind", api.BindRequest{VLAN: 1, VNI: 1, Ports: []string{"tor9:eth1"}}), contains: "switch tor9 is not in the pair"},
		{name: "backend conflict", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":100,"vni":1,"ports":["tor1:eth1"]}`,
			errs: map[string]error{"Bind": fmt.Errorf("binding: %w: VLAN 100 on tor1:eth1 is bound to VNI 10100", api.ErrConflict)}, code: 409,
			calls: call("Bind", api.BindRequest{VLAN: 100, VNI: 1, Ports: []string{"tor1:eth1"}}), contains: "is bound to VNI 10100"},
		{name: "backend failure", method: "GET", path: "/v1/switches", auth: bearer, errs: map[string]error{"Switches": fmt.Errorf("disk on fire")},
			code: 500, calls: call("Switches", nil), contains: "disk on fire"},
		{name: "control character in port", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":1,"vni":1,"ports":["tor1:eth\u00011"]}`, code: 400,
			contains: `port name has a control character`},
		{name: "space in port", method: "POST", path: "/v1/bindings", auth: bearer, body: `{"vlan":1,"vni":1,"ports":["tor1:eth 1"]}`, code: 400,
			contains: `port name has white space`},
		{name: "long port", method: "DELETE", path: "/v1/bindings", auth: bearer, body: `{"vlan":1,"ports":["tor1:` + strings.Repeat("e", 5000) + `"]}`, code: 400,
			contains: `port name is 5000 bytes long (at most 255)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := apitest.Sample()
			for m, err := range c.errs {
				f.SetErr(m, err)
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			h := api.NewHandler(f, log, testToken)
			var body *strings.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			var req *http.Request
			if body != nil {
				req = httptest.NewRequest(c.method, c.path, body)
			} else {
				req = httptest.NewRequest(c.method, c.path, nil)
			}
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.code {
				t.Fatalf("status %d, want %d; body %s", rec.Code, c.code, rec.Body)
			}
			if got := f.Calls(); !reflect.DeepEqual(got, c.calls) {
				t.Errorf("backend calls %+v, want %+v", got, c.calls)
			}
			if !strings.Contains(rec.Body.String(), c.contains) {
				t.Errorf("body %s does not contain %q", rec.Body, c.contains)
			}
			for k, v := range c.headers {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if c.code >= 400 {
				var eb api.ErrorBody
				dec := json.NewDecoder(rec.Body)
				dec.DisallowUnknownFields()
				if err := dec.Decode(&eb); err != nil || eb.Error == "" {
					t.Errorf("error answer is not an ErrorBody: %v %+v", err, eb)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
			}
			if strings.Contains(logs.String(), testToken) {
				t.Errorf("log contains the token: %s", logs.String())
			}
			if logs.Len() == 0 {
				t.Errorf("request not logged")
			}
		})
	}
}

// TestHandlerNoToken: without a configured token no Authorization is needed,
// and empty lists are answered as [] (never null).
func TestHandlerNoToken(t *testing.T) {
	f := &apitest.Fake{}
	h := api.NewHandler(f, nil, "")
	for _, path := range []string{"/v1/bindings", "/v1/switches", "/v1/peers"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "[]" {
			t.Errorf("GET %s: %d %q, want 200 []", path, rec.Code, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/macs", nil))
	if got := strings.TrimSpace(rec.Body.String()); got != `{"local":[],"remote":[]}` {
		t.Errorf("GET /v1/macs: %s", got)
	}
}

type panicky struct{ *apitest.Fake }

func (panicky) Peers(context.Context) ([]api.Peer, error) { panic("nil map") }

// TestHandlerPanic: a panicking backend gives a 500 ErrorBody and a log line.
func TestHandlerPanic(t *testing.T) {
	var logs bytes.Buffer
	h := api.NewHandler(panicky{apitest.Sample()}, slog.New(slog.NewTextHandler(&logs, nil)), "")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/peers", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), api.InternalError) || strings.Contains(rec.Body.String(), "nil map") {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "api handler panic") || !strings.Contains(logs.String(), "nil map") {
		t.Errorf("panic not logged: %s", logs.String())
	}
}
