package main

import (
	"reflect"
	"testing"

	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/api/apitest"
)

// TestNetworks: show networks (table and JSON goldens), publish from the
// pool and with a VLAN, unpublish refused while VMs are attached (the
// agent's message, one line, exit 1), then unpublish of a free network.
func TestNetworks(t *testing.T) {
	a := startAgent(t, "")
	for _, tc := range []struct{ golden, format string }{{"show_networks", "table"}, {"show_networks_json", "json"}} {
		stdout, stderr, code := a.torctl("show", "networks", "-o", tc.format)
		if code != 0 || stderr != "" {
			t.Fatalf("show networks: exit %d, %q", code, stderr)
		}
		golden(t, tc.golden, stdout)
	}
	stdout, stderr, code := a.torctl("network", "publish", "--vni", "10400", "--name", "new")
	if code != 0 || stderr != "" || stdout != "published VNI 10400 as port group new (dvportgroup-103) on VLAN 3002: ready\n" {
		t.Fatalf("publish: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, stderr, code = a.torctl("network", "publish", "--vni", "10401", "--name", "fixed", "--vlan", "3050")
	if code != 0 || stdout != "published VNI 10401 as port group fixed (dvportgroup-104) on VLAN 3050: ready\n" {
		t.Fatalf("publish --vlan: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, stderr, code = a.torctl("network", "unpublish", "--vni", "10300")
	if code != 1 {
		t.Fatalf("unpublish attached: exit %d", code)
	}
	checkOneLineError(t, stdout, stderr, "unpublish VNI 10300: conflict: VMs are attached to port group web of VNI 10300: [web-1 web-2]")
	stdout, stderr, code = a.torctl("network", "unpublish", "--vni", "10400")
	if code != 0 || stdout != "unpublished VNI 10400\n" {
		t.Fatalf("unpublish: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, _, _ = a.torctl("show", "networks")
	golden(t, "after_publish", stdout)
	want := []apitest.Call{
		{Method: "Networks"}, {Method: "Networks"},
		{Method: "Publish", Arg: api.PublishRequest{VNI: 10400, Name: "new"}},
		{Method: "Publish", Arg: api.PublishRequest{VNI: 10401, Name: "fixed", VLAN: 3050}},
		{Method: "Unpublish", Arg: api.UnpublishRequest{VNI: 10300}},
		{Method: "Unpublish", Arg: api.UnpublishRequest{VNI: 10400}},
		{Method: "Networks"},
	}
	if got := a.fake.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls\n%+v\nwant\n%+v", got, want)
	}
}

// TestNetworkBadInput: bad values never reach the agent.
func TestNetworkBadInput(t *testing.T) {
	a := startAgent(t, "")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"network"}, 2, "network what? want publish or unpublish"},
		{[]string{"network", "publish", "--name", "web"}, 2, "needs --vni VNI and --name NAME"},
		{[]string{"network", "publish", "--vni", "0", "--name", "web"}, 1, "VNI 0 out of range"},
		{[]string{"network", "publish", "--vni", "10300", "--name", "a/b"}, 1, "not allowed in port group names"},
		{[]string{"network", "publish", "--vni", "10300", "--name", "web", "--vlan", "4095"}, 1, "VLAN 4095"},
		{[]string{"network", "publish", "--vni", "10300", "--name", "web", "--vlan", "0"}, 1, "VLAN 0 (untagged) cannot be published"},
		{[]string{"network", "unpublish"}, 2, "needs --vni VNI"},
		{[]string{"network", "unpublish", "--vni", "x"}, 1, "VNI"},
	} {
		stdout, stderr, code := a.torctl(tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (%q)", tc.args, code, tc.code, stderr)
		}
		checkOneLineError(t, stdout, stderr, tc.want)
	}
	if calls := a.fake.Calls(); len(calls) != 0 {
		t.Errorf("bad input reached the agent: %+v", calls)
	}
}
