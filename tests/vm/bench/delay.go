package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/insane-netdev/insane/go/genl"
	"golang.org/x/sys/unix"
)

// The delay phase (issue 24): insane's delay stage side by side with
// netem's on the same lower (low0, a dummy), in the same run.
//
//   - cost: instructions per packet of insane "mode pass delay 1ms" and
//     netem "delay 1ms limit 1000000" with the throughput phase's UDP
//     source (measureSrc), beside the lower alone and insane pass;
//   - timing, poisson, order, distribution and replay: one UDP sender
//     paces numbered datagrams to 10.2.0.2 at -delay-rate (the poisson
//     part: delay 10ms again, with exponential gaps of that mean, see
//     delayTraffic), reading CLOCK_REALTIME right before and right
//     after each send(2); a packet socket on low0 with SO_TIMESTAMPNS
//     receives each datagram as it leaves (the stamp is taken in
//     dev_queue_xmit_nit(), right before the lower's ndo_start_xmit, on
//     CLOCK_REALTIME); its reader runs SCHED_IDLE (-delay-reader-idle),
//     so that, woken by a departure, it never preempts the sender between
//     its reading and the tool. A datagram's lateness is its departure minus its nominal departure, its send
//     time (the reading before send(2)) plus its delay: the configured
//     one without jitter, the Go predictor's draw for a seeded jitter
//     (genl.Predictor.Delay, by the header's "Order" through
//     genl.Departure); netem's jittered draws cannot be known, so its
//     lateness is measured without jitter only; the timing part's is
//     also split by where each departure falls against the send(2) it
//     meets (sendPhases);
//   - no silent drops: pktgen at 100,000 packets/s (its own pacing,
//     "delay 10000") through delay 1s, the default limit against netem's
//     default, and a small limit whose every refusal must be counted;
//   - memory: slab growth per held packet, per device and per delay
//     policy (as the mem phase measures it).
//
// The analysis is in delaystat.go.

const (
	delayMagic = 0x696e73616e65444c // "insaneDL"
	delaySize  = 64
	delaySeed  = 0x5eed24
)

// delayRec is one paced run of the delay phase.
type delayRec struct {
	Part string `json:"part"` // timing, poisson, order, dist, replay
	// Schedule seeds a poisson run's send times: the two tools' runs of
	// one schedule send at the same moments after their start.
	Schedule uint64 `json:"schedule,omitempty"`
	Tool     string `json:"tool"` // insane or netem
	Config   string `json:"config"`
	// Rate is the sending rate achieved (datagrams per second of guest
	// time, first to last send).
	Rate         float64 `json:"rate_pps"`
	Sent         int     `json:"sent"`
	Received     int     `json:"received"`
	ToolDropped  uint64  `json:"tool_dropped"`
	CaptureDrops uint32  `json:"capture_drops"`
	Duplicates   int     `json:"duplicates"`
	SendErrors   int     `json:"send_errors"`
	Reordered    int     `json:"reordered"`
	// Lateness is departure minus nominal departure, when the nominal
	// departure is known (LateMin its smallest value); SendPath the
	// width of the clock readings around send(2).
	Lateness *latStat `json:"lateness,omitempty"`
	LateMin  int64    `json:"lateness_min_ns,omitempty"`
	// LateAfter is the same against the reading after send(2): the
	// packet reached the tool between the two readings, so its true
	// lateness lies between LateAfter and Lateness.
	LateAfter *latStat `json:"lateness_after,omitempty"`
	// LateOrder, with the order kept, is the lateness beyond what the
	// order rule forced (latenessBeyondOrder), against the reading before.
	LateOrder *latStat `json:"lateness_beyond_order,omitempty"`
	SendPath  latStat  `json:"send_path"`
	// Slowest is the latest datagram, and its own send(2): a stall
	// between the sender's clock read and its send shows there.
	Slowest *slowest `json:"slowest,omitempty"`
	// The measured delays (departure - send), the configured moments,
	// and for a seeded insane run the predictor's draws for the same k.
	Mean     float64 `json:"mean_ns"`
	SD       float64 `json:"sd_ns"`
	WantMean float64 `json:"want_mean_ns"`
	WantSD   float64 `json:"want_sd_ns"`
	PredMean float64 `json:"pred_mean_ns,omitempty"`
	PredSD   float64 `json:"pred_sd_ns,omitempty"`
	// A replay compares this run with the run before it of the same
	// configuration: datagrams whose delays agree within 100 µs, of those
	// compared, and the largest difference.
	ReplayWithin   int     `json:"replay_within,omitempty"`
	ReplayCompared int     `json:"replay_compared,omitempty"`
	ReplayMax      int64   `json:"replay_max_ns,omitempty"`
	Seconds        float64 `json:"seconds"`
	Error          string  `json:"error,omitempty"`
	// late is each datagram's lateness, for the pooled figures; phases
	// the same split by sendPhases (the timing part).
	late   []int64
	phases phaseSplit
}

