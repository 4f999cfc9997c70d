// Package policyparse reads insane policies in the CLI's grammar:
//
//	mode pass | mode percent P [seed S] | mode time ON OFF
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

// Parse reads a complete policy from its words: "mode ..." and, with mode
// percent, "seed S", in either order, each at most once.
func Parse(words []string) (genl.Policy, error) {
	var mode *genl.Policy
	var seed *uint64
	seen := map[string]bool{}
	for len(words) > 0 {
		var kw string
		switch {
		case Match(words[0], "mode"):
			kw = "mode"
		case Match(words[0], "seed"):
			kw = "seed"
		default:
			return genl.Policy{}, errorf("unknown keyword %q in a policy: want mode or seed", words[0])
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
		}
	}
	if err := CheckSeed(mode, seed); err != nil {
		return genl.Policy{}, err
	}
	if mode == nil {
		return genl.Policy{}, errorf("a policy needs mode pass, mode percent P or mode time ON OFF")
	}
	p := *mode
	p.Seed = seed
	return p, nil
}

// ParseString is Parse of the words of s.
func ParseString(s string) (genl.Policy, error) { return Parse(strings.Fields(s)) }

// CheckSeed refuses a seed without mode percent. mode is nil when the
// words have no mode, seed nil when they have no seed.
func CheckSeed(mode *genl.Policy, seed *uint64) error {
	if seed == nil {
		return nil
	}
	if mode == nil {
		return errorf("seed goes with mode percent")
	}
	if mode.Mode != genl.ModePercent {
		return errorf("seed goes with mode percent, not mode %s", mode.Mode)
	}
	return nil
}

// Mode reads the words after the keyword "mode": pass, percent P or time
// ON OFF. It returns the policy, without a seed, and the words left.
func Mode(args []string) (*genl.Policy, []string, error) {
	if len(args) == 0 {
		return nil, nil, errorf("mode needs pass, percent P or time ON OFF")
	}
	var m string
	for _, k := range []string{"pass", "percent", "time"} {
		if Match(args[0], k) {
			m = k
			break
		}
	}
	if m == "" {
		return nil, nil, errorf("unknown mode %q: want pass, percent or time", args[0])
	}
	args = args[1:]
	switch m {
	case "pass":
		p := genl.Pass()
		return &p, args, nil
	case "percent":
		if len(args) == 0 {
			return nil, nil, errorf("mode percent needs a percentage")
		}
		v, err := Percent(args[0])
		if err != nil {
			return nil, nil, err
		}
		p := genl.Percent(v, nil)
		return &p, args[1:], nil
	}
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
