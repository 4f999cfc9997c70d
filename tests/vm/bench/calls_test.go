package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestParseGraphLine(t *testing.T) {
	for _, c := range []struct {
		line string
		ok   bool
		want graphLine
	}{
		{" 0)  kpktgen-106   |               |  pktgen_xmit [pktgen]() {", true, graphLine{106, '{', "pktgen_xmit", -1}},
		{" 0)  kpktgen-106   |   0.666 us    |    kfree_skb_reason();", true, graphLine{106, ';', "kfree_skb_reason", 666}},
		{" 0)  kpktgen-106   |   2.275 us    |              } /* dummy_xmit [dummy] */", true, graphLine{106, '}', "dummy_xmit", 2275}},
		{" 0)  kpktgen-106   |   11.996 us   |      } /* __dev_queue_xmit */", true, graphLine{106, '}', "__dev_queue_xmit", 11996}},
		{" 0)  kpktgen-106   |   7.283 us    |        }", true, graphLine{106, '}', "", 7283}},
		// At and above 1000 us the tracer prints fewer decimals.
		{" 0)  kpktgen-106   |   1234.56 us  |  } /* pktgen_xmit [pktgen] */", true, graphLine{106, '}', "pktgen_xmit", 1234560}},
		{" 0)  kpktgen-106   |   123456.7 us |  }", true, graphLine{106, '}', "", 123456700}},
		// An overhead mark, if the option is on.
		{" 0)  kpktgen-106   | + 12.345 us   |  }", true, graphLine{106, '}', "", 12345}},
		{" 0)  insane--77    |   0.700 us    |  ip_rcv_finish_core.constprop.0();", true, graphLine{77, ';', "ip_rcv_finish_core.constprop.0", 700}},
		{" 0)   <idle>-0     |   0.700 us    |  consume_skb();", true, graphLine{0, ';', "consume_skb", 700}},
		{"# tracer: function_graph", false, graphLine{}},
		{"# CPU  TASK/PID         DURATION                  FUNCTION CALLS", false, graphLine{}},
		{"# |     |    |           |   |                     |   |   |   |", false, graphLine{}},
		{" ------------------------------------------", false, graphLine{}},
		{" 0)  kpktgen-106   =>  insane--77   ", false, graphLine{}},
		{"", false, graphLine{}},
		// An entry has no duration, a return has one.
		{" 0)  kpktgen-106   |   1.000 us    |  pktgen_xmit() {", false, graphLine{}},
		{" 0)  kpktgen-106   |               |  }", false, graphLine{}},
	} {
		got, ok := parseGraphLine(c.line)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("parseGraphLine(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

// graphTrace is a trace in the tracer's format: a return without its
// call, a warm-up packet, two counted packets (the first with a recursive
// call and another task's call in the middle), a call of the task outside
// any packet.
const graphTrace = `# tracer: function_graph
#
# CPU  TASK/PID         DURATION                  FUNCTION CALLS
# |     |    |           |   |                     |   |   |   |
 0)  kpktgen-106   |   5.000 us    |  } /* pktgen_xmit [pktgen] */
 0)  kpktgen-106   |               |  pktgen_xmit [pktgen]() {
 0)  kpktgen-106   |   0.999 us    |    kfree_skb_reason();
 0)  kpktgen-106   |   9.000 us    |  } /* pktgen_xmit [pktgen] */
 0)  kpktgen-106   |               |  pktgen_xmit [pktgen]() {
 0)  kpktgen-106   |   0.100 us    |    kfree_skb_reason();
 0)  kpktgen-106   |               |    ip_output() {
 0)  kpktgen-106   |               |      __dev_queue_xmit() {
 ------------------------------------------
 0)  kpktgen-106   =>  insane--77   
 ------------------------------------------

 0)  insane--77    |   3.000 us    |  __x64_sys_write();
 ------------------------------------------
 0)  insane--77    =>  kpktgen-106  
 ------------------------------------------

 0)  kpktgen-106   |   0.150 us    |        __dev_queue_xmit();
 0)  kpktgen-106   |   0.400 us    |      } /* __dev_queue_xmit */
 0)  kpktgen-106   |   0.600 us    |    } /* ip_output */
 0)  kpktgen-106   |   1.000 us    |  } /* pktgen_xmit [pktgen] */
 0)  kpktgen-106   |   0.050 us    |  consume_skb();
 0)  kpktgen-106   |               |  pktgen_xmit [pktgen]() {
 0)  kpktgen-106   |   0.200 us    |    kfree_skb_reason();
 0)  kpktgen-106   |               |    ip_output() {
 0)  kpktgen-106   |   0.500 us    |      __dev_queue_xmit();
 0)  kpktgen-106   |   0.700 us    |    } /* ip_output */
 0)  kpktgen-106   |   1.200 us    |  } /* pktgen_xmit [pktgen] */
`

func TestParseGraph(t *testing.T) {
	g, err := parseGraph(strings.NewReader(graphTrace), "pktgen_xmit", 106, 1)
	if err != nil {
		t.Fatal(err)
	}
	if g.packets != 2 || g.unmatched != 1 || g.mismatched != 0 || g.lost != 0 {
		t.Fatalf("packets %d unmatched %d mismatched %d lost %d; want 2 1 0 0", g.packets, g.unmatched, g.mismatched, g.lost)
	}
	if fmt.Sprint(g.outside) != "map[consume_skb:1]" || fmt.Sprint(g.others) != "map[__x64_sys_write:1]" || g.warmCalls != 2 {
		t.Errorf("outside %v, others %v, warm-up calls %d", g.outside, g.others, g.warmCalls)
	}
	// 2 warm-up calls, 5 + 4 counted, 1 outside.
	if g.taskCalls != 12 {
		t.Errorf("task calls %d, want 12", g.taskCalls)
	}
	want := map[string][]graphCall{
		"pktgen_xmit":      {{d: 1000, kids: 2, kidsD: 700, desc: 4}, {d: 1200, kids: 2, kidsD: 900, desc: 3}},
		"kfree_skb_reason": {{d: 100}, {d: 200}},
		"ip_output":        {{d: 600, kids: 1, kidsD: 400, desc: 2}, {d: 700, kids: 1, kidsD: 500, desc: 1}},
		"__dev_queue_xmit": {{d: 150}, {d: 400, kids: 1, kidsD: 150, desc: 1}, {d: 500}},
	}
	if fmt.Sprint(g.byFunc) != fmt.Sprint(want) {
		t.Errorf("calls\n got %v\nwant %v", g.byFunc, want)
	}
	if got := strings.Join(g.funcOrder, " "); got != "pktgen_xmit kfree_skb_reason ip_output __dev_queue_xmit" {
		t.Errorf("order %s", got)
	}

	o := tracerCost{self: 10, out: 20}
	// Packet 1: pktgen_xmit 1000 - 10 - 4*30 = 870 inclusive, exclusive
	// 1000 - 700 - 10 - 2*20 = 250; kfree 90; ip_output excl 600 - 400 -
	// 10 - 20 = 170, incl 600 - 10 - 60 = 530; outer __dev_queue_xmit
	// incl 400 - 10 - 30 = 360, excl 400 - 150 - 10 - 20 = 220; inner
	// 140. The exclusives add up to the marker's inclusive.
	// Packet 2: pktgen_xmit 1200 - 10 - 90 = 1100, excl 1200 - 900 - 10 -
	// 40 = 250; kfree 190; ip_output incl 700 - 10 - 30 = 660, excl 700 -
	// 500 - 10 - 20 = 170; __dev_queue_xmit 490.
	rows := g.funcRows(o, o)
	wantRows := []funcRow{
		{fn: "pktgen_xmit", perPkt: 1, median: 985, mean: 985, exclMed: 250, exclPkt: 250},
		{fn: "kfree_skb_reason", perPkt: 1, median: 140, mean: 140, exclMed: 140, exclPkt: 140},
		{fn: "ip_output", perPkt: 1, median: 595, mean: 595, exclMed: 170, exclPkt: 170},
		{fn: "__dev_queue_xmit", perPkt: 1.5, median: 360, mean: (140 + 360 + 490) / 3.0, exclMed: 220, exclPkt: (140 + 220 + 490) / 2.0},
	}
	if len(rows) != len(wantRows) {
		t.Fatalf("rows %+v", rows)
	}
	for i, r := range rows {
		w := wantRows[i]
		if r.fn != w.fn || !near(r.perPkt, w.perPkt) || !near(r.median, w.median) || !near(r.mean, w.mean) || !near(r.exclMed, w.exclMed) || !near(r.exclPkt, w.exclPkt) {
			t.Errorf("row %d = %+v, want %+v", i, r, w)
		}
	}
	var excl float64
	for _, r := range rows {
		excl += r.exclPkt
	}
	if !near(excl, rows[0].mean) {
		t.Errorf("exclusives add up to %v, the marker's inclusive is %v", excl, rows[0].mean)
	}

	paths := g.pathRows(o)
	var got []string
	for _, p := range paths {
		got = append(got, fmt.Sprintf("%d %s %.2f %.1f %.1f", p.depth, p.path, p.perPkt, p.inclPkt, p.excl))
	}
	wantPaths := []string{
		"0 pktgen_xmit 1.00 985.0 250.0",
		"1 pktgen_xmit;kfree_skb_reason 1.00 140.0 140.0",
		"1 pktgen_xmit;ip_output 1.00 595.0 170.0",
		// (360 + 490) / 2 inclusive; (220 + 490) / 2 exclusive
		"2 pktgen_xmit;ip_output;__dev_queue_xmit 1.00 425.0 355.0",
		"3 pktgen_xmit;ip_output;__dev_queue_xmit;__dev_queue_xmit 0.50 70.0 70.0",
	}
	if strings.Join(got, "\n") != strings.Join(wantPaths, "\n") {
		t.Errorf("paths\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(wantPaths, "\n     "))
	}
	if d := g.durations("__dev_queue_xmit", o); fmt.Sprint(d) != "[150 400 500]" {
		t.Errorf("durations %v", d)
	}
}

func TestParseGraphMismatchAndLost(t *testing.T) {
	tr := ` 0)  kpktgen-106   |               |  pktgen_xmit [pktgen]() {
 0)  kpktgen-106   |   0.100 us    |  } /* ip_output */
CPU:0 [LOST 12 EVENTS]
`
	g, err := parseGraph(strings.NewReader(tr), "pktgen_xmit", 106, 0)
	if err != nil {
		t.Fatal(err)
	}
	if g.mismatched != 1 || g.lost != 1 {
		t.Errorf("mismatched %d lost %d, want 1 1", g.mismatched, g.lost)
	}
}

func TestParseGraphDuration(t *testing.T) {
	for s, want := range map[string]int64{"0.001 us": 1, "1.5 us": 1500, "12.34 us": 12340, "! 100.000 us": 100000, "7 us": 7000} {
		got, err := parseGraphDuration(s)
		if err != nil || got != want {
			t.Errorf("parseGraphDuration(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"1.2345 us", "us", "1.0 ms", "x.1 us"} {
		if _, err := parseGraphDuration(s); err == nil {
			t.Errorf("parseGraphDuration(%q): no error", s)
		}
	}
}

// irqTrace has a timer interrupt inside ip_output, with a traced call
// inside it, and a softirq run by local_bh_enable() in the marker.
const irqTrace = ` 0)  kpktgen-106   |               |  pktgen_xmit [pktgen]() {
 0)  kpktgen-106   |               |    ip_output() {
 0)  kpktgen-106   |   ==========> |
 0)  kpktgen-106   |               |      __sysvec_apic_timer_interrupt() {
 0)  kpktgen-106   |   0.100 us    |        consume_skb();
 0)  kpktgen-106   |   0.300 us    |      }
 0)  kpktgen-106   |   0.050 us    |      irq_exit_rcu();
 0)  kpktgen-106   |   <========== |
 0)  kpktgen-106   |   0.200 us    |      __dev_queue_xmit();
 0)  kpktgen-106   |   1.000 us    |    } /* ip_output */
 0)  kpktgen-106   |   0.400 us    |    __do_softirq();
 0)  kpktgen-106   |   2.000 us    |  } /* pktgen_xmit [pktgen] */
`

func TestParseGraphInterrupts(t *testing.T) {
	g, err := parseGraph(strings.NewReader(irqTrace), "pktgen_xmit", 106, 0)
	if err != nil {
		t.Fatal(err)
	}
	if g.packets != 1 || g.inIrqCalls != 1 || g.unmatched+g.mismatched+g.lost != 0 {
		t.Fatalf("%+v", g)
	}
	o := tracerCost{self: 10, out: 20}
	// Interrupts, untraced: the timer 300 - 10 - 30 = 260, irq_exit_rcu
	// 40, the softirq 390.
	if got := g.irqPerPacket(o); got != 690 {
		t.Errorf("interrupts %v, want 690", got)
	}
	rows := map[string]funcRow{}
	for _, r := range g.funcRows(o, o) {
		rows[r.fn] = r
	}
	// ip_output: 1000 - 10 - 4*30 = 870 with the interrupts, 870 - 260 -
	// 40 = 570 without; exclusive 1000 - 550 - 10 - 3*20 = 380.
	// pktgen_xmit: 2000 - 10 - 6*30 = 1810, less 690: 1120; exclusive
	// 2000 - 1400 - 10 - 2*20 = 550. The exclusives without interrupts
	// add up to its inclusive without them: 550 + 380 + 190.
	if r := rows["ip_output"]; r.mean != 570 || r.exclPkt != 380 {
		t.Errorf("ip_output %+v", r)
	}
	if r := rows["pktgen_xmit"]; r.mean != 1120 || r.exclPkt != 550 {
		t.Errorf("pktgen_xmit %+v", r)
	}
	if r := rows["__dev_queue_xmit"]; r.mean != 190 || r.exclPkt != 190 {
		t.Errorf("__dev_queue_xmit %+v", r)
	}
	if r, ok := rows["__sysvec_apic_timer_interrupt"]; !ok || !r.irq || r.exclPkt != 260 {
		t.Errorf("timer %+v", r)
	}
	if _, ok := rows["consume_skb"]; ok {
		t.Errorf("a call inside an interrupt counted as the packet's")
	}
	// The interrupt's out part: ip_output's duration less both
	// interrupts and their tracing outside them.
	if d := g.durations("ip_output", o); fmt.Sprint(d) != "[610]" {
		t.Errorf("durations %v, want [610]", d)
	}
	var paths []string
	for _, p := range g.pathRows(o) {
		paths = append(paths, fmt.Sprintf("%s %.0f %.0f", p.path, p.inclPkt, p.excl))
	}
	if got := strings.Join(paths, ", "); got != "pktgen_xmit 1120 550, pktgen_xmit;ip_output 570 380, pktgen_xmit;ip_output;__dev_queue_xmit 190 190" {
		t.Errorf("paths %s", got)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestGraphSubset(t *testing.T) {
	g, err := parseGraph(strings.NewReader(graphTrace), "pktgen_xmit", 106, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Both counted packets call ip_output; only the first calls
	// __dev_queue_xmit inside __dev_queue_xmit.
	deep := g.subset(func(p graphPacket) bool {
		n := 0
		for _, c := range p {
			if c.fn == "__dev_queue_xmit" {
				n++
			}
		}
		return n == 2
	})
	if deep.packets != 1 || len(deep.byFunc["__dev_queue_xmit"]) != 2 || deep.byFunc["pktgen_xmit"][0].d != 1000 {
		t.Errorf("subset %+v", deep.byFunc)
	}
	if all := g.subset(func(p graphPacket) bool { return p.has("ip_output") }); all.packets != 2 {
		t.Errorf("subset of %d packets, want 2", all.packets)
	}
	rows := deep.pathRows(tracerCost{})
	if len(rows) != 5 {
		t.Errorf("paths of the subset: %+v", rows)
	}
}