// noDropRec is one run of pktgen through a long delay.
type noDropRec struct {
	Tool      string  `json:"tool"`
	Config    string  `json:"config"`
	Rate      float64 `json:"rate_pps"`
	Sent      uint64  `json:"sent"`
	Delivered uint64  `json:"delivered"`
	// ToolDropped is every drop the tool counted; QueueFull insane's
	// DROP_QUEUE_FULL; PeakHeld the most packets seen held (insane's
	// HELD_PACKETS, netem's backlog), sampled every 20 ms.
	ToolDropped uint64  `json:"tool_dropped"`
	QueueFull   uint64  `json:"queue_full"`
	PeakHeld    uint64  `json:"peak_held"`
	Seconds     float64 `json:"seconds"`
	Error       string  `json:"error,omitempty"`
}

// heldMemRec is the memory held packets take.
type heldMemRec struct {
	Tool         string `json:"tool"`
	Config       string `json:"config"`
	Held         uint64 `json:"held"`
	SlabKB       int64  `json:"slab_kb"`
	SlabObjBytes int64  `json:"slab_obj_bytes"`
	UsedKB       int64  `json:"used_kb"`
	Flushed      uint64 `json:"flushed"`
}

// delayDevMem is the memory per insane device and per delay policy: the
// growth over N devices, from before to after creating them (Dev) and from
// then to after giving each a delay (Pol).
type delayDevMem struct {
	N                                                  int
	DevSlabKB, DevSlabObjBytes, DevPercpuKB, DevUsedKB int64
	PolSlabKB, PolSlabObjBytes, PolPercpuKB, PolUsedKB int64
}

// delayResult is the delay phase's report.
type delayResult struct {
	Reps    int        `json:"reps"`
	Seconds float64    `json:"run_seconds"`
	Cost    []runRec   `json:"cost,omitempty"`
	Runs    []delayRec `json:"runs,omitempty"`
	// Pooled is each tool's lateness over every run of the timing part
	// and over every schedule of the poisson part.
	Pooled []pooledLate `json:"poisson_pooled,omitempty"`
	// Phases is the timing part's lateness by where each departure
	// falls against the send it meets (sendPhases), per tool.
	Phases  []phaseRow   `json:"timing_phases,omitempty"`
	NoDrop  []noDropRec  `json:"nodrop,omitempty"`
	Held    []heldMemRec `json:"held,omitempty"`
	Devices *delayDevMem `json:"devices,omitempty"`
}

func (r *delayResult) errors() []string {
	var e []string
	for _, x := range r.Runs {
		if x.Error != "" {
			e = append(e, fmt.Sprintf("delay: %s %s: %s", x.Part, x.Config, x.Error))
		}
	}
	for _, x := range r.NoDrop {
		if x.Error != "" {
			e = append(e, fmt.Sprintf("delay: nodrop %s: %s", x.Config, x.Error))
		}
	}
	return e
}

// delayTool is one side of a comparison.
type delayTool struct {
	tool, config string
	pol          genl.Policy // insane's
	setup        func() error
	teardown     func() error
	// dropped is the tool's drop count, cumulative.
	dropped func() (uint64, error)
}

func insaneDelayTool(c *genl.Client, p genl.Policy) delayTool {
	return delayTool{
		tool: "insane", config: "insane0 " + p.String(), pol: p,
		setup: func() error {
			if err := c.SetPolicy(insane, p); err != nil {
				return err
			}
			return viaInsane(true)
		},
		teardown: func() error {
			if err := viaInsane(false); err != nil {
				return err
			}
			return c.SetPolicy(insane, genl.Pass())
		},
		dropped: func() (uint64, error) { return insaneDrops(c) },
	}
}

func netemDelayTool(args ...string) delayTool {
	cmd := append([]string{"tc", "qdisc", "add", "dev", lower, "root", "netem"}, args...)
	return delayTool{
		tool: "netem", config: strings.Join(cmd, " "),
		setup: func() error {
			_, err := run(cmd...)
			return err
		},
		teardown: func() error {
			_, err := run("tc", "qdisc", "del", "dev", lower, "root")
			return err
		},
		dropped: netemDropped,
	}
}

func netemDropped() (uint64, error) {
	out, err := run("tc", "-s", "qdisc", "show", "dev", lower)
	if err != nil {
		return 0, err
	}
	return firstUint(reTcDropped, out)
}

var reBacklog = regexp.MustCompile(`backlog \S+ (\d+)p`)

func netemBacklog() (uint64, error) {
	out, err := run("tc", "-s", "qdisc", "show", "dev", lower)
	if err != nil {
		return 0, err
	}
	return firstUint(reBacklog, out)
}

func delayed(p genl.Policy, d, j time.Duration) genl.Policy {
	p.Delay, p.Jitter = d, j
	return p
}

func seeded(p genl.Policy) genl.Policy {
	s := uint64(delaySeed)
	p.Seed = &s
	return p
}

// netemCase is a cost case of key for netem with args.
func netemCase(key string, args ...string) dropper {
	t := netemDelayTool(args...)
	return dropper{key: key, name: "netem " + strings.Join(args, " "), loss: 0,
		setup:    func(*genl.Client) error { return t.setup() },
		dropped:  func(*genl.Client) (uint64, error) { return netemDropped() },
		teardown: func(*genl.Client) error { return t.teardown() }}
}

// The cost cases, keys of their own beside cases()'s.
func delayCostCases() []dropper {
	a, b := lowerCases()
	return []dropper{a, b,
		insaneCase("p", "insane pass delay 1ms", 0, delayed(genl.Pass(), time.Millisecond, 0)),
		netemCase("q", "delay", "1ms", "limit", "1000000")}
}

