package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"github.com/insane-netdev/insane/go/genl"
	"golang.org/x/sys/unix"
)

// Exact instruction counts per function (the calls phase, make
// bench-icount BENCHFLAGS='-phases calls').
//
// Under icount the guest's TSC advances by one tick per guest instruction
// and the kernel calibrates it at 1000.000 MHz, so sched_clock(), which
// function_graph reads at a traced function's entry and at its return,
// counts instructions. set_ftrace_filter limits the tracer to a chosen
// set of functions: only those are instrumented, so each traced call
// costs the same fixed tracer work whatever it calls.
//
// Tracing a function adds the same tracer work, total, to every call of
// it, wherever it is called. Part of it, self, falls between the call's
// two clock readings (the entry event written to the ring buffer, the way
// back from the trampoline into the function, the return trampoline up to
// its reading); the rest, out (the fentry call and the trampoline up to
// the first reading, the return event), falls outside the call's own
// duration but inside its traced parent's. With self counted so that a
// duration less self is what the call costs untraced (its fentry site, a
// 5-byte nop, included), a call with duration D, k traced calls directly
// inside it whose durations sum to Dk, and n traced calls inside it at
// any depth costs, untraced,
//
//	inclusive = D - self - n (self + out)
//	exclusive = D - Dk - self - k out
//
// Interrupts land inside whatever runs, and a traced run is several
// times longer per packet than an untraced one, so the traced runs hold
// several times more of them per packet. Their entry functions are traced
// too (irqFuncs); a traced call's inclusive cost leaves out the
// interrupts inside it (computed the same way), its exclusive cost leaves
// them out anyway (they are traced calls inside it), and they are counted
// on their own.
//
// The calibration takes total from the durations of a parent with and
// without one traced call inside it, and self from a function whose
// untraced cost is known from its code. Medians give the tracer's cost on
// a typical call; means add what the ring buffer's page changes cost on
// average, so the means use constants from means.

// callsFuncs are the functions traced in each case (those the kernel
// offers in available_filter_functions; the others are reported and
// left out). pktgen_xmit and __x64_sys_write mark one packet of each
// source.
var callsFuncs = []string{
	// the sources
	"pktgen_xmit", "pktgen_alloc_skb",
	"__x64_sys_write", "udp_sendmsg", "ip_make_skb", "udp_send_skb",
	// skb allocation, copies and frees
	"__alloc_skb", "skb_clone", "pskb_expand_head", "kfree_skb_reason", "consume_skb",
	// receive and forward (pktgen)
	"netif_receive_skb", "ip_rcv", "ip_rcv_finish", "ip_route_input_noref", "ip_forward",
	// IPv4 output
	"ip_local_out", "ip_output", "ip_finish_output2", "nf_hook_slow", "ip_route_output_flow",
	// device transmit
	"__dev_queue_xmit", "validate_xmit_skb", "dev_hard_start_xmit", "dummy_xmit",
	"insane_xmit", "insane_route_v4", "insane_policy_decide", "insane_dev_count_drops",
	"macvlan_start_xmit", "ipvlan_start_xmit", "ipvlan_process_v4_outbound",
	// qdisc, tc
	"tcf_classify", "netem_enqueue", "__qdisc_run",
}

// irqFuncs are the interrupt entry points traced in every run: the timer
// interrupt, the softirqs at interrupt exit or at local_bh_enable(), other
// device and irq_work interrupts. Calls inside them are counted with them.
var irqFuncs = []string{"__sysvec_apic_timer_interrupt", "irq_exit_rcu", "__do_softirq", "__common_interrupt", "__sysvec_irq_work"}

func isIrqFunc(fn string) bool {
	for _, f := range irqFuncs {
		if f == fn {
			return true
		}
	}
	return false
}

// The per-packet markers: one call per packet of each source.
const (
	markerPktgen = "pktgen_xmit"
	markerUDP    = "__x64_sys_write"
)

// calibFunc is the function whose cost the calibration knows: on a
// non-GSO packet insane_features_check executes its fentry site (a 5-byte
// nop untraced), 4 moves and tests, a taken branch and its return (objdump
// -d of insane.ko; the guest is not affected by retbleed or SRSO, so the
// kernel patches the return thunk jump into a plain ret): 7 instructions.
// checkFunc, insane_dev_count_drops, is straight-line code of 7 too (the
// fentry site, 5 moves and adds, the return); its median in (z) checks the
// calibration. calibParent and calibChild are the parent and the call
// inside it (once per packet in (b)) whose tracing measures total.
const (
	calibFunc   = "insane_features_check"
	calibCost   = 7
	checkFunc   = "insane_dev_count_drops"
	calibParent = "insane_xmit"
	calibChild  = "insane_route_v4"
)

// graphCall is one traced call: its duration (instructions under icount),
// the traced calls directly inside it and the sum of their durations, the
// traced calls inside it at any depth, and the interrupts inside it at any
// depth (outermost only): how many, their durations, the traced calls
// inside them.
type graphCall struct {
	d             int64
	kids          int
	kidsD         int64
	desc          int
	irqN, irqDesc int
	irqD          int64
}

// pathStat sums the calls of one call path (the traced functions from
// the marker down, joined by ";").
type pathStat struct {
	calls             int
	sumD, kidsD, irqD int64
	kids, desc        int
	irqN, irqDesc     int
}

