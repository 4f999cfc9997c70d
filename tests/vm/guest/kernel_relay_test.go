//go:build vmtest

package guest

// The relay under real stacks (issue 12): NAT in the device's netns and in
// the lower's, a kernel without IPv6, malformed raw frames, the lower as the
// packet's device, routes that must leave by the lower, MTU rules, the
// order of checks, lower swaps, repeated IFLA_INFO_DATA, drop reasons,
// loops and nested relays. Each test names the bug it reproduces; counters
// are read by name from ethtool -S, the kernel's own list.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// rlCounters returns every insane counter of dev by its ethtool name
// (TestEthtool checks that the list is complete).
func rlCounters(t testing.TB, ns, dev string) map[string]uint64 {
	t.Helper()
	return ethtoolStats(t, ns, dev)
}

// rlDelta returns after - before for every counter.
func rlDelta(before, after map[string]uint64) map[string]uint64 {
	d := make(map[string]uint64, len(after))
	for k, v := range after {
		d[k] = v - before[k]
	}
	return d
}

// rlPackets is the number of packets the counters account for: relayed
// plus every drop cause.
func rlPackets(c map[string]uint64) uint64 {
	var n uint64
	for k, v := range c {
		if k == "relayed_packets" || strings.HasPrefix(k, "drop_") {
			n += v
		}
	}
	return n
}

// rlExpect fails unless each named counter of d has the given value and
// every other counter (bytes aside) is 0.
func rlExpect(t testing.TB, what string, d map[string]uint64, want map[string]uint64) {
	t.Helper()
	for k, v := range d {
		if k == "relayed_bytes" {
			continue
		}
		if v != want[k] {
			t.Errorf("%s: %s = %d, want %d (all: %v)", what, k, v, want[k], d)
		}
	}
}

// rlFlow sends count numbered datagrams from namespace from to sendTo
// ("ip"; the receiver's port is added) and receives them in namespace to on
// listenOn. It returns how many arrived.
func rlFlow(t testing.TB, from, sendTo, to, listenOn string, count int) int {
	t.Helper()
	udpRun++
	run := uint64(os.Getpid())<<32 | udpRun
	r, err := vmnet.Listen(to, net.JoinHostPort(listenOn, "0"), run)
	if err != nil {
		t.Fatalf("listening in %s: %v", to, err)
	}
	port := strconv.Itoa(r.Addr().Port)
	sent, err := vmnet.Send(from, net.JoinHostPort(sendTo, port), vmnet.SendOptions{Count: count, Run: run})
	if err != nil {
		r.Close()
		t.Fatalf("sending from %s: %v", from, err)
	}
	if sent.Errors > 0 {
		t.Errorf("%d of %d sends refused: %v", sent.Errors, count, sent.FirstError)
	}
	r.Wait(count, 500*time.Millisecond, 10*time.Second)
	return len(r.Close().Seqs)
}

// rlNft loads an nftables ruleset into namespace ns; the table is deleted
// with the namespace.
func rlNft(t testing.TB, ns, ruleset string) {
	t.Helper()
	f, err := os.CreateTemp("", "nft-*.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(ruleset); err != nil {
		t.Fatal(err)
	}
	f.Close()
	RunIn(t, ns, "nft", "-f", f.Name())
}

var rlCounterRE = regexp.MustCompile(`counter packets (\d+) bytes \d+[^\n]* comment "([^"]+)"`)

// rlNftCounters returns the packet counts of the commented counters of
// table family/name in namespace ns.
func rlNftCounters(t testing.TB, ns, family, table string) map[string]uint64 {
	t.Helper()
	out := RunIn(t, ns, "nft", "list", "table", family, table)
	m := make(map[string]uint64)
	for _, sub := range rlCounterRE.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseUint(sub[1], 10, 64)
		m[sub[2]] = v
	}
	return m
}

// rlSplitTopo is the other design: insane0 lives in namespace "apps" with
// address 10.9.0.1 while its lower, borea's veth0, stays in borea.
func rlSplitTopo(t *testing.T) (*Topo, *genl.Client) {
	t.Helper()
	Sysctl(t, "", "net.core.rmem_max", "16777216")
	tp := NewTopo(t)
	NewNetns(t, "apps")
	c := kDial(t, tp.Borea)
	if err := c.AddLink("insane0", tp.BoreaDev, nil); err != nil {
		t.Fatalf("AddLink: %v", err)
	}
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "netns", "apps")
	Sysctl(t, "apps", "net.ipv6.conf.insane0.disable_ipv6", "1")
	RunIn(t, "apps", "ip", "addr", "add", "10.9.0.1/32", "dev", "insane0")
	RunIn(t, "apps", "ip", "link", "set", "insane0", "up")
	RunIn(t, "apps", "ip", "route", "add", tp.MorganaIP+"/32", "dev", "insane0")
	// Morgana's replies to 10.9.0.1 go back to borea (not through insane).
	RunIn(t, tp.Morgana, "ip", "route", "add", "10.9.0.0/24", "via", tp.BoreaIP)
	return tp, kDial(t, "apps")
}

// TestRelayNATSameNetns: an OUTPUT DNAT whose new destination is routed via
// insane0, and a POSTROUTING SNAT on insane0, the shape of a kube-proxy
// ClusterIP. The relay used to run OUTPUT again: NAT re-routed the packet
// without the lower as output interface, back into insane0, until "Dead
// loop on virtual device insane0".
func TestRelayNATSameNetns(t *testing.T) {
	CheckKmsg(t)
	tp, _ := kTopo(t, nil)
	const service = "198.51.100.7"
	RunIn(t, tp.Borea, "ip", "route", "add", service+"/32", "dev", "insane0")
	rlNft(t, tp.Borea, `table ip svc {
	chain out {
		type nat hook output priority -100
		ip daddr `+service+` dnat to `+tp.MorganaIP+`
	}
	chain post {
		type nat hook postrouting priority 100
		oifname "insane0" ip daddr `+tp.MorganaIP+` snat to 192.0.2.50
	}
}`)
	rlNft(t, tp.Morgana, `table ip seen {
	chain in {
		type filter hook input priority 0
		ip saddr 192.0.2.50 udp dport 1024-65535 counter comment "snat"
	}
}`)
	before := rlCounters(t, tp.Borea, "insane0")
	const n = 200
	got := rlFlow(t, tp.Borea, service, tp.Morgana, tp.MorganaIP, n)
	d := rlDelta(before, rlCounters(t, tp.Borea, "insane0"))
	if got != n {
		t.Errorf("%d of %d DNAT'd datagrams arrived", got, n)
	}
	rlExpect(t, "DNAT+SNAT through insane0", d, map[string]uint64{"relayed_packets": n})
	if c := rlNftCounters(t, tp.Morgana, "ip", "seen")["snat"]; c != n {
		t.Errorf("morgana saw %d datagrams from the SNAT address, want %d", c, n)
	}
}

