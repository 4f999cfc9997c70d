package genl

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// The delay stage's draws, bit for bit as the uapi header's "Delay draws"
// give them: integer arithmetic only, on the tables of zz_dist.go, which
// go/internal/distgen writes with the kernel's.

const (
	distLast = len(distNormal) - 1 // the last knot
	// gMax bounds the correlated latent g: 8 standard deviations in Q16.
	gMax = 8 << 16
	// The weights of paretonormal's two draws, in Q16: 1/2 and sqrt(3)/2.
	pnNormal = 32768
	pnPareto = 56756
)

// distAt reads an inverse-CDF table at a 32-bit u: T[i] + ((T[i + 1] -
// T[i]) * f >> 20), i = u >> 20 and f = u & 0xfffff, the shift arithmetic.
func distAt(t *[len(distNormal)]int32, u uint32) int64 {
	i, f := u>>20, int64(u&0xfffff)
	a, b := int64(t[i]), int64(t[i+1])
	return a + (b-a)*f>>20
}

// phiAt reads the normal CDF table at a latent g in Q16 (clamped to
// +-gMax): at v = g + gMax, i = v >> 8 and f its low 8 bits, shifted by 8.
func phiAt(g int64) uint32 {
	v := g + gMax
	i, f := v>>8, v&0xff
	if i >= int64(distLast) {
		return distNormalCDF[distLast]
	}
	a, b := int64(distNormalCDF[i]), int64(distNormalCDF[i+1])
	return uint32(a + (b-a)*f>>8)
}

// paretoNormal is paretonormal's z for the draws u1 and u2.
func paretoNormal(u1, u2 uint32) int64 {
	return (distAt(&distNormal, u1)*pnNormal + distAt(&distPareto, u2)*pnPareto) >> 16
}

// zMax is the largest standardized draw (Q16) of distribution d, from its
// table's last knot; uniform's is 1.
func zMax(d Distribution) int64 {
	switch d {
	case DistNormal:
		return int64(distNormal[distLast])
	case DistPareto:
		return int64(distPareto[distLast])
	case DistParetoNormal:
		return (int64(distNormal[distLast])*pnNormal + int64(distPareto[distLast])*pnPareto) >> 16
	}
	return 1 << 16
}

