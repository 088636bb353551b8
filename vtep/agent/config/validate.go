package config

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/torstitch/torstitch/evpn"
	"github.com/torstitch/torstitch/vdsvlan"
	"github.com/torstitch/torstitch/vtep/client"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
)

// Duration bounds (0 means the default where a default is documented).
const (
	MinResync       = time.Second
	MaxResync       = 24 * time.Hour
	MaxRestartTime  = 4095 * time.Second // RFC 4724: 12 bits of seconds
	MinVCenterSync  = time.Second
	MaxVCenterSync  = 24 * time.Hour
	maxUnixSockPath = 107 // sun_path holds 108 bytes with the NUL
)

// checker collects validation problems with their key paths.
type checker struct {
	c    *Config
	errs []*FieldError
}

func (k *checker) add(path, format string, args ...any) {
	k.errs = append(k.errs, &FieldError{Line: k.c.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// validate checks every field; problems carry their key path and line.
func (c *Config) validate() []*FieldError {
	c.warns = nil
	k := &checker{c: c}
	k.agent()
	names := k.switches()
	k.bgp()
	k.evpn()
	k.bindings(names)
	k.vcenter()
	return k.errs
}

// checkDuration bounds d (0 allowed when zeroOK: the default applies).
func (k *checker) checkDuration(path string, d time.Duration, lo, hi time.Duration, zeroOK bool, dflt string) {
	if d == 0 && zeroOK {
		return
	}
	if d < lo || d > hi {
		want := fmt.Sprintf("want %s to %s", lo, hi)
		if dflt != "" {
			want += " (default " + dflt + ")"
		}
		k.add(path, "%s: %s", d, want)
	}
}

// absPath checks a path the agent creates or listens on.
func (k *checker) absPath(path, p string) bool {
	switch {
	case p == "":
		k.add(path, "empty path")
	case strings.ContainsRune(p, 0):
		k.add(path, "path has a NUL byte")
	case !filepath.IsAbs(p):
		k.add(path, "%q is relative: want an absolute path", p)
	default:
		return true
	}
	return false
}

func (k *checker) agent() {
	a := &k.c.Agent
	if err := checkText(a.Name, 64); err != nil {
		k.add("agent.name", "%v", err)
	}
	switch {
	case strings.HasPrefix(a.API, "unix://"):
		p := strings.TrimPrefix(a.API, "unix://")
		if p == "" {
			k.add("agent.api", "%q: missing socket path", a.API)
		} else if k.absPath("agent.api", p) && len(p) > maxUnixSockPath {
			k.add("agent.api", "socket path is %d bytes long (at most %d)", len(p), maxUnixSockPath)
		}
		if a.APITLS != nil {
			k.add("agent.api_tls", "only for a tcp:// API (a unix socket is protected by its file mode)")
		}
	case strings.HasPrefix(a.API, "tcp://"):
		if _, err := netip.ParseAddrPort(strings.TrimPrefix(a.API, "tcp://")); err != nil {
			k.add("agent.api", "%q: want tcp://IP:PORT with an IP address (not a host name)", a.API)
		} else if ap := netip.MustParseAddrPort(strings.TrimPrefix(a.API, "tcp://")); ap.Port() == 0 {
			k.add("agent.api", "%q: port 0: want 1-65535", a.API)
		}
		t := a.APITLS
		if t == nil {
			k.add("agent.api_tls", "missing: a TCP API needs api_tls.cert and api_tls.key (and token_file)")
		} else {
			if t.Cert == "" {
				k.add("agent.api_tls.cert", "missing: a TCP API needs a certificate")
			}
			if t.Key == "" {
				k.add("agent.api_tls.key", "missing: a TCP API needs a private key")
			}
		}
		if a.TokenFile == "" {
			k.add("agent.token_file", "missing: a TCP API needs a bearer token file")
		}
	default:
		k.add("agent.api", "%q: want unix:///PATH or tcp://IP:PORT", a.API)
	}
	k.absPath("agent.state_dir", a.StateDir)
	if a.Metrics != "" {
		k.listenAddr("agent.metrics", a.Metrics)
	}
	if t := a.MetricsTLS; t != nil {
		switch {
		case a.Metrics == "":
			k.add("agent.metrics_tls", "without agent.metrics (metrics are off)")
		case t.Cert == "" || t.Key == "":
			k.add("agent.metrics_tls", "needs cert and key")
		}
	}
	if a.Mode != Independent && a.Mode != Anycast {
		k.add("agent.mode", "%q: want %s or %s", a.Mode, Independent, Anycast)
	}
	switch a.LogFormat {
	case "", "text", "json":
	default:
		k.add("agent.log_format", "%q: want text or json", a.LogFormat)
	}
	switch a.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		k.add("agent.log_level", "%q: want debug, info, warn or error", a.LogLevel)
	}
	k.checkDuration("agent.resync", time.Duration(a.Resync), MinResync, MaxResync, false, DefaultResync.String())
}

// listenAddr checks IP:PORT or :PORT (all addresses).
func (k *checker) listenAddr(path, s string) {
	host, port, ok := strings.Cut(s, ":")
	if i := strings.LastIndex(s, ":"); i >= 0 {
		host, port, ok = s[:i], s[i+1:], true
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if !ok {
		k.add(path, "%q: want IP:PORT or :PORT", s)
		return
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			k.add(path, "%q: %q is not an IP address (want IP:PORT or :PORT)", s, host)
			return
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		k.add(path, "%q: port %q is not 1-65535", s, port)
	}
}

func (k *checker) switches() map[string]bool {
	c := k.c
	names := map[string]bool{}
	inbound := 0
	if len(c.Switches) == 0 || len(c.Switches) > 2 {
		k.add("switches", "want one switch or a pair, got %d", len(c.Switches))
	}
	for i, s := range c.Switches {
		p := fmt.Sprintf("switches[%d]", i)
		switch {
		case s.Name == "":
			k.add(p+".name", "missing")
		case strings.Contains(s.Name, ":"):
			k.add(p+".name", "%q has a colon (ports are written SWITCH:PORT)", s.Name)
		case names[s.Name]:
			k.add(p+".name", "duplicate name %q", s.Name)
		default:
			if err := l2.CheckName(s.Name); err != nil {
				k.add(p+".name", "%s %v", l2.QuoteShort(s.Name), err)
			}
		}
		names[s.Name] = true
		if err := client.ValidateEndpoint(s.OVSDB); err != nil {
			k.add(p+".ovsdb", "%v", err)
		} else if rest, ok := strings.CutPrefix(s.OVSDB, "unix:"); ok {
			k.absPath(p+".ovsdb", rest)
		} else if strings.HasPrefix(s.OVSDB, "ssl:") {
			if s.TLS.Cert == "" || s.TLS.Key == "" || (s.TLS.CA == "" && s.TLS.PeerCert == "") {
				k.add(p+".tls", "an ssl: switch needs tls.cert, tls.key and tls.ca (or tls.peer_cert)")
			}
		} else if s.OVSDB != client.Inbound && (s.TLS != client.TLSFiles{}) {
			k.add(p+".tls", "set, but ovsdb %q does not use TLS", s.OVSDB)
		}
		k.checkDuration(p+".probe_interval", time.Duration(s.ProbeInterval), MinProbeInterval, MaxProbeInterval, true, "5s")
		k.bfd(p+".bfd", s.BFD)
		if s.OVSDB == client.Inbound {
			inbound++
			k.inbound(i, s)
		}
	}
	k.listen(inbound)
	return names
}

// bfd checks a switch's BFD timers: bounded, whole milliseconds (the
// Tunnel table's bfd_params hold integers of milliseconds).
func (k *checker) bfd(path string, b BFD) {
	for _, x := range []struct {
		key  string
		d    time.Duration
		dflt time.Duration
	}{{"min_rx", time.Duration(b.MinRx), DefaultBFDMinRx}, {"min_tx", time.Duration(b.MinTx), DefaultBFDMinTx}} {
		n := len(k.errs)
		k.checkDuration(path+"."+x.key, x.d, MinBFDInterval, MaxBFDInterval, false, x.dflt.String())
		if len(k.errs) == n && x.d%time.Millisecond != 0 {
			k.add(path+"."+x.key, "%s: want whole milliseconds", x.d)
		}
	}
}

// inbound checks an inbound switch's settings against the listener.
func (k *checker) inbound(i int, s Switch) {
	c := k.c
	p := fmt.Sprintf("switches[%d]", i)
	if c.Agent.OVSDBListen == "" {
		k.add(p+".ovsdb", "inbound needs agent.ovsdb_listen")
	}
	for _, kv := range []struct{ key, v string }{{"ca", s.TLS.CA}, {"cert", s.TLS.Cert}, {"key", s.TLS.Key}} {
		if kv.v != "" {
			k.add(p+".tls."+kv.key, "an inbound switch uses agent.ovsdb_tls (only tls.server_name and tls.peer_cert apply)")
		}
	}
	if strings.HasPrefix(c.Agent.OVSDBListen, "ptcp:") && (s.TLS.ServerName != "" || s.TLS.PeerCert != "") {
		k.add(p+".tls", "agent.ovsdb_listen is ptcp (no TLS): tls.server_name and tls.peer_cert cannot be checked")
	}
}

// listen checks agent.ovsdb_listen and agent.ovsdb_tls.
func (k *checker) listen(inbound int) {
	a := k.c.Agent
	l := a.OVSDBListen
	if l == "" {
		if a.OVSDBTLS != nil {
			k.add("agent.ovsdb_tls", "set without agent.ovsdb_listen")
		}
		return
	}
	if inbound == 0 {
		k.add("agent.ovsdb_listen", "%q: no switch has ovsdb: inbound", l)
	}
	_, useTLS, err := client.ParseListen(l)
	if err != nil {
		k.add("agent.ovsdb_listen", "%v", err)
		return
	}
	t := a.OVSDBTLS
	switch {
	case useTLS && (t == nil || t.CA == "" || t.Cert == "" || t.Key == ""):
		k.add("agent.ovsdb_listen", "%q: pssl needs agent.ovsdb_tls.ca, agent.ovsdb_tls.cert and agent.ovsdb_tls.key", l)
	case !useTLS && t != nil:
		k.add("agent.ovsdb_tls", "agent.ovsdb_listen %q is ptcp (no TLS); use pssl:", l)
	}
}

func (k *checker) bgp() {
	b := k.c.BGP
	if b == nil {
		return
	}
	if b.ASN == 0 {
		k.add("bgp.asn", "missing")
	}
	if a, err := netip.ParseAddr(b.RouterID); err != nil || !a.Is4() {
		k.add("bgp.router_id", "%q: not an IPv4 address", b.RouterID)
	}
	if b.ListenAddress != "" {
		if _, err := netip.ParseAddr(b.ListenAddress); err != nil {
			k.add("bgp.listen_address", "%q: not an IP address", b.ListenAddress)
		}
	}
	k.checkDuration("bgp.connect_retry", time.Duration(b.ConnectRetry), time.Second, 10*time.Minute, true, "5s")
	if b.StartupWait < 0 || time.Duration(b.StartupWait) > 10*time.Minute {
		k.add("bgp.startup_wait", "%s: want 0 (default %s) to 10m", time.Duration(b.StartupWait), DefaultStartupWait)
	}
	if b.ListenPort != nil && (*b.ListenPort < -1 || *b.ListenPort > 65535 || *b.ListenPort == 0) {
		k.add("bgp.listen_port", "%d: want 1-65535, or -1 to not listen", *b.ListenPort)
	}
	seen := map[netip.Addr]int{}
	for i, n := range b.Neighbors {
		p := fmt.Sprintf("bgp.neighbors[%d]", i)
		addr, err := netip.ParseAddr(n.Address)
		if err != nil {
			k.add(p+".address", "%q: not an IP address", n.Address)
		} else if j, dup := seen[addr]; dup {
			k.add(p+".address", "%s: duplicate of bgp.neighbors[%d]", addr, j)
		} else {
			seen[addr] = i
		}
		if n.ASN == 0 {
			k.add(p+".asn", "missing")
		}
		if n.LocalAddress != "" {
			la, lerr := netip.ParseAddr(n.LocalAddress)
			switch {
			case lerr != nil:
				k.add(p+".local_address", "%q: not an IP address", n.LocalAddress)
			case err == nil && la.Unmap().Is4() != addr.Unmap().Is4():
				k.add(p+".local_address", "%s and the neighbor's address %s are not of the same family (IPv4/IPv6)", la, addr)
			}
		}
		if n.PasswordFile != "" && strings.ContainsRune(n.PasswordFile, 0) {
			k.add(p+".password_file", "path has a NUL byte")
		}
	}
	gr := b.GracefulRestart
	if rt := time.Duration(gr.RestartTime); rt != 0 || k.c.has("bgp.graceful_restart.restart_time") {
		if rt < time.Second || rt > MaxRestartTime {
			k.add("bgp.graceful_restart.restart_time", "%s: want 1s to %s (RFC 4724: 12 bits of seconds; default %s)",
				rt, MaxRestartTime, evpn.DefaultRestartTime)
		} else if rt%time.Second != 0 {
			k.add("bgp.graceful_restart.restart_time", "%s: want whole seconds", rt)
		}
	}
}

func (k *checker) evpn() {
	e := k.c.EVPN
	if e.Replication != plan.SourceNode && e.Replication != plan.ServiceNode {
		k.add("evpn.replication", "%q: want %s or %s", e.Replication, plan.SourceNode, plan.ServiceNode)
	}
	if e.Replication == plan.ServiceNode && len(e.ServiceNodes) == 0 {
		k.add("evpn.replication", "service_node needs evpn.service_nodes")
	}
	for i, s := range e.ServiceNodes {
		if a, err := netip.ParseAddr(s); err != nil || l2.ValidateVTEP(a) != nil {
			k.add(fmt.Sprintf("evpn.service_nodes[%d]", i), "%q: not a unicast IPv4 address", s)
		}
	}
	for v, rt := range e.RouteTargets.VNIs {
		p := fmt.Sprintf("evpn.route_targets.%d", v)
		if err := v.Validate(); err != nil {
			k.add(p, "%v", err)
		}
		if len(rt.Import) == 0 && len(rt.Export) == 0 {
			k.add(p, "neither import nor export given")
		}
		for key, l := range map[string][]string{"import": rt.Import, "export": rt.Export} {
			for i, s := range l {
				if _, err := evpn.ParseRouteTarget(s); err != nil {
					k.add(fmt.Sprintf("%s.%s[%d]", p, key, i), "%v", err)
				}
			}
		}
	}
}

func (k *checker) bindings(names map[string]bool) {
	type where struct {
		vni  l2.VNI
		path string
	}
	bound := map[l2.PortVLAN]where{}
	for i, b := range k.c.Bindings {
		p := fmt.Sprintf("bindings[%d]", i)
		if err := b.VLAN.ValidateUsable(); err != nil {
			k.add(p+".vlan", "%v", err)
		}
		if err := b.VNI.Validate(); err != nil {
			k.add(p+".vni", "%v", err)
		}
		if len(b.Ports) == 0 {
			k.add(p+".ports", "no ports")
		}
		for j, s := range b.Ports {
			pp := fmt.Sprintf("%s.ports[%d]", p, j)
			ref, err := l2.ParsePortRef(s)
			if err != nil {
				k.add(pp, "%v", err)
				continue
			}
			if !names[ref.Switch] {
				k.add(pp, "%s: switch %q is not in this pair", s, ref.Switch)
				continue
			}
			key := l2.PortVLAN{Port: ref, VLAN: b.VLAN}
			if w, dup := bound[key]; dup {
				if w.vni != b.VNI {
					k.add(pp, "%s VLAN %d: bound to VNI %d here and to VNI %d by %s", s, b.VLAN, b.VNI, w.vni, w.path)
				} else {
					k.add(pp, "%s VLAN %d: bound twice (also %s)", s, b.VLAN, w.path)
				}
				continue
			}
			bound[key] = where{b.VNI, pp}
		}
	}
}

func (k *checker) vcenter() {
	v := k.c.VCenter
	if v == nil {
		return
	}
	if v.URL == "" {
		k.add("vcenter.url", "missing")
	} else if u, err := url.Parse(v.URL); err != nil {
		k.add("vcenter.url", "%q: %v", v.URL, err)
	} else {
		switch {
		case u.User != nil:
			k.add("vcenter.url", "must not carry credentials; use username_file/password_file")
		case u.Scheme == "http" && v.Insecure:
			k.warn("vcenter.url", "%s is http: the vCenter credentials travel in clear text (allowed because vcenter.insecure is true)", u.Redacted())
		case u.Scheme == "http":
			k.add("vcenter.url", "%q is http: the vCenter credentials would travel in clear text; use https (or set vcenter.insecure: true to accept this)", v.URL)
		case u.Scheme != "https":
			k.add("vcenter.url", "scheme %q: want https", u.Scheme)
		}
		if (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() == "" {
			k.add("vcenter.url", "%q: missing host", v.URL)
		}
	}
	if v.CAFile != "" && v.Insecure {
		k.add("vcenter.ca_file", "ca_file and insecure are mutually exclusive")
	}
	if v.Thumbprint != "" {
		if v.Insecure {
			k.add("vcenter.thumbprint", "thumbprint and insecure are mutually exclusive")
		}
		if err := checkThumbprint(v.Thumbprint); err != nil {
			k.add("vcenter.thumbprint", "%v", err)
		}
	}
	if v.Insecure && !strings.HasPrefix(v.URL, "http:") {
		k.warn("vcenter.insecure", "the vCenter certificate is not verified")
	}
	k.checkDuration("vcenter.resync_interval", v.ResyncInterval, MinVCenterSync, MaxVCenterSync, true, vdsvlan.DefaultResyncInterval.String())
	// The discovery rules (vni_policy, host_ports) are vdsvlan's to check:
	// validate a copy whose connection settings are known good.
	k.vcenterPublish(v)
	rules := *v
	rules.URL, rules.CAFile, rules.Thumbprint, rules.Insecure, rules.ResyncInterval = "https://vcenter.invalid/sdk", "", "", false, 0
	rules.PublishSwitch, rules.VLANPool, rules.Publish = "", "", nil // checked above, with their paths
	if err := rules.Validate(); err != nil {
		for _, e := range splitJoined(err) {
			k.add("vcenter", "%s", strings.TrimPrefix(e, "vcenter: "))
		}
	}
}

// warn records a warning with its line.
func (k *checker) warn(path, format string, args ...any) {
	k.c.warns = append(k.c.warns, &FieldError{Line: k.c.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// splitJoined returns the messages of an errors.Join, one per line.
func splitJoined(err error) []string {
	return strings.Split(err.Error(), "\n")
}

// checkThumbprint accepts a SHA-1 or SHA-256 certificate thumbprint in hex,
// with or without colons between the bytes.
func checkThumbprint(s string) error {
	h := strings.ReplaceAll(s, ":", "")
	b, err := hex.DecodeString(h)
	if err != nil || (strings.Contains(s, ":") && len(s) != 3*len(b)-1) {
		return fmt.Errorf("%s: want hex bytes such as AB:CD:EF (colons optional)", l2.QuoteShort(s))
	}
	if len(b) != 20 && len(b) != 32 {
		return fmt.Errorf("%d bytes: want a SHA-1 (20 bytes) or SHA-256 (32 bytes) thumbprint", len(b))
	}
	return nil
}

// checkText refuses empty, over-long or control-character text.
func checkText(s string, max int) error {
	if err := l2.CheckName(s); err != nil {
		return fmt.Errorf("%s %w", l2.QuoteShort(s), err)
	}
	if len(s) > max {
		return fmt.Errorf("%s is %d bytes long (at most %d)", l2.QuoteShort(s), len(s), max)
	}
	return nil
}
