package dataplane

import (
	"context"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/torstitch/torstitch/vtep/l2"
)

// Learn subscribes to the kernel's bridge FDB notifications and sends a
// Learned for every MAC that appears on or disappears from a binding port
// (and a Gone for a MAC that shows up on a non-binding port of a torswitch
// bridge, i.e. moved behind the VXLAN device). It returns once subscribed;
// the subscription ends with ctx. Events for ports Apply has not programmed
// yet are dropped: call Snapshot after Apply to resynchronise.
func (d *Dataplane) Learn(ctx context.Context, out chan<- Learned) error {
	ch, err := d.subscribe(ctx)
	if err != nil {
		return err
	}
	go func() {
		for {
			for u := range ch {
				ev, ok := d.translate(u.Type == unix.RTM_DELNEIGH, u.Neigh)
				if !ok {
					continue
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
			// The subscription ended (e.g. receive buffer overrun): start a
			// new one, and tell the consumer to resynchronise.
			for ctx.Err() == nil {
				if ch, err = d.subscribe(ctx); err == nil {
					break
				}
				d.log.Warn("FDB resubscription", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			if ctx.Err() != nil {
				return
			}
			select {
			case out <- Learned{Resync: true}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return nil
}

func (d *Dataplane) subscribe(ctx context.Context) (chan netlink.NeighUpdate, error) {
	ch := make(chan netlink.NeighUpdate, 4096)
	opts := netlink.NeighSubscribeOptions{
		ErrorCallback: func(err error) {
			if ctx.Err() == nil {
				d.log.Warn("FDB subscription", "err", err)
			}
		},
		ReceiveBufferSize: 4 << 20,
	}
	if d.opts.NetNS.IsOpen() {
		ns := d.opts.NetNS
		opts.Namespace = &ns
	}
	if err := netlink.NeighSubscribeWithOptions(ch, ctx.Done(), opts); err != nil {
		return nil, fmt.Errorf("subscribing to FDB notifications: %w", err)
	}
	return ch, nil
}

func (d *Dataplane) translate(gone bool, n netlink.Neigh) (Learned, bool) {
	if n.Family != unix.AF_BRIDGE || n.Flags&unix.NTF_SELF != 0 || len(n.HardwareAddr) != 6 {
		return Learned{}, false
	}
	mac := l2.MAC(n.HardwareAddr)
	if mac.ValidateUnicast() != nil {
		return Learned{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.own[mac] {
		return Learned{}, false // a device of the switch itself, not a host
	}
	b, ok := d.ports[n.LinkIndex]
	if !ok {
		vni, inBridge := d.bridges[n.MasterIndex]
		if !inBridge || gone {
			return Learned{}, false
		}
		return Learned{VNI: vni, MAC: mac, Gone: true}, true
	}
	if n.State&unix.NUD_PERMANENT != 0 {
		return Learned{}, false // the port's own address
	}
	return Learned{VNI: b.VNI, MAC: mac, Binding: b.Key(), Gone: gone}, true
}

// Snapshot returns the MACs currently learned on binding ports.
func (d *Dataplane) Snapshot() ([]Learned, error) {
	fdb, err := d.h.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		return nil, fmt.Errorf("listing bridge FDB: %w", err)
	}
	var out []Learned
	for _, n := range fdb {
		if ev, ok := d.translate(false, n); ok && !ev.Gone {
			out = append(out, ev)
		}
	}
	return out, nil
}

// WatchLinks calls changed whenever a link named in ports appears, goes or
// changes, or a torswitch device is deleted behind its back, so that the
// caller reconciles again (e.g. a trunk cabled after start). It returns once
// subscribed; the subscription ends with ctx.
func (d *Dataplane) WatchLinks(ctx context.Context, ports []string, changed func()) error {
	watch := map[string]bool{}
	for _, p := range ports {
		watch[p] = true
	}
	ch := make(chan netlink.LinkUpdate, 256)
	opts := netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			if ctx.Err() == nil {
				d.log.Warn("link subscription", "err", err)
			}
		},
	}
	if d.opts.NetNS.IsOpen() {
		ns := d.opts.NetNS
		opts.Namespace = &ns
	}
	if err := netlink.LinkSubscribeWithOptions(ch, ctx.Done(), opts); err != nil {
		return fmt.Errorf("subscribing to link notifications: %w", err)
	}
	go func() {
		for u := range ch {
			name := u.Attrs().Name
			owned := ownedBridge.MatchString(name) || ownedVxlan.MatchString(name) || ownedVeth.MatchString(name)
			if watch[name] || (owned && u.Header.Type == unix.RTM_DELLINK) {
				changed()
			}
		}
	}()
	return nil
}
