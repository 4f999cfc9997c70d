package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/internal/policyparse"
)

var usageText = `Usage: insane [ OPTIONS ] OBJECT { COMMAND | help }
       insane [ OPTIONS ] show [ NAME ]
where  OBJECT := { link | monitor | help }
       OPTIONS := { -s[tatistics] | -j[son] | -p[retty] | -n[etns] NETNS | -h[elp] }

` + linkUsageText

var linkUsageText = `Usage: insane link add NAME [ lower DEV ] [ [ tx ] POLICY ] [ rx POLICY ]
       insane link set NAME [ lower DEV | nolower ] [ [ tx ] POLICY ] [ rx { POLICY | off } ]
                       [ reset-stats ]
       insane link del NAME
       insane link show [ NAME ]
       insane link help
       insane monitor
where  POLICY := { mode pass | mode drop | mode percent P [ seed S ] |
                  mode time ON OFF [ carrier ] [ events ] |
                  mode burst P B [ seed S ] | mode gilbert P R [ H [ K ] ] [ seed S ] |
                  mode schedule STEP... [ once ] [ seed S ] [ carrier ] [ events ] | seed S }
                 [ DELAY ] [ RATE ] [ duplicate DP ] [ corrupt CP [ header ] ] [ limit N ]
                 (a schedule's DELAY, RATE, duplicate and corrupt go in its steps)
       DELAY := delay D [ jitter J [ correlation C ] ]
                [ distribution { uniform | normal | pareto | paretonormal } ] [ reorder ]
       RATE := rate BITS [ overhead BYTES ] [ buffer WAIT ]
       tx, rx := the direction of the POLICY words that follow: what is sent
                 through the device (the default), or what the hosts routed
                 through it send back, which the receive policy decides
                 (rx off, the default, leaves received traffic untouched)
       P := the percentage of packets relayed, 0 to 100, fractions allowed (12.5)
       ON OFF := relay for ON, then drop for OFF, repeating; with a unit
                 (500ms, 1s, 250us, 100ns) or a bare integer of 10 ms ticks
                 (mode time 50 100 relays 500ms and drops 1s)
       B := the mean length of the loss bursts, in packets (at least 1 and at
            least (100 - P) / P); burst P B loses 100 - P percent on average
       P R [ H [ K ] ] := the Gilbert-Elliott chain, in percent, as tc-netem's
                 gemodel: P good to bad, R bad to good, H and K the loss in the
                 bad and good states (tc's 1-h and 1-k; 100 and 0 by default)
       STEP := DURATION { pass | drop | percent P | burst P B | gilbert P R [ H [ K ] ] }
               [ DELAY ] [ RATE ] [ duplicate DP ] [ corrupt CP [ header ] ]
               each DURATION with a unit (30s, 500ms, 1m); the steps repeat, or
               with once the last one holds (mode schedule 30s pass 5s drop)
       D J := what the policy relays waits D (with a unit: 50ms, 1s, 250us; at
              most 60s) before it leaves, spread by the jitter J: uniform from
              D - J to D + J (J at most D), or normal, pareto or paretonormal
              of mean D and standard deviation J; a packet never leaves before
              an earlier one of its flow, unless reorder (netem's behaviour)
       C := the correlation of each packet's delay with the previous one's, in
            percent (below 100); it keeps the distribution's mean and spread
       BITS := what the policy relays leaves at that rate, one packet after
               the other (one clock per direction), before its delay D; in
               bits per second as tc writes them: bit (or a bare number),
               kbit, mbit, gbit, tbit (x1000), kibit, mibit, gibit, tibit
               (x1024), or in bytes: bps, kbps, ..., tibps; fractions allowed
               (1.5mbit); ` + genl.FormatRate(genl.RateMin) + ` to ` + genl.FormatRate(genl.RateMax) + `
               (mode pass rate 10mbit; rx mode pass rate 2mbit: a slow downlink)
       BYTES := added to each packet's length on the wire, 0 to ` + strconv.Itoa(genl.OverheadMax) + ` (38 counts
                Ethernet's header, FCS, preamble and gap; 0, the default,
                the IP packet alone)
       WAIT := a packet that would wait for the wire longer than WAIT (with a
               unit: 50ms; at most 60s) is dropped, and counted (-s: queue-full)
       DP CP := the percentage of packets sent twice, the copy right behind
                (duplicate), or with one bit flipped past the IP header,
                which the transport checksum then finds (corrupt; with
                header, anywhere from the IP header on); above 0 to 100, to
                a millionth; -s counts them as marked, not as dropped
       N := the packets of a direction each CPU holds at most (default ` + strconv.Itoa(genl.DelayLimitDefault) + `);
            a packet beyond is dropped, and counted (-s)
       S := a 64-bit seed that makes the decisions, the delays, the
            duplicates and the corruptions reproducible
            (mode pass delay 30ms jitter 20ms seed 5, mode pass duplicate 1 seed 3)
       carrier := the device's carrier is off during every drop window (time's
                  OFF, a schedule's drop steps) and on again after, as a cable
                  pulled and plugged back (NO-CARRIER in ip link); tx only
       events := an edge event at every window or step boundary, which
                 insane monitor prints; with carrier or events, every window
                 (ON, OFF, each DURATION) lasts at least ` + genl.FormatDuration(genl.EdgeMin) + `
       DEV := the lower device, which relays what the policy lets through;
              nolower detaches it ("slave DEV" and "noslave", the original
              article's words, are aliases)
       NETNS := a name under /var/run/netns, or a path
       monitor prints a line per event, "[TIME] EVENT" and the device after the
               change as show prints it, and for each edge of a policy with
               events "[TIME] edge 7: ins0: tx step 2 drop down seq 3
               at REALTIME monotonic SECONDS fired +LATE carrier off":
               the direction, the step that begins and its mode, up or down,
               the edge's number, its nominal time on both clocks, how late
               the kernel's timer ran, and the carrier after it (carrier
               policies only); -j prints one JSON object per line
`

