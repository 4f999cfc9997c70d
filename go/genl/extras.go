package genl

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// Rate, duplication and corruption: the uapi header's "Rate, duplication
// and corruption", bit for bit.

// The bounds of the rate stage, the uapi header's.
const (
	// RateMin and RateMax bound a Rate, in bits per second: 8 bit/s to
	// 1 Tbit/s.
	RateMin uint64 = uapi.RateMin
	RateMax uint64 = uapi.RateMax
	// OverheadMax is the largest Overhead, in bytes.
	OverheadMax = uapi.RateOverheadMax
)

// rateUnits are the SI units of bits per second that FormatRate writes,
// largest first.
var rateUnits = []struct {
	name string
	bps  uint64
}{{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}}

// FormatRate writes a rate in bits per second in the largest SI unit of
// bits that divides it exactly, as the grammar reads it back: 10000000 is
// "10mbit", 1500000 "1500kbit", 12 "12bit".
func FormatRate(bps uint64) string {
	for _, u := range rateUnits {
		if bps != 0 && bps%u.bps == 0 {
			return strconv.FormatUint(bps/u.bps, 10) + u.name
		}
	}
	return strconv.FormatUint(bps, 10) + "bit"
}

// rateSuffixes are the units ParseRate reads, as tc(8) writes them, in
// bits per second: SI (1000) and IEC (1024) multiples of bits, and of bytes
// ("bps" is bytes per second, as in tc).
var rateSuffixes = map[string]uint64{
	"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12,
	"kibit": 1 << 10, "mibit": 1 << 20, "gibit": 1 << 30, "tibit": 1 << 40,
	"bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9, "tbps": 8e12,
	"kibps": 8 << 10, "mibps": 8 << 20, "gibps": 8 << 30, "tibps": 8 << 40,
}

var rateSyntax = regexp.MustCompile(`^([0-9]+\.?[0-9]*|\.[0-9]+)([a-zA-Z]*)$`)

// ParseRate reads a rate as tc(8) writes one: a decimal number and a unit,
// bit, kbit, mbit, gbit or tbit (SI: 1000), kibit, mibit, gibit or tibit
// (IEC: 1024), or the same of bytes, bps, kbps, ..., tibps (8 bits each:
// bps is bytes per second, as in tc); any case; a bare number is bits per
// second. A fraction is taken when the rate is a whole number of bits per
// second ("1.5mbit"), and the rate must be RateMin to RateMax. The errors
// name the word: rate "1.5bit" is not a whole number of bits per second.
func ParseRate(s string) (uint64, error) {
	m := rateSyntax.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("rate %q is not a rate (10mbit, 1.5gbit, 100kbps)", s)
	}
	unit := uint64(1)
	if m[2] != "" {
		var ok bool
		if unit, ok = rateSuffixes[strings.ToLower(m[2])]; !ok {
			return 0, fmt.Errorf("rate %q: unknown unit %q: want bit, kbit, mbit, gbit, tbit, kibit, ..., tibit, or bps, kbps, ..., tibps (bytes)", s, m[2])
		}
	}
	r, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, fmt.Errorf("rate %q is not a rate (10mbit, 1.5gbit, 100kbps)", s)
	}
	r.Mul(r, new(big.Rat).SetUint64(unit))
	if !r.IsInt() {
		return 0, fmt.Errorf("rate %q is not a whole number of bits per second", s)
	}
	v := r.Num()
	if !v.IsUint64() || v.Uint64() < RateMin || v.Uint64() > RateMax {
		return 0, fmt.Errorf("rate %q is not between %s and %s", s, FormatRate(RateMin), FormatRate(RateMax))
	}
	return v.Uint64(), nil
}

// SerializationNs returns the time a packet of lenBytes bytes (from the
// network header on) takes on the wire at rateBps bits per second with
// overhead bytes more, as the kernel charges it: floor((L + overhead) * 8 *
// 10^9 / R) ns, computed exactly. It returns 0 without a rate (rateBps 0)
// or a length (L + overhead at most 0), and saturates at 2^64 - 1.
func SerializationNs(lenBytes, overhead int, rateBps uint64) uint64 {
	l := int64(lenBytes) + int64(overhead)
	if rateBps == 0 || l <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(l), 8e9)
	if hi >= rateBps {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, rateBps)
	return q
}

