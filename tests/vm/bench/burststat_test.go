package main

import (
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/insane-netdev/insane/go/genl"
)

// seqsOf lists the indexes of the true flags: the datagrams that arrived.
func seqsOf(relayed []bool) []uint64 {
	var s []uint64
	for i, ok := range relayed {
		if ok {
			s = append(s, uint64(i))
		}
	}
	return s
}

func TestLossPatternOf(t *testing.T) {
	// 20 datagrams: lost 0, 3-4, 10-12 and 18-19 (cut by the end).
	lost := map[uint64]bool{0: true, 3: true, 4: true, 10: true, 11: true, 12: true, 18: true, 19: true}
	var seqs []uint64
	for s := uint64(0); s < 20; s++ {
		if !lost[s] {
			seqs = append(seqs, s)
		}
	}
	lp, err := lossPatternOf(seqs, 20)
	if err != nil {
		t.Fatal(err)
	}
	want := lossPattern{N: 20, Lost: 8, Bursts: 3, BurstLost: 6, Longest: 3, Cut: 2, Hist: make([]uint64, burstHist+1)}
	want.Hist[0], want.Hist[1], want.Hist[2] = 1, 1, 1
	if !reflect.DeepEqual(lp, want) {
		t.Errorf("lossPatternOf = %+v\nwant %+v", lp, want)
	}

	// A burst longer than burstHist goes to the tail bucket; nothing lost
	// at the end leaves no cut burst.
	seqs = []uint64{0, 1, 2 + burstHist + 5, 2 + burstHist + 6, 2 + burstHist + 8}
	lp, err = lossPatternOf(seqs, 2+burstHist+9)
	if err != nil {
		t.Fatal(err)
	}
	if lp.Bursts != 2 || lp.Hist[burstHist] != 1 || lp.Hist[0] != 1 || lp.Longest != burstHist+5 || lp.Cut != 0 || lp.Lost != burstHist+6 {
		t.Errorf("with a long burst: %+v", lp)
	}

	// Nothing arrived: one burst, cut, of the whole run.
	lp, err = lossPatternOf(nil, 7)
	if err != nil || lp.Bursts != 0 || lp.Cut != 7 || lp.Lost != 7 {
		t.Errorf("nothing arrived: %+v, %v", lp, err)
	}
	// Everything arrived.
	lp, err = lossPatternOf([]uint64{0, 1, 2}, 3)
	if err != nil || lp.Lost != 0 || lp.Bursts != 0 || lp.Cut != 0 {
		t.Errorf("everything arrived: %+v, %v", lp, err)
	}

	for _, bad := range [][]uint64{{0, 2, 2}, {3, 1}, {0, 9}} {
		if _, err := lossPatternOf(bad, 5); err == nil {
			t.Errorf("lossPatternOf(%v, 5) accepted", bad)
		}
	}
}

func TestBurstChain(t *testing.T) {
	g := burstChain(95, 5)
	if math.Abs(g.q-0.05) > 1e-12 || math.Abs(g.r-0.2) > 1e-12 || math.Abs(g.p-0.05/(5*0.95)) > 1e-12 {
		t.Errorf("burstChain(95, 5) = %+v", g)
	}
	// The bad state's stationary share is the configured loss.
	for _, pr := range []burstPair{{95, 1}, {95, 5}, {80, 10}, {50, 1}} {
		g := burstChain(pr.Percent, pr.Burst)
		if s := g.p / (g.p + g.r); math.Abs(s-(1-pr.Percent/100)) > 1e-12 {
			t.Errorf("%v: p / (p + r) = %v", pr, s)
		}
	}
	if got := strings.Join(g.netemGemodel(), " "); got != "loss gemodel 1.0526316% 20% 100% 0%" {
		t.Errorf("netem arguments %q", got)
	}
	// The distribution's buckets sum to 1.
	sum := 0.0
	for _, p := range burstChain(80, 10).histP() {
		sum += p
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Errorf("histP sums to %v", sum)
	}
}

