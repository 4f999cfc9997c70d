package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/insane-netdev/insane/go/genl"
)

// Text output follows the grammar, so that a shown policy can be typed
// back: "7: ins0: slave veth0 mode percent 12.5 seed 42".

func deviceLine(d *genl.Device) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d: %s: ", d.Index, d.Name)
	switch {
	case d.LowerName != "":
		b.WriteString("slave " + d.LowerName)
	case d.LowerIndex != 0:
		fmt.Fprintf(&b, "slave if%d", d.LowerIndex)
	default:
		b.WriteString("noslave")
	}
	b.WriteString(" " + d.Policy.String())
	return b.String()
}

func statsLines(s genl.Stats) string {
	return fmt.Sprintf("    relayed: packets %d bytes %d\n"+
		"    dropped: total %d policy %d no-lower %d no-route %d lower-refused %d not-ip %d\n",
		s.RelayedPackets, s.RelayedBytes, s.Dropped(),
		s.DropPolicy, s.DropNoLower, s.DropNoRoute, s.DropLowerRefused, s.DropNotIP)
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
	Mode    string   `json:"mode"`
	Percent *float64 `json:"percent,omitempty"`
	Seed    *uint64  `json:"seed,omitempty"`
	OnNs    *int64   `json:"on_ns,omitempty"`
	OffNs   *int64   `json:"off_ns,omitempty"`
}

type jsonStats struct {
	RelayedPackets   uint64 `json:"relayed_packets"`
	RelayedBytes     uint64 `json:"relayed_bytes"`
	Dropped          uint64 `json:"dropped"`
	DropPolicy       uint64 `json:"drop_policy"`
	DropNoLower      uint64 `json:"drop_no_lower"`
	DropNoRoute      uint64 `json:"drop_no_route"`
	DropLowerRefused uint64 `json:"drop_lower_refused"`
	DropNotIP        uint64 `json:"drop_not_ip"`
}

type jsonDevice struct {
	Timestamp string     `json:"timestamp,omitempty"`
	Event     string     `json:"event,omitempty"`
	Ifindex   int        `json:"ifindex"`
	Ifname    string     `json:"ifname"`
	Link      string     `json:"link,omitempty"`
	LinkIndex int        `json:"link_index,omitempty"`
	Policy    jsonPolicy `json:"policy"`
	Stats     *jsonStats `json:"stats,omitempty"`
}

func toJSON(d *genl.Device, stats bool) jsonDevice {
	p := d.Policy
	jp := jsonPolicy{Mode: p.Mode.String()}
	switch p.Mode {
	case genl.ModePercent:
		// The exact decimal, not the float's shortest form.
		v, _ := strconv.ParseFloat(genl.FormatPercentUnits(p.PercentUnits()), 64)
		jp.Percent, jp.Seed = &v, p.Seed
	case genl.ModeTime:
		on, off := int64(p.On), int64(p.Off)
		jp.OnNs, jp.OffNs = &on, &off
	}
	jd := jsonDevice{Ifindex: d.Index, Ifname: d.Name, Link: d.LowerName, LinkIndex: d.LowerIndex, Policy: jp}
	if stats {
		s := d.Stats
		jd.Stats = &jsonStats{
			RelayedPackets: s.RelayedPackets, RelayedBytes: s.RelayedBytes, Dropped: s.Dropped(),
			DropPolicy: s.DropPolicy, DropNoLower: s.DropNoLower, DropNoRoute: s.DropNoRoute,
			DropLowerRefused: s.DropLowerRefused, DropNotIP: s.DropNotIP,
		}
	}
	return jd
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

// writeEvent prints one monitor event: a line (and counters with -s) in
// text, one object per line in JSON.
func writeEvent(w io.Writer, ev genl.Event, at time.Time, o options) error {
	ts := at.Format(timestampLayout)
	var out []byte
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
