package genl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// The edge flags (Carrier, Events) and the edge events, against the fakes.

func withFlags(p Policy, carrier, events bool) Policy {
	p.Carrier, p.Events = carrier, events
	return p
}

func TestEdgeFlagsValidate(t *testing.T) {
	ms := 10 * time.Millisecond
	if EdgeMin != ms || EdgeMin != time.Duration(uapi.EdgeMinNs) {
		t.Fatalf("EdgeMin = %v", EdgeMin)
	}
	valid := []Policy{
		withFlags(Time(ms, ms), true, true),
		withFlags(Time(5*time.Second, 2*time.Second), true, false),
		withFlags(Time(time.Hour, ms), false, true),
		withFlags(Schedule(false, nil, Step{ms, Pass()}, Step{ms, Drop()}), true, true),
		withFlags(Schedule(true, ptr(uint64(3)), Step{time.Second, Burst(90, 3, nil)}, Step{ms, Drop()}), false, true),
		withFlags(Schedule(false, nil, Step{time.Second, Percent(50, nil)}), true, false),
	}
	for _, p := range valid {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{withFlags(Pass(), true, false), "mode pass takes no carrier or events: they go with mode time or schedule"},
		{withFlags(Drop(), false, true), "mode drop takes no carrier or events"},
		{withFlags(Percent(5, nil), true, true), "mode percent takes no carrier or events"},
		{withFlags(Burst(95, 5, nil), false, true), "mode burst takes no carrier or events"},
		{withFlags(Gilbert(GilbertElliott{P: 1, R: 20, LossBad: 100}, nil), true, false), "mode gilbert takes no carrier"},
		{withFlags(Time(ms-1, time.Second), true, false), "carrier needs windows of at least 10ms: ON lasts 9999999ns"},
		{withFlags(Time(time.Second, 0), false, true), "events need windows of at least 10ms: OFF lasts 0s"},
		{withFlags(Time(0, time.Second), true, true), "carrier and events need windows of at least 10ms: ON lasts 0s"},
		{withFlags(Schedule(false, nil, Step{time.Second, Pass()}, Step{5 * time.Millisecond, Drop()}), true, false),
			"carrier needs windows of at least 10ms: step 2 lasts 5ms"},
		{Schedule(false, nil, Step{time.Second, withFlags(Drop(), true, false)}),
			"step 1: a step takes no carrier or events: the schedule has them"},
		{withFlags(Schedule(false, nil, Step{time.Second, withFlags(Pass(), false, true)}), false, true),
			"step 1: a step takes no carrier or events"},
	} {
		err := tc.p.Validate()
		if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrInvalidPolicy with %q", tc.p, err, tc.want)
		}
	}
	// Without the flags, short windows stay valid.
	if err := Time(1, 0).Validate(); err != nil {
		t.Error(err)
	}
	// A receive policy takes events, not carrier.
	if err := withFlags(Time(ms, ms), false, true).ValidateRx(); err != nil {
		t.Error(err)
	}
	if err := withFlags(Time(ms, ms), true, false).ValidateRx(); !errors.Is(err, ErrInvalidPolicy) ||
		!strings.Contains(err.Error(), "carrier goes with the transmit policy only") {
		t.Errorf("ValidateRx of carrier: %v", err)
	}
	if err := withFlags(Time(1, 1), false, true).ValidateRx(); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("ValidateRx does not validate: %v", err)
	}
}

func TestEdgeFlagsString(t *testing.T) {
	seed := ptr(uint64(3))
	for want, p := range map[string]Policy{
		"mode time 5s 2s carrier":           withFlags(Time(5*time.Second, 2*time.Second), true, false),
		"mode time 5s 2s events":            withFlags(Time(5*time.Second, 2*time.Second), false, true),
		"mode time 500ms 1s carrier events": withFlags(Time(500*time.Millisecond, time.Second), true, true),
		"mode schedule 30s pass 5s drop once seed 3 carrier events": withFlags(
			Schedule(true, seed, Step{30 * time.Second, Pass()}, Step{5 * time.Second, Drop()}), true, true),
		"mode schedule 1s percent 50 events": withFlags(Schedule(false, nil, Step{time.Second, Percent(50, nil)}), false, true),
	} {
		if got := p.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
		plain := withFlags(p, false, false)
		if p.Equal(plain) || !p.Equal(p) {
			t.Errorf("%s: Equal ignores the flags", want)
		}
		if p.Carrier && p.Events && (p.Equal(withFlags(p, true, false)) || p.Equal(withFlags(p, false, true))) {
			t.Errorf("%s: Equal mixes the flags up", want)
		}
	}
}

