//go:build vmtest

package guest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/policytest"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
)

// These tests drive the ip(8) plugin iproute2/link_insane.so, which the
// runner installs where the guest's ip looks for it, and check what it does
// against the generic netlink client.

// pluginReadsBack checks that the Go client and ip -d link show both read
// dev's policies in netns ns as tx and rx, and returns what ip -d -s -j
// link show says of dev, with its info_data decoded.
func pluginReadsBack(t *testing.T, ns string, c *genl.Client, dev, tx, rx string) (pluginInfo, map[string]any) {
	t.Helper()
	d := clDevice(t, c, dev)
	if d.Policy.String() != tx || d.RxPolicy == nil || d.RxPolicy.String() != rx {
		t.Errorf("the client reads %s rx %v, want %s rx %s", d.Policy, d.RxPolicy, tx, rx)
	}
	if out := RunIn(t, ns, "ip", "-d", "link", "show", dev); !strings.Contains(out, "insane "+tx+" rx "+rx+" ") {
		t.Errorf("ip -d link show, want insane %s rx %s:\n%s", tx, rx, out)
	}
	info := pluginLink(t, ns, dev)
	var m map[string]any
	if err := json.Unmarshal(info.InfoData, &m); err != nil {
		t.Fatal(err)
	}
	return info, m
}

// pluginInfo is linkinfo as ip -d -s -j prints it with the plugin.
type pluginInfo struct {
	InfoKind string          `json:"info_kind"`
	InfoData json.RawMessage `json:"info_data"` // compared as a whole
	// InfoXstats holds "dropped" and every counter of genl.Counters
	// under its name.
	InfoXstats map[string]uint64 `json:"info_xstats"`
}

