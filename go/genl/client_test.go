package genl

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

var (
	devAttached = Device{
		Name: "ins0", Index: 7, LowerName: "veth0", LowerIndex: 3,
		Policy:   Percent(12.5, ptr(uint64(42))),
		RxPolicy: ptr(Percent(90, ptr(uint64(5)))),
		Stats: Stats{
			RelayedPackets: 100, RelayedBytes: 12345, DropPolicy: 20, DropNoLower: 1,
			DropNoRoute: 2, DropLowerRefused: 3, DropNotIP: 4,
			RxRelayedPackets: 50, RxRelayedBytes: 5000, RxDropPolicy: 6, RxDropNoMemory: 1,
		},
	}
	devDetached = Device{
		Name: "ins1", Index: 8,
		Policy: Time(500*time.Millisecond, time.Second),
		Stats:  Stats{DropNoLower: 9},
	}
)

func TestDevices(t *testing.T) {
	c, _ := testClient(t, genltest.CheckRequest(testFamily.ID, uapi.CmdGetDevice, netlink.Request|netlink.Dump,
		func(greq genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
			if len(greq.Data) != 0 || greq.Header.Version != uapi.GenlVersion {
				t.Errorf("dump request: version %d, attributes %x", greq.Header.Version, greq.Data)
			}
			return []genetlink.Message{
				deviceMsg(t, uapi.CmdGetDevice, devAttached, 0),
				deviceMsg(t, uapi.CmdGetDevice, devDetached, 0),
			}, nil
		}), nil, nil)
	ds, err := c.Devices()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*Device{&devAttached, &devDetached}, ds); diff != "" {
		t.Fatalf("devices (-want +got):\n%s", diff)
	}
	if !ds[0].Attached() || ds[1].Attached() {
		t.Error("Attached")
	}
	if got := ds[0].Stats.Dropped(); got != 30 {
		t.Errorf("Dropped = %d, want 30", got)
	}
}

func TestDevicesEmpty(t *testing.T) {
	c, _ := testClient(t, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		return nil, io.EOF
	}, nil, nil)
	ds, err := c.Devices()
	if err != nil || len(ds) != 0 {
		t.Fatalf("Devices = %v, %v", ds, err)
	}
}

func TestDevice(t *testing.T) {
	c, _ := testClient(t, genltest.CheckRequest(testFamily.ID, uapi.CmdGetDevice, netlink.Request,
		func(greq genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
			a := attrs(t, greq.Data)
			if len(a) != 1 || string(a[uapi.DeviceAIfname]) != "ins0\x00" {
				t.Errorf("request attributes %v", a)
			}
			return []genetlink.Message{deviceMsg(t, uapi.CmdGetDevice, devAttached, 0)}, nil
		}), nil, nil)
	d, err := c.Device("ins0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&devAttached, d); diff != "" {
		t.Fatalf("device (-want +got):\n%s", diff)
	}
}

func TestDeviceByIndex(t *testing.T) {
	c, _ := testClient(t, genltest.CheckRequest(testFamily.ID, uapi.CmdGetDevice, netlink.Request,
		func(greq genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
			a := attrs(t, greq.Data)
			if len(a) != 1 || string(a[uapi.DeviceAIfindex]) != string(u32(8)) {
				t.Errorf("request attributes %v", a)
			}
			return []genetlink.Message{deviceMsg(t, uapi.CmdGetDevice, devDetached, 0)}, nil
		}), nil, nil)
	d, err := c.DeviceByIndex(8)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&devDetached, d); diff != "" {
		t.Fatalf("device (-want +got):\n%s", diff)
	}
}

func TestDeviceBadArguments(t *testing.T) {
	c, _ := testClient(t, nil, nil, nil)
	for _, err := range []error{
		func() error { _, err := c.Device(""); return err }(),
		func() error { _, err := c.DeviceByIndex(0); return err }(),
		func() error { _, err := c.DeviceByIndex(-1); return err }(),
	} {
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error %v does not match os.ErrNotExist", err)
		}
	}
}