func (p *pathStat) add(c graphCall) {
	p.calls++
	p.sumD += c.d
	p.kidsD += c.kidsD
	p.kids += c.kids
	p.desc += c.desc
	p.irqN += c.irqN
	p.irqD += c.irqD
	p.irqDesc += c.irqDesc
}

// graphStats is what one function_graph trace holds for one task: the
// calls of the kept packets (each marker call from the warm-th on, with
// everything traced inside it), by function and by call path.
type graphStats struct {
	packets int
	// pkts: the kept packets' calls, in the order each call returned.
	pkts []graphPacket
	// byFunc: every call of each function inside a kept packet, the
	// outermost interrupts included, not the calls inside them.
	byFunc map[string][]graphCall
	// order: functions and paths in the order they were first entered.
	funcOrder []string
	paths     map[string]*pathStat
	pathOrder []string
	// Calls of the task in no packet, and calls of other tasks, by
	// function; calls in the warm-up packets; calls inside interrupts
	// in the kept packets.
	outside, others map[string]int
	warmCalls       int
	inIrqCalls      int
	// taskCalls counts every call of the task, in any packet or none.
	taskCalls int
	// Lines that broke the nesting: a return without its call (the trace
	// began inside a traced function), a return naming another function
	// than the call it closes, events lost.
	unmatched, mismatched, lost int
}

type graphFrame struct {
	fn, path      string
	keep, warm    bool
	irq, inIrq    bool // an interrupt entry; inside one
	kids          int
	kidsD         int64
	desc          int
	irqN, irqDesc int
	irqD          int64
}

// graphLine is one parsed line of the function_graph output.
type graphLine struct {
	pid  int
	kind byte // '{' entry, '}' return, ';' leaf (entry and return)
	fn   string
	dur  int64 // -1 on an entry
}

// parseGraphLine reads one line of function_graph output with the
// options funcgraph-cpu, funcgraph-proc, funcgraph-duration and
// funcgraph-tail, and without funcgraph-overhead:
//
//  0. kpktgen-282   |               |  pktgen_xmit [pktgen]() {
//  0. kpktgen-282   |   1.234 us    |    pktgen_alloc_skb [pktgen]();
//  0. kpktgen-282   | + 12.345 us   |  } /* pktgen_xmit [pktgen] */
//
// ok is false for any other line (headers, context switches, interrupt
// arrows, blank).
func parseGraphLine(line string) (l graphLine, ok bool) {
	f := strings.SplitN(line, "|", 3)
	if len(f) != 3 {
		return l, false
	}
	// " 0)  kpktgen-282  ": the task is the last token, COMM-PID.
	cpuProc := strings.Fields(f[0])
	if len(cpuProc) < 2 || !strings.HasSuffix(cpuProc[0], ")") {
		return l, false
	}
	proc := cpuProc[len(cpuProc)-1]
	i := strings.LastIndexByte(proc, '-')
	if i < 0 {
		return l, false
	}
	pid, err := strconv.Atoi(proc[i+1:])
	if err != nil {
		return l, false
	}
	l.pid = pid
	l.dur = -1
	if ds := strings.TrimSpace(f[1]); ds != "" {
		d, err := parseGraphDuration(ds)
		if err != nil {
			return l, false
		}
		l.dur = d
	}
	fn := strings.TrimSpace(f[2])
	switch {
	case strings.HasSuffix(fn, "() {"):
		l.kind, fn = '{', strings.TrimSuffix(fn, "() {")
	case strings.HasSuffix(fn, "();"):
		l.kind, fn = ';', strings.TrimSuffix(fn, "();")
	case fn == "}":
		l.kind, fn = '}', ""
	case strings.HasPrefix(fn, "} /* ") && strings.HasSuffix(fn, " */"):
		l.kind, fn = '}', strings.TrimSuffix(strings.TrimPrefix(fn, "} /* "), " */")
	default:
		return l, false
	}
	if (l.kind == '{') != (l.dur < 0) {
		return l, false
	}
	// A module's function is printed "name [module]".
	if j := strings.IndexByte(fn, ' '); j >= 0 {
		fn = fn[:j]
	}
	l.fn = fn
	return l, true
}

// parseGraphDuration reads "1.234 us" (microseconds with up to 3
// decimals; the tracer prints fewer at and above 1000 us) into ns. A
// leading overhead mark ("+ ", "! ", ...) is skipped.
func parseGraphDuration(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if !strings.HasSuffix(s, " us") {
		return 0, fmt.Errorf("duration %q: no us", s)
	}
	s = strings.TrimSpace(strings.TrimSuffix(s, " us"))
	if k := strings.LastIndexByte(s, ' '); k >= 0 {
		s = s[k+1:]
	}
	us, frac, _ := strings.Cut(s, ".")
	u, err := strconv.ParseInt(us, 10, 64)
	if err != nil || len(frac) > 3 {
		return 0, fmt.Errorf("duration %q", s)
	}
	ns := int64(0)
	if frac != "" {
		n, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q", s)
		}
		for k := len(frac); k < 3; k++ {
			n *= 10
		}
		ns = n
	}
	return u*1000 + ns, nil
}

