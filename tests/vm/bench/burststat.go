package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The statistics of the burst phase (burst.go): the loss pattern of a run
// of numbered datagrams, and what the two-state chain of burst mode says
// it should be. Pure functions, tested on the host (burststat_test.go).

// burstHist is the longest burst length counted on its own; longer
// bursts share the tail bucket.
const burstHist = 20

// lossPattern is the loss of a run of n datagrams numbered 0 to n-1.
type lossPattern struct {
	N    uint64 `json:"n"`
	Lost uint64 `json:"lost"`
	// Bursts counts the complete bursts (maximal runs of lost
	// datagrams), BurstLost the datagrams in them, Longest the longest.
	Bursts    uint64 `json:"bursts"`
	BurstLost uint64 `json:"burst_lost"`
	Longest   uint64 `json:"longest"`
	// Cut is the length of a burst that the end of the run cut (it runs
	// up to datagram n-1), 0 if there is none: it is in Lost, but not in
	// the burst statistics, since its true length is unknown.
	Cut uint64 `json:"cut"`
	// Hist[l-1] counts the complete bursts of length l, for l up to
	// burstHist; Hist[burstHist] those longer.
	Hist []uint64 `json:"hist"`
}

// lossPatternOf derives the loss pattern of a run of n datagrams from the
// sequence numbers that arrived, ascending and distinct, each below n.
// The gap before the first arrival is a complete burst: both chains start
// in the good state, so a run never begins inside a burst that started
// before it.
func lossPatternOf(seqs []uint64, n uint64) (lossPattern, error) {
	lp := lossPattern{N: n, Hist: make([]uint64, burstHist+1)}
	add := func(l uint64) {
		lp.Bursts++
		lp.BurstLost += l
		lp.Longest = max(lp.Longest, l)
		lp.Hist[min(l, burstHist+1)-1]++
	}
	next := uint64(0) // the first sequence number not yet accounted for
	for i, s := range seqs {
		if s >= n {
			return lp, fmt.Errorf("sequence number %d of a run of %d", s, n)
		}
		if i > 0 && s <= seqs[i-1] {
			return lp, fmt.Errorf("sequence numbers not ascending and distinct: %d after %d", s, seqs[i-1])
		}
		if s > next {
			add(s - next)
		}
		next = s + 1
	}
	lp.Cut = n - next
	lp.Lost = n - uint64(len(seqs))
	return lp, nil
}

// gilbert is the two-state chain of burst mode (the uapi header's
// "Policies"): good -> bad with probability p, bad -> good with r, every
// packet lost in the bad state and none in the good one. Its loss q is the
// bad state's stationary share p / (p + r); bursts are geometric, of mean
// 1 / r.
type gilbert struct{ q, p, r float64 }

// burstChain is the chain of "mode burst percent burst": q = 1 - percent
// / 100, r = 1 / burst, p = q / (burst (1 - q)) (the header's p =
// (100 % - PERCENT) / (PERCENT BURST)), so that p / (p + r) = q.
func burstChain(percent, burst float64) gilbert {
	q := 1 - percent/100
	return gilbert{q: q, p: q / (burst * (1 - q)), r: 1 / burst}
}

// lambda is the chain's second eigenvalue, 1 - p - r: the bad-state
// indicator's autocorrelation at lag j is lambda^j.
func (g gilbert) lambda() float64 { return 1 - g.p - g.r }

// lossSD is the standard deviation of the observed loss over n packets in
// the stationary chain: the variance of a mean of n indicators whose lag-j
// autocorrelation is lambda^j is q (1 - q) (1 + lambda) / (1 - lambda) / n
// (to O(1/n^2)).
func (g gilbert) lossSD(n uint64) float64 {
	l := g.lambda()
	return math.Sqrt(g.q * (1 - g.q) * (1 + l) / (1 - l) / float64(n))
}

// meanBurst is the configured mean burst length, 1 / r.
func (g gilbert) meanBurst() float64 { return 1 / g.r }

// meanBurstSD is the standard deviation of the mean of m independent
// geometric burst lengths of mean 1 / r (variance (1 - r) / r^2):
// sqrt(1 - r) / (r sqrt(m)). 0 when r = 1: every burst is one packet.
func (g gilbert) meanBurstSD(m uint64) float64 {
	return math.Sqrt(1-g.r) / (g.r * math.Sqrt(float64(m)))
}

// pLen is P(L = l) = r (1 - r)^(l-1), the chance that a burst is l long.
func (g gilbert) pLen(l int) float64 { return g.r * math.Pow(1-g.r, float64(l-1)) }

