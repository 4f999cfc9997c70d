//go:build vmtest

package guest

// The delay stage (issue 24), spoken in raw generic netlink: every refusal
// with its message and the attribute it points at, the attributes read
// back as set; one-way delays both ways bracketed by the clocks read
// around each send and receive; order under jitter, with a flow pinned to
// a CPU and with a sender that migrates; seeded delays against a model of
// the header's formula written here; the limit and the gauges; flushes.

import (
	"math/bits"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

func kdDelay(d time.Duration) kmA  { return kmU64(uapi.PolicyADelayNs, uint64(d)) }
func kdJitter(d time.Duration) kmA { return kmU64(uapi.PolicyAJitterNs, uint64(d)) }
func kdDist(v uint32) kmA          { return kmU32(uapi.PolicyADistribution, v) }
func kdCorr(pct float64) kmA       { return kmU32(uapi.PolicyACorrelation, kmPct(pct)) }
func kdReorder() kmA               { return kmFlag(uapi.PolicyAReorder) }
func kdLimit(n uint32) kmA         { return kmU32(uapi.PolicyALimit, n) }

func TestKernelDelayRefused(t *testing.T) {
	CheckKmsg(t)
	const ns, dev = "kdelay", "kdi0"
	kmDevice(t, ns, dev)
	c := kmOpen(t, ns)
	pass := kmMode(uapi.ModePass)
	step := func(attrs ...kmA) kmA { return kmStep(append(attrs, kmDur(time.Second))...) }
	sched := func(steps ...kmA) []kmA { return []kmA{kmMode(uapi.ModeSchedule), kmSteps(steps...)} }
	const max = uapi.DelayMaxNs
	cases := []kmRefusal{
		{"jitter alone", kmJoin(pass, kmMark(kdJitter(time.Millisecond))), "INSANE_POLICY_A_JITTER_NS needs INSANE_POLICY_A_DELAY_NS"},
		{"correlation alone", kmJoin(pass, kmMark(kdCorr(5))), "INSANE_POLICY_A_CORRELATION needs INSANE_POLICY_A_DELAY_NS and INSANE_POLICY_A_JITTER_NS"},
		{"distribution alone", kmJoin(pass, kmMark(kdDist(1))), "INSANE_POLICY_A_DISTRIBUTION needs INSANE_POLICY_A_DELAY_NS and INSANE_POLICY_A_JITTER_NS"},
		{"reorder alone", kmJoin(pass, kmMark(kdReorder())), "INSANE_POLICY_A_REORDER needs INSANE_POLICY_A_DELAY_NS"},
		{"correlation without jitter", kmJoin(pass, kdDelay(time.Second), kmMark(kdCorr(5))), "INSANE_POLICY_A_CORRELATION needs INSANE_POLICY_A_JITTER_NS"},
		{"distribution without jitter", kmJoin(pass, kdDelay(time.Second), kmMark(kdDist(1))), "INSANE_POLICY_A_DISTRIBUTION needs INSANE_POLICY_A_JITTER_NS"},
		{"delay 0", kmJoin(pass, kmMark(kdDelay(0))), "INSANE_POLICY_A_DELAY_NS must be at least 1 ns"},
		{"delay above max", kmJoin(kmMode(uapi.ModePercent), kmPercent(5), kmMark(kmU64(uapi.PolicyADelayNs, max+1))), "INSANE_POLICY_A_DELAY_NS is above INSANE_DELAY_MAX_NS (60 s)"},
		{"unknown distribution", kmJoin(pass, kdDelay(time.Second), kdJitter(time.Millisecond), kmMark(kdDist(uapi.DistributionMax+1))), "INSANE_POLICY_A_DISTRIBUTION is not a known distribution (uniform 0, normal 1, pareto 2, paretonormal 3)"},
		{"correlation 100", kmJoin(pass, kdDelay(time.Second), kdJitter(time.Millisecond), kmMark(kdCorr(100))), "INSANE_POLICY_A_CORRELATION must be below 100 percent (100000000)"},
		{"uniform jitter above delay", kmJoin(pass, kdDelay(time.Millisecond), kmMark(kdJitter(time.Millisecond+1))), "INSANE_POLICY_A_JITTER_NS is above INSANE_POLICY_A_DELAY_NS: a uniform delay of D - J .. D + J cannot be negative"},
		{"uniform D + J above max", kmJoin(pass, kdDelay(40*time.Second), kmMark(kdJitter(30*time.Second))), "INSANE_POLICY_A_JITTER_NS is too large: the longest delay the distribution draws (INSANE_POLICY_A_DELAY_NS + INSANE_POLICY_A_JITTER_NS * z_max) is above INSANE_DELAY_MAX_NS (60 s)"},
		// normal's z_max is 261578 / 65536 (3.991, the last knot of
		// kernel/dist_tables.h): 15 s of jitter reach 1 s + 59.9 s.
		{"normal above max", kmJoin(pass, kdDelay(time.Second), kmMark(kdJitter(15*time.Second)), kdDist(1)), "INSANE_POLICY_A_JITTER_NS is too large: the longest delay the distribution draws (INSANE_POLICY_A_DELAY_NS + INSANE_POLICY_A_JITTER_NS * z_max) is above INSANE_DELAY_MAX_NS (60 s)"},
		{"huge jitter", kmJoin(pass, kdDelay(time.Second), kmMark(kmU64(uapi.PolicyAJitterNs, 1<<63)), kdDist(1)), "INSANE_POLICY_A_JITTER_NS is too large: the longest delay the distribution draws (INSANE_POLICY_A_DELAY_NS + INSANE_POLICY_A_JITTER_NS * z_max) is above INSANE_DELAY_MAX_NS (60 s)"},
		{"pareto below 0", kmJoin(pass, kdDelay(time.Millisecond), kmMark(kdJitter(2*time.Millisecond)), kdDist(2)), "INSANE_POLICY_A_JITTER_NS is too large for pareto: its shortest delay (INSANE_POLICY_A_DELAY_NS - 0.57735 * INSANE_POLICY_A_JITTER_NS) would be below 0"},
		{"delay beside the steps", kmJoin(sched(step(pass)), kmMark(kdDelay(time.Second))), "INSANE_POLICY_A_DELAY_NS is not valid beside INSANE_POLICY_A_STEPS: give each step its delay"},
		{"reorder beside the steps", kmJoin(sched(step(pass)), kmMark(kdReorder())), "INSANE_POLICY_A_REORDER is not valid beside INSANE_POLICY_A_STEPS: give each step its delay"},
		{"limit in a step", sched(step(pass, kmMark(kdLimit(5)))), "INSANE_POLICY_A_LIMIT is not valid in a step: it goes beside INSANE_POLICY_A_STEPS, for every step"},
		{"limit 0", kmJoin(pass, kmMark(kdLimit(0))), "INSANE_POLICY_A_LIMIT must be 1 .. INSANE_DELAY_LIMIT_MAX (10000000) packets"},
		{"limit above max", kmJoin(pass, kmMark(kdLimit(uapi.DelayLimitMax+1))), "INSANE_POLICY_A_LIMIT must be 1 .. INSANE_DELAY_LIMIT_MAX (10000000) packets"},
		{"jitter alone in a step", sched(step(pass), step(kmMode(uapi.ModeDrop), kmMark(kdJitter(time.Millisecond)))), "INSANE_POLICY_A_JITTER_NS needs INSANE_POLICY_A_DELAY_NS"},
		{"delay 0 in a step", sched(step(pass, kmMark(kdDelay(0)))), "INSANE_POLICY_A_DELAY_NS must be at least 1 ns"},
		{"pareto in a step", sched(step(kmMode(uapi.ModePercent), kmPercent(50), kdDelay(time.Millisecond), kmMark(kdJitter(2*time.Millisecond)), kdDist(2))), "INSANE_POLICY_A_JITTER_NS is too large for pareto: its shortest delay (INSANE_POLICY_A_DELAY_NS - 0.57735 * INSANE_POLICY_A_JITTER_NS) would be below 0"},
		{"seed without jitter", kmJoin(pass, kdDelay(time.Second), kmMark(kmSeed(5))), "INSANE_POLICY_A_SEED is only valid in percent, burst, gilbert and schedule modes, or beside INSANE_POLICY_A_JITTER_NS, _DUPLICATE or _CORRUPT"},
		{"delay twice", kmJoin(pass, kdDelay(time.Second), kmMark(kdDelay(time.Second))), "INSANE_POLICY_A_DELAY_NS is given more than once"},
		{"limit twice", kmJoin(pass, kdLimit(3), kmMark(kdLimit(3))), "INSANE_POLICY_A_LIMIT is given more than once"},
	}
	kmRefuseBothWays(t, c, dev, cases)

	// Accepted at the limits, and read back exactly as set.
	accepted := [][]kmA{
		kmJoin(pass, kdDelay(1)),
		kmJoin(pass, kmU64(uapi.PolicyADelayNs, max)),
		kmJoin(pass, kdDelay(30*time.Millisecond), kdJitter(20*time.Millisecond), kmSeed(5)),
		kmJoin(pass, kdDelay(time.Millisecond), kdJitter(time.Millisecond)),
		kmJoin(pass, kdDelay(time.Second), kdJitter(12*time.Second), kdDist(1), kdCorr(25), kdReorder(), kdLimit(uapi.DelayLimitMax)),
		kmJoin(pass, kdDelay(57735), kdJitter(100000), kdDist(2)),
		kmJoin(kmMode(uapi.ModePercent), kmPercent(99), kdDelay(20*time.Millisecond), kdJitter(5*time.Millisecond), kmSeed(7)),
		kmJoin(kmMode(uapi.ModeTime), kmU64(uapi.PolicyAOnNs, uint64(time.Second)), kmU64(uapi.PolicyAOffNs, uint64(time.Second)), kdDelay(time.Millisecond), kdJitter(time.Microsecond), kmSeed(1)),
		kmJoin(kmMode(uapi.ModeDrop), kdLimit(1)),
		kmJoin(sched(step(pass), step(pass, kdDelay(400*time.Millisecond), kdJitter(time.Millisecond), kdDist(3)), step(pass)), kdLimit(7)),
	}
	kmAcceptBothWays(t, c, dev, accepted)
}

// kdTopo is NewTopo with insane0 on borea's veth, set up and routed, the
// neighbour of morgana resolved, and a raw generic-netlink socket in borea.
func kdTopo(t *testing.T) (*Topo, *kmConn) {
	t.Helper()
	Sysctl(t, "", "net.core.rmem_max", "16777216")
	tp := NewTopo(t)
	tp.AddInsane(t, "insane0")
	RunIn(t, tp.Borea, "ping", "-c", "1", "-W", "2", tp.MorganaIP)
	return tp, kmOpen(t, tp.Borea)
}

// kdOneWay returns each received datagram's delay: its receive time less
// its send time, each read next to the syscall (the send before it, the
// receive after it), so that the true time in the stage lies inside.
func kdOneWay(t *testing.T, sent vmnet.Sent, got vmnet.Received) []time.Duration {
	t.Helper()
	var out []time.Duration
	for _, s := range got.Seqs {
		out = append(out, got.At[s].Sub(sent.At[s]))
	}
	return out
}

// kdCheckDelays checks delays against min: none below it (exact: the
// clocks bracket the stay in the stage), none a second or more past it (a
// packet left behind), and, to catch a delay applied twice, a median below
// min + slack. Closer upper bounds would judge the host's speed (the debug
// kernel's median is 1.4 ms past a 20 ms delay, the cloud kernel's 0.5 ms;
// a flood's receiver falls behind by more): make bench measures the
// lateness under icount.
func kdCheckDelays(t *testing.T, what string, ds []time.Duration, min, slack time.Duration, n int) {
	t.Helper()
	if len(ds) != n {
		t.Fatalf("%s: %d datagrams arrived, want %d", what, len(ds), n)
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	t.Logf("%s: one-way delay min %v median %v max %v", what, s[0], s[len(s)/2], s[len(s)-1])
	if s[0] < min {
		t.Errorf("%s: a datagram took %v, below the delay %v", what, s[0], min)
	}
	if s[len(s)-1] >= min+time.Second {
		t.Errorf("%s: a datagram took %v, a second or more past the delay %v", what, s[len(s)-1], min)
	}
	if s[len(s)/2] >= min+slack {
		t.Errorf("%s: median %v, %v or more past the delay %v", what, s[len(s)/2], slack, min)
	}
}

func TestKernelDelayBothWays(t *testing.T) {
	CheckKmsg(t)
	tp, c := kdTopo(t)
	const d, n = 20 * time.Millisecond, 100

	c.setTx("insane0", kmMode(uapi.ModePass), kdDelay(d))
	sent, got := tp.UDP(t, vmnet.SendOptions{Count: n, Interval: 2 * time.Millisecond})
	kdCheckDelays(t, "transmit", kdOneWay(t, sent, got), d, d, n)
	st := c.get("insane0").d.Stats
	if st[uapi.StatsARelayedPackets] < n || st[uapi.StatsAHeldPackets] != 0 {
		t.Errorf("transmit: relayed %d held %d", st[uapi.StatsARelayedPackets], st[uapi.StatsAHeldPackets])
	}

	c.setTx("insane0", kmMode(uapi.ModePass))
	c.setRx("insane0", kmMode(uapi.ModePass), kdDelay(d))
	sent, got = tp.fromMorgana(t, vmnet.SendOptions{Count: n, Interval: 2 * time.Millisecond})
	if len(got.Seqs) != n {
		t.Logf("receive: counters %v", c.get("insane0").d.Stats)
	}
	kdCheckDelays(t, "receive", kdOneWay(t, sent, got), d, d, n)
	st = c.get("insane0").d.Stats
	if st[uapi.StatsARxRelayedPackets] < n || st[uapi.StatsARxHeldPackets] != 0 {
		t.Errorf("receive: relayed %d held %d", st[uapi.StatsARxRelayedPackets], st[uapi.StatsARxHeldPackets])
	}

	// Both ways: ping's round trip takes both delays.
	c.setTx("insane0", kmMode(uapi.ModePass), kdDelay(d))
	out := RunIn(t, tp.Borea, "ping", "-c", "5", "-i", "0.2", "-q", tp.MorganaIP)
	i := strings.Index(out, "= ")
	f := strings.Split(strings.Fields(out[i+2:])[0], "/")
	minRTT, err1 := strconv.ParseFloat(f[0], 64)
	avgRTT, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("ping output %q", out)
	}
	t.Logf("ping RTT min %.3f avg %.3f ms through 20 ms each way", minRTT, avgRTT)
	// Both delays, once each: at least 40 ms, and below the 80 ms that
	// either delay applied twice would give (the debug kernel's average
	// is 45.8 ms, the cloud kernel's 41).
	if minRTT < 40 || minRTT >= 80 {
		t.Errorf("ping RTT min %.3f avg %.3f ms, want 40 <= min < 80", minRTT, avgRTT)
	}
}

// kdReordered counts the datagrams that arrived after one sent later.
func kdReordered(got vmnet.Received) int {
	seqs := append([]uint64(nil), got.Seqs...)
	sort.Slice(seqs, func(i, j int) bool { return got.At[seqs[i]].Before(got.At[seqs[j]]) })
	n := 0
	var hi uint64
	for i, s := range seqs {
		if i > 0 && s < hi {
			n++
		}
		if s > hi {
			hi = s
		}
	}
	return n
}

// kdSendMigrating sends n datagrams of one flow 200 us apart from a thread
// that moves to the other CPU before each.
func kdSendMigrating(t *testing.T, tp *Topo, n int) vmnet.Received {
	t.Helper()
	r, err := vmnet.Listen(tp.Morgana, tp.MorganaIP+":0", 0xde1a)
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	if err := vmnet.Do(tp.Borea, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrInet4{Port: r.Addr().Port, Addr: [4]byte{192, 0, 2, 2}}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	_ = unix.SchedGetaffinity(0, &old)
	defer unix.SchedSetaffinity(0, &old)
	cpus := runtime.NumCPU()
	buf := make([]byte, vmnet.MinSize)
	for i := 0; i < n; i++ {
		var set unix.CPUSet
		set.Set(i % cpus)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			t.Fatal(err)
		}
		vmnet.Encode(buf, 0xde1a, uint64(i))
		if err := unix.Sendto(fd, buf, 0, to); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	r.Wait(n, 500*time.Millisecond, 10*time.Second)
	return r.Close()
}

func TestKernelDelayOrder(t *testing.T) {
	CheckKmsg(t)
	tp, c := kdTopo(t)
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	const n = 1000
	jit := []kmA{kmMode(uapi.ModePass), kdDelay(10 * time.Millisecond), kdJitter(8 * time.Millisecond)}

	c.setTx("insane0", jit...)
	_, got := tp.UDP(t, vmnet.SendOptions{Count: n, Interval: 200 * time.Microsecond, Pin: true, CPU: 1})
	if len(got.Seqs) != n {
		t.Fatalf("pinned: %d of %d arrived", len(got.Seqs), n)
	}
	if r := kdReordered(got); r != 0 {
		t.Errorf("pinned flow, jitter 8 ms, 200 us apart: %d datagrams reordered, want 0", r)
	}

	c.setTx("insane0", jit...)
	got = kdSendMigrating(t, tp, n)
	if len(got.Seqs) != n {
		t.Fatalf("migrating: %d of %d arrived", len(got.Seqs), n)
	}
	if r := kdReordered(got); r != 0 {
		t.Errorf("sender migrating between CPUs: %d datagrams reordered, want 0", r)
	}

	c.setTx("insane0", append(jit, kdReorder())...)
	_, got = tp.UDP(t, vmnet.SendOptions{Count: n, Interval: 200 * time.Microsecond, Pin: true, CPU: 1})
	r := kdReordered(got)
	t.Logf("with reorder: %d of %d reordered", r, len(got.Seqs))
	// Two datagrams 200 us apart swap unless both delays fall in order:
	// far more than 100 of 1,000 swap with 16 ms of uniform spread.
	if r < 100 {
		t.Errorf("with reorder: %d datagrams reordered, want many", r)
	}
}

// kdMix64 is the header's mixing function.
func kdMix64(x uint64) uint64 {
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// kdUniform is the header's uniform delay of the k-th draw under seed.
func kdUniform(seed, k uint64, d, j time.Duration) time.Duration {
	x := kdMix64((seed ^ uapi.DelaySalt) + (k+1)*0x9e3779b97f4a7c15)
	// mul_u64_u32_shr(2J, u1, 32): (2J * u1) >> 32, exactly.
	hi, lo := bits.Mul64(2*uint64(j), x>>32)
	return d - j + time.Duration(hi<<32|lo>>32)
}

func TestKernelDelaySeeded(t *testing.T) {
	CheckKmsg(t)
	tp, c := kdTopo(t)
	const d, j, seed, n = 30 * time.Millisecond, 20 * time.Millisecond, 5, 40
	for run := 0; run < 2; run++ {
		// Set anew: k starts at 0.
		c.setTx("insane0", kmMode(uapi.ModePass), kdDelay(d), kdJitter(j), kmSeed(seed))
		// 60 ms apart, above the 40 ms spread: order never holds one back.
		sent, got := tp.UDP(t, vmnet.SendOptions{Count: n, Interval: 60 * time.Millisecond})
		if len(got.Seqs) != n {
			t.Fatalf("run %d: %d of %d arrived", run, len(got.Seqs), n)
		}
		var excess []time.Duration
		for _, s := range got.Seqs {
			want := kdUniform(seed, s, d, j)
			took := got.At[s].Sub(sent.At[s])
			if took < want || took >= want+time.Second {
				t.Errorf("run %d: datagram %d took %v, the model says %v", run, s, took, want)
			}
			excess = append(excess, took-want)
		}
		sort.Slice(excess, func(a, b int) bool { return excess[a] < excess[b] })
		t.Logf("run %d: measured - model: min %v median %v max %v", run, excess[0], excess[n/2], excess[n-1])
		// Below the model is impossible (checked above: a wrong draw
		// is as often below as above); above, what the VM adds (1.5 ms
		// at the median under TCG). A median at half the jitter or more
		// would be draws shifted up; closer bounds would judge the
		// host's speed, which make bench measures under icount.
		if excess[n/2] >= j/2 {
			t.Errorf("run %d: median excess %v over the model, half the jitter or more", run, excess[n/2])
		}
	}
}

func TestKernelDelayLimitAndFlush(t *testing.T) {
	CheckKmsg(t)
	tp, c := kdTopo(t)
	const limit, n = 10, 100
	c.setTx("insane0", kmMode(uapi.ModePass), kdDelay(30*time.Second), kdLimit(limit))
	sent, err := vmnet.Send(tp.Borea, tp.MorganaIP+":9", vmnet.SendOptions{Count: n, Pin: true, CPU: 0})
	if err != nil || sent.Errors != 0 {
		t.Fatalf("sending: %v %d %v", err, sent.Errors, sent.FirstError)
	}
	st := c.get("insane0").d.Stats
	if st[uapi.StatsADropQueueFull] != n-limit || st[uapi.StatsAHeldPackets] != limit ||
		st[uapi.StatsAHeldBytes] != limit*uint64(20+8+vmnet.MinSize) {
		t.Errorf("limit %d, %d sent on one CPU: queue-full %d held %d packets %d bytes", limit, n,
			st[uapi.StatsADropQueueFull], st[uapi.StatsAHeldPackets], st[uapi.StatsAHeldBytes])
	}
	// Gauges are not reset.
	c.set("insane0", kmU32(uapi.DeviceAFlags, uapi.DeviceFResetStats))
	st = c.get("insane0").d.Stats
	if st[uapi.StatsADropQueueFull] != 0 || st[uapi.StatsAHeldPackets] != limit {
		t.Errorf("after a reset: queue-full %d held %d", st[uapi.StatsADropQueueFull], st[uapi.StatsAHeldPackets])
	}
	// Down: every held packet is flushed and counted.
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "down")
	st = c.get("insane0").d.Stats
	if st[uapi.StatsADropFlushed] != limit || st[uapi.StatsAHeldPackets] != 0 || st[uapi.StatsAHeldBytes] != 0 {
		t.Errorf("after down: flushed %d held %d/%d", st[uapi.StatsADropFlushed], st[uapi.StatsAHeldPackets], st[uapi.StatsAHeldBytes])
	}

	// A flush forgets its flows' departures: a flow's datagram held for
	// 30 s is flushed; after up, under delay 10ms, the same flow's next
	// datagram (one connected socket: one 4-tuple, one bucket) leaves
	// 10 ms after its send, not behind the one that never departed.
	up := func() {
		RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "up")
		RunIn(t, tp.Borea, "ip", "route", "replace", tp.MorganaIP+"/32", "dev", "insane0")
	}
	up()
	var conn net.Conn
	if err := vmnet.Do(tp.Borea, func() (err error) {
		conn, err = net.Dial("udp4", tp.MorganaIP+":9")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c.setTx("insane0", kmMode(uapi.ModePass), kdDelay(30*time.Second))
	if _, err := conn.Write(make([]byte, vmnet.MinSize)); err != nil {
		t.Fatal(err)
	}
	if st = c.get("insane0").d.Stats; st[uapi.StatsAHeldPackets] != 1 {
		t.Fatalf("one datagram sent under delay 30s: held %d", st[uapi.StatsAHeldPackets])
	}
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "down")
	up()
	c.setTx("insane0", kmMode(uapi.ModePass), kdDelay(10*time.Millisecond))
	relayed := c.get("insane0").d.Stats[uapi.StatsARelayedPackets]
	start := time.Now()
	if _, err := conn.Write(make([]byte, vmnet.MinSize)); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 5*time.Second, "the flow's datagram after the flush relayed", func() bool {
		return c.get("insane0").d.Stats[uapi.StatsARelayedPackets] == relayed+1
	})
	t.Logf("the flow's datagram after the flush left within %v of its send", time.Since(start))
}

// Teardown with many packets held both ways: deleting the device, deleting
// its namespace, unloading the module, each leave nothing behind (the
// module unloads, kmsg stays clean).
func TestKernelDelayTeardown(t *testing.T) {
	CheckKmsg(t)
	for _, how := range []string{"delete", "netns", "unload"} {
		t.Run(how, func(t *testing.T) { kdTeardown(t, how) })
	}
}

func kdTeardown(t *testing.T, how string) {
	{
		tp, c := kdTopo(t)
		c.setTx("insane0", kmMode(uapi.ModePass), kdDelay(30*time.Second))
		c.setRx("insane0", kmMode(uapi.ModePass), kdDelay(30*time.Second))
		for _, fl := range [][2]string{{tp.Borea, tp.MorganaIP}, {tp.Morgana, tp.BoreaIP}} {
			start := time.Now()
			sent, err := vmnet.Send(fl[0], fl[1]+":9", vmnet.SendOptions{Count: 2000, Interval: 20 * time.Microsecond})
			if err != nil || sent.Errors != 0 {
				t.Fatalf("sending from %s: %v, %d refused (%v)", fl[0], err, sent.Errors, sent.FirstError)
			}
			t.Logf("%s: 2000 sent from %s in %v", how, fl[0], time.Since(start))
		}
		st := c.get("insane0").d.Stats
		held := st[uapi.StatsAHeldPackets] + st[uapi.StatsARxHeldPackets]
		t.Logf("%s: %d held; counters %v", how, held, st)
		if st[uapi.StatsAHeldPackets] < 1000 || st[uapi.StatsARxHeldPackets] < 1000 {
			t.Errorf("%s: held %d transmitted, %d received", how, st[uapi.StatsAHeldPackets], st[uapi.StatsARxHeldPackets])
		}
		start := time.Now()
		defer func() { t.Logf("%s: teardown took %v", how, time.Since(start)) }()
		switch how {
		case "delete":
			RunIn(t, tp.Borea, "ip", "link", "del", "insane0")
		case "netns":
			Run(t, "ip", "netns", "del", tp.Borea)
			// Again, empty, for the cleanup to delete.
			Run(t, "ip", "netns", "add", tp.Borea)
		case "unload":
			UnloadModule(t)
		}
		UnloadModule(t)
		if ModuleLoaded() {
			t.Fatalf("%s: the module stays loaded", how)
		}
		LoadModule(t)
	}
}

// A TCP transfer through delay 50ms jitter 10ms each way completes intact,
// and at a rate its window allows: held packets do not pin the sender's
// socket memory (skb_orphan_partial()).
func TestKernelDelayTCP(t *testing.T) {
	CheckKmsg(t)
	tp, c := kdTopo(t)
	const size = 4 << 20
	p := []kmA{kmMode(uapi.ModePass), kdDelay(50 * time.Millisecond), kdJitter(10 * time.Millisecond)}
	c.setTx("insane0", p...)
	c.setRx("insane0", p...)

	took, err := TCPTransfer(t, tp.Borea, tp.Morgana, tp.MorganaIP, size, 60*time.Second)
	if err != nil {
		t.Fatalf("TCP through delay 50ms jitter 10ms both ways: %v; counters %v", err, c.get("insane0").d.Stats)
	}
	st := c.get("insane0").d.Stats
	t.Logf("4 MiB through 100 ms RTT in %v (%.1f Mbit/s); transmit relayed %d, receive relayed %d, queue-full %d/%d",
		took, float64(size*8)/took.Seconds()/1e6, st[uapi.StatsARelayedPackets], st[uapi.StatsARxRelayedPackets],
		st[uapi.StatsADropQueueFull], st[uapi.StatsARxDropQueueFull])
	if st[uapi.StatsADropQueueFull] != 0 || st[uapi.StatsARxDropQueueFull] != 0 {
		t.Errorf("queue-full drops under the default limit")
	}
}

// A schedule's steps change the delay at their edges: a step of 60 ms
// (reorder, so that the next step's packets are not held behind it), then
// a step without delay, 300 ms each. Packets sent well inside a step (5 ms
// from either edge, the epoch bracketed by the clocks around the set) take
// that step's delay.
func TestKernelDelaySchedule(t *testing.T) {
	CheckKmsg(t)
	tp, c := kdTopo(t)
	const d, step = 60 * time.Millisecond, 300 * time.Millisecond
	before := time.Now()
	c.setTx("insane0", kmMode(uapi.ModeSchedule), kmSteps(
		kmStep(kmMode(uapi.ModePass), kdDelay(d), kdReorder(), kmDur(step)),
		kmStep(kmMode(uapi.ModePass), kmDur(step))))
	after := time.Now()
	sent, got := tp.UDP(t, vmnet.SendOptions{Count: 240, Interval: 5 * time.Millisecond})
	if len(got.Seqs) != 240 {
		t.Fatalf("%d of 240 arrived", len(got.Seqs))
	}
	// The step of a send at s: sure only if both epochs agree, 5 ms away
	// from an edge.
	stepAt := func(s time.Time) int {
		a, b := s.Sub(after), s.Sub(before)
		if a < 0 {
			return -1
		}
		ia, ib := int(a/step)%2, int(b/step)%2
		if ia != ib || a%step < 5*time.Millisecond || step-b%step < 5*time.Millisecond {
			return -1
		}
		return ia
	}
	counted := [2]int{}
	for _, s := range got.Seqs {
		took := got.At[s].Sub(sent.At[s])
		switch stepAt(sent.At[s]) {
		case 0:
			counted[0]++
			if took < d {
				t.Errorf("datagram %d, sent in the delayed step, took %v", s, took)
			}
		case 1:
			counted[1]++
			if took >= d/2 {
				t.Errorf("datagram %d, sent in the step without delay, took %v", s, took)
			}
		}
	}
	t.Logf("datagrams well inside the delayed step %d, the other %d", counted[0], counted[1])
	if counted[0] < 50 || counted[1] < 50 {
		t.Errorf("too few datagrams well inside the steps: %v", counted)
	}
}

// kdHrtimerSoftirqs returns the HRTIMER softirqs CPU cpu has run
// (/proc/softirqs).
func kdHrtimerSoftirqs(t *testing.T, cpu int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/softirqs")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > cpu+1 && f[0] == "HRTIMER:" {
			v, err := strconv.ParseUint(f[cpu+1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no HRTIMER line in /proc/softirqs: %q", b)
	return 0
}

// A dense transmit stream leaves as netem's does: each packet held sends
// on what is due (the hold finds the head due whenever the timer is late,
// and with a stream denser than one hold per 20 us the timer runs up to
// 20 us past the head). Back-to-back datagrams from one CPU through delay
// 2ms: every one leaves, none before its delay, none overtaken. The HRTIMER
// softirqs of that CPU are logged, not checked: under TCG the timer runs
// late and releases several datagrams each time before and after the
// change (the bench counts instructions under icount).
func TestKernelDelayDenseStream(t *testing.T) {
	CheckKmsg(t)
	tp, c := kdTopo(t)
	const d, n, cpu = 2 * time.Millisecond, 4000, 1
	if runtime.NumCPU() <= cpu {
		t.Skipf("needs CPU %d", cpu)
	}
	c.setTx("insane0", kmMode(uapi.ModePass), kdDelay(d))
	r, err := vmnet.Listen(tp.Morgana, tp.MorganaIP+":0", 0xde25)
	if err != nil {
		t.Fatal(err)
	}
	before := kdHrtimerSoftirqs(t, cpu)
	sent, err := vmnet.Send(tp.Borea, net.JoinHostPort(tp.MorganaIP, strconv.Itoa(r.Addr().Port)),
		vmnet.SendOptions{Count: n, Run: 0xde25, Pin: true, CPU: cpu})
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	r.Wait(n, 500*time.Millisecond, 10*time.Second)
	timers := kdHrtimerSoftirqs(t, cpu) - before
	got := r.Close()
	// The receiver of a flood falls behind (a median of 7.4 ms for
	// 2 ms on the debug kernel): only a packet left behind is judged.
	kdCheckDelays(t, "dense", kdOneWay(t, sent, got), d, time.Second, n)
	if k := kdReordered(got); k != 0 {
		t.Errorf("dense: %d of %d datagrams arrived after one sent later", k, n)
	}
	gap := sent.At[n-1].Sub(sent.At[0]) / (n - 1)
	t.Logf("dense: %d datagrams %v apart on average, %d HRTIMER softirqs on CPU %d", n, gap, timers, cpu)
}

// A held packet is built into its frame at its hold ("Delay" in the uapi
// header), both families, through a gateway: POSTROUTING sees it then,
// once, with the lower as output device; a rule that drops it there counts
// in DROP_LOWER_REFUSED at once, and nothing is held. A routing change
// while it is held has it routed and relayed again at its departure
// (here to a gateway that does not answer), through POSTROUTING again.
func TestKernelDelayFrame(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	ns, peer := "dframe", "dfpeer"
	rlGatewayPair(t, ns, peer, 78)
	// No link-local address: no DAD, MLD or RS of the kernel's own held.
	RunIn(t, ns, "ip", "link", "set", "insane0", "addrgenmode", "none")
	RunIn(t, ns, "ip", "link", "set", "insane0", "up")
	RunIn(t, ns, "ip", "addr", "add", "198.51.100.1/32", "dev", "insane0")
	rlGatewayRoutes(t, ns, "2001:db8:89::/64")
	rlNft(t, peer, "table inet cnt {\n chain in {\n  type filter hook prerouting priority 0;\n"+
		"  ip daddr 198.51.100.9 counter comment \"v4\"\n"+
		"  ip6 daddr 2001:db8:89::9 counter comment \"v6\"\n }\n}\n")
	rlNft(t, ns, "table inet post {\n chain post {\n  type filter hook postrouting priority 0;\n"+
		"  oifname \"l0\" udp dport 19 counter drop comment \"dropped\"\n"+
		"  oifname \"l0\" ip daddr 198.51.100.9 counter comment \"v4\"\n"+
		"  oifname \"l0\" ip6 daddr 2001:db8:89::9 counter comment \"v6\"\n }\n}\n")
	c := kmOpen(t, ns)

	const n = 5
	send := func(dst string) {
		t.Helper()
		sent, err := vmnet.Send(ns, dst, vmnet.SendOptions{Count: n, Pin: true, CPU: 0})
		if err != nil || sent.Errors != 0 {
			t.Fatalf("sending to %s: %v %d %v", dst, err, sent.Errors, sent.FirstError)
		}
	}
	post := func() map[string]uint64 { return rlNftCounters(t, ns, "inet", "post") }
	arrived := func(fam string) uint64 { return rlNftCounters(t, peer, "inet", "cnt")[fam] }
	stats := func() []uint64 { s := c.get("insane0").d.Stats; return s[:] }
	for _, f := range []struct{ fam, v, addr, prefix, gw, absent string }{
		{"v4", "-4", "198.51.100.9", "198.51.100.0/24", "10.78.0.2", "10.78.0.3"},
		{"v6", "-6", "2001:db8:89::9", "2001:db8:89::/64", "2001:db8:78::2", "2001:db8:78::3"},
	} {
		RunIn(t, ns, "ip", f.v, "route", "replace", f.prefix, "via", f.gw, "dev", "l0", "table", "77")
		// A resolved neighbour, so that the frames are built.
		RunIn(t, ns, "ping", f.v, "-c", "1", "-W", "2", "-I", "l0", f.gw)

		// Dropped by POSTROUTING at the hold: counted when sent.
		c.setTx("insane0", kmMode(uapi.ModePass), kdDelay(30*time.Second))
		s0, p0 := stats(), post()
		send(net.JoinHostPort(f.addr, "19"))
		s1, p1 := stats(), post()
		if d := s1[uapi.StatsADropLowerRefused] - s0[uapi.StatsADropLowerRefused]; d != n ||
			s1[uapi.StatsAHeldPackets] != 0 || p1["dropped"]-p0["dropped"] != n {
			t.Errorf("%s: %d sent into a POSTROUTING drop under delay 30s: refused %d, held %d, the rule dropped %d (want %d, 0, %d)",
				f.fam, n, d, s1[uapi.StatsAHeldPackets], p1["dropped"]-p0["dropped"], n, n)
		}

		// Held as frames: POSTROUTING passed at the hold, once each.
		for _, change := range []bool{false, true} {
			// The route must change while the frames are held: the clock
			// read before the send and after the change brackets it, and a
			// slower machine (the debug kernel) is given a longer delay.
			var s0 []uint64
			var p0 map[string]uint64
			var a0 uint64
			want, passes := uint64(n), uint64(n)
			for d := time.Second; ; d *= 2 {
				RunIn(t, ns, "ip", f.v, "route", "replace", f.prefix, "via", f.gw, "dev", "l0", "table", "77")
				c.setTx("insane0", kmMode(uapi.ModePass), kdDelay(d))
				s0, p0, a0 = stats(), post(), arrived(f.fam)
				start := time.Now()
				send(net.JoinHostPort(f.addr, "9"))
				s1, p1 := stats(), post()
				if s1[uapi.StatsAHeldPackets] != n || p1[f.fam]-p0[f.fam] != n {
					t.Fatalf("%s: %d sent under delay %v: held %d, POSTROUTING saw %d", f.fam, n, d, s1[uapi.StatsAHeldPackets], p1[f.fam]-p0[f.fam])
				}
				if !change {
					break
				}
				// Its route changes: the held frames go to the new gateway.
				RunIn(t, ns, "ip", f.v, "route", "replace", f.prefix, "via", f.absent, "dev", "l0", "table", "77")
				want, passes = 0, 2*n
				if time.Since(start) < d/2 || d >= 16*time.Second {
					break
				}
				t.Logf("%s: the route changed %v after the send, under delay %v: again with a longer delay", f.fam, time.Since(start), d)
				WaitFor(t, d+10*time.Second, f.fam+": the held datagrams relayed", func() bool {
					return stats()[uapi.StatsARelayedPackets] == s0[uapi.StatsARelayedPackets]+n
				})
			}
			WaitFor(t, 40*time.Second, f.fam+": the held datagrams relayed", func() bool {
				return stats()[uapi.StatsARelayedPackets] == s0[uapi.StatsARelayedPackets]+n
			})
			if !change {
				WaitFor(t, 5*time.Second, f.fam+": the datagrams at the peer", func() bool { return arrived(f.fam) == a0+n })
			} else {
				time.Sleep(300 * time.Millisecond)
			}
			if got, p := arrived(f.fam)-a0, post()[f.fam]-p0[f.fam]; got != want || p != passes {
				t.Errorf("%s, route changed while held %v: %d at the peer, POSTROUTING saw %d (want %d, %d)",
					f.fam, change, got, p, want, passes)
			}
		}
	}
}
