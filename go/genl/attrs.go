package genl

import (
	"errors"
	"fmt"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// encodePolicy writes the attributes of enum insane_policy_attr for p,
// which must be valid: the mode and exactly that mode's attributes.
func encodePolicy(ae *netlink.AttributeEncoder, p Policy) {
	ae.Uint32(uapi.PolicyAMode, uint32(p.Mode))
	switch p.Mode {
	case ModePercent:
		ae.Uint32(uapi.PolicyAPercent, p.PercentUnits())
	case ModeTime:
		ae.Uint64(uapi.PolicyAOnNs, uint64(p.On))
		ae.Uint64(uapi.PolicyAOffNs, uint64(p.Off))
	case ModeBurst:
		ae.Uint32(uapi.PolicyAPercent, p.PercentUnits())
		ae.Uint32(uapi.PolicyABurst, p.BurstUnits())
	case ModeGilbert:
		g := p.Gilbert
		ae.Uint32(uapi.PolicyAGeP, percentUnits(g.P))
		ae.Uint32(uapi.PolicyAGeR, percentUnits(g.R))
		ae.Uint32(uapi.PolicyAGeLossBad, percentUnits(g.LossBad))
		ae.Uint32(uapi.PolicyAGeLossGood, percentUnits(g.LossGood))
	case ModeSchedule:
		ae.Nested(uapi.PolicyASteps, func(sae *netlink.AttributeEncoder) error {
			for _, st := range p.Steps {
				st := st
				sae.Nested(uapi.StepsAStep, func(nae *netlink.AttributeEncoder) error {
					encodePolicy(nae, st.Action)
					nae.Uint64(uapi.PolicyADurationNs, uint64(st.Duration))
					return nil
				})
			}
			return nil
		})
		if p.Once {
			ae.Flag(uapi.PolicyAOnce, true)
		}
	}
	encodeDelay(ae, p)
	encodeExtras(ae, p)
	if p.Seed != nil {
		ae.Uint64(uapi.PolicyASeed, *p.Seed)
	}
	if p.Carrier {
		ae.Flag(uapi.PolicyACarrier, true)
	}
	if p.Events {
		ae.Flag(uapi.PolicyAEvents, true)
	}
}

// encodeDelay writes the delay stage's attributes and the limit, each only
// when set (the uniform distribution is the kernel's default).
func encodeDelay(ae *netlink.AttributeEncoder, p Policy) {
	if p.Delay != 0 {
		ae.Uint64(uapi.PolicyADelayNs, uint64(p.Delay))
	}
	if p.Jitter != 0 {
		ae.Uint64(uapi.PolicyAJitterNs, uint64(p.Jitter))
	}
	if c := percentUnits(p.Correlation); c != 0 {
		ae.Uint32(uapi.PolicyACorrelation, c)
	}
	if p.Distribution != DistUniform {
		ae.Uint32(uapi.PolicyADistribution, uint32(p.Distribution))
	}
	if p.Reorder {
		ae.Flag(uapi.PolicyAReorder, true)
	}
	if p.Limit != 0 {
		ae.Uint32(uapi.PolicyALimit, uint32(p.Limit))
	}
}

// encodeExtras writes the rate, duplication and corruption attributes,
// each only when set (no overhead is the kernel's default).
func encodeExtras(ae *netlink.AttributeEncoder, p Policy) {
	if p.Rate != 0 {
		ae.Uint64(uapi.PolicyARate, p.Rate)
	}
	if p.Overhead != 0 {
		ae.Uint32(uapi.PolicyAOverhead, uint32(p.Overhead))
	}
	if p.Buffer != 0 {
		ae.Uint64(uapi.PolicyABufferNs, uint64(p.Buffer))
	}
	if u := p.DuplicateUnits(); u != 0 {
		ae.Uint32(uapi.PolicyADuplicate, u)
	}
	if u := p.CorruptUnits(); u != 0 {
		ae.Uint32(uapi.PolicyACorrupt, u)
	}
	if p.CorruptHeader {
		ae.Flag(uapi.PolicyACorruptHeader, true)
	}
}

var errNoMode = errors.New("policy without a mode")

// decodePolicy reads the attributes of enum insane_policy_attr. With rx
// non-nil, a nested receive policy (INSANE_POLICY_A_RX of IFLA_INFO_DATA)
// is decoded into *rx; with dur non-nil (a schedule's step), the step's
// duration into *dur.
func decodePolicy(ad *netlink.AttributeDecoder, p *Policy, rx **Policy, dur *time.Duration) error {
	var (
		haveMode, haveIndex, haveLeft bool
		index                         int
		left                          time.Duration
	)
	for ad.Next() {
		switch ad.Type() {
		case uapi.PolicyARx:
			if rx == nil {
				continue
			}
			var r Policy
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				return decodePolicy(nad, &r, nil, nil)
			})
			*rx = &r
		case uapi.PolicyAMode:
			p.Mode = Mode(ad.Uint32())
			haveMode = true
		case uapi.PolicyAPercent:
			p.Percent = float64(ad.Uint32()) / uapi.PercentScale
		case uapi.PolicyASeed:
			s := ad.Uint64()
			p.Seed = &s
		case uapi.PolicyAOnNs:
			p.On = nsDuration(ad.Uint64())
		case uapi.PolicyAOffNs:
			p.Off = nsDuration(ad.Uint64())
		case uapi.PolicyABurst:
			p.Burst = float64(ad.Uint32()) / uapi.BurstScale
		case uapi.PolicyAGeP:
			p.Gilbert.P = float64(ad.Uint32()) / uapi.PercentScale
		case uapi.PolicyAGeR:
			p.Gilbert.R = float64(ad.Uint32()) / uapi.PercentScale
		case uapi.PolicyAGeLossBad:
			p.Gilbert.LossBad = float64(ad.Uint32()) / uapi.PercentScale
		case uapi.PolicyAGeLossGood:
			p.Gilbert.LossGood = float64(ad.Uint32()) / uapi.PercentScale
		case uapi.PolicyASteps:
			ad.Nested(func(sad *netlink.AttributeDecoder) error {
				for sad.Next() {
					if sad.Type() != uapi.StepsAStep {
						continue
					}
					var st Step
					sad.Nested(func(nad *netlink.AttributeDecoder) error {
						return decodePolicy(nad, &st.Action, nil, &st.Duration)
					})
					p.Steps = append(p.Steps, st)
				}
				return sad.Err()
			})
		case uapi.PolicyAStepsOmitted:
			p.StepsOmitted = int(ad.Uint32())
		case uapi.PolicyAOnce:
			p.Once = true
		case uapi.PolicyACarrier:
			p.Carrier = true
		case uapi.PolicyAEvents:
			p.Events = true
		case uapi.PolicyAStepIndex:
			index, haveIndex = int(ad.Uint32()), true
		case uapi.PolicyAStepLeftNs:
			left, haveLeft = nsDuration(ad.Uint64()), true
		case uapi.PolicyADelayNs:
			p.Delay = nsDuration(ad.Uint64())
		case uapi.PolicyAJitterNs:
			p.Jitter = nsDuration(ad.Uint64())
		case uapi.PolicyACorrelation:
			p.Correlation = float64(ad.Uint32()) / uapi.PercentScale
		case uapi.PolicyADistribution:
			p.Distribution = Distribution(ad.Uint32())
		case uapi.PolicyAReorder:
			p.Reorder = true
		case uapi.PolicyALimit:
			p.Limit = int(ad.Uint32())
		case uapi.PolicyARate:
			p.Rate = ad.Uint64()
		case uapi.PolicyAOverhead:
			p.Overhead = int(ad.Uint32())
		case uapi.PolicyABufferNs:
			p.Buffer = nsDuration(ad.Uint64())
		case uapi.PolicyADuplicate:
			p.Duplicate = float64(ad.Uint32()) / uapi.PercentScale
		case uapi.PolicyACorrupt:
			p.Corrupt = float64(ad.Uint32()) / uapi.PercentScale
		case uapi.PolicyACorruptHeader:
			p.CorruptHeader = true
		case uapi.PolicyADurationNs:
			if dur != nil {
				*dur = nsDuration(ad.Uint64())
			}
		}
	}
	if haveIndex {
		p.Now = &StepNow{Index: index, Left: left, Holds: !haveLeft}
	}
	if err := ad.Err(); err != nil {
		return err
	}
	if !haveMode {
		return errNoMode
	}
	return nil
}

