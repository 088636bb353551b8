package nstest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/torstitch/torstitch/internal/netnstest"
)

// PacketSocket is a raw AF_PACKET socket bound to one interface of a namespace.
type PacketSocket struct{ fd int }

// OpenPacketSocket opens a raw socket on dev inside namespace ns.
func OpenPacketSocket(ns *netnstest.Netns, dev string) (*PacketSocket, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns.Name)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return nil, err
	}
	defer netns.Set(orig) //nolint:errcheck // restoring the thread's namespace
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding packet socket to %s: %w", dev, err)
	}
	return &PacketSocket{fd: fd}, nil
}

// Send writes one frame.
func (s *PacketSocket) Send(frame []byte) error {
	_, err := unix.Write(s.fd, frame)
	return err
}

// Close closes the socket.
func (s *PacketSocket) Close() error { return unix.Close(s.fd) }

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Frame builds a broadcast ARP request from src, tagged with vlan when vlan > 0.
func Frame(src net.HardwareAddr, vlan int, senderIP, targetIP net.IP) []byte {
	b := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	b = append(b, src...)
	if vlan > 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, uint16(vlan))
	}
	b = binary.BigEndian.AppendUint16(b, 0x0806)
	b = append(b, 0, 1, 8, 0, 6, 4, 0, 1)
	b = append(b, src...)
	b = append(b, senderIP.To4()...)
	b = append(b, 0, 0, 0, 0, 0, 0)
	b = append(b, targetIP.To4()...)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

// Collect reads frames until no frame arrives for idle.
func (s *PacketSocket) Collect(idle time.Duration) ([][]byte, error) {
	tv := unix.NsecToTimeval(idle.Nanoseconds())
	if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, err
	}
	var out [][]byte
	buf := make([]byte, 65536)
	for {
		n, err := unix.Read(s.fd, buf)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				return out, nil
			}
			return out, err
		}
		out = append(out, append([]byte(nil), buf[:n]...))
	}
}

// CollectIncoming is Collect without the frames the socket's interface
// sent (the test's own among them).
func (s *PacketSocket) CollectIncoming(idle time.Duration) ([][]byte, error) {
	tv := unix.NsecToTimeval(idle.Nanoseconds())
	if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, err
	}
	var out [][]byte
	buf := make([]byte, 65536)
	for {
		n, from, err := unix.Recvfrom(s.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				return out, nil
			}
			return out, err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		out = append(out, append([]byte(nil), buf[:n]...))
	}
}

// IsARPRequestFor reports whether frame is an ARP request for target.
func IsARPRequestFor(frame []byte, target net.IP) bool {
	if len(frame) < 42 || binary.BigEndian.Uint16(frame[12:]) != 0x0806 {
		return false
	}
	return binary.BigEndian.Uint16(frame[20:]) == 1 && net.IP(frame[38:42]).Equal(target.To4())
}
