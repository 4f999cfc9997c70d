package genl

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

func TestMixSplitMix64Vectors(t *testing.T) {
	// With seed 0 the sequence is SplitMix64's reference output for state 0.
	want := []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f}
	for k, w := range want {
		if got := mix(0, uint64(k)); got != w {
			t.Errorf("mix(0, %d) = %#x, want %#x", k, got, w)
		}
	}
	// The seed shifts the whole sequence: mix(S, k) == mix(S+golden, k-1).
	for k := uint64(1); k < 100; k++ {
		if mix(42, k) != mix(42+golden, k-1) {
			t.Fatalf("mix(42, %d) is not the continuation of the sequence", k)
		}
	}
}

// bigRelays is the header's formula computed with unbounded integers, from
// the header's own words, to check Relays for overflow or truncation.
func bigRelays(seed, k uint64, percent uint32) bool {
	mod := new(big.Int).Lsh(big.NewInt(1), 64)
	u := func(v uint64) *big.Int { return new(big.Int).SetUint64(v) }
	x := new(big.Int).Add(u(seed), new(big.Int).Mul(u(k+1), u(golden)))
	x.Mod(x, mod)
	step := func(shift uint, mul uint64) {
		y := new(big.Int).Rsh(x, shift)
		x.Xor(x, y)
		x.Mul(x, u(mul))
		x.Mod(x, mod)
	}
	step(30, mix1)
	step(27, mix2)
	x.Xor(x, new(big.Int).Rsh(x, 31))
	lhs := new(big.Int).Mul(new(big.Int).Rsh(x, 32), big.NewInt(uapi.PercentMax))
	rhs := new(big.Int).Lsh(u(uint64(percent)), 32)
	return lhs.Cmp(rhs) < 0
}

func TestRelaysMatchesUnboundedArithmetic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		seed, k := r.Uint64(), r.Uint64N(1<<20)
		percent := uint32(r.Uint64N(uapi.PercentMax + 1))
		if i%7 == 0 {
			percent = r.Uint32() // out of range values too
		}
		if got, want := Relays(seed, k, percent), bigRelays(seed, k, percent); got != want {
			t.Fatalf("Relays(%d, %d, %d) = %v, want %v", seed, k, percent, got, want)
		}
	}
}

func TestRelaysBounds(t *testing.T) {
	for k := uint64(0); k < 10000; k++ {
		if Relays(7, k, 0) {
			t.Fatalf("0 %% relayed packet %d", k)
		}
		if !Relays(7, k, uapi.PercentMax) {
			t.Fatalf("100 %% dropped packet %d", k)
		}
	}
	// 50 %: the draw must be below 2^31.
	if !relaysDraw(1<<31-1, 50*uapi.PercentScale) || relaysDraw(1<<31, 50*uapi.PercentScale) {
		t.Error("50 % threshold is not at 2^31")
	}
	if relaysDraw(0, 0) || !relaysDraw(1<<32-1, uapi.PercentMax) {
		t.Error("extreme draws")
	}
}

func TestRelaysRate(t *testing.T) {
	const n = 200000
	for _, pct := range []uint32{1 * uapi.PercentScale, 12500000, 80 * uapi.PercentScale, 99 * uapi.PercentScale} {
		relayed := 0
		for k := uint64(0); k < n; k++ {
			if Relays(12345, k, pct) {
				relayed++
			}
		}
		got := float64(relayed) / n * 100
		want := float64(pct) / uapi.PercentScale
		if d := got - want; d > 0.5 || d < -0.5 {
			t.Errorf("percent %v: relayed %.3f %%", want, got)
		}
	}
}

func TestRelaysDeterministic(t *testing.T) {
	// Same seed, same sequence; another seed, another sequence.
	first := make([]bool, 1000)
	for k := range first {
		first[k] = Relays(1, uint64(k), 50*uapi.PercentScale)
	}
	diff := 0
	for k := range first {
		if Relays(1, uint64(k), 50*uapi.PercentScale) != first[k] {
			t.Fatalf("packet %d: a second evaluation differs", k)
		}
		if Relays(2, uint64(k), 50*uapi.PercentScale) != first[k] {
			diff++
		}
	}
	if diff < 400 || diff > 600 {
		t.Errorf("seeds 1 and 2 differ on %d of 1000 packets", diff)
	}
}

func TestThresholdExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20000; i++ {
		den := r.Uint64N(1<<59) + 1
		num := r.Uint64N(den + 1)
		if i%5 == 0 {
			num = den
		}
		want := new(big.Int).Lsh(new(big.Int).SetUint64(num), 32)
		q, m := new(big.Int).QuoRem(want, new(big.Int).SetUint64(den), new(big.Int))
		if m.Sign() != 0 {
			q.Add(q, big.NewInt(1))
		}
		if got := threshold(num, den); got != q.Uint64() {
			t.Fatalf("threshold(%d, %d) = %d, want %d", num, den, got, q)
		}
	}
	if threshold(uapi.PercentMax, uapi.PercentMax) != 1<<32 || threshold(0, 7) != 0 {
		t.Error("threshold of 1 or 0")
	}
}

