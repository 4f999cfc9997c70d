package uapi

import (
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insane-netdev/insane/go/internal/cheader"
)

const (
	headerPath = "../../../kernel/include/uapi/linux/insane.h"
	listsPath  = "../../../kernel/counters.h"
)

func readHeader(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(headerPath)
	if err != nil {
		t.Fatalf("reading the uapi header: %v", err)
	}
	return string(b)
}

// TestGeneratedUpToDate fails when a file generated from the header is not
// what the generator makes from it now: this package's constants and
// package genl's Stats and counter table. Run "go generate ./go/...".
func TestGeneratedUpToDate(t *testing.T) {
	const source = "include/uapi/linux/insane.h"
	src := readHeader(t)
	lists, err := os.ReadFile(listsPath)
	if err != nil {
		t.Fatal(err)
	}
	for file, gen := range map[string]func() ([]byte, error){
		"zz_generated.go": func() ([]byte, error) { return cheader.Generate("uapi", source, "INSANE_", src) },
		"../zz_counters.go": func() ([]byte, error) {
			return cheader.GenerateCounters("genl", "github.com/insane-netdev/insane/go/genl/uapi", source, src, string(lists))
		},
	} {
		want, err := gen()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s is stale: run \"go generate ./go/...\"", file)
		}
	}
}

// packageConsts type-checks the non-test Go files of this package and
// returns the value of every exported constant.
func packageConsts(t *testing.T) map[string]constant.Value {
	t.Helper()
	fset := token.NewFileSet()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	conf := types.Config{Importer: importer.Default()}
	pkg, err := conf.Check("uapi", fset, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]constant.Value{}
	for _, name := range pkg.Scope().Names() {
		if c, ok := pkg.Scope().Lookup(name).(*types.Const); ok && c.Exported() {
			out[name] = c.Val()
		}
	}
	return out
}

// TestConstantsMatchHeader compares the header with the constants this
// package really declares, in both directions, independently of the
// generator's output format.
func TestConstantsMatchHeader(t *testing.T) {
	consts, err := cheader.Parse(readHeader(t))
	if err != nil {
		t.Fatal(err)
	}
	goConsts := packageConsts(t)
	fromHeader := map[string]bool{}
	for _, c := range consts {
		name, err := cheader.GoName(c.Name, "INSANE_")
		if err != nil {
			t.Fatal(err)
		}
		if name == "" {
			continue
		}
		fromHeader[name] = true
		got, ok := goConsts[name]
		if !ok {
			t.Errorf("%s (%s) is in the header but not in Go", c.Name, name)
			continue
		}
		var want constant.Value
		if c.Kind == cheader.String {
			want = constant.MakeString(c.Str)
		} else if c.Uint64 {
			want = constant.MakeUint64(uint64(c.Int))
		} else {
			want = constant.MakeInt64(c.Int)
		}
		if !constant.Compare(got, token.EQL, want) {
			t.Errorf("%s: Go %s = %s, header says %s", c.Name, name, got, want)
		}
	}
	for name := range goConsts {
		if !fromHeader[name] {
			t.Errorf("Go constant %s has no counterpart in the header", name)
		}
	}
	if len(fromHeader) < 40 {
		t.Errorf("only %d constants found in the header; the parser is missing some", len(fromHeader))
	}
}

// TestHeaderSemantics pins the values the Go client relies on, as a second,
// hand-written check against a generator bug.
func TestHeaderSemantics(t *testing.T) {
	if PercentMax != 100*PercentScale || PercentScale != 1000000 {
		t.Errorf("PercentMax %d, PercentScale %d", PercentMax, PercentScale)
	}
	if DeviceFAll != DeviceFDetach|DeviceFResetStats|DeviceFRxOff || DeviceFDetach != 1 || DeviceFResetStats != 2 ||
		DeviceFRxOff != 4 {
		t.Errorf("device flags %d %d %d %d", DeviceFDetach, DeviceFResetStats, DeviceFRxOff, DeviceFAll)
	}
	if CmdMax != CmdEvent || DeviceAMax != DeviceAEdge || PolicyAMax != PolicyACorruptHeader || StepsAMax != StepsAStep ||
		StatsAMax != StatsARxCorrupted || StatsADropQueueFull != StatsARxDropMalformed+1 || StatsADropNoMemory != StatsARxHeldBytes+1 ||
		EventMax != EventEdge || ModeMax != ModeSchedule ||
		DirectionMax != DirectionRx || EdgeStateMax != EdgeStateDown || EdgeAMax != EdgeACarrier || DistributionMax != DistributionParetonormal {
		t.Error("a *_MAX constant is not the last enumerator (INSANE_STATS_A_MAX grows with new drop causes)")
	}
	if DirectionTx != 0 || DirectionRx != 1 || EdgeStateUp != 0 || EdgeStateDown != 1 || EdgeMinNs != 10000000 {
		t.Errorf("directions %d %d, edge states %d %d, least window %d ns", DirectionTx, DirectionRx,
			EdgeStateUp, EdgeStateDown, EdgeMinNs)
	}
	// Rate, duplication and corruption (issue 25): the attributes follow
	// LIMIT in the header's order, the salts are 64-bit.
	if PolicyARate != PolicyALimit+1 || PolicyAOverhead != PolicyARate+1 || PolicyABufferNs != PolicyAOverhead+1 ||
		PolicyADuplicate != PolicyABufferNs+1 || PolicyACorrupt != PolicyADuplicate+1 || PolicyACorruptHeader != PolicyACorrupt+1 ||
		RateMin != 8 || RateMax != 1000000000000 || RateOverheadMax != 4096 ||
		ExtraSalt != 0x2545f4914f6cdd1d || CorruptSalt != 0x9fb21c651e98df25 {
		t.Error("the rate, duplicate and corrupt constants moved")
	}
	if GenlName != "insane" || LinkKind != "insane" || GenlMcgrpEvents != "events" || GenlVersion != 1 {
		t.Error("names or version changed")
	}
}
