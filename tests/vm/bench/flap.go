package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Carrier flaps and edge events (issue 17): an insane device of its own,
// flap0 on the dummy flaplow0 (which always has carrier), up and carrying
// no traffic, gets the policy "time ON OFF carrier events" for a while.
// Two readers take, each on its own socket, the device's edge events from
// the genl "events" group and its RTM_NEWLINK messages from RTNLGRP_LINK,
// and stamp each with CLOCK_MONOTONIC (TIME_NS's clock) as they read it.
// Each edge is then measured against its nominal time TIME_NS: when the
// kernel's timer ran (FIRED_NS), when user space read the edge event, and
// when it read the RTM_NEWLINK that reports the carrier change, matched to
// its edge by the carrier counters it carries (analyzeFlap, flapstat.go).

const (
	flapDev   = "flap0"
	flapLower = "flaplow0"
)

// carrierCounts reads the device's carrier_up_count and
// carrier_down_count.
func carrierCounts(dev string) (ups, downs int64, err error) {
	var v [2]int64
	for i, f := range []string{"carrier_up_count", "carrier_down_count"} {
		b, err := os.ReadFile("/sys/class/net/" + dev + "/" + f)
		if err != nil {
			return 0, 0, err
		}
		if v[i], err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil {
			return 0, 0, err
		}
	}
	return v[0], v[1], nil
}

func delFlapDevs() {
	for _, d := range []string{flapDev, flapLower} {
		if _, err := os.Stat("/sys/class/net/" + d); err == nil {
			_, _ = run("ip", "link", "del", d)
		}
	}
}

func carrierFlaps(c *genl.Client, on, off, dur time.Duration) (flapResult, error) {
	delFlapDevs()
	if err := runAll(
		[]string{"ip", "link", "add", flapLower, "type", "dummy"},
		[]string{"ip", "link", "set", flapLower, "up"},
		[]string{"ip", "link", "add", flapDev, "link", flapLower, "type", "insane"},
		[]string{"ip", "link", "set", flapDev, "up"},
	); err != nil {
		return flapResult{}, err
	}
	defer delFlapDevs()
	ifi, err := net.InterfaceByName(flapDev)
	if err != nil {
		return flapResult{}, err
	}
	// A first request resolves the family and warms the path.
	if err := c.SetPolicy(flapDev, genl.Pass()); err != nil {
		return flapResult{}, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := c.Subscribe(ctx)
	if err != nil {
		return flapResult{}, err
	}
	defer sub.Close()
	rt, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Groups: unix.RTMGRP_LINK})
	if err != nil {
		return flapResult{}, err
	}
	defer rt.Close()
	// Room for every message of the run: a reader that falls behind loses
	// messages (ENOBUFS), which would end the phase with an ERROR.
	if err := rt.SetReadBuffer(8 << 20); err != nil {
		return flapResult{}, err
	}

	var r flapRun
	r.On, r.Off = int64(on), int64(off)
	// Each reader keeps its own observations; they are handed over after
	// wg.Wait.
	var (
		edges          []edgeObs
		links          []linkObs
		evErr, linkErr string
		wg             sync.WaitGroup
		stopping       atomic.Bool
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ev := range sub.Events() {
			t := mono()
			if ev.Type != genl.EventEdge || ev.Edge == nil || ev.Device.Index != ifi.Index {
				continue
			}
			e := ev.Edge
			edges = append(edges, edgeObs{
				Seq: e.Seq, Up: e.State == genl.EdgeUp, Step: e.Step, Drop: e.Mode == genl.ModeDrop,
				Tx: e.Direction == genl.DirectionTx, Carrier: e.Carrier,
				Time: int64(e.Time), Fired: int64(e.Fired), Realtime: e.Realtime.UnixNano(), Read: t,
			})
		}
		if err := sub.Err(); err != nil {
			evErr = err.Error()
		}
	}()
	go func() {
		defer wg.Done()
		for {
			msgs, err := rt.Receive()
			t := mono()
			if err != nil {
				if !stopping.Load() {
					linkErr = err.Error()
				}
				return
			}
			for _, m := range msgs {
				if m.Header.Type != unix.RTM_NEWLINK {
					continue
				}
				idx, l, err := parseLinkMsg(m.Data)
				if err != nil {
					linkErr = fmt.Sprintf("decoding RTM_NEWLINK: %v", err)
					return
				}
				if int(idx) == ifi.Index {
					l.Read = t
					links = append(links, l)
				}
			}
		}
	}()
	finish := func() {
		cancel()
		stopping.Store(true)
		_ = rt.Close()
		wg.Wait()
		r.Edges, r.Links, r.EventsErr, r.LinkErr = edges, links, evErr, linkErr
	}

	ups0, downs0, err := carrierCounts(flapDev)
	if err != nil {
		finish()
		return flapResult{}, err
	}
	p := genl.Time(on, off)
	p.Carrier, p.Events = true, true
	r.RealtimeOffset = time.Now().UnixNano() - mono()
	r.EpochBefore = mono()
	err = c.SetPolicy(flapDev, p)
	r.EpochAfter = mono()
	if err != nil {
		finish()
		return flapResult{}, err
	}
	time.Sleep(dur)
	r.StopBefore = mono()
	err = c.SetPolicy(flapDev, genl.Pass())
	// Let the last link watch run and the readers take what is queued.
	time.Sleep(300 * time.Millisecond)
	finish()
	if err != nil {
		return flapResult{}, err
	}
	ups1, downs1, err := carrierCounts(flapDev)
	if err != nil {
		return flapResult{}, err
	}
	r.KernelUps, r.KernelDowns = ups1-ups0, downs1-downs0
	for i := range r.Links {
		r.Links[i].Ups -= ups0
		r.Links[i].Downs -= downs0
	}
	res := analyzeFlap(r)
	res.DurNS = int64(dur)
	return res, nil
}

