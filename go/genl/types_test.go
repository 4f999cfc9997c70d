package genl

import (
	"errors"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

func TestPolicyValidate(t *testing.T) {
	valid := []Policy{
		Pass(), Percent(0, nil), Percent(100, nil), Percent(12.5, ptr(uint64(0))),
		Time(1, 0), Time(0, 1), Time(time.Hour, time.Hour),
	}
	for _, p := range valid {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	invalid := []Policy{
		{Mode: 99}, Percent(100.0000006, nil), Percent(-0.1, nil), {Mode: ModePercent, Percent: nan()},
		Time(0, 0), Time(-1, 5), Time(5, -1), {Mode: ModePass, Percent: 1}, {Mode: ModePass, On: 1},
		{Mode: ModeTime, On: 1, Seed: ptr(uint64(1))},
	}
	for _, p := range invalid {
		if err := p.Validate(); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("%+v: %v", p, err)
		}
	}
}

func TestPercentUnits(t *testing.T) {
	for p, want := range map[float64]uint32{
		0: 0, 100: uapi.PercentMax, 80: 80000000, 12.5: 12500000, 0.0000004: 0, 0.0000005: 1,
		33.3333333: 33333333, 99.9999996: 100000000, 1e-6: 1,
	} {
		if got := Percent(p, nil).PercentUnits(); got != want {
			t.Errorf("PercentUnits(%v) = %d, want %d", p, got, want)
		}
	}
}

func TestPolicyString(t *testing.T) {
	for want, p := range map[string]Policy{
		"mode pass":                     Pass(),
		"mode percent 12.5":             Percent(12.5, nil),
		"mode percent 0.000001 seed 42": Percent(0.000001, ptr(uint64(42))),
		"mode percent 100":              Percent(100, nil),
		"mode time 500ms 1s":            Time(500*time.Millisecond, time.Second),
		"mode time 1500ms 250us":        Time(1500*time.Millisecond, 250*time.Microsecond),
		"mode time 7ns 0s":              Time(7, 0),
		"mode(9)":                       {Mode: 9},
	} {
		if got := p.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestPolicyRelays(t *testing.T) {
	if r, ok := Pass().Relays(5); !r || !ok {
		t.Error("pass")
	}
	if _, ok := Percent(50, nil).Relays(5); ok {
		t.Error("unseeded percent is not predictable")
	}
	if _, ok := Time(1, 1).Relays(5); ok {
		t.Error("time is not predictable by packet number")
	}
	p := Percent(37.5, ptr(uint64(99)))
	for k := uint64(0); k < 1000; k++ {
		r, ok := p.Relays(k)
		if !ok || r != bigRelays(99, k, 37500000) || r != Relays(99, k, 37500000) {
			t.Fatalf("packet %d: %v %v", k, r, ok)
		}
	}
}

func TestStringers(t *testing.T) {
	for want, s := range map[string]interface{ String() string }{
		"pass": ModePass, "percent": ModePercent, "time": ModeTime, "drop": ModeDrop, "burst": ModeBurst, "gilbert": ModeGilbert, "schedule": ModeSchedule, "mode(7)": Mode(7),
		"policy": EventPolicy, "attach": EventAttach, "detach": EventDetach,
		"reset-stats": EventResetStats, "event(0)": EventType(0),
	} {
		if got := s.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", s, got, want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for want, d := range map[string]time.Duration{
		"0s": 0, "1s": time.Second, "90s": 90 * time.Second, "1500ms": 1500 * time.Millisecond,
		"250us": 250 * time.Microsecond, "1001ns": 1001, "10ms": 10 * time.Millisecond,
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := FormatPercentUnits(100000001); got != "100.000001" {
		t.Errorf("FormatPercentUnits = %q", got)
	}
}

func TestPolicyNewModes(t *testing.T) {
	seed := ptr(uint64(3))
	ge := GilbertElliott{P: 1, R: 20, LossBad: 100}
	for want, p := range map[string]Policy{
		"mode drop":                                    Drop(),
		"mode burst 95 5 seed 3":                       Burst(95, 5, seed),
		"mode burst 80 2.5":                            Burst(80, 2.5, nil),
		"mode gilbert 1 20":                            Gilbert(ge, nil),
		"mode gilbert 1 20 100 2":                      Gilbert(GilbertElliott{P: 1, R: 20, LossBad: 100, LossGood: 2}, nil),
		"mode gilbert 1 20 90 seed 3":                  Gilbert(GilbertElliott{P: 1, R: 20, LossBad: 90}, seed),
		"mode schedule 30s pass 5s percent 50 1s drop": Schedule(false, nil, Step{30 * time.Second, Pass()}, Step{5 * time.Second, Percent(50, nil)}, Step{time.Second, Drop()}),
		"mode schedule 1500ms burst 90 3 once seed 3":  Schedule(true, seed, Step{1500 * time.Millisecond, Burst(90, 3, nil)}),
	} {
		if got := p.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", want, err)
		}
		q := p
		q.Now = &StepNow{Index: 1}
		if !p.Equal(q) || p.Equal(Pass()) {
			t.Errorf("%s: Equal", want)
		}
	}
	if MinBurstUnits(20*uapi.PercentScale) != 4000 || MinBurstUnits(30*uapi.PercentScale) != 2334 ||
		MinBurstUnits(95*uapi.PercentScale) != 1000 || MinBurstUnits(uapi.PercentMax) != 1000 {
		t.Error("MinBurstUnits")
	}
	if Burst(20, 3.999, nil).Validate() == nil || Burst(20, 4, nil).Validate() != nil {
		t.Error("the least burst length at 20 percent is 4")
	}
}
