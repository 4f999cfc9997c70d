package main

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestSpreadOf(t *testing.T) {
	s := spreadOf([]float64{3, 1, 2, 10})
	if s.med != 2.5 || s.min != 1 || s.max != 10 || s.n != 4 {
		t.Errorf("spreadOf = %+v, want median 2.5, min 1, max 10, n 4", s)
	}
	if got := spreadOf(nil).format(1, 1); got != "-" {
		t.Errorf("empty spread formats as %q, want -", got)
	}
}

// A synthetic time-mode run: a sender every 10 µs, decisions made exactly
// at the grid's edges, an epoch bracket of 100 µs around the true epoch.
func TestAnalyzeEdges(t *testing.T) {
	const (
		on, off = 1_000_000, 1_000_000
		epoch   = 5_000_000
		gap     = 10_000
	)
	var t0, t1 []int64
	var seen []bool
	for ts := int64(epoch + 3_000); ts < epoch+10_000_000; ts += gap {
		t0 = append(t0, ts)
		t1 = append(t1, ts+2_000)
		seen = append(seen, (ts+1_000-epoch)%(on+off) < on)
	}
	res := edgeResult{OnNS: on, OffNS: off}
	analyzeEdges(&res, t0, t1, seen, epoch-40_000, epoch+60_000)
	if res.WrongOn != 0 || res.WrongOff != 0 {
		t.Errorf("wrong decisions: %d on, %d off", res.WrongOn, res.WrongOff)
	}
	if res.Edges != 9 || res.Expected != 9 || res.InBracket != 9 {
		t.Errorf("edges %d, expected %d, in bracket %d; want 9 each", res.Edges, res.Expected, res.InBracket)
	}
	if res.Tight != 9 || res.FitInBracket != 9 || res.Spurious != 0 {
		t.Errorf("tight %d, fitted in bracket %d, spurious %d; want 9, 9, 0", res.Tight, res.FitInBracket, res.Spurious)
	}
	if res.FitErrMax > gap {
		t.Errorf("fitted edge error up to %d ns, want at most one send gap", res.FitErrMax)
	}

	// A relayed packet in the middle of an OFF window is a wrong decision.
	seen[150] = true
	res = edgeResult{OnNS: on, OffNS: off}
	analyzeEdges(&res, t0, t1, seen, epoch-40_000, epoch+60_000)
	if res.WrongOff != 1 || res.Spurious != 2 {
		t.Errorf("with one stray relay: wrong off %d, spurious %d; want 1, 2", res.WrongOff, res.Spurious)
	}
}

func TestSVGPlot(t *testing.T) {
	rep := &report{Kernel: "k", CPUs: 2, Reps: 2, Cases: []caseInfo{{"a", "lower alone"}, {"b", "insane pass"}}}
	for rep0 := 0; rep0 < 2; rep0++ {
		for _, n := range []int{1, 2} {
			rep.NoisyRuns = append(rep.NoisyRuns,
				runRec{Case: "a", CPUs: n, Rep: rep0, PPS: 70000 * float64(n)},
				runRec{Case: "b", CPUs: n, Rep: rep0, PPS: 60000 * float64(n)})
		}
	}
	svg := svgPlot(rep)
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("the SVG is not well-formed XML: %v", err)
			}
			break
		}
	}
	if n := strings.Count(svg, `fill="#4c72b0"`); n != 3 { // 2 bars and the legend
		t.Errorf("%d blue rectangles, want 3", n)
	}
}
