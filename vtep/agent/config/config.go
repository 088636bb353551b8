// Package config reads toragent's YAML configuration strictly: unknown keys
// are errors with their line, and every value is validated before the agent
// touches a switch, a BGP peer or vCenter.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/torstitch/torstitch/evpn"
	"github.com/torstitch/torstitch/vdsvlan"
	"github.com/torstitch/torstitch/vtep/client"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
)

// DefaultStartupWait is bgp.startup_wait's default.
const DefaultStartupWait = 30 * time.Second

// Pair modes.
const (
	Independent = "independent" // each switch its own tunnel IP and VTEP
	Anycast     = "anycast"     // both switches share one tunnel IP (MLAG)
)

// Config is the whole toragent configuration.
type Config struct {
	Agent    Agent           `yaml:"agent"`
	Switches []Switch        `yaml:"switches"`
	BGP      *BGP            `yaml:"bgp"`
	EVPN     EVPN            `yaml:"evpn"`
	Bindings []Binding       `yaml:"bindings"`
	VCenter  *vdsvlan.Config `yaml:"vcenter"`
}

// Agent holds the daemon's own settings.
type Agent struct {
	Name      string   `yaml:"name"`
	API       string   `yaml:"api"`        // unix:///run/torstitch/toragent.sock or tcp://IP:PORT
	APITLS    *APITLS  `yaml:"api_tls"`    // required for tcp://
	TokenFile string   `yaml:"token_file"` // bearer token for the API (required for tcp://)
	StateDir  string   `yaml:"state_dir"`
	Metrics   string   `yaml:"metrics"` // host:port for /metrics; empty disables
	Mode      string   `yaml:"mode"`    // independent (default) or anycast
	LogFormat string   `yaml:"log_format"`
	LogLevel  string   `yaml:"log_level"`
	Resync    Duration `yaml:"resync"` // periodic full reconcile; default 30s
	// OVSDBListen is where inbound switches dial in: ptcp:[IP:]PORT or
	// pssl:[IP:]PORT. Required when a switch is inbound.
	OVSDBListen string `yaml:"ovsdb_listen"`
	// OVSDBTLS is the listener's TLS (pssl:): the CA switch certificates
	// must chain to, and the agent's own certificate and key.
	OVSDBTLS *ListenTLS `yaml:"ovsdb_tls"`
}

// ListenTLS names the PEM files of the inbound OVSDB listener.
type ListenTLS struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// APITLS names the API server's certificate.
type APITLS struct {
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	ClientCA string `yaml:"client_ca"`
}

// Switch is one switch of the pair.
type Switch struct {
	Name  string          `yaml:"name"`
	OVSDB string          `yaml:"ovsdb"` // tcp:, ssl:, unix: (the agent dials) or inbound (the switch dials)
	TLS   client.TLSFiles `yaml:"tls"`
	// ProbeInterval is the OVSDB inactivity probe: an echo request after
	// this long, the session is dropped when it is not answered within the
	// same time (like ovsdb-server's inactivity_probe). Default 5s.
	ProbeInterval Duration `yaml:"probe_interval"`
}

// Probe interval bounds.
const (
	MinProbeInterval = time.Second
	MaxProbeInterval = 10 * time.Minute
)

// BGP configures the embedded speaker.
type BGP struct {
	ASN           uint32 `yaml:"asn"`
	RouterID      string `yaml:"router_id"`
	ListenAddress string `yaml:"listen_address"`
	ListenPort    *int32 `yaml:"listen_port"` // -1: do not listen; default 179
	// StartupWait bounds how long the sessions wait at start for both
	// switches and vCenter to be read (default 30s): routes go out complete,
	// before End-of-RIB, so a restart is hitless at graceful restart helpers.
	StartupWait Duration `yaml:"startup_wait"`
	// ConnectRetry is the delay between connection attempts to a neighbor
	// (default 5s).
	ConnectRetry    Duration        `yaml:"connect_retry"`
	Neighbors       []Neighbor      `yaml:"neighbors"`
	GracefulRestart GracefulRestart `yaml:"graceful_restart"`
}

// Neighbor is one BGP peer.
type Neighbor struct {
	Address              string `yaml:"address"`
	ASN                  uint32 `yaml:"asn"`
	PasswordFile         string `yaml:"password_file"`
	MultihopTTL          uint8  `yaml:"multihop_ttl"`
	RouteReflectorClient bool   `yaml:"route_reflector_client"`
	LocalAddress         string `yaml:"local_address"` // source address for outgoing connections
	Port                 uint16 `yaml:"port"`          // peer's TCP port; default 179
}

