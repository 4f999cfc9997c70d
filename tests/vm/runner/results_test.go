package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/insane-netdev/insane/tests/vm/runner/testevent"
)

// guestEvents is what go tool test2json makes of a guest test binary's
// -test.v=test2json output: a test with a passing and a failing subtest and
// output after them, a skipped test and a parallel one, then the binary's
// closing FAIL.
const guestEvents = `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:10: hello from A\n"}
{"Action":"run","Package":"p","Test":"TestA/one"}
{"Action":"output","Package":"p","Test":"TestA/one","Output":"=== RUN   TestA/one\n"}
{"Action":"output","Package":"p","Test":"TestA/one","Output":"--- PASS: TestA/one (0.10s)\n"}
{"Action":"pass","Package":"p","Test":"TestA/one","Elapsed":0.1}
{"Action":"run","Package":"p","Test":"TestA/two"}
{"Action":"output","Package":"p","Test":"TestA/two","Output":"=== RUN   TestA/two\n"}
{"Action":"output","Package":"p","Test":"TestA/two","Output":"    a_test.go:20: two is "}
{"Action":"output","Package":"p","Test":"TestA/two","Output":"broken\n"}
{"Action":"output","Package":"p","Test":"TestA/two","Output":"    --- FAIL: TestA/two (0.20s)\n"}
{"Action":"fail","Package":"p","Test":"TestA/two","Elapsed":0.2}
{"Action":"output","Package":"p","Test":"TestA","Output":"stdout of A\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:30: back in A\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- FAIL: TestA (1.50s)\n"}
{"Action":"fail","Package":"p","Test":"TestA","Elapsed":1.5}
{"Action":"run","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestB","Output":"=== RUN   TestB\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:5: no lower device here\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"--- SKIP: TestB (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestB","Elapsed":0}
{"Action":"run","Package":"p","Test":"TestC"}
{"Action":"output","Package":"p","Test":"TestC","Output":"=== RUN   TestC\n"}
{"Action":"output","Package":"p","Test":"TestC","Output":"=== PAUSE TestC\n"}
{"Action":"pause","Package":"p","Test":"TestC"}
{"Action":"cont","Package":"p","Test":"TestC"}
{"Action":"output","Package":"p","Test":"TestC","Output":"=== CONT  TestC\n"}
{"Action":"output","Package":"p","Test":"TestC","Output":"--- PASS: TestC (0.01s)\n"}
{"Action":"pass","Package":"p","Test":"TestC","Elapsed":0.01}
{"Action":"output","Package":"p","Output":"FAIL\n"}
{"Action":"fail","Package":"p","Elapsed":1.6}
`

// resultsPort is what the results port carries around the test binary's
// run: markers, the events eventrun wrote for a failing script, and the
// kernel log, one of whose lines looks like an event.
const resultsPort = `@@@ begin
@@@ exit guest.test 1
{"Action":"run","Package":"s","Test":"script/lower.sh"}
{"Action":"output","Package":"s","Test":"script/lower.sh","Output":"=== RUN   script/lower.sh\n"}
{"Action":"output","Package":"s","Test":"script/lower.sh","Output":"    exit status 3\n"}
{"Action":"output","Package":"s","Test":"script/lower.sh","Output":"--- FAIL: script/lower.sh (0.42s)\n"}
{"Action":"fail","Package":"s","Test":"script/lower.sh","Elapsed":0.42}
not an event
@@@ dmesg-begin
[    1.0] Linux version 6.1.0
{"Action":"pass","Test":"TestDmesg"}
[    2.0] WARNING: CPU: 0 PID: 1 at net/core/dev.c:1 x
@@@ dmesg-end
@@@ done
`

