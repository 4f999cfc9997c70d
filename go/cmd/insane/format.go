package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/insane-netdev/insane/go/genl"
)

// Text output follows the grammar, so that a shown policy can be typed
// back: "7: ins0: lower veth0 mode percent 12.5 seed 42".

func deviceLine(d *genl.Device) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d: %s: ", d.Index, d.Name)
	switch {
	case d.LowerName != "":
		b.WriteString("lower " + d.LowerName)
	case d.LowerIndex != 0:
		fmt.Fprintf(&b, "lower if%d", d.LowerIndex)
	default:
		b.WriteString("nolower")
	}
	b.WriteString(" " + d.Policy.String())
	if d.RxPolicy != nil {
		b.WriteString(" rx " + d.RxPolicy.String())
	}
	b.WriteString(stepLine("", d.Policy))
	if d.RxPolicy != nil {
		b.WriteString(stepLine("rx ", *d.RxPolicy))
	}
	return b.String()
}

// stepLine says, on a line of its own, which step of a schedule is in
// force and for how long yet, as the kernel reported when it was read:
// "    step 2 of 3: 5s percent 50, 3.25s left".
func stepLine(prefix string, p genl.Policy) string {
	if p.Mode != genl.ModeSchedule || p.Now == nil || p.Now.Index >= len(p.Steps) {
		return ""
	}
	st := p.Steps[p.Now.Index]
	left := "held for good"
	if !p.Now.Holds {
		left = p.Now.Left.Round(time.Millisecond).String() + " left"
		if p.Now.Left < time.Millisecond {
			left = p.Now.Left.String() + " left"
		}
	}
	one := genl.Schedule(false, nil, st).String()
	return fmt.Sprintf("\n    %sstep %d of %d: %s, %s", prefix, p.Now.Index+1, len(p.Steps),
		strings.TrimPrefix(one, "mode schedule "), left)
}

// statsLines prints the counters of genl.Counters in their order: the
// relayed ones after "relayed:", then the total and the drop causes after
// "dropped:", then what the delay stage holds now after "held:", then the
// marks (duplicated, corrupted: what happened to packets counted above,
// never drops) after "marked:"; then the same for the receive direction
// after "rx relayed:", "rx dropped:", "rx held:" and "rx marked:".
func statsLines(s genl.Stats) string {
	relayed := [2]string{"    relayed:", "    rx relayed:"}
	dropped := [2]string{
		fmt.Sprintf("    dropped: total %d", s.Dropped()),
		fmt.Sprintf("    rx dropped: total %d", s.RxDropped()),
	}
	held := [2]string{"    held:", "    rx held:"}
	marked := [2]string{"    marked:", "    rx marked:"}
	for _, c := range genl.Counters() {
		d := 0
		if c.Rx {
			d = 1
		}
		switch {
		case c.Gauge:
			held[d] += fmt.Sprintf(" %s %d", c.Short, c.Get(s))
		case c.Drop:
			dropped[d] += fmt.Sprintf(" %s %d", c.Short, c.Get(s))
		case c.Mark:
			marked[d] += fmt.Sprintf(" %s %d", c.Short, c.Get(s))
		default:
			relayed[d] += fmt.Sprintf(" %s %d", c.Short, c.Get(s))
		}
	}
	var b strings.Builder
	for d := range relayed {
		b.WriteString(relayed[d] + "\n" + dropped[d] + "\n" + held[d] + "\n" + marked[d] + "\n")
	}
	return b.String()
}

