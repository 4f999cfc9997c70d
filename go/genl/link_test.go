package genl

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// fakeRtnl answers RTM_GETLINK by name from links and records the other
// requests, which it acknowledges or refuses with refuse.
type fakeRtnl struct {
	t      *testing.T
	links  map[string]rtnetlink.LinkMessage
	reqs   []netlink.Message
	refuse int
}

func (f *fakeRtnl) serve(reqs []netlink.Message) ([]netlink.Message, error) {
	req := reqs[0]
	var lm rtnetlink.LinkMessage
	if err := lm.UnmarshalBinary(req.Data); err != nil {
		f.t.Errorf("request does not decode: %v", err)
		return nltest.Error(int(unix.EINVAL), reqs)
	}
	if req.Header.Type == unix.RTM_GETLINK {
		if req.Header.Flags != netlink.Request {
			f.t.Errorf("RTM_GETLINK flags %v", req.Header.Flags)
		}
		if lm.Attributes == nil {
			f.t.Error("RTM_GETLINK without a name")
			return nltest.Error(int(unix.EINVAL), reqs)
		}
		reply, ok := f.links[lm.Attributes.Name]
		if !ok {
			return nltest.Error(int(unix.ENODEV), reqs)
		}
		b, err := reply.MarshalBinary()
		if err != nil {
			f.t.Fatal(err)
		}
		return []netlink.Message{{
			Header: netlink.Header{Type: unix.RTM_NEWLINK, Sequence: req.Header.Sequence, PID: req.Header.PID},
			Data:   b,
		}}, nil
	}
	f.reqs = append(f.reqs, req)
	if f.refuse != 0 {
		return nltest.Error(f.refuse, reqs)
	}
	return ack(reqs)
}

func newFakeRtnl(t *testing.T) *fakeRtnl {
	return &fakeRtnl{t: t, links: map[string]rtnetlink.LinkMessage{
		"veth0": {Index: 3, Attributes: &rtnetlink.LinkAttributes{Name: "veth0", Info: &rtnetlink.LinkInfo{Kind: "veth"}}},
		"lo":    {Index: 1, Attributes: &rtnetlink.LinkAttributes{Name: "lo"}},
		"ins0": {Index: 9, Attributes: &rtnetlink.LinkAttributes{
			Name: "ins0", Type: 3,
			Info: &rtnetlink.LinkInfo{Kind: uapi.LinkKind, Data: &LinkData{Policy: ptr(Percent(50, ptr(uint64(9))))}},
		}},
	}}
}

func decodeLink(t *testing.T, m netlink.Message) rtnetlink.LinkMessage {
	t.Helper()
	var lm rtnetlink.LinkMessage
	if err := lm.UnmarshalBinary(m.Data); err != nil {
		t.Fatal(err)
	}
	return lm
}