// Serialization is SerializationNs for the policy's (or step's) Rate and
// Overhead: 0 without a Rate.
func (p Policy) Serialization(lenBytes int) time.Duration {
	return nsDuration(SerializationNs(lenBytes, p.Overhead, p.Rate))
}

// CheckExtras checks the rate, duplication and corruption of a policy, or
// of a schedule's step with step, as the kernel does (see the uapi
// header's "Rate, duplication and corruption"); Validate calls it. The
// message names the word at fault.
func (p Policy) CheckExtras(step bool) error {
	bad := fmt.Errorf
	if p.Mode == ModeSchedule && !step {
		for _, w := range []struct {
			word, example string
			set           bool
		}{
			{"rate", "rate 10mbit", p.Rate != 0 || p.Overhead != 0 || p.Buffer != 0},
			{"duplicate", "duplicate 1", p.Duplicate != 0},
			{"corrupt", "corrupt 0.1", p.Corrupt != 0 || p.CorruptHeader},
		} {
			if w.set {
				return bad("a schedule takes no %s of its own: give it to the steps (10s pass %s)", w.word, w.example)
			}
		}
	}
	if p.Rate == 0 {
		switch {
		case p.Overhead != 0:
			return bad("overhead needs a rate: rate R overhead N")
		case p.Buffer != 0:
			return bad("buffer needs a rate: rate R buffer B")
		}
	} else if p.Rate < RateMin || p.Rate > RateMax {
		return bad("rate %s is not between %s and %s", FormatRate(p.Rate), FormatRate(RateMin), FormatRate(RateMax))
	}
	if p.Overhead < 0 || p.Overhead > OverheadMax {
		return bad("overhead %d is not between 0 and %d bytes", p.Overhead, OverheadMax)
	}
	if p.Buffer < 0 {
		return bad("buffer %s must be above 0", FormatDuration(p.Buffer))
	}
	if p.Buffer > DelayMax {
		return bad("buffer %s is above %s, the longest buffer", FormatDuration(p.Buffer), FormatDuration(DelayMax))
	}
	for _, c := range []struct {
		word string
		v    float64
	}{{"duplicate", p.Duplicate}, {"corrupt", p.Corrupt}} {
		if c.v != 0 && (math.IsNaN(c.v) || c.v < 0 || c.v > 100 || percentUnits(c.v) == 0) {
			return bad("%s %v is not above 0 and at most 100 (to a millionth)", c.word, c.v)
		}
	}
	if p.CorruptHeader && p.Corrupt == 0 {
		return bad("header needs corrupt: corrupt P header")
	}
	return nil
}

// extraWords writes the rate, duplication and corruption as the grammar
// has them, with a leading space: " rate 10mbit overhead 38 buffer 50ms
// duplicate 1 corrupt 0.5 header", each word only when set; "" without.
func (p Policy) extraWords() string {
	var s string
	if p.Rate != 0 {
		s += " rate " + FormatRate(p.Rate)
	}
	if p.Overhead != 0 {
		s += " overhead " + strconv.Itoa(p.Overhead)
	}
	if p.Buffer != 0 {
		s += " buffer " + FormatDuration(p.Buffer)
	}
	if u := percentUnits(p.Duplicate); u != 0 {
		s += " duplicate " + FormatPercentUnits(u)
	}
	if u := percentUnits(p.Corrupt); u != 0 {
		s += " corrupt " + FormatPercentUnits(u)
	}
	if p.CorruptHeader {
		s += " header"
	}
	return s
}

// DuplicateUnits returns Duplicate in millionths of a percent, rounded to
// the nearest, as sent to the kernel.
func (p Policy) DuplicateUnits() uint32 { return percentUnits(p.Duplicate) }

// CorruptUnits returns Corrupt in millionths of a percent, rounded to the
// nearest, as sent to the kernel.
func (p Policy) CorruptUnits() uint32 { return percentUnits(p.Corrupt) }

// extraX is the 64-bit draw of the k-th packet (from 0) to meet an action
// with DUPLICATE or CORRUPT under seed: mix64((S ^ INSANE_EXTRA_SALT) +
// (k + 1) * golden).
func extraX(seed, k uint64) uint64 { return mix(seed^uapi.ExtraSalt, k) }

