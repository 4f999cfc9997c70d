package genl

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// A Mode is the kind of a policy.
type Mode uint32

// Policy modes.
const (
	// ModePass relays every packet.
	ModePass Mode = uapi.ModePass
	// ModePercent relays a percentage of the packets.
	ModePercent Mode = uapi.ModePercent
	// ModeTime relays for an ON duration, then drops for an OFF duration,
	// repeating.
	ModeTime Mode = uapi.ModeTime
	// ModeDrop drops every packet.
	ModeDrop Mode = uapi.ModeDrop
	// ModeBurst relays a percentage of the packets and drops the others in
	// bursts of a mean length.
	ModeBurst Mode = uapi.ModeBurst
	// ModeGilbert is the Gilbert-Elliott chain with its raw parameters.
	ModeGilbert Mode = uapi.ModeGilbert
	// ModeSchedule runs steps of other modes, each for its duration.
	ModeSchedule Mode = uapi.ModeSchedule
)

// String returns the CLI keyword of the mode: "pass", "percent", "time",
// "drop", "burst", "gilbert" or "schedule".
func (m Mode) String() string {
	switch m {
	case ModePass:
		return "pass"
	case ModePercent:
		return "percent"
	case ModeTime:
		return "time"
	case ModeDrop:
		return "drop"
	case ModeBurst:
		return "burst"
	case ModeGilbert:
		return "gilbert"
	case ModeSchedule:
		return "schedule"
	}
	return fmt.Sprintf("mode(%d)", uint32(m))
}

// A Policy decides which packets an insane device relays.
type Policy struct {
	Mode Mode

	// Percent is the share of packets relayed in ModePercent and ModeBurst,
	// from 0 to 100. It travels in millionths of a percent, rounded to the
	// nearest.
	Percent float64

	// Seed, in ModePercent, makes the decision for the k-th packet handled
	// since the policy was set a pure function of the seed and k (see
	// Relays); in ModeBurst, ModeGilbert and ModeSchedule likewise, with
	// the chain's state (see Predictor). Nil draws from the kernel's random
	// number generator.
	Seed *uint64

	// On and Off are the relaying and dropping windows of ModeTime.
	On, Off time.Duration

	// Burst is the mean length, in packets, of the loss bursts of
	// ModeBurst: at least 1, and at least (100 - Percent) / Percent. It
	// travels in thousandths of a packet, rounded to the nearest.
	Burst float64

	// Gilbert holds the chain of ModeGilbert.
	Gilbert GilbertElliott

	// Steps are the steps of ModeSchedule, in order, and Once keeps the
	// last step's action once the last step has run, instead of starting
	// over.
	Steps []Step
	Once  bool

	// Carrier, in ModeTime and ModeSchedule of a transmit policy only,
	// takes the device's carrier away during every DOWN window (time
	// mode's OFF window, a schedule's drop steps) and gives it back after,
	// as a cable pulled and plugged back: ip link shows NO-CARRIER, the
	// operational state goes DOWN and the routes through the device are
	// marked linkdown. What is routed to the device while its carrier is
	// off is freed by the kernel before insane sees it, and counted
	// nowhere (see the uapi header's "Carrier flaps").
	Carrier bool

	// Events, in ModeTime and ModeSchedule of either direction, has the
	// kernel send an EventEdge at every window or step boundary (see Edge
	// and Client.WaitEdge).
	//
	// With Carrier or Events, every window (On and Off, each step's
	// Duration) lasts at least EdgeMin.
	Events bool

	// StepsOmitted, in ModeSchedule, is reported instead of Steps in a
	// policy read from an rtnetlink dump whose reader's buffer was too
	// small for the steps (IFLA_INFO_DATA in compact form: see the uapi
	// header's "Long policies"): the number of steps left out, Steps then
	// empty. Client.Device and LinkPolicy read the full policy. A policy
	// with StepsOmitted cannot be set.
	StepsOmitted int

	// Now is reported by the kernel in ModeTime and ModeSchedule: the step
	// in force when the device was read. It is ignored when setting.
	Now *StepNow

	// Delay, above 0, holds what the policy (or a schedule's step) relays
	// for that long before it leaves, at most DelayMax; 0 is no delay. A
	// schedule takes its delays in its steps, never at its top. See the
	// uapi header's "Delay" and Predictor.Delay.
	Delay time.Duration
	// Jitter, with a Delay, spreads each packet's delay around it (see
	// Distribution); 0 is none, and each packet waits Delay exactly.
	Jitter time.Duration
	// Correlation, with a Jitter, is the correlation in percent (0 to
	// below 100, in millionths as Percent) of each packet's delay with the
	// previous one's; it keeps the distribution's mean and spread.
	Correlation float64
	// Distribution, with a Jitter, is the shape of the delays: uniform
	// (the default) from Delay - Jitter to Delay + Jitter, or normal,
	// pareto or paretonormal of mean Delay and standard deviation Jitter.
	Distribution Distribution
	// Reorder, with a Delay, lets each packet leave at its arrival plus its
	// own delay, as netem does; without it no packet of a flow leaves
	// before an earlier one (see Departure).
	Reorder bool
	// Limit is the number of packets of one direction that each CPU holds
	// at most (1 to DelayLimitMax); 0 leaves the kernel's default,
	// DelayLimitDefault. It is the policy's, never a step's.
	Limit int

	// Rate, above 0, sends what the policy (or a schedule's step) relays
	// at that many bits per second (RateMin to RateMax; see ParseRate and
	// FormatRate), one packet after the other on the direction's one
	// serialization clock, before its delay if it has one; 0 is no rate.
	// A schedule takes its rates in its steps, never at its top, as its
	// delays, duplication and corruption. See the uapi header's "Rate,
	// duplication and corruption" and SerializationNs.
	Rate uint64
	// Overhead, with a Rate, is the bytes added to each packet's length
	// on the wire (0 to OverheadMax; 38 counts Ethernet's header, FCS,
	// preamble and gap); 0 counts the IP packet alone.
	Overhead int
	// Buffer, with a Rate, is how long at most a packet waits for the
	// wire (1 ns to DelayMax): one that would wait longer is dropped, and
	// counted in DropQueueFull (RxDropQueueFull). 0 is no bound but Limit.
	Buffer time.Duration
	// Duplicate is the share of the packets, in percent (above 0 to 100,
	// in millionths as Percent), that the policy (or step) sends twice,
	// the copy right behind; 0 is none. See Predictor.Extra.
	Duplicate float64
	// Corrupt is the share of the packets, in percent (above 0 to 100, in
	// millionths as Percent), with one bit flipped past the IP header (its
	// payload: the transport checksum finds it); 0 is none. See
	// CorruptBit.
	Corrupt float64
	// CorruptHeader, with Corrupt, lets the flipped bit fall anywhere
	// from the network header on, the IP header included.
	CorruptHeader bool
}

