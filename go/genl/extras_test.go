package genl

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// extraPolicies have every rate, duplication and corruption field, at the
// top and in the steps, for the encoders.
var extraPolicies = []Policy{
	{Mode: ModePass, Rate: 10e6},
	{Mode: ModePercent, Percent: 99, Seed: ptr(uint64(3)), Rate: 100e6, Overhead: 38, Buffer: 50 * ms, Delay: 20 * ms,
		Duplicate: 1, Corrupt: 0.1, CorruptHeader: true, Limit: 1000},
	{Mode: ModeTime, On: time.Second, Off: time.Second, Rate: RateMax, Buffer: DelayMax, Duplicate: 100, Corrupt: 0.000001},
	{Mode: ModeSchedule, Seed: ptr(uint64(9)), Steps: []Step{
		{Duration: 10 * time.Second, Action: Policy{Mode: ModePass, Rate: RateMin, Overhead: OverheadMax}},
		{Duration: 2 * time.Second, Action: Policy{Mode: ModeBurst, Percent: 90, Burst: 3, Duplicate: 12.5,
			Corrupt: 50, CorruptHeader: true, Delay: ms}},
		{Duration: time.Second, Action: Drop()},
	}},
}

func TestRateFormat(t *testing.T) {
	for bps, want := range map[uint64]string{
		10000000: "10mbit", 1500000: "1500kbit", 12: "12bit", 8: "8bit", 1000: "1kbit", 1e12: "1tbit",
		2e9: "2gbit", 1001000: "1001kbit", 999999999999: "999999999999bit", 0: "0bit", 5e12: "5tbit",
	} {
		if got := FormatRate(bps); got != want {
			t.Errorf("FormatRate(%d) = %q, want %q", bps, got, want)
		}
	}
}

func TestRateParse(t *testing.T) {
	for s, want := range map[string]uint64{
		"10mbit": 10e6, "10Mbit": 10e6, "10MBIT": 10e6, "100": 100, "8bit": 8, "8": 8, "1tbit": 1e12, "1.5mbit": 1.5e6,
		"2gbit": 2e9, "64kbit": 64e3, "1kibit": 1024, "1mibit": 1 << 20, "1gibit": 1 << 30, "0.5tibit": 1 << 39,
		"1bps": 8, "1kbps": 8e3, "1.5mbps": 12e6, "1gbps": 8e9, "0.125tbps": 1e12, "1kibps": 8 << 10, "1MiBps": 8 << 20,
		"1gibps": 8 << 30, ".5kbit": 500, "7.kbit": 7000, "0.001mbit": 1000, "100.000kbit": 100000,
	} {
		got, err := ParseRate(s)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v, want %d", s, got, err, want)
		}
		// Printed back, the rate reads as the same.
		if back, err := ParseRate(FormatRate(got)); err != nil || back != got {
			t.Errorf("%q: %s reads back as %d, %v", s, FormatRate(got), back, err)
		}
	}
	for s, msg := range map[string]string{
		"":                            `rate "" is not a rate`,
		"x":                           `rate "x" is not a rate`,
		"-1mbit":                      `rate "-1mbit" is not a rate`,
		"+1mbit":                      `rate "+1mbit" is not a rate`,
		"1e6":                         `rate "1e6" is not a rate`,
		"1 mbit":                      `rate "1 mbit" is not a rate`,
		"1mbits":                      `unknown unit "mbits"`,
		"1kb":                         `unknown unit "kb"`,
		"1.5bit":                      `rate "1.5bit" is not a whole number of bits per second`,
		"1.0000001kbit":               `is not a whole number`,
		"0.1kibit":                    `is not a whole number`,
		"7":                           `rate "7" is not between 8bit and 1tbit`,
		"0mbit":                       `is not between 8bit and 1tbit`,
		"1.000000000001tbit":          `is not between`,
		"1tibit":                      `rate "1tibit" is not between 8bit and 1tbit`,
		"99999999999999999999999tbit": `is not between`,
	} {
		if _, err := ParseRate(s); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseRate(%q): %v, want %q", s, err, msg)
		}
	}
}