func TestEdgeStringers(t *testing.T) {
	for want, s := range map[string]interface{ String() string }{
		"tx": DirectionTx, "rx": DirectionRx, "direction(2)": Direction(2),
		"up": EdgeUp, "down": EdgeDown, "state(2)": EdgeState(2),
		"edge": EventEdge, "rx-policy": EventRxPolicy,
	} {
		if got := s.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", s, got, want)
		}
	}
	if DirectionTx != uapi.DirectionTx || DirectionRx != uapi.DirectionRx || EdgeUp != uapi.EdgeStateUp ||
		EdgeDown != uapi.EdgeStateDown || EventEdge != uapi.EventEdge {
		t.Error("constants differ from the uapi's")
	}
}

// policyAttrsOf encodes p with the client's encoder and returns its
// attributes by type.
func policyAttrsOf(t *testing.T, p Policy) map[uint16][]byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	encodePolicy(ae, p)
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return attrs(t, b)
}

func TestEdgeFlagsEncoding(t *testing.T) {
	ms := 10 * time.Millisecond
	a := policyAttrsOf(t, withFlags(Time(ms, 2*ms), true, true))
	want := map[uint16][]byte{
		uapi.PolicyAMode: u32(uapi.ModeTime), uapi.PolicyAOnNs: u64(1e7), uapi.PolicyAOffNs: u64(2e7),
		uapi.PolicyACarrier: {}, uapi.PolicyAEvents: {},
	}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("time with both flags (-want +got):\n%s", diff)
	}
	a = policyAttrsOf(t, withFlags(Schedule(true, nil, Step{ms, Drop()}), false, true))
	if _, ok := a[uapi.PolicyACarrier]; ok || a[uapi.PolicyAEvents] == nil || len(a[uapi.PolicyAEvents]) != 0 ||
		a[uapi.PolicyAOnce] == nil {
		t.Errorf("schedule with events: %v", a)
	}
	// The flags sit on the schedule, not in its steps.
	for _, st := range stepsAttrs(t, a[uapi.PolicyASteps]) {
		if st[uapi.PolicyACarrier] != nil || st[uapi.PolicyAEvents] != nil {
			t.Errorf("a step carries a flag: %v", st)
		}
	}
	a = policyAttrsOf(t, Time(ms, ms))
	if _, ok := a[uapi.PolicyACarrier]; ok {
		t.Error("carrier sent without the flag")
	}
	if _, ok := a[uapi.PolicyAEvents]; ok {
		t.Error("events sent without the flag")
	}
}

// The flags go out in SET_DEVICE and come back decoded from the reply.
func TestEdgeFlagsConfigureAndDevice(t *testing.T) {
	ms := 10 * time.Millisecond
	tx := withFlags(Time(5*time.Second, 2*time.Second), true, true)
	rx := withFlags(Schedule(false, nil, Step{ms, Drop()}, Step{time.Second, Pass()}), false, true)
	dev := Device{Name: "ins0", Index: 7, LowerName: "veth0", LowerIndex: 3, Policy: tx, RxPolicy: &rx}
	dev.Policy.Now = &StepNow{Index: 1, Left: time.Second}
	c, _ := testClient(t, func(greq genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
		switch greq.Header.Command {
		case uapi.CmdSetDevice:
			a := attrs(t, greq.Data)
			p, r := attrs(t, a[uapi.DeviceAPolicy]), attrs(t, a[uapi.DeviceARxPolicy])
			if p[uapi.PolicyACarrier] == nil || p[uapi.PolicyAEvents] == nil {
				t.Errorf("transmit policy without its flags: %v", p)
			}
			if _, ok := r[uapi.PolicyACarrier]; ok || r[uapi.PolicyAEvents] == nil {
				t.Errorf("receive policy's flags: %v", r)
			}
			return nil, genltest.Error(0)
		case uapi.CmdGetDevice:
			return []genetlink.Message{deviceMsg(t, uapi.CmdGetDevice, dev, 0)}, nil
		}
		t.Fatalf("command %d", greq.Header.Command)
		return nil, nil
	}, nil, nil)
	if err := c.ConfigureDevice("ins0", Config{Policy: &tx, RxPolicy: &rx}); err != nil {
		t.Fatal(err)
	}
	d, err := c.Device("ins0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&dev, d); diff != "" {
		t.Fatalf("device (-want +got):\n%s", diff)
	}
	if !d.Policy.Equal(tx) || !d.RxPolicy.Equal(rx) {
		t.Errorf("decoded policies differ: %s, rx %s", d.Policy, d.RxPolicy)
	}
}