// The delay stage's bounds, the uapi header's.
const (
	// DelayMax is the longest delay a packet can draw.
	DelayMax time.Duration = uapi.DelayMaxNs
	// DelayLimitDefault is the packets held per CPU and direction when a
	// policy gives no Limit (2^17): a second of delay at 100,000 packets a
	// second, with 31 % to spare.
	DelayLimitDefault = uapi.DelayLimitDefault
	// DelayLimitMax is the largest Limit.
	DelayLimitMax = uapi.DelayLimitMax
)

// A Distribution is the shape of a delay's jitter.
type Distribution uint32

// Distributions (enum insane_distribution).
const (
	// DistUniform draws from Delay - Jitter to Delay + Jitter, evenly.
	DistUniform Distribution = uapi.DistributionUniform
	// DistNormal draws from the normal of mean Delay, deviation Jitter.
	DistNormal Distribution = uapi.DistributionNormal
	// DistPareto draws from a Pareto of shape 3 of mean Delay, deviation
	// Jitter: mostly a little early, at times very late.
	DistPareto Distribution = uapi.DistributionPareto
	// DistParetoNormal is half normal, half Pareto (netem's paretonormal).
	DistParetoNormal Distribution = uapi.DistributionParetonormal
)

// distNames are the CLI's words of the distributions, in enum order.
var distNames = [...]string{"uniform", "normal", "pareto", "paretonormal"}

// String returns the CLI word of the distribution: "uniform", "normal",
// "pareto" or "paretonormal".
func (d Distribution) String() string {
	if int(d) < len(distNames) {
		return distNames[d]
	}
	return fmt.Sprintf("distribution(%d)", uint32(d))
}

