package main

import (
	"encoding/binary"
	"math"
	"sort"

	"github.com/insane-netdev/insane/go/genl"
)

// The rate phase's analysis (issue 25), apart from the VM so that the
// host's unit tests cover it (ratestat_test.go).

// tapPkt is one packet a packet socket saw a device send: its stamp
// (SO_TIMESTAMPNS, CLOCK_REALTIME, taken in dev_queue_xmit_nit() right
// before the device's ndo_start_xmit), its length from the network header
// on (a GSO packet's whole length), its GSO segment size from the
// virtio-net header (0: not a GSO packet), whether its transport checksum
// is still to be completed (VIRTIO_NET_HDR_F_NEEDS_CSUM: CHECKSUM_PARTIAL),
// and its first bytes: from the network header on (hdr), or the whole
// frame with its link-layer header (frame, the duplicate/corrupt runs).
type tapPkt struct {
	t         int64
	l         int
	gsoSize   int
	needsCsum bool
	hdr       []byte
	frame     []byte
}

// wirePkt is one wire packet: a GSO packet seen whole stands for the
// segments it would be cut into, each leaving at its stamp.
type wirePkt struct {
	t   int64
	l   int    // IP length
	seq uint32 // TCP: the sequence number of its first byte; UDP: the datagram's number
	// keyed: seq is set (a TCP packet, or a numbered datagram), so that
	// a departure can be matched with its entry.
	keyed bool
}

// tcpInfo returns the header length (IPv4 and TCP) and the sequence
// number of an IPv4 TCP packet from its first bytes.
func tcpInfo(h []byte) (hlen int, seq uint32, ok bool) {
	if len(h) < 20 || h[0]>>4 != 4 || h[9] != 6 {
		return 0, 0, false
	}
	ihl := int(h[0]&15) * 4
	if len(h) < ihl+20 {
		return 0, 0, false
	}
	doff := int(h[ihl+12]>>4) * 4
	return ihl + doff, binary.BigEndian.Uint32(h[ihl+4:]), true
}

// wirePackets expands what a tap saw into wire packets: a TCP GSO packet
// of header H, payload P and segment size g into ceil(P / g) packets of
// H + g bytes (the last H + the rest), numbered on from its sequence
// number, as skb_gso_segment() cuts it. Another GSO packet counts as its
// whole (none is expected here).
func wirePackets(ps []tapPkt) []wirePkt {
	var w []wirePkt
	for _, p := range ps {
		hl, seq, isTCP := tcpInfo(p.hdr)
		if p.gsoSize <= 0 || !isTCP || p.l <= hl {
			w = append(w, wirePkt{t: p.t, l: p.l, seq: seq, keyed: isTCP})
			continue
		}
		for off := 0; off < p.l-hl; off += p.gsoSize {
			seg := min(p.gsoSize, p.l-hl-off)
			w = append(w, wirePkt{t: p.t, l: hl + seg, seq: seq + uint32(off), keyed: true})
		}
	}
	return w
}

// serNs is the serialization time of a packet of l bytes charged with
// overhead more at rate bits per second, as the kernel computes it.
func serNs(l, overhead int, rate uint64) int64 {
	return int64(genl.SerializationNs(l, overhead, rate))
}