// nsDuration converts kernel nanoseconds, saturating what a Duration cannot
// hold.
func nsDuration(ns uint64) time.Duration {
	if ns > 1<<63-1 {
		return 1<<63 - 1
	}
	return time.Duration(ns)
}

// decodeStats reads the attributes of enum insane_stats_attr; it skips
// the padding and counters this package does not know.
func decodeStats(ad *netlink.AttributeDecoder, s *Stats) error {
	for ad.Next() {
		if c, ok := counterFor(ad.Type()); ok {
			c.Set(s, ad.Uint64())
		}
	}
	return ad.Err()
}

// parseDevice decodes the attributes of a GET_DEVICE reply or an EVENT
// message. It returns the event type, 0 when there is none.
func parseDevice(b []byte) (*Device, EventType, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, 0, err
	}
	var (
		d         Device
		ev        EventType
		hasPolicy bool
	)
	for ad.Next() {
		switch ad.Type() {
		case uapi.DeviceAIfindex:
			d.Index = int(ad.Uint32())
		case uapi.DeviceAIfname:
			d.Name = ad.String()
		case uapi.DeviceALowerIfindex:
			d.LowerIndex = int(ad.Uint32())
		case uapi.DeviceALowerIfname:
			d.LowerName = ad.String()
		case uapi.DeviceAPolicy:
			hasPolicy = true
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				return decodePolicy(nad, &d.Policy, nil, nil)
			})
		case uapi.DeviceARxPolicy:
			var rx Policy
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				return decodePolicy(nad, &rx, nil, nil)
			})
			d.RxPolicy = &rx
		case uapi.DeviceAStats:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				return decodeStats(nad, &d.Stats)
			})
		case uapi.DeviceAEvent:
			ev = EventType(ad.Uint32())
		}
	}
	if err := ad.Err(); err != nil {
		return nil, 0, fmt.Errorf("decoding device: %w", err)
	}
	if d.Index == 0 || d.Name == "" {
		return nil, 0, fmt.Errorf("decoding device: reply lacks the index or the name")
	}
	if !hasPolicy {
		return nil, 0, fmt.Errorf("decoding device %s: reply lacks the policy", d.Name)
	}
	return &d, ev, nil
}

