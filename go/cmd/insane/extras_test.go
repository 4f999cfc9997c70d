package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/insane-netdev/insane/go/genl"
)

// TestExtrasCommands: the examples reach the client as Policies
// with their rate, duplication and corruption fields, in either direction
// and in a schedule's steps; a seed set alone on a policy with duplicate
// keeps it.
func TestExtrasCommands(t *testing.T) {
	ms := time.Millisecond
	checkSets(t, map[string]genl.Config{
		"link set insane0 mode pass rate 10mbit": {Policy: &genl.Policy{Mode: genl.ModePass, Rate: 10e6}},
		"link set insane0 mode pass rate 100mbit buffer 50ms delay 20ms": {Policy: &genl.Policy{Mode: genl.ModePass,
			Rate: 100e6, Buffer: 50 * ms, Delay: 20 * ms}},
		"link set insane0 mode percent 99 duplicate 1 corrupt 0.1 seed 3": {Policy: &genl.Policy{Mode: genl.ModePercent,
			Percent: 99, Duplicate: 1, Corrupt: 0.1, Seed: ptr(uint64(3))}},
		"link set insane0 rx mode pass rate 2mbit":           {RxPolicy: &genl.Policy{Mode: genl.ModePass, Rate: 2e6}},
		"link set insane0 mode pass rate 10mbit overhead 38": {Policy: &genl.Policy{Mode: genl.ModePass, Rate: 10e6, Overhead: 38}},
		"link set insane0 mode pass corrupt 0.5 header":      {Policy: &genl.Policy{Mode: genl.ModePass, Corrupt: 0.5, CorruptHeader: true}},
		"link set insane0 rate 1.5MBps mode drop duplicate 100% rx corrupt 2 seed 9 mode pass": {
			Policy:   &genl.Policy{Mode: genl.ModeDrop, Rate: 12e6, Duplicate: 100},
			RxPolicy: &genl.Policy{Mode: genl.ModePass, Corrupt: 2, Seed: ptr(uint64(9))},
		},
		"link set insane0 mode schedule 10s pass rate 1mbit 5s percent 50 corrupt 1 header delay 5ms": {Policy: ptr(genl.Schedule(false, nil,
			genl.Step{Duration: 10 * time.Second, Action: genl.Policy{Mode: genl.ModePass, Rate: 1e6}},
			genl.Step{Duration: 5 * time.Second, Action: genl.Policy{Mode: genl.ModePercent, Percent: 50, Corrupt: 1,
				CorruptHeader: true, Delay: 5 * ms}}))},
	})
	// link add takes them too.
	f := &fakeBackend{}
	if code, _, errOut := runCLI(t, f, "link add ins9 lower veth0 mode pass rate 10mbit rx mode pass rate 2mbit"); code != 0 ||
		len(f.calls) != 1 || f.calls[0] != `AddLinkRx ins9 "veth0" mode pass rate 10mbit rx mode pass rate 2mbit` {
		t.Errorf("link add: exit %d %q %v", code, errOut, f.calls)
	}
	// A seed alone goes with the current policy's duplicate.
	dup := &genl.Device{Name: "ins3", Index: 10, Policy: genl.Policy{Mode: genl.ModePass, Duplicate: 1}}
	f = &fakeBackend{devices: []*genl.Device{dup}}
	if code, _, errOut := runCLI(t, f, "link set ins3 seed 5"); code != 0 || len(f.cfgs) != 1 || f.cfgs[0].Policy.String() != "mode pass duplicate 1 seed 5" {
		t.Errorf("seed on a duplicate: exit %d %q %+v", code, errOut, f.cfgs)
	}
	rated := &genl.Device{Name: "ins3", Index: 10, Policy: genl.Policy{Mode: genl.ModePass, Rate: 1e6}}
	f = &fakeBackend{devices: []*genl.Device{rated}}
	if code, _, errOut := runCLI(t, f, "link set ins3 seed 5"); code != 1 || !strings.Contains(errOut, "or a jitter, duplicate or corrupt") {
		t.Errorf("seed on a rate: exit %d %q", code, errOut)
	}
	// Usage errors: exit 2, one line naming the word.
	for args, msg := range map[string]string{
		"link set insane0 rate 10mbit":                           "rate goes with a mode: mode pass rate R",
		"link set insane0 mode pass buffer 5ms":                  "buffer goes with rate R, before seed and limit: rate R buffer B",
		"link set insane0 mode pass overhead 38":                 "overhead goes with rate R",
		"link set insane0 mode pass header":                      "header goes with corrupt P",
		"link set insane0 mode pass rate 10mbits":                `rate "10mbits": unknown unit "mbits"`,
		"link set insane0 mode pass rate 1.5bit":                 `rate "1.5bit" is not a whole number of bits per second`,
		"link set insane0 mode pass rate 2tbit":                  `rate "2tbit" is not between 8bit and 1tbit`,
		"link set insane0 mode pass rate 1mbit buffer 61s":       `buffer "61s" is above 60s, the longest buffer`,
		"link set insane0 mode pass duplicate 0":                 "duplicate 0 must be above 0",
		"link set insane0 mode pass corrupt 101":                 `corrupt "101" is not a percentage from 0.000001 to 100`,
		"link set insane0 rx mode pass rate 1mbit rate 2mbit":    "rx rate given twice",
		"link set insane0 rx rate 1mbit":                         "rx rate goes with a mode",
		"link set insane0 mode schedule 1s pass once rate 1mbit": "a schedule's rate goes in its steps: 10s pass rate 10mbit",
		"link set insane0 mode schedule 1s pass duplicate 0":     "step 1: duplicate 0 must be above 0",
		"link set insane0 mode pass rate 1mbit seed 3":           "seed goes with mode percent, burst, gilbert or schedule, or a jitter, duplicate or corrupt, not mode pass",
		"link add insane0 tx buffer 5ms":                         `tx needs a policy (mode ... or seed S), not "buffer"`,
	} {
		code, out, errOut := runCLI(t, &fakeBackend{}, args)
		if code != 2 || out != "" || !strings.Contains(errOut, msg) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: exit %d %q, want 2 and one line with %q", args, code, errOut, msg)
		}
	}
	// The kernel's refusal: exit 1, its message on one line.
	f = &fakeBackend{err: &genl.Error{Op: "set device insane0", Err: unix.EINVAL,
		Message: "INSANE_POLICY_A_RATE must be INSANE_RATE_MIN (8) .. INSANE_RATE_MAX (10^12) bits per second"}}
	code, _, errOut := runCLI(t, f, "link set insane0 mode pass rate 10mbit")
	if code != 1 || !strings.Contains(errOut, "INSANE_POLICY_A_RATE") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("kernel refusal: exit %d %q", code, errOut)
	}
}

