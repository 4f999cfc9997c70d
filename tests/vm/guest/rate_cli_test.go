//go:build vmtest

package guest

// Rate, duplicate and corrupt (issue 25) through the insane CLI and ip(8)'s
// plugin against the real module: the examples set, read back as
// typed by show, in JSON, by the client and in the raw attributes the
// module holds; the marks (duplicated, corrupted) in -s and -j after
// traffic; every bad value refused with a message naming its word; and
// the client's predictor against the draws the kernel tests check.

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
)

// rcJSON reads the CLI's -j output of one device: its policies and its
// counters, as maps.
func rcJSON(t *testing.T, out string) (tx, rx, stats map[string]any) {
	t.Helper()
	var ds []struct {
		Policy   map[string]any `json:"policy"`
		RxPolicy map[string]any `json:"rx_policy"`
		Stats    map[string]any `json:"stats"`
	}
	if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("-j: %v\n%s", err, out)
	}
	return ds[0].Policy, ds[0].RxPolicy, ds[0].Stats
}

// rcHas fails unless m holds every key of want with its value.
func rcHas(t *testing.T, what string, m, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s: %q is %v (%T), want %v; all: %v", what, k, m[k], m[k], v, m)
		}
	}
}

func TestRateCLI(t *testing.T) {
	LoadModule(t)
	CheckKmsg(t)
	tp := NewTopo(t)
	b := tp.Borea
	clOK(t, b, "link", "add", "ins0", "lower", "veth0")
	c := clDial(t, b)
	raw := kmOpen(t, b)
	idx := clIfindex(t, b, "ins0")
	pass := kmMode(uapi.ModePass)
	ms := time.Millisecond
	for _, tc := range []struct {
		words, show string
		tx, rx      []kmA          // what the module holds (rx nil: off)
		js          map[string]any // -j fields of the policy that has them
		jsRx        bool
	}{
		{"mode pass rate 10mbit", "mode pass rate 10mbit", rtPass(rtRate(10e6)), nil,
			map[string]any{"rate": 10e6}, false},
		{"mode pass rate 10mbit overhead 38 buffer 50ms", "mode pass rate 10mbit overhead 38 buffer 50ms",
			rtPass(rtRate(10e6), rtOverhead(38), rtBuffer(50*ms)), nil,
			map[string]any{"rate": 10e6, "overhead": 38.0, "buffer_ns": 50e6}, false},
		{"mode percent 99 duplicate 1 corrupt 0.1 seed 3", "mode percent 99 duplicate 1 corrupt 0.1 seed 3",
			[]kmA{kmMode(uapi.ModePercent), kmPercent(99), rtDup(1), rtCorrupt(0.1), kmSeed(3)}, nil,
			map[string]any{"duplicate": 1.0, "corrupt": 0.1, "seed": 3.0}, false},
		{"mode pass corrupt 0.5 header", "mode pass corrupt 0.5 header", rtPass(rtCorrupt(0.5), rtCorruptHeader()), nil,
			map[string]any{"corrupt": 0.5, "corrupt_header": true}, false},
		{"mode pass rx mode pass rate 2mbit", "mode pass rx mode pass rate 2mbit", []kmA{pass}, rtPass(rtRate(2e6)),
			map[string]any{"rate": 2e6}, true},
		{"mode schedule 1s pass rate 2mbit 1s pass rate 8mbit duplicate 1 rx off", "mode schedule 1s pass rate 2mbit 1s pass rate 8mbit duplicate 1",
			[]kmA{kmMode(uapi.ModeSchedule), kmSteps(kmStep(pass, rtRate(2e6), kmDur(time.Second)),
				kmStep(pass, rtRate(8e6), rtDup(1), kmDur(time.Second)))}, nil, nil, false},
		{"mode pass rate 100mbit buffer 50ms delay 20ms", "mode pass delay 20ms rate 100mbit buffer 50ms",
			rtPass(kdDelay(20*ms), rtRate(100e6), rtBuffer(50*ms)), nil,
			map[string]any{"delay_ns": 20e6, "rate": 100e6, "buffer_ns": 50e6}, false},
		{"mode pass rate 1.5mbit", "mode pass rate 1500kbit", rtPass(rtRate(1.5e6)), nil, map[string]any{"rate": 1.5e6}, false},
		{"mode drop rate 100kbps duplicate 100", "mode drop rate 800kbit duplicate 100",
			[]kmA{kmMode(uapi.ModeDrop), rtRate(800e3), kmU32(uapi.PolicyADuplicate, uapi.PercentMax)}, nil,
			map[string]any{"rate": 800e3, "duplicate": 100.0}, false},
	} {
		clOK(t, b, append([]string{"link", "set", "ins0"}, strings.Fields(tc.words)...)...)
		want := fmt.Sprintf("%d: ins0: lower veth0 %s", idx, tc.show)
		// A schedule's step in force follows on a line of its own.
		if out := clOK(t, b, "show", "ins0"); !strings.HasPrefix(out, want+"\n") {
			t.Errorf("%s: show %q, want %q", tc.words, out, want)
		}
		g := raw.get("ins0")
		kmSame(t, tc.words+": the module's policy", g.tx, tc.tx)
		if tc.rx == nil && g.rx != nil || tc.rx != nil {
			kmSame(t, tc.words+": the module's receive policy", g.rx, tc.rx)
		}
		d := clDevice(t, c, "ins0")
		if got := d.Policy.String(); got != strings.TrimSuffix(strings.SplitN(tc.show, " rx ", 2)[0], " rx") {
			t.Errorf("%s: the client reads %s", tc.words, got)
		}
		if tc.js != nil {
			jtx, jrx, _ := rcJSON(t, clOK(t, b, "-j", "show", "ins0"))
			if tc.jsRx {
				jtx = jrx
			}
			rcHas(t, tc.words+": -j", jtx, tc.js)
		}
		// What show printed sets the same policy again.
		clOK(t, b, append([]string{"link", "set", "ins0"}, strings.Fields(tc.show)...)...)
		if out := clOK(t, b, "show", "ins0"); !strings.HasPrefix(out, want+"\n") {
			t.Errorf("%s: set as shown, show %q", tc.words, out)
		}
	}

	// The marks after traffic both ways: transmit duplicate 100 corrupt
	// 100 (the copies arrive, the corrupted originals fail their
	// checksum), receive duplicate 100.
	tp.RouteViaInsane(t, "ins0")
	clOK(t, b, "link", "set", "ins0", "mode", "pass", "duplicate", "100", "corrupt", "100", "seed", "3",
		"rx", "mode", "pass", "duplicate", "100")
	clOK(t, b, "link", "set", "ins0", "reset-stats")
	const n = 10
	before := rtNetStats(t, tp.Morgana)
	for _, fl := range []struct{ from, to, ip string }{{tp.Borea, tp.Morgana, tp.MorganaIP}, {tp.Morgana, tp.Borea, tp.BoreaIP}} {
		sink := ttListen(t, fl.to, fl.ip+":0", nil)
		if _, err := vmnet.Send(fl.from, net.JoinHostPort(fl.ip, strconv.Itoa(sink.Port())), vmnet.SendOptions{Count: n}); err != nil {
			t.Fatal(err)
		}
		if got := sink.WaitQuiet(2*n, 300*time.Millisecond); got != n && got != 2*n {
			t.Errorf("from %s: %d datagrams arrived", fl.from, got)
		}
	}
	// InErrors: a flip in UDP's length field is a short datagram, not
	// a checksum error.
	WaitFor(t, 5*time.Second, "the receiver to count the corrupted datagrams", func() bool {
		return rtNetStats(t, tp.Morgana)["Udp.InErrors"]-before["Udp.InErrors"] == n
	})
	out := clOK(t, b, "-s", "show", "ins0")
	for _, w := range []string{fmt.Sprintf("    relayed: packets %d ", 2*n), fmt.Sprintf("    marked: duplicated %d corrupted %d\n", n, n),
		fmt.Sprintf("    rx relayed: packets %d ", 2*n), fmt.Sprintf("    rx marked: duplicated %d corrupted 0\n", n)} {
		if !strings.Contains(out, w) {
			t.Errorf("-s show lacks %q:\n%s", w, out)
		}
	}
	_, _, st := rcJSON(t, clOK(t, b, "-s", "-j", "show", "ins0"))
	rcHas(t, "-s -j", st, map[string]any{"relayed_packets": 2.0 * n, "duplicated": float64(n), "corrupted": float64(n),
		"rx_relayed_packets": 2.0 * n, "rx_duplicated": float64(n), "rx_corrupted": 0.0, "dropped": 0.0})
	if s := clDevice(t, c, "ins0").Stats; s.Duplicated != n || s.Corrupted != n || s.RxDuplicated != n || s.Dropped() != 0 {
		t.Errorf("the client reads %+v", s)
	}

	// Every bad value: exit 2, one line naming the word.
	for args, msg := range map[string]string{
		"mode pass rate 0":                       `rate "0" is not between 8bit and 1tbit`,
		"mode pass rate 7bit":                    `rate "7bit" is not between 8bit and 1tbit`,
		"mode pass rate 2tbit":                   `rate "2tbit" is not between 8bit and 1tbit`,
		"mode pass rate 1mbit overhead 4097":     `overhead "4097" is not between 0 and 4096 bytes`,
		"mode pass overhead 38":                  "overhead goes with rate R",
		"mode pass buffer 5ms":                   "buffer goes with rate R",
		"mode pass rate 1mbit buffer 0s":         "buffer 0s must be above 0",
		"mode pass rate 1mbit buffer 61s":        `buffer "61s" is above 60s`,
		"mode pass header":                       "header goes with corrupt P",
		"mode pass duplicate 0":                  "duplicate 0 must be above 0",
		"mode pass duplicate 101":                "duplicate",
		"mode pass corrupt 0":                    "corrupt 0 must be above 0",
		"mode pass corrupt 100.5":                "corrupt",
		"mode schedule 1s pass once rate 1mbit":  "a schedule's rate goes in its steps",
		"mode schedule 1s pass duplicate 1 once": "", // in the step: taken
		"mode schedule 1s pass once corrupt 1":   "a schedule's corrupt goes in its steps",
		"rx mode pass rate 0":                    `rate "0" is not between 8bit and 1tbit`,
	} {
		argv := append([]string{"link", "set", "ins0"}, strings.Fields(args)...)
		if msg == "" {
			clOK(t, b, argv...)
			continue
		}
		clFails(t, nil, b, 2, argv, msg)
	}
}

