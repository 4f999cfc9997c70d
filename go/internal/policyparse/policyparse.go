// Package policyparse reads insane policies in the CLI's grammar:
//
//	mode pass | mode drop | mode percent P [seed S] | mode time ON OFF [carrier] [events] |
//	mode burst P B [seed S] | mode gilbert P R [H [K]] [seed S] |
//	mode schedule STEP... [once] [seed S] [carrier] [events]
//
//	STEP := DURATION ACTION [DELAY] [RATE] [DUPLICATE] [CORRUPT]
//	ACTION := pass | drop | percent P | burst P B | gilbert P R [H [K]]
//	DELAY := delay D [jitter J [correlation C]] [distribution uniform|normal|pareto|paretonormal] [reorder]
//	RATE := rate R [overhead N] [buffer B]
//	DUPLICATE := duplicate P
//	CORRUPT := corrupt P [header]
//
// "seed S", "carrier", "events", "limit N", DELAY, RATE, DUPLICATE and
// CORRUPT (these four of a mode other than schedule, whose steps take
// them) may come in any order, before or after the mode, each at most
// once; the words after "delay D" and "rate R" in any order, each at most
// once; DELAY, RATE, DUPLICATE and CORRUPT in a step in any order after its
// action, each at most once. carrier and events need windows of at least
// genl.EdgeMin (time's ON and OFF, every step's DURATION). A seed goes
// with a mode that draws, or with a jitter, duplicate or corrupt. R is a
// rate as tc writes one (genl.ParseRate: 10mbit, 1.5gbit, 100kbps).
//
// It is the one parser of that grammar in Go: the CLI (go/cmd/insane) reads
// the policy words of "insane link add|set" with Mode and Seed, between its
// own keywords, and the CNI plugin (go/cmd/insane-cni) reads a whole policy
// string with Parse. The grammar's cases, shared with the ip(8) plugin, are
// in go/genl/policytest/cases.txt; this package's tests and the CLI's both
// run them.
package policyparse

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/uapi"
)

// An Error is a policy that the grammar refuses. Its message is the one
// the CLI and the ip(8) plugin print.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errorf(format string, a ...any) error {
	return &Error{Msg: fmt.Sprintf(format, a...)}
}

// Match reports whether arg abbreviates keyword, as ip(8) allows.
func Match(arg, keyword string) bool {
	return arg != "" && strings.HasPrefix(keyword, arg)
}

// Parse reads a complete policy from its words: "mode ..." and, with a
// mode that draws, "seed S", with a time or schedule mode "carrier" and
// "events", in any order, each at most once. It cannot tell the direction:
// a receive policy must not have carrier (genl.Policy.ValidateRx).
func Parse(words []string) (genl.Policy, error) {
	var mode, delay *genl.Policy
	var extra genl.Policy
	var seed *uint64
	limit := 0
	seen := map[string]bool{}
	for len(words) > 0 {
		var kw string
		switch {
		case words[0] == "delay" || words[0] == "limit" || ExtraKeyword(words[0]):
			kw = words[0]
		case SubWord(words[0]):
			return genl.Policy{}, StraySubWord(words[0])
		case Match(words[0], "mode"):
			kw = "mode"
		case Match(words[0], "seed"):
			kw = "seed"
		case Match(words[0], "carrier"):
			kw = "carrier"
		case Match(words[0], "events"):
			kw = "events"
		default:
			return genl.Policy{}, errorf("unknown keyword %q in a policy: want mode, seed, delay, rate, duplicate, corrupt, limit, carrier or events", words[0])
		}
		if seen[kw] {
			return genl.Policy{}, errorf("%s given twice", kw)
		}
		seen[kw] = true
		words = words[1:]
		switch kw {
		case "mode":
			p, rest, err := Mode(words)
			if err != nil {
				return genl.Policy{}, err
			}
			mode, words = p, rest
		case "seed":
			s, rest, err := SeedWords(words)
			if err != nil {
				return genl.Policy{}, err
			}
			seed, words = &s, rest
		case "delay":
			d, rest, err := Delay(words)
			if err != nil {
				return genl.Policy{}, err
			}
			delay, words = &d, rest
		case "limit":
			n, rest, err := LimitWords(words)
			if err != nil {
				return genl.Policy{}, err
			}
			limit, words = n, rest
		case "rate", "duplicate", "corrupt":
			rest, err := Extra(kw, words, &extra)
			if err != nil {
				return genl.Policy{}, err
			}
			words = rest
		}
	}
	if err := SetDelay(mode, delay, limit); err != nil {
		return genl.Policy{}, err
	}
	if err := SetExtras(mode, extra); err != nil {
		return genl.Policy{}, err
	}
	if err := CheckSeed(mode, seed); err != nil {
		return genl.Policy{}, err
	}
	if err := CheckFlags(mode, seen["carrier"], seen["events"]); err != nil {
		return genl.Policy{}, err
	}
	if mode == nil {
		return genl.Policy{}, errorf("a policy needs mode pass, drop, percent P, burst P B, gilbert P R, time ON OFF or schedule STEP...")
	}
	p := *mode
	p.Seed = seed
	p.Carrier, p.Events = seen["carrier"], seen["events"]
	return p, nil
}

