//go:build vmtest

package guest

// Every bad input is refused with a precise errno and an extack message,
// spoken in raw generic netlink and rtnetlink so that the client's own
// checks cannot hide what the kernel does. (Permissions: TestClientPermission.)

import (
	"errors"
	"strings"
	"testing"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

type kRaw struct {
	c      *genetlink.Conn
	family genetlink.Family
}

func kRawDial(t *testing.T) *kRaw {
	t.Helper()
	c, err := genetlink.Dial(&netlink.Config{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetOption(netlink.ExtendedAcknowledge, true); err != nil {
		t.Fatal(err)
	}
	f, err := c.GetFamily(uapi.GenlName)
	if err != nil {
		t.Fatalf("GetFamily(%s): %v", uapi.GenlName, err)
	}
	if f.Version != uapi.GenlVersion {
		t.Errorf("family version %d, want %d", f.Version, uapi.GenlVersion)
	}
	return &kRaw{c: c, family: f}
}

func (r *kRaw) do(cmd uint8, flags netlink.HeaderFlags, attrs func(ae *netlink.AttributeEncoder)) ([]genetlink.Message, error) {
	ae := netlink.NewAttributeEncoder()
	if attrs != nil {
		attrs(ae)
	}
	b, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return r.c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: r.family.Version},
		Data:   b,
	}, r.family.ID, netlink.Request|netlink.Acknowledge|flags)
}

// kRefused fails unless err is errno with an extack message containing msg.
func kRefused(t *testing.T, what string, err error, errno unix.Errno, msg string) {
	t.Helper()
	var oe *netlink.OpError
	switch {
	case err == nil:
		t.Errorf("%s: accepted, want %v", what, errno)
	case !errors.Is(err, errno):
		t.Errorf("%s: %v, want %v", what, err, errno)
	case !errors.As(err, &oe) || !strings.Contains(oe.Message, msg):
		t.Errorf("%s: %v: extack message does not contain %q", what, err, msg)
	default:
		t.Logf("%s: %v: %s", what, errno, oe.Message)
	}
}

func kPolicy(mode uint32, more func(ae *netlink.AttributeEncoder)) func(ae *netlink.AttributeEncoder) {
	return func(ae *netlink.AttributeEncoder) {
		ae.Nested(uapi.DeviceAPolicy, func(ne *netlink.AttributeEncoder) error {
			ne.Uint32(uapi.PolicyAMode, mode)
			if more != nil {
				more(ne)
			}
			return nil
		})
	}
}