func pluginLink(t *testing.T, ns, dev string) pluginInfo {
	t.Helper()
	out := RunIn(t, ns, "ip", "-d", "-s", "-j", "link", "show", "dev", dev)
	var links []struct {
		Linkinfo pluginInfo `json:"linkinfo"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -d -s -j link show %s: %v\n%s", dev, err, out)
	}
	return links[0].Linkinfo
}

// wantInfoData is the info_data that ip -d -j prints for p, with the
// numbers exact: the names of the insane CLI's JSON.
func wantInfoData(t *testing.T, p genl.Policy, rx *genl.Policy) map[string]any {
	t.Helper()
	m := wantPolicyJSON(t, p.String())
	if rx != nil {
		m["rx"] = wantPolicyJSON(t, rx.String())
	}
	return m
}

// wantPolicyJSON is the JSON of a policy from its canonical words (what
// genl.Policy.String and ip -d print): each mode's numbers under the names
// of its attributes (percent, burst, ge_p, ge_r, ge_loss_bad and
// ge_loss_good, always all four, on_ns and off_ns), a schedule's steps as
// an array of objects with duration_ns, mode and the mode's numbers, once
// as true, the seed, carrier and events as true. The kernel's step and
// step_left_ns are not in it (checkStepJSON takes them out).
func wantPolicyJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	w := strings.Fields(s)
	if len(w) < 2 || w[0] != "mode" {
		t.Fatalf("policy %q does not begin with mode", s)
	}
	m, rest, err := actionJSON(w[1:])
	if err == nil && m["mode"] == "time" {
		if len(rest) < 2 {
			err = fmt.Errorf("time needs ON and OFF")
		} else {
			for i, k := range []string{"on_ns", "off_ns"} {
				var ns json.Number
				if ns, err = durationJSON(rest[i]); err != nil {
					break
				}
				m[k] = ns
			}
			rest = rest[2:]
		}
	}
	if err == nil && m["mode"] != "schedule" {
		rest, err = delayJSON(m, rest)
	}
	if err == nil && m["mode"] == "schedule" {
		steps := []any{}
		for len(rest) > 0 && rest[0] != "once" && rest[0] != "seed" && rest[0] != "limit" && rest[0] != "carrier" && rest[0] != "events" {
			var d json.Number
			if d, err = durationJSON(rest[0]); err != nil {
				break
			}
			var step map[string]any
			if step, rest, err = actionJSON(rest[1:]); err != nil {
				break
			}
			step["duration_ns"] = d
			if rest, err = delayJSON(step, rest); err != nil {
				break
			}
			steps = append(steps, step)
		}
		m["steps"] = steps
		if len(rest) > 0 && rest[0] == "once" {
			m["once"] = true
			rest = rest[1:]
		}
	}
	if err == nil && len(rest) >= 2 && rest[0] == "seed" {
		m["seed"] = json.Number(rest[1])
		rest = rest[2:]
	}
	if err == nil && len(rest) >= 2 && rest[0] == "limit" {
		m["limit"] = json.Number(rest[1])
		rest = rest[2:]
	}
	for _, flag := range []string{"carrier", "events"} {
		if err == nil && len(rest) > 0 && rest[0] == flag {
			m[flag] = true
			rest = rest[1:]
		}
	}
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%q left over", rest)
	}
	if err != nil {
		t.Fatalf("policy %q: %v", s, err)
	}
	return m
}

// actionJSON reads a mode's name and numbers (time's and schedule's are
// left to the caller) and returns the words after them.
func actionJSON(w []string) (map[string]any, []string, error) {
	if len(w) == 0 {
		return nil, nil, fmt.Errorf("no mode")
	}
	m := map[string]any{"mode": w[0]}
	var names []string
	switch w[0] {
	case "percent":
		names = []string{"percent"}
	case "burst":
		names = []string{"percent", "burst"}
	case "gilbert":
		names = []string{"ge_p", "ge_r"}
	}
	w = w[1:]
	if len(w) < len(names) {
		return nil, nil, fmt.Errorf("%s needs %d numbers", m["mode"], len(names))
	}
	for i, k := range names {
		m[k] = json.Number(w[i])
	}
	w = w[len(names):]
	if m["mode"] == "gilbert" {
		// The loss percentages, printed when they differ from 100 and
		// 0: plain numbers, where a step's duration has a unit.
		m["ge_loss_bad"], m["ge_loss_good"] = json.Number("100"), json.Number("0")
		for _, k := range []string{"ge_loss_bad", "ge_loss_good"} {
			if len(w) == 0 || !plainNumber.MatchString(w[0]) {
				break
			}
			m[k], w = json.Number(w[0]), w[1:]
		}
	}
	return m, w, nil
}

// delayJSON reads the delay words of a policy or a step, in their printed
// order, into m: delay_ns, jitter_ns with the distribution (uniform when
// not printed), correlation, reorder as true. It returns the words after.
func delayJSON(m map[string]any, w []string) ([]string, error) {
	if len(w) < 2 || w[0] != "delay" {
		return extrasJSON(m, w)
	}
	d, err := durationJSON(w[1])
	if err != nil {
		return nil, err
	}
	m["delay_ns"], w = d, w[2:]
	if len(w) >= 2 && w[0] == "jitter" {
		if m["jitter_ns"], err = durationJSON(w[1]); err != nil {
			return nil, err
		}
		m["distribution"], w = "uniform", w[2:]
	}
	if len(w) >= 2 && w[0] == "correlation" {
		m["correlation"], w = json.Number(w[1]), w[2:]
	}
	if len(w) >= 2 && w[0] == "distribution" {
		m["distribution"], w = w[1], w[2:]
	}
	if len(w) >= 1 && w[0] == "reorder" {
		m["reorder"], w = true, w[1:]
	}
	return extrasJSON(m, w)
}

// extrasJSON reads the words after a delay, in their printed order, into
// m: rate (bits per second) with overhead and buffer_ns, duplicate,
// corrupt and corrupt_header as true. It returns the words after.
func extrasJSON(m map[string]any, w []string) ([]string, error) {
	if len(w) >= 2 && w[0] == "rate" {
		r, err := genl.ParseRate(w[1])
		if err != nil {
			return nil, err
		}
		m["rate"], w = json.Number(strconv.FormatUint(r, 10)), w[2:]
		if len(w) >= 2 && w[0] == "overhead" {
			m["overhead"], w = json.Number(w[1]), w[2:]
		}
		if len(w) >= 2 && w[0] == "buffer" {
			d, err := durationJSON(w[1])
			if err != nil {
				return nil, err
			}
			m["buffer_ns"], w = d, w[2:]
		}
	}
	if len(w) >= 2 && w[0] == "duplicate" {
		m["duplicate"], w = json.Number(w[1]), w[2:]
	}
	if len(w) >= 2 && w[0] == "corrupt" {
		m["corrupt"], w = json.Number(w[1]), w[2:]
		if len(w) >= 1 && w[0] == "header" {
			m["corrupt_header"], w = true, w[1:]
		}
	}
	return w, nil
}

var plainNumber = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

func durationJSON(s string) (json.Number, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return "", err
	}
	return json.Number(strconv.FormatInt(int64(d), 10)), nil
}

// checkStepJSON takes the kernel's step and step_left_ns out of a policy's
// JSON, which time and schedule policies may have (the step from 0, less
// than the number of steps, and no more time left than it lasts; the text
// has the same after the policy, numbered from 1: see stepWords).
func checkStepJSON(t *testing.T, m map[string]any) {
	t.Helper()
	if rx, ok := m["rx"].(map[string]any); ok {
		checkStepJSON(t, rx)
	}
	step, has := m["step"]
	left, hasLeft := m["step_left_ns"]
	delete(m, "step")
	delete(m, "step_left_ns")
	if !has {
		if hasLeft {
			t.Errorf("info_data has step_left_ns %v without a step", left)
		}
		return
	}
	var durations []int64
	switch m["mode"] {
	case "time":
		for _, k := range []string{"on_ns", "off_ns"} {
			d, _ := m[k].(json.Number)
			n, _ := d.Int64()
			durations = append(durations, n)
		}
	case "schedule":
		steps, _ := m["steps"].([]any)
		for _, s := range steps {
			o, _ := s.(map[string]any)
			d, _ := o["duration_ns"].(json.Number)
			n, _ := d.Int64()
			durations = append(durations, n)
		}
	default:
		t.Errorf("info_data of mode %v has a step", m["mode"])
		return
	}
	sn, _ := step.(json.Number)
	n, err := sn.Int64()
	if err != nil || n < 0 || n >= int64(len(durations)) {
		t.Errorf("info_data step %v, want 0 to %d", step, len(durations)-1)
		return
	}
	if !hasLeft {
		if m["once"] != true || n != int64(len(durations))-1 {
			t.Errorf("info_data step %v has no step_left_ns, but it is not the last step of a once schedule", step)
		}
		return
	}
	if ln, _ := left.(json.Number); ln == "" {
		t.Errorf("info_data step_left_ns %v is not a number", left)
	} else if l, err := ln.Int64(); err != nil || l < 0 || l > durations[n] {
		t.Errorf("info_data step_left_ns %v, want 0 to %d", left, durations[n])
	}
}

// stepWords are what ip -d prints after a time or schedule policy: the
// step in force, from 1, and the time left in it, unless a once schedule
// holds its last step. ipPolicyText takes them out, to leave the policies.
var stepWords = regexp.MustCompile(` step [1-9][0-9]*( left [0-9]+(\.[0-9]+)?(ns|us|ms|s))? `)

func ipPolicyText(out string) string { return stepWords.ReplaceAllString(out, " ") }

func TestIPLinkPlugin(t *testing.T) {
	LoadModule(t)
	tp := NewTopo(t)
	CheckKmsg(t)
	b := tp.Borea
	c := clDial(t, b)

	t.Run("help", func(t *testing.T) {
		out := RunIn(t, b, "ip", "link", "help", "insane")
		for _, want := range []string{"mode percent P [ seed S ]", "mode time ON OFF", "10 ms ticks",
			"mode burst P B [ seed S ]", "mode gilbert P R [ H [ K ] ] [ seed S ]",
			"mode schedule STEP... [ once ] [ seed S ]", "mode drop"} {
			if !strings.Contains(out, want) {
				t.Errorf("ip link help insane lacks %q:\n%s", want, out)
			}
		}
	})

	// checkPolicy reads the policy back three ways: the client, ip -d
	// (text, in the CLI's grammar) and ip -d -j (the CLI's JSON names).
	checkPolicy := func(t *testing.T, want string) {
		t.Helper()
		d := clDevice(t, c, "ins0")
		if d.Policy.String() != want {
			t.Errorf("client reads %q, want %q", d.Policy, want)
		}
		if out := RunIn(t, b, "ip", "-d", "link", "show", "ins0"); !strings.Contains(ipPolicyText(out), "insane "+want+" ") {
			t.Errorf("ip -d link show lacks %q:\n%s", "insane "+want+" ", out)
		}
		info := pluginLink(t, b, "ins0")
		dec := json.NewDecoder(bytes.NewReader(info.InfoData))
		dec.UseNumber()
		var have map[string]any
		if err := dec.Decode(&have); err != nil {
			t.Fatalf("info_data %s: %v", info.InfoData, err)
		}
		checkStepJSON(t, have)
		if diff := cmp.Diff(wantInfoData(t, d.Policy, d.RxPolicy), have); diff != "" {
			t.Errorf("ip -j info_data (-want +got):\n%s", diff)
		}
	}

	t.Run("add", func(t *testing.T) {
		RunIn(t, b, "ip", "link", "add", "link", tp.BoreaDev, "name", "ins0", "type", "insane", "mode", "percent", "12.5", "seed", "42")
		checkPolicy(t, "mode percent 12.5 seed 42")
	})
	if t.Failed() {
		t.FailNow()
	}

	// The grammar cases the CLI's unit tests run too.
	cases, err := policytest.Cases()
	if err != nil {
		t.Fatal(err)
	}
	delayStage, noDelay := hasDelayStage(t, c, "ins0")
	t.Run("grammar", func(t *testing.T) {
		for _, tc := range cases {
			if tc.Policy == "" {
				continue
			}
			t.Run(tc.Name(), func(t *testing.T) {
				if !delayStage && delayCase(tc.Args) {
					t.Skipf("the module has no delay stage: %v", noDelay)
				}
				before := clDevice(t, c, "ins0").Policy.String()
				RunIn(t, b, append([]string{"ip", "link", "set", "ins0", "type", "insane"}, tc.Args...)...)
				tx, rx := tc.Split()
				if tx == "" {
					tx = before // words for the receive policy only keep this one
				}
				checkPolicy(t, tx)
				d := clDevice(t, c, "ins0")
				out := ipPolicyText(RunIn(t, b, "ip", "-d", "link", "show", "ins0"))
				switch {
				case rx == "off" && d.RxPolicy != nil:
					t.Errorf("after %q the client reads the receive policy %q, want it off", tc.Name(), *d.RxPolicy)
				case rx == "off" && strings.Contains(out, " rx mode "):
					t.Errorf("after rx off ip -d link show prints a receive policy:\n%s", out)
				case rx != "" && rx != "off" && (d.RxPolicy == nil || d.RxPolicy.String() != rx):
					t.Errorf("after %q the client reads the receive policy %v, want %q", tc.Name(), d.RxPolicy, rx)
				case rx != "" && rx != "off" && !strings.Contains(out, "insane "+tx+" rx "+rx+" "):
					t.Errorf("ip -d link show lacks %q:\n%s", "insane "+tx+" rx "+rx+" ", out)
				}
			})
		}
		RunIn(t, b, "ip", "link", "set", "ins0", "type", "insane", "rx", "off")
	})

	t.Run("no mode keeps the policy", func(t *testing.T) {
		RunIn(t, b, "ip", "link", "set", "ins0", "type", "insane", "mode", "percent", "30")
		RunIn(t, b, "ip", "link", "set", "ins0", "type", "insane")
		RunIn(t, b, "ip", "link", "set", "ins0", "mtu", "1280")
		if p := clDevice(t, c, "ins0").Policy; p.String() != "mode percent 30" {
			t.Errorf("policy after ip link set without a mode: %q, want mode percent 30", p)
		}
	})

	t.Run("refused", func(t *testing.T) {
		before := clDevice(t, c, "ins0").Policy.String()
		type refusal struct {
			line int
			args []string
			msg  string
		}
		var bad []refusal
		for _, tc := range cases {
			if tc.Err != "" {
				bad = append(bad, refusal{tc.Line, tc.Args, tc.Err})
			}
		}
		// The plugin's own: ip attaches with "link DEV", the CLI with
		// "lower DEV".
		bad = append(bad,
			refusal{0, []string{"slave", "veth0"}, `unknown option "slave"`},
			refusal{0, []string{"lower", "veth0"}, `unknown option "lower"`})
		for _, r := range bad {
			args := append([]string{"ip", "netns", "exec", b, "ip", "link", "set", "ins0", "type", "insane"}, r.args...)
			cmd := exec.Command(args[0], args[1:]...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Errorf("cases.txt:%d: %v: err %v, want a non-zero exit", r.line, r.args, err)
			}
			msg := strings.TrimSpace(stderr.String())
			if !strings.HasPrefix(msg, "insane: ") || !strings.Contains(msg, r.msg) || strings.Count(msg, "\n") != 0 {
				t.Errorf("cases.txt:%d: %v: stderr %q, want one line \"insane: ...%s...\"", r.line, r.args, msg, r.msg)
			}
		}
		if after := clDevice(t, c, "ins0").Policy.String(); after != before {
			t.Errorf("a refused command changed the policy from %q to %q", before, after)
		}
	})

	// ip link set replaces the policy, which restarts the seeded sequence:
	// the datagrams that arrive are exactly those the uapi formula relays,
	// and ip -s -d prints the same per-cause counters as the client.
	t.Run("seeded traffic and xstats", func(t *testing.T) {
		const n = 400
		tp.RouteViaInsane(t, "ins0")
		RunIn(t, b, "ip", "link", "set", "ins0", "type", "insane", "mode", "percent", "50", "seed", "7")
		if err := c.ConfigureDevice("ins0", genl.Config{ResetStats: true}); err != nil {
			t.Fatal(err)
		}
		sent, rcvd := tp.UDP(t, vmnet.SendOptions{Count: n, Size: 64})
		if sent.Errors != 0 {
			t.Fatalf("%d sends failed, the first with %v", sent.Errors, sent.FirstError)
		}
		p := clDevice(t, c, "ins0").Policy
		var relayed uint64
		for k := uint64(0); k < n; k++ {
			want, _ := p.Relays(k)
			if want {
				relayed++
			}
			if rcvd.Has(k) != want {
				t.Errorf("datagram %d: arrived %v, the seeded decision says %v", k, rcvd.Has(k), want)
			}
		}

		st := clDevice(t, c, "ins0").Stats
		x := pluginLink(t, b, "ins0").InfoXstats
		if x == nil {
			t.Fatal("ip -d -s -j link show prints no info_xstats")
		}
		if x["relayed_packets"] != relayed || st.RelayedPackets != relayed || x["drop_policy"] != n-relayed {
			t.Errorf("relayed %d (client %d), drop_policy %d; want %d and %d", x["relayed_packets"], st.RelayedPackets, x["drop_policy"], relayed, n-relayed)
		}
		// ip names the counters from kernel/counters.h, the client from
		// the uapi header: the same names and values, and nothing more.
		var got genl.Stats
		for _, k := range genl.Counters() {
			v, ok := x[k.Name]
			if !ok {
				t.Errorf("ip -j info_xstats lacks %s: %v", k.Name, x)
			}
			k.Set(&got, v)
		}
		if len(x) != len(genl.Counters())+2 {
			t.Errorf("ip -j info_xstats has %d keys, want the %d counters, dropped and rx_dropped: %v", len(x), len(genl.Counters()), x)
		}
		if got != st || x["dropped"] != st.Dropped() || x["rx_dropped"] != st.RxDropped() {
			t.Errorf("ip xstats %+v (dropped %d, rx %d), client %+v (dropped %d, rx %d)", got, x["dropped"], x["rx_dropped"],
				st, st.Dropped(), st.RxDropped())
		}
		relayedLine, rxRelayedLine, heldLine, rxHeldLine := "relayed:", "rx relayed:", "held:", "rx held:"
		markedLine, rxMarkedLine := "marked:", "rx marked:"
		droppedLine := "dropped: total " + strconv.FormatUint(st.Dropped(), 10)
		rxDroppedLine := "rx dropped: total " + strconv.FormatUint(st.RxDropped(), 10)
		for _, k := range genl.Counters() {
			v := " " + k.Short + " " + strconv.FormatUint(k.Get(st), 10)
			switch {
			case k.Mark && k.Rx:
				rxMarkedLine += v
			case k.Mark:
				markedLine += v
			case k.Gauge && k.Rx:
				rxHeldLine += v
			case k.Gauge:
				heldLine += v
			case k.Drop && k.Rx:
				rxDroppedLine += v
			case k.Drop:
				droppedLine += v
			case k.Rx:
				rxRelayedLine += v
			default:
				relayedLine += v
			}
		}
		if want := "relayed: packets " + strconv.FormatUint(relayed, 10) + " bytes "; !strings.HasPrefix(relayedLine, want) {
			t.Fatalf("the client's counters begin %q, want %q", relayedLine, want)
		}
		out := RunIn(t, b, "ip", "-d", "-s", "link", "show", "ins0")
		for _, want := range []string{"    " + relayedLine + "\n", "    " + droppedLine + "\n", "    " + heldLine + "\n",
			"    " + rxRelayedLine + "\n", "    " + rxDroppedLine + "\n", "    " + rxHeldLine + "\n",
			"    " + markedLine + "\n", "    " + rxMarkedLine + "\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("ip -d -s link show lacks %q:\n%s", want, out)
			}
		}
		if !strings.Contains(out, " not-ip 0 loop 0 malformed 0") {
			t.Errorf("ip -d -s link show lacks the loop and malformed causes:\n%s", out)
		}
	})

	t.Run("del", func(t *testing.T) {
		RunIn(t, b, "ip", "link", "del", "ins0")
	})
}
