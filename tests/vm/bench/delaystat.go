package main

import (
	"math"
	"slices"
	"time"

	"github.com/insane-netdev/insane/go/genl"
)

// The delay phase's analysis (issue 24), apart from the VM so that the
// host's unit tests cover it (delaystat_test.go).

// delayObs is what one delay run's sender and receiver saw, indexed by
// sequence number: the sender's CLOCK_REALTIME readings right before and
// right after each send(2), the departure from the lower (the packet
// socket's SO_TIMESTAMPNS, CLOCK_REALTIME, taken in dev_queue_xmit_nit()
// right before the lower's ndo_start_xmit), 0 for a datagram that never
// left; and the sequence numbers in the order they left.
type delayObs struct {
	send, sendAfter, dep []int64
	order                []uint32
	dups                 int
	captureDrops         uint32
	sendErrors           int
	seconds              float64
}

func newDelayObs(n int) delayObs {
	return delayObs{send: make([]int64, n), sendAfter: make([]int64, n), dep: make([]int64, n), order: make([]uint32, 0, n)}
}

// received counts the datagrams that left the lower.
func (o *delayObs) received() int { return len(o.order) }

// reordered counts the datagrams that left after a datagram with a higher
// sequence number (RFC 4737's reordered packets: each is late against the
// highest number seen before it).
func reordered(order []uint32) int {
	n := 0
	var next uint32 // one more than the highest number seen
	for _, s := range order {
		if s < next {
			n++
		} else {
			next = s + 1
		}
	}
	return n
}

// moments returns the mean and the sample standard deviation of v.
func moments(v []float64) (mean, sd float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}

// configuredMoments is the mean and standard deviation of the delays a
// policy draws: D and J/sqrt(3) for uniform (D - J to D + J), D and J for
// the others (the tables are standardized), D and 0 without a jitter.
func configuredMoments(p genl.Policy) (mean, sd float64) {
	mean = float64(p.Delay)
	switch {
	case p.Jitter <= 0:
		return mean, 0
	case p.Distribution == genl.DistUniform:
		return mean, float64(p.Jitter) / math.Sqrt(3)
	}
	return mean, float64(p.Jitter)
}

// predictedDelays returns the delays the kernel draws for the first n
// packets after policy p was set with its seed (genl.Predictor.Delay).
func predictedDelays(p genl.Policy, n int) []int64 {
	var seed uint64
	if p.Seed != nil {
		seed = *p.Seed
	}
	pr := genl.NewPredictor(seed)
	d := make([]int64, n)
	for k := range d {
		d[k] = int64(pr.Delay(p))
	}
	return d
}

// nominalDepartures returns each packet's nominal departure from its send
// time and its drawn delay, by the header's "Order" (genl.Departure):
// send + delay with reorder, else the later of that and the previous
// packet's nominal departure (one flow).
func nominalDepartures(send, delays []int64, reorder bool) []int64 {
	nom := make([]int64, len(send))
	var last time.Duration
	for i := range send {
		t := genl.Departure(time.Duration(send[i]), time.Duration(delays[i]), last, reorder)
		nom[i], last = int64(t), t
	}
	return nom
}

// lateness returns, for each packet that left, its departure minus its
// nominal departure.
func lateness(dep, nominal []int64) []int64 {
	var v []int64
	for i, d := range dep {
		if d != 0 {
			v = append(v, d-nominal[i])
		}
	}
	return v
}

// latenessBeyondOrder returns, for each packet that left after its
// predecessor (the packet before it in the one flow) left, its departure
// minus the later of its nominal departure and its predecessor's actual
// departure: what the tool added beyond what the order rule forced. A
// train of packets with one nominal departure leaves one after another,
// so against its nominal departure the k-th carries the relays of the k-1
// before it; against its predecessor, only its own.
func latenessBeyondOrder(dep, nominal []int64) []int64 {
	var v []int64
	for i := 1; i < len(dep); i++ {
		if dep[i] == 0 || dep[i-1] == 0 {
			continue
		}
		v = append(v, dep[i]-max(nominal[i], dep[i-1]))
	}
	return v
}

