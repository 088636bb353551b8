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
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/torstitch/torstitch/evpn"
	"github.com/torstitch/torstitch/vdsvlan"
	"github.com/torstitch/torstitch/vtep/client"
	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
)

// DefaultResync is agent.resync's default.
const DefaultResync = 30 * time.Second

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

	// Warnings are problems that do not stop the agent (a world-readable
	// secret, a clear-text vCenter URL allowed by vcenter.insecure), as
	// FILE:LINE: KEY: MESSAGE lines; toragent prints them at start and
	// --check-config prints them too.
	Warnings []string `yaml:"-"`

	lines map[string]int // key path -> line, from Parse
	warns []*FieldError
}

// setWarnings formats the warnings found, naming file when not empty.
func (c *Config) setWarnings(file string) {
	sortErrors(c.warns)
	c.Warnings = nil
	for _, w := range c.warns {
		w.File = file
		c.Warnings = append(c.Warnings, w.Error())
	}
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
	// MetricsTLS serves /metrics over HTTPS (cert, key; client_ca to
	// require client certificates).
	MetricsTLS *APITLS `yaml:"metrics_tls"`
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
	// BFD asks the switch to run BFD on its tunnels (Tunnel.bfd_params)
	// and makes the agent act on the state it reports. Off by default.
	BFD BFD `yaml:"bfd"`
}

// BFD configures BFD on one switch's tunnels.
type BFD struct {
	Enabled bool     `yaml:"enabled"`
	MinRx   Duration `yaml:"min_rx"` // default 300ms; whole milliseconds
	MinTx   Duration `yaml:"min_tx"` // default 100ms; whole milliseconds
}

// BFD defaults and bounds.
const (
	DefaultBFDMinRx = 300 * time.Millisecond
	DefaultBFDMinTx = 100 * time.Millisecond
	MinBFDInterval  = 10 * time.Millisecond
	MaxBFDInterval  = 10 * time.Second
)

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
			return fmt.Errorf("%q is not auto or a map of VNIs", n.Value)
		}
		r.Auto = true
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("want auto or a map of VNIs, got %s", describe(n))
	}
	d := decoder{lines: map[string]int{}}
	var m map[l2.VNI]VNIRT
	d.decode(n, reflect.ValueOf(&m).Elem(), "")
	if len(d.errs) > 0 {
		msgs := make([]string, len(d.errs))
		for i, e := range d.errs {
			msgs[i] = e.Error()
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	r.VNIs = m
	return nil
}

// Binding is a static binding as the config file spells it (ports as
// "switch:port" text, checked by Validate); StaticBindings returns them as
// l2.Binding.
type Binding struct {
	VLAN  l2.VLAN  `yaml:"vlan"`
	VNI   l2.VNI   `yaml:"vni"`
	Ports []string `yaml:"ports"`
}

// StaticBindings returns the config file's bindings, Source
// l2.SourceConfig. The configuration must have been validated: a port that
// does not parse is left out.
func (c *Config) StaticBindings() []l2.Binding {
	out := make([]l2.Binding, 0, len(c.Bindings))
	for _, b := range c.Bindings {
		lb := l2.Binding{VLAN: b.VLAN, VNI: b.VNI, Ports: make([]l2.PortRef, 0, len(b.Ports)), Source: l2.SourceConfig}
		for _, p := range b.Ports {
			if ref, err := l2.ParsePortRef(p); err == nil {
				lb.Ports = append(lb.Ports, ref)
			}
		}
		out = append(out, lb)
	}
	return out
}

// Duration reads a number of seconds or a Go duration string ("90s").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MaxFileSize bounds the configuration file.
const MaxFileSize = 1 << 20

// Load reads, parses and validates a configuration file, then checks the
// files it names: credential, CA, certificate and key files are read and
// parsed, so that --check-config finds what the agent would trip on at
// start. Every problem is reported at once, as FILE:LINE: KEY.PATH: MESSAGE
// lines (an Errors). Warnings (world-readable secrets, a clear-text vCenter
// URL) are returned in Config.Warnings.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("larger than %d bytes", MaxFileSize)}}
	}
	c, errs := parse(b)
	if c != nil {
		errs = append(errs, c.checkFiles()...)
	}
	if len(errs) > 0 {
		for _, e := range errs {
			e.File = path
		}
		sortErrors(errs)
		return nil, Errors(errs)
	}
	c.setWarnings(path)
	return c, nil
}