func TestDeviceReplyCount(t *testing.T) {
	c, _ := testClient(t, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		return []genetlink.Message{
			deviceMsg(t, uapi.CmdGetDevice, devAttached, 0),
			deviceMsg(t, uapi.CmdGetDevice, devDetached, 0),
		}, nil
	}, nil, nil)
	if _, err := c.Device("ins0"); err == nil || !strings.Contains(err.Error(), "2 replies") {
		t.Fatalf("two replies to one GET: %v", err)
	}
}

func TestDeviceMalformedReply(t *testing.T) {
	for name, data := range map[string][]byte{
		"no policy":   nltest.MustMarshalAttributes([]netlink.Attribute{{Type: uapi.DeviceAIfindex, Data: u32(1)}, {Type: uapi.DeviceAIfname, Data: nlenc.Bytes("x")}}),
		"no name":     nltest.MustMarshalAttributes([]netlink.Attribute{{Type: uapi.DeviceAIfindex, Data: u32(1)}}),
		"short index": nltest.MustMarshalAttributes([]netlink.Attribute{{Type: uapi.DeviceAIfindex, Data: []byte{1}}}),
		"truncated":   {8, 0, 1},
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := testClient(t, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
				return []genetlink.Message{{Header: genetlink.Header{Command: uapi.CmdGetDevice}, Data: data}}, nil
			}, nil, nil)
			if _, err := c.Device("x"); err == nil {
				t.Fatal("malformed reply accepted")
			}
		})
	}
}

func TestConfigureDevice(t *testing.T) {
	policyAttrs := func(t *testing.T, b []byte) map[uint16][]byte { return attrs(t, b) }
	for _, tc := range []struct {
		name   string
		cfg    Config
		want   map[uint16]string
		policy map[uint16][]byte
		rx     map[uint16][]byte
	}{
		{
			name: "receive policy", cfg: Config{RxPolicy: ptr(Percent(90, ptr(uint64(3))))},
			rx: map[uint16][]byte{uapi.PolicyAMode: u32(uapi.ModePercent), uapi.PolicyAPercent: u32(90000000), uapi.PolicyASeed: u64(3)},
		},
		{
			name: "both policies", cfg: Config{Policy: ptr(Pass()), RxPolicy: ptr(Time(time.Second, 0))},
			policy: map[uint16][]byte{uapi.PolicyAMode: u32(uapi.ModePass)},
			rx:     map[uint16][]byte{uapi.PolicyAMode: u32(uapi.ModeTime), uapi.PolicyAOnNs: u64(1e9), uapi.PolicyAOffNs: u64(0)},
		},
		{name: "rx off", cfg: Config{RxOff: true}, want: map[uint16]string{uapi.DeviceAFlags: string(u32(uapi.DeviceFRxOff))}},
		{name: "nothing", cfg: Config{}, want: map[uint16]string{}},
		{name: "lower", cfg: Config{Lower: "veth1"}, want: map[uint16]string{uapi.DeviceALowerIfname: "veth1\x00"}},
		{name: "detach", cfg: Config{Detach: true}, want: map[uint16]string{uapi.DeviceAFlags: string(u32(uapi.DeviceFDetach))}},
		{name: "reset", cfg: Config{ResetStats: true}, want: map[uint16]string{uapi.DeviceAFlags: string(u32(uapi.DeviceFResetStats))}},
		{name: "detach and reset", cfg: Config{Detach: true, ResetStats: true}, want: map[uint16]string{uapi.DeviceAFlags: string(u32(3))}},
		{name: "pass", cfg: Config{Policy: ptr(Pass())}, policy: map[uint16][]byte{uapi.PolicyAMode: u32(uapi.ModePass)}},
		{
			name: "percent rounds to nearest millionth", cfg: Config{Policy: ptr(Percent(12.3456785, nil))},
			policy: map[uint16][]byte{uapi.PolicyAMode: u32(uapi.ModePercent), uapi.PolicyAPercent: u32(12345679)},
		},
		{
			name: "percent with seed", cfg: Config{Policy: ptr(Percent(80, ptr(uint64(1<<63+5))))},
			policy: map[uint16][]byte{uapi.PolicyAMode: u32(uapi.ModePercent), uapi.PolicyAPercent: u32(80000000), uapi.PolicyASeed: u64(1<<63 + 5)},
		},
		{
			name: "percent zero and hundred", cfg: Config{Policy: ptr(Percent(0, ptr(uint64(0))))},
			policy: map[uint16][]byte{uapi.PolicyAMode: u32(uapi.ModePercent), uapi.PolicyAPercent: u32(0), uapi.PolicyASeed: u64(0)},
		},
		{
			name: "time", cfg: Config{Policy: ptr(Time(500*time.Millisecond, 0))},
			policy: map[uint16][]byte{uapi.PolicyAMode: u32(uapi.ModeTime), uapi.PolicyAOnNs: u64(5e8), uapi.PolicyAOffNs: u64(0)},
		},
		{
			name: "everything", cfg: Config{Lower: "eth0", ResetStats: true, Policy: ptr(Percent(100, nil))},
			want:   map[uint16]string{uapi.DeviceALowerIfname: "eth0\x00", uapi.DeviceAFlags: string(u32(uapi.DeviceFResetStats))},
			policy: map[uint16][]byte{uapi.PolicyAMode: u32(uapi.ModePercent), uapi.PolicyAPercent: u32(uapi.PercentMax)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			c, _ := testClient(t, genltest.CheckRequest(testFamily.ID, uapi.CmdSetDevice, netlink.Request|netlink.Acknowledge,
				func(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
					called = true
					a := attrs(t, greq.Data)
					if string(a[uapi.DeviceAIfname]) != "ins0\x00" {
						t.Errorf("name %q", a[uapi.DeviceAIfname])
					}
					delete(a, uapi.DeviceAIfname)
					if tc.policy != nil {
						if diff := cmp.Diff(tc.policy, policyAttrs(t, a[uapi.DeviceAPolicy])); diff != "" {
							t.Errorf("policy attributes (-want +got):\n%s", diff)
						}
						delete(a, uapi.DeviceAPolicy)
					}
					if tc.rx != nil {
						if diff := cmp.Diff(tc.rx, policyAttrs(t, a[uapi.DeviceARxPolicy])); diff != "" {
							t.Errorf("receive policy attributes (-want +got):\n%s", diff)
						}
						delete(a, uapi.DeviceARxPolicy)
					}
					got := map[uint16]string{}
					for k, v := range a {
						got[k] = string(v)
					}
					want := tc.want
					if want == nil {
						want = map[uint16]string{}
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("attributes (-want +got):\n%s", diff)
					}
					return nil, genltest.Error(0)
				}), nil, nil)
			if err := c.ConfigureDevice("ins0", tc.cfg); err != nil {
				t.Fatal(err)
			}
			if !called {
				t.Fatal("no request sent")
			}
		})
	}
}