// parseGraph reads a function_graph trace and gathers the calls of task
// pid: each call of marker outermost in the task is one packet; the
// first warm packets are left out.
func parseGraph(r io.Reader, marker string, pid, warm int) (*graphStats, error) {
	g := &graphStats{
		outside: map[string]int{},
		others:  map[string]int{},
	}
	stacks := map[int][]*graphFrame{}
	var cur graphPacket
	markers := 0
	seenFunc, seenPath := map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "[LOST") {
			g.lost++
			continue
		}
		l, ok := parseGraphLine(line)
		if !ok {
			continue
		}
		st := stacks[l.pid]
		if l.kind == '{' || l.kind == ';' {
			fr := &graphFrame{fn: l.fn, irq: isIrqFunc(l.fn)}
			switch {
			case len(st) > 0:
				parent := st[len(st)-1]
				fr.keep, fr.warm = parent.keep, parent.warm
				fr.inIrq = parent.inIrq || parent.irq
				if fr.keep && !fr.inIrq && !fr.irq {
					fr.path = parent.path + ";" + l.fn
				}
			case l.pid == pid && l.fn == marker:
				fr.keep = markers >= warm
				fr.warm = !fr.keep
				fr.path = l.fn
				markers++
			}
			if fr.keep && !fr.inIrq && !seenFunc[l.fn] {
				seenFunc[l.fn] = true
				g.funcOrder = append(g.funcOrder, l.fn)
			}
			if fr.path != "" && !seenPath[fr.path] {
				seenPath[fr.path] = true
				g.pathOrder = append(g.pathOrder, fr.path)
			}
			st = append(st, fr)
			stacks[l.pid] = st
			if l.kind == '{' {
				continue
			}
		}
		if len(st) == 0 {
			g.unmatched++
			continue
		}
		fr := st[len(st)-1]
		st = st[:len(st)-1]
		stacks[l.pid] = st
		if l.fn != "" && l.fn != fr.fn {
			g.mismatched++
		}
		call := graphCall{d: l.dur, kids: fr.kids, kidsD: fr.kidsD, desc: fr.desc, irqN: fr.irqN, irqD: fr.irqD, irqDesc: fr.irqDesc}
		outerIrq := fr.irq && !fr.inIrq
		if len(st) > 0 {
			p := st[len(st)-1]
			p.kids++
			p.kidsD += l.dur
			p.desc += 1 + fr.desc
			if outerIrq {
				p.irqN++
				p.irqD += l.dur
				p.irqDesc += fr.desc
			} else if !fr.inIrq {
				p.irqN += fr.irqN
				p.irqD += fr.irqD
				p.irqDesc += fr.irqDesc
			}
		}
		if l.pid == pid {
			g.taskCalls++
		}
		switch {
		case fr.keep && fr.inIrq:
			g.inIrqCalls++
		case fr.keep:
			cur = append(cur, packetCall{fn: fr.fn, path: fr.path, c: call})
			if len(st) == 0 {
				g.pkts = append(g.pkts, cur)
				cur = nil
			}
		case fr.warm:
			g.warmCalls++
		case l.pid == pid:
			g.outside[fr.fn]++
		default:
			g.others[fr.fn]++
		}
	}
	g.index()
	return g, sc.Err()
}

// packetCall is one call in a kept packet; path is empty for an
// interrupt.
type packetCall struct {
	fn, path string
	c        graphCall
}

type graphPacket []packetCall

// has reports whether the packet called fn.
func (p graphPacket) has(fn string) bool {
	for _, c := range p {
		if c.fn == fn {
			return true
		}
	}
	return false
}

// index fills packets, byFunc and paths from pkts.
func (g *graphStats) index() {
	g.packets = len(g.pkts)
	g.byFunc = map[string][]graphCall{}
	g.paths = map[string]*pathStat{}
	for _, p := range g.pkts {
		for _, c := range p {
			g.byFunc[c.fn] = append(g.byFunc[c.fn], c.c)
			if c.path != "" {
				if g.paths[c.path] == nil {
					g.paths[c.path] = &pathStat{}
				}
				g.paths[c.path].add(c.c)
			}
		}
	}
}

// subset is the statistics of the packets for which keep is true.
func (g *graphStats) subset(keep func(graphPacket) bool) *graphStats {
	s := &graphStats{funcOrder: g.funcOrder, pathOrder: g.pathOrder}
	for _, p := range g.pkts {
		if keep(p) {
			s.pkts = append(s.pkts, p)
		}
	}
	s.index()
	return s
}

// tracerCost is the calibrated tracer work per traced call, in
// instructions: self inside the call's own duration, out outside it.
type tracerCost struct {
	self, out float64
}

func (o tracerCost) total() float64 { return o.self + o.out }

// untraced is what n traced calls with durations summing to d, holding
// desc traced calls, cost untraced.
func (o tracerCost) untraced(n int, d int64, desc int) float64 {
	return float64(d) - float64(n)*o.self - float64(desc)*o.total()
}

// inclusive is a call's untraced cost without the interrupts inside it.
func (o tracerCost) inclusive(c graphCall) float64 {
	return o.untraced(1, c.d, c.desc) - o.untraced(c.irqN, c.irqD, c.irqDesc)
}

// exclusive is a call's untraced cost without the traced calls and the
// interrupts inside it.
func (o tracerCost) exclusive(c graphCall) float64 {
	return float64(c.d-c.kidsD) - o.self - float64(c.kids)*o.out
}

