package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Routing. ADD routes every destination through the insane device, and
// copies through it every route of the main table that leaves by the pod's
// interface inside a destination (the main plugin's gateway and subnet
// routes), so that the more specific route is the insane one too. Each
// copy has a better metric than the route it copies (one less), or, where
// that route has metric 0, the same metric placed in front of it (the
// kernel's prepend: RTM_NEWROUTE with NLM_F_CREATE and without
// NLM_F_EXCL or NLM_F_APPEND), which is where an IPv4 lookup takes it
// from. The main plugin's routes stay as they were: the insane device's
// relay routes again with the pod's interface as output interface
// (kernel/datapath.c), a lookup that skips routes out of other devices, so
// it finds exactly those. Every route ADD makes leaves by the insane
// device, and goes when the device is deleted.

// A route is one that ADD adds through the insane device.
type route struct {
	Dst    netip.Prefix
	Metric uint32
	Src    netip.Addr // the preferred source; invalid for none
}

func (r route) String() string {
	s := fmt.Sprintf("%s metric %d", r.Dst, r.Metric)
	if r.Src.IsValid() {
		s += " src " + r.Src.String()
	}
	return s
}

// A mainRoute is a unicast route of the main table, as read from the kernel.
type mainRoute struct {
	Dst    netip.Prefix
	Metric uint32
	Oif    uint32
}

// ipv6DefaultMetric is the metric the kernel gives an IPv6 route added
// with none.
const ipv6DefaultMetric = 1024

// linkLocal6 holds the IPv6 link-local routes, which are per link and left
// alone.
var linkLocal6 = netip.MustParsePrefix("fe80::/10")

// planRoutes returns the routes to add through the insane device for
// dests, given the main table's routes, the pod interface's index and the
// pod's IPv4 address (the source of the IPv4 routes; invalid if none).
func planRoutes(dests []netip.Prefix, table []mainRoute, podIndex uint32, src4 netip.Addr) []route {
	// The best (lowest) metric of the pod interface's routes, by prefix.
	best := map[netip.Prefix]uint32{}
	for _, r := range table {
		if r.Oif != podIndex {
			continue
		}
		if m, ok := best[r.Dst]; !ok || r.Metric < m {
			best[r.Dst] = r.Metric
		}
	}
	prefixes := map[netip.Prefix]bool{}
	for _, d := range dests {
		prefixes[d] = true
		for p := range best {
			if p.Addr().Is4() == d.Addr().Is4() && p.Bits() >= d.Bits() && d.Contains(p.Addr()) && !linkLocal6.Overlaps(p) {
				prefixes[p] = true
			}
		}
	}
	var out []route
	for p := range prefixes {
		r := route{Dst: p}
		m, ok := best[p]
		switch {
		case !ok && p.Addr().Is4():
			r.Metric = 0
		case !ok:
			r.Metric = ipv6DefaultMetric
		case m > 1 || m == 1 && p.Addr().Is4():
			r.Metric = m - 1
		default:
			// IPv4 metric 0: the same, in front. (IPv6 turns metric 0
			// into 1024, so an IPv6 route of metric 1 cannot be beaten.)
			r.Metric = m
		}
		if p.Addr().Is4() {
			r.Src = src4
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Dst, out[j].Dst
		if a.Addr().Is4() != b.Addr().Is4() {
			return a.Addr().Is4()
		}
		if a.Bits() != b.Bits() {
			return a.Bits() < b.Bits()
		}
		return a.Addr().Less(b.Addr())
	})
	return out
}

func family(p netip.Prefix) uint8 {
	if p.Addr().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// listMain returns the unicast routes of the main table, both families.
func listMain(rt *rtnetlink.Conn) ([]mainRoute, error) {
	var out []mainRoute
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		msgs, err := rt.Route.ListMatch(&rtnetlink.RouteMessage{Family: fam})
		if err != nil {
			if fam == unix.AF_INET6 && errors.Is(err, unix.EAFNOSUPPORT) {
				continue // a kernel without IPv6
			}
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, m := range msgs {
			table := uint32(m.Table)
			if m.Attributes.Table != 0 {
				table = m.Attributes.Table
			}
			if table != unix.RT_TABLE_MAIN || m.Type != unix.RTN_UNICAST || m.Flags&unix.RTM_F_CLONED != 0 {
				continue
			}
			p, ok := prefixOf(m)
			if !ok {
				continue
			}
			out = append(out, mainRoute{Dst: p, Metric: m.Attributes.Priority, Oif: m.Attributes.OutIface})
		}
	}
	return out, nil
}

func prefixOf(m rtnetlink.RouteMessage) (netip.Prefix, bool) {
	var a netip.Addr
	switch {
	case m.Attributes.Dst != nil:
		var ok bool
		if a, ok = netip.AddrFromSlice(m.Attributes.Dst); !ok {
			return netip.Prefix{}, false
		}
		if m.Family == unix.AF_INET {
			a = a.Unmap()
		}
	case m.Family == unix.AF_INET:
		a = netip.IPv4Unspecified()
	case m.Family == unix.AF_INET6:
		a = netip.IPv6Unspecified()
	default:
		return netip.Prefix{}, false
	}
	p, err := a.Prefix(int(m.DstLength))
	return p, err == nil
}

// addRoute adds r through the device with index dev, in front of any
// route of the same prefix and metric.
func addRoute(rt *rtnetlink.Conn, r route, dev uint32) error {
	m := &rtnetlink.RouteMessage{
		Family:    family(r.Dst),
		DstLength: uint8(r.Dst.Bits()),
		Table:     unix.RT_TABLE_MAIN,
		Protocol:  unix.RTPROT_STATIC,
		Scope:     unix.RT_SCOPE_LINK,
		Type:      unix.RTN_UNICAST,
		Attributes: rtnetlink.RouteAttributes{
			OutIface: dev,
			Priority: r.Metric,
		},
	}
	if m.Family == unix.AF_INET6 {
		m.Scope = unix.RT_SCOPE_UNIVERSE
	}
	if r.Dst.Bits() > 0 {
		m.Attributes.Dst = net.IP(r.Dst.Addr().AsSlice())
	}
	if r.Src.IsValid() {
		m.Attributes.Src = net.IP(r.Src.AsSlice())
	}
	_, err := rt.Execute(m, unix.RTM_NEWROUTE, netlink.Request|netlink.Create|netlink.Acknowledge)
	if err != nil {
		return fmt.Errorf("add route %s: %w", r, netlinkError(err))
	}
	return nil
}

// missingRoutes returns the routes of want that the main table does not
// have through the device with index dev.
func missingRoutes(table []mainRoute, want []route, dev uint32) []route {
	have := map[mainRoute]bool{}
	for _, r := range table {
		if r.Oif == dev {
			have[r] = true
		}
	}
	var out []route
	for _, r := range want {
		if !have[mainRoute{Dst: r.Dst, Metric: r.Metric, Oif: dev}] {
			out = append(out, r)
		}
	}
	return out
}

// netlinkError keeps the kernel's extended acknowledgement message.
func netlinkError(err error) error {
	var oe *netlink.OpError
	if errors.As(err, &oe) {
		inner := oe.Err
		var se *os.SyscallError
		if errors.As(inner, &se) {
			inner = se.Err
		}
		if oe.Message != "" {
			return fmt.Errorf("%w: %s", inner, oe.Message)
		}
		return inner
	}
	return err
}