// TestExtrasShow: show prints the words as typed, in canonical form; -j
// gives them as fields; what show printed sets the same policies.
func TestExtrasShow(t *testing.T) {
	d := &genl.Device{Name: "ins4", Index: 11, LowerName: "veth0", LowerIndex: 3,
		Policy: genl.Policy{Mode: genl.ModePercent, Percent: 99, Seed: ptr(uint64(3)), Delay: 20 * time.Millisecond,
			Rate: 100e6, Overhead: 38, Buffer: 50 * time.Millisecond, Duplicate: 1, Corrupt: 0.1, CorruptHeader: true},
		RxPolicy: &genl.Policy{Mode: genl.ModeSchedule, Steps: []genl.Step{
			{Duration: time.Second, Action: genl.Policy{Mode: genl.ModePass, Rate: 1.5e6}},
			{Duration: time.Second, Action: genl.Policy{Mode: genl.ModeDrop, Duplicate: 12.5}},
		}},
	}
	want := "11: ins4: lower veth0 mode percent 99 delay 20ms rate 100mbit overhead 38 buffer 50ms duplicate 1 corrupt 0.1 header seed 3" +
		" rx mode schedule 1s pass rate 1500kbit 1s drop duplicate 12.5\n"
	f, p, rx, out := showPolicies(t, d, want)
	wantP := map[string]any{"mode": "percent", "percent": 99.0, "seed": 3.0, "delay_ns": 20e6, "rate": 100e6, "overhead": 38.0,
		"buffer_ns": 50e6, "duplicate": 1.0, "corrupt": 0.1, "corrupt_header": true}
	if diff := cmp.Diff(wantP, p); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
	steps := rx["steps"].([]any)
	wantSteps := []any{map[string]any{"mode": "pass", "duration_ns": 1e9, "rate": 1.5e6},
		map[string]any{"mode": "drop", "duration_ns": 1e9, "duplicate": 12.5}}
	if diff := cmp.Diff(wantSteps, steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	// The rate is an exact integer in the JSON text, not a float's form.
	if !strings.Contains(out, `"rate":100000000,`) {
		t.Errorf("-j: %s", out)
	}
	checkShowSets(t, f, d, want)
}

// TestExtrasHelp: the help names every new word and the rate's bounds.
func TestExtrasHelp(t *testing.T) {
	code, out, _ := runCLI(t, &fakeBackend{}, "link help")
	for _, w := range []string{"rate BITS", "overhead BYTES", "buffer WAIT", "duplicate DP", "corrupt CP [ header ]",
		"8bit to 1tbit", "kibit", "tibps", "0 to 4096", "rx mode pass rate 2mbit"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("help lacks %q", w)
		}
	}
}