// ParseString is Parse of the words of s.
func ParseString(s string) (genl.Policy, error) { return Parse(strings.Fields(s)) }

// SeedModes says what a seed goes with, for the messages that refuse one.
const SeedModes = "mode percent, burst, gilbert or schedule, or a jitter, duplicate or corrupt"

// CheckSeed refuses a seed without a mode that draws, a jitter, a
// duplicate or a corrupt. mode is nil when the words have no mode, seed nil
// when they have no seed.
func CheckSeed(mode *genl.Policy, seed *uint64) error {
	if seed == nil {
		return nil
	}
	if mode == nil {
		return errorf("seed goes with %s", SeedModes)
	}
	switch mode.Mode {
	case genl.ModePercent, genl.ModeBurst, genl.ModeGilbert, genl.ModeSchedule:
		return nil
	}
	if mode.Jitter != 0 || mode.Duplicate != 0 || mode.Corrupt != 0 {
		return nil
	}
	return errorf("seed goes with %s, not mode %s", SeedModes, mode.Mode)
}

// The words of the delay stage after "delay D".
var delayWords = []string{"jitter", "correlation", "distribution", "reorder"}

// DelayWord reports whether w is one of the words that follow "delay D"
// (jitter, correlation, distribution, reorder), which mean nothing
// elsewhere.
func DelayWord(w string) bool {
	for _, d := range delayWords {
		if w == d {
			return true
		}
	}
	return false
}

// RateWord reports whether w is one of the words that follow "rate R"
// (overhead, buffer), which mean nothing elsewhere.
func RateWord(w string) bool { return w == "overhead" || w == "buffer" }

// SubWord reports whether w is a word that only follows another: one of
// DelayWord's or RateWord's, or corrupt's "header".
func SubWord(w string) bool { return DelayWord(w) || RateWord(w) || w == "header" }

// ExtraKeyword reports whether w is a keyword of the rate, duplication or
// corruption: rate, duplicate, corrupt (in full: no abbreviation).
func ExtraKeyword(w string) bool { return w == "rate" || w == "duplicate" || w == "corrupt" }

// StraySubWord is the refusal of a SubWord met away from the word it
// follows.
func StraySubWord(w string) error {
	switch w {
	case "jitter":
		return errorf("jitter goes with delay D, before seed and limit: delay D jitter J")
	case "reorder":
		return errorf("reorder goes with delay D, before seed and limit: delay D reorder")
	case "overhead":
		return errorf("overhead goes with rate R, before seed and limit: rate R overhead N")
	case "buffer":
		return errorf("buffer goes with rate R, before seed and limit: rate R buffer B")
	case "header":
		return errorf("header goes with corrupt P, before seed and limit: corrupt P header")
	}
	return errorf("%s goes with delay D jitter J, before seed and limit: delay D jitter J %s", w, map[string]string{
		"correlation": "correlation C", "distribution": "distribution normal"}[w])
}

