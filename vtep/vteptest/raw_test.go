package vteptest

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
	"github.com/torstitch/torstitch/vtep/plan"
	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// TestRawInsertCounted inserts rows with Raw while CountRows watches, and
// checks both against vtep-ctl.
func TestRawInsertCounted(t *testing.T) {
	s := StartOVSDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := CountRows(ctx, s.Endpoint(), vtepdb.UcastMacsRemoteTable, vtepdb.UcastMacsRemoteColumnMAC)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.N() != 0 {
		t.Fatalf("empty database: counted %d", c.N())
	}
	d := &plan.Desired{LogicalSwitches: []plan.LogicalSwitch{{VNI: 5000}, {VNI: 5001}}}
	vteps := []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")}
	const n = 1000
	for i := range n {
		d.RemoteMACs = append(d.RemoteMACs, l2.RemoteMAC{VNI: l2.VNI(5000 + i%2), MAC: l2.MAC{2, 0, 0, 0, byte(i >> 8), byte(i)}, VTEP: vteps[i%3]})
	}
	r, err := DialRaw(ctx, s.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.AddSwitches(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := r.InsertRemote(ctx, d.RemoteMACs, 300); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx, n); err != nil {
		t.Fatal(err)
	}
	if got := len(strings.Fields(s.VtepCtl("--data=bare", "--no-headings", "--columns=_uuid", "list", "Ucast_Macs_Remote"))); got != n {
		t.Fatalf("vtep-ctl lists %d rows, want %d", got, n)
	}
	if got := len(strings.Fields(s.VtepCtl("--data=bare", "--no-headings", "--columns=dst_ip", "list", "Physical_Locator"))); got != len(vteps) {
		t.Fatalf("%d locators, want %d", got, len(vteps))
	}
	if got := s.VtepCtl("list-remote-macs", "vni5001"); !strings.Contains(got, "02:00:00:00:03:e7 -> vxlan_over_ipv4/198.51.100.1") {
		t.Fatalf("vni5001 lacks the last MAC:\n%s", got)
	}
	s.VtepCtl("clear-remote-macs", "vni5000")
	if err := c.WaitFor(ctx, "vni5000's rows gone", func(got int) bool { return got == n/2 }); err != nil {
		t.Fatalf("after clearing vni5000: %v", err)
	}
}
