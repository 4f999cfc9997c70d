//go:build vmtest

package guest

// The drop, burst, gilbert and schedule modes (issue 16), spoken in raw
// generic netlink and rtnetlink, since the client does not know them yet:
// every refusal with its errno, its message and the attribute it points
// at; each mode read back attribute for attribute, with the step in force;
// drop; seeded burst and gilbert decisions against a model of the uapi
// header's recurrence written here from the header; unseeded bursts per
// CPU; a schedule's steps in time order.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

// kmA is a netlink attribute to send, or one received: a leaf (data) or a
// nest (kids). mark flags the attribute that an extack must point at.
type kmA struct {
	typ  uint16
	data []byte
	kids []kmA
	nest bool
	mark bool
}

func kmU32(typ uint16, v uint32) kmA     { return kmA{typ: typ, data: ttU32(v)} }
func kmU64(typ uint16, v uint64) kmA     { return kmA{typ: typ, data: ttU64(v)} }
func kmFlag(typ uint16) kmA              { return kmA{typ: typ, data: []byte{}} }
func kmNest(typ uint16, kids ...kmA) kmA { return kmA{typ: typ, kids: kids, nest: true} }
func kmMark(a kmA) kmA                   { a.mark = true; return a }

func kmMode(m uint32) kmA       { return kmU32(uapi.PolicyAMode, m) }
func kmPct(pct float64) uint32  { return uint32(math.Round(pct * uapi.PercentScale)) }
func kmPercent(pct float64) kmA { return kmU32(uapi.PolicyAPercent, kmPct(pct)) }
func kmBurst(packets float64) kmA {
	return kmU32(uapi.PolicyABurst, uint32(math.Round(packets*uapi.BurstScale)))
}
func kmSeed(s uint64) kmA       { return kmU64(uapi.PolicyASeed, s) }
func kmDur(d time.Duration) kmA { return kmU64(uapi.PolicyADurationNs, uint64(d)) }
func kmSteps(steps ...kmA) kmA  { return kmNest(uapi.PolicyASteps, steps...) }
func kmStep(attrs ...kmA) kmA   { return kmNest(uapi.StepsAStep, attrs...) }
func kmOnce() kmA               { return kmFlag(uapi.PolicyAOnce) }

// kmGE is gilbert's four chances, in percent.
func kmGE(p, r, lossBad, lossGood float64) []kmA {
	return []kmA{kmU32(uapi.PolicyAGeP, kmPct(p)), kmU32(uapi.PolicyAGeR, kmPct(r)),
		kmU32(uapi.PolicyAGeLossBad, kmPct(lossBad)), kmU32(uapi.PolicyAGeLossGood, kmPct(lossGood))}
}

func kmJoin(parts ...any) []kmA {
	var out []kmA
	for _, p := range parts {
		switch v := p.(type) {
		case kmA:
			out = append(out, v)
		case []kmA:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("kmJoin: %T", p))
		}
	}
	return out
}

// encode appends a's bytes to b and sets *at to the offset of the marked
// attribute, if a holds it.
func (a kmA) encode(b []byte, at *int) []byte {
	if a.mark {
		*at = len(b)
	}
	if !a.nest {
		return append(b, ttAttrBytes(a.typ, a.data)...)
	}
	hdr := len(b)
	b = append(b, 0, 0, 0, 0)
	for _, k := range a.kids {
		b = k.encode(b, at)
	}
	binary.NativeEndian.PutUint16(b[hdr:], uint16(len(b)-hdr))
	binary.NativeEndian.PutUint16(b[hdr+2:], a.typ|unix.NLA_F_NESTED)
	return b
}

// kmParse parses attributes strictly into trees: NLA_F_NESTED ones are
// parsed as nests.
func kmParse(b []byte) ([]kmA, error) {
	attrs, err := ttParseAttrs(b)
	if err != nil {
		return nil, err
	}
	var out []kmA
	for _, a := range attrs {
		if !a.Nested {
			out = append(out, kmA{typ: a.Type, data: a.Data})
			continue
		}
		kids, err := kmParse(a.Data)
		if err != nil {
			return nil, fmt.Errorf("in attribute %d: %w", a.Type, err)
		}
		out = append(out, kmA{typ: a.Type, kids: kids, nest: true})
	}
	return out, nil
}

// kmCanon prints attributes of a policy level canonically: sorted, except
// the steps of INSANE_POLICY_A_STEPS, whose order is the schedule's.
func kmCanon(as []kmA, steps bool) string {
	var parts []string
	for _, a := range as {
		if a.typ == uapi.PolicyAPad && !steps {
			continue
		}
		if !a.nest {
			parts = append(parts, fmt.Sprintf("%d=%x", a.typ, a.data))
			continue
		}
		parts = append(parts, fmt.Sprintf("%d{%s}", a.typ, kmCanon(a.kids, !steps && a.typ == uapi.PolicyASteps)))
	}
	if !steps {
		sort.Strings(parts)
	}
	return strings.Join(parts, " ")
}

// kmReported takes the step reported (STEP_INDEX, STEP_LEFT_NS) out of a
// policy level.
type kmPos struct {
	index *uint32
	left  *uint64
}

func kmTakePos(as []kmA) ([]kmA, kmPos, error) {
	var rest []kmA
	var pos kmPos
	for _, a := range as {
		switch a.typ {
		case uapi.PolicyAStepIndex:
			if len(a.data) != 4 || pos.index != nil {
				return nil, pos, errors.New("bad INSANE_POLICY_A_STEP_INDEX")
			}
			v := binary.NativeEndian.Uint32(a.data)
			pos.index = &v
		case uapi.PolicyAStepLeftNs:
			if len(a.data) != 8 || pos.left != nil {
				return nil, pos, errors.New("bad INSANE_POLICY_A_STEP_LEFT_NS")
			}
			v := binary.NativeEndian.Uint64(a.data)
			pos.left = &v
		default:
			rest = append(rest, a)
		}
	}
	return rest, pos, nil
}

// kmConn is a raw generic-netlink socket of the insane family in a
// network namespace.
type kmConn struct {
	t   *testing.T
	n   *ttNl
	fam uint16
}