// ParseDistribution reads a distribution's CLI word (String's).
func ParseDistribution(s string) (Distribution, error) {
	for i, n := range distNames {
		if s == n {
			return Distribution(i), nil
		}
	}
	return 0, fmt.Errorf("unknown distribution %q: want uniform, normal, pareto or paretonormal", s)
}

// EdgeMin is the shortest window of a policy with Carrier or Events: the
// kernel's INSANE_EDGE_MIN_NS. Shorter windows would flood the system with
// carrier changes or events.
const EdgeMin time.Duration = uapi.EdgeMinNs

// GilbertElliott is the two-state chain of ModeGilbert, in percent, as
// tc-netem's "loss gemodel p r 1-h 1-k" takes it: P is the chance that a
// packet in the good state moves the chain to the bad state, R the chance
// of moving back (above 0), LossBad the chance that a packet is lost in the
// bad state (tc's 1-h; 100 in Gilbert's original model) and LossGood in the
// good state (tc's 1-k; usually 0). Each travels in millionths of a percent.
type GilbertElliott struct {
	P, R, LossBad, LossGood float64
}

// A Step is one step of a schedule: its action, a policy of mode pass,
// drop, percent, burst or gilbert without a seed, and how long it lasts.
type Step struct {
	Duration time.Duration
	Action   Policy
}

// StepNow is where a time or schedule policy stood when it was read.
type StepNow struct {
	// Index is the step in force, from 0; in ModeTime 0 is the ON window
	// and 1 the OFF window.
	Index int
	// Left is the time left in the step; Holds reports instead that the
	// last step of a Once schedule holds for good (Left is then 0).
	Left  time.Duration
	Holds bool
}

// Pass returns a policy that relays every packet.
func Pass() Policy { return Policy{Mode: ModePass} }

// Percent returns a policy that relays percent % of the packets; seed may
// be nil.
func Percent(percent float64, seed *uint64) Policy {
	return Policy{Mode: ModePercent, Percent: percent, Seed: seed}
}

// Time returns a policy that relays for on, then drops for off, repeating.
func Time(on, off time.Duration) Policy {
	return Policy{Mode: ModeTime, On: on, Off: off}
}

// Drop returns a policy that drops every packet.
func Drop() Policy { return Policy{Mode: ModeDrop} }

// Burst returns a policy that relays percent % of the packets and drops the
// others in bursts of a mean length of burst packets; seed may be nil.
func Burst(percent, burst float64, seed *uint64) Policy {
	return Policy{Mode: ModeBurst, Percent: percent, Burst: burst, Seed: seed}
}

// Gilbert returns a policy of the Gilbert-Elliott chain g; seed may be nil.
func Gilbert(g GilbertElliott, seed *uint64) Policy {
	return Policy{Mode: ModeGilbert, Gilbert: g, Seed: seed}
}

// Schedule returns a policy that runs steps in order, starting over after
// the last one, or, with once, keeping the last one's action for good.
func Schedule(once bool, seed *uint64, steps ...Step) Policy {
	return Policy{Mode: ModeSchedule, Steps: steps, Once: once, Seed: seed}
}

// ErrInvalidPolicy is wrapped by the errors of Policy.Validate.
var ErrInvalidPolicy = errors.New("invalid policy")

// Validate checks the policy as the kernel would, so that a bad policy is
// refused before anything is sent.
func (p Policy) Validate() error {
	if err := p.validate(false); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidPolicy, err.Error())
	}
	return nil
}

// ValidateRx is Validate for a receive policy, which cannot have Carrier:
// the carrier cuts what is sent, not what is received (give the receive
// policy the transmit policy's windows to cut both directions).
func (p Policy) ValidateRx() error {
	if p.Carrier {
		return fmt.Errorf("%w: carrier goes with the transmit policy only", ErrInvalidPolicy)
	}
	return p.Validate()
}

// flagWords names the edge flags that p has: "carrier", "events",
// "carrier and events", or "".
func (p Policy) flagWords() string {
	switch {
	case p.Carrier && p.Events:
		return "carrier and events"
	case p.Carrier:
		return "carrier"
	case p.Events:
		return "events"
	}
	return ""
}

