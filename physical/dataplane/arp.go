package dataplane

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/torstitch/torstitch/vtep/l2"
)

// HostIP is a local host's IP address seen as the sender of an ARP packet
// arriving on a binding port.
type HostIP struct {
	VNI l2.VNI
	MAC l2.MAC
	IP  netip.Addr
}

// arpFilter is a classic BPF socket filter that keeps ARP frames only.
var arpFilter = []unix.SockFilter{
	{Code: 0x28, K: 12},                  // ldh [12]
	{Code: 0x15, Jt: 0, Jf: 1, K: 0x806}, // jeq #ETH_P_ARP
	{Code: 0x06, K: 0xffff},              // ret #65535
	{Code: 0x06, K: 0},                   // ret #0
}

// SnoopARP reports the sender MAC and IP of ARP packets local hosts send into
// binding ports, so that Ucast_Macs_Local can carry ipaddr. It returns once
// the socket is open; it stops with ctx.
func (d *Dataplane) SnoopARP(ctx context.Context, out chan<- HostIP) error {
	fd, err := d.packetSocket()
	if err != nil {
		return err
	}
	tv := unix.NsecToTimeval((500 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return fmt.Errorf("ARP socket timeout: %w", err)
	}
	go func() {
		defer unix.Close(fd)
		buf := make([]byte, 2048)
		for ctx.Err() == nil {
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				d.log.Warn("ARP snooping stopped", "err", err)
				return
			}
			ll, ok := from.(*unix.SockaddrLinklayer)
			if !ok {
				continue
			}
			ev, ok := d.parseARP(ll.Ifindex, buf[:n])
			if !ok {
				continue
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return nil
}

func (d *Dataplane) parseARP(ifindex int, f []byte) (HostIP, bool) {
	// Ethernet (14) + ARP for Ethernet/IPv4 (28).
	if len(f) < 42 || binary.BigEndian.Uint16(f[12:]) != 0x0806 ||
		binary.BigEndian.Uint16(f[14:]) != 1 || binary.BigEndian.Uint16(f[16:]) != 0x0800 || f[18] != 6 || f[19] != 4 {
		return HostIP{}, false
	}
	mac := l2.MAC(f[22:28])
	ip := netip.AddrFrom4([4]byte(f[28:32]))
	if mac.ValidateUnicast() != nil || ip.IsUnspecified() || ip.IsLoopback() || ip.IsMulticast() {
		return HostIP{}, false
	}
	d.mu.Lock()
	b, ok := d.ports[ifindex]
	d.mu.Unlock()
	if !ok {
		return HostIP{}, false
	}
	return HostIP{VNI: b.VNI, MAC: mac, IP: ip}, true
}

// packetSocket opens an ETH_P_ALL packet socket with the ARP filter in the
// dataplane's namespace.
func (d *Dataplane) packetSocket() (int, error) {
	if d.opts.NetNS.IsOpen() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return -1, fmt.Errorf("current netns: %w", err)
		}
		defer orig.Close()
		if err := netns.Set(d.opts.NetNS); err != nil {
			return -1, fmt.Errorf("entering netns: %w", err)
		}
		defer func() {
			if err := netns.Set(orig); err != nil {
				panic(fmt.Sprintf("cannot restore the thread's network namespace: %v", err))
			}
		}()
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return -1, fmt.Errorf("packet socket: %w", err)
	}
	// Outgoing packets would be cloned for the socket before the filter runs.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("PACKET_IGNORE_OUTGOING: %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(arpFilter)), Filter: &arpFilter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("ARP socket filter: %w", err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v)) }