// measuredDelays returns departure minus send time for each packet that
// left, and the sequence numbers they belong to.
func measuredDelays(o *delayObs) (d []int64, seqs []int) {
	for i, t := range o.dep {
		if t != 0 {
			d = append(d, t-o.send[i])
			seqs = append(seqs, i)
		}
	}
	return d, seqs
}

// sendPath returns the width of each send's clock bracket: how long
// send(2) took, the uncertainty of the send time.
func sendPath(o *delayObs) []int64 {
	v := make([]int64, len(o.send))
	for i := range o.send {
		v[i] = o.sendAfter[i] - o.send[i]
	}
	return v
}

// replay compares two runs' per-packet delays, packet by packet (those
// that left in both): how many agree within tol, and the largest
// difference.
func replay(a, b *delayObs, tol int64) (within, compared int, maxDiff int64) {
	for i := range a.dep {
		if i >= len(b.dep) || a.dep[i] == 0 || b.dep[i] == 0 {
			continue
		}
		diff := absInt((a.dep[i] - a.send[i]) - (b.dep[i] - b.send[i]))
		compared++
		if diff <= tol {
			within++
		}
		maxDiff = max(maxDiff, diff)
	}
	return within, compared, maxDiff
}

// relErr is (got - want) / want.
func relErr(got, want float64) float64 {
	if want == 0 {
		return math.NaN()
	}
	return (got - want) / want
}

// pooledLate is one tool's lateness over every run of a part: the p99
// with the ranks of its 4-sigma band.
type pooledLate struct {
	Part   string `json:"part"`
	Tool   string `json:"tool"`
	Config string `json:"config"`
	Runs   int    `json:"runs"`
	N      int    `json:"n"`
	Median int64  `json:"median_ns"`
	P99    int64  `json:"p99_ns"`
	P99Lo  int64  `json:"p99_lo_ns"`
	P99Hi  int64  `json:"p99_hi_ns"`
	Max    int64  `json:"max_ns"`
}

// toolRuns groups part's completed runs by tool, the tools in the order
// they first ran.
func toolRuns(runs []delayRec, part string) ([]string, map[string][]delayRec) {
	var tools []string
	by := map[string][]delayRec{}
	for _, r := range runs {
		if r.Part != part || r.Error != "" || len(r.late) == 0 {
			continue
		}
		if _, ok := by[r.Tool]; !ok {
			tools = append(tools, r.Tool)
		}
		by[r.Tool] = append(by[r.Tool], r)
	}
	return tools, by
}

// poolLateness pools the lateness of part's runs by tool, in the order
// the tools first ran.
func poolLateness(runs []delayRec, part string) []pooledLate {
	var out []pooledLate
	tools, by := toolRuns(runs, part)
	for _, tool := range tools {
		var v []int64
		for _, r := range by[tool] {
			v = append(v, r.late...)
		}
		slices.Sort(v)
		p := pooledLate{Part: part, Tool: tool, Config: by[tool][0].Config, Runs: len(by[tool]), N: len(v)}
		p.Median = v[rankOf(len(v), 0.5)]
		p.P99 = v[rankOf(len(v), 0.99)]
		lo, hi := quantileRanks(len(v), 0.99, 4)
		p.P99Lo, p.P99Hi = v[lo], v[hi]
		p.Max = v[len(v)-1]
		out = append(out, p)
	}
	return out
}

// rankOf is the index of the q quantile of n sorted values, as quantile().
func rankOf(n int, q float64) int {
	return int(math.Round(q * float64(n-1)))
}

// quantileRanks returns the indexes, among n sorted values, between which
// the population's q quantile lies with the confidence of sigmas
// standard deviations: the number of values below it is binomial (n, q).
func quantileRanks(n int, q, sigmas float64) (lo, hi int) {
	c := float64(n) * q
	d := sigmas * math.Sqrt(float64(n)*q*(1-q))
	lo = max(int(math.Floor(c-d)), 0)
	hi = min(int(math.Ceil(c+d)), n-1)
	return lo, hi
}

