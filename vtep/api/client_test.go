package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/api/apitest"
	"github.com/torstitch/torstitch/vtep/l2"
)

// serve runs h on ln until the test ends and checks the shutdown is clean.
func serve(t *testing.T, ln net.Listener, h http.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.ServeListener(ctx, ln, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	})
}

// exercise runs every Client method against a Sample backend.
func exercise(t *testing.T, c *api.Client, f *apitest.Fake) {
	t.Helper()
	ctx := context.Background()
	want := apitest.Sample()
	if v, err := c.Version(ctx); err != nil || v != want.VersionInfo {
		t.Errorf("Version: %+v %v", v, err)
	}
	if b, err := c.Bindings(ctx); err != nil || !reflect.DeepEqual(b, want.BindingList) {
		t.Errorf("Bindings: %+v %v", b, err)
	}
	m, err := c.MACs(ctx, 10200)
	if err != nil || len(m.Local) != 1 || len(m.Remote) != 1 || m.Remote[0] != want.MACTable.Remote[1] {
		t.Errorf("MACs(10200): %+v %v", m, err)
	}
	if m, err := c.MACs(ctx, 0); err != nil || !reflect.DeepEqual(m, want.MACTable) {
		t.Errorf("MACs(0): %+v %v", m, err)
	}
	if s, err := c.Switches(ctx); err != nil || !reflect.DeepEqual(s, want.SwitchList) {
		t.Errorf("Switches: %+v %v", s, err)
	}
	if p, err := c.Peers(ctx); err != nil || !reflect.DeepEqual(p, want.PeerList) {
		t.Errorf("Peers: %+v %v", p, err)
	}
	if v, err := c.VCenter(ctx); err != nil || !reflect.DeepEqual(v, want.VCenterState) {
		t.Errorf("VCenter: %+v %v", v, err)
	}
	if err := c.Bind(ctx, api.BindRequest{VLAN: 300, VNI: 10300, Ports: []string{"tor1:eth5"}}); err != nil {
		t.Errorf("Bind: %v", err)
	}
	if err := c.Unbind(ctx, api.UnbindRequest{VLAN: 300, Ports: []string{"tor1:eth5"}}); err != nil {
		t.Errorf("Unbind: %v", err)
	}
	raw, err := c.GetRaw(ctx, api.MACsPath(10100))
	if err != nil || !json.Valid(raw) || !strings.Contains(string(raw), "52:54:00:aa:bb:01") {
		t.Errorf("GetRaw: %s %v", raw, err)
	}

	// Errors come back with the agent's message and its class.
	f.SetErr("Bind", fmt.Errorf("%w: port tor1:eth99 does not exist", api.ErrInvalid))
	err = c.Bind(ctx, api.BindRequest{VLAN: 1, VNI: 1, Ports: []string{"tor1:eth99"}})
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "port tor1:eth99 does not exist") {
		t.Errorf("Bind invalid: %v", err)
	}
	f.SetErr("Bind", fmt.Errorf("%w: VLAN 100 on tor1:eth1 is bound to VNI 10100", api.ErrConflict))
	err = c.Bind(ctx, api.BindRequest{VLAN: 100, VNI: 1, Ports: []string{"tor1:eth1"}})
	if !errors.Is(err, api.ErrConflict) || errors.Is(err, api.ErrInvalid) {
		t.Errorf("Bind conflict: %v", err)
	}
	f.SetErr("Peers", errors.New("speaker stopped"))
	_, err = c.Peers(ctx)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != 500 || err.Error() != "speaker stopped" {
		t.Errorf("Peers failing: %v", err)
	}
	// Client-side request validation does not exist: the server refuses.
	err = c.Bind(ctx, api.BindRequest{VLAN: 4095, VNI: 1, Ports: []string{"a:b"}})
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("Bind VLAN 4095: %v", err)
	}
}

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "toragent.sock") // parent created by Listen
	ctx := context.Background()
	ln, err := api.Listen(ctx, "unix://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want socket 0600", fi.Mode())
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o755 {
		t.Errorf("socket directory: %v %v", di.Mode(), err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("socket directory holds %d entries, want only the socket", len(ents))
	}
	f := apitest.Sample()
	serve(t, ln, api.NewHandler(f, nil, ""))

	// A second agent on the same socket is refused while the first serves.
	if ln2, err := api.Listen(ctx, "unix://"+path, nil); err == nil {
		ln2.Close()
		t.Fatal("second Listen on a live socket succeeded")
	} else if !strings.Contains(err.Error(), "another process") {
		t.Errorf("second Listen: %v", err)
	}

	c, err := api.NewClient(path)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, c, f)
	c.Close()
	c, err = api.NewClient("unix://" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Version(ctx); err != nil {
		t.Errorf("Version over unix:// address: %v", err)
	}
}

func TestUnixSocketLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "toragent.sock")
	// A stale socket (nobody listening) is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- listenAndServe(ctx, "unix://"+path, api.NewHandler(apitest.Sample(), nil, "")) }()
	c, err := api.NewClient(path, api.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err = c.Version(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never answered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after shutdown: %v", err)
	}
	_, err = c.Version(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot reach toragent at "+path) {
		t.Errorf("Version after shutdown: %v", err)
	}

	// A regular file where the socket should be is not removed.
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Listen(context.Background(), path, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
}

// writeCert writes a self-signed certificate (its own CA) for 127.0.0.1 and
// its key, and returns the file names.
func writeCert(t testing.TB, dir, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTCPTLS(t *testing.T) {
	dir := t.TempDir()
	srvCert, srvKey := writeCert(t, dir, "server", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := writeCert(t, dir, "client", x509.ExtKeyUsageClientAuth)
	otherCA, _ := writeCert(t, dir, "other", x509.ExtKeyUsageServerAuth)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ln, err := api.Listen(ctx, "tcp://127.0.0.1:0", &api.TLSFiles{Cert: srvCert, Key: srvKey, ClientCA: cliCert})
	if err != nil {
		t.Fatal(err)
	}
	f := apitest.Sample()
	serve(t, ln, api.NewHandler(f, nil, testToken))
	url := "https://" + ln.Addr().String()

	c, err := api.NewClient(url, api.WithCAFile(srvCert), api.WithTokenFile(tokenFile), api.WithClientCert(cliCert, cliKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exercise(t, c, f)

	calls := len(f.Calls())
	tests := []struct {
		name string
		opts []api.ClientOption
		want string
	}{
		{"no token", []api.ClientOption{api.WithCAFile(srvCert), api.WithClientCert(cliCert, cliKey)}, "unauthorized"},
		{"wrong token", []api.ClientOption{api.WithCAFile(srvCert), api.WithClientCert(cliCert, cliKey), api.WithToken("guess")}, "unauthorized"},
		{"unknown server CA", []api.ClientOption{api.WithCAFile(otherCA), api.WithClientCert(cliCert, cliKey), api.WithToken(testToken)}, "certificate"},
		{"no client cert", []api.ClientOption{api.WithCAFile(srvCert), api.WithToken(testToken)}, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := api.NewClient(url, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Bindings(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Bindings: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if n := len(f.Calls()); n != calls {
		t.Errorf("refused clients reached the backend: %d calls", n-calls)
	}
}

// TestTCPPlainLoopbackOnly: plain HTTP over TCP only on loopback.
func TestTCPPlainLoopbackOnly(t *testing.T) {
	ctx := context.Background()
	if _, err := api.Listen(ctx, "tcp://0.0.0.0:0", nil); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("plain tcp on 0.0.0.0: %v", err)
	}
	if _, err := api.Listen(ctx, "tcp://localhost:0", nil); err == nil {
		t.Error("host name accepted")
	}
	ln, err := api.Listen(ctx, "tcp://127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := apitest.Sample()
	serve(t, ln, api.NewHandler(f, nil, testToken))
	c, err := api.NewClient("http://"+ln.Addr().String(), api.WithToken(testToken))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if b, err := c.Bindings(ctx); err != nil || len(b) != 3 {
		t.Errorf("Bindings: %v %v", b, err)
	}
}

func TestNewClientAddresses(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		opts []api.ClientOption
		want string // error substring; "" means accepted
	}{
		{addr: "/run/torstitch/toragent.sock"},
		{addr: "unix:///run/torstitch/toragent.sock"},
		{addr: "https://10.0.0.5:8443"},
		{addr: "http://127.0.0.1:8080"},
		{addr: "http://[::1]:8080"},
		{addr: "http://10.0.0.5:8080", want: "loopback"},
		{addr: "https://10.0.0.5:8443/v1", want: "SCHEME://HOST:PORT"},
		{addr: "tcp://10.0.0.5:8443", want: "want a socket path"},
		{addr: "unix://", want: "empty socket path"},
		{addr: "/s", opts: []api.ClientOption{api.WithTokenFile(empty)}, want: "is empty"},
		{addr: "/s", opts: []api.ClientOption{api.WithTokenFile(filepath.Join(dir, "missing"))}, want: "token file"},
		{addr: "/s", opts: []api.ClientOption{api.WithToken("a\nb")}, want: "line break"},
		{addr: "https://h:1", opts: []api.ClientOption{api.WithCAFile(empty)}, want: "no PEM certificate"},
	} {
		c, err := api.NewClient(tc.addr, tc.opts...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("NewClient(%q): %v", tc.addr, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("NewClient(%q): %v, want error containing %q", tc.addr, err, tc.want)
		}
		if c != nil {
			c.Close()
		}
	}
}

func TestMACsPath(t *testing.T) {
	if got := api.MACsPath(0); got != "/v1/macs" {
		t.Errorf("MACsPath(0) = %q", got)
	}
	if got := api.MACsPath(l2.MaxVNI); got != "/v1/macs?vni=16777215" {
		t.Errorf("MACsPath(max) = %q", got)
	}
}

// BenchmarkBind measures one Bind round trip through client, transport and
// handler to the fake backend.
func BenchmarkBind(b *testing.B) {
	dir := b.TempDir()
	srvCert, srvKey := writeCert(b, dir, "server", x509.ExtKeyUsageServerAuth)
	for _, tc := range []struct {
		name, listen string
		tls          *api.TLSFiles
		opts         []api.ClientOption
	}{
		{"unix", "unix://" + filepath.Join(dir, "a.sock"), nil, nil},
		{"tls", "tcp://127.0.0.1:0", &api.TLSFiles{Cert: srvCert, Key: srvKey}, []api.ClientOption{api.WithCAFile(srvCert), api.WithToken(testToken)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ln, err := api.Listen(ctx, tc.listen, tc.tls)
			if err != nil {
				b.Fatal(err)
			}
			addr := strings.TrimPrefix(tc.listen, "unix://")
			if tc.tls != nil {
				addr = "https://" + ln.Addr().String()
			}
			done := make(chan error, 1)
			go func() { done <- api.ServeListener(ctx, ln, api.NewHandler(&apitest.Fake{}, nil, testToken)) }()
			c, err := api.NewClient(addr, append(tc.opts, api.WithToken(testToken))...)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := api.BindRequest{VLAN: 100, VNI: 10100, Ports: []string{"tor1:eth1", "tor2:eth1"}}
			b.ResetTimer()
			for b.Loop() {
				if err := c.Bind(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cancel()
			<-done
		})
	}
}

// TestUnixSocketErrorsNameThePath: a socket the kernel cannot bind is
// refused with the configured path in the message (not the temporary name
// it is bound under first), and nothing is left behind.
func TestUnixSocketErrorsNameThePath(t *testing.T) {
	dir := t.TempDir()
	long := filepath.Join(dir, strings.Repeat("s", 98-len(dir))+".sock") // 104 bytes: fits, but not with .PID.tmp
	noDir := filepath.Join(dir, "file")
	if err := os.WriteFile(noDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want string
	}{
		{long, "path too long"},
		{filepath.Join(noDir, "api.sock"), "api socket directory"},
	} {
		err := listenAndServe(context.Background(), "unix://"+tc.path, api.NewHandler(apitest.Sample(), nil, ""))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), ".tmp:") {
			t.Errorf("%s: got %v, want an error with %q naming the path, not the temporary file", tc.path, err, tc.want)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("%s: left behind: %v", tc.path, ents)
		}
	}
}

// listenAndServe is what toragent does: api.Listen, then api.ServeListener.
func listenAndServe(ctx context.Context, addr string, h http.Handler) error {
	ln, err := api.Listen(ctx, addr, nil)
	if err != nil {
		return err
	}
	return api.ServeListener(ctx, ln, h)
}
