package evpn

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/evpn/evpntest"
	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/l2"
)

const frrVNI = 5000

// fdbHas checks FRR's kernel FDB on the VNI's VXLAN device.
func fdbCond(f *evpntest.FRR, want map[string]string, absent []string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l, err := f.RemoteFDB(ctx, frrVNI)
		if err != nil {
			return err
		}
		got := map[string][]string{}
		for _, e := range l {
			got[e.MAC] = append(got[e.MAC], e.Dst)
		}
		for mac, dst := range want {
			if !slices.Contains(got[mac], dst) {
				return fmt.Errorf("no FDB entry %s dst %s in %v", mac, dst, l)
			}
		}
		for _, mac := range absent {
			if len(got[mac]) > 0 {
				return fmt.Errorf("FDB entry %s still present: %v", mac, got[mac])
			}
		}
		return nil
	}
}

// TestFRRInteropEBGP runs FRR 8.4 as a VTEP (kernel VXLAN, bridge,
// advertise-all-vni) peering over eBGP with TCP MD5 with our speaker.
func TestFRRInteropEBGP(t *testing.T) {
	netnstest.RequireIsolated(t, "/usr/lib/frr/bgpd", "vtysh")
	frrNS := netnstest.New(t, "frr1")
	netnstest.Link(t, frrNS, "ev-frr1", "10.99.1.1/24", "eth0", "10.99.1.2/24")
	frr := evpntest.StartFRR(t, frrNS, evpntest.FRRConfig{ASN: 65002, RouterID: "10.99.1.2", VTEP: "10.99.1.2",
		VNIs: []uint32{frrVNI}, Neighbors: []evpntest.FRRNeighbor{{Address: "10.99.1.1", ASN: 65001, Password: "s3cret"}}})
	pw := filepath.Join(t.TempDir(), "bgp.pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startSpeaker(t, Config{ASN: 65001, RouterID: ip("10.99.1.1"), ListenAddress: "10.99.1.1",
		ConnectRetry: time.Second, HoldTime: 9 * time.Second,
		Neighbors:       []Neighbor{{Address: ip("10.99.1.2"), ASN: 65002, PasswordFile: pw}},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 60 * time.Second}})
	testFRRExchange(t, s, frr, ip("10.99.1.1"), ip("10.99.1.2"), nil)
}

// testFRRExchange checks both directions between our speaker s (VTEP ours)
// and FRR (VTEP theirs).
// onAdvertised, if set, runs once FRR has installed our routes.
func testFRRExchange(t *testing.T, s *Speaker, frr *evpntest.FRR, ours, theirs netip.Addr, onAdvertised func(macs ...l2.MAC)) {
	ctx := context.Background()
	frrMAC := l2.MustMAC("aa:bb:cc:00:00:01")
	frr.AddLocalMAC(t, frrVNI, frrMAC.String())

	// FRR's type-2 and type-3 arrive decoded.
	waitRemote(t, s, 30*time.Second, "FRR routes", both(
		hasMAC(l2.RemoteMAC{VNI: frrVNI, MAC: frrMAC, VTEP: theirs}), floodIs(frrVNI, theirs)))
	netnstest.Eventually(t, 10*time.Second, 50*time.Millisecond, "synced (End-of-RIB from FRR)", func() error {
		if !s.Synced() {
			return errNotYet
		}
		return nil
	})

	// Our routes make FRR install MAC dst OUR-VTEP and the flood entry.
	mac1, mac2 := l2.MustMAC("02:00:00:00:00:01"), l2.MustMAC("02:00:00:00:00:02")
	local := LocalState{IMET: []IMET{{VNI: frrVNI, VTEP: ours}}, MACs: []l2.LocalMAC{
		{Switch: "tor1", VNI: frrVNI, MAC: mac1, IP: ip("10.50.0.1"), VTEP: ours},
		{Switch: "tor1", VNI: frrVNI, MAC: mac2, VTEP: ours},
	}}
	if err := s.SetLocal(ctx, local); err != nil {
		t.Fatal(err)
	}
	o := ours.String()
	netnstest.Eventually(t, 20*time.Second, 50*time.Millisecond, "FRR kernel FDB has our routes",
		fdbCond(frr, map[string]string{mac1.String(): o, mac2.String(): o, "00:00:00:00:00:00": o}, nil))
	if onAdvertised != nil {
		onAdvertised(mac1, mac2, frrMAC)
	}
	out, _ := frr.Vtysh(ctx, "show bgp l2vpn evpn route type macip")
	if !strings.Contains(out, mac1.String()) || !strings.Contains(out, "10.50.0.1") {
		t.Errorf("FRR lacks our MAC+IP route:\n%s", out)
	}

	// Withdrawing one MAC removes it; withdrawing all removes the flood entry.
	local.MACs = local.MACs[:1]
	if err := s.SetLocal(ctx, local); err != nil {
		t.Fatal(err)
	}
	netnstest.Eventually(t, 20*time.Second, 50*time.Millisecond, "FRR FDB after withdrawing mac2",
		fdbCond(frr, map[string]string{mac1.String(): o}, []string{mac2.String()}))
	if err := s.SetLocal(ctx, LocalState{}); err != nil {
		t.Fatal(err)
	}
	netnstest.Eventually(t, 20*time.Second, 50*time.Millisecond, "FRR FDB after withdrawing all",
		fdbCond(frr, nil, []string{mac1.String(), "00:00:00:00:00:00"}))

	// FRR withdraws its MAC: it leaves our remote state.
	frr.NS.Run("bridge", "fdb", "del", frrMAC.String(), "dev", fmt.Sprintf("vm%d", frrVNI), "master")
	waitRemote(t, s, 20*time.Second, "FRR MAC withdrawn", noMAC(frrVNI, frrMAC))
	peers, err := s.Peers(ctx)
	if err != nil || len(peers) != 1 || peers[0].State != "established" || !peers[0].EndOfRIB {
		t.Errorf("peers = %+v, %v; want one established peer with End-of-RIB", peers, err)
	}
}

