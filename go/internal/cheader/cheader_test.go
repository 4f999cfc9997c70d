package cheader

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	src := `/* comment with enum and #define inside */
#ifndef _GUARD_H
#define _GUARD_H
#define NAME		"a \"b\""	/* trailing */
#define SCALE 1000U
#define MAX (100U * SCALE) // line comment
#define HEX 0x1fUL
#define OCT 010
enum e {
	E_A,
	E_B = 5,
	E_C,	/* 6 */
	E_F = 1U << 3,
	E_G = E_A | E_F |
	      E_B,
	E_H = ~0 & 0xff,
	E_I = (E_C - 1) * 2 + 12 / 4 % 2 ^ 1,
	__E_MAX
};
#define E_MAX (__E_MAX - 1)
enum f { F_X = -2, F_Y };
#endif
`
	cs, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Const{}
	var order []string
	for _, c := range cs {
		got[c.Name] = c
		order = append(order, c.Name)
	}
	wantInts := map[string]int64{
		"SCALE": 1000, "MAX": 100000, "HEX": 31, "OCT": 8,
		"E_A": 0, "E_B": 5, "E_C": 6, "E_F": 8, "E_G": 13, "E_H": 255,
		"E_I": (6-1)*2 + (12/4%2 ^ 1), "__E_MAX": 11, "E_MAX": 10, "F_X": -2, "F_Y": -1,
	}
	// E_I: * and / before +, + before ^: ((5*2)+((12/4)%2)) ^ 1 = 11 ^ 1 = 10.
	wantInts["E_I"] = 10
	for name, v := range wantInts {
		c, ok := got[name]
		if !ok || c.Kind != Int || c.Int != v {
			t.Errorf("%s = %+v, want %d", name, c, v)
		}
	}
	if c := got["NAME"]; c.Kind != String || c.Str != `a "b"` || !c.IsDef {
		t.Errorf("NAME = %+v", c)
	}
	if _, ok := got["_GUARD_H"]; ok {
		t.Error("include guard taken as a constant")
	}
	if got["E_B"].Enum != "e" || got["F_Y"].Enum != "f" || got["E_B"].IsDef {
		t.Error("enum tags")
	}
	if want := "NAME SCALE MAX HEX OCT E_A"; !strings.HasPrefix(strings.Join(order, " "), want) {
		t.Errorf("order %v", order)
	}
	if got["E_C"].Line != 12 || got["E_A"].Line != 10 || got["E_MAX"].Line != 20 {
		t.Errorf("lines: E_A %d, E_C %d, E_MAX %d", got["E_A"].Line, got["E_C"].Line, got["E_MAX"].Line)
	}
}

