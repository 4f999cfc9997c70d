// Command insane-bench measures insane in the test VM (make bench): the
// packet rate through the lower device alone, through insane in each mode,
// and through netem, tc gact and nftables dropping the same share; how close
// each tool's loss is to what it was configured for, and burst mode's loss
// and burst lengths beside netem's gemodel; how precisely time mode
// switches at its window edges; what each packet allocates; and the memory
// each device costs. It prints Markdown tables and one BENCH-JSON line, from
// which "insane-bench -render" draws an SVG plot on the host.
//
// It needs root, iproute2, tc, nft, the insane module and the pktgen module,
// and it changes the machine's network configuration, so it runs only in the
// VM, except with -render.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/insane-netdev/insane/go/genl"
)

type options struct {
	reps       int
	dur        time.Duration
	sources    string
	noisyReps  int
	noisyDur   time.Duration
	count      uint64
	allocCount uint64
	burstCount uint64
	burstPairs string
	devices    int
	edgeDur    time.Duration
	edgeOn     time.Duration
	edgeOff    time.Duration
	flapOn     time.Duration
	flapOff    time.Duration
	flapDur    time.Duration
	phases     string
	profile    string
	profileSrc string
	profileDur time.Duration
	profilePer int
	render     string
	svg        string
	profiles   string
	profileOut string
	// calls phase (calls.go)
	callsCases     string
	callsFuncs     string
	callsCount     int
	callsWarm      int
	callsRateCount int
	// delay phase (delay.go)
	delayReps    int
	delayRate    float64
	delayCount   int
	delayTiming  int
	delayRuns    int
	delayDist    int
	nodropCount  uint64
	nodropGap    int64
	heldCount    int
	delayDevices int
	// rate phase (rate.go)
	rateParts      string
	delayParts     string
	rateDur        time.Duration
	rateSize       int
	rateOver       float64
	rateTCPDur     time.Duration
	rateBufferDur  time.Duration
	rateReps       int
	rateExtraCount int
	rateExtraPPS   float64
}