// TestFRRInteropIBGPRouteReflector: our speaker and FRR are iBGP clients of
// Debian's gobgpd acting as route reflector; the reflector's RIB is checked
// with its gobgp CLI.
func TestFRRInteropIBGPRouteReflector(t *testing.T) {
	netnstest.RequireIsolated(t, "/usr/lib/frr/bgpd", "vtysh", "gobgpd", "gobgp")
	br := netnstest.NewBridge(t, "ev-br2", "10.99.2.1/24")
	rrNS, frrNS := netnstest.New(t, "rr"), netnstest.New(t, "frr2")
	br.Attach(rrNS, "ev-rr", "eth0", "10.99.2.3/24")
	br.Attach(frrNS, "ev-frr2", "eth0", "10.99.2.2/24")
	rr := evpntest.StartGoBGPd(t, rrNS, evpntest.GoBGPdConfig{ASN: 65000, RouterID: "10.99.2.3",
		Clients: []string{"10.99.2.1", "10.99.2.2"}})
	frr := evpntest.StartFRR(t, frrNS, evpntest.FRRConfig{ASN: 65000, RouterID: "10.99.2.2", VTEP: "10.99.2.2",
		VNIs: []uint32{frrVNI}, Neighbors: []evpntest.FRRNeighbor{{Address: "10.99.2.3", ASN: 65000}}})
	s := startSpeaker(t, Config{ASN: 65000, RouterID: ip("10.99.2.1"), ListenAddress: "10.99.2.1",
		ConnectRetry: time.Second, HoldTime: 9 * time.Second,
		Neighbors:       []Neighbor{{Address: ip("10.99.2.3"), ASN: 65000}},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 60 * time.Second}})
	testFRRExchange(t, s, frr, ip("10.99.2.1"), ip("10.99.2.2"), func(macs ...l2.MAC) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		netnstest.Eventually(t, 10*time.Second, 100*time.Millisecond, "route reflector RIB", func() error {
			out, err := rr.CLI(ctx, "global", "rib", "-a", "evpn")
			if err != nil {
				return fmt.Errorf("gobgp global rib: %w: %s", err, out)
			}
			for _, m := range macs {
				if !strings.Contains(out, m.String()) {
					return fmt.Errorf("%s not in reflector RIB:\n%s", m, out)
				}
			}
			if !strings.Contains(out, "10.99.2.1") || !strings.Contains(out, "[type:multicast]") {
				return fmt.Errorf("our next hop or type-3 route missing:\n%s", out)
			}
			return nil
		})
		out, err := rr.CLI(ctx, "neighbor")
		if err != nil || strings.Count(out, "Establ") != 2 {
			t.Errorf("gobgp neighbor: want 2 established sessions: %v\n%s", err, out)
		}
	})
}