// A usageError is a command line that does not follow the grammar.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

type verb int

const (
	verbHelp verb = iota
	verbLinkHelp
	verbAdd
	verbSet
	verbDel
	verbShow
	verbMonitor
)

type options struct {
	stats  bool
	json   bool
	pretty bool
	netns  string // a path, "" for the current namespace
}

// A command is a parsed command line.
type command struct {
	opts options
	verb verb
	name string

	// add and set
	lower    string
	nolower  bool
	policy   *genl.Policy // the mode, without the seed
	seed     *uint64
	rxPolicy *genl.Policy // the receive policy's mode, without the seed
	rxSeed   *uint64
	// The delay words (policyparse.Delay), the rate, duplication and
	// corruption (policyparse.Extra) and the limit of each direction, set
	// on the mode once all the words are read.
	delay, rxDelay *genl.Policy
	extra, rxExtra genl.Policy
	limit, rxLimit int
	rxOff          bool
	resetStats     bool
}

// match reports whether arg abbreviates keyword, as ip(8) allows.
func match(arg, keyword string) bool { return policyparse.Match(arg, keyword) }

// pick returns the first keyword of the list that arg abbreviates; each
// entry is a keyword and its aliases, separated by spaces. Full aliases
// only: abbreviations match the first word.
func pick(arg string, keywords ...string) (string, bool) {
	for _, k := range keywords {
		words := strings.Fields(k)
		for _, alias := range words[1:] {
			if arg == alias {
				return words[0], true
			}
		}
		if match(arg, words[0]) {
			return words[0], true
		}
	}
	return "", false
}

// pickSetting returns the keyword of link add or set that arg names. As in
// pick, each entry is a keyword and its aliases, but here an alias may be
// abbreviated too, so that "s" and "nos" still mean slave and noslave, as
// they did when those were the keywords.
func pickSetting(arg string, keywords ...string) (string, bool) {
	for _, k := range keywords {
		words := strings.Fields(k)
		for _, w := range words {
			if match(arg, w) {
				return words[0], true
			}
		}
	}
	return "", false
}

