//go:build vmtest

package guest

// Fuzz: random and mutated generic-netlink and rtnetlink messages against
// the module, seeded and deterministic. Every message is sent with
// NLM_F_ACK (but random other flags), so every request has a reply that
// ends in NLMSG_ERROR or NLMSG_DONE; every reply message is parsed
// strictly. The kernel runs with panic_on_warn=1, and its log is checked.
//
// Everything happens in network namespace ttfuzz, so that what rtnetlink
// does to its devices (renaming, deleting, taking them down) stays there;
// its fixture is restored every few hundred messages. Background traffic
// is routed through fzi0 meanwhile. rtnetlink messages only name kind
// insane (no other module is loaded on demand) and never carry netns
// attributes; their top level is built, never mutated, so that this holds.
//
// INSANE_TORTURE=full sends 100,000 messages; make test sends 10,000.
// INSANE_FUZZ_SEED overrides the seed.

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

const (
	ttFuzzNS   = "ttfuzz"
	ttFuzzPeer = "ttfuzz2"
	ttGenlCtrl = 0x10 // GENL_ID_CTRL
)

var ttFixture = []string{"lo", "fzv0", "fzd0", "fzi0", "fzi1", "fzi2"}

type ttFuzzer struct {
	rt     *ttNl // rtnetlink, for restore
	r      *rand.Rand
	fam    uint16
	idx    []uint32 // interesting ifindexes
	names  []string
	stats  map[string]int
	errnos map[unix.Errno]int
}