func TestAddLink(t *testing.T) {
	for _, tc := range []struct {
		name, lower string
		policy      *Policy
		wantLink    uint32
	}{
		{"ins0", "veth0", ptr(Percent(12.5, ptr(uint64(3)))), 3},
		{"ins1", "", nil, 0},
		{"ins2", "lo", ptr(Time(time.Second, 2*time.Second)), 1},
		{"ins3", "veth0", ptr(Pass()), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newFakeRtnl(t)
			c, _ := testClient(t, nil, rt.serve, nil)
			if err := c.AddLink(tc.name, tc.lower, tc.policy); err != nil {
				t.Fatal(err)
			}
			if len(rt.reqs) != 1 {
				t.Fatalf("%d requests", len(rt.reqs))
			}
			req := rt.reqs[0]
			if req.Header.Type != unix.RTM_NEWLINK || req.Header.Flags != netlink.Request|netlink.Create|netlink.Excl|netlink.Acknowledge {
				t.Errorf("header %+v", req.Header)
			}
			lm := decodeLink(t, req)
			a := lm.Attributes
			if a.Name != tc.name || a.Type != tc.wantLink || a.Info == nil || a.Info.Kind != "insane" {
				t.Fatalf("link attributes %+v", a)
			}
			d, ok := a.Info.Data.(*LinkData)
			if !ok {
				t.Fatalf("IFLA_INFO_DATA decoded as %T, not by the registered driver", a.Info.Data)
			}
			if diff := cmp.Diff(tc.policy, d.Policy); diff != "" {
				t.Errorf("policy (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddLinkErrors(t *testing.T) {
	t.Run("missing lower", func(t *testing.T) {
		rt := newFakeRtnl(t)
		c, _ := testClient(t, nil, rt.serve, nil)
		err := c.AddLink("ins5", "nope", nil)
		if !errors.Is(err, os.ErrNotExist) || len(rt.reqs) != 0 {
			t.Fatalf("missing lower: %v, %d requests", err, len(rt.reqs))
		}
	})
	t.Run("module not loaded", func(t *testing.T) {
		rt := newFakeRtnl(t)
		rt.refuse = int(unix.EOPNOTSUPP)
		g := genltest.Dial(func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
			return nil, genltest.Error(int(unix.ENOENT)) // no family either
		})
		c := newClient(g, nltest.Dial(rt.serve), nil)
		err := c.AddLink("ins5", "", nil)
		var nl *NotLoadedError
		if !errors.As(err, &nl) || !errors.Is(err, ErrNotLoaded) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("unknown kind: %v", err)
		}
	})
	t.Run("refused lower", func(t *testing.T) {
		// The driver refuses a loopback lower with EINVAL: no missing
		// module, no missing device.
		rt := newFakeRtnl(t)
		rt.refuse = int(unix.EINVAL)
		c, _ := testClient(t, nil, rt.serve, nil)
		err := c.AddLink("ins5", "lo", nil)
		if errors.Is(err, ErrNotLoaded) || errors.Is(err, os.ErrNotExist) || !errors.Is(err, unix.EINVAL) {
			t.Fatalf("refused lower: %v", err)
		}
	})
	t.Run("exists", func(t *testing.T) {
		rt := newFakeRtnl(t)
		rt.refuse = int(unix.EEXIST)
		c, _ := testClient(t, nil, rt.serve, nil)
		err := c.AddLink("ins0", "", nil)
		if !errors.Is(err, os.ErrExist) || errors.Is(err, ErrNotLoaded) {
			t.Fatalf("existing: %v", err)
		}
	})
	t.Run("permission", func(t *testing.T) {
		rt := newFakeRtnl(t)
		rt.refuse = int(unix.EPERM)
		c, _ := testClient(t, nil, rt.serve, nil)
		if err := c.AddLink("ins5", "veth0", nil); !errors.Is(err, os.ErrPermission) {
			t.Fatalf("permission: %v", err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		c, _ := testClient(t, nil, nil, nil)
		for _, err := range []error{
			c.AddLink("", "", nil),
			c.AddLink("a-name-far-too-long", "", nil),
			c.AddLink("ins5", "a-name-far-too-long", nil),
			c.AddLink("ins5", "", ptr(Percent(200, nil))),
		} {
			if err == nil {
				t.Error("accepted")
			}
		}
	})
}

func TestDeleteLink(t *testing.T) {
	rt := newFakeRtnl(t)
	c, _ := testClient(t, nil, rt.serve, nil)
	if err := c.DeleteLink("ins0"); err != nil {
		t.Fatal(err)
	}
	if len(rt.reqs) != 1 || rt.reqs[0].Header.Type != unix.RTM_DELLINK ||
		rt.reqs[0].Header.Flags != netlink.Request|netlink.Acknowledge || decodeLink(t, rt.reqs[0]).Index != 9 {
		t.Fatalf("requests %+v", rt.reqs)
	}
	for _, name := range []string{"veth0", "lo", "nope"} {
		err := c.DeleteLink(name)
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("DeleteLink(%s) = %v, want os.ErrNotExist", name, err)
		}
	}
	if len(rt.reqs) != 1 {
		t.Fatalf("a non-insane link was deleted: %d requests", len(rt.reqs))
	}
}

func TestSetLinkPolicy(t *testing.T) {
	rt := newFakeRtnl(t)
	c, _ := testClient(t, nil, rt.serve, nil)
	p := Time(10*time.Millisecond, 20*time.Millisecond)
	if err := c.SetLinkPolicy("ins0", p); err != nil {
		t.Fatal(err)
	}
	lm := decodeLink(t, rt.reqs[0])
	if rt.reqs[0].Header.Type != unix.RTM_NEWLINK || rt.reqs[0].Header.Flags&netlink.Create != 0 || lm.Index != 9 {
		t.Fatalf("changelink request %+v %+v", rt.reqs[0].Header, lm)
	}
	if d := lm.Attributes.Info.Data.(*LinkData); cmp.Diff(&p, d.Policy) != "" {
		t.Fatalf("policy %+v", d.Policy)
	}
	if err := c.SetLinkPolicy("veth0", p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("changelink of a veth: %v", err)
	}
	if err := c.SetLinkPolicy("ins0", Time(0, 0)); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("invalid policy: %v", err)
	}
	got, err := c.LinkPolicy("ins0")
	if err != nil || cmp.Diff(ptr(Percent(50, ptr(uint64(9)))), got) != "" {
		t.Fatalf("LinkPolicy = %+v, %v", got, err)
	}
}

func TestLinkDataDriver(t *testing.T) {
	// A LinkMessage of kind insane round-trips through the rtnetlink
	// package, which must find our driver by its kind.
	policies := []*Policy{nil, ptr(Pass()), ptr(Percent(0.000001, nil)), ptr(Percent(99.5, ptr(uint64(1)))), ptr(Time(1, 0))}
	for i, p := range policies {
		rx := policies[(i+2)%len(policies)]
		in := rtnetlink.LinkMessage{Index: 4, Attributes: &rtnetlink.LinkAttributes{
			Name: "x", Info: &rtnetlink.LinkInfo{Kind: "insane", Data: &LinkData{Policy: p, RxPolicy: rx}},
		}}
		b, err := in.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var out rtnetlink.LinkMessage
		if err := out.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		d, ok := out.Attributes.Info.Data.(*LinkData)
		if !ok || cmp.Diff(p, d.Policy) != "" || cmp.Diff(rx, d.RxPolicy) != "" {
			t.Errorf("policies %+v rx %+v came back as %#v", p, rx, out.Attributes.Info.Data)
		}
	}
	// rx off travels as the flag, and the two exclude each other.
	ae := netlink.NewAttributeEncoder()
	if err := (&LinkData{RxOff: true}).Encode(ae); err != nil {
		t.Fatal(err)
	}
	b, _ := ae.Encode()
	if a := attrs(t, b); len(a) != 1 || a[uapi.PolicyARxOff] == nil || len(a[uapi.PolicyARxOff]) != 0 {
		t.Errorf("rx off encodes as %v", a)
	}
	if err := (&LinkData{RxOff: true, RxPolicy: ptr(Pass())}).Encode(netlink.NewAttributeEncoder()); err == nil {
		t.Error("RxOff with RxPolicy encoded")
	}
	bad := rtnetlink.LinkMessage{Attributes: &rtnetlink.LinkAttributes{
		Name: "x", Info: &rtnetlink.LinkInfo{Kind: "insane", Data: &LinkData{Policy: ptr(Percent(-3, nil))}},
	}}
	if _, err := bad.MarshalBinary(); err == nil {
		t.Error("invalid policy encoded")
	}
	if (&LinkData{}).Kind() != "insane" {
		t.Error("kind")
	}
	if _, ok := (&LinkData{Policy: ptr(Pass())}).New().(*LinkData); !ok {
		t.Error("New")
	}
}

// TestLinkDataCompact decodes IFLA_INFO_DATA in the compact form of a dump
// read with a small buffer: a schedule without its steps, their number in
// INSANE_POLICY_A_STEPS_OMITTED, for both directions; such a policy cannot
// be set again.
func TestLinkDataCompact(t *testing.T) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(uapi.PolicyAMode, uint32(ModeSchedule))
	ae.Uint32(uapi.PolicyAStepsOmitted, 64)
	ae.Flag(uapi.PolicyAOnce, true)
	ae.Uint32(uapi.PolicyAStepIndex, 3)
	ae.Nested(uapi.PolicyARx, func(nae *netlink.AttributeEncoder) error {
		nae.Uint32(uapi.PolicyAMode, uint32(ModeSchedule))
		nae.Uint32(uapi.PolicyAStepsOmitted, 2)
		return nil
	})
	ad := decoderOf(t, ae)
	var d LinkData
	if err := d.Decode(ad); err != nil {
		t.Fatal(err)
	}
	if d.Policy == nil || d.Policy.Mode != ModeSchedule || d.Policy.StepsOmitted != 64 || len(d.Policy.Steps) != 0 ||
		!d.Policy.Once || d.Policy.Now == nil || d.Policy.Now.Index != 3 {
		t.Errorf("transmit policy %+v", d.Policy)
	}
	if d.RxPolicy == nil || d.RxPolicy.StepsOmitted != 2 {
		t.Errorf("receive policy %+v", d.RxPolicy)
	}
	if err := d.Policy.Validate(); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("Validate of a compact policy: %v, want ErrInvalidPolicy", err)
	}
}