// bigSerialization is floor((l + o) * 8 * 10^9 / r), in math/big.
func bigSerialization(l, o int, r uint64) *big.Int {
	n := new(big.Int).Mul(big.NewInt(int64(l+o)), big.NewInt(8e9))
	return n.Quo(n, new(big.Int).SetUint64(r))
}

func TestSerializationNs(t *testing.T) {
	for _, c := range []struct {
		l, o int
		r    uint64
		want uint64
	}{
		{1500, 0, 10e6, 1200000},  // 12000 bits at 10 Mbit/s: 1.2 ms
		{1500, 38, 10e6, 1230400}, // with Ethernet's overhead
		{100, 0, 3, 266666666666}, // rounded down
		{1, 0, RateMax, 0},        // 8 bits at 1 Tbit/s: 8 ps
		{125, 0, RateMax, 1},      // 1000 bits: 1 ns
		{64, 4096, RateMin, 4160000000000},
		{0, 0, 10e6, 0}, {-5, 2, 10e6, 0}, {100, 0, 0, 0},
	} {
		if got := SerializationNs(c.l, c.o, c.r); got != c.want {
			t.Errorf("SerializationNs(%d, %d, %d) = %d, want %d", c.l, c.o, c.r, got, c.want)
		}
	}
	// Against math/big over lengths, overheads and rates, the awkward
	// ones (primes, the bounds) included.
	for _, r := range []uint64{RateMin, 9, 1000003, 10e6, 999999999989, RateMax} {
		for _, l := range []int{1, 20, 40, 1499, 1500, 9000, 65535, 1 << 20, math.MaxInt32} {
			for _, o := range []int{0, 38, OverheadMax} {
				want := bigSerialization(l, o, r)
				got := SerializationNs(l, o, r)
				if !want.IsUint64() {
					if got != math.MaxUint64 {
						t.Errorf("L %d o %d R %d: %d, want saturation", l, o, r, got)
					}
					continue
				}
				if got != want.Uint64() {
					t.Errorf("L %d o %d R %d: %d, want %s", l, o, r, got, want)
				}
			}
		}
	}
	if d := (Policy{Mode: ModePass, Rate: 10e6, Overhead: 38}).Serialization(1500); d != 1230400 {
		t.Errorf("Policy.Serialization = %v", d)
	}
	if d := Pass().Serialization(1500); d != 0 {
		t.Errorf("no rate: %v", d)
	}
	// Saturates rather than wrapping: 2^40 bytes at 8 bit/s.
	if got := SerializationNs(1<<40, 0, RateMin); got != math.MaxUint64 {
		t.Errorf("huge: %d", got)
	}
}

// The header's draws, written again in math/big arithmetic modulo 2^64,
// apart from the uint64 code under test.

var two64 = new(big.Int).Lsh(big.NewInt(1), 64)

func bigU(v uint64) *big.Int { return new(big.Int).SetUint64(v) }

func bigMod(x *big.Int) *big.Int { return x.Mod(x, two64) }

// bigMix64 is the mixing steps of "Percent decisions".
func bigMix64(x *big.Int) *big.Int {
	x = new(big.Int).Set(x)
	x = bigMod(new(big.Int).Mul(new(big.Int).Xor(x, new(big.Int).Rsh(x, 30)), bigU(0xbf58476d1ce4e5b9)))
	x = bigMod(new(big.Int).Mul(new(big.Int).Xor(x, new(big.Int).Rsh(x, 27)), bigU(0x94d049bb133111eb)))
	return new(big.Int).Xor(x, new(big.Int).Rsh(x, 31))
}