// GracefulRestart configures RFC 4724.
type GracefulRestart struct {
	Enabled     bool     `yaml:"enabled"`
	RestartTime Duration `yaml:"restart_time"` // seconds (number) or a Go duration
}

// EVPN configures route targets and replication.
type EVPN struct {
	RouteTargets RouteTargets `yaml:"route_targets"`
	Replication  string       `yaml:"replication"` // source_node (default) or service_node
	ServiceNodes []string     `yaml:"service_nodes"`
}

// RouteTargets is `auto` or a map VNI -> {import, export}.
type RouteTargets struct {
	Auto bool
	VNIs map[l2.VNI]VNIRT
}

// VNIRT lists explicit route targets of one VNI.
type VNIRT struct {
	Import []string `yaml:"import"`
	Export []string `yaml:"export"`
}

// UnmarshalYAML accepts the scalar `auto` or a mapping.
func (r *RouteTargets) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value != "auto" {
			return fmt.Errorf("line %d: route_targets: %q is not auto or a map of VNIs", n.Line, n.Value)
		}
		r.Auto = true
		return nil
	}
	var m map[l2.VNI]VNIRT
	if err := n.Decode(&m); err != nil {
		return err
	}
	r.VNIs = m
	return nil
}

// Binding is a static binding from the config file.
type Binding struct {
	VLAN  l2.VLAN  `yaml:"vlan"`
	VNI   l2.VNI   `yaml:"vni"`
	Ports []string `yaml:"ports"`
}

// Duration reads a number of seconds or a Go duration string ("90s").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var secs float64
	if err := n.Decode(&secs); err == nil {
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (seconds or e.g. 90s)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Load reads and validates a configuration file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML strictly, fills defaults and validates.
func Parse(b []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty configuration")
		}
		return nil, err
	}
	c.defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) defaults() {
	if c.Agent.Name == "" {
		c.Agent.Name = "toragent"
	}
	if c.Agent.API == "" {
		c.Agent.API = "unix:///run/torstitch/toragent.sock"
	}
	if c.Agent.StateDir == "" {
		c.Agent.StateDir = "/var/lib/torstitch"
	}
	if c.Agent.Mode == "" {
		c.Agent.Mode = Independent
	}
	if c.Agent.Resync == 0 {
		c.Agent.Resync = Duration(30 * time.Second)
	}
	if c.EVPN.Replication == "" {
		c.EVPN.Replication = plan.SourceNode
	}
	if c.BGP != nil && c.BGP.StartupWait == 0 {
		c.BGP.StartupWait = Duration(DefaultStartupWait)
	}
	if c.BGP != nil && c.BGP.GracefulRestart.Enabled && c.BGP.GracefulRestart.RestartTime == 0 {
		c.BGP.GracefulRestart.RestartTime = Duration(evpn.DefaultRestartTime)
	}
}