// delayPhase runs the whole phase.
// delayReaderIdle: the paced runs' capture reader runs SCHED_IDLE.
var delayReaderIdle = true

// delayParts are the parts of the phase, all by default.
const delayParts = "cost,timing,poisson,order,dist,replay,nodrop,memory"

func delayPhase(c *genl.Client, o *options) (*delayResult, error) {
	res := &delayResult{Reps: o.delayReps, Seconds: o.dur.Seconds()}
	part := func(p string) bool { return strings.Contains(","+o.delayParts+",", ","+p+",") }
	var err error
	start := time.Now()
	if part("cost") {
		fmt.Printf("delay: cost, %d rounds x %s, UDP source ...\n", o.delayReps, o.dur)
		if res.Cost, err = throughput(c, delayCostCases(), []string{srcUDP}, []int{1}, o.delayReps, o.dur); err != nil {
			return res, err
		}
		fmt.Printf("  cost done at %s\n", time.Since(start).Round(time.Second))
	}

	ms := time.Millisecond
	pass := genl.Pass()
	uni := seeded(delayed(pass, 10*ms, 5*ms))
	reo := uni
	reo.Reorder = true
	normal := seeded(delayed(pass, 10*ms, 2*ms))
	normal.Distribution, normal.Reorder = genl.DistNormal, true
	uniCorr := reo
	uniCorr.Correlation = 50
	normCorr := normal
	normCorr.Correlation = 50
	type step struct {
		part     string
		t        delayTool
		n        int
		known    bool   // the nominal departure is known
		schedule uint64 // poisson: the send times' seed
	}
	var steps []step
	// Paced periodically, each run's figures depend on where its sends
	// fall against the kernel's own periodic work (the tick), which its
	// start draws: several runs of each tool, interleaved, sample it.
	for k := 0; k < o.delayRuns; k++ {
		steps = append(steps,
			step{"timing", insaneDelayTool(c, delayed(pass, 10*ms, 0)), o.delayTiming, true, 0},
			step{"timing", netemDelayTool("delay", "10ms", "limit", "1000000"), o.delayTiming, true, 0})
	}
	// Paired: both tools send on each schedule, so that a difference
	// between them is not a difference between schedules.
	for k := 1; k <= o.delayRuns; k++ {
		steps = append(steps,
			step{"poisson", insaneDelayTool(c, delayed(pass, 10*ms, 0)), o.delayTiming, true, uint64(k)},
			step{"poisson", netemDelayTool("delay", "10ms", "limit", "1000000"), o.delayTiming, true, uint64(k)})
	}
	steps = append(steps, []step{
		{"order", insaneDelayTool(c, uni), o.delayCount, true, 0},
		{"order", netemDelayTool("delay", "10ms", "5ms", "limit", "1000000"), o.delayCount, false, 0},
		{"order", insaneDelayTool(c, reo), o.delayCount, true, 0},
		{"dist", insaneDelayTool(c, normal), o.delayDist, true, 0},
		{"replay", insaneDelayTool(c, normal), o.delayDist, true, 0},
		{"dist", netemDelayTool("delay", "10ms", "2ms", "distribution", "normal", "limit", "1000000"), o.delayDist, false, 0},
		{"replay", netemDelayTool("delay", "10ms", "2ms", "distribution", "normal", "limit", "1000000"), o.delayDist, false, 0},
		{"dist", insaneDelayTool(c, uniCorr), o.delayDist, true, 0},
		{"dist", insaneDelayTool(c, normCorr), o.delayDist, true, 0},
	}...)
	var prev *delayObs
	for i, s := range steps {
		if !part(s.part) {
			continue
		}
		rec, obs, err := delayRun(s.t, s.n, o.delayRate, uint64(i+1), s.schedule)
		if err != nil {
			return res, err
		}
		rec.Part, rec.Schedule = s.part, s.schedule
		if rec.Error == "" {
			analyzeDelayRun(&rec, &obs, s.t, s.known)
			if s.part == "replay" && prev != nil {
				rec.ReplayWithin, rec.ReplayCompared, rec.ReplayMax = replay(prev, &obs, int64(100*time.Microsecond))
			}
		}
		prev = &obs
		fmt.Printf("  %s %s: %d of %d left in %.1f s, %d reordered%s\n", s.part, rec.Config, rec.Received, rec.Sent, rec.Seconds, rec.Reordered, errNote(rec.Error))
		res.Runs = append(res.Runs, rec)
	}
	res.Pooled = append(poolLateness(res.Runs, "timing"), poolLateness(res.Runs, "poisson")...)
	res.Phases = poolPhases(res.Runs, "timing")
	fmt.Printf("  paced runs done at %s\n", time.Since(start).Round(time.Second))

	if part("nodrop") {
		for _, nd := range []struct {
			t     delayTool
			count uint64
		}{
			{insaneDelayTool(c, delayed(pass, time.Second, 0)), o.nodropCount},
			{netemDelayTool("delay", "1s"), o.nodropCount},
			{insaneDelayTool(c, func() genl.Policy { p := delayed(pass, time.Second, 0); p.Limit = 1000; return p }()), 5000},
		} {
			r, err := noDropRun(c, nd.t, nd.count, o.nodropGap)
			if err != nil {
				return res, err
			}
			fmt.Printf("  nodrop %s: %d sent at %.0f pps, %d left, %d dropped (%d queue full), peak held %d%s\n",
				r.Config, r.Sent, r.Rate, r.Delivered, r.ToolDropped, r.QueueFull, r.PeakHeld, errNote(r.Error))
			res.NoDrop = append(res.NoDrop, r)
		}
		fmt.Printf("  nodrop done at %s\n", time.Since(start).Round(time.Second))
	}
	if !part("memory") {
		return res, nil
	}
	if res.Held, err = heldMemory(c, o.heldCount); err != nil {
		return res, err
	}
	if res.Devices, err = delayDevMemory(o.delayDevices); err != nil {
		return res, err
	}
	fmt.Printf("  memory done at %s\n", time.Since(start).Round(time.Second))
	return res, nil
}

