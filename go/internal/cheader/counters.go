package cheader

import (
	"bytes"
	"fmt"
	"go/format"
	"strconv"
	"strings"
)

// A Counter is one member of the uapi header's enum insane_stats_attr, as
// the Go client describes it.
type Counter struct {
	CName string // INSANE_STATS_A_DROP_NO_LOWER
	Const string // the uapi package's constant: StatsADropNoLower
	Field string // the field of genl.Stats: DropNoLower
	Name  string // ethtool -S and JSON: drop_no_lower
	Short string // the text after "dropped:" or "rx dropped:": no-lower
	Drop  bool   // a drop cause (INSANE_STATS_A_DROP_*, INSANE_STATS_A_RX_DROP_*)
	Gauge bool   // a gauge (INSANE_STATS_A_HELD_*, _RX_HELD_*): what is held now
	// Mark tells a mark (kernel/counters.h's INSANE_MARKS: DUPLICATED,
	// RX_CORRUPTED, ...): what happened to packets that are also counted
	// as relayed or dropped; never a drop.
	Mark bool
	Rx   bool   // of the receive direction (INSANE_STATS_A_RX_*)
	Doc  string // the header's comment above the enumerator
}

// The enum that lists the counters, and its members that are not counters.
const (
	statsEnum   = "insane_stats_attr"
	statsPrefix = "INSANE_STATS_A_"
)

// initialisms are written in capitals in Go field names (DropNotIP).
var initialisms = map[string]bool{"IP": true, "IPV4": true, "IPV6": true, "ID": true, "MTU": true, "TTL": true}

// A counterGroup is a list of kernel/counters.h that gives its counters a
// group, and the word their names take after the direction's RX_ ("" for
// the marks, whose names are their own).
type counterGroup struct {
	list, word string
	rx         int // 0 transmit, 1 receive, -1 either (by the name's RX_)
}

// counterGroups are the lists of kernel/counters.h that give a counter
// its group: every counter of INSANE_COUNTERS is in exactly one.
var counterGroups = []counterGroup{
	{"INSANE_RELAY_COUNTERS", "RELAYED_", 0}, {"INSANE_RX_RELAY_COUNTERS", "RELAYED_", 1},
	{"INSANE_DROP_CAUSES", "DROP_", 0}, {"INSANE_RX_DROP_CAUSES", "DROP_", 1},
	{"INSANE_GAUGES", "HELD_", -1}, {"INSANE_MARKS", "", -1},
}

// A ListItem is one X(ATTR, name, reason) of a list of kernel/counters.h.
type ListItem struct {
	Attr string // the suffix of the INSANE_STATS_A_* attribute: DROP_NO_LOWER
	Name string // drop_no_lower
}

// CounterLists reads the X-macro lists of kernel/counters.h: each
// "#define NAME(X)" whose body is X(ATTR, name, reason) items and other
// lists' OTHER(X), which it expands. It returns the items of each list, in
// order. Lines that define nothing of the kind are skipped.
func CounterLists(src string) (map[string][]ListItem, error) {
	stripped, _, err := stripComments(src)
	if err != nil {
		return nil, err
	}
	bodies := map[string][]string{}
	lines := strings.Split(stripped, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		lineNo := i + 1
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
		}
		rest, ok := strings.CutPrefix(line, "#define ")
		if !ok {
			continue
		}
		name, body, ok := strings.Cut(strings.TrimSpace(rest), "(X)")
		if !ok || !isIdent(name) {
			continue
		}
		if _, dup := bodies[name]; dup {
			return nil, fmt.Errorf("line %d: %s defined twice", lineNo, name)
		}
		var items []string
		for _, it := range strings.SplitAfter(body, ")") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		bodies[name] = items
	}
	var expand func(name string, depth int) ([]ListItem, error)
	expand = func(name string, depth int) ([]ListItem, error) {
		if depth > len(bodies) {
			return nil, fmt.Errorf("%s: the lists include each other", name)
		}
		var out []ListItem
		for _, it := range bodies[name] {
			if args, ok := strings.CutPrefix(it, "X("); ok {
				f := strings.Split(strings.TrimSuffix(args, ")"), ",")
				if len(f) != 3 || !isIdent(strings.TrimSpace(f[0])) || !isIdent(strings.TrimSpace(f[1])) {
					return nil, fmt.Errorf("%s: %q is not X(ATTR, name, reason)", name, it)
				}
				out = append(out, ListItem{Attr: strings.TrimSpace(f[0]), Name: strings.TrimSpace(f[1])})
				continue
			}
			sub, ok := strings.CutSuffix(it, "(X)")
			if _, known := bodies[sub]; !ok || !known {
				return nil, fmt.Errorf("%s: %q is neither X(ATTR, name, reason) nor a list", name, it)
			}
			more, err := expand(sub, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		}
		return out, nil
	}
	lists := map[string][]ListItem{}
	for name := range bodies {
		items, err := expand(name, 0)
		if err != nil {
			return nil, err
		}
		lists[name] = items
	}
	return lists, nil
}