// Delay reads the words after the keyword "delay": D, then "jitter J",
// "correlation C", "distribution NAME" and "reorder", in any order, each at
// most once. It returns a policy of mode pass holding only the delay
// stage's fields, checked as the kernel checks them, and the words left.
func Delay(args []string) (genl.Policy, []string, error) {
	var p genl.Policy
	if len(args) == 0 {
		return p, nil, errorf("delay needs a duration (50ms, 1s, 250us)")
	}
	d, err := delayDuration("delay", args[0])
	if err != nil {
		return p, nil, err
	}
	if d == 0 {
		return p, nil, errorf("delay %s must be above 0", args[0])
	}
	p.Delay, args = d, args[1:]
	seen := map[string]bool{}
	for len(args) > 0 && DelayWord(args[0]) {
		w := args[0]
		if seen[w] {
			return p, nil, errorf("%s given twice", w)
		}
		seen[w] = true
		args = args[1:]
		if w == "reorder" {
			p.Reorder = true
			continue
		}
		if len(args) == 0 {
			return p, nil, errorf("%s needs a value", w)
		}
		switch w {
		case "jitter":
			if p.Jitter, err = delayDuration("jitter", args[0]); err != nil {
				return p, nil, err
			}
		case "correlation":
			c, err := Percent(args[0])
			if err != nil {
				return p, nil, err
			}
			if math.Round(c*uapi.PercentScale) >= uapi.PercentMax {
				return p, nil, errorf("correlation %q is not below 100", args[0])
			}
			p.Correlation = c
		case "distribution":
			if p.Distribution, err = genl.ParseDistribution(args[0]); err != nil {
				return p, nil, errorf("%s", err.Error())
			}
		}
		args = args[1:]
	}
	if err := p.CheckDelay(false); err != nil {
		return p, nil, errorf("%s", err.Error())
	}
	return p, args, nil
}

// delayDuration reads delay D or jitter J: a duration with a unit.
func delayDuration(word, s string) (time.Duration, error) { return boundedDuration(word, s, "delay") }

// boundedDuration reads a duration with a unit, at most genl.DelayMax: the
// longest of what ("delay", "buffer").
func boundedDuration(word, s, what string) (time.Duration, error) {
	if digits.MatchString(s) || burstDecimal.MatchString(s) {
		return 0, errorf("%s %q needs a unit (50ms, 1s, 250us)", word, s)
	}
	if !durationish.MatchString(s) {
		return 0, errorf("%s %q is not a duration", word, s)
	}
	d, err := time.ParseDuration(s)
	if err != nil || d > genl.DelayMax {
		return 0, errorf("%s %q is above %s, the longest %s", word, s, genl.FormatDuration(genl.DelayMax), what)
	}
	return d, nil
}

// Extra reads the words after the keyword kw, one of ExtraKeyword's, into
// the fields of p it sets: "rate" R then "overhead N" and "buffer B" in any
// order, each at most once (Rate, Overhead, Buffer); "duplicate" P
// (Duplicate); "corrupt" P then "header" (Corrupt, CorruptHeader). Each is
// checked as the kernel checks it. It returns the words left.
func Extra(kw string, args []string, p *genl.Policy) ([]string, error) {
	switch kw {
	case "rate":
		return rateWordsOf(args, p)
	case "duplicate", "corrupt":
		if len(args) == 0 {
			return nil, errorf("%s needs a percentage", kw)
		}
		v, err := Percent(args[0])
		if err != nil {
			return nil, errorf("%s %q is not a percentage from 0.000001 to 100", kw, args[0])
		}
		if v == 0 {
			return nil, errorf("%s %s must be above 0", kw, args[0])
		}
		if math.Round(v*uapi.PercentScale) == 0 {
			return nil, errorf("%s %s is below 0.000001, the least", kw, args[0])
		}
		args = args[1:]
		if kw == "duplicate" {
			p.Duplicate = v
			return args, nil
		}
		p.Corrupt = v
		if len(args) > 0 && args[0] == "header" {
			p.CorruptHeader, args = true, args[1:]
		}
		return args, nil
	}
	return nil, errorf("unknown keyword %q", kw)
}