// analyzeDelayRun fills rec's figures from a run's observations.
func analyzeDelayRun(rec *delayRec, o *delayObs, t delayTool, known bool) {
	rec.Reordered = reordered(o.order)
	rec.SendPath = latencyStats(sendPath(o))
	d, seqs := measuredDelays(o)
	f := make([]float64, len(d))
	for i, x := range d {
		f[i] = float64(x)
	}
	rec.Mean, rec.SD = moments(f)
	p := t.pol
	if t.tool == "netem" {
		p = netemPolicy(t.config)
	}
	rec.WantMean, rec.WantSD = configuredMoments(p)
	if !known {
		return
	}
	draws := make([]int64, len(o.send))
	if t.tool == "insane" && p.Jitter > 0 {
		draws = predictedDelays(p, len(o.send))
		pf := make([]float64, len(seqs))
		for i, s := range seqs {
			pf[i] = float64(draws[s])
		}
		rec.PredMean, rec.PredSD = moments(pf)
	} else {
		for i := range draws {
			draws[i] = int64(p.Delay)
		}
	}
	nominal := nominalDepartures(o.send, draws, p.Reorder)
	late := lateness(o.dep, nominal)
	ls := latencyStats(late)
	if t.tool == "insane" && p.Jitter > 0 && !p.Reorder {
		lo := latencyStats(latenessBeyondOrder(o.dep, nominal))
		rec.LateOrder = &lo
	}
	rec.Lateness = &ls
	rec.late = late
	if rec.Part == "timing" {
		rec.phases = sendPhases(o.dep, nominal, o.send, o.sendAfter)
	}
	rec.LateMin = quantile(late, 0)
	la := latencyStats(lateness(o.dep, nominalDepartures(o.sendAfter, draws, p.Reorder)))
	rec.LateAfter = &la
	rec.Slowest = slowestOf(o.dep, nominal, o.send, o.sendAfter)
}

// netemPolicy reads the delay, jitter and distribution of a netem
// command line written by netemDelayTool, as a policy.
func netemPolicy(cmd string) genl.Policy {
	f := strings.Fields(cmd)
	p := genl.Pass()
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case "delay":
			if i+1 < len(f) {
				p.Delay, _ = time.ParseDuration(f[i+1])
				i++
				if i+1 < len(f) {
					if j, err := time.ParseDuration(f[i+1]); err == nil {
						p.Jitter = j
						i++
					}
				}
			}
		case "distribution":
			if i+1 < len(f) && f[i+1] == "normal" {
				p.Distribution = genl.DistNormal
			}
		}
	}
	p.Reorder = true
	return p
}

// delayRun sends n numbered datagrams at rate through tool t, Poisson
// paced on the send times seeded by schedule if it is not 0, and returns
// what it saw.
func delayRun(t delayTool, n int, rate float64, runID, schedule uint64) (delayRec, delayObs, error) {
	rec := delayRec{Tool: t.tool, Config: t.config, Sent: n}
	if err := t.setup(); err != nil {
		return rec, delayObs{}, fmt.Errorf("delay: %s: %w", t.config, err)
	}
	d0, err := t.dropped()
	if err == nil {
		var o delayObs
		o, err = delayTraffic(n, rate, runID, schedule)
		if err == nil {
			var d1 uint64
			if d1, err = t.dropped(); err == nil {
				rec.ToolDropped = d1 - d0
				rec.Received, rec.CaptureDrops, rec.Duplicates, rec.SendErrors = o.received(), o.captureDrops, o.dups, o.sendErrors
				rec.Seconds = o.seconds
				if k := len(o.send); k > 1 && o.send[k-1] > o.send[0] {
					rec.Rate = float64(k-1) / (float64(o.send[k-1]-o.send[0]) / 1e9)
				}
				var bad []string
				if uint64(rec.Received)+rec.ToolDropped != uint64(n) || rec.SendErrors != 0 {
					bad = append(bad, fmt.Sprintf("%d sent (%d send errors), %d left low0, %d dropped by the tool", n, rec.SendErrors, rec.Received, rec.ToolDropped))
				}
				if rec.CaptureDrops != 0 || rec.Duplicates != 0 {
					bad = append(bad, fmt.Sprintf("the capture dropped %d, %d duplicates", rec.CaptureDrops, rec.Duplicates))
				}
				rec.Error = strings.Join(bad, "; ")
			}
		}
		if terr := t.teardown(); err == nil && terr != nil {
			err = terr
		}
		return rec, o, err
	}
	_ = t.teardown()
	return rec, delayObs{}, err
}

