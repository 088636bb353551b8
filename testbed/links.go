package testbed

import (
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/torstitch/torstitch/testbed/clab"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// tempNames returns the host-namespace names a link's veth ends carry
// between creation and the move into their nodes: stable per lab and link,
// so a sweep after a crash finds them.
func tempNames(lab string, l *clab.Link) (string, string) {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%s|%s", lab, l.A, l.B)
	base := fmt.Sprintf("tl%08x", h.Sum32())
	return base + "a", base + "b"
}

// bridgeName is the Linux bridge device inside a bridge node's namespace.
func bridgeName(node string) string {
	if len(node) > 15 {
		return node[:15]
	}
	return node
}

// ensureBridge creates the bridge device of a bridge node.
func (l *Lab) ensureBridge(n *clab.Node) error {
	_, h, err := nsHandle(l.Netns(n.Name))
	if err != nil {
		return err
	}
	defer h.Close()
	name := bridgeName(n.Name)
	br, err := h.LinkByName(name)
	if err != nil {
		if !errors.As(err, new(netlink.LinkNotFoundError)) {
			return fmt.Errorf("looking up bridge %s: %w", name, err)
		}
		br = &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("creating bridge %s in %s: %w", name, n.Name, err)
		}
		l.log.Debug("bridge created", "node", n.Name, "bridge", name)
	}
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("bringing up bridge %s: %w", name, err)
	}
	return nil
}

type endpointSide struct {
	ep   clab.Endpoint
	ns   netns.NsHandle
	h    *netlink.Handle
	link netlink.Link // existing interface, or nil
}

func (l *Lab) openSide(ep clab.Endpoint) (*endpointSide, error) {
	ns, h, err := nsHandle(l.Netns(ep.Node))
	if err != nil {
		return nil, err
	}
	s := &endpointSide{ep: ep, ns: ns, h: h}
	link, err := h.LinkByName(ep.Iface)
	switch {
	case err == nil:
		s.link = link
	case errors.As(err, new(netlink.LinkNotFoundError)):
	default:
		s.close()
		return nil, fmt.Errorf("looking up %s: %w", ep, err)
	}
	return s, nil
}

func (s *endpointSide) close() {
	s.h.Close()
	s.ns.Close()
}

// ensureLink makes the veth pair of one link exist, up, with its MTU; it
// reports whether it had to create it. An existing pair is kept; a half
// pair or foreign interfaces under the endpoint names are replaced.
func (l *Lab) ensureLink(link *clab.Link) (bool, error) {
	a, err := l.openSide(link.A)
	if err != nil {
		return false, err
	}
	defer a.close()
	b, err := l.openSide(link.B)
	if err != nil {
		return false, err
	}
	defer b.close()

	if a.link != nil && b.link != nil && isPeer(a.link, b.link) {
		return false, l.configureEnds(link, a, b)
	}
	for _, s := range []*endpointSide{a, b} {
		if s.link != nil {
			if err := s.h.LinkDel(s.link); err != nil {
				return false, fmt.Errorf("removing stale %s: %w", s.ep, err)
			}
			s.link = nil
		}
	}
	tmpA, tmpB := tempNames(l.Name, link)
	if err := l.st.addTemp(tmpA, tmpB); err != nil {
		return false, err
	}
	host, err := netlink.NewHandle()
	if err != nil {
		return false, fmt.Errorf("netlink handle: %w", err)
	}
	defer host.Close()
	deleteHostLinks(host, tmpA, tmpB)
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: tmpA, MTU: link.MTU},
		PeerName:  tmpB,
	}
	if err := host.LinkAdd(veth); err != nil {
		return false, fmt.Errorf("creating veth %s: %w", link, err)
	}
	for _, m := range []struct {
		tmp  string
		side *endpointSide
	}{{tmpA, a}, {tmpB, b}} {
		tl, err := host.LinkByName(m.tmp)
		if err != nil {
			deleteHostLinks(host, tmpA, tmpB)
			return false, fmt.Errorf("looking up %s: %w", m.tmp, err)
		}
		if err := host.LinkSetNsFd(tl, int(m.side.ns)); err != nil {
			deleteHostLinks(host, tmpA, tmpB)
			return false, fmt.Errorf("moving %s to %s: %w", m.tmp, m.side.ep.Node, err)
		}
		moved, err := m.side.h.LinkByName(m.tmp)
		if err != nil {
			return false, fmt.Errorf("looking up %s in %s: %w", m.tmp, m.side.ep.Node, err)
		}
		if err := m.side.h.LinkSetName(moved, m.side.ep.Iface); err != nil {
			return false, fmt.Errorf("renaming %s to %s: %w", m.tmp, m.side.ep, err)
		}
		if m.side.link, err = m.side.h.LinkByName(m.side.ep.Iface); err != nil {
			return false, fmt.Errorf("looking up %s: %w", m.side.ep, err)
		}
		if err := txChecksumOff(m.side.ns, m.side.ep.Iface); err != nil {
			return false, fmt.Errorf("%s: %w", m.side.ep, err)
		}
	}
	l.log.Debug("link created", "link", link.String())
	return true, l.configureEnds(link, a, b)
}

func isPeer(a, b netlink.Link) bool {
	_, va := a.(*netlink.Veth)
	_, vb := b.(*netlink.Veth)
	return va && vb && a.Attrs().ParentIndex == b.Attrs().Index && b.Attrs().ParentIndex == a.Attrs().Index
}

// configureEnds sets MTU, bridge membership and up state on both ends.
func (l *Lab) configureEnds(link *clab.Link, sides ...*endpointSide) error {
	for _, s := range sides {
		if s.link.Attrs().MTU != link.MTU {
			if err := s.h.LinkSetMTU(s.link, link.MTU); err != nil {
				return fmt.Errorf("mtu of %s: %w", s.ep, err)
			}
		}
		if n := l.Topology.Node(s.ep.Node); n != nil && n.Kind == clab.KindBridge {
			br, err := s.h.LinkByName(bridgeName(n.Name))
			if err != nil {
				return fmt.Errorf("bridge of %s: %w", n.Name, err)
			}
			if s.link.Attrs().MasterIndex != br.Attrs().Index {
				if err := s.h.LinkSetMaster(s.link, br); err != nil {
					return fmt.Errorf("adding %s to bridge: %w", s.ep, err)
				}
			}
		}
		if err := s.h.LinkSetUp(s.link); err != nil {
			return fmt.Errorf("bringing up %s: %w", s.ep, err)
		}
	}
	return nil
}

// deleteHostLinks removes host-namespace interfaces by name, ignoring
// missing ones.
func deleteHostLinks(h *netlink.Handle, names ...string) int {
	n := 0
	for _, name := range names {
		if link, err := h.LinkByName(name); err == nil {
			if h.LinkDel(link) == nil {
				n++
			}
		}
	}
	return n
}