// TestRelayNATLowerNetns: insane0 in one netns, its lower in another. NAT in
// the device's netns (OUTPUT DNAT) and in the lower's (an OUTPUT DNAT that
// the relayed packet meets there, from a socket bound to insane0, whose
// index means nothing in the lower's netns) each relay once and arrive.
func TestRelayNATLowerNetns(t *testing.T) {
	CheckKmsg(t)
	tp, _ := rlSplitTopo(t)
	const service, lowerService = "198.51.100.7", "192.0.2.77"
	RunIn(t, "apps", "ip", "route", "add", service+"/32", "dev", "insane0")
	RunIn(t, "apps", "ip", "route", "add", lowerService+"/32", "dev", "insane0")
	rlNft(t, "apps", `table ip svc {
	chain out {
		type nat hook output priority -100
		ip daddr `+service+` dnat to `+tp.MorganaIP+`
	}
}`)
	rlNft(t, tp.Borea, `table ip svc {
	chain out {
		type nat hook output priority -100
		ip daddr `+lowerService+` counter dnat to `+tp.MorganaIP+` comment "lower-dnat"
	}
}`)

	before := rlCounters(t, "apps", "insane0")
	const n = 200
	if got := rlFlow(t, "apps", service, tp.Morgana, tp.MorganaIP, n); got != n {
		t.Errorf("DNAT in the device's netns: %d of %d arrived", got, n)
	}
	d := rlDelta(before, rlCounters(t, "apps", "insane0"))
	rlExpect(t, "DNAT in the device's netns", d, map[string]uint64{"relayed_packets": n})

	// A socket bound to insane0 (SO_BINDTODEVICE) sends to lowerService.
	before = rlCounters(t, "apps", "insane0")
	udpRun++
	run := uint64(os.Getpid())<<32 | udpRun
	r, err := vmnet.Listen(tp.Morgana, net.JoinHostPort(tp.MorganaIP, "0"), run)
	if err != nil {
		t.Fatal(err)
	}
	var sendErr error
	err = vmnet.Do("apps", func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "insane0"); err != nil {
			return err
		}
		to := &unix.SockaddrInet4{Port: r.Addr().Port, Addr: [4]byte(net.ParseIP(lowerService).To4())}
		buf := make([]byte, vmnet.MinSize)
		for i := 0; i < n; i++ {
			rlNumber(buf, run, uint64(i))
			if err := unix.Sendto(fd, buf, 0, to); err != nil && sendErr == nil {
				sendErr = err
			}
		}
		return nil
	})
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	if sendErr != nil {
		t.Errorf("bound socket: %v", sendErr)
	}
	r.Wait(n, 500*time.Millisecond, 10*time.Second)
	if got := len(r.Close().Seqs); got != n {
		t.Errorf("DNAT in the lower's netns, bound socket: %d of %d arrived", got, n)
	}
	d = rlDelta(before, rlCounters(t, "apps", "insane0"))
	rlExpect(t, "DNAT in the lower's netns", d, map[string]uint64{"relayed_packets": n})
	// A nat chain sees the first packet of each conntrack flow: one here.
	if c := rlNftCounters(t, tp.Borea, "ip", "svc")["lower-dnat"]; c != 1 {
		t.Errorf("the lower's OUTPUT nat chain saw %d new flows, want 1", c)
	}
}

// rlNumber writes vmnet's datagram header (magic, run, seq) into buf.
func rlNumber(buf []byte, run, seq uint64) {
	copy(buf, "insaneVM")
	binary.BigEndian.PutUint64(buf[8:], run)
	binary.BigEndian.PutUint64(buf[16:], seq)
}

// rlRawSend sends each frame on dev in namespace ns with AF_PACKET
// (SOCK_DGRAM, so the frame is the network header on), as protocol proto,
// and returns how many the kernel took.
func rlRawSend(t testing.TB, ns, dev string, proto uint16, frames [][]byte) int {
	t.Helper()
	ifindex := GetLink(t, ns, dev).Ifindex
	sent := 0
	err := vmnet.Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifindex}
		for _, f := range frames {
			if err := unix.Sendto(fd, f, 0, to); err == nil {
				sent++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sent
}

// rlIPv4 builds an IPv4/UDP packet from src to dst with a payload of n
// bytes, correct in every field.
func rlIPv4(src, dst string, n int) []byte {
	b := make([]byte, 20+8+n)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64
	b[9] = unix.IPPROTO_UDP
	copy(b[12:16], net.ParseIP(src).To4())
	copy(b[16:20], net.ParseIP(dst).To4())
	binary.BigEndian.PutUint16(b[20:], 40000)
	binary.BigEndian.PutUint16(b[22:], 9)
	binary.BigEndian.PutUint16(b[24:], uint16(8+n))
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	return b
}

// rlIPv6 builds an IPv6/UDP packet from src to dst with n payload bytes.
func rlIPv6(src, dst string, n int) []byte {
	b := make([]byte, 40+8+n)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(8+n))
	b[6] = unix.IPPROTO_UDP
	b[7] = 64
	copy(b[8:24], net.ParseIP(src).To16())
	copy(b[24:40], net.ParseIP(dst).To16())
	binary.BigEndian.PutUint16(b[40:], 40000)
	binary.BigEndian.PutUint16(b[42:], 9)
	binary.BigEndian.PutUint16(b[44:], uint16(8+n))
	return b
}