// delayTraffic sends datagrams 0 to n-1, tagged runID, paced at rate on
// CLOCK_REALTIME (absolute sleeps, 1 ns of timer slack), and receives them
// on low0 until none has arrived for 300 ms. Paced periodically, the
// datagrams are 1/rate apart, and a delay that is a multiple of that gap
// (10 ms at 10,000/s) has each departure fall at the same point of a
// later datagram's send(2): the figures then depend on that one phase.
// Poisson pacing (RFC 2330's sampling; schedule, unless 0, seeds it)
// draws each gap from the exponential distribution of mean 1/rate, so
// that departures fall anywhere in the sends, as often as the time they
// take.
func delayTraffic(n int, rate float64, runID, schedule uint64) (delayObs, error) {
	o := newDelayObs(n)
	ps, us, err := trafficSockets(true)
	if err != nil {
		return o, err
	}
	defer unix.Close(ps)
	defer unix.Close(us)

	var received atomic.Int64
	var stop atomic.Bool
	rbuf := make([]byte, 256)
	oob := make([]byte, 256)
	recvDone := receiverAt(&stop, delayReaderIdle, func() error {
		k, oobn, _, _, err := unix.Recvmsg(ps, rbuf, oob, 0)
		if err != nil {
			return err
		}
		seq, ok := delaySeq(rbuf[:k], runID)
		if !ok || seq >= uint64(n) {
			return nil
		}
		ts, ok := stampOf(oob[:oobn])
		if !ok {
			return errors.New("delay: a datagram without SCM_TIMESTAMPNS")
		}
		if o.dep[seq] != 0 {
			o.dups++
			return nil
		}
		o.dep[seq] = ts
		o.order = append(o.order, uint32(seq))
		received.Add(1)
		return nil
	})

	defer paceThread()()
	buf := make([]byte, delaySize)
	binary.BigEndian.PutUint64(buf, delayMagic)
	binary.BigEndian.PutUint64(buf[8:], runID)
	begin := time.Now()
	dues := paceSchedule(n, begin.UnixNano()+int64(time.Millisecond), int64(1e9/rate), schedule, schedule != 0)
	for i, due := range dues {
		for time.Now().UnixNano() < due {
			ts := unix.NsecToTimespec(due)
			if err := unix.ClockNanosleep(unix.CLOCK_REALTIME, unix.TIMER_ABSTIME, &ts, nil); err != nil && !errors.Is(err, unix.EINTR) {
				stop.Store(true)
				<-recvDone
				return o, err
			}
		}
		binary.BigEndian.PutUint64(buf[16:], uint64(i))
		t0 := time.Now().UnixNano()
		_, err := unix.Write(us, buf)
		t1 := time.Now().UnixNano()
		if err != nil {
			o.sendErrors++
		}
		o.send[i], o.sendAfter[i] = t0, t1
	}
	waitQuiet(func() uint64 { return uint64(received.Load()) })
	o.seconds = time.Since(begin).Seconds()
	stop.Store(true)
	if err := <-recvDone; err != nil {
		return o, err
	}
	st, err := unix.GetsockoptTpacketStats(ps, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return o, err
	}
	o.captureDrops = st.Drops
	return o, nil
}

// paceSchedule returns the n send times of a paced run from first on: gap
// apart, or (poisson) with gaps drawn from the exponential distribution of
// mean gap, seeded by seed.
func paceSchedule(n int, first, gap int64, seed uint64, poisson bool) []int64 {
	dues := make([]int64, n)
	gaps := rand.New(rand.NewPCG(delaySeed, seed))
	due := first
	for i := range dues {
		if i > 0 && poisson {
			due += int64(gaps.ExpFloat64() * float64(gap))
		} else if i > 0 {
			due += gap
		}
		dues[i] = due
	}
	return dues
}

// stampOf returns the SCM_TIMESTAMPNS of a message's control data.
func stampOf(oob []byte) (int64, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			return ts.Nano(), true
		}
	}
	return 0, false
}

// delaySeq returns the sequence number of a datagram tagged runID in an
// IPv4 packet as a SOCK_DGRAM packet socket reads it.
func delaySeq(b []byte, runID uint64) (uint64, bool) {
	if len(b) < 20 || b[0]>>4 != 4 || b[9] != unix.IPPROTO_UDP {
		return 0, false
	}
	p := b[int(b[0]&15)*4:]
	if len(p) < 8+24 || binary.BigEndian.Uint16(p[2:]) != 9 {
		return 0, false
	}
	p = p[8:]
	if binary.BigEndian.Uint64(p) != delayMagic || binary.BigEndian.Uint64(p[8:]) != runID {
		return 0, false
	}
	return binary.BigEndian.Uint64(p[16:]), true
}

