package policyparse

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/policytest"
)

// TestCases runs the grammar's shared cases (go/genl/policytest/cases.txt)
// through Parse, as the CNI plugin reads its tx policy. The CLI's unit
// tests run the same cases through its command line.
func TestCases(t *testing.T) {
	cases, err := policytest.Cases()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		// Direction words belong to the command lines (CLI, ip plugin);
		// Parse reads one direction's policy, as the plugin's tx and rx.
		if hasWord(tc.Args, "rx") || hasWord(tc.Args, "tx") {
			continue
		}
		t.Run(tc.Name(), func(t *testing.T) {
			p, err := Parse(tc.Args)
			if tc.Err != "" {
				var pe *Error
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.Err) {
					t.Errorf("cases.txt:%d: error %v, want an *Error with %q", tc.Line, err, tc.Err)
				}
				return
			}
			if err != nil {
				t.Fatalf("cases.txt:%d: %v", tc.Line, err)
			}
			if err := p.Validate(); err != nil {
				t.Errorf("cases.txt:%d: the policy read is invalid: %v", tc.Line, err)
			}
			if p.String() != tc.Policy {
				t.Errorf("cases.txt:%d: read %q, want %q", tc.Line, p, tc.Policy)
			}
			// What String prints reads back as the same policy.
			q, err := ParseString(p.String())
			if err != nil || q.String() != p.String() {
				t.Errorf("cases.txt:%d: %q reads back as %q, %v", tc.Line, p, q, err)
			}
		})
	}
}

func hasWord(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

func TestParseRefuses(t *testing.T) {
	for s, want := range map[string]string{
		"":                       "a policy needs mode",
		"   ":                    "a policy needs mode",
		"lower eth0 mode pass":   `unknown keyword "lower"`,
		"mode pass reset-stats":  `unknown keyword "reset-stats"`,
		"mode percent 5 seed 1x": `seed "1x"`,
	} {
		_, err := ParseString(s)
		var pe *Error
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseString(%q) = %v, want an *Error with %q", s, err, want)
		}
	}
}

func TestParseAbbreviations(t *testing.T) {
	p, err := ParseString("m perc 20 s 3")
	if err != nil || p.String() != "mode percent 20 seed 3" {
		t.Errorf("m perc 20 s 3: %q, %v", p, err)
	}
	p, err = ParseString("e m ti 1s 2s c")
	if err != nil || p.String() != "mode time 1s 2s carrier events" || !p.Carrier || !p.Events {
		t.Errorf("e m ti 1s 2s c: %q, %v", p, err)
	}
}

func TestCheckFlags(t *testing.T) {
	sched := genl.Schedule(false, nil, genl.Step{Duration: time.Second, Action: genl.Pass()},
		genl.Step{Duration: genl.EdgeMin - 1, Action: genl.Drop()})
	for _, tc := range []struct {
		mode            *genl.Policy
		carrier, events bool
		want            string
	}{
		{nil, false, false, ""},
		{&sched, false, false, ""},
		{ptr(genl.Time(genl.EdgeMin, genl.EdgeMin)), true, true, ""},
		{nil, false, true, "events goes with mode time or schedule"},
		{ptr(genl.Pass()), true, true, "carrier goes with mode time or schedule, not mode pass"},
		{&sched, true, false, "carrier needs windows of at least 10ms: step 2 lasts 9999999ns"},
		{ptr(genl.Time(genl.EdgeMin, 0)), true, true, "carrier and events need windows of at least 10ms: OFF lasts 0s"},
	} {
		err := CheckFlags(tc.mode, tc.carrier, tc.events)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("CheckFlags(%v, %v, %v) = %v, want %q", tc.mode, tc.carrier, tc.events, err, tc.want)
		}
	}
	// The same windows as the client's Validate.
	p := sched
	p.Carrier = true
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "carrier needs windows of at least 10ms: step 2 lasts 9999999ns") {
		t.Errorf("Validate = %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestTime(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"0": 0, "1": 10 * time.Millisecond, "50": 500 * time.Millisecond, "100": time.Second,
		"500ms": 500 * time.Millisecond, "1s": time.Second, "250us": 250 * time.Microsecond,
		"250µs": 250 * time.Microsecond, "1.5s": 1500 * time.Millisecond, "7ns": 7, "2m": 2 * time.Minute,
	} {
		got, err := Time(s)
		if err != nil || got != want {
			t.Errorf("Time(%q) = %v, %v, want %v", s, got, err, want)
		}
	}
}

func TestPercent(t *testing.T) {
	for s, want := range map[string]float64{"0": 0, "100": 100, "12.5": 12.5, "12.5%": 12.5, ".5": 0.5, "7.": 7, "0.000001": 0.000001} {
		got, err := Percent(s)
		if err != nil || got != want {
			t.Errorf("Percent(%q) = %v, %v, want %v", s, got, err, want)
		}
	}
}

// FuzzParse feeds arbitrary policy strings: Parse must not panic, what it
// accepts must be a valid policy, and its String must read back as the
// same policy.
func FuzzParse(f *testing.F) {
	cases, err := policytest.Cases()
	if err != nil {
		f.Fatal(err)
	}
	for _, tc := range cases {
		f.Add(tc.Name())
	}
	f.Add("")
	f.Add("m p 1 s 0x0")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseString(s)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Msg == "" {
				t.Fatalf("%q: error %v is not an *Error with a message", s, err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("%q: accepted an invalid policy %+v: %v", s, p, err)
		}
		q, err := ParseString(p.String())
		if err != nil || q.String() != p.String() {
			t.Fatalf("%q read as %q, which reads back as %q, %v", s, p, q, err)
		}
	})
}

// TestExtra reads the words into the fields, alone.
func TestExtra(t *testing.T) {
	var p genl.Policy
	rest, err := Extra("rate", strings.Fields("100mbit buffer 50ms overhead 38 delay 20ms"), &p)
	if err != nil || p.Rate != 100e6 || p.Buffer != 50*time.Millisecond || p.Overhead != 38 || strings.Join(rest, " ") != "delay 20ms" {
		t.Errorf("rate: %+v %v %v", p, rest, err)
	}
	rest, err = Extra("corrupt", strings.Fields("0.5 header seed 3"), &p)
	if err != nil || p.Corrupt != 0.5 || !p.CorruptHeader || strings.Join(rest, " ") != "seed 3" {
		t.Errorf("corrupt: %+v %v %v", p, rest, err)
	}
	rest, err = Extra("duplicate", strings.Fields("1% header"), &p)
	if err != nil || p.Duplicate != 1 || strings.Join(rest, " ") != "header" {
		t.Errorf("duplicate: %+v %v %v", p, rest, err)
	}
	for _, w := range []string{"jitter", "correlation", "distribution", "reorder", "overhead", "buffer", "header"} {
		if !SubWord(w) || StraySubWord(w) == nil {
			t.Errorf("%s is not a word that follows another", w)
		}
	}
	if SubWord("rate") || !ExtraKeyword("rate") || ExtraKeyword("r") || ExtraKeyword("dup") {
		t.Error("keywords")
	}
}
