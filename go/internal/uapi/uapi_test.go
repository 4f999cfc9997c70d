package uapi

import (
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insane-netdev/insane/go/internal/uapi/internal/cheader"
)

const headerPath = "../../../kernel/include/uapi/linux/insane.h"

func readHeader(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(headerPath)
	if err != nil {
		t.Fatalf("reading the uapi header: %v", err)
	}
	return string(b)
}

// TestGeneratedUpToDate fails when zz_generated.go is not what the generator
// makes from the header now: run "go generate ./go/internal/uapi".
func TestGeneratedUpToDate(t *testing.T) {
	want, err := cheader.Generate("uapi", "include/uapi/linux/insane.h", "INSANE_", readHeader(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("zz_generated.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("zz_generated.go is stale: run \"go generate ./go/internal/uapi\"")
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
	if DeviceFAll != DeviceFDetach|DeviceFResetStats || DeviceFDetach != 1 || DeviceFResetStats != 2 {
		t.Errorf("device flags %d %d %d", DeviceFDetach, DeviceFResetStats, DeviceFAll)
	}
	if CmdMax != CmdEvent || DeviceAMax != DeviceAEvent || PolicyAMax != PolicyAOffNs ||
		StatsAMax != StatsADropMalformed || EventMax != EventResetStats || ModeMax != ModeTime {
		t.Error("a *_MAX constant is not the last enumerator")
	}
	if GenlName != "insane" || LinkKind != "insane" || GenlMcgrpEvents != "events" || GenlVersion != 1 {
		t.Error("names or version changed")
	}
}

func TestMixSplitMix64Vectors(t *testing.T) {
	// With seed 0 the sequence is SplitMix64's reference output for state 0.
	want := []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f}
	for k, w := range want {
		if got := Mix(0, uint64(k)); got != w {
			t.Errorf("Mix(0, %d) = %#x, want %#x", k, got, w)
		}
	}
	// The seed shifts the whole sequence: Mix(S, k) == Mix(S+golden, k-1).
	for k := uint64(1); k < 100; k++ {
		if Mix(42, k) != Mix(42+golden, k-1) {
			t.Fatalf("Mix(42, %d) is not the continuation of the sequence", k)
		}
	}
}

// bigRelays is the header's formula computed with unbounded integers, from
// the header's own words, to check Relays for overflow or truncation.
func bigRelays(seed, k uint64, percent uint32) bool {
	mod := new(big.Int).Lsh(big.NewInt(1), 64)
	u := func(v uint64) *big.Int { return new(big.Int).SetUint64(v) }
	x := new(big.Int).Add(u(seed), new(big.Int).Mul(u(k+1), u(golden)))
	x.Mod(x, mod)
	step := func(shift uint, mul uint64) {
		y := new(big.Int).Rsh(x, shift)
		x.Xor(x, y)
		x.Mul(x, u(mul))
		x.Mod(x, mod)
	}
	step(30, mix1)
	step(27, mix2)
	x.Xor(x, new(big.Int).Rsh(x, 31))
	lhs := new(big.Int).Mul(new(big.Int).Rsh(x, 32), big.NewInt(PercentMax))
	rhs := new(big.Int).Lsh(u(uint64(percent)), 32)
	return lhs.Cmp(rhs) < 0
}

func TestRelaysMatchesUnboundedArithmetic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		seed, k := r.Uint64(), r.Uint64N(1<<20)
		percent := uint32(r.Uint64N(PercentMax + 1))
		if i%7 == 0 {
			percent = r.Uint32() // out of range values too
		}
		if got, want := Relays(seed, k, percent), bigRelays(seed, k, percent); got != want {
			t.Fatalf("Relays(%d, %d, %d) = %v, want %v", seed, k, percent, got, want)
		}
	}
}

func TestRelaysBounds(t *testing.T) {
	for k := uint64(0); k < 10000; k++ {
		if Relays(7, k, 0) {
			t.Fatalf("0 %% relayed packet %d", k)
		}
		if !Relays(7, k, PercentMax) {
			t.Fatalf("100 %% dropped packet %d", k)
		}
	}
	// 50 %: the draw must be below 2^31.
	if !RelaysDraw(1<<31-1, 50*PercentScale) || RelaysDraw(1<<31, 50*PercentScale) {
		t.Error("50 % threshold is not at 2^31")
	}
	if RelaysDraw(0, 0) || !RelaysDraw(1<<32-1, PercentMax) {
		t.Error("extreme draws")
	}
}

func TestRelaysRate(t *testing.T) {
	const n = 200000
	for _, pct := range []uint32{1 * PercentScale, 12500000, 80 * PercentScale, 99 * PercentScale} {
		relayed := 0
		for k := uint64(0); k < n; k++ {
			if Relays(12345, k, pct) {
				relayed++
			}
		}
		got := float64(relayed) / n * 100
		want := float64(pct) / PercentScale
		if d := got - want; d > 0.5 || d < -0.5 {
			t.Errorf("percent %v: relayed %.3f %%", want, got)
		}
	}
}

func TestRelaysDeterministic(t *testing.T) {
	// Same seed, same sequence; another seed, another sequence.
	first := make([]bool, 1000)
	for k := range first {
		first[k] = Relays(1, uint64(k), 50*PercentScale)
	}
	diff := 0
	for k := range first {
		if Relays(1, uint64(k), 50*PercentScale) != first[k] {
			t.Fatalf("packet %d: a second evaluation differs", k)
		}
		if Relays(2, uint64(k), 50*PercentScale) != first[k] {
			diff++
		}
	}
	if diff < 400 || diff > 600 {
		t.Errorf("seeds 1 and 2 differ on %d of 1000 packets", diff)
	}
}
