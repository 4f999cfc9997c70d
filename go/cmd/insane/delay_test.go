package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/insane-netdev/insane/go/genl"
)

// TestDelayCommands: the examples reach the client as Policies
// with their delay fields, and a seed set alone on a policy with a jitter
// keeps it.
func TestDelayCommands(t *testing.T) {
	ms := time.Millisecond
	checkSets(t, map[string]genl.Config{
		"link set insane0 mode pass delay 50ms jitter 10ms": {Policy: &genl.Policy{Mode: genl.ModePass, Delay: 50 * ms, Jitter: 10 * ms}},
		"link set insane0 mode percent 99 delay 20ms jitter 5ms seed 7": {Policy: &genl.Policy{Mode: genl.ModePercent, Percent: 99,
			Delay: 20 * ms, Jitter: 5 * ms, Seed: ptr(uint64(7))}},
		"link set insane0 mode pass rx mode pass delay 30ms": {Policy: ptr(genl.Pass()), RxPolicy: &genl.Policy{Mode: genl.ModePass, Delay: 30 * ms}},
		"link set insane0 mode schedule 10s pass 2s pass delay 400ms 10s pass": {Policy: ptr(genl.Schedule(false, nil,
			genl.Step{Duration: 10 * time.Second, Action: genl.Pass()},
			genl.Step{Duration: 2 * time.Second, Action: genl.Policy{Mode: genl.ModePass, Delay: 400 * ms}},
			genl.Step{Duration: 10 * time.Second, Action: genl.Pass()}))},
		"link set insane0 limit 500 mode pass delay 1s reorder rx delay 2ms distribution normal jitter 1ms correlation 50 mode drop": {
			Policy:   &genl.Policy{Mode: genl.ModePass, Delay: time.Second, Reorder: true, Limit: 500},
			RxPolicy: &genl.Policy{Mode: genl.ModeDrop, Delay: 2 * ms, Jitter: ms, Distribution: genl.DistNormal, Correlation: 50},
		},
	})
	jittered := &genl.Device{Name: "ins3", Index: 10, Policy: genl.Policy{Mode: genl.ModePass, Delay: 30 * ms, Jitter: 20 * ms}}
	f := &fakeBackend{devices: []*genl.Device{jittered}}
	if code, _, errOut := runCLI(t, f, "link set ins3 seed 5"); code != 0 || len(f.cfgs) != 1 || f.cfgs[0].Policy.String() != "mode pass delay 30ms jitter 20ms seed 5" {
		t.Errorf("seed on a jitter: exit %d %q %+v", code, errOut, f.cfgs)
	}
	f = &fakeBackend{devices: []*genl.Device{devC}}
	if code, _, errOut := runCLI(t, f, "link set ins2 seed 5"); code != 1 || !strings.Contains(errOut, "or a jitter") {
		t.Errorf("seed on pass: exit %d %q", code, errOut)
	}
	for args, msg := range map[string]string{
		"link set insane0 delay 5ms":                       "delay goes with a mode: mode pass delay D",
		"link set insane0 mode pass jitter 5ms":            "jitter goes with delay D, before seed and limit",
		"link set insane0 mode pass delay 5ms jitter 6ms":  "jitter 6ms with delay 5ms: uniform would draw below 0",
		"link set insane0 rx mode pass delay 1s delay 2s":  "rx delay given twice",
		"link set insane0 rx limit 0 mode pass":            `limit "0" is not between 1 and 10000000`,
		"link set insane0 mode schedule 1s pass delay 70s": `step 1: delay "70s" is above 60s, the longest delay`,
	} {
		code, _, errOut := runCLI(t, &fakeBackend{}, args)
		if code != 2 || !strings.Contains(errOut, msg) {
			t.Errorf("%s: exit %d %q, want 2 and %q", args, code, errOut, msg)
		}
	}
}

// TestDelayShow: show prints the delay words as typed, -j gives them as
// fields.
func TestDelayShow(t *testing.T) {
	d := &genl.Device{Name: "ins4", Index: 11, LowerName: "veth0", LowerIndex: 3,
		Policy: genl.Policy{Mode: genl.ModePercent, Percent: 99, Seed: ptr(uint64(7)), Delay: 20 * time.Millisecond,
			Jitter: 5 * time.Millisecond, Correlation: 25, Distribution: genl.DistParetoNormal, Reorder: true, Limit: 1000},
		RxPolicy: &genl.Policy{Mode: genl.ModeSchedule, Steps: []genl.Step{
			{Duration: time.Second, Action: genl.Pass()},
			{Duration: time.Second, Action: genl.Policy{Mode: genl.ModePass, Delay: 1500 * time.Microsecond, Jitter: time.Millisecond}},
		}},
	}
	want := "11: ins4: lower veth0 mode percent 99 delay 20ms jitter 5ms correlation 25 distribution paretonormal reorder seed 7 limit 1000" +
		" rx mode schedule 1s pass 1s pass delay 1500us jitter 1ms\n"
	f, p, rx, _ := showPolicies(t, d, want)
	wantP := map[string]any{"mode": "percent", "percent": 99.0, "seed": 7.0, "delay_ns": 20e6, "jitter_ns": 5e6,
		"correlation": 25.0, "distribution": "paretonormal", "reorder": true, "limit": 1000.0}
	if diff := cmp.Diff(wantP, p); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
	step := rx["steps"].([]any)[1].(map[string]any)
	wantStep := map[string]any{"mode": "pass", "duration_ns": 1e9, "delay_ns": 1.5e6, "jitter_ns": 1e6, "distribution": "uniform"}
	if diff := cmp.Diff(wantStep, step); diff != "" {
		t.Errorf("step (-want +got):\n%s", diff)
	}
	// What show printed reads back as the same policies.
	checkShowSets(t, f, d, want)
}
