package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// spread is the median and the extremes of a set of runs.
type spread struct {
	med, min, max float64
	n             int
}

func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{med: math.NaN(), min: math.NaN(), max: math.NaN()}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{med: med, min: s[0], max: s[len(s)-1], n: len(s)}
}

func (s spread) format(scale float64, prec int) string {
	if s.n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.*f [%.*f–%.*f]", prec, s.med*scale, prec, s.min*scale, prec, s.max*scale)
}

// runKey names the runs of one case with one CPU count and one source.
type runKey struct {
	cse    string
	cpus   int
	source string
}

// byRep indexes throughput runs by case, CPU count and source, then round.
// A run without a source (older logs) is pktgen's.
func byRep(runs []runRec) map[runKey]map[int]runRec {
	m := make(map[runKey]map[int]runRec)
	for _, r := range runs {
		k := runKey{r.Case, r.CPUs, r.source()}
		if m[k] == nil {
			m[k] = make(map[int]runRec)
		}
		m[k][r.Rep] = r
	}
	return m
}

func (r runRec) source() string {
	if r.Source == "" {
		return srcPktgen
	}
	return r.Source
}

// tputStats are one case's figures for one CPU count and source: packets
// per second, guest nanoseconds per packet (instructions per packet under
// icount), the ratio of pps to the lower alone's in the same round, and
// the share of packets that left low0.
type tputStats struct {
	pps, nsPerPkt, ratio, delivered spread
}

func statsFor(m map[runKey]map[int]runRec, key string, cpus int, source string) tputStats {
	var pps, ns, ratio, deliv []float64
	base := m[runKey{"a", cpus, source}]
	for rep, r := range m[runKey{key, cpus, source}] {
		pps = append(pps, r.PPS)
		if r.PPS > 0 {
			ns = append(ns, 1e9/r.PPS)
		}
		if b, ok := base[rep]; ok && b.PPS > 0 {
			ratio = append(ratio, r.PPS/b.PPS)
		}
		if r.Sent > 0 {
			deliv = append(deliv, float64(r.Delivered)/float64(r.Sent))
		}
	}
	return tputStats{spreadOf(pps), spreadOf(ns), spreadOf(ratio), spreadOf(deliv)}
}

func scalingFor(m map[runKey]map[int]runRec, key string) spread {
	var v []float64
	one := m[runKey{key, 1, srcPktgen}]
	for rep, r := range m[runKey{key, 2, srcPktgen}] {
		if o, ok := one[rep]; ok && o.PPS > 0 {
			v = append(v, r.PPS/o.PPS)
		}
	}
	return spreadOf(v)
}

// printThroughput prints the noisy phase: pktgen with 1 and 2 sending
// CPUs under multi-threaded TCG.
func printThroughput(rep *report) {
	m := byRep(rep.NoisyRuns)
	fmt.Printf("\n### Noisy: 1 and 2 CPUs under multi-threaded TCG (pktgen, 64-byte UDP, forwarded in0/in1 -> low0; %d rounds x %.0f s; median [min–max])\n\n", rep.NoisyReps, rep.NoisySeconds)
	fmt.Println("Wall-clock rates on shared host cores: they move with the host's load, and the spread shows it.")
	fmt.Println()
	fmt.Println("| case | 1 CPU kpps | 1 CPU / (a) | 2 CPUs kpps | 2 CPUs / (a) | 2 CPUs / 1 CPU | left low0, 1 CPU |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, c := range rep.Cases {
		if _, ok := m[runKey{c.Key, 1, srcPktgen}]; !ok {
			continue
		}
		s1, s2 := statsFor(m, c.Key, 1, srcPktgen), statsFor(m, c.Key, 2, srcPktgen)
		fmt.Printf("| (%s) %s | %s | %s | %s | %s | %s | %s |\n", c.Key, c.Name,
			s1.pps.format(1e-3, 1), s1.ratio.format(1, 3),
			s2.pps.format(1e-3, 1), s2.ratio.format(1, 3),
			scalingFor(m, c.Key).format(1, 2), s1.delivered.format(100, 1)+" %")
	}
}