// noIrq is a call's duration less what the interrupts inside it added.
func (o tracerCost) noIrq(c graphCall) float64 {
	return float64(c.d-c.irqD) - float64(c.irqN)*o.out
}

// funcRow is one function's figures in one case: calls per packet,
// median and mean instructions per call (inclusive: with everything it
// calls), the median exclusive instructions per call and the mean
// exclusive instructions per packet (without the traced functions it
// calls). For an interrupt entry, exclusive is its inclusive.
type funcRow struct {
	fn                   string
	irq                  bool
	perPkt, median, mean float64
	exclMed, exclPkt     float64
}

// funcRows uses med for the medians and mean for the means.
func (g *graphStats) funcRows(med, mean tracerCost) []funcRow {
	var rows []funcRow
	for _, fn := range g.funcOrder {
		cs := g.byFunc[fn]
		if len(cs) == 0 {
			continue
		}
		irq := isIrqFunc(fn)
		inclMed := make([]float64, len(cs))
		exclMed := make([]float64, len(cs))
		var sum, excl float64
		for i, c := range cs {
			inclMed[i] = med.inclusive(c)
			exclMed[i] = med.exclusive(c)
			in := mean.inclusive(c)
			sum += in
			if irq {
				excl += in
				exclMed[i] = inclMed[i]
			} else {
				excl += mean.exclusive(c)
			}
		}
		sort.Float64s(inclMed)
		sort.Float64s(exclMed)
		rows = append(rows, funcRow{
			fn:      fn,
			irq:     irq,
			perPkt:  float64(len(cs)) / float64(g.packets),
			median:  medianSorted(inclMed),
			mean:    sum / float64(len(cs)),
			exclMed: medianSorted(exclMed),
			exclPkt: excl / float64(g.packets),
		})
	}
	return rows
}

func medianSorted(s []float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pathRow is one call path's figures per packet, interrupts left out.
type pathRow struct {
	path                  string
	depth                 int
	perPkt, inclPkt, excl float64
}

// pathRows returns the call tree in depth-first order (children in the
// order they were first entered).
func (g *graphStats) pathRows(o tracerCost) []pathRow {
	children := map[string][]string{}
	var roots []string
	for _, p := range g.pathOrder {
		if g.paths[p] == nil {
			continue
		}
		if i := strings.LastIndexByte(p, ';'); i >= 0 {
			children[p[:i]] = append(children[p[:i]], p)
		} else {
			roots = append(roots, p)
		}
	}
	var rows []pathRow
	n := float64(g.packets)
	var walk func(p string, depth int)
	walk = func(p string, depth int) {
		s := g.paths[p]
		rows = append(rows, pathRow{
			path:    p,
			depth:   depth,
			perPkt:  float64(s.calls) / n,
			inclPkt: (o.untraced(s.calls, s.sumD, s.desc) - o.untraced(s.irqN, s.irqD, s.irqDesc)) / n,
			excl:    (float64(s.sumD-s.kidsD) - float64(s.calls)*o.self - float64(s.kids)*o.out) / n,
		})
		for _, c := range children[p] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return rows
}

// durations are fn's durations less the interrupts inside them (o's out
// for each interrupt's own tracing; it weighs little, interrupts are
// rare), sorted.
func (g *graphStats) durations(fn string, o tracerCost) []float64 {
	cs := g.byFunc[fn]
	v := make([]float64, len(cs))
	for i, c := range cs {
		v[i] = o.noIrq(c)
	}
	sort.Float64s(v)
	return v
}

func meanOf(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// irqPerPacket is the interrupts' untraced cost per packet in the trace.
func (g *graphStats) irqPerPacket(o tracerCost) float64 {
	var s float64
	for _, fn := range irqFuncs {
		for _, c := range g.byFunc[fn] {
			s += o.inclusive(c)
		}
	}
	return s / float64(g.packets)
}

// ---- in the guest ----

// ftraceFuncs returns the functions of want that the kernel can trace,
// and those it cannot.
func ftraceFuncs(want []string) (have, missing []string, err error) {
	f, err := os.Open(filepath.Join(tracing, "available_filter_functions"))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	avail := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 0 {
			avail[fs[0]] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	for _, fn := range want {
		if avail[fn] {
			have = append(have, fn)
		} else {
			missing = append(missing, fn)
		}
	}
	return have, missing, nil
}

// graphOptions are the function_graph options the parser expects.
var graphOptions = map[string]string{
	"funcgraph-cpu": "1", "funcgraph-proc": "1", "funcgraph-duration": "1",
	"funcgraph-tail": "1", "funcgraph-overhead": "0", "funcgraph-abstime": "0",
	"funcgraph-overrun": "0", "funcgraph-irqs": "1", "sleep-time": "1",
	"context-info": "1", "overwrite": "0",
}

func tr(file, v string) error {
	if err := writeFile(filepath.Join(tracing, file), v); err != nil {
		return fmt.Errorf("tracefs %s: %w", file, err)
	}
	return nil
}

// graphStart sets function_graph on exactly funcs and starts recording.
func graphStart(funcs []string) error {
	steps := [][2]string{
		{"tracing_on", "0"},
		{"current_tracer", "nop"},
		{"set_ftrace_pid", ""},
		{"set_graph_function", ""},
		{"set_ftrace_filter", strings.Join(funcs, " ")},
		{"buffer_size_kb", "65536"},
	}
	for opt, v := range graphOptions {
		steps = append(steps, [2]string{"options/" + opt, v})
	}
	steps = append(steps, [][2]string{
		{"current_tracer", "function_graph"},
		{"trace", ""},
		{"tracing_on", "1"},
	}...)
	for _, s := range steps {
		if err := tr(s[0], s[1]); err != nil {
			return err
		}
	}
	return nil
}

// graphStop stops recording and checks that the ring buffer kept every
// event.
func graphStop() error {
	if err := tr("tracing_on", "0"); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(tracing, "per_cpu/cpu0/stats"))
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || (k != "overrun" && k != "dropped events") {
			continue
		}
		if n, _ := strconv.Atoi(strings.TrimSpace(v)); n != 0 {
			return fmt.Errorf("trace ring buffer: %s %d (events lost)", k, n)
		}
	}
	return nil
}

// graphReset puts tracefs back as it was: no tracer, no filter, an empty
// buffer of the kernel's default size.
func graphReset() error {
	for _, s := range [][2]string{{"tracing_on", "0"}, {"current_tracer", "nop"}, {"set_ftrace_filter", ""}, {"trace", ""}, {"buffer_size_kb", "1408"}} {
		if err := tr(s[0], s[1]); err != nil {
			return err
		}
	}
	return nil
}

func readGraph(marker string, pid, warm int) (*graphStats, error) {
	f, err := os.Open(filepath.Join(tracing, "trace"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseGraph(f, marker, pid, warm)
}

// udpCount sends n datagrams on a connected UDP socket, as udpSend does,
// and returns the sending thread's id, the failed sends and the guest
// instructions (ns) per send. start, if not nil, runs on the sending
// thread right before the first send.
func udpCount(n int, start func() error) (tid int, errs int, ipp float64, err error) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return 0, 0, 0, err
	}
	defer unix.Close(s)
	if err := unix.Connect(s, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{10, 2, 0, 2}}); err != nil {
		return 0, 0, 0, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid = unix.Gettid()
	buf := make([]byte, 64)
	p, l := uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf))
	if start != nil {
		if err := start(); err != nil {
			return 0, 0, 0, err
		}
	}
	t0 := mono()
	for i := 0; i < n; i++ {
		if _, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(s), p, l); e != 0 {
			errs++
		}
	}
	t1 := mono()
	return tid, errs, float64(t1-t0) / float64(n), nil
}