// parseDevices decodes the messages of a GET_DEVICE reply or dump.
func parseDevices(msgs []genetlink.Message) ([]*Device, error) {
	ds := make([]*Device, 0, len(msgs))
	for _, m := range msgs {
		d, _, err := parseDevice(m.Data)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// parseEvent decodes an INSANE_CMD_EVENT message.
func parseEvent(m genetlink.Message) (*Event, error) {
	if m.Header.Command != uapi.CmdEvent {
		return nil, fmt.Errorf("unexpected command %d in the events group", m.Header.Command)
	}
	if ev, err := eventType(m.Data); err != nil {
		return nil, fmt.Errorf("decoding event: %w", err)
	} else if ev == EventEdge {
		return parseEdgeEvent(m.Data)
	}
	d, ev, err := parseDevice(m.Data)
	if err != nil {
		return nil, err
	}
	if ev == 0 {
		return nil, fmt.Errorf("event for %s lacks its type", d.Name)
	}
	return &Event{Type: ev, Device: *d}, nil
}

// eventType returns the INSANE_DEVICE_A_EVENT of a message's attributes, 0
// when there is none.
func eventType(b []byte) (EventType, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return 0, err
	}
	var ev EventType
	for ad.Next() {
		if ad.Type() == uapi.DeviceAEvent {
			ev = EventType(ad.Uint32())
		}
	}
	return ev, ad.Err()
}

// parseEdgeEvent decodes the attributes of an INSANE_EVENT_EDGE message:
// the event, the device's index and name, and the edge. As elsewhere,
// attributes this package does not know are skipped, and the ones it
// needs must all be there.
func parseEdgeEvent(b []byte) (*Event, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	ev := Event{Type: EventEdge}
	var (
		e       Edge
		hasEdge bool
		missing string
	)
	for ad.Next() {
		switch ad.Type() {
		case uapi.DeviceAIfindex:
			ev.Device.Index = int(ad.Uint32())
		case uapi.DeviceAIfname:
			ev.Device.Name = ad.String()
		case uapi.DeviceAEdge:
			hasEdge = true
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				var err error
				missing, err = decodeEdge(nad, &e)
				return err
			})
		}
	}
	if err := ad.Err(); err != nil {
		return nil, fmt.Errorf("decoding edge event: %w", err)
	}
	if ev.Device.Index == 0 || ev.Device.Name == "" {
		return nil, fmt.Errorf("decoding edge event: it lacks the index or the name")
	}
	if !hasEdge {
		return nil, fmt.Errorf("decoding edge event of %s: it lacks the edge", ev.Device.Name)
	}
	if missing != "" {
		return nil, fmt.Errorf("decoding edge event of %s: the edge lacks %s", ev.Device.Name, missing)
	}
	ev.Edge = &e
	return &ev, nil
}