// Extra returns what the kernel does to the k-th packet (k = 0, 1, 2, ...)
// of a direction to meet an action with DUPLICATE or CORRUPT since the
// policy was set under the Predictor's seed (see the uapi header's
// "Duplication and corruption draws"), for dup and corrupt in millionths of
// a percent (Policy.DuplicateUnits, CorruptUnits; 0 for none): whether it
// is duplicated, whether it is corrupted, and y, which picks the bit
// flipped (CorruptBit). It is a pure function of the seed and k, and
// leaves the Predictor as it is (NextExtra counts k itself).
func (pr *Predictor) Extra(k uint64, dup, corrupt uint32) (duplicated, corrupted bool, y uint32) {
	x := extraX(pr.seed, k)
	duplicated = x>>32 < threshold(uint64(dup), uapi.PercentMax)
	corrupted = x&0xffffffff < threshold(uint64(corrupt), uapi.PercentMax)
	y = uint32(mix64(x^uapi.CorruptSalt) >> 32)
	return duplicated, corrupted, y
}

// NextExtra is Extra for the next packet that meets action a (the policy
// itself, or the schedule's step in force then: see the header for when a
// packet meets it), counting k itself: an action with neither Duplicate nor
// Corrupt takes no k and returns false, false, 0. The draws have their own
// k, apart from the decisions' (Relays) and the delays' (Delay).
func (pr *Predictor) NextExtra(a Policy) (duplicated, corrupted bool, y uint32) {
	dup, cor := a.DuplicateUnits(), a.CorruptUnits()
	if dup == 0 && cor == 0 {
		return false, false, 0
	}
	duplicated, corrupted, y = pr.Extra(pr.ek, dup, cor)
	pr.ek++
	return duplicated, corrupted, y
}

// ExtraDraws returns how many packets have met an action with Duplicate or
// Corrupt in the Predictor (the next packet's k for Extra).
func (pr *Predictor) ExtraDraws() uint64 { return pr.ek }

// CorruptBit returns the bit the kernel flips in a corrupted packet for
// its y (Extra's): b = (y * N) >> 32 with N = 8 * spanBytes, bit b & 7
// (mask 1 << (b & 7)) of byte b >> 3 of the span. The span is the bytes
// the flip may touch: from the end of the IPv4 header (ihl * 4) or of
// IPv6's fixed 40 bytes to the packet's end, or, with CorruptHeader, from
// the network header on; byteIndex counts from the span's start. A span of
// no byte returns -1, 0: the packet leaves intact.
func CorruptBit(y uint32, spanBytes int) (byteIndex int, mask byte) {
	if spanBytes <= 0 {
		return -1, 0
	}
	hi, lo := bits.Mul64(uint64(y), 8*uint64(spanBytes))
	b := hi<<32 | lo>>32
	return int(b >> 3), 1 << (b & 7)
}

// CorruptAt returns where the kernel flips a bit of the IP packet pkt
// (from its network header) for its y (Extra's): the byte's offset in pkt
// and the bit's mask. Without header, the span runs from the end of the
// IPv4 header (ihl * 4) or of IPv6's fixed 40 bytes to the end; with
// header (CorruptHeader), from the network header on but for the
// destination address (IPv4's bytes 16 to 19, IPv6's 24 to 39), which the
// count leaves out. A packet that is neither IPv4 nor IPv6, or whose span
// holds no byte, returns -1, 0: the kernel leaves it intact.
func CorruptAt(y uint32, pkt []byte, header bool) (offset int, mask byte) {
	if len(pkt) == 0 {
		return -1, 0
	}
	var start, dst, dlen int
	switch pkt[0] >> 4 {
	case 4:
		start, dst, dlen = int(pkt[0]&0xf)*4, 16, 4
	case 6:
		start, dst, dlen = 40, 24, 16
	default:
		return -1, 0
	}
	if header {
		if len(pkt) < dst+dlen {
			return -1, 0
		}
		i, m := CorruptBit(y, len(pkt)-dlen)
		if i >= dst {
			i += dlen
		}
		return i, m
	}
	i, m := CorruptBit(y, len(pkt)-start)
	if i < 0 {
		return -1, 0
	}
	return start + i, m
}

// mix64 is the mixing steps of "Percent decisions" alone (SplitMix64's
// finalizer, without the increment).
func mix64(x uint64) uint64 {
	x = (x ^ (x >> 30)) * mix1
	x = (x ^ (x >> 27)) * mix2
	return x ^ (x >> 31)
}
