//go:build vmtest

package guest

// Torture: the lower device is deleted and re-created over and over while
// traffic flows through insane0, and re-attached over generic netlink each
// time.

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
)

// ttRunBounded runs a command and fails the test if it fails or takes longer
// than bound: a hang detector, far above what any run needs.
func ttRunBounded(t *testing.T, bound time.Duration, args ...string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	d := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("%v did not finish within %v", args, bound)
	}
	if err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
	return d
}

func TestTortureLowerRemoval(t *testing.T) {
	CheckKmsg(t)
	rounds := ttSize(10, 100)
	tp, c := kTopo(t, nil)
	fam := ttFamily(t, tp.Borea)
	n, err := ttNlOpen(tp.Borea, 16) // NETLINK_GENERIC
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	sink := ttListen(t, tp.Morgana, "0.0.0.0:0", nil)
	dst := tp.MorganaIP + ":" + u64s(uint64(sink.Port()))
	snd := ttSend(t, tp.Borea, []string{dst}, 1, -1, time.Millisecond)

	var prev [uapi.StatsAMax + 1]uint64
	var burst uint64 // datagrams sent by the last burst, not by snd
	check := func(when string, wantAttached bool) *ttDev {
		t.Helper()
		// The senders count a datagram before sending it, so the
		// count read after the device's counters bounds them.
		d, err := ttGet(n, fam, "insane0")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		attempted := uint64(snd.attempted.Load()) + burst
		if sum := d.ttSum(); sum > attempted {
			t.Fatalf("%s: relayed + dropped = %d, but only %d datagrams were sent", when, sum, attempted)
		}
		for typ := range d.Stats {
			if d.Stats[typ] < prev[typ] {
				t.Fatalf("%s: counter %d went back from %d to %d", when, typ, prev[typ], d.Stats[typ])
			}
		}
		prev = d.Stats
		if attached := d.LowerName != ""; attached != wantAttached {
			t.Fatalf("%s: attached %v (lower %q), want %v", when, attached, d.LowerName, wantAttached)
		}
		return d
	}

	var maxDel time.Duration
	start := time.Now()
	for i := 0; i < rounds; i++ {
		// Traffic must be flowing before the lower goes.
		before := sink.Count()
		WaitFor(t, 30*time.Second, "traffic through insane0", func() bool { return sink.Count() > before })

		d := ttRunBounded(t, 60*time.Second, "ip", "-n", tp.Borea, "link", "del", tp.BoreaDev)
		if d > maxDel {
			maxDel = d
		}
		check("after deleting the lower", false)

		ttRunBounded(t, 60*time.Second, "bash", "-c", `set -e
ip -n borea link add veth0 type veth peer name veth1 netns morgana
ip -n borea addr add 192.0.2.1/24 dev veth0
ip -n morgana addr add 192.0.2.2/24 dev veth1
ip -n borea link set veth0 up
ip -n morgana link set veth1 up`)
		if err := c.ConfigureDevice("insane0", genl.Config{Lower: tp.BoreaDev}); err != nil {
			t.Fatalf("round %d: re-attaching: %v", i, err)
		}
		check("after re-attaching", true)
		at := sink.Count()
		WaitFor(t, 30*time.Second, "traffic to resume after re-attaching", func() bool { return sink.Count() > at })
	}
	snd.Stop()
	sink.Quiet()
	end := check("at the end", true)
	attempted, refused := snd.attempted.Load(), snd.refused.Load()
	if got := uint64(sink.Count()); got > end.Stats[uapi.StatsARelayedPackets] {
		t.Errorf("morgana received %d datagrams, insane0 relayed only %d", got, end.Stats[uapi.StatsARelayedPackets])
	}
	// Sends race with the deletions (a send refused by a lower that is
	// going away is never counted), so the counters above are bounded,
	// not exact. With the lower steady they are exact again.
	const last = 1000
	burst = last
	sent, got := tp.UDP(t, vmnet.SendOptions{Count: last})
	d := check("after a last burst", true)
	if sent.Errors != 0 || len(got.Seqs) != last || d.Stats[uapi.StatsARelayedPackets]-end.Stats[uapi.StatsARelayedPackets] != last || d.ttSum()-end.ttSum() != last {
		t.Errorf("a last burst of %d: %d refused, %d arrived; before %s; after %s", last, sent.Errors, len(got.Seqs), end.ttCounters(), d.ttCounters())
	}
	t.Logf("%d lower removals and re-attaches in %v (slowest deletion %v); traffic resumed after each", rounds, time.Since(start).Round(time.Millisecond), maxDel.Round(time.Millisecond))
	t.Logf("under churn: sent %d (%d refused), received %d; %s", attempted, refused, sink.Count(), end.ttCounters())
	Figure(t, "lower removals", uint64(rounds))
	Figure(t, "re-attaches", uint64(rounds))
	Figure(t, "datagrams sent", uint64(attempted)+last)
}
