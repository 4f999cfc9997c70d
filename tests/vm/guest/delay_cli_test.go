//go:build vmtest

package guest

// The delay stage's words (issue 24) through the insane CLI, ip(8)'s
// plugin and the Go client, against the real module: set, read back as
// typed, in JSON, and the client's fields. A module without the delay
// stage refuses INSANE_POLICY_A_DELAY_NS: the tests skip then, with the
// module's answer.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
)

// hasDelayStage reports whether the module takes a delay, by setting one
// on the device dev (its policy is put back after), and the module's
// answer when it does not.
func hasDelayStage(t *testing.T, c *genl.Client, dev string) (bool, error) {
	t.Helper()
	before := clDevice(t, c, dev).Policy
	err := c.ConfigureDevice(dev, genl.Config{Policy: &genl.Policy{Mode: genl.ModePass, Delay: time.Millisecond}})
	if err != nil {
		return false, err
	}
	if err := c.ConfigureDevice(dev, genl.Config{Policy: &before}); err != nil {
		t.Fatalf("putting the policy %s back: %v", before, err)
	}
	return true, nil
}

// delayCase reports whether the words of a grammar case have a delay or a
// limit, which a module without the delay stage refuses.
func delayCase(words []string) bool {
	for _, w := range words {
		if w == "delay" || w == "limit" {
			return true
		}
	}
	return false
}

// skipWithoutDelay skips the test on a module without the delay stage.
func skipWithoutDelay(t *testing.T, c *genl.Client, dev string) {
	t.Helper()
	if ok, err := hasDelayStage(t, c, dev); !ok {
		t.Skipf("the module has no delay stage (kernel side of issue 24 not merged): %v", err)
	}
}

// delayJSONPolicy reads the CLI's -j output of one device's policies.
func delayJSONPolicy(t *testing.T, out string) (tx, rx map[string]any) {
	t.Helper()
	var ds []struct {
		Policy   map[string]any `json:"policy"`
		RxPolicy map[string]any `json:"rx_policy"`
	}
	if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("-j: %v\n%s", err, out)
	}
	return ds[0].Policy, ds[0].RxPolicy
}

func TestDelayCLI(t *testing.T) {
	LoadModule(t)
	CheckKmsg(t)
	tp := NewTopo(t)
	b := tp.Borea
	clOK(t, b, "link", "add", "ins0", "lower", "veth0")
	c := clDial(t, b)
	skipWithoutDelay(t, c, "ins0")
	idx := clIfindex(t, b, "ins0")

	// The examples, each read back as typed by show, by the
	// client, and in fields by -j.
	ms := time.Millisecond
	for _, tc := range []struct {
		words, show string
		tx, rx      genl.Policy
	}{
		{"mode pass delay 50ms jitter 10ms", "mode pass delay 50ms jitter 10ms",
			genl.Policy{Mode: genl.ModePass, Delay: 50 * ms, Jitter: 10 * ms}, genl.Policy{}},
		{"mode percent 99 delay 20ms jitter 5ms seed 7", "mode percent 99 delay 20ms jitter 5ms seed 7",
			genl.Policy{Mode: genl.ModePercent, Percent: 99, Delay: 20 * ms, Jitter: 5 * ms, Seed: ptrU64(7)}, genl.Policy{}},
		{"mode pass rx mode pass delay 30ms", "mode pass rx mode pass delay 30ms",
			genl.Pass(), genl.Policy{Mode: genl.ModePass, Delay: 30 * ms}},
		{"mode schedule 10s pass 2s pass delay 400ms 10s pass rx off", "mode schedule 10s pass 2s pass delay 400ms 10s pass",
			genl.Schedule(false, nil, genl.Step{Duration: 10 * time.Second, Action: genl.Pass()},
				genl.Step{Duration: 2 * time.Second, Action: genl.Policy{Mode: genl.ModePass, Delay: 400 * ms}},
				genl.Step{Duration: 10 * time.Second, Action: genl.Pass()}), genl.Policy{}},
		{"mode pass delay 30ms jitter 20ms seed 5 limit 200000", "mode pass delay 30ms jitter 20ms seed 5 limit 200000",
			genl.Policy{Mode: genl.ModePass, Delay: 30 * ms, Jitter: 20 * ms, Seed: ptrU64(5), Limit: 200000}, genl.Policy{}},
		{"mode pass delay 1s jitter 100ms correlation 25 distribution normal reorder",
			"mode pass delay 1s jitter 100ms correlation 25 distribution normal reorder",
			genl.Policy{Mode: genl.ModePass, Delay: time.Second, Jitter: 100 * ms, Correlation: 25,
				Distribution: genl.DistNormal, Reorder: true}, genl.Policy{}},
	} {
		clOK(t, b, append([]string{"link", "set", "ins0"}, strings.Fields(tc.words)...)...)
		want := fmt.Sprintf("%d: ins0: lower veth0 %s", idx, tc.show)
		if out := clOK(t, b, "show", "ins0"); !strings.HasPrefix(out, want+"\n") {
			t.Errorf("%s: show %q, want %q", tc.words, out, want)
		}
		d := clDevice(t, c, "ins0")
		if !d.Policy.Equal(tc.tx) || d.Policy.Delay != tc.tx.Delay || d.Policy.Jitter != tc.tx.Jitter {
			t.Errorf("%s: the client reads %s (%+v), want %s", tc.words, d.Policy, d.Policy, tc.tx)
		}
		if tc.rx.Delay != 0 && (d.RxPolicy == nil || !d.RxPolicy.Equal(tc.rx) || d.RxPolicy.Delay != tc.rx.Delay) {
			t.Errorf("%s: the client reads the receive policy %v, want %s", tc.words, d.RxPolicy, tc.rx)
		}
		jtx, jrx := delayJSONPolicy(t, clOK(t, b, "-j", "show", "ins0"))
		p, jp := tc.tx, jtx
		if tc.rx.Delay != 0 {
			p, jp = tc.rx, jrx
		}
		if p.Mode == genl.ModeSchedule {
			jp = jp["steps"].([]any)[1].(map[string]any)
			p = p.Steps[1].Action
		}
		if jp["delay_ns"] != float64(p.Delay) || (p.Jitter != 0) != (jp["jitter_ns"] == float64(p.Jitter) && jp["distribution"] == p.Distribution.String()) ||
			(p.Reorder != (jp["reorder"] == true)) || (p.Correlation != 0 && jp["correlation"] != p.Correlation) {
			t.Errorf("%s: -j gives %v", tc.words, jp)
		}
		if p.Limit != 0 && jtx["limit"] != float64(p.Limit) {
			t.Errorf("%s: -j limit %v", tc.words, jtx["limit"])
		}
		// What show printed sets the same policy again.
		clOK(t, b, append([]string{"link", "set", "ins0"}, strings.Fields(tc.show)...)...)
		if out := clOK(t, b, "show", "ins0"); !strings.HasPrefix(out, want+"\n") {
			t.Errorf("%s: set as shown, show %q", tc.words, out)
		}
	}

	// The parser's refusals: one line, exit 2, naming the word.
	for args, msg := range map[string]string{
		"mode pass delay 5ms jitter 6ms":        "jitter 6ms with delay 5ms: uniform would draw below 0",
		"mode pass delay 61s":                   `delay "61s" is above 60s, the longest delay`,
		"mode pass delay 50":                    `delay "50" needs a unit`,
		"mode pass jitter 5ms":                  "jitter goes with delay D, before seed and limit",
		"mode schedule 1s pass limit 5 2s drop": "a step takes no limit",
		"mode pass limit 0":                     `limit "0" is not between 1 and 10000000`,
	} {
		clFails(t, nil, b, 2, append([]string{"link", "set", "ins0"}, strings.Fields(args)...), msg)
	}
}

