//go:build vmtest

package guest

// Shared helpers of the torture, fault and fuzz suite (torture_*_test.go):
// the scale knob, a raw netlink socket that sees every reply byte, a strict
// parser for the insane family's replies, and UDP traffic helpers that keep
// one socket per sender.
//
// Scale: make test runs the light sizes; make torture boots the guest with
// INSANE_TORTURE=full on the kernel command line (the kernel passes unknown
// name=value parameters to init's environment, and so to the test binary),
// which selects the full sizes.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

// ttFull reports whether the full torture sizes were asked for.
func ttFull() bool { return os.Getenv("INSANE_TORTURE") == "full" }

// ttSize returns light or full, as the scale knob says.
func ttSize(light, full int) int {
	if ttFull() {
		return full
	}
	return light
}

// ttChurn sets insane0's transmit and receive policies (in tp.Borea) from
// policies in turn for dur, 5 ms apart, the receive one moving on every
// rxEvery changes; every 50 changes it takes insane0 down and up and puts
// its route back. It returns how many changes it made.
func ttChurn(t *testing.T, c *kmConn, tp *Topo, policies [][]kmA, rxEvery int, dur time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(dur)
	i := 0
	for ; time.Now().Before(deadline); i++ {
		tx, rx := policies[i%len(policies)], policies[(i/rxEvery)%len(policies)]
		if r := c.set("insane0", kmNest(uapi.DeviceAPolicy, tx...), kmNest(uapi.DeviceARxPolicy, rx...)); r.errno != 0 {
			t.Fatalf("churn %d: %v: %s", i, r.errno, r.msg)
		}
		if i%50 == 49 {
			RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "down")
			RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "up")
			RunIn(t, tp.Borea, "ip", "route", "replace", tp.MorganaIP+"/32", "dev", "insane0")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return i
}

// ttFamily returns the insane generic-netlink family ID, as seen from
// network namespace ns.
func ttFamily(t testing.TB, ns string) uint16 {
	t.Helper()
	id, _ := egGroup(t, ns)
	return id
}

// ttNl is a raw netlink socket. Unlike a netlink.Conn it hands back every
// message of a reply as bytes, so that the tests can check them strictly.
type ttNl struct {
	fd  int
	pid uint32
	seq uint32
	buf []byte
}

// ttNlOpen opens a netlink socket of protocol proto in network namespace ns,
// with extended acks and strict checking on, and a receive timeout that turns
// a missing reply into an error instead of a hang.
func ttNlOpen(ns string, proto int) (*ttNl, error) {
	n := &ttNl{buf: make([]byte, 1<<20)}
	err := vmnet.Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		n.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := n.setup(); err != nil {
		unix.Close(n.fd)
		return nil, err
	}
	return n, nil
}

