package genl

import (
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