// sourceRun sends n packets of src through the case already set up, with
// start called right before the first, and returns the task that sent
// them and the instructions per packet (1e9 / pps under icount).
func sourceRun(src string, n int, start func() error) (pid int, ipp float64, err error) {
	if src == srcUDP {
		pid, errs, ipp, err := udpCount(n, start)
		if err == nil && errs > 0 {
			err = fmt.Errorf("udp: %d of %d sends failed", errs, n)
		}
		return pid, ipp, err
	}
	if err := (pktgen{}).configure(1, uint64(n)); err != nil {
		return 0, 0, err
	}
	if pid, err = threadPID("kpktgend_0"); err != nil {
		return 0, 0, err
	}
	if start != nil {
		if err := start(); err != nil {
			return 0, 0, err
		}
	}
	sent, pps, err := pktgen{}.run(1, 0)
	if err != nil {
		return 0, 0, err
	}
	if sent != uint64(n) {
		return 0, 0, fmt.Errorf("pktgen sent %d of %d", sent, n)
	}
	return pid, 1e9 / pps, nil
}

func markerOf(src string) string {
	if src == srcUDP {
		return markerUDP
	}
	return markerPktgen
}

// traceRun sends warm + n packets of src with funcs traced and returns
// the trace of the n after the warm-up, and the instructions per packet
// of the whole traced run.
func traceRun(src string, funcs []string, n, warm int) (*graphStats, float64, error) {
	pid, ipp, err := sourceRun(src, warm+n, func() error { return graphStart(funcs) })
	if serr := graphStop(); err == nil {
		err = serr
	}
	if err != nil {
		graphReset()
		return nil, 0, err
	}
	g, err := readGraph(markerOf(src), pid, warm)
	if rerr := graphReset(); err == nil {
		err = rerr
	}
	if err != nil {
		return nil, 0, err
	}
	if g.packets != n || g.unmatched > 0 || g.mismatched > 0 || g.lost > 0 {
		return nil, 0, fmt.Errorf("trace: %d of %d packets, %d unmatched returns, %d mismatched, %d lost", g.packets, n, g.unmatched, g.mismatched, g.lost)
	}
	return g, ipp, nil
}

// calibration is what the tracer costs, measured in case (b), pktgen.
type calibration struct {
	n                int
	ipp0, ipp1, ipp2 float64 // rates: untraced; traced; with calibChild traced too
	// Durations less interrupts, median and mean: calibParent without
	// (p1) and with (p2) calibChild traced; calibFunc (fc).
	p1Med, p2Med, fcMed    float64
	p1Mean, p2Mean, fcMean float64
	med, mean              tracerCost
}