// rateFig is what the departures of one run show against the rate R.
type rateFig struct {
	// N wire packets left in the window, over Span ns from the first to
	// the last.
	N    int   `json:"n"`
	Span int64 `json:"span_ns"`
	// ChargedBps is the rate of the bytes as the tool charges them (the
	// IP length plus its overhead), IPBps of the IP packets alone, both
	// over the packets after those of the first instant (whose
	// serialization began before the window: a serializer's packet, or a
	// GSO packet that netem charged whole and sent at once, leaves at the
	// end of its serialization).
	ChargedBps float64 `json:"charged_bps"`
	IPBps      float64 `json:"ip_bps"`
	// IdleGaps counts the gaps between departure instants longer than
	// twice the serialization time of what left at the later one and 100
	// µs more: the tool had nothing to send, or sent it late.
	IdleGaps int `json:"idle_gaps"`
	// LongestRun is the most packets in a row that each left less than
	// half their own serialization time after the one before: back to
	// back, much faster than R (a stamp a few µs late does not make the
	// next gap one). LongestStrict is the same with the whole
	// serialization time, which the stamps' jitter alone reaches; FastGaps
	// counts the gaps shorter than it, of N - 1.
	LongestRun    int `json:"longest_run"`
	LongestStrict int `json:"longest_strict"`
	FastGaps      int `json:"fast_gaps"`
	// Bucket is the smallest token bucket (bytes as charged) that the
	// departures conform to at R: for every i <= j, the bytes of packets
	// i..j are at most Bucket + R (t_j - t_i). One packet's bytes for a
	// perfect serializer.
	Bucket float64 `json:"bucket_bytes"`
	// MaxPkt is the largest packet in bytes as charged.
	MaxPkt int `json:"max_pkt"`
}

// rateFigures computes rateFig over the wire packets that left in [from,
// to], each charged overhead bytes beyond its IP length, against rate.
func rateFigures(w []wirePkt, from, to int64, rate uint64, overhead int) rateFig {
	var sel []wirePkt
	for _, p := range w {
		if p.t >= from && p.t <= to {
			sel = append(sel, p)
		}
	}
	f := rateFig{N: len(sel)}
	if len(sel) == 0 {
		return f
	}
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].t < sel[j].t })
	f.Span = sel[len(sel)-1].t - sel[0].t
	var charged, ip int64
	run, strict := 1, 1
	f.LongestRun, f.LongestStrict = 1, 1
	// The instant before, and the serialization of what left at the
	// current one.
	prevInstant, instant, instantSer := sel[0].t, sel[0].t, int64(0)
	idle := func() {
		if instant != prevInstant && instant-prevInstant > 2*instantSer+100000 {
			f.IdleGaps++
		}
	}
	for i, p := range sel {
		f.MaxPkt = max(f.MaxPkt, p.l+overhead)
		if i == 0 {
			continue
		}
		gap, ser := p.t-sel[i-1].t, serNs(p.l, overhead, rate)
		if p.t != instant {
			idle()
			prevInstant, instant, instantSer = instant, p.t, 0
		}
		instantSer += ser
		if p.t != sel[0].t {
			charged += int64(p.l + overhead)
			ip += int64(p.l)
		}
		if gap < ser {
			f.FastGaps++
			strict++
			f.LongestStrict = max(f.LongestStrict, strict)
		} else {
			strict = 1
		}
		if 2*gap < ser {
			run++
			f.LongestRun = max(f.LongestRun, run)
		} else {
			run = 1
		}
	}
	idle()
	if f.Span > 0 {
		f.ChargedBps = float64(charged) * 8 * 1e9 / float64(f.Span)
		f.IPBps = float64(ip) * 8 * 1e9 / float64(f.Span)
	}
	f.Bucket = bucketDepth(sel, rate, overhead)
	return f
}

// bucketDepth returns the smallest depth b, in bytes, of a token bucket
// of rate bits per second that the departures w (in time order) conform
// to: max over i <= j of A(i..j) - R (t_j - t_i), with A the bytes as
// charged. In bits: with A_j the bytes through j, the maximum over j of
// (A_j - R t_j) - min over i <= j of (A_{i-1} - R t_i).
func bucketDepth(w []wirePkt, rate uint64, overhead int) float64 {
	if len(w) == 0 {
		return 0
	}
	r := float64(rate) / 8 / 1e9 // bytes per ns
	t0 := w[0].t
	var a float64 // bytes through the previous packet
	minM := math.Inf(1)
	var b float64
	for _, p := range w {
		t := float64(p.t - t0)
		minM = math.Min(minM, a-r*t)
		a += float64(p.l + overhead)
		b = math.Max(b, a-r*t-minM)
	}
	return b
}