// bigThr is thr(num / den) = ceil(num * 2^32 / den).
func bigThr(num, den uint64) *big.Int {
	n := new(big.Int).Lsh(bigU(num), 32)
	q, r := new(big.Int).QuoRem(n, bigU(den), new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

// bigExtra is the header's draw of the k-th packet: duplicated,
// corrupted, y.
func bigExtra(seed, k uint64, dup, corrupt uint32) (bool, bool, uint32) {
	s := new(big.Int).Xor(bigU(seed), bigU(0x2545f4914f6cdd1d))
	s.Add(s, new(big.Int).Mul(bigU(k+1), bigU(0x9e3779b97f4a7c15)))
	x := bigMix64(bigMod(s))
	hi := new(big.Int).Rsh(x, 32)
	lo := new(big.Int).And(x, bigU(0xffffffff))
	d := hi.Cmp(bigThr(uint64(dup), 100e6)) < 0
	c := lo.Cmp(bigThr(uint64(corrupt), 100e6)) < 0
	y := new(big.Int).Rsh(bigMix64(new(big.Int).Xor(x, bigU(0x9fb21c651e98df25))), 32)
	return d, c, uint32(y.Uint64())
}

func TestExtraDraws(t *testing.T) {
	if uapi.ExtraSalt != 0x2545f4914f6cdd1d || uapi.CorruptSalt != 0x9fb21c651e98df25 {
		t.Fatal("the salts moved: update the test's own copies")
	}
	// Pinned from an independent Python run of the header's formulas.
	for _, c := range []struct {
		seed, k      uint64
		dup, corrupt uint32
		d, c         bool
		y            uint32
	}{
		{3, 1, 25e6, 10.3e6, true, true, 0xd1423fb1},                // u 0x3c2e7a72 = 23.5 %, w 0x1a44dad3 = 10.26 %
		{3, 1, 23e6, 10e6, false, false, 0xd1423fb1},                // just below both
		{3, 0, 38.3e6, 0, true, false, 0x27e93b2f},                  // u 0x61cdf7ef = 38.2 %
		{3, 0, 38.2e6, 100e6, false, true, 0x27e93b2f},              // all corrupted at 100 %
		{0, 2, 100e6, 42.9e6, true, true, 0x262cb1fd},               // w 0x6dc47761 = 42.88 %
		{math.MaxUint64, 1, 4.7e6, 20.6e6, false, true, 0xc4b3ab4c}, // u 0x0c301ec9 = 4.76 %, w 0x348822c6 = 20.52 %
	} {
		pr := NewPredictor(c.seed)
		d, cor, y := pr.Extra(c.k, c.dup, c.corrupt)
		bd, bc, by := bigExtra(c.seed, c.k, c.dup, c.corrupt)
		if d != bd || cor != bc || y != by {
			t.Errorf("seed %d k %d: Extra %v %v %#x, math/big %v %v %#x", c.seed, c.k, d, cor, y, bd, bc, by)
		}
		if y != c.y {
			t.Errorf("seed %d k %d: y %#x, want %#x", c.seed, c.k, y, c.y)
		}
		if d != c.d || cor != c.c {
			t.Errorf("seed %d k %d dup %d corrupt %d: %v %v, want %v %v", c.seed, c.k, c.dup, c.corrupt, d, cor, c.d, c.c)
		}
	}
	// Against math/big over seeds, k and shares, the bounds included.
	shares := []uint32{0, 1, 1e6, 12.5e6, 50e6, 99999999, 100e6}
	for _, seed := range []uint64{0, 1, 3, 0x2545f4914f6cdd1d, math.MaxUint64} {
		pr := NewPredictor(seed)
		for k := uint64(0); k < 200; k++ {
			dup, cor := shares[k%uint64(len(shares))], shares[(k/3)%uint64(len(shares))]
			d, c, y := pr.Extra(k, dup, cor)
			bd, bc, by := bigExtra(seed, k, dup, cor)
			if d != bd || c != bc || y != by {
				t.Fatalf("seed %d k %d dup %d corrupt %d: %v %v %#x, math/big %v %v %#x", seed, k, dup, cor, d, c, y, bd, bc, by)
			}
			if (dup == 0 && d) || (cor == 0 && c) || (dup == 100e6 && !d) || (cor == 100e6 && !c) {
				t.Fatalf("seed %d k %d: 0 %% or 100 %% drew otherwise", seed, k)
			}
		}
		if pr.ExtraDraws() != 0 {
			t.Error("Extra moved the Predictor")
		}
	}
	// The shares come out: 10^5 draws at 1 % and 0.1 %.
	pr := NewPredictor(42)
	var nd, nc int
	for k := uint64(0); k < 100000; k++ {
		d, c, _ := pr.Extra(k, 1e6, 0.1e6)
		if d {
			nd++
		}
		if c {
			nc++
		}
	}
	if nd < 900 || nd > 1100 || nc < 70 || nc > 130 {
		t.Errorf("%d duplicated at 1 %%, %d corrupted at 0.1 %% of 100000", nd, nc)
	}
}

// TestNextExtra: only the packets that meet an action with Duplicate or
// Corrupt take a k, as in a schedule whose steps differ.
func TestNextExtra(t *testing.T) {
	const seed = 7
	pr, ref := NewPredictor(seed), NewPredictor(seed)
	dup := Policy{Mode: ModePass, Duplicate: 30}
	cor := Policy{Mode: ModePercent, Percent: 50, Corrupt: 60, CorruptHeader: true}
	plain := Policy{Mode: ModePass, Delay: ms, Rate: 10e6}
	k := uint64(0)
	for i, a := range []Policy{dup, plain, cor, cor, plain, plain, dup, cor} {
		d, c, y := pr.NextExtra(a)
		if a.Duplicate == 0 && a.Corrupt == 0 {
			if d || c || y != 0 {
				t.Errorf("packet %d: an action without either drew %v %v %#x", i, d, c, y)
			}
			continue
		}
		wd, wc, wy := ref.Extra(k, a.DuplicateUnits(), a.CorruptUnits())
		if d != wd || c != wc || y != wy {
			t.Errorf("packet %d (k %d): %v %v %#x, want %v %v %#x", i, k, d, c, y, wd, wc, wy)
		}
		k++
	}
	if pr.ExtraDraws() != k || pr.DelayDraws() != 0 {
		t.Errorf("%d extra draws (want %d), %d delay draws", pr.ExtraDraws(), k, pr.DelayDraws())
	}
	// The decisions and the delays keep their own k.
	pr.Relays(Percent(50, nil))
	pr.Delay(Policy{Mode: ModePass, Delay: ms, Jitter: ms})
	if pr.ExtraDraws() != k || pr.DelayDraws() != 1 {
		t.Errorf("after a decision and a delay: %d extra draws, %d delay draws", pr.ExtraDraws(), pr.DelayDraws())
	}
}

func TestCorruptBit(t *testing.T) {
	for _, c := range []struct {
		y    uint32
		span int
		i    int
		mask byte
	}{
		{0, 1, 0, 1}, {math.MaxUint32, 1, 0, 0x80}, {1 << 31, 1, 0, 0x10}, // b = 4
		{0xd1423fb1, 1000, 817, 0x08}, // Python: b = 6539
		{0x27e93b2f, 1000, 155, 0x80}, // b = 1247
		{math.MaxUint32, 1 << 20, 1<<20 - 1, 0x80},
		{12345, 0, -1, 0}, {12345, -3, -1, 0},
	} {
		i, m := CorruptBit(c.y, c.span)
		if i != c.i || m != c.mask {
			t.Errorf("CorruptBit(%#x, %d) = %d %#x, want %d %#x", c.y, c.span, i, m, c.i, c.mask)
		}
	}
	// b = (y * N) >> 32 in math/big, over spans.
	for _, span := range []int{1, 7, 20, 1460, 65515, 1<<31 - 1} {
		for _, y := range []uint32{0, 1, 0x7fffffff, 0x80000000, 0xdeadbeef, math.MaxUint32} {
			b := new(big.Int).Mul(bigU(uint64(y)), big.NewInt(8*int64(span)))
			b.Rsh(b, 32)
			i, m := CorruptBit(y, span)
			if int64(i) != b.Int64()>>3 || m != 1<<(b.Int64()&7) || i >= span {
				t.Errorf("CorruptBit(%#x, %d) = %d %#x, math/big bit %s", y, span, i, m, b)
			}
		}
	}
}

// TestCorruptAt places the bit in the packet as the kernel's
// insane_corrupt() does: past the IP header, or anywhere but the
// destination address with header.
func TestCorruptAt(t *testing.T) {
	v4 := make([]byte, 48) // a 20-byte header and 28 bytes of UDP
	v4[0] = 0x45
	v6 := make([]byte, 60)
	v6[0] = 0x60
	for _, c := range []struct {
		pkt    []byte
		y      uint32
		header bool
		off    int
		mask   byte
	}{
		{v4, 0, false, 20, 1},                    // the first byte past the header
		{v4, math.MaxUint32, false, 47, 0x80},    // the last bit of the packet
		{v4, 0, true, 0, 1},                      // the version's byte
		{v4, math.MaxUint32, true, 47, 0x80},     // the span is 44 bytes: the last is 47
		{v4, (16*8)<<32/(44*8) + 1, true, 20, 1}, // b = 128: byte 16 of the span, past daddr
		{v4, (16*8)<<32/(44*8) - 1, true, 15, 0x80},
		{v6, 0, false, 40, 1},
		{v6, (24*8)<<32/(44*8) + 1, true, 40, 1}, // byte 24 of the span, past daddr
		{v4[:20], 5, false, -1, 0},               // a header alone
		{v4[:20], 5, true, 0, 1},                 // the header alone still has bytes to flip
		{v4[:20], math.MaxUint32, true, 15, 0x80},
		{[]byte{0x10, 0, 0}, 5, true, -1, 0},
	} {
		off, m := CorruptAt(c.y, c.pkt, c.header)
		if off != c.off || m != c.mask {
			t.Errorf("CorruptAt(%#x, %d bytes v%d, header %v) = %d %#x, want %d %#x", c.y, len(c.pkt), c.pkt[0]>>4,
				c.header, off, m, c.off, c.mask)
		}
	}
}

// TestExtrasValidate refuses what the uapi header refuses, naming the
// word, and takes the rest.
func TestExtrasValidate(t *testing.T) {
	seed := ptr(uint64(5))
	step := func(a Policy) Policy { return Schedule(false, nil, Step{Duration: time.Second, Action: a}) }
	valid := append([]Policy{
		{Mode: ModePass, Rate: RateMin}, {Mode: ModeDrop, Rate: RateMax, Overhead: OverheadMax, Buffer: 1},
		{Mode: ModePass, Duplicate: 100, Corrupt: 100}, {Mode: ModePass, Duplicate: 0.000001},
		{Mode: ModePass, Corrupt: 0.0000006, CorruptHeader: true}, // rounds to 1 unit
		// A seed goes with duplicate or corrupt whatever the mode.
		{Mode: ModePass, Duplicate: 1, Seed: seed}, {Mode: ModeDrop, Corrupt: 1, Seed: seed},
		{Mode: ModeTime, On: 1, Off: 1, Duplicate: 1, Seed: seed},
		step(Policy{Mode: ModePass, Rate: 1e6, Buffer: DelayMax, Duplicate: 5, Corrupt: 5, CorruptHeader: true}),
	}, extraPolicies...)
	for _, p := range valid {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		if err := p.ValidateRx(); err != nil {
			t.Errorf("rx %s: %v", p, err)
		}
	}
	sched := Schedule(false, nil, Step{Duration: time.Second, Action: Pass()})
	with := func(p Policy, f func(*Policy)) Policy { f(&p); return p }
	for _, c := range []struct {
		p    Policy
		want string
	}{
		{Policy{Mode: ModePass, Rate: 7}, "rate 7bit is not between 8bit and 1tbit"},
		{Policy{Mode: ModePass, Rate: RateMax + 1}, "rate 1000000000001bit is not between 8bit and 1tbit"},
		{Policy{Mode: ModePass, Overhead: 38}, "overhead needs a rate: rate R overhead N"},
		{Policy{Mode: ModePass, Buffer: ms}, "buffer needs a rate: rate R buffer B"},
		{Policy{Mode: ModePass, Rate: 1e6, Overhead: OverheadMax + 1}, "overhead 4097 is not between 0 and 4096 bytes"},
		{Policy{Mode: ModePass, Rate: 1e6, Overhead: -1}, "overhead -1 is not between 0 and 4096"},
		{Policy{Mode: ModePass, Rate: 1e6, Buffer: -1}, "buffer -1ns must be above 0"},
		{Policy{Mode: ModePass, Rate: 1e6, Buffer: DelayMax + 1}, "buffer 60000000001ns is above 60s, the longest buffer"},
		{Policy{Mode: ModePass, Duplicate: 100.5}, "duplicate 100.5 is not above 0 and at most 100"},
		{Policy{Mode: ModePass, Duplicate: -1}, "duplicate -1 is not above 0"},
		{Policy{Mode: ModePass, Duplicate: 0.0000004}, "duplicate 4e-07 is not above 0"},
		{Policy{Mode: ModePass, Corrupt: nan()}, "corrupt NaN is not above 0"},
		{Policy{Mode: ModePass, Corrupt: 101}, "corrupt 101 is not above 0"},
		{Policy{Mode: ModePass, CorruptHeader: true}, "header needs corrupt: corrupt P header"},
		{with(sched, func(p *Policy) { p.Rate = 1e6 }), "a schedule takes no rate of its own: give it to the steps (10s pass rate 10mbit)"},
		{with(sched, func(p *Policy) { p.Buffer = ms }), "a schedule takes no rate of its own"},
		{with(sched, func(p *Policy) { p.Duplicate = 1 }), "a schedule takes no duplicate of its own: give it to the steps (10s pass duplicate 1)"},
		{with(sched, func(p *Policy) { p.CorruptHeader = true }), "a schedule takes no corrupt of its own"},
		{step(Policy{Mode: ModePass, Rate: 1}), "step 1: rate 1bit is not between"},
		{step(Policy{Mode: ModePass, CorruptHeader: true}), "step 1: header needs corrupt"},
		{step(Policy{Mode: ModePass, Duplicate: 1, Seed: seed}), "step 1: a step takes no seed"},
		{Policy{Mode: ModePass, Rate: 1e6, Seed: seed}, "mode pass takes no seed without a jitter, duplicate or corrupt"},
	} {
		err := c.p.Validate()
		if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.p, err, c.want)
		}
	}
}

