package genl

//go:generate go run ../internal/uapigen -header ../../kernel/include/uapi/linux/insane.h -counters -lists ../../kernel/counters.h -o zz_counters.go

// A Counter describes one of the counters of Stats: an attribute of enum
// insane_stats_attr in the uapi header. The Stats type and the table that
// Counters returns are generated from that enum and from the lists of
// kernel/counters.h, which give each counter its group (zz_counters.go), so
// that a new counter in the header needs no edit here: the decoder,
// Stats.Dropped, the CLI's output and the tests all follow the table.
type Counter struct {
	// Attr is the INSANE_STATS_A_* attribute.
	Attr uint16
	// Name is the counter's name in ethtool -S and in JSON, the attribute
	// in lower case: "relayed_packets", "drop_no_lower".
	Name string
	// Short is the name in text after "relayed:", "dropped:", "held:" or
	// "marked:" (with "rx " before them for the receive direction), Name
	// without "rx_", "relayed_", "drop_" or "held_" and with '-' for '_':
	// "packets", "no-lower", "duplicated".
	Short string
	// Drop tells a drop cause (INSANE_STATS_A_DROP_*, or _RX_DROP_*),
	// which Stats.Dropped or Stats.RxDropped sums, from a count of
	// relayed traffic.
	Drop bool
	// Gauge tells a gauge (INSANE_STATS_A_HELD_*, _RX_HELD_*): what the
	// device holds now, not a count since the last reset; never a drop.
	Gauge bool
	// Mark tells a mark (kernel/counters.h's INSANE_MARKS:
	// INSANE_STATS_A_DUPLICATED, _CORRUPTED and their RX_ twins): what
	// happened to packets that are also counted as relayed or under a drop
	// cause (a duplicate's copy is itself counted there too). Never a drop,
	// never in Dropped, nor in the interface's dropped counts.
	Mark bool
	// Rx tells a counter of the receive direction (INSANE_STATS_A_RX_*)
	// from one of the transmit direction.
	Rx bool
	// Doc is the header's description of what the counter counts.
	Doc string

	field func(*Stats) *uint64
}

// Counters returns the descriptions of the fields of Stats, in the order of
// enum insane_stats_attr.
func Counters() []Counter {
	return append([]Counter(nil), counters[:]...)
}

// Get returns the counter's value in s.
func (c Counter) Get(s Stats) uint64 { return *c.field(&s) }

// Set stores v as the counter's value in s.
func (c Counter) Set(s *Stats, v uint64) { *c.field(s) = v }

// counterFor returns the counter of attribute attr, false for an attribute
// this package does not know (from a newer kernel).
func counterFor(attr uint16) (Counter, bool) {
	for _, c := range counters {
		if c.Attr == attr {
			return c, true
		}
	}
	return Counter{}, false
}

// Dropped returns the sum of the transmit direction's drop counters (the
// marks are not drops).
func (s Stats) Dropped() uint64 { return s.dropped(false) }

// RxDropped returns the sum of the receive direction's drop counters.
func (s Stats) RxDropped() uint64 { return s.dropped(true) }

func (s Stats) dropped(rx bool) uint64 {
	var n uint64
	for _, c := range counters {
		if c.Drop && c.Rx == rx {
			n += *c.field(&s)
		}
	}
	return n
}
