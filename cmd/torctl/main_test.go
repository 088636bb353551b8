package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/api/apitest"
	"github.com/torstitch/torstitch/vtep/l2"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// agent is a fake toragent: a Sample backend behind the real API handler on
// a unix socket.
type agent struct {
	fake   *apitest.Fake
	socket string
	env    map[string]string
}

func startAgent(t *testing.T, token string) *agent {
	t.Helper()
	a := &agent{fake: apitest.Sample(), socket: filepath.Join(t.TempDir(), "toragent.sock"), env: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := api.Listen(ctx, a.socket, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- api.ServeListener(ctx, ln, api.NewHandler(a.fake, nil, token)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	return a
}

// torctl runs the command in-process against the agent's socket.
func (a *agent) torctl(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	getenv := func(k string) string { return a.env[k] }
	code = run(context.Background(), append([]string{"--socket", a.socket}, args...), &out, &errb, getenv)
	return out.String(), errb.String(), code
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", file, got, want)
	}
}

// checkOneLineError checks the error convention: nothing on stdout, one line
// "torctl: ..." on stderr containing want.
func checkOneLineError(t *testing.T, stdout, stderr, want string) {
	t.Helper()
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	if !strings.HasPrefix(stderr, "torctl: ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one line starting with 'torctl: '", stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not contain %q", stderr, want)
	}
}

func TestShow(t *testing.T) {
	a := startAgent(t, "")
	for _, tc := range []struct {
		golden string
		args   []string
		call   apitest.Call
	}{
		{"show_bindings", []string{"show", "bindings"}, apitest.Call{Method: "Bindings"}},
		{"show_macs", []string{"show", "macs"}, apitest.Call{Method: "MACs", Arg: l2.VNI(0)}},
		{"show_macs_vni", []string{"show", "macs", "--vni", "10100"}, apitest.Call{Method: "MACs", Arg: l2.VNI(10100)}},
		{"show_switches", []string{"show", "switches"}, apitest.Call{Method: "Switches"}},
		{"show_peers", []string{"show", "peers"}, apitest.Call{Method: "Peers"}},
		{"show_vcenter", []string{"show", "vcenter"}, apitest.Call{Method: "VCenter"}},
	} {
		for _, format := range []string{"table", "json"} {
			name := tc.golden
			args := tc.args
			if format == "json" {
				name += "_json"
				args = append(args[:len(args):len(args)], "-o", "json")
			} else if tc.golden == "show_bindings" {
				args = append(args[:len(args):len(args)], "-o", "table")
			}
			t.Run(name, func(t *testing.T) {
				before := len(a.fake.Calls())
				stdout, stderr, code := a.torctl(args...)
				if code != 0 || stderr != "" {
					t.Fatalf("exit %d, stderr %q", code, stderr)
				}
				golden(t, name, stdout)
				if calls := a.fake.Calls()[before:]; !reflect.DeepEqual(calls, []apitest.Call{tc.call}) {
					t.Errorf("backend calls %+v, want %+v", calls, tc.call)
				}
			})
		}
	}
}

func TestBindUnbind(t *testing.T) {
	a := startAgent(t, "")
	stdout, stderr, code := a.torctl("bind", "vlan", "300", "vni", "10300", "--port", "tor1:eth5", "-p", "tor2:eth5", "--port", "tor1:eth5")
	if code != 0 || stderr != "" || stdout != "bound VLAN 300 to VNI 10300 on tor1:eth5, tor2:eth5\n" {
		t.Fatalf("bind: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	want := []apitest.Call{{Method: "Bind", Arg: api.BindRequest{VLAN: 300, VNI: 10300, Ports: []string{"tor1:eth5", "tor2:eth5"}}}}
	if got := a.fake.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls %+v, want %+v", got, want)
	}
	stdout, _, _ = a.torctl("show", "bindings")
	golden(t, "after_bind", stdout)

	stdout, stderr, code = a.torctl("unbind", "vlan", "300", "--port", "tor2:eth5")
	if code != 0 || stderr != "" || stdout != "unbound VLAN 300 from tor2:eth5\n" {
		t.Fatalf("unbind: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if got := a.fake.Calls()[2]; !reflect.DeepEqual(got, apitest.Call{Method: "Unbind", Arg: api.UnbindRequest{VLAN: 300, Ports: []string{"tor2:eth5"}}}) {
		t.Errorf("unbind call %+v", got)
	}
	stdout, _, _ = a.torctl("show", "bindings")
	golden(t, "after_unbind", stdout)

	// Untagged.
	if _, stderr, code = a.torctl("bind", "vlan", "0", "vni", "1", "--port", "tor1:eth9"); code != 0 {
		t.Errorf("bind VLAN 0: exit %d, %s", code, stderr)
	}
}

// TestBadInput: every bad value or malformed command line gives one error
// line and never reaches the agent.
func TestBadInput(t *testing.T) {
	a := startAgent(t, "")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"vlan 4095", []string{"bind", "vlan", "4095", "vni", "10100", "--port", "tor1:eth1"}, 1, "4095 is reserved"},
		{"vlan 5000", []string{"bind", "vlan", "5000", "vni", "10100", "--port", "tor1:eth1"}, 1, "VLAN 5000 out of range"},
		{"vlan not a number", []string{"bind", "vlan", "ten", "vni", "10100", "--port", "tor1:eth1"}, 1, `VLAN "ten"`},
		{"vni 0", []string{"bind", "vlan", "100", "vni", "0", "--port", "tor1:eth1"}, 1, "VNI 0 out of range"},
		{"vni 16777216", []string{"bind", "vlan", "100", "vni", "16777216", "--port", "tor1:eth1"}, 1, "VNI 16777216 out of range"},
		{"port without colon", []string{"bind", "vlan", "100", "vni", "10100", "--port", "eth1"}, 1, `port "eth1": want SWITCH:PORT`},
		{"port empty switch", []string{"bind", "vlan", "100", "vni", "10100", "--port", ":eth1"}, 1, "want SWITCH:PORT"},
		{"unbind vlan 4095", []string{"unbind", "vlan", "4095", "--port", "tor1:eth1"}, 1, "4095 is reserved"},
		{"unbind port without colon", []string{"unbind", "vlan", "100", "--port", "tor1"}, 1, "want SWITCH:PORT"},
		{"macs vni 0", []string{"show", "macs", "--vni", "0"}, 1, "VNI 0 out of range"},
		{"macs vni json", []string{"show", "macs", "--vni", "x", "-o", "json"}, 1, `VNI "x"`},
		{"no command", nil, 2, "missing command"},
		{"unknown command", []string{"shwo"}, 2, `unknown command "shwo" for "torctl" (did you mean show?)`},
		{"show nothing", []string{"show"}, 2, "show what?"},
		{"show unknown", []string{"show", "bindngs"}, 2, `show "bindngs": want bindings`},
		{"bind missing vni", []string{"bind", "vlan", "100", "--port", "tor1:eth1"}, 2, "usage: torctl bind vlan <VLAN> vni <VNI>"},
		{"bind wrong keyword", []string{"bind", "vlan", "100", "vlan", "3", "--port", "tor1:eth1"}, 2, "usage: torctl bind"},
		{"bind without port", []string{"bind", "vlan", "100", "vni", "10100"}, 2, "at least one --port"},
		{"unbind without port", []string{"unbind", "vlan", "100"}, 2, "at least one --port"},
		{"unbind extra", []string{"unbind", "vlan", "100", "vni", "3", "--port", "a:b"}, 2, "usage: torctl unbind"},
		{"bad output", []string{"show", "peers", "-o", "yaml"}, 2, `-o "yaml": want table or json`},
		{"unknown flag", []string{"show", "peers", "--colour"}, 2, "unknown flag: --colour"},
		{"extra arg", []string{"show", "peers", "now"}, 2, `unknown command "now"`},
		{"bad completion", []string{"completion", "tcsh"}, 2, "usage: torctl completion bash|zsh|fish"},
		{"socket and server", []string{"show", "peers", "--server", "https://127.0.0.1:1"}, 2, "exclude each other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := a.torctl(tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			checkOneLineError(t, stdout, stderr, tc.want)
			if calls := a.fake.Calls(); len(calls) != 0 {
				t.Errorf("agent was called: %+v", calls)
			}
		})
	}
}

func TestAgentErrors(t *testing.T) {
	a := startAgent(t, "")
	a.fake.SetErr("Bind", fmt.Errorf("%w: VLAN 100 on tor1:eth1 is already bound to VNI 10100", api.ErrConflict))
	a.fake.SetErr("Unbind", fmt.Errorf("%w: port tor1:eth77 does not exist\non switch tor1", api.ErrInvalid))
	a.fake.SetErr("Peers", fmt.Errorf("BGP speaker not running"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bind", "vlan", "100", "vni", "1", "--port", "tor1:eth1"}, "torctl: bind VLAN 100 to VNI 1: conflict: VLAN 100 on tor1:eth1 is already bound to VNI 10100\n"},
		{[]string{"unbind", "vlan", "100", "--port", "tor1:eth77"}, "torctl: unbind VLAN 100: invalid request: port tor1:eth77 does not exist on switch tor1\n"},
		{[]string{"show", "peers"}, "torctl: BGP speaker not running\n"},
		{[]string{"show", "peers", "-o", "json"}, "torctl: BGP speaker not running\n"},
	} {
		stdout, stderr, code := a.torctl(tc.args...)
		if code != 1 || stdout != "" || stderr != tc.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q, want %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
}

func TestUnreachable(t *testing.T) {
	a := &agent{socket: filepath.Join(t.TempDir(), "none.sock"), env: map[string]string{}}
	stdout, stderr, code := a.torctl("show", "bindings")
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	checkOneLineError(t, stdout, stderr, "cannot reach toragent at "+a.socket)
}

func TestTokenAndSocketEnv(t *testing.T) {
	a := startAgent(t, "tok-123")
	_, stderr, code := a.torctl("show", "bindings")
	if code != 1 || stderr != "torctl: unauthorized: missing or invalid bearer token\n" {
		t.Errorf("without token: exit %d, %q", code, stderr)
	}
	a.env[api.EnvToken] = "tok-123"
	if _, stderr, code := a.torctl("show", "bindings"); code != 0 {
		t.Errorf("with %s: exit %d, %q", api.EnvToken, code, stderr)
	}
	// --token-file wins over the environment.
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := a.torctl("--token-file", file, "show", "bindings"); code != 1 || !strings.Contains(stderr, "unauthorized") {
		t.Errorf("with a wrong --token-file: exit %d, %q", code, stderr)
	}
	if err := os.WriteFile(file, []byte("tok-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	delete(a.env, api.EnvToken)
	if _, stderr, code := a.torctl("--token-file", file, "show", "bindings"); code != 0 {
		t.Errorf("with --token-file: exit %d, %q", code, stderr)
	}

	// TORSTITCH_SOCKET replaces the default socket.
	var out, errb bytes.Buffer
	env := map[string]string{EnvSocket: a.socket, api.EnvToken: "tok-123"}
	code = run(context.Background(), []string{"version"}, &out, &errb, func(k string) string { return env[k] })
	if code != 0 || !strings.Contains(out.String(), "toragent  v0.1.0-test (agent pair1)\n") || !strings.HasPrefix(out.String(), "torctl    ") {
		t.Errorf("version via %s: exit %d, %q %q", EnvSocket, code, out.String(), errb.String())
	}
}

func TestVersionCompletionHelp(t *testing.T) {
	a := startAgent(t, "")
	stdout, _, code := a.torctl("version", "-o", "json")
	if code != 0 || !strings.Contains(stdout, `"agent": "pair1"`) || !strings.Contains(stdout, `"torctl": "`) {
		t.Errorf("version -o json: %d %s", code, stdout)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		stdout, stderr, code := a.torctl("completion", shell)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "torctl") || len(stdout) < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, len(stdout), stderr)
		}
	}
	// Cobra's dynamic completion reaches the show targets and bind keywords.
	stdout, _, _ = a.torctl("__complete", "show", "")
	for _, w := range []string{"bindings", "macs", "switches", "peers", "vcenter"} {
		if !strings.Contains(stdout, w+"\t") {
			t.Errorf("completion of show lacks %s: %q", w, stdout)
		}
	}
	if stdout, _, _ = a.torctl("__complete", "bind", "vlan", "100", ""); !strings.HasPrefix(stdout, "vni\n") {
		t.Errorf("completion of bind vlan 100: %q", stdout)
	}
	if stdout, _, code = a.torctl("show", "--help"); code != 0 || !strings.Contains(stdout, "bindings") {
		t.Errorf("show --help: %d %q", code, stdout)
	}
	if len(a.fake.Calls()) != 1 {
		t.Errorf("calls %+v, want only Version", a.fake.Calls())
	}
}

// TestVersionWithoutAgent: torctl prints its own version with no agent; the
// agent's error goes to stderr on one line and the exit code stays 0.
func TestVersionWithoutAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{{"version"}, {"version", "-o", "json"}, {"--version"}} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"--socket", sock}, args...), &out, &errb, func(string) string { return "" })
		if code != 0 || !strings.HasPrefix(out.String(), "torctl ") && !strings.Contains(out.String(), `"torctl": "`) {
			t.Errorf("%v: exit %d, stdout %q", args, code, out.String())
		}
		if strings.Contains(out.String(), "toragent") {
			t.Errorf("%v: stdout names the agent: %q", args, out.String())
		}
		if args[0] == "version" && (!strings.HasPrefix(errb.String(), "torctl: agent: ") || strings.Count(errb.String(), "\n") != 1) {
			t.Errorf("%v: stderr %q, want one line torctl: agent: ...", args, errb.String())
		}
	}
}
