package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/insane-netdev/insane/tests/vm/internal/figure"
	"github.com/insane-netdev/insane/tests/vm/runner/testevent"
)

// The guest reports on two serial ports.
//
// Its test port (ttyS2) carries the output of the guest test binary exactly as
// the binary printed it with -test.v=test2json. In test mode the host turns it
// into test events with go tool test2json; as go test -exec it copies it to
// its standard output for go test to read.
//
// Its results port (ttyS1) carries marker lines that start with markerPrefix,
// the test events of the checks that are not Go tests (tests/vm/scripts/*.sh
// and the debug run's kmemleak check, written by the eventrun helper as JSON
// lines), the kernel log between two markers, and in -mode exec and demo the
// guest program's output.
const markerPrefix = "@@@ "

// Markers written by the guest init.
const (
	markBegin      = "begin"       // init is up
	markExit       = "exit"        // "exit NAME STATUS": a guest program ended
	markDmesgBegin = "dmesg-begin" // kernel log follows
	markDmesgEnd   = "dmesg-end"
	markDone       = "done" // everything ran; the guest powers off next
)

// guestTest is the name of the guest test binary in exit markers.
const guestTest = "guest.test"

// Test statuses.
const (
	statusPass = "PASS"
	statusFail = "FAIL"
	statusSkip = "SKIP"
)

// testResult is one test or subtest.
type testResult struct {
	Package string
	Name    string
	Status  string  // statusPass, statusFail, statusSkip, or "" if it never ended
	Elapsed float64 // seconds, as the test's end event says
	// Output holds the lines of output the events attribute to the test,
	// without their newlines, its own "=== RUN" and "--- PASS" lines too.
	Output []string

	depth   int
	partial string // output after the last newline
}

// Depth is 0 for a top-level test or a script, 1 for a subtest, and so on.
func (t *testResult) Depth() int { return t.depth }

// Log returns the test's output without the lines that frame it ("=== RUN
// NAME", "--- FAIL: NAME (...)", ...): what the test itself logged or printed.
func (t *testResult) Log() []string {
	var out []string
	for _, l := range t.Output {
		if !isFrame(t.Name, l) {
			out = append(out, l)
		}
	}
	return out
}

// isFrame reports whether line is one of the lines go test -v prints about
// test name itself: they are in the test's output events too.
func isFrame(name, line string) bool {
	for _, verb := range []string{"RUN   ", "PAUSE ", "CONT  ", "NAME  "} {
		if line == "=== "+verb+name {
			return true
		}
	}
	trimmed := strings.TrimLeft(line, " ")
	for _, st := range []string{statusPass, statusFail, statusSkip} {
		if strings.HasPrefix(trimmed, "--- "+st+": "+name+" (") {
			return true
		}
	}
	return false
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
	// Stray holds output that belongs to no test: the test binary's
	// closing PASS or FAIL, a panic before any test ran, lines on the
	// results port that are not events.
	Stray []string

	strayPartial string
	inDmesg      bool
}

func newResults() *results { return &results{byName: make(map[string]*testResult)} }

// Event consumes one test event. It returns the test the event ended, if
// any, and the lines of output the event completed.
func (r *results) Event(e testevent.Event) (ended *testResult, lines []string) {
	if e.Test == "" {
		if e.Action == testevent.Output {
			lines, r.strayPartial = splitLines(r.strayPartial, e.Output)
			r.Stray = append(r.Stray, lines...)
		}
		return nil, lines
	}
	t := r.byName[e.Test]
	if t == nil {
		t = &testResult{Package: e.Package, Name: e.Test}
		if i := strings.LastIndexByte(e.Test, '/'); i > 0 {
			if p := r.byName[e.Test[:i]]; p != nil && p.Package == e.Package {
				t.depth = p.depth + 1
			}
		}
		r.byName[e.Test] = t
		r.Tests = append(r.Tests, t)
	}
	switch e.Action {
	case testevent.Output:
		lines, t.partial = splitLines(t.partial, e.Output)
		t.Output = append(t.Output, lines...)
	case testevent.Pass, testevent.Fail, testevent.Skip:
		t.flush()
		t.Status = map[string]string{testevent.Pass: statusPass, testevent.Fail: statusFail, testevent.Skip: statusSkip}[e.Action]
		t.Elapsed = e.Elapsed
		return t, nil
	}
	return nil, lines
}

// splitLines appends text to partial and splits off the complete lines.
func splitLines(partial, text string) (lines []string, rest string) {
	s := partial + text
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return lines, s
		}
		lines = append(lines, strings.TrimSuffix(s[:i], "\r"))
		s = s[i+1:]
	}
}

func (t *testResult) flush() {
	if t.partial != "" {
		t.Output = append(t.Output, t.partial)
		t.partial = ""
	}
}

// Finish ends the stream: output that never got its newline is kept.
func (r *results) Finish() {
	for _, t := range r.Tests {
		t.flush()
	}
	if r.strayPartial != "" {
		r.Stray = append(r.Stray, r.strayPartial)
		r.strayPartial = ""
	}
}

// Line consumes one line of the results port. It returns the marker the line
// carried, if any; otherwise, if events is true and the line is a test
// event, the event, which the caller passes to Event. The kernel log is kept
// in Dmesg.
func (r *results) Line(line string, events bool) (marker string, ev *testevent.Event) {
	line = strings.TrimRight(line, "\r\n")
	if rest, ok := strings.CutPrefix(line, markerPrefix); ok {
		r.marker(rest)
		return rest, nil
	}
	if r.inDmesg {
		r.Dmesg = append(r.Dmesg, line)
		return "", nil
	}
	if events && strings.HasPrefix(line, "{") {
		if e, err := testevent.Parse([]byte(line)); err == nil {
			return "", &e
		}
	}
	return "", nil
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
	case markDmesgBegin:
		r.inDmesg = true
	case markDmesgEnd:
		r.inDmesg = false
	case markDone:
		r.Done = true
	}
}

// exitStatus returns the exit status of guest program name, and whether it
// exited at all.
func (r *results) exitStatus(name string) (int, bool) {
	for _, e := range r.Exits {
		if e.Name == name {
			return e.Status, true
		}
	}
	return 0, false
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
	for _, l := range t.Output {
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