func calibrate(c *genl.Client, d dropper, n, warm int) (calibration, error) {
	cal := calibration{n: n}
	if err := d.setup(c); err != nil {
		return cal, err
	}
	err := func() error {
		var err error
		if _, cal.ipp0, err = sourceRun(srcPktgen, warm+n, nil); err != nil {
			return err
		}
		base := append([]string{markerPktgen, calibParent, calibFunc}, irqFuncs...)
		g1, ipp1, err := traceRun(srcPktgen, base, n, warm)
		if err != nil {
			return err
		}
		g2, ipp2, err := traceRun(srcPktgen, append(base, calibChild), n, warm)
		if err != nil {
			return err
		}
		for _, g := range []*graphStats{g1, g2} {
			if len(g.byFunc[calibFunc]) != n || len(g.byFunc[calibParent]) != n {
				return fmt.Errorf("calibration: %d calls of %s and %d of %s in %d packets", len(g.byFunc[calibFunc]), calibFunc, len(g.byFunc[calibParent]), calibParent, n)
			}
		}
		if len(g2.byFunc[calibChild]) != n {
			return fmt.Errorf("calibration: %d calls of %s in %d packets", len(g2.byFunc[calibChild]), calibChild, n)
		}
		cal.ipp1, cal.ipp2 = ipp1, ipp2
		// The interrupts' own tracing is corrected with a first
		// estimate of out (half of total): it weighs a fraction of an
		// instruction per call.
		est := tracerCost{self: 660, out: 660}
		for i := 0; i < 2; i++ {
			p1, p2, fc := g1.durations(calibParent, est), g2.durations(calibParent, est), g2.durations(calibFunc, est)
			cal.p1Med, cal.p2Med, cal.fcMed = medianSorted(p1), medianSorted(p2), medianSorted(fc)
			cal.p1Mean, cal.p2Mean, cal.fcMean = meanOf(p1), meanOf(p2), meanOf(fc)
			// calibChild traced adds total to its parent's duration;
			// calibFunc's duration is its known cost and self.
			cal.med = tracerCost{self: cal.fcMed - calibCost, out: cal.p2Med - cal.p1Med - (cal.fcMed - calibCost)}
			cal.mean = tracerCost{self: cal.fcMean - calibCost, out: cal.p2Mean - cal.p1Mean - (cal.fcMean - calibCost)}
			est = cal.mean
		}
		return nil
	}()
	if terr := d.teardown(c); err == nil {
		err = terr
	}
	return cal, err
}

// callsRec is one case and source: the untraced rate, the traced run's
// rate and its trace.
type callsRec struct {
	key, name, src string
	ipp0, ippT     float64
	// relayed0: the share of the untraced run's packets that left low0.
	relayed0 float64
	g        *graphStats
}

// delivered reports whether a packet left low0 (dummy_xmit ran for it).
func delivered(p graphPacket) bool { return p.has("dummy_xmit") }

func callsPhase(c *genl.Client, cs []dropper, o *options, sources []string) error {
	if err := mountTracing(); err != nil {
		return fmt.Errorf("tracefs: %w", err)
	}
	if !underIcount() {
		fmt.Println("calls: NOT under icount: durations are guest ns, not instructions")
	}
	set := callsFuncs
	if o.callsFuncs != "" {
		set = strings.Split(o.callsFuncs, ",")
	}
	want := append(append(append([]string(nil), set...), irqFuncs...), calibFunc)
	have, missing, err := ftraceFuncs(want)
	if err != nil {
		return err
	}
	var funcs []string
	for _, fn := range have {
		if fn != calibFunc {
			funcs = append(funcs, fn)
		}
	}
	for _, fn := range append(irqFuncs, calibFunc, calibParent, calibChild, markerPktgen, markerUDP) {
		for _, m := range missing {
			if fn == m {
				return fmt.Errorf("calls: %s is not traceable in this kernel", fn)
			}
		}
	}
	var sel []dropper
	pick := map[string]bool{}
	for _, k := range strings.Split(o.callsCases, ",") {
		pick[k] = true
	}
	var b *dropper
	for i, d := range cs {
		if d.key == "b" {
			b = &cs[i]
		}
		if o.callsCases == "" || pick[d.key] {
			sel = append(sel, d)
		}
	}
	if b == nil {
		return errors.New("calls: the calibration needs case (b)")
	}
	fmt.Printf("calls: function_graph on %d functions (%d interrupt entries among them), %d packets per case and source after %d warm-up; untraced rates and calibration over %d packets\n", len(funcs), len(irqFuncs), o.callsCount, o.callsWarm, o.callsRateCount)
	if len(missing) > 0 {
		fmt.Printf("calls: not traceable in this kernel, left out: %s\n", strings.Join(missing, ", "))
	}
	cal, err := calibrate(c, *b, o.callsRateCount, o.callsWarm)
	if err != nil {
		return fmt.Errorf("calls: calibration: %w", err)
	}
	printCalibration(cal)
	var recs []callsRec
	for _, src := range sources {
		for _, d := range sel {
			r := callsRec{key: d.key, name: d.name, src: src}
			if err := d.setup(c); err != nil {
				return fmt.Errorf("(%s) setup: %w", d.key, err)
			}
			err := func() error {
				tx0, err := lowerTx()
				if err != nil {
					return err
				}
				if _, r.ipp0, err = sourceRun(src, o.callsRateCount, nil); err != nil {
					return err
				}
				tx1, err := lowerTx()
				if err != nil {
					return err
				}
				r.relayed0 = float64(tx1-tx0) / float64(o.callsRateCount)
				r.g, r.ippT, err = traceRun(src, funcs, o.callsCount, o.callsWarm)
				return err
			}()
			if terr := d.teardown(c); err == nil {
				err = terr
			}
			if err != nil {
				return fmt.Errorf("calls (%s) %s: %w", d.key, src, err)
			}
			recs = append(recs, r)
			fmt.Printf("  calls: (%s) %s done\n", d.key, src)
		}
	}
	printCalls(recs, cal, o.callsCount, o.callsWarm)
	return nil
}

