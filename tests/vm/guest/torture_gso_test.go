//go:build vmtest

package guest

// Torture for GSO: packets with user-space GSO fields (AF_PACKET with a
// virtio-net header) of every shape, and TCP's own GSO packets while the
// policy flips between pass, which takes them whole, and policies that
// decide each segment. The kernel log must stay clean and every frame be
// accounted for.

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

// gsoTCP4 is an IPv4/TCP packet from src to dst with n payload bytes and
// correct IPv4 lengths and checksum; the TCP checksum is left to offload.
func gsoTCP4(src, dst string, n int) []byte {
	b := rlIPv4(src, dst, 12+n) // UDP's 8 bytes + 12 = a 20-byte TCP header
	b[9] = unix.IPPROTO_TCP
	b[10], b[11] = 0, 0
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	tcp := b[20:40]
	for i := range tcp {
		tcp[i] = 0
	}
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 9)
	tcp[12] = 5 << 4
	tcp[13] = 0x18 // PSH, ACK
	return b
}

// vnetHdr is struct virtio_net_hdr.
func vnetHdr(flags, gsoType uint8, hdrLen, gsoSize, csumStart, csumOffset uint16) []byte {
	h := make([]byte, 10)
	h[0], h[1] = flags, gsoType
	binary.NativeEndian.PutUint16(h[2:], hdrLen)
	binary.NativeEndian.PutUint16(h[4:], gsoSize)
	binary.NativeEndian.PutUint16(h[6:], csumStart)
	binary.NativeEndian.PutUint16(h[8:], csumOffset)
	return h
}

func TestTortureRawGSO(t *testing.T) {
	CheckKmsg(t)
	p := genl.Percent(90, nil)
	tp, _ := kTopo(t, &p)
	n := ttSize(2000, 20000)
	seed := uint64(0x650)
	r := rand.New(rand.NewPCG(seed, seed))
	t.Logf("frames %d, generator seed %#x", n, seed)

	ourDrops := func(c map[string]uint64) uint64 { return rlPackets(c) - c["relayed_packets"] }
	before, lb := rlCounters(t, tp.Borea, "insane0"), GetLink(t, tp.Borea, "insane0").Stats64.TX
	ifindex := GetLink(t, tp.Borea, "insane0").Ifindex
	accepted := 0
	err := vmnet.Do(tp.Borea, func() error {
		// PACKET_VNET_HDR wants SOCK_RAW; insane0 has no link-layer
		// header, so a raw frame is the IP packet.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return err
		}
		to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifindex}
		sizes := []uint16{0, 1, 8, 100, 536, 1400, 1460, 9000}
		for i := 0; i < n; i++ {
			pkt := gsoTCP4(tp.BoreaIP, tp.MorganaIP, r.IntN(8000))
			flags, typ := uint8(1), uint8(1) // NEEDS_CSUM, TCPV4
			hdrLen, start, off := uint16(40), uint16(20), uint16(16)
			gsoSize := sizes[r.IntN(len(sizes))]
			switch r.IntN(8) {
			case 0:
				typ = uint8(r.IntN(256))
			case 1:
				hdrLen = uint16(r.IntN(128))
			case 2:
				start, off = uint16(r.IntN(64)), uint16(r.IntN(64))
			case 3:
				flags = uint8(r.IntN(4))
			case 4:
				typ = 5 // UDP_L4 on a TCP packet
			case 5:
				pkt = pkt[:r.IntN(len(pkt)+1)]
			}
			if r.IntN(8) == 0 && len(pkt) > 0 {
				pkt[r.IntN(len(pkt))] ^= 1 << r.IntN(8)
			}
			buf := append(vnetHdr(flags, typ, hdrLen, gsoSize, start, off), pkt...)
			if err := unix.Sendto(fd, buf, 0, to); err == nil {
				accepted++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d, la := rlDelta(before, rlCounters(t, tp.Borea, "insane0")), GetLink(t, tp.Borea, "insane0").Stats64.TX
	// What the core dropped before insane_xmit (a GSO packet it could not
	// cut) shows in tx_dropped beside insane's own drops.
	core := (la.Dropped - lb.Dropped) - ourDrops(d)
	if got := rlPackets(d) + core; got < uint64(accepted) {
		t.Errorf("%d frames accepted, %d accounted for (insane %v, core drops %d)", accepted, got, d, core)
	}
	if d["relayed_packets"] == 0 || d["drop_policy"] == 0 {
		t.Errorf("nothing relayed or dropped by policy: %v", d)
	}
	Figure(t, "vnet-header frames sent", uint64(n))
	Figure(t, "vnet-header frames accepted", uint64(accepted))
	t.Logf("%d of %d frames accepted; insane %v; core drops %d", accepted, n, d, core)
}

// TestTorturePolicyFlipsUnderTCP: a TCP transfer runs while the policy
// flips between pass (GSO packets whole) and policies that decide each
// segment, so GSO packets cleared whole meet a policy that cuts them.
func TestTorturePolicyFlipsUnderTCP(t *testing.T) {
	CheckKmsg(t)
	flips := ttSize(1000, 10000)
	tp, c := kTopo(t, nil)
	policies := []genl.Policy{genl.Pass(), genl.Percent(99, nil), genl.Pass(), genl.Time(time.Second, time.Millisecond)}
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if i >= flips {
				// Hold pass so the transfer can finish quickly.
				time.Sleep(time.Millisecond)
				continue
			}
			if err := c.SetPolicy("insane0", policies[i%len(policies)]); err != nil {
				errs <- err
				return
			}
		}
	}()
	size := 8 << 20
	if ttFull() {
		size = 64 << 20
	}
	start := time.Now()
	rlTCP(t, tp.Borea, tp.Morgana, tp.MorganaIP, size)
	close(done)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	d := rlCounters(t, tp.Borea, "insane0")
	if d["drop_malformed"] != 0 || d["drop_loop"] != 0 {
		t.Errorf("GSO packets cut by the relay counted as malformed or loops: %v", d)
	}
	Figure(t, "policy flips under TCP", uint64(flips))
	t.Logf("%d MB through %d policy flips in %v; %v", size>>20, flips, time.Since(start).Round(time.Millisecond), d)
}