// rateWordsOf reads R, then "overhead N" and "buffer B", after "rate".
func rateWordsOf(args []string, p *genl.Policy) ([]string, error) {
	if len(args) == 0 {
		return nil, errorf("rate needs a rate (10mbit, 1.5gbit, 100kbps)")
	}
	r, err := genl.ParseRate(args[0])
	if err != nil {
		return nil, errorf("%s", err.Error())
	}
	p.Rate, args = r, args[1:]
	seen := map[string]bool{}
	for len(args) > 0 && RateWord(args[0]) {
		w := args[0]
		if seen[w] {
			return nil, errorf("%s given twice", w)
		}
		seen[w] = true
		if len(args) < 2 {
			return nil, errorf("%s needs a value", w)
		}
		switch w {
		case "overhead":
			n, err := strconv.ParseUint(args[1], 10, 32)
			if !digits.MatchString(args[1]) || err != nil || n > genl.OverheadMax {
				return nil, errorf("overhead %q is not between 0 and %d bytes", args[1], genl.OverheadMax)
			}
			p.Overhead = int(n)
		case "buffer":
			d, err := boundedDuration("buffer", args[1], "buffer")
			if err != nil {
				return nil, err
			}
			if d == 0 {
				return nil, errorf("buffer %s must be above 0", args[1])
			}
			p.Buffer = d
		}
		args = args[2:]
	}
	return args, nil
}

// SetExtras puts the rate, duplication and corruption read by Extra
// (extra's fields, zero when the words have none) on mode, refusing them
// without a mode and on a schedule, whose steps take them.
func SetExtras(mode *genl.Policy, extra genl.Policy) error {
	for _, w := range []struct {
		word, example string
		set           bool
	}{
		{"rate", "rate R", extra.Rate != 0},
		{"duplicate", "duplicate P", extra.Duplicate != 0},
		{"corrupt", "corrupt P", extra.Corrupt != 0},
	} {
		if !w.set {
			continue
		}
		if mode == nil {
			return errorf("%s goes with a mode: mode pass %s", w.word, w.example)
		}
		if mode.Mode == genl.ModeSchedule {
			return errorf("a schedule's %s goes in its steps: 10s pass %s", w.word, map[string]string{
				"rate": "rate 10mbit", "duplicate": "duplicate 1", "corrupt": "corrupt 0.1"}[w.word])
		}
	}
	if mode != nil {
		mode.Rate, mode.Overhead, mode.Buffer = extra.Rate, extra.Overhead, extra.Buffer
		mode.Duplicate, mode.Corrupt, mode.CorruptHeader = extra.Duplicate, extra.Corrupt, extra.CorruptHeader
	}
	return nil
}

// LimitWords reads the word after the keyword "limit", a number of packets
// from 1 to genl.DelayLimitMax, and returns it and the words left.
func LimitWords(args []string) (int, []string, error) {
	if len(args) == 0 {
		return 0, nil, errorf("limit needs a number of packets")
	}
	n, err := strconv.ParseUint(args[0], 10, 32)
	if !digits.MatchString(args[0]) || err != nil || n < 1 || n > genl.DelayLimitMax {
		return 0, nil, errorf("limit %q is not between 1 and %d", args[0], genl.DelayLimitMax)
	}
	return int(n), args[1:], nil
}

// SetDelay puts the delay stage read by Delay (nil when there is none) and
// the limit (0 when there is none) on mode, refusing them without a mode
// and the delay on a schedule, whose steps take it.
func SetDelay(mode, delay *genl.Policy, limit int) error {
	if delay != nil {
		if mode == nil {
			return errorf("delay goes with a mode: mode pass delay D")
		}
		if mode.Mode == genl.ModeSchedule {
			return errorf("a schedule's delay goes in its steps: 10s pass delay 50ms")
		}
		mode.Delay, mode.Jitter, mode.Correlation = delay.Delay, delay.Jitter, delay.Correlation
		mode.Distribution, mode.Reorder = delay.Distribution, delay.Reorder
	}
	if limit != 0 {
		if mode == nil {
			return errorf("limit goes with a mode: mode pass limit N")
		}
		mode.Limit = limit
	}
	return nil
}

// CheckFlags refuses carrier and events without a mode that has windows
// (time or schedule), and with a window shorter than genl.EdgeMin. mode is
// nil when the words have no mode; carrier and events tell which flags the
// words have. The caller then sets them on the policy.
func CheckFlags(mode *genl.Policy, carrier, events bool) error {
	flag := ""
	switch {
	case carrier:
		flag = "carrier"
	case events:
		flag = "events"
	default:
		return nil
	}
	if mode == nil {
		return errorf("%s goes with mode time or schedule", flag)
	}
	if mode.Mode != genl.ModeTime && mode.Mode != genl.ModeSchedule {
		return errorf("%s goes with mode time or schedule, not mode %s", flag, mode.Mode)
	}
	flags, verb := "carrier and events", "need"
	switch {
	case !events:
		flags, verb = "carrier", "needs"
	case !carrier:
		flags = "events"
	}
	short := func(what string, d time.Duration) error {
		return errorf("%s %s windows of at least %s: %s lasts %s", flags, verb,
			genl.FormatDuration(genl.EdgeMin), what, genl.FormatDuration(d))
	}
	if mode.Mode == genl.ModeTime {
		if mode.On < genl.EdgeMin {
			return short("ON", mode.On)
		}
		if mode.Off < genl.EdgeMin {
			return short("OFF", mode.Off)
		}
		return nil
	}
	for i, st := range mode.Steps {
		if st.Duration < genl.EdgeMin {
			return short(fmt.Sprintf("step %d", i+1), st.Duration)
		}
	}
	return nil
}