// checkWindow refuses a window shorter than EdgeMin in a policy with
// Carrier or Events; what names the window ("ON", "step 2").
func (p Policy) checkWindow(what string, d time.Duration) error {
	if d >= EdgeMin {
		return nil
	}
	flags, verb := p.flagWords(), "need"
	if flags == "carrier" {
		verb = "needs"
	}
	return fmt.Errorf("%s %s windows of at least %s: %s lasts %s", flags, verb, FormatDuration(EdgeMin),
		what, FormatDuration(d))
}

func (p Policy) validate(step bool) error {
	bad := fmt.Errorf
	if p.StepsOmitted != 0 {
		return bad("the policy lacks its %d steps (read from a compact dump): read the device for them", p.StepsOmitted)
	}
	okPercent := func(what string, v float64) error {
		if math.IsNaN(v) || v < 0 || v > 100 {
			return bad("%s %v is not between 0 and 100", what, v)
		}
		return nil
	}
	if p.Mode != ModePercent && p.Mode != ModeBurst && p.Percent != 0 {
		return bad("mode %s takes no percent", p.Mode)
	}
	if p.Mode != ModeTime && (p.On != 0 || p.Off != 0) {
		return bad("mode %s takes no times", p.Mode)
	}
	if p.Mode != ModeBurst && p.Burst != 0 {
		return bad("mode %s takes no burst length", p.Mode)
	}
	if p.Mode != ModeGilbert && p.Gilbert != (GilbertElliott{}) {
		return bad("mode %s takes no Gilbert-Elliott chain", p.Mode)
	}
	if p.Mode != ModeSchedule && (p.Steps != nil || p.Once) {
		return bad("mode %s takes no steps", p.Mode)
	}
	draws := p.Jitter != 0 || p.Duplicate != 0 || p.Corrupt != 0
	if p.Seed != nil && (step || (p.Mode == ModePass || p.Mode == ModeDrop || p.Mode == ModeTime) && !draws) {
		if step {
			return bad("a step takes no seed: the schedule has it")
		}
		return bad("mode %s takes no seed without a jitter, duplicate or corrupt", p.Mode)
	}
	if err := p.CheckDelay(step); err != nil {
		return err
	}
	if err := p.CheckExtras(step); err != nil {
		return err
	}
	if p.Carrier || p.Events {
		if step {
			return bad("a step takes no carrier or events: the schedule has them")
		}
		if p.Mode != ModeTime && p.Mode != ModeSchedule {
			return bad("mode %s takes no carrier or events: they go with mode time or schedule", p.Mode)
		}
	}
	switch p.Mode {
	case ModePass, ModeDrop:
	case ModePercent:
		return okPercent("percent", p.Percent)
	case ModeTime:
		if step {
			return bad("a step cannot be in mode time")
		}
		if p.On < 0 || p.Off < 0 {
			return bad("negative time (on %v, off %v)", p.On, p.Off)
		}
		if p.On+p.Off <= 0 {
			return bad("on + off must be positive")
		}
		if p.Carrier || p.Events {
			if err := p.checkWindow("ON", p.On); err != nil {
				return err
			}
			if err := p.checkWindow("OFF", p.Off); err != nil {
				return err
			}
		}
	case ModeBurst:
		if err := okPercent("percent", p.Percent); err != nil {
			return err
		}
		if p.PercentUnits() == 0 {
			return bad("mode burst needs a percent above 0")
		}
		if math.IsNaN(p.Burst) || p.Burst < 0 || math.Round(p.Burst*uapi.BurstScale) > math.MaxUint32 {
			return bad("mean burst length %v is not between 1 and %s", p.Burst, FormatBurstUnits(math.MaxUint32))
		}
		if min := MinBurstUnits(p.PercentUnits()); p.BurstUnits() < min {
			return bad("mean burst length %v is below %s, the least at %s percent", p.Burst,
				FormatBurstUnits(min), FormatPercentUnits(p.PercentUnits()))
		}
	case ModeGilbert:
		g := p.Gilbert
		for _, f := range []struct {
			name string
			v    float64
		}{{"P", g.P}, {"R", g.R}, {"LossBad", g.LossBad}, {"LossGood", g.LossGood}} {
			if err := okPercent("Gilbert-Elliott "+f.name, f.v); err != nil {
				return err
			}
		}
		if percentUnits(g.R) == 0 {
			return bad("Gilbert-Elliott R must be above 0, or a burst would never end")
		}
	case ModeSchedule:
		if step {
			return bad("a step cannot be a schedule")
		}
		if len(p.Steps) == 0 || len(p.Steps) > uapi.ScheduleStepsMax {
			return bad("a schedule has 1 to %d steps, not %d", uapi.ScheduleStepsMax, len(p.Steps))
		}
		var total time.Duration
		for i, st := range p.Steps {
			if st.Duration <= 0 {
				return bad("step %d: duration %v must be above 0", i+1, st.Duration)
			}
			if p.Carrier || p.Events {
				if err := p.checkWindow(fmt.Sprintf("step %d", i+1), st.Duration); err != nil {
					return err
				}
			}
			if total+st.Duration < total {
				return bad("the steps of the schedule last more than 2^63 - 1 ns")
			}
			total += st.Duration
			if err := st.Action.validate(true); err != nil {
				return bad("step %d: %v", i+1, err)
			}
		}
	default:
		return bad("unknown mode %d", uint32(p.Mode))
	}
	return nil
}

