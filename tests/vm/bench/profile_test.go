package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
)

const perfScript = `kpktgend_0 
	ffffffffc0a01234 insane_xmit
	ffffffff81a00000 dev_hard_start_xmit
	ffffffff81900000 pktgen_thread_worker

kpktgend_0 
	ffffffffc0a01234 insane_xmit
	ffffffff81a00000 dev_hard_start_xmit
	ffffffff81900000 pktgen_thread_worker

swapper 
	ffffffff81000000 default_idle (/kernel.kallsyms)
	ffffffff81000100 [unknown]

insane-bench 
	ffffffff81000200 a;b
`

func TestFoldStacks(t *testing.T) {
	got, err := foldStacks(strings.NewReader(perfScript))
	if err != nil {
		t.Fatal(err)
	}
	want := []stackCount{
		{"kpktgend_0;pktgen_thread_worker;dev_hard_start_xmit;insane_xmit", 2},
		{"insane-bench;a:b", 1},
		{"swapper;[unknown];default_idle", 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("foldStacks =\n%v\nwant\n%v", got, want)
	}
}

func TestReadProfiles(t *testing.T) {
	log := "noise\n" + profBegin + "b pktgen insane pass\n" +
		profReport + "# Samples: 4\n" +
		profReport + "    50.00%  [k] insane_xmit\n" +
		profFolded + "3 kpktgend_0;insane_xmit\n" +
		profFolded + "1 swapper;default_idle\n" +
		profEnd + "\nBENCH-JSON {}\n"
	ps, err := readProfiles(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 {
		t.Fatalf("%d profiles, want 1", len(ps))
	}
	p := ps[0]
	if p.key != "b" || p.source != "pktgen" || p.name != "insane pass" || len(p.report) != 2 || totalSamples(p.folded) != 4 {
		t.Errorf("profile = %+v", p)
	}
	if _, err := readProfiles(strings.NewReader(profBegin + "b pktgen x\n" + profFolded + "x y\n")); err == nil {
		t.Error("a folded line without a count was accepted")
	}
}

func TestFlameSVG(t *testing.T) {
	folded := []stackCount{
		{"kpktgend_0;pktgen_thread_worker;insane_xmit", 3},
		{"kpktgend_0;pktgen_thread_worker;dummy_xmit", 1},
		{"swapper;default_idle<&>", 4},
	}
	root := flameTree(folded)
	if root.samples != 8 || root.depth() != 4 {
		t.Errorf("root has %d samples, depth %d; want 8, 4", root.samples, root.depth())
	}
	if n := root.children["kpktgend_0"].children["pktgen_thread_worker"]; n == nil || n.samples != 4 {
		t.Errorf("pktgen_thread_worker node = %+v, want 4 samples", n)
	}
	svg := flameSVG("title <x>", folded)
	d := xml.NewDecoder(strings.NewReader(svg))
	widths := map[string]float64{}
	var inTitle bool
	var cur string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			inTitle = e.Name.Local == "title"
			if e.Name.Local == "rect" && cur != "" {
				for _, a := range e.Attr {
					if a.Name.Local == "width" {
						var w float64
						fmt.Sscan(a.Value, &w)
						widths[cur] = w
					}
				}
				cur = ""
			}
		case xml.CharData:
			if inTitle {
				cur, _, _ = strings.Cut(string(e), ":")
			}
		case xml.EndElement:
			inTitle = false
		}
	}
	// Widths are proportional to samples (less the 0.5 px gap).
	full := flameWidth - 2*flamePad
	for name, samples := range map[string]float64{"all": 8, "insane_xmit": 3, "dummy_xmit": 1, "default_idle<&>": 4} {
		want := full*samples/8 - 0.5
		if math.Abs(widths[name]-want) > 0.11 {
			t.Errorf("%s is %.1f px wide, want %.1f", name, widths[name], want)
		}
	}
}

func TestInstructionStats(t *testing.T) {
	var runs []runRec
	for rep := 0; rep < 3; rep++ {
		base := 100000.0 + float64(rep)*1000
		runs = append(runs,
			runRec{Case: "a", CPUs: 1, Source: srcUDP, Rep: rep, PPS: base, Sent: 10, Delivered: 10},
			runRec{Case: "b", CPUs: 1, Source: srcUDP, Rep: rep, PPS: base * 0.8, Sent: 10, Delivered: 5},
			// The same case from the other source must not mix in.
			runRec{Case: "b", CPUs: 1, Source: srcPktgen, Rep: rep, PPS: 1})
	}
	m := byRep(runs)
	st := statsFor(m, "b", 1, srcUDP)
	if st.ratio.n != 3 || math.Abs(st.ratio.med-0.8) > 1e-9 || math.Abs(st.ratio.min-0.8) > 1e-9 {
		t.Errorf("ratio = %+v, want 0.8 from 3 rounds", st.ratio)
	}
	if want := 1e9 / (101000 * 0.8); math.Abs(st.nsPerPkt.med-want) > 1e-6 {
		t.Errorf("instructions per packet median %.3f, want %.3f", st.nsPerPkt.med, want)
	}
	if st.delivered.med != 0.5 {
		t.Errorf("left low0 %.2f, want 0.5", st.delivered.med)
	}
	if r := pairRatio(m, "a", "b", 1, srcUDP); r.n != 3 || math.Abs(r.med-1.25) > 1e-9 {
		t.Errorf("pairRatio(a, b) = %+v, want 1.25 from 3 rounds", r)
	}
	// An old log's runs have no source: they are pktgen's.
	old := byRep([]runRec{{Case: "a", CPUs: 2, Rep: 0, PPS: 5}})
	if statsFor(old, "a", 2, srcPktgen).pps.n != 1 {
		t.Error("a run without a source is not counted as pktgen's")
	}
}
