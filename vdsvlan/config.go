// Package vdsvlan discovers the VLANs of VMware distributed port groups
// through govmomi and publishes complete desired-binding snapshots for one
// ToR switch pair (level-triggered: every snapshot is the whole picture).
//
// The rules that turn an inventory into bindings live in the pure package
// vdsvlan/desired; this package does the vCenter I/O: connecting, watching
// with the property collector, periodic resyncs, LLDP/CDP queries, tags, and
// keeping the last good snapshot while vCenter is away.
package vdsvlan

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/torstitch/torstitch/vdsvlan/desired"
	"github.com/torstitch/torstitch/vdsvlan/publish"
	"github.com/torstitch/torstitch/vtep/l2"
)

// Environment variables read when the credential files are not configured.
const (
	EnvUsername = "TORSTITCH_VC_USERNAME"
	EnvPassword = "TORSTITCH_VC_PASSWORD"
)

// DefaultResyncInterval is used when Config.ResyncInterval is zero.
const DefaultResyncInterval = 30 * time.Second

// Types shared with the pure core.
type (
	VNIPolicy = desired.VNIPolicy
	HostPorts = desired.HostPorts
	Rewrite   = desired.Rewrite
	VMMAC     = desired.VMMAC
)

// Config configures a Watcher. Its YAML form is the agent's `vcenter:` key.
type Config struct {
	URL          string `yaml:"url"`           // https://vc.example/sdk (the /sdk path is added when missing)
	UsernameFile string `yaml:"username_file"` // else $TORSTITCH_VC_USERNAME
	PasswordFile string `yaml:"password_file"` // else $TORSTITCH_VC_PASSWORD
	CAFile       string `yaml:"ca_file"`       // PEM bundle the server certificate must chain to
	Thumbprint   string `yaml:"thumbprint"`    // or: the server certificate's SHA-1/SHA-256 thumbprint
	Insecure     bool   `yaml:"insecure"`      // skip verification (logged as a warning)
	Datacenter   string `yaml:"datacenter"`    // limit discovery to this datacenter (name or inventory path); empty = all

	VNIPolicy VNIPolicy `yaml:"vni_policy"`
	HostPorts HostPorts `yaml:"host_ports"`

	// Switches maps the pair's Physical_Switch names to their port names, for
	// LLDP matching; empty accepts all. Usually filled in by the agent from
	// its switches, not from YAML.
	Switches map[string][]string `yaml:"switches,omitempty"`

	ResyncInterval time.Duration `yaml:"resync_interval"` // default 30s

	// Published networks (docs/vcenter.md, "Published networks"): port
	// groups torstitch creates on PublishSwitch for overlay VNIs, with a
	// VLAN from VLANPool unless the network names one.
	PublishSwitch string            `yaml:"publish_switch,omitempty"`
	VLANPool      string            `yaml:"vlan_pool,omitempty"` // "3000-3099" or "3000-3049,3100"
	Publish       []publish.Network `yaml:"publish,omitempty"`
}

// Publishing reports whether published networks are configured (a switch
// to create them on).
func (c Config) Publishing() bool { return c.PublishSwitch != "" }

// ValidatePublish checks the published-network settings.
func (c Config) ValidatePublish() error {
	var errs []error
	if c.PublishSwitch == "" {
		if len(c.Publish) > 0 || c.VLANPool != "" {
			errs = append(errs, errors.New("vcenter: publish_switch missing (the distributed switch published networks are created on)"))
		}
	} else if err := l2.CheckName(c.PublishSwitch); err != nil {
		errs = append(errs, fmt.Errorf("vcenter: publish_switch %w", err))
	}
	if c.VLANPool != "" {
		if _, err := publish.ParsePool(c.VLANPool); err != nil {
			errs = append(errs, fmt.Errorf("vcenter: vlan_pool: %w", err))
		}
	}
	vnis, names, vlans := map[l2.VNI]int{}, map[string]int{}, map[l2.VLAN]int{}
	for i, n := range c.Publish {
		if err := n.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("vcenter: publish[%d]: %w", i, err))
			continue
		}
		if j, dup := vnis[n.VNI]; dup {
			errs = append(errs, fmt.Errorf("vcenter: publish[%d]: VNI %d also published by publish[%d]", i, n.VNI, j))
		}
		if j, dup := names[n.Name]; dup {
			errs = append(errs, fmt.Errorf("vcenter: publish[%d]: name %q also used by publish[%d]", i, n.Name, j))
		}
		if n.VLAN != 0 {
			if j, dup := vlans[n.VLAN]; dup {
				errs = append(errs, fmt.Errorf("vcenter: publish[%d]: VLAN %d also used by publish[%d]", i, n.VLAN, j))
			}
			vlans[n.VLAN] = i
		} else if c.VLANPool == "" {
			errs = append(errs, fmt.Errorf("vcenter: publish[%d]: no vlan and no vlan_pool to take one from", i))
		}
		vnis[n.VNI], names[n.Name] = i, i
	}
	return errors.Join(errs...)
}

// Validate checks the configuration without touching the network or files.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("vcenter: url missing"))
	} else if u, err := url.Parse(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("vcenter: url: %w", err))
	} else {
		if u.User != nil {
			errs = append(errs, errors.New("vcenter: url must not carry credentials; use username_file/password_file"))
		}
		if u.Scheme != "https" && u.Scheme != "http" {
			errs = append(errs, fmt.Errorf("vcenter: url scheme %q: want https", u.Scheme))
		}
	}
	if c.CAFile != "" && c.Insecure {
		errs = append(errs, errors.New("vcenter: ca_file and insecure are mutually exclusive"))
	}
	if c.Thumbprint != "" && c.Insecure {
		errs = append(errs, errors.New("vcenter: thumbprint and insecure are mutually exclusive"))
	}
	if c.ResyncInterval < 0 {
		errs = append(errs, errors.New("vcenter: resync_interval must not be negative"))
	}
	if _, err := desired.NewPlanner(c.params()); err != nil {
		errs = append(errs, fmt.Errorf("vcenter: %w", err))
	}
	if err := c.ValidatePublish(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) params() desired.Params {
	return desired.Params{VNI: c.VNIPolicy, Ports: c.HostPorts, Switches: c.Switches}
}

func (c Config) resync() time.Duration {
	if c.ResyncInterval <= 0 {
		return DefaultResyncInterval
	}
	return c.ResyncInterval
}

// credentials reads the username and password from the configured files, or
// from the environment. Called on every login so rotated secrets are used.
func (c Config) credentials() (*url.Userinfo, error) {
	user, err := secret(c.UsernameFile, EnvUsername, "username")
	if err != nil {
		return nil, err
	}
	pass, err := secret(c.PasswordFile, EnvPassword, "password")
	if err != nil {
		return nil, err
	}
	return url.UserPassword(user, pass), nil
}

func secret(file, env, what string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading vCenter %s file: %w", what, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("vCenter %s file %s is empty", what, file)
		}
		return v, nil
	}
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("vCenter %s: set %s_file or $%s", what, what, env)
}