// TestLossSD checks the closed form of the observed loss's variance
// against the exact finite sum Var(sum of n indicators) = n q (1 - q)
// (1 + 2 sum_{j=1}^{n-1} (1 - j/n) lambda^j).
func TestLossSD(t *testing.T) {
	const n = 1000000
	for _, pr := range []burstPair{{95, 1}, {95, 5}, {80, 10}} {
		g := burstChain(pr.Percent, pr.Burst)
		l := g.lambda()
		s, lj := 0.0, 1.0
		for j := 1; j < n; j++ {
			lj *= l
			if math.Abs(lj) < 1e-18 {
				break
			}
			s += (1 - float64(j)/n) * lj
		}
		exact := math.Sqrt(g.q * (1 - g.q) * (1 + 2*s) / n)
		if got := g.lossSD(n); math.Abs(got-exact)/exact > 1e-4 {
			t.Errorf("%v: lossSD %v, exact %v", pr, got, exact)
		}
	}
	if sd := burstChain(95, 1).meanBurstSD(1000); sd != 0 {
		t.Errorf("bursts of exactly one packet: sd %v, want 0", sd)
	}
	if got, want := burstChain(80, 10).meanBurstSD(400), math.Sqrt(0.9)/(0.1*20); math.Abs(got-want) > 1e-12 {
		t.Errorf("meanBurstSD = %v, want %v", got, want)
	}
}

// simulate runs the chain as the uapi header's recurrence does (move, then
// decide in the new state) for n packets and returns which were relayed.
func simulate(g gilbert, n int, rng *rand.Rand) []bool {
	out := make([]bool, n)
	bad := false
	for i := range out {
		u := rng.Float64()
		if bad {
			bad = u >= g.r
		} else {
			bad = u < g.p
		}
		out[i] = !bad
	}
	return out
}

// TestSigmasEmpirically: over 400 replicas of a simulated run, the spread
// of the observed loss and of the observed mean burst length is what
// lossSD and meanBurstSD say. The estimate of a standard deviation from
// 400 samples has a relative error of about 1/sqrt(800) = 3.5 %; the bound
// is 15 % (and the replicas are seeded: the result is fixed).
func TestSigmasEmpirically(t *testing.T) {
	const n, reps = 20000, 400
	for i, pr := range []burstPair{{95, 5}, {80, 10}} {
		g := burstChain(pr.Percent, pr.Burst)
		rng := rand.New(rand.NewPCG(uint64(i), 16))
		var loss, mean []float64
		var m float64
		for k := 0; k < reps; k++ {
			lp, err := lossPatternOf(seqsOf(simulate(g, n, rng)), n)
			if err != nil {
				t.Fatal(err)
			}
			loss = append(loss, float64(lp.Lost)/n)
			mean = append(mean, float64(lp.BurstLost)/float64(lp.Bursts))
			m += float64(lp.Bursts) / reps
		}
		sd := func(v []float64) float64 {
			var s, s2 float64
			for _, x := range v {
				s += x
				s2 += x * x
			}
			mu := s / float64(len(v))
			return math.Sqrt((s2 - float64(len(v))*mu*mu) / float64(len(v)-1))
		}
		if got, want := sd(loss), g.lossSD(n); math.Abs(got/want-1) > 0.15 {
			t.Errorf("%v: loss spread %.5f over %d replicas, lossSD %.5f", pr, got, reps, want)
		}
		if got, want := sd(mean), g.meanBurstSD(uint64(m)); math.Abs(got/want-1) > 0.15 {
			t.Errorf("%v: mean burst spread %.4f over %d replicas, meanBurstSD %.4f", pr, got, reps, want)
		}
	}
}

