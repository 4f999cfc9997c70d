package genl

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// The fuzz tests feed arbitrary bytes to every decoder. A decoder must not
// panic, and what it accepts must survive re-encoding by the kernel-side
// encoder unchanged.

func addDeviceSeeds(f *testing.F) {
	f.Add(kernelDevice(f, devAttached, 0))
	f.Add(kernelDevice(f, devDetached, EventDetach))
	f.Add(kernelDevice(f, Device{Name: "p", Index: 1, Policy: Pass()}, EventPolicy))
	f.Add([]byte{})
	f.Add([]byte{4, 0, 6, 0})
	f.Add(nltest.MustMarshalAttributes([]netlink.Attribute{{Type: uapi.DeviceAPolicy, Data: []byte{1, 2, 3}}}))
	f.Add(kernelEdge(f, 7, "ins0", edgeDown))
	f.Add(kernelEdge(f, 8, "ins1", edgeUpRx, netlink.Attribute{Type: uapi.EdgeAMax + 1, Data: []byte{1}}))
}

func FuzzParseDevice(f *testing.F) {
	addDeviceSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, ev, err := parseDevice(b)
		if err != nil {
			return
		}
		d2, ev2, err := parseDevice(kernelDevice(t, *d, ev))
		if err != nil {
			t.Fatalf("re-encoded device does not decode: %v", err)
		}
		if ev != ev2 {
			t.Fatalf("event %d became %d", ev, ev2)
		}
		if diff := cmp.Diff(d, d2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	addDeviceSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := parseEvent(genetlink.Message{Header: genetlink.Header{Command: uapi.CmdEvent}, Data: b})
		if err != nil {
			return
		}
		if ev.Type == 0 || ev.Device.Name == "" || ev.Device.Index == 0 {
			t.Fatalf("accepted an incomplete event %+v", ev)
		}
		if (ev.Type == EventEdge) != (ev.Edge != nil) {
			t.Fatalf("event %s with edge %+v", ev.Type, ev.Edge)
		}
		if ev.Edge != nil {
			// An edge survives the kernel-side encoder unchanged.
			ev2, err := parseEvent(genetlink.Message{Header: genetlink.Header{Command: uapi.CmdEvent},
				Data: kernelEdge(t, ev.Device.Index, ev.Device.Name, *ev.Edge)})
			if err != nil {
				t.Fatalf("re-encoded edge does not decode: %v", err)
			}
			if diff := cmp.Diff(ev, ev2); diff != "" {
				t.Fatalf("round trip (-first +second):\n%s", diff)
			}
		}
		if _, err := parseEvent(genetlink.Message{Header: genetlink.Header{Command: uapi.CmdGetDevice}, Data: b}); err == nil {
			t.Fatal("accepted a GET_DEVICE reply as an event")
		}
	})
}

func FuzzDecodePolicy(f *testing.F) {
	for _, p := range fuzzPolicies() {
		ae := netlink.NewAttributeEncoder()
		kernelPolicy(ae, p)
		b, err := ae.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{8, 0, 2, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			return
		}
		var p Policy
		if err := decodePolicy(ad, &p, nil, nil); err != nil {
			return
		}
		ae := netlink.NewAttributeEncoder()
		kernelPolicy(ae, p)
		var p2 Policy
		if err := decodePolicy(decoderOf(t, ae), &p2, nil, nil); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, p2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		if p.Validate() == nil {
			// A valid decoded policy encodes to the same policy through
			// the client's own encoder.
			ae := netlink.NewAttributeEncoder()
			encodePolicy(ae, p)
			var p3 Policy
			// Now is reported, never sent.
			want := p
			want.Now = nil
			if err := decodePolicy(decoderOf(t, ae), &p3, nil, nil); err != nil || cmp.Diff(want, p3) != "" {
				t.Fatalf("client encoding changed %+v to %+v (%v)", p, p3, err)
			}
		}
	})
}

func FuzzLinkData(f *testing.F) {
	policies := []*Policy{nil, ptr(Pass()), ptr(Percent(50, ptr(uint64(1)))), ptr(Time(7, 8)), &extraPolicies[0], &extraPolicies[1]}
	for i, p := range policies {
		// Each transmit policy, alone and with a receive policy.
		for _, rx := range []*Policy{nil, policies[(i+1)%len(policies)]} {
			m := rtnetlink.LinkMessage{Index: 2, Attributes: &rtnetlink.LinkAttributes{
				Name: "x", Info: &rtnetlink.LinkInfo{Kind: "insane", Data: &LinkData{Policy: p, RxPolicy: rx}},
			}}
			b, err := m.MarshalBinary()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m rtnetlink.LinkMessage
		if err := m.UnmarshalBinary(b); err != nil {
			return
		}
		if m.Attributes == nil || m.Attributes.Info == nil || m.Attributes.Info.Kind != "insane" {
			return
		}
		d, ok := m.Attributes.Info.Data.(*LinkData)
		if !ok || d.Policy == nil || d.Policy.Validate() != nil ||
			(d.RxPolicy != nil && d.RxPolicy.Validate() != nil) {
			return
		}
		if d.RxOff {
			t.Fatalf("a reply decoded with RxOff set: %+v", d)
		}
		out, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("valid decoded link does not encode: %v", err)
		}
		var m2 rtnetlink.LinkMessage
		if err := m2.UnmarshalBinary(out); err != nil {
			t.Fatal(err)
		}
		if d2, ok := m2.Attributes.Info.Data.(*LinkData); !ok || cmp.Diff(d, d2) != "" {
			t.Fatalf("round trip changed %+v", d)
		}
	})
}

// fuzzPolicies are the seeds of the policy fuzzers: one of each mode, with
// and without the optional parts.
func fuzzPolicies() []Policy {
	seed := ptr(uint64(7))
	ge := GilbertElliott{P: 1, R: 20, LossBad: 90, LossGood: 0.5}
	return []Policy{
		Pass(), Percent(12.5, seed), Time(5, 6), Drop(), Burst(95, 5, nil), Burst(80, 2.5, seed),
		Gilbert(ge, nil), Gilbert(GilbertElliott{P: 0, R: 100, LossBad: 100}, seed),
		Schedule(false, nil, Step{time.Second, Pass()}, Step{2 * time.Second, Percent(50, nil)}),
		Schedule(true, seed, Step{time.Millisecond, Burst(90, 3, nil)}, Step{5, Gilbert(ge, nil)}, Step{7, Drop()}),
		{Mode: ModeSchedule, Steps: []Step{{time.Second, Drop()}}, Now: &StepNow{Index: 0, Left: 5}},
		{Mode: ModeTime, On: 1, Off: 2, Now: &StepNow{Index: 1, Holds: true}},
		withFlags(Time(EdgeMin, 2*EdgeMin), true, true),
		withFlags(Schedule(true, seed, Step{EdgeMin, Drop()}, Step{time.Second, Percent(5, nil)}), false, true),
		// The delay stage, rate, duplication and corruption, at the top
		// and in the steps.
		delayPolicies[1], delayPolicies[3],
		extraPolicies[0], extraPolicies[1], extraPolicies[2], extraPolicies[3],
	}
}