// TestDelayIPPlugin: ip link set ... type insane with the delay words, read
// back by ip -d (text and JSON) and by the client.
func TestDelayIPPlugin(t *testing.T) {
	LoadModule(t)
	CheckKmsg(t)
	tp := NewTopo(t)
	b := tp.Borea
	RunIn(t, b, "ip", "link", "add", "link", tp.BoreaDev, "name", "ins0", "type", "insane", "mode", "pass")
	c := clDial(t, b)
	skipWithoutDelay(t, c, "ins0")

	RunIn(t, b, "ip", "link", "set", "ins0", "type", "insane", "mode", "pass", "delay", "50ms")
	if p := clDevice(t, c, "ins0").Policy; p.Delay != 50*time.Millisecond || p.String() != "mode pass delay 50ms" {
		t.Errorf("after ip link set ... mode pass delay 50ms the client reads %s", p)
	}
	if out := RunIn(t, b, "ip", "-d", "link", "show", "ins0"); !strings.Contains(out, "insane mode pass delay 50ms ") {
		t.Errorf("ip -d link show:\n%s", out)
	}
	RunIn(t, b, "ip", "link", "set", "ins0", "type", "insane", "mode", "percent", "99", "delay", "20ms", "jitter", "5ms",
		"distribution", "pareto", "seed", "7", "limit", "1000", "rx", "mode", "pass", "delay", "1500us", "reorder")
	info, m := pluginReadsBack(t, b, c, "ins0", "mode percent 99 delay 20ms jitter 5ms distribution pareto seed 7 limit 1000",
		"mode pass delay 1500us reorder")
	rx, _ := m["rx"].(map[string]any)
	if m["delay_ns"] != 20e6 || m["jitter_ns"] != 5e6 || m["distribution"] != "pareto" || m["limit"] != 1000.0 ||
		rx == nil || rx["delay_ns"] != 1.5e6 || rx["reorder"] != true {
		t.Errorf("ip -d -j info_data %s", info.InfoData)
	}
	_, err := TryRunIn(b, "ip", "link", "set", "ins0", "type", "insane", "mode", "pass", "delay", "10ms", "jitter", "18ms", "distribution", "pareto")
	if err == nil || !strings.Contains(err.Error(), "pareto would draw below 0 (jitter at most 17320612ns)") {
		t.Errorf("a pareto below 0: %v", err)
	}
}

func ptrU64(v uint64) *uint64 { return &v }
