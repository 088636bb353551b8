package config

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/agent/store"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/api/apitest"
)

var update = flag.Bool("update", false, "rewrite docs/bad-inputs.md")

// goldenDoc is the operator documentation this test writes (-update) and
// checks: every bad input tried, with the exact message it gets.
const goldenDoc = "../../../docs/bad-inputs.md"

// shownDir replaces the test's temporary directory in the document.
const shownDir = "/etc/torstitch"

const badBase = `agent: {name: pair1, api: "unix:///run/torstitch/toragent.sock", state_dir: /var/lib/torstitch}
switches:
  - {name: tor1, ovsdb: "tcp:10.0.0.11:6640"}
  - {name: tor2, ovsdb: "tcp:10.0.0.12:6640"}
bgp:
  asn: 65000
  router_id: 10.0.0.10
  neighbors: [{address: 10.0.0.1, asn: 65000}]
  graceful_restart: {enabled: true, restart_time: 120}
bindings: [{vlan: 100, vni: 10100, ports: ["tor1:eth1", "tor2:eth1"]}]
`

const vcBase = "vcenter: {url: \"https://vc.example/sdk\", username_file: DIR/vc.user, password_file: DIR/vc.pass, datacenter: DC0, vni_policy: {mode: offset, base: 10000}, host_ports: lldp}\n"

type badConfig struct {
	name     string
	from, to string // edit of badBase ("" from: append to)
}

