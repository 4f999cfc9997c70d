package genl

import (
	"encoding/binary"
	"math"
	"sync"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// This file holds the test side of the wire: a fake family, an encoder of
// kernel replies written from the uapi header independently of the
// client's encoders, and fake connections.

var testFamily = genetlink.Family{
	ID:      0x1d,
	Version: uapi.GenlVersion,
	Name:    uapi.GenlName,
	Groups:  []genetlink.MulticastGroup{{ID: 7, Name: "other"}, {ID: 11, Name: uapi.GenlMcgrpEvents}},
}

// kernelPolicy writes a policy as the kernel would, but also any field set
// outside its mode, so that decoders see everything.
func kernelPolicy(ae *netlink.AttributeEncoder, p Policy) {
	ae.Uint32(uapi.PolicyAMode, uint32(p.Mode))
	if p.Mode == ModePercent || p.Percent != 0 {
		ae.Uint32(uapi.PolicyAPercent, p.PercentUnits())
	}
	if p.Seed != nil {
		ae.Uint64(uapi.PolicyASeed, *p.Seed)
	}
	if p.Mode == ModeTime || p.On != 0 || p.Off != 0 {
		ae.Uint64(uapi.PolicyAOnNs, uint64(p.On))
		ae.Uint64(uapi.PolicyAOffNs, uint64(p.Off))
	}
	if p.Mode == ModeBurst || p.Burst != 0 {
		ae.Uint32(uapi.PolicyABurst, p.BurstUnits())
	}
	if g := p.Gilbert; p.Mode == ModeGilbert || g != (GilbertElliott{}) {
		ae.Uint32(uapi.PolicyAGeP, percentUnits(g.P))
		ae.Uint32(uapi.PolicyAGeR, percentUnits(g.R))
		ae.Uint32(uapi.PolicyAGeLossBad, percentUnits(g.LossBad))
		ae.Uint32(uapi.PolicyAGeLossGood, percentUnits(g.LossGood))
	}
	if len(p.Steps) > 0 {
		ae.Nested(uapi.PolicyASteps, func(sae *netlink.AttributeEncoder) error {
			for _, st := range p.Steps {
				st := st
				sae.Nested(uapi.StepsAStep, func(nae *netlink.AttributeEncoder) error {
					kernelPolicy(nae, st.Action)
					nae.Uint64(uapi.PolicyADurationNs, uint64(st.Duration))
					return nil
				})
			}
			return nil
		})
	}
	if p.Once {
		ae.Flag(uapi.PolicyAOnce, true)
	}
	if p.Carrier {
		ae.Flag(uapi.PolicyACarrier, true)
	}
	if p.Events {
		ae.Flag(uapi.PolicyAEvents, true)
	}
	// The delay stage, as the uapi header lists it, the distribution
	// always with a jitter (the client must take the default written out).
	if p.Delay != 0 {
		ae.Uint64(uapi.PolicyADelayNs, uint64(p.Delay))
	}
	if p.Jitter != 0 {
		ae.Uint64(uapi.PolicyAJitterNs, uint64(p.Jitter))
	}
	// (Written out of their place too, as the comment above says: the
	// fuzzer's round trip lost a correlation without a jitter.)
	if p.Jitter != 0 || p.Distribution != 0 || p.Correlation != 0 {
		ae.Uint32(uapi.PolicyADistribution, uint32(p.Distribution))
		ae.Uint32(uapi.PolicyACorrelation, uint32(math.Round(p.Correlation*uapi.PercentScale)))
	}
	if p.Reorder {
		ae.Flag(uapi.PolicyAReorder, true)
	}
	if p.Limit != 0 {
		ae.Uint32(uapi.PolicyALimit, uint32(p.Limit))
	}
	// Rate, duplication and corruption: the overhead always with a rate
	// (the kernel writes the 0 it was given; the client must take it).
	if p.Rate != 0 {
		ae.Uint64(uapi.PolicyARate, p.Rate)
	}
	if p.Rate != 0 || p.Overhead != 0 {
		ae.Uint32(uapi.PolicyAOverhead, uint32(p.Overhead))
	}
	if p.Buffer != 0 {
		ae.Uint64(uapi.PolicyABufferNs, uint64(p.Buffer))
	}
	if p.Duplicate != 0 {
		ae.Uint32(uapi.PolicyADuplicate, uint32(math.Round(p.Duplicate*uapi.PercentScale)))
	}
	if p.Corrupt != 0 {
		ae.Uint32(uapi.PolicyACorrupt, uint32(math.Round(p.Corrupt*uapi.PercentScale)))
	}
	if p.CorruptHeader {
		ae.Flag(uapi.PolicyACorruptHeader, true)
	}
	if p.Now != nil {
		ae.Uint32(uapi.PolicyAStepIndex, uint32(p.Now.Index))
		if !p.Now.Holds {
			ae.Uint64(uapi.PolicyAStepLeftNs, uint64(p.Now.Left))
		}
	}
}

// kernelDevice writes the attributes of a GET_DEVICE reply, preceded by
// INSANE_DEVICE_A_EVENT when ev is not 0.
func kernelDevice(t testing.TB, d Device, ev EventType) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	if ev != 0 {
		ae.Uint32(uapi.DeviceAEvent, uint32(ev))
	}
	ae.Uint32(uapi.DeviceAIfindex, uint32(d.Index))
	ae.String(uapi.DeviceAIfname, d.Name)
	if d.LowerIndex != 0 {
		ae.Uint32(uapi.DeviceALowerIfindex, uint32(d.LowerIndex))
	}
	if d.LowerName != "" {
		ae.String(uapi.DeviceALowerIfname, d.LowerName)
	}
	ae.Nested(uapi.DeviceAPolicy, func(nae *netlink.AttributeEncoder) error {
		kernelPolicy(nae, d.Policy)
		return nil
	})
	if d.RxPolicy != nil {
		ae.Nested(uapi.DeviceARxPolicy, func(nae *netlink.AttributeEncoder) error {
			kernelPolicy(nae, *d.RxPolicy)
			return nil
		})
	}
	ae.Nested(uapi.DeviceAStats, func(nae *netlink.AttributeEncoder) error {
		for _, c := range Counters() {
			nae.Uint64(c.Attr, c.Get(d.Stats))
		}
		return nil
	})
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kernelEdge writes an INSANE_EVENT_EDGE message's attributes for the edge
// e of the device index, name, as the uapi header lists them (with the
// padding the kernel's nla_put_u64_64bit adds before each u64), and then
// extra, attributes of the edge nest unknown to the client.
func kernelEdge(t testing.TB, index int, name string, e Edge, extra ...netlink.Attribute) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(uapi.DeviceAEvent, uapi.EventEdge)
	ae.Uint32(uapi.DeviceAIfindex, uint32(index))
	ae.String(uapi.DeviceAIfname, name)
	ae.Nested(uapi.DeviceAEdge, func(nae *netlink.AttributeEncoder) error {
		u64 := func(typ uint16, v uint64) {
			nae.Bytes(uapi.EdgeAPad, nil)
			nae.Uint64(typ, v)
		}
		nae.Uint32(uapi.EdgeADirection, uint32(e.Direction))
		u64(uapi.EdgeASeq, e.Seq)
		nae.Uint32(uapi.EdgeAStepIndex, uint32(e.Step))
		nae.Uint32(uapi.EdgeAMode, uint32(e.Mode))
		nae.Uint32(uapi.EdgeAState, uint32(e.State))
		u64(uapi.EdgeATimeNs, uint64(e.Time))
		u64(uapi.EdgeARealtimeNs, uint64(e.Realtime.UnixNano()))
		u64(uapi.EdgeAFiredNs, uint64(e.Fired))
		if e.Carrier != nil {
			var c uint8
			if *e.Carrier {
				c = 1
			}
			nae.Uint8(uapi.EdgeACarrier, c)
		}
		for _, a := range extra {
			nae.Bytes(a.Type, a.Data)
		}
		return nil
	})
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func edgeMsg(t testing.TB, index int, name string, e Edge) genetlink.Message {
	return genetlink.Message{
		Header: genetlink.Header{Command: uapi.CmdEvent, Version: uapi.GenlVersion},
		Data:   kernelEdge(t, index, name, e),
	}
}

func deviceMsg(t testing.TB, cmd uint8, d Device, ev EventType) genetlink.Message {
	return genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: uapi.GenlVersion},
		Data:   kernelDevice(t, d, ev),
	}
}