// Validate checks every field and reports all problems at once.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch {
	case strings.HasPrefix(c.Agent.API, "unix://"):
		if strings.TrimPrefix(c.Agent.API, "unix://") == "" {
			add("agent.api %q: missing socket path", c.Agent.API)
		}
	case strings.HasPrefix(c.Agent.API, "tcp://"):
		u, err := url.Parse(c.Agent.API)
		if err != nil || u.Port() == "" {
			add("agent.api %q: want tcp://IP:PORT", c.Agent.API)
		}
		if c.Agent.APITLS == nil || c.Agent.TokenFile == "" {
			add("agent.api %q: a TCP API needs api_tls (cert, key) and token_file", c.Agent.API)
		}
	default:
		add("agent.api %q: want unix:///PATH or tcp://IP:PORT", c.Agent.API)
	}
	if c.Agent.Mode != Independent && c.Agent.Mode != Anycast {
		add("agent.mode %q: want %s or %s", c.Agent.Mode, Independent, Anycast)
	}
	switch c.Agent.LogFormat {
	case "", "text", "json":
	default:
		add("agent.log_format %q: want text or json", c.Agent.LogFormat)
	}
	switch c.Agent.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		add("agent.log_level %q: want debug, info, warn or error", c.Agent.LogLevel)
	}

	names := map[string]bool{}
	inbound := 0
	if len(c.Switches) == 0 || len(c.Switches) > 2 {
		add("switches: want one switch or a pair, got %d", len(c.Switches))
	}
	for i, s := range c.Switches {
		if s.Name == "" {
			add("switches[%d]: name missing", i)
		} else if names[s.Name] {
			add("switches[%d]: duplicate name %q", i, s.Name)
		}
		names[s.Name] = true
		if err := client.ValidateEndpoint(s.OVSDB); err != nil {
			add("switches[%d] (%s): %w", i, s.Name, err)
		}
		if p := time.Duration(s.ProbeInterval); p != 0 && (p < MinProbeInterval || p > MaxProbeInterval) {
			add("switches[%d].probe_interval %s: want %s to %s (default 5s)", i, p, MinProbeInterval, MaxProbeInterval)
		}
		if s.OVSDB == client.Inbound {
			inbound++
			c.validateInbound(i, s, add)
		}
	}
	c.validateListen(inbound, add)

	if c.BGP != nil {
		b := c.BGP
		if b.ASN == 0 {
			add("bgp.asn missing")
		}
		if a, err := netip.ParseAddr(b.RouterID); err != nil || !a.Is4() {
			add("bgp.router_id %q: not an IPv4 address", b.RouterID)
		}
		if b.ListenAddress != "" {
			if _, err := netip.ParseAddr(b.ListenAddress); err != nil {
				add("bgp.listen_address %q: not an IP address", b.ListenAddress)
			}
		}
		if b.ConnectRetry != 0 && (time.Duration(b.ConnectRetry) < time.Second || time.Duration(b.ConnectRetry) > 10*time.Minute) {
			add("bgp.connect_retry %s: want 1s to 10m", time.Duration(b.ConnectRetry))
		}
		if b.StartupWait < 0 || time.Duration(b.StartupWait) > 10*time.Minute {
			add("bgp.startup_wait %s: want 0 (default %s) to 10m", time.Duration(b.StartupWait), DefaultStartupWait)
		}
		if b.ListenPort != nil && (*b.ListenPort < -1 || *b.ListenPort > 65535 || *b.ListenPort == 0) {
			add("bgp.listen_port %d: want 1-65535, or -1 to not listen", *b.ListenPort)
		}
		for i, n := range b.Neighbors {
			if _, err := netip.ParseAddr(n.Address); err != nil {
				add("bgp.neighbors[%d].address %q: not an IP address", i, n.Address)
			}
			if n.ASN == 0 {
				add("bgp.neighbors[%d].asn missing", i)
			}
			if n.LocalAddress != "" {
				if _, err := netip.ParseAddr(n.LocalAddress); err != nil {
					add("bgp.neighbors[%d].local_address %q: not an IP address", i, n.LocalAddress)
				}
			}
		}
	}
	if c.EVPN.Replication != plan.SourceNode && c.EVPN.Replication != plan.ServiceNode {
		add("evpn.replication %q: want %s or %s", c.EVPN.Replication, plan.SourceNode, plan.ServiceNode)
	}
	if c.EVPN.Replication == plan.ServiceNode && len(c.EVPN.ServiceNodes) == 0 {
		add("evpn.replication service_node needs evpn.service_nodes")
	}
	for i, s := range c.EVPN.ServiceNodes {
		if a, err := netip.ParseAddr(s); err != nil || !a.Is4() {
			add("evpn.service_nodes[%d] %q: not an IPv4 address", i, s)
		}
	}
	for v, rt := range c.EVPN.RouteTargets.VNIs {
		if err := v.Validate(); err != nil {
			add("evpn.route_targets: %w", err)
		}
		for _, s := range append(append([]string{}, rt.Import...), rt.Export...) {
			if _, err := evpn.ParseRouteTarget(s); err != nil {
				add("evpn.route_targets VNI %d: %w", v, err)
			}
		}
	}

	for i, b := range c.Bindings {
		if err := b.VLAN.ValidateUsable(); err != nil {
			add("bindings[%d]: %w", i, err)
		}
		if err := b.VNI.Validate(); err != nil {
			add("bindings[%d]: %w", i, err)
		}
		if len(b.Ports) == 0 {
			add("bindings[%d]: no ports", i)
		}
		for _, p := range b.Ports {
			ref, err := l2.ParsePortRef(p)
			if err != nil {
				add("bindings[%d]: %w", i, err)
			} else if !names[ref.Switch] {
				add("bindings[%d]: port %s: switch %q is not in this pair", i, p, ref.Switch)
			}
		}
	}
	if c.VCenter != nil {
		if err := c.VCenter.Validate(); err != nil {
			add("%w", err)
		}
	}
	return errors.Join(errs...)
}

