package genl

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"

	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/go/internal/cheader"
)

// TestCountersMatchHeader checks the table against the header's enum
// insane_stats_attr in both directions: every member after the padding is
// one counter, in order, and nothing else is.
func TestCountersMatchHeader(t *testing.T) {
	header, err := os.ReadFile("../../kernel/include/uapi/linux/insane.h")
	if err != nil {
		t.Fatal(err)
	}
	consts, err := cheader.Parse(string(header))
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, c := range consts {
		if c.Enum == "insane_stats_attr" && c.Int > uapi.StatsAPad && c.Int <= uapi.StatsAMax {
			want = append(want, c.Int)
		}
	}
	cs := Counters()
	if len(cs) != len(want) || len(cs) != uapi.StatsAMax-uapi.StatsAPad {
		t.Fatalf("%d counters in Go, %d in the header (INSANE_STATS_A_MAX %d)", len(cs), len(want), uapi.StatsAMax)
	}
	for i, c := range cs {
		if int64(c.Attr) != want[i] {
			t.Errorf("counter %d (%s) has attribute %d, the header's member %d is %d", i, c.Name, c.Attr, i, want[i])
		}
		if c.Doc == "" || c.Name == "" || c.Short == "" {
			t.Errorf("counter %d: %+v lacks a name or a description", i, c)
		}
	}
	if cs[0].Attr != uapi.StatsARelayedPackets || cs[0].Drop || cs[2].Attr != uapi.StatsADropPolicy || !cs[2].Drop {
		t.Error("the first counters are not relayed packets, relayed bytes, drop policy")
	}
}

// TestCountersCoverStats checks that the table names every field of Stats
// exactly once, in the order of the fields.
func TestCountersCoverStats(t *testing.T) {
	typ := reflect.TypeOf(Stats{})
	cs := Counters()
	if typ.NumField() != len(cs) {
		t.Fatalf("Stats has %d fields, the table %d counters", typ.NumField(), len(cs))
	}
	for i, c := range cs {
		var s Stats
		c.Set(&s, uint64(i)+1)
		v := reflect.ValueOf(s)
		for j := 0; j < v.NumField(); j++ {
			want := uint64(0)
			if j == i {
				want = uint64(i) + 1
			}
			if got := v.Field(j).Uint(); got != want {
				t.Errorf("counter %s sets field %s to %d", c.Name, typ.Field(j).Name, got)
			}
		}
		if c.Get(s) != uint64(i)+1 {
			t.Errorf("counter %s: Get does not read what Set wrote", c.Name)
		}
	}
	// The new drop causes of the header, by name.
	s := Stats{DropLoop: 3, DropMalformed: 4, DropNotIP: 5, RelayedPackets: 100}
	if s.Dropped() != 12 {
		t.Errorf("Dropped() = %d, want 12", s.Dropped())
	}
	// DROP_NO_MEMORY is a transmit drop cause; the marks are no drops.
	s = Stats{DropNoMemory: 2, Duplicated: 7, Corrupted: 8, RxDuplicated: 9, RxCorrupted: 10, RxDropNoMemory: 1}
	if s.Dropped() != 2 || s.RxDropped() != 1 {
		t.Errorf("Dropped() = %d, RxDropped() = %d, want 2 and 1: a mark was summed", s.Dropped(), s.RxDropped())
	}
}

// TestCounterMarks: the marks are kernel/counters.h's INSANE_MARKS, each
// direction's duplicated and corrupted, and nothing else is one.
func TestCounterMarks(t *testing.T) {
	var got []string
	for _, c := range Counters() {
		if c.Mark {
			got = append(got, c.Name)
			if c.Drop || c.Gauge {
				t.Errorf("%s is a mark and a drop or a gauge", c.Name)
			}
			if c.Rx != strings.HasPrefix(c.Name, "rx_") || c.Short != strings.TrimPrefix(c.Name, "rx_") {
				t.Errorf("mark %+v", c)
			}
		}
	}
	if want := []string{"duplicated", "corrupted", "rx_duplicated", "rx_corrupted"}; !reflect.DeepEqual(got, want) {
		t.Errorf("marks %v, want %v", got, want)
	}
	if c, ok := counterFor(uapi.StatsADropNoMemory); !ok || !c.Drop || c.Rx || c.Short != "no-memory" {
		t.Errorf("drop_no_memory: %+v", c)
	}
}

// TestDecodeStats decodes a stats nest with a distinct value for every
// counter, the padding and an attribute from a newer kernel.
func TestDecodeStats(t *testing.T) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint64(uapi.StatsAPad, 99)
	for _, c := range Counters() {
		ae.Uint64(c.Attr, 1000+uint64(c.Attr))
	}
	ae.Uint64(uapi.StatsAMax+1, 77)
	ad := decoderOf(t, ae)
	var s Stats
	if err := decodeStats(ad, &s); err != nil {
		t.Fatal(err)
	}
	for _, c := range Counters() {
		if got := c.Get(s); got != 1000+uint64(c.Attr) {
			t.Errorf("%s decoded as %d, want %d", c.Name, got, 1000+uint64(c.Attr))
		}
	}
	// By name, some of the fields the header defines today.
	if s.RelayedPackets != 1000+uapi.StatsARelayedPackets || s.DropNotIP != 1000+uapi.StatsADropNotIp ||
		s.DropLoop != 1000+uapi.StatsADropLoop || s.DropMalformed != 1000+uapi.StatsADropMalformed {
		t.Errorf("decoded %+v", s)
	}
}