// feed decodes the event lines of stream into r, as the runner does with
// what go tool test2json writes. It returns "STATUS NAME" of each test as
// it ends.
func feed(t *testing.T, r *results, stream string) []string {
	t.Helper()
	var ended []string
	err := decodeEvents(strings.NewReader(stream), func(e testevent.Event) {
		if done, _ := r.Event(e); done != nil {
			ended = append(ended, done.Status+" "+done.Name)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return ended
}

// feedPort passes the results port's lines to r as the runner does.
func feedPort(r *results, port string) (ended, markers []string) {
	for _, l := range strings.SplitAfter(port, "\n") {
		if l == "" {
			continue
		}
		m, ev := r.Line(l, true)
		if m != "" {
			markers = append(markers, m)
		}
		if ev != nil {
			if done, _ := r.Event(*ev); done != nil {
				ended = append(ended, done.Status+" "+done.Name)
			}
		}
	}
	return ended, markers
}

func TestResultsEvents(t *testing.T) {
	r := newResults()
	ended := feed(t, r, guestEvents)
	portEnded, markers := feedPort(r, resultsPort)
	r.Finish()
	ended = append(ended, portEnded...)
	wantEnded := []string{"PASS TestA/one", "FAIL TestA/two", "FAIL TestA", "SKIP TestB", "PASS TestC", "FAIL script/lower.sh"}
	if !reflect.DeepEqual(ended, wantEnded) {
		t.Errorf("ended %q, want %q", ended, wantEnded)
	}
	if want := []string{"begin", "exit guest.test 1", "dmesg-begin", "dmesg-end", "done"}; !reflect.DeepEqual(markers, want) {
		t.Errorf("markers %q, want %q", markers, want)
	}
	var order []string
	for _, tr := range r.Tests {
		order = append(order, tr.Name)
	}
	if want := []string{"TestA", "TestA/one", "TestA/two", "TestB", "TestC", "script/lower.sh"}; !reflect.DeepEqual(order, want) {
		t.Errorf("tests %q, want %q", order, want)
	}
	// Output goes to the test the events name, split in lines, whatever
	// the chunks; Log leaves out the test's own framing lines.
	logs := map[string][]string{
		"TestA":           {"    a_test.go:10: hello from A", "stdout of A", "    a_test.go:30: back in A"},
		"TestA/one":       nil,
		"TestA/two":       {"    a_test.go:20: two is broken"},
		"TestB":           {"    b_test.go:5: no lower device here"},
		"TestC":           nil,
		"script/lower.sh": {"    exit status 3"},
	}
	for name, want := range logs {
		if got := r.byName[name].Log(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s log %q, want %q", name, got, want)
		}
	}
	if got, want := r.byName["TestA/two"].Output, []string{"=== RUN   TestA/two", "    a_test.go:20: two is broken", "    --- FAIL: TestA/two (0.20s)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TestA/two output %q, want %q", got, want)
	}
	depths := map[string]int{"TestA": 0, "TestA/one": 1, "TestA/two": 1, "TestB": 0, "script/lower.sh": 0}
	for name, want := range depths {
		if d := r.byName[name].Depth(); d != want {
			t.Errorf("%s has depth %d, want %d", name, d, want)
		}
	}
	if e := r.byName["TestA/two"].Elapsed; e != 0.2 {
		t.Errorf("TestA/two elapsed %v, want 0.2", e)
	}
	if p, f, s := r.Counts(); p != 2 || f != 3 || s != 1 {
		t.Errorf("Counts = %d passed, %d failed, %d skipped; want 2, 3, 1", p, f, s)
	}
	if want := []exitRecord{{"guest.test", 1}}; !reflect.DeepEqual(r.Exits, want) {
		t.Errorf("exits %v, want %v", r.Exits, want)
	}
	if st, ok := r.exitStatus(guestTest); st != 1 || !ok {
		t.Errorf("exitStatus = %d, %v; want 1, true", st, ok)
	}
	if len(r.Dmesg) != 3 || !strings.Contains(r.Dmesg[2], "WARNING:") || r.byName["TestDmesg"] != nil {
		t.Errorf("dmesg %q (a line of the kernel log is no event)", r.Dmesg)
	}
	if !r.Begun || !r.Done {
		t.Errorf("begun %v done %v", r.Begun, r.Done)
	}
	// The package's own output; "not an event" is the runner's to keep.
	if !reflect.DeepEqual(r.Stray, []string{"FAIL"}) {
		t.Errorf("stray %q", r.Stray)
	}
	// Failed tests explain the non-zero exit status.
	if p := r.Problems(); len(p) != 0 {
		t.Errorf("problems %q", p)
	}
}

func TestResultsUnfinished(t *testing.T) {
	// The binary timed out: test2json saw no end of TestHang/sub, and the
	// panic belongs to the last test that ran.
	r := newResults()
	feed(t, r, `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestHang"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"    hang_test.go:3: waiting\n"}
{"Action":"run","Package":"p","Test":"TestHang/sub"}
{"Action":"output","Package":"p","Test":"TestHang/sub","Output":"panic: test timed out after 1s\n"}
{"Action":"output","Package":"p","Test":"TestHang/sub","Output":"\trunning tests:"}
`)
	feedPort(r, "@@@ begin\n@@@ exit guest.test 2\n")
	r.Finish()
	if p, f, _ := r.Counts(); p != 0 || f != 2 {
		t.Errorf("Counts = %d passed, %d failed; want the two tests that never ended to fail", p, f)
	}
	sub := r.byName["TestHang/sub"]
	if sub.Status != "" || !reflect.DeepEqual(sub.Log(), []string{"panic: test timed out after 1s", "\trunning tests:"}) {
		t.Errorf("TestHang/sub: status %q, log %q", sub.Status, sub.Log())
	}
	if p := r.Problems(); !reflect.DeepEqual(p, []string{"the guest did not finish"}) {
		t.Errorf("problems %q", p)
	}
	r = newResults()
	if p := r.Problems(); !reflect.DeepEqual(p, []string{"the guest init never started"}) {
		t.Errorf("problems %q", p)
	}
}

func TestResultsExitWithoutFailure(t *testing.T) {
	// A test binary that dies (a panic in TestMain, say) before any test
	// fails must still fail the run.
	r := newResults()
	feed(t, r, `{"Action":"start","Package":"p"}
{"Action":"output","Package":"p","Output":"panic: boom\n"}
`)
	feedPort(r, "@@@ begin\n@@@ exit guest.test 2\n@@@ done\n")
	if p := r.Problems(); !reflect.DeepEqual(p, []string{"guest.test exited with status 2"}) {
		t.Errorf("problems %q", p)
	}
	if !reflect.DeepEqual(r.Stray, []string{"panic: boom"}) {
		t.Errorf("stray %q", r.Stray)
	}
}

func TestResultsLineNoEvents(t *testing.T) {
	// In exec and demo mode a JSON line is the program's output.
	r := newResults()
	if m, ev := r.Line(`{"Action":"pass","Test":"TestX"}`+"\n", false); m != "" || ev != nil {
		t.Errorf("Line(events false) = %q, %v", m, ev)
	}
	if m, ev := r.Line(`{"no":"action"}`, true); m != "" || ev != nil {
		t.Errorf("Line(not an event) = %q, %v", m, ev)
	}
}

func TestFigures(t *testing.T) {
	r := newResults()
	feed(t, r, `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:10: 100 lower removals\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:11: figure: lower removals = 100\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:12: figure: datagrams sent = 603552\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":1.5}
{"Action":"run","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:5: figure: fuzz messages = 4\n"}
{"Action":"fail","Package":"p","Test":"TestB","Elapsed":0}
{"Action":"run","Package":"p","Test":"TestC"}
{"Action":"output","Package":"p","Test":"TestC","Output":"    c_test.go:7: figure: not a number = x\n"}
{"Action":"output","Package":"p","Test":"TestC","Output":"    c_test.go:8: figure: too big = 18446744073709551616\n"}
{"Action":"output","Package":"p","Test":"TestC","Output":"    c_test.go:9: the figure: = 3\n"}
{"Action":"pass","Package":"p","Test":"TestC","Elapsed":0.01}
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
	var out strings.Builder
	printFigures(&out, r)
	if want := "vm: figures of TestA: lower removals 100, datagrams sent 603552\n"; out.String() != want {
		t.Errorf("printFigures = %q, want %q", out.String(), want)
	}
}

func TestDecodeEventsRefusesGarbage(t *testing.T) {
	err := decodeEvents(strings.NewReader("{\"Action\":\"run\",\"Test\":\"T\"}\nnot json\n"), func(testevent.Event) {})
	if err == nil {
		t.Error("a line that is no event was accepted")
	}
}
