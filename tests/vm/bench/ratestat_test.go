package main

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/insane-netdev/insane/go/genl"
)

// tcpHdr returns the first bytes of an IPv4 TCP packet of total length l
// (20-byte IP header, 32-byte TCP header) with sequence number seq.
func tcpHdr(l int, seq uint32) []byte {
	h := make([]byte, 52)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(min(l, 65535)))
	h[9] = 6
	binary.BigEndian.PutUint32(h[24:], seq)
	h[32] = 8 << 4
	return h
}

func TestWirePackets(t *testing.T) {
	// A GSO packet of 52 + 3000 bytes cut at 1448: 1448, 1448, 104.
	ps := []tapPkt{
		{t: 10, l: 52 + 3000, gsoSize: 1448, hdr: tcpHdr(3052, 1000)},
		{t: 20, l: 52 + 100, hdr: tcpHdr(152, 4000)},
		{t: 30, l: 28, hdr: []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17}},
	}
	w := wirePackets(ps)
	want := []wirePkt{
		{10, 1500, 1000, true}, {10, 1500, 2448, true}, {10, 52 + 104, 3896, true},
		{20, 152, 4000, true},
		{30, 28, 0, false},
	}
	if len(w) != len(want) {
		t.Fatalf("wirePackets = %v, want %v", w, want)
	}
	for i := range w {
		if w[i] != want[i] {
			t.Errorf("packet %d = %+v, want %+v", i, w[i], want[i])
		}
	}
}

// A perfect serializer: each packet leaves its own serialization time
// after the one before. Its rate is R, no gap is fast, the bucket is one
// packet.
func TestRateFiguresPerfect(t *testing.T) {
	const rate = 10_000_000
	var w []wirePkt
	at := int64(1e9)
	for i := 0; i < 1000; i++ {
		l := 1500 - (i%7)*100
		at += serNs(l, 0, rate)
		w = append(w, wirePkt{t: at, l: l})
	}
	f := rateFigures(w, 0, math.MaxInt64, rate, 0)
	if f.N != 1000 || f.FastGaps != 0 || f.LongestRun != 1 || f.LongestStrict != 1 || f.IdleGaps != 0 {
		t.Errorf("perfect: %+v", f)
	}
	if e := f.ChargedBps/rate - 1; e < 0 || e > 1e-6 {
		t.Errorf("perfect: rate %v, error %v", f.ChargedBps, e)
	}
	if f.Bucket < 1500 || f.Bucket > 1500.01 {
		t.Errorf("perfect: bucket %v, want 1500", f.Bucket)
	}
	// Charged with an overhead that the departures do not have: slower
	// than R by it.
	g := rateFigures(w, 0, math.MaxInt64, rate, 38)
	if g.ChargedBps <= f.ChargedBps || g.IPBps != f.IPBps {
		t.Errorf("overhead: %v %v", g, f)
	}
}

// Bursts of 10 packets at once, every 10 serialization times: rate R,
// runs of 10, a bucket of 10 packets.
func TestRateFiguresBursts(t *testing.T) {
	const rate, l = 100_000_000, 1500
	ser := serNs(l, 0, rate)
	var w []wirePkt
	for b := 0; b < 100; b++ {
		for i := 0; i < 10; i++ {
			w = append(w, wirePkt{t: int64(b) * 10 * ser, l: l})
		}
	}
	f := rateFigures(w, 0, math.MaxInt64, rate, 0)
	if f.LongestRun != 10 || f.LongestStrict != 10 || f.FastGaps != 900 {
		t.Errorf("bursts: longest %d, fast %d", f.LongestRun, f.FastGaps)
	}
	if math.Abs(f.Bucket-10*l) > 1 {
		t.Errorf("bursts: bucket %v, want %v", f.Bucket, 10*l)
	}
	// The 990 packets after the first burst, over 99 bursts' time: R,
	// and no gap idle.
	if math.Abs(f.ChargedBps/rate-1) > 1e-9 || f.IdleGaps != 0 {
		t.Errorf("bursts: rate %v", f.ChargedBps/rate)
	}
	// A window leaves the rest out.
	if g := rateFigures(w, 10*ser, 20*ser, rate, 0); g.N != 20 {
		t.Errorf("window: %d packets", g.N)
	}
}

// A perfect serializer's stamps, each a few µs off: strict runs, no
// back-to-back run.
func TestRateFiguresJitter(t *testing.T) {
	const rate = 100_000_000
	ser := serNs(1500, 0, rate)
	var w []wirePkt
	for i := 0; i < 100; i++ {
		w = append(w, wirePkt{t: int64(i)*ser + int64(10-i%3*5)*1000, l: 1500})
	}
	f := rateFigures(w, 0, math.MaxInt64, rate, 0)
	if f.LongestRun != 1 || f.LongestStrict < 2 {
		t.Errorf("jitter: %+v", f)
	}
}

