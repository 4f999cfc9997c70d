// Command insane-bench measures insane in the test VM (make bench): the
// packet rate through the lower device alone, through insane in each mode,
// and through netem, tc gact and nftables dropping the same share; how close
// each tool's loss is to what it was configured for; how precisely time mode
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
	count      uint64
	allocCount uint64
	devices    int
	edgeDur    time.Duration
	edgeOn     time.Duration
	edgeOff    time.Duration
	phases     string
	render     string
	svg        string
}

func main() {
	var o options
	flag.IntVar(&o.reps, "reps", 7, "throughput: runs of each case and CPU count, interleaved")
	flag.DurationVar(&o.dur, "dur", 3*time.Second, "throughput: length of each run")
	flag.Uint64Var(&o.count, "count", 100000, "loss accuracy: packets per tool")
	flag.Uint64Var(&o.allocCount, "alloc-count", 20000, "allocations: packets per case")
	flag.IntVar(&o.devices, "devices", 1000, "memory: devices created of each kind")
	flag.DurationVar(&o.edgeDur, "edge-dur", 3*time.Second, "time-mode edges: how long to send")
	flag.DurationVar(&o.edgeOn, "edge-on", 20*time.Millisecond, "time-mode edges: ON window")
	flag.DurationVar(&o.edgeOff, "edge-off", 20*time.Millisecond, "time-mode edges: OFF window")
	flag.StringVar(&o.phases, "phases", "tput,acc,alloc,edge,mem", "phases to run")
	flag.StringVar(&o.render, "render", "", "host: read the BENCH-JSON line from this guest log and draw -svg")
	flag.StringVar(&o.svg, "svg", "build/benchmarks.svg", "with -render: the SVG file to write")
	flag.Parse()

	if o.render != "" {
		if err := render(o.render, o.svg); err != nil {
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

// report is everything one run measured; it is printed as BENCH-JSON.
type report struct {
	Kernel     string        `json:"kernel"`
	CPUs       int           `json:"cpus"`
	Reps       int           `json:"reps"`
	RunSeconds float64       `json:"run_seconds"`
	Cases      []caseInfo    `json:"cases"`
	Runs       []runRec      `json:"runs,omitempty"`
	Accuracy   []accRec      `json:"accuracy,omitempty"`
	Allocs     []allocRec    `json:"allocs,omitempty"`
	Edges      *edgeResult   `json:"edges,omitempty"`
	Memory     []memRec      `json:"memory,omitempty"`
	Skipped    []string      `json:"skipped,omitempty"`
	Elapsed    time.Duration `json:"elapsed_ns"`
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
	rep := report{Kernel: strings.TrimSpace(uname), CPUs: ncpu, Reps: o.reps, RunSeconds: o.dur.Seconds()}
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
	fmt.Printf("insane-bench: kernel %s, %d CPUs, QEMU TCG\n\n", rep.Kernel, ncpu)

	if phase("tput") {
		if rep.Runs, err = throughput(c, cs, o); err != nil {
			return err
		}
		printThroughput(&rep)
	}
	if phase("acc") {
		if rep.Accuracy, err = accuracy(c, cs, o.count); err != nil {
			return err
		}
		printAccuracy(rep.Accuracy, o.count)
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
	if phase("mem") {
		if rep.Memory, err = memory(o.devices); err != nil {
			return err
		}
		printMemory(rep.Memory, o.devices)
	}
	for _, s := range rep.Skipped {
		fmt.Printf("skipped: %s\n", s)
	}
	rep.Elapsed = time.Since(start)
	fmt.Printf("\ninsane-bench: done in %s\n", rep.Elapsed.Round(time.Second))
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	fmt.Printf("BENCH-JSON %s\n", b)
	return nil
}

// runRec is one throughput run.
type runRec struct {
	Case      string  `json:"case"`
	CPUs      int     `json:"cpus"`
	Rep       int     `json:"rep"`
	PPS       float64 `json:"pps"`
	Sent      uint64  `json:"sent"`
	Delivered uint64  `json:"delivered"`
	Dropped   uint64  `json:"dropped"`
}

// measure runs case d once with pktgen on ncpu devices, count packets each
// (0: for dur), and returns what it sent, what left low0 and what the tool
// counted as dropped.
//
// around, if not nil, is called right before pktgen starts, once the case
// is set up; the function it returns is called right after pktgen stops.
func measure(c *genl.Client, d dropper, ncpu int, count uint64, dur time.Duration, around func() (func() error, error)) (runRec, error) {
	r := runRec{Case: d.key, CPUs: ncpu}
	if err := d.setup(c); err != nil {
		return r, fmt.Errorf("(%s) setup: %w", d.key, err)
	}
	err := func() error {
		if err := (pktgen{}).configure(ncpu, count); err != nil {
			return err
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
		sent, pps, err := pktgen{}.run(ncpu, dur)
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
		r.Sent, r.PPS, r.Delivered, r.Dropped = sent, pps, tx1-tx0, dr1-dr0
		return nil
	}()
	if terr := d.teardown(c); err == nil && terr != nil {
		err = fmt.Errorf("(%s) teardown: %w", d.key, terr)
	}
	return r, err
}

func throughput(c *genl.Client, cs []dropper, o *options) ([]runRec, error) {
	fmt.Printf("throughput: %d rounds of %d cases x {1, 2} CPUs, %s each, interleaved ...\n", o.reps, len(cs), o.dur)
	// Warm up caches, routes and the emulator's translated code.
	for _, n := range []int{1, 2} {
		if _, err := measure(c, cs[0], n, 0, time.Second, nil); err != nil {
			return nil, err
		}
	}
	var runs []runRec
	for rep := 0; rep < o.reps; rep++ {
		for _, n := range []int{1, 2} {
			for _, d := range cs {
				r, err := measure(c, d, n, 0, o.dur, nil)
				if err != nil {
					return nil, err
				}
				r.Rep = rep
				runs = append(runs, r)
			}
		}
		fmt.Printf("  round %d/%d done\n", rep+1, o.reps)
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
		if d.key == "a" || d.key == "b" {
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