func TestSetPolicyNested(t *testing.T) {
	// The policy must carry NLA_F_NESTED: the kernel's strict validation
	// requires it.
	c, _ := testClient(t, func(greq genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
		as, err := netlink.UnmarshalAttributes(greq.Data)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, a := range as {
			if a.Type&0x3fff == uapi.DeviceAPolicy {
				found = a.Type&netlink.Nested != 0
			}
		}
		if !found {
			t.Error("policy without NLA_F_NESTED")
		}
		return nil, genltest.Error(0)
	}, nil, nil)
	if err := c.SetPolicy("ins0", Pass()); err != nil {
		t.Fatal(err)
	}
}

func TestConfigureDeviceInvalid(t *testing.T) {
	c, _ := testClient(t, nil, nil, nil)
	for name, cfg := range map[string]Config{
		"detach and lower":   {Detach: true, Lower: "eth0"},
		"percent above":      {Policy: ptr(Percent(100.0000001, nil))},
		"percent below":      {Policy: ptr(Percent(-1, nil))},
		"percent NaN":        {Policy: &Policy{Mode: ModePercent, Percent: nan()}},
		"time zero":          {Policy: ptr(Time(0, 0))},
		"time negative":      {Policy: ptr(Time(-time.Second, 2*time.Second))},
		"pass with seed":     {Policy: &Policy{Mode: ModePass, Seed: ptr(uint64(1))}},
		"time with pct":      {Policy: &Policy{Mode: ModeTime, On: 1, Percent: 5}},
		"percent with on":    {Policy: &Policy{Mode: ModePercent, Percent: 5, On: 1}},
		"unknown mode":       {Policy: &Policy{Mode: 9}},
		"burst percent 0":    {Policy: ptr(Burst(0, 5, nil))},
		"burst too short":    {Policy: ptr(Burst(20, 3.999, nil))},
		"burst below 1":      {Policy: ptr(Burst(95, 0.9, nil))},
		"gilbert R 0":        {Policy: ptr(Gilbert(GilbertElliott{P: 1, LossBad: 100}, nil))},
		"gilbert above":      {Policy: ptr(Gilbert(GilbertElliott{P: 1, R: 5, LossBad: 101}, nil))},
		"drop with seed":     {Policy: &Policy{Mode: ModeDrop, Seed: ptr(uint64(1))}},
		"empty schedule":     {Policy: ptr(Schedule(false, nil))},
		"zero step":          {Policy: ptr(Schedule(false, nil, Step{0, Pass()}))},
		"step with seed":     {Policy: ptr(Schedule(false, nil, Step{1, Percent(5, ptr(uint64(1)))}))},
		"nested schedule":    {Policy: ptr(Schedule(false, nil, Step{1, Schedule(false, nil, Step{1, Pass()})}))},
		"time step":          {Policy: ptr(Schedule(false, nil, Step{1, Time(1, 1)}))},
		"schedule overflow":  {Policy: ptr(Schedule(false, nil, Step{1 << 62, Pass()}, Step{1 << 62, Pass()}, Step{1 << 62, Drop()}))},
		"once without steps": {Policy: &Policy{Mode: ModePass, Once: true}},
		"rx and rx off":      {RxPolicy: ptr(Pass()), RxOff: true},
		"rx invalid":         {RxPolicy: ptr(Time(0, 0))},
	} {
		err := c.ConfigureDevice("ins0", cfg)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := c.ConfigureDevice("", Config{}); err == nil {
		t.Error("empty name accepted")
	}
	if err := c.ConfigureDevice("x", Config{Policy: ptr(Percent(101, nil))}); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("bad percent: %v does not match ErrInvalidPolicy", err)
	}
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		errno            int
		notExist, noPerm bool
	}{
		{int(unix.ENODEV), true, false},
		{int(unix.EOPNOTSUPP), true, false},
		{int(unix.EPERM), false, true},
		{int(unix.EACCES), false, true},
		{int(unix.EINVAL), false, false},
		{int(unix.EBUSY), false, false},
	} {
		errno := unix.Errno(tc.errno)
		t.Run(errno.Error(), func(t *testing.T) {
			// nltest.Error would copy the dump flags of the request into
			// the error, where they mean "extended ack": answer by hand.
			g := genetlink.NewConn(nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
				return []netlink.Message{errnoReply(reqs[0], tc.errno)}, nil
			}))
			c := newClient(g, nltest.Dial(nil), nil)
			c.family = &testFamily
			for _, err := range []error{
				func() error { _, err := c.Device("ins0"); return err }(),
				func() error { _, err := c.Devices(); return err }(),
				c.ConfigureDevice("ins0", Config{ResetStats: true}),
			} {
				if errors.Is(err, os.ErrNotExist) != tc.notExist || errors.Is(err, os.ErrPermission) != tc.noPerm {
					t.Errorf("%v: ErrNotExist %v, ErrPermission %v", err, errors.Is(err, os.ErrNotExist), errors.Is(err, os.ErrPermission))
				}
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, errno) {
					t.Errorf("%v is not an *Error with errno %d", err, tc.errno)
				}
				if errors.Is(err, ErrNotLoaded) {
					t.Errorf("%v matches ErrNotLoaded", err)
				}
			}
		})
	}
}