// TestParseUint64: a #define of an unsigned literal above 2^63 - 1 (a
// 64-bit salt) keeps its bits, and no expression may use it.
func TestParseUint64(t *testing.T) {
	cs, err := Parse("#define SALT\t\t0x9fb21c651e98df25ULL\n#define MAXU (18446744073709551615ULL)\n#define SMALL 0x51b54a32d192ed03ULL\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 || !cs[0].Uint64 || cs[0].Value() != uint64(0x9fb21c651e98df25) ||
		!cs[1].Uint64 || cs[1].Value() != uint64(1<<64-1) || cs[2].Uint64 || cs[2].Value() != int64(0x51b54a32d192ed03) {
		t.Errorf("Parse = %+v", cs)
	}
	out, err := Generate("p", "h.h", "X_", "#define X_SALT 0x9fb21c651e98df25ULL\n")
	if err != nil || !strings.Contains(string(out), "Salt = 11507291218515648293 // X_SALT") {
		t.Errorf("Generate: %v\n%s", err, out)
	}
	for _, src := range []string{
		"#define A 0x9fb21c651e98df25ULL\n#define B (A + 1)\n",
		"#define A (0x9fb21c651e98df25ULL ^ 1)\n",
		"enum e { E = 0x9fb21c651e98df25ULL };\n",
		"#define A 0x1ffffffffffffffffULL\n",
	} {
		if _, err := Parse(src); err == nil {
			t.Errorf("Parse(%q) succeeded", src)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, src := range []string{
		"#define A B\n",                  // unknown name
		"#define A (1\n",                 // missing )
		"#define A 1 +\n",                // dangling operator
		"#define A 1 < 2\n",              // unsupported operator
		"#define A(x) x\n",               // function-like macro
		"#define A 1\n#define A 2\n",     // duplicate
		"enum e { A = \"s\" };\n",        // string enumerator
		"enum e { A, B\n",                // unterminated
		"/* unterminated\n",              // comment
		"struct s { int a; };\n",         // anything else
		"#pragma once\n",                 // unknown directive
		"#define S \"x\"\n#define A S\n", // string in expression
		"#define A 1 << 64\n",            // shift out of range
		"#define A 1 / 0\n",              // division by zero
		"#define A 99999999999999999999\n",
		"enum e { 1A };\n",
	} {
		if _, err := Parse(src); err == nil {
			t.Errorf("Parse(%q) succeeded", src)
		}
	}
}

func TestGoName(t *testing.T) {
	for cname, want := range map[string]string{
		"INSANE_DEVICE_A_IFNAME":   "DeviceAIfname",
		"INSANE_GENL_MCGRP_EVENTS": "GenlMcgrpEvents",
		"__INSANE_DEVICE_F_ALL":    "DeviceFAll",
		"__INSANE_CMD_MAX":         "",
		"INSANE_CMD_MAX":           "CmdMax",
	} {
		got, err := GoName(cname, "INSANE_")
		if err != nil || got != want {
			t.Errorf("GoName(%s) = %q, %v, want %q", cname, got, err, want)
		}
	}
	for _, bad := range []string{"OTHER_X", "INSANE_", "INSANE_A__B"} {
		if _, err := GoName(bad, "INSANE_"); err == nil {
			t.Errorf("GoName(%s) succeeded", bad)
		}
	}
}

func TestGenerate(t *testing.T) {
	out, err := Generate("p", "h.h", "X_", "#define X_NAME \"n\"\nenum x_e { X_A, X_B = 1 << 2, __X_MAX };\n#define X_MAX (__X_MAX - 1)\n")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{"package p", `Name = "n" // X_NAME`, "A = 0 // X_A", "B = 4 // X_B", "Max = 4 // X_MAX", "DO NOT EDIT"} {
		if !strings.Contains(s, want) {
			t.Errorf("generated code lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "__X_MAX") {
		t.Error("sentinel generated")
	}
	if _, err := Generate("p", "h.h", "X_", "#define Y 1\n"); err == nil {
		t.Error("name without prefix accepted")
	}
}

func TestDoc(t *testing.T) {
	src := `/* the enum */
enum e {
	E_A,
	/* counts a */
	E_B,
	/*
	 * two lines
	 * of text
	 */
	E_C, /* trailing, not a doc */
	E_D,

	// first
	// second
	E_E,
	/* separated */

	E_F,
};
/* a macro */
#define M 1
`
	cs, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"E_A": "", "E_B": "counts a", "E_C": "two lines of text", "E_D": "",
		"E_E": "first second", "E_F": "", "M": "a macro",
	}
	for _, c := range cs {
		if w, ok := want[c.Name]; !ok || c.Doc != w {
			t.Errorf("%s: doc %q, want %q", c.Name, c.Doc, w)
		}
	}
}

// countersH is a kernel/counters.h in the real one's shape, for the
// counters of TestCounters' enum.
const countersH = `/* SPDX */
#ifndef _X_H
#define _X_H
#define INSANE_RELAY_COUNTERS(X)		\
	X(RELAYED_PACKETS, relayed_packets, NOT_SPECIFIED)
#define INSANE_DROP_CAUSES_1(X)		\
	X(DROP_NOT_IP,	drop_not_ip,	UNHANDLED_PROTO) /* trailing */
#define INSANE_RX_RELAY_COUNTERS(X) X(RX_RELAYED_BYTES, rx_relayed_bytes, NOT_SPECIFIED)
#define INSANE_RX_DROP_CAUSES(X)	\
	X(RX_DROP_POLICY, rx_drop_policy, NOT_SPECIFIED)
#define INSANE_GAUGES(X)		\
	X(RX_HELD_PACKETS, rx_held_packets, NOT_SPECIFIED)
/* Marks. */
#define INSANE_MARKS(X)			\
	X(DUPLICATED, duplicated, NOT_SPECIFIED)	\
	X(RX_CORRUPTED, rx_corrupted, NOT_SPECIFIED)
#define INSANE_DROP_CAUSES(X) INSANE_DROP_CAUSES_1(X)
#define INSANE_COUNTERS(X)		\
	INSANE_RELAY_COUNTERS(X)	\
	INSANE_DROP_CAUSES(X)		\
	INSANE_RX_RELAY_COUNTERS(X)	\
	INSANE_RX_DROP_CAUSES(X)	\
	INSANE_GAUGES(X)		\
	INSANE_MARKS(X)
#ifdef __KERNEL__
#define INSANE_DROP_ENUM(attr, name, reason) INSANE_##attr,
enum insane_drop { INSANE_DROP_CAUSES(INSANE_DROP_ENUM) INSANE_DROP_NR };
#endif
#endif
`

func TestCounterLists(t *testing.T) {
	ls, err := CounterLists(countersH)
	if err != nil {
		t.Fatal(err)
	}
	want := []ListItem{{"RELAYED_PACKETS", "relayed_packets"}, {"DROP_NOT_IP", "drop_not_ip"},
		{"RX_RELAYED_BYTES", "rx_relayed_bytes"}, {"RX_DROP_POLICY", "rx_drop_policy"},
		{"RX_HELD_PACKETS", "rx_held_packets"}, {"DUPLICATED", "duplicated"}, {"RX_CORRUPTED", "rx_corrupted"}}
	if !slices.Equal(ls["INSANE_COUNTERS"], want) {
		t.Errorf("INSANE_COUNTERS = %v, want %v", ls["INSANE_COUNTERS"], want)
	}
	if len(ls["INSANE_MARKS"]) != 2 || len(ls["INSANE_DROP_CAUSES"]) != 1 {
		t.Errorf("lists %v", ls)
	}
	for _, bad := range []string{
		"#define A(X) X(B, b)\n",                             // two arguments
		"#define A(X) B(X)\n",                                // unknown list
		"#define A(X) X(B, b, c)\n#define A(X) X(C, c, d)\n", // twice
		"#define A(X) B(X)\n#define B(X) A(X)\n",             // a loop
		"/* unterminated\n",
	} {
		if _, err := CounterLists(bad); err == nil {
			t.Errorf("CounterLists(%q) succeeded", bad)
		}
	}
}

func TestCounters(t *testing.T) {
	src := `enum insane_stats_attr {
	INSANE_STATS_A_UNSPEC,
	INSANE_STATS_A_PAD,
	/* sent on */
	INSANE_STATS_A_RELAYED_PACKETS,
	/* not IP */
	INSANE_STATS_A_DROP_NOT_IP,
	/* passed up */
	INSANE_STATS_A_RX_RELAYED_BYTES,
	/* by the receive policy */
	INSANE_STATS_A_RX_DROP_POLICY,
	/* held now */
	INSANE_STATS_A_RX_HELD_PACKETS,
	/* copies */
	INSANE_STATS_A_DUPLICATED,
	INSANE_STATS_A_RX_CORRUPTED,
	__INSANE_STATS_A_MAX
};
enum other { INSANE_OTHER_A };
`
	cs, err := Counters(src, countersH)
	if err != nil {
		t.Fatal(err)
	}
	want := []Counter{
		{CName: "INSANE_STATS_A_RELAYED_PACKETS", Const: "StatsARelayedPackets", Field: "RelayedPackets", Name: "relayed_packets", Short: "packets", Doc: "sent on"},
		{CName: "INSANE_STATS_A_DROP_NOT_IP", Const: "StatsADropNotIp", Field: "DropNotIP", Name: "drop_not_ip", Short: "not-ip", Drop: true, Doc: "not IP"},
		{CName: "INSANE_STATS_A_RX_RELAYED_BYTES", Const: "StatsARxRelayedBytes", Field: "RxRelayedBytes", Name: "rx_relayed_bytes", Short: "bytes", Rx: true, Doc: "passed up"},
		{CName: "INSANE_STATS_A_RX_DROP_POLICY", Const: "StatsARxDropPolicy", Field: "RxDropPolicy", Name: "rx_drop_policy", Short: "policy", Drop: true, Rx: true, Doc: "by the receive policy"},
		{CName: "INSANE_STATS_A_RX_HELD_PACKETS", Const: "StatsARxHeldPackets", Field: "RxHeldPackets", Name: "rx_held_packets", Short: "packets", Gauge: true, Rx: true, Doc: "held now"},
		{CName: "INSANE_STATS_A_DUPLICATED", Const: "StatsADuplicated", Field: "Duplicated", Name: "duplicated", Short: "duplicated", Mark: true, Doc: "copies"},
		// The comment above a run of counters is each one's.
		{CName: "INSANE_STATS_A_RX_CORRUPTED", Const: "StatsARxCorrupted", Field: "RxCorrupted", Name: "rx_corrupted", Short: "corrupted", Mark: true, Rx: true, Doc: "copies"},
	}
	if !slices.Equal(cs, want) {
		t.Errorf("Counters = %+v, want %+v", cs, want)
	}
	// The enum's counters, each on its line with its comment, for the
	// refusals below: relayed packets, then one more.
	enum := func(extra string) string {
		return "enum insane_stats_attr {\n/* a */\nINSANE_STATS_A_RELAYED_PACKETS,\n" + extra + "\n__INSANE_STATS_A_MAX };\n"
	}
	lists := func(extra string) string {
		return "#define INSANE_RELAY_COUNTERS(X) X(RELAYED_PACKETS, relayed_packets, N)\n" + extra +
			"#define INSANE_COUNTERS(X) INSANE_RELAY_COUNTERS(X) INSANE_MORE(X)\n"
	}
	for _, bad := range []struct{ src, lists string }{
		{"enum insane_stats_attr { INSANE_STATS_A_PAD, /* x */\n INSANE_STATS_A_DROP_X };\n",
			"#define INSANE_DROP_CAUSES(X) X(DROP_X, drop_x, N)\n#define INSANE_COUNTERS(X) INSANE_DROP_CAUSES(X)\n"}, // no doc above
		{"enum insane_stats_attr {\n/* x */\nINSANE_X };\n", lists("#define INSANE_MORE(X)\n")},                                                                                                                               // no prefix
		{"enum insane_stats_attr { INSANE_STATS_A_UNSPEC };\n", lists("#define INSANE_MORE(X)\n")},                                                                                                                            // no counter
		{enum("/* b */\nINSANE_STATS_A_DROP_X,"), lists("#define INSANE_MORE(X) X(DROP_X, drop_x, N)\n")},                                                                                                                     // in no group
		{enum("/* b */\nINSANE_STATS_A_DROP_X,"), lists("#define INSANE_MORE(X) X(DROP_Y, drop_y, N)\n")},                                                                                                                     // not INSANE_COUNTERS's
		{enum("/* b */\nINSANE_STATS_A_DROP_X,"), lists("#define INSANE_MORE(X) X(DROP_X, drop_y, N)\n")},                                                                                                                     // another name
		{enum("/* b */\nINSANE_STATS_A_DROP_X,"), lists("#define INSANE_MORE(X)\n")},                                                                                                                                          // not in the lists
		{enum(""), lists("#define INSANE_MORE(X) X(DROP_X, drop_x, N)\n")},                                                                                                                                                    // not in the enum
		{enum("/* b */\nINSANE_STATS_A_DROP_X,"), lists("#define INSANE_MORE(X) INSANE_MARKS(X)\n#define INSANE_MARKS(X) X(DROP_X, drop_x, N)\n")},                                                                            // a mark named as a drop
		{enum("/* b */\nINSANE_STATS_A_COPIED,"), lists("#define INSANE_MORE(X) INSANE_GAUGES(X)\n#define INSANE_GAUGES(X) X(COPIED, copied, N)\n")},                                                                          // a gauge named otherwise
		{enum("/* b */\nINSANE_STATS_A_RX_DROP_X,"), lists("#define INSANE_MORE(X) INSANE_DROP_CAUSES(X)\n#define INSANE_DROP_CAUSES(X) X(RX_DROP_X, rx_drop_x, N)\n")},                                                       // a receive cause among the transmit ones
		{enum("/* b */\nINSANE_STATS_A_DROP_X,"), lists("#define INSANE_MORE(X) INSANE_DROP_CAUSES(X) INSANE_MARKS(X)\n#define INSANE_DROP_CAUSES(X) X(DROP_X, drop_x, N)\n#define INSANE_MARKS(X) INSANE_DROP_CAUSES(X)\n")}, // in two groups
		{enum(""), "#define INSANE_RELAY_COUNTERS(X) X(RELAYED_PACKETS, relayed_packets, N)\n"},                                                                                                                               // no INSANE_COUNTERS
	} {
		if _, err := Counters(bad.src, bad.lists); err == nil {
			t.Errorf("Counters(%q, %q) succeeded", bad.src, bad.lists)
		}
	}
	// A counter on a line of its own after a blank line takes no comment
	// from above.
	if _, err := Counters(enum("\nINSANE_STATS_A_DROP_X,"), lists("#define INSANE_MORE(X) INSANE_DROP_CAUSES(X)\n#define INSANE_DROP_CAUSES(X) X(DROP_X, drop_x, N)\n")); err == nil ||
		!strings.Contains(err.Error(), "no comment") {
		t.Errorf("a counter after a blank line: %v", err)
	}
}