// ---- output ----

func printCalibration(cal calibration) {
	fmt.Printf("\n#### Tracer calibration: case (b), pktgen, %d packets per run; durations less the interrupts inside them\n\n", cal.n)
	fmt.Println("| run | instructions per packet (rate) | " + calibParent + " duration, median | mean | " + calibFunc + " duration, median | mean |")
	fmt.Println("|---|---|---|---|---|---|")
	fmt.Printf("| untraced | %.1f | | | | |\n", cal.ipp0)
	fmt.Printf("| %s, %s, %s and the interrupt entries traced | %.1f | %.0f | %.1f | | |\n", markerPktgen, calibParent, calibFunc, cal.ipp1, cal.p1Med, cal.p1Mean)
	fmt.Printf("| the same and %s | %.1f | %.0f | %.1f | %.0f | %.2f |\n", calibChild, cal.ipp2, cal.p2Med, cal.p2Mean, cal.fcMed, cal.fcMean)
	fmt.Println()
	fmt.Printf("- one traced call costs total = %.1f instructions on a typical call (medians: %s's duration grows by that when %s, inside it, is traced); %.1f on average (means); the rates say %.1f\n",
		cal.med.total(), calibParent, calibChild, cal.mean.total(), cal.ipp2-cal.ipp1)
	fmt.Printf("- self = %.1f (median; mean %.1f) inside the call's own duration: %s's duration less its %d instructions; out = %.1f (mean %.1f) outside it\n",
		cal.med.self, cal.mean.self, calibFunc, calibCost, cal.med.out, cal.mean.out)
	fmt.Printf("- check: %s, %d instructions by its code, in case (z) below\n\n", checkFunc, calibCost)
}

func printCalls(recs []callsRec, cal calibration, n, warm int) {
	bySrc := map[string][]callsRec{}
	var srcs []string
	for _, r := range recs {
		if bySrc[r.src] == nil {
			srcs = append(srcs, r.src)
		}
		bySrc[r.src] = append(bySrc[r.src], r)
	}
	for _, src := range srcs {
		rs := bySrc[src]
		marker := markerOf(src)
		// The functions of every case, in the order they first ran,
		// the interrupts last.
		var order, irqs []string
		seen := map[string]bool{}
		for _, r := range rs {
			for _, fn := range r.g.funcOrder {
				if !seen[fn] {
					seen[fn] = true
					if isIrqFunc(fn) {
						irqs = append(irqs, fn)
					} else {
						order = append(order, fn)
					}
				}
			}
		}
		fmt.Printf("\n#### Exclusive instructions per packet by function, %s source (function_graph under icount, %d packets after %d; tracer cost removed, means: self %.1f, out %.1f)\n\n", src, n, warm, cal.mean.self, cal.mean.out)
		fmt.Println("Each function's own instructions per packet (mean), without the traced functions it calls and without interrupts; calls per packet in brackets when not 1. Interrupts: what they cost per packet in the traced run, which is several times longer per packet than an untraced one.")
		fmt.Println()
		hdr, sep := "| function |", "|---|"
		for _, r := range rs {
			hdr += fmt.Sprintf(" (%s) |", r.key)
			sep += "---|"
		}
		fmt.Println(hdr)
		fmt.Println(sep)
		rows := make([]map[string]funcRow, len(rs))
		for i, r := range rs {
			rows[i] = map[string]funcRow{}
			for _, fr := range r.g.funcRows(cal.med, cal.mean) {
				rows[i][fr.fn] = fr
			}
		}
		line := func(label string, f func(i int, r callsRec) string) {
			l := "| " + label + " |"
			for i, r := range rs {
				l += " " + f(i, r) + " |"
			}
			fmt.Println(l)
		}
		cell := func(fr funcRow, ok bool) string {
			switch {
			case !ok:
				return ""
			case math.Abs(fr.perPkt-1) < 0.0005:
				return fmt.Sprintf("%.0f", fr.exclPkt)
			default:
				return fmt.Sprintf("%.0f (%.3g)", fr.exclPkt, fr.perPkt)
			}
		}
		for _, fn := range order {
			line(fn, func(i int, _ callsRec) string { fr, ok := rows[i][fn]; return cell(fr, ok) })
		}
		line("**traced total** ("+marker+" inclusive, no interrupts)", func(i int, _ callsRec) string {
			return fmt.Sprintf("**%.0f**", rows[i][marker].mean)
		})
		line("untraced, from the rate", func(_ int, r callsRec) string { return fmt.Sprintf("%.0f", r.ipp0) })
		line("outside "+marker+" and interrupts (rate - traced total)", func(i int, r callsRec) string {
			return fmt.Sprintf("%.0f", r.ipp0-rows[i][marker].mean)
		})
		for _, fn := range irqs {
			line("interrupts: "+fn+", in the traced run", func(i int, _ callsRec) string { fr, ok := rows[i][fn]; return cell(fr, ok) })
		}
		line("interrupts in the traced run, scaled to the untraced run's length", func(_ int, r callsRec) string {
			return fmt.Sprintf("%.0f", r.g.irqPerPacket(cal.mean)*r.ipp0/r.ippT)
		})
		line("check: traced run - untraced, per packet", func(_ int, r callsRec) string { return fmt.Sprintf("%.0f", r.ippT-r.ipp0) })
		line("check: traced calls x total (mean)", func(_ int, r callsRec) string {
			return fmt.Sprintf("%.0f", float64(r.g.taskCalls)/float64(n+warm)*cal.mean.total())
		})
		fmt.Println()
		printSplit(rs, cal, marker)
		for _, r := range rs {
			printCallsCase(r, cal)
		}
	}
}

