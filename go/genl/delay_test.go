package genl

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

const ms = time.Millisecond

func delayed(p Policy, d, j time.Duration) Policy {
	p.Delay, p.Jitter = d, j
	return p
}

func TestDistribution(t *testing.T) {
	for i, w := range []string{"uniform", "normal", "pareto", "paretonormal"} {
		d, err := ParseDistribution(w)
		if err != nil || d != Distribution(i) || d.String() != w {
			t.Errorf("%s: %v %v %q", w, d, err, d.String())
		}
	}
	if _, err := ParseDistribution("gauss"); err == nil || !strings.Contains(err.Error(), `"gauss"`) {
		t.Errorf("gauss: %v", err)
	}
	if s := Distribution(4).String(); s != "distribution(4)" {
		t.Error(s)
	}
	if uapi.DistributionMax != int(DistParetoNormal) {
		t.Error("a distribution the client does not know")
	}
}

// TestDelayValidate refuses what the uapi header's "Delay" refuses, with
// a message naming the word, and takes the rest.
func TestDelayValidate(t *testing.T) {
	seed := ptr(uint64(5))
	step := func(a Policy) Policy { return Schedule(false, nil, Step{Duration: time.Second, Action: a}) }
	withDist := func(p Policy, d Distribution, c float64) Policy {
		p.Distribution, p.Correlation = d, c
		return p
	}
	limit := func(p Policy, n int) Policy { p.Limit = n; return p }
	reorder := func(p Policy) Policy { p.Reorder = true; return p }
	valid := []Policy{
		delayed(Pass(), 50*ms, 10*ms),
		delayed(Pass(), 1, 0),
		delayed(Pass(), DelayMax, 0),
		delayed(Percent(99, seed), 20*ms, 5*ms),
		delayed(Pass(), 30*ms, 20*ms),
		{Mode: ModePass, Delay: 30 * ms, Jitter: 20 * ms, Seed: seed},
		{Mode: ModeDrop, Delay: 30 * ms, Jitter: 20 * ms, Seed: seed},
		{Mode: ModeTime, On: time.Second, Off: time.Second, Delay: ms, Jitter: ms, Seed: seed},
		delayed(Pass(), 10*ms, 10*ms), // uniform: J = D
		delayed(Pass(), 30*time.Second, 30*time.Second),
		withDist(delayed(Pass(), 10*ms, 100*ms), DistNormal, 0), // clamped at 0
		withDist(delayed(Pass(), 10*ms, 100*ms), DistParetoNormal, 99.999999),
		withDist(delayed(Pass(), 37837, 65536), DistPareto, 0), // D + J z_min = 0
		reorder(delayed(Pass(), ms, 0)),
		reorder(withDist(delayed(Burst(90, 3, seed), ms, ms), DistNormal, 25)),
		limit(Pass(), 1), limit(Pass(), DelayLimitMax), limit(delayed(Drop(), ms, 0), 5),
		limit(Schedule(true, seed, Step{Duration: time.Second, Action: delayed(Pass(), 400*ms, 0)},
			Step{Duration: time.Second, Action: withDist(delayed(Percent(5, nil), ms, ms), DistPareto, 50)}), 7),
		// The largest delay is at most DelayMax: D + (J * z_max >> 16).
		withDist(delayed(Pass(), 0, 0), DistUniform, 0),
		delayed(Pass(), DelayMax-time.Second, time.Second),
	}
	// normal: z_max = 261578 / 65536 (3.99); the largest J with D = 1s.
	jn := time.Duration(((uint64(DelayMax-time.Second)+1)<<16 - 1) / uint64(distNormal[len(distNormal)-1]))
	valid = append(valid, withDist(delayed(Pass(), time.Second, jn), DistNormal, 0))
	for _, p := range valid {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, c := range []struct {
		p    Policy
		want string
	}{
		{delayed(Pass(), -ms, 0), "delay -1ms must be above 0"},
		{delayed(Pass(), DelayMax+1, 0), "delay 60000000001ns is above 60s, the longest delay"},
		{delayed(Pass(), 0, ms), "jitter needs a delay"},
		{withDist(Pass(), 0, 5), "correlation needs a delay and a jitter"},
		{withDist(Pass(), DistNormal, 0), "distribution needs a delay and a jitter"},
		{reorder(Pass()), "reorder needs a delay"},
		{withDist(delayed(Pass(), ms, 0), 0, 5), "correlation needs a jitter"},
		{withDist(delayed(Pass(), ms, 0), DistPareto, 0), "distribution needs a jitter"},
		{delayed(Pass(), ms, -1), "jitter -1ns is negative"},
		{withDist(delayed(Pass(), ms, ms), 4, 0), "unknown distribution 4"},
		{withDist(delayed(Pass(), ms, ms), 0, 100), "correlation 100 is not from 0 to below 100"},
		{withDist(delayed(Pass(), ms, ms), 0, 99.9999996), "correlation 99.9999996 is not"},
		{withDist(delayed(Pass(), ms, ms), 0, -1), "correlation -1 is not"},
		{withDist(delayed(Pass(), ms, ms), 0, nan()), "correlation NaN is not"},
		{delayed(Pass(), 10*ms, 10*ms+1), "jitter 10000001ns with delay 10ms: uniform would draw below 0 (jitter at most the delay)"},
		{withDist(delayed(Pass(), 37837, 65537), DistPareto, 0), "jitter 65537ns with delay 37837ns: pareto would draw below 0 (jitter at most 65536ns)"},
		{delayed(Pass(), 50*time.Second, 10*time.Second+1), "jitter 10000000001ns with delay 50s: uniform would draw up to 60000000001ns, above 60s"},
		{withDist(delayed(Pass(), time.Second, jn+1), DistNormal, 0), "normal would draw up to 60000000"},
		{withDist(delayed(Pass(), 30*time.Second, time.Second), DistPareto, 0), "jitter 1s with delay 30s: pareto would draw up to 65218368530ns, above 60s"},
		{withDist(delayed(Pass(), time.Second, 20*time.Second), DistParetoNormal, 0), "paretonormal would draw up to"},
		{withDist(delayed(Pass(), time.Second, 1<<62), DistNormal, 0), "normal would draw up to 9223372036854775807ns"},
		{delayed(Schedule(false, nil, Step{Duration: time.Second, Action: Pass()}), ms, 0), "a schedule takes no delay of its own"},
		{step(delayed(Pass(), -1, 0)), "step 1: delay -1ns must be above 0"},
		{step(limit(Pass(), 5)), "step 1: a step takes no limit: the schedule has it"},
		{limit(Pass(), -1), "limit -1 is not between 1 and 10000000"},
		{limit(Pass(), DelayLimitMax+1), "limit 10000001 is not between"},
		{Policy{Mode: ModePass, Delay: ms, Seed: seed}, "mode pass takes no seed without a jitter"},
		{Policy{Mode: ModeTime, On: 1, Seed: seed}, "mode time takes no seed without a jitter"},
		{step(Policy{Mode: ModePass, Delay: ms, Jitter: ms, Seed: seed}), "step 1: a step takes no seed"},
	} {
		err := c.p.Validate()
		if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.p, err, c.want)
		}
	}
}