// Seeded reports whether mode m takes a seed.
func Seeded(m genl.Mode) bool { return CheckSeed(&genl.Policy{Mode: m}, new(uint64)) == nil }

// Mode reads the words after the keyword "mode". It returns the policy,
// without a seed, and the words left.
func Mode(args []string) (*genl.Policy, []string, error) {
	const modes = "pass, drop, percent P, burst P B, gilbert P R, time ON OFF or schedule STEP..."
	if len(args) == 0 {
		return nil, nil, errorf("mode needs %s", modes)
	}
	m := keyword(args[0], "pass", "drop", "percent", "burst", "gilbert", "time", "schedule")
	if m == "" {
		return nil, nil, errorf("unknown mode %q: want pass, drop, percent, burst, gilbert, time or schedule", args[0])
	}
	switch m {
	case "time":
		return timeMode(args[1:])
	case "schedule":
		return schedule(args[1:])
	}
	p, rest, err := action(m, args[1:], "mode ")
	if err != nil {
		return nil, nil, err
	}
	return &p, rest, nil
}

// keyword returns the keyword that arg abbreviates, the first of them in
// order, or "".
func keyword(arg string, keywords ...string) string {
	for _, k := range keywords {
		if Match(arg, k) {
			return k
		}
	}
	return ""
}

// action reads the numbers of the action m (pass, drop, percent, burst or
// gilbert) from args. what prefixes the messages that quote the action's
// words ("mode " at the top level, "" in a step).
func action(m string, args []string, what string) (genl.Policy, []string, error) {
	switch m {
	case "pass":
		return genl.Pass(), args, nil
	case "drop":
		return genl.Drop(), args, nil
	case "percent":
		if len(args) == 0 {
			return genl.Policy{}, nil, errorf("%spercent needs a percentage", what)
		}
		v, err := Percent(args[0])
		if err != nil {
			return genl.Policy{}, nil, err
		}
		return genl.Percent(v, nil), args[1:], nil
	case "burst":
		if len(args) < 2 {
			return genl.Policy{}, nil, errorf("%sburst needs a percentage and a mean burst length", what)
		}
		v, err := Percent(args[0])
		if err != nil {
			return genl.Policy{}, nil, err
		}
		b, err := BurstLength(args[1])
		if err != nil {
			return genl.Policy{}, nil, err
		}
		p := genl.Burst(v, b, nil)
		quoted := what + "burst " + args[0] + " " + args[1]
		if p.PercentUnits() == 0 {
			return genl.Policy{}, nil, errorf("%s: the percentage must be above 0", quoted)
		}
		if min := genl.MinBurstUnits(p.PercentUnits()); p.BurstUnits() < min {
			return genl.Policy{}, nil, errorf("%s: the mean burst length must be at least %s at %s percent",
				quoted, genl.FormatBurstUnits(min), genl.FormatPercentUnits(p.PercentUnits()))
		}
		return p, args[2:], nil
	}
	// gilbert P R [H [K]]
	if len(args) < 2 {
		return genl.Policy{}, nil, errorf("%sgilbert needs P and R percentages", what)
	}
	g := genl.GilbertElliott{LossBad: 100}
	var err error
	if g.P, err = Percent(args[0]); err != nil {
		return genl.Policy{}, nil, err
	}
	if g.R, err = Percent(args[1]); err != nil {
		return genl.Policy{}, nil, err
	}
	if math.Round(g.R*1e6) == 0 {
		return genl.Policy{}, nil, errorf("%sgilbert %s %s: R must be above 0, or a burst would never end", what, args[0], args[1])
	}
	rest := args[2:]
	for _, f := range []*float64{&g.LossBad, &g.LossGood} {
		if len(rest) == 0 || !isPercent(rest[0]) {
			break
		}
		if *f, err = Percent(rest[0]); err != nil {
			return genl.Policy{}, nil, err
		}
		rest = rest[1:]
	}
	return genl.Gilbert(g, nil), rest, nil
}