func TestExtrasString(t *testing.T) {
	for want, p := range map[string]Policy{
		"mode pass rate 10mbit": extraPolicies[0],
		"mode percent 99 delay 20ms rate 100mbit overhead 38 buffer 50ms duplicate 1 corrupt 0.1 header seed 3 limit 1000":       extraPolicies[1],
		"mode time 1s 1s rate 1tbit buffer 60s duplicate 100 corrupt 0.000001":                                                   extraPolicies[2],
		"mode schedule 10s pass rate 8bit overhead 4096 2s burst 90 3 delay 1ms duplicate 12.5 corrupt 50 header 1s drop seed 9": extraPolicies[3],
		"mode pass rate 1500kbit": {Mode: ModePass, Rate: 1.5e6},
		"mode pass rate 12bit":    {Mode: ModePass, Rate: 12},
		"mode drop corrupt 0.5":   {Mode: ModeDrop, Corrupt: 0.5},
	} {
		if got := p.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
	a, b := extraPolicies[1], extraPolicies[1]
	b.CorruptHeader = false
	if a.Equal(b) || !a.Equal(extraPolicies[1]) {
		t.Error("Equal ignores corrupt's header")
	}
	b = a
	b.Rate++
	if a.Equal(b) {
		t.Error("Equal ignores the rate")
	}
}

// TestConfigureDeviceExtras checks the attributes the client sends, at a
// policy's top and in a schedule's steps, both directions.
func TestConfigureDeviceExtras(t *testing.T) {
	want := map[uint16][]byte{
		uapi.PolicyAMode: u32(uapi.ModePercent), uapi.PolicyAPercent: u32(99e6), uapi.PolicyASeed: u64(3),
		uapi.PolicyADelayNs: u64(20e6), uapi.PolicyALimit: u32(1000),
		uapi.PolicyARate: u64(100e6), uapi.PolicyAOverhead: u32(38), uapi.PolicyABufferNs: u64(50e6),
		uapi.PolicyADuplicate: u32(1e6), uapi.PolicyACorrupt: u32(0.1e6), uapi.PolicyACorruptHeader: {},
	}
	wantRx := map[uint16][]byte{uapi.PolicyAMode: u32(uapi.ModePass), uapi.PolicyARate: u64(10e6)}
	c := setDeviceClient(t, want, wantRx)
	if err := c.ConfigureDevice("ins0", Config{Policy: &extraPolicies[1], RxPolicy: &extraPolicies[0]}); err != nil {
		t.Fatal(err)
	}
	// In a schedule, each step's in the step, none at the top.
	wantSteps := []map[uint16][]byte{
		{uapi.PolicyAMode: u32(uapi.ModePass), uapi.PolicyADurationNs: u64(10e9), uapi.PolicyARate: u64(8),
			uapi.PolicyAOverhead: u32(4096)},
		{uapi.PolicyAMode: u32(uapi.ModeBurst), uapi.PolicyAPercent: u32(90e6), uapi.PolicyABurst: u32(3000),
			uapi.PolicyADurationNs: u64(2e9), uapi.PolicyADelayNs: u64(1e6), uapi.PolicyADuplicate: u32(12.5e6),
			uapi.PolicyACorrupt: u32(50e6), uapi.PolicyACorruptHeader: {}},
		{uapi.PolicyAMode: u32(uapi.ModeDrop), uapi.PolicyADurationNs: u64(1e9)},
	}
	c, _ = testClient(t, genltest.CheckRequest(testFamily.ID, uapi.CmdSetDevice, netlink.Request|netlink.Acknowledge,
		func(greq genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
			p := attrs(t, attrs(t, greq.Data)[uapi.DeviceARxPolicy])
			for _, a := range []uint16{uapi.PolicyARate, uapi.PolicyAOverhead, uapi.PolicyABufferNs, uapi.PolicyADuplicate,
				uapi.PolicyACorrupt, uapi.PolicyACorruptHeader} {
				if p[a] != nil {
					t.Errorf("attribute %d at the schedule's top", a)
				}
			}
			if diff := cmp.Diff(wantSteps, stepsAttrs(t, p[uapi.PolicyASteps])); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			return nil, genltest.Error(0)
		}), nil, nil)
	if err := c.ConfigureDevice("ins0", Config{RxPolicy: &extraPolicies[3]}); err != nil {
		t.Fatal(err)
	}
	// What Validate refuses is not sent, and the message names the word.
	c = unsentClient(t)
	for cfg, msg := range map[*Config]string{
		{Policy: &Policy{Mode: ModePass, Buffer: ms}}:     "configure device ins0: invalid policy: buffer needs a rate",
		{RxPolicy: &Policy{Mode: ModePass, Corrupt: 101}}: "configure device ins0: receive policy: invalid policy: corrupt 101",
	} {
		if err := c.ConfigureDevice("ins0", *cfg); !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), msg) {
			t.Errorf("refusal %v, want %q", err, msg)
		}
	}
}