func TestConfigureDeviceRefusedLower(t *testing.T) {
	// The module refuses a lower it cannot attach with EINVAL: that is no
	// missing device, unlike EOPNOTSUPP ("not an insane device").
	c, _ := testClient(t, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		return nil, genltest.Error(int(unix.EINVAL))
	}, nil, nil)
	err := c.ConfigureDevice("ins0", Config{Lower: "lo"})
	if !errors.Is(err, unix.EINVAL) || errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused lower: %v, ErrNotExist %v", err, errors.Is(err, os.ErrNotExist))
	}
}

func TestExtack(t *testing.T) {
	g := genetlink.NewConn(nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		return []netlink.Message{extackReply(reqs[0], int(unix.EINVAL), "percent exceeds INSANE_PERCENT_MAX")}, nil
	}))
	c := newClient(g, nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		return []netlink.Message{extackReply(reqs[0], int(unix.ERANGE), "bad lower")}, nil
	}), nil)
	c.family = &testFamily
	err := c.ConfigureDevice("ins0", Config{Policy: ptr(Pass())})
	var e *Error
	if !errors.As(err, &e) || e.Message != "percent exceeds INSANE_PERCENT_MAX" || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("error %#v", err)
	}
	if want := "set device ins0: invalid argument: percent exceeds INSANE_PERCENT_MAX"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	err = c.AddLink("ins0", "eth0", nil)
	if !errors.As(err, &e) || e.Message != "bad lower" || !strings.Contains(err.Error(), "bad lower") {
		t.Fatalf("rtnetlink error %v", err)
	}
}