// Counters returns the counters of enum insane_stats_attr in src, in the
// enum's order: every member but INSANE_STATS_A_UNSPEC, INSANE_STATS_A_PAD
// and the __MAX sentinel. lists is kernel/counters.h: its INSANE_COUNTERS
// must list the same counters, in the same order, with their names in
// lower case, and its lists give each counter its group (counterGroups):
// relayed ([RX_]RELAYED_*), a drop cause ([RX_]DROP_*), a gauge
// ([RX_]HELD_*) or a mark (INSANE_MARKS, named otherwise). Each must have a
// comment above it in the enum, so that a new counter cannot come without
// its group and its description; one comment may stand above a run of
// counters on consecutive lines ("the same for the packets taken over on
// receive" above RX_DUPLICATED and RX_CORRUPTED), which all take it.
func Counters(src, lists string) ([]Counter, error) {
	consts, err := Parse(src)
	if err != nil {
		return nil, err
	}
	ls, err := CounterLists(lists)
	if err != nil {
		return nil, fmt.Errorf("counters.h: %v", err)
	}
	all, ok := ls["INSANE_COUNTERS"]
	if !ok {
		return nil, fmt.Errorf("counters.h: no INSANE_COUNTERS(X)")
	}
	groupOf := map[string]counterGroup{}
	for _, g := range counterGroups {
		for _, it := range ls[g.list] {
			if prev, dup := groupOf[it.Attr]; dup {
				return nil, fmt.Errorf("counters.h: %s is in %s and in %s", it.Attr, prev.list, g.list)
			}
			groupOf[it.Attr] = g
		}
	}
	var out []Counter
	prevLine := 0
	for _, c := range consts {
		if c.Enum != statsEnum || strings.HasPrefix(c.Name, "__") {
			continue
		}
		attr, ok := strings.CutPrefix(c.Name, statsPrefix)
		if !ok {
			return nil, fmt.Errorf("line %d: %s in enum %s lacks the prefix %s", c.Line, c.Name, statsEnum, statsPrefix)
		}
		if attr == "UNSPEC" || attr == "PAD" {
			continue
		}
		k := Counter{CName: c.Name, Name: strings.ToLower(attr), Doc: c.Doc}
		if k.Const, err = GoName(c.Name, "INSANE_"); err != nil {
			return nil, err
		}
		if i := len(out); i >= len(all) || all[i] != (ListItem{attr, k.Name}) {
			return nil, fmt.Errorf("line %d: %s is not item %d of counters.h's INSANE_COUNTERS, X(%s, %s, ...)",
				c.Line, c.Name, i+1, attr, k.Name)
		}
		dir := attr
		if rest, ok := strings.CutPrefix(attr, "RX_"); ok {
			k.Rx, dir = true, rest
		}
		g, ok := groupOf[attr]
		named := strings.HasPrefix(dir, "RELAYED_") || strings.HasPrefix(dir, "DROP_") || strings.HasPrefix(dir, "HELD_")
		switch {
		case !ok:
			return nil, fmt.Errorf("line %d: %s is in none of counters.h's groups", c.Line, c.Name)
		case g.word == "" && named:
			return nil, fmt.Errorf("line %d: %s is a mark named as another group's counters", c.Line, c.Name)
		case !strings.HasPrefix(dir, g.word):
			return nil, fmt.Errorf("line %d: %s is in counters.h's %s but not named [RX_]%s*", c.Line, c.Name, g.list, g.word)
		case g.rx >= 0 && (g.rx == 1) != k.Rx:
			return nil, fmt.Errorf("line %d: %s is in counters.h's %s, the other direction's", c.Line, c.Name, g.list)
		}
		switch g.word {
		case "DROP_":
			k.Drop = true
		case "HELD_":
			k.Gauge = true
		case "":
			k.Mark = true
		}
		k.Short = strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(dir, g.word)), "_", "-")
		for _, w := range strings.Split(attr, "_") {
			if initialisms[w] {
				k.Field += w
			} else {
				k.Field += w[:1] + strings.ToLower(w[1:])
			}
		}
		if k.Doc == "" && len(out) > 0 && prevLine == c.Line-1 {
			k.Doc = out[len(out)-1].Doc
		}
		if k.Doc == "" {
			return nil, fmt.Errorf("line %d: %s has no comment above it saying what it counts", c.Line, c.Name)
		}
		prevLine = c.Line
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no counters in enum %s", statsEnum)
	}
	if len(out) != len(all) {
		return nil, fmt.Errorf("counters.h's INSANE_COUNTERS has %d items, enum %s %d counters", len(all), statsEnum, len(out))
	}
	return out, nil
}

