package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The analysis of the flap phase (flap.go), kept apart from the VM so that
// the host unit tests (flapstat_test.go) run it on made-up observations.

// edgeObs is one edge event of the flap device, as user space saw it. All
// times are CLOCK_MONOTONIC nanoseconds, except Realtime.
type edgeObs struct {
	Seq      uint64
	Up       bool // the event's STATE is UP
	Step     int
	Drop     bool // the step's mode is drop
	Tx       bool // the transmit policy's edge
	Carrier  *bool
	Time     int64 // TIME_NS, the nominal edge
	Fired    int64 // FIRED_NS, when the kernel's timer ran
	Realtime int64 // REALTIME_NS
	Read     int64 // when the bench's reader took it
}

// linkObs is one RTM_NEWLINK of the flap device: its carrier, operational
// state and carrier counters (their growth since the policy was set) when
// the kernel built it, and when the bench's reader read it.
type linkObs struct {
	HasCarrier bool
	Carrier    bool
	OperState  uint8
	Ups, Downs int64
	Read       int64
}

// flapRun is what the flap phase collected.
type flapRun struct {
	On, Off int64
	// CLOCK_MONOTONIC readings around the request that set the policy,
	// and right before the request that replaced it.
	EpochBefore, EpochAfter, StopBefore int64
	Edges                               []edgeObs
	Links                               []linkObs
	// CLOCK_REALTIME - CLOCK_MONOTONIC as user space read them.
	RealtimeOffset int64
	// The growth of the device's carrier_up_count and carrier_down_count
	// from before the policy was set to after it was replaced.
	KernelUps, KernelDowns int64
	// Why a subscription ended early ("" if it did not).
	EventsErr, LinkErr string
}

// latStat is a lateness distribution, in ns of guest time.
type latStat struct {
	N      int   `json:"n"`
	Median int64 `json:"median_ns"`
	P99    int64 `json:"p99_ns"`
	Max    int64 `json:"max_ns"`
}

func latencyStats(v []int64) latStat {
	if len(v) == 0 {
		return latStat{}
	}
	return latStat{N: len(v), Median: quantile(v, 0.5), P99: quantile(v, 0.99), Max: quantile(v, 1)}
}

// flapResult is the flap phase's report.
type flapResult struct {
	OnNS, OffNS, DurNS int64
	// EpochWidth is the width of the bracket around the request that set
	// the policy; EpochOffset is where the kernel's epoch (TIME_NS of an
	// edge minus the durations before it) falls in it, from its start.
	EpochWidth, EpochOffset int64
	EpochInBracket          bool
	// Due: edges whose nominal time came before the policy was replaced.
	// Events: edge events received; Skipped: edges a late timer passed
	// over (gaps in SEQ, which the kernel's contract allows); Unreached:
	// due edges after the last event.
	Due, Events, Skipped, Unreached int
	// Events with a wrong number or clock: OffGrid (TIME_NS is not the
	// epoch plus the durations before the edge), Duplicates, FiredEarly
	// (FIRED_NS before TIME_NS), Wrong (state, step, mode or direction
	// not those of the edge's number), CarrierWrong (CARRIER absent or
	// not on exactly at UP edges).
	OffGrid, Duplicates, FiredEarly, Wrong, CarrierWrong int
	// TimerStalled: the edge after the last event was due more than
	// timerStall before the policy was replaced.
	TimerStalled bool
	// Carrier changes that the events imply (each change of state, so
	// that skipped edges count only for the state they leave), Losses of
	// them to carrier off and Gains to on, and Restore, the change back
	// to carrier on when the policy was replaced during a DOWN window.
	Transitions, Losses, Gains int
	Restore                    bool
	// RTM_NEWLINK messages of the device: Matched to their change by the
	// carrier counters they carry, Missing (changes without one), Repeats
	// (messages that report no new change), Extra (counters beyond what
	// the edges imply), Inconsistent (carrier absent or disagreeing with
	// the counters), OperLag (operational state not yet the carrier's, UP
	// with carrier, DOWN or LOWERLAYERDOWN without: a message sent before
	// the link watch ran), RestoreSeen. OperStates counts the messages by
	// carrier and operational state ("off LOWERLAYERDOWN").
	Messages, Matched, Missing, Repeats, Extra, Inconsistent, OperLag int
	RestoreSeen                                                       bool
	OperStates                                                        map[string]int
	// KernelUps and KernelDowns are the growth of the device's carrier
	// counters over the run.
	KernelUps, KernelDowns int64
	// RealtimeSkewMax is the largest |REALTIME_NS - TIME_NS - user
	// space's CLOCK_REALTIME - CLOCK_MONOTONIC|.
	RealtimeSkewMax int64
	// The lateness against TIME_NS of the kernel's timer (FIRED_NS), of
	// the edge event's read and of the matched RTM_NEWLINK's read.
	Timer, Event, Link latStat
	// For each matched change, the edge event's read minus the
	// RTM_NEWLINK's: LinkFirst counts those read after the RTM_NEWLINK,
	// ReadGapMedian is the median difference.
	LinkFirst     int
	ReadGapMedian int64
	EventsErr     string
	LinkErr       string
}