func TestRateFiguresIdle(t *testing.T) {
	const rate = 1_000_000
	ser := serNs(100, 0, rate)
	w := []wirePkt{{0, 100, 0, false}, {ser, 100, 0, false}, {10 * ser, 100, 0, false}, {10 * ser, 100, 0, false}, {12 * ser, 100, 0, false}}
	if f := rateFigures(w, 0, math.MaxInt64, rate, 0); f.IdleGaps != 1 {
		t.Errorf("idle: %+v", f)
	}
}

func TestQueueDelays(t *testing.T) {
	entries := []wirePkt{
		{100, 1500, 1, true}, {100, 1500, 1449, true},
		{500, 1500, 1, true}, // a retransmission
		{50, 40, 0, false},
	}
	deps := []wirePkt{
		{300, 1500, 1, true}, {400, 1500, 1449, true}, {700, 1500, 1, true},
		{800, 1500, 9999, true}, // no entry
		{90, 1500, 1, true},     // before any entry of its number
	}
	d, un := queueDelays(entries, deps, 0, 1000)
	if un != 2 || len(d) != 3 || d[0] != 200 || d[1] != 300 || d[2] != 200 {
		t.Errorf("queueDelays = %v, %d unmatched", d, un)
	}
	if d, _ := queueDelays(entries, deps, 200, 1000); len(d) != 1 || d[0] != 200 {
		t.Errorf("window: %v", d)
	}
}

// extraFrameOf builds the frame of datagram seq as low0's tap sees it,
// its UDP checksum complete.
func extraFrameOf(seq, runID uint64, sport uint16) []byte {
	f := make([]byte, extraFrame)
	copy(f, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0})
	ip := f[extraEth:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], extraIP+extraSpan)
	binary.BigEndian.PutUint16(ip[4:], uint16(seq))
	copy(ip[12:], []byte{10, 2, 0, 1, 10, 2, 0, 2})
	binary.BigEndian.PutUint16(ip[10:], ^csumFold(csumAdd(0, ip[:extraIP])))
	u := f[extraEth+extraIP:]
	binary.BigEndian.PutUint16(u, sport)
	binary.BigEndian.PutUint16(u[2:], 9)
	binary.BigEndian.PutUint16(u[4:], extraSpan)
	fillExtra(u[8:], runID, seq)
	binary.BigEndian.PutUint16(u[6:], udpChecksum(ip[12:16], ip[16:20], u))
	return f
}

func TestJudgeFrame(t *testing.T) {
	const run, sport = 7, 40000
	f := extraFrameOf(42, run, sport)
	eth := f[:extraEth]
	if !ipHeaderOK(f[extraEth : extraEth+extraIP]) {
		t.Fatal("the test's IP header checksum is wrong")
	}
	if v := judgeFrame(f, false, eth, sport, run); !v.ok || v.seq != 42 || v.corrupt {
		t.Fatalf("clean frame: %+v", v)
	}
	// A checksum to be completed is not compared.
	g := append([]byte(nil), f...)
	g[extraEth+extraIP+6] ^= 0x55
	if v := judgeFrame(g, true, eth, sport, run); !v.ok || v.corrupt {
		t.Errorf("partial checksum: %+v", v)
	}
	if v := judgeFrame(g, false, eth, sport, run); !v.corrupt || v.where != "udp" || v.bits != 4 {
		t.Errorf("wrong checksum: %+v", v)
	}
	// Every single bit flipped anywhere is found, and where; the number
	// is read whichever copy it hit.
	for i := 0; i < extraFrame; i++ {
		for b := 0; b < 8; b++ {
			g := append([]byte(nil), f...)
			g[i] ^= 1 << b
			v := judgeFrame(g, false, eth, sport, run)
			if !v.ok || v.seq != 42 || !v.corrupt {
				t.Fatalf("bit %d of byte %d: %+v", b, i, v)
			}
			switch {
			case i >= extraEth && i < extraEth+extraIP:
				if v.where != "ip" {
					t.Errorf("byte %d: where %q", i, v.where)
				}
			case v.off != i || v.mask != 1<<b || v.bits != 1:
				t.Errorf("bit %d of byte %d: %+v", b, i, v)
			}
		}
	}
	if v := judgeFrame(f, false, eth, sport, run+1); v.ok {
		t.Errorf("another run's frame was read: %+v", v)
	}
	if v := judgeFrame(f[:100], false, eth, sport, run); v.ok {
		t.Errorf("a short frame was read: %+v", v)
	}
}