// GenerateCounters returns the Go source, in package pkg, of the type
// Stats, one uint64 field per counter of the header src, and of the table
// counters that describes them for the rest of the package; lists is
// kernel/counters.h (see Counters). uapiImport is the import path of the
// generated constants; source names the header in the comments.
func GenerateCounters(pkg, uapiImport, source, src, lists string) ([]byte, error) {
	cs, err := Counters(src, lists)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", source, err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by \"go run ./go/internal/uapigen\" from %s and kernel/counters.h; DO NOT EDIT.\n\n", source)
	fmt.Fprintf(&b, "package %s\n\nimport %q\n\n", pkg, uapiImport)
	doc := "Stats are a device's counters since its creation or the last reset, one per counter attribute of enum " +
		statsEnum + ". Every packet that reaches the device is counted exactly once: " +
		"as relayed, or under the one drop cause that stopped it. The gauges (Counter.Gauge) say what the device " +
		"holds now and are never reset. The marks (Counter.Mark) count what happened to packets that are also " +
		"counted as relayed or dropped, and are not drops. Counters describes the fields."
	for _, l := range wrap(doc, 76) {
		b.WriteString("// " + l + "\n")
	}
	b.WriteString("type Stats struct {\n")
	for i, c := range cs {
		if i > 0 {
			b.WriteString("\n")
		}
		for _, l := range wrap(c.Field+": "+c.Doc+" ("+c.CName+").", 68) {
			b.WriteString("// " + l + "\n")
		}
		fmt.Fprintf(&b, "%s uint64\n", c.Field)
	}
	b.WriteString("}\n\n")
	fmt.Fprintf(&b, "// counters describes the fields of Stats in the order of enum %s.\n", statsEnum)
	b.WriteString("var counters = [...]Counter{\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "{Attr: uapi.%s, Name: %q, Short: %q, Drop: %v, Gauge: %v, Mark: %v, Rx: %v, Doc: %s, field: func(s *Stats) *uint64 { return &s.%s }},\n",
			c.Const, c.Name, c.Short, c.Drop, c.Gauge, c.Mark, c.Rx, strconv.Quote(c.Doc), c.Field)
	}
	b.WriteString("}\n")
	out, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("formatting generated code: %v", err)
	}
	return out, nil
}

// wrap splits s into lines of at most width bytes at spaces.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}
