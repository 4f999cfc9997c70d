package main

import (
	"math"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
)

func TestReordered(t *testing.T) {
	for _, c := range []struct {
		order []uint32
		want  int
	}{
		{nil, 0},
		{[]uint32{0, 1, 2, 3}, 0},
		{[]uint32{0, 2, 3}, 0},          // a loss is no reordering
		{[]uint32{1, 0, 2, 3}, 1},       // 0 arrives after 1
		{[]uint32{3, 0, 1, 2}, 3},       // one early packet makes three late ones
		{[]uint32{0, 3, 1, 4, 2, 5}, 2}, // 1 and 2 are late
		{[]uint32{4, 3, 2, 1, 0}, 4},
	} {
		if got := reordered(c.order); got != c.want {
			t.Errorf("reordered(%v) = %d, want %d", c.order, got, c.want)
		}
	}
}

func TestMoments(t *testing.T) {
	m, sd := moments([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if m != 5 || math.Abs(sd-math.Sqrt(32.0/7)) > 1e-12 {
		t.Errorf("moments = %v, %v; want 5, %v", m, sd, math.Sqrt(32.0/7))
	}
	if m, sd := moments([]float64{3}); m != 3 || sd != 0 {
		t.Errorf("moments of one = %v, %v", m, sd)
	}
	if m, _ := moments(nil); !math.IsNaN(m) {
		t.Errorf("moments of none = %v, want NaN", m)
	}
}

func TestConfiguredMoments(t *testing.T) {
	ms := time.Millisecond
	p := genl.Pass()
	p.Delay = 10 * ms
	if m, sd := configuredMoments(p); m != 1e7 || sd != 0 {
		t.Errorf("no jitter: %v %v", m, sd)
	}
	p.Jitter = 5 * ms
	if m, sd := configuredMoments(p); m != 1e7 || math.Abs(sd-5e6/math.Sqrt(3)) > 1e-6 {
		t.Errorf("uniform: %v %v", m, sd)
	}
	p.Distribution = genl.DistNormal
	if m, sd := configuredMoments(p); m != 1e7 || sd != 5e6 {
		t.Errorf("normal: %v %v", m, sd)
	}
}

// The predictor's draws of the bench's configurations have the configured
// moments (10^5 draws: 4 sigma of the mean is 1.3 % of J/sqrt(3) for
// uniform; the sd's is under 1 %), so that the phase's comparison of the
// kernel's against the configuration is a fair one.
func TestPredictedDelaysMoments(t *testing.T) {
	seed := uint64(delaySeed)
	ms := time.Millisecond
	for _, p := range []genl.Policy{
		{Mode: genl.ModePass, Delay: 10 * ms, Jitter: 5 * ms, Seed: &seed},
		{Mode: genl.ModePass, Delay: 10 * ms, Jitter: 2 * ms, Distribution: genl.DistNormal, Seed: &seed},
		{Mode: genl.ModePass, Delay: 10 * ms, Jitter: 5 * ms, Correlation: 50, Seed: &seed},
		{Mode: genl.ModePass, Delay: 10 * ms, Jitter: 2 * ms, Distribution: genl.DistNormal, Correlation: 50, Seed: &seed},
	} {
		const n = 100000
		d := predictedDelays(p, n)
		f := make([]float64, n)
		for i, x := range d {
			f[i] = float64(x)
		}
		m, sd := moments(f)
		wm, wsd := configuredMoments(p)
		// Correlated draws: the effective sample is smaller, by
		// (1 + rho) / (1 - rho) = 3 at 50 %.
		k := 1.0
		if p.Correlation != 0 {
			k = math.Sqrt(3)
		}
		if e := math.Abs(m - wm); e > 4*k*wsd/math.Sqrt(n) {
			t.Errorf("%s: mean %.0f, want %.0f (off by %.0f ns)", p, m, wm, e)
		}
		if e := math.Abs(relErr(sd, wsd)); e > 0.01 {
			t.Errorf("%s: sd %.0f, want %.0f (%.2f %%)", p, sd, wsd, 100*e)
		}
		// Same seed, same draws.
		again := predictedDelays(p, n)
		for i := range d {
			if d[i] != again[i] {
				t.Fatalf("%s: draw %d differs: %d then %d", p, i, d[i], again[i])
			}
		}
	}
}

func TestNominalDepartures(t *testing.T) {
	send := []int64{0, 100, 200, 300}
	delays := []int64{1000, 500, 2000, 100}
	if got, want := nominalDepartures(send, delays, true), []int64{1000, 600, 2200, 400}; !equal(got, want) {
		t.Errorf("reorder: %v, want %v", got, want)
	}
	// In order: no packet leaves before the one before it.
	if got, want := nominalDepartures(send, delays, false), []int64{1000, 1000, 2200, 2200}; !equal(got, want) {
		t.Errorf("in order: %v, want %v", got, want)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLatenessAndDelays(t *testing.T) {
	o := newDelayObs(4)
	o.send = []int64{0, 100, 200, 300}
	o.sendAfter = []int64{10, 130, 205, 320}
	o.dep = []int64{1005, 0, 1230, 1301}
	nom := []int64{1000, 1100, 1200, 1300}
	if got, want := lateness(o.dep, nom), []int64{5, 30, 1}; !equal(got, want) {
		t.Errorf("lateness %v, want %v", got, want)
	}
	d, seqs := measuredDelays(&o)
	if !equal(d, []int64{1005, 1030, 1001}) || len(seqs) != 3 || seqs[1] != 2 {
		t.Errorf("measured delays %v at %v", d, seqs)
	}
	if got := sendPath(&o); !equal(got, []int64{10, 30, 5, 20}) {
		t.Errorf("send path %v", got)
	}
}

func TestLatenessBeyondOrder(t *testing.T) {
	// A train of three with one nominal departure (100), each relay 5
	// late after the one before; then one whose own nominal (200) binds;
	// one that never left, and one after it, which has no predecessor.
	dep := []int64{105, 110, 115, 203, 0, 400}
	nominal := []int64{100, 100, 100, 200, 300, 390}
	got := latenessBeyondOrder(dep, nominal)
	want := []int64{5, 5, 3}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestReplay(t *testing.T) {
	a := newDelayObs(3)
	b := newDelayObs(3)
	a.send, a.dep = []int64{0, 10, 20}, []int64{1000, 1010, 0}
	b.send, b.dep = []int64{500, 510, 520}, []int64{1500, 1700, 1520}
	within, compared, maxDiff := replay(&a, &b, 100)
	if within != 1 || compared != 2 || maxDiff != 190 {
		t.Errorf("replay = %d of %d, max %d; want 1 of 2, max 190", within, compared, maxDiff)
	}
}

func TestNetemPolicy(t *testing.T) {
	for _, c := range []struct {
		cmd        string
		d, j       time.Duration
		dist       genl.Distribution
		wantJitter bool
	}{
		{"tc qdisc add dev low0 root netem delay 10ms limit 1000000", 10 * time.Millisecond, 0, genl.DistUniform, false},
		{"tc qdisc add dev low0 root netem delay 10ms 5ms limit 1000000", 10 * time.Millisecond, 5 * time.Millisecond, genl.DistUniform, true},
		{"tc qdisc add dev low0 root netem delay 10ms 2ms distribution normal limit 1000000", 10 * time.Millisecond, 2 * time.Millisecond, genl.DistNormal, true},
	} {
		p := netemPolicy(c.cmd)
		if p.Delay != c.d || p.Jitter != c.j || p.Distribution != c.dist || !p.Reorder {
			t.Errorf("%q: %+v", c.cmd, p)
		}
	}
}

func TestDelaySeq(t *testing.T) {
	pkt := make([]byte, 20+8+delaySize)
	pkt[0], pkt[9] = 0x45, 17
	pkt[22], pkt[23] = 0, 9
	p := pkt[28:]
	put := func(b []byte, v uint64) {
		for i := 0; i < 8; i++ {
			b[i] = byte(v >> (56 - 8*i))
		}
	}
	put(p, delayMagic)
	put(p[8:], 7)
	put(p[16:], 12345)
	if s, ok := delaySeq(pkt, 7); !ok || s != 12345 {
		t.Errorf("delaySeq = %d, %v", s, ok)
	}
	if _, ok := delaySeq(pkt, 8); ok {
		t.Error("another run's datagram taken")
	}
	if _, ok := delaySeq(pkt[:40], 7); ok {
		t.Error("a short datagram taken")
	}
}

func TestPaceSchedule(t *testing.T) {
	const n, first, gap = 20000, int64(1e9), int64(100000)
	p := paceSchedule(n, first, gap, 3, false)
	for i, d := range p {
		if want := first + int64(i)*gap; d != want {
			t.Fatalf("periodic: send %d at %d, want %d", i, d, want)
		}
	}
	q := paceSchedule(n, first, gap, 3, true)
	if q[0] != first {
		t.Fatalf("poisson: first send at %d, want %d", q[0], first)
	}
	g := make([]float64, n-1)
	for i := 1; i < n; i++ {
		if q[i] < q[i-1] {
			t.Fatalf("poisson: send %d before send %d", i, i-1)
		}
		g[i-1] = float64(q[i] - q[i-1])
	}
	// Exponential gaps: the mean's sd is gap/sqrt(n), the sample sd's
	// about gap*sqrt(2/n) (kurtosis 9); 4 sigma each.
	mean, sd := moments(g)
	m := float64(len(g))
	if d := math.Abs(mean - float64(gap)); d > 4*float64(gap)/math.Sqrt(m) {
		t.Errorf("poisson: mean gap %.0f ns, want %d within 4 sigma", mean, gap)
	}
	if d := math.Abs(sd - float64(gap)); d > 4*float64(gap)*math.Sqrt(2/m) {
		t.Errorf("poisson: gap sd %.0f ns, want %d (exponential) within 4 sigma", sd, gap)
	}
	again := paceSchedule(n, first, gap, 3, true)
	other := paceSchedule(n, first, gap, 4, true)
	same := 0
	for i := range q {
		if again[i] != q[i] {
			t.Fatalf("poisson: seed 3 twice differs at send %d", i)
		}
		if other[i] == q[i] {
			same++
		}
	}
	if same > 1 {
		t.Errorf("poisson: seeds 3 and 4 agree on %d sends", same)
	}
}

func TestPoolLateness(t *testing.T) {
	seq := func(from, n int64) []int64 {
		v := make([]int64, n)
		for i := range v {
			v[i] = from + int64(i)
		}
		return v
	}
	runs := []delayRec{
		{Part: "poisson", Tool: "insane", Config: "i", late: seq(0, 500)},
		{Part: "poisson", Tool: "netem", Config: "n", late: seq(1000, 500)},
		{Part: "timing", Tool: "insane", Config: "i", late: seq(5000, 10)},
		{Part: "poisson", Tool: "insane", Config: "i", late: seq(500, 500)},
		{Part: "poisson", Tool: "netem", Config: "n", late: seq(1500, 500), Error: "lost"},
	}
	p := poolLateness(runs, "poisson")
	if len(p) != 2 || p[0].Tool != "insane" || p[1].Tool != "netem" {
		t.Fatalf("pooled %+v", p)
	}
	// insane: 0..999, both schedules; netem: the failed run left out.
	if p[0].Runs != 2 || p[0].N != 1000 || p[0].Median != 500 || p[0].P99 != 989 || p[0].Max != 999 {
		t.Errorf("insane %+v", p[0])
	}
	if p[1].Runs != 1 || p[1].N != 500 || p[1].Max != 1499 {
		t.Errorf("netem %+v", p[1])
	}
	// n 1000, q 0.99: 990 +- 4 * sqrt(9.9) = 990 +- 12.6: ranks 977 and 999 (capped).
	if p[0].P99Lo != 977 || p[0].P99Hi != 999 {
		t.Errorf("insane band [%d, %d]", p[0].P99Lo, p[0].P99Hi)
	}
	lo, hi := quantileRanks(100000, 0.99, 4)
	if lo != 98874 || hi != 99126 {
		t.Errorf("quantileRanks(100000, 0.99, 4) = %d, %d", lo, hi)
	}
}

func TestSendPhases(t *testing.T) {
	send := []int64{0, 100, 200, 300}
	after := []int64{10, 110, 210, 310}
	// Each nominal departure meets the send nearest it: 200 exactly, 300
	// exactly, 400 past the last (300), 240 nearer 200 than 300.
	nominal := []int64{200, 300, 400, 240, 100}
	dep := []int64{195, 305, 420, 212, 0}
	got := sendPhases(dep, nominal, send, after)
	want := [phaseClasses][]int64{{-5}, {5}, {20, -28}}
	wantOwn := [phaseClasses][]int64{{10}, {10}, {10, 10}}
	for c := range want {
		if !equal(got.late[c], want[c]) || !equal(got.own[c], wantOwn[c]) {
			t.Errorf("class %s: got %v (own %v), want %v (own %v)", phaseNames[c], got.late[c], got.own[c], want[c], wantOwn[c])
		}
	}

	split := func(late, own [phaseClasses][]int64) phaseSplit { return phaseSplit{late: late, own: own} }
	runs := []delayRec{
		{Part: "timing", Tool: "insane", Config: "i", late: []int64{1, 2, 3},
			phases: split([phaseClasses][]int64{{1}, {2, 3}, nil}, [phaseClasses][]int64{{6}, {7, 8}, nil})},
		{Part: "timing", Tool: "netem", Config: "n", late: []int64{4},
			phases: split([phaseClasses][]int64{nil, nil, {4}}, [phaseClasses][]int64{nil, nil, {11}})},
		{Part: "poisson", Tool: "insane", Config: "i", late: []int64{9},
			phases: split([phaseClasses][]int64{{9}, nil, nil}, [phaseClasses][]int64{{1}, nil, nil})},
		{Part: "timing", Tool: "insane", Config: "i", late: []int64{5},
			phases: split([phaseClasses][]int64{nil, {5}, nil}, [phaseClasses][]int64{nil, {9}, nil})},
	}
	rows := poolPhases(runs, "timing")
	if len(rows) != 2*phaseClasses {
		t.Fatalf("got %d rows, want %d", len(rows), 2*phaseClasses)
	}
	if r := rows[phaseInside]; r.Tool != "insane" || r.N != 3 || r.Share != 0.75 || r.Median != 3 || r.P99 != 5 || r.OwnSend != 8 {
		t.Errorf("insane inside: %+v", r)
	}
	if r := rows[phaseClasses+phaseAfter]; r.Tool != "netem" || r.N != 1 || r.Share != 1 || r.Median != 4 {
		t.Errorf("netem after: %+v", r)
	}
	if r := rows[phaseClasses+phaseBefore]; r.N != 0 || r.Share != 0 {
		t.Errorf("netem before: %+v", r)
	}
}

func TestSlowestOf(t *testing.T) {
	if w := slowestOf([]int64{0}, []int64{5}, []int64{1}, []int64{2}); w != nil {
		t.Errorf("nothing left: got %+v", w)
	}
	w := slowestOf([]int64{110, 0, 330, 320}, []int64{100, 200, 300, 300}, []int64{0, 1, 2, 3}, []int64{5, 6, 12, 9})
	if w == nil || w.Seq != 2 || w.Late != 30 || w.OwnSend != 10 {
		t.Errorf("got %+v, want #2, 30 late, own send 10", w)
	}
}