// TestDeviceExtras reads the fields back from a reply written as the
// kernel writes it (the fake writes the overhead out with every rate).
func TestDeviceExtras(t *testing.T) {
	for _, p := range extraPolicies {
		d := Device{Name: "ins0", Index: 3, Policy: p, RxPolicy: &extraPolicies[1],
			Stats: Stats{RelayedPackets: 10, DropNoMemory: 1, Duplicated: 3, Corrupted: 2, RxDuplicated: 5, RxCorrupted: 4}}
		checkDeviceReadBack(t, d)
	}
}

// TestLinkDataExtras round-trips the fields through rtnetlink's
// IFLA_INFO_DATA, both directions.
func TestLinkDataExtras(t *testing.T) {
	for i := range extraPolicies {
		p, rx := &extraPolicies[i], &extraPolicies[(i+1)%len(extraPolicies)]
		checkLinkDataRoundTrip(t, p, rx)
	}
	bad := LinkData{RxPolicy: ptr(Policy{Mode: ModePass, Rate: RateMax + 1})}
	if err := bad.Encode(netlink.NewAttributeEncoder()); !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), "rate") {
		t.Errorf("rate above the most encoded: %v", err)
	}
}

// FuzzParseRate: ParseRate never panics, and what it takes is in range
// and prints back as a rate it reads alike.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10mbit", "1.5Gbit", "100kbps", "8", "1tibit", "0.125tbps", "1.5bit", "", "x", ".5kbit"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseRate(s)
		if err != nil {
			return
		}
		if v < RateMin || v > RateMax {
			t.Fatalf("%q read as %d, out of range", s, v)
		}
		if back, err := ParseRate(FormatRate(v)); err != nil || back != v {
			t.Fatalf("%q read as %d, printed %s, read back as %d, %v", s, v, FormatRate(v), back, err)
		}
	})
}