// pLonger is P(L > l) = (1 - r)^l.
func (g gilbert) pLonger(l int) float64 { return math.Pow(1-g.r, float64(l)) }

// histP is the expected share of each bucket of lossPattern.Hist.
func (g gilbert) histP() []float64 {
	p := make([]float64, burstHist+1)
	for l := 1; l <= burstHist; l++ {
		p[l-1] = g.pLen(l)
	}
	p[burstHist] = g.pLonger(burstHist)
	return p
}

// sigmas is how many standard deviations obs is from want; with sd 0 it
// is 0 if they are equal and an infinity of obs - want's sign otherwise.
func sigmas(obs, want, sd float64) float64 {
	if sd == 0 {
		if obs == want {
			return 0
		}
		return math.Copysign(math.Inf(1), obs-want)
	}
	return (obs - want) / sd
}

// chiSquare tests the burst-length histogram h (as lossPattern.Hist)
// against the chain's geometric distribution. Buckets are taken in order
// while each, and all the rest together, expect at least 5 bursts; the
// rest is one last bucket. It returns Pearson's statistic and its degrees
// of freedom (buckets - 1; nothing is estimated from the data), dof 0 when
// fewer than two buckets qualify (r = 1: every burst has length 1).
func (g gilbert) chiSquare(h []uint64) (chi2 float64, dof int) {
	var m uint64
	for _, c := range h {
		m += c
	}
	if m == 0 {
		return 0, 0
	}
	p := g.histP()
	M := float64(m)
	// Buckets 0 .. last-1 on their own, last .. burstHist together.
	last := 0
	rest := 1.0
	for last < burstHist && p[last]*M >= 5 && (rest-p[last])*M >= 5 {
		rest -= p[last]
		last++
	}
	var restObs uint64
	for i, c := range h {
		if i < last {
			e := p[i] * M
			chi2 += (float64(c) - e) * (float64(c) - e) / e
		} else {
			restObs += c
		}
	}
	if last == 0 {
		return 0, 0
	}
	e := rest * M
	chi2 += (float64(restObs) - e) * (float64(restObs) - e) / e
	return chi2, last
}

// chiSquareQ is the chance that a chi-square variable of dof degrees of
// freedom exceeds x: the regularized upper incomplete gamma Q(dof/2, x/2).
func chiSquareQ(x float64, dof int) float64 {
	if dof <= 0 {
		return math.NaN()
	}
	return gammaQ(float64(dof)/2, x/2)
}

// gammaQ is the regularized upper incomplete gamma function Q(a, x), by
// its power series below x = a + 1 and its continued fraction (modified
// Lentz) above.
func gammaQ(a, x float64) float64 {
	if x <= 0 {
		return 1
	}
	lg, _ := math.Lgamma(a)
	front := math.Exp(-x + a*math.Log(x) - lg)
	if x < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 1000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-15 {
				break
			}
		}
		return 1 - front*sum
	}
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	f := d
	for i := 1; i < 1000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		delta := d * c
		f *= delta
		if math.Abs(delta-1) < 1e-15 {
			break
		}
	}
	return front * f
}

// burstPair is one configuration of the burst phase: relay percent of
// the packets on average, drop the others in bursts of mean length burst.
type burstPair struct {
	Percent float64 `json:"percent"`
	Burst   float64 `json:"burst"`
}

// parseBurstPairs reads "95/5,80/10,95/1".
func parseBurstPairs(s string) ([]burstPair, error) {
	var out []burstPair
	for _, f := range strings.Split(s, ",") {
		ps, bs, ok := strings.Cut(strings.TrimSpace(f), "/")
		if !ok {
			return nil, fmt.Errorf("burst pair %q: want PERCENT/BURST", f)
		}
		p, err1 := strconv.ParseFloat(ps, 64)
		b, err2 := strconv.ParseFloat(bs, 64)
		if err1 != nil || err2 != nil || !(p > 0 && p < 100) || !(b >= 1) || b < (100-p)/p {
			return nil, fmt.Errorf("burst pair %q: want 0 < PERCENT < 100 and BURST >= max(1, (100 - PERCENT) / PERCENT)", f)
		}
		out = append(out, burstPair{p, b})
	}
	return out, nil
}

// netemGemodel is netem's "loss gemodel p r 1-h 1-k" (tc-netem(8), all in
// percent) for the same chain: 1-h = 100 % (a bad packet is lost), 1-k =
// 0 % (a good one never is).
func (g gilbert) netemGemodel() []string {
	pct := func(v float64) string { return strconv.FormatFloat(100*v, 'g', 8, 64) + "%" }
	return []string{"loss", "gemodel", pct(g.p), pct(g.r), "100%", "0%"}
}
