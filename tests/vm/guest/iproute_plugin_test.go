//go:build vmtest

package guest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/policytest"
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

// wantInfoData is the info_data that ip -d -j prints for p, with the
// numbers exact: the names of the insane CLI's JSON.
func wantInfoData(p genl.Policy, rx *genl.Policy) map[string]any {
	m := wantPolicyJSON(p)
	if rx != nil {
		m["rx"] = wantPolicyJSON(*rx)
	}
	return m
}

func wantPolicyJSON(p genl.Policy) map[string]any {
	m := map[string]any{"mode": p.Mode.String()}
	switch p.Mode {
	case genl.ModePercent:
		m["percent"] = json.Number(genl.FormatPercentUnits(p.PercentUnits()))
		if p.Seed != nil {
			m["seed"] = json.Number(strconv.FormatUint(*p.Seed, 10))
		}
	case genl.ModeTime:
		m["on_ns"] = json.Number(strconv.FormatInt(int64(p.On), 10))
		m["off_ns"] = json.Number(strconv.FormatInt(int64(p.Off), 10))
	}
	return m
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

	// checkPolicy reads the policy back three ways: the client, ip -d
	// (text, in the CLI's grammar) and ip -d -j (the CLI's JSON names).
	checkPolicy := func(t *testing.T, want string) {
		t.Helper()
		d := clDevice(t, c, "ins0")
		if d.Policy.String() != want {
			t.Errorf("client reads %q, want %q", d.Policy, want)
		}
		if out := RunIn(t, b, "ip", "-d", "link", "show", "ins0"); !strings.Contains(out, "insane "+want+" ") {
			t.Errorf("ip -d link show lacks %q:\n%s", "insane "+want+" ", out)
		}
		info := pluginLink(t, b, "ins0")
		dec := json.NewDecoder(bytes.NewReader(info.InfoData))
		dec.UseNumber()
		var have map[string]any
		if err := dec.Decode(&have); err != nil {
			t.Fatalf("info_data %s: %v", info.InfoData, err)
		}
		if diff := cmp.Diff(wantInfoData(d.Policy, d.RxPolicy), have); diff != "" {
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
	t.Run("grammar", func(t *testing.T) {
		for _, tc := range cases {
			if tc.Policy == "" {
				continue
			}
			t.Run(tc.Name(), func(t *testing.T) {
				before := clDevice(t, c, "ins0").Policy.String()
				RunIn(t, b, append([]string{"ip", "link", "set", "ins0", "type", "insane"}, tc.Args...)...)
				tx, rx := tc.Split()
				if tx == "" {
					tx = before // words for the receive policy only keep this one
				}
				checkPolicy(t, tx)
				d := clDevice(t, c, "ins0")
				out := RunIn(t, b, "ip", "-d", "link", "show", "ins0")
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
		relayedLine, rxRelayedLine := "relayed:", "rx relayed:"
		droppedLine := "dropped: total " + strconv.FormatUint(st.Dropped(), 10)
		rxDroppedLine := "rx dropped: total " + strconv.FormatUint(st.RxDropped(), 10)
		for _, k := range genl.Counters() {
			v := " " + k.Short + " " + strconv.FormatUint(k.Get(st), 10)
			switch {
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
		for _, want := range []string{"    " + relayedLine + "\n", "    " + droppedLine + "\n",
			"    " + rxRelayedLine + "\n", "    " + rxDroppedLine + "\n"} {
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
