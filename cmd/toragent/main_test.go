package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	state := filepath.Join(dir, "state")
	good := write("good.yaml", "agent: {state_dir: "+state+"}\nswitches: [{name: tor1, ovsdb: \"tcp:127.0.0.1:6640\"}]\n")
	tests := []struct {
		name string
		path string
		code int
		out  string
	}{
		{"valid", good, 0, "configuration OK"},
		{"unknown key names its line", write("bad.yaml", "agent: {state_dir: "+dir+"}\nswitches: [{name: tor1, ovsdb: \"tcp:127.0.0.1:6640\", colour: red}]\n"), 1, "bad.yaml:2: switches[0].colour: unknown key"},
		{"bad endpoint", write("ep.yaml", "switches: [{name: tor1, ovsdb: \"tcp:127.0.0.1\"}]\n"), 1, `OVSDB endpoint "tcp:127.0.0.1"`},
		{"missing file", filepath.Join(dir, "nope.yaml"), 1, "nope.yaml"},
		{"inbound without listener", write("in1.yaml", "switches: [{name: tor1, ovsdb: inbound}]\n"), 1,
			"in1.yaml:1: switches[0].ovsdb: inbound needs agent.ovsdb_listen"},
		{"inbound TLS files missing", write("in2.yaml", "agent: {state_dir: "+state+", ovsdb_listen: \"pssl:127.0.0.1:6640\", "+
			"ovsdb_tls: {ca: "+dir+"/none-ca.pem, cert: "+dir+"/c.pem, key: "+dir+"/k.pem}}\nswitches: [{name: tor1, ovsdb: inbound}]\n"), 1,
			"agent.ovsdb_tls.ca: open " + dir + "/none-ca.pem: no such file or directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"--config", tc.path, "--check-config"}, &out, &errb)
			if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.out) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out.String(), errb.String(), tc.code, tc.out)
			}
			if _, err := os.Stat(state); err == nil {
				t.Fatal("--check-config created the state directory")
			}
			if tc.code != 0 && strings.Count(strings.TrimSpace(errb.String()), "\n") > 5 {
				t.Fatalf("error is not short: %q", errb.String())
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args      []string
		code      int
		stdout    string // substring
		stderr    string // substring
		emptyErrs bool
	}{
		{[]string{"--version"}, 0, "toragent ", "", true},
		{[]string{"--help"}, 0, "--check-config", "", true},
		{[]string{"-config", "x.yaml"}, 2, "", "long flags take two dashes: --config", false},
		{[]string{"--config"}, 2, "", "flag needs an argument: --config", false},
		{[]string{"extra"}, 2, "", `unknown command "extra"`, false},
		{[]string{"--config", filepath.Join(dir, "none.yaml"), "--check-config"}, 1, "", "none.yaml", false},
		{[]string{"gen-docs", "--man", filepath.Join(dir, "man"), "--completions", filepath.Join(dir, "comp")}, 0, "", "", true},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) ||
			(tc.emptyErrs && errb.Len() > 0) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d, %q, %q", tc.args, code, out.String(), errb.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
	for _, f := range []string{"man/toragent.8", "comp/bash/toragent", "comp/zsh/_toragent", "comp/fish/toragent.fish"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() < 100 {
			t.Errorf("gen-docs: %s: %v", f, err)
		}
	}
}
