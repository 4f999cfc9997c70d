//go:build vmtest

package guest

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
)

// These tests drive insane only through iproute2, busybox ping and ethtool,
// the way an administrator would, with the article's borea/morgana topology.

// TestIPLink covers ip link add/show/del on a lower device, and module
// autoload through the rtnl-link alias.
func TestIPLink(t *testing.T) {
	UnloadModule(t)
	tp := NewTopo(t)
	CheckKmsg(t)
	b := tp.Borea
	// A lower MTU that is not the default shows that insane0 takes it.
	RunIn(t, b, "ip", "link", "set", "veth0", "mtu", "1400")

	t.Run("autoload", func(t *testing.T) {
		RunIn(t, b, "ip", "link", "add", "link", "veth0", "name", "insane0", "type", "insane")
		if !ModuleLoaded() {
			t.Fatal("ip link add ... type insane did not load the insane module")
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("show", func(t *testing.T) {
		out := RunIn(t, b, "ip", "link", "show", "insane0")
		if !regexp.MustCompile(`^\d+: insane0@veth0: <`).MatchString(out) {
			t.Errorf("ip link show insane0 does not print insane0@veth0:\n%s", out)
		}
		out = RunIn(t, b, "ip", "-d", "link", "show", "insane0")
		if !regexp.MustCompile(`(?m)^\s+insane\b`).MatchString(out) {
			t.Errorf("ip -d link show insane0 does not show kind insane:\n%s", out)
		}
		l := GetLink(t, b, "insane0")
		if l.Linkinfo.InfoKind != "insane" {
			t.Errorf("linkinfo kind = %q, want insane", l.Linkinfo.InfoKind)
		}
		if l.Link != "veth0" {
			t.Errorf("link = %q, want veth0", l.Link)
		}
		if !l.HasFlag("NOARP") {
			t.Errorf("flags %v lack NOARP", l.Flags)
		}
	})

	t.Run("mtu", func(t *testing.T) {
		if got := GetLink(t, b, "insane0").MTU; got != 1400 {
			t.Errorf("insane0 mtu = %d, want the lower's 1400", got)
		}
		RunIn(t, b, "ip", "link", "set", "veth0", "mtu", "1300")
		if got := GetLink(t, b, "insane0").MTU; got != 1300 {
			t.Errorf("after the lower's mtu changed to 1300, insane0 mtu = %d", got)
		}
	})

	// The carrier flag changes at once; the operational state when the
	// kernel's link watch has run, a moment later (UNKNOWN until then, as
	// a fresh-clone run read 0.5 s into the test on a loaded host).
	t.Run("carrier", func(t *testing.T) {
		RunIn(t, b, "ip", "link", "set", "insane0", "up")
		WaitFor(t, 5*time.Second, "insane0 on an up veth to be LOWER_UP and UP", func() bool {
			l := GetLink(t, b, "insane0")
			return l.HasFlag("LOWER_UP") && l.Operstate == "UP"
		})
		RunIn(t, b, "ip", "link", "set", "veth0", "down")
		if l := GetLink(t, b, "insane0"); l.HasFlag("LOWER_UP") {
			t.Errorf("insane0 on a down veth: flags %v; want no carrier at once", l.Flags)
		}
		WaitFor(t, 5*time.Second, "insane0 on a down veth to leave operstate UP", func() bool {
			return GetLink(t, b, "insane0").Operstate != "UP"
		})
		RunIn(t, b, "ip", "link", "set", "veth0", "up")
		WaitFor(t, 5*time.Second, "insane0 to follow veth0 up", func() bool {
			return GetLink(t, b, "insane0").Operstate == "UP"
		})
	})

	t.Run("del", func(t *testing.T) {
		RunIn(t, b, "ip", "link", "del", "insane0")
		if _, err := TryGetLink(b, "insane0"); err == nil {
			t.Fatal("insane0 still exists after ip link del")
		}
		GetLink(t, b, "veth0") // the lower is still there
	})
}

// TestIPLinkNoLower creates a device without a lower: it exists, and even
// when up it is dormant, which ip shows as NO-CARRIER.
func TestIPLinkNoLower(t *testing.T) {
	LoadModule(t)
	ns := NewNetns(t, "lonely")
	CheckKmsg(t)
	RunIn(t, ns, "ip", "link", "add", "name", "insane0", "type", "insane")
	RunIn(t, ns, "ip", "link", "set", "insane0", "up")
	var l Link
	WaitFor(t, 5*time.Second, "insane0 to be dormant (NO-CARRIER)", func() bool {
		l = GetLink(t, ns, "insane0")
		return l.HasFlag("NO-CARRIER") && l.Operstate == "DORMANT"
	})
	if l.Link != "" {
		t.Errorf("link = %q, want none", l.Link)
	}
	if out := RunIn(t, ns, "ip", "link", "show", "insane0"); strings.Contains(out, "insane0@") {
		t.Errorf("ip link show names a lower for a detached device:\n%s", out)
	}
	RunIn(t, ns, "ip", "link", "del", "insane0")
}

// insaneCounters are the counters ethtool -S lists: the names of
// genl.Counters, which come from enum insane_stats_attr in the uapi header
// (the module's come from kernel/counters.h); with drops, only the drop
// causes.
func insaneCounters(drops bool) []string {
	var names []string
	for _, c := range genl.Counters() {
		if c.Drop || !drops {
			names = append(names, c.Name)
		}
	}
	return names
}

// ethtoolStats parses ethtool -S output into counter values.
func ethtoolStats(t testing.TB, ns, dev string) map[string]uint64 {
	t.Helper()
	out := RunIn(t, ns, "ethtool", "-S", dev)
	stats := make(map[string]uint64)
	re := regexp.MustCompile(`^\s+(\S+): (\d+)$`)
	for _, line := range strings.Split(out, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			v, err := strconv.ParseUint(m[2], 10, 64)
			if err != nil {
				t.Fatalf("ethtool -S %s: %q: %v", dev, line, err)
			}
			stats[m[1]] = v
		}
	}
	return stats
}

// TestEthtool checks the driver name and that ethtool -S lists every insane
// counter and counts relayed traffic.
func TestEthtool(t *testing.T) {
	LoadModule(t)
	tp := NewTopo(t)
	CheckKmsg(t)
	tp.AddInsane(t, "insane0")

	out := RunIn(t, tp.Borea, "ethtool", "-i", "insane0")
	if !regexp.MustCompile(`(?m)^driver: insane$`).MatchString(out) {
		t.Errorf("ethtool -i insane0 does not say driver: insane:\n%s", out)
	}

	before := ethtoolStats(t, tp.Borea, "insane0")
	for _, name := range insaneCounters(false) {
		if _, ok := before[name]; !ok {
			t.Errorf("ethtool -S insane0 lacks %s; it lists %v", name, before)
		}
	}
	const n, size = 50, 100
	sent, rcvd := tp.UDP(t, vmnet.SendOptions{Count: n, Size: size})
	if sent.Errors != 0 || len(rcvd.Seqs) != n {
		t.Fatalf("pass mode: %d send errors (%v), %d of %d datagrams arrived", sent.Errors, sent.FirstError, len(rcvd.Seqs), n)
	}
	after := ethtoolStats(t, tp.Borea, "insane0")
	if d := after["relayed_packets"] - before["relayed_packets"]; d != n {
		t.Errorf("relayed_packets grew by %d, want %d", d, n)
	}
	// IPv4 header 20 + UDP header 8 + payload.
	if d := after["relayed_bytes"] - before["relayed_bytes"]; d != n*(20+8+size) {
		t.Errorf("relayed_bytes grew by %d, want %d", d, n*(20+8+size))
	}
	for _, name := range insaneCounters(true) {
		if after[name] != before[name] {
			t.Errorf("%s changed from %d to %d in pass mode", name, before[name], after[name])
		}
	}
}

// TestPassTraffic is the article's setup in pass mode: ping and UDP from
// borea reach morgana through insane0, and insane0 counts every datagram.
func TestPassTraffic(t *testing.T) {
	LoadModule(t)
	tp := NewTopo(t)
	CheckKmsg(t)
	tp.AddInsane(t, "insane0")

	route := RunIn(t, tp.Borea, "ip", "route", "get", tp.MorganaIP)
	if !strings.Contains(route, "dev insane0") {
		t.Fatalf("borea does not route morgana through insane0:\n%s", route)
	}
	RunIn(t, tp.Borea, "ping", "-c", "3", "-W", "5", tp.MorganaIP)

	const n = 200
	before := GetLink(t, tp.Borea, "insane0").Stats64.TX
	lowerBefore := GetLink(t, tp.Morgana, tp.MorganaDev).Stats64.RX
	sent, rcvd := tp.UDP(t, vmnet.SendOptions{Count: n, Size: 64})
	if sent.Errors != 0 {
		t.Errorf("%d sends failed, the first with %v", sent.Errors, sent.FirstError)
	}
	if len(rcvd.Seqs) != n || rcvd.Seqs[0] != 0 || rcvd.Seqs[n-1] != n-1 {
		t.Errorf("morgana received %d distinct datagrams of %d", len(rcvd.Seqs), n)
	}
	if rcvd.Duplicates != 0 {
		t.Errorf("morgana received %d duplicates", rcvd.Duplicates)
	}
	after := GetLink(t, tp.Borea, "insane0").Stats64.TX
	if d := after.Packets - before.Packets; d != n {
		t.Errorf("insane0 TX packets grew by %d, want %d", d, n)
	}
	if d := after.Dropped - before.Dropped; d != 0 {
		t.Errorf("insane0 TX dropped grew by %d in pass mode", d)
	}
	if d := GetLink(t, tp.Morgana, tp.MorganaDev).Stats64.RX.Packets - lowerBefore.Packets; d < n {
		t.Errorf("morgana's veth received %d packets, want at least %d", d, n)
	}
	// The article's point about tcpdump: insane0 sees what the stack
	// sent, the lower what was relayed; in pass mode both are everything.
	if out := RunIn(t, tp.Borea, "ip", "-s", "link", "show", "insane0"); !strings.Contains(out, "TX:") {
		t.Errorf("ip -s link show insane0 prints no TX counters:\n%s", out)
	}
}

// TestLowerDeleted deletes the lower device under a live insane device:
// the deletion must not hang, and insane0 must stay, detached, without
// carrier, dropping what is sent to it.
func TestLowerDeleted(t *testing.T) {
	LoadModule(t)
	tp := NewTopo(t)
	CheckKmsg(t)
	tp.AddInsane(t, "insane0")
	if sent, rcvd := tp.UDP(t, vmnet.SendOptions{Count: 10}); len(rcvd.Seqs) != 10 {
		t.Fatalf("before the deletion %d of 10 datagrams arrived (%d send errors)", len(rcvd.Seqs), sent.Errors)
	}

	start := time.Now()
	// timeout turns a hang in unregister_netdevice into a failure.
	RunIn(t, tp.Borea, "timeout", "30", "ip", "link", "del", tp.BoreaDev)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("deleting the lower took %v", d)
	}
	// A detached device goes dormant (ip shows NO-CARRIER); the state
	// changes through linkwatch, asynchronously, within about a second.
	var l Link
	WaitFor(t, 5*time.Second, "insane0 to be dormant (NO-CARRIER)", func() bool {
		l = GetLink(t, tp.Borea, "insane0")
		return l.HasFlag("NO-CARRIER") && l.Operstate == "DORMANT"
	})
	if l.Link != "" {
		t.Errorf("insane0 still names lower %q", l.Link)
	}
	if out := RunIn(t, tp.Borea, "ip", "link", "show", "insane0"); strings.Contains(out, "insane0@") {
		t.Errorf("ip link show still prints a lower:\n%s", out)
	}
	// Nothing can arrive (morgana's end went with the pair); every
	// datagram still reaches insane0 and is counted as dropped for having
	// no lower.
	before := ethtoolStats(t, tp.Borea, "insane0")
	if _, err := vmnet.Send(tp.Borea, tp.MorganaIP+":9", vmnet.SendOptions{Count: 5}); err != nil {
		t.Fatal(err)
	}
	after := ethtoolStats(t, tp.Borea, "insane0")
	if d := after["relayed_packets"] - before["relayed_packets"]; d != 0 {
		t.Errorf("a detached insane0 relayed %d packets", d)
	}
	if d := after["drop_no_lower"] - before["drop_no_lower"]; d != 5 {
		t.Errorf("a detached insane0 counted %d of 5 datagrams as dropped for no lower", d)
	}
	RunIn(t, tp.Borea, "timeout", "30", "ip", "link", "del", "insane0")
}
