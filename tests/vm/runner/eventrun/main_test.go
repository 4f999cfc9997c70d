package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/insane-netdev/insane/tests/vm/runner/testevent"
)

// events runs a bash command line through run and returns its exit status
// and the actions and output of the events it wrote.
func events(t *testing.T, script string) (int, []testevent.Event) {
	t.Helper()
	var b strings.Builder
	status, err := run(&b, "p", "script/x.sh", []string{"bash", "-c", script})
	if err != nil {
		t.Fatal(err)
	}
	var out []testevent.Event
	for _, l := range strings.SplitAfter(strings.TrimSuffix(b.String(), "\n"), "\n") {
		e, err := testevent.Parse([]byte(l))
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if e.Package != "p" || e.Test != "script/x.sh" {
			t.Errorf("event %+v", e)
		}
		if strings.HasPrefix(e.Output, "--- ") {
			// The elapsed time varies.
			e.Output = e.Output[:strings.LastIndexByte(e.Output, '(')]
		}
		out = append(out, testevent.Event{Action: e.Action, Output: e.Output})
	}
	return status, out
}

func TestRunPass(t *testing.T) {
	status, got := events(t, "echo out; echo err >&2")
	want := []testevent.Event{
		{Action: "run"},
		{Action: "output", Output: "=== RUN   script/x.sh\n"},
		{Action: "output", Output: "out\n"},
		{Action: "output", Output: "err\n"},
		{Action: "output", Output: "--- PASS: script/x.sh "},
		{Action: "pass"},
	}
	if status != 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("status %d, events\n%+v\nwant 0,\n%+v", status, got, want)
	}
}

func TestRunFail(t *testing.T) {
	status, got := events(t, "echo broken; printf 'no newline'; exit 3")
	want := []testevent.Event{
		{Action: "run"},
		{Action: "output", Output: "=== RUN   script/x.sh\n"},
		{Action: "output", Output: "broken\n"},
		{Action: "output", Output: "no newline\n"},
		{Action: "output", Output: "    exit status 3\n"},
		{Action: "output", Output: "--- FAIL: script/x.sh "},
		{Action: "fail"},
	}
	if status != 3 || !reflect.DeepEqual(got, want) {
		t.Errorf("status %d, events\n%+v\nwant 3,\n%+v", status, got, want)
	}
}

func TestRunMissingCommand(t *testing.T) {
	var b strings.Builder
	status, err := run(&b, "p", "x", []string{"/nonexistent/command"})
	if err != nil {
		t.Fatal(err)
	}
	if status != 127 || !strings.Contains(b.String(), `"Action":"fail"`) {
		t.Errorf("status %d, events %s", status, b.String())
	}
}