// A receive policy with Carrier is refused before anything is sent, on
// every path that sends one; the fakes fail the test on any request.
func TestEdgeCarrierRxRefused(t *testing.T) {
	ms := 10 * time.Millisecond
	rx := withFlags(Time(ms, ms), true, false)
	c, _ := testClient(t, nil, nil, nil)
	for name, err := range map[string]error{
		"ConfigureDevice": c.ConfigureDevice("ins0", Config{RxPolicy: &rx}),
		"SetLinkRxPolicy": c.SetLinkRxPolicy("ins0", &rx),
		"AddLinkRx":       c.AddLinkRx("ins0", "", nil, &rx),
		"ChangeLink":      c.ChangeLink("ins0", LinkData{RxPolicy: &rx}),
		"LinkData.Encode": (&LinkData{RxPolicy: &rx}).Encode(netlink.NewAttributeEncoder()),
	} {
		if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), "carrier goes with the transmit policy only") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The same policy is fine as the transmit policy.
	if err := (&LinkData{Policy: &rx}).Encode(netlink.NewAttributeEncoder()); err != nil {
		t.Errorf("transmit policy with carrier: %v", err)
	}
}

func TestEdgeFlagsLinkData(t *testing.T) {
	ms := 10 * time.Millisecond
	d := LinkData{
		Policy:   ptr(withFlags(Time(ms, 2*ms), true, true)),
		RxPolicy: ptr(withFlags(Schedule(true, nil, Step{ms, Drop()}), false, true)),
	}
	ae := netlink.NewAttributeEncoder()
	if err := d.Encode(ae); err != nil {
		t.Fatal(err)
	}
	ad := decoderOf(t, ae)
	var got LinkData
	if err := got.Decode(ad); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
}

var (
	edgeDown = Edge{
		Direction: DirectionTx, Seq: 3, Step: 1, Mode: ModeDrop, State: EdgeDown,
		Time: 1234500 * time.Millisecond, Realtime: time.Unix(1796193000, 500000000),
		Fired: 1234500*time.Millisecond + 42*time.Microsecond, Carrier: ptr(false),
	}
	edgeUpRx = Edge{
		Direction: DirectionRx, Seq: 4, Step: 0, Mode: ModePass, State: EdgeUp,
		Time: 1236500 * time.Millisecond, Realtime: time.Unix(1796193002, 500000000),
		Fired: 1236500*time.Millisecond + 7*time.Microsecond,
	}
)

func TestEdgeEventDecoding(t *testing.T) {
	for name, e := range map[string]Edge{"carrier": edgeDown, "no carrier": edgeUpRx, "carrier on": func() Edge {
		e := edgeDown
		e.Carrier, e.State, e.Mode, e.Step = ptr(true), EdgeUp, ModePercent, 5
		return e
	}()} {
		ev, err := parseEvent(edgeMsg(t, 7, "ins0", e))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := &Event{Type: EventEdge, Device: Device{Index: 7, Name: "ins0"}, Edge: &e}
		if diff := cmp.Diff(want, ev); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
		if ev.Edge.Late() != e.Fired-e.Time {
			t.Errorf("%s: Late = %v", name, ev.Edge.Late())
		}
	}
	// Attributes of the nest this client does not know are skipped, as
	// everywhere else in the decoder.
	m := genetlink.Message{Header: genetlink.Header{Command: uapi.CmdEvent},
		Data: kernelEdge(t, 7, "ins0", edgeDown, netlink.Attribute{Type: uapi.EdgeAMax + 1, Data: u32(9)})}
	if ev, err := parseEvent(m); err != nil || cmp.Diff(&edgeDown, ev.Edge) != "" {
		t.Errorf("unknown attribute in the edge: %+v, %v", ev, err)
	}
	// A non-edge event carries no Edge.
	ev, err := parseEvent(deviceMsg(t, uapi.CmdEvent, devAttached, EventPolicy))
	if err != nil || ev.Edge != nil {
		t.Errorf("policy event: %+v, %v", ev, err)
	}
}

