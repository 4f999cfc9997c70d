//go:build vmtest

package guest

// The module's drop policies, proven with real UDP traffic in the
// article's topology: percent loss within binomial bounds, seeded replay
// matching the function documented in the uapi header, time windows, and
// counters that add up.

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
)

// kTopo builds the article's topology with insane0 stacked on borea's veth
// and morgana routed through it, and returns a client in borea.
func kTopo(t *testing.T, p *genl.Policy) (*Topo, *genl.Client) {
	t.Helper()
	// Bursts of thousands of datagrams must fit the receiver's buffer.
	Sysctl(t, "", "net.core.rmem_max", "16777216")
	tp := NewTopo(t)
	c := kDial(t, tp.Borea)
	if err := c.AddLink("insane0", tp.BoreaDev, p); err != nil {
		t.Fatalf("AddLink: %v", err)
	}
	tp.RouteViaInsane(t, "insane0")
	return tp, c
}

func kDial(t *testing.T, ns string) *genl.Client {
	t.Helper()
	o := &genl.Options{}
	if ns != "" {
		o.NetNSPath = vmnet.NetnsDir + "/" + ns
	}
	c, err := genl.Dial(o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func kDevice(t *testing.T, c *genl.Client, name string) *genl.Device {
	t.Helper()
	d, err := c.Device(name)
	if err != nil {
		t.Fatalf("Device(%s): %v", name, err)
	}
	return d
}

// kWithin fails unless got is within k standard deviations of a binomial
// count of n trials with success probability p.
func kWithin(t *testing.T, what string, got, n int, p, k float64) {
	t.Helper()
	mean := float64(n) * p
	sigma := math.Sqrt(float64(n) * p * (1 - p))
	if math.Abs(float64(got)-mean) > k*sigma {
		t.Errorf("%s: %d of %d, expected %.0f ± %.0f (%.0f sigma)", what, got, n, mean, k*sigma, k)
	} else {
		t.Logf("%s: %d of %d, expected %.0f ± %.0f (%.0f sigma)", what, got, n, mean, k*sigma, k)
	}
}

func TestKernelPercentBinomial(t *testing.T) {
	const n = 10000
	p := genl.Percent(80, nil)
	tp, c := kTopo(t, &p)

	sent, got := tp.UDP(t, vmnet.SendOptions{Count: n})
	if sent.Errors != 0 {
		t.Fatalf("%d sends refused, first: %v", sent.Errors, sent.FirstError)
	}
	d := kDevice(t, c, "insane0")
	s := d.Stats
	kWithin(t, "relayed at percent 80", int(s.RelayedPackets), n, 0.8, 5)
	if s.RelayedPackets+s.DropPolicy != n || s.Dropped() != s.DropPolicy {
		t.Errorf("counters do not add up: %+v for %d sent", s, n)
	}
	if uint64(len(got.Seqs)) != s.RelayedPackets {
		t.Errorf("morgana received %d datagrams, insane relayed %d", len(got.Seqs), s.RelayedPackets)
	}
}

func TestKernelPercentFraction(t *testing.T) {
	// 0.5 % is below one percent: the resolution is finer than a percent.
	const n = 20000
	p := genl.Percent(0.5, nil)
	tp, c := kTopo(t, &p)
	tp.UDP(t, vmnet.SendOptions{Count: n, Size: vmnet.MinSize})
	s := kDevice(t, c, "insane0").Stats
	kWithin(t, "relayed at percent 0.5", int(s.RelayedPackets), n, 0.005, 5)
	if s.RelayedPackets+s.DropPolicy != n {
		t.Errorf("counters do not add up: %+v for %d sent", s, n)
	}
}

func TestKernelSeedReplay(t *testing.T) {
	const n = 3000
	seed := uint64(0x5eed)
	p := genl.Percent(37.5, &seed)
	tp, c := kTopo(t, &p)

	var runs [2][]uint64
	for i := range runs {
		if i > 0 {
			// Setting the same seed again restarts the sequence.
			if err := c.SetPolicy("insane0", p); err != nil {
				t.Fatal(err)
			}
		}
		sent, got := tp.UDP(t, vmnet.SendOptions{Count: n})
		if sent.Errors != 0 {
			t.Fatalf("%d sends refused, first: %v", sent.Errors, sent.FirstError)
		}
		runs[i] = got.Seqs
	}

	var want []uint64
	for k := uint64(0); k < n; k++ {
		if genl.Relays(seed, k, p.PercentUnits()) {
			want = append(want, k)
		}
	}
	for i, r := range runs {
		if !equalU64(r, want) {
			t.Errorf("run %d: %d datagrams arrived, the documented function predicts %d; first difference at %d",
				i, len(r), len(want), firstDiff(r, want))
		}
	}
	t.Logf("both runs relayed exactly the %d predicted datagrams of %d", len(want), n)
}

func TestKernelTimeWindows(t *testing.T) {
	const on, off = 400 * time.Millisecond, 600 * time.Millisecond
	const period = on + off
	tp, c := kTopo(t, nil)

	before := time.Now()
	if err := c.SetPolicy("insane0", genl.Time(on, off)); err != nil {
		t.Fatal(err)
	}
	after := time.Now()

	const n = 600
	sent, got := tp.UDP(t, vmnet.SendOptions{Count: n, Interval: 5 * time.Millisecond})
	if sent.Errors != 0 {
		t.Fatalf("%d sends refused, first: %v", sent.Errors, sent.FirstError)
	}

	// The window opened between before and after. A datagram's send time
	// precedes its transmission by the syscall's latency, so allow a
	// margin at each edge; deep inside an OFF window nothing may pass.
	deepOff, relayed, edgeMisses := timeWindowVerdicts(sent, got, before, after, on, period)
	if deepOff > 0 {
		t.Errorf("%d datagrams were relayed deep inside an OFF window", deepOff)
	}
	// A dropped datagram inside an ON window means the kernel took longer
	// than the margin to transmit it; allow one percent of such delays.
	if edgeMisses > n/100 {
		t.Errorf("%d datagrams sent well inside an ON window were dropped", edgeMisses)
	}
	if relayed == 0 || relayed == n {
		t.Errorf("time mode relayed %d of %d datagrams", relayed, n)
	}
	s := kDevice(t, c, "insane0").Stats
	if s.RelayedPackets != uint64(relayed) || s.RelayedPackets+s.DropPolicy != n {
		t.Errorf("counters %+v disagree with %d relayed of %d sent", s, relayed, n)
	}
	t.Logf("relayed %d of %d over %v; %d late transmissions at ON edges", relayed, n, sent.At[n-1].Sub(sent.At[0]), edgeMisses)
}

// timeWindowVerdicts judges datagrams sent through a time policy of ON
// window on and period period that was set between before and after: how
// many arrived, how many arrived deep inside an OFF window (never allowed)
// and how many were lost well inside an ON window. "Deep" and "well" keep a
// margin from each edge of the epoch's uncertainty plus 100 ms, since a
// datagram's send time precedes its decision by the syscall's latency.
func timeWindowVerdicts(sent vmnet.Sent, got vmnet.Received, before, after time.Time, on, period time.Duration) (deepOff, arrived, edgeMisses int) {
	margin := after.Sub(before) + 100*time.Millisecond
	for seq, at := range sent.At {
		phase := at.Sub(before) % period
		ok := got.Has(uint64(seq))
		if ok {
			arrived++
		}
		switch {
		case ok && phase >= on+margin && phase <= period-margin:
			deepOff++
		case !ok && phase >= margin && phase <= on-margin:
			edgeMisses++
		}
	}
	return deepOff, arrived, edgeMisses
}

func TestKernelCountersAddUp(t *testing.T) {
	const n = 4000
	p := genl.Percent(50, nil)
	tp, c := kTopo(t, &p)
	tp.UDP(t, vmnet.SendOptions{Count: n})

	d := kDevice(t, c, "insane0")
	s := d.Stats
	if s.RelayedPackets+s.Dropped() != n {
		t.Errorf("relayed %d + dropped %d != sent %d", s.RelayedPackets, s.Dropped(), n)
	}
	if s.Dropped() != s.DropPolicy {
		t.Errorf("unexpected drop causes: %+v", s)
	}

	// ip -s link: TX packets are the relayed ones, TX dropped every drop.
	l := GetLink(t, tp.Borea, "insane0")
	if l.Stats64.TX.Packets != s.RelayedPackets || l.Stats64.TX.Dropped != s.Dropped() {
		t.Errorf("ip -s link says tx %d dropped %d, genl says relayed %d dropped %d",
			l.Stats64.TX.Packets, l.Stats64.TX.Dropped, s.RelayedPackets, s.Dropped())
	}

	// ethtool -S reports the same per-cause counters.
	out := RunIn(t, tp.Borea, "ethtool", "-S", "insane0")
	for name, v := range map[string]uint64{
		"relayed_packets": s.RelayedPackets, "relayed_bytes": s.RelayedBytes,
		"drop_policy": s.DropPolicy, "drop_not_ip": 0,
	} {
		if !strings.Contains(out, name+": "+u64s(v)) {
			t.Errorf("ethtool -S lacks %s: %d:\n%s", name, v, out)
		}
	}

	// A reset zeroes the genl counters; the interface counters stay.
	if err := c.ConfigureDevice("insane0", genl.Config{ResetStats: true}); err != nil {
		t.Fatal(err)
	}
	if s2 := kDevice(t, c, "insane0").Stats; s2 != (genl.Stats{}) {
		t.Errorf("counters after reset: %+v", s2)
	}
	if l2 := GetLink(t, tp.Borea, "insane0"); l2.Stats64.TX.Packets != l.Stats64.TX.Packets {
		t.Errorf("ip -s link TX packets changed on reset: %d then %d", l.Stats64.TX.Packets, l2.Stats64.TX.Packets)
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func firstDiff(a, b []uint64) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return len(a)
}