// printInstructions prints the throughput phase, one table per source.
// Under icount a guest nanosecond is one guest instruction.
func printInstructions(rep *report) {
	m := byRep(rep.Runs)
	unit, clock := "guest ns per packet", "guest time (not instruction-counted: wall-clock TCG)"
	if rep.Icount {
		unit, clock = "instructions per packet", "guest time under icount (1 ns = 1 instruction)"
	}
	for _, src := range rep.Sources {
		fmt.Printf("\n### Throughput, %s source, 1 CPU (%d rounds x %.1f s of %s; median [min–max])\n\n", sourceTitle(src), rep.Reps, rep.RunSeconds, clock)
		fmt.Printf("| case | kpps | %s | / (a) lower alone, same round | left low0 |\n", unit)
		fmt.Println("|---|---|---|---|---|")
		for _, c := range rep.Cases {
			if _, ok := m[runKey{c.Key, 1, src}]; !ok {
				continue
			}
			st := statsFor(m, c.Key, 1, src)
			fmt.Printf("| (%s) %s | %s | %s | %s | %s |\n", c.Key, c.Name,
				st.pps.format(1e-3, 1), st.nsPerPkt.format(1, 0), st.ratio.format(1, 3), st.delivered.format(100, 1)+" %")
		}
	}
}

// pairRatio is the spread over rounds of case num's rate divided by case
// den's in the same round, from the same source.
func pairRatio(m map[runKey]map[int]runRec, num, den string, cpus int, source string) spread {
	var v []float64
	d := m[runKey{den, cpus, source}]
	for rep, r := range m[runKey{num, cpus, source}] {
		if b, ok := d[rep]; ok && b.PPS > 0 {
			v = append(v, r.PPS/b.PPS)
		}
	}
	return spreadOf(v)
}

// targetPairs are issue 13's comparisons: each is met when the ratio of
// the two rates is at least min.
var targetPairs = []struct {
	num, den string
	min      float64
	what     string
}{
	{"b", "a", 0.95, "insane pass >= 0.95 x lower alone"},
	{"b", "m", 1, "insane pass >= macvlan"},
	{"b", "v", 1, "insane pass >= ipvlan l3"},
	{"z", "a", 1, "insane percent 0 >= lower alone"},
	{"c", "e", 1, "insane percent 50 >= netem loss 50%"},
	{"c", "f", 1, "insane percent 50 >= gact 1/2"},
	{"s", "c", 0.98, "seeded percent 50 within 2 % of unseeded (>= 0.98)"},
	{"d", "c", 0.98, "time 10ms/10ms within 2 % of unseeded percent 50 (>= 0.98; its relayed share differs)"},
}

// printTargets prints each target's ratio per source, and the run-to-run
// spread of every case's ratio to the lower alone.
func printTargets(rep *report) {
	m := byRep(rep.Runs)
	fmt.Println("\n### Targets (issue 13), per source: ratio of rates in the same round, median [min–max]")
	fmt.Println()
	fmt.Printf("| target |")
	for _, src := range rep.Sources {
		fmt.Printf(" %s | met |", src)
	}
	fmt.Println()
	fmt.Println("|---" + strings.Repeat("|---|---", len(rep.Sources)) + "|")
	for _, t := range targetPairs {
		fmt.Printf("| %s |", t.what)
		for _, src := range rep.Sources {
			r := pairRatio(m, t.num, t.den, 1, src)
			met := "-"
			if r.n > 0 {
				met = "no"
				if r.med >= t.min {
					met = "yes"
				}
			}
			fmt.Printf(" %s | %s |", r.format(1, 3), met)
		}
		fmt.Println()
	}
	fmt.Println("\nRun-to-run spread of each case's ratio to (a), (max - min) / median (target <= 2 %):")
	fmt.Println()
	for _, src := range rep.Sources {
		var parts []string
		for _, c := range rep.Cases {
			if c.Key == "a" {
				continue
			}
			r := statsFor(m, c.Key, 1, src).ratio
			if r.n > 0 {
				parts = append(parts, fmt.Sprintf("(%s) %.1f %%", c.Key, 100*(r.max-r.min)/r.med))
			}
		}
		fmt.Printf("- %s: %s\n", src, strings.Join(parts, ", "))
	}
}