// TestRelayMalformedHeaders: raw senders' IPv4 and IPv6 headers that
// ip_rcv_core() and ipv6_rcv() would refuse are dropped as malformed. Only
// 20 bytes and the version used to be checked; ihl and tot_len were trusted.
func TestRelayMalformedHeaders(t *testing.T) {
	CheckKmsg(t)
	tp, _ := kTopo(t, nil)
	good4 := rlIPv4(tp.BoreaIP, tp.MorganaIP, 32)
	mut4 := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good4...)) }
	v4 := map[string][]byte{
		"19 bytes":          good4[:19],
		"ihl 4":             mut4(func(b []byte) []byte { b[0] = 0x44; return b }),
		"ihl 0":             mut4(func(b []byte) []byte { b[0] = 0x40; return b }),
		"ihl past the end":  mut4(func(b []byte) []byte { b[0] = 0x4f; return b[:40] }),
		"tot_len short":     mut4(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], uint16(len(b)-1)); return b }),
		"tot_len long":      mut4(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], uint16(len(b)+1)); return b }),
		"tot_len below ihl": mut4(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 16); return b[:16+4] }),
		"tot_len 0":         mut4(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 0); return b }),
		"version 6":         mut4(func(b []byte) []byte { b[0] = 0x65; return b }),
	}
	good6 := rlIPv6("2001:db8::1", "2001:db8::2", 32)
	mut6 := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good6...)) }
	v6 := map[string][]byte{
		"39 bytes":         good6[:39],
		"payload_len 0":    mut6(func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], 0); return b }),
		"payload_len long": mut6(func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], uint16(len(b))); return b }),
		"truncated":        good6[:45],
		"version 4":        mut6(func(b []byte) []byte { b[0] = 0x40; return b }),
	}
	const reps = 10
	for _, fam := range []struct {
		name   string
		proto  uint16
		frames map[string][]byte
	}{{"IPv4", unix.ETH_P_IP, v4}, {"IPv6", unix.ETH_P_IPV6, v6}} {
		for name, f := range fam.frames {
			before := rlCounters(t, tp.Borea, "insane0")
			var frames [][]byte
			for i := 0; i < reps; i++ {
				frames = append(frames, f)
			}
			sent := rlRawSend(t, tp.Borea, "insane0", fam.proto, frames)
			rlExpect(t, fam.name+" "+name, rlDelta(before, rlCounters(t, tp.Borea, "insane0")), map[string]uint64{"drop_malformed": uint64(sent)})
			if sent != reps {
				t.Errorf("%s %s: %d of %d frames sent", fam.name, name, sent, reps)
			}
		}
	}
	// The same header, correct, is relayed.
	before := rlCounters(t, tp.Borea, "insane0")
	sent := rlRawSend(t, tp.Borea, "insane0", unix.ETH_P_IP, [][]byte{good4, good4, good4})
	rlExpect(t, "a correct raw IPv4 frame", rlDelta(before, rlCounters(t, tp.Borea, "insane0")), map[string]uint64{"relayed_packets": uint64(sent)})
}

// TestRelayIPv6DisabledKernel: on a kernel booted with ipv6.disable=1, one
// IPv6 frame sent with AF_PACKET on an attached device used to oops in
// ip6_pol_route(). make vm-test runs this test in a second boot with that
// option; in the main boot it has nothing to test.
func TestRelayIPv6DisabledKernel(t *testing.T) {
	if _, err := os.Stat("/proc/sys/net/ipv6"); err == nil {
		t.Skip("IPv6 is enabled: make vm-test runs this test in a boot with ipv6.disable=1")
	}
	CheckKmsg(t)
	Sysctl(t, "", "net.core.rmem_max", "16777216")
	tp := &Topo{Borea: "borea", Morgana: "morgana", BoreaDev: "veth0", MorganaDev: "veth1", BoreaIP: "192.0.2.1", MorganaIP: "192.0.2.2"}
	NewNetns(t, tp.Borea)
	NewNetns(t, tp.Morgana)
	AddVeth(t, Veth{NS1: tp.Borea, Name1: tp.BoreaDev, Addr1: tp.BoreaIP + "/24", NS2: tp.Morgana, Name2: tp.MorganaDev, Addr2: tp.MorganaIP + "/24"})
	RunIn(t, tp.Borea, "ip", "link", "add", "link", tp.BoreaDev, "name", "insane0", "type", "insane")
	RunIn(t, tp.Borea, "ip", "addr", "add", tp.BoreaIP+"/32", "dev", "insane0")
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "up")
	RunIn(t, tp.Borea, "ip", "route", "add", tp.MorganaIP+"/32", "dev", "insane0")

	before := rlCounters(t, tp.Borea, "insane0")
	frames := [][]byte{rlIPv6("2001:db8::1", "2001:db8::2", 16), rlIPv6("fe80::1", "ff02::1", 0)}
	for i := 0; i < 5; i++ {
		frames = append(frames, frames[0])
	}
	sent := rlRawSend(t, tp.Borea, "insane0", unix.ETH_P_IPV6, frames)
	rlExpect(t, "IPv6 frames without IPv6", rlDelta(before, rlCounters(t, tp.Borea, "insane0")), map[string]uint64{"drop_not_ip": uint64(sent)})
	if sent != len(frames) {
		t.Errorf("%d of %d frames sent", sent, len(frames))
	}
	if got := rlFlow(t, tp.Borea, tp.MorganaIP, tp.Morgana, tp.MorganaIP, 50); got != 50 {
		t.Errorf("IPv4 still relays: %d of 50 arrived", got)
	}
}

// TestRelayLowerIsTheDevice: the lower's netns used to see insane0, a device
// of another netns, as the relayed packet's device in POSTROUTING (and an
// NFQUEUE there pinned insane0). The lower is the device now.
func TestRelayLowerIsTheDevice(t *testing.T) {
	CheckKmsg(t)
	tp, _ := rlSplitTopo(t)
	rlNft(t, tp.Borea, `table inet seen {
	chain post {
		type filter hook postrouting priority 0
		ip daddr `+tp.MorganaIP+` meta iifname "insane0" counter comment "foreign"
		ip daddr `+tp.MorganaIP+` meta iifname "`+tp.BoreaDev+`" counter comment "lower"
	}
}`)
	const n = 100
	if got := rlFlow(t, "apps", tp.MorganaIP, tp.Morgana, tp.MorganaIP, n); got != n {
		t.Errorf("%d of %d arrived", got, n)
	}
	c := rlNftCounters(t, tp.Borea, "inet", "seen")
	if c["foreign"] != 0 || c["lower"] != n {
		t.Errorf("POSTROUTING in the lower's netns saw the packets from insane0 %d times and from %s %d times; want 0 and %d", c["foreign"], tp.BoreaDev, c["lower"], n)
	}
}

