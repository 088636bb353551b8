package evpntest

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
)

// FRRNeighbor is one BGP neighbor of an FRR instance.
type FRRNeighbor struct {
	Address  string
	ASN      uint32
	Password string
	Port     int  // the neighbor's BGP port, when not 179
	Shutdown bool // start administratively down (see SetShutdown)
}

// FRRConfig describes an FRR 8.4 EVPN VTEP.
type FRRConfig struct {
	ASN       uint32
	RouterID  string
	VTEP      string   // local tunnel IP (must be configured in the namespace)
	VNIs      []uint32 // a kernel VXLAN device, bridge and VM port per VNI
	Neighbors []FRRNeighbor
	BGPExtra  []string // extra lines under `router bgp`
}

// FRR is zebra + bgpd running in a namespace, with files in a temp dir.
type FRR struct {
	NS  *netnstest.Netns
	Dir string
	cfg FRRConfig
}

// StartFRR creates the VXLAN devices and starts zebra and bgpd inside ns.
// Both daemons are killed when t ends.
func StartFRR(t testing.TB, ns *netnstest.Netns, cfg FRRConfig) *FRR {
	t.Helper()
	dir := frrDir(t)
	f := &FRR{NS: ns, Dir: dir, cfg: cfg}
	for _, vni := range cfg.VNIs {
		br, vx, vm := f.Bridge(vni), f.VXLAN(vni), fmt.Sprintf("vm%d", vni)
		ns.Run("ip", "link", "add", br, "type", "bridge")
		ns.Run("ip", "link", "add", vx, "type", "vxlan", "id", strconv.Itoa(int(vni)), "local", cfg.VTEP,
			"dstport", "4789", "nolearning")
		ns.Run("ip", "link", "set", vx, "master", br)
		ns.Run("ip", "link", "add", vm, "type", "veth", "peer", "name", vm+"p")
		ns.Run("ip", "link", "set", vm, "master", br)
		for _, l := range []string{br, vx, vm, vm + "p"} {
			ns.Run("ip", "link", "set", l, "up")
		}
	}
	WriteFile(t, dir, "zebra.conf", fmt.Sprintf("hostname %s\nlog file %s/zebra.log\n", ns.Name, dir))
	var b strings.Builder
	fmt.Fprintf(&b, "hostname %s\nlog file %s/bgpd.log\n", ns.Name, dir)
	fmt.Fprintf(&b, "router bgp %d\n bgp router-id %s\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n timers bgp 3 9\n", cfg.ASN, cfg.RouterID)
	for _, l := range cfg.BGPExtra {
		fmt.Fprintf(&b, " %s\n", l)
	}
	for _, n := range cfg.Neighbors {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers connect 1\n", n.Address, n.ASN, n.Address)
		if n.Port != 0 {
			fmt.Fprintf(&b, " neighbor %s port %d\n", n.Address, n.Port)
		}
		if n.Shutdown {
			fmt.Fprintf(&b, " neighbor %s shutdown\n", n.Address)
		}
		if n.Password != "" {
			fmt.Fprintf(&b, " neighbor %s password %s\n", n.Address, n.Password)
		}
	}
	b.WriteString(" address-family l2vpn evpn\n")
	for _, n := range cfg.Neighbors {
		fmt.Fprintf(&b, "  neighbor %s activate\n", n.Address)
	}
	b.WriteString("  advertise-all-vni\n exit-address-family\n")
	WriteFile(t, dir, "bgpd.conf", b.String())

	zsock := filepath.Join(dir, "zserv.api")
	common := []string{"-d", "-z", zsock, "--vty_socket", dir, "-u", "frr", "-g", "frr"}
	daemon := func(name string) {
		ns.Run(append([]string{"/usr/lib/frr/" + name, "-f", filepath.Join(dir, name+".conf"), "-i", filepath.Join(dir, name+".pid")}, common...)...)
	}
	daemon("zebra")
	t.Cleanup(func() { netnstest.KillPIDFile(filepath.Join(dir, "zebra.pid"), syscall.SIGKILL) })
	netnstest.Eventually(t, 10*time.Second, 20*time.Millisecond, "zebra socket", func() error {
		_, err := os.Stat(zsock)
		return err
	})
	daemon("bgpd")
	t.Cleanup(func() { netnstest.KillPIDFile(filepath.Join(dir, "bgpd.pid"), syscall.SIGKILL) })
	t.Cleanup(func() {
		if t.Failed() {
			netnstest.LogTail(t, filepath.Join(dir, "bgpd.log"), filepath.Join(dir, "zebra.log"))
		}
	})
	return f
}