func sourceTitle(src string) string {
	switch src {
	case srcPktgen:
		return "pktgen (netif_receive on in0, forwarded to 10.2.0.2)"
	case srcUDP:
		return "UDP socket (connected, 64-byte datagrams, counted by successful sends)"
	}
	return src
}

// sharedLines is the static count of cache lines that every CPU may write
// which insane's own datapath writes per packet, by mode. It comes from
// reading kernel/datapath.c (insane_xmit), kernel/policy.h
// (insane_policy_relays) and kernel/decide.c; it is not measured.
var sharedLines = []struct {
	mode  string
	lines int
	why   string
}{
	{"pass", 0, "per-CPU only: dev_sw_netstats_tx_add, the per-CPU relay depth; the route comes from this CPU's cache slot without a reference (a miss writes only that slot)"},
	{"percent, unseeded", 0, "per-CPU only: this CPU's SplitMix64 state (insane_rng), the per-CPU drop counters"},
	{"percent, seeded", 1, "atomic64_add_return(2, &policy->next), the word 2k + s (k and the chain state) on a cache line of its own"},
	{"time, schedule", 0, "reads ktime_get_ns() and the policy; writes per-CPU counters only (and per the steps that draw, as below)"},
	{"drop", 0, "per-CPU drop counters only"},
	{"burst, gilbert, unseeded", 0, "this CPU's SplitMix64 state and this CPU's chain state of the policy (alloc_percpu)"},
	{"burst, gilbert, seeded", 1, "an atomic64_try_cmpxchg loop on the same word: k and the chain state advance together"},
}

func printSharedLines() {
	fmt.Println("\n### Shared cache lines written per packet by insane (static, from kernel/datapath.c, kernel/route.c, kernel/policy.h and kernel/decide.c; not measured)")
	fmt.Println()
	fmt.Println("| mode | shared lines written per packet | what |")
	fmt.Println("|---|---|---|")
	for _, l := range sharedLines {
		fmt.Printf("| %s | %d | %s |\n", l.mode, l.lines, l.why)
	}
}

// printCostTable prints a cost table's head and a row for each of cs
// that ran on one CPU from the UDP source.
func printCostTable(m map[runKey]map[int]runRec, unit string, cs []dropper) {
	fmt.Printf("| case | kpps | %s per packet | / (a) lower alone, same round | left low0 |\n", unit)
	fmt.Println("|---|---|---|---|---|")
	for _, d := range cs {
		if _, ok := m[runKey{d.key, 1, srcUDP}]; !ok {
			continue
		}
		st := statsFor(m, d.key, 1, srcUDP)
		fmt.Printf("| (%s) %s | %s | %s | %s | %s |\n", d.key, d.name, st.pps.format(1e-3, 1), st.nsPerPkt.format(1, 0), st.ratio.format(1, 3), st.delivered.format(100, 1)+" %")
	}
}

func caseName(key string) string {
	for _, d := range cases() {
		if d.key == key {
			return "(" + key + ") " + d.name
		}
	}
	return key
}

func printAccuracy(acc []accRec, count uint64) {
	fmt.Printf("\n### Loss accuracy (%d packets per tool, 1 CPU)\n\n", count)
	fmt.Println("| tool | configured loss | observed loss (1 - left low0 / sent) | observed - configured | in binomial σ | tool's own drop count - (sent - left low0) |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, a := range acc {
		if a.Sent == 0 {
			continue
		}
		obs := 1 - float64(a.Delivered)/float64(a.Sent)
		sigma := math.Sqrt(a.Configured * (1 - a.Configured) / float64(a.Sent))
		z := "n/a (not random)"
		if a.Case != "d" && sigma > 0 {
			z = fmt.Sprintf("%+.2f", (obs-a.Configured)/sigma)
		}
		fmt.Printf("| %s | %.2f %% | %.3f %% | %+.3f points | %s | %+d |\n", caseName(a.Case),
			100*a.Configured, 100*obs, 100*(obs-a.Configured), z,
			int64(a.Dropped)-(int64(a.Sent)-int64(a.Delivered)))
	}
}