// Parse decodes YAML strictly, fills defaults and validates, without
// touching the files the configuration names (Load checks those). Its
// error is an Errors listing every problem, with lines and key paths.
func Parse(b []byte) (*Config, error) {
	c, errs := parse(b)
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, Errors(errs)
	}
	c.setWarnings("")
	return c, nil
}

var yamlSyntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a YAML parser error into a FieldError with its line.
func syntaxError(err error) *FieldError {
	msg := err.Error()
	if m := yamlSyntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FieldError{Line: line, Msg: "YAML syntax: " + m[2]}
	}
	return &FieldError{Msg: "YAML: " + strings.TrimPrefix(cleanYAMLError(err), "yaml: ")}
}

// parse returns the configuration (nil when it could not be decoded at
// all) and every problem found.
func parse(b []byte) (*Config, []*FieldError) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, []*FieldError{{Msg: "empty configuration"}}
		}
		return nil, []*FieldError{syntaxError(err)}
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, []*FieldError{{Msg: "empty configuration"}}
	}
	var errs []*FieldError
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		errs = append(errs, &FieldError{Line: next.Line, Msg: "a second YAML document (---): the configuration is one document"})
	} else if !errors.Is(err, io.EOF) {
		errs = append(errs, syntaxError(err))
	}
	d := decoder{lines: map[string]int{}}
	var c Config
	d.decode(doc.Content[0], reflect.ValueOf(&c).Elem(), "")
	errs = append(errs, d.errs...)
	c.lines = d.lines
	c.defaults()
	// Validation problems under a key that did not decode are echoes of
	// the decoding problem ("asn: banana" is also "bgp.asn missing").
	for _, ve := range c.validate() {
		echo := false
		for _, de := range d.errs {
			echo = echo || related(ve.Path, de.Path)
		}
		if !echo {
			errs = append(errs, ve)
		}
	}
	return &c, errs
}

// related reports whether one key path is the other or contains it.
func related(a, b string) bool {
	in := func(x, y string) bool {
		return x == y || strings.HasPrefix(x, y+".") || strings.HasPrefix(x, y+"[")
	}
	return a != "" && b != "" && (in(a, b) || in(b, a))
}

// has reports whether the file set the key at path.
func (c *Config) has(path string) bool { _, ok := c.lines[path]; return ok }

// line returns the line of path's key, or of its nearest parent that has one.
func (c *Config) line(path string) int {
	for path != "" {
		if l, ok := c.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func (c *Config) defaults() {
	if c.Agent.Name == "" {
		c.Agent.Name = "toragent"
	}
	if c.Agent.API == "" {
		c.Agent.API = "unix:///run/torstitch/toragent.sock"
	}
	if c.Agent.StateDir == "" && !c.has("agent.state_dir") {
		c.Agent.StateDir = "/var/lib/torstitch"
	}
	if c.Agent.Mode == "" {
		c.Agent.Mode = Independent
	}
	if c.Agent.Resync == 0 && !c.has("agent.resync") {
		c.Agent.Resync = Duration(DefaultResync)
	}
	for i := range c.Switches {
		b := &c.Switches[i].BFD
		if b.MinRx == 0 && !c.has(fmt.Sprintf("switches[%d].bfd.min_rx", i)) {
			b.MinRx = Duration(DefaultBFDMinRx)
		}
		if b.MinTx == 0 && !c.has(fmt.Sprintf("switches[%d].bfd.min_tx", i)) {
			b.MinTx = Duration(DefaultBFDMinTx)
		}
	}
	if c.EVPN.Replication == "" {
		c.EVPN.Replication = plan.SourceNode
	}
	if c.BGP != nil && c.BGP.StartupWait == 0 {
		c.BGP.StartupWait = Duration(DefaultStartupWait)
	}
	if c.BGP != nil && c.BGP.GracefulRestart.Enabled && c.BGP.GracefulRestart.RestartTime == 0 && !c.has("bgp.graceful_restart.restart_time") {
		c.BGP.GracefulRestart.RestartTime = Duration(evpn.DefaultRestartTime)
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
	if b == nil {
		return evpn.Config{}, errors.New("bgp: not configured")
	}
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
