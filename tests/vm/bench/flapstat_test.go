package main

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestNominalOffset(t *testing.T) {
	const on, off = 20, 30
	for n, want := range map[uint64]int64{0: 0, 1: 20, 2: 50, 3: 70, 4: 100, 9: 220} {
		if got := nominalOffset(n, on, off); got != want {
			t.Errorf("nominalOffset(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestLatencyStats(t *testing.T) {
	if s := latencyStats(nil); s != (latStat{}) {
		t.Errorf("empty: %+v", s)
	}
	// 100 values 100, 99, ..., 1: nearest rank on the sorted values,
	// index round(q (n - 1)): median index 50 (51), p99 index 98 (99).
	var v []int64
	for i := 100; i >= 1; i-- {
		v = append(v, int64(i))
	}
	want := latStat{N: 100, Median: 51, P99: 99, Max: 100}
	if s := latencyStats(v); s != want {
		t.Errorf("1..100: %+v, want %+v", s, want)
	}
	if v[0] != 100 {
		t.Error("latencyStats sorted its argument")
	}
}

// simKernel builds what the flap phase would collect from a kernel that
// keeps the contract: the timer for each edge runs late[n] after it (or
// never, for the edges in skip: a late timer passes over them and acts at
// the next one), and each carrier change is reported by one RTM_NEWLINK
// read linkLate after the edge. The policy is replaced at stop.
type simKernel struct {
	on, off, epoch, stop int64
	late                 func(n uint64) int64
	skip                 map[uint64]bool
	linkLate             int64
}

func (k simKernel) run() flapRun {
	r := flapRun{On: k.on, Off: k.off, EpochBefore: k.epoch - 1000, EpochAfter: k.epoch + 1000,
		StopBefore: k.stop, RealtimeOffset: 1_700_000_000e9}
	up := true
	var ups, downs int64
	for n := uint64(1); ; n++ {
		tm := k.epoch + nominalOffset(n, k.on, k.off)
		if tm >= k.stop {
			break
		}
		if k.skip[n] {
			continue
		}
		fired := tm + k.late(n)
		st := n%2 == 0
		c := st
		r.Edges = append(r.Edges, edgeObs{Seq: n, Up: st, Step: btoi(!st), Drop: !st, Tx: true, Carrier: &c,
			Time: tm, Fired: fired, Realtime: tm + r.RealtimeOffset, Read: fired + 500})
		if st != up {
			up = st
			if st {
				ups++
			} else {
				downs++
			}
			r.Links = append(r.Links, k.msg(st, ups, downs, tm+k.linkLate))
		}
	}
	if !up {
		ups++
		r.Links = append(r.Links, k.msg(true, ups, downs, k.stop+k.linkLate))
	}
	r.KernelUps, r.KernelDowns = ups, downs
	return r
}

// msg is the RTM_NEWLINK that Linux 6.1's link watch sends for an attached
// device (LOWERLAYERDOWN without carrier: see analyzeFlap).
func (k simKernel) msg(carrier bool, ups, downs, read int64) linkObs {
	op := uint8(rtnetlink.OperStateLowerLayerDown)
	if carrier {
		op = uint8(rtnetlink.OperStateUp)
	}
	return linkObs{HasCarrier: true, Carrier: carrier, OperState: op, Ups: ups, Downs: downs, Read: read}
}

const ms = int64(1e6)

func cleanSim() simKernel {
	return simKernel{on: 20 * ms, off: 20 * ms, epoch: 5000 * ms, stop: 5000*ms + 5010*ms,
		late: func(n uint64) int64 { return 3000 + int64(n%10)*100 }, linkLate: 40000}
}

func TestAnalyzeFlapClean(t *testing.T) {
	k := cleanSim()
	res := analyzeFlap(k.run())
	if errs := res.errors(); len(errs) > 0 {
		t.Fatalf("errors on a clean run: %q", errs)
	}
	// 5010 ms of 20 ms windows: edges at 20, 40, ..., 5000 ms.
	if res.Due != 250 || res.Events != 250 || res.Skipped != 0 || res.Unreached != 0 {
		t.Errorf("due %d events %d skipped %d unreached %d, want 250 250 0 0", res.Due, res.Events, res.Skipped, res.Unreached)
	}
	if !res.EpochInBracket || res.EpochOffset != 1000 || res.EpochWidth != 2000 {
		t.Errorf("epoch: in %v offset %d width %d", res.EpochInBracket, res.EpochOffset, res.EpochWidth)
	}
	// Edge 250 is UP: the last state is up, no restore.
	if res.Transitions != 250 || res.Losses != 125 || res.Gains != 125 || res.Restore {
		t.Errorf("transitions %d (%d/%d), restore %v", res.Transitions, res.Losses, res.Gains, res.Restore)
	}
	if res.Matched != 250 || res.Missing != 0 || res.Repeats != 0 || res.Extra != 0 || res.OperLag != 0 {
		t.Errorf("matched %d missing %d repeats %d extra %d operlag %d", res.Matched, res.Missing, res.Repeats, res.Extra, res.OperLag)
	}
	// Lateness n%10 * 100 + 3000 over 25 of each digit.
	if res.Timer.N != 250 || res.Timer.Median != 3500 || res.Timer.P99 != 3900 || res.Timer.Max != 3900 {
		t.Errorf("timer %+v", res.Timer)
	}
	if res.Event.Median != 4000 || res.Event.Max != 4400 {
		t.Errorf("event %+v", res.Event)
	}
	if res.Link != (latStat{N: 250, Median: 40000, P99: 40000, Max: 40000}) {
		t.Errorf("link %+v", res.Link)
	}
	// Events read fired + 500, links edge + 40000.
	if res.LinkFirst != 0 || res.ReadGapMedian != 4000-40000 {
		t.Errorf("link first %d, read gap median %d", res.LinkFirst, res.ReadGapMedian)
	}
	if res.RealtimeSkewMax != 0 {
		t.Errorf("realtime skew %d", res.RealtimeSkewMax)
	}
	if len(res.OperStates) != 2 || res.OperStates["off LOWERLAYERDOWN"] != 125 || res.OperStates["on UP"] != 125 {
		t.Errorf("operational states %v", res.OperStates)
	}
}

func TestAnalyzeFlapRestore(t *testing.T) {
	k := cleanSim()
	k.stop = k.epoch + 4990*ms // the last edge, 249 at 4980 ms, is DOWN
	res := analyzeFlap(k.run())
	if errs := res.errors(); len(errs) > 0 {
		t.Fatalf("errors: %q", errs)
	}
	if !res.Restore || !res.RestoreSeen || res.Matched != 249 || res.KernelUps != 125 || res.KernelDowns != 125 {
		t.Errorf("restore %v seen %v matched %d counts %d/%d", res.Restore, res.RestoreSeen, res.Matched, res.KernelUps, res.KernelDowns)
	}
	if res.Link.N != 249 {
		t.Errorf("the restore counted as an edge's change: %+v", res.Link)
	}
	// Without its message, the restore is an ERROR.
	r := k.run()
	r.Links = r.Links[:len(r.Links)-1]
	if !hasError(analyzeFlap(r).errors(), "carrier given back") {
		t.Error("a missing restore message is not an error")
	}
}

func hasError(errs []string, sub string) bool {
	for _, e := range errs {
		if strings.Contains(e, sub) {
			return true
		}
	}
	return false
}

// A late timer that passes over edges acts once, for the latest: skipping
// 5 and 6 leaves 4 (UP) -> 7 (DOWN), one loss; skipping 11 alone leaves
// 10 (UP) -> 12 (UP), no change.
func TestAnalyzeFlapSkipped(t *testing.T) {
	k := cleanSim()
	k.skip = map[uint64]bool{5: true, 6: true, 11: true}
	k.late = func(n uint64) int64 {
		switch n {
		case 7:
			return 50 * ms // ran at 7's time + 10 ms: 5 and 6 were due long before
		case 12:
			return 25 * ms
		}
		return 3000
	}
	r := k.run()
	res := analyzeFlap(r)
	if errs := res.errors(); len(errs) > 0 {
		t.Fatalf("errors: %q", errs)
	}
	if res.Skipped != 3 || res.Events != 247 || res.Transitions != 246 || res.Matched != 246 {
		t.Errorf("skipped %d events %d transitions %d matched %d", res.Skipped, res.Events, res.Transitions, res.Matched)
	}
	if res.Timer.Max != 50*ms {
		t.Errorf("timer max %d", res.Timer.Max)
	}
}

func TestAnalyzeFlapFaults(t *testing.T) {
	for _, c := range []struct {
		name  string
		spoil func(r *flapRun)
		want  string
	}{
		{"no events", func(r *flapRun) { r.Edges = nil }, "no edge event"},
		{"coalesced link watch", func(r *flapRun) {
			// The off of a loss-gain pair reported only by the gain's message.
			r.Links = append(r.Links[:10], r.Links[11:]...)
		}, "carrier changes without an RTM_NEWLINK"},
		{"epoch outside", func(r *flapRun) { r.EpochAfter = r.EpochBefore + 10 }, "outside it"},
		{"off the grid", func(r *flapRun) { r.Edges[7].Time++ }, "not the epoch plus"},
		{"fired early", func(r *flapRun) { r.Edges[3].Fired = r.Edges[3].Time - 1 }, "FIRED_NS comes before"},
		{"duplicate event", func(r *flapRun) { r.Edges = append(r.Edges, r.Edges[4]) }, "SEQ already seen"},
		{"wrong step", func(r *flapRun) { r.Edges[2].Step = 0 }, "state, step, mode or direction"},
		{"rx direction", func(r *flapRun) { r.Edges[2].Tx = false }, "state, step, mode or direction"},
		{"carrier attribute inverted", func(r *flapRun) { v := true; r.Edges[0].Carrier = &v }, "CARRIER"},
		{"carrier attribute absent", func(r *flapRun) { r.Edges[1].Carrier = nil }, "CARRIER"},
		{"message beyond the changes", func(r *flapRun) {
			l := r.Links[len(r.Links)-1]
			l.Downs++
			l.Carrier, l.OperState = false, uint8(rtnetlink.OperStateDown)
			r.Links = append(r.Links, l)
		}, "more carrier changes than"},
		{"carrier disagrees with counters", func(r *flapRun) { r.Links[4].Carrier = !r.Links[4].Carrier }, "disagrees with their carrier counters"},
		{"no carrier attribute", func(r *flapRun) { r.Links[4].HasCarrier = false }, "disagrees with their carrier counters"},
		{"kernel counts", func(r *flapRun) { r.KernelDowns++ }, "the device counted"},
		{"timer stopped", func(r *flapRun) { r.Edges = r.Edges[:100]; r.KernelUps, r.KernelDowns = 50, 50 }, "no edge event for more than"},
		{"events subscription", func(r *flapRun) { r.EventsErr = "no buffer space" }, "edge events' subscription ended"},
		{"link subscription", func(r *flapRun) { r.LinkErr = "no buffer space" }, "RTNLGRP_LINK subscription ended"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := cleanSim().run()
			c.spoil(&r)
			if errs := analyzeFlap(r).errors(); !hasError(errs, c.want) {
				t.Errorf("errors %q, want one with %q", errs, c.want)
			}
		})
	}
}

// Messages that report no new change (another sender, or the link watch
// again) are counted, not errors; an operational state behind the carrier
// (a message built before the link watch ran) is counted too.
func TestAnalyzeFlapRepeats(t *testing.T) {
	r := cleanSim().run()
	first := linkObs{HasCarrier: true, Carrier: true, OperState: uint8(rtnetlink.OperStateUp), Read: r.EpochAfter}
	lag := r.Links[6]
	lag.OperState = uint8(rtnetlink.OperStateUp)          // carrier off, still UP
	r.Links[8].OperState = uint8(rtnetlink.OperStateDown) // a detached device's: not a lag
	r.Links = append([]linkObs{first}, append(r.Links, r.Links[3], lag)...)
	res := analyzeFlap(r)
	if errs := res.errors(); len(errs) > 0 {
		t.Fatalf("errors: %q", errs)
	}
	if res.Repeats != 3 || res.OperLag != 1 || res.Matched != 250 || res.Messages != 253 {
		t.Errorf("repeats %d operlag %d matched %d messages %d", res.Repeats, res.OperLag, res.Matched, res.Messages)
	}
	if res.OperStates["off UP"] != 1 || res.OperStates["off DOWN"] != 1 || res.OperStates["on UP"] != 127 {
		t.Errorf("operational states %v", res.OperStates)
	}
}

func TestParseLinkMsg(t *testing.T) {
	hdr := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(hdr[4:8], 42)
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, "flap0")
	ae.Uint8(unix.IFLA_OPERSTATE, uint8(rtnetlink.OperStateDown))
	ae.Uint8(unix.IFLA_CARRIER, 0)
	ae.Uint32(unix.IFLA_CARRIER_UP_COUNT, 7)
	ae.Uint32(unix.IFLA_CARRIER_DOWN_COUNT, 8)
	attrs, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	idx, l, err := parseLinkMsg(append(hdr, attrs...))
	if err != nil {
		t.Fatal(err)
	}
	want := linkObs{HasCarrier: true, Carrier: false, OperState: uint8(rtnetlink.OperStateDown), Ups: 7, Downs: 8}
	if idx != 42 || l != want {
		t.Errorf("got %d %+v, want 42 %+v", idx, l, want)
	}
	if _, _, err := parseLinkMsg(hdr[:8]); err == nil {
		t.Error("a short message decoded")
	}
}
