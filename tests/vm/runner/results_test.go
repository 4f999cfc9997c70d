package main

import (
	"reflect"
	"strings"
	"testing"
)

const guestOutput = `@@@ begin
=== RUN   TestA
    a_test.go:10: hello from A
=== RUN   TestA/one
=== RUN   TestA/two
    a_test.go:20: two is broken
=== NAME  TestA
    a_test.go:30: back in A
--- FAIL: TestA (1.50s)
    --- PASS: TestA/one (0.10s)
    --- FAIL: TestA/two (0.20s)
=== RUN   TestB
    b_test.go:5: no lower device here
--- SKIP: TestB (0.00s)
=== RUN   TestC
=== PAUSE TestC
=== CONT  TestC
--- PASS: TestC (0.01s)
FAIL
@@@ exit guest.test 1
=== RUN   script/lower.sh
    exit status 3
--- FAIL: script/lower.sh (0.42s)
@@@ dmesg-begin
[    1.0] Linux version 6.1.0
[    2.0] WARNING: CPU: 0 PID: 1 at net/core/dev.c:1 x
@@@ dmesg-end
@@@ done
`

func parseAll(text string) (*results, []string) {
	r := newResults()
	var ended []string
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if t, _ := r.Line(l + "\r"); t != nil {
			ended = append(ended, t.Status+" "+t.Name)
		}
	}
	return r, ended
}

func TestResults(t *testing.T) {
	r, ended := parseAll(guestOutput)
	wantEnded := []string{"FAIL TestA", "PASS TestA/one", "FAIL TestA/two", "SKIP TestB", "PASS TestC", "FAIL script/lower.sh"}
	if !reflect.DeepEqual(ended, wantEnded) {
		t.Errorf("ended %q, want %q", ended, wantEnded)
	}
	var order []string
	for _, tr := range r.Tests {
		order = append(order, tr.Name)
	}
	if want := []string{"TestA", "TestA/one", "TestA/two", "TestB", "TestC", "script/lower.sh"}; !reflect.DeepEqual(order, want) {
		t.Errorf("tests %q, want %q", order, want)
	}
	logs := map[string][]string{
		"TestA":           {"    a_test.go:10: hello from A", "    a_test.go:30: back in A"},
		"TestA/two":       {"    a_test.go:20: two is broken"},
		"TestB":           {"    b_test.go:5: no lower device here"},
		"script/lower.sh": {"    exit status 3"},
	}
	for name, want := range logs {
		if got := r.byName[name].Log; !reflect.DeepEqual(got, want) {
			t.Errorf("%s log %q, want %q", name, got, want)
		}
	}
	if d := r.byName["script/lower.sh"].Depth(); d != 0 {
		t.Errorf("script/lower.sh has depth %d, want 0", d)
	}
	if r.byName["TestA/two"].Elapsed != "0.20s" || r.byName["TestA/two"].Depth() != 1 {
		t.Errorf("TestA/two: elapsed %q depth %d", r.byName["TestA/two"].Elapsed, r.byName["TestA/two"].Depth())
	}
	if p, f, s := r.Counts(); p != 2 || f != 3 || s != 1 {
		t.Errorf("Counts = %d passed, %d failed, %d skipped; want 2, 3, 1", p, f, s)
	}
	if want := []exitRecord{{"guest.test", 1}}; !reflect.DeepEqual(r.Exits, want) {
		t.Errorf("exits %v, want %v", r.Exits, want)
	}
	if len(r.Dmesg) != 2 || !strings.Contains(r.Dmesg[1], "WARNING:") {
		t.Errorf("dmesg %q", r.Dmesg)
	}
	if !r.Begun || !r.Done {
		t.Errorf("begun %v done %v", r.Begun, r.Done)
	}
	if !reflect.DeepEqual(r.Stray, []string{"FAIL"}) {
		t.Errorf("stray %q", r.Stray)
	}
	// Failed tests explain the non-zero exit status.
	if p := r.Problems(); len(p) != 0 {
		t.Errorf("problems %q", p)
	}
}

func TestResultsUnfinished(t *testing.T) {
	r, _ := parseAll("@@@ begin\n=== RUN   TestHang\n    hang_test.go:3: waiting\n")
	if p, f, _ := r.Counts(); p != 0 || f != 1 {
		t.Errorf("Counts = %d passed, %d failed; want a test that never ended to fail", p, f)
	}
	if p := r.Problems(); !reflect.DeepEqual(p, []string{"the guest did not finish"}) {
		t.Errorf("problems %q", p)
	}
	r, _ = parseAll("")
	if p := r.Problems(); !reflect.DeepEqual(p, []string{"the guest init never started"}) {
		t.Errorf("problems %q", p)
	}
}

func TestResultsExitWithoutFailure(t *testing.T) {
	// A test binary that dies (a panic in TestMain, say) before any test
	// fails must still fail the run.
	r, _ := parseAll("@@@ begin\npanic: boom\n@@@ exit guest.test 2\n@@@ done\n")
	if p := r.Problems(); !reflect.DeepEqual(p, []string{"guest.test exited with status 2"}) {
		t.Errorf("problems %q", p)
	}
	if !reflect.DeepEqual(r.Stray, []string{"panic: boom"}) {
		t.Errorf("stray %q", r.Stray)
	}
}

func TestFigures(t *testing.T) {
	r, _ := parseAll(`=== RUN   TestA
    a_test.go:10: 100 lower removals
    a_test.go:11: figure: lower removals = 100
    a_test.go:12: figure: datagrams sent = 603552
--- PASS: TestA (1.50s)
=== RUN   TestB
    b_test.go:5: figure: fuzz messages = 4
--- FAIL: TestB (0.00s)
=== RUN   TestC
    c_test.go:7: figure: not a number = x
    c_test.go:8: figure: too big = 18446744073709551616
    c_test.go:9: the figure: = 3
--- PASS: TestC (0.01s)
PASS
`)
	got := map[string][]testFigure{}
	for _, tr := range r.Tests {
		if f := tr.Figures(); f != nil {
			got[tr.Name] = f
		}
	}
	want := map[string][]testFigure{"TestA": {{"lower removals", 100}, {"datagrams sent", 603552}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("figures %v, want %v", got, want)
	}
}