// TestRelayRouteLeavesByLower: a destination local to the lower's netns is
// never delivered to that netns's own stack. IPv6 used to be: its route
// lookup took the local route although the lower was the output
// interface; it is no-route now. IPv4's lookup with an output interface
// assumes the destination on-link and relays it out of the lower. And a
// VRF master cannot be a lower (the route would choose among its ports).
func TestRelayRouteLeavesByLower(t *testing.T) {
	CheckKmsg(t)
	tp, _ := rlSplitTopo(t)
	RunIn(t, tp.Borea, "ip", "addr", "add", "2001:db8::1/64", "dev", tp.BoreaDev, "nodad")
	RunIn(t, tp.Borea, "ip", "link", "add", "loc0", "type", "dummy")
	RunIn(t, tp.Borea, "ip", "link", "set", "loc0", "up")
	RunIn(t, tp.Borea, "ip", "addr", "add", "2001:db8:99::1/128", "dev", "loc0", "nodad")
	RunIn(t, tp.Borea, "ip", "addr", "add", "198.18.99.1/32", "dev", "loc0")
	Sysctl(t, "apps", "net.ipv6.conf.insane0.disable_ipv6", "0")
	RunIn(t, "apps", "ip", "addr", "add", "2001:db8:9::1/128", "dev", "insane0", "nodad")
	RunIn(t, "apps", "ip", "-6", "route", "add", "2001:db8:99::1/128", "dev", "insane0")
	RunIn(t, "apps", "ip", "route", "add", "198.18.99.1/32", "dev", "insane0")

	const n = 50
	before := rlCounters(t, "apps", "insane0")
	if got := rlFlow(t, "apps", "2001:db8:99::1", tp.Borea, "2001:db8:99::1", n); got != 0 {
		t.Errorf("IPv6 local to the lower's netns: %d of %d delivered there", got, n)
	}
	d := rlDelta(before, rlCounters(t, "apps", "insane0"))
	// IPv6 on insane0 adds its own MLD reports, multicast: no-route too.
	if d["drop_no_route"] < n || d["relayed_packets"] != 0 {
		t.Errorf("IPv6 local to the lower's netns: %v, want %d no-route and nothing relayed", d, n)
	}

	before = rlCounters(t, "apps", "insane0")
	if got := rlFlow(t, "apps", "198.18.99.1", tp.Borea, "198.18.99.1", n); got != 0 {
		t.Errorf("IPv4 local to the lower's netns: %d of %d delivered there", got, n)
	}
	d = rlDelta(before, rlCounters(t, "apps", "insane0"))
	if d["relayed_packets"] < n {
		t.Errorf("IPv4 on-link out of the lower: %v, want %d relayed", d, n)
	}

	RunIn(t, tp.Borea, "ip", "link", "add", "vrf0", "type", "vrf", "table", "10")
	_, err := TryRunIn(tp.Borea, "ip", "link", "add", "link", "vrf0", "name", "insane1", "type", "insane")
	if err == nil || !strings.Contains(err.Error(), "L3 master device (VRF)") {
		t.Errorf("a VRF as lower: %v, want the L3 master refusal", err)
	}
}

// TestRelayMTU: IFLA_MTU at creation is honoured up to the lower's MTU, a
// larger one is refused, ip link set cannot go above the lower's, and a
// chosen MTU is lowered only when the lower's falls below it.
func TestRelayMTU(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	ns := NewNetns(t, "mtu")
	RunIn(t, ns, "ip", "link", "add", "d0", "mtu", "1500", "type", "dummy")
	mtu := func(dev string) int { return GetLink(t, ns, dev).MTU }

	RunIn(t, ns, "ip", "link", "add", "link", "d0", "name", "follow0", "type", "insane")
	RunIn(t, ns, "ip", "link", "add", "link", "d0", "name", "chosen0", "mtu", "1400", "type", "insane")
	if m := mtu("chosen0"); m != 1400 {
		t.Errorf("created with mtu 1400: %d", m)
	}
	if m := mtu("follow0"); m != 1500 {
		t.Errorf("created without mtu: %d, want the lower's 1500", m)
	}
	_, err := TryRunIn(ns, "ip", "link", "add", "link", "d0", "name", "big0", "mtu", "1600", "type", "insane")
	if err == nil || !strings.Contains(err.Error(), "above the lower device's MTU") {
		t.Errorf("created with mtu 1600 on a 1500 lower: %v", err)
	}
	_, err = TryRunIn(ns, "ip", "link", "set", "chosen0", "mtu", "1501")
	if err == nil || !strings.Contains(err.Error(), "greater than device maximum") {
		t.Errorf("ip link set mtu 1501 on a 1500 lower: %v", err)
	}
	if m := mtu("chosen0"); m != 1400 {
		t.Errorf("after a refused change: %d", m)
	}

	steps := []struct{ lower, follow, chosen int }{
		{1450, 1450, 1400}, // chosen stays, follower follows
		{1300, 1300, 1300}, // both must come down
		{9000, 9000, 1300}, // chosen stays down
	}
	for _, s := range steps {
		RunIn(t, ns, "ip", "link", "set", "d0", "mtu", strconv.Itoa(s.lower))
		if f, c := mtu("follow0"), mtu("chosen0"); f != s.follow || c != s.chosen {
			t.Errorf("lower mtu %d: follower %d, chosen %d; want %d, %d", s.lower, f, c, s.follow, s.chosen)
		}
	}
	RunIn(t, ns, "ip", "link", "set", "chosen0", "mtu", "8000")
	if m := mtu("chosen0"); m != 8000 {
		t.Errorf("ip link set mtu 8000 on a 9000 lower: %d", m)
	}
}