func TestKernelGenlRefusesBadInput(t *testing.T) {
	CheckKmsg(t)
	tp := NewTopo(t)
	// The initial namespace gets the devices: the raw socket lives there.
	Run(t, "ip", "link", "add", "kv0", "type", "veth", "peer", "name", "kv1")
	t.Cleanup(func() { TryRun("ip", "link", "del", "kv0") })
	Run(t, "ip", "link", "add", "link", "kv0", "name", "insv", "type", "insane")
	t.Cleanup(func() { TryRun("ip", "link", "del", "insv") })
	_ = tp
	r := kRawDial(t)
	name := func(ae *netlink.AttributeEncoder) { ae.String(uapi.DeviceAIfname, "insv") }
	with := func(fs ...func(ae *netlink.AttributeEncoder)) func(ae *netlink.AttributeEncoder) {
		return func(ae *netlink.AttributeEncoder) {
			for _, f := range fs {
				f(ae)
			}
		}
	}
	u32 := func(typ uint16, v uint32) func(ae *netlink.AttributeEncoder) {
		return func(ae *netlink.AttributeEncoder) { ae.Uint32(typ, v) }
	}
	u64 := func(typ uint16, v uint64) func(ae *netlink.AttributeEncoder) {
		return func(ae *netlink.AttributeEncoder) { ae.Uint64(typ, v) }
	}
	kvIndex := GetLink(t, "", "kv0").Ifindex
	loIndex := GetLink(t, "", "lo").Ifindex
	insvIndex := GetLink(t, "", "insv").Ifindex

	cases := []struct {
		name  string
		cmd   uint8
		attrs func(ae *netlink.AttributeEncoder)
		errno unix.Errno
		msg   string
	}{
		{"percent above 100", uapi.CmdSetDevice, with(name, kPolicy(uapi.ModePercent, u32(uapi.PolicyAPercent, uapi.PercentMax+1))), unix.EINVAL, "INSANE_POLICY_A_PERCENT is above 100 percent"},
		{"percent without value", uapi.CmdSetDevice, with(name, kPolicy(uapi.ModePercent, nil)), unix.EINVAL, "INSANE_POLICY_A_PERCENT is required"},
		{"time on+off zero", uapi.CmdSetDevice, with(name, kPolicy(uapi.ModeTime, with(u64(uapi.PolicyAOnNs, 0), u64(uapi.PolicyAOffNs, 0)))), unix.EINVAL, "must be positive"},
		{"time overflow", uapi.CmdSetDevice, with(name, kPolicy(uapi.ModeTime, with(u64(uapi.PolicyAOnNs, 1<<63), u64(uapi.PolicyAOffNs, 1<<63)))), unix.EINVAL, "overflows"},
		{"time without off", uapi.CmdSetDevice, with(name, kPolicy(uapi.ModeTime, u64(uapi.PolicyAOnNs, 5))), unix.EINVAL, "INSANE_POLICY_A_OFF_NS is required"},
		{"unknown mode", uapi.CmdSetDevice, with(name, kPolicy(uapi.ModeMax+1, nil)), unix.EINVAL, "not a known mode"},
		{"seed in pass mode", uapi.CmdSetDevice, with(name, kPolicy(uapi.ModePass, u64(uapi.PolicyASeed, 1))), unix.EINVAL, "INSANE_POLICY_A_SEED is only valid in percent, burst, gilbert and schedule modes, or beside INSANE_POLICY_A_JITTER_NS"},
		{"percent in time mode", uapi.CmdSetDevice, with(name, kPolicy(uapi.ModeTime, with(u64(uapi.PolicyAOnNs, 1), u64(uapi.PolicyAOffNs, 1), u32(uapi.PolicyAPercent, 1)))), unix.EINVAL, "INSANE_POLICY_A_PERCENT is only valid in percent and burst modes"},
		{"on in percent mode", uapi.CmdSetDevice, with(name, kPolicy(uapi.ModePercent, with(u32(uapi.PolicyAPercent, 1), u64(uapi.PolicyAOnNs, 1)))), unix.EINVAL, "INSANE_POLICY_A_ON_NS is only valid in time mode"},
		{"policy without mode", uapi.CmdSetDevice, with(name, func(ae *netlink.AttributeEncoder) {
			ae.Nested(uapi.DeviceAPolicy, func(ne *netlink.AttributeEncoder) error { ne.Uint32(uapi.PolicyAPercent, 5); return nil })
		}), unix.EINVAL, "INSANE_POLICY_A_MODE is required"},
		{"empty policy", uapi.CmdSetDevice, with(name, func(ae *netlink.AttributeEncoder) {
			ae.Nested(uapi.DeviceAPolicy, func(*netlink.AttributeEncoder) error { return nil })
		}), unix.EINVAL, "INSANE_POLICY_A_MODE is required"},
		{"unknown policy attribute", uapi.CmdSetDevice, with(name, kPolicy(uapi.ModePass, u32(uapi.PolicyAMax+1, 1))), unix.EINVAL, ""},
		{"pad as policy attribute", uapi.CmdSetDevice, with(name, kPolicy(uapi.ModePass, u32(uapi.PolicyAPad, 1))), unix.EINVAL, ""},
		{"mode of the wrong size", uapi.CmdSetDevice, with(name, func(ae *netlink.AttributeEncoder) {
			ae.Nested(uapi.DeviceAPolicy, func(ne *netlink.AttributeEncoder) error { ne.Uint8(uapi.PolicyAMode, 1); return nil })
		}), unix.EINVAL, ""},
		{"unknown device attribute", uapi.CmdSetDevice, with(name, u32(uapi.DeviceAMax+1, 1)), unix.EINVAL, ""},
		{"stats in a set", uapi.CmdSetDevice, with(name, func(ae *netlink.AttributeEncoder) {
			ae.Nested(uapi.DeviceAStats, func(*netlink.AttributeEncoder) error { return nil })
		}), unix.EINVAL, "Unsupported attribute"},
		{"lower in a get", uapi.CmdGetDevice, with(name, u32(uapi.DeviceALowerIfindex, 1)), unix.EINVAL, "Unsupported attribute"},
		{"unknown flag", uapi.CmdSetDevice, with(name, u32(uapi.DeviceAFlags, 1<<7)), unix.EINVAL, ""},
		{"detach with a lower", uapi.CmdSetDevice, with(name, u32(uapi.DeviceALowerIfindex, uint32(kvIndex)), u32(uapi.DeviceAFlags, uapi.DeviceFDetach)), unix.EINVAL, "contradicts"},
		{"no device", uapi.CmdSetDevice, nil, unix.EINVAL, "INSANE_DEVICE_A_IFINDEX or INSANE_DEVICE_A_IFNAME is required"},
		{"index and name", uapi.CmdGetDevice, with(name, u32(uapi.DeviceAIfindex, uint32(insvIndex))), unix.EINVAL, "not both"},
		{"no such name", uapi.CmdGetDevice, func(ae *netlink.AttributeEncoder) { ae.String(uapi.DeviceAIfname, "nosuch0") }, unix.ENODEV, "no device has this name"},
		{"no such index", uapi.CmdGetDevice, u32(uapi.DeviceAIfindex, 1<<30), unix.ENODEV, "no device has this index"},
		{"not an insane device", uapi.CmdGetDevice, u32(uapi.DeviceAIfindex, uint32(kvIndex)), unix.EOPNOTSUPP, "not an insane device"},
		{"no such lower", uapi.CmdSetDevice, with(name, func(ae *netlink.AttributeEncoder) { ae.String(uapi.DeviceALowerIfname, "nosuch0") }), unix.ENODEV, "no device has this name"},
		{"loopback lower", uapi.CmdSetDevice, with(name, u32(uapi.DeviceALowerIfindex, uint32(loIndex))), unix.EINVAL, "loopback"},
		{"itself as lower", uapi.CmdSetDevice, with(name, u32(uapi.DeviceALowerIfindex, uint32(insvIndex))), unix.EINVAL, "its own lower"},
		{"name too long", uapi.CmdGetDevice, func(ae *netlink.AttributeEncoder) { ae.String(uapi.DeviceAIfname, strings.Repeat("x", 20)) }, unix.EINVAL, ""},
	}
	for _, tc := range cases {
		_, err := r.do(tc.cmd, 0, tc.attrs)
		kRefused(t, tc.name, err, tc.errno, tc.msg)
	}

	// A dump takes no attribute.
	_, err := r.do(uapi.CmdGetDevice, netlink.Dump, name)
	if err == nil {
		t.Error("a dump with an attribute was accepted")
	}

	// A refused request changes nothing: a valid policy together with a
	// bad lower leaves the old policy.
	_, err = r.do(uapi.CmdSetDevice, 0, with(name, kPolicy(uapi.ModePercent, u32(uapi.PolicyAPercent, 1)), u32(uapi.DeviceALowerIfindex, uint32(loIndex))))
	kRefused(t, "policy with a bad lower", err, unix.EINVAL, "loopback")
	c := kDial(t, "")
	if d := kDevice(t, c, "insv"); d.Policy.Mode != genl.ModePass || d.LowerName != "kv0" {
		t.Errorf("a refused request changed the device: %+v", d)
	}

	// Valid requests still work after all that.
	if _, err := r.do(uapi.CmdSetDevice, 0, with(name, kPolicy(uapi.ModePercent, with(u32(uapi.PolicyAPercent, 12_345_678), u64(uapi.PolicyASeed, 99))))); err != nil {
		t.Fatalf("valid set refused: %v", err)
	}
	d := kDevice(t, c, "insv")
	if d.Policy.Mode != genl.ModePercent || d.Policy.PercentUnits() != 12_345_678 || d.Policy.Seed == nil || *d.Policy.Seed != 99 {
		t.Errorf("policy read back: %+v", d.Policy)
	}
}