func (n *ttNl) setup() error {
	if err := unix.Bind(n.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	sa, err := unix.Getsockname(n.fd)
	if err != nil {
		return err
	}
	n.pid = sa.(*unix.SockaddrNetlink).Pid
	for _, o := range []int{unix.NETLINK_EXT_ACK, unix.NETLINK_GET_STRICT_CHK} {
		if err := unix.SetsockoptInt(n.fd, unix.SOL_NETLINK, o, 1); err != nil {
			return fmt.Errorf("setsockopt %d: %w", o, err)
		}
	}
	if err := unix.SetsockoptInt(n.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20); err != nil {
		return err
	}
	tv := unix.Timeval{Sec: 30}
	return unix.SetsockoptTimeval(n.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
}

func (n *ttNl) Close() error { return unix.Close(n.fd) }

// ttMsg is one netlink message of a reply.
type ttMsg struct {
	Type  uint16
	Flags uint16
	Seq   uint32
	Pid   uint32
	Data  []byte // the payload after the 16-byte header
}

// request sends one message (typ, flags, payload) with the next sequence
// number and returns that number.
func (n *ttNl) request(typ, flags uint16, payload []byte) (uint32, error) {
	n.seq++
	b := make([]byte, unix.NLMSG_HDRLEN+len(payload))
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], n.seq)
	binary.NativeEndian.PutUint32(b[12:], n.pid)
	copy(b[16:], payload)
	return n.seq, unix.Sendto(n.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// replies reads the reply to request seq up to and including its
// NLMSG_ERROR or NLMSG_DONE. Every message must be well framed, carry seq
// and be addressed to this socket: anything else is an error.
func (n *ttNl) replies(seq uint32) ([]ttMsg, error) {
	var out []ttMsg
	for {
		nr, _, err := unix.Recvfrom(n.fd, n.buf, unix.MSG_TRUNC)
		if err != nil {
			return out, fmt.Errorf("receiving the reply to seq %d: %w", seq, err)
		}
		if nr > len(n.buf) {
			return out, fmt.Errorf("a reply of %d bytes was truncated", nr)
		}
		b := n.buf[:nr]
		for len(b) > 0 {
			if len(b) < unix.NLMSG_HDRLEN {
				return out, fmt.Errorf("%d trailing bytes after the last message", len(b))
			}
			l := int(binary.NativeEndian.Uint32(b))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return out, fmt.Errorf("message length %d with %d bytes left", l, len(b))
			}
			m := ttMsg{
				Type:  binary.NativeEndian.Uint16(b[4:]),
				Flags: binary.NativeEndian.Uint16(b[6:]),
				Seq:   binary.NativeEndian.Uint32(b[8:]),
				Pid:   binary.NativeEndian.Uint32(b[12:]),
				Data:  append([]byte(nil), b[unix.NLMSG_HDRLEN:l]...),
			}
			if m.Seq != seq || m.Pid != n.pid {
				return out, fmt.Errorf("message type %d seq %d pid %d in the reply to seq %d (pid %d)", m.Type, m.Seq, m.Pid, seq, n.pid)
			}
			out = append(out, m)
			if a := nlmAlign(l); a < len(b) {
				b = b[a:]
			} else {
				b = nil
			}
			if m.Type == unix.NLMSG_ERROR || m.Type == unix.NLMSG_DONE {
				if len(b) != 0 {
					return out, fmt.Errorf("%d bytes after the reply's last message", len(b))
				}
				return out, nil
			}
		}
	}
}

func nlmAlign(l int) int { return (l + 3) &^ 3 }

// ttNlErr checks an NLMSG_ERROR payload strictly and returns its errno (0
// for an ack) and the extack message, if any.
func ttNlErr(m ttMsg, reqLen int) (unix.Errno, string, error) {
	if len(m.Data) < 4+unix.NLMSG_HDRLEN {
		return 0, "", fmt.Errorf("NLMSG_ERROR of %d bytes", len(m.Data))
	}
	code := int32(binary.NativeEndian.Uint32(m.Data))
	if code > 0 || code < -4095 {
		return 0, "", fmt.Errorf("NLMSG_ERROR code %d", code)
	}
	origLen := int(binary.NativeEndian.Uint32(m.Data[4:]))
	if origLen != reqLen {
		return 0, "", fmt.Errorf("NLMSG_ERROR quotes a request of %d bytes, sent %d", origLen, reqLen)
	}
	rest := m.Data[4:]
	// The kernel quotes the whole request unless the ack is capped (always
	// for an ack, and for errors when NLM_F_CAPPED says so).
	if m.Flags&unix.NLM_F_CAPPED != 0 || code == 0 {
		rest = rest[unix.NLMSG_HDRLEN:]
	} else {
		if len(rest) < nlmAlign(origLen) {
			return 0, "", fmt.Errorf("NLMSG_ERROR quotes %d of %d bytes", len(rest), origLen)
		}
		rest = rest[nlmAlign(origLen):]
	}
	var msg string
	if m.Flags&unix.NLM_F_ACK_TLVS == 0 {
		if len(rest) != 0 {
			return 0, "", fmt.Errorf("%d bytes after NLMSG_ERROR without NLM_F_ACK_TLVS", len(rest))
		}
		return unix.Errno(-code), "", nil
	}
	attrs, err := ttParseAttrs(rest)
	if err != nil {
		return 0, "", fmt.Errorf("extack TLVs: %w", err)
	}
	for _, a := range attrs {
		switch a.Type {
		case unix.NLMSGERR_ATTR_MSG:
			s, err := ttNulString(a.Data, 1024)
			if err != nil {
				return 0, "", fmt.Errorf("extack message: %w", err)
			}
			msg = s
		case unix.NLMSGERR_ATTR_OFFS:
			if len(a.Data) != 4 {
				return 0, "", fmt.Errorf("extack offset of %d bytes", len(a.Data))
			}
			if off := binary.NativeEndian.Uint32(a.Data); int(off) >= reqLen {
				return 0, "", fmt.Errorf("extack offset %d beyond the %d-byte request", off, reqLen)
			}
		case 5, 6: // NLMSGERR_ATTR_MISS_TYPE, NLMSGERR_ATTR_MISS_NEST (6.0)
			if len(a.Data) != 4 {
				return 0, "", fmt.Errorf("extack attribute %d of %d bytes", a.Type, len(a.Data))
			}
		case 4: // NLMSGERR_ATTR_POLICY
			if _, err := ttParseAttrs(a.Data); err != nil {
				return 0, "", fmt.Errorf("extack policy: %w", err)
			}
		case unix.NLMSGERR_ATTR_COOKIE:
		default:
			return 0, "", fmt.Errorf("unknown extack attribute %d", a.Type)
		}
	}
	return unix.Errno(-code), msg, nil
}

// ttAttr is one netlink attribute.
type ttAttr struct {
	Type   uint16 // without the NLA_F_NESTED and byte-order flags
	Nested bool
	Data   []byte
}

// ttParseAttrs splits b into attributes, refusing anything malformed:
// short headers, lengths past the end, or bytes left over.
func ttParseAttrs(b []byte) ([]ttAttr, error) {
	var out []ttAttr
	for len(b) > 0 {
		if len(b) < unix.NLA_HDRLEN {
			return nil, fmt.Errorf("%d trailing bytes", len(b))
		}
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:])
		if l < unix.NLA_HDRLEN || l > len(b) {
			return nil, fmt.Errorf("attribute %d of length %d with %d bytes left", typ&ttNlaTypeMask, l, len(b))
		}
		out = append(out, ttAttr{Type: typ & ttNlaTypeMask, Nested: typ&unix.NLA_F_NESTED != 0, Data: b[unix.NLA_HDRLEN:l]})
		a := nlmAlign(l)
		if a > len(b) {
			a = len(b)
		}
		b = b[a:]
	}
	return out, nil
}

