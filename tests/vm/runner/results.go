package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/insane-netdev/insane/tests/vm/internal/figure"
)

// The guest writes to its results port the verbose output of `go test`, the
// same framing for shell scripts (=== RUN / --- PASS lines written by init),
// and marker lines that start with markerPrefix.
const markerPrefix = "@@@ "

// Markers written by the guest init.
const (
	markBegin      = "begin"       // init is up
	markExit       = "exit"        // "exit NAME STATUS": a guest program ended
	markDmesgBegin = "dmesg-begin" // kernel log follows
	markDmesgEnd   = "dmesg-end"
	markDone       = "done" // everything ran; the guest powers off next
)

// Test statuses.
const (
	statusPass = "PASS"
	statusFail = "FAIL"
	statusSkip = "SKIP"
)

// testResult is one test or subtest.
type testResult struct {
	Name    string
	Status  string // statusPass, statusFail, statusSkip, or "" if it never ended
	Elapsed string // as printed by the test, e.g. "0.12s"
	Log     []string
}

// scriptPrefix starts the name of a tests/vm/scripts check.
const scriptPrefix = "script/"

// Depth is 0 for a top-level test or a script, 1 for a subtest, and so on.
func (t *testResult) Depth() int {
	if strings.HasPrefix(t.Name, scriptPrefix) {
		return 0
	}
	return strings.Count(t.Name, "/")
}

// exitRecord is a guest program's exit status.
type exitRecord struct {
	Name   string
	Status int
}

// results accumulates what the guest reported.
type results struct {
	Tests  []*testResult
	byName map[string]*testResult
	Exits  []exitRecord
	Dmesg  []string
	Begun  bool
	Done   bool
	// Stray holds output that belongs to no test (the test binary's
	// closing PASS/FAIL, a panic before any test ran, ...).
	Stray []string

	current string // test that output lines belong to
	inDmesg bool
}

func newResults() *results { return &results{byName: make(map[string]*testResult)} }

var (
	reFrame = regexp.MustCompile(`^=== (RUN|PAUSE|CONT|NAME)\s+(\S+)\s*$`)
	reEnd   = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(([^)]*)\)\s*$`)
)

func (r *results) test(name string) *testResult {
	t, ok := r.byName[name]
	if !ok {
		t = &testResult{Name: name}
		r.byName[name] = t
		r.Tests = append(r.Tests, t)
	}
	return t
}

// Line consumes one line of guest output. It returns the test that this line
// ended, if any, and the marker it carried, if any.
func (r *results) Line(line string) (ended *testResult, marker string) {
	line = strings.TrimRight(line, "\r\n")
	if rest, ok := strings.CutPrefix(line, markerPrefix); ok {
		r.marker(rest)
		return nil, rest
	}
	if r.inDmesg {
		r.Dmesg = append(r.Dmesg, line)
		return nil, ""
	}
	if m := reFrame.FindStringSubmatch(line); m != nil {
		r.test(m[2])
		r.current = m[2]
		return nil, ""
	}
	if m := reEnd.FindStringSubmatch(line); m != nil {
		t := r.test(m[2])
		t.Status, t.Elapsed = m[1], m[3]
		// Without -test.v a test's log follows its --- line, and with
		// it any later output of another test comes after a === NAME
		// line, so the following lines belong to this test either way.
		r.current = t.Name
		return t, ""
	}
	if r.current != "" {
		t := r.byName[r.current]
		// The closing lines of the test binary belong to no test.
		if t.Status != "" && (line == "PASS" || line == "FAIL" || strings.HasPrefix(line, "ok  ") || strings.HasPrefix(line, "FAIL\t")) {
			r.current = ""
			r.Stray = append(r.Stray, line)
			return nil, ""
		}
		t.Log = append(t.Log, line)
		return nil, ""
	}
	r.Stray = append(r.Stray, line)
	return nil, ""
}

func (r *results) marker(m string) {
	fields := strings.Fields(m)
	if len(fields) == 0 {
		return
	}
	switch fields[0] {
	case markBegin:
		r.Begun = true
	case markExit:
		if len(fields) == 3 {
			if st, err := strconv.Atoi(fields[2]); err == nil {
				r.Exits = append(r.Exits, exitRecord{Name: fields[1], Status: st})
			}
		}
		r.current = ""
	case markDmesgBegin:
		r.inDmesg = true
	case markDmesgEnd:
		r.inDmesg = false
	case markDone:
		r.Done = true
	}
}

// testFigure is one headline figure of a test.
type testFigure struct {
	Name  string
	Value uint64
}

// Figures returns the figures the test logged, in the order it logged them,
// if it passed: a failed test's figures would describe work that was not all
// checked.
func (t *testResult) Figures() []testFigure {
	if t.Status != statusPass {
		return nil
	}
	var out []testFigure
	for _, l := range t.Log {
		if name, n, ok := figure.Parse(l); ok {
			out = append(out, testFigure{name, n})
		}
	}
	return out
}

// Counts returns the number of tests that passed, failed and were skipped.
// A test that started and never ended counts as failed.
func (r *results) Counts() (passed, failed, skipped int) {
	for _, t := range r.Tests {
		switch t.Status {
		case statusPass:
			passed++
		case statusSkip:
			skipped++
		default:
			failed++
		}
	}
	return
}

// Problems lists why the run failed apart from individual test failures:
// guest programs that exited non-zero without a failed test explaining it,
// and a guest that never finished. It is empty for a good run.
func (r *results) Problems() []string {
	var p []string
	_, failed, _ := r.Counts()
	for _, e := range r.Exits {
		if e.Status != 0 && failed == 0 {
			p = append(p, fmt.Sprintf("%s exited with status %d", e.Name, e.Status))
		}
	}
	if !r.Begun {
		p = append(p, "the guest init never started")
	} else if !r.Done {
		p = append(p, "the guest did not finish")
	}
	return p
}