// timeMode reads ON OFF after "mode time".
func timeMode(args []string) (*genl.Policy, []string, error) {
	if len(args) < 2 {
		return nil, nil, errorf("mode time needs ON and OFF times")
	}
	on, err := Time(args[0])
	if err != nil {
		return nil, nil, err
	}
	off, err := Time(args[1])
	if err != nil {
		return nil, nil, err
	}
	if on+off <= 0 || on+off < on {
		return nil, nil, errorf("mode time %s %s: ON + OFF must be 1 ns to 2^63 - 1 ns", args[0], args[1])
	}
	p := genl.Time(on, off)
	return &p, args[2:], nil
}

// schedule reads STEP... [once] after "mode schedule". A step starts with a
// word that starts with a digit or a point; the steps end at the first
// word that does not.
func schedule(args []string) (*genl.Policy, []string, error) {
	var steps []genl.Step
	var total time.Duration
	for len(args) > 0 && isStep(args[0]) {
		n := len(steps) + 1
		if n > uapi.ScheduleStepsMax {
			return nil, nil, errorf("a schedule has at most %d steps", uapi.ScheduleStepsMax)
		}
		d, err := StepDuration(args[0])
		if err != nil {
			return nil, nil, errorf("step %d: %s", n, err.(*Error).Msg)
		}
		if d <= 0 {
			return nil, nil, errorf("step %d: duration %s must be above 0", n, args[0])
		}
		if total+d < total {
			return nil, nil, errorf("the steps of the schedule last more than 2^63 - 1 ns")
		}
		total += d
		m := ""
		if len(args) > 1 {
			m = keyword(args[1], "pass", "drop", "percent", "burst", "gilbert")
		}
		if m == "" {
			if len(args) == 1 || !isWord(args[1]) {
				return nil, nil, errorf("step %d (%s) needs an action: pass, drop, percent P, burst P B or gilbert P R", n, args[0])
			}
			return nil, nil, errorf("step %d: unknown action %q: want pass, drop, percent, burst or gilbert", n, args[1])
		}
		a, rest, err := action(m, args[2:], "")
		if err != nil {
			return nil, nil, errorf("step %d: %s", n, err.(*Error).Msg)
		}
		// The step's delay, rate, duplicate and corrupt, in any order.
		seen := map[string]bool{}
		for len(rest) > 0 && (rest[0] == "delay" || ExtraKeyword(rest[0])) {
			kw := rest[0]
			if seen[kw] {
				return nil, nil, errorf("step %d: %s given twice", n, kw)
			}
			seen[kw] = true
			var more []string
			if kw == "delay" {
				var dl genl.Policy
				dl, more, err = Delay(rest[1:])
				a.Delay, a.Jitter, a.Correlation, a.Distribution, a.Reorder = dl.Delay, dl.Jitter, dl.Correlation,
					dl.Distribution, dl.Reorder
			} else {
				more, err = Extra(kw, rest[1:], &a)
			}
			if err != nil {
				return nil, nil, errorf("step %d: %s", n, err.(*Error).Msg)
			}
			rest = more
		}
		steps = append(steps, genl.Step{Duration: d, Action: a})
		args = rest
	}
	if len(steps) == 0 {
		return nil, nil, errorf("mode schedule needs steps: DURATION ACTION, such as 30s pass 5s drop")
	}
	// carrier and events end the steps; another step after them would
	// take them, which a step cannot.
	flags := 0
	for flags < len(args) && (args[flags] == "carrier" || args[flags] == "events") {
		flags++
	}
	if flags > 0 && flags < len(args) && isStep(args[flags]) {
		return nil, nil, errorf("a step takes no carrier or events: they follow the last step")
	}
	if len(args) > 2 && args[0] == "limit" && isStep(args[2]) {
		return nil, nil, errorf("a step takes no limit: it follows the last step")
	}
	once := false
	if len(args) > 0 && args[0] == "once" {
		once, args = true, args[1:]
	}
	p := genl.Schedule(once, nil, steps...)
	return &p, args, nil
}

