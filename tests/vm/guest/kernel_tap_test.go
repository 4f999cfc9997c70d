//go:build vmtest

package guest

// The article's observation: a capture on insane0 sees every packet the
// protocol layers send, before the decision; a capture on the lower sees
// only the relayed ones.

import (
	"net/netip"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

// udpTap is an AF_PACKET capture on one device, as tcpdump -i DEV sees it,
// that counts the IPv4 UDP datagrams of one direction for one address:
// outgoing ones to addr, or incoming ones (to this host) from addr.
type udpTap struct {
	fd       int
	addr     netip.Addr
	incoming bool
	done     chan int
}

// kOpenTap counts the datagrams dev sends to dst.
func kOpenTap(t *testing.T, ns, dev, dst string) *udpTap { return openUDPTap(t, ns, dev, dst, false) }

// rxOpenTap counts the datagrams dev receives from src.
func rxOpenTap(t *testing.T, ns, dev, src string) *udpTap { return openUDPTap(t, ns, dev, src, true) }

func openUDPTap(t *testing.T, ns, dev, addr string, incoming bool) *udpTap {
	t.Helper()
	ifindex := GetLink(t, ns, dev).Ifindex
	tap := &udpTap{addr: netip.MustParseAddr(addr), incoming: incoming, done: make(chan int, 1)}
	err := vmnet.Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		tap.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(500 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex})
	})
	if err != nil {
		t.Fatalf("capture on %s: %v", dev, err)
	}
	t.Cleanup(func() { unix.Close(tap.fd) })
	return tap
}

// start counts until nothing has arrived for 500 ms after stop is closed,
// then sends the count on done.
func (tap *udpTap) start(stop <-chan struct{}) {
	pkttype, off := uint8(unix.PACKET_OUTGOING), 16 // destination address
	if tap.incoming {
		pkttype, off = unix.PACKET_HOST, 12 // source address
	}
	go func() {
		buf := make([]byte, 2048)
		n := 0
		for {
			m, from, err := unix.Recvfrom(tap.fd, buf, 0)
			if err != nil {
				select {
				case <-stop:
					tap.done <- n
					return
				default:
					continue
				}
			}
			ll, ok := from.(*unix.SockaddrLinklayer)
			if !ok || ll.Pkttype != pkttype || m < 20 || buf[0]>>4 != 4 || buf[9] != unix.IPPROTO_UDP {
				continue
			}
			if netip.AddrFrom4([4]byte(buf[off:off+4])) == tap.addr {
				n++
			}
		}
	}()
}

func TestKernelCaptureBeforeDecision(t *testing.T) {
	CheckKmsg(t)
	const n = 2000
	seed := uint64(11)
	p := genl.Percent(50, &seed)
	tp, c := kTopo(t, &p)

	onInsane := kOpenTap(t, tp.Borea, "insane0", tp.MorganaIP)
	onLower := kOpenTap(t, tp.Borea, tp.BoreaDev, tp.MorganaIP)
	stop := make(chan struct{})
	onInsane.start(stop)
	onLower.start(stop)

	_, got := tp.UDP(t, vmnet.SendOptions{Count: n})
	close(stop)
	seenInsane, seenLower := <-onInsane.done, <-onLower.done

	s := kDevice(t, c, "insane0").Stats
	if seenInsane != n {
		t.Errorf("a capture on insane0 saw %d of %d datagrams", seenInsane, n)
	}
	if uint64(seenLower) != s.RelayedPackets || seenLower != len(got.Seqs) {
		t.Errorf("a capture on %s saw %d datagrams; insane relayed %d, morgana received %d",
			tp.BoreaDev, seenLower, s.RelayedPackets, len(got.Seqs))
	}
	t.Logf("insane0 saw %d, %s saw %d (relayed %d)", seenInsane, tp.BoreaDev, seenLower, s.RelayedPackets)
}