// fakeEventConn is a genetlink.Conn whose JoinGroup, which the nltest
// socket lacks, records the group.
type fakeEventConn struct {
	*genetlink.Conn
	joined []uint32
	closed chan struct{}
	once   sync.Once
}

// Close marks the connection closed, which a fake Func can wait for as a
// blocked socket read would.
func (c *fakeEventConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func (c *fakeEventConn) JoinGroup(g uint32) error {
	c.joined = append(c.joined, g)
	return nil
}

// testClient returns a Client whose generic netlink side is served by fn
// behind the fake family, whose rtnetlink side is served by rt, and whose
// event connections are served by events (nil: none expected).
func testClient(t *testing.T, fn genltest.Func, rt nltest.Func, events genltest.Func) (*Client, *[]*fakeEventConn) {
	t.Helper()
	if fn == nil {
		fn = func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
			t.Fatal("unexpected generic netlink request")
			return nil, nil
		}
	}
	if rt == nil {
		rt = func([]netlink.Message) ([]netlink.Message, error) {
			t.Fatal("unexpected rtnetlink request")
			return nil, nil
		}
	}
	var conns []*fakeEventConn
	dial := func() (eventConn, error) {
		if events == nil {
			t.Fatal("unexpected event connection")
		}
		c := &fakeEventConn{Conn: genltest.Dial(events), closed: make(chan struct{})}
		conns = append(conns, c)
		return c, nil
	}
	c := newClient(genltest.Dial(genltest.ServeFamily(testFamily, fn)), nltest.Dial(rt), dial)
	t.Cleanup(func() { _ = c.Close() })
	return c, &conns
}