// PercentUnits returns Percent in millionths of a percent, rounded to the
// nearest, as sent to the kernel. It assumes a valid percent.
func (p Policy) PercentUnits() uint32 { return percentUnits(p.Percent) }

func percentUnits(v float64) uint32 { return uint32(math.Round(v * uapi.PercentScale)) }

// BurstUnits returns Burst in thousandths of a packet, rounded to the
// nearest, as sent to the kernel. It assumes a valid burst length.
func (p Policy) BurstUnits() uint32 { return uint32(math.Round(p.Burst * uapi.BurstScale)) }

// MinBurstUnits returns the least mean burst length of ModeBurst, in
// thousandths of a packet, at percentUnits millionths of a percent (above
// 0): 1 packet, or (100 - P) / P packets rounded up to a thousandth if that
// is more.
func MinBurstUnits(percentUnits uint32) uint32 {
	n := (uint64(uapi.PercentMax) - uint64(percentUnits)) * uapi.BurstScale
	min := (n + uint64(percentUnits) - 1) / uint64(percentUnits)
	if min < uapi.BurstScale {
		min = uapi.BurstScale
	}
	return uint32(min)
}

// FormatBurstUnits writes thousandths of a packet as an exact decimal: 2500
// is "2.5".
func FormatBurstUnits(u uint32) string {
	s := strconv.FormatUint(uint64(u/uapi.BurstScale), 10)
	if frac := u % uapi.BurstScale; frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%03d", frac), "0")
	}
	return s
}

// Relays reports whether the k-th packet (k = 0, 1, 2, ...) handled since
// the policy was set is relayed, and whether that is predictable at all: it
// is in ModePass and in ModePercent with a Seed, not in ModeTime nor in
// ModePercent without a seed.
func (p Policy) Relays(k uint64) (relay, predictable bool) {
	switch {
	case p.Mode == ModePass:
		return true, true
	case p.Mode == ModePercent && p.Seed != nil:
		return Relays(*p.Seed, k, p.PercentUnits()), true
	}
	return false, false
}

// String returns the policy in the CLI's grammar, such as
// "mode percent 12.5 seed 42", "mode time 500ms 1s",
// "mode pass delay 20ms rate 100mbit buffer 50ms duplicate 1 corrupt 0.5 header" or
// "mode schedule 30s pass 5s drop once seed 3 carrier events".
func (p Policy) String() string {
	s := p.modeString()
	if p.Carrier {
		s += " carrier"
	}
	if p.Events {
		s += " events"
	}
	return s
}

// modeString is String without the edge flags: the mode, its numbers, the
// delay words, the rate, duplication and corruption words, once, the seed
// and the limit.
func (p Policy) modeString() string {
	var s string
	switch p.Mode {
	case ModePass, ModeDrop, ModePercent, ModeBurst, ModeGilbert:
		s = "mode " + p.action()
	case ModeTime:
		s = "mode time " + FormatDuration(p.On) + " " + FormatDuration(p.Off) + p.delayWords() + p.extraWords()
	case ModeSchedule:
		s = "mode schedule"
		for _, st := range p.Steps {
			s += " " + FormatDuration(st.Duration) + " " + st.Action.action()
		}
		// A valid schedule has no delay, rate, duplication or corruption
		// of its own; an invalid one shows them where they are.
		s += p.delayWords() + p.extraWords()
		if p.Once {
			s += " once"
		}
	default:
		s = p.Mode.String() + p.delayWords() + p.extraWords()
	}
	if p.Seed != nil {
		s += " seed " + strconv.FormatUint(*p.Seed, 10)
	}
	if p.Limit != 0 {
		s += " limit " + strconv.Itoa(p.Limit)
	}
	return s
}

