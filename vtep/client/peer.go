package client

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// ErrNoPeerCert is returned when the peer presented no certificate.
var ErrNoPeerCert = errors.New("peer presented no certificate")

// PeerPolicy decides whether a switch's certificate is acceptable. It is
// pure: Verify takes the presented chain and the time and does no I/O.
//
// Either Roots or Pinned (or both) must be set; a policy with neither
// refuses every certificate, so verification is never disabled by
// omission.
type PeerPolicy struct {
	// Roots verifies the chain (the switch CA, e.g. ovs-pki's switchca).
	Roots *x509.CertPool
	// Names are the names the certificate may carry; any one matches (see
	// CertMatchesName). Ignored when Pinned is set: the exact certificate
	// is then trusted as this switch's.
	Names []string
	// Pinned, when set, is the only certificate accepted (tls.peer_cert).
	Pinned *x509.Certificate
	// Usage is the extended key usage the leaf must allow (a certificate
	// without the extension, as ovs-pki makes them, allows any).
	Usage x509.ExtKeyUsage
}

// Verify checks the peer's chain (leaf first) at time now.
func (p PeerPolicy) Verify(chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return ErrNoPeerCert
	}
	leaf := chain[0]
	if err := p.VerifyChain(chain, now); err != nil {
		return err
	}
	if p.Pinned != nil {
		return nil
	}
	for _, n := range p.Names {
		if CertMatchesName(leaf, n) {
			return nil
		}
	}
	return fmt.Errorf("certificate %q (SANs %s) does not name %s", leaf.Subject.CommonName, sanList(leaf),
		strings.Join(p.Names, " or "))
}

// VerifyChain checks the pin and the CA chain, not the name: the first
// step with an inbound switch, whose name is known only after it answered.
func (p PeerPolicy) VerifyChain(chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return ErrNoPeerCert
	}
	leaf := chain[0]
	if p.Roots == nil && p.Pinned == nil {
		return errors.New("no CA and no pinned certificate to verify the peer against")
	}
	if p.Pinned != nil && !bytes.Equal(leaf.Raw, p.Pinned.Raw) {
		return fmt.Errorf("certificate %q (sha256 %s) is not the pinned tls.peer_cert (sha256 %s)",
			leaf.Subject.CommonName, Fingerprint(leaf), Fingerprint(p.Pinned))
	}
	if p.Roots != nil {
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		usage := p.Usage
		if usage == 0 {
			usage = x509.ExtKeyUsageAny
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.Roots, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			return fmt.Errorf("certificate %q: %w", leaf.Subject.CommonName, err)
		}
	}
	return nil
}

// CertMatchesName reports whether cert names name: the first word of its
// common name or of a DNS SAN (ovs-pki writes "NAME id:UUID" in both), or
// an ordinary DNS (wildcards included) or IP SAN. Case-insensitive for
// names, as DNS.
func CertMatchesName(cert *x509.Certificate, name string) bool {
	if name == "" {
		return false
	}
	first := func(s string) string {
		w, _, _ := strings.Cut(strings.TrimSpace(s), " ")
		return w
	}
	if strings.EqualFold(first(cert.Subject.CommonName), name) {
		return true
	}
	for _, d := range cert.DNSNames {
		if strings.EqualFold(first(d), name) {
			return true
		}
	}
	if ip := net.ParseIP(name); ip != nil {
		for _, a := range cert.IPAddresses {
			if a.Equal(ip) {
				return true
			}
		}
		return false
	}
	return cert.VerifyHostname(name) == nil
}

// PeerName returns the name a certificate carries for logs and matching:
// the first word of its common name, else of its first DNS SAN.
func PeerName(cert *x509.Certificate) string {
	if w, _, _ := strings.Cut(strings.TrimSpace(cert.Subject.CommonName), " "); w != "" {
		return w
	}
	for _, d := range cert.DNSNames {
		if w, _, _ := strings.Cut(strings.TrimSpace(d), " "); w != "" {
			return w
		}
	}
	return ""
}

// Fingerprint is the certificate's SHA-256 in hex (first 16 bytes, enough
// for logs).
func Fingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:16])
}

func sanList(c *x509.Certificate) string {
	var out []string
	for _, d := range c.DNSNames {
		out = append(out, "DNS:"+d)
	}
	for _, a := range c.IPAddresses {
		out = append(out, "IP:"+a.String())
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}
