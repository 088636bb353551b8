package evpn

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Defaults applied by New when the corresponding Config field is zero.
const (
	DefaultListenPort   = 179
	DefaultRestartTime  = 120 * time.Second
	DefaultConnectRetry = 5 * time.Second
	maxRestartTime      = 4095 * time.Second // 12-bit field of the GR capability
)

// Config configures a Speaker. The zero value of every optional field selects
// the documented default.
type Config struct {
	ASN      uint32     // local AS number (required)
	RouterID netip.Addr // BGP identifier, an IPv4 address (required)

	// ListenAddress restricts the listening socket to one address; empty
	// listens on all addresses. ListenPort 0 means 179; -1 disables listening
	// (the speaker then only connects out).
	ListenAddress string
	ListenPort    int32

	Neighbors       []Neighbor
	GracefulRestart GracefulRestart
	// DeferNeighbors holds the BGP sessions back until the first SetLocal:
	// the neighbors are added once the local routes are in the table, so a
	// peer receives all of them before our End-of-RIB. A restarting speaker
	// must not send End-of-RIB before its routes (RFC 4724 section 4.1): a
	// graceful restart helper deletes the stale routes that the End-of-RIB
	// did not refresh.
	DeferNeighbors bool
	RouteTargets   RouteTargets

	// ConnectRetry is the delay between connection attempts to a neighbor
	// (default 5 s; GoBGP's own default of 120 s is too slow after a reset).
	ConnectRetry time.Duration
	// HoldTime and KeepaliveInterval default to 90 s and 30 s.
	HoldTime          time.Duration
	KeepaliveInterval time.Duration

	// MobilityMaxMoves and MobilityWindow configure duplicate MAC detection:
	// MaxMoves moves within Window freeze the MAC (FRR's default: 5 in 180 s).
	MobilityMaxMoves int
	MobilityWindow   time.Duration

	// Now is the clock used for MAC mobility and sync timers (default time.Now).
	Now func() time.Time
}

// Neighbor is one BGP peer. The l2vpn-evpn family is always enabled.
type Neighbor struct {
	Address netip.Addr
	ASN     uint32
	// PasswordFile names a file holding the TCP MD5 password (first line,
	// surrounding white space trimmed). Empty: no password.
	PasswordFile string
	// MultihopTTL enables eBGP multihop with this TTL; 0 leaves it off.
	MultihopTTL uint8
	// RouteReflectorClient makes this speaker a route reflector for the peer.
	RouteReflectorClient bool
	// LocalAddress pins the source address of outgoing connections (optional).
	LocalAddress netip.Addr
	// Port is the peer's TCP port (default 179); tests use it on loopback.
	Port uint16
}

// GracefulRestart enables the graceful restart capability (RFC 4724) with
// End-of-RIB handling for l2vpn-evpn. RestartTime defaults to 120 s.
type GracefulRestart struct {
	Enabled     bool
	RestartTime time.Duration
}

// New-time validated copy of the configuration with the password contents.
type resolvedNeighbor struct {
	Neighbor
	password string
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.ListenPort == 0 {
		out.ListenPort = DefaultListenPort
	}
	if out.GracefulRestart.RestartTime == 0 {
		out.GracefulRestart.RestartTime = DefaultRestartTime
	}
	if out.ConnectRetry == 0 {
		out.ConnectRetry = DefaultConnectRetry
	}
	if out.HoldTime == 0 {
		out.HoldTime = 90 * time.Second
	}
	if out.KeepaliveInterval == 0 {
		out.KeepaliveInterval = out.HoldTime / 3
	}
	if out.MobilityMaxMoves == 0 {
		out.MobilityMaxMoves = 5
	}
	if out.MobilityWindow == 0 {
		out.MobilityWindow = 180 * time.Second
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	return out
}

// validate checks the configuration (after defaults) and reads password
// files. Every error names the offending field.
func (c *Config) validate() ([]resolvedNeighbor, error) {
	var errs []error
	if c.ASN == 0 {
		errs = append(errs, errors.New("asn: must be set (1-4294967295)"))
	}
	if !c.RouterID.Is4() {
		errs = append(errs, fmt.Errorf("router_id: %q is not an IPv4 address", c.RouterID))
	}
	if c.ListenPort < -1 || c.ListenPort > 65535 {
		errs = append(errs, fmt.Errorf("listen_port: %d out of range (-1 to disable, 1-65535)", c.ListenPort))
	}
	if c.ListenAddress != "" {
		if _, err := netip.ParseAddr(c.ListenAddress); err != nil {
			errs = append(errs, fmt.Errorf("listen_address: %w", err))
		}
	}
	if c.GracefulRestart.RestartTime < time.Second || c.GracefulRestart.RestartTime > maxRestartTime {
		errs = append(errs, fmt.Errorf("graceful_restart.restart_time: %s out of range 1s-%s",
			c.GracefulRestart.RestartTime, maxRestartTime))
	}
	if c.HoldTime != 0 && c.HoldTime < 3*time.Second {
		errs = append(errs, fmt.Errorf("hold_time: %s below 3s", c.HoldTime))
	}
	if c.MobilityMaxMoves < 1 {
		errs = append(errs, fmt.Errorf("mobility max moves: %d must be positive", c.MobilityMaxMoves))
	}
	seen := make(map[netip.Addr]bool)
	nbrs := make([]resolvedNeighbor, 0, len(c.Neighbors))
	for i, n := range c.Neighbors {
		field := fmt.Sprintf("neighbors[%d]", i)
		if !n.Address.IsValid() {
			errs = append(errs, fmt.Errorf("%s.address: must be set", field))
			continue
		}
		field = fmt.Sprintf("neighbors[%d] (%s)", i, n.Address)
		if seen[n.Address] {
			errs = append(errs, fmt.Errorf("%s.address: duplicate neighbor", field))
		}
		seen[n.Address] = true
		if n.ASN == 0 {
			errs = append(errs, fmt.Errorf("%s.asn: must be set", field))
		}
		if n.MultihopTTL != 0 && n.ASN == c.ASN {
			errs = append(errs, fmt.Errorf("%s.multihop_ttl: only for eBGP neighbors", field))
		}
		if n.RouteReflectorClient && n.ASN != c.ASN {
			errs = append(errs, fmt.Errorf("%s.route_reflector_client: only for iBGP neighbors", field))
		}
		rn := resolvedNeighbor{Neighbor: n}
		if n.PasswordFile != "" {
			b, err := os.ReadFile(n.PasswordFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.password_file: %w", field, err))
			} else {
				line, _, _ := strings.Cut(string(b), "\n")
				rn.password = strings.TrimSpace(line)
				if rn.password == "" {
					errs = append(errs, fmt.Errorf("%s.password_file: %s is empty", field, n.PasswordFile))
				} else if len(rn.password) > 80 {
					errs = append(errs, fmt.Errorf("%s.password_file: TCP MD5 passwords are at most 80 bytes", field))
				}
			}
		}
		nbrs = append(nbrs, rn)
	}
	for vni, rts := range c.RouteTargets.VNIs {
		if err := vni.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("route_targets[%d]: %w", uint32(vni), err))
		}
		if len(rts.Import) == 0 && len(rts.Export) == 0 {
			errs = append(errs, fmt.Errorf("route_targets[%d]: neither import nor export given", uint32(vni)))
		}
	}
	if err := c.RouteTargets.checkImportConflicts(); err != nil {
		errs = append(errs, err)
	}
	return nbrs, errors.Join(errs...)
}