// A run that did what the predictor says agrees with it; a run with one
// fate changed does not, by one.
func TestExtrasAgainstPredictor(t *testing.T) {
	const run, sport, n, seed = 3, 40000, 20000, 3
	p := genl.Policy{Mode: genl.ModePass, Duplicate: 1, Corrupt: 1}
	dup, cor := predictedExtras(seed, n, p.DuplicateUnits(), p.CorruptUnits())
	var ps []tapPkt
	for k := uint64(0); k < n; k++ {
		f := extraFrameOf(k, run, sport)
		clean := append([]byte(nil), f...)
		if m, ok := cor[k]; ok {
			f[m.Off] ^= m.Mask
		}
		ps = append(ps, tapPkt{frame: f})
		if dup[k] {
			ps = append(ps, tapPkt{frame: clean, needsCsum: true})
		}
	}
	o := observeExtras(ps, n, sport, run)
	if o.frames != n+len(dup) || o.unknown != 0 || o.duplicates() != len(dup) || len(o.corrupt) != len(cor) || o.multiBit != 0 {
		t.Fatalf("observed %d frames (%d unknown), %d duplicates (%d due), %d corrupted (%d due)", o.frames, o.unknown, o.duplicates(), len(dup), len(o.corrupt), len(cor))
	}
	if d, c := extraAgreement(&o, dup, cor); d != 0 || c != 0 {
		t.Errorf("against the prediction: %d, %d differ", d, c)
	}
	// 1 % of 20000 each, within 4 sigma.
	if z := binomSigmas(len(dup), n, 0.01); math.Abs(z) > 4 {
		t.Errorf("duplicates %d: %.1f sigma", len(dup), z)
	}
	if z := binomSigmas(len(cor), n, 0.01); math.Abs(z) > 4 {
		t.Errorf("corrupted %d: %.1f sigma", len(cor), z)
	}
	rd, rc := o.asReference()
	if d, c := extraAgreement(&o, rd, rc); d != 0 || c != 0 {
		t.Errorf("against itself: %d, %d", d, c)
	}
	if d, c := overlap(&o, &o); d != len(dup) || c != len(cor) {
		t.Errorf("overlap with itself: %d, %d", d, c)
	}
	// Another bit for one datagram.
	for k, m := range cor {
		m.Mask <<= 1
		if m.Mask == 0 {
			m.Mask = 1
		}
		cor[k] = m
		break
	}
	if _, c := extraAgreement(&o, dup, cor); c != 1 {
		t.Errorf("one bit moved: %d differ", c)
	}
}

func TestBucketDepth(t *testing.T) {
	// Two packets at once, then nothing: two packets' worth.
	w := []wirePkt{{0, 1000, 0, false}, {0, 1000, 0, false}}
	if b := bucketDepth(w, 8_000_000, 0); b != 2000 {
		t.Errorf("bucket %v, want 2000", b)
	}
	if b := bucketDepth(nil, 1, 0); b != 0 {
		t.Errorf("empty: %v", b)
	}
}

func TestScheduleLateness(t *testing.T) {
	const rate = 12_000_000 // 1500 bytes: 1 ms
	ms := int64(1e6)
	// Three packets enter at once and leave 1, 2 and 3 ms later: on time;
	// a fourth enters at 10 ms and leaves 0.5 ms late.
	entries := []wirePkt{{0, 1500, 1, true}, {0, 1500, 1501, true}, {0, 1500, 3001, true}, {10 * ms, 1500, 4501, true}}
	deps := []wirePkt{{ms, 1500, 1, true}, {2 * ms, 1500, 1501, true}, {3 * ms, 1500, 3001, true}, {11*ms + ms/2, 1500, 4501, true}}
	l, _ := scheduleLateness(entries, deps, rate, 0, 0, 1<<62)
	if len(l) != 4 || l[0] != 0 || l[1] != 0 || l[2] != 0 || l[3] != ms/2 {
		t.Errorf("lateness = %v", l)
	}
	// The three sent at once at 3 ms (a GSO packet whole): 2 and 1 ms
	// late, on time.
	deps[0].t, deps[1].t = 3*ms, 3*ms
	l, _ = scheduleLateness(entries, deps, rate, 0, 0, 1<<62)
	if l[0] != 2*ms || l[1] != ms || l[2] != 0 {
		t.Errorf("burst: lateness = %v", l)
	}
}