func printFlap(f flapResult, icount bool) {
	clock := "guest time of multi-threaded TCG, wall-clock-like: 1 µs = 1 µs of the host's time, as the guest sees it"
	if icount {
		clock = "guest time under icount: 1 µs = 1000 guest instructions executed since the nominal edge"
	}
	fmt.Printf("\n### Carrier flaps and edge events (issue 17): %s on %s (insane on a dummy), policy time %s %s carrier events for %s; lateness after the nominal edge TIME_NS, in %s\n\n",
		flapDev, flapLower, time.Duration(f.OnNS), time.Duration(f.OffNS), time.Duration(f.DurNS), clock)
	fmt.Println("| lateness after TIME_NS | n | median | p99 | max |")
	fmt.Println("|---|---|---|---|---|")
	for _, row := range []struct {
		what string
		s    latStat
	}{
		{"the kernel's timer ran (FIRED_NS)", f.Timer},
		{"user space read the edge event (genl \"events\")", f.Event},
		{"user space read the RTM_NEWLINK of the carrier change (RTNLGRP_LINK)", f.Link},
	} {
		if row.s.N == 0 {
			fmt.Printf("| %s | 0 | - | - | - |\n", row.what)
			continue
		}
		fmt.Printf("| %s | %d | %s | %s | %s |\n", row.what, row.s.N, us(row.s.Median), us(row.s.P99), us(row.s.Max))
	}
	fmt.Println()
	inb := "inside"
	if !f.EpochInBracket {
		inb = "OUTSIDE"
	}
	fmt.Printf("- edges due before the policy was replaced: %d; edge events received: %d (duplicates %d), passed over by a late timer (gaps in SEQ): %d, not reached when the policy was replaced: %d\n",
		f.Due, f.Events, f.Duplicates, f.Skipped, f.Unreached)
	fmt.Printf("- the edges' epoch (TIME_NS minus the windows before the edge) lies %s the request that set the policy (%s after its start, %s wide); events off that grid: %d; FIRED_NS before TIME_NS: %d; wrong state, step, mode or direction: %d; wrong CARRIER: %d\n",
		inb, us(f.EpochOffset), us(f.EpochWidth), f.OffGrid, f.FiredEarly, f.Wrong, f.CarrierWrong)
	restore := ""
	if f.Restore {
		restore = fmt.Sprintf(", plus the carrier given back when the policy was replaced (its RTM_NEWLINK seen: %t)", f.RestoreSeen)
	}
	fmt.Printf("- carrier changes the edges imply: %d (%d losses, %d gains)%s; the device's carrier_down_count and carrier_up_count grew by %d and %d\n",
		f.Transitions, f.Losses, f.Gains, restore, f.KernelDowns, f.KernelUps)
	fmt.Printf("- RTM_NEWLINK messages of the device: %d; matched to their change (by their carrier counters): %d; changes without one: %d; repeating a reported state: %d; beyond the changes: %d; carrier disagreeing with the counters: %d; operational state not yet the carrier's: %d\n",
		f.Messages, f.Matched, f.Missing, f.Repeats, f.Extra, f.Inconsistent, f.OperLag)
	fmt.Printf("- the edge event read after the RTM_NEWLINK of the same edge: %d of %d; event read - RTM_NEWLINK read: median %s\n",
		f.LinkFirst, f.Matched, us(f.ReadGapMedian))
	var states []string
	for k, n := range f.OperStates {
		states = append(states, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(states)
	fmt.Printf("- RTM_NEWLINK messages by carrier and operational state: %s\n", strings.Join(states, ", "))
	fmt.Printf("- REALTIME_NS - TIME_NS against user space's CLOCK_REALTIME - CLOCK_MONOTONIC: at most %s apart\n", us(f.RealtimeSkewMax))
}
