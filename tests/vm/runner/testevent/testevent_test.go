package testevent

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWriter(t *testing.T) {
	var b strings.Builder
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	w := NewWriter(&b, "pkg", "script/a.sh", func() time.Time {
		clock = clock.Add(250 * time.Millisecond)
		return clock
	})
	if err := w.Run(); err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"line <one> & \"quoted\"\n", "", "bad \xff byte\n"} {
		if err := w.Output(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.End(false); err != nil {
		t.Fatal(err)
	}
	var got []Event
	for _, l := range strings.SplitAfter(strings.TrimSuffix(b.String(), "\n"), "\n") {
		e, err := Parse([]byte(l))
		if err != nil {
			t.Fatalf("Parse(%q): %v", l, err)
		}
		if e.Package != "pkg" || e.Test != "script/a.sh" || e.Time.IsZero() {
			t.Errorf("event %+v: wrong package, test or time", e)
		}
		got = append(got, Event{Action: e.Action, Output: e.Output, Elapsed: e.Elapsed})
	}
	want := []Event{
		{Action: Run},
		{Action: Output, Output: "=== RUN   script/a.sh\n"},
		{Action: Output, Output: "line <one> & \"quoted\"\n"},
		{Action: Output, Output: "bad \uFFFD byte\n"}, // coerced to UTF-8, as test2json does
		{Action: Output, Output: "--- FAIL: script/a.sh (0.75s)\n"},
		{Action: Fail, Elapsed: 0.75},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events\n%+v\nwant\n%+v", got, want)
	}
	if strings.Contains(b.String(), `\u003c`) {
		t.Errorf("HTML-escaped output: %s", b.String())
	}
}

func TestParse(t *testing.T) {
	e, err := Parse([]byte(`{"Time":"2026-12-01T20:48:51.591366391Z","Action":"pass","Package":"x","Test":"TestA/one","Elapsed":0.5}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.Action != Pass || e.Package != "x" || e.Test != "TestA/one" || e.Elapsed != 0.5 || e.Time.Year() != 2026 {
		t.Errorf("Parse = %+v", e)
	}
	for _, bad := range []string{`{"Test":"T"}`, `not json`, `{"Action":3}`} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%s) accepted it", bad)
		}
	}
}
