//go:build vmtest

package guest

// Seeded replays while the kernel sends packets of its own through the
// device (issue 23, finding 4): the uapi header's rule that a packet with a
// multicast destination takes no k of a seeded policy.

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

// ownTap captures what a device sends, in the order the device saw it, and
// tells the test's datagrams (IPv4 UDP to one address) from the rest.
type ownTap struct {
	fd   int
	test netip.Addr
	mu   sync.Mutex
	// Of the other packets: those seen between the test's first and last
	// datagram, their kinds (destination and protocol), and whether any
	// had a unicast destination.
	inside, total int
	kinds         map[string]int
	unicast       []string
	seen          int // test datagrams seen so far
	pending       int // other packets seen since the last test datagram
	done          chan struct{}
}

func openOwnTap(t *testing.T, ns, dev, test string) *ownTap {
	t.Helper()
	u := openUDPTap(t, ns, dev, test, false)
	return &ownTap{fd: u.fd, test: u.addr, kinds: map[string]int{}, done: make(chan struct{})}
}

// start reads until nothing has arrived for 500 ms after stop is closed.
func (tap *ownTap) start(stop <-chan struct{}) {
	go func() {
		defer close(tap.done)
		buf := make([]byte, 2048)
		for {
			m, from, err := unix.Recvfrom(tap.fd, buf, 0)
			if err != nil {
				select {
				case <-stop:
					return
				default:
					continue
				}
			}
			ll, ok := from.(*unix.SockaddrLinklayer)
			if !ok || ll.Pkttype != unix.PACKET_OUTGOING || m < 20 {
				continue
			}
			tap.add(buf[:m])
		}
	}()
}

func (tap *ownTap) add(b []byte) {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	var dst netip.Addr
	var proto byte
	switch b[0] >> 4 {
	case 4:
		dst, proto = netip.AddrFrom4([4]byte(b[16:20])), b[9]
		if dst == tap.test && proto == unix.IPPROTO_UDP {
			tap.seen++
			tap.inside += tap.pending
			tap.pending = 0
			return
		}
	case 6:
		if len(b) < 40 {
			return
		}
		dst, proto = netip.AddrFrom16([16]byte(b[24:40])), b[6]
		// MLD goes after a hop-by-hop header (router alert).
		if proto == 0 && len(b) >= 48 && b[40] == unix.IPPROTO_ICMPV6 {
			proto = unix.IPPROTO_ICMPV6
		}
		if proto == unix.IPPROTO_ICMPV6 {
			off := 40
			if b[6] == 0 {
				off += 8 * (int(b[41]) + 1)
			}
			if off < len(b) {
				proto = b[off] // the ICMPv6 type
				kind := fmt.Sprintf("icmpv6 type %d to %s", proto, dst)
				tap.other(kind, dst)
				return
			}
		}
	default:
		tap.other(fmt.Sprintf("version %d", b[0]>>4), netip.Addr{})
		return
	}
	tap.other(fmt.Sprintf("proto %d to %s", proto, dst), dst)
}

func (tap *ownTap) other(kind string, dst netip.Addr) {
	tap.total++
	if tap.seen > 0 {
		tap.pending++
	}
	tap.kinds[kind]++
	if !dst.IsMulticast() {
		tap.unicast = append(tap.unicast, kind)
	}
}