// The seeded percent through a Predictor is Relays, and pass and drop take
// no draw.
func TestPredictorPercent(t *testing.T) {
	pr := NewPredictor(99)
	p := Percent(37.5, nil)
	k := uint64(0)
	for i := 0; i < 5000; i++ {
		switch i % 3 {
		case 0:
			if !pr.Relays(Pass()) {
				t.Fatal("pass dropped")
			}
		case 1:
			if pr.Relays(Drop()) {
				t.Fatal("drop relayed")
			}
		default:
			if got, want := pr.Relays(p), Relays(99, k, p.PercentUnits()); got != want {
				t.Fatalf("packet %d: %v, Relays says %v", k, got, want)
			}
			k++
		}
	}
}

// BurstStats are the observed loss and bursts of a drop sequence.
type burstStats struct {
	n, lost, bursts int
	lengths         map[int]int
}

func observe(relays func() bool, n int) burstStats {
	s := burstStats{n: n, lengths: map[int]int{}}
	run := 0
	for i := 0; i < n; i++ {
		if relays() {
			if run > 0 {
				s.lengths[run]++
				run = 0
			}
			continue
		}
		s.lost++
		if run == 0 {
			s.bursts++
		}
		run++
	}
	if run > 0 {
		s.lengths[run]++
	}
	return s
}

// The predictor's burst mode loses what it is configured to lose, in
// bursts of the configured mean length, within 4.5 standard deviations of
// a two-state chain (the bounds: see tests/vm/guest/kernel_burst_test.go).
func TestPredictorBurstStatistics(t *testing.T) {
	const n = 1000000
	for _, c := range []struct{ percent, burst float64 }{{95, 1}, {95, 5}, {80, 10}, {20, 4}, {50, 1.5}} {
		a := Burst(c.percent, c.burst, nil)
		pr := NewPredictor(uint64(c.percent*1000 + c.burst))
		s := observe(func() bool { return pr.Relays(a) }, n)
		q := 1 - c.percent/100 // loss
		r := 1 / c.burst
		p := q / (c.burst * (1 - q))
		lambda := 1 - p - r
		sigmaL := math.Sqrt(q * (1 - q) * (1 + lambda) / (1 - lambda) / n)
		if got := float64(s.lost) / n; math.Abs(got-q) > 4.5*sigmaL {
			t.Errorf("burst %v %v: loss %.5f, want %.5f ± %.5f", c.percent, c.burst, got, q, 4.5*sigmaL)
		}
		sigmaB := math.Sqrt(1-r) / r / math.Sqrt(float64(s.bursts))
		if got := float64(s.lost) / float64(s.bursts); math.Abs(got-c.burst) > 4.5*sigmaB {
			t.Errorf("burst %v %v: mean burst %.4f, want %v ± %.4f", c.percent, c.burst, got, c.burst, 4.5*sigmaB)
		}
		if c.burst == 1 && len(s.lengths) != 1 {
			t.Errorf("burst %v 1: bursts of lengths %v", c.percent, s.lengths)
		}
	}
}

// Gilbert-Elliott with losses in both states: the stationary loss is
// pi_bad * LossBad + pi_good * LossGood.
func TestPredictorGilbertLoss(t *testing.T) {
	const n = 1000000
	g := GilbertElliott{P: 2, R: 25, LossBad: 70, LossGood: 1}
	a := Gilbert(g, nil)
	pr := NewPredictor(5)
	s := observe(func() bool { return pr.Relays(a) }, n)
	piBad := g.P / (g.P + g.R)
	want := piBad*g.LossBad/100 + (1-piBad)*g.LossGood/100
	// A loose bound: the loss indicator's variance inflated by the
	// chain's memory, (1 + lambda) / (1 - lambda) with lambda = 1 - p - r.
	lambda := 1 - (g.P+g.R)/100
	sigma := math.Sqrt(want * (1 - want) * (1 + lambda) / (1 - lambda) / n)
	if got := float64(s.lost) / n; math.Abs(got-want) > 5*sigma {
		t.Errorf("gilbert loss %.5f, want %.5f ± %.5f", got, want, 5*sigma)
	}
}

// Two predictors of one seed agree; another seed differs.
func TestPredictorReplay(t *testing.T) {
	a := Burst(90, 4, nil)
	x, y, z := NewPredictor(1), NewPredictor(1), NewPredictor(2)
	diff := 0
	for i := 0; i < 10000; i++ {
		vx, vy, vz := x.Relays(a), y.Relays(a), z.Relays(a)
		if vx != vy {
			t.Fatalf("packet %d: one seed, two answers", i)
		}
		if vx != vz {
			diff++
		}
	}
	if diff == 0 {
		t.Error("seeds 1 and 2 give the same drop set")
	}
}