func writeText(w io.Writer, ds []*genl.Device, stats bool) error {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(deviceLine(d) + "\n")
		if stats {
			b.WriteString(statsLines(d.Stats))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSON output is shaped like "ip -j": an array of objects, with ip's names
// where ip has one (ifindex, ifname, link, link_index).

type jsonPolicy struct {
	Mode     string   `json:"mode"`
	Percent  *float64 `json:"percent,omitempty"`
	Burst    *float64 `json:"burst,omitempty"`
	P        *float64 `json:"ge_p,omitempty"`
	R        *float64 `json:"ge_r,omitempty"`
	LossBad  *float64 `json:"ge_loss_bad,omitempty"`
	LossGood *float64 `json:"ge_loss_good,omitempty"`
	Seed     *uint64  `json:"seed,omitempty"`
	OnNs     *int64   `json:"on_ns,omitempty"`
	OffNs    *int64   `json:"off_ns,omitempty"`
	// A step of a schedule has its duration.
	DurationNs *int64       `json:"duration_ns,omitempty"`
	Steps      []jsonPolicy `json:"steps,omitempty"`
	Once       bool         `json:"once,omitempty"`
	// The edge flags of time and schedule policies.
	Carrier bool `json:"carrier,omitempty"`
	Events  bool `json:"events,omitempty"`
	// The step in force (time, schedule), from 0, and the time left in
	// it; step_left_ns is absent while a once schedule holds its last
	// step for good.
	Step       *int   `json:"step,omitempty"`
	StepLeftNs *int64 `json:"step_left_ns,omitempty"`
	// The delay stage, of a policy or a step: the distribution is given
	// (uniform included) whenever there is a jitter.
	DelayNs      *int64   `json:"delay_ns,omitempty"`
	JitterNs     *int64   `json:"jitter_ns,omitempty"`
	Correlation  *float64 `json:"correlation,omitempty"`
	Distribution string   `json:"distribution,omitempty"`
	Reorder      bool     `json:"reorder,omitempty"`
	// The packets held per CPU and direction, when the policy sets it.
	Limit int `json:"limit,omitempty"`
	// Rate, duplication and corruption, of a policy or a step: the rate
	// in bits per second, the overhead in bytes per packet, the buffer in
	// ns, duplicate and corrupt in percent (as typed, to a millionth).
	Rate          uint64   `json:"rate,omitempty"`
	Overhead      int      `json:"overhead,omitempty"`
	BufferNs      *int64   `json:"buffer_ns,omitempty"`
	Duplicate     *float64 `json:"duplicate,omitempty"`
	Corrupt       *float64 `json:"corrupt,omitempty"`
	CorruptHeader bool     `json:"corrupt_header,omitempty"`
}

// jsonStats is the "stats" object: the transmit direction's counters of
// genl.Counters, then the receive direction's, each in their order as
// relayed ones, "dropped" (or "rx_dropped": the sum of that direction's
// drop causes), the drop causes, the gauges of what the delay stage holds
// now, then the marks (duplicated, corrupted), which no total counts.
type jsonStats genl.Stats

func (js jsonStats) MarshalJSON() ([]byte, error) {
	s := genl.Stats(js)
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	put := func(name string, v uint64) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(&b, "%q:%d", name, v)
	}
	for _, rx := range []bool{false, true} {
		for _, c := range genl.Counters() {
			if c.Rx == rx && !c.Drop && !c.Gauge && !c.Mark {
				put(c.Name, c.Get(s))
			}
		}
		if rx {
			put("rx_dropped", s.RxDropped())
		} else {
			put("dropped", s.Dropped())
		}
		for _, c := range genl.Counters() {
			if c.Rx == rx && c.Drop {
				put(c.Name, c.Get(s))
			}
		}
		for _, c := range genl.Counters() {
			if c.Rx == rx && c.Gauge {
				put(c.Name, c.Get(s))
			}
		}
		for _, c := range genl.Counters() {
			if c.Rx == rx && c.Mark {
				put(c.Name, c.Get(s))
			}
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

type jsonDevice struct {
	Timestamp string     `json:"timestamp,omitempty"`
	Event     string     `json:"event,omitempty"`
	Ifindex   int        `json:"ifindex"`
	Ifname    string     `json:"ifname"`
	Link      string     `json:"link,omitempty"`
	LinkIndex int        `json:"link_index,omitempty"`
	Policy    jsonPolicy `json:"policy"`
	// RxPolicy is the receive policy, absent while it is off.
	RxPolicy *jsonPolicy `json:"rx_policy,omitempty"`
	Stats    *jsonStats  `json:"stats,omitempty"`
}

func toJSON(d *genl.Device, stats bool) jsonDevice {
	jd := jsonDevice{Ifindex: d.Index, Ifname: d.Name, Link: d.LowerName, LinkIndex: d.LowerIndex, Policy: policyJSON(d.Policy)}
	if d.RxPolicy != nil {
		rx := policyJSON(*d.RxPolicy)
		jd.RxPolicy = &rx
	}
	if stats {
		js := jsonStats(d.Stats)
		jd.Stats = &js
	}
	return jd
}

func policyJSON(p genl.Policy) jsonPolicy {
	jp := jsonPolicy{Mode: p.Mode.String(), Seed: p.Seed, Carrier: p.Carrier, Events: p.Events}
	// Exact decimals, not the floats' shortest forms.
	pct := func(v float64) *float64 {
		f, _ := strconv.ParseFloat(genl.FormatPercentUnits(uint32(math.Round(v*1e6))), 64)
		return &f
	}
	switch p.Mode {
	case genl.ModePercent:
		jp.Percent = pct(p.Percent)
	case genl.ModeTime:
		on, off := int64(p.On), int64(p.Off)
		jp.OnNs, jp.OffNs = &on, &off
	case genl.ModeBurst:
		b, _ := strconv.ParseFloat(genl.FormatBurstUnits(p.BurstUnits()), 64)
		jp.Percent, jp.Burst = pct(p.Percent), &b
	case genl.ModeGilbert:
		g := p.Gilbert
		jp.P, jp.R, jp.LossBad, jp.LossGood = pct(g.P), pct(g.R), pct(g.LossBad), pct(g.LossGood)
	case genl.ModeSchedule:
		jp.Once = p.Once
		for _, st := range p.Steps {
			js := policyJSON(st.Action)
			d := int64(st.Duration)
			js.DurationNs = &d
			jp.Steps = append(jp.Steps, js)
		}
	}
	if p.Delay != 0 {
		d := int64(p.Delay)
		jp.DelayNs = &d
		jp.Reorder = p.Reorder
	}
	if p.Jitter != 0 {
		j := int64(p.Jitter)
		jp.JitterNs, jp.Distribution = &j, p.Distribution.String()
		if p.Correlation != 0 {
			jp.Correlation = pct(p.Correlation)
		}
	}
	jp.Limit = p.Limit
	jp.Rate, jp.Overhead, jp.CorruptHeader = p.Rate, p.Overhead, p.CorruptHeader
	if p.Buffer != 0 {
		b := int64(p.Buffer)
		jp.BufferNs = &b
	}
	if p.Duplicate != 0 {
		jp.Duplicate = pct(p.Duplicate)
	}
	if p.Corrupt != 0 {
		jp.Corrupt = pct(p.Corrupt)
	}
	if p.Now != nil {
		i := p.Now.Index
		jp.Step = &i
		if !p.Now.Holds {
			l := int64(p.Now.Left)
			jp.StepLeftNs = &l
		}
	}
	return jp
}

func marshal(v any, pretty bool) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	if pretty {
		enc.SetIndent("", "    ")
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeJSON(w io.Writer, ds []*genl.Device, stats, pretty bool) error {
	out := make([]jsonDevice, 0, len(ds))
	for _, d := range ds {
		out = append(out, toJSON(d, stats))
	}
	b, err := marshal(out, pretty)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

const timestampLayout = "2006-01-02T15:04:05.000000Z07:00"

// realtimeLayout writes an edge's CLOCK_REALTIME instant to the
// nanosecond, as the kernel gives it.
const realtimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// edgeLine is the text of an edge event, after the timestamp:
//
//	edge 7: ins0: tx step 2 drop down seq 3 at 2026-12-02T06:30:00.500000000Z monotonic 1234.500000000 fired +0.042ms carrier off
//
// the direction, the step that begins (numbered from 1, as show numbers
// them) with its mode, the state it puts the direction in, the edge's
// number since the policy was set, its nominal instant on CLOCK_REALTIME
// (in the timestamp's zone) and on CLOCK_MONOTONIC (in seconds, as
// /proc/uptime counts them), how late the kernel's timer ran, and with a
// carrier-flapping transmit policy the carrier after the edge.
func edgeLine(ev genl.Event, loc *time.Location) string {
	e := ev.Edge
	s := fmt.Sprintf("edge %d: %s: %s step %d %s %s seq %d at %s monotonic %d.%09d fired %+.3fms",
		ev.Device.Index, ev.Device.Name, e.Direction, e.Step+1, e.Mode, e.State, e.Seq,
		e.Realtime.In(loc).Format(realtimeLayout), int64(e.Time/time.Second), int64(e.Time%time.Second),
		float64(e.Late())/float64(time.Millisecond))
	switch {
	case e.Carrier == nil:
	case *e.Carrier:
		s += " carrier on"
	default:
		s += " carrier off"
	}
	return s
}

// jsonEdge is an edge event's object in -j monitor: the Edge, with the
// kernel's step index (from 0, as "step" in a policy) and its times in
// nanoseconds.
type jsonEdge struct {
	Timestamp  string `json:"timestamp"`
	Event      string `json:"event"`
	Ifindex    int    `json:"ifindex"`
	Ifname     string `json:"ifname"`
	Direction  string `json:"direction"`
	Seq        uint64 `json:"seq"`
	Step       int    `json:"step"`
	Mode       string `json:"mode"`
	State      string `json:"state"`
	TimeNs     int64  `json:"time_ns"`
	Realtime   string `json:"realtime"`
	RealtimeNs int64  `json:"realtime_ns"`
	FiredNs    int64  `json:"fired_ns"`
	Carrier    *bool  `json:"carrier,omitempty"`
}

func edgeJSON(ev genl.Event, ts string, loc *time.Location) jsonEdge {
	e := ev.Edge
	return jsonEdge{
		Timestamp: ts, Event: ev.Type.String(), Ifindex: ev.Device.Index, Ifname: ev.Device.Name,
		Direction: e.Direction.String(), Seq: e.Seq, Step: e.Step, Mode: e.Mode.String(), State: e.State.String(),
		TimeNs: int64(e.Time), Realtime: e.Realtime.In(loc).Format(time.RFC3339Nano), RealtimeNs: e.Realtime.UnixNano(),
		FiredNs: int64(e.Fired), Carrier: e.Carrier,
	}
}

// writeEvent prints one monitor event: a line (and counters with -s) in
// text, one object per line in JSON. An edge is one line, without
// counters: its message has none.
func writeEvent(w io.Writer, ev genl.Event, at time.Time, o options) error {
	ts := at.Format(timestampLayout)
	var out []byte
	if ev.Edge != nil {
		if !o.json {
			_, err := fmt.Fprintf(w, "[%s] %s\n", ts, edgeLine(ev, at.Location()))
			return err
		}
		b, err := marshal(edgeJSON(ev, ts, at.Location()), o.pretty)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	if o.json {
		jd := toJSON(&ev.Device, o.stats)
		jd.Timestamp, jd.Event = ts, ev.Type.String()
		b, err := marshal(jd, o.pretty)
		if err != nil {
			return err
		}
		out = b
	} else {
		s := fmt.Sprintf("[%s] %s %s\n", ts, ev.Type, deviceLine(&ev.Device))
		if o.stats {
			s += statsLines(ev.Device.Stats)
		}
		out = []byte(s)
	}
	_, err := w.Write(out)
	return err
}