// queueDelays matches each departure of a TCP wire packet with its entry
// into the tool (the entries expanded the same way, by sequence number):
// the latest entry of the same sequence number at or before the departure
// (a retransmission enters again). It returns departure minus entry for
// the departures whose entry lies in [from, to], and how many departures
// found no entry.
func queueDelays(entries, deps []wirePkt, from, to int64) (d []int64, unmatched int) {
	for i, e := range matchEntries(entries, deps) {
		switch {
		case !deps[i].keyed:
		case e < 0:
			unmatched++
		case e >= from && e <= to:
			d = append(d, deps[i].t-e)
		}
	}
	return d, unmatched
}

// matchEntries returns, for each departure, the entry of the same key (TCP
// sequence number, datagram number) latest at or before it (-1: none).
func matchEntries(entries, deps []wirePkt) []int64 {
	at := map[uint32][]int64{}
	for _, e := range entries {
		if e.keyed {
			at[e.seq] = append(at[e.seq], e.t)
		}
	}
	for _, ts := range at {
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	}
	m := make([]int64, len(deps))
	for j, p := range deps {
		m[j] = -1
		ts := at[p.seq]
		if i := sort.Search(len(ts), func(i int) bool { return ts[i] > p.t }) - 1; p.keyed && i >= 0 {
			m[j] = ts[i]
		}
	}
	return m
}

// scheduleLateness compares the departures (in time order) with those of
// an ideal serializer at rate that takes the same wire packets in the same
// order, each when it entered: ideal_i = max(entry_i, ideal_{i-1}) + t_i,
// t_i its serialization time as the tool charges it. It returns departure
// minus ideal for the departures in [from, to] (the ideal runs from the
// first departure on; a departure without an entry is skipped). For
// insane, whose clock F is that ideal when it drops nothing, it is how
// late its timer sent each packet (plus the few µs between the entry
// stamp and the kernel's reading of the clock); at is each one's
// departure. A qdisc that sends a GSO
// packet whole, or a token bucket's burst, shows here as early and late
// departures around the ideal.
func scheduleLateness(entries, deps []wirePkt, rate uint64, overhead int, from, to int64) (late, at []int64) {
	d := append([]wirePkt(nil), deps...)
	sort.SliceStable(d, func(i, j int) bool { return d[i].t < d[j].t })
	ent := matchEntries(entries, d)
	var ideal int64
	for i, p := range d {
		if ent[i] < 0 {
			continue
		}
		ideal = max(ideal, ent[i]) + serNs(p.l, overhead, rate)
		if p.t >= from && p.t <= to {
			late = append(late, p.t-ideal)
			at = append(at, p.t)
		}
	}
	return late, at
}

// The duplicate and corrupt runs' datagrams: 72 bytes of payload, three
// copies of (magic, run, sequence number), so that the number can be read
// whatever one flipped bit did: a frame of 14 + 20 + 8 + 72 bytes on low0.
const (
	extraMagic   = 0x696e73616e654443 // "insaneDC"
	extraPayload = 72
	extraEth     = 14
	extraIP      = 20
	extraFrame   = extraEth + extraIP + 8 + extraPayload
	// extraSpan is the bytes insane's corrupt may touch in these
	// datagrams: from the end of the IPv4 header (UDP header and payload).
	extraSpan = 8 + extraPayload
)

func fillExtra(b []byte, runID, seq uint64) {
	for c := 0; c < 3; c++ {
		binary.BigEndian.PutUint64(b[24*c:], extraMagic)
		binary.BigEndian.PutUint64(b[24*c+8:], runID)
		binary.BigEndian.PutUint64(b[24*c+16:], seq)
	}
}

// extraSeq reads the sequence number of a payload tagged runID: the
// number at least two of its three copies agree on, with magic and run.
func extraSeq(p []byte, runID uint64) (uint64, bool) {
	if len(p) < extraPayload {
		return 0, false
	}
	var seqs []uint64
	for c := 0; c < 3; c++ {
		q := p[24*c:]
		if binary.BigEndian.Uint64(q) == extraMagic && binary.BigEndian.Uint64(q[8:]) == runID {
			seqs = append(seqs, binary.BigEndian.Uint64(q[16:]))
		}
	}
	for i := range seqs {
		for j := i + 1; j < len(seqs); j++ {
			if seqs[i] == seqs[j] {
				return seqs[i], true
			}
		}
	}
	return 0, false
}