// TestRelayDetachedBeforePolicy: every packet to a detached device counts as
// no-lower, and none consumes an index of the seeded sequence (the policy
// used to run first).
func TestRelayDetachedBeforePolicy(t *testing.T) {
	CheckKmsg(t)
	Sysctl(t, "", "net.core.rmem_max", "16777216")
	tp := NewTopo(t)
	c := kDial(t, tp.Borea)
	seed := uint64(9)
	p := genl.Percent(50, &seed)
	if err := c.AddLink("insane0", "", &p); err != nil {
		t.Fatal(err)
	}
	tp.RouteViaInsane(t, "insane0")
	before := rlCounters(t, tp.Borea, "insane0")
	const n = 100
	if got := rlFlow(t, tp.Borea, tp.MorganaIP, tp.Morgana, tp.MorganaIP, n); got != 0 {
		t.Errorf("detached: %d arrived", got)
	}
	rlExpect(t, "detached", rlDelta(before, rlCounters(t, tp.Borea, "insane0")), map[string]uint64{"drop_no_lower": n})

	if err := c.ConfigureDevice("insane0", genl.Config{Lower: tp.BoreaDev}); err != nil {
		t.Fatal(err)
	}
	udpRun++
	run := uint64(os.Getpid())<<32 | udpRun
	r, err := vmnet.Listen(tp.Morgana, net.JoinHostPort(tp.MorganaIP, "0"), run)
	if err != nil {
		t.Fatal(err)
	}
	const m = 200
	if _, err := vmnet.Send(tp.Borea, net.JoinHostPort(tp.MorganaIP, strconv.Itoa(r.Addr().Port)), vmnet.SendOptions{Count: m, Run: run}); err != nil {
		t.Fatal(err)
	}
	want := 0
	for k := uint64(0); k < m; k++ {
		if genl.Relays(seed, k, p.PercentUnits()) {
			want++
		}
	}
	r.Wait(want, 500*time.Millisecond, 10*time.Second)
	got := r.Close()
	for k := uint64(0); k < m; k++ {
		if genl.Relays(seed, k, p.PercentUnits()) != got.Has(k) {
			t.Fatalf("after attaching, datagram %d: arrived %v, the seeded sequence from k=0 says %v", k, got.Has(k), !got.Has(k))
		}
	}
}

// TestRelaySwapLowerNoGap: replacing the lower under traffic never leaves
// the device without one (the old lower used to be unpublished first).
func TestRelaySwapLowerNoGap(t *testing.T) {
	CheckKmsg(t)
	tp, c := kTopo(t, nil)
	AddVeth(t, Veth{NS1: tp.Borea, Name1: "vethb0", Addr1: "198.18.0.1/24", NS2: tp.Morgana, Name2: "vethb1", Addr2: "198.18.0.2/24"})
	before := rlCounters(t, tp.Borea, "insane0")
	snd := ttSend(t, tp.Borea, []string{tp.MorganaIP + ":9"}, 0, -1, 0)
	swaps := ttSize(200, 2000)
	for i := 0; i < swaps; i++ {
		lower := "vethb0"
		if i%2 == 1 {
			lower = tp.BoreaDev
		}
		if err := c.ConfigureDevice("insane0", genl.Config{Lower: lower}); err != nil {
			t.Fatalf("swap %d to %s: %v", i, lower, err)
		}
	}
	snd.Stop()
	d := rlDelta(before, rlCounters(t, tp.Borea, "insane0"))
	if d["drop_no_lower"] != 0 {
		t.Errorf("%d packets found no lower during %d swaps", d["drop_no_lower"], swaps)
	}
	if d["relayed_packets"] == 0 {
		t.Errorf("nothing relayed during the swaps: %v", d)
	}
	Figure(t, "lower swaps", uint64(swaps))
	Figure(t, "datagrams during swaps", uint64(snd.attempted.Load()))
}

// TestRelayRepeatedInfoData: rtnetlink keeps the last of two IFLA_INFO_DATA,
// and only the first used to be validated strictly.
func TestRelayRepeatedInfoData(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	Run(t, "ip", "link", "add", "rd0", "type", "dummy")
	t.Cleanup(func() { TryRun("ip", "link", "del", "rd0") })
	c := kRtnlDial(t)
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, "rins1")
	ae.Uint32(unix.IFLA_LINK, uint32(GetLink(t, "", "rd0").Ifindex))
	ae.Nested(unix.IFLA_LINKINFO, func(li *netlink.AttributeEncoder) error {
		li.String(unix.IFLA_INFO_KIND, uapi.LinkKind)
		li.Nested(unix.IFLA_INFO_DATA, func(d *netlink.AttributeEncoder) error {
			d.Uint32(uapi.PolicyAMode, uapi.ModePass)
			return nil
		})
		li.Nested(unix.IFLA_INFO_DATA, func(d *netlink.AttributeEncoder) error {
			d.Uint32(uapi.PolicyAMode, uapi.ModePass)
			d.Uint32(uapi.PolicyAMax+1, 1) // unknown
			return nil
		})
		return nil
	})
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_NEWLINK, Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Excl},
		Data:   append(make([]byte, unix.SizeofIfInfomsg), b...),
	})
	kRefused(t, "two IFLA_INFO_DATA", err, unix.EINVAL, "IFLA_INFO_DATA is given more than once")
	if _, err := TryGetLink("", "rins1"); err == nil {
		t.Error("the refused request created rins1")
	}
}

// TestRelayDropReasons: drops carry the kernel's drop reasons, so dropwatch
// and perf trace users see them (they were plain kfree_skb()).
func TestRelayDropReasons(t *testing.T) {
	CheckKmsg(t)
	tp, _ := kTopo(t, nil)
	tr := "/sys/kernel/debug/tracing"
	// The runner enables the event at boot (trace_event=skb:kfree_skb):
	// turning it on here would patch kernel text under the running test.
	if on, err := os.ReadFile(tr + "/events/skb/kfree_skb/enable"); err != nil || strings.TrimSpace(string(on)) != "1" {
		t.Fatalf("the kfree_skb tracepoint is not on (%q, %v): the runner turns it on with trace_event=skb:kfree_skb", on, err)
	}
	if err := os.WriteFile(tr+"/trace", nil, 0o644); err != nil {
		t.Fatal(err)
	}

	rlRawSend(t, tp.Borea, "insane0", 0x88b5, [][]byte{[]byte("not an IP packet")})
	rlRawSend(t, tp.Borea, "insane0", unix.ETH_P_IP, [][]byte{rlIPv4(tp.BoreaIP, "224.0.0.9", 8)})
	rlRawSend(t, tp.Borea, "insane0", unix.ETH_P_IP, [][]byte{rlIPv4(tp.BoreaIP, tp.MorganaIP, 8)[:19]})
	out, err := os.ReadFile(tr + "/trace")
	if err != nil {
		t.Fatal(err)
	}
	// 6.1 prints the location as a hashed pointer, the call site's return
	// address: where the compiler makes the free a tail call, that is
	// insane_xmit()'s caller, so it says nothing stable about insane's
	// code; the reasons are what dropwatch and perf trace users read.
	for _, want := range []struct{ proto, reason string }{
		{"34997", "UNHANDLED_PROTO"}, {"2048", "IP_OUTNOROUTES"}, {"2048", "IP_INHDR"},
	} {
		m := regexp.MustCompile(`guest\.test-\d+ .* kfree_skb: skbaddr=\S+ protocol=` + want.proto + ` location=(\S+) reason: ` + want.reason + `\n`).FindSubmatch(out)
		if m == nil {
			t.Errorf("no kfree_skb of protocol %s with reason %s in the trace:\n%s", want.proto, want.reason, out)
		}
	}
}

