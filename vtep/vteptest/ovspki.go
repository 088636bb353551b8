package vteptest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// OVSPKI is a public key infrastructure made by Open vSwitch's own ovs-pki,
// as operators make it: a controller CA (signs the agent's certificate,
// trusted by switches) and a switch CA (signs switches' certificates,
// trusted by the agent). Certificates name "NAME id:UUID" in CN and DNS
// SAN and carry no IP SAN.
type OVSPKI struct {
	t   testing.TB
	Dir string
}

// Cert is a certificate and its private key.
type Cert struct{ Cert, Key string }

// ControllerCA and SwitchCA are the two CA certificates.
func (p *OVSPKI) ControllerCA() string {
	return filepath.Join(p.Dir, "pki", "controllerca", "cacert.pem")
}

// SwitchCA is the CA that signs switch certificates.
func (p *OVSPKI) SwitchCA() string { return filepath.Join(p.Dir, "pki", "switchca", "cacert.pem") }

// NewOVSPKI runs `ovs-pki init` in a temporary directory.
func NewOVSPKI(t testing.TB) *OVSPKI {
	t.Helper()
	RequireBinaries(t, "ovs-pki", "openssl")
	p := &OVSPKI{t: t, Dir: t.TempDir()}
	p.run("init", "--dir="+filepath.Join(p.Dir, "pki"), "--force")
	return p
}

// Sign makes and signs a certificate: kind is "switch" or "controller".
// Several certificates may have the same name (a sub-directory each).
func (p *OVSPKI) Sign(sub, name, kind string) Cert {
	p.t.Helper()
	dir := filepath.Join(p.Dir, sub)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command("ovs-pki", "req+sign", name, kind, "--dir="+filepath.Join(p.Dir, "pki"), "--force", "--batch")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("ovs-pki req+sign %s %s: %v: %s", name, kind, err, out)
	}
	return Cert{Cert: filepath.Join(dir, name+"-cert.pem"), Key: filepath.Join(dir, name+"-privkey.pem")}
}

func (p *OVSPKI) run(args ...string) {
	p.t.Helper()
	cmd := exec.Command("ovs-pki", args...)
	cmd.Dir = p.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("ovs-pki %v: %v: %s", args, err, out)
	}
}