// ttNulString checks a NUL-terminated string of at most max bytes before
// the NUL.
func ttNulString(b []byte, max int) (string, error) {
	if len(b) == 0 || b[len(b)-1] != 0 {
		return "", fmt.Errorf("string %q is not NUL-terminated", b)
	}
	s := string(b[:len(b)-1])
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return "", fmt.Errorf("string %q has an inner NUL", s)
		}
	}
	if len(s) > max {
		return "", fmt.Errorf("string of %d bytes, at most %d", len(s), max)
	}
	return s, nil
}

// ttDev is a device as a GET_DEVICE reply or an event describes it, parsed
// strictly.
type ttDev struct {
	Index, LowerIndex uint32
	Name, LowerName   string
	Mode, Percent     uint32
	Seed              *uint64
	On, Off           uint64
	// Burst, gilbert and schedule modes (issue 16).
	Burst                           uint32
	GeP, GeR, GeLossBad, GeLossGood uint32
	Steps                           []*ttDev // a schedule's steps, each with its Duration
	Duration                        uint64   // in a step
	Once                            bool
	Carrier, Events                 bool    // time and schedule modes (issue 17)
	StepIndex                       *uint32 // time and schedule modes
	StepLeft                        *uint64
	// Rate, duplication and corruption (issue 25), in any policy but a
	// schedule and in any step.
	Rate, Buffer                 uint64
	Overhead, Duplicate, Corrupt uint32
	CorruptHeader                bool
	Stats                        [uapi.StatsAMax + 1]uint64
	Event                        uint32
	Rx                           *ttDev // the receive policy (its mode and attributes), nil while off
}