// decodeEdge reads the attributes of enum insane_edge_attr, skipping the
// padding and those this package does not know. It returns the name of
// the first required attribute that is missing, "" when none is.
func decodeEdge(ad *netlink.AttributeDecoder, e *Edge) (string, error) {
	required := []struct {
		typ  uint16
		name string
	}{
		{uapi.EdgeADirection, "the direction"}, {uapi.EdgeASeq, "the sequence number"},
		{uapi.EdgeAStepIndex, "the step"}, {uapi.EdgeAMode, "the mode"}, {uapi.EdgeAState, "the state"},
		{uapi.EdgeATimeNs, "the time"}, {uapi.EdgeARealtimeNs, "the real time"}, {uapi.EdgeAFiredNs, "the firing time"},
	}
	seen := map[uint16]bool{}
	for ad.Next() {
		seen[ad.Type()] = true
		switch ad.Type() {
		case uapi.EdgeADirection:
			e.Direction = Direction(ad.Uint32())
		case uapi.EdgeASeq:
			e.Seq = ad.Uint64()
		case uapi.EdgeAStepIndex:
			e.Step = int(ad.Uint32())
		case uapi.EdgeAMode:
			e.Mode = Mode(ad.Uint32())
		case uapi.EdgeAState:
			e.State = EdgeState(ad.Uint32())
		case uapi.EdgeATimeNs:
			e.Time = nsDuration(ad.Uint64())
		case uapi.EdgeARealtimeNs:
			e.Realtime = time.Unix(0, int64(nsDuration(ad.Uint64())))
		case uapi.EdgeAFiredNs:
			e.Fired = nsDuration(ad.Uint64())
		case uapi.EdgeACarrier:
			c := ad.Uint8() != 0
			e.Carrier = &c
		}
	}
	if err := ad.Err(); err != nil {
		return "", err
	}
	for _, r := range required {
		if !seen[r.typ] {
			return r.name, nil
		}
	}
	return "", nil
}

// encodeConfig writes the attributes of a SET_DEVICE request.
func encodeConfig(ae *netlink.AttributeEncoder, name string, cfg Config) error {
	if name == "" {
		return fmt.Errorf("configure device: empty name")
	}
	if cfg.Detach && cfg.Lower != "" {
		return fmt.Errorf("configure device %s: detach and attach to %s at once", name, cfg.Lower)
	}
	if cfg.Policy != nil {
		if err := cfg.Policy.Validate(); err != nil {
			return fmt.Errorf("configure device %s: %w", name, err)
		}
	}
	if cfg.RxPolicy != nil {
		if cfg.RxOff {
			return fmt.Errorf("configure device %s: a receive policy and rx off at once", name)
		}
		if err := cfg.RxPolicy.ValidateRx(); err != nil {
			return fmt.Errorf("configure device %s: receive policy: %w", name, err)
		}
	}
	ae.String(uapi.DeviceAIfname, name)
	if cfg.Lower != "" {
		ae.String(uapi.DeviceALowerIfname, cfg.Lower)
	}
	var flags uint32
	if cfg.Detach {
		flags |= uapi.DeviceFDetach
	}
	if cfg.ResetStats {
		flags |= uapi.DeviceFResetStats
	}
	if cfg.RxOff {
		flags |= uapi.DeviceFRxOff
	}
	if flags != 0 {
		ae.Uint32(uapi.DeviceAFlags, flags)
	}
	if cfg.Policy != nil {
		p := *cfg.Policy
		ae.Nested(uapi.DeviceAPolicy, func(nae *netlink.AttributeEncoder) error {
			encodePolicy(nae, p)
			return nil
		})
	}
	if cfg.RxPolicy != nil {
		p := *cfg.RxPolicy
		ae.Nested(uapi.DeviceARxPolicy, func(nae *netlink.AttributeEncoder) error {
			encodePolicy(nae, p)
			return nil
		})
	}
	return nil
}