// removeAttr returns the attributes b without those of type typ, and with
// typ removed from the nest of type nest too when nest is not 0.
func removeAttr(t *testing.T, b []byte, nest, typ uint16) []byte {
	t.Helper()
	as, err := netlink.UnmarshalAttributes(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []netlink.Attribute
	for _, a := range as {
		switch {
		case nest == 0 && a.Type&0x3fff == typ:
			continue
		case nest != 0 && a.Type&0x3fff == nest:
			a.Data, a.Length = removeAttr(t, a.Data, 0, typ), 0
		}
		out = append(out, a)
	}
	nb, err := netlink.MarshalAttributes(out)
	if err != nil {
		t.Fatal(err)
	}
	return nb
}

func TestEdgeEventMalformed(t *testing.T) {
	full := kernelEdge(t, 7, "ins0", edgeDown)
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"no edge":      {removeAttr(t, full, 0, uapi.DeviceAEdge), "lacks the edge"},
		"no name":      {removeAttr(t, full, 0, uapi.DeviceAIfname), "lacks the index or the name"},
		"no index":     {removeAttr(t, full, 0, uapi.DeviceAIfindex), "lacks the index or the name"},
		"no direction": {removeAttr(t, full, uapi.DeviceAEdge, uapi.EdgeADirection), "lacks the direction"},
		"no seq":       {removeAttr(t, full, uapi.DeviceAEdge, uapi.EdgeASeq), "lacks the sequence number"},
		"no step":      {removeAttr(t, full, uapi.DeviceAEdge, uapi.EdgeAStepIndex), "lacks the step"},
		"no mode":      {removeAttr(t, full, uapi.DeviceAEdge, uapi.EdgeAMode), "lacks the mode"},
		"no state":     {removeAttr(t, full, uapi.DeviceAEdge, uapi.EdgeAState), "lacks the state"},
		"no time":      {removeAttr(t, full, uapi.DeviceAEdge, uapi.EdgeATimeNs), "lacks the time"},
		"no realtime":  {removeAttr(t, full, uapi.DeviceAEdge, uapi.EdgeARealtimeNs), "lacks the real time"},
		"no fired":     {removeAttr(t, full, uapi.DeviceAEdge, uapi.EdgeAFiredNs), "lacks the firing time"},
		// A second nest, whose sequence number is 4 bytes instead of 8.
		"short seq": {append(append([]byte{}, full...), nestOf(t, uapi.DeviceAEdge,
			netlink.Attribute{Type: uapi.EdgeASeq, Data: u32(1)})...), "decoding edge event"},
	} {
		if ev, err := parseEvent(genetlink.Message{Header: genetlink.Header{Command: uapi.CmdEvent}, Data: tc.b}); err == nil ||
			!strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %+v, %v; want an error with %q", name, ev, err, tc.want)
		}
	}
	// Without its carrier, an edge is complete (the policy has no Carrier).
	ev, err := parseEvent(genetlink.Message{Header: genetlink.Header{Command: uapi.CmdEvent},
		Data: removeAttr(t, full, uapi.DeviceAEdge, uapi.EdgeACarrier)})
	if err != nil || ev.Edge.Carrier != nil {
		t.Errorf("edge without carrier: %+v, %v", ev, err)
	}
}

// nestOf encodes a nest of type typ holding as.
func nestOf(t *testing.T, typ uint16, as ...netlink.Attribute) []byte {
	t.Helper()
	inner, err := netlink.MarshalAttributes(as)
	if err != nil {
		t.Fatal(err)
	}
	b, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: typ | netlink.Nested, Data: inner}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventsOnce serves msgs on the first receive, then blocks as a socket
// read would until the connection is closed.
func eventsOnce(conns **[]*fakeEventConn, msgs ...genetlink.Message) genltest.Func {
	served := false
	return func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		if served {
			<-(**conns)[0].closed
			return nil, errors.New("use of closed file")
		}
		served = true
		return msgs, nil
	}
}

func TestSubscribeEdges(t *testing.T) {
	var conns *[]*fakeEventConn
	c, conns := testClient(t, nil, nil, eventsOnce(&conns,
		deviceMsg(t, uapi.CmdEvent, devAttached, EventPolicy),
		edgeMsg(t, 7, "ins0", edgeDown),
		edgeMsg(t, 8, "ins1", edgeUpRx),
	))
	s, err := c.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []Event{
		{Type: EventPolicy, Device: devAttached},
		{Type: EventEdge, Device: Device{Index: 7, Name: "ins0"}, Edge: &edgeDown},
		{Type: EventEdge, Device: Device{Index: 8, Name: "ins1"}, Edge: &edgeUpRx},
	}
	for i, w := range want {
		select {
		case ev := <-s.Events():
			if diff := cmp.Diff(w, ev); diff != "" {
				t.Fatalf("event %d (-want +got):\n%s", i, diff)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not delivered", i)
		}
	}
}

func TestWaitEdge(t *testing.T) {
	other := edgeDown // the right device's edges in the wrong state, and other devices'
	other.State, other.Seq = EdgeUp, 2
	want := edgeUpRx
	want.State, want.Direction, want.Seq = EdgeDown, DirectionRx, 9
	var conns *[]*fakeEventConn
	c, conns := testClient(t, nil, nil, eventsOnce(&conns,
		deviceMsg(t, uapi.CmdEvent, devAttached, EventPolicy), // ins0, not an edge
		edgeMsg(t, 7, "ins0", other),                          // ins0, up
		edgeMsg(t, 8, "ins1", edgeDown),                       // ins1, down
		edgeMsg(t, 7, "ins0", want),                           // this one: ins0, down, in rx
		edgeMsg(t, 7, "ins0", edgeDown),
	))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := c.WaitEdge(ctx, "ins0", EdgeDown)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&want, e); diff != "" {
		t.Fatalf("edge (-want +got):\n%s", diff)
	}
	if len(*conns) != 1 || cmp.Diff([]uint32{11}, (*conns)[0].joined) != "" {
		t.Fatalf("joined groups: %+v", *conns)
	}
	select {
	case <-(*conns)[0].closed:
	case <-time.After(5 * time.Second):
		t.Fatal("WaitEdge left its subscription open")
	}
}

