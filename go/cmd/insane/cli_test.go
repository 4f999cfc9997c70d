package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/uapi"
)

func ptr[T any](v T) *T { return &v }

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args string
		want command
	}{
		{"help", command{verb: verbHelp}},
		{"-h", command{verb: verbHelp}},
		{"link help", command{verb: verbLinkHelp}},
		{"help link", command{verb: verbLinkHelp}},
		{"link", command{verb: verbShow}},
		{"link show", command{verb: verbShow}},
		{"l sh ins0", command{verb: verbShow, name: "ins0"}},
		{"link list dev ins0", command{verb: verbShow, name: "ins0"}},
		{"show ins0", command{verb: verbShow, name: "ins0"}},
		{"-s -j -p -n blue show", command{opts: options{stats: true, json: true, pretty: true, netns: "/var/run/netns/blue"}, verb: verbShow}},
		{"-stats -json -netns /proc/1/ns/net link show", command{opts: options{stats: true, json: true, netns: "/proc/1/ns/net"}, verb: verbShow}},
		{"--json show", command{opts: options{json: true}, verb: verbShow}},
		{"monitor", command{verb: verbMonitor}},
		{"-j mon", command{opts: options{json: true}, verb: verbMonitor}},
		{"link add ins0", command{verb: verbAdd, name: "ins0"}},
		{"link add ins0 slave veth0", command{verb: verbAdd, name: "ins0", lower: "veth0"}},
		{"link add ins0 slave veth0 mode pass", command{verb: verbAdd, name: "ins0", lower: "veth0", policy: ptr(genl.Pass())}},
		{"link add ins0 mode percent 12.5 seed 42", command{verb: verbAdd, name: "ins0", policy: ptr(genl.Percent(12.5, nil)), seed: ptr(uint64(42))}},
		{"link add ins0 seed 0x10 mode percent 80%", command{verb: verbAdd, name: "ins0", policy: ptr(genl.Percent(80, nil)), seed: ptr(uint64(16))}},
		{"link add ins0 mode time 50 100", command{verb: verbAdd, name: "ins0", policy: ptr(genl.Time(500*time.Millisecond, time.Second))}},
		{"link add ins0 mode time 500ms 1s slave eth0", command{verb: verbAdd, name: "ins0", lower: "eth0", policy: ptr(genl.Time(500*time.Millisecond, time.Second))}},
		{"link a ins0 m ti 250us 0", command{verb: verbAdd, name: "ins0", policy: ptr(genl.Time(250*time.Microsecond, 0))}},
		{"link set ins0 noslave", command{verb: verbSet, name: "ins0", nolower: true}},
		{"link set ins0 nolower", command{verb: verbSet, name: "ins0", nolower: true}},
		{"link set ins0 nol", command{verb: verbSet, name: "ins0", nolower: true}},
		{"link set ins0 nos", command{verb: verbSet, name: "ins0", nolower: true}},
		{"link set ins0 n", command{verb: verbSet, name: "ins0", nolower: true}},
		{"link add ins0 lower veth0", command{verb: verbAdd, name: "ins0", lower: "veth0"}},
		{"link add ins0 lo veth0", command{verb: verbAdd, name: "ins0", lower: "veth0"}},
		{"link add ins0 s veth0", command{verb: verbAdd, name: "ins0", lower: "veth0"}},
		{"link add ins0 sl veth0", command{verb: verbAdd, name: "ins0", lower: "veth0"}},
		{"link add ins0 se 5 mode percent 5", command{verb: verbAdd, name: "ins0", policy: ptr(genl.Percent(5, nil)), seed: ptr(uint64(5))}},
		{"link add insane0 slave eth0 mode time 50 100", command{verb: verbAdd, name: "insane0", lower: "eth0", policy: ptr(genl.Time(500*time.Millisecond, time.Second))}},
		{"link add insane0 lower eth0 mode time 50 100", command{verb: verbAdd, name: "insane0", lower: "eth0", policy: ptr(genl.Time(500*time.Millisecond, time.Second))}},
		{"link set ins0 slave veth1 mode percent 0", command{verb: verbSet, name: "ins0", lower: "veth1", policy: ptr(genl.Percent(0, nil))}},
		{"link set ins0 reset-stats", command{verb: verbSet, name: "ins0", resetStats: true}},
		{"link set ins0 seed 18446744073709551615", command{verb: verbSet, name: "ins0", seed: ptr(uint64(1<<64 - 1))}},
		{"link change dev ins0 mode pass reset-stats", command{verb: verbSet, name: "ins0", policy: ptr(genl.Pass()), resetStats: true}},
		{"link del ins0", command{verb: verbDel, name: "ins0"}},
		{"link delete ins0", command{verb: verbDel, name: "ins0"}},
	} {
		t.Run(tc.args, func(t *testing.T) {
			got, err := parse(strings.Fields(tc.args))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&tc.want, got, cmp.AllowUnexported(command{}, options{})); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseUsageErrors(t *testing.T) {
	for _, args := range []string{
		"",
		"-x show",
		"-n",
		"frob",
		"link frob",
		"link add",
		"link add ins0 bogus",
		"link add ins0 slave",
		"link add ins0 mode",
		"link add ins0 mode chaos",
		"link add ins0 mode percent",
		"link add ins0 mode percent 100.5",
		"link add ins0 mode percent -1",
		"link add ins0 mode percent abc",
		"link add ins0 mode percent NaN",
		"link add ins0 mode percent Inf",
		"link add ins0 mode percent 0x10",
		"link add ins0 mode time 1s",
		"link add ins0 mode time 0 0",
		"link add ins0 mode time 0s 0ms",
		"link add ins0 mode time -1s 2s",
		"link add ins0 mode time 1.5 1",
		"link add ins0 mode time 1parsec 1",
		"link add ins0 mode time 99999999999999999999 1",
		"link add ins0 mode pass seed 1",
		"link add ins0 mode time 1 1 seed 1",
		"link add ins0 seed 1",
		"link add ins0 seed -1 mode percent 5",
		"link add ins0 seed x mode percent 5",
		"link add ins0 reset-stats",
		"link add ins0 mode pass mode pass",
		"link add a-name-much-too-long",
		"link add a/b",
		"link set ins0",
		"link set ins0 slave veth0 noslave",
		"link set ins0 lower veth0 nolower",
		"link set ins0 lower veth0 noslave",
		"link set ins0 slave veth0 lower veth1",
		"link add ins0 lower",
		"link del",
		"link del ins0 extra",
		"link show ins0 extra",
		"monitor extra",
	} {
		_, err := parse(strings.Fields(args))
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("parse(%q) = %v, want a usage error", args, err)
		}
	}
}

// fakeBackend records what the CLI asks of the client.
type fakeBackend struct {
	devices []*genl.Device
	err     error // returned by every call when set
	calls   []string
	cfgs    []genl.Config
	events  []genl.Event
	closed  bool
}

func (f *fakeBackend) Devices() ([]*genl.Device, error) {
	f.calls = append(f.calls, "Devices")
	return f.devices, f.err
}

func (f *fakeBackend) Device(name string) (*genl.Device, error) {
	f.calls = append(f.calls, "Device "+name)
	if f.err != nil {
		return nil, f.err
	}
	for _, d := range f.devices {
		if d.Name == name {
			return d, nil
		}
	}
	return nil, &genl.Error{Op: "get device " + name, Err: unix.ENODEV, Message: "no insane device " + name}
}

func (f *fakeBackend) AddLink(name, lower string, p *genl.Policy) error {
	f.calls = append(f.calls, fmt.Sprintf("AddLink %s %q %v", name, lower, p))
	return f.err
}

func (f *fakeBackend) AddLinkRx(name, lower string, p, rx *genl.Policy) error {
	f.calls = append(f.calls, fmt.Sprintf("AddLinkRx %s %q %v rx %v", name, lower, p, rx))
	return f.err
}

func (f *fakeBackend) DeleteLink(name string) error {
	f.calls = append(f.calls, "DeleteLink "+name)
	return f.err
}

func (f *fakeBackend) ConfigureDevice(name string, cfg genl.Config) error {
	f.calls = append(f.calls, "ConfigureDevice "+name)
	f.cfgs = append(f.cfgs, cfg)
	return f.err
}

func (f *fakeBackend) Monitor(ctx context.Context) (<-chan genl.Event, func() error, error) {
	f.calls = append(f.calls, "Monitor")
	if f.err != nil {
		return nil, nil, f.err
	}
	ch := make(chan genl.Event)
	go func() {
		defer close(ch)
		for _, ev := range f.events {
			ch <- ev
		}
		<-ctx.Done()
	}()
	return ch, func() error { return nil }, nil
}

func (f *fakeBackend) Close() error {
	f.closed = true
	return nil
}

var (
	devA = &genl.Device{
		Name: "ins0", Index: 7, LowerName: "veth0", LowerIndex: 3,
		Policy:   genl.Percent(12.5, ptr(uint64(42))),
		RxPolicy: ptr(genl.Percent(90, nil)),
		Stats: genl.Stats{RelayedPackets: 100, RelayedBytes: 12345, DropPolicy: 20, DropNoRoute: 2, DropNotIP: 1, DropLoop: 3, DropMalformed: 4,
			RxRelayedPackets: 9, RxRelayedBytes: 900, RxDropPolicy: 1},
	}
	devB = &genl.Device{Name: "ins1", Index: 8, Policy: genl.Time(500*time.Millisecond, time.Second)}
	devC = &genl.Device{Name: "ins2", Index: 9, LowerName: "lo", LowerIndex: 1, Policy: genl.Pass()}
)

var fixedTime = time.Date(2026, 11, 26, 14, 5, 1, 123456000, time.UTC)

func runCLI(t *testing.T, f *fakeBackend, args string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	dial := func(netns string) (backend, error) { return f, nil }
	code := run(context.Background(), strings.Fields(args), &stdout, &stderr, dial, func() time.Time { return fixedTime })
	return code, stdout.String(), stderr.String()
}

// checkSets runs each command on a backend of its own and checks it
// reached the client as one Config, the one given.
func checkSets(t *testing.T, cases map[string]genl.Config) {
	t.Helper()
	for args, want := range cases {
		f := &fakeBackend{}
		code, _, errOut := runCLI(t, f, args)
		if code != 0 || len(f.cfgs) != 1 {
			t.Errorf("%s: exit %d %q", args, code, errOut)
			continue
		}
		if diff := cmp.Diff(want, f.cfgs[0]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", args, diff)
		}
	}
}

// showPolicies checks that link show prints d as want, then returns the
// policy and rx_policy of -j link show, and its text, with the backend
// that holds d.
func showPolicies(t *testing.T, d *genl.Device, want string) (f *fakeBackend, p, rx map[string]any, out string) {
	t.Helper()
	f = &fakeBackend{devices: []*genl.Device{d}}
	code, out, errOut := runCLI(t, f, "link show "+d.Name)
	if code != 0 || out != want {
		t.Errorf("show: exit %d %q %q, want %q", code, out, errOut, want)
	}
	code, out, _ = runCLI(t, f, "-j link show "+d.Name)
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || len(got) != 1 {
		t.Fatalf("-j: exit %d %v %q", code, err, out)
	}
	return f, got[0]["policy"].(map[string]any), got[0]["rx_policy"].(map[string]any), out
}

// checkShowSets: the words show printed for d, as shown, set the same
// policies again.
func checkShowSets(t *testing.T, f *fakeBackend, d *genl.Device, shown string) {
	t.Helper()
	prefix := fmt.Sprintf("%d: %s: lower %s ", d.Index, d.Name, d.LowerName)
	code, _, errOut := runCLI(t, f, "link set "+d.Name+" "+strings.TrimPrefix(strings.TrimSpace(shown), prefix))
	if code != 0 || !f.cfgs[0].Policy.Equal(d.Policy) || !f.cfgs[0].RxPolicy.Equal(*d.RxPolicy) {
		t.Errorf("show's words set: exit %d %q %+v", code, errOut, f.cfgs)
	}
}

// newCauses returns what the text and the JSON of -s print, after
// malformed, for the transmit drop causes appended to the uapi header after
// it, all 0 in the devices here: so the goldens below pin today's output
// and still let a new cause come in by the header alone. rxCauses does the
// same after the receive side's no-memory.
func newCauses() (text, jsonText string) {
	for _, c := range genl.Counters() {
		if c.Attr > uapi.StatsADropMalformed && c.Drop && !c.Rx {
			text += " " + c.Short + " 0"
			jsonText += `,"` + c.Name + `":0`
		}
	}
	return text, jsonText
}

func rxCauses() (text, jsonText string) {
	for _, c := range genl.Counters() {
		if c.Attr > uapi.StatsARxDropNoMemory && c.Drop && c.Rx {
			text += " " + c.Short + " 0"
			jsonText += `,"` + c.Name + `":0`
		}
	}
	return text, jsonText
}

// heldLines are the gauges' and the marks' lines of -s (held:, marked:),
// all 0 in the fakes' devices.
func heldLines(rx bool) (text, jsonText string) {
	held, marked := "    held:", "    marked:"
	if rx {
		held, marked = "    rx held:", "    rx marked:"
	}
	var markJSON string
	for _, c := range genl.Counters() {
		if c.Gauge && c.Rx == rx {
			held += " " + c.Short + " 0"
			jsonText += `,"` + c.Name + `":0`
		}
		if c.Mark && c.Rx == rx {
			marked += " " + c.Short + " 0"
			markJSON += `,"` + c.Name + `":0`
		}
	}
	return held + "\n" + marked + "\n", jsonText + markJSON
}

func TestShowText(t *testing.T) {
	extra, _ := newCauses()
	rxExtra, _ := rxCauses()
	held, _ := heldLines(false)
	rxHeld, _ := heldLines(true)
	f := &fakeBackend{devices: []*genl.Device{devA, devB, devC}}
	code, out, errOut := runCLI(t, f, "link show")
	want := "7: ins0: lower veth0 mode percent 12.5 seed 42 rx mode percent 90\n" +
		"8: ins1: nolower mode time 500ms 1s\n" +
		"9: ins2: lower lo mode pass\n"
	if code != 0 || out != want || errOut != "" {
		t.Fatalf("exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
	if !f.closed {
		t.Error("client not closed")
	}
	code, out, _ = runCLI(t, f, "-s show ins0")
	want = "7: ins0: lower veth0 mode percent 12.5 seed 42 rx mode percent 90\n" +
		"    relayed: packets 100 bytes 12345\n" +
		"    dropped: total 30 policy 20 no-lower 0 no-route 2 lower-refused 0 not-ip 1 loop 3 malformed 4" + extra + "\n" +
		held + "    rx relayed: packets 9 bytes 900\n" +
		"    rx dropped: total 1 policy 1 no-memory 0" + rxExtra + "\n" + rxHeld
	if code != 0 || out != want {
		t.Fatalf("exit %d, stdout:\n%s", code, out)
	}
	if got := f.calls[len(f.calls)-1]; got != "Device ins0" {
		t.Errorf("show NAME called %s", got)
	}
}

// TestShowMarks: -s prints the marks on marked: lines of their own, which
// no dropped total counts, and -j as their own keys after the gauges.
func TestShowMarks(t *testing.T) {
	d := &genl.Device{Name: "ins5", Index: 12, Policy: genl.Pass(), Stats: genl.Stats{RelayedPackets: 10, DropNoMemory: 1,
		Duplicated: 3, Corrupted: 2, RxDuplicated: 5, RxCorrupted: 4}}
	f := &fakeBackend{devices: []*genl.Device{d}}
	code, out, _ := runCLI(t, f, "-s show ins5")
	for _, want := range []string{"    relayed: packets 10 bytes 0\n", "    dropped: total 1 policy 0 ", " no-memory 1\n",
		"    marked: duplicated 3 corrupted 2\n", "    rx dropped: total 0 ", "    rx marked: duplicated 5 corrupted 4\n"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("-s show lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, f, "-s -j show ins5")
	for _, want := range []string{`"dropped":1,`, `"drop_no_memory":1,"held_packets":0,"held_bytes":0,"duplicated":3,"corrupted":2,"rx_relayed_packets":0`,
		`"rx_held_bytes":0,"rx_duplicated":5,"rx_corrupted":4}`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("-s -j show lacks %s:\n%s", want, out)
		}
	}
}

func TestShowJSON(t *testing.T) {
	_, extraJSON := newCauses()
	_, rxExtraJSON := rxCauses()
	_, heldJSON := heldLines(false)
	_, rxHeldJSON := heldLines(true)
	f := &fakeBackend{devices: []*genl.Device{devA, devB, devC}}
	code, out, _ := runCLI(t, f, "-j link show")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := `[{"ifindex":7,"ifname":"ins0","link":"veth0","link_index":3,"policy":{"mode":"percent","percent":12.5,"seed":42},"rx_policy":{"mode":"percent","percent":90}},` +
		`{"ifindex":8,"ifname":"ins1","policy":{"mode":"time","on_ns":500000000,"off_ns":1000000000}},` +
		`{"ifindex":9,"ifname":"ins2","link":"lo","link_index":1,"policy":{"mode":"pass"}}]` + "\n"
	if out != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}

	code, out, _ = runCLI(t, f, "-s -j -p show ins0")
	if code != 0 || !strings.Contains(out, "\n    {\n        \"ifindex\": 7,") {
		t.Fatalf("pretty output:\n%s", out)
	}
	var parsed []map[string]any
	if err := json.Unmarshal([]byte(out), &parsed); err != nil {
		t.Fatal(err)
	}
	stats := parsed[0]["stats"].(map[string]any)
	if len(parsed) != 1 || stats["dropped"] != 30.0 || stats["relayed_bytes"] != 12345.0 || stats["drop_no_lower"] != 0.0 {
		t.Fatalf("parsed %v", parsed)
	}
	code, out, _ = runCLI(t, f, "-s -j show ins0")
	wantStats := `"stats":{"relayed_packets":100,"relayed_bytes":12345,"dropped":30,"drop_policy":20,"drop_no_lower":0,` +
		`"drop_no_route":2,"drop_lower_refused":0,"drop_not_ip":1,"drop_loop":3,"drop_malformed":4` + extraJSON + heldJSON +
		`,"rx_relayed_packets":9,"rx_relayed_bytes":900,"rx_dropped":1,"rx_drop_policy":1,"rx_drop_no_memory":0` + rxExtraJSON + rxHeldJSON +
		`}}]` + "\n"
	if code != 0 || !strings.HasSuffix(out, wantStats) {
		t.Fatalf("-s -j show ins0:\n%s\nwant it to end with\n%s", out, wantStats)
	}

	f.devices = nil
	if code, out, _ := runCLI(t, f, "-j show"); code != 0 || out != "[]\n" {
		t.Fatalf("empty: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, f, "show"); code != 0 || out != "" {
		t.Fatalf("empty text: %d %q", code, out)
	}
}

func TestCommands(t *testing.T) {
	f := &fakeBackend{devices: []*genl.Device{devA, devB}}
	for args, call := range map[string]string{
		"link add ins5 slave veth0 mode percent 12.5 seed 9": `AddLink ins5 "veth0" mode percent 12.5 seed 9`,
		"link add ins5":                       `AddLink ins5 "" <nil>`,
		"link add ins5 mode time 50 100":      `AddLink ins5 "" mode time 500ms 1s`,
		"link del ins0":                       "DeleteLink ins0",
		"link set ins0 slave veth1":           "ConfigureDevice ins0",
		"link set ins0 lower veth2":           "ConfigureDevice ins0",
		"link set ins0 nolower reset-stats":   "ConfigureDevice ins0",
		"link set ins0 mode pass noslave":     "ConfigureDevice ins0",
		"link set ins0 reset-stats":           "ConfigureDevice ins0",
		"link set ins0 mode percent 5 seed 3": "ConfigureDevice ins0",
	} {
		f.calls = nil
		code, out, errOut := runCLI(t, f, args)
		if code != 0 || out != "" || errOut != "" || len(f.calls) != 1 || f.calls[0] != call {
			t.Errorf("%s: exit %d, out %q, err %q, calls %q, want %q", args, code, out, errOut, f.calls, call)
		}
	}
	want := []genl.Config{
		{Lower: "veth1"},
		{Lower: "veth2"},
		{Detach: true, ResetStats: true},
		{Detach: true, Policy: ptr(genl.Pass())},
		{ResetStats: true},
		{Policy: ptr(genl.Percent(5, ptr(uint64(3))))},
	}
	// Map iteration order is random: compare as sets.
	for _, w := range want {
		found := false
		for _, g := range f.cfgs {
			if cmp.Diff(w, g) == "" {
				found = true
			}
		}
		if !found {
			t.Errorf("config %+v not sent; sent %+v", w, f.cfgs)
		}
	}
}

func TestSetSeedKeepsPercent(t *testing.T) {
	f := &fakeBackend{devices: []*genl.Device{devA, devB}}
	code, _, errOut := runCLI(t, f, "link set ins0 seed 77")
	if code != 0 || len(f.cfgs) != 1 {
		t.Fatalf("exit %d %s", code, errOut)
	}
	if diff := cmp.Diff(genl.Config{Policy: ptr(genl.Percent(12.5, ptr(uint64(77))))}, f.cfgs[0]); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if devA.Policy.Seed == nil || *devA.Policy.Seed != 42 {
		t.Fatal("the shown device was modified")
	}
	code, _, errOut = runCLI(t, f, "link set ins1 seed 77")
	if code != 1 || !strings.Contains(errOut, "mode time") || len(f.cfgs) != 1 {
		t.Fatalf("seed on a time policy: exit %d, %q", code, errOut)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		args    string
		err     error
		code    int
		message string
	}{
		{"show nope", nil, 1, "insane: get device nope: no such device: no insane device nope\n"},
		{"link add ins0 mode percent 101", nil, 2, "insane: percentage \"101\" is not between 0 and 100; try 'insane help'\n"},
		{"link bogus", nil, 2, "insane: unknown link command \"bogus\"; try 'insane help'\n"},
		{"link set ins0 slave veth0 nolower", nil, 2, "insane: lower and nolower exclude each other; try 'insane help'\n"},
		{"link add ins0 lower", nil, 2, "insane: lower needs a device name; try 'insane help'\n"},
		{"show", &genl.NotLoadedError{Op: "x", Err: unix.ENOENT}, 1, "insane: the insane kernel module is not loaded; load it with 'modprobe insane'\n"},
		{"link set ins0 mode pass", &genl.Error{Op: "set device ins0", Err: unix.EPERM}, 1, "insane: set device ins0: operation not permitted (CAP_NET_ADMIN is needed)\n"},
		{"link set ins0 mode percent 5", &genl.Error{Op: "set device ins0", Err: unix.EINVAL, Message: "percent too high"}, 1, "insane: set device ins0: invalid argument: percent too high\n"},
		{"monitor", &genl.NotLoadedError{Op: "x", Err: unix.ENOENT}, 1, "insane: the insane kernel module is not loaded; load it with 'modprobe insane'\n"},
	} {
		f := &fakeBackend{devices: []*genl.Device{devA}, err: tc.err}
		code, out, errOut := runCLI(t, f, tc.args)
		if code != tc.code || errOut != tc.message || out != "" {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want %d, %q", tc.args, code, errOut, out, tc.code, tc.message)
		}
		if strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: error is not one line", tc.args)
		}
	}
}

func TestDialError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	var gotNS string
	dial := func(netns string) (backend, error) {
		gotNS = netns
		return nil, fmt.Errorf("open network namespace: %w", &os.PathError{Op: "open", Path: netns, Err: unix.ENOENT})
	}
	code := run(context.Background(), []string{"-n", "nope", "show"}, &stdout, &stderr, dial, time.Now)
	if code != 1 || gotNS != "/var/run/netns/nope" || !strings.Contains(stderr.String(), "/var/run/netns/nope") {
		t.Fatalf("exit %d, netns %q, stderr %q", code, gotNS, stderr.String())
	}
}

func TestHelp(t *testing.T) {
	f := &fakeBackend{}
	for _, args := range []string{"help", "-h", "link help", "help link"} {
		code, out, errOut := runCLI(t, f, args)
		if code != 0 || errOut != "" || !strings.Contains(out, "insane link add NAME [ lower DEV ] [ [ tx ] POLICY ] [ rx POLICY ]") ||
			!strings.Contains(out, "insane link set NAME [ lower DEV | nolower ]") || !strings.Contains(out, `"slave DEV" and "noslave"`) ||
			!strings.Contains(out, "mode time ON OFF") {
			t.Errorf("%s: exit %d, out %q", args, code, out)
		}
	}
	if len(f.calls) != 0 {
		t.Error("help talked to the kernel")
	}
}

func TestMonitor(t *testing.T) {
	extra, _ := newCauses()
	rxExtra, _ := rxCauses()
	held, _ := heldLines(false)
	rxHeld, _ := heldLines(true)
	f := &fakeBackend{events: []genl.Event{
		{Type: genl.EventRxPolicy, Device: *devA},
		{Type: genl.EventDetach, Device: *devB},
	}}
	for _, tc := range []struct{ args, want string }{
		{"monitor", "[2026-11-26T14:05:01.123456Z] rx-policy 7: ins0: lower veth0 mode percent 12.5 seed 42 rx mode percent 90\n" +
			"[2026-11-26T14:05:01.123456Z] detach 8: ins1: nolower mode time 500ms 1s\n"},
		{"-j monitor", `{"timestamp":"2026-11-26T14:05:01.123456Z","event":"rx-policy","ifindex":7,"ifname":"ins0","link":"veth0","link_index":3,"policy":{"mode":"percent","percent":12.5,"seed":42},"rx_policy":{"mode":"percent","percent":90}}` + "\n" +
			`{"timestamp":"2026-11-26T14:05:01.123456Z","event":"detach","ifindex":8,"ifname":"ins1","policy":{"mode":"time","on_ns":500000000,"off_ns":1000000000}}` + "\n"},
		{"-s monitor", "[2026-11-26T14:05:01.123456Z] rx-policy 7: ins0: lower veth0 mode percent 12.5 seed 42 rx mode percent 90\n" +
			"    relayed: packets 100 bytes 12345\n" +
			"    dropped: total 30 policy 20 no-lower 0 no-route 2 lower-refused 0 not-ip 1 loop 3 malformed 4" + extra + "\n" +
			held + "    rx relayed: packets 9 bytes 900\n" +
			"    rx dropped: total 1 policy 1 no-memory 0" + rxExtra + "\n" + rxHeld +
			"[2026-11-26T14:05:01.123456Z] detach 8: ins1: nolower mode time 500ms 1s\n" + "    relayed: packets 0 bytes 0\n" +
			"    dropped: total 0 policy 0 no-lower 0 no-route 0 lower-refused 0 not-ip 0 loop 0 malformed 0" + extra + "\n" +
			held + "    rx relayed: packets 0 bytes 0\n" +
			"    rx dropped: total 0 policy 0 no-memory 0" + rxExtra + "\n" + rxHeld},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr bytes.Buffer
		done := make(chan int)
		w := &lockedBuffer{b: &stdout}
		go func() {
			done <- run(ctx, strings.Fields(tc.args), w, &stderr, func(string) (backend, error) { return f, nil }, func() time.Time { return fixedTime })
		}()
		// The monitor runs until interrupted.
		deadline := time.Now().Add(5 * time.Second)
		for w.String() != tc.want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		select {
		case code := <-done:
			t.Fatalf("%s: monitor ended by itself with %d", tc.args, code)
		default:
		}
		cancel()
		if code := <-done; code != 0 || w.String() != tc.want || stderr.Len() != 0 {
			t.Errorf("%s: exit %d, stdout:\n%s\nstderr: %s", tc.args, code, w.String(), stderr.String())
		}
	}
}

func TestFormatJSONRoundTrip(t *testing.T) {
	// What -j prints for a percent parses back to the exact units.
	for _, units := range []uint32{0, 1, 12345678, 99999999, 100000000} {
		d := &genl.Device{Name: "x", Index: 1, Policy: genl.Percent(float64(units)/1e6, nil)}
		var buf bytes.Buffer
		if err := writeJSON(&buf, []*genl.Device{d}, false, false); err != nil {
			t.Fatal(err)
		}
		var parsed []jsonDevice
		if err := json.Unmarshal(buf.Bytes(), &parsed); err != nil {
			t.Fatal(err)
		}
		if got := genl.Percent(*parsed[0].Policy.Percent, nil).PercentUnits(); got != units {
			t.Errorf("units %d came back as %d (%s)", units, got, buf.String())
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestShowScheduleAndBurst(t *testing.T) {
	seed := uint64(5)
	sched := genl.Schedule(true, &seed,
		genl.Step{Duration: 30 * time.Second, Action: genl.Pass()},
		genl.Step{Duration: 5 * time.Second, Action: genl.Burst(90, 2.5, nil)},
		genl.Step{Duration: time.Second, Action: genl.Gilbert(genl.GilbertElliott{P: 1, R: 20, LossBad: 100}, nil)})
	sched.Now = &genl.StepNow{Index: 1, Left: 3250 * time.Millisecond}
	held := sched
	held.Now = &genl.StepNow{Index: 2, Holds: true}
	f := &fakeBackend{devices: []*genl.Device{
		{Name: "ins0", Index: 7, LowerName: "veth0", LowerIndex: 3, Policy: sched},
		{Name: "ins1", Index: 8, Policy: genl.Burst(95, 5, nil), RxPolicy: &held},
	}}
	code, out, errOut := runCLI(t, f, "link show")
	want := "7: ins0: lower veth0 mode schedule 30s pass 5s burst 90 2.5 1s gilbert 1 20 once seed 5\n" +
		"    step 2 of 3: 5s burst 90 2.5, 3.25s left\n" +
		"8: ins1: nolower mode burst 95 5 rx mode schedule 30s pass 5s burst 90 2.5 1s gilbert 1 20 once seed 5\n" +
		"    rx step 3 of 3: 1s gilbert 1 20, held for good\n"
	if code != 0 || out != want || errOut != "" {
		t.Fatalf("exit %d, stdout:\n%s\nwant:\n%s\nstderr: %s", code, out, want, errOut)
	}
	code, out, _ = runCLI(t, f, "-j show ins0")
	wantJSON := `[{"ifindex":7,"ifname":"ins0","link":"veth0","link_index":3,"policy":{"mode":"schedule","seed":5,` +
		`"steps":[{"mode":"pass","duration_ns":30000000000},{"mode":"burst","percent":90,"burst":2.5,"duration_ns":5000000000},` +
		`{"mode":"gilbert","ge_p":1,"ge_r":20,"ge_loss_bad":100,"ge_loss_good":0,"duration_ns":1000000000}],` +
		`"once":true,"step":1,"step_left_ns":3250000000}}]` + "\n"
	if code != 0 || out != wantJSON {
		t.Fatalf("-j show ins0:\n%s\nwant:\n%s", out, wantJSON)
	}
	// A seed alone keeps the burst numbers.
	code, _, errOut = runCLI(t, f, "link set ins1 seed 9")
	if code != 0 || len(f.cfgs) != 1 || f.cfgs[0].Policy.String() != "mode burst 95 5 seed 9" {
		t.Fatalf("set seed on a burst policy: exit %d %s %+v", code, errOut, f.cfgs)
	}
}

func TestParseEdgeFlags(t *testing.T) {
	flags := func(p genl.Policy, carrier, events bool) *genl.Policy {
		p.Carrier, p.Events = carrier, events
		return &p
	}
	for _, tc := range []struct {
		args string
		want command
	}{
		{"link add ins0 lower eth0 mode time 5s 2s carrier events", command{verb: verbAdd, name: "ins0", lower: "eth0",
			policy: flags(genl.Time(5*time.Second, 2*time.Second), true, true)}},
		{"link set ins0 c mode time 50 100 e reset-stats", command{verb: verbSet, name: "ins0", resetStats: true,
			policy: flags(genl.Time(500*time.Millisecond, time.Second), true, true)}},
		{"link set ins0 mode time 1s 1s rx events mode time 1s 2s", command{verb: verbSet, name: "ins0",
			policy: flags(genl.Time(time.Second, time.Second), false, false), rxPolicy: flags(genl.Time(time.Second, 2*time.Second), false, true)}},
		{"link set ins0 mode schedule 1s pass 1s drop once seed 3 events", command{verb: verbSet, name: "ins0",
			policy: flags(genl.Schedule(true, nil, genl.Step{Duration: time.Second, Action: genl.Pass()},
				genl.Step{Duration: time.Second, Action: genl.Drop()}), false, true), seed: ptr(uint64(3))}},
	} {
		t.Run(tc.args, func(t *testing.T) {
			got, err := parse(strings.Fields(tc.args))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&tc.want, got, cmp.AllowUnexported(command{}, options{})); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
	for args, want := range map[string]string{
		"link set ins0 carrier":                         "carrier goes with mode time or schedule",
		"link set ins0 seed 3 events":                   "events goes with mode time or schedule",
		"link set ins0 rx events":                       "rx events goes with mode time or schedule",
		"link set ins0 mode time 1s 1s rx carrier":      "carrier goes with the transmit policy only",
		"link add ins0 mode time 1s 1s c carrier":       "carrier given twice",
		"link add ins0 mode schedule 1s pass e 1s drop": `unknown keyword "1s"`,
	} {
		_, err := parse(strings.Fields(args))
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a usage error with %q", args, err, want)
		}
	}
}

func TestEdgeFlagsCommandsAndShow(t *testing.T) {
	p := genl.Time(5*time.Second, 2*time.Second)
	p.Carrier, p.Events = true, true
	rx := genl.Schedule(false, nil, genl.Step{Duration: time.Second, Action: genl.Drop()}, genl.Step{Duration: 2 * time.Second, Action: genl.Pass()})
	rx.Events = true
	d := &genl.Device{Name: "ins0", Index: 7, LowerName: "veth0", LowerIndex: 3, Policy: p, RxPolicy: &rx}
	f := &fakeBackend{devices: []*genl.Device{d}}
	code, _, errOut := runCLI(t, f, "link add ins5 lower veth0 mode time 5s 2s events carrier")
	if code != 0 || len(f.calls) != 1 || f.calls[0] != `AddLink ins5 "veth0" mode time 5s 2s carrier events` {
		t.Fatalf("add: exit %d %s, calls %q", code, errOut, f.calls)
	}
	code, _, errOut = runCLI(t, f, "link set ins0 mode time 5s 2s carrier events rx mode schedule 1s drop 2s pass events")
	if code != 0 || len(f.cfgs) != 1 || cmp.Diff(genl.Config{Policy: &p, RxPolicy: &rx}, f.cfgs[0]) != "" {
		t.Fatalf("set: exit %d %s, configs %+v", code, errOut, f.cfgs)
	}
	// A seed alone keeps the flags of the current policy.
	sched := rx
	sched.Carrier = true
	f.devices = []*genl.Device{{Name: "ins1", Index: 8, Policy: sched}}
	code, _, errOut = runCLI(t, f, "link set ins1 seed 4")
	if code != 0 || len(f.cfgs) != 2 || f.cfgs[1].Policy.String() != "mode schedule 1s drop 2s pass seed 4 carrier events" {
		t.Fatalf("seed alone: exit %d %s, configs %+v", code, errOut, f.cfgs)
	}

	f.devices = []*genl.Device{d}
	code, out, _ := runCLI(t, f, "show")
	if want := "7: ins0: lower veth0 mode time 5s 2s carrier events rx mode schedule 1s drop 2s pass events\n"; code != 0 || out != want {
		t.Fatalf("show:\n%s\nwant:\n%s", out, want)
	}
	code, out, _ = runCLI(t, f, "-j show")
	want := `[{"ifindex":7,"ifname":"ins0","link":"veth0","link_index":3,` +
		`"policy":{"mode":"time","on_ns":5000000000,"off_ns":2000000000,"carrier":true,"events":true},` +
		`"rx_policy":{"mode":"schedule","steps":[{"mode":"drop","duration_ns":1000000000},{"mode":"pass","duration_ns":2000000000}],"events":true}}]` + "\n"
	if code != 0 || out != want {
		t.Fatalf("-j show:\n%s\nwant:\n%s", out, want)
	}
}

func TestMonitorEdges(t *testing.T) {
	off, on := false, true
	down := &genl.Edge{
		Direction: genl.DirectionTx, Seq: 3, Step: 1, Mode: genl.ModeDrop, State: genl.EdgeDown,
		Time: 1234500 * time.Millisecond, Realtime: time.Date(2026, 12, 2, 6, 30, 0, 500000000, time.UTC),
		Fired: 1234500*time.Millisecond + 42*time.Microsecond, Carrier: &off,
	}
	up := &genl.Edge{
		Direction: genl.DirectionTx, Seq: 4, Step: 0, Mode: genl.ModePass, State: genl.EdgeUp,
		Time: 1236500 * time.Millisecond, Realtime: time.Date(2026, 12, 2, 6, 30, 2, 500000001, time.UTC),
		Fired: 1236500*time.Millisecond + 1500*time.Microsecond, Carrier: &on,
	}
	rx := &genl.Edge{
		Direction: genl.DirectionRx, Seq: 12, Step: 2, Mode: genl.ModePercent, State: genl.EdgeUp,
		Time: 7 * time.Second, Realtime: time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC), Fired: 7*time.Second + 3,
	}
	dev := genl.Device{Name: "ins0", Index: 7}
	f := &fakeBackend{events: []genl.Event{
		{Type: genl.EventEdge, Device: dev, Edge: down},
		{Type: genl.EventEdge, Device: dev, Edge: up},
		{Type: genl.EventEdge, Device: genl.Device{Name: "ins1", Index: 8}, Edge: rx},
		{Type: genl.EventDetach, Device: *devB},
	}}
	text := "[2026-11-26T14:05:01.123456Z] edge 7: ins0: tx step 2 drop down seq 3 at 2026-12-02T06:30:00.500000000Z monotonic 1234.500000000 fired +0.042ms carrier off\n" +
		"[2026-11-26T14:05:01.123456Z] edge 7: ins0: tx step 1 pass up seq 4 at 2026-12-02T06:30:02.500000001Z monotonic 1236.500000000 fired +1.500ms carrier on\n" +
		"[2026-11-26T14:05:01.123456Z] edge 8: ins1: rx step 3 percent up seq 12 at 2026-12-02T06:00:00.000000000Z monotonic 7.000000000 fired +0.000ms\n" +
		"[2026-11-26T14:05:01.123456Z] detach 8: ins1: nolower mode time 500ms 1s\n"
	for _, tc := range []struct{ args, want string }{
		{"monitor", text},
		// -s adds no counters to an edge: its message has none.
		{"-s monitor", strings.Replace(text, "mode time 500ms 1s\n", "mode time 500ms 1s\n"+statsLines(genl.Stats{}), 1)},
		{"-j monitor", `{"timestamp":"2026-11-26T14:05:01.123456Z","event":"edge","ifindex":7,"ifname":"ins0","direction":"tx","seq":3,"step":1,"mode":"drop","state":"down","time_ns":1234500000000,"realtime":"2026-12-02T06:30:00.5Z","realtime_ns":1796193000500000000,"fired_ns":1234500042000,"carrier":false}` + "\n" +
			`{"timestamp":"2026-11-26T14:05:01.123456Z","event":"edge","ifindex":7,"ifname":"ins0","direction":"tx","seq":4,"step":0,"mode":"pass","state":"up","time_ns":1236500000000,"realtime":"2026-12-02T06:30:02.500000001Z","realtime_ns":1796193002500000001,"fired_ns":1236501500000,"carrier":true}` + "\n" +
			`{"timestamp":"2026-11-26T14:05:01.123456Z","event":"edge","ifindex":8,"ifname":"ins1","direction":"rx","seq":12,"step":2,"mode":"percent","state":"up","time_ns":7000000000,"realtime":"2026-12-02T06:00:00Z","realtime_ns":1796191200000000000,"fired_ns":7000000003}` + "\n" +
			`{"timestamp":"2026-11-26T14:05:01.123456Z","event":"detach","ifindex":8,"ifname":"ins1","policy":{"mode":"time","on_ns":500000000,"off_ns":1000000000}}` + "\n"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		var stderr bytes.Buffer
		w := &lockedBuffer{b: &bytes.Buffer{}}
		done := make(chan int)
		go func() {
			done <- run(ctx, strings.Fields(tc.args), w, &stderr, func(string) (backend, error) { return f, nil }, func() time.Time { return fixedTime })
		}()
		deadline := time.Now().Add(5 * time.Second)
		for w.String() != tc.want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		if code := <-done; code != 0 || w.String() != tc.want || stderr.Len() != 0 {
			t.Errorf("%s: exit %d, stdout:\n%s\nwant:\n%s\nstderr: %s", tc.args, code, w.String(), tc.want, stderr.String())
		}
	}
}