func kmOpen(t *testing.T, ns string) *kmConn {
	t.Helper()
	fam := ttFamily(t, ns)
	n, err := ttNlOpen(ns, unix.NETLINK_GENERIC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return &kmConn{t: t, n: n, fam: fam}
}

// kmResult is what the kernel said to a request: its errno, its extack
// message, and where the extack points (-1: nowhere) against where the
// marked attribute is (-1: none marked).
type kmResult struct {
	errno       unix.Errno
	msg         string
	off, marked int
}

// kmDo sends one request (typ, flags) whose payload is head followed by
// attrs and reads its reply: the messages before the final ack, and the
// ack's verdict.
func kmDo(n *ttNl, typ, flags uint16, head []byte, attrs ...kmA) ([]ttMsg, kmResult, error) {
	payload := append([]byte(nil), head...)
	marked := -1
	for _, a := range attrs {
		payload = a.encode(payload, &marked)
	}
	if marked >= 0 {
		marked += unix.NLMSG_HDRLEN
	}
	seq, err := n.request(typ, unix.NLM_F_REQUEST|unix.NLM_F_ACK|flags, payload)
	if err != nil {
		return nil, kmResult{}, err
	}
	msgs, err := n.replies(seq)
	if err != nil {
		return nil, kmResult{}, err
	}
	last := msgs[len(msgs)-1]
	if last.Type != unix.NLMSG_ERROR {
		return nil, kmResult{}, fmt.Errorf("reply ends in message type %d", last.Type)
	}
	reqLen := unix.NLMSG_HDRLEN + len(payload)
	errno, msg, err := ttNlErr(last, reqLen)
	if err != nil {
		return nil, kmResult{}, err
	}
	return msgs[:len(msgs)-1], kmResult{errno: errno, msg: msg, off: kmExtackOffset(last, reqLen), marked: marked}, nil
}

// kmExtackOffset returns NLMSGERR_ATTR_OFFS of an NLMSG_ERROR that
// ttNlErr has checked, or -1.
func kmExtackOffset(m ttMsg, reqLen int) int {
	rest := m.Data[4:]
	code := int32(binary.NativeEndian.Uint32(m.Data))
	if m.Flags&unix.NLM_F_CAPPED != 0 || code == 0 {
		rest = rest[unix.NLMSG_HDRLEN:]
	} else {
		rest = rest[nlmAlign(reqLen):]
	}
	if m.Flags&unix.NLM_F_ACK_TLVS == 0 {
		return -1
	}
	attrs, _ := ttParseAttrs(rest)
	for _, a := range attrs {
		if a.Type == unix.NLMSGERR_ATTR_OFFS {
			return int(binary.NativeEndian.Uint32(a.Data))
		}
	}
	return -1
}

func kmGenlHead(cmd uint8) []byte { return []byte{cmd, uapi.GenlVersion, 0, 0} }

func kmName(dev string) kmA { return kmA{typ: uapi.DeviceAIfname, data: append([]byte(dev), 0)} }

// set sends SET_DEVICE for dev with the given device attributes.
func (c *kmConn) set(dev string, attrs ...kmA) kmResult {
	c.t.Helper()
	_, r, err := kmDo(c.n, c.fam, 0, kmGenlHead(uapi.CmdSetDevice), append([]kmA{kmName(dev)}, attrs...)...)
	if err != nil {
		c.t.Fatalf("SET_DEVICE %s: %v", dev, err)
	}
	return r
}

// setTx sets dev's policy and fails the test if it is refused.
func (c *kmConn) setTx(dev string, policy ...kmA) {
	c.t.Helper()
	if r := c.set(dev, kmNest(uapi.DeviceAPolicy, policy...)); r.errno != 0 {
		c.t.Fatalf("setting policy %s on %s: %v: %s", kmCanon(policy, false), dev, r.errno, r.msg)
	}
}

func (c *kmConn) setRx(dev string, policy ...kmA) {
	c.t.Helper()
	if r := c.set(dev, kmNest(uapi.DeviceARxPolicy, policy...)); r.errno != 0 {
		c.t.Fatalf("setting receive policy %s on %s: %v: %s", kmCanon(policy, false), dev, r.errno, r.msg)
	}
}

// kmGot is a device as GET_DEVICE describes it: strictly parsed (d), and
// its policies as trees without the step reported, which is apart.
type kmGot struct {
	d            *ttDev
	tx, rx       []kmA
	txPos, rxPos kmPos
}

func (c *kmConn) get(dev string) *kmGot {
	c.t.Helper()
	msgs, r, err := kmDo(c.n, c.fam, 0, kmGenlHead(uapi.CmdGetDevice), kmName(dev))
	if err == nil && r.errno != 0 {
		err = fmt.Errorf("%v: %s", r.errno, r.msg)
	}
	if err == nil && (len(msgs) != 1 || msgs[0].Type != c.fam) {
		err = fmt.Errorf("%d messages in the reply", len(msgs))
	}
	var g *kmGot
	if err == nil {
		g, err = kmParseDevice(msgs[0].Data)
	}
	if err != nil {
		c.t.Fatalf("GET_DEVICE %s: %v", dev, err)
	}
	return g
}

func kmParseDevice(data []byte) (*kmGot, error) {
	d, err := ttParseDevice(data, uapi.CmdGetDevice)
	if err != nil {
		return nil, err
	}
	attrs, err := kmParse(data[4:])
	if err != nil {
		return nil, err
	}
	g := &kmGot{d: d}
	for _, a := range attrs {
		switch a.typ {
		case uapi.DeviceAPolicy:
			g.tx, g.txPos, err = kmTakePos(a.kids)
		case uapi.DeviceARxPolicy:
			g.rx, g.rxPos, err = kmTakePos(a.kids)
		}
		if err != nil {
			return nil, err
		}
	}
	return g, nil
}

// kmSame fails unless got holds exactly the attributes of want.
func kmSame(t *testing.T, what string, got, want []kmA) {
	t.Helper()
	if g, w := kmCanon(got, false), kmCanon(want, false); g != w {
		t.Errorf("%s: read back\n  %s\nwant\n  %s", what, g, w)
	}
}

// kmDevice makes insane device dev on a dummy lower in a namespace of its
// own and returns the namespace.
func kmDevice(t *testing.T, ns, dev string) {
	t.Helper()
	NewNetns(t, ns)
	RunIn(t, ns, "ip", "link", "add", "kmd0", "type", "dummy")
	RunIn(t, ns, "ip", "link", "set", "kmd0", "up")
	RunIn(t, ns, "ip", "link", "add", "link", "kmd0", "name", dev, "type", "insane")
}

func TestKernelModesRefused(t *testing.T) {
	CheckKmsg(t)
	const ns, dev = "kmodes", "kmi0"
	kmDevice(t, ns, dev)
	c := kmOpen(t, ns)

	step := func(attrs ...kmA) kmA { return kmStep(attrs...) }
	sched := func(steps ...kmA) []kmA { return []kmA{kmMode(uapi.ModeSchedule), kmSteps(steps...)} }
	pass1s := step(kmMode(uapi.ModePass), kmDur(time.Second))
	many := func(n int) []kmA {
		var s []kmA
		for i := 0; i < n; i++ {
			s = append(s, pass1s)
		}
		return s
	}
	max := uint64(1<<63 - 1)
	const (
		above100 = " is above 100 percent (100000000)"
	)
	cases := []kmRefusal{
		// Attributes of another mode, named.
		{"percent in drop mode", kmJoin(kmMode(uapi.ModeDrop), kmMark(kmPercent(5))), "INSANE_POLICY_A_PERCENT is only valid in percent and burst modes"},
		{"seed in drop mode", kmJoin(kmMode(uapi.ModeDrop), kmMark(kmSeed(1))), "INSANE_POLICY_A_SEED is only valid in percent, burst, gilbert and schedule modes, or beside INSANE_POLICY_A_JITTER_NS, _DUPLICATE or _CORRUPT"},
		{"seed in time mode", kmJoin(kmMode(uapi.ModeTime), kmU64(uapi.PolicyAOnNs, 1), kmU64(uapi.PolicyAOffNs, 1), kmMark(kmSeed(1))), "INSANE_POLICY_A_SEED is only valid in percent, burst, gilbert and schedule modes, or beside INSANE_POLICY_A_JITTER_NS, _DUPLICATE or _CORRUPT"},
		{"burst in percent mode", kmJoin(kmMode(uapi.ModePercent), kmPercent(5), kmMark(kmBurst(2))), "INSANE_POLICY_A_BURST is only valid in burst mode"},
		{"burst in gilbert mode", kmJoin(kmMode(uapi.ModeGilbert), kmGE(1, 20, 100, 0), kmMark(kmBurst(2))), "INSANE_POLICY_A_BURST is only valid in burst mode"},
		{"ge_p in burst mode", kmJoin(kmMode(uapi.ModeBurst), kmPercent(90), kmBurst(2), kmMark(kmU32(uapi.PolicyAGeP, 1))), "INSANE_POLICY_A_GE_P is only valid in gilbert mode"},
		{"ge_r in percent mode", kmJoin(kmMode(uapi.ModePercent), kmPercent(5), kmMark(kmU32(uapi.PolicyAGeR, 1))), "INSANE_POLICY_A_GE_R is only valid in gilbert mode"},
		{"ge_loss_bad in pass mode", kmJoin(kmMode(uapi.ModePass), kmMark(kmU32(uapi.PolicyAGeLossBad, 1))), "INSANE_POLICY_A_GE_LOSS_BAD is only valid in gilbert mode"},
		{"ge_loss_good in drop mode", kmJoin(kmMode(uapi.ModeDrop), kmMark(kmU32(uapi.PolicyAGeLossGood, 1))), "INSANE_POLICY_A_GE_LOSS_GOOD is only valid in gilbert mode"},
		{"steps in percent mode", kmJoin(kmMode(uapi.ModePercent), kmPercent(5), kmMark(kmSteps(pass1s))), "INSANE_POLICY_A_STEPS is only valid in schedule mode"},
		{"once in time mode", kmJoin(kmMode(uapi.ModeTime), kmU64(uapi.PolicyAOnNs, 1), kmU64(uapi.PolicyAOffNs, 1), kmMark(kmOnce())), "INSANE_POLICY_A_ONCE is only valid in schedule mode"},
		{"on in schedule mode", kmJoin(sched(pass1s), kmMark(kmU64(uapi.PolicyAOnNs, 1))), "INSANE_POLICY_A_ON_NS is only valid in time mode"},
		{"duration outside a step", kmJoin(kmMode(uapi.ModePercent), kmPercent(5), kmMark(kmDur(time.Second))), "INSANE_POLICY_A_DURATION_NS is only valid in a step of INSANE_POLICY_A_STEPS"},
		{"duration beside the steps", kmJoin(sched(pass1s), kmMark(kmDur(time.Second))), "INSANE_POLICY_A_DURATION_NS is only valid in a step of INSANE_POLICY_A_STEPS"},
		// Reported, never set.
		{"step index", kmJoin(kmMode(uapi.ModeTime), kmU64(uapi.PolicyAOnNs, 1), kmU64(uapi.PolicyAOffNs, 1), kmMark(kmU32(uapi.PolicyAStepIndex, 0))), "INSANE_POLICY_A_STEP_INDEX is reported in replies, never set"},
		{"step left", kmJoin(sched(pass1s), kmMark(kmU64(uapi.PolicyAStepLeftNs, 5))), "INSANE_POLICY_A_STEP_LEFT_NS is reported in replies, never set"},
		{"step index alone", kmJoin(kmMark(kmU32(uapi.PolicyAStepIndex, 0))), "INSANE_POLICY_A_STEP_INDEX is reported in replies, never set"},
		{"step index in a step", sched(step(kmMode(uapi.ModePass), kmDur(time.Second), kmMark(kmU32(uapi.PolicyAStepIndex, 0)))), "INSANE_POLICY_A_STEP_INDEX is reported in replies, never set"},
		// Modes.
		{"unknown mode", kmJoin(kmMark(kmMode(uapi.ModeMax + 1))), "INSANE_POLICY_A_MODE is not a known mode (pass 0, percent 1, time 2, drop 3, burst 4, gilbert 5, schedule 6)"},
		// Burst.
		{"burst without burst", kmJoin(kmMode(uapi.ModeBurst), kmPercent(90)), "INSANE_POLICY_A_BURST is required in burst mode"},
		{"burst without percent", kmJoin(kmMode(uapi.ModeBurst), kmBurst(5)), "INSANE_POLICY_A_PERCENT is required in burst mode"},
		{"burst percent 0", kmJoin(kmMode(uapi.ModeBurst), kmMark(kmPercent(0)), kmBurst(5)), "INSANE_POLICY_A_PERCENT must be above 0 in burst mode"},
		{"burst percent above 100", kmJoin(kmMode(uapi.ModeBurst), kmMark(kmU32(uapi.PolicyAPercent, uapi.PercentMax+1)), kmBurst(5)), "INSANE_POLICY_A_PERCENT" + above100},
		{"burst below one packet", kmJoin(kmMode(uapi.ModeBurst), kmPercent(95), kmMark(kmU32(uapi.PolicyABurst, uapi.BurstScale-1))), "INSANE_POLICY_A_BURST is below 1 packet (1000): a burst has at least one packet"},
		{"burst 20 3.999", kmJoin(kmMode(uapi.ModeBurst), kmPercent(20), kmMark(kmBurst(3.999))), "INSANE_POLICY_A_BURST is below (100 percent - INSANE_POLICY_A_PERCENT) / INSANE_POLICY_A_PERCENT packets: the chance of starting a burst would exceed 1"},
		{"burst 30 2.333", kmJoin(kmMode(uapi.ModeBurst), kmPercent(30), kmMark(kmBurst(2.333))), "INSANE_POLICY_A_BURST is below (100 percent - INSANE_POLICY_A_PERCENT) / INSANE_POLICY_A_PERCENT packets: the chance of starting a burst would exceed 1"},
		// Gilbert.
		{"gilbert without r", kmJoin(kmMode(uapi.ModeGilbert), kmU32(uapi.PolicyAGeP, 1)), "INSANE_POLICY_A_GE_R is required in gilbert mode"},
		{"gilbert without p", kmJoin(kmMode(uapi.ModeGilbert), kmU32(uapi.PolicyAGeR, 1)), "INSANE_POLICY_A_GE_P is required in gilbert mode"},
		{"gilbert r 0", kmJoin(kmMode(uapi.ModeGilbert), kmU32(uapi.PolicyAGeP, 1), kmMark(kmU32(uapi.PolicyAGeR, 0))), "INSANE_POLICY_A_GE_R must be above 0, or a burst would never end"},
		{"gilbert p above 100", kmJoin(kmMode(uapi.ModeGilbert), kmMark(kmU32(uapi.PolicyAGeP, uapi.PercentMax+1)), kmU32(uapi.PolicyAGeR, 1)), "INSANE_POLICY_A_GE_P" + above100},
		{"gilbert r above 100", kmJoin(kmMode(uapi.ModeGilbert), kmU32(uapi.PolicyAGeP, 1), kmMark(kmU32(uapi.PolicyAGeR, uapi.PercentMax+1))), "INSANE_POLICY_A_GE_R" + above100},
		{"gilbert loss bad above 100", kmJoin(kmMode(uapi.ModeGilbert), kmU32(uapi.PolicyAGeP, 1), kmU32(uapi.PolicyAGeR, 1), kmMark(kmU32(uapi.PolicyAGeLossBad, 1<<31))), "INSANE_POLICY_A_GE_LOSS_BAD" + above100},
		{"gilbert loss good above 100", kmJoin(kmMode(uapi.ModeGilbert), kmU32(uapi.PolicyAGeP, 1), kmU32(uapi.PolicyAGeR, 1), kmMark(kmU32(uapi.PolicyAGeLossGood, uapi.PercentMax+1))), "INSANE_POLICY_A_GE_LOSS_GOOD" + above100},
		// Schedules.
		{"schedule without steps", kmJoin(kmMode(uapi.ModeSchedule), kmOnce()), "INSANE_POLICY_A_STEPS is required in schedule mode"},
		{"schedule of no step", kmJoin(kmMode(uapi.ModeSchedule), kmMark(kmSteps())), "INSANE_POLICY_A_STEPS holds no step: a schedule has 1 to 64 INSANE_STEPS_A_STEP"},
		{"schedule of 65 steps", sched(append(many(64), kmMark(pass1s))...), "INSANE_POLICY_A_STEPS holds more than INSANE_SCHEDULE_STEPS_MAX (64) steps"},
		{"another attribute among the steps", sched(pass1s, kmMark(kmNest(uapi.StepsAStep+1, kmMode(uapi.ModePass), kmDur(time.Second)))), "Unknown attribute type"},
		{"a step that is not nested", sched(pass1s, kmMark(kmU32(uapi.StepsAStep, 1))), "NLA_F_NESTED is missing"},
		{"empty step", sched(pass1s, kmMark(step())), "a step of INSANE_POLICY_A_STEPS is empty: INSANE_POLICY_A_MODE is required"},
		{"step without mode", sched(step(kmMark(kmDur(time.Second)))), "INSANE_POLICY_A_MODE is required in a step"},
		{"step without duration", sched(pass1s, step(kmMark(kmMode(uapi.ModeDrop)))), "INSANE_POLICY_A_DURATION_NS is required in a step"},
		{"step of 0 ns", sched(step(kmMode(uapi.ModeDrop), kmMark(kmDur(0)))), "INSANE_POLICY_A_DURATION_NS must be above 0"},
		{"time step", sched(step(kmMark(kmMode(uapi.ModeTime)), kmU64(uapi.PolicyAOnNs, 1), kmU64(uapi.PolicyAOffNs, 1), kmDur(time.Second))), "INSANE_POLICY_A_MODE of a step must be pass 0, percent 1, drop 3, burst 4 or gilbert 5"},
		{"schedule step", sched(step(kmMark(kmMode(uapi.ModeSchedule)), kmSteps(pass1s), kmDur(time.Second))), "INSANE_POLICY_A_MODE of a step must be pass 0, percent 1, drop 3, burst 4 or gilbert 5"},
		{"unknown step mode", sched(step(kmMark(kmMode(99)), kmDur(time.Second))), "INSANE_POLICY_A_MODE of a step must be pass 0, percent 1, drop 3, burst 4 or gilbert 5"},
		{"seed in a step", sched(step(kmMode(uapi.ModePercent), kmPercent(5), kmMark(kmSeed(1)), kmDur(time.Second))), "INSANE_POLICY_A_SEED is not valid in a step: the schedule's seed goes beside INSANE_POLICY_A_STEPS"},
		{"once in a step", sched(step(kmMode(uapi.ModePass), kmDur(time.Second), kmMark(kmOnce()))), "INSANE_POLICY_A_ONCE is only valid in schedule mode"},
		{"steps in a step", sched(step(kmMode(uapi.ModePass), kmDur(time.Second), kmMark(kmSteps(pass1s)))), "INSANE_POLICY_A_STEPS is only valid in schedule mode"},
		{"on in a step", sched(step(kmMode(uapi.ModePass), kmDur(time.Second), kmMark(kmU64(uapi.PolicyAOnNs, 1)))), "INSANE_POLICY_A_ON_NS is only valid in time mode"},
		{"percent in a drop step", sched(step(kmMode(uapi.ModeDrop), kmMark(kmPercent(1)), kmDur(time.Second))), "INSANE_POLICY_A_PERCENT is only valid in percent and burst modes"},
		{"percent step above 100", sched(pass1s, step(kmMode(uapi.ModePercent), kmMark(kmU32(uapi.PolicyAPercent, uapi.PercentMax+1)), kmDur(time.Second))), "INSANE_POLICY_A_PERCENT" + above100},
		{"burst step 20 3", sched(step(kmMode(uapi.ModeBurst), kmPercent(20), kmMark(kmBurst(3)), kmDur(time.Second))), "INSANE_POLICY_A_BURST is below (100 percent - INSANE_POLICY_A_PERCENT) / INSANE_POLICY_A_PERCENT packets: the chance of starting a burst would exceed 1"},
		{"burst step without burst", sched(step(kmMode(uapi.ModeBurst), kmPercent(20), kmDur(time.Second))), "INSANE_POLICY_A_BURST is required in burst mode"},
		{"gilbert step r 0", sched(pass1s, step(kmMode(uapi.ModeGilbert), kmU32(uapi.PolicyAGeP, 1), kmMark(kmU32(uapi.PolicyAGeR, 0)), kmDur(time.Second))), "INSANE_POLICY_A_GE_R must be above 0, or a burst would never end"},
		{"steps over 2^63 - 1 ns", sched(step(kmMode(uapi.ModePass), kmU64(uapi.PolicyADurationNs, 1<<62)), step(kmMode(uapi.ModeDrop), kmMark(kmU64(uapi.PolicyADurationNs, 1<<62)))), "the INSANE_POLICY_A_DURATION_NS of the steps add up to more than 2^63 - 1 ns"},
		{"a step over 2^63 - 1 ns", sched(step(kmMode(uapi.ModePass), kmMark(kmU64(uapi.PolicyADurationNs, max+1)))), "the INSANE_POLICY_A_DURATION_NS of the steps add up to more than 2^63 - 1 ns"},
	}
	kmRefuseBothWays(t, c, dev, cases)

	// The limits themselves are accepted, and change nothing refused above.
	accepted := []struct {
		name   string
		policy []kmA
	}{
		{"burst 20 4", kmJoin(kmMode(uapi.ModeBurst), kmPercent(20), kmBurst(4))},
		{"burst 30 2.334", kmJoin(kmMode(uapi.ModeBurst), kmPercent(30), kmBurst(2.334))},
		{"burst 100 1", kmJoin(kmMode(uapi.ModeBurst), kmPercent(100), kmBurst(1))},
		{"burst 0.000024 4294967.295", kmJoin(kmMode(uapi.ModeBurst), kmU32(uapi.PolicyAPercent, 24), kmU32(uapi.PolicyABurst, 0xffffffff))},
		{"burst 99.999999 4294967.295", kmJoin(kmMode(uapi.ModeBurst), kmU32(uapi.PolicyAPercent, uapi.PercentMax-1), kmU32(uapi.PolicyABurst, 0xffffffff))},
		{"gilbert 100 100 100 100", kmJoin(kmMode(uapi.ModeGilbert), kmGE(100, 100, 100, 100))},
		{"gilbert 0 0.000001", kmJoin(kmMode(uapi.ModeGilbert), kmU32(uapi.PolicyAGeP, 0), kmU32(uapi.PolicyAGeR, 1))},
		{"64 steps", sched(many(64)...)},
		{"2^63 - 1 ns", sched(step(kmMode(uapi.ModePass), kmU64(uapi.PolicyADurationNs, max)))},
		{"2^63 - 1 ns in two steps", sched(step(kmMode(uapi.ModeDrop), kmU64(uapi.PolicyADurationNs, 1<<62)), step(kmMode(uapi.ModePass), kmU64(uapi.PolicyADurationNs, 1<<62-1)))},
		{"time 0 1", kmJoin(kmMode(uapi.ModeTime), kmU64(uapi.PolicyAOnNs, 0), kmU64(uapi.PolicyAOffNs, 1))},
	}
	for _, tc := range accepted {
		if r := c.set(dev, kmNest(uapi.DeviceAPolicy, tc.policy...), kmNest(uapi.DeviceARxPolicy, tc.policy...)); r.errno != 0 {
			t.Errorf("%s: refused: %v: %s", tc.name, r.errno, r.msg)
		}
	}

	// A refused request changes nothing.
	c.setTx(dev, kmMode(uapi.ModeDrop))
	c.set(dev, kmU32(uapi.DeviceAFlags, uapi.DeviceFRxOff))
	kmCheckRefusal(t, "valid transmit policy with a bad receive policy",
		c.set(dev, kmNest(uapi.DeviceAPolicy, kmMode(uapi.ModePass)), kmNest(uapi.DeviceARxPolicy, kmMode(uapi.ModeGilbert), kmU32(uapi.PolicyAGeP, 1), kmMark(kmU32(uapi.PolicyAGeR, 0)))),
		"INSANE_POLICY_A_GE_R must be above 0, or a burst would never end")
	g := c.get(dev)
	kmSame(t, "after refusals", g.tx, []kmA{kmMode(uapi.ModeDrop)})
	if g.rx != nil {
		t.Errorf("a refused receive policy was set: %s", kmCanon(g.rx, false))
	}

	// rtnetlink: the same parser behind IFLA_INFO_DATA, for the transmit
	// policy and the receive policy nested in INSANE_POLICY_A_RX.
	rt := kmRtOpen(t, ns)
	rtCases := []struct {
		name string
		data []kmA
		msg  string
	}{
		{"step index", kmJoin(kmMark(kmU32(uapi.PolicyAStepIndex, 1))), "INSANE_POLICY_A_STEP_INDEX is reported in replies, never set"},
		{"burst 20 3.999", kmJoin(kmMode(uapi.ModeBurst), kmPercent(20), kmMark(kmBurst(3.999))), "INSANE_POLICY_A_BURST is below (100 percent - INSANE_POLICY_A_PERCENT) / INSANE_POLICY_A_PERCENT packets: the chance of starting a burst would exceed 1"},
		{"step without duration", sched(step(kmMark(kmMode(uapi.ModeDrop)))), "INSANE_POLICY_A_DURATION_NS is required in a step"},
		{"duration outside a step", kmJoin(kmMode(uapi.ModeDrop), kmMark(kmDur(time.Second))), "INSANE_POLICY_A_DURATION_NS is only valid in a step of INSANE_POLICY_A_STEPS"},
		{"rx gilbert r 0", kmJoin(kmNest(uapi.PolicyARx, kmMode(uapi.ModeGilbert), kmU32(uapi.PolicyAGeP, 1), kmMark(kmU32(uapi.PolicyAGeR, 0)))), "INSANE_POLICY_A_GE_R must be above 0, or a burst would never end"},
		{"rx step of 0 ns", kmJoin(kmNest(uapi.PolicyARx, sched(step(kmMode(uapi.ModePass), kmMark(kmDur(0))))...)), "INSANE_POLICY_A_DURATION_NS must be above 0"},
		{"rx in a step", sched(step(kmMode(uapi.ModePass), kmDur(time.Second), kmMark(kmNest(uapi.PolicyARx, kmMode(uapi.ModePass))))), "Unsupported attribute"},
		{"65 steps", sched(append(many(64), kmMark(pass1s))...), "INSANE_POLICY_A_STEPS holds more than INSANE_SCHEDULE_STEPS_MAX (64) steps"},
	}
	for _, tc := range rtCases {
		kmCheckRefusal(t, "rtnetlink "+tc.name, rt.change(dev, tc.data...), tc.msg)
	}
	g = c.get(dev)
	kmSame(t, "after rtnetlink refusals", g.tx, []kmA{kmMode(uapi.ModeDrop)})
	if g.rx != nil {
		t.Errorf("a refused receive policy was set: %s", kmCanon(g.rx, false))
	}
}

func kmCheckRefusal(t *testing.T, what string, r kmResult, msg string) {
	t.Helper()
	switch {
	case r.errno != unix.EINVAL:
		t.Errorf("%s: %v (%q), want EINVAL", what, r.errno, r.msg)
	case r.msg != msg:
		t.Errorf("%s: message %q, want %q", what, r.msg, msg)
	case r.marked >= 0 && r.off != r.marked:
		t.Errorf("%s: the extack points at offset %d, the attribute is at %d", what, r.off, r.marked)
	}
}

// kmRefusal is a policy the kernel must refuse with msg.
type kmRefusal struct {
	name   string
	policy []kmA
	msg    string
}

// kmRefuseBothWays checks that each case is refused as dev's transmit
// policy and as its receive policy, with the case's message.
func kmRefuseBothWays(t *testing.T, c *kmConn, dev string, cases []kmRefusal) {
	t.Helper()
	for _, tc := range cases {
		for _, where := range []uint16{uapi.DeviceAPolicy, uapi.DeviceARxPolicy} {
			what := tc.name
			if where == uapi.DeviceARxPolicy {
				what = "rx " + what
			}
			kmCheckRefusal(t, what, c.set(dev, kmNest(where, tc.policy...)), tc.msg)
		}
	}
}

// kmAcceptBothWays sets each policy as dev's transmit and receive policy
// in one request and checks that both read back exactly as set.
func kmAcceptBothWays(t *testing.T, c *kmConn, dev string, accepted [][]kmA) {
	t.Helper()
	for _, p := range accepted {
		if r := c.set(dev, kmNest(uapi.DeviceAPolicy, p...), kmNest(uapi.DeviceARxPolicy, p...)); r.errno != 0 {
			t.Errorf("%s: refused: %v: %s", kmCanon(p, false), r.errno, r.msg)
			continue
		}
		g := c.get(dev)
		kmSame(t, "transmit", g.tx, p)
		kmSame(t, "receive", g.rx, p)
	}
}

// kmRt is a raw rtnetlink socket in a namespace.
type kmRt struct {
	t *testing.T
	n *ttNl
}

func kmRtOpen(t *testing.T, ns string) *kmRt {
	t.Helper()
	n, err := ttNlOpen(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return &kmRt{t: t, n: n}
}

func (rt *kmRt) link(typ, flags uint16, dev string, attrs ...kmA) ([]ttMsg, kmResult) {
	rt.t.Helper()
	msgs, r, err := kmDo(rt.n, typ, flags, make([]byte, unix.SizeofIfInfomsg), append([]kmA{{typ: unix.IFLA_IFNAME, data: append([]byte(dev), 0)}}, attrs...)...)
	if err != nil {
		rt.t.Fatalf("rtnetlink %d %s: %v", typ, dev, err)
	}
	return msgs, r
}

func kmInfo(data ...kmA) kmA {
	return kmNest(unix.IFLA_LINKINFO, kmA{typ: unix.IFLA_INFO_KIND, data: []byte(uapi.LinkKind + "\x00")}, kmNest(unix.IFLA_INFO_DATA, data...))
}

// change is a changelink: RTM_NEWLINK without NLM_F_CREATE.
func (rt *kmRt) change(dev string, data ...kmA) kmResult {
	rt.t.Helper()
	_, r := rt.link(unix.RTM_NEWLINK, 0, dev, kmInfo(data...))
	return r
}

// infoData reads dev's IFLA_INFO_DATA with RTM_GETLINK.
func (rt *kmRt) infoData(dev string) []kmA {
	rt.t.Helper()
	msgs, r := rt.link(unix.RTM_GETLINK, 0, dev)
	if r.errno != 0 || len(msgs) != 1 || msgs[0].Type != unix.RTM_NEWLINK {
		rt.t.Fatalf("RTM_GETLINK %s: %v %q, %d messages", dev, r.errno, r.msg, len(msgs))
	}
	if err := ttCheckLink(msgs[0].Data); err != nil {
		rt.t.Fatalf("RTM_GETLINK %s: %v", dev, err)
	}
	attrs, err := ttParseAttrs(msgs[0].Data[unix.SizeofIfInfomsg:])
	if err != nil {
		rt.t.Fatal(err)
	}
	for _, a := range attrs {
		if a.Type != unix.IFLA_LINKINFO {
			continue
		}
		li, err := ttParseAttrs(a.Data)
		if err != nil {
			rt.t.Fatal(err)
		}
		for _, x := range li {
			if x.Type == unix.IFLA_INFO_DATA {
				data, err := kmParse(x.Data)
				if err != nil {
					rt.t.Fatal(err)
				}
				return data
			}
		}
	}
	rt.t.Fatalf("RTM_GETLINK %s: no IFLA_INFO_DATA", dev)
	return nil
}

// kmTime is time mode's attributes.
func kmTime(on, off time.Duration) []kmA {
	return []kmA{kmMode(uapi.ModeTime), kmU64(uapi.PolicyAOnNs, uint64(on)), kmU64(uapi.PolicyAOffNs, uint64(off))}
}

// kmBig is a schedule of 64 gilbert steps, the largest reply there is.
func kmBig() []kmA {
	var steps []kmA
	for i := 0; i < uapi.ScheduleStepsMax; i++ {
		steps = append(steps, kmStep(kmJoin(kmMode(uapi.ModeGilbert), kmGE(float64(i), 50, 99.999999, 0.5), kmU64(uapi.PolicyADurationNs, 1<<56+uint64(i)))...))
	}
	return []kmA{kmMode(uapi.ModeSchedule), kmSteps(steps...), kmOnce(), kmSeed(1<<64 - 1)}
}

func TestKernelModesReadBack(t *testing.T) {
	CheckKmsg(t)
	const ns, dev = "kmodes", "kmi0"
	kmDevice(t, ns, dev)
	c := kmOpen(t, ns)

	gilbertSet := []kmA{kmMode(uapi.ModeGilbert), kmU32(uapi.PolicyAGeP, kmPct(1)), kmU32(uapi.PolicyAGeR, kmPct(20))}
	gilbertGot := kmJoin(kmMode(uapi.ModeGilbert), kmGE(1, 20, 100, 0))
	schedule := func(once bool, seed bool, gilbert []kmA) []kmA {
		p := []kmA{kmMode(uapi.ModeSchedule), kmSteps(
			kmStep(kmMode(uapi.ModePass), kmDur(30*time.Second)),
			kmStep(kmMode(uapi.ModeDrop), kmDur(5*time.Second)),
			kmStep(kmMode(uapi.ModePercent), kmPercent(50), kmDur(10*time.Second)),
			kmStep(kmMode(uapi.ModeBurst), kmPercent(95), kmBurst(5), kmDur(time.Millisecond)),
			kmStep(append(append([]kmA(nil), gilbert[1:]...), kmMode(uapi.ModeGilbert), kmDur(time.Hour))...),
		)}
		if once {
			p = append(p, kmOnce())
		}
		if seed {
			p = append(p, kmSeed(3))
		}
		return p
	}
	cases := []struct {
		name     string
		set, got []kmA
		steps    bool // time or schedule: the step is reported
	}{
		{"drop", []kmA{kmMode(uapi.ModeDrop)}, nil, false},
		{"burst 95 5", []kmA{kmMode(uapi.ModeBurst), kmPercent(95), kmBurst(5)}, nil, false},
		{"burst 80 2.5 seed 7", []kmA{kmSeed(7), kmMode(uapi.ModeBurst), kmPercent(80), kmBurst(2.5)}, nil, false},
		{"gilbert 1 20", gilbertSet, gilbertGot, false},
		{"gilbert 1 20 90", append(append([]kmA(nil), gilbertSet...), kmU32(uapi.PolicyAGeLossBad, kmPct(90))),
			kmJoin(kmMode(uapi.ModeGilbert), kmGE(1, 20, 90, 0)), false},
		{"gilbert 0 20 0 0.5 seed 5", kmJoin(kmMode(uapi.ModeGilbert), kmGE(0, 20, 0, 0.5), kmSeed(5)), nil, false},
		{"percent 37.5 seed 9", []kmA{kmMode(uapi.ModePercent), kmPercent(37.5), kmSeed(9)}, nil, false},
		{"pass", []kmA{kmMode(uapi.ModePass)}, nil, false},
		{"time 1s 2s", kmTime(time.Second, 2*time.Second), nil, true},
		{"time 0 7ns", kmTime(0, 7), nil, true},
		{"schedule", schedule(false, false, gilbertSet), schedule(false, false, gilbertGot), true},
		{"schedule once seed 3", schedule(true, true, gilbertSet), schedule(true, true, gilbertGot), true},
		{"schedule of 64 gilbert steps", kmBig(), nil, true},
	}
	for _, tc := range cases {
		want := tc.got
		if want == nil {
			want = tc.set
		}
		for _, rx := range []bool{false, true} {
			what := tc.name
			if rx {
				what = "rx " + what
				c.setRx(dev, tc.set...)
			} else {
				c.setTx(dev, tc.set...)
			}
			g := c.get(dev)
			got, pos := g.tx, g.txPos
			if rx {
				got, pos = g.rx, g.rxPos
			}
			kmSame(t, what, got, want)
			if tc.steps != (pos.index != nil) || (pos.index == nil && pos.left != nil) {
				t.Errorf("%s: step index %v, left %v", what, pos.index, pos.left)
			}
		}
	}

	// The largest device there is: both directions with 64 gilbert steps,
	// in GET, in a dump (also the client's, which starts with a small
	// buffer), in IFLA_INFO_DATA and in an event.
	big := kmBig()
	c.setTx(dev, big...)
	c.setRx(dev, big...)
	g := c.get(dev)
	kmSame(t, "large transmit policy", g.tx, big)
	kmSame(t, "large receive policy", g.rx, big)
	devs, _, err := ttDump(c.n, c.fam)
	if err != nil || len(devs) != 1 || len(devs[0].Steps) != uapi.ScheduleStepsMax || devs[0].Rx == nil || len(devs[0].Rx.Steps) != uapi.ScheduleStepsMax {
		t.Errorf("raw dump of the large device: %v (%d devices)", err, len(devs))
	}
	if ds, err := kDial(t, ns).Devices(); err != nil || len(ds) != 1 || ds[0].Name != dev {
		t.Errorf("the client's dump of the large device: %v (%d devices)", err, len(ds))
	}
	data := kmRtOpen(t, ns).infoData(dev)
	var tx []kmA
	var rx *kmA
	for i, a := range data {
		if a.typ == uapi.PolicyARx {
			rx = &data[i]
		} else {
			tx = append(tx, a)
		}
	}
	tx, _, err = kmTakePos(tx)
	if err != nil || rx == nil {
		t.Fatalf("IFLA_INFO_DATA of the large device: %v, rx %v", err, rx != nil)
	}
	rxAttrs, _, err := kmTakePos(rx.kids)
	if err != nil {
		t.Fatal(err)
	}
	kmSame(t, "IFLA_INFO_DATA transmit policy", tx, big)
	kmSame(t, "IFLA_INFO_DATA receive policy", rxAttrs, big)
	out := RunIn(t, ns, "ip", "-d", "link", "show", dev)
	if !strings.Contains(out, dev) {
		t.Errorf("ip -d link show %s:\n%s", dev, out)
	}
}

// kmCheckPos fails unless the step reported is where the schedule was at
// some elapsed time between lo and hi (with 1 ms for the clocks), and
// returns the step's index. The point reported, the step's end less its
// time left, is the elapsed time modulo the schedule's length (or, held
// for good, past the end of a schedule run once).
func kmCheckPos(t *testing.T, what string, durs []time.Duration, once bool, pos kmPos, lo, hi time.Duration) int {
	t.Helper()
	if pos.index == nil {
		t.Fatalf("%s: no step reported", what)
	}
	i := int(*pos.index)
	if i >= len(durs) {
		t.Fatalf("%s: step %d of %d", what, i, len(durs))
	}
	const slack = time.Millisecond
	lo, hi = lo-slack, hi+slack
	var total, end time.Duration
	for j, d := range durs {
		total += d
		if j <= i {
			end += d
		}
	}
	ok := false
	if pos.left == nil {
		ok = once && i == len(durs)-1 && hi >= total
	} else if left := time.Duration(*pos.left); left > 0 && left <= durs[i] {
		at := end - left
		for k := max(lo, 0) / total; k <= hi/total && !(once && k > 0); k++ {
			if e := k*total + at; e >= lo && e <= hi {
				ok = true
			}
		}
	}
	if !ok {
		t.Errorf("%s: step %d left %v, elapsed between %v and %v", what, i, kmLeft(pos.left), lo, hi)
	} else {
		t.Logf("%s: step %d left %v, elapsed between %v and %v", what, i, kmLeft(pos.left), lo, hi)
	}
	return i
}

func kmLeft(l *uint64) string {
	if l == nil {
		return "(for good)"
	}
	return time.Duration(*l).String()
}

func TestKernelModesStepReported(t *testing.T) {
	CheckKmsg(t)
	const ns, dev = "kmodes", "kmi0"
	kmDevice(t, ns, dev)
	c := kmOpen(t, ns)

	runs := []struct {
		name  string
		durs  []time.Duration
		once  bool
		waits []time.Duration // after the set, before each read
	}{
		{"schedule", []time.Duration{300 * time.Millisecond, 300 * time.Millisecond, time.Hour}, false,
			[]time.Duration{0, 50 * time.Millisecond, 400 * time.Millisecond, 700 * time.Millisecond}},
		{"repeating schedule", []time.Duration{200 * time.Millisecond, 300 * time.Millisecond}, false,
			[]time.Duration{0, 300 * time.Millisecond, 600 * time.Millisecond, 800 * time.Millisecond}},
		{"schedule once", []time.Duration{200 * time.Millisecond, 300 * time.Millisecond}, true,
			[]time.Duration{0, 300 * time.Millisecond, 600 * time.Millisecond, 800 * time.Millisecond}},
		{"time", []time.Duration{250 * time.Millisecond, 250 * time.Millisecond}, false,
			[]time.Duration{0, 300 * time.Millisecond, 600 * time.Millisecond}},
	}
	for _, run := range runs {
		var policy []kmA
		if run.name == "time" {
			policy = kmTime(run.durs[0], run.durs[1])
		} else {
			var steps []kmA
			for i, d := range run.durs {
				steps = append(steps, kmStep(kmMode([]uint32{uapi.ModeDrop, uapi.ModePass}[i%2]), kmDur(d)))
			}
			policy = []kmA{kmMode(uapi.ModeSchedule), kmSteps(steps...)}
			if run.once {
				policy = append(policy, kmOnce())
			}
		}
		before := time.Now()
		c.setTx(dev, policy...)
		after := time.Now()
		var indexes []int
		var lefts []string
		var prevLeft *uint64
		for i, w := range run.waits {
			time.Sleep(time.Until(after.Add(w)))
			r0 := time.Now()
			g := c.get(dev)
			r1 := time.Now()
			kmSame(t, run.name, g.tx, policy)
			idx := kmCheckPos(t, fmt.Sprintf("%s read %d", run.name, i), run.durs, run.once, g.txPos, r0.Sub(after), r1.Sub(before))
			// Within one step the time left goes down; a schedule
			// that does not repeat yet only moves forward.
			if i > 0 && idx == indexes[i-1] && prevLeft != nil && g.txPos.left != nil && *g.txPos.left >= *prevLeft {
				t.Errorf("%s read %d: still step %d, with %v left after %v", run.name, i, idx, kmLeft(g.txPos.left), kmLeft(prevLeft))
			}
			if (run.once || run.name == "schedule") && i > 0 && idx < indexes[i-1] {
				t.Errorf("%s read %d: step %d after step %d", run.name, i, idx, indexes[i-1])
			}
			indexes = append(indexes, idx)
			lefts = append(lefts, kmLeft(g.txPos.left))
			prevLeft = g.txPos.left
		}
		t.Logf("%s: steps %v, left %v", run.name, indexes, lefts)
		// The last read is far enough in to be sure of its step: the
		// hour-long one, or the last one held for good.
		last := len(run.waits) - 1
		switch {
		case run.name == "schedule" && indexes[last] != 2:
			t.Errorf("%s: the last read is in step %d, want 2", run.name, indexes[last])
		case run.once && (indexes[last] != len(run.durs)-1 || lefts[last] != kmLeft(nil)):
			t.Errorf("%s: the last read is in step %d with %s left, want the last step for good", run.name, indexes[last], lefts[last])
		}
	}
}

// kmTopoRaw is kTopo with insane0 at pass and a raw socket in borea.
func kmTopoRaw(t *testing.T) (*Topo, *kmConn) {
	t.Helper()
	tp, _ := kTopo(t, nil)
	return tp, kmOpen(t, tp.Borea)
}

func TestKernelModesDrop(t *testing.T) {
	CheckKmsg(t)
	const n = 500
	tp, c := kmTopoRaw(t)
	c.setTx("insane0", kmMode(uapi.ModeDrop))
	sent, got := tp.UDP(t, vmnet.SendOptions{Count: n})
	if sent.Errors != 0 {
		t.Fatalf("%d sends refused, first: %v", sent.Errors, sent.FirstError)
	}
	d := c.get("insane0").d
	if len(got.Seqs) != 0 || d.Stats[uapi.StatsARelayedPackets] != 0 || d.Stats[uapi.StatsADropPolicy] != n || d.ttSum() != n {
		t.Errorf("drop mode: morgana received %d of %d; counters %s", len(got.Seqs), n, d.ttCounters())
	}

	// The receive policy in drop mode drops morgana's datagrams to borea.
	c.setRx("insane0", kmMode(uapi.ModeDrop))
	_, got = tp.fromMorgana(t, vmnet.SendOptions{Count: n})
	d = c.get("insane0").d
	if len(got.Seqs) != 0 || d.Stats[uapi.StatsARxDropPolicy] != n || d.Stats[uapi.StatsARxRelayedPackets] != 0 {
		t.Errorf("receive drop mode: borea received %d of %d; rx relayed %d, rx drop policy %d",
			len(got.Seqs), n, d.Stats[uapi.StatsARxRelayedPackets], d.Stats[uapi.StatsARxDropPolicy])
	}
	t.Logf("drop mode dropped all %d datagrams each way", n)
}

// The Gilbert recurrence of the uapi header ("Percent decisions" and
// "Gilbert decisions"), written from the header alone, for seeded runs.

func kmMix(seed, k uint64) uint64 {
	x := seed + (k+1)*0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// kmThr is thr(num / den) = ceil(num * 2^32 / den), exactly.
func kmThr(num, den uint64) uint64 {
	q, r := new(big.Int).QuoRem(new(big.Int).Lsh(new(big.Int).SetUint64(num), 32), new(big.Int).SetUint64(den), new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return q.Uint64()
}

// kmChain is the two-state chain: thresholds of p (good to bad), r (bad
// to good), and the losses in the good and bad states.
type kmChain struct {
	p, r, lossGood, lossBad uint64
	bad                     bool
}

func kmBurstChain(percent, burst uint32) *kmChain {
	return &kmChain{
		p:        kmThr(uint64(uapi.PercentMax-percent)*uapi.BurstScale, uint64(percent)*uint64(burst)),
		r:        kmThr(uapi.BurstScale, uint64(burst)),
		lossGood: 0, lossBad: 1 << 32,
	}
}

func kmGilbertChain(p, r, lossBad, lossGood uint32) *kmChain {
	return &kmChain{p: kmThr(uint64(p), uapi.PercentMax), r: kmThr(uint64(r), uapi.PercentMax),
		lossGood: kmThr(uint64(lossGood), uapi.PercentMax), lossBad: kmThr(uint64(lossBad), uapi.PercentMax)}
}

// relays moves the chain by x's high half and decides by its low half in
// the new state.
func (c *kmChain) relays(x uint64) bool {
	u, w := x>>32, x&0xffffffff
	if !c.bad && u < c.p || c.bad && u < c.r {
		c.bad = !c.bad
	}
	loss := c.lossGood
	if c.bad {
		loss = c.lossBad
	}
	return w >= loss
}

// kmPredict lists the packets of 0..n-1 that chain c relays under seed.
func kmPredict(seed uint64, n int, c *kmChain) []uint64 {
	var out []uint64
	for k := uint64(0); k < uint64(n); k++ {
		if c.relays(kmMix(seed, k)) {
			out = append(out, k)
		}
	}
	return out
}

func TestKernelModesSeeded(t *testing.T) {
	CheckKmsg(t)
	const n = 3000
	tp, c := kmTopoRaw(t)
	seed := uint64(0x16b0757)
	hour := kmDur(time.Hour)
	runs := []struct {
		name   string
		policy []kmA
		chain  func() *kmChain
	}{
		{"burst 70 3", []kmA{kmMode(uapi.ModeBurst), kmPercent(70), kmBurst(3), kmSeed(seed)},
			func() *kmChain { return kmBurstChain(kmPct(70), 3000) }},
		{"burst 99.5 1.7", []kmA{kmMode(uapi.ModeBurst), kmPercent(99.5), kmBurst(1.7), kmSeed(seed + 1)},
			func() *kmChain { return kmBurstChain(kmPct(99.5), 1700) }},
		{"gilbert 5 30 80 2", kmJoin(kmMode(uapi.ModeGilbert), kmGE(5, 30, 80, 2), kmSeed(seed)),
			func() *kmChain { return kmGilbertChain(kmPct(5), kmPct(30), kmPct(80), kmPct(2)) }},
		{"schedule 1h burst 60 4", []kmA{kmMode(uapi.ModeSchedule), kmSteps(kmStep(kmMode(uapi.ModeBurst), kmPercent(60), kmBurst(4), hour)), kmSeed(seed)},
			func() *kmChain { return kmBurstChain(kmPct(60), 4000) }},
		{"schedule 1h gilbert 10 25 90 1", []kmA{kmMode(uapi.ModeSchedule), kmSteps(kmStep(kmJoin(kmMode(uapi.ModeGilbert), kmGE(10, 25, 90, 1), hour)...)), kmSeed(seed)},
			func() *kmChain { return kmGilbertChain(kmPct(10), kmPct(25), kmPct(90), kmPct(1)) }},
	}
	for _, run := range runs {
		want := kmPredict(kmSeedOf(run.policy), n, run.chain())
		for _, rx := range []bool{false, true} {
			var got vmnet.Received
			what := run.name
			if rx {
				what = "rx " + what
				c.setTx("insane0", kmMode(uapi.ModePass))
				c.setRx("insane0", run.policy...)
				// Pinned: a sender that migrates leaves datagrams in two
				// CPUs' backlogs, and the receive side would decide
				// them out of their order.
				_, got = tp.fromMorgana(t, vmnet.SendOptions{Count: n, Pin: true})
			} else {
				c.set("insane0", kmU32(uapi.DeviceAFlags, uapi.DeviceFRxOff|uapi.DeviceFResetStats))
				c.setTx("insane0", run.policy...)
				var sent vmnet.Sent
				sent, got = tp.UDP(t, vmnet.SendOptions{Count: n})
				if sent.Errors != 0 {
					t.Fatalf("%d sends refused, first: %v", sent.Errors, sent.FirstError)
				}
			}
			if !equalU64(got.Seqs, want) {
				t.Errorf("%s: %d of %d datagrams arrived, the model predicts %d; first difference at %d",
					what, len(got.Seqs), n, len(want), firstDiff(got.Seqs, want))
			} else {
				t.Logf("%s: the %d datagrams the model predicts of %d arrived, and no other", what, len(want), n)
			}
		}
	}
}

func kmSeedOf(policy []kmA) uint64 {
	for _, a := range policy {
		if a.typ == uapi.PolicyASeed {
			return binary.NativeEndian.Uint64(a.data)
		}
	}
	panic("no seed")
}

// kmRuns returns the lengths of the runs of consecutive numbers of 0..n-1
// missing from got (sorted).
func kmRuns(got []uint64, n uint64) []int {
	var runs []int
	cur := 0
	j := 0
	for k := uint64(0); k < n; k++ {
		if j < len(got) && got[j] == k {
			j++
			if cur > 0 {
				runs = append(runs, cur)
				cur = 0
			}
			continue
		}
		cur++
	}
	if cur > 0 {
		runs = append(runs, cur)
	}
	return runs
}

// Unseeded burst: each CPU draws from its own sequence and keeps its own
// chain state, so that a sender pinned to one CPU sees bursts of the mean
// length asked for. Burst 80 % 4: p = 1/16, r = 1/4, a fifth of the
// packets lost in bursts of 4 on average, where independent loss would
// give bursts of 1.25.
func TestKernelModesUnseededBurst(t *testing.T) {
	CheckKmsg(t)
	const n = 20000
	tp, c := kmTopoRaw(t)
	c.setTx("insane0", kmMode(uapi.ModeBurst), kmPercent(80), kmBurst(4))

	var mu sync.Mutex
	var seqs []uint64
	sink := ttListen(t, tp.Morgana, tp.MorganaIP+":0", func(b []byte) {
		mu.Lock()
		seqs = append(seqs, binary.BigEndian.Uint64(b[8:]))
		mu.Unlock()
	})
	snd := ttSend(t, tp.Borea, []string{fmt.Sprintf("%s:%d", tp.MorganaIP, sink.Port())}, 16, 0, time.Millisecond)
	WaitFor(t, 5*time.Minute, "the pinned sender's datagrams", func() bool { return snd.attempted.Load() >= n })
	snd.Stop()
	d := c.get("insane0").d
	relayed := d.Stats[uapi.StatsARelayedPackets]
	sink.WaitQuiet(int64(relayed), 500*time.Millisecond)
	mu.Lock()
	got := append([]uint64(nil), seqs...)
	mu.Unlock()
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	total := uint64(snd.attempted.Load())
	if refused := snd.refused.Load(); refused != 0 {
		t.Fatalf("%d sends refused", refused)
	}
	if uint64(len(got)) != relayed || d.Stats[uapi.StatsADropPolicy]+relayed != total || d.ttSum() != total {
		t.Fatalf("%d sent, %d received; counters %s", total, len(got), d.ttCounters())
	}

	// The bad state's share: the chain's lag-one correlation 1 - p - r
	// widens the binomial variance by (1 + rho) / (1 - rho).
	p, r := 1.0/16, 1.0/4
	pi := p / (p + r)
	rho := 1 - p - r
	sigma := math.Sqrt(float64(total) * pi * (1 - pi) * (1 + rho) / (1 - rho))
	lost := float64(total - relayed)
	if math.Abs(lost-float64(total)*pi) > 5*sigma {
		t.Errorf("lost %.0f of %d, expected %.0f ± %.0f (5 sigma of the chain)", lost, total, float64(total)*pi, 5*sigma)
	}
	// The bursts: geometric with mean 1/r = 4 and standard deviation
	// sqrt(1 - r) / r.
	runs := kmRuns(got, total)
	var sum int
	for _, l := range runs {
		sum += l
	}
	mean := float64(sum) / float64(len(runs))
	bound := 5 * math.Sqrt(1-r) / r / math.Sqrt(float64(len(runs)))
	if math.Abs(mean-1/r) > bound {
		t.Errorf("%d bursts of mean length %.3f, expected %.3f ± %.3f (5 sigma); independent loss would give %.3f",
			len(runs), mean, 1/r, bound, 1/(1-pi))
	}
	t.Logf("%d sent from CPU 0: %.0f lost (expected %.0f ± %.0f), %d bursts of mean length %.3f (expected 4 ± %.3f)",
		total, lost, float64(total)*pi, 5*sigma, len(runs), mean, bound)
}

// A schedule's steps take effect in their order and for their durations,
// judged by the send times as TestKernelTimeWindows judges time mode:
// pass 300 ms, drop 300 ms, burst 50 % 2 for 300 ms, drop 300 ms; then,
// run once, the last step holds, and repeating, the first comes back.
func TestKernelModesScheduleOrder(t *testing.T) {
	CheckKmsg(t)
	const step = 300 * time.Millisecond
	const n = 400
	tp, c := kmTopoRaw(t)
	kinds := []string{"pass", "drop", "mixed", "drop"}
	steps := kmSteps(
		kmStep(kmMode(uapi.ModePass), kmDur(step)),
		kmStep(kmMode(uapi.ModeDrop), kmDur(step)),
		kmStep(kmMode(uapi.ModeBurst), kmPercent(50), kmBurst(2), kmDur(step)),
		kmStep(kmMode(uapi.ModeDrop), kmDur(step)),
	)
	for _, once := range []bool{true, false} {
		policy := []kmA{kmMode(uapi.ModeSchedule), steps}
		name := "repeating"
		if once {
			policy = append(policy, kmOnce())
			name = "once"
		}
		c.set("insane0", kmU32(uapi.DeviceAFlags, uapi.DeviceFResetStats))
		before := time.Now()
		c.setTx("insane0", policy...)
		after := time.Now()
		sent, got := tp.UDP(t, vmnet.SendOptions{Count: n, Interval: 5 * time.Millisecond})
		if sent.Errors != 0 {
			t.Fatalf("%d sends refused, first: %v", sent.Errors, sent.FirstError)
		}
		margin := after.Sub(before) + 100*time.Millisecond
		total := 4 * step
		// where is the step at elapsed x: 0 to 3, 4 past the end of a
		// schedule run once, -1 before the set.
		where := func(x time.Duration) int {
			switch {
			case x < 0:
				return -1
			case x >= total && once:
				return 4
			}
			return int(x % total / step)
		}
		// kind is the step's kind over the whole of [a, b], "" if the
		// interval spans steps.
		kind := func(a, b time.Duration) string {
			w := where(a)
			if w < 0 || w != where(b) || w < 4 && a/total != b/total {
				return ""
			}
			if w == 4 {
				return "drop for good"
			}
			if a >= total {
				return kinds[w] + " again"
			}
			return kinds[w]
		}
		counts := map[string][2]int{} // kind: relayed, dropped
		var late int
		for seq, at := range sent.At {
			phase := at.Sub(before)
			k := kind(phase-margin, phase+margin)
			ok := got.Has(uint64(seq))
			cnt := counts[k]
			if ok {
				cnt[0]++
			} else {
				cnt[1]++
			}
			counts[k] = cnt
			switch {
			case ok && (k == "drop" || k == "drop again" || k == "drop for good"):
				t.Errorf("%s: datagram %d sent %v after the set was relayed in a drop step", name, seq, phase)
			case !ok && (k == "pass" || k == "pass again"):
				late++
			}
		}
		if late > n/100 {
			t.Errorf("%s: %d datagrams sent well inside a pass step were dropped", name, late)
		}
		if m := counts["mixed"]; m[0] == 0 || m[1] == 0 {
			t.Errorf("%s: inside the burst 50 %% step, %d relayed and %d dropped", name, m[0], m[1])
		}
		if once && counts["drop for good"][1] == 0 {
			t.Errorf("%s: no datagram was sent after the end (%v over %v)", name, sent.At[n-1].Sub(before), total)
		}
		if !once && counts["pass again"][0] == 0 {
			t.Errorf("%s: no datagram relayed in the pass step after the end (%v over %v): the schedule did not start over", name, sent.At[n-1].Sub(before), total)
		}
		d := c.get("insane0").d
		if d.Stats[uapi.StatsARelayedPackets] != uint64(len(got.Seqs)) || d.ttSum() != n {
			t.Errorf("%s: %d arrived; counters %s", name, len(got.Seqs), d.ttCounters())
		}
		t.Logf("%s: over %v, by step (relayed, dropped): %v; %d late at pass edges", name, sent.At[n-1].Sub(sent.At[0]), counts, late)
	}
}

// rtnetlink: a schedule and a receive policy in IFLA_INFO_DATA at
// creation, read back; a change with only the receive policy keeps the
// transmit one; one with a transmit attribute replaces it.
func TestKernelModesRtnetlink(t *testing.T) {
	CheckKmsg(t)
	const ns, dev = "kmodes", "kmr0"
	NewNetns(t, ns)
	RunIn(t, ns, "ip", "link", "add", "kmd0", "type", "dummy")
	lower := GetLink(t, ns, "kmd0").Ifindex
	rt := kmRtOpen(t, ns)

	sched := []kmA{kmMode(uapi.ModeSchedule), kmSteps(
		kmStep(kmMode(uapi.ModeDrop), kmDur(time.Second)),
		kmStep(kmJoin(kmMode(uapi.ModeGilbert), kmGE(2, 40, 100, 0), kmDur(time.Minute))...),
	), kmOnce(), kmSeed(11)}
	burst := []kmA{kmMode(uapi.ModeBurst), kmPercent(90), kmBurst(3)}
	_, r := rt.link(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, dev,
		kmU32(unix.IFLA_LINK, uint32(lower)), kmInfo(append(append([]kmA(nil), sched...), kmNest(uapi.PolicyARx, burst...))...))
	if r.errno != 0 {
		t.Fatalf("newlink: %v: %s", r.errno, r.msg)
	}
	t.Cleanup(func() { TryRunIn(ns, "ip", "link", "del", dev) })
	check := func(what string, tx, rx []kmA) {
		t.Helper()
		data := rt.infoData(dev)
		var gotTx []kmA
		var gotRx []kmA
		for _, a := range data {
			if a.typ == uapi.PolicyARx {
				var err error
				if gotRx, _, err = kmTakePos(a.kids); err != nil {
					t.Fatal(err)
				}
			} else {
				gotTx = append(gotTx, a)
			}
		}
		gotTx, _, err := kmTakePos(gotTx)
		if err != nil {
			t.Fatal(err)
		}
		kmSame(t, what+": transmit policy", gotTx, tx)
		kmSame(t, what+": receive policy", gotRx, rx)
		g := kmOpen(t, ns).get(dev)
		kmSame(t, what+": transmit policy over genl", g.tx, tx)
		kmSame(t, what+": receive policy over genl", g.rx, rx)
	}
	check("newlink", sched, burst)

	gilbert := kmJoin(kmMode(uapi.ModeGilbert), kmGE(3, 30, 95, 1))
	if r := rt.change(dev, kmNest(uapi.PolicyARx, gilbert...)); r.errno != 0 {
		t.Fatalf("changelink rx: %v: %s", r.errno, r.msg)
	}
	check("changelink with a receive policy only", sched, gilbert)
	if r := rt.change(dev, kmMode(uapi.ModeDrop)); r.errno != 0 {
		t.Fatalf("changelink tx: %v: %s", r.errno, r.msg)
	}
	check("changelink with a transmit policy", []kmA{kmMode(uapi.ModeDrop)}, gilbert)
}

// Policies with per-CPU chain states (unseeded burst, gilbert and
// schedules with such steps) are freed by an RCU callback of the module's
// own when replaced: churn them in both directions under traffic, then
// unload the module at once, which must wait for the callbacks.
func TestKernelModesChurnUnload(t *testing.T) {
	CheckKmsg(t)
	rounds := ttSize(300, 3000)
	tp, c := kmTopoRaw(t)
	c.setRx("insane0", kmMode(uapi.ModePass))
	toMorgana := ttListen(t, tp.Morgana, tp.MorganaIP+":0", nil)
	toBorea := ttListen(t, tp.Borea, tp.BoreaIP+":0", nil)
	tx := ttSend(t, tp.Borea, []string{fmt.Sprintf("%s:%d", tp.MorganaIP, toMorgana.Port())}, 1, -1, time.Millisecond)
	rx := ttSend(t, tp.Morgana, []string{fmt.Sprintf("%s:%d", tp.BoreaIP, toBorea.Port())}, 2, -1, time.Millisecond)
	policies := [][]kmA{
		{kmMode(uapi.ModeBurst), kmPercent(50), kmBurst(3)},
		kmJoin(kmMode(uapi.ModeGilbert), kmGE(10, 30, 90, 1)),
		{kmMode(uapi.ModeSchedule), kmSteps(
			kmStep(kmMode(uapi.ModePass), kmDur(time.Millisecond)),
			kmStep(kmMode(uapi.ModeBurst), kmPercent(30), kmBurst(3), kmDur(time.Millisecond)),
			kmStep(kmJoin(kmMode(uapi.ModeGilbert), kmGE(50, 50, 50, 50), kmDur(time.Millisecond))...),
		)},
		{kmMode(uapi.ModeBurst), kmPercent(50), kmBurst(3), kmSeed(5)},
		{kmMode(uapi.ModeDrop)},
		kmTime(time.Millisecond, time.Millisecond),
	}
	for i := 0; i < rounds; i++ {
		p := policies[i%len(policies)]
		q := policies[(i/len(policies)+i)%len(policies)]
		if r := c.set("insane0", kmNest(uapi.DeviceAPolicy, p...), kmNest(uapi.DeviceARxPolicy, q...)); r.errno != 0 {
			t.Fatalf("round %d: %v: %s", i, r.errno, r.msg)
		}
	}
	tx.Stop()
	rx.Stop()
	d := c.get("insane0").d
	txSum := d.Stats[uapi.StatsARelayedPackets]
	for typ := uapi.StatsADropPolicy; typ <= uapi.StatsADropMalformed; typ++ {
		txSum += d.Stats[typ]
	}
	if sent := uint64(tx.attempted.Load() - tx.refused.Load()); txSum != sent {
		t.Errorf("%d datagrams sent through insane0, counters %s", sent, d.ttCounters())
	}
	t.Logf("%d policy changes each way under traffic: %d and %d datagrams sent, %d and %d arrived",
		rounds, tx.attempted.Load(), rx.attempted.Load(), toMorgana.Quiet(), toBorea.Quiet())
	// The last policies have per-CPU state: unloading frees them with the
	// devices, and waits for the callbacks of the replaced ones.
	c.set("insane0", kmNest(uapi.DeviceAPolicy, policies[0]...), kmNest(uapi.DeviceARxPolicy, policies[1]...))
	c.setTx("insane0", policies[2]...)
	UnloadModule(t)
	LoadModule(t)
}