func TestSubscriptionWaitEdgeInTurn(t *testing.T) {
	up := edgeDown
	up.State, up.Seq, up.Step, up.Mode, up.Carrier = EdgeUp, 4, 0, ModePass, ptr(true)
	var conns *[]*fakeEventConn
	c, conns := testClient(t, nil, nil, eventsOnce(&conns,
		edgeMsg(t, 7, "ins0", edgeDown),
		edgeMsg(t, 7, "ins0", up),
	))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	down, err := s.WaitEdge(ctx, "ins0", EdgeDown)
	if err != nil || down.Seq != 3 {
		t.Fatalf("down: %+v, %v", down, err)
	}
	next, err := s.WaitEdge(ctx, "ins0", EdgeUp)
	if err != nil || cmp.Diff(&up, next) != "" {
		t.Fatalf("up: %+v, %v", next, err)
	}
	// Nothing else comes: WaitEdge ends with its own context.
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if e, err := s.WaitEdge(short, "ins0", EdgeDown); !errors.Is(err, context.DeadlineExceeded) || e != nil {
		t.Fatalf("after the last edge: %+v, %v", e, err)
	}
	if ctx.Err() != nil {
		t.Fatal("the subscription's context ended")
	}
}

func TestWaitEdgeEnds(t *testing.T) {
	t.Run("context", func(t *testing.T) {
		var conns *[]*fakeEventConn
		c, conns := testClient(t, nil, nil, eventsOnce(&conns, edgeMsg(t, 8, "ins1", edgeDown)))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := c.WaitEdge(ctx, "ins0", EdgeDown)
			done <- err
		}()
		select {
		case err := <-done:
			t.Fatalf("WaitEdge returned %v before its context ended", err)
		case <-time.After(50 * time.Millisecond):
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("WaitEdge = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("WaitEdge did not return when its context ended")
		}
	})
	t.Run("receive error", func(t *testing.T) {
		c, _ := testClient(t, nil, nil, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
			return nil, errors.New("no buffer space available")
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.WaitEdge(ctx, "ins0", EdgeUp); err == nil || !strings.Contains(err.Error(), "receive events") {
			t.Fatalf("WaitEdge = %v", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		var conns *[]*fakeEventConn
		c, conns := testClient(t, nil, nil, eventsOnce(&conns))
		s, err := c.Subscribe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		if _, err := s.WaitEdge(context.Background(), "ins0", EdgeUp); !errors.Is(err, ErrSubscriptionClosed) {
			t.Fatalf("WaitEdge after Close = %v", err)
		}
	})
	t.Run("subscription context", func(t *testing.T) {
		var conns *[]*fakeEventConn
		c, conns := testClient(t, nil, nil, eventsOnce(&conns))
		ctx, cancel := context.WithCancel(context.Background())
		s, err := c.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		cancel()
		if _, err := s.WaitEdge(context.Background(), "ins0", EdgeUp); !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitEdge after the subscription's context = %v", err)
		}
	})
	t.Run("malformed edge", func(t *testing.T) {
		bad := genetlink.Message{Header: genetlink.Header{Command: uapi.CmdEvent},
			Data: removeAttr(t, kernelEdge(t, 7, "ins0", edgeDown), uapi.DeviceAEdge, uapi.EdgeASeq)}
		var conns *[]*fakeEventConn
		c, conns := testClient(t, nil, nil, eventsOnce(&conns, bad))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.WaitEdge(ctx, "ins0", EdgeDown); err == nil || !strings.Contains(err.Error(), "lacks the sequence number") {
			t.Fatalf("WaitEdge = %v", err)
		}
	})
}
