//go:build vmtest

package guest

// Rate, duplication and corruption (issue 25), spoken in raw generic
// netlink: every refusal with its message and the attribute it points at,
// the attributes read back as set; departures at the rate stamped on the
// lower, never early (each packet's earliest departure is computed from
// the clocks read around the sends, exactly, as the header's clock F
// would have it), both ways, with an overhead, under a buffer and a limit,
// across a schedule's edge; TCP through a rate; GSO charged per wire
// packet; duplicate and corrupt shares; seeded duplication and corruption
// against a model of the header's draws written here (which packets, which
// bit, and what the receiver's stack counted); teardown with packets
// queued at a slow rate.

import (
	"fmt"
	"math/bits"
	"net"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

func TestKernelRateRefused(t *testing.T) {
	CheckKmsg(t)
	const ns, dev = "krate", "kri0"
	kmDevice(t, ns, dev)
	c := kmOpen(t, ns)
	pass := kmMode(uapi.ModePass)
	step := func(attrs ...kmA) kmA { return kmStep(append(attrs, kmDur(time.Second))...) }
	sched := func(steps ...kmA) []kmA { return []kmA{kmMode(uapi.ModeSchedule), kmSteps(steps...)} }
	const (
		rateMsg   = "INSANE_POLICY_A_RATE must be INSANE_RATE_MIN (8) .. INSANE_RATE_MAX (10^12) bits per second"
		bufMsg    = "INSANE_POLICY_A_BUFFER_NS must be 1 ns .. INSANE_DELAY_MAX_NS (60 s)"
		dupMsg    = "INSANE_POLICY_A_DUPLICATE must be above 0 and at most 100 percent (100000000)"
		corMsg    = "INSANE_POLICY_A_CORRUPT must be above 0 and at most 100 percent (100000000)"
		seedMsg   = "INSANE_POLICY_A_SEED is only valid in percent, burst, gilbert and schedule modes, or beside INSANE_POLICY_A_JITTER_NS, _DUPLICATE or _CORRUPT"
		beside    = " is not valid beside INSANE_POLICY_A_STEPS: give each step its "
		mbit      = 1e6
		rateAbove = uapi.RateMax + 1
	)
	cases := []kmRefusal{
		{"rate 0", kmJoin(pass, kmMark(rtRate(0))), rateMsg},
		{"rate below min", kmJoin(pass, kmMark(rtRate(uapi.RateMin-1))), rateMsg},
		{"rate above max", kmJoin(pass, kmMark(rtRate(rateAbove))), rateMsg},
		{"rate 2^64-1", kmJoin(kmMode(uapi.ModeDrop), kmMark(rtRate(1<<64-1))), rateMsg},
		{"overhead without rate", kmJoin(pass, kmMark(rtOverhead(38))), "INSANE_POLICY_A_OVERHEAD needs INSANE_POLICY_A_RATE"},
		{"overhead 0 without rate", kmJoin(pass, kmMark(rtOverhead(0))), "INSANE_POLICY_A_OVERHEAD needs INSANE_POLICY_A_RATE"},
		{"overhead above max", kmJoin(pass, rtRate(mbit), kmMark(rtOverhead(uapi.RateOverheadMax+1))), "INSANE_POLICY_A_OVERHEAD is above INSANE_RATE_OVERHEAD_MAX (4096) bytes"},
		{"buffer without rate", kmJoin(pass, kmMark(rtBuffer(time.Millisecond))), "INSANE_POLICY_A_BUFFER_NS needs INSANE_POLICY_A_RATE: a buffer is a queue's length in time at the rate"},
		{"buffer 0", kmJoin(pass, rtRate(mbit), kmMark(rtBuffer(0))), bufMsg},
		{"buffer above max", kmJoin(pass, rtRate(mbit), kmMark(kmU64(uapi.PolicyABufferNs, uapi.DelayMaxNs+1))), bufMsg},
		{"duplicate 0", kmJoin(pass, kmMark(kmU32(uapi.PolicyADuplicate, 0))), dupMsg},
		{"duplicate above 100", kmJoin(pass, kmMark(kmU32(uapi.PolicyADuplicate, uapi.PercentMax+1))), dupMsg},
		{"duplicate 2^32-1", kmJoin(kmMode(uapi.ModePercent), kmPercent(5), kmMark(kmU32(uapi.PolicyADuplicate, 0xffffffff))), dupMsg},
		{"corrupt 0", kmJoin(pass, kmMark(kmU32(uapi.PolicyACorrupt, 0))), corMsg},
		{"corrupt above 100", kmJoin(pass, kmMark(kmU32(uapi.PolicyACorrupt, uapi.PercentMax+1))), corMsg},
		{"corrupt header alone", kmJoin(pass, kmMark(rtCorruptHeader())), "INSANE_POLICY_A_CORRUPT_HEADER needs INSANE_POLICY_A_CORRUPT"},
		{"corrupt header beside duplicate", kmJoin(pass, rtDup(1), kmMark(rtCorruptHeader())), "INSANE_POLICY_A_CORRUPT_HEADER needs INSANE_POLICY_A_CORRUPT"},
		{"seed with rate only", kmJoin(pass, rtRate(mbit), kmMark(kmSeed(3))), seedMsg},
		{"seed in drop mode", kmJoin(kmMode(uapi.ModeDrop), kmMark(kmSeed(1))), seedMsg},
		{"rate beside the steps", kmJoin(sched(step(pass)), kmMark(rtRate(mbit))), "INSANE_POLICY_A_RATE" + beside + "rate"},
		{"overhead beside the steps", kmJoin(sched(step(pass, rtRate(mbit))), kmMark(rtOverhead(38))), "INSANE_POLICY_A_OVERHEAD" + beside + "rate"},
		{"buffer beside the steps", kmJoin(sched(step(pass, rtRate(mbit))), kmMark(rtBuffer(time.Millisecond))), "INSANE_POLICY_A_BUFFER_NS" + beside + "rate"},
		{"duplicate beside the steps", kmJoin(sched(step(pass)), kmMark(rtDup(1))), "INSANE_POLICY_A_DUPLICATE" + beside + "own"},
		{"corrupt beside the steps", kmJoin(sched(step(pass)), kmMark(rtCorrupt(1))), "INSANE_POLICY_A_CORRUPT" + beside + "own"},
		{"header beside the steps", kmJoin(sched(step(pass, rtCorrupt(1))), kmMark(rtCorruptHeader())), "INSANE_POLICY_A_CORRUPT_HEADER" + beside + "own"},
		{"rate 0 in a step", sched(step(pass), step(pass, kmMark(rtRate(0)))), rateMsg},
		{"overhead without rate in a step", sched(step(kmMode(uapi.ModeDrop), kmMark(rtOverhead(1)))), "INSANE_POLICY_A_OVERHEAD needs INSANE_POLICY_A_RATE"},
		{"buffer 0 in a step", sched(step(pass, rtRate(mbit), kmMark(rtBuffer(0)))), bufMsg},
		{"duplicate above 100 in a step", sched(step(kmMode(uapi.ModePercent), kmPercent(5), kmMark(kmU32(uapi.PolicyADuplicate, uapi.PercentMax+1)))), dupMsg},
		{"header alone in a step", sched(step(pass, kmMark(rtCorruptHeader()))), "INSANE_POLICY_A_CORRUPT_HEADER needs INSANE_POLICY_A_CORRUPT"},
		{"seed in a step with duplicate", sched(step(pass, rtDup(1), kmMark(kmSeed(1)))), "INSANE_POLICY_A_SEED is not valid in a step: the schedule's seed goes beside INSANE_POLICY_A_STEPS"},
		{"rate twice", kmJoin(pass, rtRate(mbit), kmMark(rtRate(mbit))), "INSANE_POLICY_A_RATE is given more than once"},
		{"duplicate twice", kmJoin(pass, rtDup(1), kmMark(rtDup(1))), "INSANE_POLICY_A_DUPLICATE is given more than once"},
		{"header twice", kmJoin(pass, rtCorrupt(1), rtCorruptHeader(), kmMark(rtCorruptHeader())), "INSANE_POLICY_A_CORRUPT_HEADER is given more than once"},
	}
	kmRefuseBothWays(t, c, dev, cases)
	// rtnetlink: the same parser behind IFLA_INFO_DATA, for both policies.
	rt := kmRtOpen(t, ns)
	kmCheckRefusal(t, "rtnetlink rate 0", rt.change(dev, pass, kmMark(rtRate(0))), rateMsg)
	kmCheckRefusal(t, "rtnetlink rx duplicate 0", rt.change(dev, kmNest(uapi.PolicyARx, pass, kmMark(kmU32(uapi.PolicyADuplicate, 0)))), dupMsg)
	kmCheckRefusal(t, "rtnetlink rate beside the steps", rt.change(dev, kmJoin(sched(step(pass)), kmMark(rtRate(mbit)))...), "INSANE_POLICY_A_RATE"+beside+"rate")

	// Accepted at the limits, and read back exactly as set (an OVERHEAD
	// of 0 given is read back).
	hour := kmDur(time.Hour)
	accepted := [][]kmA{
		rtPass(rtRate(uapi.RateMin)),
		rtPass(rtRate(uapi.RateMax)),
		rtPass(rtRate(10*mbit), rtOverhead(0)),
		rtPass(rtRate(10*mbit), rtOverhead(uapi.RateOverheadMax), rtBuffer(1)),
		rtPass(rtRate(1234567), rtBuffer(uapi.DelayMaxNs), kdLimit(7)),
		rtPass(kmU32(uapi.PolicyADuplicate, uapi.PercentMax), kmU32(uapi.PolicyACorrupt, 1), rtCorruptHeader()),
		rtPass(rtDup(0.5), kmSeed(9)),
		rtPass(rtCorrupt(0.1), kmSeed(0)),
		rtPass(rtRate(2*mbit), kdDelay(10*time.Millisecond), kdJitter(time.Millisecond), rtDup(1), rtCorrupt(2), kmSeed(5)),
		kmJoin(kmMode(uapi.ModePercent), kmPercent(99), rtDup(1), rtCorrupt(0.1), kmSeed(3)),
		kmJoin(kmMode(uapi.ModeGilbert), kmGE(1, 20, 100, 0), rtRate(mbit), rtCorrupt(50), rtCorruptHeader()),
		kmJoin(kmTime(time.Second, time.Second), rtRate(8*mbit), rtOverhead(38), rtDup(3)),
		{kmMode(uapi.ModeDrop), rtRate(mbit), rtBuffer(time.Millisecond)},
		kmJoin(sched(
			kmStep(pass, rtRate(2*mbit), hour),
			kmStep(pass, rtRate(8*mbit), rtOverhead(38), rtBuffer(50*time.Millisecond), hour),
			kmStep(kmMode(uapi.ModePercent), kmPercent(50), rtDup(10), rtCorrupt(1), rtCorruptHeader(), hour),
			kmStep(kmMode(uapi.ModeDrop), rtDup(10), hour)), kmSeed(11), kdLimit(100)),
	}
	kmAcceptBothWays(t, c, dev, accepted)
	// IFLA_INFO_DATA carries them too.
	p := accepted[len(accepted)-1]
	data := rt.infoData(dev)
	var tx []kmA
	for _, a := range data {
		if a.typ != uapi.PolicyARx {
			tx = append(tx, a)
		}
	}
	tx, _, err := kmTakePos(tx)
	if err != nil {
		t.Fatal(err)
	}
	kmSame(t, "IFLA_INFO_DATA", tx, p)
}

// rtTopo is kdTopo: insane0 on borea's veth, routed, morgana's neighbour
// resolved, a raw genl socket in borea.
func rtTopo(t *testing.T) (*Topo, *kmConn) {
	t.Helper()
	return kdTopo(t)
}

// rtWay is one direction of the topology: transmit (borea to morgana out
// of insane0) or receive (morgana to borea, taken over by insane0).
type rtWay struct {
	name          string
	rx            bool
	from, to      string // namespaces
	src, dst      string // addresses
	depNS, depDev string // where a departure is stamped (transmit: the lower)
	recvNS        string // the receiver's namespace
	capNS, capDev string // where the packets are seen as they leave insane0
	// where they are seen before insane0 acts on them (its tap on
	// transmit, the lower's on receive), and in which direction
	aboveNS, aboveDev string
	aboveOut          bool
}

func rtWays(tp *Topo) [2]rtWay {
	return [2]rtWay{
		{name: "transmit", from: tp.Borea, to: tp.Morgana, src: tp.BoreaIP, dst: tp.MorganaIP,
			depNS: tp.Borea, depDev: tp.BoreaDev, recvNS: tp.Morgana, capNS: tp.Morgana, capDev: tp.MorganaDev,
			aboveNS: tp.Borea, aboveDev: "insane0", aboveOut: true},
		{name: "receive", rx: true, from: tp.Morgana, to: tp.Borea, src: tp.MorganaIP, dst: tp.BoreaIP,
			recvNS: tp.Borea, capNS: tp.Borea, capDev: "insane0", aboveNS: tp.Borea, aboveDev: tp.BoreaDev},
	}
}

// set sets the way's policy on insane0, the other way's to pass (receive
// off for the transmit way).
func (w rtWay) set(c *kmConn, policy ...kmA) {
	c.t.Helper()
	if w.rx {
		if r := c.set("insane0", kmNest(uapi.DeviceAPolicy, kmMode(uapi.ModePass)), kmNest(uapi.DeviceARxPolicy, policy...)); r.errno != 0 {
			c.t.Fatalf("receive policy %s: %v: %s", kmCanon(policy, false), r.errno, r.msg)
		}
		return
	}
	if r := c.set("insane0", kmU32(uapi.DeviceAFlags, uapi.DeviceFRxOff), kmNest(uapi.DeviceAPolicy, policy...)); r.errno != 0 {
		c.t.Fatalf("policy %s: %v: %s", kmCanon(policy, false), r.errno, r.msg)
	}
}

// rtListen listens on w's receiver for a new run of datagrams tagged tag:
// the receiver, its port and the run.
func rtListen(t *testing.T, w rtWay, tag uint64) (*vmnet.Receiver, int, uint64) {
	t.Helper()
	udpRun++
	run := tag<<32 | udpRun
	r, err := vmnet.Listen(w.recvNS, net.JoinHostPort(w.dst, "0"), run)
	if err != nil {
		t.Fatal(err)
	}
	return r, r.Addr().Port, run
}

// rtBegin waits until insane0 has held nothing for idle, sets policy along
// w, resets the counters and listens as rtListen does.
func rtBegin(t *testing.T, c *kmConn, w rtWay, idle time.Duration, tag uint64, policy ...kmA) (*vmnet.Receiver, int, uint64) {
	t.Helper()
	rtWaitIdle(t, c, "insane0", idle)
	w.set(c, policy...)
	c.set("insane0", kmU32(uapi.DeviceAFlags, uapi.DeviceFResetStats))
	return rtListen(t, w, tag)
}

// rtEarliest returns each packet's earliest departure at a serialization
// time of ser(i) each, from the clocks read before each send: the
// header's F, started at most at the first send, s = max(now, F) with now
// after the clock read before the send.
func rtEarliest(before []time.Time, ser func(i int) time.Duration) []time.Time {
	lb := make([]time.Time, len(before))
	var f time.Time
	for i, b := range before {
		s := b
		if f.After(s) {
			s = f
		}
		f = s.Add(ser(i))
		lb[i] = f
	}
	return lb
}

// rtDepartures returns the departure of each datagram of run (by sequence
// number) among captured packets; every one must be there once, and in
// order.
func rtDepartures(t *testing.T, what string, pkts []rtPkt, run uint64, n int) []time.Time {
	t.Helper()
	at := make([]time.Time, n)
	next := uint64(0)
	for _, p := range pkts {
		r, seq, ok := rtSeq(p.data)
		if !ok || r != run {
			continue
		}
		if seq != next {
			t.Fatalf("%s: datagram %d departed where %d was due", what, seq, next)
		}
		at[seq] = p.at
		next++
	}
	if next != uint64(n) {
		t.Fatalf("%s: %d of %d datagrams departed", what, next, n)
	}
	return at
}

// rtCheckEarliest fails if a departure comes before its earliest time
// (exact: the clocks bracket the kernel's), and returns the lateness of
// each, past its earliest.
func rtCheckEarliest(t *testing.T, what string, dep, lb []time.Time) []time.Duration {
	t.Helper()
	late := make([]time.Duration, len(dep))
	early := 0
	for i := range dep {
		late[i] = dep[i].Sub(lb[i])
		if late[i] < 0 {
			if early < 5 {
				t.Errorf("%s: datagram %d departed %v before its earliest departure at the rate", what, i, -late[i])
			}
			early++
		}
	}
	if early > 0 {
		t.Errorf("%s: %d of %d datagrams departed early", what, early, len(dep))
	}
	return late
}

// rtMedian returns the median of ds.
func rtMedian(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func rtMax(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		if d > m {
			m = d
		}
	}
	return m
}

// rtBurst sends n datagrams of size bytes back to back along way w through
// a rate of bps (overhead bytes each) and checks their departures: none
// before its earliest time, the median lateness below 25 ms and none a
// second late, and the rate achieved over the burst (from the first send
// to the last departure) at most bps and at least 0.7 of it. Transmit
// departures are stamped on the lower; receive ones are the receiver's
// clock read after each datagram, later than the departure.
func rtBurst(t *testing.T, tp *Topo, w rtWay, n, size, overhead int, bps uint64) {
	t.Helper()
	r, port, run := rtListen(t, w, 0x25a7e)
	var capt *rtCap
	if !w.rx {
		capt = rtCapture(t, w.depNS, w.depDev, rtUDPTo(port, false))
	}
	s := rtSend(t, w.from, w.dst, port, n, size, run, 1, 0)
	r.Wait(n, 500*time.Millisecond, 20*time.Second)
	got := r.Close()
	var dep []time.Time
	what := fmt.Sprintf("%s, %d datagrams of %d bytes at %s overhead %d", w.name, n, size, genl.FormatRate(bps), overhead)
	if w.rx {
		if len(got.Seqs) != n {
			t.Fatalf("%s: %d of %d arrived", what, len(got.Seqs), n)
		}
		for i := 0; i < n; i++ {
			dep = append(dep, got.At[uint64(i)])
		}
	} else {
		time.Sleep(50 * time.Millisecond)
		dep = rtDepartures(t, what, rtStopCapture(t, capt), run, n)
		if len(got.Seqs) != n {
			t.Errorf("%s: %d of %d arrived", what, len(got.Seqs), n)
		}
	}
	ser := time.Duration(rtSerialNs(20+8+size, overhead, bps))
	lb := rtEarliest(s.before, func(int) time.Duration { return ser })
	late := rtCheckEarliest(t, what, dep, lb)
	span := dep[n-1].Sub(s.before[0])
	achieved := float64(n*(20+8+size+overhead)*8) / span.Seconds()
	sendSpan := s.after[n-1].Sub(s.before[0])
	t.Logf("%s: serialization %v, sent in %v, last departure %v after the first send (%.3f Mbit/s); lateness median %v max %v",
		what, ser, sendSpan, span, achieved/1e6, rtMedian(late), rtMax(late))
	if achieved > float64(bps) {
		t.Errorf("%s: %.0f bit/s achieved, above the rate", what, achieved)
	}
	if m := rtMedian(late); m >= 25*time.Millisecond {
		t.Errorf("%s: median lateness %v past the earliest departures", what, m)
	}
	if m := rtMax(late); m >= time.Second {
		t.Errorf("%s: a datagram left %v past its earliest departure", what, m)
	}
	// A sender slower than the rate leaves gaps: judge the rate only
	// when it kept up.
	if sendSpan < time.Duration(n)*ser/2 && achieved < 0.7*float64(bps) {
		t.Errorf("%s: %.0f bit/s achieved, below 0.7 of the rate", what, achieved)
	}
}

// Departures at the rate, both ways, and with an overhead: none early.
func TestKernelRateSpacing(t *testing.T) {
	CheckKmsg(t)
	tp, c := rtTopo(t)
	ways := rtWays(tp)
	for _, w := range ways {
		w.set(c, rtPass(rtRate(4e6))...)
		rtBurst(t, tp, w, 100, 1000, 0, 4e6)
		rtWaitIdle(t, c, "insane0", 10*time.Millisecond)
		w.set(c, rtPass(rtRate(8e6), rtOverhead(38))...)
		rtBurst(t, tp, w, 150, 1000, 38, 8e6)
		rtWaitIdle(t, c, "insane0", 10*time.Millisecond)
	}
	st := c.get("insane0").d.Stats
	if st[uapi.StatsARelayedPackets] < 250 || st[uapi.StatsARxRelayedPackets] < 250 ||
		st[uapi.StatsADropQueueFull]+st[uapi.StatsARxDropQueueFull] != 0 {
		t.Errorf("counters %v", st)
	}
	rtTwoCPUs(t, tp, c)
	Figure(t, "rate departures", 620)
}

// rtTwoCPUs: one clock for every CPU. Two senders pinned to CPUs 0 and 1
// send 60 datagrams each at once through rate 4mbit: the i-th departure
// of either (in time order) comes no earlier than the first send plus
// i + 1 serializations, where a clock per CPU would let both flows leave
// at the rate each.
func rtTwoCPUs(t *testing.T, tp *Topo, c *kmConn) {
	t.Helper()
	if runtime.NumCPU() < 2 {
		t.Log("one CPU: no test of the shared clock")
		return
	}
	const n, size, bps = 60, 1000, 4e6
	c.set("insane0", kmU32(uapi.DeviceAFlags, uapi.DeviceFRxOff), kmNest(uapi.DeviceAPolicy, rtPass(rtRate(bps))...))
	udpRun++
	run := uint64(0x2c9)<<32 | udpRun
	r, err := vmnet.Listen(tp.Morgana, net.JoinHostPort(tp.MorganaIP, "0"), run)
	if err != nil {
		t.Fatal(err)
	}
	port := r.Addr().Port
	capt := rtCapture(t, tp.Borea, tp.BoreaDev, rtUDPTo(port, false))
	var sent [2]rtSent
	var wg sync.WaitGroup
	for cpu := 0; cpu < 2; cpu++ {
		wg.Add(1)
		go func(cpu int) {
			defer wg.Done()
			sent[cpu] = rtSend(t, tp.Borea, tp.MorganaIP, port, n, size, run, cpu, 0)
		}(cpu)
	}
	wg.Wait()
	r.Wait(2*n, 300*time.Millisecond, 10*time.Second)
	r.Close()
	rtWaitIdle(t, c, "insane0", 20*time.Millisecond)
	pkts := rtStopCapture(t, capt)
	if len(pkts) != 2*n {
		t.Fatalf("two CPUs: %d departures, want %d", len(pkts), 2*n)
	}
	first := sent[0].before[0]
	if sent[1].before[0].Before(first) {
		first = sent[1].before[0]
	}
	var dep []time.Time
	for _, p := range pkts {
		dep = append(dep, p.at)
	}
	sort.Slice(dep, func(i, j int) bool { return dep[i].Before(dep[j]) })
	ser := time.Duration(rtSerialNs(20+8+size, 0, bps))
	early := 0
	for i, d := range dep {
		if d.Before(first.Add(time.Duration(i+1) * ser)) {
			early++
		}
	}
	span := dep[len(dep)-1].Sub(first)
	t.Logf("two CPUs: %d datagrams, the last departed %v after the first send (%.3f Mbit/s at 4mbit)", 2*n, span,
		float64(2*n*(20+8+size)*8)/span.Seconds()/1e6)
	if early > 0 {
		t.Errorf("two CPUs: %d of %d departures came before the shared clock allows", early, 2*n)
	}
}

// A TCP transfer through rate 10mbit completes, below the rate (every
// byte and its headers pass at the rate: exact) and above a floor; both
// ways.
func TestKernelRateTCP(t *testing.T) {
	CheckKmsg(t)
	tp, c := rtTopo(t)
	const size, r = 1 << 20, 10e6
	for _, w := range rtWays(tp) {
		w.set(c, rtPass(rtRate(r))...)
		took, err := TCPTransfer(t, w.from, w.to, w.dst, size, 60*time.Second)
		if err != nil {
			t.Fatalf("%s: TCP through rate 10mbit: %v; counters %v", w.name, err, c.get("insane0").d.Stats)
		}
		goodput := float64(size*8) / took.Seconds()
		t.Logf("%s: 1 MiB in %v: %.2f Mbit/s through rate 10mbit", w.name, took, goodput/1e6)
		if goodput >= r || goodput < 0.3*r {
			t.Errorf("%s: goodput %.2f Mbit/s through rate 10mbit, want below 10 and at least 3", w.name, goodput/1e6)
		}
	}
	st := c.get("insane0").d.Stats
	if st[uapi.StatsADropQueueFull]+st[uapi.StatsARxDropQueueFull] != 0 {
		t.Errorf("queue-full drops: %v", st)
	}
}

// GSO packets are cut into wire packets and charged each: TCP from borea
// (TSO on insane0, the default: its tap sees packets larger than the MTU)
// through mode pass rate 100mbit leaves the lower as wire-size packets,
// and relayed counts them, packets and bytes; the same on receive, with
// morgana's TSO packets passed whole by the veth.
func TestKernelRateGSO(t *testing.T) {
	CheckKmsg(t)
	tp, c := rtTopo(t)
	if out := RunIn(t, tp.Borea, "ethtool", "-k", "insane0"); !strings.Contains(out, "tcp-segmentation-offload: on") {
		t.Fatalf("insane0 has no TSO:\n%s", out)
	}
	tcp := func(p rtPkt) bool { return len(p.data) >= 20 && p.data[0]>>4 == 4 && p.data[9] == unix.IPPROTO_TCP }
	dir := func(out bool) func(rtPkt) bool {
		return func(p rtPkt) bool { return tcp(p) && (p.typ == unix.PACKET_OUTGOING) == out }
	}
	const size = 2 << 20
	for _, w := range rtWays(tp) {
		w.set(c, rtPass(rtRate(100e6))...)
		before := c.get("insane0").d.Stats
		// Above: what enters insane0 (transmit: its tap, outgoing;
		// receive: the lower's tap, incoming). Below: what leaves it
		// (the lower's tap, outgoing; insane0's tap, incoming).
		var above, below *rtCap
		if w.rx {
			above = rtCapture(t, tp.Borea, tp.BoreaDev, dir(false))
			below = rtCapture(t, tp.Borea, "insane0", dir(false))
		} else {
			above = rtCapture(t, tp.Borea, "insane0", dir(true))
			below = rtCapture(t, tp.Borea, tp.BoreaDev, dir(true))
		}
		took, err := TCPTransfer(t, w.from, w.to, w.dst, size, 60*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		rtWaitIdle(t, c, "insane0", 50*time.Millisecond)
		after := c.get("insane0").d.Stats
		in, out := rtStopCapture(t, above), rtStopCapture(t, below)
		var big, maxIn, maxOut, bytes int
		for _, p := range in {
			if len(p.data) > 1500 {
				big++
			}
			maxIn = max(maxIn, len(p.data))
		}
		for _, p := range out {
			maxOut = max(maxOut, len(p.data))
			bytes += len(p.data)
		}
		rp, rb := uapi.StatsARelayedPackets, uapi.StatsARelayedBytes
		if w.rx {
			rp, rb = uapi.StatsARxRelayedPackets, uapi.StatsARxRelayedBytes
		}
		t.Logf("%s: 2 MiB in %v; %d packets entered insane0 (%d above 1500 bytes, largest %d), %d left (largest %d); relayed %d packets %d bytes",
			w.name, took, len(in), big, maxIn, len(out), maxOut, after[rp]-before[rp], after[rb]-before[rb])
		if big == 0 {
			t.Errorf("%s: no GSO packet entered insane0: the test proves nothing", w.name)
		}
		if maxOut > 1500 {
			t.Errorf("%s: a packet of %d bytes left insane0 under a rate", w.name, maxOut)
		}
		if after[rp]-before[rp] != uint64(len(out)) || after[rb]-before[rb] != uint64(bytes) {
			t.Errorf("%s: relayed %d packets %d bytes; %d wire packets of %d bytes left", w.name,
				after[rp]-before[rp], after[rb]-before[rb], len(out), bytes)
		}
	}
}

// The buffer refuses what would wait longer than B before its first bit,
// under DROP_QUEUE_FULL: a burst of 1,000 datagrams of 128 bytes into rate
// 1mbit buffer 20ms (1.024 ms each) from one CPU, both ways. Exact: every
// datagram is counted; none leaves early; the clock F moves only for
// those taken, so that no more were taken than the time the holds took
// (from the first send to the last hold) plus B holds at the rate, and at
// least the B that an empty queue holds.
// The wait of each (departure less the clock read after its send) is
// logged, and bounded by B + t and 100 ms for timers that run late
// (without the buffer the last would wait a second). Then limit 10 without
// a buffer: at most 10 held on the sending CPU.
func TestKernelRateBuffer(t *testing.T) {
	CheckKmsg(t)
	tp, c := rtTopo(t)
	const n, size, bps, buf = 1000, 100, 1e6, 20 * time.Millisecond
	ser := time.Duration(rtSerialNs(20+8+size, 0, bps))
	for _, w := range rtWays(tp) {
		for _, limit := range []bool{false, true} {
			p := rtPass(rtRate(bps), rtBuffer(buf))
			what := w.name + " rate 1mbit buffer 20ms"
			if limit {
				p = rtPass(rtRate(bps), kdLimit(10))
				what = w.name + " rate 1mbit limit 10"
			}
			r, port, run := rtBegin(t, c, w, 10*time.Millisecond, 0xb0f, p...)
			var capt *rtCap
			if !w.rx {
				capt = rtCapture(t, w.depNS, w.depDev, rtUDPTo(port, false))
			}
			s := rtSend(t, w.from, w.dst, port, n, size, run, 1, 0)
			// The last hold: within the last send on transmit; on
			// receive, in a softirq that may run after the send
			// returned, but before a read of the counters that
			// accounts for every datagram.
			end := s.after[n-1]
			if w.rx {
				WaitFor(t, 10*time.Second, "every datagram taken over", func() bool {
					st := c.get("insane0").d.Stats
					relayed, drops := rtDir(st, true)
					end = time.Now()
					return relayed+drops+st[uapi.StatsARxHeldPackets] == n
				})
			}
			st := rtWaitIdle(t, c, "insane0", 20*time.Millisecond)
			r.Wait(n, 300*time.Millisecond, 10*time.Second)
			got := r.Close()
			relayed, drops := rtDir(st, w.rx)
			full := st[uapi.StatsADropQueueFull]
			if w.rx {
				full = st[uapi.StatsARxDropQueueFull]
			}
			if relayed+drops != n || full != drops || uint64(len(got.Seqs)) != relayed || got.Duplicates != 0 {
				t.Errorf("%s: %d sent, %d arrived; relayed %d, queue-full %d, drops %d", what, n, len(got.Seqs), relayed, full, drops)
			}
			sendSpan := end.Sub(s.before[0])
			most := int((sendSpan+buf)/ser) + 1
			least := int(buf / ser)
			if limit {
				most, least = int(sendSpan/ser)+10, 10
			}
			if int(relayed) > most || int(relayed) < least {
				t.Errorf("%s: %d relayed; held in %v, at most %d and at least %d fit", what, relayed, sendSpan, most, least)
			}
			// Departures of those taken: never early, each its own
			// serialization behind the previous one taken.
			var dep, lb []time.Time
			var waits []time.Duration
			var fclk time.Time
			for _, seq := range got.Seqs {
				start := s.before[seq]
				if fclk.After(start) {
					start = fclk
				}
				fclk = start.Add(ser)
				lb = append(lb, fclk)
			}
			if !w.rx {
				pk := rtStopCapture(t, capt)
				if len(pk) != len(got.Seqs) {
					t.Fatalf("%s: %d departures seen, %d arrived", what, len(pk), len(got.Seqs))
				}
				for i, p := range pk {
					_, seq, ok := rtSeq(p.data)
					if !ok || seq != got.Seqs[i] {
						t.Fatalf("%s: departure %d is datagram %d (%v), want %d", what, i, seq, ok, got.Seqs[i])
					}
					dep = append(dep, p.at)
				}
			} else {
				for _, seq := range got.Seqs {
					dep = append(dep, got.At[seq])
				}
			}
			rtCheckEarliest(t, what, dep, lb)
			for i, seq := range got.Seqs {
				waits = append(waits, dep[i].Sub(s.after[seq]))
			}
			t.Logf("%s: %d held in %v, %d relayed (%d to %d fit), %d refused; wait median %v max %v (buffer %v, serialization %v)",
				what, n, sendSpan, relayed, least, most, full, rtMedian(waits), rtMax(waits), buf, ser)
			if !limit && rtMax(waits) > buf+ser+100*time.Millisecond {
				t.Errorf("%s: a datagram waited %v, past the buffer %v and its serialization %v by more than 100 ms", what, rtMax(waits), buf, ser)
			}
		}
	}
}

// rtSeqPlan is the model's verdict on one handled datagram: relayed by the
// decision (transmit), duplicated, corrupted (and the bit), and, on
// receive, the decisions of the original and of its copy.
type rtSeqPlan struct {
	relayed, dup, cor bool
	y                 uint32
	pass, copyPass    bool // receive: the decisions
}

// rtPlan predicts n datagrams of way w through mode percent pct (100:
// pass) with dup and corrupt under seed.
func rtPlan(w rtWay, n int, seed uint64, pct float64, dup, corrupt uint32) []rtSeqPlan {
	plan := make([]rtSeqPlan, n)
	units := kmPct(pct)
	var kd, ke uint64
	decide := func() bool {
		if pct == 100 {
			return true
		}
		r := genl.Relays(seed, kd, units)
		kd++
		return r
	}
	for j := range plan {
		p := &plan[j]
		if !w.rx {
			// The decision first; the relayed meet the extras.
			p.relayed = decide()
			if p.relayed {
				p.dup, p.cor, p.y = rtExtra(seed, ke, dup, corrupt)
				ke++
			}
			continue
		}
		// Receive: the extras when taken over, then the decision of
		// the original, then of its copy.
		p.relayed = true
		p.dup, p.cor, p.y = rtExtra(seed, ke, dup, corrupt)
		ke++
		p.pass = decide()
		if p.dup {
			p.copyPass = decide()
		}
	}
	return plan
}

// rtSeen is what the capture below insane0 showed of one datagram: its
// original (intact or with one bit flipped), and whether a copy followed.
type rtSeen struct {
	present bool
	orig    []byte
	copies  int
	cor     bool
	off     int // the flipped bit's byte in the packet, and its mask
	mask    byte
}

// rtClassify walks the packets captured below insane0 on way w, in order:
// each is the original of the next datagram of seqs (the sequence numbers
// of run expected there, in order), intact or with one bit flipped (its
// UDP checksum complete, the IPv4 header's written first), or an intact
// copy of the datagram before. The datagrams go from sport to dport with
// size bytes of payload; with header a flip may hit the IPv4 header too.
// A datagram missing (the next few match a later one) is reported, not
// present in what it returns; any other packet fails the test. It returns
// what it saw of each datagram by sequence number, of n, and the missing.
func rtClassify(t *testing.T, w rtWay, pkts []rtPkt, run uint64, seqs []uint64, n, size, sport, dport int, header bool, hdrs map[uint64][]byte) ([]rtSeen, []uint64) {
	t.Helper()
	src, dst := net.ParseIP(w.src).To4(), net.ParseIP(w.dst).To4()
	seen := make([]rtSeen, n)
	exp := func(k uint64) ([]byte, uint16) { return rtUDP(src, dst, sport, dport, rtPayload(run, k, size)) }
	// match says whether p is datagram k's original, and where its
	// bit is flipped (off -1: intact): in its IPv4 header as seen
	// above insane0, or in its UDP datagram with the checksum complete.
	match := func(p []byte, k uint64) (int, byte, bool) {
		u, part := exp(k)
		h := hdrs[k]
		if len(h) != 20 || len(p) != 20+len(u) {
			return 0, 0, false
		}
		if string(p[:20]) == string(h) && rtIntact(p, src, dst, u, part) {
			return -1, 0, true
		}
		return rtOneBit(p, h, u, header)
	}
	var missing []uint64
	i := -1
	for j, p := range pkts {
		if i >= 0 {
			k := seqs[i]
			u, part := exp(k)
			if seen[k].copies == 0 && string(p.data[:min(20, len(p.data))]) == string(hdrs[k]) && rtIntact(p.data, src, dst, u, part) {
				seen[k].copies++
				continue
			}
		}
		found := false
		for d := 1; d <= 8 && i+d < len(seqs); d++ {
			k := seqs[i+d]
			off, mask, ok := match(p.data, k)
			if !ok {
				continue
			}
			missing = append(missing, seqs[i+1:i+d]...)
			i += d
			seen[k].present, seen[k].orig = true, p.data
			if off >= 0 {
				seen[k].cor, seen[k].off, seen[k].mask = true, off, mask
			}
			found = true
			break
		}
		if !found {
			want := "after the last datagram's"
			if i+1 < len(seqs) {
				k := seqs[i+1]
				u, _ := exp(k)
				want = fmt.Sprintf("neither datagram %d (nor the 7 after it), one bit off it, nor a copy of the one before (its header above insane0 % x, its UDP datagram % x)",
					k, hdrs[k], u)
			}
			t.Fatalf("%s: packet %d of %d captured is %s: % x", w.name, j, len(pkts), want, p.data)
		}
	}
	missing = append(missing, seqs[i+1:]...)
	return seen, missing
}

// rtOneBit finds the one bit in which p differs from the packet of IPv4
// header h (as it was above insane0) and UDP datagram u (its checksum
// complete): past the header, or, with header, in it. It returns the
// bit's byte in p and its mask.
func rtOneBit(p, h, u []byte, header bool) (int, byte, bool) {
	want := append(append([]byte(nil), h...), u...)
	if len(p) != len(want) {
		return 0, 0, false
	}
	diff := -1
	for i := range p {
		if x := p[i] ^ want[i]; x != 0 {
			if diff >= 0 || bits.OnesCount8(x) != 1 {
				return 0, 0, false
			}
			diff = i
		}
	}
	if diff < 0 || (diff < 20 && !header) {
		return 0, 0, false
	}
	return diff, p[diff] ^ want[diff], true
}

// rtReceiverCounters are the receiver's counters that a corrupted packet
// moves.
var rtReceiverCounters = []string{"Udp.InErrors", "Udp.InCsumErrors", "Udp.InDatagrams", "Ip.InHdrErrors", "IpExt.InCsumErrors", "IpExt.InTruncatedPkts"}

// rtExpectReceiver returns the receiver's counters that the model's
// verdicts on the corrupted packets it was passed give, and the datagrams
// it delivers to the socket: every intact one passed up once per copy.
func rtExpectReceiver(seen []rtSeen, passed func(k int, copy bool) bool) (map[string]uint64, map[uint64]int) {
	want := map[string]uint64{}
	deliver := map[uint64]int{}
	for k, s := range seen {
		if !s.present {
			continue
		}
		if passed(k, false) {
			v := rtVerdict{delivered: true}
			if s.cor {
				v = rtReceive(s.orig)
			}
			for name, b := range map[string]bool{"Udp.InErrors": v.udpErr, "Udp.InCsumErrors": v.udpCsumErr,
				"Ip.InHdrErrors": v.ipHdrErr, "IpExt.InCsumErrors": v.ipCsumErr, "IpExt.InTruncatedPkts": v.ipTrunc} {
				if b {
					want[name]++
				}
			}
			if v.delivered {
				deliver[uint64(k)]++
			}
		}
		if s.copies > 0 && passed(k, true) {
			deliver[uint64(k)]++
		}
	}
	for _, c := range deliver {
		want["Udp.InDatagrams"] += uint64(c)
	}
	return want, deliver
}

// rtExtrasRun sends n datagrams of size bytes along way w (set with
// policy first) from one CPU and returns what the capture below insane0
// classified (seqs: the datagrams expected there, nil for all), the
// receiver's arrivals, the change of the receiver's counters, and
// insane0's counters.
func rtExtrasRun(t *testing.T, c *kmConn, w rtWay, policy []kmA, n, size int, header bool, seqs []uint64) ([]rtSeen, vmnet.Received, map[string]uint64, [uapi.StatsAMax + 1]uint64) {
	t.Helper()
	r, port, run := rtBegin(t, c, w, 0, 0xd0c, policy...)
	before := rtNetStats(t, w.recvNS)
	capt := rtCapture(t, w.capNS, w.capDev, rtIncoming)
	above := rtCapture(t, w.aboveNS, w.aboveDev, rtUDPTo(port, !w.aboveOut))
	s := rtSend(t, w.from, w.dst, port, n, size, run, 0, 0)
	st := rtWaitIdle(t, c, "insane0", 0)
	r.Wait(n, 500*time.Millisecond, 20*time.Second)
	got := r.Close()
	pkts := rtStopCapture(t, capt)
	// The header of each datagram above insane0, its checksum computed
	// here: a tap's clone shares the packet's data, which the packet
	// socket copies only when read, and insane0's relay writes IPv4's
	// checksum again in place (ip_send_check(): 0, then the sum), so that
	// the tap may read a checksum half written (see the notes: the
	// relay writes a header it may share with a clone).
	hdrs := map[uint64][]byte{}
	torn := 0
	for _, p := range rtStopCapture(t, above) {
		if rn, seq, ok := rtSeq(p.data); ok && rn == run && hdrs[seq] == nil {
			h := append([]byte(nil), p.data[:20]...)
			if rtSum(h, 0) != 0xffff {
				torn++
			}
			h[10], h[11] = 0, 0
			c := ^rtSum(h, 0)
			h[10], h[11] = byte(c>>8), byte(c)
			hdrs[seq] = h
		}
	}
	if torn > 0 {
		t.Logf("%s: %d of %d headers read by %s's tap had a wrong IPv4 checksum", w.name, torn, len(hdrs), w.aboveDev)
	}
	after := rtNetStats(t, w.recvNS)
	if seqs == nil {
		for k := 0; k < n; k++ {
			seqs = append(seqs, uint64(k))
		}
	}
	seen, missing := rtClassify(t, w, pkts, run, seqs, n, size, s.port, port, header, hdrs)
	if len(missing) > 0 {
		var what []string
		for _, k := range missing {
			what = append(what, strconv.FormatUint(k, 10))
		}
		t.Errorf("%s: %d datagrams never left insane0's side of the wire (counters %s): %s", w.name, len(missing),
			c.get("insane0").d.ttCounters(), strings.Join(what, " "))
	}
	return seen, got, rtStatsDelta(before, after, rtReceiverCounters...), st
}

// rtCheckReceiver compares the receiver's arrivals and counters with the
// model's verdicts on what was passed to it.
func rtCheckReceiver(t *testing.T, what string, seen []rtSeen, got vmnet.Received, delta map[string]uint64, passed func(k int, copy bool) bool) {
	t.Helper()
	want, deliver := rtExpectReceiver(seen, passed)
	var seqs []uint64
	dups := 0
	for k, c := range deliver {
		seqs = append(seqs, k)
		dups += c - 1
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	if !equalU64(got.Seqs, seqs) || got.Duplicates != dups {
		t.Errorf("%s: %d datagrams arrived (%d twice), the model of the receiver says %d (%d twice); first difference at %d",
			what, len(got.Seqs), got.Duplicates, len(seqs), dups, firstDiff(got.Seqs, seqs))
	}
	for _, name := range rtReceiverCounters {
		if delta[name] != want[name] {
			t.Errorf("%s: the receiver's %s grew by %d, the model of its checks says %d (all: %v, model %v)", what, name, delta[name], want[name], delta, want)
			break
		}
	}
	t.Logf("%s: the receiver counted %v", what, delta)
}

// Unseeded duplicate 10 corrupt 5: the shares within 4 sigma of the
// binomial, each copy and each flipped bit seen below insane0 (a copy
// right behind its original, a corrupted packet one bit off it), counted
// as the counters say, and the receiver's stack counting each corrupted
// packet as its checks would (UDP InCsumErrors, InErrors); both ways.
func TestKernelDupCorruptShares(t *testing.T) {
	CheckKmsg(t)
	tp, c := rtTopo(t)
	const n, size = 4000, 64
	for _, w := range rtWays(tp) {
		seen, got, delta, st := rtExtrasRun(t, c, w, rtPass(rtDup(10), rtCorrupt(5)), n, size, false, nil)
		var dups, cors uint64
		for _, s := range seen {
			dups += uint64(s.copies)
			if s.cor {
				cors++
			}
		}
		dupC, corC := st[uapi.StatsADuplicated], st[uapi.StatsACorrupted]
		if w.rx {
			dupC, corC = st[uapi.StatsARxDuplicated], st[uapi.StatsARxCorrupted]
		}
		relayed, drops := rtDir(st, w.rx)
		if dupC != dups || corC != cors || relayed != n+dups || drops != 0 {
			t.Errorf("%s: seen %d copies and %d corrupted; counters duplicated %d corrupted %d relayed %d drops %d",
				w.name, dups, cors, dupC, corC, relayed, drops)
		}
		kWithin(t, w.name+": duplicated at 10 %", int(dups), n, 0.10, 4)
		kWithin(t, w.name+": corrupted at 5 %", int(cors), n, 0.05, 4)
		rtCheckReceiver(t, w.name, seen, got, delta, func(int, bool) bool { return true })
		if delta["Udp.InCsumErrors"] == 0 || delta["Udp.InErrors"] < delta["Udp.InCsumErrors"] {
			t.Errorf("%s: the receiver counted no checksum error: %v", w.name, delta)
		}
	}
	Figure(t, "duplicate/corrupt datagrams", 2*n)
}

// Seeded: which datagrams are duplicated, which corrupted and which bit,
// equal the header's draws, under mode percent 80 (transmit: the extras
// draw only for what the decision relays; receive: they draw when taken
// over, and the copy is decided after its original); the counters and the
// receiver's stack agree; setting the policy again replays it.
func TestKernelDupCorruptSeeded(t *testing.T) {
	CheckKmsg(t)
	tp, c := rtTopo(t)
	const n, size, seed = 1000, 200, 0x25d0c
	dup, cor := kmPct(30), kmPct(20)
	policy := []kmA{kmMode(uapi.ModePercent), kmPercent(80), kmU32(uapi.PolicyADuplicate, dup), kmU32(uapi.PolicyACorrupt, cor), kmSeed(seed)}
	for _, w := range rtWays(tp) {
		plan := rtPlan(w, n, seed, 80, dup, cor)
		// Below insane0: transmit, what the decision relayed; receive
		// (insane0's tap), everything taken over.
		var seqs []uint64
		var nDup, nCor, nPass uint64
		for k, p := range plan {
			if !p.relayed {
				continue
			}
			seqs = append(seqs, uint64(k))
			if p.dup {
				nDup++
			}
			if p.cor {
				nCor++
			}
			if p.pass {
				nPass++
			}
			if p.copyPass {
				nPass++
			}
		}
		wantRelayed := uint64(len(seqs)) + nDup
		if w.rx {
			wantRelayed = nPass
		}
		for run := 0; run < 2; run++ {
			// Set anew each run: the draws start over.
			what := fmt.Sprintf("%s run %d", w.name, run)
			seen, got, delta, st := rtExtrasRun(t, c, w, policy, n, size, false, seqs)
			bad := 0
			for _, k := range seqs {
				p, s := plan[k], seen[k]
				wantOff, wantMask := -1, byte(0)
				if p.cor {
					o, m := rtBit(p.y, 8+size)
					wantOff, wantMask = 20+o, m
				}
				gotOff, gotMask := -1, byte(0)
				if s.cor {
					gotOff, gotMask = s.off, s.mask
				}
				if (s.copies == 1) != p.dup || gotOff != wantOff || gotMask != wantMask {
					if bad++; bad <= 5 {
						t.Errorf("%s: datagram %d: copy %v, bit at byte %d mask %#x; the model: copy %v, bit at byte %d mask %#x",
							what, k, s.copies == 1, gotOff, gotMask, p.dup, wantOff, wantMask)
					}
				}
			}
			if bad == 0 {
				t.Logf("%s: %d of %d datagrams below insane0, their %d copies and %d flipped bits where the model has them",
					what, len(seqs), n, nDup, nCor)
			}
			relayed, drops := rtDir(st, w.rx)
			dupC, corC := st[uapi.StatsADuplicated], st[uapi.StatsACorrupted]
			if w.rx {
				dupC, corC = st[uapi.StatsARxDuplicated], st[uapi.StatsARxCorrupted]
			}
			if dupC != nDup || corC != nCor || relayed != wantRelayed || relayed+drops != n+nDup {
				t.Errorf("%s: counters duplicated %d corrupted %d relayed %d drops %d; the model: %d, %d, %d, %d",
					what, dupC, corC, relayed, drops, nDup, nCor, wantRelayed, n+nDup-wantRelayed)
			}
			rtCheckReceiver(t, what, seen, got, delta, func(k int, copy bool) bool {
				switch {
				case !w.rx:
					return true
				case copy:
					return plan[k].copyPass
				}
				return plan[k].pass
			})
		}
	}
	Figure(t, "seeded duplicate/corrupt datagrams", 4*n)
}

// Duplication draws when a packet leaves the delay stage, in the order
// packets leave it: through delay 5ms jitter 4ms reorder duplicate 50
// seed S, 300 datagrams 200 us apart leave out of their order, and the
// i-th to leave (below insane0) is duplicated as the i-th draw says, its
// copy right behind it; both ways.
func TestKernelExtrasAtDeparture(t *testing.T) {
	CheckKmsg(t)
	tp, c := rtTopo(t)
	const n, seed = 300, 0xde9a
	dup := kmPct(50)
	for _, w := range rtWays(tp) {
		r, port, run := rtBegin(t, c, w, 0, 0xde9a, rtPass(kdDelay(5*time.Millisecond), kdJitter(4*time.Millisecond), kdReorder(), kmU32(uapi.PolicyADuplicate, dup), kmSeed(seed))...)
		capt := rtCapture(t, w.capNS, w.capDev, rtUDPTo(port, true))
		rtSend(t, w.from, w.dst, port, n, 64, run, 0, 200*time.Microsecond)
		st := rtWaitIdle(t, c, "insane0", 20*time.Millisecond)
		r.Wait(n, 300*time.Millisecond, 10*time.Second)
		got := r.Close()
		pkts := rtStopCapture(t, capt)
		var order []uint64 // the originals, as they left
		copied := map[uint64]bool{}
		for i, p := range pkts {
			rn, seq, ok := rtSeq(p.data)
			if !ok || rn != run {
				t.Fatalf("%s: packet %d below insane0 is not the test's: % x", w.name, i, p.data)
			}
			if len(order) > 0 && order[len(order)-1] == seq && !copied[seq] {
				copied[seq] = true
				continue
			}
			order = append(order, seq)
		}
		if len(order) != n {
			t.Fatalf("%s: %d datagrams below insane0 (%d packets), want %d", w.name, len(order), len(pkts), n)
		}
		out, bad, dups := 0, 0, 0
		for i, seq := range order {
			if seq != uint64(i) {
				out++
			}
			want, _, _ := rtExtra(seed, uint64(i), dup, 0)
			if want {
				dups++
			}
			if copied[seq] != want {
				if bad++; bad <= 5 {
					t.Errorf("%s: datagram %d, the %d-th to leave: copied %v, the draw of k = %d says %v", w.name, seq, i, copied[seq], i, want)
				}
			}
		}
		relayed, drops := rtDir(st, w.rx)
		d := st[uapi.StatsADuplicated]
		if w.rx {
			d = st[uapi.StatsARxDuplicated]
		}
		t.Logf("%s: %d of %d datagrams left out of their order; %d copies where the draws in departure order put them (%d mismatches)", w.name, out, n, dups, bad)
		if out < n/10 {
			t.Errorf("%s: only %d of %d datagrams left out of their order: the test proves little", w.name, out, n)
		}
		if d != uint64(dups) || relayed != uint64(n+dups) || drops != 0 || len(got.Seqs) != n || got.Duplicates != dups {
			t.Errorf("%s: duplicated %d relayed %d drops %d, %d arrived (%d twice); the draws: %d copies", w.name, d, relayed, drops, len(got.Seqs), got.Duplicates, dups)
		}
	}
}

// corrupt 100 header seed S: every packet has one bit flipped from its
// network header on (but for the destination address, which a flip never
// touches), where the draws say; with 52-byte packets 16 of the 48 bytes
// of the span are the IPv4 header's, whose checksum the receiver finds
// wrong (Ip InHdrErrors, IpExt InCsumErrors, or InHdrErrors alone for a
// version or a short ihl), the others UDP's (InCsumErrors, InErrors).
// Every datagram reaches the receiver's side of the wire. Both ways.
func TestKernelCorruptHeader(t *testing.T) {
	CheckKmsg(t)
	tp, c := rtTopo(t)
	const n, size, seed = 300, vmnet.MinSize, 0x4ead
	for _, w := range rtWays(tp) {
		seen, got, delta, st := rtExtrasRun(t, c, w, rtPass(kmU32(uapi.PolicyACorrupt, uapi.PercentMax), rtCorruptHeader(), kmSeed(seed)), n, size, true, nil)
		inHeader, bad := 0, 0
		for k, s := range seen {
			_, corrupted, y := rtExtra(seed, uint64(k), 0, uapi.PercentMax)
			// The span is the packet but for the destination address.
			o, m := rtBit(y, 20+8+size-4)
			if o >= 16 {
				o += 4
			}
			if !s.present {
				t.Logf("%s: datagram %d, its bit %#x of byte %d flipped, was lost", w.name, k, m, o)
				continue
			}
			if !corrupted || !s.cor || s.copies != 0 || s.off != o || s.mask != m {
				if bad++; bad <= 5 {
					t.Errorf("%s: datagram %d: corrupted %v at %d mask %#x, the model: at %d mask %#x", w.name, k, s.cor, s.off, s.mask, o, m)
				}
			}
			if o < 20 {
				inHeader++
			}
		}
		relayed, drops := rtDir(st, w.rx)
		corC := st[uapi.StatsACorrupted]
		if w.rx {
			corC = st[uapi.StatsARxCorrupted]
		}
		if corC != n || relayed != n || drops != 0 {
			t.Errorf("%s: corrupted %d relayed %d drops %d, want %d, %d, 0", w.name, corC, relayed, drops, n, n)
		}
		rtCheckReceiver(t, w.name, seen, got, delta, func(int, bool) bool { return true })
		t.Logf("%s: %d of %d flips in the IPv4 header", w.name, inHeader, n)
		if delta["IpExt.InCsumErrors"] == 0 || delta["Ip.InHdrErrors"] < delta["IpExt.InCsumErrors"] {
			t.Errorf("%s: no IPv4 header checksum error counted: %v", w.name, delta)
		}
	}
}

// A schedule's steps change the rate at their edges: rate 2mbit for 300
// ms, then rate 8mbit (held: once), and a flow of 1028-byte packets every
// 2 ms (4 Mbit/s, between the two). Packets sent surely inside each step
// (the epoch bracketed by the clocks around the set) are charged that
// step's serialization: none departs before its earliest time, and the
// departures of each step's backlog are spaced by that step's
// serialization at the median.
func TestKernelRateSchedule(t *testing.T) {
	CheckKmsg(t)
	tp, c := rtTopo(t)
	const n, size, edge = 400, 1000, 300 * time.Millisecond
	t0, t1 := time.Duration(rtSerialNs(1028, 0, 2e6)), time.Duration(rtSerialNs(1028, 0, 8e6))
	udpRun++
	run := uint64(0x5c4ed)<<32 | udpRun
	r, err := vmnet.Listen(tp.Morgana, net.JoinHostPort(tp.MorganaIP, "0"), run)
	if err != nil {
		t.Fatal(err)
	}
	port := r.Addr().Port
	capt := rtCapture(t, tp.Borea, tp.BoreaDev, rtUDPTo(port, false))
	setBefore := time.Now()
	c.setTx("insane0", kmMode(uapi.ModeSchedule), kmSteps(
		kmStep(kmMode(uapi.ModePass), rtRate(2e6), kmDur(edge)),
		kmStep(kmMode(uapi.ModePass), rtRate(8e6), kmDur(time.Hour))), kmOnce())
	setAfter := time.Now()
	s := rtSend(t, tp.Borea, tp.MorganaIP, port, n, size, run, 1, 2*time.Millisecond)
	rtWaitIdle(t, c, "insane0", 20*time.Millisecond)
	r.Wait(n, 300*time.Millisecond, 10*time.Second)
	got := r.Close()
	if len(got.Seqs) != n {
		t.Errorf("%d of %d arrived", len(got.Seqs), n)
	}
	dep := rtDepartures(t, "schedule", rtStopCapture(t, capt), run, n)
	step := make([]int, n) // 0, 1, or -1 where not sure
	for i := range step {
		switch {
		case s.after[i].Sub(setBefore) < edge:
			step[i] = 0
		case s.before[i].Sub(setAfter) >= edge:
			step[i] = 1
		default:
			step[i] = -1
		}
	}
	lb := rtEarliest(s.before, func(i int) time.Duration {
		if step[i] == 0 {
			return t0
		}
		return t1
	})
	late := rtCheckEarliest(t, "schedule", dep, lb)
	// The gaps between departures of consecutive packets of one step
	// that both waited behind others (their earliest departure past the
	// send by more than 2 ms): the serialization of their step.
	var gaps [2][]time.Duration
	for i := 1; i < n; i++ {
		if step[i] >= 0 && step[i] == step[i-1] && lb[i].Sub(s.after[i]) > 2*time.Millisecond && lb[i-1].Sub(s.after[i-1]) > 2*time.Millisecond {
			gaps[step[i]] = append(gaps[step[i]], dep[i].Sub(dep[i-1]))
		}
	}
	if len(gaps[0]) < 50 || len(gaps[1]) < 50 {
		t.Fatalf("too few gaps inside the steps: %d and %d", len(gaps[0]), len(gaps[1]))
	}
	m0, m1 := rtMedian(gaps[0]), rtMedian(gaps[1])
	t.Logf("median gaps %v (%d) at 2mbit, %v (%d) at 8mbit, serialization %v and %v; lateness median %v max %v",
		m0, len(gaps[0]), m1, len(gaps[1]), t0, t1, rtMedian(late), rtMax(late))
	if m0 < t0*3/4 || m0 > t0*5/4 || m1 < t1/2 || m1 > t1*3/2 {
		t.Errorf("median gaps %v at 2mbit (serialization %v), %v at 8mbit (%v)", m0, t0, m1, t1)
	}
	if m := rtMedian(late); m >= 25*time.Millisecond {
		t.Errorf("median lateness %v", m)
	}
}

// Packets queued at 100kbit both ways: the device going down flushes them
// all (DROP_FLUSHED, and every datagram accounted), and starts the clock
// over (a datagram sent after it comes up leaves at once, not behind the
// flushed backlog); deleting the device, its namespace, or unloading the
// module with packets queued leaves nothing behind.
func TestKernelRateTeardown(t *testing.T) {
	CheckKmsg(t)
	const n = 2000
	queue := func(t *testing.T) (*Topo, *kmConn) {
		tp, c := rtTopo(t)
		c.setTx("insane0", rtPass(rtRate(100e3))...)
		c.setRx("insane0", rtPass(rtRate(100e3))...)
		c.set("insane0", kmU32(uapi.DeviceAFlags, uapi.DeviceFResetStats))
		// Sinks, so that no ICMP error comes back through insane0.
		for _, fl := range [][2]string{{tp.Borea, tp.MorganaIP}, {tp.Morgana, tp.BoreaIP}} {
			sink := ttListen(t, map[string]string{tp.BoreaIP: tp.Borea, tp.MorganaIP: tp.Morgana}[fl[1]], fl[1]+":0", nil)
			sent, err := vmnet.Send(fl[0], net.JoinHostPort(fl[1], strconv.Itoa(sink.Port())), vmnet.SendOptions{Count: n})
			if err != nil || sent.Errors != 0 {
				t.Fatalf("sending from %s: %v, %d refused (%v)", fl[0], err, sent.Errors, sent.FirstError)
			}
		}
		st := c.get("insane0").d.Stats
		// 52-byte packets at 100kbit: 4.16 ms each, 8.3 s for 2000;
		// what departed while the others were sent (many, on a debug
		// kernel) was relayed.
		for _, w := range rtWays(tp) {
			relayed, drops := rtDir(st, w.rx)
			held := st[uapi.StatsAHeldPackets]
			if w.rx {
				held = st[uapi.StatsARxHeldPackets]
			}
			if held == 0 || relayed+drops+held != n || drops != 0 {
				t.Errorf("%s: %d sent, held %d, relayed %d, dropped %d", w.name, n, held, relayed, drops)
			}
		}
		return tp, c
	}
	t.Run("down", func(t *testing.T) {
		tp, c := queue(t)
		RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "down")
		st := c.get("insane0").d.Stats
		txr, txd := rtDir(st, false)
		rxr, rxd := rtDir(st, true)
		t.Logf("after down: transmit relayed %d flushed %d, receive relayed %d flushed %d",
			txr, st[uapi.StatsADropFlushed], rxr, st[uapi.StatsARxDropFlushed])
		if txr+txd != n || rxr+rxd != n || st[uapi.StatsAHeldPackets]+st[uapi.StatsARxHeldPackets] != 0 ||
			st[uapi.StatsADropFlushed] == 0 || st[uapi.StatsARxDropFlushed] == 0 ||
			txd != st[uapi.StatsADropFlushed] || rxd != st[uapi.StatsARxDropFlushed] {
			t.Errorf("after down: counters %v", st)
		}
		RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "up")
		RunIn(t, tp.Borea, "ip", "route", "replace", tp.MorganaIP+"/32", "dev", "insane0")
		// The clock starts over: one datagram each way arrives at
		// once (4.16 ms of serialization), where the flushed backlog
		// would have held it for 8 s.
		for _, w := range rtWays(tp) {
			start := time.Now()
			sent, got := UDPFlow(t, w.from, w.recvNS, w.dst, vmnet.SendOptions{Count: 1})
			if len(got.Seqs) != 1 {
				t.Fatalf("%s: the datagram after up did not arrive; counters %v", w.name, c.get("insane0").d.Stats)
			}
			if d := got.At[0].Sub(sent.At[0]); d > 2*time.Second {
				t.Errorf("%s: the datagram sent after up took %v: the clock did not start over", w.name, d)
			} else {
				t.Logf("%s: the datagram sent after up took %v (the run took %v)", w.name, d, time.Since(start))
			}
		}
	})
	for _, how := range []string{"delete", "netns", "unload"} {
		t.Run(how, func(t *testing.T) {
			tp, _ := queue(t)
			switch how {
			case "delete":
				RunIn(t, tp.Borea, "ip", "link", "del", "insane0")
			case "netns":
				Run(t, "ip", "netns", "del", tp.Borea)
				Run(t, "ip", "netns", "add", tp.Borea)
			}
			UnloadModule(t)
			if ModuleLoaded() {
				t.Fatalf("%s: the module stays loaded", how)
			}
			LoadModule(t)
		})
	}
}