// timerStall is how long past its due time an edge may stay without an
// event before the phase says that the timer stopped. A late timer acts
// for the latest edge as soon as it runs, so only a guest stalled for a
// whole second (which the other figures would show) reaches it.
const timerStall = int64(1e9)

// nominalOffset is edge n's nominal time minus the epoch in time mode: ON
// first, so the odd edges end ON windows (DOWN) and the even ones end OFF
// windows (UP).
func nominalOffset(n uint64, on, off int64) int64 {
	return int64(n/2)*(on+off) + int64(n%2)*on
}

func absInt(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func analyzeFlap(r flapRun) flapResult {
	res := flapResult{
		OnNS: r.On, OffNS: r.Off, EpochWidth: r.EpochAfter - r.EpochBefore,
		Events: len(r.Edges), Messages: len(r.Links),
		KernelUps: r.KernelUps, KernelDowns: r.KernelDowns,
		EventsErr: r.EventsErr, LinkErr: r.LinkErr,
	}
	edges := append([]edgeObs(nil), r.Edges...)
	sort.SliceStable(edges, func(i, j int) bool { return edges[i].Seq < edges[j].Seq })
	var uniq []edgeObs
	for i, e := range edges {
		if i > 0 && e.Seq == edges[i-1].Seq || e.Seq == 0 {
			res.Duplicates++
			continue
		}
		uniq = append(uniq, e)
	}
	if len(uniq) == 0 {
		return res
	}
	epoch := uniq[0].Time - nominalOffset(uniq[0].Seq, r.On, r.Off)
	res.EpochOffset = epoch - r.EpochBefore
	res.EpochInBracket = epoch >= r.EpochBefore && epoch <= r.EpochAfter
	for n := uint64(1); epoch+nominalOffset(n, r.On, r.Off) < r.StopBefore; n++ {
		res.Due++
	}

	var timer, read []int64
	prev := uint64(0)
	up := true // the carrier before the first edge
	var offs, ons []edgeObs
	for _, e := range uniq {
		res.Skipped += int(e.Seq - prev - 1)
		prev = e.Seq
		if e.Time != epoch+nominalOffset(e.Seq, r.On, r.Off) {
			res.OffGrid++
		}
		if e.Fired < e.Time {
			res.FiredEarly++
		}
		wantUp := e.Seq%2 == 0
		if e.Up != wantUp || e.Step != btoi(!wantUp) || e.Drop == wantUp || !e.Tx {
			res.Wrong++
		}
		if e.Carrier == nil || *e.Carrier != e.Up {
			res.CarrierWrong++
		}
		if s := absInt(e.Realtime - e.Time - r.RealtimeOffset); s > res.RealtimeSkewMax {
			res.RealtimeSkewMax = s
		}
		timer = append(timer, e.Fired-e.Time)
		read = append(read, e.Read-e.Time)
		if e.Up != up {
			if e.Up {
				ons = append(ons, e)
			} else {
				offs = append(offs, e)
			}
			up = e.Up
		}
	}
	last := uniq[len(uniq)-1].Seq
	res.Unreached = max(0, res.Due-int(last))
	res.TimerStalled = epoch+nominalOffset(last+1, r.On, r.Off)+timerStall < r.StopBefore
	res.Transitions, res.Losses, res.Gains = len(offs)+len(ons), len(offs), len(ons)
	res.Restore = !up
	res.Timer, res.Event = latencyStats(timer), latencyStats(read)

	// A message reports the carrier when the kernel built it, and the
	// counters of changes so far: carrier off with d losses since the
	// policy was set is the d-th loss, carrier on with u gains the u-th
	// gain. The counters alternate with the carrier (off exactly when
	// one more loss than gains), whatever else sends the message.
	seenOff := make([]bool, len(offs))
	seenOn := make([]bool, len(ons)+1)
	var link, gaps []int64
	for _, l := range r.Links {
		switch {
		case !l.HasCarrier || (l.Carrier && l.Ups != l.Downs) || (!l.Carrier && l.Downs != l.Ups+1):
			res.Inconsistent++
			continue
		}
		if res.OperStates == nil {
			res.OperStates = make(map[string]int)
		}
		res.OperStates[map[bool]string{false: "off ", true: "on "}[l.Carrier]+operName(l.OperState)]++
		// Linux 6.1's link watch (default_operstate) gives a device
		// without carrier LOWERLAYERDOWN whenever its iflink is another
		// device's, as an attached insane device's is, whatever the
		// lower's state; DOWN otherwise.
		down := l.OperState == uint8(rtnetlink.OperStateDown) || l.OperState == uint8(rtnetlink.OperStateLowerLayerDown)
		if l.Carrier && l.OperState != uint8(rtnetlink.OperStateUp) || !l.Carrier && !down {
			res.OperLag++
		}
		var e *edgeObs
		switch {
		case l.Carrier && l.Ups == 0:
			res.Repeats++ // the state before the first edge
			continue
		case l.Carrier && int(l.Ups) == len(ons)+1 && res.Restore:
			if seenOn[len(ons)] {
				res.Repeats++
			}
			seenOn[len(ons)], res.RestoreSeen = true, true
			continue
		case l.Carrier && int(l.Ups) <= len(ons):
			if seenOn[l.Ups-1] {
				res.Repeats++
				continue
			}
			seenOn[l.Ups-1], e = true, &ons[l.Ups-1]
		case !l.Carrier && l.Downs >= 1 && int(l.Downs) <= len(offs):
			if seenOff[l.Downs-1] {
				res.Repeats++
				continue
			}
			seenOff[l.Downs-1], e = true, &offs[l.Downs-1]
		default:
			res.Extra++
			continue
		}
		res.Matched++
		link = append(link, l.Read-e.Time)
		gaps = append(gaps, e.Read-l.Read)
		if e.Read > l.Read {
			res.LinkFirst++
		}
	}
	res.Missing = res.Transitions - res.Matched
	res.Link = latencyStats(link)
	res.ReadGapMedian = quantile(gaps, 0.5)
	return res
}

// errors lists what contradicts the kernel's contract or leaves the
// figures unfounded, as ERROR lines.
func (f flapResult) errors() []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, "flap: "+fmt.Sprintf(format, a...)) }
	if f.EventsErr != "" {
		add("the edge events' subscription ended: %s", f.EventsErr)
	}
	if f.LinkErr != "" {
		add("the RTNLGRP_LINK subscription ended: %s", f.LinkErr)
	}
	if f.Events-f.Duplicates == 0 {
		add("no edge event received")
		return out
	}
	if !f.EpochInBracket {
		add("the edges' epoch is %s from the start of the request that set the policy, outside it (%s wide)", us(f.EpochOffset), us(f.EpochWidth))
	}
	for _, c := range []struct {
		n    int
		what string
	}{
		{f.Duplicates, "events with a SEQ already seen (or 0)"},
		{f.OffGrid, "events whose TIME_NS is not the epoch plus the windows before the edge"},
		{f.FiredEarly, "events whose FIRED_NS comes before their TIME_NS"},
		{f.Wrong, "events whose state, step, mode or direction is not their edge's"},
		{f.CarrierWrong, "events whose CARRIER is absent or not on exactly at UP edges"},
		{f.Missing, "carrier changes without an RTM_NEWLINK"},
		{f.Extra, "RTM_NEWLINK messages with more carrier changes than the edges imply"},
		{f.Inconsistent, "RTM_NEWLINK messages whose carrier disagrees with their carrier counters"},
	} {
		if c.n > 0 {
			add("%d %s", c.n, c.what)
		}
	}
	if f.TimerStalled {
		add("no edge event for more than %s before the policy was replaced (last of %d due)", us(timerStall), f.Due)
	}
	gains := f.Gains + btoi(f.Restore)
	if f.KernelDowns != int64(f.Losses) || f.KernelUps != int64(gains) {
		add("the device counted %d carrier losses and %d gains; the edges imply %d and %d", f.KernelDowns, f.KernelUps, f.Losses, gains)
	}
	if f.Restore && !f.RestoreSeen {
		add("no RTM_NEWLINK for the carrier given back when the policy was replaced")
	}
	return out
}

// operName is an IFLA_OPERSTATE value as ip(8) prints it.
func operName(v uint8) string {
	names := []string{"UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"}
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("operstate(%d)", v)
}

// parseLinkMsg decodes an RTM_NEWLINK's ifinfomsg and the attributes the
// flap phase reads.
func parseLinkMsg(b []byte) (index int32, l linkObs, err error) {
	if len(b) < unix.SizeofIfInfomsg {
		return 0, l, errors.New("short ifinfomsg")
	}
	index = int32(binary.NativeEndian.Uint32(b[4:8]))
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return 0, l, err
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_CARRIER:
			l.HasCarrier, l.Carrier = true, ad.Uint8() != 0
		case unix.IFLA_OPERSTATE:
			l.OperState = ad.Uint8()
		case unix.IFLA_CARRIER_UP_COUNT:
			l.Ups = int64(ad.Uint32())
		case unix.IFLA_CARRIER_DOWN_COUNT:
			l.Downs = int64(ad.Uint32())
		}
	}
	return index, l, ad.Err()
}