// noDropRun sends count packets with pktgen, one every gap ns, through t
// and counts what left low0 once the delay is over.
func noDropRun(c *genl.Client, t delayTool, count uint64, gap int64) (noDropRec, error) {
	r := noDropRec{Tool: t.tool, Config: t.config}
	if err := (pktgen{}).configure(1, count); err != nil {
		return r, err
	}
	if err := pgWrite(inDevs[0].name, fmt.Sprintf("delay %d", gap)); err != nil {
		return r, err
	}
	if err := t.setup(); err != nil {
		return r, fmt.Errorf("delay: %s: %w", t.config, err)
	}
	err := func() error {
		held := func() (uint64, uint64, error) {
			if t.tool == "netem" {
				b, err := netemBacklog()
				return b, 0, err
			}
			d, err := c.Device(insane)
			if err != nil {
				return 0, 0, err
			}
			return d.Stats.HeldPackets, d.Stats.DropQueueFull, nil
		}
		tx0, err := lowerTx()
		if err != nil {
			return err
		}
		dr0, err := t.dropped()
		if err != nil {
			return err
		}
		_, qf0, err := held()
		if err != nil {
			return err
		}
		var peak atomic.Uint64
		var stop atomic.Bool
		done := make(chan error, 1)
		go func() {
			for !stop.Load() {
				h, _, err := held()
				if err != nil {
					done <- err
					return
				}
				if h > peak.Load() {
					peak.Store(h)
				}
				time.Sleep(20 * time.Millisecond)
			}
			done <- nil
		}()
		start := time.Now()
		sent, pps, err := pktgen{}.run(1, 0)
		if err != nil {
			stop.Store(true)
			<-done
			return err
		}
		// Wait out the delay, then until low0 stops sending.
		time.Sleep(t.pol.Delay + 100*time.Millisecond)
		if t.tool == "netem" {
			time.Sleep(time.Second)
		}
		for last := uint64(0); ; {
			tx, err := lowerTx()
			if err != nil {
				return err
			}
			if tx == last {
				break
			}
			last = tx
			time.Sleep(200 * time.Millisecond)
		}
		stop.Store(true)
		if err := <-done; err != nil {
			return err
		}
		r.Seconds = time.Since(start).Seconds()
		tx1, err := lowerTx()
		if err != nil {
			return err
		}
		dr1, err := t.dropped()
		if err != nil {
			return err
		}
		_, qf1, err := held()
		if err != nil {
			return err
		}
		r.Sent, r.Rate, r.Delivered, r.ToolDropped, r.QueueFull, r.PeakHeld = sent, pps, tx1-tx0, dr1-dr0, qf1-qf0, peak.Load()
		var bad []string
		if r.Delivered+r.ToolDropped != r.Sent {
			bad = append(bad, fmt.Sprintf("%d sent, %d left low0, %d dropped by the tool: %d unaccounted", r.Sent, r.Delivered, r.ToolDropped, int64(r.Sent)-int64(r.Delivered+r.ToolDropped)))
		}
		if t.tool == "insane" && r.QueueFull != r.ToolDropped {
			bad = append(bad, fmt.Sprintf("%d drops, %d of them queue-full", r.ToolDropped, r.QueueFull))
		}
		r.Error = strings.Join(bad, "; ")
		return nil
	}()
	if terr := t.teardown(); err == nil && terr != nil {
		err = terr
	}
	return r, err
}

// sendN sends n 64-byte datagrams to 10.2.0.2 as fast as it can and
// returns the successful sends.
func sendN(n int) (uint64, error) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(s)
	if err := unix.Connect(s, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{10, 2, 0, 2}}); err != nil {
		return 0, err
	}
	buf := make([]byte, 64)
	var sent uint64
	for i := 0; i < n; i++ {
		if _, err := unix.Write(s, buf); err == nil {
			sent++
		}
	}
	return sent, nil
}