// delayWords writes the delay stage as the grammar has it, with a leading
// space: " delay 50ms jitter 10ms correlation 25 distribution normal
// reorder", each word only when set (the uniform distribution, the
// default, is not written); "" without a delay stage.
func (p Policy) delayWords() string {
	var s string
	if p.Delay != 0 {
		s += " delay " + FormatDuration(p.Delay)
	}
	if p.Jitter != 0 {
		s += " jitter " + FormatDuration(p.Jitter)
	}
	if c := percentUnits(p.Correlation); c != 0 {
		s += " correlation " + FormatPercentUnits(c)
	}
	if p.Distribution != DistUniform {
		s += " distribution " + p.Distribution.String()
	}
	if p.Reorder {
		s += " reorder"
	}
	return s
}

// Equal reports whether p and q are the same policy as the kernel holds
// it: the same mode, numbers in the kernel's units, seed, steps, flags,
// delay stage, rate, duplication and corruption, no Limit being
// DelayLimitDefault. Now, which the kernel
// reports, is not compared. (A Policy with steps cannot be compared with
// ==.)
func (p Policy) Equal(q Policy) bool {
	norm := func(p Policy) string {
		if p.Limit == DelayLimitDefault {
			p.Limit = 0
		}
		return p.String()
	}
	return norm(p) == norm(q)
}

// action writes the mode, its numbers, its delay words, then its rate,
// duplication and corruption words, without "mode", the seed and the
// limit: a schedule step's action.
func (p Policy) action() string {
	var s string
	switch p.Mode {
	case ModePercent:
		s = "percent " + FormatPercentUnits(p.PercentUnits())
	case ModeBurst:
		s = "burst " + FormatPercentUnits(p.PercentUnits()) + " " + FormatBurstUnits(p.BurstUnits())
	case ModeGilbert:
		g := p.Gilbert
		s = "gilbert " + FormatPercentUnits(percentUnits(g.P)) + " " + FormatPercentUnits(percentUnits(g.R))
		bad, good := percentUnits(g.LossBad), percentUnits(g.LossGood)
		if bad != uapi.PercentMax || good != 0 {
			s += " " + FormatPercentUnits(bad)
		}
		if good != 0 {
			s += " " + FormatPercentUnits(good)
		}
	default:
		s = p.Mode.String()
	}
	return s + p.delayWords() + p.extraWords()
}

// FormatPercentUnits writes millionths of a percent as an exact decimal
// percentage: 12500000 is "12.5".
func FormatPercentUnits(u uint32) string {
	s := strconv.FormatUint(uint64(u/uapi.PercentScale), 10)
	if frac := u % uapi.PercentScale; frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%06d", frac), "0")
	}
	return s
}