// csumFold adds 16-bit big-endian words to sum (ones' complement).
func csumAdd(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func csumFold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// udpChecksum is the UDP checksum of udp (its checksum field counted as
// 0) between IPv4 addresses src and dst: 0xffff for a computed 0.
func udpChecksum(src, dst, udp []byte) uint16 {
	s := csumAdd(0, src)
	s = csumAdd(s, dst)
	s += 17 + uint32(len(udp))
	s = csumAdd(s, udp[:6])
	s = csumAdd(s, udp[8:])
	c := ^csumFold(s)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// ipHeaderOK checks an IPv4 header's checksum.
func ipHeaderOK(h []byte) bool { return csumFold(csumAdd(0, h)) == 0xffff }

// frameVerdict is what one frame of a duplicate/corrupt run shows.
type frameVerdict struct {
	seq uint64
	ok  bool // a datagram of the run, its number read
	// corrupt: the frame differs from the datagram sent; where: "eth",
	// "ip" (its header checksum fails), "udp" (header) or "payload"; off
	// and mask the flipped bits' byte (from the frame's start) and its
	// XOR, when they are in one byte outside the IP header; bits the
	// number of bits that differ (0 for "ip": unknown).
	corrupt bool
	where   string
	off     int
	mask    byte
	bits    int
}

// judgeFrame compares a frame of a duplicate/corrupt run with the datagram
// it carries: eth is the run's Ethernet header, sport the sender's port.
// A transport checksum still to be completed (needsCsum) is not compared.
func judgeFrame(f []byte, needsCsum bool, eth []byte, sport uint16, runID uint64) frameVerdict {
	var v frameVerdict
	if len(f) != extraFrame {
		return v
	}
	ip := f[extraEth : extraEth+extraIP]
	udp := f[extraEth+extraIP:]
	if v.seq, v.ok = extraSeq(udp[8:], runID); !v.ok {
		return v
	}
	want := make([]byte, extraFrame)
	copy(want, eth)
	copy(want[extraEth:], ip)
	u := want[extraEth+extraIP:]
	binary.BigEndian.PutUint16(u, sport)
	binary.BigEndian.PutUint16(u[2:], 9)
	binary.BigEndian.PutUint16(u[4:], extraSpan)
	fillExtra(u[8:], runID, v.seq)
	if needsCsum {
		copy(u[6:8], udp[6:8])
	} else {
		binary.BigEndian.PutUint16(u[6:], udpChecksum(ip[12:16], ip[16:20], u))
	}
	if !ipHeaderOK(ip) {
		v.corrupt, v.where, v.off = true, "ip", -1
		return v
	}
	v.off = -1
	for i := range f {
		x := f[i] ^ want[i]
		if x == 0 {
			continue
		}
		v.corrupt = true
		for b := x; b != 0; b &= b - 1 {
			v.bits++
		}
		if v.off == -1 {
			v.off, v.mask = i, x
			switch {
			case i < extraEth:
				v.where = "eth"
			case i < extraEth+extraIP+8:
				v.where = "udp"
			default:
				v.where = "payload"
			}
		} else {
			v.mask = 0 // more than one byte
		}
	}
	return v
}

// corruptMark is where a frame was corrupted: the byte from the frame's
// start and the XOR of its bits (0 when unknown: the IP header, or more
// than one byte).
type corruptMark struct {
	Off  int  `json:"off"`
	Mask byte `json:"mask"`
}

// extraObs is what one duplicate/corrupt run's capture showed, by
// sequence number.
type extraObs struct {
	n        int                    // datagrams sent
	copies   map[uint64]int         // frames per datagram
	corrupt  map[uint64]corruptMark // the first corrupted frame of each
	where    map[string]int         // corrupted frames by where
	frames   int                    // frames of the run
	unknown  int                    // frames of the run whose number could not be read, or not 114 bytes
	multiBit int                    // corrupted frames with more than one bit flipped
}

// observeExtras judges every frame a duplicate/corrupt run captured.
// The run's Ethernet header is the most common one.
func observeExtras(ps []tapPkt, n int, sport uint16, runID uint64) extraObs {
	o := extraObs{n: n, copies: map[uint64]int{}, corrupt: map[uint64]corruptMark{}, where: map[string]int{}}
	count := map[string]int{}
	var eth string
	for _, p := range ps {
		if len(p.frame) >= extraEth {
			k := string(p.frame[:extraEth])
			count[k]++
			if count[k] > count[eth] {
				eth = k
			}
		}
	}
	for _, p := range ps {
		v := judgeFrame(p.frame, p.needsCsum, []byte(eth), sport, runID)
		if !v.ok || v.seq >= uint64(n) {
			o.unknown++
			continue
		}
		o.frames++
		o.copies[v.seq]++
		if !v.corrupt {
			continue
		}
		o.where[v.where]++
		if v.bits > 1 {
			o.multiBit++
		}
		if _, seen := o.corrupt[v.seq]; !seen {
			o.corrupt[v.seq] = corruptMark{v.off, v.mask}
		}
	}
	return o
}

// duplicates counts the frames beyond the first of each datagram.
func (o *extraObs) duplicates() int {
	d := 0
	for _, c := range o.copies {
		d += c - 1
	}
	return d
}

// predictedExtras returns, for datagrams 0 to n-1 taking k = their number,
// which insane duplicates and which it corrupts, and where (the frame's
// byte: the span starts after the IPv4 header), by genl.Predictor.Extra.
func predictedExtras(seed uint64, n int, dupUnits, corUnits uint32) (dup map[uint64]bool, cor map[uint64]corruptMark) {
	pr := genl.NewPredictor(seed)
	dup, cor = map[uint64]bool{}, map[uint64]corruptMark{}
	for k := 0; k < n; k++ {
		d, c, y := pr.Extra(uint64(k), dupUnits, corUnits)
		if d {
			dup[uint64(k)] = true
		}
		if c {
			b, m := genl.CorruptBit(y, extraSpan)
			cor[uint64(k)] = corruptMark{extraEth + extraIP + b, m}
		}
	}
	return dup, cor
}

// extraAgreement counts the datagrams (0 to n-1) whose fate differs
// between the observation and a reference (a prediction or another run):
// duplicated in one and not the other, or corrupted in one and not the
// other, or at another bit.
func extraAgreement(o *extraObs, dup map[uint64]bool, cor map[uint64]corruptMark) (dupDiff, corDiff int) {
	for k := uint64(0); k < uint64(o.n); k++ {
		if (o.copies[k] > 1) != dup[k] {
			dupDiff++
		}
		a, inA := o.corrupt[k]
		b, inB := cor[k]
		if inA != inB || inA && a != b {
			corDiff++
		}
	}
	return dupDiff, corDiff
}

// asReference turns an observation into the maps extraAgreement takes.
func (o *extraObs) asReference() (map[uint64]bool, map[uint64]corruptMark) {
	dup := map[uint64]bool{}
	for k, c := range o.copies {
		if c > 1 {
			dup[k] = true
		}
	}
	return dup, o.corrupt
}

// overlap counts the datagrams duplicated in both runs and corrupted in
// both (at any bit).
func overlap(a, b *extraObs) (dups, cors int) {
	for k, c := range a.copies {
		if c > 1 && b.copies[k] > 1 {
			dups++
		}
	}
	for k := range a.corrupt {
		if _, ok := b.corrupt[k]; ok {
			cors++
		}
	}
	return dups, cors
}

// binomSigmas is (got - n p) / sqrt(n p (1 - p)): how many standard
// deviations of a binomial count got lies from its mean.
func binomSigmas(got, n int, p float64) float64 {
	return sigmas(float64(got), float64(n)*p, math.Sqrt(float64(n)*p*(1-p)))
}