// ttParseDevice checks a generic-netlink message of the insane family
// (header and attributes) against the uapi: every attribute known, of the
// right size, once; the required ones present; the policy complete for its
// mode; every counter present.
func ttParseDevice(data []byte, wantCmd uint8) (*ttDev, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("genl header of %d bytes", len(data))
	}
	if data[0] != wantCmd || data[1] != uapi.GenlVersion || data[2] != 0 || data[3] != 0 {
		return nil, fmt.Errorf("genl header % x, want command %d version %d", data[:4], wantCmd, uapi.GenlVersion)
	}
	attrs, err := ttParseAttrs(data[4:])
	if err != nil {
		return nil, err
	}
	d := &ttDev{}
	seen := map[uint16]bool{}
	u32 := func(a ttAttr) (uint32, error) {
		if len(a.Data) != 4 {
			return 0, fmt.Errorf("attribute %d: %d bytes, want 4", a.Type, len(a.Data))
		}
		return binary.NativeEndian.Uint32(a.Data), nil
	}
	for _, a := range attrs {
		if seen[a.Type] {
			return nil, fmt.Errorf("attribute %d twice", a.Type)
		}
		seen[a.Type] = true
		switch a.Type {
		case uapi.DeviceAIfindex:
			d.Index, err = u32(a)
		case uapi.DeviceALowerIfindex:
			d.LowerIndex, err = u32(a)
		case uapi.DeviceAEvent:
			if wantCmd != uapi.CmdEvent {
				return nil, errors.New("INSANE_DEVICE_A_EVENT outside an event")
			}
			d.Event, err = u32(a)
			if err == nil && (d.Event == 0 || d.Event > uapi.EventMax) {
				err = fmt.Errorf("event %d", d.Event)
			}
		case uapi.DeviceAIfname:
			d.Name, err = ttNulString(a.Data, unix.IFNAMSIZ-1)
		case uapi.DeviceALowerIfname:
			d.LowerName, err = ttNulString(a.Data, unix.IFNAMSIZ-1)
		case uapi.DeviceAPolicy:
			err = ttParsePolicy(a.Data, d)
		case uapi.DeviceARxPolicy:
			d.Rx = &ttDev{}
			err = ttParsePolicy(a.Data, d.Rx)
			if err == nil && d.Rx.Carrier {
				err = errors.New("INSANE_POLICY_A_CARRIER in a receive policy")
			}
		case uapi.DeviceAStats:
			err = ttParseStats(a.Data, d)
		default:
			err = fmt.Errorf("unexpected attribute %d", a.Type)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, need := range []uint16{uapi.DeviceAIfindex, uapi.DeviceAIfname, uapi.DeviceAPolicy, uapi.DeviceAStats} {
		if !seen[need] {
			return nil, fmt.Errorf("attribute %d missing", need)
		}
	}
	if wantCmd == uapi.CmdEvent && !seen[uapi.DeviceAEvent] {
		return nil, errors.New("event without INSANE_DEVICE_A_EVENT")
	}
	if seen[uapi.DeviceALowerIfindex] != seen[uapi.DeviceALowerIfname] {
		return nil, errors.New("only one of the lower's index and name")
	}
	if d.Index == 0 || d.Name == "" {
		return nil, fmt.Errorf("device index %d name %q", d.Index, d.Name)
	}
	return d, nil
}

func ttParsePolicy(b []byte, d *ttDev) error { return ttParsePolicyIn(b, d, false) }

// ttParsePolicyIn parses a policy, or with step a step of a schedule: every
// attribute known, of its size, once; exactly the mode's attributes, the
// required ones present and in range; the step reported for time and
// schedule modes.
func ttParsePolicyIn(b []byte, d *ttDev, step bool) error {
	attrs, err := ttParseAttrs(b)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	seen := map[uint16]bool{}
	for _, a := range attrs {
		if a.Type == uapi.PolicyAPad {
			continue
		}
		if seen[a.Type] {
			return fmt.Errorf("policy attribute %d twice", a.Type)
		}
		seen[a.Type] = true
		if a.Type == 0 || a.Type > uapi.PolicyAMax {
			return fmt.Errorf("unknown policy attribute %d", a.Type)
		}
		want := 8
		switch a.Type {
		case uapi.PolicyAMode, uapi.PolicyAPercent, uapi.PolicyABurst, uapi.PolicyAGeP, uapi.PolicyAGeR,
			uapi.PolicyAGeLossBad, uapi.PolicyAGeLossGood, uapi.PolicyAStepIndex,
			uapi.PolicyACorrelation, uapi.PolicyADistribution, uapi.PolicyALimit,
			uapi.PolicyAOverhead, uapi.PolicyADuplicate, uapi.PolicyACorrupt:
			want = 4
		case uapi.PolicyAOnce, uapi.PolicyACarrier, uapi.PolicyAEvents, uapi.PolicyAReorder,
			uapi.PolicyACorruptHeader:
			want = 0
		case uapi.PolicyASteps:
			want = len(a.Data)
			if !a.Nested {
				return errors.New("INSANE_POLICY_A_STEPS without NLA_F_NESTED")
			}
		}
		if len(a.Data) != want {
			return fmt.Errorf("policy attribute %d: %d bytes, want %d", a.Type, len(a.Data), want)
		}
		var v32 uint32
		if want == 4 {
			v32 = binary.NativeEndian.Uint32(a.Data)
		}
		switch a.Type {
		case uapi.PolicyAMode:
			d.Mode = v32
		case uapi.PolicyAPercent:
			d.Percent = v32
		case uapi.PolicyABurst:
			d.Burst = v32
		case uapi.PolicyAGeP:
			d.GeP = v32
		case uapi.PolicyAGeR:
			d.GeR = v32
		case uapi.PolicyAGeLossBad:
			d.GeLossBad = v32
		case uapi.PolicyAGeLossGood:
			d.GeLossGood = v32
		case uapi.PolicyAStepIndex:
			d.StepIndex = &v32
		case uapi.PolicyASeed:
			s := binary.NativeEndian.Uint64(a.Data)
			d.Seed = &s
		case uapi.PolicyAOnNs:
			d.On = binary.NativeEndian.Uint64(a.Data)
		case uapi.PolicyAOffNs:
			d.Off = binary.NativeEndian.Uint64(a.Data)
		case uapi.PolicyADurationNs:
			d.Duration = binary.NativeEndian.Uint64(a.Data)
		case uapi.PolicyAStepLeftNs:
			l := binary.NativeEndian.Uint64(a.Data)
			d.StepLeft = &l
		case uapi.PolicyAOnce:
			d.Once = true
		case uapi.PolicyACarrier:
			d.Carrier = true
		case uapi.PolicyAEvents:
			d.Events = true
		case uapi.PolicyARate:
			d.Rate = binary.NativeEndian.Uint64(a.Data)
		case uapi.PolicyABufferNs:
			d.Buffer = binary.NativeEndian.Uint64(a.Data)
		case uapi.PolicyAOverhead:
			d.Overhead = v32
		case uapi.PolicyADuplicate:
			d.Duplicate = v32
		case uapi.PolicyACorrupt:
			d.Corrupt = v32
		case uapi.PolicyACorruptHeader:
			d.CorruptHeader = true
		case uapi.PolicyASteps:
			if step {
				return errors.New("INSANE_POLICY_A_STEPS in a step")
			}
			steps, err := ttParseAttrs(a.Data)
			if err != nil {
				return fmt.Errorf("steps: %w", err)
			}
			for i, st := range steps {
				if st.Type != uapi.StepsAStep || !st.Nested {
					return fmt.Errorf("steps: attribute %d (nested %v)", st.Type, st.Nested)
				}
				sd := &ttDev{}
				if err := ttParsePolicyIn(st.Data, sd, true); err != nil {
					return fmt.Errorf("step %d: %w", i, err)
				}
				d.Steps = append(d.Steps, sd)
			}
		}
	}
	if !seen[uapi.PolicyAMode] {
		return errors.New("policy without a mode")
	}
	only := func(allowed ...uint16) error {
		ok := map[uint16]bool{uapi.PolicyAMode: true}
		// The delay stage (issue 24), in any policy and any step.
		// Rate, duplicate and corrupt (issue 25) too.
		for _, typ := range []uint16{uapi.PolicyADelayNs, uapi.PolicyAJitterNs, uapi.PolicyACorrelation,
			uapi.PolicyADistribution, uapi.PolicyAReorder, uapi.PolicyARate, uapi.PolicyAOverhead,
			uapi.PolicyABufferNs, uapi.PolicyADuplicate, uapi.PolicyACorrupt, uapi.PolicyACorruptHeader} {
			ok[typ] = d.Mode != uapi.ModeSchedule
		}
		if !step {
			ok[uapi.PolicyALimit] = true
			if seen[uapi.PolicyAJitterNs] || seen[uapi.PolicyADuplicate] || seen[uapi.PolicyACorrupt] {
				ok[uapi.PolicyASeed] = true
			}
		}
		if step {
			ok[uapi.PolicyADurationNs] = true
		} else if d.Mode != uapi.ModePass && d.Mode != uapi.ModeDrop && d.Mode != uapi.ModeTime {
			ok[uapi.PolicyASeed] = true
		}
		for _, a := range allowed {
			ok[a] = true
		}
		for typ := range seen {
			if !ok[typ] {
				return fmt.Errorf("mode %d with policy attribute %d", d.Mode, typ)
			}
		}
		return nil
	}
	share := func(v uint32) bool { return v <= uapi.PercentMax }
	if err := ttCheckExtras(d, seen); err != nil {
		return err
	}
	if step {
		if !seen[uapi.PolicyADurationNs] || d.Duration == 0 {
			return fmt.Errorf("step of mode %d with duration %d (present %v)", d.Mode, d.Duration, seen[uapi.PolicyADurationNs])
		}
		if d.Mode == uapi.ModeTime || d.Mode == uapi.ModeSchedule {
			return fmt.Errorf("step of mode %d", d.Mode)
		}
	}
	switch d.Mode {
	case uapi.ModePass, uapi.ModeDrop:
		return only()
	case uapi.ModePercent:
		if !seen[uapi.PolicyAPercent] || !share(d.Percent) {
			return fmt.Errorf("percent mode with percent %d (present %v)", d.Percent, seen[uapi.PolicyAPercent])
		}
		return only(uapi.PolicyAPercent)
	case uapi.ModeBurst:
		if !seen[uapi.PolicyAPercent] || !seen[uapi.PolicyABurst] || d.Percent == 0 || !share(d.Percent) ||
			d.Burst < uapi.BurstScale || uint64(uapi.PercentMax-d.Percent)*uapi.BurstScale > uint64(d.Percent)*uint64(d.Burst) {
			return fmt.Errorf("burst mode with percent %d burst %d", d.Percent, d.Burst)
		}
		return only(uapi.PolicyAPercent, uapi.PolicyABurst)
	case uapi.ModeGilbert:
		for _, typ := range []uint16{uapi.PolicyAGeP, uapi.PolicyAGeR, uapi.PolicyAGeLossBad, uapi.PolicyAGeLossGood} {
			if !seen[typ] {
				return fmt.Errorf("gilbert mode without attribute %d", typ)
			}
		}
		if d.GeR == 0 || !share(d.GeP) || !share(d.GeR) || !share(d.GeLossBad) || !share(d.GeLossGood) {
			return fmt.Errorf("gilbert mode with p %d r %d losses %d %d", d.GeP, d.GeR, d.GeLossBad, d.GeLossGood)
		}
		return only(uapi.PolicyAGeP, uapi.PolicyAGeR, uapi.PolicyAGeLossBad, uapi.PolicyAGeLossGood)
	case uapi.ModeTime:
		if step {
			return errors.New("time mode in a step")
		}
		if !seen[uapi.PolicyAOnNs] || !seen[uapi.PolicyAOffNs] || d.On+d.Off < d.On || d.On+d.Off == 0 {
			return fmt.Errorf("time mode with on %d off %d", d.On, d.Off)
		}
		if d.StepIndex == nil || *d.StepIndex > 1 || d.StepLeft == nil ||
			*d.StepLeft == 0 || *d.StepLeft > []uint64{d.On, d.Off}[*d.StepIndex] {
			return fmt.Errorf("time mode on %d off %d reports step %v left %v", d.On, d.Off, d.StepIndex, d.StepLeft)
		}
		if (d.Carrier || d.Events) && (d.On < uapi.EdgeMinNs || d.Off < uapi.EdgeMinNs) {
			return fmt.Errorf("time mode on %d off %d with carrier %v events %v", d.On, d.Off, d.Carrier, d.Events)
		}
		return only(uapi.PolicyAOnNs, uapi.PolicyAOffNs, uapi.PolicyAStepIndex, uapi.PolicyAStepLeftNs, uapi.PolicyACarrier, uapi.PolicyAEvents)
	case uapi.ModeSchedule:
		if !seen[uapi.PolicyASteps] || len(d.Steps) == 0 || len(d.Steps) > uapi.ScheduleStepsMax {
			return fmt.Errorf("schedule of %d steps", len(d.Steps))
		}
		var total uint64
		for _, st := range d.Steps {
			if total+st.Duration < total || total+st.Duration > 1<<63-1 {
				return errors.New("schedule whose steps last more than 2^63 - 1 ns")
			}
			total += st.Duration
		}
		if d.StepIndex == nil || int(*d.StepIndex) >= len(d.Steps) {
			return fmt.Errorf("schedule of %d steps reports step %v", len(d.Steps), d.StepIndex)
		}
		if d.StepLeft == nil && !(d.Once && int(*d.StepIndex) == len(d.Steps)-1) {
			return fmt.Errorf("schedule (once %v) in step %d of %d without the time left", d.Once, *d.StepIndex, len(d.Steps))
		}
		if d.StepLeft != nil && (*d.StepLeft == 0 || *d.StepLeft > d.Steps[*d.StepIndex].Duration) {
			return fmt.Errorf("step %d of %d ns with %d ns left", *d.StepIndex, d.Steps[*d.StepIndex].Duration, *d.StepLeft)
		}
		for i, st := range d.Steps {
			if (d.Carrier || d.Events) && st.Duration < uapi.EdgeMinNs {
				return fmt.Errorf("step %d of %d ns with carrier %v events %v", i, st.Duration, d.Carrier, d.Events)
			}
		}
		return only(uapi.PolicyASteps, uapi.PolicyAOnce, uapi.PolicyAStepIndex, uapi.PolicyAStepLeftNs, uapi.PolicyACarrier, uapi.PolicyAEvents)
	}
	return fmt.Errorf("unknown mode %d", d.Mode)
}

func ttParseStats(b []byte, d *ttDev) error {
	attrs, err := ttParseAttrs(b)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	seen := map[uint16]bool{}
	for _, a := range attrs {
		if a.Type == uapi.StatsAPad {
			continue
		}
		if a.Type == 0 || a.Type > uapi.StatsAMax {
			return fmt.Errorf("unknown stats attribute %d", a.Type)
		}
		if seen[a.Type] {
			return fmt.Errorf("stats attribute %d twice", a.Type)
		}
		seen[a.Type] = true
		if len(a.Data) != 8 {
			return fmt.Errorf("stats attribute %d: %d bytes", a.Type, len(a.Data))
		}
		d.Stats[a.Type] = binary.NativeEndian.Uint64(a.Data)
	}
	for typ := uint16(uapi.StatsARelayedPackets); typ <= uapi.StatsAMax; typ++ {
		if !seen[typ] {
			return fmt.Errorf("stats attribute %d missing", typ)
		}
	}
	return nil
}

// ttDump dumps the insane devices with raw socket n (family fam) and parses
// every message strictly. interrupted reports NLM_F_DUMP_INTR.
func ttDump(n *ttNl, fam uint16) (devs []*ttDev, interrupted bool, err error) {
	seq, err := n.request(fam, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, []byte{uapi.CmdGetDevice, uapi.GenlVersion, 0, 0})
	if err != nil {
		return nil, false, err
	}
	msgs, err := n.replies(seq)
	if err != nil {
		return nil, false, err
	}
	for _, m := range msgs {
		if m.Flags&unix.NLM_F_DUMP_INTR != 0 {
			interrupted = true
		}
		switch m.Type {
		case fam:
			if m.Flags&unix.NLM_F_MULTI == 0 {
				return nil, false, errors.New("dump message without NLM_F_MULTI")
			}
			d, err := ttParseDevice(m.Data, uapi.CmdGetDevice)
			if err != nil {
				return nil, false, err
			}
			devs = append(devs, d)
		case unix.NLMSG_DONE:
			if len(m.Data) < 4 {
				return nil, false, fmt.Errorf("NLMSG_DONE of %d bytes", len(m.Data))
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return nil, false, fmt.Errorf("dump ended with %v", unix.Errno(-code))
			}
		case unix.NLMSG_ERROR:
			errno, msg, perr := ttNlErr(m, unix.NLMSG_HDRLEN+4)
			if perr != nil {
				return nil, false, perr
			}
			return nil, false, fmt.Errorf("dump refused: %v: %s", errno, msg)
		default:
			return nil, false, fmt.Errorf("message type %d in a dump", m.Type)
		}
	}
	return devs, interrupted, nil
}

// Traffic. ttSink counts the datagrams that reach a UDP port; ttSender
// sends on one socket until told to stop, counting each datagram before it
// is handed to the kernel, so that the count bounds what the kernel saw.

type ttSink struct {
	conn *net.UDPConn
	n    atomic.Int64
	done chan struct{}
	// record, when set, receives each datagram's first 16 bytes.
	record func([]byte)
}

// ttListen opens a sink on addr ("ip:port") in namespace ns.
func ttListen(t testing.TB, ns, addr string, record func([]byte)) *ttSink {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &ttSink{done: make(chan struct{}), record: record}
	if err := vmnet.Do(ns, func() error {
		var err error
		s.conn, err = net.ListenUDP("udp", ua)
		return err
	}); err != nil {
		t.Fatalf("listening in %s: %v", ns, err)
	}
	if err := s.conn.SetReadBuffer(16 << 20); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		buf := make([]byte, 2048)
		for {
			n, _, err := s.conn.ReadFromUDP(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if s.record != nil && n >= 16 {
				s.record(buf[:16])
			}
			s.n.Add(1)
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *ttSink) Port() int    { return s.conn.LocalAddr().(*net.UDPAddr).Port }
func (s *ttSink) Count() int64 { return s.n.Load() }
func (s *ttSink) Close()       { s.conn.Close(); <-s.done }
func (s *ttSink) Quiet() int64 { return s.WaitQuiet(-1, 500*time.Millisecond) }

// WaitQuiet waits until n datagrams arrived (n >= 0) or nothing arrived for
// quiet, within 30 s, and returns the count.
func (s *ttSink) WaitQuiet(n int64, quiet time.Duration) int64 {
	deadline := time.Now().Add(30 * time.Second)
	last, lastChange := s.Count(), time.Now()
	for time.Now().Before(deadline) {
		c := s.Count()
		if n >= 0 && c >= n {
			return c
		}
		if c != last {
			last, lastChange = c, time.Now()
		} else if time.Since(lastChange) >= quiet {
			return c
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s.Count()
}

// ttSender sends datagrams from namespace ns to dsts in turn until Stop.
type ttSender struct {
	attempted atomic.Int64
	refused   atomic.Int64
	stop      chan struct{}
	wg        sync.WaitGroup
}

// ttSend starts a sender. Each datagram carries id and its sequence number
// in its first 16 bytes. Every burst of 32 it pauses for pause (if any).
// cpu >= 0 pins the sending thread to that CPU.
func ttSend(t testing.TB, ns string, dsts []string, id uint64, cpu int, pause time.Duration) *ttSender {
	t.Helper()
	var conns []*net.UDPConn
	var addrs []*net.UDPAddr
	for _, d := range dsts {
		ua, err := net.ResolveUDPAddr("udp", d)
		if err != nil {
			t.Fatal(err)
		}
		var c *net.UDPConn
		network := "udp4"
		if ua.IP.To4() == nil {
			network = "udp6"
		}
		if err := vmnet.Do(ns, func() error {
			var err error
			c, err = net.ListenUDP(network, nil)
			return err
		}); err != nil {
			t.Fatalf("sender socket in %s: %v", ns, err)
		}
		conns = append(conns, c)
		addrs = append(addrs, ua)
	}
	s := &ttSender{stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		if cpu >= 0 {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var set unix.CPUSet
			set.Set(cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				t.Errorf("pinning a sender to CPU %d: %v", cpu, err)
			}
		}
		buf := make([]byte, 64)
		for seq := uint64(0); ; seq++ {
			if seq%32 == 0 {
				select {
				case <-s.stop:
					return
				default:
				}
				if pause > 0 {
					time.Sleep(pause)
				}
			}
			binary.BigEndian.PutUint64(buf, id)
			binary.BigEndian.PutUint64(buf[8:], seq)
			i := int(seq) % len(conns)
			s.attempted.Add(1)
			if _, err := conns[i].WriteToUDP(buf, addrs[i]); err != nil {
				s.refused.Add(1)
			}
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

// Stop stops the sender and waits for it; it may be called more than once.
func (s *ttSender) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
}

// ttGet reads a device with GET_DEVICE over raw socket n, strictly parsed.
func ttGet(n *ttNl, fam uint16, name string) (*ttDev, error) {
	payload := append([]byte{uapi.CmdGetDevice, uapi.GenlVersion, 0, 0}, ttAttrBytes(uapi.DeviceAIfname, append([]byte(name), 0))...)
	seq, err := n.request(fam, unix.NLM_F_REQUEST|unix.NLM_F_ACK, payload)
	if err != nil {
		return nil, err
	}
	msgs, err := n.replies(seq)
	if err != nil {
		return nil, err
	}
	var d *ttDev
	for _, m := range msgs {
		switch m.Type {
		case fam:
			if d != nil {
				return nil, errors.New("two devices in a GET reply")
			}
			if d, err = ttParseDevice(m.Data, uapi.CmdGetDevice); err != nil {
				return nil, err
			}
		case unix.NLMSG_ERROR:
			errno, msg, err := ttNlErr(m, unix.NLMSG_HDRLEN+len(payload))
			if err != nil {
				return nil, err
			}
			if errno != 0 {
				return nil, fmt.Errorf("GET %s: %w: %s", name, errno, msg)
			}
		default:
			return nil, fmt.Errorf("message type %d in a GET reply", m.Type)
		}
	}
	if d == nil {
		return nil, errors.New("GET reply without a device")
	}
	return d, nil
}

// ttAttrBytes encodes one attribute, padded.
func ttAttrBytes(typ uint16, data []byte) []byte {
	l := unix.NLA_HDRLEN + len(data)
	b := make([]byte, nlmAlign(l))
	binary.NativeEndian.PutUint16(b, uint16(l))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[unix.NLA_HDRLEN:], data)
	return b
}

func ttU32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func ttU64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

// ttSum is relayed + every drop counter.
func (d *ttDev) ttSum() uint64 {
	s := d.Stats[uapi.StatsARelayedPackets]
	for typ := uapi.StatsADropPolicy; typ <= uapi.StatsAMax; typ++ {
		s += d.Stats[typ]
	}
	return s
}

// ttCounters formats the counters for t.Logf, as "relayed N, drop policy
// N no-lower N ..." with the names of genl.Counters.
func (d *ttDev) ttCounters() string {
	var relayed, drops []string
	for _, c := range genl.Counters() {
		if c.Drop {
			drops = append(drops, fmt.Sprintf("%s %d", c.Short, d.Stats[c.Attr]))
		} else if c.Attr == uapi.StatsARelayedPackets {
			relayed = append(relayed, fmt.Sprintf("relayed %d", d.Stats[c.Attr]))
		}
	}
	return strings.Join(relayed, ", ") + ", drop " + strings.Join(drops, " ")
}

// ttNlaTypeMask is NLA_TYPE_MASK: an attribute type without its flags.
const ttNlaTypeMask = ^uint16(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