// frrDir makes a directory the frr user can write (FRR drops to it), removed
// when t ends.
func frrDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ev-frr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	u, err := user.Lookup("frr")
	if err != nil {
		t.Skipf("no frr user (Debian package frr not installed?): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Bridge and VXLAN name the devices of a VNI.
func (f *FRR) Bridge(vni uint32) string { return fmt.Sprintf("br%d", vni) }

// VXLAN names the VXLAN device of a VNI.
func (f *FRR) VXLAN(vni uint32) string { return fmt.Sprintf("vx%d", vni) }

// Vtysh runs show commands through vtysh.
func (f *FRR) Vtysh(ctx context.Context, cmds ...string) (string, error) {
	args := []string{"vtysh", "--vty_socket", f.Dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	return f.NS.Output(ctx, args...)
}

// AddLocalMAC makes mac local on the VM port of vni (a static FDB entry),
// which FRR advertises as a type-2 route.
func (f *FRR) AddLocalMAC(t testing.TB, vni uint32, mac string) {
	t.Helper()
	f.NS.Run("bridge", "fdb", "add", mac, "dev", fmt.Sprintf("vm%d", vni), "master", "static")
}

// FDBEntry is a remote FDB entry on a VXLAN device: MAC -> VTEP.
type FDBEntry struct{ MAC, Dst string }

// RemoteFDB lists the entries with a dst on the VXLAN device of vni (each
// remote MAC appears once; the flood entry has MAC 00:00:00:00:00:00).
func (f *FRR) RemoteFDB(ctx context.Context, vni uint32) ([]FDBEntry, error) {
	out, err := f.NS.Output(ctx, "bridge", "fdb", "show", "dev", f.VXLAN(vni))
	if err != nil {
		return nil, fmt.Errorf("bridge fdb show: %w: %s", err, out)
	}
	var l []FDBEntry
	for _, line := range strings.Split(out, "\n") {
		fs := strings.Fields(line)
		for i := 0; i+1 < len(fs); i++ {
			if fs[i] == "dst" && len(fs) > 0 {
				l = append(l, FDBEntry{MAC: fs[0], Dst: fs[i+1]})
				break
			}
		}
	}
	return l, nil
}

// CountRemoteFDB counts FDB entries with a dst on vni's VXLAN device using
// a shell pipeline (cheap for 100k entries).
func (f *FRR) CountRemoteFDB(ctx context.Context, vni uint32) (int, error) {
	cmd := f.NS.Cmd(ctx, nil, "sh", "-c",
		"bridge fdb show dev "+f.VXLAN(vni)+" | grep -c ' dst ' || true")
	out, err := cmd.Output()
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

// AddLocalMACs adds many local MACs on vni's VM port in one `bridge -batch`.
func (f *FRR) AddLocalMACs(t testing.TB, vni uint32, macs []string) {
	t.Helper()
	var b strings.Builder
	for _, m := range macs {
		fmt.Fprintf(&b, "fdb add %s dev vm%d master static\n", m, vni)
	}
	p := WriteFile(t, f.Dir, "fdb.batch", b.String())
	f.NS.Run("bridge", "-batch", p)
}

// LocalMACRoutes counts the type-2 routes bgpd holds (from the summary line
// of `show bgp l2vpn evpn route type macip`).
func (f *FRR) LocalMACRoutes(ctx context.Context) (int, error) {
	cmd := f.NS.Cmd(ctx, nil, "sh", "-c",
		"vtysh --vty_socket "+f.Dir+" -c 'show bgp l2vpn evpn route type macip' | tail -3")
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("vtysh: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Displayed "); ok {
			n, _, _ := strings.Cut(rest, " ")
			return strconv.Atoi(n)
		}
	}
	return 0, nil
}

// SetShutdown shuts a neighbor down or brings it up.
func (f *FRR) SetShutdown(ctx context.Context, addr string, down bool) error {
	c := "neighbor " + addr + " shutdown"
	if !down {
		c = "no " + c
	}
	out, err := f.Vtysh(ctx, "configure terminal", fmt.Sprintf("router bgp %d", f.cfg.ASN), c)
	if err != nil {
		return fmt.Errorf("vtysh %s: %w: %s", c, err, out)
	}
	return nil
}

// TCPUp reports whether a BGP TCP connection to or from peer is established
// in the namespace (cheap to poll, unlike vtysh).
func (f *FRR) TCPUp(ctx context.Context, peer string) (bool, error) {
	out, err := f.NS.Output(ctx, "ss", "-Htn", "state", "established", "dst", peer)
	if err != nil {
		return false, fmt.Errorf("ss: %w: %s", err, out)
	}
	return strings.Contains(out, ":179"), nil
}