func TestFamilyMissing(t *testing.T) {
	loaded := false
	g := genltest.Dial(func(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
		if nreq.Header.Type == unix.GENL_ID_CTRL && !loaded {
			return nil, genltest.Error(int(unix.ENOENT))
		}
		return genltest.ServeFamily(testFamily, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
			return []genetlink.Message{deviceMsg(t, uapi.CmdGetDevice, devAttached, 0)}, nil
		})(greq, nreq)
	})
	c := newClient(g, nltest.Dial(nil), nil)
	_, err := c.Device("ins0")
	var nl *NotLoadedError
	if !errors.As(err, &nl) || !errors.Is(err, ErrNotLoaded) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing family: %v", err)
	}
	if !strings.Contains(err.Error(), "modprobe insane") {
		t.Errorf("message %q does not name the fix", err)
	}
	if _, err := c.Subscribe(context.Background()); !errors.Is(err, ErrNotLoaded) {
		t.Errorf("Subscribe: %v", err)
	}
	// Once the module is loaded, the same client works.
	loaded = true
	if _, err := c.Device("ins0"); err != nil {
		t.Fatalf("after loading: %v", err)
	}
	f, err := c.Family()
	if err != nil || f.ID != testFamily.ID {
		t.Fatalf("Family = %+v, %v", f, err)
	}
}

func TestFamilyReloaded(t *testing.T) {
	// The module was reloaded: the cached family ID is gone (ENOENT) and
	// the family has a new ID, which the client looks up once.
	reloaded := testFamily
	reloaded.ID = testFamily.ID + 1
	lookups := 0
	var sentTo []uint16
	g := genltest.Dial(func(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
		if nreq.Header.Type == unix.GENL_ID_CTRL {
			lookups++
			f := testFamily
			if lookups > 1 {
				f = reloaded
			}
			return genltest.ServeFamily(f, nil)(greq, nreq)
		}
		sentTo = append(sentTo, uint16(nreq.Header.Type))
		if uint16(nreq.Header.Type) != reloaded.ID {
			return nil, genltest.Error(int(unix.ENOENT))
		}
		return []genetlink.Message{deviceMsg(t, uapi.CmdGetDevice, devAttached, 0)}, nil
	})
	c := newClient(g, nltest.Dial(nil), nil)
	if _, err := c.Device("ins0"); err != nil {
		t.Fatalf("after a reload: %v", err)
	}
	if lookups != 2 || cmp.Diff([]uint16{testFamily.ID, reloaded.ID}, sentTo) != "" {
		t.Fatalf("lookups %d, requests sent to %v", lookups, sentTo)
	}
	// Once gone for good, the second lookup says so.
	g = genltest.Dial(func(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
		if nreq.Header.Type == unix.GENL_ID_CTRL {
			lookups++
			if lookups > 3 {
				return nil, genltest.Error(int(unix.ENOENT))
			}
			return genltest.ServeFamily(testFamily, nil)(greq, nreq)
		}
		return nil, genltest.Error(int(unix.ENOENT))
	})
	c = newClient(g, nltest.Dial(nil), nil)
	if _, err := c.Device("ins0"); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("after an unload: %v", err)
	}
}