// TestRelayLoopCaught: an IPIP tunnel whose remote is routed through the
// insane device that stacks on it sends every packet back into that device.
// The loop used to run to the core's recursion limit ("Dead loop on virtual
// device"); it is dropped at the first return and counted as a loop.
// Stacking that would close a cycle is refused outright.
func TestRelayLoopCaught(t *testing.T) {
	m := MarkKmsg(t)
	defer m.Check(t)
	tp := NewTopo(t)
	RunIn(t, tp.Borea, "ip", "link", "add", "ipip0", "type", "ipip", "local", tp.BoreaIP, "remote", "203.0.113.9")
	RunIn(t, tp.Borea, "ip", "link", "set", "ipip0", "up")
	c := kDial(t, tp.Borea)
	if err := c.AddLink("insane0", "ipip0", nil); err != nil {
		t.Fatal(err)
	}
	Sysctl(t, tp.Borea, "net.ipv6.conf.insane0.disable_ipv6", "1")
	RunIn(t, tp.Borea, "ip", "addr", "add", tp.BoreaIP+"/32", "dev", "insane0")
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "up")
	RunIn(t, tp.Borea, "ip", "route", "add", "203.0.113.9/32", "dev", "insane0")
	RunIn(t, tp.Borea, "ip", "route", "add", "198.51.100.1/32", "dev", "insane0")

	before := rlCounters(t, tp.Borea, "insane0")
	const n = 20
	rlFlow(t, tp.Borea, "198.51.100.1", tp.Borea, tp.BoreaIP, n)
	d := rlDelta(before, rlCounters(t, tp.Borea, "insane0"))
	rlExpect(t, "the tunnel loop", d, map[string]uint64{"relayed_packets": n, "drop_loop": n})

	// A duplicated packet that meets the loop is counted once: its copy,
	// which would meet the same loop, is not sent ("Duplicate" in the
	// uapi header).
	if err := c.ConfigureDevice("insane0", genl.Config{Policy: &genl.Policy{Mode: genl.ModePass, Duplicate: 100}}); err != nil {
		t.Fatal(err)
	}
	before = rlCounters(t, tp.Borea, "insane0")
	rlFlow(t, tp.Borea, "198.51.100.1", tp.Borea, tp.BoreaIP, n)
	d = rlDelta(before, rlCounters(t, tp.Borea, "insane0"))
	rlExpect(t, "the tunnel loop, duplicate 100", d, map[string]uint64{"relayed_packets": n, "drop_loop": n})
	for _, msg := range m.Since(t) {
		if strings.Contains(msg, "Dead loop") {
			t.Errorf("kernel log: %s", msg)
		}
	}

	if err := c.AddLink("insane1", "insane0", nil); err != nil {
		t.Fatal(err)
	}
	err := c.ConfigureDevice("insane0", genl.Config{Lower: "insane1"})
	if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), "stacked on this device") {
		t.Errorf("insane0 on insane1 on insane0: %v, want EBUSY and the loop message", err)
	}
}

// TestRelayNested: four insane devices stacked on one another each relay
// every packet once; each relay's flow key lives in its own frame.
func TestRelayNested(t *testing.T) {
	CheckKmsg(t)
	tp := NewTopo(t)
	c := kDial(t, tp.Borea)
	lower := tp.BoreaDev
	var devs []string
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("nest%d", i)
		if err := c.AddLink(name, lower, nil); err != nil {
			t.Fatalf("AddLink %s on %s: %v", name, lower, err)
		}
		Sysctl(t, tp.Borea, "net.ipv6.conf."+name+".disable_ipv6", "1")
		RunIn(t, tp.Borea, "ip", "link", "set", name, "up")
		devs = append(devs, name)
		lower = name
	}
	RunIn(t, tp.Borea, "ip", "addr", "add", tp.BoreaIP+"/32", "dev", lower)
	RunIn(t, tp.Borea, "ip", "route", "add", tp.MorganaIP+"/32", "dev", lower)
	befores := make([]map[string]uint64, len(devs))
	for i, d := range devs {
		befores[i] = rlCounters(t, tp.Borea, d)
	}
	const n = 200
	if got := rlFlow(t, tp.Borea, tp.MorganaIP, tp.Morgana, tp.MorganaIP, n); got != n {
		t.Errorf("%d of %d arrived through 4 stacked devices", got, n)
	}
	for i, d := range devs {
		rlExpect(t, d, rlDelta(befores[i], rlCounters(t, tp.Borea, d)), map[string]uint64{"relayed_packets": n})
	}
}

// rlGatewayPair makes namespaces ns and peer, joined by a veth (l0 in ns,
// p0 in peer) on 10.<n>.0.0/24 and 2001:db8:<n>::/64 (ns .1, peer .2), and
// insane0 on l0, down.
func rlGatewayPair(t *testing.T, ns, peer string, n int) {
	t.Helper()
	NewNetns(t, ns)
	NewNetns(t, peer)
	AddVeth(t, Veth{NS1: ns, Name1: "l0", Addr1: fmt.Sprintf("10.%d.0.1/24", n),
		NS2: peer, Name2: "p0", Addr2: fmt.Sprintf("10.%d.0.2/24", n)})
	Sysctl(t, ns, "net.ipv6.conf.l0.disable_ipv6", "0")
	Sysctl(t, peer, "net.ipv6.conf.p0.disable_ipv6", "0")
	RunIn(t, ns, "ip", "addr", "add", fmt.Sprintf("2001:db8:%d::1/64", n), "dev", "l0", "nodad")
	RunIn(t, peer, "ip", "addr", "add", fmt.Sprintf("2001:db8:%d::2/64", n), "dev", "p0", "nodad")
	RunIn(t, ns, "ip", "link", "add", "link", "l0", "name", "insane0", "type", "insane")
}