// TestPredictorRun runs the phase's analysis on the drop pattern that the
// kernel's seeded recurrence gives (genl.Predictor) for 1,000,000 packets
// of each configuration: mean loss and mean burst length within 4.5 sigma
// of the configured ones, and a histogram the chi-square test does not
// reject. The seeds are fixed, so the figures are.
func TestPredictorRun(t *testing.T) {
	const n = 1000000
	for i, pr := range []burstPair{{95, 1}, {95, 5}, {80, 10}} {
		seed := uint64(0xb0057 + i)
		pol := genl.Burst(pr.Percent, pr.Burst, &seed)
		p := genl.NewPredictor(seed)
		relayed := make([]bool, n)
		for k := range relayed {
			relayed[k] = p.Relays(pol)
		}
		lp, err := lossPatternOf(seqsOf(relayed), n)
		if err != nil {
			t.Fatal(err)
		}
		g := burstChain(pr.Percent, pr.Burst)
		zl := sigmas(float64(lp.Lost)/n, g.q, g.lossSD(n))
		zb := sigmas(float64(lp.BurstLost)/float64(lp.Bursts), g.meanBurst(), g.meanBurstSD(lp.Bursts))
		chi2, dof := g.chiSquare(lp.Hist)
		t.Logf("%s: loss %.5f (%+.2fσ), %d bursts of mean %.4f (%+.2fσ), χ² %.1f on %d dof", pol, float64(lp.Lost)/n, zl, lp.Bursts, float64(lp.BurstLost)/float64(lp.Bursts), zb, chi2, dof)
		if math.Abs(zl) > 4.5 || math.Abs(zb) > 4.5 {
			t.Errorf("%s: loss %+.2fσ, mean burst %+.2fσ from the configured", pol, zl, zb)
		}
		if pr.Burst == 1 {
			if dof != 0 || lp.Longest != 1 {
				t.Errorf("%s: longest burst %d, dof %d; want 1 and 0", pol, lp.Longest, dof)
			}
			continue
		}
		if dof < 10 {
			t.Errorf("%s: only %d degrees of freedom", pol, dof)
		}
		if q := chiSquareQ(chi2, dof); q < 1e-5 {
			t.Errorf("%s: χ² %.1f on %d dof, p = %.2g", pol, chi2, dof, q)
		}
	}
}

// TestChiSquare: a histogram exactly as expected has statistic 0; one
// shifted towards long bursts is rejected; buckets too small are merged.
func TestChiSquare(t *testing.T) {
	g := burstChain(80, 10)
	const m = 100000
	h := make([]uint64, burstHist+1)
	for i, p := range g.histP() {
		h[i] = uint64(math.Round(p * m))
	}
	chi2, dof := g.chiSquare(h)
	if dof != burstHist || chi2 > 1 {
		t.Errorf("exact histogram: χ² %v on %d dof, want about 0 on %d", chi2, dof, burstHist)
	}
	// Bursts of mean 12 instead of 10.
	h2 := make([]uint64, burstHist+1)
	for i, p := range burstChain(80, 12).histP() {
		h2[i] = uint64(math.Round(p * m))
	}
	if chi2, dof := g.chiSquare(h2); chiSquareQ(chi2, dof) > 1e-9 {
		t.Errorf("mean 12 against 10: χ² %v on %d dof not rejected", chi2, dof)
	}
	// With 60 bursts, only the buckets expecting 5 or more stand alone:
	// P(L = l) 60 = 6, 5.4, 4.86, ...: lengths 1 and 2, then the rest.
	small := []uint64{6, 5, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 20}
	if _, dof := g.chiSquare(small); dof != 2 {
		t.Errorf("60 bursts: %d dof, want 2", dof)
	}
	if _, dof := burstChain(95, 1).chiSquare([]uint64{1000}); dof != 0 {
		t.Errorf("bursts of length 1: %d dof, want 0", dof)
	}
}

func TestChiSquareQ(t *testing.T) {
	for _, c := range []struct {
		x    float64
		dof  int
		want float64
	}{
		{3.841458820694124, 1, 0.05},
		{2, 2, math.Exp(-1)},
		{40, 2, math.Exp(-20)},
		{18.307038053275146, 10, 0.05},
		{5, 10, 0.8911780189141512},
		{0, 3, 1},
	} {
		if got := chiSquareQ(c.x, c.dof); math.Abs(got-c.want) > 1e-9*math.Max(1, c.want) && math.Abs(got/c.want-1) > 1e-8 {
			t.Errorf("chiSquareQ(%v, %d) = %v, want %v", c.x, c.dof, got, c.want)
		}
	}
}