// printSplit prints the cases that relayed some packets and dropped
// others with the two kinds of packet apart: their traced totals, the
// total at the untraced run's relayed share (against its rate) and at
// 50 %, and each function's exclusive instructions per packet of each
// kind.
func printSplit(rs []callsRec, cal calibration, marker string) {
	type half struct {
		r                  callsRec
		rel, drop          *graphStats
		relRows, dropRows  map[string]funcRow
		share, relT, dropT float64
	}
	var hs []half
	for _, r := range rs {
		rel, drop := r.g.subset(delivered), r.g.subset(func(p graphPacket) bool { return !delivered(p) })
		if rel.packets == 0 || drop.packets == 0 {
			continue
		}
		h := half{r: r, rel: rel, drop: drop, relRows: map[string]funcRow{}, dropRows: map[string]funcRow{}}
		for _, f := range rel.funcRows(cal.med, cal.mean) {
			h.relRows[f.fn] = f
		}
		for _, f := range drop.funcRows(cal.med, cal.mean) {
			h.dropRows[f.fn] = f
		}
		h.share = float64(rel.packets) / float64(r.g.packets)
		h.relT, h.dropT = h.relRows[marker].mean, h.dropRows[marker].mean
		hs = append(hs, h)
	}
	if len(hs) == 0 {
		return
	}
	fmt.Printf("\n#### Relayed and dropped packets apart, %s source (traced totals: %s inclusive, no interrupts)\n\n", hs[0].r.src, marker)
	fmt.Println("| case | relayed, traced packets | relayed, untraced run | per relayed packet | per dropped packet | at the untraced run's share | untraced rate | rate - that | at 50 % |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, h := range hs {
		at := h.r.relayed0*h.relT + (1-h.r.relayed0)*h.dropT
		fmt.Printf("| (%s) %s | %.1f %% | %.1f %% | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", h.r.key, h.r.name, 100*h.share, 100*h.r.relayed0, h.relT, h.dropT, at, h.r.ipp0, h.r.ipp0-at, (h.relT+h.dropT)/2)
	}
	fmt.Println()
	var order []string
	seen := map[string]bool{}
	for _, h := range hs {
		for _, fn := range h.r.g.funcOrder {
			if !seen[fn] && !isIrqFunc(fn) {
				seen[fn] = true
				order = append(order, fn)
			}
		}
	}
	hdr, sep := "| function (exclusive per packet of the kind) |", "|---|"
	for _, h := range hs {
		hdr += fmt.Sprintf(" (%s) relayed | (%s) dropped |", h.r.key, h.r.key)
		sep += "---|---|"
	}
	fmt.Println(hdr)
	fmt.Println(sep)
	for _, fn := range order {
		l := "| " + fn + " |"
		for _, h := range hs {
			for _, m := range []map[string]funcRow{h.relRows, h.dropRows} {
				if f, ok := m[fn]; ok {
					l += fmt.Sprintf(" %.0f |", f.exclPkt)
				} else {
					l += " |"
				}
			}
		}
		fmt.Println(l)
	}
	fmt.Println()
}

func printCallsCase(r callsRec, cal calibration) {
	fmt.Printf("\n##### (%s) %s, %s: %d packets\n\n", r.key, r.name, r.src, r.g.packets)
	fmt.Println("| call path (traced functions only, no interrupts) | calls per packet | inclusive per call, mean | inclusive per packet | exclusive per packet |")
	fmt.Println("|---|---|---|---|---|")
	for _, p := range r.g.pathRows(cal.mean) {
		fn := p.path[strings.LastIndexByte(p.path, ';')+1:]
		fmt.Printf("| %s%s | %.3g | %.0f | %.0f | %.0f |\n", strings.Repeat("· ", p.depth), fn, p.perPkt, p.inclPkt/p.perPkt, p.inclPkt, p.excl)
	}
	fmt.Println()
	fmt.Println("| function | calls per packet | inclusive per call, median | mean | exclusive per call, median | exclusive per packet, mean |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, f := range r.g.funcRows(cal.med, cal.mean) {
		fmt.Printf("| %s | %.3g | %.0f | %.1f | %.0f | %.1f |\n", f.fn, f.perPkt, f.median, f.mean, f.exclMed, f.exclPkt)
	}
	fmt.Printf("\nTraced calls of the task outside any packet: %s; in other tasks: %s; inside interrupts: %d\n", countList(r.g.outside), countList(r.g.others), r.g.inIrqCalls)
}

func countList(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