// validateInbound checks an inbound switch's settings against the listener.
func (c *Config) validateInbound(i int, s Switch, add func(string, ...any)) {
	if c.Agent.OVSDBListen == "" {
		add("switches[%d] (%s): ovsdb inbound needs agent.ovsdb_listen", i, s.Name)
	}
	for key, v := range map[string]string{"ca": s.TLS.CA, "cert": s.TLS.Cert, "key": s.TLS.Key} {
		if v != "" {
			add("switches[%d].tls.%s: an inbound switch uses agent.ovsdb_tls (only tls.server_name and tls.peer_cert apply)", i, key)
		}
	}
	if strings.HasPrefix(c.Agent.OVSDBListen, "ptcp:") && (s.TLS.ServerName != "" || s.TLS.PeerCert != "") {
		add("switches[%d].tls: agent.ovsdb_listen is ptcp (no TLS): tls.server_name and tls.peer_cert cannot be checked", i)
	}
}

// validateListen checks agent.ovsdb_listen and agent.ovsdb_tls.
func (c *Config) validateListen(inbound int, add func(string, ...any)) {
	l := c.Agent.OVSDBListen
	if l == "" {
		if c.Agent.OVSDBTLS != nil {
			add("agent.ovsdb_tls: set without agent.ovsdb_listen")
		}
		return
	}
	if inbound == 0 {
		add("agent.ovsdb_listen %q: no switch has ovsdb: inbound", l)
	}
	_, useTLS, err := client.ParseListen(l)
	if err != nil {
		add("agent.ovsdb_listen: %w", err)
		return
	}
	t := c.Agent.OVSDBTLS
	switch {
	case useTLS && (t == nil || t.CA == "" || t.Cert == "" || t.Key == ""):
		add("agent.ovsdb_listen %q: pssl needs agent.ovsdb_tls.ca, agent.ovsdb_tls.cert and agent.ovsdb_tls.key", l)
	case !useTLS && t != nil:
		add("agent.ovsdb_tls: agent.ovsdb_listen %q is ptcp (no TLS); use pssl:", l)
	}
}

// SwitchNames returns the configured switch names in order.
func (c *Config) SwitchNames() []string {
	out := make([]string, len(c.Switches))
	for i, s := range c.Switches {
		out[i] = s.Name
	}
	return out
}

// Speaker builds the EVPN speaker configuration (password files are read
// by the speaker, never placed in argv or logs).
func (c *Config) Speaker() (evpn.Config, error) {
	b := c.BGP
	rid, _ := netip.ParseAddr(b.RouterID)
	sc := evpn.Config{ASN: b.ASN, RouterID: rid, ListenAddress: b.ListenAddress, ListenPort: evpn.DefaultListenPort,
		DeferNeighbors:  true, // the agent's first SetLocal releases them (startup_wait)
		ConnectRetry:    time.Duration(b.ConnectRetry),
		GracefulRestart: evpn.GracefulRestart{Enabled: b.GracefulRestart.Enabled, RestartTime: time.Duration(b.GracefulRestart.RestartTime)}}
	if b.ListenPort != nil {
		sc.ListenPort = *b.ListenPort
	}
	for _, n := range b.Neighbors {
		a, _ := netip.ParseAddr(n.Address)
		la, _ := netip.ParseAddr(n.LocalAddress)
		sc.Neighbors = append(sc.Neighbors, evpn.Neighbor{Address: a, ASN: n.ASN, PasswordFile: n.PasswordFile,
			MultihopTTL: n.MultihopTTL, RouteReflectorClient: n.RouteReflectorClient, Port: n.Port, LocalAddress: la})
	}
	if len(c.EVPN.RouteTargets.VNIs) > 0 {
		sc.RouteTargets.VNIs = map[l2.VNI]evpn.VNIRouteTargets{}
		for v, rt := range c.EVPN.RouteTargets.VNIs {
			var x evpn.VNIRouteTargets
			for _, s := range rt.Import {
				t, err := evpn.ParseRouteTarget(s)
				if err != nil {
					return sc, err
				}
				x.Import = append(x.Import, t)
			}
			for _, s := range rt.Export {
				t, err := evpn.ParseRouteTarget(s)
				if err != nil {
					return sc, err
				}
				x.Export = append(x.Export, t)
			}
			sc.RouteTargets.VNIs[v] = x
		}
	}
	return sc, nil
}
