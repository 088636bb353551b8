package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// TLSFiles names the PEM files for an ssl: endpoint.
type TLSFiles struct {
	CA   string `yaml:"ca" json:"ca,omitempty"`
	Cert string `yaml:"cert" json:"cert,omitempty"`
	Key  string `yaml:"key" json:"key,omitempty"`
}

// ValidateEndpoint checks an OVSDB endpoint: tcp:IP:PORT, ssl:IP:PORT or
// unix:PATH (the forms ovsdb-server and vtep-ctl use).
func ValidateEndpoint(ep string) error {
	proto, rest, ok := strings.Cut(ep, ":")
	if !ok || rest == "" {
		return fmt.Errorf("OVSDB endpoint %q: want tcp:IP:PORT, ssl:IP:PORT or unix:PATH", ep)
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

// loadTLS builds the client TLS configuration for an ssl: endpoint. The CA
// is required: torstitch does not talk to an unverified switch.
func loadTLS(ep string, f TLSFiles) (*tls.Config, error) {
	if !strings.HasPrefix(ep, "ssl:") {
		return nil, nil
	}
	if f.CA == "" || f.Cert == "" || f.Key == "" {
		return nil, fmt.Errorf("OVSDB endpoint %q: ssl needs tls.ca, tls.cert and tls.key", ep)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("CA file %s: no PEM certificates", f.CA)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("loading client certificate %s: %w", f.Cert, err)
	}
	host, _, _ := net.SplitHostPort(strings.TrimPrefix(ep, "ssl:"))
	return &tls.Config{
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
		ServerName:   host,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