// parse turns the arguments (without the program name) into a command.
func parse(args []string) (*command, error) {
	c := &command{}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		opt := strings.TrimPrefix(args[0], "-")
		opt = strings.TrimPrefix(opt, "-") // --json as well as -json
		args = args[1:]
		switch {
		case opt == "s" || opt == "stats" || match(opt, "statistics") && len(opt) >= 2:
			c.opts.stats = true
		case opt == "j" || match(opt, "json") && len(opt) >= 2:
			c.opts.json = true
		case opt == "p" || match(opt, "pretty") && len(opt) >= 2:
			c.opts.pretty = true
		case opt == "n" || match(opt, "netns") && len(opt) >= 2:
			if len(args) == 0 {
				return nil, usagef("option -%s needs a network namespace", opt)
			}
			c.opts.netns = netnsPath(args[0])
			args = args[1:]
		case opt == "h" || match(opt, "help") && len(opt) >= 2:
			c.verb = verbHelp
			return c, nil
		default:
			return nil, usagef("unknown option %q", "-"+opt)
		}
	}
	if len(args) == 0 {
		return nil, usagef("missing object")
	}
	obj, ok := pick(args[0], "link", "show list lst", "monitor", "help")
	if !ok {
		return nil, usagef("unknown object %q", args[0])
	}
	args = args[1:]
	switch obj {
	case "help":
		if len(args) > 0 {
			if o, ok := pick(args[0], "link"); ok && o == "link" {
				c.verb = verbLinkHelp
				return c, nil
			}
		}
		c.verb = verbHelp
		return c, nil
	case "show":
		return c, c.parseShow(args)
	case "monitor":
		c.verb = verbMonitor
		if len(args) > 0 {
			if _, ok := pick(args[0], "help"); ok {
				c.verb = verbLinkHelp
				return c, nil
			}
			return nil, usagef("unexpected %q after monitor", args[0])
		}
		return c, nil
	}
	// link
	if len(args) == 0 {
		return c, c.parseShow(nil)
	}
	sub, ok := pick(args[0], "add", "set change", "delete del", "show list lst", "help")
	if !ok {
		return nil, usagef("unknown link command %q", args[0])
	}
	args = args[1:]
	switch sub {
	case "help":
		c.verb = verbLinkHelp
		return c, nil
	case "show":
		return c, c.parseShow(args)
	case "delete":
		c.verb = verbDel
		name, rest, err := parseName("del", args)
		if err != nil {
			return nil, err
		}
		if len(rest) > 0 {
			return nil, usagef("unexpected %q after link del %s", rest[0], name)
		}
		c.name = name
		return c, nil
	case "add":
		c.verb = verbAdd
	case "set":
		c.verb = verbSet
	}
	name, rest, err := parseName(sub, args)
	if err != nil {
		return nil, err
	}
	c.name = name
	if err := c.parseSettings(sub, rest); err != nil {
		return nil, err
	}
	return c, nil
}

// parseName reads NAME, or "dev NAME" / "name NAME" as ip(8) accepts.
func parseName(sub string, args []string) (string, []string, error) {
	if len(args) > 0 && (args[0] == "dev" || args[0] == "name") {
		args = args[1:]
	}
	if len(args) == 0 {
		return "", nil, usagef("link %s needs a device name", sub)
	}
	if err := checkIfName(args[0]); err != nil {
		return "", nil, err
	}
	return args[0], args[1:], nil
}

func checkIfName(name string) error {
	if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t\n:") || name == "." || name == ".." {
		return usagef("%q is not a valid device name", name)
	}
	return nil
}

func (c *command) parseShow(args []string) error {
	c.verb = verbShow
	if len(args) == 0 {
		return nil
	}
	name, rest, err := parseName("show", args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected %q after link show %s", rest[0], name)
	}
	c.name = name
	return nil
}

