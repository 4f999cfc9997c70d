//go:build vmtest

package guest

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
)

// These tests drive the ip(8) plugin iproute2/link_insane.so, which the
// runner installs where the guest's ip looks for it, and check what it does
// against the generic netlink client.

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

func TestIPLinkPlugin(t *testing.T) {
	LoadModule(t)
	tp := NewTopo(t)
	CheckKmsg(t)
	b := tp.Borea
	c := clDial(t, b)

	t.Run("help", func(t *testing.T) {
		out := RunIn(t, b, "ip", "link", "help", "insane")
		for _, want := range []string{"mode percent P [ seed S ]", "mode time ON OFF", "10 ms ticks"} {
			if !strings.Contains(out, want) {
				t.Errorf("ip link help insane lacks %q:\n%s", want, out)
			}
		}
	})

	// Each step sets a policy with ip, then reads it back three ways: the
	// client, ip -d (text) and ip -d -j.
	steps := []struct {
		name     string
		args     []string // after "type insane"
		want     genl.Policy
		text     string
		jsonData string
	}{
		{"add percent", []string{"mode", "percent", "12.5", "seed", "42"},
			genl.Percent(12.5, ptr[uint64](42)), "insane mode percent 12.5 seed 42 ",
			`{"mode":"percent","percent":12.5,"seed":42}`},
		{"time in ticks", []string{"mode", "time", "50", "100"},
			genl.Time(500*time.Millisecond, time.Second), "insane mode time 500ms 1s ",
			`{"mode":"time","on_ns":500000000,"off_ns":1000000000}`},
		{"time with units", []string{"mode", "time", "1m30s", "1.5ms"},
			genl.Time(90*time.Second, 1500*time.Microsecond), "insane mode time 90s 1500us ",
			`{"mode":"time","on_ns":90000000000,"off_ns":1500000}`},
		{"percent to a millionth", []string{"mode", "percent", "0.000001%"},
			genl.Percent(0.000001, nil), "insane mode percent 0.000001 ",
			`{"mode":"percent","percent":0.000001}`},
		{"largest seed", []string{"mode", "percent", "100", "seed", "0xffffffffffffffff"},
			genl.Percent(100, ptr[uint64](1<<64-1)), "insane mode percent 100 seed 18446744073709551615 ",
			`{"mode":"percent","percent":100,"seed":18446744073709551615}`},
		{"pass", []string{"mode", "pass"},
			genl.Pass(), "insane mode pass ", `{"mode":"pass"}`},
	}
	for i, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			if i == 0 {
				RunIn(t, b, append([]string{"ip", "link", "add", "link", tp.BoreaDev, "name", "ins0", "type", "insane"}, s.args...)...)
			} else {
				RunIn(t, b, append([]string{"ip", "link", "set", "ins0", "type", "insane"}, s.args...)...)
			}
			d := clDevice(t, c, "ins0")
			if d.Policy.String() != s.want.String() || d.Policy.PercentUnits() != s.want.PercentUnits() {
				t.Errorf("client reads %q, want %q", d.Policy, s.want)
			}
			if out := RunIn(t, b, "ip", "-d", "link", "show", "ins0"); !strings.Contains(out, s.text) {
				t.Errorf("ip -d link show lacks %q:\n%s", s.text, out)
			}
			info := pluginLink(t, b, "ins0")
			var want, have any
			if err := json.Unmarshal([]byte(s.jsonData), &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(info.InfoData, &have); err != nil {
				t.Fatalf("info_data %s: %v", info.InfoData, err)
			}
			if diff := cmp.Diff(want, have); diff != "" {
				t.Errorf("ip -j info_data (-want +got):\n%s", diff)
			}
		})
		if !ok && i == 0 {
			t.FailNow()
		}
	}

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
		for _, bad := range []struct {
			args []string
			msg  string
		}{
			{[]string{"mode", "percent", "100.5"}, `percentage "100.5" is not between 0 and 100`},
			{[]string{"mode", "percent", "-1"}, `"-1" is not a percentage`},
			{[]string{"mode", "percent"}, "mode percent needs a percentage"},
			{[]string{"mode", "time", "50"}, "mode time needs ON and OFF times"},
			{[]string{"mode", "time", "0", "0"}, "ON + OFF must be 1 ns to 2^63 - 1 ns"},
			{[]string{"mode", "time", "5x", "1s"}, `"5x" is not a time`},
			{[]string{"mode", "time", "1s", "-1s"}, `"-1s" is not a time`},
			{[]string{"mode", "time", "9223372036854775807", "1"}, "is too large"},
			{[]string{"mode", "chaos"}, `unknown mode "chaos"`},
			{[]string{"mode", "pass", "mode", "pass"}, "mode given twice"},
			{[]string{"seed", "7"}, "seed goes with mode percent"},
			{[]string{"mode", "pass", "seed", "7"}, "seed goes with mode percent"},
			{[]string{"mode", "percent", "5", "seed", "18446744073709551616"}, "is not a 64-bit unsigned integer"},
			{[]string{"slave", "veth0"}, `unknown option "slave"`},
		} {
			args := append([]string{"ip", "netns", "exec", b, "ip", "link", "set", "ins0", "type", "insane"}, bad.args...)
			cmd := exec.Command(args[0], args[1:]...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Errorf("%v: err %v, want a non-zero exit", bad.args, err)
			}
			msg := strings.TrimSpace(stderr.String())
			if !strings.HasPrefix(msg, "insane: ") || !strings.Contains(msg, bad.msg) || strings.Count(msg, "\n") != 0 {
				t.Errorf("%v: stderr %q, want one line \"insane: ...%s...\"", bad.args, msg, bad.msg)
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
		if len(x) != len(genl.Counters())+1 {
			t.Errorf("ip -j info_xstats has %d keys, want the %d counters and dropped: %v", len(x), len(genl.Counters()), x)
		}
		if got != st || x["dropped"] != st.Dropped() {
			t.Errorf("ip xstats %+v (dropped %d), client %+v (dropped %d)", got, x["dropped"], st, st.Dropped())
		}
		relayedLine := "relayed:"
		droppedLine := "dropped: total " + strconv.FormatUint(st.Dropped(), 10)
		for _, k := range genl.Counters() {
			if k.Drop {
				droppedLine += " " + k.Short + " " + strconv.FormatUint(k.Get(st), 10)
			} else {
				relayedLine += " " + k.Short + " " + strconv.FormatUint(k.Get(st), 10)
			}
		}
		if want := "relayed: packets " + strconv.FormatUint(relayed, 10) + " bytes "; !strings.HasPrefix(relayedLine, want) {
			t.Fatalf("the client's counters begin %q, want %q", relayedLine, want)
		}
		out := RunIn(t, b, "ip", "-d", "-s", "link", "show", "ins0")
		for _, want := range []string{"    " + relayedLine + "\n", "    " + droppedLine + "\n"} {
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