func main() {
	var o options
	flag.IntVar(&o.reps, "reps", 5, "throughput: rounds of every case and source, interleaved")
	flag.DurationVar(&o.dur, "dur", 500*time.Millisecond, "throughput: length of each run, in guest time (instructions under icount)")
	flag.StringVar(&o.sources, "sources", "pktgen,udp", "throughput: traffic sources (pktgen, udp)")
	flag.IntVar(&o.noisyReps, "noisy-reps", 5, "noisy: rounds of pktgen with 1 and 2 CPUs under multi-threaded TCG")
	flag.DurationVar(&o.noisyDur, "noisy-dur", 2*time.Second, "noisy: length of each run")
	flag.Uint64Var(&o.count, "count", 100000, "loss accuracy: packets per tool")
	flag.Uint64Var(&o.burstCount, "burst-count", 1000000, "burst loss: datagrams per run")
	flag.StringVar(&o.burstPairs, "burst-pairs", "95/5,80/10,95/1", "burst loss: PERCENT/BURST pairs, comma-separated")
	flag.Uint64Var(&o.allocCount, "alloc-count", 20000, "allocations: packets per case")
	flag.IntVar(&o.devices, "devices", 1000, "memory: devices created of each kind")
	flag.DurationVar(&o.edgeDur, "edge-dur", 3*time.Second, "time-mode edges: how long to send")
	flag.DurationVar(&o.edgeOn, "edge-on", 20*time.Millisecond, "time-mode edges: ON window")
	flag.DurationVar(&o.edgeOff, "edge-off", 20*time.Millisecond, "time-mode edges: OFF window")
	flag.DurationVar(&o.flapOn, "flap-on", 20*time.Millisecond, "carrier flaps: ON window (at least 10ms)")
	flag.DurationVar(&o.flapOff, "flap-off", 20*time.Millisecond, "carrier flaps: OFF window (at least 10ms)")
	flag.DurationVar(&o.flapDur, "flap-dur", 5*time.Second, "carrier flaps: how long the policy flaps, in guest time (250 edges at 20ms/20ms)")
	flag.StringVar(&o.phases, "phases", "", "phases to run, of tput,tcp,lines,rx,calls,noisy,acc,burst,alloc,edge,flap,mem,delay,delaynoisy,rate,profile (calls: exact counts per function, under icount; default: tput,tcp,lines,rx,flap under icount, else noisy,lines,acc,burst,alloc,edge,flap,mem)")
	flag.StringVar(&o.profile, "profile", "", "profile: comma-separated case keys to record with perf (implies -phases profile)")
	flag.StringVar(&o.profileSrc, "profile-source", "pktgen,udp", "profile: traffic sources")
	flag.DurationVar(&o.profileDur, "profile-dur", 2*time.Second, "profile: how long perf records each case")
	flag.IntVar(&o.profilePer, "profile-period", 0, "profile: sample every N ns of guest time (perf -c N; under icount, N instructions); 0: perf's default frequency")
	flag.StringVar(&o.callsCases, "calls-cases", "", "calls: comma-separated case keys to trace (default: all)")
	flag.StringVar(&o.callsFuncs, "calls-funcs", "", "calls: comma-separated functions to trace instead of the default set (the interrupt entries are always traced)")
	flag.IntVar(&o.callsCount, "calls-count", 2000, "calls: packets traced per case and source, after the warm-up")
	flag.IntVar(&o.callsWarm, "calls-warm", 200, "calls: packets sent traced before the counted ones")
	flag.IntVar(&o.callsRateCount, "calls-rate-count", 20000, "calls: packets of each untraced rate and calibration run")
	flag.IntVar(&o.delayReps, "delay-reps", 3, "delay: rounds of the cost runs (each -dur long)")
	flag.Float64Var(&o.delayRate, "delay-rate", 10000, "delay: datagrams per second of the paced runs")
	flag.IntVar(&o.delayCount, "delay-count", 100000, "delay: datagrams of each order run (delay 10ms jitter 5ms)")
	flag.IntVar(&o.delayTiming, "delay-timing", 20000, "delay: datagrams of each timing run (delay 10ms)")
	flag.IntVar(&o.delayRuns, "delay-runs", 3, "delay: runs of each tool in the timing part, and Poisson schedules of the poisson part (each sent through both tools)")
	flag.IntVar(&o.delayDist, "delay-dist", 20000, "delay: datagrams of each distribution and replay run")
	flag.Uint64Var(&o.nodropCount, "nodrop-count", 150000, "delay: packets pktgen sends through delay 1s")
	flag.Int64Var(&o.nodropGap, "nodrop-gap", 10000, "delay: ns between pktgen's packets through delay 1s (10000: 100,000 packets/s)")
	flag.IntVar(&o.heldCount, "held-count", 50000, "delay: datagrams held for the memory per held packet")
	flag.IntVar(&o.delayDevices, "delay-devices", 200, "delay: devices created for the memory per device and per delay policy")
	flag.StringVar(&o.rateParts, "rate-parts", rateParts, "rate: the parts to run")
	flag.StringVar(&o.delayParts, "delay-parts", delayParts, "delay: the parts to run")
	flag.BoolVar(&delayReaderIdle, "delay-reader-idle", true, "delay: the paced runs' capture reader runs SCHED_IDLE (false: SCHED_OTHER, as the sender)")
	flag.DurationVar(&o.rateDur, "rate-dur", time.Second, "rate: guest time of each UDP sending run")
	flag.IntVar(&o.rateSize, "rate-size", 1500, "rate: IP length of the UDP runs' datagrams (44 to 1500)")
	flag.Float64Var(&o.rateOver, "rate-over", 1.25, "rate: the UDP runs send at this many times R")
	flag.DurationVar(&o.rateTCPDur, "rate-tcp-dur", time.Second, "rate: guest time of each TCP run")
	flag.DurationVar(&o.rateBufferDur, "rate-buffer-dur", 2*time.Second, "rate: guest time of each TCP run through a buffer")
	flag.IntVar(&o.rateReps, "rate-reps", 3, "rate: rounds of the cost runs (each -dur long)")
	flag.IntVar(&o.rateExtraCount, "rate-extra-count", 100000, "rate: datagrams of each duplicate/corrupt run")
	flag.Float64Var(&o.rateExtraPPS, "rate-extra-pps", 20000, "rate: datagrams per second of the duplicate/corrupt runs")
	flag.StringVar(&o.render, "render", "", "host: read the BENCH-JSON line from this guest log and draw -svg")
	flag.StringVar(&o.svg, "svg", "build/benchmarks.svg", "with -render: the SVG file to write")
	flag.StringVar(&o.profiles, "profiles", "", "host: read the profiles from this guest log and write them to -profile-out")
	flag.StringVar(&o.profileOut, "profile-out", "build", "with -profiles: the directory for profile-CASE-SOURCE.{txt,folded,svg}")
	flag.Parse()

	if o.render != "" || o.profiles != "" {
		var err error
		if o.render != "" {
			err = render(o.render, o.svg)
		}
		if err == nil && o.profiles != "" {
			err = writeProfiles(o.profiles, o.profileOut)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "insane-bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if _, err := os.Stat("/etc/vmtest/mode"); err != nil {
		fmt.Fprintln(os.Stderr, "insane-bench changes the network configuration and runs only in the test VM: use make bench")
		os.Exit(2)
	}
	if err := bench(&o); err != nil {
		fmt.Fprintf(os.Stderr, "insane-bench: %v\n", err)
		os.Exit(1)
	}
}

// underIcount reports whether the runner booted the guest under -icount
// (it adds insane_icount=1 to the kernel command line).
func underIcount() bool {
	b, err := os.ReadFile("/proc/cmdline")
	return err == nil && strings.Contains(" "+strings.TrimSpace(string(b))+" ", " insane_icount=1 ")
}

// report is everything one run measured; it is printed as BENCH-JSON.
// Errors are runs whose counts disagree: they give no figures, and the
// bench exits 1 after its report.
type report struct {
	Kernel       string        `json:"kernel"`
	CPUs         int           `json:"cpus"`
	Icount       bool          `json:"icount"`
	Reps         int           `json:"reps"`
	RunSeconds   float64       `json:"run_seconds"`
	Sources      []string      `json:"sources,omitempty"`
	Cases        []caseInfo    `json:"cases"`
	Runs         []runRec      `json:"runs,omitempty"`
	TCP          []tcpRec      `json:"tcp,omitempty"`
	NoisyReps    int           `json:"noisy_reps,omitempty"`
	NoisySeconds float64       `json:"noisy_run_seconds,omitempty"`
	NoisyRuns    []runRec      `json:"noisy_runs,omitempty"`
	Accuracy     []accRec      `json:"accuracy,omitempty"`
	Burst        []burstRec    `json:"burst,omitempty"`
	Allocs       []allocRec    `json:"allocs,omitempty"`
	Edges        *edgeResult   `json:"edges,omitempty"`
	Flap         *flapResult   `json:"flap,omitempty"`
	Memory       []memRec      `json:"memory,omitempty"`
	Receive      []rxRec       `json:"receive,omitempty"`
	Delay        *delayResult  `json:"delay,omitempty"`
	DelayNoisy   []runRec      `json:"delay_noisy,omitempty"`
	Rate         *rateResult   `json:"rate,omitempty"`
	Skipped      []string      `json:"skipped,omitempty"`
	Errors       []string      `json:"errors,omitempty"`
	Elapsed      time.Duration `json:"elapsed_ns"`
}

type caseInfo struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

func bench(o *options) error {
	start := time.Now()
	phase := func(p string) bool { return strings.Contains(","+o.phases+",", ","+p+",") }
	if err := setupNet(); err != nil {
		return err
	}
	c, err := genl.Dial(nil)
	if err != nil {
		return err
	}
	defer c.Close()

	uname, _ := run("uname", "-r")
	ncpu := 0
	if n, err := run("nproc"); err == nil {
		fmt.Sscan(n, &ncpu)
	}
	rep := report{Kernel: strings.TrimSpace(uname), CPUs: ncpu, Icount: underIcount(), Reps: o.reps, RunSeconds: o.dur.Seconds()}
	if o.phases == "" {
		switch {
		case o.profile != "":
			o.phases = "profile"
		case rep.Icount:
			o.phases = "tput,tcp,lines,rx,flap"
		default:
			o.phases = "noisy,lines,acc,burst,alloc,edge,flap,mem"
		}
	}
	for _, src := range strings.Split(o.sources, ",") {
		if src != srcPktgen && src != srcUDP {
			return fmt.Errorf("unknown source %q (want pktgen or udp)", src)
		}
		rep.Sources = append(rep.Sources, src)
	}
	all := cases()
	var cs []dropper
	for _, d := range all {
		if d.key == "g" && !haveNft() {
			rep.Skipped = append(rep.Skipped, "(g) nft: the guest has no nft (install nftables on the host)")
			continue
		}
		cs = append(cs, d)
		rep.Cases = append(rep.Cases, caseInfo{d.key, d.name})
	}
	clock := "QEMU multi-threaded TCG (wall-clock guest time: noisy)"
	if rep.Icount {
		clock = "QEMU single-threaded TCG under -icount shift=0 (1 ns of guest time = 1 guest instruction)"
	}
	fmt.Printf("insane-bench: kernel %s, %d CPUs, %s\n\n", rep.Kernel, ncpu, clock)

	if phase("tput") {
		if rep.Runs, err = throughput(c, cs, rep.Sources, []int{1}, o.reps, o.dur); err != nil {
			return err
		}
		printInstructions(&rep)
		printTargets(&rep)
	}
	if phase("tcp") {
		if rep.TCP, err = tcpBulk(c, o.reps, o.dur); err != nil {
			return err
		}
		printTCP(rep.TCP, o.reps, o.dur)
	}
	if phase("lines") {
		printSharedLines()
	}
	if phase("rx") {
		if rep.Receive, err = receive(c, o.reps, o.dur); err != nil {
			return err
		}
		printReceive(rep.Receive, rep.Icount)
	}
	if phase("calls") {
		if err := callsPhase(c, cs, o, rep.Sources); err != nil {
			return err
		}
	}
	if phase("noisy") {
		if ncpu < 2 {
			rep.Skipped = append(rep.Skipped, "noisy: needs 2 vCPUs (run without -icount)")
		} else {
			var ncs []dropper
			for _, d := range cs {
				if strings.Contains("abcsdef", d.key) {
					ncs = append(ncs, d)
				}
			}
			rep.NoisyReps, rep.NoisySeconds = o.noisyReps, o.noisyDur.Seconds()
			if rep.NoisyRuns, err = throughput(c, ncs, []string{srcPktgen}, []int{1, 2}, o.noisyReps, o.noisyDur); err != nil {
				return err
			}
			printThroughput(&rep)
		}
	}
	if phase("profile") && o.profile != "" {
		if err := profiles(c, cs, o); err != nil {
			return err
		}
	}
	if phase("acc") {
		if rep.Accuracy, err = accuracy(c, cs, o.count); err != nil {
			return err
		}
		printAccuracy(rep.Accuracy, o.count)
	}
	if phase("burst") {
		pairs, err := parseBurstPairs(o.burstPairs)
		if err != nil {
			return err
		}
		var skipped []string
		if rep.Burst, skipped, err = burstAccuracy(c, pairs, o.burstCount); err != nil {
			return err
		}
		rep.Skipped = append(rep.Skipped, skipped...)
		for _, r := range rep.Burst {
			if r.Error != "" {
				rep.Errors = append(rep.Errors, fmt.Sprintf("burst: %s: %s", r.Config, r.Error))
			}
		}
		printBurst(rep.Burst, o.burstCount)
	}
	if phase("alloc") {
		if rep.Allocs, err = allocations(c, cs, o.allocCount); err != nil {
			return err
		}
		printAllocs(rep.Allocs, o.allocCount)
	}
	if phase("edge") {
		e, err := timeEdges(c, o.edgeOn, o.edgeOff, o.edgeDur)
		if err != nil {
			return err
		}
		rep.Edges = &e
		printEdges(e)
	}
	if phase("flap") {
		f, err := carrierFlaps(c, o.flapOn, o.flapOff, o.flapDur)
		if err != nil {
			return err
		}
		rep.Flap = &f
		rep.Errors = append(rep.Errors, f.errors()...)
		printFlap(f, rep.Icount)
	}
	if phase("mem") {
		if rep.Memory, err = memory(o.devices); err != nil {
			return err
		}
		printMemory(rep.Memory, o.devices)
	}
	if phase("delay") {
		d, err := delayPhase(c, o)
		if d != nil {
			rep.Delay = d
			rep.Errors = append(rep.Errors, d.errors()...)
			printDelay(d, rep.Icount)
		}
		if err != nil {
			return err
		}
	}
	if phase("delaynoisy") {
		if ncpu < 2 {
			rep.Skipped = append(rep.Skipped, "delaynoisy: needs 2 vCPUs (run without -icount)")
		} else {
			if rep.DelayNoisy, err = delayNoisy(c, o); err != nil {
				return err
			}
			printDelayNoisy(rep.DelayNoisy, o.noisyReps, o.noisyDur)
		}
	}
	if phase("rate") {
		if o.rateSize < 44 || o.rateSize > 1500 {
			return fmt.Errorf("-rate-size %d: want 44 to 1500", o.rateSize)
		}
		r, err := ratePhase(c, o)
		if r != nil {
			rep.Rate = r
			rep.Errors = append(rep.Errors, r.errors()...)
			printRate(r, rep.Icount)
		}
		if err != nil {
			return err
		}
	}
	for _, s := range rep.Skipped {
		fmt.Printf("skipped: %s\n", s)
	}
	for _, s := range rep.Errors {
		fmt.Printf("ERROR: %s\n", s)
	}
	rep.Elapsed = time.Since(start)
	fmt.Printf("\ninsane-bench: done in %s\n", rep.Elapsed.Round(time.Second))
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	fmt.Printf("BENCH-JSON %s\n", b)
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%d runs failed their count checks (ERROR lines above)", len(rep.Errors))
	}
	return nil
}