func TestFamilyOtherErrors(t *testing.T) {
	g := genltest.Dial(func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		return nil, genltest.Error(int(unix.EPERM))
	})
	c := newClient(g, nltest.Dial(nil), nil)
	_, err := c.Devices()
	if !errors.Is(err, os.ErrPermission) || errors.Is(err, ErrNotLoaded) {
		t.Fatalf("%v", err)
	}
	old := testFamily
	old.Version = 0
	c = newClient(genltest.Dial(genltest.ServeFamily(old, nil)), nltest.Dial(nil), nil)
	if _, err := c.Devices(); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("old family version accepted: %v", err)
	}
}

func TestSubscribe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan struct{})
	var conns *[]*fakeEventConn
	events := func(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
		select {
		case <-served:
			// Later receives block, as a socket read would, until the
			// cancellation closes the connection.
			<-(*conns)[0].closed
			return nil, errors.New("use of closed file")
		default:
			close(served)
		}
		return []genetlink.Message{
			deviceMsg(t, uapi.CmdEvent, devAttached, EventPolicy),
			deviceMsg(t, uapi.CmdGetDevice, devDetached, 0), // not an event: skipped
			deviceMsg(t, uapi.CmdEvent, devDetached, EventDetach),
			deviceMsg(t, uapi.CmdEvent, devAttached, EventType(77)),
		}, nil
	}
	c, conns := testClient(t, nil, nil, events)
	s, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(*conns) != 1 || cmp.Diff([]uint32{11}, (*conns)[0].joined) != "" {
		t.Fatalf("joined groups: %+v", *conns)
	}
	want := []Event{{Type: EventPolicy, Device: devAttached}, {Type: EventDetach, Device: devDetached}, {Type: EventType(77), Device: devAttached}}
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
	cancel()
	select {
	case _, ok := <-s.Events():
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
	if err := s.Err(); err != nil {
		t.Fatalf("Err after cancel = %v", err)
	}
}

func TestSubscribeClose(t *testing.T) {
	var conns *[]*fakeEventConn
	c, conns := testClient(t, nil, nil, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		// Block like a socket read until the connection is closed.
		<-(*conns)[0].closed
		return nil, errors.New("use of closed file")
	})
	s, err := c.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if s.Err() != nil {
		t.Fatalf("Err = %v", s.Err())
	}
	if _, ok := <-s.Events(); ok {
		t.Fatal("channel open after Close")
	}
}

func TestSubscribeErrors(t *testing.T) {
	t.Run("receive error", func(t *testing.T) {
		c, _ := testClient(t, nil, nil, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
			return nil, unix.ENOBUFS
		})
		s, err := c.Subscribe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for range s.Events() {
			t.Fatal("event from an error")
		}
		if !errors.Is(s.Err(), unix.ENOBUFS) {
			t.Fatalf("Err = %v", s.Err())
		}
	})
	t.Run("malformed event", func(t *testing.T) {
		c, _ := testClient(t, nil, nil, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
			return []genetlink.Message{deviceMsg(t, uapi.CmdEvent, devAttached, 0)}, nil
		})
		s, err := c.Subscribe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for range s.Events() {
			t.Fatal("event without a type delivered")
		}
		if s.Err() == nil || !strings.Contains(s.Err().Error(), "lacks its type") {
			t.Fatalf("Err = %v", s.Err())
		}
	})
	t.Run("no group", func(t *testing.T) {
		f := testFamily
		f.Groups = nil
		c := newClient(genltest.Dial(genltest.ServeFamily(f, nil)), nltest.Dial(nil), nil)
		if _, err := c.Subscribe(context.Background()); err == nil || !strings.Contains(err.Error(), "events") {
			t.Fatalf("Subscribe without group: %v", err)
		}
	})
}

func TestDialNetNSPathMissing(t *testing.T) {
	_, err := Dial(&Options{NetNSPath: "/nonexistent/netns/x"})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "/nonexistent/netns/x") {
		t.Fatalf("Dial with a missing netns path: %v", err)
	}
	if _, err := Dial(&Options{NetNS: 3, NetNSPath: "/x"}); err == nil {
		t.Fatal("NetNS and NetNSPath together accepted")
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}
