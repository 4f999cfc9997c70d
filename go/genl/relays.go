package genl

import (
	"math/bits"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// Constants of the seeded decision function (SplitMix64), from the uapi
// header's formula.
const (
	golden = 0x9e3779b97f4a7c15
	mix1   = 0xbf58476d1ce4e5b9
	mix2   = 0x94d049bb133111eb
)

// mix returns the 64-bit value that decides the fate of the k-th packet
// (k = 0, 1, 2, ...) handled since a percent policy with seed was set.
func mix(seed, k uint64) uint64 {
	x := seed + (k+1)*golden
	x = (x ^ (x >> 30)) * mix1
	x = (x ^ (x >> 27)) * mix2
	return x ^ (x >> 31)
}

// Relays is the kernel's seeded percent decision: whether the k-th packet
// (from 0) handled since a policy with this seed and percent, in millionths
// of a percent (as INSANE_POLICY_A_PERCENT: 80000000 relays 80 %), was set
// is relayed. This is the function documented in the uapi header, bit for
// bit.
func Relays(seed, k uint64, percentUnits uint32) bool {
	return relaysDraw(uint32(mix(seed, k)>>32), percentUnits)
}

// relaysDraw is the comparison the kernel makes for a 32-bit draw: the high
// half of mix for a seeded policy, a random value for an unseeded one.
func relaysDraw(draw uint32, percent uint32) bool {
	return uint64(draw)*uapi.PercentMax < uint64(percent)<<32
}

// threshold is the kernel's thr(num / den) = ceil(num * 2^32 / den), for a
// probability num / den (num <= den): a uniform 32-bit u is below it with
// that probability.
func threshold(num, den uint64) uint64 {
	hi, lo := bits.Mul64(num, 1<<32)
	q, r := bits.Div64(hi, lo, den)
	if r != 0 {
		q++
	}
	return q
}

// A chain holds the thresholds of a Gilbert chain (uapi header, "Gilbert
// decisions").
type chain struct{ p, r, lossBad, lossGood uint64 }

// chainOf returns the chain of a valid policy of mode burst or gilbert.
func chainOf(a Policy) chain {
	if a.Mode == ModeBurst {
		pu, bu := uint64(a.PercentUnits()), uint64(a.BurstUnits())
		return chain{
			p:       threshold((uapi.PercentMax-pu)*uapi.BurstScale, pu*bu),
			r:       threshold(uapi.BurstScale, bu),
			lossBad: 1 << 32,
		}
	}
	g, pm := a.Gilbert, uint64(uapi.PercentMax)
	return chain{
		p:        threshold(uint64(percentUnits(g.P)), pm),
		r:        threshold(uint64(percentUnits(g.R)), pm),
		lossBad:  threshold(uint64(percentUnits(g.LossBad)), pm),
		lossGood: threshold(uint64(percentUnits(g.LossGood)), pm),
	}
}

// decide moves the chain from state bad with the draw x and decides the
// packet in the new state.
func (c chain) decide(x uint64, bad bool) (drop, nowBad bool) {
	u, w := x>>32, x&0xffffffff
	if bad {
		bad = u >= c.r
	} else {
		bad = u < c.p
	}
	loss := c.lossGood
	if bad {
		loss = c.lossBad
	}
	return w < loss, bad
}

// A Predictor replays, bit for bit, the decisions the kernel makes under a
// seed: the seeded percent function (Relays), the Gilbert chain of burst
// and gilbert modes, and a schedule's steps, in the order of the packets
// the policy decides; the delays it draws (Delay), in the order of the
// packets that reach the delay stage; and which packets it duplicates and
// corrupts, and where (Extra, NextExtra, CorruptBit), in the order of the
// packets that meet an action with Duplicate or Corrupt. Use one Predictor per direction. Its zero value is not usable: see NewPredictor.
type Predictor struct {
	seed uint64
	k    uint64
	bad  bool
	// The chain of the last action, which is a value computed once.
	last  Policy
	chain chain
	// The delay draws' own k and correlated latent g (see Delay).
	dk uint64
	g  int64
	// The duplication and corruption draws' own k (see NextExtra).
	ek uint64
}

// NewPredictor returns a Predictor for a policy set with this seed, before
// its first packet. Feed it the packets that count toward k (uapi header,
// "Percent decisions"): those that reach the policy with a destination that
// is not multicast; the kernel's own IGMP, MLD and router solicitations
// take none.
func NewPredictor(seed uint64) *Predictor { return &Predictor{seed: seed} }

// Relays decides the next packet under action a, as the kernel does for a
// seeded policy of a's mode, or for a schedule with this seed whose step in
// force is a: pass and drop take no draw and leave the sequence where it
// is; percent, burst and gilbert take the next draw. a must be valid (its
// own seed is not used). For a whole policy of mode percent, burst or
// gilbert, pass the policy itself for every packet.
func (pr *Predictor) Relays(a Policy) bool {
	switch a.Mode {
	case ModePass:
		return true
	case ModeDrop:
		return false
	case ModePercent:
		x := mix(pr.seed, pr.k)
		pr.k++
		return relaysDraw(uint32(x>>32), a.PercentUnits())
	case ModeBurst, ModeGilbert:
		if !samePolicy(a, pr.last) {
			pr.last, pr.chain = a, chainOf(a)
		}
		x := mix(pr.seed, pr.k)
		pr.k++
		var drop bool
		drop, pr.bad = pr.chain.decide(x, pr.bad)
		return !drop
	}
	return false
}

// Bad reports whether the chain is in its bad state.
func (pr *Predictor) Bad() bool { return pr.bad }

// samePolicy compares the numbers of two step actions.
func samePolicy(a, b Policy) bool {
	return a.Mode == b.Mode && a.PercentUnits() == b.PercentUnits() && a.BurstUnits() == b.BurstUnits() &&
		a.Gilbert == b.Gilbert
}
