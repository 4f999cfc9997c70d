package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/insane-netdev/insane/tests/vm/runner/testevent"
)

// framed is what a test binary prints with -test.v=test2json: its framing
// lines start with ^V.
const framed = "\x16=== RUN   TestA\n" +
	"    a_test.go:3: figure: lower removals = 10\n" +
	"\x16=== RUN   TestA/sub\n" +
	"    a_test.go:4: sub is broken\n" +
	"\x16--- FAIL: TestA/sub (0.01s)\n" +
	"\x16--- FAIL: TestA (0.02s)\n" +
	"\x16=== RUN   TestB\n" +
	"\x16--- PASS: TestB (0.00s)\n" +
	"\x16FAIL\n"

func TestTestPortCopiesAll(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got strings.Builder
	port := newTestPort(r, nopCloser{&got}, nil)
	// The guest's output is all in the pipe when the exit marker comes,
	// and the writer (QEMU) stays open.
	data := strings.Repeat(framed, 2000) // more than a pipe holds
	done := make(chan error, 1)
	go func() {
		_, err := w.WriteString(data)
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := port.Drain(); err != nil {
		t.Fatal(err)
	}
	if got.String() != data {
		t.Errorf("copied %d bytes, want %d", got.Len(), len(data))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Drain took %v with the writer open", d)
	}
	w.Close()
	if err := port.Close(); err != nil {
		t.Errorf("Close after Drain: %v", err)
	}
}

// TestTest2jsonPipeline feeds framed output through the test port and go
// tool test2json into a session, as a test mode run does.
func TestTest2jsonPipeline(t *testing.T) {
	if _, err := exec.LookPath(goTool()); err != nil {
		t.Skip("no go tool:", err)
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	var out, guestLog strings.Builder
	var events []testevent.Event
	cfg := &config{mode: "test", root: root}
	s := &session{cfg: cfg, res: newResults(), guestLog: &guestLog, printer: testPrinter(&out, false)}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	port, err := s.test2json(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString(framed); err != nil {
		t.Fatal(err)
	}
	if err := port.Drain(); err != nil {
		t.Fatal(err)
	}
	// After the drain, the results port goes on with a script.
	s.resultsLine(`{"Action":"run","Package":"s","Test":"script/a.sh"}` + "\n")
	s.resultsLine(`{"Action":"pass","Package":"s","Test":"script/a.sh","Elapsed":0.5}` + "\n")
	for _, tr := range s.res.Tests {
		events = append(events, testevent.Event{Test: tr.Name, Action: tr.Status})
	}
	want := []testevent.Event{{Test: "TestA", Action: "FAIL"}, {Test: "TestA/sub", Action: "FAIL"}, {Test: "TestB", Action: "PASS"}, {Test: "script/a.sh", Action: "PASS"}}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("tests %v, want %v", events, want)
	}
	wantOut := "    FAIL TestA/sub (0.01s)\n" +
		"        |     a_test.go:4: sub is broken\n" +
		"FAIL TestA (0.02s)\n" +
		"    |     a_test.go:3: figure: lower removals = 10\n" +
		"PASS TestB (0.00s)\n" +
		"PASS script/a.sh (0.50s)\n"
	if out.String() != wantOut {
		t.Errorf("printed:\n%s\nwant:\n%s", out.String(), wantOut)
	}
	// guest.log has the text without the ^V framing.
	if want := strings.ReplaceAll(framed, "\x16", ""); guestLog.String() != want {
		t.Errorf("guest log %q, want %q", guestLog.String(), want)
	}
	if !reflect.DeepEqual(s.res.Stray, []string{"FAIL"}) {
		t.Errorf("stray %q", s.res.Stray)
	}
}
