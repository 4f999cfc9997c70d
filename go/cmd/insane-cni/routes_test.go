package main

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// ptpTable is the main table ptp leaves in a dual-stack pod (eth0 is
// index 2), with a route out of another device (3).
var ptpTable = []mainRoute{
	{Dst: pfx("0.0.0.0/0"), Metric: 0, Oif: 2},
	{Dst: pfx("10.77.1.1/32"), Metric: 0, Oif: 2},
	{Dst: pfx("10.77.1.0/24"), Metric: 0, Oif: 2},
	{Dst: pfx("192.168.0.0/16"), Metric: 0, Oif: 3},
	{Dst: pfx("::/0"), Metric: 1024, Oif: 2},
	{Dst: pfx("fe80::/64"), Metric: 256, Oif: 2},
	{Dst: pfx("2001:db8:1::/64"), Metric: 256, Oif: 2},
}

func TestPlanRoutesEverything(t *testing.T) {
	src := netip.MustParseAddr("10.77.1.5")
	got := planRoutes(defaultDestinations, ptpTable, 2, src)
	want := []route{
		{Dst: pfx("0.0.0.0/0"), Metric: 0, Src: src},
		{Dst: pfx("10.77.1.0/24"), Metric: 0, Src: src},
		{Dst: pfx("10.77.1.1/32"), Metric: 0, Src: src},
		{Dst: pfx("::/0"), Metric: 1023},
		{Dst: pfx("2001:db8:1::/64"), Metric: 255},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

func TestPlanRoutesSome(t *testing.T) {
	table := append([]mainRoute{{Dst: pfx("198.51.100.0/25"), Metric: 100, Oif: 2}, {Dst: pfx("198.51.100.0/25"), Metric: 50, Oif: 2}}, ptpTable...)
	got := planRoutes([]netip.Prefix{pfx("198.51.100.0/24"), pfx("10.0.0.0/8")}, table, 2, netip.Addr{})
	want := []string{"10.0.0.0/8 metric 0", "10.77.1.0/24 metric 0", "198.51.100.0/24 metric 0", "198.51.100.0/25 metric 49", "10.77.1.1/32 metric 0"}
	var s []string
	for _, r := range got {
		s = append(s, r.String())
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	// A destination inside a route's prefix is routed as it is; the wider
	// route is not copied.
	got = planRoutes([]netip.Prefix{pfx("10.77.1.0/28")}, ptpTable, 2, netip.Addr{})
	if len(got) != 2 || got[0].Dst != pfx("10.77.1.0/28") || got[1].Dst != pfx("10.77.1.1/32") {
		t.Errorf("plan for 10.77.1.0/28: %v", got)
	}
}

func TestPlanRoutesIPv6MetricOne(t *testing.T) {
	table := []mainRoute{{Dst: pfx("2001:db8::/32"), Metric: 1, Oif: 2}, {Dst: pfx("2001:db8::/48"), Metric: 2, Oif: 2}}
	got := planRoutes([]netip.Prefix{pfx("2001:db8::/32")}, table, 2, netip.Addr{})
	if len(got) != 2 || got[0].Metric != 1 || got[1].Metric != 1 {
		t.Errorf("plan: %v", got)
	}
}

func TestMissingRoutes(t *testing.T) {
	want := []route{{Dst: pfx("0.0.0.0/0"), Metric: 0}, {Dst: pfx("10.77.1.1/32"), Metric: 0}, {Dst: pfx("::/0"), Metric: 1023}}
	table := append([]mainRoute{
		{Dst: pfx("0.0.0.0/0"), Metric: 0, Oif: 9},
		{Dst: pfx("::/0"), Metric: 1024, Oif: 9}, // the wrong metric
	}, ptpTable...)
	got := missingRoutes(table, want, 9)
	if len(got) != 2 || got[0].Dst != pfx("10.77.1.1/32") || got[1].Dst != pfx("::/0") {
		t.Errorf("missing: %v", got)
	}
	if got := missingRoutes(table, want[:1], 9); len(got) != 0 {
		t.Errorf("missing: %v", got)
	}
}

func TestPrefixOf(t *testing.T) {
	for _, c := range []struct {
		m    rtnetlink.RouteMessage
		want string
	}{
		{rtnetlink.RouteMessage{Family: unix.AF_INET}, "0.0.0.0/0"},
		{rtnetlink.RouteMessage{Family: unix.AF_INET6}, "::/0"},
		{rtnetlink.RouteMessage{Family: unix.AF_INET, DstLength: 24, Attributes: rtnetlink.RouteAttributes{Dst: net.ParseIP("10.1.2.0")}}, "10.1.2.0/24"},
		{rtnetlink.RouteMessage{Family: unix.AF_INET6, DstLength: 64, Attributes: rtnetlink.RouteAttributes{Dst: net.ParseIP("2001:db8::")}}, "2001:db8::/64"},
	} {
		p, ok := prefixOf(c.m)
		if !ok || p.String() != c.want {
			t.Errorf("prefixOf(%+v) = %v, %v, want %s", c.m, p, ok, c.want)
		}
	}
}