// mulQ16 returns floor(j * z / 2^16) for a Q16 z, with a 128-bit product,
// saturated to the int64 range.
func mulQ16(j uint64, z int64) int64 {
	neg := z < 0
	m := uint64(z)
	if neg {
		m = uint64(-z)
	}
	hi, lo := bits.Mul64(j, m)
	if neg {
		// floor(-x) = -ceil(x)
		var c uint64
		lo, c = bits.Add64(lo, 0xffff, 0)
		hi += c
	}
	if hi>>15 != 0 {
		if neg {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	q := int64(hi<<48 | lo>>16)
	if neg {
		return -q
	}
	return q
}

// satAdd adds two durations, saturating.
func satAdd(a, b int64) int64 {
	s := a + b
	if a > 0 && b > 0 && s < 0 {
		return math.MaxInt64
	}
	return s
}

// MaxDelay returns the longest delay the policy's (or step's) delay stage
// can draw: Delay without a Jitter, Delay + Jitter for uniform, and
// Delay + (Jitter * z_max >> 16) for the others, z_max their table's last
// knot. The kernel refuses a policy whose MaxDelay exceeds DelayMax.
func (p Policy) MaxDelay() time.Duration {
	if p.Jitter <= 0 {
		return p.Delay
	}
	if p.Distribution == DistUniform {
		return time.Duration(satAdd(int64(p.Delay), int64(p.Jitter)))
	}
	return time.Duration(satAdd(int64(p.Delay), mulQ16(uint64(p.Jitter), zMax(p.Distribution))))
}

// CheckDelay checks the delay stage and the limit of a policy, or of a
// schedule's step with step, as the kernel does (see the uapi header's
// "Delay"); Validate calls it. The message names the word at fault.
func (p Policy) CheckDelay(step bool) error {
	bad := fmt.Errorf
	if p.Limit != 0 {
		if step {
			return bad("a step takes no limit: the schedule has it")
		}
		if p.Limit < 1 || p.Limit > DelayLimitMax {
			return bad("limit %d is not between 1 and %d", p.Limit, DelayLimitMax)
		}
	}
	if p.Delay == 0 {
		switch {
		case p.Jitter != 0:
			return bad("jitter needs a delay: delay D jitter J")
		case p.Correlation != 0:
			return bad("correlation needs a delay and a jitter: delay D jitter J correlation C")
		case p.Distribution != DistUniform:
			return bad("distribution needs a delay and a jitter: delay D jitter J distribution %s", p.Distribution)
		case p.Reorder:
			return bad("reorder needs a delay: delay D reorder")
		}
		return nil
	}
	if p.Mode == ModeSchedule && !step {
		return bad("a schedule takes no delay of its own: give it to the steps (10s pass delay 50ms)")
	}
	if p.Delay < 0 {
		return bad("delay %s must be above 0", FormatDuration(p.Delay))
	}
	if p.Delay > DelayMax {
		return bad("delay %s is above %s, the longest delay", FormatDuration(p.Delay), FormatDuration(DelayMax))
	}
	if p.Jitter < 0 {
		return bad("jitter %s is negative", FormatDuration(p.Jitter))
	}
	if p.Jitter == 0 {
		switch {
		case p.Correlation != 0:
			return bad("correlation needs a jitter: delay D jitter J correlation C")
		case p.Distribution != DistUniform:
			return bad("distribution needs a jitter: delay D jitter J distribution %s", p.Distribution)
		}
		return nil
	}
	if p.Distribution > DistParetoNormal {
		return bad("unknown distribution %d", uint32(p.Distribution))
	}
	if c := p.Correlation; math.IsNaN(c) || c < 0 || c > 100 || percentUnits(c) >= uapi.PercentMax {
		return bad("correlation %v is not from 0 to below 100", c)
	}
	jd := FormatDuration(p.Jitter) + " with delay " + FormatDuration(p.Delay)
	switch p.Distribution {
	case DistUniform:
		if p.Jitter > p.Delay {
			return bad("jitter %s: uniform would draw below 0 (jitter at most the delay)", jd)
		}
	case DistPareto:
		// D + (J * z_min >> 16) < 0, z_min the first knot, is
		// J * -z_min > D * 2^16.
		if lo := mulQ16(uint64(p.Jitter), int64(distPareto[0])); satAdd(int64(p.Delay), lo) < 0 {
			most := uint64(p.Delay) << 16 / uint64(-distPareto[0])
			return bad("jitter %s: pareto would draw below 0 (jitter at most %s)", jd,
				FormatDuration(time.Duration(most)))
		}
	}
	if m := p.MaxDelay(); m > DelayMax {
		return bad("jitter %s: %s would draw up to %s, above %s", jd, p.Distribution, FormatDuration(m),
			FormatDuration(DelayMax))
	}
	return nil
}

// Delay returns the delay the kernel gives the next packet of the
// direction that reaches the delay stage of action a (the policy itself,
// or the schedule's step in force when the packet arrived), under the
// Predictor's seed, bit for bit as the uapi header's "Delay draws": 0
// without a delay stage, a.Delay without a jitter (neither takes a draw),
// else the draw of the next k. The delays have their own k and correlated
// latent g, apart from the decisions' k and chain (Relays). The packet
// leaves at Departure.
func (pr *Predictor) Delay(a Policy) time.Duration {
	if a.Delay <= 0 {
		return 0
	}
	if a.Jitter <= 0 {
		return a.Delay
	}
	x := mix(pr.seed^uapi.DelaySalt, pr.dk)
	u1, u2 := uint32(x>>32), uint32(x)
	n := distAt(&distNormal, u1)
	if pr.dk == 0 {
		pr.g = n
	} else {
		rq := int64(uint64(percentUnits(a.Correlation)) << 16 / uapi.PercentMax)
		s := int64(isqrt(1<<32 - uint64(rq*rq)))
		g := (rq*pr.g + s*n) >> 16
		pr.g = min(max(g, -gMax), gMax)
	}
	pr.dk++
	correlated := percentUnits(a.Correlation) != 0
	if correlated {
		u1 = phiAt(pr.g)
	}
	d, j := int64(a.Delay), int64(a.Jitter)
	switch a.Distribution {
	case DistUniform:
		hi, lo := bits.Mul64(2*uint64(j), uint64(u1))
		d = d - j + int64(hi<<32|lo>>32)
	case DistNormal:
		z := n
		if correlated {
			z = pr.g
		}
		d += mulQ16(uint64(j), z)
	case DistPareto:
		d += mulQ16(uint64(j), distAt(&distPareto, u1))
	case DistParetoNormal:
		d += mulQ16(uint64(j), paretoNormal(u1, u2))
	}
	return time.Duration(max(d, 0))
}

// DelayDraws returns how many delays the Predictor has drawn (the next
// packet's k).
func (pr *Predictor) DelayDraws() uint64 { return pr.dk }

// isqrt returns floor(sqrt(v)).
func isqrt(v uint64) uint64 {
	r := uint64(math.Sqrt(float64(v)))
	for r*r > v {
		r--
	}
	for (r+1)*(r+1) <= v {
		r++
	}
	return r
}

// Departure returns when a held packet leaves (the uapi header's
// "Order"): at arrival plus its drawn delay d with reorder, else at the
// later of that and flowLast, the last departure of its flow (0 for the
// flow's first packet), so that no packet of a flow overtakes an earlier
// one. The caller keeps the returned time as the flow's new flowLast.
func Departure(arrival, d, flowLast time.Duration, reorder bool) time.Duration {
	dep := arrival + d
	if !reorder && flowLast > dep {
		return flowLast
	}
	return dep
}