// FormatDuration writes d exactly in the largest of s, ms, us and ns that
// divides it: 1500ms, 2s, 250us, 7ns.
func FormatDuration(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Second, "s"}, {time.Millisecond, "ms"}, {time.Microsecond, "us"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

// A Device is the state of one insane device.
type Device struct {
	Name  string
	Index int

	// LowerName and LowerIndex name the lower device while the
	// device is attached; they are "" and 0 when it is detached. LowerIndex
	// is the index in the lower's own network namespace.
	LowerName  string
	LowerIndex int

	// Policy is the transmit policy.
	Policy Policy
	// RxPolicy is the receive policy, nil while it is off (the default):
	// then received traffic is not touched at all.
	RxPolicy *Policy
	Stats    Stats
}

// Attached reports whether the device has a lower device.
func (d *Device) Attached() bool { return d.LowerName != "" || d.LowerIndex != 0 }

// An EventType tells what changed on a device.
type EventType uint32

// Event types.
const (
	EventPolicy     EventType = uapi.EventPolicy
	EventAttach     EventType = uapi.EventAttach
	EventDetach     EventType = uapi.EventDetach
	EventResetStats EventType = uapi.EventResetStats
	// EventRxPolicy: the receive policy was set or turned off.
	EventRxPolicy EventType = uapi.EventRxPolicy
	// EventEdge: an edge of a time or schedule policy with Events (see
	// Edge). Its Event has Edge, and its Device only the Index and Name.
	EventEdge EventType = uapi.EventEdge
)

// String returns "policy", "attach", "detach", "reset-stats",
// "rx-policy" or "edge".
func (t EventType) String() string {
	switch t {
	case EventPolicy:
		return "policy"
	case EventAttach:
		return "attach"
	case EventDetach:
		return "detach"
	case EventResetStats:
		return "reset-stats"
	case EventRxPolicy:
		return "rx-policy"
	case EventEdge:
		return "edge"
	}
	return fmt.Sprintf("event(%d)", uint32(t))
}

// An Event is a change of a device, with the device's state after it, or
// an edge of one of its policies.
type Event struct {
	Type EventType
	// Device is the device's state after the change; for EventEdge, whose
	// message carries nothing else, only its Index and Name.
	Device Device
	// Edge is the edge, for EventEdge only (nil otherwise).
	Edge *Edge
}

// A Direction is the transmit or the receive side of a device.
type Direction uint32

// Directions.
const (
	DirectionTx Direction = uapi.DirectionTx
	DirectionRx Direction = uapi.DirectionRx
)

// String returns "tx" or "rx".
func (d Direction) String() string {
	switch d {
	case DirectionTx:
		return "tx"
	case DirectionRx:
		return "rx"
	}
	return fmt.Sprintf("direction(%d)", uint32(d))
}

// An EdgeState is the state a step puts its direction in: EdgeDown for a
// step of mode drop (time mode's OFF window), EdgeUp for any other.
type EdgeState uint32

// Edge states.
const (
	EdgeUp   EdgeState = uapi.EdgeStateUp
	EdgeDown EdgeState = uapi.EdgeStateDown
)

// String returns "up" or "down".
func (s EdgeState) String() string {
	switch s {
	case EdgeUp:
		return "up"
	case EdgeDown:
		return "down"
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// An Edge is a step boundary of a time or schedule policy with Events, as
// the kernel reports it when its timer runs (see the uapi header's
// "Edges"): in time mode, each ON window's end (EdgeDown) and each OFF
// window's end (EdgeUp); in a schedule, every step boundary.
type Edge struct {
	// Direction is the policy's: the transmit policy or the receive one.
	Direction Direction
	// Seq is the edge's number since the policy was set, from 1; a gap
	// means that the timer ran late past edges, and acted once for the
	// latest.
	Seq uint64
	// Step is the step that begins, from 0 (time mode: 0 the ON window, 1
	// the OFF window), Mode its mode and State the state it puts the
	// direction in.
	Step  int
	Mode  Mode
	State EdgeState
	// Time is the edge's nominal instant on CLOCK_MONOTONIC (the policy's
	// epoch plus the durations before it): the datapath decides by the new
	// step from exactly then.
	Time time.Duration
	// Realtime is the same instant on CLOCK_REALTIME, converted by the
	// kernel with its offset between the two clocks when it made the
	// event.
	Realtime time.Time
	// Fired is when the kernel's timer ran, on CLOCK_MONOTONIC: Fired -
	// Time is the kernel's own lateness.
	Fired time.Duration
	// Carrier, only when the transmit policy has Carrier, tells whether
	// the device has carrier after the edge (the lower's state included).
	Carrier *bool
}

// Late returns how long after the edge's nominal time the kernel's timer
// ran.
func (e *Edge) Late() time.Duration { return e.Fired - e.Time }

// Config is a change to a device for ConfigureDevice. Only what is set is
// sent; everything in one Config is applied together or not at all.
type Config struct {
	// Lower attaches the device to the named device of its network
	// namespace, replacing any current lower.
	Lower string
	// Detach detaches the device from its lower. It excludes Lower.
	Detach bool
	// Policy replaces the device's (transmit) policy.
	Policy *Policy
	// RxPolicy sets the device's receive policy, turning the receive
	// direction on if it was off; nil leaves it as it is.
	RxPolicy *Policy
	// RxOff turns the receive policy off. It excludes RxPolicy.
	RxOff bool
	// ResetStats zeroes the device's counters.
	ResetStats bool
}