// rtnetlink: IFLA_INFO_DATA is validated strictly too, on newlink and on
// changelink, and changelink replaces the policy.
// kRtnlDial opens a strict rtnetlink socket with extended acks, closed when
// the test ends.
func kRtnlDial(t *testing.T) *netlink.Conn {
	t.Helper()
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetOption(netlink.ExtendedAcknowledge, true); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestKernelRtnetlinkInfoData(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	Run(t, "ip", "link", "add", "rv0", "type", "dummy")
	t.Cleanup(func() { TryRun("ip", "link", "del", "rv0") })
	lower := GetLink(t, "", "rv0").Ifindex

	c := kRtnlDial(t)
	link := func(flags netlink.HeaderFlags, name string, data func(ae *netlink.AttributeEncoder)) error {
		ae := netlink.NewAttributeEncoder()
		ae.String(unix.IFLA_IFNAME, name)
		ae.Uint32(unix.IFLA_LINK, uint32(lower))
		ae.Nested(unix.IFLA_LINKINFO, func(li *netlink.AttributeEncoder) error {
			li.String(unix.IFLA_INFO_KIND, uapi.LinkKind)
			if data != nil {
				li.Nested(unix.IFLA_INFO_DATA, func(d *netlink.AttributeEncoder) error { data(d); return nil })
			}
			return nil
		})
		b, err := ae.Encode()
		if err != nil {
			return err
		}
		ifi := make([]byte, unix.SizeofIfInfomsg) // AF_UNSPEC, no index
		_, err = c.Execute(netlink.Message{
			Header: netlink.Header{Type: unix.RTM_NEWLINK, Flags: netlink.Request | netlink.Acknowledge | flags},
			Data:   append(ifi, b...),
		})
		return err
	}
	percent := func(v uint32) func(ae *netlink.AttributeEncoder) {
		return func(ae *netlink.AttributeEncoder) {
			ae.Uint32(uapi.PolicyAMode, uapi.ModePercent)
			ae.Uint32(uapi.PolicyAPercent, v)
		}
	}
	create := netlink.Create | netlink.Excl

	kRefused(t, "newlink percent above 100", link(create, "rins0", percent(uapi.PercentMax+1)), unix.EINVAL, "above 100 percent")
	kRefused(t, "newlink unknown attribute", link(create, "rins0", func(ae *netlink.AttributeEncoder) {
		ae.Uint32(uapi.PolicyAMode, uapi.ModePass)
		ae.Uint32(uapi.PolicyAMax+1, 1)
	}), unix.EINVAL, "")
	kRefused(t, "newlink seed in time mode", link(create, "rins0", func(ae *netlink.AttributeEncoder) {
		ae.Uint32(uapi.PolicyAMode, uapi.ModeTime)
		ae.Uint64(uapi.PolicyAOnNs, 1)
		ae.Uint64(uapi.PolicyAOffNs, 1)
		ae.Uint64(uapi.PolicyASeed, 1)
	}), unix.EINVAL, "INSANE_POLICY_A_SEED is only valid in percent, burst, gilbert and schedule modes, or beside INSANE_POLICY_A_JITTER_NS")
	if _, err := TryGetLink("", "rins0"); err == nil {
		t.Fatal("a refused newlink left rins0 behind")
	}

	if err := link(create, "rins0", percent(25_000_000)); err != nil {
		t.Fatalf("newlink with policy: %v", err)
	}
	t.Cleanup(func() { TryRun("ip", "link", "del", "rins0") })
	gc := kDial(t, "")
	if d := kDevice(t, gc, "rins0"); d.Policy.Mode != genl.ModePercent || d.Policy.PercentUnits() != 25_000_000 || d.LowerName != "rv0" {
		t.Errorf("created by rtnetlink: %+v", d)
	}
	// changelink: the same message without NLM_F_CREATE.
	if err := link(0, "rins0", func(ae *netlink.AttributeEncoder) {
		ae.Uint32(uapi.PolicyAMode, uapi.ModeTime)
		ae.Uint64(uapi.PolicyAOnNs, 3e9)
		ae.Uint64(uapi.PolicyAOffNs, 1e9)
	}); err != nil {
		t.Fatalf("changelink: %v", err)
	}
	if d := kDevice(t, gc, "rins0"); d.Policy.Mode != genl.ModeTime || d.Policy.On.Seconds() != 3 || d.Policy.Off.Seconds() != 1 {
		t.Errorf("after changelink: %+v", d.Policy)
	}
	kRefused(t, "changelink zero period", link(0, "rins0", func(ae *netlink.AttributeEncoder) {
		ae.Uint32(uapi.PolicyAMode, uapi.ModeTime)
		ae.Uint64(uapi.PolicyAOnNs, 0)
		ae.Uint64(uapi.PolicyAOffNs, 0)
	}), unix.EINVAL, "must be positive")
}