func TestSigmas(t *testing.T) {
	if z := sigmas(1.2, 1, 0.1); math.Abs(z-2) > 1e-12 {
		t.Errorf("sigmas = %v", z)
	}
	if z := sigmas(1, 1, 0); z != 0 {
		t.Errorf("exact with sd 0: %v", z)
	}
	if z := sigmas(0.9, 1, 0); !math.IsInf(z, -1) {
		t.Errorf("off with sd 0: %v", z)
	}
}

func TestParseBurstPairs(t *testing.T) {
	got, err := parseBurstPairs("95/5, 80/10,95/1")
	if err != nil || !reflect.DeepEqual(got, []burstPair{{95, 5}, {80, 10}, {95, 1}}) {
		t.Errorf("parseBurstPairs = %v, %v", got, err)
	}
	for _, bad := range []string{"95", "0/5", "100/5", "95/0.5", "40/1", "x/5", ""} {
		if _, err := parseBurstPairs(bad); err == nil {
			t.Errorf("parseBurstPairs(%q) accepted", bad)
		}
	}
}

func TestBurstSeq(t *testing.T) {
	pkt := make([]byte, 20+8+burstSize)
	pkt[0], pkt[9] = 0x45, 17 // IPv4, 20-byte header, UDP
	binary.BigEndian.PutUint16(pkt[22:], 9)
	binary.BigEndian.PutUint64(pkt[28:], burstMagic)
	binary.BigEndian.PutUint64(pkt[36:], 7)
	binary.BigEndian.PutUint64(pkt[44:], 123456)
	if seq, ok := burstSeq(pkt, 7); !ok || seq != 123456 {
		t.Errorf("burstSeq = %d, %v; want 123456, true", seq, ok)
	}
	if _, ok := burstSeq(pkt, 8); ok {
		t.Error("a datagram of another run was taken")
	}
	if _, ok := burstSeq(pkt[:40], 7); ok {
		t.Error("a truncated datagram was taken")
	}
	pkt[23] = 10
	if _, ok := burstSeq(pkt, 7); ok {
		t.Error("a datagram to another port was taken")
	}
}

// TestPrintBurst prints a run of each kind, an error among them, and
// checks the tables' shape.
func TestPrintBurst(t *testing.T) {
	const n = 100000
	seed := uint64(burstSeed)
	var recs []burstRec
	for _, pr := range []burstPair{{95, 1}, {80, 10}} {
		pol := genl.Burst(pr.Percent, pr.Burst, &seed)
		p := genl.NewPredictor(seed)
		seen := make([]bool, n)
		for k := range seen {
			seen[k] = p.Relays(pol)
		}
		lp, err := lossPatternOf(seqsOf(seen), n)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs,
			burstRec{Pair: pr, Tool: "insane-seeded", Seed: &seed, Sent: n, Loss: lp},
			burstRec{Pair: pr, Tool: "netem", Sent: n, Loss: lp},
			burstRec{Pair: pr, Tool: "insane", Sent: n, Error: "received 1, low0 sent 2, the tool passed 2"})
	}
	out := captureStdout(t, func() { printBurst(recs, n) })
	for _, want := range []string{
		"| insane burst 95 1 | ERROR: received 1",
		"| insane burst 80 10 seed 6221078 | 20.000 % |",
		"| netem gemodel 2.5% 10% 100% 0% |",
		"#### Burst lengths, relay 80 %, mean burst 10",
		"| > 20 | 12.158 % |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Every table row has its header's number of cells.
	cells := 0
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "|") {
			cells = 0
			continue
		}
		if c := strings.Count(line, "|"); cells == 0 {
			cells = c
		} else if c != cells {
			t.Errorf("row %q has %d bars, its header %d", line, c, cells)
		}
	}
}

func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	f()
	os.Stdout = old
	w.Close()
	return string(<-done)
}
