// Package testevent is Go's standard test event stream, the JSON lines that
// go test -json and go tool test2json write (go doc cmd/test2json), as the
// VM runner reads it and as the guest's eventrun helper writes it for checks
// that are not Go tests (tests/vm/scripts/*.sh, the debug run's kmemleak
// check).
package testevent

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Actions of the events, as cmd/test2json documents them.
const (
	Start  = "start"
	Run    = "run"
	Pause  = "pause"
	Cont   = "cont"
	Pass   = "pass"
	Bench  = "bench"
	Fail   = "fail"
	Output = "output"
	Skip   = "skip"
)

// Event is one event of the stream: the TestEvent of go doc cmd/test2json.
// An event with no Test is about the package's test binary as a whole.
type Event struct {
	Time        time.Time `json:",omitzero"`
	Action      string
	Package     string  `json:",omitempty"`
	Test        string  `json:",omitempty"`
	Elapsed     float64 `json:",omitempty"` // seconds, on pass and fail
	Output      string  `json:",omitempty"`
	FailedBuild string  `json:",omitempty"`
}

// Parse decodes one line of the stream.
func Parse(line []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(line, &e); err != nil {
		return Event{}, err
	}
	if e.Action == "" {
		return Event{}, fmt.Errorf("test event without an Action: %.80s", line)
	}
	return e, nil
}

// Writer writes the events of one test, as go test -json would for a test
// of that name: run, output (its "=== RUN" line, what it printed, its "---
// PASS" or "--- FAIL" line) and pass or fail.
type Writer struct {
	enc   *json.Encoder
	pkg   string
	test  string
	start time.Time
	now   func() time.Time
}

// NewWriter returns a Writer of test name in package pkg. now gives the
// events' times (time.Now if nil).
func NewWriter(w io.Writer, pkg, name string, now func() time.Time) *Writer {
	if now == nil {
		now = time.Now
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &Writer{enc: enc, pkg: pkg, test: name, now: now}
}

func (w *Writer) emit(t time.Time, action, output string, elapsed float64) error {
	return w.enc.Encode(Event{Time: t, Action: action, Package: w.pkg, Test: w.test, Output: output, Elapsed: elapsed})
}

// Run starts the test.
func (w *Writer) Run() error {
	w.start = w.now()
	if err := w.emit(w.start, Run, "", 0); err != nil {
		return err
	}
	return w.emit(w.start, Output, fmt.Sprintf("=== RUN   %s\n", w.test), 0)
}

// Output writes output of the test, usually one line with its newline.
func (w *Writer) Output(text string) error {
	if text == "" {
		return nil
	}
	return w.emit(w.now(), Output, text, 0)
}

// End ends the test: it passed if ok, else it failed.
func (w *Writer) End(ok bool) error {
	t := w.now()
	elapsed := t.Sub(w.start).Seconds()
	action, word := Pass, "PASS"
	if !ok {
		action, word = Fail, "FAIL"
	}
	if err := w.emit(t, Output, fmt.Sprintf("--- %s: %s (%.2fs)\n", word, w.test, elapsed), 0); err != nil {
		return err
	}
	return w.emit(t, action, "", elapsed)
}