func printAllocs(recs []allocRec, count uint64) {
	fmt.Printf("\n### Allocations per packet (kmem tracepoints, %d packets per case, 1 CPU, pktgen's own included)\n\n", count)
	var events []string
	for _, r := range recs {
		for e := range r.Hits {
			if !contains(events, e) {
				events = append(events, e)
			}
		}
	}
	sort.Strings(events)
	fmt.Printf("| case | %s | all | all - (a) |\n", strings.Join(events, " | "))
	fmt.Println("|---" + strings.Repeat("|---", len(events)+2) + "|")
	perPkt := func(r allocRec) (map[string]float64, float64) {
		m := make(map[string]float64)
		total := 0.0
		for e, h := range r.Hits {
			m[e] = float64(h) / float64(max(r.Sent, 1))
			total += m[e]
		}
		return m, total
	}
	var base *allocRec
	for i := range recs {
		if recs[i].Case == "a" {
			base = &recs[i]
		}
	}
	_, baseTotal := 0.0, 0.0
	if base != nil {
		_, baseTotal = perPkt(*base)
	}
	for _, r := range recs {
		m, total := perPkt(r)
		var cols []string
		for _, e := range events {
			cols = append(cols, fmt.Sprintf("%.3f", m[e]))
		}
		fmt.Printf("| %s | %s | %.3f | %+.3f |\n", caseName(r.Case), strings.Join(cols, " | "), total, total-baseTotal)
	}
	if base == nil {
		return
	}
	fmt.Println("\nAllocation sites whose count per packet differs from (a) by 0.01 or more:")
	any := false
	for _, r := range recs {
		if r.Case == "a" {
			continue
		}
		var sites []string
		for s := range r.Sites {
			sites = append(sites, s)
		}
		for s := range base.Sites {
			if _, ok := r.Sites[s]; !ok {
				sites = append(sites, s)
			}
		}
		sort.Strings(sites)
		for _, s := range sites {
			d := float64(r.Sites[s])/float64(max(r.Sent, 1)) - float64(base.Sites[s])/float64(max(base.Sent, 1))
			if math.Abs(d) >= 0.01 {
				fmt.Printf("  %s: %s %+.3f per packet\n", caseName(r.Case), s, d)
				any = true
			}
		}
	}
	if !any {
		fmt.Println("  none")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func us(ns int64) string { return fmt.Sprintf("%.1f µs", float64(ns)/1e3) }

func printEdges(e edgeResult) {
	fmt.Printf("\n### Time-mode edges (UDP sender through insane0, on %s off %s)\n\n", us(e.OnNS), us(e.OffNS))
	fmt.Printf("- sent %d datagrams, %d relayed (%.1f %%), median gap between sends %s; send errors %d; capture drops %d\n",
		e.Sent, e.Relayed, 100*float64(e.Relayed)/float64(max(e.Sent, 1)), us(e.GapMedian), e.SendErrors, e.CaptureDrop)
	fmt.Printf("- policy epoch known to within %s (readings around the netlink request)\n", us(e.EpochWidth))
	fmt.Printf("- decisions certainly inside an ON window: %d, dropped: %d; certainly inside an OFF window: %d, relayed: %d; too close to an edge to tell: %d\n",
		e.CertainOn, e.WrongOn, e.CertainOff, e.WrongOff, e.Ambiguous)
	fmt.Printf("- edges seen (verdict changes) %d of %d expected; changes whose bracket, widened by the epoch's uncertainty, holds a nominal edge: %d\n", e.Edges, e.Expected, e.InBracket)
	fmt.Printf("- median change bracket half-width %s; %d changes have a tight bracket (half-width <= %s)\n", us(e.HalfWidthMedian), e.Tight, us(e.TightNS))
	fmt.Printf("- tight changes, |bracket middle - nominal edge| (epoch = middle of its bracket): median %s, p95 %s, max %s\n", us(e.ErrMedian), us(e.ErrP95), us(e.ErrMax))
	fmt.Printf("- tight changes against a fitted epoch (%+.1f µs from the bracket's middle): median %s, p95 %s, max %s; %d of %d hold the fitted edge in their own bracket; changes more than a quarter window from any edge: %d\n",
		float64(e.FitOffset)/1e3, us(e.FitErrMedian), us(e.FitErrP95), us(e.FitErrMax), e.FitInBracket, e.Tight, e.Spurious)
}

func printMemory(recs []memRec, n int) {
	fmt.Printf("\n### Memory per device (%d devices created in a fresh netns, growth divided by %d)\n\n", n, n)
	fmt.Println("| kind | Slab (pages) B/dev | slab objects B/dev | Percpu B/dev | MemTotal-MemFree B/dev | create time s |")
	fmt.Println("|---|---|---|---|---|---|")
	sum := map[string][4]float64{}
	cnt := map[string]float64{}
	for _, r := range recs {
		v := [4]float64{float64(r.SlabKB) * 1024 / float64(r.N), float64(r.SlabObjBytes) / float64(r.N),
			float64(r.PercpuKB) * 1024 / float64(r.N), float64(r.UsedKB) * 1024 / float64(r.N)}
		fmt.Printf("| %s | %.0f | %.0f | %.0f | %.0f | %.1f |\n", r.Kind, v[0], v[1], v[2], v[3], r.Seconds)
		s := sum[r.Kind]
		for i := range v {
			s[i] += v[i]
		}
		sum[r.Kind] = s
		cnt[r.Kind]++
	}
	if cnt["insane"] > 0 && cnt["dummy"] > 0 {
		var d [4]float64
		for i := range d {
			d[i] = sum["insane"][i]/cnt["insane"] - sum["dummy"][i]/cnt["dummy"]
		}
		fmt.Printf("| insane - dummy (means) | %+.0f | %+.0f | %+.0f | %+.0f | |\n", d[0], d[1], d[2], d[3])
	}
}

// render reads the BENCH-JSON line of a guest log and draws the throughput
// medians, with min–max whiskers, for 1 and 2 CPUs.
func render(logPath, svgPath string) error {
	f, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	var rep *report
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if rest, ok := strings.CutPrefix(line, "BENCH-JSON "); ok {
			rep = new(report)
			if err := json.Unmarshal([]byte(rest), rep); err != nil {
				return fmt.Errorf("%s: %w", logPath, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if rep == nil {
		return errors.New(logPath + ": no BENCH-JSON line (did the bench finish?)")
	}
	if len(rep.NoisyRuns) == 0 {
		// A run of other phases only (-phases burst): nothing to draw.
		fmt.Printf("insane-bench: %s has no noisy-phase runs: %s not drawn\n", logPath, svgPath)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(svgPath), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(svgPath, []byte(svgPlot(rep)), 0o644); err != nil {
		return err
	}
	fmt.Printf("insane-bench: wrote %s\n", svgPath)
	return nil
}

func svgPlot(rep *report) string {
	m := byRep(rep.NoisyRuns)
	var top float64
	stats := make([][2]spread, len(rep.Cases))
	for i, c := range rep.Cases {
		for j, n := range []int{1, 2} {
			stats[i][j] = statsFor(m, c.Key, n, srcPktgen).pps
			top = math.Max(top, stats[i][j].max)
		}
	}
	// A round axis: the smallest step of 1, 2 or 5 times a power of ten
	// that needs at most 8 ticks.
	step := math.Pow(10, math.Floor(math.Log10(top/1e3))-1)
	for i := 0; top/1e3/step > 8; i++ {
		step *= []float64{2, 2.5, 2}[i%3]
	}
	axisTop := math.Ceil(top/1e3/step) * step
	const (
		left, right, topPad, plotH = 70.0, 20.0, 50.0, 300.0
		groupW, barW               = 110.0, 36.0
	)
	width := left + right + groupW*float64(len(rep.Cases))
	height := topPad + plotH + 110
	y := func(kpps float64) float64 { return topPad + plotH - kpps/axisTop*plotH }
	colors := [2]string{"#4c72b0", "#dd8452"}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="14" font-weight="bold">insane-bench: packets per second by case (median of %d runs, whiskers min–max)</text>`+"\n", left, rep.NoisyReps)
	fmt.Fprintf(&b, `<text x="%.0f" y="38" fill="#555">kernel %s, QEMU multi-threaded TCG (noisy), %d vCPUs; pktgen 64-byte UDP forwarded to low0</text>`+"\n", left, html.EscapeString(rep.Kernel), rep.CPUs)
	for v := 0.0; v <= axisTop+1e-9; v += step {
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, width-right, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<text transform="translate(18,%.0f) rotate(-90)" text-anchor="middle">kpps</text>`+"\n", topPad+plotH/2)
	for i, c := range rep.Cases {
		gx := left + groupW*float64(i) + (groupW-2*barW)/2
		for j := 0; j < 2; j++ {
			s := stats[i][j]
			if s.n == 0 {
				continue
			}
			x := gx + barW*float64(j)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, y(s.med/1e3), barW-4, y(0)-y(s.med/1e3), colors[j])
			cx := x + (barW-4)/2
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black"/>`+"\n", cx, cx, y(s.min/1e3), y(s.max/1e3))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%.0f</text>`+"\n", cx, y(s.max/1e3)-4, s.med/1e3)
		}
		lx := left + groupW*float64(i) + groupW/2
		name := strings.SplitN(c.Name, " ", 2)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">(%s) %s</text>`+"\n", lx, topPad+plotH+18, c.Key, html.EscapeString(name[0]))
		if len(name) > 1 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" font-size="10">%s</text>`+"\n", lx, topPad+plotH+32, html.EscapeString(name[1]))
		}
	}
	fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="black"/>`+"\n", left, width-right, y(0), y(0))
	ly := topPad + plotH + 60
	for j, label := range []string{"1 sending CPU", "2 sending CPUs"} {
		x := left + 160*float64(j)
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="14" height="14" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n", x, ly, colors[j], x+20, ly+12, label)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// burstRunName is a burst run's name in the tables.
func burstRunName(r burstRec) string {
	switch r.Tool {
	case "netem":
		return "netem " + strings.Join(burstChain(r.Pair.Percent, r.Pair.Burst).netemGemodel()[1:], " ")
	case "insane-seeded":
		return fmt.Sprintf("insane burst %g %g seed %d", r.Pair.Percent, r.Pair.Burst, *r.Seed)
	}
	return fmt.Sprintf("insane burst %g %g", r.Pair.Percent, r.Pair.Burst)
}

func fmtSigmas(z float64) string {
	if math.IsInf(z, 0) {
		return fmt.Sprintf("%c∞", "-+"[btoi(z > 0)])
	}
	return fmt.Sprintf("%+.2f", z)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// printBurst prints the burst phase: per run, the observed mean loss and
// mean burst length against the configured ones, then per pair the
// burst-length distribution against the geometric one.
func printBurst(recs []burstRec, n uint64) {
	if len(recs) == 0 {
		return
	}
	fmt.Printf("\n### Burst loss (issue 16): %d datagrams per run, one UDP sender on CPU 1, received on low0 by a packet socket on CPU 0\n\n", n)
	fmt.Println("Loss: configured q = 1 - P/100, σ = sqrt(q (1-q) (1+λ) / (1-λ) / n), λ = 1 - p - r. Mean burst: configured B = 1/r over the m complete bursts, σ = sqrt(1-r) / (r sqrt(m)). χ²: the burst lengths 1, 2, ... (buckets expecting 5 or more, then the rest) against P(L = l) = r (1-r)^(l-1).")
	fmt.Println()
	fmt.Println("| run | loss configured | loss observed | σ (points) | in σ | mean burst configured | observed | σ | in σ | bursts | longest | χ² (dof), p | s |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range recs {
		if r.Error != "" {
			fmt.Printf("| %s | ERROR: %s |%s\n", burstRunName(r), r.Error, strings.Repeat(" |", 11))
			continue
		}
		g := burstChain(r.Pair.Percent, r.Pair.Burst)
		lp := r.Loss
		loss := float64(lp.Lost) / float64(lp.N)
		sl := g.lossSD(lp.N)
		mean, sb := math.NaN(), math.NaN()
		if lp.Bursts > 0 {
			mean, sb = float64(lp.BurstLost)/float64(lp.Bursts), g.meanBurstSD(lp.Bursts)
		}
		chi := "– (one bucket)"
		if chi2, dof := g.chiSquare(lp.Hist); dof > 0 {
			chi = fmt.Sprintf("%.1f (%d), %.3g", chi2, dof, chiSquareQ(chi2, dof))
		}
		fmt.Printf("| %s | %.3f %% | %.4f %% | %.4f | %s | %g | %.4f | %.4f | %s | %d | %d | %s | %.0f |\n", burstRunName(r),
			100*g.q, 100*loss, 100*sl, fmtSigmas(sigmas(loss, g.q, sl)),
			g.meanBurst(), mean, sb, fmtSigmas(sigmas(mean, g.meanBurst(), sb)),
			lp.Bursts, lp.Longest, chi, r.Seconds)
	}
	fmt.Println()
	for _, r := range recs {
		if r.Error != "" {
			continue
		}
		fmt.Printf("- %s: sent %d, the tool passed %d and dropped %d, low0 sent %d, received %d (duplicates %d, capture drops %d); the sender waited for the receiver %d times; burst cut by the end of the run: %d",
			burstRunName(r), r.Sent, r.Passed, r.ToolDropped, r.LowerTx, r.Received, r.Duplicates, r.CaptureDrops, r.WindowWaits, r.Loss.Cut)
		if r.PredictorDiffs != nil {
			fmt.Printf("; datagrams whose fate differs from genl.Predictor's: %d", *r.PredictorDiffs)
		}
		fmt.Println()
	}
	// One distribution table per pair.
	var pairs []burstPair
	for _, r := range recs {
		if !containsPair(pairs, r.Pair) {
			pairs = append(pairs, r.Pair)
		}
	}
	for _, pr := range pairs {
		var cols []burstRec
		for _, r := range recs {
			if r.Pair == pr && r.Error == "" && r.Loss.Bursts > 0 {
				cols = append(cols, r)
			}
		}
		if len(cols) == 0 {
			continue
		}
		g := burstChain(pr.Percent, pr.Burst)
		p := g.histP()
		fmt.Printf("\n#### Burst lengths, relay %g %%, mean burst %g: share of the complete bursts, (in σ of its binomial count)\n\n", pr.Percent, pr.Burst)
		fmt.Printf("| length | expected r (1-r)^(l-1) |")
		for _, r := range cols {
			fmt.Printf(" %s |", burstRunName(r))
		}
		fmt.Println()
		fmt.Println("|---|---|" + strings.Repeat("---|", len(cols)))
		for i := 0; i <= burstHist; i++ {
			if i < burstHist && p[i] < 1e-5 {
				seen := false
				for _, r := range cols {
					seen = seen || r.Loss.Hist[i] > 0
				}
				if !seen {
					continue
				}
			}
			label := strconv.Itoa(i + 1)
			if i == burstHist {
				label = fmt.Sprintf("> %d", burstHist)
			}
			fmt.Printf("| %s | %.3f %% |", label, 100*p[i])
			for _, r := range cols {
				m := float64(r.Loss.Bursts)
				c := float64(r.Loss.Hist[i])
				z := sigmas(c, m*p[i], math.Sqrt(m*p[i]*(1-p[i])))
				fmt.Printf(" %.3f %% (%s) |", 100*c/m, fmtSigmas(z))
			}
			fmt.Println()
		}
		fmt.Printf("| bursts | |")
		for _, r := range cols {
			fmt.Printf(" %d |", r.Loss.Bursts)
		}
		fmt.Println()
	}
}

func containsPair(s []burstPair, p burstPair) bool {
	for _, x := range s {
		if x == p {
			return true
		}
	}
	return false
}
