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
)

// String returns the CLI keyword of the mode: "pass", "percent" or "time".
func (m Mode) String() string {
	switch m {
	case ModePass:
		return "pass"
	case ModePercent:
		return "percent"
	case ModeTime:
		return "time"
	}
	return fmt.Sprintf("mode(%d)", uint32(m))
}

// A Policy decides which packets an insane device relays.
type Policy struct {
	Mode Mode

	// Percent is the share of packets relayed in ModePercent, from 0 to 100.
	// It travels in millionths of a percent, rounded to the nearest.
	Percent float64

	// Seed, in ModePercent, makes the decision for the k-th packet handled
	// since the policy was set a pure function of the seed and k (see
	// Relays). Nil draws from the kernel's random number generator.
	Seed *uint64

	// On and Off are the relaying and dropping windows of ModeTime.
	On, Off time.Duration
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

// ErrInvalidPolicy is wrapped by the errors of Policy.Validate.
var ErrInvalidPolicy = errors.New("invalid policy")

// Validate checks the policy as the kernel would, so that a bad policy is
// refused before anything is sent.
func (p Policy) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, a...))
	}
	switch p.Mode {
	case ModePass:
		if p.Percent != 0 || p.Seed != nil || p.On != 0 || p.Off != 0 {
			return bad("mode pass takes no percent, seed or times")
		}
	case ModePercent:
		if math.IsNaN(p.Percent) || p.Percent < 0 || p.Percent > 100 {
			return bad("percent %v is not between 0 and 100", p.Percent)
		}
		if p.On != 0 || p.Off != 0 {
			return bad("mode percent takes no times")
		}
	case ModeTime:
		if p.On < 0 || p.Off < 0 {
			return bad("negative time (on %v, off %v)", p.On, p.Off)
		}
		if p.On+p.Off <= 0 {
			return bad("on + off must be positive")
		}
		if p.Percent != 0 || p.Seed != nil {
			return bad("mode time takes no percent or seed")
		}
	default:
		return bad("unknown mode %d", uint32(p.Mode))
	}
	return nil
}

// PercentUnits returns Percent in millionths of a percent, rounded to the
// nearest, as sent to the kernel. It assumes a valid percent.
func (p Policy) PercentUnits() uint32 {
	return uint32(math.Round(p.Percent * uapi.PercentScale))
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
// "mode percent 12.5 seed 42" or "mode time 500ms 1s".
func (p Policy) String() string {
	switch p.Mode {
	case ModePass:
		return "mode pass"
	case ModePercent:
		s := "mode percent " + FormatPercentUnits(p.PercentUnits())
		if p.Seed != nil {
			s += " seed " + strconv.FormatUint(*p.Seed, 10)
		}
		return s
	case ModeTime:
		return "mode time " + FormatDuration(p.On) + " " + FormatDuration(p.Off)
	}
	return p.Mode.String()
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
)

// String returns "policy", "attach", "detach", "reset-stats" or
// "rx-policy".
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
	}
	return fmt.Sprintf("event(%d)", uint32(t))
}

// An Event is a change of a device, with the device's state after it.
type Event struct {
	Type   EventType
	Device Device
}

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
