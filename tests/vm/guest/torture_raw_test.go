//go:build vmtest

package guest

// Raw frames: random and mutated IPv4 and IPv6 headers sent with AF_PACKET
// on an attached insane device, as a raw sender, a TX ring or a tc/bpf
// redirect could. Every frame the kernel takes is accounted for under
// exactly one counter, and the kernel log stays clean.
//
// INSANE_TORTURE=full sends 100,000 frames; make test sends 10,000.

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/unix"
)

// rawFuzzer makes frames from a seeded generator, so that a failure can be
// replayed with the seed the test logs.
type rawFuzzer struct {
	r          *rand.Rand
	src4, dst4 string
	src6, dst6 string
}

// ipv4 returns a header family frame: correct, with options, to a
// multicast or broadcast destination, or broken in one field.
func (f *rawFuzzer) ipv4() []byte {
	dst := f.dst4
	switch f.r.IntN(8) {
	case 0:
		dst = "224.0.0.251"
	case 1:
		dst = "255.255.255.255"
	case 2:
		dst = "192.0.2.255"
	}
	b := rlIPv4(f.src4, dst, f.r.IntN(64))
	if f.r.IntN(4) == 0 { // options: NOPs, then an end of list
		words := 1 + f.r.IntN(10)
		opts := make([]byte, 4*words)
		for i := range opts {
			opts[i] = 1
		}
		opts[len(opts)-1] = 0
		b = append(b[:20:20], append(opts, b[20:]...)...)
		b[0] = byte(0x40 | (5 + words))
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	}
	switch f.r.IntN(6) {
	case 0: // ihl anything
		b[0] = 0x40 | byte(f.r.IntN(16))
	case 1: // tot_len anything
		binary.BigEndian.PutUint16(b[2:], uint16(f.r.IntN(len(b)+8)))
	case 2: // truncated
		b = b[:f.r.IntN(len(b))]
	}
	return b
}

// ipv6 returns an IPv6 frame, possibly with extension headers, to a
// multicast or link-local destination, or broken in one field.
func (f *rawFuzzer) ipv6() []byte {
	dst := f.dst6
	switch f.r.IntN(8) {
	case 0:
		dst = "ff02::1"
	case 1:
		dst = "fe80::2"
	}
	b := rlIPv6(f.src6, dst, f.r.IntN(64))
	if f.r.IntN(3) == 0 { // a chain of hop-by-hop, destination, routing or fragment headers
		next := b[6]
		var ext []byte
		for i := 0; i <= f.r.IntN(3); i++ {
			kind := []byte{unix.IPPROTO_HOPOPTS, unix.IPPROTO_DSTOPTS, unix.IPPROTO_ROUTING, unix.IPPROTO_FRAGMENT}[f.r.IntN(4)]
			h := make([]byte, 8)
			h[0] = next
			if kind == unix.IPPROTO_ROUTING {
				h[2] = byte(f.r.IntN(5)) // routing type
			}
			ext = append(h, ext...)
			next = kind
		}
		b[6] = next
		b = append(b[:40:40], append(ext, b[40:]...)...)
		binary.BigEndian.PutUint16(b[4:], uint16(len(b)-40))
	}
	switch f.r.IntN(6) {
	case 0:
		binary.BigEndian.PutUint16(b[4:], uint16(f.r.IntN(len(b))))
	case 1:
		b = b[:f.r.IntN(len(b))]
	case 2:
		b[0] = byte(f.r.IntN(16)) << 4
	}
	return b
}

// frame returns a frame and the protocol to send it as: mostly its own,
// sometimes the other IP version's or another EtherType, sometimes random
// bytes; and now and then a few bits flipped.
func (f *rawFuzzer) frame() ([]byte, uint16) {
	var b []byte
	proto := uint16(unix.ETH_P_IP)
	switch f.r.IntN(10) {
	case 0:
		b = make([]byte, f.r.IntN(120))
		for i := range b {
			b[i] = byte(f.r.Uint32())
		}
		if f.r.IntN(2) == 0 {
			proto = unix.ETH_P_IPV6
		}
	case 1, 2, 3, 4:
		b = f.ipv4()
	default:
		b, proto = f.ipv6(), unix.ETH_P_IPV6
	}
	if f.r.IntN(8) == 0 && len(b) > 0 {
		for i := 0; i <= f.r.IntN(3); i++ {
			b[f.r.IntN(len(b))] ^= 1 << f.r.IntN(8)
		}
	}
	switch f.r.IntN(20) {
	case 0:
		proto ^= unix.ETH_P_IP ^ unix.ETH_P_IPV6
	case 1:
		proto = 0x88b5
	}
	return b, proto
}

func TestTortureRawFrames(t *testing.T) {
	CheckKmsg(t)
	tp, _ := kTopo(t, nil)
	RunIn(t, tp.Borea, "ip", "addr", "add", "2001:db8::1/64", "dev", tp.BoreaDev, "nodad")
	RunIn(t, tp.Morgana, "ip", "addr", "add", "2001:db8::2/64", "dev", tp.MorganaDev, "nodad")
	n := ttSize(10000, 100000)
	seed := uint64(0x1a5e)
	t.Logf("frames %d, generator seed %#x", n, seed)
	f := &rawFuzzer{r: rand.New(rand.NewPCG(seed, seed)), src4: tp.BoreaIP, dst4: tp.MorganaIP, src6: "2001:db8::1", dst6: "2001:db8::2"}

	before := rlCounters(t, tp.Borea, "insane0")
	byProto := map[uint16][][]byte{}
	for i := 0; i < n; i++ {
		b, proto := f.frame()
		byProto[proto] = append(byProto[proto], b)
	}
	sent := 0
	for proto, frames := range byProto {
		sent += rlRawSend(t, tp.Borea, "insane0", proto, frames)
	}
	d := rlDelta(before, rlCounters(t, tp.Borea, "insane0"))
	if got := rlPackets(d); got != uint64(sent) {
		t.Errorf("%d frames sent, the counters account for %d: %v", sent, got, d)
	}
	for _, c := range []string{"relayed_packets", "drop_malformed", "drop_not_ip", "drop_no_route"} {
		if d[c] == 0 {
			t.Errorf("no frame counted as %s: the generator misses a case (%v)", c, d)
		}
	}
	Figure(t, "raw frames sent", uint64(sent))
	Figure(t, "raw frames relayed", d["relayed_packets"])
	Figure(t, "raw frames malformed", d["drop_malformed"])
	Figure(t, "raw frames no-route", d["drop_no_route"])
	Figure(t, "raw frames not-ip", d["drop_not_ip"])
}
