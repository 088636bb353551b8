package client

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// TLSFiles names the PEM files for an ssl: endpoint.
type TLSFiles struct {
	CA   string `yaml:"ca" json:"ca,omitempty"`
	Cert string `yaml:"cert" json:"cert,omitempty"`
	Key  string `yaml:"key" json:"key,omitempty"`
	// ServerName is the name the switch's certificate must carry, instead
	// of the switch's name (or, outbound, the endpoint's host).
	ServerName string `yaml:"server_name" json:"server_name,omitempty"`
	// PeerCert pins the switch's certificate: only exactly this one is
	// accepted (the CA chain is still checked when CA is set).
	PeerCert string `yaml:"peer_cert" json:"peer_cert,omitempty"`
}

// ValidateEndpoint checks an OVSDB endpoint: tcp:IP:PORT, ssl:IP:PORT or
// unix:PATH (the forms ovsdb-server and vtep-ctl use), or Inbound.
func ValidateEndpoint(ep string) error {
	if ep == Inbound {
		return nil
	}
	proto, rest, ok := strings.Cut(ep, ":")
	if !ok || rest == "" {
		return fmt.Errorf("OVSDB endpoint %q: want tcp:IP:PORT, ssl:IP:PORT, unix:PATH or inbound", ep)
	}
	switch proto {
	case "unix":
		return nil
	case "tcp", "ssl":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return fmt.Errorf("OVSDB endpoint %q: %w", ep, err)
		}
		if host == "" {
			return fmt.Errorf("OVSDB endpoint %q: missing host", ep)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("OVSDB endpoint %q: port %q is not 1-65535", ep, port)
		}
		return nil
	default:
		return fmt.Errorf("OVSDB endpoint %q: unknown protocol %q (want tcp, ssl or unix)", ep, proto)
	}
}

// loadTLS builds the client TLS configuration for an ssl: endpoint. The
// switch's certificate is verified by PeerPolicy in VerifyConnection, not by
// crypto/tls's host name check: ovs-pki certificates name the switch ("tor1
// id:UUID"), never its IP, so the standard check refuses every one of them.
// InsecureSkipVerify only turns that built-in check off; VerifyConnection
// runs on every handshake and refuses what the policy refuses.
func loadTLS(ep, switchName string, f TLSFiles) (*tls.Config, error) {
	if !strings.HasPrefix(ep, "ssl:") {
		return nil, nil
	}
	if (f.CA == "" && f.PeerCert == "") || f.Cert == "" || f.Key == "" {
		return nil, fmt.Errorf("OVSDB endpoint %q: ssl needs tls.cert, tls.key and tls.ca (or tls.peer_cert)", ep)
	}
	host, _, _ := net.SplitHostPort(strings.TrimPrefix(ep, "ssl:"))
	pol, err := f.policy([]string{switchName, host}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("loading client certificate %s: %w", f.Cert, err)
	}
	return &tls.Config{
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true, // replaced by VerifyConnection below, never skipped
		VerifyConnection: func(cs tls.ConnectionState) error {
			return pol.Verify(cs.PeerCertificates, time.Now())
		},
		MinVersion: tls.VersionTLS12,
	}, nil
}

// policy builds the peer policy of these files: the CA and the pinned
// certificate, and tls.server_name instead of the default names.
func (f TLSFiles) policy(defaultNames []string, usage x509.ExtKeyUsage) (PeerPolicy, error) {
	p := PeerPolicy{Usage: usage}
	for _, n := range defaultNames {
		if n != "" {
			p.Names = append(p.Names, n)
		}
	}
	if f.ServerName != "" {
		p.Names = []string{f.ServerName}
	}
	if f.CA != "" {
		pool, err := LoadCertPool(f.CA)
		if err != nil {
			return p, err
		}
		p.Roots = pool
	}
	if f.PeerCert != "" {
		c, err := loadCert(f.PeerCert)
		if err != nil {
			return p, fmt.Errorf("tls.peer_cert: %w", err)
		}
		p.Pinned = c
	}
	return p, nil
}

// LoadCertPool reads a PEM file of CA certificates.
func LoadCertPool(path string) (*x509.CertPool, error) {
	caPEM, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("CA file %s: no PEM certificates", path)
	}
	return pool, nil
}

func loadCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading certificate: %w", err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM certificate", path)
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return c, nil
		}
	}
}