// Where a periodic run's departures fall against the sender. With a
// delay of a whole number of periods, each departure is due when a later
// datagram is sent: the send(2) nearest its nominal departure. It may
// leave before that send(2) began (the sender asleep), inside it (from
// the sending CPU's transmit, or from a timer whose softirq waited for the
// transmit's end), or after it returned. The tail of each tool's lateness
// lies in one of these, which the pooled figures alone do not show.
const (
	phaseBefore = iota
	phaseInside
	phaseAfter
	phaseClasses
)

var phaseNames = [phaseClasses]string{"before that send(2)", "inside it", "after it returned"}

// phaseSplit is a run's lateness split by sendPhases, with the width of
// each packet's own send(2) (a departure inside it, before the tool read
// its clock, adds to its lateness).
type phaseSplit struct {
	late, own [phaseClasses][]int64
}

// sendPhases splits the lateness of the packets that left by where each
// departure falls against the send nearest its nominal departure; send
// and after are the clock readings around each send(2), in sending order.
func sendPhases(dep, nominal, send, after []int64) phaseSplit {
	var out phaseSplit
	for i, d := range dep {
		if d == 0 {
			continue
		}
		j, _ := slices.BinarySearch(send, nominal[i])
		if j == len(send) || (j > 0 && nominal[i]-send[j-1] < send[j]-nominal[i]) {
			j--
		}
		c := phaseInside
		switch {
		case d < send[j]:
			c = phaseBefore
		case d > after[j]:
			c = phaseAfter
		}
		out.late[c] = append(out.late[c], d-nominal[i])
		out.own[c] = append(out.own[c], after[i]-send[i])
	}
	return out
}

// phaseRow is one tool's lateness in one class, pooled over its runs.
type phaseRow struct {
	Tool   string  `json:"tool"`
	Config string  `json:"config"`
	Class  string  `json:"class"`
	Share  float64 `json:"share"`
	N      int     `json:"n"`
	Median int64   `json:"median_ns"`
	P90    int64   `json:"p90_ns"`
	P99    int64   `json:"p99_ns"`
	// OwnSend is the median width of these packets' own send(2).
	OwnSend int64 `json:"own_send_ns"`
}

// poolPhases pools part's runs' classes by tool, in the order the tools
// first ran.
func poolPhases(runs []delayRec, part string) []phaseRow {
	var out []phaseRow
	tools, by := toolRuns(runs, part)
	for _, tool := range tools {
		var p phaseSplit
		total := 0
		for _, r := range by[tool] {
			for c := range p.late {
				p.late[c] = append(p.late[c], r.phases.late[c]...)
				p.own[c] = append(p.own[c], r.phases.own[c]...)
				total += len(r.phases.late[c])
			}
		}
		for c, v := range p.late {
			row := phaseRow{Tool: tool, Config: by[tool][0].Config, Class: phaseNames[c], N: len(v)}
			if len(v) > 0 {
				slices.Sort(v)
				slices.Sort(p.own[c])
				row.Share = float64(len(v)) / float64(total)
				row.Median = v[rankOf(len(v), 0.5)]
				row.P90 = v[rankOf(len(v), 0.9)]
				row.P99 = v[rankOf(len(v), 0.99)]
				row.OwnSend = p.own[c][rankOf(len(v), 0.5)]
			}
			out = append(out, row)
		}
	}
	return out
}

// slowestShown: a run's latest datagram is reported past this lateness.
const slowestShown = 100 * int64(time.Microsecond)

type slowest struct {
	Seq     int   `json:"seq"`
	Late    int64 `json:"lateness_ns"`
	OwnSend int64 `json:"own_send_ns"`
}

// slowestOf returns the latest datagram that left, or nil if none did.
func slowestOf(dep, nominal, send, after []int64) *slowest {
	var w *slowest
	for i, d := range dep {
		if d != 0 && (w == nil || d-nominal[i] > w.Late) {
			w = &slowest{Seq: i, Late: d - nominal[i], OwnSend: after[i] - send[i]}
		}
	}
	return w
}