// restore puts the fixture back: deletes every other device, gives the
// loopback device its name back, re-creates the rest, and re-reads the
// ifindexes. Every step must succeed: a step that failed unseen would
// leave the fuzzer's devices or names behind for the next round.
func (f *ttFuzzer) restore(t *testing.T) {
	t.Helper()
	// Names may hold any byte the kernel allows (ip -j would print
	// invalid JSON), so devices are listed and changed by index, through
	// the fuzzer's own rtnetlink socket: its 1 MB buffer takes any dump
	// whole, and a dump that ends in an error fails the test (Go's
	// net.Interfaces() reads 4 KB at a time and takes such an end for a
	// complete list).
	list := func() []ttLink {
		links, err := ttLinks(f.rt)
		if err != nil {
			t.Fatalf("listing the devices of %s: %v", ttFuzzNS, err)
		}
		return links
	}
	rtDo := func(what string, typ uint16, ifi []byte, attrs []byte) {
		req := append(ifi, attrs...)
		seq, err := f.rt.request(typ, unix.NLM_F_REQUEST|unix.NLM_F_ACK, req)
		var msgs []ttMsg
		if err == nil {
			msgs, err = f.rt.replies(seq)
		}
		if err == nil && (len(msgs) != 1 || msgs[0].Type != unix.NLMSG_ERROR) {
			err = fmt.Errorf("a reply of %d messages, not an ack", len(msgs))
		}
		if err == nil {
			var errno unix.Errno
			var msg string
			if errno, msg, err = ttNlErr(msgs[0], unix.NLMSG_HDRLEN+len(req)); err == nil && errno != 0 {
				err = fmt.Errorf("%v: %s", errno, msg)
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	ifinfo := func(index int, flags, change uint32) []byte {
		ifi := make([]byte, unix.SizeofIfInfomsg)
		binary.NativeEndian.PutUint32(ifi[4:], uint32(index))
		binary.NativeEndian.PutUint32(ifi[8:], flags)
		binary.NativeEndian.PutUint32(ifi[12:], change)
		return ifi
	}
	// Everything but the loopback device (index 1 in every namespace)
	// goes, fixture included: the fuzzer may have renamed, re-parented or
	// re-configured any of it.
	for _, l := range list() {
		if l.Index != 1 {
			rtDo(fmt.Sprintf("deleting device %d %q", l.Index, l.Name), unix.RTM_DELLINK, ifinfo(l.Index, 0, 0), nil)
		}
	}
	// Fallback tunnel devices (sit0 where IPV6_SIT is built in, as in the
	// debug kernel) accept a delete and stay: they are not the fixture's.
	// The fuzzer may have renamed one to a fixture name, so each gets a
	// name of its own, "fb" and its index, which the fuzzer never uses.
	// The kernel renames before it changes flags, and refuses to rename a
	// device that is up (EBUSY), so a device goes down in a request of
	// its own first.
	fallback := map[string]bool{}
	var lo *ttLink
	for _, l := range list() {
		if l.Index == 1 {
			lo = &l
			continue
		}
		name := fmt.Sprintf("fb%d", l.Index)
		if l.Name != name {
			rtDo(fmt.Sprintf("taking fallback device %d %q down", l.Index, l.Name), unix.RTM_NEWLINK, ifinfo(l.Index, 0, unix.IFF_UP), nil)
			rtDo(fmt.Sprintf("renaming fallback device %d %q", l.Index, l.Name), unix.RTM_NEWLINK, ifinfo(l.Index, 0, 0), ttAttrBytes(unix.IFLA_IFNAME, []byte(name+"\x00")))
		}
		fallback[name] = true
	}
	// The loopback device gets its name back (the fuzzer may have taken
	// it down, renamed it and brought it up again), and comes up.
	if lo == nil {
		t.Fatalf("no device of index 1 in %s", ttFuzzNS)
	}
	if lo.Name != "lo" {
		// Before the name was restored in requests of its own, a
		// restore after the fuzzer had left lo renamed and up lost it
		// (run k24vm6: the rename was refused with EBUSY, unseen).
		f.stats["loopback renames undone"]++
		if lo.Flags&unix.IFF_UP != 0 {
			f.stats["loopback renames undone while up"]++
		}
		rtDo(fmt.Sprintf("taking the loopback device %q down", lo.Name), unix.RTM_NEWLINK, ifinfo(1, 0, unix.IFF_UP), nil)
		rtDo(fmt.Sprintf("renaming the loopback device %q to lo", lo.Name), unix.RTM_NEWLINK, ifinfo(1, 0, 0), ttAttrBytes(unix.IFLA_IFNAME, []byte("lo\x00")))
	}
	rtDo("bringing lo up", unix.RTM_NEWLINK, ifinfo(1, unix.IFF_UP, unix.IFF_UP), nil)
	// Every line must succeed (no -force): ip stops at the first that
	// fails, and the test with it, naming the line.
	batch := func(ns, script string) {
		Sh(t, fmt.Sprintf("ip -n %s -batch - <<'EOF'\n%sEOF", ns, script))
	}
	batch(ttFuzzNS, `link add fzv0 type veth peer name fzv1 netns ttfuzz2
link set fzv0 up
addr add 10.20.0.1/24 dev fzv0
link add fzd0 type dummy
link set fzd0 up
link add link fzv0 name fzi0 type insane
link add fzi1 type insane
link add link fzd0 name fzi2 type insane
link set fzi0 up
route replace 10.20.1.0/24 dev fzi0 src 10.20.0.1
`)
	batch(ttFuzzPeer, "link set fzv1 up\naddr add 10.20.0.2/24 dev fzv1\n")
	f.idx = f.idx[:0]
	var names []string
	for _, l := range list() {
		f.idx = append(f.idx, uint32(l.Index))
		if !fallback[l.Name] {
			names = append(names, l.Name)
		}
	}
	sort.Strings(names)
	want := append([]string(nil), ttFixture...)
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Fatalf("restoring the fixture %v left %q (and the fallback devices %v)", ttFixture, names, fallback)
	}
	f.stats["fixture restores"]++
}

func (f *ttFuzzer) chance(p float64) bool { return f.r.Float64() < p }

func (f *ttFuzzer) pick(n int) int { return f.r.IntN(n) }

// ifindex picks an interesting interface index.
func (f *ttFuzzer) ifindex() uint32 {
	switch f.pick(10) {
	case 0:
		return 0
	case 1:
		return []uint32{1 << 31, 0xffffffff, 1 << 16, 65535}[f.pick(4)]
	case 2:
		return f.r.Uint32()
	}
	return f.idx[f.pick(len(f.idx))]
}

// name picks an interesting interface name, as a NUL-terminated string
// most of the time.
func (f *ttFuzzer) name() []byte {
	var s string
	switch f.pick(12) {
	case 0:
		s = ""
	case 1:
		s = strings.Repeat("x", 15)
	case 2:
		s = strings.Repeat("y", 16+f.pick(8))
	case 3:
		b := make([]byte, f.pick(20))
		for i := range b {
			b[i] = byte(f.r.Uint32())
		}
		return b
	case 4:
		s = "fzn" + strconv.Itoa(f.pick(8))
	case 5:
		s = "fz%d"
	case 6:
		return []byte("fzi0") // not terminated
	default:
		s = f.names[f.pick(len(f.names))]
	}
	return append([]byte(s), 0)
}

func (f *ttFuzzer) u32v() uint32 {
	return []uint32{0, 1, 2, 3, uapi.PercentMax, uapi.PercentMax + 1, 1 << 31, 0xffffffff, f.r.Uint32(), uint32(f.pick(100)) * uapi.PercentScale}[f.pick(10)]
}

// pickU64 picks one of valid most of the time, else one of invalid, or
// rarely any value.
func (f *ttFuzzer) pickU64(valid, invalid []uint64) uint64 {
	switch p := f.r.Float64(); {
	case p < 0.05:
		return f.u64v()
	case p < 0.25:
		return invalid[f.pick(len(invalid))]
	}
	return valid[f.pick(len(valid))]
}

// pickU32 is pickU64 for 32-bit values.
func (f *ttFuzzer) pickU32(valid, invalid []uint32) uint32 {
	switch p := f.r.Float64(); {
	case p < 0.05:
		return f.u32v()
	case p < 0.25:
		return invalid[f.pick(len(invalid))]
	}
	return valid[f.pick(len(valid))]
}

func (f *ttFuzzer) u64v() uint64 {
	return []uint64{0, 1, 1e9, 1 << 63, 1<<64 - 1, f.r.Uint64(), uint64(f.pick(1000)) * 1e6}[f.pick(7)]
}

// policy builds the attributes of a policy nest: mostly valid, sometimes
// incomplete or with attributes of another mode.
func (f *ttFuzzer) policy() []byte { return f.policyIn(false, false) }

// policyIn builds a policy, or with step a step of a schedule (whose mode
// is then mostly one that a step takes, with a duration). Time and
// schedule policies often have INSANE_POLICY_A_CARRIER or _EVENTS (issue
// 17), with windows around INSANE_EDGE_MIN_NS; edges says that the
// schedule of a step has one, so that its duration is picked that way too.
// Both flags also come, rarely, where they are refused: other modes, steps,
// receive policies (carrier), with a payload.
func (f *ttFuzzer) policyIn(step, edges bool) []byte {
	var b []byte
	mode := uint32(f.pick(uapi.ModeMax + 2)) // ModeMax+1 is unknown
	if step && !f.chance(0.1) {
		mode = []uint32{uapi.ModePass, uapi.ModeDrop, uapi.ModePercent, uapi.ModeBurst, uapi.ModeGilbert}[f.pick(5)]
	}
	if f.chance(0.05) {
		mode = f.u32v()
	}
	if !f.chance(0.05) {
		b = append(b, ttAttrBytes(uapi.PolicyAMode, ttU32(mode))...)
	}
	want := map[uint16]bool{}
	switch mode {
	case uapi.ModePercent:
		want[uapi.PolicyAPercent] = !f.chance(0.05)
		want[uapi.PolicyASeed] = f.chance(0.5)
	case uapi.ModeTime:
		want[uapi.PolicyAOnNs] = !f.chance(0.05)
		want[uapi.PolicyAOffNs] = !f.chance(0.05)
		want[uapi.PolicyACarrier] = f.chance(0.25)
		want[uapi.PolicyAEvents] = f.chance(0.25)
	case uapi.ModeBurst:
		want[uapi.PolicyAPercent] = !f.chance(0.05)
		want[uapi.PolicyABurst] = !f.chance(0.05)
		want[uapi.PolicyASeed] = f.chance(0.5)
	case uapi.ModeGilbert:
		want[uapi.PolicyAGeP] = !f.chance(0.05)
		want[uapi.PolicyAGeR] = !f.chance(0.05)
		want[uapi.PolicyAGeLossBad] = f.chance(0.5)
		want[uapi.PolicyAGeLossGood] = f.chance(0.5)
		want[uapi.PolicyASeed] = f.chance(0.5)
	case uapi.ModeSchedule:
		want[uapi.PolicyASteps] = !f.chance(0.05)
		want[uapi.PolicyAOnce] = f.chance(0.3)
		want[uapi.PolicyASeed] = f.chance(0.5)
		want[uapi.PolicyACarrier] = f.chance(0.25)
		want[uapi.PolicyAEvents] = f.chance(0.25)
	}
	// The delay stage (issue 24): in any policy but a schedule, any step.
	if mode != uapi.ModeSchedule && f.chance(0.3) {
		want[uapi.PolicyADelayNs] = !f.chance(0.05)
		want[uapi.PolicyAJitterNs] = f.chance(0.5)
		want[uapi.PolicyADistribution] = f.chance(0.3)
		want[uapi.PolicyACorrelation] = f.chance(0.2)
		want[uapi.PolicyAReorder] = f.chance(0.2)
		if want[uapi.PolicyAJitterNs] && !want[uapi.PolicyASeed] {
			want[uapi.PolicyASeed] = f.chance(0.3)
		}
	}
	// Rate, duplication and corruption (issue 25): in any policy but a
	// schedule and in any step, both directions; rarely beside a
	// schedule's steps, where they are refused.
	if mode != uapi.ModeSchedule && f.chance(0.3) {
		want[uapi.PolicyARate] = !f.chance(0.1)
		want[uapi.PolicyAOverhead] = f.chance(0.3)
		want[uapi.PolicyABufferNs] = f.chance(0.3)
	}
	if mode != uapi.ModeSchedule && f.chance(0.3) {
		want[uapi.PolicyADuplicate] = f.chance(0.6)
		want[uapi.PolicyACorrupt] = f.chance(0.6)
		want[uapi.PolicyACorruptHeader] = want[uapi.PolicyACorrupt] && f.chance(0.4) || f.chance(0.03)
		if !want[uapi.PolicyASeed] && (want[uapi.PolicyADuplicate] || want[uapi.PolicyACorrupt]) {
			want[uapi.PolicyASeed] = f.chance(0.3)
		}
	}
	if mode == uapi.ModeSchedule && f.chance(0.05) {
		want[[]uint16{uapi.PolicyARate, uapi.PolicyAOverhead, uapi.PolicyABufferNs, uapi.PolicyADuplicate,
			uapi.PolicyACorrupt, uapi.PolicyACorruptHeader}[f.pick(6)]] = true
	}
	if !step {
		want[uapi.PolicyALimit] = f.chance(0.1)
	}
	if step {
		want[uapi.PolicyASeed] = f.chance(0.03)
		want[uapi.PolicyADurationNs] = !f.chance(0.05)
		want[uapi.PolicyACarrier] = f.chance(0.02)
		want[uapi.PolicyAEvents] = f.chance(0.02)
	} else {
		edges = want[uapi.PolicyACarrier] || want[uapi.PolicyAEvents]
	}
	for typ := uint16(uapi.PolicyAPad); typ <= uapi.PolicyAMax+1; typ++ {
		if typ == uapi.PolicyAMode || !(want[typ] || f.chance(0.03)) {
			continue
		}
		switch typ {
		case uapi.PolicyAPercent, uapi.PolicyAGeP, uapi.PolicyAGeR, uapi.PolicyAGeLossBad,
			uapi.PolicyAGeLossGood, uapi.PolicyAStepIndex:
			b = append(b, ttAttrBytes(typ, ttU32(f.u32v()))...)
		case uapi.PolicyABurst:
			v := []uint32{0, 999, 1000, 1001, 2500, 4000, 1 << 31, 0xffffffff}[f.pick(8)]
			if f.chance(0.3) {
				v = f.u32v()
			}
			b = append(b, ttAttrBytes(typ, ttU32(v))...)
		case uapi.PolicyAOnce:
			b = append(b, ttAttrBytes(typ, make([]byte, 4*f.pick(2)))...)
		case uapi.PolicyADelayNs, uapi.PolicyAJitterNs:
			// Accepted delays stay short: the background traffic
			// through fzi0 must not pile up in held packets.
			v := []uint64{0, 1, 1e5, 1e6, 3e7, uapi.DelayMaxNs + 1, 1 << 63}[f.pick(7)]
			if f.chance(0.05) {
				v = f.u64v()
			}
			b = append(b, ttAttrBytes(typ, ttU64(v))...)
		case uapi.PolicyADistribution:
			v := uint32(f.pick(uapi.DistributionMax + 2))
			if f.chance(0.05) {
				v = f.u32v()
			}
			b = append(b, ttAttrBytes(typ, ttU32(v))...)
		case uapi.PolicyACorrelation:
			v := []uint32{0, 1, 25e6, uapi.PercentMax - 1, uapi.PercentMax}[f.pick(5)]
			b = append(b, ttAttrBytes(typ, ttU32(v))...)
		case uapi.PolicyALimit:
			v := []uint32{0, 1, 5, 1000, uapi.DelayLimitMax + 1}[f.pick(5)]
			b = append(b, ttAttrBytes(typ, ttU32(v))...)
		case uapi.PolicyAReorder:
			var payload []byte
			if f.chance(0.05) {
				payload = make([]byte, 4)
			}
			b = append(b, ttAttrBytes(typ, payload)...)
		case uapi.PolicyARate:
			// Mostly valid. Slow rates hold the background traffic
			// until the next fixture restore flushes it: they stay
			// rare.
			v := f.pickU64([]uint64{uapi.RateMin, 1e6, 1e8, 1e9, 1e10, uapi.RateMax}, []uint64{0, uapi.RateMin - 1, uapi.RateMax + 1, 1<<64 - 1})
			b = append(b, ttAttrBytes(typ, ttU64(v))...)
		case uapi.PolicyAOverhead:
			v := f.pickU32([]uint32{0, 1, 38, uapi.RateOverheadMax}, []uint32{uapi.RateOverheadMax + 1, 1 << 31, 0xffffffff})
			b = append(b, ttAttrBytes(typ, ttU32(v))...)
		case uapi.PolicyABufferNs:
			v := f.pickU64([]uint64{1, 1e6, 5e7, uapi.DelayMaxNs}, []uint64{0, uapi.DelayMaxNs + 1, 1 << 63})
			b = append(b, ttAttrBytes(typ, ttU64(v))...)
		case uapi.PolicyADuplicate, uapi.PolicyACorrupt:
			v := f.pickU32([]uint32{1, 1e6, 5e7, uapi.PercentMax}, []uint32{0, uapi.PercentMax + 1, 0xffffffff})
			b = append(b, ttAttrBytes(typ, ttU32(v))...)
		case uapi.PolicyACorruptHeader:
			var payload []byte
			if f.chance(0.05) {
				payload = make([]byte, 4)
			}
			b = append(b, ttAttrBytes(typ, payload)...)
		case uapi.PolicyACarrier, uapi.PolicyAEvents:
			var payload []byte
			if f.chance(0.05) {
				payload = make([]byte, 4)
			}
			b = append(b, ttAttrBytes(typ, payload)...)
		case uapi.PolicyAOnNs, uapi.PolicyAOffNs, uapi.PolicyADurationNs:
			v := f.u64v()
			if edges && f.chance(0.7) {
				v = []uint64{uapi.EdgeMinNs - 1, uapi.EdgeMinNs, uapi.EdgeMinNs + 1, 2 * uapi.EdgeMinNs, 5 * uapi.EdgeMinNs, 0}[f.pick(6)]
			}
			b = append(b, ttAttrBytes(typ, ttU64(v))...)
		case uapi.PolicyASteps:
			if step {
				b = append(b, ttAttrBytes(typ|unix.NLA_F_NESTED, nil)...)
				continue
			}
			b = append(b, ttAttrBytes(typ|unix.NLA_F_NESTED, f.steps(edges))...)
		default:
			b = append(b, ttAttrBytes(typ, ttU64(f.u64v()))...)
		}
	}
	return b
}

// steps builds the INSANE_STEPS_A_STEP list of a schedule: mostly a few
// steps, sometimes none, the most allowed or one too many, or an
// attribute of another type.
func (f *ttFuzzer) steps(edges bool) []byte {
	n := 1 + f.pick(4)
	switch f.pick(20) {
	case 0:
		n = 0
	case 1:
		n = uapi.ScheduleStepsMax
	case 2:
		n = uapi.ScheduleStepsMax + 1
	}
	var b []byte
	for i := 0; i < n; i++ {
		typ := uint16(uapi.StepsAStep)
		if f.chance(0.02) {
			typ = uint16(f.pick(3))
		}
		if !f.chance(0.02) {
			typ |= unix.NLA_F_NESTED
		}
		b = append(b, ttAttrBytes(typ, f.policyIn(true, edges))...)
	}
	return b
}

// genl builds a request of the insane family: a valid one, or one with a
// piece missing or extra.
func (f *ttFuzzer) genl() (cmd uint8, flags uint16, attrs []byte) {
	id := func() []byte {
		switch f.pick(6) {
		case 0:
			return nil
		case 1:
			return append(ttAttrBytes(uapi.DeviceAIfindex, ttU32(f.ifindex())), ttAttrBytes(uapi.DeviceAIfname, f.name())...)
		case 2, 3:
			return ttAttrBytes(uapi.DeviceAIfindex, ttU32(f.ifindex()))
		}
		return ttAttrBytes(uapi.DeviceAIfname, f.name())
	}
	switch f.pick(5) {
	case 0:
		return uapi.CmdGetDevice, unix.NLM_F_DUMP, nil
	case 1:
		return uapi.CmdGetDevice, 0, id()
	}
	b := id()
	if f.chance(0.3) {
		if f.chance(0.5) {
			b = append(b, ttAttrBytes(uapi.DeviceALowerIfindex, ttU32(f.ifindex()))...)
		} else {
			b = append(b, ttAttrBytes(uapi.DeviceALowerIfname, f.name())...)
		}
	}
	if f.chance(0.3) {
		fl := uint32(f.pick(8)) // RX_OFF included
		if f.chance(0.1) {
			fl = f.u32v()
		}
		b = append(b, ttAttrBytes(uapi.DeviceAFlags, ttU32(fl))...)
	}
	if f.chance(0.7) {
		b = append(b, ttAttrBytes(uapi.DeviceAPolicy|unix.NLA_F_NESTED, f.policy())...)
	}
	if f.chance(0.3) {
		// The receive policy, which installs the hook on the lower.
		b = append(b, ttAttrBytes(uapi.DeviceARxPolicy|unix.NLA_F_NESTED, f.policy())...)
	}
	if f.chance(0.03) {
		b = append(b, ttAttrBytes(uint16(uapi.DeviceAStats+f.pick(3)), ttU32(1))...)
	}
	return uapi.CmdSetDevice, 0, b
}

// split returns the offsets of the top-level attributes of b, as far as
// they are well formed.
func ttSplit(b []byte) []int {
	var offs []int
	for o := 0; o+4 <= len(b); {
		l := int(binary.NativeEndian.Uint16(b[o:]))
		if l < 4 || o+l > len(b) {
			break
		}
		offs = append(offs, o)
		o += nlmAlign(l)
	}
	return offs
}

// mutate applies one random mutation to an attribute stream.
func (f *ttFuzzer) mutate(b []byte) []byte {
	b = append([]byte(nil), b...)
	offs := ttSplit(b)
	attr := func() int {
		if len(offs) == 0 {
			return -1
		}
		return offs[f.pick(len(offs))]
	}
	switch op := f.pick(12); op {
	case 0: // flip a bit
		if len(b) > 0 {
			b[f.pick(len(b))] ^= 1 << f.pick(8)
		}
	case 1: // an interesting byte
		if len(b) > 0 {
			b[f.pick(len(b))] = []byte{0, 0xff, 0x7f, 0x80, 1, byte(f.r.Uint32())}[f.pick(6)]
		}
	case 2: // truncate
		if len(b) > 0 {
			b = b[:f.pick(len(b))]
		}
	case 3: // append garbage
		for n := 1 + f.pick(32); n > 0; n-- {
			b = append(b, byte(f.r.Uint32()))
		}
	case 4: // a wrong length
		if o := attr(); o >= 0 {
			l := int(binary.NativeEndian.Uint16(b[o:]))
			binary.NativeEndian.PutUint16(b[o:], uint16([]int{0, 1, 3, 4, 5, l - 1, l + 1, l + 4, 0xffff, f.pick(l + 16)}[f.pick(10)]))
		}
	case 5: // a wrong type or flags
		if o := attr(); o >= 0 {
			typ := uint16([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x3fff, f.pick(0x10000)}[f.pick(12)])
			if f.chance(0.3) {
				typ |= unix.NLA_F_NESTED
			}
			if f.chance(0.1) {
				typ |= unix.NLA_F_NET_BYTEORDER
			}
			binary.NativeEndian.PutUint16(b[o+2:], typ)
		}
	case 6: // duplicate an attribute
		if o := attr(); o >= 0 {
			l := nlmAlign(int(binary.NativeEndian.Uint16(b[o:])))
			if o+l <= len(b) {
				b = append(b, b[o:o+l]...)
			}
		}
	case 7: // nest everything once more
		typ := uint16(f.pick(10))
		if f.chance(0.7) {
			typ |= unix.NLA_F_NESTED
		}
		if len(b)+4 <= 0xffff {
			b = ttAttrBytes(typ, b)
		}
	case 8: // an unknown attribute
		extra := ttAttrBytes(uint16(9+f.pick(300)), make([]byte, f.pick(12)))
		o := 0
		if len(offs) > 0 {
			o = offs[f.pick(len(offs))]
		}
		b = append(b[:o:o], append(extra, b[o:]...)...)
	case 9: // an interesting value in an attribute's payload
		if o := attr(); o >= 0 {
			l := int(binary.NativeEndian.Uint16(b[o:]))
			switch {
			case l == 12 && o+12 <= len(b):
				binary.NativeEndian.PutUint64(b[o+4:], f.u64v())
			case l >= 8 && o+8 <= len(b):
				binary.NativeEndian.PutUint32(b[o+4:], f.u32v())
			}
		}
	case 10: // delete an attribute
		if o := attr(); o >= 0 {
			l := nlmAlign(int(binary.NativeEndian.Uint16(b[o:])))
			if o+l <= len(b) {
				b = append(b[:o:o], b[o+l:]...)
			}
		}
	case 11: // deep nesting
		for n := 2 + f.pick(40); n > 0 && len(b)+4 <= 0xffff; n-- {
			b = ttAttrBytes(uapi.DeviceAPolicy|unix.NLA_F_NESTED, b)
		}
	}
	return b
}

// flags returns NLM_F_REQUEST | NLM_F_ACK, sometimes with random other bits
// and rarely without NLM_F_REQUEST.
func (f *ttFuzzer) flags(extra uint16) uint16 {
	fl := uint16(unix.NLM_F_REQUEST|unix.NLM_F_ACK) | extra
	if f.chance(0.2) {
		fl |= uint16(f.r.Uint32()) &^ unix.NLM_F_ACK
	}
	if f.chance(0.03) {
		fl &^= unix.NLM_F_REQUEST
	}
	return fl | unix.NLM_F_ACK
}

// ttFuzzMsg is one request and how to judge its reply.
type ttFuzzMsg struct {
	proto   int
	typ     uint16
	flags   uint16
	payload []byte
	what    string
}

func (f *ttFuzzer) nextGenl() ttFuzzMsg {
	m := ttFuzzMsg{proto: unix.NETLINK_GENERIC, typ: f.fam}
	cmd, extra, attrs := f.genl()
	version := byte(uapi.GenlVersion)
	switch p := f.r.Float64(); {
	case p < 0.1: // random bytes
		cmd = byte(f.pick(6))
		if f.chance(0.2) {
			cmd = byte(f.r.Uint32())
		}
		attrs = make([]byte, f.pick(300))
		for i := range attrs {
			attrs[i] = byte(f.r.Uint32())
		}
		m.what = "genl random"
	case p < 0.3: // valid as built
		m.what = "genl built"
	default:
		for n := 1 + f.pick(4); n > 0; n-- {
			attrs = f.mutate(attrs)
		}
		m.what = "genl mutated"
	}
	if f.chance(0.05) {
		cmd = byte(f.r.Uint32())
	}
	if f.chance(0.05) {
		version = byte(f.r.Uint32())
	}
	hdr := []byte{cmd, version, 0, 0}
	if f.chance(0.02) {
		hdr[2], hdr[3] = byte(f.r.Uint32()), byte(f.r.Uint32())
	}
	if f.chance(0.01) {
		hdr = hdr[:f.pick(4)]
		attrs = nil
		m.what = "genl short header"
	}
	if f.chance(0.02) {
		m.typ = 0xfff0 // no such family
		m.what = "genl no family"
	}
	m.flags = f.flags(extra)
	m.payload = append(hdr, attrs...)
	return m
}

// nextCtrl asks nlctrl for the insane family's policies: the module's
// nla_policy tables, dumped.
func (f *ttFuzzer) nextCtrl() ttFuzzMsg {
	attrs := ttAttrBytes(unix.CTRL_ATTR_FAMILY_ID, binary.NativeEndian.AppendUint16(nil, f.fam))
	if f.chance(0.5) {
		attrs = append(attrs, ttAttrBytes(unix.CTRL_ATTR_OP, ttU32(uint32(f.pick(5))))...)
	}
	return ttFuzzMsg{proto: unix.NETLINK_GENERIC, typ: ttGenlCtrl, flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK | unix.NLM_F_DUMP,
		payload: append([]byte{unix.CTRL_CMD_GETPOLICY, 2, 0, 0}, attrs...), what: "nlctrl getpolicy"}
}

func (f *ttFuzzer) nextRtnl() ttFuzzMsg {
	m := ttFuzzMsg{proto: unix.NETLINK_ROUTE}
	var extra uint16
	switch p := f.pick(20); {
	case p < 9:
		m.typ = unix.RTM_NEWLINK
		if f.chance(0.5) {
			extra = unix.NLM_F_CREATE | unix.NLM_F_EXCL
		}
	case p < 13:
		m.typ = unix.RTM_SETLINK
	case p < 18:
		m.typ = unix.RTM_GETLINK
		if f.chance(0.5) {
			extra = unix.NLM_F_DUMP
		}
	default:
		m.typ = unix.RTM_DELLINK
	}
	ifi := make([]byte, unix.SizeofIfInfomsg)
	if f.chance(0.05) {
		ifi[0] = byte(f.r.Uint32())
	}
	if f.chance(0.05) {
		binary.NativeEndian.PutUint16(ifi[2:], uint16(f.r.Uint32()))
	}
	if f.chance(0.6) {
		binary.NativeEndian.PutUint32(ifi[4:], f.ifindex())
	}
	if f.chance(0.05) {
		binary.NativeEndian.PutUint32(ifi[8:], f.r.Uint32()&(unix.IFF_UP|unix.IFF_NOARP|unix.IFF_PROMISC))
		binary.NativeEndian.PutUint32(ifi[12:], f.r.Uint32())
	}
	var attrs []byte
	if f.chance(0.5) {
		attrs = append(attrs, ttAttrBytes(unix.IFLA_IFNAME, f.name())...)
	}
	if m.typ != unix.RTM_GETLINK || extra == 0 {
		if f.chance(0.4) {
			attrs = append(attrs, ttAttrBytes(unix.IFLA_LINK, ttU32(f.ifindex()))...)
		}
		if f.chance(0.05) {
			attrs = append(attrs, ttAttrBytes(unix.IFLA_MTU, ttU32([]uint32{0, 67, 68, 1280, 1500, 9000, 65535, f.r.Uint32()}[f.pick(8)]))...)
		}
	}
	if m.typ != unix.RTM_DELLINK && f.chance(0.7) {
		var li []byte
		if !f.chance(0.1) {
			li = append(li, ttAttrBytes(unix.IFLA_INFO_KIND, []byte(uapi.LinkKind+"\x00"))...)
		}
		if m.typ != unix.RTM_GETLINK && f.chance(0.8) {
			data := f.policy()
			// The receive policy nested in IFLA_INFO_DATA, or rx off.
			if f.chance(0.3) {
				typ := uint16(uapi.PolicyARx)
				if f.chance(0.9) {
					typ |= unix.NLA_F_NESTED
				}
				data = append(data, ttAttrBytes(typ, f.policy())...)
			}
			if f.chance(0.1) {
				data = append(data, ttAttrBytes(uapi.PolicyARxOff, make([]byte, 4*f.pick(2)))...)
			}
			if f.chance(0.7) {
				for n := 1 + f.pick(3); n > 0; n-- {
					data = f.mutate(data)
				}
			}
			typ := uint16(unix.IFLA_INFO_DATA)
			if f.chance(0.8) {
				typ |= unix.NLA_F_NESTED
			}
			if len(data)+8 < 0xffff {
				li = append(li, ttAttrBytes(typ, data)...)
			}
		}
		attrs = append(attrs, ttAttrBytes(unix.IFLA_LINKINFO|unix.NLA_F_NESTED, li)...)
	}
	if f.chance(0.05) {
		attrs = append(attrs, ttAttrBytes(uint16(100+f.pick(200)), make([]byte, f.pick(9)))...)
	}
	m.flags = f.flags(extra)
	m.payload = append(ifi, attrs...)
	m.what = "rtnl " + map[uint16]string{unix.RTM_NEWLINK: "newlink", unix.RTM_SETLINK: "setlink", unix.RTM_GETLINK: "getlink", unix.RTM_DELLINK: "dellink"}[m.typ]
	return m
}

// check judges a reply: framing (done by replies), then each message by
// type. It returns a description of what is wrong, or "".
func (f *ttFuzzer) check(m ttFuzzMsg, msgs []ttMsg) string {
	reqLen := unix.NLMSG_HDRLEN + len(m.payload)
	for i, r := range msgs {
		last := i == len(msgs)-1
		switch {
		case r.Type == unix.NLMSG_ERROR:
			errno, _, err := ttNlErr(r, reqLen)
			if err != nil {
				return err.Error()
			}
			if !last {
				return "NLMSG_ERROR before the end of the reply"
			}
			if errno == 0 {
				f.stats["acks"]++
			} else {
				f.errnos[errno]++
			}
		case r.Type == unix.NLMSG_DONE:
			if len(r.Data) < 4 {
				return fmt.Sprintf("NLMSG_DONE of %d bytes", len(r.Data))
			}
			code := int32(binary.NativeEndian.Uint32(r.Data))
			if code > 0 || code < -4095 {
				return fmt.Sprintf("NLMSG_DONE code %d", code)
			}
			rest := r.Data[4:]
			if r.Flags&unix.NLM_F_ACK_TLVS != 0 {
				if _, err := ttParseAttrs(rest); err != nil {
					return "NLMSG_DONE TLVs: " + err.Error()
				}
			} else if len(rest) != 0 {
				return fmt.Sprintf("NLMSG_DONE with %d extra bytes", len(rest))
			}
			f.stats["dumps done"]++
			if code != 0 {
				f.errnos[unix.Errno(-code)]++
			}
		case m.proto == unix.NETLINK_GENERIC && r.Type == f.fam && m.typ == f.fam:
			d, err := ttParseDevice(r.Data, uapi.CmdGetDevice)
			if err != nil {
				return "device message: " + err.Error()
			}
			f.stats["device messages"]++
			if rtHasExtras(d) {
				f.stats["devices read back with rate, duplicate or corrupt"]++
			}
		case m.proto == unix.NETLINK_GENERIC && r.Type == ttGenlCtrl && m.typ == ttGenlCtrl:
			if len(r.Data) < 4 {
				return "short nlctrl message"
			}
			if _, err := ttParseAttrs(r.Data[4:]); err != nil {
				return "nlctrl message: " + err.Error()
			}
			f.stats["policy messages"]++
		case m.proto == unix.NETLINK_ROUTE && (r.Type == unix.RTM_NEWLINK || r.Type == unix.RTM_DELLINK):
			if err := ttCheckLink(r.Data); err != nil {
				return "link message: " + err.Error()
			}
			f.stats["link messages"]++
		default:
			return fmt.Sprintf("unexpected message type %d", r.Type)
		}
	}
	return ""
}

// ttCheckLink parses an RTM_NEWLINK or RTM_DELLINK message: the header, the
// attributes, and the insane policy inside IFLA_INFO_DATA strictly.
func ttCheckLink(b []byte) error {
	if len(b) < unix.SizeofIfInfomsg {
		return fmt.Errorf("%d bytes", len(b))
	}
	attrs, err := ttParseAttrs(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return err
	}
	for _, a := range attrs {
		if a.Type != unix.IFLA_LINKINFO {
			continue
		}
		li, err := ttParseAttrs(a.Data)
		if err != nil {
			return fmt.Errorf("IFLA_LINKINFO: %w", err)
		}
		insane := false
		for _, x := range li {
			if x.Type == unix.IFLA_INFO_KIND && string(x.Data) == uapi.LinkKind+"\x00" {
				insane = true
			}
		}
		for _, x := range li {
			if insane && x.Type == unix.IFLA_INFO_DATA {
				if err := ttParseLinkData(x.Data); err != nil {
					return fmt.Errorf("IFLA_INFO_DATA of an insane device: %w", err)
				}
			}
		}
	}
	return nil
}

// ttParseLinkData parses an insane device's IFLA_INFO_DATA strictly: the
// transmit policy, and the receive policy nested in INSANE_POLICY_A_RX
// while it is on. Replies never carry INSANE_POLICY_A_RX_OFF.
func ttParseLinkData(b []byte) error {
	attrs, err := ttParseAttrs(b)
	if err != nil {
		return err
	}
	var tx []byte
	rx := 0
	for _, a := range attrs {
		switch a.Type {
		case uapi.PolicyARx:
			rx++
			var d ttDev
			if err := ttParsePolicy(a.Data, &d); err != nil {
				return fmt.Errorf("INSANE_POLICY_A_RX: %w", err)
			}
			if d.Carrier {
				return fmt.Errorf("INSANE_POLICY_A_RX with INSANE_POLICY_A_CARRIER")
			}
		case uapi.PolicyARxOff:
			return fmt.Errorf("INSANE_POLICY_A_RX_OFF in a reply")
		default:
			typ := a.Type
			if a.Nested {
				typ |= unix.NLA_F_NESTED
			}
			tx = append(tx, ttAttrBytes(typ, a.Data)...)
		}
	}
	if rx > 1 {
		return fmt.Errorf("INSANE_POLICY_A_RX %d times", rx)
	}
	return ttParsePolicy(tx, &ttDev{})
}

func TestTortureFuzz(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	total := ttSize(10000, 100000)
	seed := uint64(0x1a5a5e)
	if s := os.Getenv("INSANE_FUZZ_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("INSANE_FUZZ_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("fuzzing with %d messages, math/rand/v2 PCG seed %#x (INSANE_FUZZ_SEED to change it)", total, seed)

	NewNetns(t, ttFuzzNS)
	NewNetns(t, ttFuzzPeer)
	RunIn(t, ttFuzzPeer, "ip", "route", "add", "local", "10.20.1.0/24", "dev", "lo")
	f := &ttFuzzer{
		r:      rand.New(rand.NewPCG(seed, 0x70a57)),
		names:  append([]string{"nosuch0", "fzv1"}, ttFixture...),
		stats:  map[string]int{},
		errnos: map[unix.Errno]int{},
	}
	f.fam = ttFamily(t, ttFuzzNS)
	socks := map[int]*ttNl{}
	for _, proto := range []int{unix.NETLINK_GENERIC, unix.NETLINK_ROUTE} {
		n, err := ttNlOpen(ttFuzzNS, proto)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		socks[proto] = n
	}
	rt, err := ttNlOpen(ttFuzzNS, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	f.rt = rt
	f.restore(t)
	sink := ttListen(t, ttFuzzPeer, "0.0.0.0:0", nil)
	snd := ttSend(t, ttFuzzNS, []string{"10.20.1.1:" + strconv.Itoa(sink.Port())}, 1, -1, time.Millisecond)

	start := time.Now()
	sent := map[string]int{}
	bad := 0
	for i := 0; i < total; i++ {
		if i > 0 && i%500 == 0 {
			f.restore(t)
		}
		var m ttFuzzMsg
		switch p := f.r.Float64(); {
		case p < 0.01:
			m = f.nextCtrl()
		case p < 0.7:
			m = f.nextGenl()
		default:
			m = f.nextRtnl()
		}
		n := socks[m.proto]
		seq, err := n.request(m.typ, m.flags, m.payload)
		if err != nil {
			t.Fatalf("message %d (%s): send: %v", i, m.what, err)
		}
		sent[m.what]++
		msgs, err := n.replies(seq)
		problem := ""
		if err != nil {
			problem = err.Error()
		} else {
			problem = f.check(m, msgs)
		}
		if problem != "" {
			bad++
			t.Errorf("message %d (%s, type %d flags %#x, payload % x): %s", i, m.what, m.typ, m.flags, m.payload, problem)
			if bad >= 20 {
				t.Fatal("too many bad replies")
			}
			if err != nil {
				t.FailNow() // the socket's state is unknown
			}
		}
	}
	elapsed := time.Since(start)
	snd.Stop()

	// The fixture survived the fuzzing, and strict dumps still parse.
	f.restore(t)
	devs, _, err := ttDump(socks[unix.NETLINK_GENERIC], f.fam)
	if err != nil {
		t.Fatalf("dump after fuzzing: %v", err)
	}
	if len(devs) != 3 {
		t.Errorf("%d insane devices after restoring the fixture, want 3", len(devs))
	}

	var whats []string
	for w, c := range sent {
		whats = append(whats, fmt.Sprintf("%s %d", w, c))
	}
	sort.Strings(whats)
	var errs []string
	for e, c := range f.errnos {
		errs = append(errs, fmt.Sprintf("%s %d", unix.ErrnoName(e), c))
	}
	sort.Strings(errs)
	var st []string
	for k, c := range f.stats {
		st = append(st, fmt.Sprintf("%s %d", k, c))
	}
	sort.Strings(st)
	t.Logf("%d messages in %v: %s", total, elapsed.Round(time.Millisecond), strings.Join(whats, ", "))
	t.Logf("replies: %s; errors: %s", strings.Join(st, ", "), strings.Join(errs, ", "))
	t.Logf("background traffic through fzi0: %d sent, %d received; bad replies: %d", snd.attempted.Load(), sink.Count(), bad)
	Figure(t, "fuzz messages", uint64(total))
	Figure(t, "malformed replies", uint64(bad))

	// Valid configurations still work: create, set, relay, delete.
	seed2 := uint64(0xfeed)
	p := genl.Percent(60, &seed2)
	tp, c := kTopo(t, &p)
	if err := c.SetPolicy("insane0", genl.Time(time.Second, time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.SetPolicy("insane0", p); err != nil {
		t.Fatal(err)
	}
	const count = 2000
	s, got := tp.UDP(t, vmnet.SendOptions{Count: count})
	var want []uint64
	for k := uint64(0); k < count; k++ {
		if genl.Relays(seed2, k, p.PercentUnits()) {
			want = append(want, k)
		}
	}
	if s.Errors != 0 || !equalU64(got.Seqs, want) {
		t.Errorf("after fuzzing, seeded percent 60 relayed %d of %d (%d predicted, %d refused)", len(got.Seqs), count, len(want), s.Errors)
	}
	// The policy decided the test's datagrams and nothing else: a packet
	// of anyone else's takes a k and moves the test's off the prediction.
	if st := kDevice(t, c, "insane0").Stats; st.RelayedPackets+st.DropPolicy != count || st.RelayedPackets != uint64(len(want)) {
		t.Errorf("after fuzzing, insane0 relayed %d and dropped %d by policy; the test sent %d, of which %d were to be relayed",
			st.RelayedPackets, st.DropPolicy, count, len(want))
	}
	if err := c.DeleteLink("insane0"); err != nil {
		t.Errorf("deleting insane0 after fuzzing: %v", err)
	}
	t.Logf("after fuzzing: create, set, relay (%d of %d as predicted) and delete work", len(got.Seqs), count)
}

// ttLink is a device of a link dump: its index and name.
type ttLink struct {
	Index int
	Name  string
	Flags uint32
}

// ttLinks dumps the links of n's namespace (RTM_GETLINK), strictly: every
// message parsed, and a dump that ends in an error or was interrupted by a
// change of the device list (NLM_F_DUMP_INTR) is an error.
func ttLinks(n *ttNl) ([]ttLink, error) {
	seq, err := n.request(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, make([]byte, unix.SizeofIfInfomsg))
	if err != nil {
		return nil, err
	}
	msgs, err := n.replies(seq)
	if err != nil {
		return nil, err
	}
	var links []ttLink
	for _, m := range msgs {
		if m.Flags&unix.NLM_F_DUMP_INTR != 0 {
			return nil, fmt.Errorf("the link dump was interrupted by a change of the device list")
		}
		switch m.Type {
		case unix.RTM_NEWLINK:
			if len(m.Data) < unix.SizeofIfInfomsg {
				return nil, fmt.Errorf("a link message of %d bytes", len(m.Data))
			}
			attrs, err := ttParseAttrs(m.Data[unix.SizeofIfInfomsg:])
			if err != nil {
				return nil, fmt.Errorf("link message: %w", err)
			}
			l := ttLink{Index: int(int32(binary.NativeEndian.Uint32(m.Data[4:]))), Flags: binary.NativeEndian.Uint32(m.Data[8:])}
			for _, a := range attrs {
				if a.Type == unix.IFLA_IFNAME {
					if len(a.Data) == 0 || a.Data[len(a.Data)-1] != 0 {
						return nil, fmt.Errorf("device %d: IFLA_IFNAME % x is not a C string", l.Index, a.Data)
					}
					l.Name = string(a.Data[:len(a.Data)-1])
				}
			}
			links = append(links, l)
		case unix.NLMSG_DONE:
			if len(m.Data) < 4 {
				return nil, fmt.Errorf("NLMSG_DONE of %d bytes", len(m.Data))
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return nil, fmt.Errorf("the link dump ended with %v", unix.Errno(-code))
			}
		case unix.NLMSG_ERROR:
			errno, msg, perr := ttNlErr(m, unix.NLMSG_HDRLEN+unix.SizeofIfInfomsg)
			if perr != nil {
				return nil, perr
			}
			return nil, fmt.Errorf("link dump refused: %v: %s", errno, msg)
		default:
			return nil, fmt.Errorf("message type %d in a link dump", m.Type)
		}
	}
	return links, nil
}