// runRec is one throughput run.
type runRec struct {
	Case      string  `json:"case"`
	CPUs      int     `json:"cpus"`
	Source    string  `json:"source,omitempty"`
	Rep       int     `json:"rep"`
	PPS       float64 `json:"pps"`
	Sent      uint64  `json:"sent"`
	Delivered uint64  `json:"delivered"`
	Dropped   uint64  `json:"dropped"`
	// SendErrors counts the UDP source's failed sends.
	SendErrors uint64 `json:"send_errors,omitempty"`
}

// Traffic sources.
const (
	srcPktgen = "pktgen"
	srcUDP    = "udp"
)

// measure runs case d once with pktgen on ncpu devices, count packets each
// (0: for dur), and returns what it sent, what left low0 and what the tool
// counted as dropped.
//
// around, if not nil, is called right before pktgen starts, once the case
// is set up; the function it returns is called right after pktgen stops.
func measure(c *genl.Client, d dropper, ncpu int, count uint64, dur time.Duration, around func() (func() error, error)) (runRec, error) {
	return measureSrc(c, d, srcPktgen, ncpu, count, dur, around)
}

// measureSrc is measure with a choice of source: with srcUDP, one
// connected UDP socket sends for dur (count and ncpu are ignored).
func measureSrc(c *genl.Client, d dropper, src string, ncpu int, count uint64, dur time.Duration, around func() (func() error, error)) (runRec, error) {
	r := runRec{Case: d.key, CPUs: ncpu, Source: src}
	if err := d.setup(c); err != nil {
		return r, fmt.Errorf("(%s) setup: %w", d.key, err)
	}
	err := func() error {
		if src == srcPktgen {
			if err := (pktgen{}).configure(ncpu, count); err != nil {
				return err
			}
		}
		after := func() error { return nil }
		if around != nil {
			var err error
			if after, err = around(); err != nil {
				return err
			}
		}
		tx0, err := lowerTx()
		if err != nil {
			return err
		}
		dr0, err := d.dropped(c)
		if err != nil {
			return err
		}
		var sent, errs uint64
		var pps float64
		if src == srcUDP {
			sent, errs, pps, err = udpSend(dur)
		} else {
			sent, pps, err = pktgen{}.run(ncpu, dur)
		}
		if aerr := after(); err == nil {
			err = aerr
		}
		if err != nil {
			return err
		}
		// Let anything a qdisc still holds go out.
		time.Sleep(50 * time.Millisecond)
		tx1, err := lowerTx()
		if err != nil {
			return err
		}
		dr1, err := d.dropped(c)
		if err != nil {
			return err
		}
		r.Sent, r.PPS, r.Delivered, r.Dropped, r.SendErrors = sent, pps, tx1-tx0, dr1-dr0, errs
		return nil
	}()
	if terr := d.teardown(c); err == nil && terr != nil {
		err = fmt.Errorf("(%s) teardown: %w", d.key, terr)
	}
	return r, err
}

