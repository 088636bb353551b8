package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/api/apitest"
	"github.com/torstitch/torstitch/vtep/l2"
)

// FuzzHandler: no request (method, path with query, body) panics the
// handler or gets a 500 from a healthy backend; every error answer is an
// ErrorBody, and a bind the handler passes on has valid values.
func FuzzHandler(f *testing.F) {
	f.Add("POST", "/v1/bindings", []byte(`{"vlan":300,"vni":10300,"ports":["tor1:eth5","tor2:eth5"]}`))
	f.Add("DELETE", "/v1/bindings", []byte(`{"vlan":100,"ports":["tor1:eth1"]}`))
	f.Add("POST", "/v1/bindings", []byte(`{"vlan":1,"vni":1,"ports":["tor1:eth\u00011"]}`))
	f.Add("GET", "/v1/macs?vni=10100", []byte(nil))
	f.Add("GET", "/v1/macs?vni=10100&vni=1", []byte(nil))
	f.Add("PUT", "/v1/bindings", []byte(`[1]`))
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		if !validMethod(method) || len(target) == 0 || target[0] != '/' {
			return
		}
		req, err := http.NewRequest(method, "http://agent"+target, bytes.NewReader(body))
		if err != nil {
			return
		}
		fake := apitest.Sample()
		rec := httptest.NewRecorder()
		api.NewHandler(fake, nil, "").ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, target, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var eb api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == "" {
				t.Fatalf("error answer is not an ErrorBody: %q", rec.Body)
			}
		}
		for _, c := range fake.Calls() {
			if br, ok := c.Arg.(api.BindRequest); ok {
				if br.VLAN.ValidateUsable() != nil || br.VNI.Validate() != nil {
					t.Fatalf("invalid bind passed on: %+v", br)
				}
				for _, p := range br.Ports {
					if _, err := l2.ParsePortRef(p); err != nil {
						t.Fatalf("invalid port passed on: %q", p)
					}
				}
			}
		}
	})
}

func validMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS":
		return true
	}
	return false
}