// extackReply is the kernel's refusal of req with errno and an extended
// acknowledgement message, as the kernel sends it with the request capped.
func extackReply(req netlink.Message, errno int, msg string) netlink.Message {
	b := make([]byte, 4+16)
	binary.NativeEndian.PutUint32(b, uint32(int32(-errno)))
	h := req.Header
	h.Length = 16
	copy(b[4:], unsafe.Slice((*byte)(unsafe.Pointer(&h)), 16))
	b = append(b, nltest.MustMarshalAttributes([]netlink.Attribute{
		{Type: 1, Data: append([]byte(msg), 0)}, // NLMSGERR_ATTR_MSG
		{Type: 2, Data: []byte{20, 0, 0, 0}},    // NLMSGERR_ATTR_OFFS
	})...)
	return netlink.Message{
		Header: netlink.Header{
			Type:     netlink.Error,
			Flags:    netlink.Capped | netlink.AcknowledgeTLVs,
			Sequence: req.Header.Sequence,
			PID:      req.Header.PID,
		},
		Data: b,
	}
}

// errnoReply is the kernel's refusal of req with errno, without extack.
func errnoReply(req netlink.Message, errno int) netlink.Message {
	b := binary.NativeEndian.AppendUint32(nil, uint32(int32(-errno)))
	h := req.Header
	b = append(b, unsafe.Slice((*byte)(unsafe.Pointer(&h)), 16)...)
	return netlink.Message{
		Header: netlink.Header{Type: netlink.Error, Sequence: req.Header.Sequence, PID: req.Header.PID},
		Data:   append(b, req.Data...),
	}
}