// ip link set ... type insane with the rate, duplicate and corrupt words,
// read back by ip -d (text and JSON), the client and the module; ip -s
// prints the marks; a bad value is refused naming its word.
func TestRateIPPlugin(t *testing.T) {
	LoadModule(t)
	CheckKmsg(t)
	tp := NewTopo(t)
	b := tp.Borea
	RunIn(t, b, "ip", "link", "add", "link", tp.BoreaDev, "name", "ins0", "type", "insane", "mode", "pass", "rate", "10mbit")
	c := clDial(t, b)
	raw := kmOpen(t, b)
	kmSame(t, "ip link add ... mode pass rate 10mbit", raw.get("ins0").tx, rtPass(rtRate(10e6)))

	RunIn(t, b, "ip", "link", "set", "ins0", "type", "insane", "mode", "percent", "99", "rate", "10mbit", "overhead", "38", "buffer", "50ms",
		"duplicate", "1", "corrupt", "0.1", "header", "seed", "3", "rx", "mode", "pass", "rate", "2mbit", "duplicate", "5")
	g := raw.get("ins0")
	kmSame(t, "ip link set: the module's policy", g.tx, []kmA{kmMode(uapi.ModePercent), kmPercent(99), rtRate(10e6), rtOverhead(38),
		rtBuffer(50 * time.Millisecond), rtDup(1), rtCorrupt(0.1), rtCorruptHeader(), kmSeed(3)})
	kmSame(t, "ip link set: the module's receive policy", g.rx, rtPass(rtRate(2e6), rtDup(5)))
	const want = "mode percent 99 rate 10mbit overhead 38 buffer 50ms duplicate 1 corrupt 0.1 header seed 3"
	info, m := pluginReadsBack(t, b, c, "ins0", want, "mode pass rate 2mbit duplicate 5")
	rcHas(t, "ip -d -j info_data", m, map[string]any{"rate": 10e6, "overhead": 38.0, "buffer_ns": 50e6, "duplicate": 1.0,
		"corrupt": 0.1, "corrupt_header": true})
	rx, _ := m["rx"].(map[string]any)
	rcHas(t, "ip -d -j info_data rx", rx, map[string]any{"rate": 2e6, "duplicate": 5.0})
	for _, k := range []string{"duplicated", "corrupted", "rx_duplicated", "rx_corrupted", "drop_no_memory"} {
		if _, ok := info.InfoXstats[k]; !ok {
			t.Errorf("ip -d -s -j info_xstats lacks %s: %v", k, info.InfoXstats)
		}
	}
	if out := RunIn(t, b, "ip", "-d", "-s", "link", "show", "ins0"); !strings.Contains(out, "    marked: duplicated 0 corrupted 0\n") ||
		!strings.Contains(out, "    rx marked: duplicated 0 corrupted 0\n") {
		t.Errorf("ip -d -s link show lacks the marked: lines:\n%s", out)
	}
	for _, bad := range []struct{ args, msg string }{
		{"mode pass duplicate 0", "duplicate"},
		{"mode pass rate 0", "rate"},
		{"mode pass overhead 38", "overhead"},
		{"mode pass corrupt 101", "corrupt"},
		{"mode schedule 1s pass once rate 1mbit", "rate"},
	} {
		argv := nsArgs(b, append([]string{"ip", "link", "set", "ins0", "type", "insane"}, strings.Fields(bad.args)...))
		_, err := TryRun(argv...)
		// The error starts with the command line: judge what ip said.
		said := ""
		if err != nil {
			said = strings.TrimPrefix(err.Error(), strings.Join(argv, " ")+": ")
		}
		if err == nil || !strings.Contains(said, bad.msg) {
			t.Errorf("ip link set ins0 type insane %s: %q, want a refusal naming %q", bad.args, said, bad.msg)
		}
	}
	if p := clDevice(t, c, "ins0").Policy; p.String() != want {
		t.Errorf("after the refusals the client reads %s", p)
	}
}