// FormatDuration of a huge value uses ns; the message above for J = 2^62
// reads its own number: make sure the test wants what MaxDelay saturates to.
func TestMaxDelaySaturates(t *testing.T) {
	p := Policy{Mode: ModePass, Delay: time.Second, Jitter: 1 << 62, Distribution: DistNormal}
	if p.MaxDelay() != math.MaxInt64 {
		t.Errorf("MaxDelay %d", p.MaxDelay())
	}
	p = Policy{Mode: ModePass, Delay: time.Second, Jitter: 1 << 62}
	if p.MaxDelay() != time.Second+1<<62 {
		t.Errorf("MaxDelay %d", p.MaxDelay())
	}
}

func TestDelayString(t *testing.T) {
	full := Policy{Mode: ModePercent, Percent: 99, Seed: ptr(uint64(7)), Delay: 20 * ms, Jitter: 5 * ms,
		Correlation: 25.5, Distribution: DistNormal, Reorder: true, Limit: 1000}
	sched := Schedule(false, nil, Step{Duration: 10 * time.Second, Action: Pass()},
		Step{Duration: 2 * time.Second, Action: delayed(Pass(), 400*ms, 0)},
		Step{Duration: 10 * time.Second, Action: Pass()})
	sched.Limit = 200000
	for want, p := range map[string]Policy{
		"mode pass delay 50ms jitter 10ms": delayed(Pass(), 50*ms, 10*ms),
		"mode percent 99 delay 20ms jitter 5ms correlation 25.5 distribution normal reorder seed 7 limit 1000": full,
		"mode schedule 10s pass 2s pass delay 400ms 10s pass limit 200000":                                     sched,
		"mode time 1s 1s delay 1500us":  delayed(Time(time.Second, time.Second), 1500*time.Microsecond, 0),
		"mode pass limit 5":             {Mode: ModePass, Limit: 5},
		"mode gilbert 1 20 90 delay 1s": delayed(Gilbert(GilbertElliott{P: 1, R: 20, LossBad: 90}, nil), time.Second, 0),
	} {
		if got := p.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
	// No limit is the default limit; any other limit differs.
	if !(Policy{Mode: ModePass}).Equal(Policy{Mode: ModePass, Limit: DelayLimitDefault}) {
		t.Error("the default limit is not no limit")
	}
	if (Policy{Mode: ModePass}).Equal(Policy{Mode: ModePass, Limit: 5}) {
		t.Error("limit 5 is no limit")
	}
	if full.Equal(delayed(full, 20*ms, 6*ms)) || !full.Equal(full) {
		t.Error("Equal ignores the jitter")
	}
}

// delayPolicies are policies with every delay word, for the encoders.
var delayPolicies = []Policy{
	delayed(Pass(), 50*ms, 10*ms),
	{Mode: ModePercent, Percent: 99, Seed: ptr(uint64(7)), Delay: 20 * ms, Jitter: 5 * ms, Correlation: 25.5,
		Distribution: DistParetoNormal, Reorder: true, Limit: 1000},
	{Mode: ModeTime, On: time.Second, Off: 2 * time.Second, Delay: time.Second, Reorder: true, Limit: DelayLimitMax},
	{Mode: ModeSchedule, Seed: ptr(uint64(3)), Limit: 1, Steps: []Step{
		{Duration: 10 * time.Second, Action: Pass()},
		{Duration: 2 * time.Second, Action: Policy{Mode: ModeBurst, Percent: 90, Burst: 3, Delay: 400 * ms,
			Jitter: 100 * ms, Distribution: DistNormal, Correlation: 50}},
	}},
}

// TestConfigureDeviceDelay checks the attributes the client sends.
func TestConfigureDeviceDelay(t *testing.T) {
	want := map[uint16][]byte{
		uapi.PolicyAMode: u32(uapi.ModePercent), uapi.PolicyAPercent: u32(99e6), uapi.PolicyASeed: u64(7),
		uapi.PolicyADelayNs: u64(20e6), uapi.PolicyAJitterNs: u64(5e6), uapi.PolicyACorrelation: u32(25500000),
		uapi.PolicyADistribution: u32(uapi.DistributionParetonormal), uapi.PolicyAReorder: {},
		uapi.PolicyALimit: u32(1000),
	}
	wantRx := map[uint16][]byte{
		uapi.PolicyAMode: u32(uapi.ModePass), uapi.PolicyADelayNs: u64(50e6), uapi.PolicyAJitterNs: u64(10e6),
	}
	c := setDeviceClient(t, want, wantRx)
	if err := c.ConfigureDevice("ins0", Config{Policy: &delayPolicies[1], RxPolicy: &delayPolicies[0]}); err != nil {
		t.Fatal(err)
	}
	// A step's delay goes in the step, the limit at the top.
	c, _ = testClient(t, genltest.CheckRequest(testFamily.ID, uapi.CmdSetDevice, netlink.Request|netlink.Acknowledge,
		func(greq genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
			p := attrs(t, attrs(t, greq.Data)[uapi.DeviceAPolicy])
			if string(p[uapi.PolicyALimit]) != string(u32(1)) || p[uapi.PolicyADelayNs] != nil {
				t.Errorf("schedule attributes %v", p)
			}
			ad, err := netlink.NewAttributeDecoder(p[uapi.PolicyASteps])
			if err != nil {
				t.Fatal(err)
			}
			var last []byte
			for ad.Next() {
				last = ad.Bytes()
			}
			st := attrs(t, last)
			if string(st[uapi.PolicyADelayNs]) != string(u64(400e6)) || string(st[uapi.PolicyAJitterNs]) != string(u64(100e6)) ||
				string(st[uapi.PolicyADistribution]) != string(u32(uapi.DistributionNormal)) ||
				string(st[uapi.PolicyACorrelation]) != string(u32(50e6)) || st[uapi.PolicyALimit] != nil {
				t.Errorf("step attributes %v", st)
			}
			return nil, genltest.Error(0)
		}), nil, nil)
	if err := c.ConfigureDevice("ins0", Config{Policy: &delayPolicies[3]}); err != nil {
		t.Fatal(err)
	}
	// What Validate refuses is not sent.
	c = unsentClient(t)
	err := c.ConfigureDevice("ins0", Config{RxPolicy: ptr(delayed(Pass(), 5*ms, 6*ms))})
	if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), "receive policy: invalid policy: jitter 6ms with delay 5ms") {
		t.Errorf("refusal %v", err)
	}
}

// TestDeviceDelay reads the delay stage back from a reply written as the
// kernel writes it (the fake writes the distribution and correlation out
// even at their defaults).
func TestDeviceDelay(t *testing.T) {
	for _, p := range delayPolicies {
		d := Device{Name: "ins0", Index: 3, Policy: p, RxPolicy: &delayPolicies[0]}
		checkDeviceReadBack(t, d)
	}
}

// TestLinkDataDelay round-trips the delay stage through rtnetlink's
// IFLA_INFO_DATA, both directions.
func TestLinkDataDelay(t *testing.T) {
	for i := range delayPolicies {
		p, rx := &delayPolicies[i], &delayPolicies[(i+1)%len(delayPolicies)]
		if rx.Mode == ModeSchedule {
			rx = &delayPolicies[0]
		}
		checkLinkDataRoundTrip(t, p, rx)
	}
	bad := LinkData{Policy: ptr(Policy{Mode: ModePass, Limit: DelayLimitMax + 1})}
	if err := bad.Encode(netlink.NewAttributeEncoder()); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("limit above the most encoded: %v", err)
	}
}