// throughput runs every case with every source and CPU count once per
// round, interleaved, so that a drift of the machine spreads over all.
func throughput(c *genl.Client, cs []dropper, sources []string, cpus []int, reps int, dur time.Duration) ([]runRec, error) {
	fmt.Printf("throughput: %d rounds of %d cases x sources %v x CPUs %v, %s each, interleaved ...\n", reps, len(cs), sources, cpus, dur)
	// Warm up caches, routes and the emulator's translated code.
	for _, src := range sources {
		for _, n := range cpus {
			if _, err := measureSrc(c, cs[0], src, n, 0, dur/2, nil); err != nil {
				return nil, err
			}
		}
	}
	var runs []runRec
	for rep := 0; rep < reps; rep++ {
		for _, src := range sources {
			for _, n := range cpus {
				for _, d := range cs {
					r, err := measureSrc(c, d, src, n, 0, dur, nil)
					if err != nil {
						return nil, err
					}
					r.Rep = rep
					runs = append(runs, r)
				}
			}
		}
		fmt.Printf("  round %d/%d done\n", rep+1, reps)
	}
	return runs, nil
}

// accRec is the loss one tool showed over a fixed number of packets.
type accRec struct {
	Case       string  `json:"case"`
	Configured float64 `json:"configured"`
	Sent       uint64  `json:"sent"`
	Delivered  uint64  `json:"delivered"`
	Dropped    uint64  `json:"tool_dropped"`
}

func accuracy(c *genl.Client, cs []dropper, count uint64) ([]accRec, error) {
	var out []accRec
	for _, d := range cs {
		if d.loss <= 0 && d.key != "d" {
			continue
		}
		r, err := measure(c, d, 1, count, 0, nil)
		if err != nil {
			return nil, err
		}
		conf := d.loss
		if d.key == "d" {
			conf = float64(timeOff) / float64(timeOn+timeOff)
		}
		out = append(out, accRec{Case: d.key, Configured: conf, Sent: r.Sent, Delivered: r.Delivered, Dropped: r.Dropped})
	}
	return out, nil
}
