package genl

import (
	"math"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// The predictor's delays against an independent float computation of the
// same distributions: the header's u1 (the seeded draw is mix's, which
// TestMixSplitMix64Vectors checks), then the inverse CDFs in float64.

// floatU1 is the k-th delay draw's u1 as a fraction of 2^32.
func floatU1(seed, k uint64) float64 {
	return float64(mix(seed^uapi.DelaySalt, k)>>32) / (1 << 32)
}

func normalInv(u float64) float64 { return math.Sqrt2 * math.Erfinv(2*u-1) }

func paretoInv(u float64) float64 {
	const a = 3.0
	mean, sd := a/(a-1), math.Sqrt(a/((a-1)*(a-1)*(a-2)))
	return (math.Pow(1-u, -1/a) - mean) / sd
}

// TestDelayDrawsMatchFloat compares each draw with the float formula: to
// the nanosecond for uniform, and within the tables' interpolation error
// for normal and pareto, in the body of the distribution (the first and
// last 8/4096 of u, where the inverse CDF bends most, are left out).
func TestDelayDrawsMatchFloat(t *testing.T) {
	const seed, n = 42, 200000
	d, j := 50*ms, 10*ms
	for _, c := range []struct {
		dist Distribution
		inv  func(float64) float64
		tol  float64 // in units of J
	}{{DistUniform, func(u float64) float64 { return 2*u - 1 }, 0}, {DistNormal, normalInv, 1e-4}, {DistPareto, paretoInv, 1e-3}} {
		a := Policy{Mode: ModePass, Delay: d, Jitter: j, Distribution: c.dist}
		pr := NewPredictor(seed)
		worst := 0.0
		for k := uint64(0); k < n; k++ {
			got := pr.Delay(a)
			u := floatU1(seed, k)
			if u < 8.0/4096 || u >= 1-8.0/4096 {
				continue
			}
			want := float64(d) + float64(j)*c.inv(u)
			diff := math.Abs(float64(got) - want)
			worst = math.Max(worst, diff)
			// Near the tails the curvature makes the interpolation's
			// error grow: ten times the body's tolerance.
			tol := c.tol
			if u < 0.01 || u > 0.99 {
				tol *= 10
			}
			if diff > tol*float64(j)+1 {
				t.Fatalf("%s k %d u %.9f: %d, float %.1f", c.dist, k, u, got, want)
			}
		}
		t.Logf("%s: worst difference from float %.1f ns (J %v)", c.dist, worst, j)
	}
}

// moments returns the mean and the standard deviation of the delays, and
// the correlation of each with the next.
func moments(ds []float64) (mean, sd, lag1 float64) {
	n := float64(len(ds))
	for _, v := range ds {
		mean += v
	}
	mean /= n
	var ss, cross float64
	for i, v := range ds {
		ss += (v - mean) * (v - mean)
		if i > 0 {
			cross += (v - mean) * (ds[i-1] - mean)
		}
	}
	sd = math.Sqrt(ss / n)
	return mean, sd, cross / ss
}

func draws(a Policy, seed uint64, n int) []float64 {
	pr := NewPredictor(seed)
	ds := make([]float64, n)
	for i := range ds {
		ds[i] = float64(pr.Delay(a))
	}
	return ds
}

// TestDelayMoments: over 10^6 draws (seed 7) the mean and the standard deviation
// are the configured ones, within 4 standard errors (inflated by
// (1 + rho) / (1 - rho) for a correlated sequence) plus the tables' own
// error, with and without correlation; the correlation of consecutive
// delays is rho for normal (the latent itself) and the copula's
// 6/pi asin(rho/2) for uniform.
func TestDelayMoments(t *testing.T) {
	const n = 1000000
	// D at 5 J: normal's clamp at 0 (below -5 sd) changes nothing seen.
	d, j := 50*ms, 10*ms
	for _, c := range []struct {
		dist Distribution
		rho  float64 // percent
	}{{DistUniform, 0}, {DistNormal, 0}, {DistUniform, 50}, {DistNormal, 50}, {DistUniform, 90}, {DistNormal, 90}} {
		a := Policy{Mode: ModePass, Delay: d, Jitter: j, Distribution: c.dist, Correlation: c.rho}
		ds := draws(a, 7, n)
		mean, sd, lag1 := moments(ds)
		wantSD := float64(j)
		if c.dist == DistUniform {
			wantSD = float64(j) / math.Sqrt(3)
		}
		r := c.rho / 100
		inflate := math.Sqrt((1 + r) / (1 - r))
		seMean := 4 * wantSD / math.Sqrt(n) * inflate
		// The sd's standard error: sd / sqrt(2n) for the normal, less for
		// the uniform; paretonormal's heavy tail gets 4 times that.
		seSD := 4*wantSD/math.Sqrt(2*n)*inflate + 0.002*wantSD
		wantLag := r
		if c.dist == DistUniform {
			wantLag = 6 / math.Pi * math.Asin(r/2)
		}
		seLag := 4 / math.Sqrt(n) * inflate * inflate
		t.Logf("%s rho %v: mean %.1f (%v) sd %.1f (%.1f) lag-1 correlation %.4f (%.4f)", c.dist, c.rho, mean, d, sd, wantSD, lag1, wantLag)
		if math.Abs(mean-float64(d)) > seMean {
			t.Errorf("%s rho %v: mean %.1f, want %v within %.1f", c.dist, c.rho, mean, d, seMean)
		}
		if math.Abs(sd-wantSD) > seSD {
			t.Errorf("%s rho %v: sd %.1f, want %.1f within %.1f", c.dist, c.rho, sd, wantSD, seSD)
		}
		if math.Abs(lag1-wantLag) > seLag {
			t.Errorf("%s rho %v: lag-1 correlation %.4f, want %.4f within %.4f", c.dist, c.rho, lag1, wantLag, seLag)
		}
	}
}

// TestDelayBounds: uniform stays in [D - J, D + J), normal is clamped at
// 0, pareto never below D + J z_min, and nothing above MaxDelay.
func TestDelayBounds(t *testing.T) {
	for _, a := range []Policy{
		{Mode: ModePass, Delay: 10 * ms, Jitter: 10 * ms},
		{Mode: ModePass, Delay: ms, Jitter: 10 * ms, Distribution: DistNormal},
		{Mode: ModePass, Delay: ms, Jitter: 10 * ms, Distribution: DistNormal, Correlation: 99},
		{Mode: ModePass, Delay: 37837, Jitter: 65536, Distribution: DistPareto},
		{Mode: ModePass, Delay: ms, Jitter: 10 * ms, Distribution: DistParetoNormal, Correlation: 30},
	} {
		if err := a.Validate(); err != nil {
			t.Fatal(err)
		}
		pr := NewPredictor(3)
		lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
		for i := 0; i < 300000; i++ {
			d := pr.Delay(a)
			lo, hi = min(lo, d), max(hi, d)
		}
		t.Logf("%s: %v .. %v", a, lo, hi)
		if lo < 0 || (a.Distribution == DistUniform && (lo < a.Delay-a.Jitter || hi >= a.Delay+a.Jitter)) {
			t.Errorf("%s: draws from %v to %v", a, lo, hi)
		}
		if a.Distribution == DistNormal && a.Correlation == 0 && hi > a.MaxDelay() {
			t.Errorf("%s: draws up to %v, above %v", a, hi, a.MaxDelay())
		}
	}
}

// TestDelayReplay: the same seed replays the same delays, whatever the
// decisions drawn in between (they have their own k); constant delays take
// no draw; another seed draws others.
func TestDelayReplay(t *testing.T) {
	j := Policy{Mode: ModePass, Delay: 30 * ms, Jitter: 20 * ms, Correlation: 40}
	flat := Policy{Mode: ModePass, Delay: 30 * ms}
	a, b, c := NewPredictor(5), NewPredictor(5), NewPredictor(6)
	same := 0
	for i := 0; i < 10000; i++ {
		if i%3 == 0 {
			a.Relays(Percent(50, nil))
			if a.Delay(flat) != 30*ms || b.Delay(Pass()) != 0 {
				t.Fatal("a constant delay")
			}
		}
		da, db, dc := a.Delay(j), b.Delay(j), c.Delay(j)
		if da != db {
			t.Fatalf("draw %d: %v and %v under one seed", i, da, db)
		}
		if da == dc {
			same++
		}
	}
	if a.DelayDraws() != 10000 {
		t.Errorf("%d draws", a.DelayDraws())
	}
	if same > 10 {
		t.Errorf("seeds 5 and 6 agree on %d of 10000 delays", same)
	}
}

// TestDeparture: without reorder a flow's departures never go back,
// whatever the draws; with reorder each leaves at arrival + d.
func TestDeparture(t *testing.T) {
	a := Policy{Mode: ModePass, Delay: 10 * ms, Jitter: 5 * ms}
	pr := NewPredictor(1)
	var last, lastR time.Duration
	reordered := 0
	for i := 0; i < 100000; i++ {
		arrival := time.Duration(i) * 100 * time.Microsecond
		d := pr.Delay(a)
		dep := Departure(arrival, d, last, false)
		if dep < last || dep < arrival+d {
			t.Fatalf("packet %d leaves at %v, after %v, arrival + d %v", i, dep, last, arrival+d)
		}
		last = dep
		depR := Departure(arrival, d, lastR, true)
		if depR != arrival+d {
			t.Fatalf("reorder: %v", depR)
		}
		if depR < lastR {
			reordered++
		}
		lastR = max(lastR, depR)
	}
	if reordered == 0 {
		t.Error("reorder reordered nothing at 5ms of jitter 100us apart")
	}
	t.Logf("reorder: %d of 100000 overtaken", reordered)
}

// tableMoments returns the mean and the second moment of a table read as
// the kernel reads it (linear between knots 1/4096 apart in u), in units of
// the standardized variable.
func tableMoments(t *[len(distNormal)]int32) (m1, m2 float64) {
	for i := 0; i < distLast; i++ {
		a, b := float64(t[i])/65536, float64(t[i+1])/65536
		m1 += (a + b) / 2 / float64(distLast)
		m2 += (a*a + a*b + b*b) / 3 / float64(distLast)
	}
	return m1, m2
}

// TestParetoDraws checks pareto's and paretonormal's draws against the
// moments of the tables as they are read (computed in float from the
// knots): the integer draws must have them. The tables' own moments are
// logged beside the ideal ones (mean 0, sd 1): read linearly, the Pareto
// table's last interval, from u = 4095/4096 (z = 16.7) to its end knot (z
// = 35.2, where the interval's mean is the tail's), has a little less
// spread than the true tail.
func TestParetoDraws(t *testing.T) {
	const n = 1000000
	d, j := 50*ms, 10*ms
	pm1, pm2 := tableMoments(&distPareto)
	nm1, nm2 := tableMoments(&distNormal)
	for _, c := range []struct {
		dist   Distribution
		m1, m2 float64
	}{
		{DistPareto, pm1, pm2},
		// Two independent draws: E[z] and E[z^2] of 0.5 N + 0.866 P.
		{DistParetoNormal, 0.5*nm1 + 0.866*pm1, 0.25*nm2 + 0.75*pm2 + 2*0.5*0.866*nm1*pm1},
	} {
		a := Policy{Mode: ModePass, Delay: d, Jitter: j, Distribution: c.dist}
		mean, sd, _ := moments(draws(a, 11, n))
		wantMean, wantSD := float64(d)+c.m1*float64(j), math.Sqrt(c.m2-c.m1*c.m1)*float64(j)
		t.Logf("%s: mean %.0f, sd %.0f; the tables': mean %.0f, sd %.0f; ideal: %v, %v", c.dist, mean, sd, wantMean, wantSD, d, j)
		// 4 standard errors; the sd's, of a heavy tail, from the fourth
		// moment of the table's last interval (z up to 35.2).
		if se := 4 * wantSD / math.Sqrt(n); math.Abs(mean-wantMean) > se {
			t.Errorf("%s: mean %.0f, the tables' %.0f within %.0f", c.dist, mean, wantMean, se)
		}
		if se := 0.1 * wantSD; math.Abs(sd-wantSD) > se {
			t.Errorf("%s: sd %.0f, the tables' %.0f within %.0f", c.dist, sd, wantSD, se)
		}
	}
}
