package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/torstitch/torstitch/vdsvlan"
)

// maxSecretFile bounds credential, certificate and key files.
const maxSecretFile = 1 << 20

// checkFiles reads every file the configuration names, as the agent will at
// start: secrets must be non-empty, certificates and keys must parse and
// match. A secret (token, password, private key) readable by everyone is a
// warning, not an error: mounted secrets are often 0644 inside a container,
// and refusing them would stop an agent that worked before.
func (c *Config) checkFiles() []*FieldError {
	k := &checker{c: c}
	a := c.Agent
	if a.TokenFile != "" {
		k.secret("agent.token_file", a.TokenFile, 0)
	}
	if t := a.APITLS; t != nil {
		k.keyPair("agent.api_tls", t.Cert, t.Key)
		if t.ClientCA != "" {
			k.certs("agent.api_tls.client_ca", t.ClientCA)
		}
	}
	if t := a.MetricsTLS; t != nil && a.Metrics != "" {
		k.keyPair("agent.metrics_tls", t.Cert, t.Key)
		if t.ClientCA != "" {
			k.certs("agent.metrics_tls.client_ca", t.ClientCA)
		}
	}
	if t := a.OVSDBTLS; t != nil && a.OVSDBListen != "" {
		k.keyPair("agent.ovsdb_tls", t.Cert, t.Key)
		k.certs("agent.ovsdb_tls.ca", t.CA)
	}
	if fi, err := os.Stat(a.StateDir); err == nil && !fi.IsDir() {
		k.add("agent.state_dir", "%s is not a directory", a.StateDir)
	}
	for i, s := range c.Switches {
		p := fmt.Sprintf("switches[%d].tls", i)
		if s.TLS.Cert != "" && s.TLS.Key != "" {
			k.keyPair(p, s.TLS.Cert, s.TLS.Key)
		}
		if s.TLS.CA != "" {
			k.certs(p+".ca", s.TLS.CA)
		}
		if s.TLS.PeerCert != "" {
			k.certs(p+".peer_cert", s.TLS.PeerCert)
		}
	}
	if b := c.BGP; b != nil {
		for i, n := range b.Neighbors {
			if n.PasswordFile != "" {
				k.secret(fmt.Sprintf("bgp.neighbors[%d].password_file", i), n.PasswordFile, 80)
			}
		}
	}
	if v := c.VCenter; v != nil {
		k.credential("vcenter.username_file", v.UsernameFile, vdsvlan.EnvUsername)
		k.credential("vcenter.password_file", v.PasswordFile, vdsvlan.EnvPassword)
		if v.CAFile != "" {
			k.certs("vcenter.ca_file", v.CAFile)
		}
	}
	return k.errs
}

// read returns a file's contents, refusing what is not a regular file.
func (k *checker) read(path, file string) ([]byte, fs.FileMode, bool) {
	f, err := os.Open(file)
	if err != nil {
		k.add(path, "%v", err)
		return nil, 0, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		k.add(path, "%v", err)
		return nil, 0, false
	}
	if !fi.Mode().IsRegular() {
		k.add(path, "%s is not a regular file", file)
		return nil, 0, false
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		k.add(path, "reading %s: %v", file, err)
		return nil, 0, false
	}
	if len(b) > maxSecretFile {
		k.add(path, "%s is larger than %d bytes", file, maxSecretFile)
		return nil, 0, false
	}
	return b, fi.Mode().Perm(), true
}

// secret checks a token or password file: first line non-empty, at most
// maxLen bytes (0: unbounded); warns when everyone may read it.
func (k *checker) secret(path, file string, maxLen int) {
	b, mode, ok := k.read(path, file)
	if !ok {
		return
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSpace(line)
	switch {
	case line == "":
		k.add(path, "%s is empty", file)
	case maxLen > 0 && len(line) > maxLen:
		k.add(path, "%s: %d bytes, at most %d", file, len(line), maxLen)
	}
	k.private(path, file, mode)
}

func (k *checker) private(path, file string, mode fs.FileMode) {
	if mode&0o004 != 0 {
		k.warn(path, "%s is readable by everyone (mode %04o); chmod o-r it", file, mode)
	}
}

// credential checks a vCenter credential file, or the environment
// variable read in its place.
func (k *checker) credential(path, file, env string) {
	if file != "" {
		k.secret(path, file, 0)
		return
	}
	if os.Getenv(env) == "" {
		k.add(path, "not set, and $%s is empty", env)
	}
}

// certs checks a PEM file of one or more certificates.
func (k *checker) certs(path, file string) {
	b, _, ok := k.read(path, file)
	if !ok {
		return
	}
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			k.add(path, "%s: certificate %d: %v", file, n+1, err)
			return
		}
		n++
	}
	if n == 0 {
		k.add(path, "%s holds no PEM certificate", file)
	}
}

// keyPair checks a certificate and its private key.
func (k *checker) keyPair(path, cert, key string) {
	if cert == "" || key == "" {
		return // validate reported it
	}
	cb, _, cok := k.read(path+".cert", cert)
	kb, mode, kok := k.read(path+".key", key)
	if !cok || !kok {
		return
	}
	if _, err := tls.X509KeyPair(cb, kb); err != nil {
		k.add(path, "certificate %s and key %s: %v", cert, key, err)
		return
	}
	k.private(path+".key", key, mode)
}