// ack is the kernel's acknowledgement of the request.
func ack(reqs []netlink.Message) ([]netlink.Message, error) {
	return nltest.Error(0, reqs)
}

// attrs decodes a request's attributes into a map from type (flags
// removed) to data.
func attrs(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	as, err := netlink.UnmarshalAttributes(b)
	if err != nil {
		t.Fatal(err)
	}
	m := map[uint16][]byte{}
	for _, a := range as {
		typ := a.Type & 0x3fff
		if _, dup := m[typ]; dup {
			t.Fatalf("attribute %d sent twice", typ)
		}
		m[typ] = a.Data
	}
	return m
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
func ptr[T any](v T) *T   { return &v }

// decoderOf encodes ae and returns a decoder over what it wrote.
func decoderOf(t *testing.T, ae *netlink.AttributeEncoder) *netlink.AttributeDecoder {
	t.Helper()
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	return ad
}

// stepsAttrs decodes a schedule's steps nest into each step's attributes.
func stepsAttrs(t *testing.T, b []byte) []map[uint16][]byte {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	var steps []map[uint16][]byte
	for ad.Next() {
		steps = append(steps, attrs(t, ad.Bytes()))
	}
	return steps
}

// setDeviceClient returns a Client whose SET_DEVICE requests must carry
// want as the policy's attributes and wantRx as the receive policy's.
func setDeviceClient(t *testing.T, want, wantRx map[uint16][]byte) *Client {
	t.Helper()
	c, _ := testClient(t, genltest.CheckRequest(testFamily.ID, uapi.CmdSetDevice, netlink.Request|netlink.Acknowledge,
		func(greq genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
			a := attrs(t, greq.Data)
			if diff := cmp.Diff(want, attrs(t, a[uapi.DeviceAPolicy])); diff != "" {
				t.Errorf("policy attributes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantRx, attrs(t, a[uapi.DeviceARxPolicy])); diff != "" {
				t.Errorf("receive policy attributes (-want +got):\n%s", diff)
			}
			return nil, genltest.Error(0)
		}), nil, nil)
	return c
}

// unsentClient returns a Client that fails the test if it sends a
// generic netlink request: what Validate refuses is not sent.
func unsentClient(t *testing.T) *Client {
	t.Helper()
	c, _ := testClient(t, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		t.Error("an invalid policy was sent")
		return nil, genltest.Error(0)
	}, nil, nil)
	return c
}

// checkDeviceReadBack has the client read d back from a reply written as
// the kernel writes it, and checks it comes back whole.
func checkDeviceReadBack(t *testing.T, d Device) {
	t.Helper()
	c, _ := testClient(t, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		return []genetlink.Message{deviceMsg(t, uapi.CmdGetDevice, d, 0)}, nil
	}, nil, nil)
	got, err := c.Device("ins0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&d, got); diff != "" {
		t.Errorf("device (-want +got):\n%s", diff)
	}
	if !got.Policy.Equal(d.Policy) {
		t.Errorf("%s read back as %s", d.Policy, got.Policy)
	}
}

// checkLinkDataRoundTrip encodes p and rx as IFLA_INFO_DATA, decodes
// them back and checks they came back alike.
func checkLinkDataRoundTrip(t *testing.T, p, rx *Policy) {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	if err := (&LinkData{Policy: p, RxPolicy: rx}).Encode(ae); err != nil {
		t.Fatal(err)
	}
	var d LinkData
	if err := d.Decode(decoderOf(t, ae)); err != nil {
		t.Fatal(err)
	}
	if cmp.Diff(p, d.Policy) != "" || cmp.Diff(rx, d.RxPolicy) != "" {
		t.Errorf("%s rx %s came back as %s rx %s", p, rx, d.Policy, d.RxPolicy)
	}
}