var badConfigs = []badConfig{
	{"empty file", badBase, ""},
	{"YAML syntax error", "asn: 65000", "asn: [65000"},
	{"a second YAML document", "", "---\nagent: {name: pair2}\n"},
	{"unknown key (no Go type names)", "asn: 65000", "asn: 65000\n  colour: blue"},
	{"unknown top-level key", "bindings:", "binding:"},
	{"duplicate key", "asn: 65000", "asn: 65000\n  asn: 65001"},
	{"agent.resync negative", "state_dir: /var/lib/torstitch}", "state_dir: /var/lib/torstitch, resync: -5s}"},
	{"agent.resync zero", "state_dir: /var/lib/torstitch}", "state_dir: /var/lib/torstitch, resync: 0s}"},
	{"agent.resync 1e12 seconds", "state_dir: /var/lib/torstitch}", "state_dir: /var/lib/torstitch, resync: 1e12}"},
	{"agent.resync 1ns (busy loop)", "state_dir: /var/lib/torstitch}", "state_dir: /var/lib/torstitch, resync: 1ns}"},
	{"agent.resync not a duration", "state_dir: /var/lib/torstitch}", "state_dir: /var/lib/torstitch, resync: soon}"},
	{"restart_time 1e20 (was a negative duration)", "restart_time: 120", "restart_time: 1e20"},
	{"restart_time above RFC 4724's 4095 s", "restart_time: 120", "restart_time: 5000"},
	{"restart_time zero", "restart_time: 120", "restart_time: 0"},
	{"probe_interval 1ns", `ovsdb: "tcp:10.0.0.11:6640"}`, `ovsdb: "tcp:10.0.0.11:6640", probe_interval: 1ns}`},
	{"bfd.min_rx 1ms (below 10ms)", `ovsdb: "tcp:10.0.0.11:6640"}`, `ovsdb: "tcp:10.0.0.11:6640", bfd: {enabled: true, min_rx: 1ms}}`},
	{"bfd.min_tx 1m (above 10s)", `ovsdb: "tcp:10.0.0.11:6640"}`, `ovsdb: "tcp:10.0.0.11:6640", bfd: {enabled: true, min_tx: 1m}}`},
	{"bfd.min_rx 0 (explicit)", `ovsdb: "tcp:10.0.0.11:6640"}`, `ovsdb: "tcp:10.0.0.11:6640", bfd: {enabled: true, min_rx: 0}}`},
	{"bfd.min_rx 300500us (not whole milliseconds)", `ovsdb: "tcp:10.0.0.11:6640"}`, `ovsdb: "tcp:10.0.0.11:6640", bfd: {enabled: true, min_rx: 300500us}}`},
	{"bfd.enabled not a boolean", `ovsdb: "tcp:10.0.0.11:6640"}`, `ovsdb: "tcp:10.0.0.11:6640", bfd: {enabled: maybe}}`},
	{"bfd unknown key", `ovsdb: "tcp:10.0.0.11:6640"}`, `ovsdb: "tcp:10.0.0.11:6640", bfd: {enabled: true, detect_multiplier: 3}}`},
	{"bfd timers bad on both switches at once", "6640\"}\n  - {name: tor2, ovsdb: \"tcp:10.0.0.12:6640\"}",
		"6640\", bfd: {min_rx: 5ms}}\n  - {name: tor2, ovsdb: \"tcp:10.0.0.12:6640\", bfd: {enabled: true, min_tx: 20s}}"},
	{"connect_retry 100ms", "router_id: 10.0.0.10", "router_id: 10.0.0.10\n  connect_retry: 100ms"},
	{"asn not a number", "asn: 65000", "asn: banana"},
	{"asn out of range", "asn: 65000", "asn: 4294967296"},
	{"vlan 100.9 (was truncated to 100)", "vlan: 100", "vlan: 100.9"},
	{"vlan as a string", "vlan: 100", `vlan: "100"`},
	{"vlan 4095", "vlan: 100", "vlan: 4095"},
	{"vni 0", "vni: 10100", "vni: 0"},
	{"conflicting static bindings", `"tor2:eth1"]}]`, `"tor2:eth1"]}, {vlan: 100, vni: 10200, ports: ["tor1:eth1"]}]`},
	{"same binding twice", `"tor2:eth1"]}]`, `"tor2:eth1"]}, {vlan: 100, vni: 10100, ports: ["tor1:eth1"]}]`},
	{"port name with a space", `"tor2:eth1"`, `"tor2:eth 1"`},
	{"port name with a control character", `"tor2:eth1"`, `"tor2:eth\x011"`},
	{"port name of 5,000 bytes", `"tor2:eth1"`, `"tor2:` + strings.Repeat("e", 5000) + `"`},
	{"port without a switch", `"tor2:eth1"`, `"eth1"`},
	{"port on a switch not in the pair", `"tor2:eth1"`, `"tor3:eth1"`},
	{"switch name with a colon", "name: tor2,", "name: \"tor:2\","},
	{"three switches", "bgp:", "  - {name: tor3, ovsdb: \"tcp:10.0.0.13:6640\"}\nbgp:"},
	{"relative API socket", "unix:///run/torstitch/toragent.sock", "unix://toragent.sock"},
	{"relative state_dir", "state_dir: /var/lib/torstitch", "state_dir: var/lib/torstitch"},
	{"metrics: not-an-address", "state_dir: /var/lib/torstitch}", "state_dir: /var/lib/torstitch, metrics: not-an-address}"},
	{"metrics with a host name", "state_dir: /var/lib/torstitch}", "state_dir: /var/lib/torstitch, metrics: \"localhost:9464\"}"},
	{"TCP API with a host name, no TLS, no token", "unix:///run/torstitch/toragent.sock", "tcp://localhost:8443"},
	{"TCP API with api_tls: {}", `api: "unix:///run/torstitch/toragent.sock",`, `api: "tcp://10.0.0.10:8443", api_tls: {}, token_file: DIR/api.token,`},
	{"TCP API with missing cert and key files", `api: "unix:///run/torstitch/toragent.sock",`,
		`api: "tcp://10.0.0.10:8443", api_tls: {cert: DIR/missing-cert.pem, key: DIR/missing-key.pem}, token_file: DIR/api.token,`},
	{"TCP API with a key that is not the certificate's", `api: "unix:///run/torstitch/toragent.sock",`,
		`api: "tcp://10.0.0.10:8443", api_tls: {cert: DIR/api-cert.pem, key: DIR/other-key.pem}, token_file: DIR/api.token,`},
	{"api_tls on a unix socket", `api: "unix:///run/torstitch/toragent.sock",`, `api: "unix:///run/torstitch/toragent.sock", api_tls: {cert: DIR/api-cert.pem, key: DIR/api-key.pem},`},
	{"missing token file", `api: "unix:///run/torstitch/toragent.sock",`, `api: "unix:///run/torstitch/toragent.sock", token_file: DIR/missing.token,`},
	{"empty token file", `api: "unix:///run/torstitch/toragent.sock",`, `api: "unix:///run/torstitch/toragent.sock", token_file: DIR/empty.token,`},
	{"router_id not IPv4", "router_id: 10.0.0.10", "router_id: 2001:db8::10"},
	{"neighbor address a host name", "address: 10.0.0.1,", "address: rr1.example,"},
	{"IPv6 local address for an IPv4 neighbor", "asn: 65000}]", "asn: 65000, local_address: \"2001:db8::10\"}]"},
	{"duplicate neighbor", "asn: 65000}]", "asn: 65000}, {address: 10.0.0.1, asn: 65000}]"},
	{"missing BGP password file", "asn: 65000}]", "asn: 65000, password_file: DIR/missing.pw}]"},
	{"BGP password over 80 bytes", "asn: 65000}]", "asn: 65000, password_file: DIR/long.pw}]"},
	{"ssl switch without TLS files", `"tcp:10.0.0.12:6640"`, `"ssl:10.0.0.12:6640"`},
	{"ssl switch with missing CA file", `"tcp:10.0.0.12:6640"}`, `"ssl:10.0.0.12:6640", tls: {ca: DIR/missing-ca.pem, cert: DIR/api-cert.pem, key: DIR/api-key.pem}}`},
	{"ssl switch with a CA file that is not PEM", `"tcp:10.0.0.12:6640"}`, `"ssl:10.0.0.12:6640", tls: {ca: DIR/api.token, cert: DIR/api-cert.pem, key: DIR/api-key.pem}}`},
	{"vcenter http:// URL", "", strings.Replace(vcBase, "https://", "http://", 1)},
	{"vcenter URL with credentials", "", strings.Replace(vcBase, "https://", "https://admin:secret@", 1)},
	{"vcenter missing credential files", "", strings.ReplaceAll(vcBase, "vc.", "missing-vc.")},
	{"vcenter missing CA file", "", strings.Replace(vcBase, "datacenter:", "ca_file: DIR/missing-ca.pem, datacenter:", 1)},
	{"vcenter malformed thumbprint", "", strings.Replace(vcBase, "datacenter:", "thumbprint: \"AB:CD:XY\", datacenter:", 1)},
	{"vcenter thumbprint of the wrong length", "", strings.Replace(vcBase, "datacenter:", "thumbprint: \"AB:CD:EF\", datacenter:", 1)},
	{"vcenter.resync_interval 1ns", "", strings.Replace(vcBase, "datacenter:", "resync_interval: 1ns, datacenter:", 1)},
	{"vcenter unknown key in host_ports", "", strings.Replace(vcBase, "host_ports: lldp", "host_ports: {mode: static, colour: blue}", 1)},
	{"vcenter unknown vni_policy mode", "", strings.Replace(vcBase, "mode: offset", "mode: guess", 1)},
	{"vcenter publish without publish_switch", "", strings.Replace(vcBase, "host_ports: lldp", "host_ports: lldp, vlan_pool: 3000-3099, publish: [{vni: 10300, name: web}]", 1)},
	{"vcenter vlan_pool backwards and VLAN 4095", "", strings.Replace(vcBase, "host_ports: lldp", "host_ports: lldp, publish_switch: DSwitch, vlan_pool: \"3099-3000,4095\"", 1)},
	{"vcenter publish: bad name, duplicate VNI and VLAN, no pool", "", strings.Replace(vcBase, "host_ports: lldp",
		"host_ports: lldp, publish_switch: DSwitch,\n  publish: [{vni: 10300, name: web, vlan: 3001}, {vni: 10300, name: \"a/b\", vlan: 3001}, {vni: 10301, name: app}]", 1)},
	{"evpn replication service_node without nodes", "", "evpn: {replication: service_node}\n"},
	{"evpn route target malformed", "", "evpn: {route_targets: {10100: {import: [\"65000\"]}}}\n"},
	{"evpn route targets neither auto nor a map", "", "evpn: {route_targets: sometimes}\n"},
	{"several problems at once", "asn: 65000\n  router_id: 10.0.0.10", "asn: 0\n  router_id: banana\n  listen_port: 0"},
}