// isStep reports whether s begins a step: its duration starts with a digit
// or a point.
func isStep(s string) bool {
	return s != "" && strings.ContainsRune("0123456789.", rune(s[0]))
}

// isWord reports whether s can be an action keyword: it starts with a
// letter (the next step, "once", "seed" or the command line's next keyword
// do not count as a missing action: see schedule).
func isWord(s string) bool {
	return s != "" && !strings.ContainsRune("0123456789.", rune(s[0])) && !knownAfterSteps[s]
}

// knownAfterSteps are the words that end a schedule's steps.
var knownAfterSteps = map[string]bool{"once": true, "seed": true, "carrier": true, "events": true, "rx": true, "tx": true,
	"delay": true, "limit": true, "jitter": true, "correlation": true, "distribution": true, "reorder": true,
	"rate": true, "overhead": true, "buffer": true, "duplicate": true, "corrupt": true, "header": true}

var decimal = regexp.MustCompile(`^([0-9]+\.?[0-9]*|\.[0-9]+)$`)

// Percent reads a percentage from 0 to 100 with an optional "%".
func Percent(s string) (float64, error) {
	t := strings.TrimSuffix(s, "%")
	if !decimal.MatchString(t) {
		return 0, errorf("%q is not a percentage", s)
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsInf(v, 0) || v > 100 {
		return 0, errorf("percentage %q is not between 0 and 100", s)
	}
	return v, nil
}

// isPercent reports whether s reads as a percentage.
func isPercent(s string) bool {
	_, err := Percent(s)
	return err == nil || decimal.MatchString(strings.TrimSuffix(s, "%"))
}

var burstDecimal = regexp.MustCompile(`^([0-9]+\.?[0-9]*|\.[0-9]+)$`)

// BurstLength reads a mean burst length in packets: a decimal number, at
// most 4294967.295 once rounded to a thousandth.
func BurstLength(s string) (float64, error) {
	if !burstDecimal.MatchString(s) {
		return 0, errorf("%q is not a mean burst length", s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.Round(v*uapi.BurstScale) > math.MaxUint32 {
		return 0, errorf("mean burst length %q is above %s", s, genl.FormatBurstUnits(math.MaxUint32))
	}
	return v, nil
}

// StepDuration reads the duration of a schedule's step: it needs a unit.
func StepDuration(s string) (time.Duration, error) {
	if digits.MatchString(s) || burstDecimal.MatchString(s) {
		return 0, errorf("duration %q needs a unit (500ms, 30s, 1m)", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if strings.Contains(err.Error(), "invalid duration") && durationish.MatchString(s) {
			return 0, errorf("duration %q is longer than 2562047h", s)
		}
		return 0, errorf("%q is not a duration", s)
	}
	return d, nil
}

// durationish matches what time.ParseDuration reads, for telling a
// duration too long for it from a malformed one.
var durationish = regexp.MustCompile(`^(([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

// Tick is the unit of a bare integer time, as in the original article.
const Tick = 10 * time.Millisecond

var digits = regexp.MustCompile(`^[0-9]+$`)

// Time reads a duration with a unit, or a bare integer of ticks.
func Time(s string) (time.Duration, error) {
	if digits.MatchString(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > math.MaxInt64/int64(Tick) {
			return 0, errorf("time %q is too large", s)
		}
		return time.Duration(n) * Tick, nil
	}
	// ParseDuration takes a sign; a time here has none, and is refused
	// with the words of the ip plugin.
	d, err := time.ParseDuration(s)
	if err != nil || strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		return 0, errorf("%q is not a time: use a unit (500ms, 1s, 250us) or an integer of 10 ms ticks", s)
	}
	return d, nil
}

// SeedWords reads the word after the keyword "seed" and returns the seed
// and the words left.
func SeedWords(args []string) (uint64, []string, error) {
	if len(args) == 0 {
		return 0, nil, errorf("seed needs a value")
	}
	s, err := Seed(args[0])
	if err != nil {
		return 0, nil, err
	}
	return s, args[1:], nil
}

// Seed reads a 64-bit seed, in decimal, octal (0 prefix) or hex (0x).
func Seed(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, errorf("seed %q is not a 64-bit unsigned integer", s)
	}
	return v, nil
}