func (c *command) parseSettings(sub string, args []string) error {
	seen := map[string]bool{}
	// The direction that mode and seed set: tx until "rx" says otherwise.
	rx := false
	for len(args) > 0 {
		if policyparse.SubWord(args[0]) {
			return policyErr(policyparse.StraySubWord(args[0]))
		}
		kw, ok := pickSetting(args[0], "lower slave", "nolower noslave", "mode", "seed", "carrier", "events",
			"reset-stats", "tx", "rx")
		if policyWord(args[0]) {
			kw, ok = args[0], true
		}
		if !ok {
			return usagef("unknown keyword %q for link %s", args[0], sub)
		}
		args = args[1:]
		if kw == "tx" || kw == "rx" {
			rx = kw == "rx"
			if len(args) == 0 {
				if rx {
					return usagef("rx needs a policy (mode ... or seed S) or off")
				}
				return usagef("tx needs a policy (mode ... or seed S)")
			}
			if rx && args[0] == "off" {
				if seen["rx mode"] || seen["rx seed"] || c.rxOff {
					return usagef("rx off given with another receive policy")
				}
				c.rxOff, args = true, args[1:]
				continue
			}
			if w, ok := pickSetting(args[0], "mode", "seed", "carrier", "events"); !ok && !policyWord(args[0]) {
				return usagef("%s needs a policy (mode ... or seed S), not %q", kw, args[0])
			} else if rx && c.rxOff {
				return usagef("rx off given with another receive policy (rx %s)", w)
			}
			continue
		}
		if kw == "carrier" && rx {
			return usagef("carrier goes with the transmit policy only")
		}
		if (kw == "mode" || kw == "seed" || kw == "events" || policyWord(kw)) && rx {
			kw = "rx " + kw
		}
		if seen[kw] {
			return usagef("%s given twice", kw)
		}
		seen[kw] = true
		switch kw {
		case "lower":
			if len(args) == 0 {
				return usagef("lower needs a device name")
			}
			if err := checkIfName(args[0]); err != nil {
				return err
			}
			c.lower, args = args[0], args[1:]
		case "nolower":
			c.nolower = true
		case "carrier", "events", "rx events":
			// Checked against the mode, and set on it, below.
		case "reset-stats":
			if sub == "add" {
				return usagef("reset-stats is for link set")
			}
			c.resetStats = true
		case "seed", "rx seed":
			s, rest, err := policyparse.SeedWords(args)
			if err != nil {
				return policyErr(err)
			}
			if rx {
				c.rxSeed = &s
			} else {
				c.seed = &s
			}
			args = rest
		case "delay", "rx delay":
			p, rest, err := policyparse.Delay(args)
			if err != nil {
				return policyErr(err)
			}
			if rx {
				c.rxDelay = &p
			} else {
				c.delay = &p
			}
			args = rest
		case "limit", "rx limit":
			n, rest, err := policyparse.LimitWords(args)
			if err != nil {
				return policyErr(err)
			}
			if rx {
				c.rxLimit = n
			} else {
				c.limit = n
			}
			args = rest
		case "rate", "rx rate", "duplicate", "rx duplicate", "corrupt", "rx corrupt":
			extra := &c.extra
			if rx {
				extra = &c.rxExtra
			}
			rest, err := policyparse.Extra(strings.TrimPrefix(kw, "rx "), args, extra)
			if err != nil {
				return policyErr(err)
			}
			args = rest
		case "mode", "rx mode":
			p, rest, err := policyparse.Mode(args)
			if err != nil {
				return policyErr(err)
			}
			if rx {
				c.rxPolicy = p
			} else {
				c.policy = p
			}
			args = rest
		}
	}
	if c.lower != "" && c.nolower {
		return usagef("lower and nolower exclude each other")
	}
	// link set may give a seed alone: it then goes with the current
	// percentage (see execute).
	// carrier and events need a mode with windows in the same direction,
	// even on link set: a mode replaces the whole policy.
	for _, d := range []struct {
		prefix          string
		p               *genl.Policy
		seed            *uint64
		carrier, events bool
		delay           *genl.Policy
		extra           genl.Policy
		limit           int
	}{
		{"", c.policy, c.seed, seen["carrier"], seen["events"], c.delay, c.extra, c.limit},
		{"rx ", c.rxPolicy, c.rxSeed, false, seen["rx events"], c.rxDelay, c.rxExtra, c.rxLimit},
	} {
		if err := policyparse.SetDelay(d.p, d.delay, d.limit); err != nil {
			return prefixed(d.prefix, err)
		}
		if err := policyparse.SetExtras(d.p, d.extra); err != nil {
			return prefixed(d.prefix, err)
		}
		if d.seed != nil && (d.p != nil || sub == "add") {
			if err := policyparse.CheckSeed(d.p, d.seed); err != nil {
				return prefixed(d.prefix, err)
			}
		}
		if err := policyparse.CheckFlags(d.p, d.carrier, d.events); err != nil {
			return prefixed(d.prefix, err)
		}
		if d.p != nil {
			d.p.Carrier, d.p.Events = d.carrier, d.events
		}
	}
	if sub == "set" && c.lower == "" && !c.nolower && c.policy == nil && c.seed == nil && !c.resetStats &&
		c.rxPolicy == nil && c.rxSeed == nil && !c.rxOff {
		return usagef("link set %s: nothing to change", c.name)
	}
	return nil
}

// policyWord reports whether w is a policy keyword that is only taken in
// full: delay, limit, rate, duplicate, corrupt.
func policyWord(w string) bool {
	return w == "delay" || w == "limit" || policyparse.ExtraKeyword(w)
}

// prefixed turns the shared parser's refusal into a usage error, its
// message after prefix ("rx ").
func prefixed(prefix string, err error) error {
	var pe *policyparse.Error
	if errors.As(err, &pe) {
		return &usageError{msg: prefix + pe.Msg}
	}
	return err
}

// policyErr turns the shared parser's refusal into a usage error.
func policyErr(err error) error {
	var pe *policyparse.Error
	if errors.As(err, &pe) {
		return &usageError{msg: pe.Msg}
	}
	return err
}

// netnsPath maps a name to ip(8)'s /var/run/netns/NAME; a path is kept.
func netnsPath(s string) string {
	if strings.Contains(s, "/") {
		return s
	}
	return "/var/run/netns/" + s
}