// The client's predictor (genl: Predictor.Extra, CorruptBit,
// SerializationNs) against the model of the header the kernel tests
// check the module with: a user predicting a seeded run gets the
// kernel's draws.
func TestRatePredictorAgrees(t *testing.T) {
	for _, seed := range []uint64{0, 3, 0x25d0c, 1<<64 - 1} {
		pr := genl.NewPredictor(seed)
		for _, shares := range [][2]uint32{{kmPct(30), kmPct(20)}, {1, uapi.PercentMax}, {uapi.PercentMax, 0}} {
			for k := uint64(0); k < 5000; k++ {
				d, c, y := pr.Extra(k, shares[0], shares[1])
				wd, wc, wy := rtExtra(seed, k, shares[0], shares[1])
				if d != wd || c != wc || y != wy {
					t.Fatalf("seed %d k %d shares %v: the predictor says %v %v %#x, the model %v %v %#x", seed, k, shares, d, c, y, wd, wc, wy)
				}
				for _, span := range []int{1, 208, 1472} {
					i, m := genl.CorruptBit(y, span)
					wi, wm := rtBit(y, span)
					if i != wi || m != wm {
						t.Fatalf("y %#x span %d: the predictor's bit %d %#x, the model's %d %#x", y, span, i, m, wi, wm)
					}
				}
			}
		}
	}
	for _, c := range []struct {
		l, o int
		bps  uint64
	}{{1028, 0, 4e6}, {1028, 38, 8e6}, {52, 0, 100e3}, {1500, 4096, uapi.RateMin}, {64, 0, uapi.RateMax}, {1, 0, 3e9}} {
		if got, want := genl.SerializationNs(c.l, c.o, c.bps), rtSerialNs(c.l, c.o, c.bps); int64(got) != want {
			t.Errorf("%+v: SerializationNs %d, the model %d", c, got, want)
		}
	}
}