// TestFRRMACMobility: a MAC we advertise is learned behind FRR: FRR
// advertises it with sequence 1, we yield (withdraw ours) and report it as
// remote at FRR's VTEP with sequence 1. A MAC FRR advertises that we then
// learn locally is advertised by us with sequence 1, and FRR points its FDB
// entry to our VTEP.
func TestFRRMACMobility(t *testing.T) {
	netnstest.RequireIsolated(t, "/usr/lib/frr/bgpd", "vtysh")
	frrNS := netnstest.New(t, "frr4")
	netnstest.Link(t, frrNS, "ev-frr4", "10.99.6.1/24", "eth0", "10.99.6.2/24")
	frr := evpntest.StartFRR(t, frrNS, evpntest.FRRConfig{ASN: 65002, RouterID: "10.99.6.2", VTEP: "10.99.6.2",
		VNIs: []uint32{frrVNI}, Neighbors: []evpntest.FRRNeighbor{{Address: "10.99.6.1", ASN: 65001}}})
	s := startSpeaker(t, Config{ASN: 65001, RouterID: ip("10.99.6.1"), ListenAddress: "10.99.6.1",
		ConnectRetry: time.Second, HoldTime: 9 * time.Second,
		Neighbors:       []Neighbor{{Address: ip("10.99.6.2"), ASN: 65002}},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 60 * time.Second}})
	ctx := context.Background()
	ours, theirs := ip("10.99.6.1"), ip("10.99.6.2")
	moving := l2.MustMAC("02:00:00:00:00:41")
	local := LocalState{IMET: []IMET{{VNI: frrVNI, VTEP: ours}},
		MACs: []l2.LocalMAC{{Switch: "tor1", VNI: frrVNI, MAC: moving, VTEP: ours}}}
	if err := s.SetLocal(ctx, local); err != nil {
		t.Fatal(err)
	}
	netnstest.Eventually(t, 30*time.Second, 50*time.Millisecond, "FRR FDB has our MAC",
		fdbCond(frr, map[string]string{moving.String(): ours.String()}, nil))

	// The MAC shows up behind FRR (a dynamic entry: a real learn, not sticky).
	frr.NS.Run("bridge", "fdb", "replace", moving.String(), "dev", fmt.Sprintf("vm%d", frrVNI), "master", "dynamic")
	waitRemote(t, s, 20*time.Second, "FRR's sequence-1 route wins",
		hasMAC(l2.RemoteMAC{VNI: frrVNI, MAC: moving, VTEP: theirs, Seq: 1}))
	if st := s.Stats(); st.LocalWins != 0 {
		t.Errorf("we still advertise the moved MAC: local wins %d", st.LocalWins)
	}
	netnstest.Eventually(t, 10*time.Second, 100*time.Millisecond, "our route withdrawn at FRR", func() error {
		out, err := frr.Vtysh(ctx, "show bgp l2vpn evpn route rd 10.99.6.1:5000 type macip")
		if err != nil || strings.Contains(out, moving.String()) {
			return fmt.Errorf("still present (%v):\n%s", err, out)
		}
		return nil
	})

	// The reverse: FRR's own MAC is learned on our side while FRR still
	// advertises it; we send sequence 1 and FRR moves it to us.
	frrMAC := l2.MustMAC("aa:bb:cc:00:00:42")
	frr.NS.Run("bridge", "fdb", "add", frrMAC.String(), "dev", fmt.Sprintf("vm%d", frrVNI), "master", "dynamic")
	waitRemote(t, s, 20*time.Second, "FRR's MAC", hasMAC(l2.RemoteMAC{VNI: frrVNI, MAC: frrMAC, VTEP: theirs}))
	local.MACs = append(local.MACs, l2.LocalMAC{Switch: "tor1", VNI: frrVNI, MAC: frrMAC, VTEP: ours})
	if err := s.SetLocal(ctx, local); err != nil {
		t.Fatal(err)
	}
	netnstest.Eventually(t, 20*time.Second, 50*time.Millisecond, "FRR FDB points the MAC to us",
		fdbCond(frr, map[string]string{frrMAC.String(): ours.String()}, nil))
	out, _ := frr.Vtysh(ctx, "show bgp l2vpn evpn route rd 10.99.6.1:5000 type macip")
	if !strings.Contains(out, "MM:1") {
		t.Errorf("our route for %s lacks MAC mobility sequence 1 at FRR:\n%s", frrMAC, out)
	}
}