// rlGatewayRoutes routes 198.51.100.0/24 and v6 through insane0 in ns, and
// sends the relay's lookups (oif l0) to table 77 by a policy rule that the
// sockets' own lookups never match.
func rlGatewayRoutes(t *testing.T, ns, v6 string) {
	t.Helper()
	RunIn(t, ns, "ip", "route", "add", "198.51.100.0/24", "dev", "insane0")
	RunIn(t, ns, "ip", "-6", "route", "add", v6, "dev", "insane0")
	RunIn(t, ns, "ip", "rule", "add", "oif", "l0", "lookup", "77", "pref", "100")
	RunIn(t, ns, "ip", "-6", "rule", "add", "oif", "l0", "lookup", "77", "pref", "100")
}

// TestRelayRouteCacheFollowsChanges: the relay remembers routes per CPU
// (kernel/route.c), and every change that would change a fresh lookup is
// seen by the next packet. The relay's lookups (oif l0) go to table 77 by a
// policy rule that the sockets' own lookups never match; the peer counts
// what reaches its address, the only gateway that answers. A gateway
// replaced, put back and removed, and routes that differ only by the
// packet's mark, sent interleaved through one cache slot, must each be
// followed packet by packet.
func TestRelayRouteCacheFollowsChanges(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	ns, peer := "rcache", "rcpeer"
	rlGatewayPair(t, ns, peer, 77)
	RunIn(t, ns, "ip", "link", "set", "insane0", "up")
	Sysctl(t, ns, "net.ipv6.conf.insane0.disable_ipv6", "0")
	RunIn(t, ns, "ip", "addr", "add", "198.51.100.1/32", "dev", "insane0")
	RunIn(t, ns, "ip", "addr", "add", "2001:db8:78::1/128", "dev", "insane0", "nodad")
	rlGatewayRoutes(t, ns, "2001:db8:79::/64")
	// Only frames addressed to the peer's MAC reach its PREROUTING.
	rlNft(t, peer, "table inet cnt {\n chain in {\n  type filter hook prerouting priority 0;\n"+
		"  ip daddr 198.51.100.9 counter comment \"v4\"\n"+
		"  ip6 daddr 2001:db8:79::9 counter comment \"v6\"\n }\n}\n")

	const n = 20
	send := func(dst string, count int) {
		t.Helper()
		sent, err := vmnet.Send(ns, dst, vmnet.SendOptions{Count: count})
		if err != nil {
			t.Fatalf("sending to %s: %v", dst, err)
		}
		if sent.Errors > 0 {
			t.Fatalf("sending to %s: %d refused: %v", dst, sent.Errors, sent.FirstError)
		}
	}
	// step sends n datagrams and checks what insane counted and how many
	// reached the peer's address.
	step := func(what, fam, dst string, relayed, noRoute, arrived uint64) {
		t.Helper()
		before, pb := rlCounters(t, ns, "insane0"), rlNftCounters(t, peer, "inet", "cnt")
		send(dst, n)
		// Neighbour resolution may hold packets briefly.
		var got uint64
		WaitFor(t, 5*time.Second, what, func() bool {
			got = rlNftCounters(t, peer, "inet", "cnt")[fam] - pb[fam]
			return got >= arrived
		})
		if arrived == 0 {
			time.Sleep(300 * time.Millisecond)
			got = rlNftCounters(t, peer, "inet", "cnt")[fam] - pb[fam]
		}
		d := rlDelta(before, rlCounters(t, ns, "insane0"))
		// IPv6 on insane0 adds its own multicast reports: no-route too.
		if d["relayed_packets"] != relayed || d["drop_no_route"] < noRoute || got != arrived {
			t.Errorf("%s: insane %v, peer got %d; want %d relayed, %d no-route, %d at the peer",
				what, d, got, relayed, noRoute, arrived)
		}
	}
	for _, f := range []struct{ fam, v, dst, prefix, gw, absent string }{
		{"v4", "-4", "198.51.100.9:9", "198.51.100.0/24", "10.77.0.2", "10.77.0.3"},
		{"v6", "-6", "[2001:db8:79::9]:9", "2001:db8:79::/64", "2001:db8:77::2", "2001:db8:77::3"},
	} {
		RunIn(t, ns, "ip", f.v, "route", "add", f.prefix, "via", f.gw, "dev", "l0", "table", "77")
		step(f.fam+" via the peer", f.fam, f.dst, n, 0, n)
		step(f.fam+" via the peer, the route remembered", f.fam, f.dst, n, 0, n)
		RunIn(t, ns, "ip", f.v, "route", "replace", f.prefix, "via", f.absent, "dev", "l0", "table", "77")
		step(f.fam+" via an absent gateway", f.fam, f.dst, n, 0, 0)
		RunIn(t, ns, "ip", f.v, "route", "replace", f.prefix, "via", f.gw, "dev", "l0", "table", "77")
		step(f.fam+" via the peer again", f.fam, f.dst, n, 0, n)
		RunIn(t, ns, "ip", f.v, "route", "del", f.prefix, "table", "77")
		if f.fam == "v4" {
			// IPv4 assumes on-link for a lookup with an output interface.
			step("v4 route removed: on-link, unanswered", f.fam, f.dst, n, 0, 0)
		} else {
			step("v6 route removed: no route out of l0", f.fam, f.dst, 0, n, 0)
		}
	}

	// Packets with mark 7 are routed through the absent gateway, the
	// others through the peer; sent alternately. Every counter is checked
	// exactly: IPv6 goes off on insane0 first, so that the kernel's own
	// router solicitations and MLD reports (no-route) stop, and the
	// counters are read once they have stood still.
	Sysctl(t, ns, "net.ipv6.conf.insane0.disable_ipv6", "1")
	rlQuiet(t, ns, "insane0")
	RunIn(t, ns, "ip", "route", "add", "198.51.100.0/24", "via", "10.77.0.2", "dev", "l0", "table", "77")
	RunIn(t, ns, "ip", "rule", "add", "fwmark", "7", "oif", "l0", "lookup", "78", "pref", "90")
	RunIn(t, ns, "ip", "route", "add", "198.51.100.0/24", "via", "10.77.0.3", "dev", "l0", "table", "78")
	rlNft(t, ns, "table ip mk {\n chain out {\n  type route hook output priority mangle;\n"+
		"  udp dport 7777 meta mark set 7\n }\n}\n")
	before, pb := rlCounters(t, ns, "insane0"), rlNftCounters(t, peer, "inet", "cnt")
	for i := 0; i < n; i++ {
		send("198.51.100.9:7777", 1)
		send("198.51.100.9:7778", 1)
	}
	WaitFor(t, 5*time.Second, "unmarked packets at the peer", func() bool {
		return rlNftCounters(t, peer, "inet", "cnt")["v4"]-pb["v4"] >= n
	})
	time.Sleep(300 * time.Millisecond)
	if got := rlNftCounters(t, peer, "inet", "cnt")["v4"] - pb["v4"]; got != n {
		t.Errorf("marks 7 and 0 interleaved: %d at the peer, want the %d unmarked", got, n)
	}
	rlExpect(t, "marks 7 and 0 interleaved", rlDelta(before, rlCounters(t, ns, "insane0")),
		map[string]uint64{"relayed_packets": 2 * n})
}