// warnConfigs load, with a warning.
var warnConfigs = []badConfig{
	{"world-readable token file", `api: "unix:///run/torstitch/toragent.sock",`, `api: "unix:///run/torstitch/toragent.sock", token_file: DIR/open.token,`},
	{"vcenter http:// URL with insecure: true", "", strings.Replace(strings.Replace(vcBase, "https://", "http://", 1), "datacenter:", "insecure: true, datacenter:", 1)},
}

// writeKeyPair writes a self-signed certificate and its key.
func writeKeyPair(t *testing.T, cert, key string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "toragent"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
}

func cell(s string) string {
	if len(s) > 300 {
		s = s[:120] + "…(" + fmt.Sprint(len(s)) + " bytes)"
	}
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "<br>")
}

func code(s string) string {
	if s == "" {
		return "(nothing)"
	}
	return "`` " + cell(s) + " ``"
}

// TestBadInputs loads every bad input and checks the messages against
// docs/bad-inputs.md (go test -run TestBadInputs -update rewrites it).
func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"api.token": "s3cret\n", "empty.token": "\n", "vc.user": "admin\n", "vc.pass": "pw\n",
		"long.pw": strings.Repeat("p", 81) + "\n", "open.token": "s3cret\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "open.token"), 0o644)
	writeKeyPair(t, filepath.Join(dir, "api-cert.pem"), filepath.Join(dir, "api-key.pem"))
	writeKeyPair(t, filepath.Join(dir, "other-cert.pem"), filepath.Join(dir, "other-key.pem"))
	t.Chdir(dir)
	t.Setenv("TORSTITCH_VC_USERNAME", "")
	t.Setenv("TORSTITCH_VC_PASSWORD", "")

	var doc bytes.Buffer
	doc.WriteString(`# Bad inputs and what toragent says

Generated by ` + "`go test ./vtep/agent/config -run TestBadInputs -update`" + `, checked by the same test
without ` + "`-update`" + `. Each configuration is a small edit of a valid one, loaded as
` + "`toragent --check-config`" + ` and the agent's start do (` + "`config.Load`" + `: parse, validate, then read
every file the configuration names). Every problem is reported at once, one per line, as
` + "`FILE:LINE: KEY.PATH: MESSAGE`" + `. Files under ` + "`" + shownDir + "`" + ` are the test's own.

Choices: a world-readable token, password or key file is a **warning** (printed by toragent and
--check-config), not an error, since secrets mounted into containers are often mode 0644; a vCenter
` + "`http://`" + ` URL is refused unless ` + "`vcenter.insecure: true`" + ` (then a warning); a 500 answer of
the API hides the text of a panic (logged), but passes the backend's own error messages (for example
"BGP speaker not running").

## Configuration (refused)

| input | message |
|---|---|
`)
	load := func(bc badConfig) (*Config, error) {
		in := badBase + bc.to
		if bc.from != "" {
			in = strings.Replace(badBase, bc.from, bc.to, 1)
			if in == badBase {
				t.Fatalf("%s: %q not in the base configuration", bc.name, bc.from)
			}
		}
		in = strings.ReplaceAll(in, "DIR", dir)
		if err := os.WriteFile("toragent.yaml", []byte(in), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load("toragent.yaml")
	}
	show := func(s string) string { return strings.ReplaceAll(s, dir, shownDir) }
	for _, bc := range badConfigs {
		_, err := load(bc)
		if err == nil {
			t.Errorf("%s: accepted", bc.name)
			continue
		}
		if strings.Contains(err.Error(), "config.") || strings.Contains(err.Error(), "panic") {
			t.Errorf("%s: %v", bc.name, err)
		}
		fmt.Fprintf(&doc, "| %s: %s | %s |\n", bc.name, code(show(strings.ReplaceAll(bc.to, "DIR", shownDir))), cell(show(err.Error())))
	}
	doc.WriteString("\n## Configuration (accepted with a warning)\n\n| input | warning |\n|---|---|\n")
	for _, bc := range warnConfigs {
		c, err := load(bc)
		if err != nil || len(c.Warnings) == 0 {
			t.Errorf("%s: %v %v", bc.name, err, c)
			continue
		}
		fmt.Fprintf(&doc, "| %s: %s | %s |\n", bc.name, code(show(strings.ReplaceAll(bc.to, "DIR", shownDir))), cell(show(strings.Join(c.Warnings, "\n"))))
	}

	doc.WriteString("\n## API requests (`torctl` or any HTTP client)\n\n| request | answer |\n|---|---|\n")
	h := api.NewHandler(panicky{apitest.Sample()}, nil, "")
	for _, r := range apiRequests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(r.method, r.path, strings.NewReader(r.body)))
		fmt.Fprintf(&doc, "| %s: %s %s %s | %d %s |\n", r.name, r.method, r.path, code(r.body), rec.Code, cell(strings.TrimSpace(rec.Body.String())))
		if rec.Code == http.StatusOK || rec.Code == http.StatusNoContent {
			t.Errorf("%s: %d", r.name, rec.Code)
		}
	}

	doc.WriteString("\n## State files (read at start from `agent.state_dir`)\n\n| file | message |\n|---|---|\n")
	for _, s := range stateFiles {
		sd := filepath.Join(dir, "state-"+strings.ReplaceAll(s.name, " ", "-"))
		os.MkdirAll(sd, 0o700)
		os.WriteFile(filepath.Join(sd, s.file), []byte(s.body), 0o600)
		var err error
		if s.file == store.FileName {
			_, err = store.Open(sd)
		} else {
			_, err = store.LoadOwners(sd)
		}
		if err == nil {
			t.Errorf("%s: accepted", s.name)
			continue
		}
		fmt.Fprintf(&doc, "| %s: %s %s | %s |\n", s.name, s.file, code(s.body), cell(strings.ReplaceAll(err.Error(), sd, "/var/lib/torstitch")))
	}

	if *update {
		if err := os.WriteFile(filepath.Join(origDir, goldenDoc), doc.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(filepath.Join(origDir, goldenDoc))
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(want, doc.Bytes()) {
		t.Errorf("%s is out of date; run go test ./vtep/agent/config -run TestBadInputs -update and review the diff", goldenDoc)
	}
}

var origDir, _ = os.Getwd()

type panicky struct{ *apitest.Fake }

func (panicky) Peers(context.Context) ([]api.Peer, error) {
	panic("assignment to entry in nil map at /root/secret/path.go:12")
}

var apiRequests = []struct{ name, method, path, body string }{
	{"control character in a port", "POST", "/v1/bindings", `{"vlan":100,"vni":10100,"ports":["tor1:eth\u00011"]}`},
	{"space in a port", "POST", "/v1/bindings", `{"vlan":100,"vni":10100,"ports":["tor1:eth 1"]}`},
	{"port of 5,000 bytes", "DELETE", "/v1/bindings", `{"vlan":100,"ports":["tor1:` + strings.Repeat("e", 5000) + `"]}`},
	{"VLAN 4095", "POST", "/v1/bindings", `{"vlan":4095,"vni":10100,"ports":["tor1:eth1"]}`},
	{"VLAN 100.9", "POST", "/v1/bindings", `{"vlan":100.9,"vni":10100,"ports":["tor1:eth1"]}`},
	{"unknown field", "POST", "/v1/bindings", `{"vlan":100,"vni":10100,"ports":["tor1:eth1"],"colour":"red"}`},
	{"two JSON objects", "POST", "/v1/bindings", `{"vlan":100,"vni":10100,"ports":["tor1:eth1"]}{}`},
	{"body over 1 MiB", "POST", "/v1/bindings", `{"vlan":1,"vni":1,"ports":["` + strings.Repeat("x", api.MaxRequestBody) + `"]}`},
	{"unknown query parameter", "GET", "/v1/macs?vlan=3", ""},
	{"backend panic", "GET", "/v1/peers", ""},
}

var stateFiles = []struct{ name, file, body string }{
	{"not JSON", store.FileName, "{"},
	{"no version", store.FileName, `{"bindings":[]}`},
	{"newer version", store.FileName, `{"version":2,"bindings":[]}`},
	{"unknown field", store.FileName, `{"version":1,"bindings":[],"extra":1}`},
	{"bad values", store.FileName, `{"version":1,"bindings":[{"vlan":4095,"vni":0,"ports":[{"switch":"tor1","port":"eth\u00011"}]}]}`},
	{"one port and VLAN, two VNIs", store.FileName, `{"version":1,"bindings":[{"vlan":100,"vni":10100,"ports":[{"switch":"tor1","port":"eth1"}]},{"vlan":100,"vni":10200,"ports":[{"switch":"tor1","port":"eth1"}]}]}`},
	{"MAC owners: bad values", store.OwnersFileName, `{"version":1,"owners":[{"vni":0,"mac":"01:00:5e:00:00:01","switch":""}]}`},
	{"MAC owners: not a MAC", store.OwnersFileName, `{"version":1,"owners":[{"vni":1,"mac":"banana","switch":"tor1"}]}`},
}