// heldMemory measures the memory n held 64-byte datagrams take, held by
// insane (delay 60s) and by netem (delay 60s limit 1000000): the growth
// between snapshots (mem phase) before and after sending them. insane's
// are then flushed by taking insane0 down and up.
func heldMemory(c *genl.Client, n int) ([]heldMemRec, error) {
	var out []heldMemRec
	for _, t := range []delayTool{
		insaneDelayTool(c, delayed(genl.Pass(), time.Minute, 0)),
		netemDelayTool("delay", "60s", "limit", "1000000"),
	} {
		rec := heldMemRec{Tool: t.tool, Config: t.config}
		if err := t.setup(); err != nil {
			return out, err
		}
		err := func() error {
			before, err := snapshot()
			if err != nil {
				return err
			}
			if _, err := sendN(n); err != nil {
				return err
			}
			after, err := snapshot()
			if err != nil {
				return err
			}
			rec.SlabKB, rec.SlabObjBytes, rec.UsedKB = after.slab-before.slab, after.obj-before.obj, after.used-before.used
			if t.tool == "netem" {
				rec.Held, err = netemBacklog()
				return err
			}
			d, err := c.Device(insane)
			if err != nil {
				return err
			}
			rec.Held = d.Stats.HeldPackets
			if err := viaInsane(false); err != nil {
				return err
			}
			if err := runAll([]string{"ip", "link", "set", insane, "down"}, []string{"ip", "link", "set", insane, "up"}); err != nil {
				return err
			}
			d1, err := c.Device(insane)
			if err != nil {
				return err
			}
			rec.Flushed = d1.Stats.DropFlushed - d.Stats.DropFlushed
			return nil
		}()
		if terr := t.teardown(); err == nil && terr != nil {
			err = terr
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// delayDevMemory measures, in a fresh namespace, the memory of n insane
// devices on a dummy, then of giving each "mode pass delay 1ms" (the
// policy and the flow table it brings).
func delayDevMemory(n int) (*delayDevMem, error) {
	// A namespace left by a run that failed here.
	_, _ = run("ip", "netns", "del", memNS)
	if _, err := run("ip", "netns", "add", memNS); err != nil {
		return nil, err
	}
	defer run("ip", "netns", "del", memNS)
	if err := runAll(
		[]string{"ip", "-n", memNS, "link", "add", "m0", "type", "dummy"},
		[]string{"ip", "-n", memNS, "link", "set", "m0", "up"},
	); err != nil {
		return nil, err
	}
	var add strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&add, "link add x%d link m0 type insane\n", i)
	}
	s0, err := snapshot()
	if err != nil {
		return nil, err
	}
	if err := runIn(add.String(), "ip", "-n", memNS, "-batch", "-"); err != nil {
		return nil, err
	}
	s1, err := snapshot()
	if err != nil {
		return nil, err
	}
	// The policies through genl, from a client in the namespace.
	nc, err := genl.Dial(&genl.Options{NetNSPath: "/run/netns/" + memNS})
	if err != nil {
		return nil, err
	}
	p := delayed(genl.Pass(), time.Millisecond, 0)
	for i := 0; i < n; i++ {
		if err := nc.SetPolicy(fmt.Sprintf("x%d", i), p); err != nil {
			nc.Close()
			return nil, err
		}
	}
	nc.Close()
	s2, err := snapshot()
	if err != nil {
		return nil, err
	}
	m := &delayDevMem{N: n,
		DevSlabKB: s1.slab - s0.slab, DevSlabObjBytes: s1.obj - s0.obj, DevPercpuKB: s1.percpu - s0.percpu, DevUsedKB: s1.used - s0.used,
		PolSlabKB: s2.slab - s1.slab, PolSlabObjBytes: s2.obj - s1.obj, PolPercpuKB: s2.percpu - s1.percpu, PolUsedKB: s2.used - s1.used,
	}
	return m, nil
}

// printDelay prints the delay phase's tables.
func printDelay(r *delayResult, icount bool) {
	unit := "guest ns"
	if icount {
		unit = "instructions"
	}
	if len(r.Cost) > 0 {
		m := byRep(r.Cost)
		fmt.Printf("\n### Delay (issue 24): cost, UDP source, 1 CPU (%d rounds x %.1f s; median [min–max])\n\n", r.Reps, r.Seconds)
		printCostTable(m, unit, delayCostCases())
		fmt.Printf("\ninsane delay 1ms / netem delay 1ms, rate in the same round: %s\n", pairRatio(m, "p", "q", 1, srcUDP).format(1, 3))
	}

	fmt.Printf("\n### Delay (issue 24): departures from low0 against their nominal departure (send time + delay), guest µs\n\n")
	fmt.Println("| part | config | sent | left | pps | reordered | lateness p50 | p99 | max | min | after send(2): p50, p99 | send(2) p50, p99 | mean delay (want) | sd (want) | predictor mean, sd | replay within 100 µs |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, x := range r.Runs {
		late := "- | - | - | - | -"
		if x.Lateness != nil && x.LateAfter != nil {
			late = fmt.Sprintf("%.1f | %.1f | %.1f | %.1f | %.1f, %.1f", float64(x.Lateness.Median)/1e3, float64(x.Lateness.P99)/1e3, float64(x.Lateness.Max)/1e3, float64(x.LateMin)/1e3,
				float64(x.LateAfter.Median)/1e3, float64(x.LateAfter.P99)/1e3)
		}
		pred := "-"
		if x.PredSD != 0 {
			pred = fmt.Sprintf("%.4f, %.4f ms", x.PredMean/1e6, x.PredSD/1e6)
		}
		rp := "-"
		if x.ReplayCompared > 0 {
			rp = fmt.Sprintf("%d of %d (max %.1f µs)", x.ReplayWithin, x.ReplayCompared, float64(x.ReplayMax)/1e3)
		}
		part := x.Part
		if x.Schedule != 0 {
			part = fmt.Sprintf("%s, schedule %d", x.Part, x.Schedule)
		}
		fmt.Printf("| %s | %s | %d | %d | %.0f | %d (%.2f %%) | %s | %.1f, %.1f | %.4f ms (%.4f, %+.2f %%) | %.4f ms (%.4f, %+.2f %%) | %s | %s |%s\n",
			part, x.Config, x.Sent, x.Received, x.Rate, x.Reordered, 100*float64(x.Reordered)/float64(max(x.Received, 1)), late,
			float64(x.SendPath.Median)/1e3, float64(x.SendPath.P99)/1e3,
			x.Mean/1e6, x.WantMean/1e6, 100*relErr(x.Mean, x.WantMean),
			x.SD/1e6, x.WantSD/1e6, 100*relErr(x.SD, x.WantSD), pred, rp, errNote(x.Error))
	}
	if len(r.Pooled) > 0 {
		fmt.Printf("\nLateness pooled over each part's runs (timing: periodic pacing, runs started at other moments; poisson: each schedule sent through both tools), guest µs, the p99's 4-sigma band from the binomial ranks of the order statistics:\n\n")
		fmt.Println("| part | tool | runs | n | p50 | p99 [4-sigma band] | max |")
		fmt.Println("|---|---|---|---|---|---|---|")
		for _, p := range r.Pooled {
			fmt.Printf("| %s | %s | %d | %d | %.1f | %.1f [%.1f, %.1f] | %.1f |\n", p.Part, p.Config, p.Runs, p.N,
				float64(p.Median)/1e3, float64(p.P99)/1e3, float64(p.P99Lo)/1e3, float64(p.P99Hi)/1e3, float64(p.Max)/1e3)
		}
	}
	if len(r.Phases) > 0 {
		fmt.Printf("\nThe timing part's lateness by where each departure falls against the send(2) nearest its nominal departure (the later datagram's send it meets; pooled over the runs), guest µs:\n\n")
		fmt.Println("| tool | departure | share | n | p50 | p90 | p99 | the datagram's own send(2), p50 |")
		fmt.Println("|---|---|---|---|---|---|---|---|")
		for _, p := range r.Phases {
			fmt.Printf("| %s | %s | %.1f %% | %d | %.1f | %.1f | %.1f | %.1f |\n", p.Config, p.Class, 100*p.Share, p.N,
				float64(p.Median)/1e3, float64(p.P90)/1e3, float64(p.P99)/1e3, float64(p.OwnSend)/1e3)
		}
	}
	for _, x := range r.Runs {
		if w := x.Slowest; w != nil && w.Late > slowestShown {
			fmt.Printf("\n%s %s: its latest datagram (#%d) left %.1f µs late; its own send(2) took %.1f µs\n",
				x.Part, x.Config, w.Seq, float64(w.Late)/1e3, float64(w.OwnSend)/1e3)
		}
	}
	for _, x := range r.Runs {
		if x.LateOrder != nil {
			fmt.Printf("\n%s (order kept): lateness beyond what the order forced (departure minus the later of the nominal departure and the predecessor's departure), n %d: p50 %.1f, p99 %.1f, max %.1f µs\n",
				x.Config, x.LateOrder.N, float64(x.LateOrder.Median)/1e3, float64(x.LateOrder.P99)/1e3, float64(x.LateOrder.Max)/1e3)
		}
	}

	if len(r.NoDrop) == 0 && len(r.Held) == 0 {
		return
	}
	fmt.Printf("\n### Delay (issue 24): no silent drops, pktgen through delay 1s\n\n")
	fmt.Println("| config | sent | pps | left low0 | dropped by the tool | of them queue full | peak held | s |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, x := range r.NoDrop {
		fmt.Printf("| %s | %d | %.0f | %d | %d | %d | %d | %.1f |%s\n", x.Config, x.Sent, x.Rate, x.Delivered, x.ToolDropped, x.QueueFull, x.PeakHeld, x.Seconds, errNote(x.Error))
	}

	fmt.Printf("\n### Delay (issue 24): memory\n\n")
	fmt.Println("| held by | packets held | slab objects, bytes per packet | Slab, bytes per packet | used, bytes per packet | flushed |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, h := range r.Held {
		per := func(v int64) string {
			if h.Held == 0 {
				return "-"
			}
			return strconv.FormatInt(v/int64(h.Held), 10)
		}
		fmt.Printf("| %s | %d | %s | %s | %s | %d |\n", h.Config, h.Held, per(h.SlabObjBytes), per(h.SlabKB*1024), per(h.UsedKB*1024), h.Flushed)
	}
	if d := r.Devices; d != nil {
		n := int64(d.N)
		fmt.Printf("\n%d insane devices in a fresh netns: per device %d B of slab objects, %d B per-cpu, %d B used; then mode pass delay 1ms on each: per policy %d B of slab objects, %d B per-cpu, %d B used\n",
			d.N, d.DevSlabObjBytes/n, d.DevPercpuKB*1024/n, d.DevUsedKB*1024/n, d.PolSlabObjBytes/n, d.PolPercpuKB*1024/n, d.PolUsedKB*1024/n)
	}
}

// delayNoisy is the 2-vCPU part: pktgen from one and two CPUs through the
// lower alone, insane delay 1ms and netem delay 1ms.
func delayNoisy(c *genl.Client, o *options) ([]runRec, error) {
	var cs []dropper
	for _, d := range delayCostCases() {
		if d.key != "b" {
			cs = append(cs, d)
		}
	}
	return throughput(c, cs, []string{srcPktgen}, []int{1, 2}, o.noisyReps, o.noisyDur)
}

func printDelayNoisy(runs []runRec, reps int, dur time.Duration) {
	m := byRep(runs)
	fmt.Printf("\n### Delay (issue 24), noisy: 1 and 2 sending CPUs under multi-threaded TCG (pktgen; %d rounds x %s; median [min–max])\n\n", reps, dur)
	fmt.Println("| case | 1 CPU kpps | 2 CPUs kpps | 2 CPUs / 1 CPU | left low0, 2 CPUs |")
	fmt.Println("|---|---|---|---|---|")
	for _, d := range delayCostCases() {
		if _, ok := m[runKey{d.key, 1, srcPktgen}]; !ok {
			continue
		}
		s1, s2 := statsFor(m, d.key, 1, srcPktgen), statsFor(m, d.key, 2, srcPktgen)
		fmt.Printf("| (%s) %s | %s | %s | %s | %s |\n", d.key, d.name, s1.pps.format(1e-3, 1), s2.pps.format(1e-3, 1),
			scalingFor(m, d.key).format(1, 2), s2.delivered.format(100, 1)+" %")
	}
}