// rlQuiet waits until no counter of dev in ns has moved for 300 ms.
func rlQuiet(t testing.TB, ns, dev string) {
	t.Helper()
	prev := rlCounters(t, ns, dev)
	WaitFor(t, 10*time.Second, dev+"'s counters to stand still for 300 ms", func() bool {
		time.Sleep(300 * time.Millisecond)
		cur := rlCounters(t, ns, dev)
		same := len(cur) == len(prev)
		for k, v := range cur {
			same = same && prev[k] == v
		}
		prev = cur
		return same
	})
}

// rlTCP sends size bytes over one TCP connection from namespace from to a
// sink listening in namespace to on addr, and fails unless all arrive.
func rlTCP(t testing.TB, from, to, addr string, size int) {
	t.Helper()
	var ln net.Listener
	if err := vmnet.Do(to, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(addr, "0"))
		return err
	}); err != nil {
		t.Fatalf("listening in %s: %v", to, err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	var c net.Conn
	if err := vmnet.Do(from, func() (err error) {
		c, err = net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		return err
	}); err != nil {
		t.Fatalf("connecting from %s: %v", from, err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 64<<10)
	for sent := 0; sent < size; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			c.Close()
			t.Fatalf("sending: %v", err)
		}
	}
	c.Close()
	select {
	case n := <-got:
		if n != int64(size) {
			t.Fatalf("the sink received %d of %d bytes", n, size)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the transfer did not finish")
	}
}

// TestRelayGSO: under pass, TCP's GSO packets are relayed whole and counted
// as the wire packets they stand for; under any other policy each segment
// is decided on its own, and a transfer still completes.
func TestRelayGSO(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	ns := NewNetns(t, "gso")
	peer := NewNetns(t, "gsopeer")
	AddVeth(t, Veth{NS1: ns, Name1: "l0", Addr1: "10.78.0.1/24", NS2: peer, Name2: "p0", Addr2: "10.78.0.2/24"})
	RunIn(t, ns, "ip", "link", "add", "link", "l0", "name", "insane0", "type", "insane")
	RunIn(t, ns, "ip", "link", "set", "insane0", "up")
	RunIn(t, ns, "ip", "route", "add", "10.78.0.2/32", "dev", "insane0")
	Sysctl(t, ns, "net.ipv6.conf.l0.disable_ipv6", "1")
	Sysctl(t, ns, "net.ipv6.conf.insane0.disable_ipv6", "1")
	// No ARP on l0 during the counts.
	mac := strings.TrimSpace(RunIn(t, peer, "cat", "/sys/class/net/p0/address"))
	RunIn(t, ns, "ip", "neigh", "replace", "10.78.0.2", "lladdr", mac, "dev", "l0", "nud", "permanent")
	if k := RunIn(t, ns, "ethtool", "-k", "insane0"); !strings.Contains(k, "tcp-segmentation-offload: on") {
		t.Fatalf("insane0 does not offer TSO:\n%s", k)
	}
	lowerTx := func() uint64 {
		v, err := strconv.ParseUint(strings.TrimSpace(RunIn(t, ns, "cat", "/sys/class/net/l0/statistics/tx_packets")), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	const size = 8 << 20
	for _, c := range []struct {
		policy []string
		whole  bool
	}{
		{[]string{"mode", "pass"}, true},
		{[]string{"mode", "percent", "99"}, false},
		{[]string{"mode", "time", "1s", "1ms"}, false},
	} {
		what := strings.Join(c.policy, " ")
		RunIn(t, ns, append([]string{"insane", "link", "set", "insane0"}, c.policy...)...)
		before, tx0 := rlCounters(t, ns, "insane0"), lowerTx()
		rlTCP(t, ns, peer, "10.78.0.2", size)
		d, tx := rlDelta(before, rlCounters(t, ns, "insane0")), lowerTx()-tx0
		relayed := d["relayed_packets"]
		// 8 MB in segments of at most 1448 bytes: at least 5794 of them.
		if relayed < size/1448 {
			t.Errorf("%s: %d wire packets relayed, want at least %d", what, relayed, size/1448)
		}
		if c.whole && 2*tx > relayed {
			t.Errorf("%s: %d wire packets relayed in %d lower transmits: GSO packets were cut", what, relayed, tx)
		}
		// l0's own chatter (none expected: IPv6 off, a permanent
		// neighbour) may add a transmit or two, never remove one.
		if !c.whole && (tx < relayed || tx > relayed+2) {
			t.Errorf("%s: %d wire packets relayed in %d lower transmits: want one decision per segment", what, relayed, tx)
		}
		if strings.Contains(what, "percent") && d["drop_policy"] == 0 {
			t.Errorf("%s: no segment dropped (%v)", what, d)
		}
		t.Logf("%s: %d wire packets relayed in %d lower transmits, %d dropped by policy", what, relayed, tx, d["drop_policy"])
	}
}