func (tap *ownTap) summary() string {
	var ks []string
	for k, n := range tap.kinds {
		ks = append(ks, fmt.Sprintf("%d× %s", n, k))
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// TestKernelModesSeededOwnTraffic: a fresh policy `burst 90 4 seed 11`,
// 6,000 datagrams, twice, while the kernel sends packets of its own through
// insane0 (IPv6 switched on and off, each time a router solicitation;
// IPv4 and IPv6 groups joined and left over and over, each an IGMP or MLD
// report). insane0 is NOARP, so it sends no DAD or solicited-node MLD. Both runs deliver exactly what genl.Predictor
// predicts for 6,000 packets, so the two drop sets are equal: the kernel's
// packets, all multicast (the capture checks it), take no k.
func TestKernelModesSeededOwnTraffic(t *testing.T) {
	CheckKmsg(t)
	const n = 6000
	seed := uint64(11)
	p := genl.Burst(90, 4, &seed)
	want := predicted(seed, p, n)
	tp, c := kTopo(t, nil)

	var runs [2][]uint64
	for i := range runs {
		Sysctl(t, tp.Borea, "net.ipv6.conf.insane0.disable_ipv6", "1")
		if err := c.SetPolicy("insane0", p); err != nil {
			t.Fatal(err)
		}
		if err := c.ConfigureDevice("insane0", genl.Config{ResetStats: true}); err != nil {
			t.Fatal(err)
		}
		tap := openOwnTap(t, tp.Borea, "insane0", tp.MorganaIP)
		stopTap := make(chan struct{})
		tap.start(stopTap)

		// The kernel's own packets, from before the first datagram to
		// after the last.
		stop := make(chan struct{})
		churned := make(chan error, 1)
		go func() {
			churned <- ownChurn(tp.Borea, "insane0", i, stop)
		}()
		WaitFor(t, 10*time.Second, "the kernel's first packet on insane0", func() bool {
			tap.mu.Lock()
			defer tap.mu.Unlock()
			return tap.total > 0
		})
		sent, got := tp.UDP(t, vmnet.SendOptions{Count: n, Interval: 250 * time.Microsecond})
		close(stop)
		if err := <-churned; err != nil {
			t.Fatal(err)
		}
		close(stopTap)
		<-tap.done
		if sent.Errors != 0 {
			t.Fatalf("%d sends refused, first: %v", sent.Errors, sent.FirstError)
		}
		s := kDevice(t, c, "insane0").Stats
		decided := s.RelayedPackets + s.DropPolicy + s.DropNoRoute + s.DropLowerRefused
		tap.mu.Lock()
		t.Logf("run %d: %d of %d datagrams arrived, the predictor says %d; insane0 decided %d packets (%d of its own), "+
			"the capture saw %d of the test's and %d others, %d of them between the test's first and last: %s",
			i+1, len(got.Seqs), n, len(want), decided, decided-n, tap.seen, tap.total, tap.inside, tap.summary())
		if len(tap.unicast) > 0 {
			t.Errorf("run %d: the kernel sent unicast through insane0: %v", i+1, tap.unicast)
		}
		if tap.inside == 0 {
			t.Errorf("run %d: the kernel sent no packet of its own during the datagrams: nothing tested", i+1)
		}
		tap.mu.Unlock()
		if !equalU64(got.Seqs, want) {
			t.Errorf("run %d: %d of %d datagrams arrived, the predictor says %d; first difference at %d",
				i+1, len(got.Seqs), n, len(want), firstDiff(got.Seqs, want))
		}
		runs[i] = got.Seqs
	}
	if !equalU64(runs[0], runs[1]) {
		t.Errorf("the two runs' drop sets differ: %d and %d arrived, first difference at %d",
			len(runs[0]), len(runs[1]), firstDiff(runs[0], runs[1]))
	}
}

// ownChurn makes the kernel send packets of its own on dev until stop is
// closed: IPv6 switched on and off (router solicitations), and IPv4 and
// IPv6 groups joined and left on dev (IGMP and MLD reports, sent by the
// kernel from its timers; IGMP's have no owning socket).
func ownChurn(ns, dev string, run int, stop <-chan struct{}) error {
	v6 := func(on bool) error {
		v := "1"
		if on {
			v = "0"
		}
		return sysctl(ns, "net.ipv6.conf."+dev+".disable_ipv6", v)
	}
	if err := v6(true); err != nil {
		return err
	}
	for j := 1; ; j++ {
		select {
		case <-stop:
			return nil
		default:
		}
		if j%10 == 0 {
			if err := v6(false); err != nil {
				return err
			}
			if err := v6(true); err != nil {
				return err
			}
		}
		var conns []*net.UDPConn
		err := vmnet.Do(ns, func() error {
			ifi, err := net.InterfaceByName(dev)
			if err != nil {
				return err
			}
			for _, g := range []string{
				fmt.Sprintf("239.77.%d.%d", run, j%250+1),
				fmt.Sprintf("ff15::5eed:%x:%x", run, j),
			} {
				c, err := net.ListenMulticastUDP("udp", ifi, &net.UDPAddr{IP: net.ParseIP(g), Port: 5999})
				if err != nil {
					return fmt.Errorf("joining %s on %s: %w", g, dev, err)
				}
				conns = append(conns, c)
			}
			return nil
		})
		time.Sleep(20 * time.Millisecond)
		for _, c := range conns {
			c.Close()
		}
		if err != nil {
			return err
		}
	}
}
