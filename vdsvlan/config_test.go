package vdsvlan

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/torstitch/torstitch/vtep/l2"
)

func decodeStrict(t *testing.T, doc string) (Config, error) {
	t.Helper()
	var top struct {
		VCenter Config `yaml:"vcenter"`
	}
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	err := dec.Decode(&top)
	return top.VCenter, err
}

func TestConfigYAML(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		want    Config
		wantErr string // from decoding or Validate
	}{
		{
			name: "architecture example",
			doc: `vcenter: {url: https://vc/sdk, username_file: /etc/u, password_file: /etc/p, ca_file: /etc/ca.pem,
  datacenter: DC0, vni_policy: {mode: tag, category: torstitch}, host_ports: lldp}`,
			want: Config{URL: "https://vc/sdk", UsernameFile: "/etc/u", PasswordFile: "/etc/p", CAFile: "/etc/ca.pem",
				Datacenter: "DC0", VNIPolicy: VNIPolicy{Mode: "tag", Category: "torstitch"}, HostPorts: HostPorts{Mode: "lldp"}},
		},
		{
			name: "map policy, static ports, rewrite, resync",
			doc: `vcenter:
  url: https://vc.example
  thumbprint: "AB:CD"
  resync_interval: 45s
  vni_policy: {mode: map, map: {web: 10100, "vlan:200": 10200}}
  host_ports:
    mode: lldp
    static: {esx9: ["tor1:eth9", "tor2:eth9"]}
    rewrite: [{field: switch, match: '\..*$', replace: ""}]
`,
			want: Config{URL: "https://vc.example", Thumbprint: "AB:CD", ResyncInterval: 45 * time.Second,
				VNIPolicy: VNIPolicy{Mode: "map", Map: map[string]l2.VNI{"web": 10100, "vlan:200": 10200}},
				HostPorts: HostPorts{Mode: "lldp",
					Static:  map[string][]l2.PortRef{"esx9": {{Switch: "tor1", Port: "eth9"}, {Switch: "tor2", Port: "eth9"}}},
					Rewrite: []Rewrite{{Field: "switch", Match: `\..*$`}}}},
		},
		{name: "unknown key", doc: "vcenter: {url: https://vc, colour: red}", wantErr: "field colour not found"},
		{name: "bad static port", doc: "vcenter: {host_ports: {mode: static, static: {esx1: [eth1]}}}", wantErr: "want SWITCH:PORT"},
		{name: "missing url", doc: "vcenter: {vni_policy: {mode: offset, base: 10000}, host_ports: lldp}", wantErr: "url missing"},
		{name: "credentials in url", doc: "vcenter: {url: 'https://root:secret@vc/sdk', vni_policy: {mode: offset, base: 10000}, host_ports: lldp}", wantErr: "must not carry credentials"},
		{name: "insecure with CA", doc: "vcenter: {url: https://vc, insecure: true, ca_file: /x, vni_policy: {mode: offset, base: 10000}, host_ports: lldp}", wantErr: "mutually exclusive"},
		{name: "no policy", doc: "vcenter: {url: https://vc, host_ports: lldp}", wantErr: "vni_policy: mode missing"},
		{name: "bad host ports", doc: "vcenter: {url: https://vc, vni_policy: {mode: offset, base: 1}, host_ports: snmp}", wantErr: `host_ports: unknown mode "snmp"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeStrict(t, tc.doc)
			if err == nil {
				err = got.Validate()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			// Round trip through YAML.
			out, err := yaml.Marshal(map[string]Config{"vcenter": got})
			if err != nil {
				t.Fatal(err)
			}
			again, err := decodeStrict(t, string(out))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("round trip: %v\n%s\n%+v", err, out, again)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	user, pass, empty := filepath.Join(dir, "u"), filepath.Join(dir, "p"), filepath.Join(dir, "e")
	for f, v := range map[string]string{user: "admin\n", pass: "s3cret\r\n", empty: "\n"} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name               string
		cfg                Config
		env                map[string]string
		wantUser, wantPass string
		wantErr            string
	}{
		{name: "files", cfg: Config{UsernameFile: user, PasswordFile: pass}, wantUser: "admin", wantPass: "s3cret"},
		{name: "environment", env: map[string]string{EnvUsername: "envuser", EnvPassword: "envpass"}, wantUser: "envuser", wantPass: "envpass"},
		{name: "file wins", cfg: Config{UsernameFile: user, PasswordFile: pass}, env: map[string]string{EnvPassword: "x"}, wantUser: "admin", wantPass: "s3cret"},
		{name: "missing", env: map[string]string{EnvUsername: "u"}, wantErr: "TORSTITCH_VC_PASSWORD"},
		{name: "empty file", cfg: Config{UsernameFile: empty}, wantErr: "is empty"},
		{name: "unreadable", cfg: Config{UsernameFile: filepath.Join(dir, "nope")}, wantErr: "reading vCenter username file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvUsername, "")
			t.Setenv(EnvPassword, "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			u, err := tc.cfg.credentials()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want error %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, _ := u.Password()
			if u.Username() != tc.wantUser || p != tc.wantPass {
				t.Errorf("got %q/%q", u.Username(), p)
			}
		})
	}
}
