//go:build vmtest

package guest

// Carrier flaps and edge events (issue 17), spoken in raw generic netlink
// and rtnetlink: every refusal of INSANE_POLICY_A_CARRIER and _EVENTS with
// its message and the attribute it points at, and both flags read back;
// INSANE_EVENT_EDGE from a raw subscription to the events group, checked
// against the nominal times of the uapi header ("Edges"); the carrier as
// rtnetlink reports it (IFF_LOWER_UP, the operational state, the carrier
// counts) through the flaps, the lower's own changes, the device going down
// and up, a policy without the flag, and a detached device.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"github.com/mdlayher/genetlink"
	"golang.org/x/sys/unix"
)

// Operational states (RFC 2863, include/uapi/linux/if.h).
const (
	egOperDown           = 2
	egOperLowerLayerDown = 3
	egOperDormant        = 5
	egOperUp             = 6
)

// egLateBound bounds FIRED_NS - TIME_NS, the kernel's own lateness: from
// an hrtimer's expiry to its softirq callback. On real hardware that is
// microseconds; in this guest (TCG, 2 vCPUs shared with the host's other
// work) the worst of each of 9 runs of these tests was 0.6 to 10 ms, once
// 20.9 ms (the tests log each run's worst). 100 ms is five times the worst
// seen and a third of the 300 ms windows, so that a timer that acts a
// window late cannot pass.
const egLateBound = 100 * time.Millisecond

// egLinkBound bounds how long after an attached device's edge rtnetlink
// reports its new carrier: the link watch is an urgent work item for a
// stacked device (linkwatch_urgent_event()), run at once by an unbound
// worker, which then takes RTNL. The worst of each of 5 runs in this guest,
// from the nominal time to the test's read: 6.8 to 7.9 ms. 250 ms is 30
// times that and stays below the 300 ms windows, so that each report is
// matched to its own edge.
const egLinkBound = 250 * time.Millisecond

func egClock(id int32) uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		panic(err)
	}
	return uint64(ts.Nano())
}

// egMono reads CLOCK_MONOTONIC, the clock of the policies' epochs.
func egMono() uint64 { return egClock(unix.CLOCK_MONOTONIC) }

// egRealOffset returns CLOCK_REALTIME - CLOCK_MONOTONIC, the realtime
// reading taken between two monotonic ones, and half their distance plus
// 1 ns, its uncertainty.
func egRealOffset() (int64, int64) {
	m1 := egMono()
	r := egClock(unix.CLOCK_REALTIME)
	m2 := egMono()
	return int64(r) - int64(m1+(m2-m1)/2), int64(m2-m1)/2 + 1
}

// egSleepUntil sleeps until CLOCK_MONOTONIC reaches at.
func egSleepUntil(at uint64) {
	if now := egMono(); at > now {
		time.Sleep(time.Duration(at - now))
	}
}

// egNextAt returns the first time from from on that is offset into a
// cycle of the given length counted from epoch.
func egNextAt(epoch, cycle, offset, from uint64) uint64 {
	if from < epoch {
		from = epoch
	}
	at := epoch + (from-epoch)/cycle*cycle + offset
	if at < from {
		at += cycle
	}
	return at
}

// egGroup returns the insane family's ID and its events group's, as seen
// from network namespace ns.
func egGroup(t testing.TB, ns string) (uint16, uint32) {
	t.Helper()
	var f genetlink.Family
	err := vmnet.Do(ns, func() error {
		c, err := genetlink.Dial(nil)
		if err != nil {
			return err
		}
		defer c.Close()
		f, err = c.GetFamily(uapi.GenlName)
		return err
	})
	if err != nil {
		t.Fatalf("GetFamily(%s): %v", uapi.GenlName, err)
	}
	for _, g := range f.Groups {
		if g.Name == uapi.GenlMcgrpEvents {
			return f.ID, g.ID
		}
	}
	t.Fatalf("family %s has no group %q: %+v", uapi.GenlName, uapi.GenlMcgrpEvents, f.Groups)
	return 0, 0
}

// egMsg is a multicast message and when the test read it.
type egMsg struct {
	ttMsg
	at uint64
}

// egSub is a raw netlink socket subscribed to one multicast group. A
// goroutine reads it and hands each message on, strictly framed, with the
// CLOCK_MONOTONIC time it was read at.
type egSub struct {
	fd     int
	msgs   chan egMsg
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	err    error // the first failure, ENOBUFS apart
	nobufs int   // ENOBUFS: the kernel dropped messages for this socket
}

func egSubscribe(t testing.TB, ns string, proto int, group uint32) *egSub {
	t.Helper()
	n, err := ttNlOpen(ns, proto)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(n.fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(group)); err != nil {
		n.Close()
		t.Fatalf("joining group %d: %v", group, err)
	}
	// Short reads, so that the reader sees stop soon.
	tv := unix.Timeval{Usec: 20000}
	if err := unix.SetsockoptTimeval(n.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		n.Close()
		t.Fatal(err)
	}
	s := &egSub{fd: n.fd, msgs: make(chan egMsg, 1<<16), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	t.Cleanup(s.Close)
	return s
}

func (s *egSub) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(err, unix.ENOBUFS) {
		s.nobufs++
		return
	}
	if s.err == nil {
		s.err = err
	}
}

// Err returns the number of ENOBUFS and the first failure of the reader.
func (s *egSub) Err() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nobufs, s.err
}

func (s *egSub) run() {
	defer close(s.done)
	buf := make([]byte, 1<<16)
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		nr, _, err := unix.Recvfrom(s.fd, buf, 0)
		at := egMono()
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			s.fail(err)
			if errors.Is(err, unix.ENOBUFS) {
				continue
			}
			return
		}
		b := buf[:nr]
		for len(b) > 0 {
			if len(b) < unix.NLMSG_HDRLEN {
				s.fail(fmt.Errorf("%d trailing bytes after a multicast message", len(b)))
				return
			}
			l := int(binary.NativeEndian.Uint32(b))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				s.fail(fmt.Errorf("multicast message length %d with %d bytes left", l, len(b)))
				return
			}
			m := ttMsg{
				Type:  binary.NativeEndian.Uint16(b[4:]),
				Flags: binary.NativeEndian.Uint16(b[6:]),
				Seq:   binary.NativeEndian.Uint32(b[8:]),
				Pid:   binary.NativeEndian.Uint32(b[12:]),
				Data:  append([]byte(nil), b[unix.NLMSG_HDRLEN:l]...),
			}
			if m.Seq != 0 || m.Pid != 0 {
				s.fail(fmt.Errorf("multicast message type %d with seq %d pid %d", m.Type, m.Seq, m.Pid))
				return
			}
			select {
			case s.msgs <- egMsg{m, at}:
			default:
				s.fail(errors.New("the test's queue of multicast messages is full"))
				return
			}
			if a := nlmAlign(l); a < len(b) {
				b = b[a:]
			} else {
				b = nil
			}
		}
	}
}

// Close stops the reader and closes the socket; it may be called again.
func (s *egSub) Close() {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		unix.Close(s.fd)
	})
}

// egEdge is one INSANE_EVENT_EDGE, strictly parsed, and when it was read.
type egEdge struct {
	Index             uint32
	Name              string
	Dir, Step         uint32
	Mode, State       uint32
	Seq               uint64
	Time, Real, Fired uint64
	Carrier           *uint8
	At                uint64
}

func (e *egEdge) String() string {
	c := "-"
	if e.Carrier != nil {
		c = fmt.Sprint(*e.Carrier)
	}
	return fmt.Sprintf("%s dir %d seq %d step %d mode %d state %d time %d fired +%v carrier %s",
		e.Name, e.Dir, e.Seq, e.Step, e.Mode, e.State, e.Time, time.Duration(e.Fired-e.Time), c)
}

// egParseEvent parses an INSANE_CMD_EVENT strictly. An edge comes back as
// an egEdge; any other event is checked as ttParseDevice checks replies,
// and comes back nil.
func egParseEvent(data []byte) (*egEdge, error) {
	if len(data) < 4 || data[0] != uapi.CmdEvent || data[1] != uapi.GenlVersion || data[2] != 0 || data[3] != 0 {
		return nil, fmt.Errorf("event genl header % x", data[:min(len(data), 4)])
	}
	attrs, err := ttParseAttrs(data[4:])
	if err != nil {
		return nil, err
	}
	if len(attrs) == 0 || attrs[0].Type != uapi.DeviceAEvent || len(attrs[0].Data) != 4 {
		return nil, errors.New("an event that does not start with INSANE_DEVICE_A_EVENT")
	}
	if ev := binary.NativeEndian.Uint32(attrs[0].Data); ev != uapi.EventEdge {
		_, err := ttParseDevice(data, uapi.CmdEvent)
		return nil, err
	}
	e := &egEdge{}
	seen := map[uint16]bool{}
	for _, a := range attrs[1:] {
		if seen[a.Type] {
			return nil, fmt.Errorf("edge event: attribute %d twice", a.Type)
		}
		seen[a.Type] = true
		switch a.Type {
		case uapi.DeviceAIfindex:
			if len(a.Data) != 4 {
				return nil, fmt.Errorf("edge event: ifindex of %d bytes", len(a.Data))
			}
			e.Index = binary.NativeEndian.Uint32(a.Data)
		case uapi.DeviceAIfname:
			if e.Name, err = ttNulString(a.Data, unix.IFNAMSIZ-1); err != nil {
				return nil, err
			}
		case uapi.DeviceAEdge:
			if !a.Nested {
				return nil, errors.New("INSANE_DEVICE_A_EDGE without NLA_F_NESTED")
			}
			if err := egParseEdgeAttrs(a.Data, e); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("edge event with device attribute %d", a.Type)
		}
	}
	for _, need := range []uint16{uapi.DeviceAIfindex, uapi.DeviceAIfname, uapi.DeviceAEdge} {
		if !seen[need] {
			return nil, fmt.Errorf("edge event without device attribute %d", need)
		}
	}
	return e, nil
}

func egParseEdgeAttrs(b []byte, e *egEdge) error {
	attrs, err := ttParseAttrs(b)
	if err != nil {
		return fmt.Errorf("INSANE_DEVICE_A_EDGE: %w", err)
	}
	seen := map[uint16]bool{}
	for _, a := range attrs {
		if a.Type == uapi.EdgeAPad {
			continue
		}
		if seen[a.Type] {
			return fmt.Errorf("edge attribute %d twice", a.Type)
		}
		seen[a.Type] = true
		want := 8
		switch a.Type {
		case uapi.EdgeADirection, uapi.EdgeAStepIndex, uapi.EdgeAMode, uapi.EdgeAState:
			want = 4
		case uapi.EdgeACarrier:
			want = 1
		case uapi.EdgeASeq, uapi.EdgeATimeNs, uapi.EdgeARealtimeNs, uapi.EdgeAFiredNs:
		default:
			return fmt.Errorf("unknown edge attribute %d", a.Type)
		}
		if len(a.Data) != want || a.Nested {
			return fmt.Errorf("edge attribute %d: %d bytes (nested %v), want %d", a.Type, len(a.Data), a.Nested, want)
		}
		var v32 uint32
		var v64 uint64
		switch want {
		case 4:
			v32 = binary.NativeEndian.Uint32(a.Data)
		case 8:
			v64 = binary.NativeEndian.Uint64(a.Data)
		}
		switch a.Type {
		case uapi.EdgeADirection:
			e.Dir = v32
		case uapi.EdgeAStepIndex:
			e.Step = v32
		case uapi.EdgeAMode:
			e.Mode = v32
		case uapi.EdgeAState:
			e.State = v32
		case uapi.EdgeACarrier:
			c := a.Data[0]
			e.Carrier = &c
		case uapi.EdgeASeq:
			e.Seq = v64
		case uapi.EdgeATimeNs:
			e.Time = v64
		case uapi.EdgeARealtimeNs:
			e.Real = v64
		case uapi.EdgeAFiredNs:
			e.Fired = v64
		}
	}
	for typ := uint16(uapi.EdgeADirection); typ < uapi.EdgeACarrier; typ++ {
		if !seen[typ] {
			return fmt.Errorf("edge without attribute %d", typ)
		}
	}
	switch {
	case e.Dir > uapi.DirectionMax:
		return fmt.Errorf("edge of direction %d", e.Dir)
	case e.Seq == 0:
		return errors.New("edge number 0")
	case e.Mode > uapi.ModeMax || e.Mode == uapi.ModeTime || e.Mode == uapi.ModeSchedule:
		return fmt.Errorf("edge into a step of mode %d", e.Mode)
	case e.State > uapi.EdgeStateMax || (e.State == uapi.EdgeStateDown) != (e.Mode == uapi.ModeDrop):
		return fmt.Errorf("edge into a step of mode %d with state %d", e.Mode, e.State)
	case e.Carrier != nil && *e.Carrier > 1:
		return fmt.Errorf("edge with carrier %d", *e.Carrier)
	}
	return nil
}

// egEvents is a raw subscription to the insane family's events group in a
// namespace; every message it reads is parsed strictly.
type egEvents struct {
	t   testing.TB
	fam uint16
	sub *egSub
	// others counts the events other than edges.
	others int
}

func egListen(t testing.TB, ns string) *egEvents {
	t.Helper()
	fam, grp := egGroup(t, ns)
	return &egEvents{t: t, fam: fam, sub: egSubscribe(t, ns, unix.NETLINK_GENERIC, grp)}
}

// parse checks one message; it returns the edge it holds, if any.
func (l *egEvents) parse(m egMsg) (*egEdge, error) {
	if m.Type != l.fam {
		return nil, fmt.Errorf("message type %d in the events group (family %d)", m.Type, l.fam)
	}
	e, err := egParseEvent(m.Data)
	if err != nil {
		return nil, err
	}
	if e == nil {
		l.others++
		return nil, nil
	}
	e.At = m.at
	return e, nil
}

func (l *egEvents) check() {
	l.t.Helper()
	if nobufs, err := l.sub.Err(); err != nil || nobufs != 0 {
		l.t.Fatalf("events subscription: %v, %d ENOBUFS", err, nobufs)
	}
}

// next returns the next edge of device index, or nil after d.
func (l *egEvents) next(index uint32, d time.Duration) *egEdge {
	l.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case m := <-l.sub.msgs:
			e, err := l.parse(m)
			if err != nil {
				l.t.Fatal(err)
			}
			if e != nil && (index == 0 || e.Index == index) {
				return e
			}
		case <-deadline.C:
			l.check()
			return nil
		}
	}
}

// drain returns the edges of device index (every device's, for 0) read
// until none has come for quiet, which must happen within 30 s.
func (l *egEvents) drain(index uint32, quiet time.Duration) []*egEdge {
	l.t.Helper()
	var out []*egEdge
	start := time.Now()
	for {
		e := l.next(index, quiet)
		if e == nil {
			return out
		}
		out = append(out, e)
		if time.Since(start) > 30*time.Second {
			l.t.Fatalf("edges still coming after 30 s: %d, the last %v", len(out), e)
		}
	}
}

// collect returns the edges of device index read within d.
func (l *egEvents) collect(index uint32, d time.Duration) []*egEdge {
	l.t.Helper()
	var out []*egEdge
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return out
		}
		if e := l.next(index, left); e != nil {
			out = append(out, e)
		}
	}
}

// egLink is a device as an RTM_NEWLINK message (a reply or a multicast
// one) describes it: the part these tests look at.
type egLink struct {
	Type     uint16
	Index    uint32
	Flags    uint32
	Oper     uint8
	Carrier  uint8
	Up, Down uint32 // IFLA_CARRIER_UP_COUNT, IFLA_CARRIER_DOWN_COUNT
	At       uint64
}

func (k *egLink) lowerUp() bool { return k.Flags&unix.IFF_LOWER_UP != 0 }

func (k *egLink) String() string {
	return fmt.Sprintf("index %d flags %#x lower_up %v oper %d carrier %d up %d down %d",
		k.Index, k.Flags, k.lowerUp(), k.Oper, k.Carrier, k.Up, k.Down)
}

func egParseLink(m ttMsg) (*egLink, error) {
	if err := ttCheckLink(m.Data); err != nil {
		return nil, err
	}
	k := &egLink{
		Type:  m.Type,
		Index: binary.NativeEndian.Uint32(m.Data[4:]),
		Flags: binary.NativeEndian.Uint32(m.Data[8:]),
	}
	attrs, err := ttParseAttrs(m.Data[unix.SizeofIfInfomsg:])
	if err != nil {
		return nil, err
	}
	seen := map[uint16]bool{}
	for _, a := range attrs {
		switch a.Type {
		case unix.IFLA_OPERSTATE, unix.IFLA_CARRIER:
			if len(a.Data) != 1 {
				return nil, fmt.Errorf("link attribute %d of %d bytes", a.Type, len(a.Data))
			}
			if a.Type == unix.IFLA_OPERSTATE {
				k.Oper = a.Data[0]
			} else {
				k.Carrier = a.Data[0]
			}
		case unix.IFLA_CARRIER_UP_COUNT, unix.IFLA_CARRIER_DOWN_COUNT:
			if len(a.Data) != 4 {
				return nil, fmt.Errorf("link attribute %d of %d bytes", a.Type, len(a.Data))
			}
			if a.Type == unix.IFLA_CARRIER_UP_COUNT {
				k.Up = binary.NativeEndian.Uint32(a.Data)
			} else {
				k.Down = binary.NativeEndian.Uint32(a.Data)
			}
		default:
			continue
		}
		seen[a.Type] = true
	}
	if m.Type == unix.RTM_NEWLINK && len(seen) != 4 {
		return nil, fmt.Errorf("RTM_NEWLINK with %d of the 4 carrier attributes", len(seen))
	}
	return k, nil
}

// egLinkNow reads dev with RTM_GETLINK.
func egLinkNow(rt *kmRt, dev string) *egLink {
	rt.t.Helper()
	msgs, r := rt.link(unix.RTM_GETLINK, 0, dev)
	if r.errno != 0 || len(msgs) != 1 || msgs[0].Type != unix.RTM_NEWLINK {
		rt.t.Fatalf("RTM_GETLINK %s: %v %q, %d messages", dev, r.errno, r.msg, len(msgs))
	}
	k, err := egParseLink(msgs[0])
	if err != nil {
		rt.t.Fatalf("RTM_GETLINK %s: %v", dev, err)
	}
	k.At = egMono()
	return k
}

// egSetUp brings dev up or down with one RTM_NEWLINK (ip(8) through ip
// netns exec takes a good part of a window to start in this guest), and
// returns CLOCK_MONOTONIC before the request and after its ack.
func egSetUp(rt *kmRt, dev string, up bool) (uint64, uint64) {
	rt.t.Helper()
	start := egMono()
	_, r, err := kmDo(rt.n, unix.RTM_NEWLINK, 0, ttIfi(up, true), ttIfname(dev))
	end := egMono()
	if err != nil || r.errno != 0 {
		rt.t.Fatalf("setting %s up %v: %v %v %q", dev, up, err, r.errno, r.msg)
	}
	return start, end
}

// egWithin fails the test unless [start, end] lies in [lo, hi) of a cycle
// counted from epoch: the test meant to act inside one window.
func egWithin(t *testing.T, what string, epoch, cycle, lo, hi, start, end uint64) {
	t.Helper()
	a, b := (start-epoch)%cycle, (end-epoch)%cycle
	if (end-epoch)/cycle != (start-epoch)/cycle || a < lo || b >= hi {
		t.Fatalf("%s: meant within %v to %v of a cycle, took %v to %v", what, time.Duration(lo), time.Duration(hi), time.Duration(a), time.Duration(b))
	}
}

// egLinks is a raw subscription to RTNLGRP_LINK in a namespace.
type egLinks struct {
	t   testing.TB
	sub *egSub
}

func egWatchLinks(t testing.TB, ns string) *egLinks {
	t.Helper()
	return &egLinks{t: t, sub: egSubscribe(t, ns, unix.NETLINK_ROUTE, unix.RTNLGRP_LINK)}
}

// drain returns the link messages of device index read so far, waiting
// until none has come for quiet.
func (l *egLinks) drain(index uint32, quiet time.Duration) []*egLink {
	l.t.Helper()
	var out []*egLink
	for {
		select {
		case m := <-l.sub.msgs:
			if m.Type != unix.RTM_NEWLINK && m.Type != unix.RTM_DELLINK {
				l.t.Fatalf("message type %d in RTNLGRP_LINK", m.Type)
			}
			k, err := egParseLink(m.ttMsg)
			if err != nil {
				l.t.Fatal(err)
			}
			k.At = m.at
			if k.Index == index {
				out = append(out, k)
			}
		case <-time.After(quiet):
			if nobufs, err := l.sub.Err(); err != nil || nobufs != 0 {
				l.t.Fatalf("RTNLGRP_LINK subscription: %v, %d ENOBUFS", err, nobufs)
			}
			return out
		}
	}
}

// egTrain describes a time or schedule policy's steps, for checking its
// edges: their durations and modes, and whether it runs once.
type egTrain struct {
	durs  []time.Duration
	modes []uint32
	once  bool
}

func egTimeTrain(on, off time.Duration) egTrain {
	return egTrain{durs: []time.Duration{on, off}, modes: []uint32{uapi.ModePass, uapi.ModeDrop}}
}

// nominal is edge n's time after the epoch: q * T + end[r], q = (n - 1) /
// m, r = (n - 1) mod m (uapi header, "Edges").
func (tr egTrain) nominal(n uint64) uint64 {
	m := uint64(len(tr.durs))
	var total, end uint64
	r := (n - 1) % m
	for i, d := range tr.durs {
		total += uint64(d)
		if uint64(i) <= r {
			end += uint64(d)
		}
	}
	return (n-1)/m*total + end
}

// egLate collects the lateness figures of a test.
type egLate struct {
	fired, read, link time.Duration // worst FIRED_NS, read, RTM_NEWLINK arrival, after TIME_NS
	edges, links      int
}

func (lt *egLate) log(t *testing.T, what string) {
	t.Helper()
	t.Logf("%s: %d edges, worst FIRED_NS - TIME_NS %v, worst read - TIME_NS %v; %d RTM_NEWLINK matched, worst arrival - TIME_NS %v",
		what, lt.edges, lt.fired, lt.read, lt.links, lt.link)
}

// check checks edges, consecutive from number first, against tr and dir:
// each edge's step, mode and state as its number says, its nominal time on
// one epoch, which is returned, and between before and after when before
// is not 0; FIRED_NS from the nominal time on, within egLateBound;
// REALTIME_NS the nominal time on CLOCK_REALTIME.
func (tr egTrain) check(t *testing.T, what string, edges []*egEdge, dir uint32, first uint64, before, after uint64, lt *egLate) uint64 {
	t.Helper()
	if len(edges) == 0 {
		t.Fatalf("%s: no edge", what)
	}
	epoch := edges[0].Time - tr.nominal(edges[0].Seq)
	if before != 0 && (epoch < before || epoch > after) {
		t.Errorf("%s: epoch %d outside the request, %d to %d", what, epoch, before, after)
	}
	off, unc := egRealOffset()
	m := uint64(len(tr.durs))
	for i, e := range edges {
		n := first + uint64(i)
		step := n % m
		state := uint32(uapi.EdgeStateUp)
		if tr.modes[step] == uapi.ModeDrop {
			state = uapi.EdgeStateDown
		}
		switch {
		case e.Dir != dir || e.Seq != n || uint64(e.Step) != step || e.Mode != tr.modes[step] || e.State != state:
			t.Errorf("%s: edge %d is %v; want dir %d seq %d step %d mode %d state %d", what, i, e, dir, n, step, tr.modes[step], state)
		case tr.once && n >= m:
			t.Errorf("%s: edge %d of a schedule of %d steps run once", what, n, m)
		case e.Time != epoch+tr.nominal(n):
			t.Errorf("%s: edge %d at %d, want epoch %d + %d", what, n, e.Time, epoch, tr.nominal(n))
		case e.Fired < e.Time || time.Duration(e.Fired-e.Time) > egLateBound:
			t.Errorf("%s: edge %d at %d fired at %d (%+d ns)", what, n, e.Time, e.Fired, int64(e.Fired-e.Time))
		}
		// Both clocks are slewed alike: the offset changes only when
		// CLOCK_REALTIME is set, which nothing does here.
		if d := int64(e.Real-e.Time) - off; d > unc+int64(2*time.Millisecond) || -d > unc+int64(2*time.Millisecond) {
			t.Errorf("%s: edge %d: REALTIME_NS - TIME_NS = %d, the clocks' offset is %d ± %d", what, n, int64(e.Real-e.Time), off, unc)
		}
		if lt != nil {
			lt.edges++
			lt.fired = max(lt.fired, time.Duration(e.Fired-e.Time))
			lt.read = max(lt.read, time.Duration(e.At-e.Time))
		}
	}
	return epoch
}

var (
	egCarrier = kmFlag(uapi.PolicyACarrier)
	egEvents_ = kmFlag(uapi.PolicyAEvents)
)

const (
	egOnlyCarrier = "INSANE_POLICY_A_CARRIER is only valid in time and schedule modes"
	egOnlyEvents  = "INSANE_POLICY_A_EVENTS is only valid in time and schedule modes"
	egStepCarrier = "INSANE_POLICY_A_CARRIER is not valid in a step: it goes beside INSANE_POLICY_A_STEPS, for every step"
	egStepEvents  = "INSANE_POLICY_A_EVENTS is not valid in a step: it goes beside INSANE_POLICY_A_STEPS, for every step"
	egRxCarrier   = "carrier flaps follow the transmit policy: INSANE_POLICY_A_CARRIER is not valid in a receive policy"
	egShortTail   = ", the shortest window with INSANE_POLICY_A_CARRIER or INSANE_POLICY_A_EVENTS: faster carrier changes or events would flood rtnetlink and the listeners"
	egShortOn     = "INSANE_POLICY_A_ON_NS is below INSANE_EDGE_MIN_NS (10 ms)" + egShortTail
	egShortOff    = "INSANE_POLICY_A_OFF_NS is below INSANE_EDGE_MIN_NS (10 ms)" + egShortTail
	egShortStep   = "INSANE_POLICY_A_DURATION_NS is below INSANE_EDGE_MIN_NS (10 ms), the shortest step with INSANE_POLICY_A_CARRIER or INSANE_POLICY_A_EVENTS: faster carrier changes or events would flood rtnetlink and the listeners"
)

func TestKernelEdgeRefusals(t *testing.T) {
	CheckKmsg(t)
	const ns, dev = "kedge", "kei0"
	kmDevice(t, ns, dev)
	c := kmOpen(t, ns)

	minW := time.Duration(uapi.EdgeMinNs)
	onOff := func(on, off time.Duration) []kmA { return kmTime(on, off) }
	on := func(d time.Duration) kmA { return kmU64(uapi.PolicyAOnNs, uint64(d)) }
	off := func(d time.Duration) kmA { return kmU64(uapi.PolicyAOffNs, uint64(d)) }
	sched := func(steps ...kmA) []kmA { return []kmA{kmMode(uapi.ModeSchedule), kmSteps(steps...)} }
	pass := func(d time.Duration) kmA { return kmStep(kmMode(uapi.ModePass), kmDur(d)) }
	drop := func(d time.Duration) kmA { return kmStep(kmMode(uapi.ModeDrop), kmDur(d)) }
	const (
		tx = 1 << iota
		rx
		both = tx | rx
	)
	cases := []struct {
		name   string
		policy []kmA
		dirs   int
		msg    string
	}{
		// Modes without windows.
		{"carrier in pass mode", kmJoin(kmMode(uapi.ModePass), kmMark(egCarrier)), tx, egOnlyCarrier},
		{"carrier in percent mode", kmJoin(kmMode(uapi.ModePercent), kmPercent(50), kmMark(egCarrier)), tx, egOnlyCarrier},
		{"carrier in drop mode", kmJoin(kmMode(uapi.ModeDrop), kmMark(egCarrier)), tx, egOnlyCarrier},
		{"carrier in burst mode", kmJoin(kmMode(uapi.ModeBurst), kmPercent(90), kmBurst(2), kmMark(egCarrier)), tx, egOnlyCarrier},
		{"carrier in gilbert mode", kmJoin(kmMode(uapi.ModeGilbert), kmGE(1, 20, 100, 0), kmMark(egCarrier)), tx, egOnlyCarrier},
		{"events in pass mode", kmJoin(kmMode(uapi.ModePass), kmMark(egEvents_)), both, egOnlyEvents},
		{"events in percent mode", kmJoin(kmMode(uapi.ModePercent), kmPercent(50), kmSeed(1), kmMark(egEvents_)), both, egOnlyEvents},
		{"events in drop mode", kmJoin(kmMode(uapi.ModeDrop), kmMark(egEvents_)), both, egOnlyEvents},
		{"events in burst mode", kmJoin(kmMode(uapi.ModeBurst), kmPercent(90), kmBurst(2), kmMark(egEvents_)), both, egOnlyEvents},
		{"events in gilbert mode", kmJoin(kmMode(uapi.ModeGilbert), kmGE(1, 20, 100, 0), kmMark(egEvents_)), both, egOnlyEvents},
		// In a step.
		{"carrier in a step", sched(pass(time.Second), kmStep(kmMode(uapi.ModeDrop), kmDur(time.Second), kmMark(egCarrier))), both, egStepCarrier},
		{"events in a step", sched(kmStep(kmMode(uapi.ModePass), kmDur(time.Second), kmMark(egEvents_))), both, egStepEvents},
		{"events in a step of a schedule with events", append(sched(kmStep(kmMode(uapi.ModePercent), kmPercent(5), kmDur(time.Second), kmMark(egEvents_))), egEvents_), both, egStepEvents},
		{"carrier in a drop step with the schedule's carrier", append(sched(kmStep(kmMode(uapi.ModeDrop), kmMark(egCarrier), kmDur(time.Second))), egCarrier), tx, egStepCarrier},
		// The receive policy has no carrier of its own, whatever else.
		{"carrier in a receive time policy", kmJoin(onOff(time.Second, time.Second), kmMark(egCarrier)), rx, egRxCarrier},
		{"carrier and events in a receive schedule", kmJoin(sched(pass(time.Second), drop(time.Second)), egEvents_, kmMark(egCarrier)), rx, egRxCarrier},
		{"carrier in a receive pass policy", kmJoin(kmMode(uapi.ModePass), kmMark(egCarrier)), rx, egRxCarrier},
		{"carrier in a receive time policy with a short window", kmJoin(kmMode(uapi.ModeTime), on(time.Nanosecond), off(time.Second), kmMark(egCarrier)), rx, egRxCarrier},
		// Windows of at least INSANE_EDGE_MIN_NS.
		{"carrier with ON 10 ms - 1 ns", kmJoin(kmMode(uapi.ModeTime), kmMark(on(minW-1)), off(time.Second), egCarrier), tx, egShortOn},
		{"events with ON 0", kmJoin(kmMode(uapi.ModeTime), kmMark(on(0)), off(time.Second), egEvents_), both, egShortOn},
		{"events with OFF 9 ms", kmJoin(kmMode(uapi.ModeTime), on(time.Second), kmMark(off(9*time.Millisecond)), egEvents_), both, egShortOff},
		{"carrier with OFF 1 ns", kmJoin(egCarrier, kmMode(uapi.ModeTime), on(minW), kmMark(off(1))), tx, egShortOff},
		{"both flags with ON and OFF 1 ns", kmJoin(kmMode(uapi.ModeTime), kmMark(on(1)), off(1), egCarrier, egEvents_), tx, egShortOn},
		{"carrier with a step of 10 ms - 1 ns", append(sched(pass(time.Second), kmStep(kmMode(uapi.ModeDrop), kmMark(kmDur(minW-1))), pass(time.Second)), egCarrier), tx, egShortStep},
		{"events with a short last step, once", append(sched(drop(minW), pass(minW), kmStep(kmMode(uapi.ModeDrop), kmMark(kmDur(time.Microsecond)))), kmOnce(), egEvents_), both, egShortStep},
		{"events with a first step of 1 ns", append(sched(kmStep(kmMode(uapi.ModePass), kmMark(kmDur(1))), drop(time.Second)), egEvents_), both, egShortStep},
	}
	for _, tc := range cases {
		for _, where := range []uint16{uapi.DeviceAPolicy, uapi.DeviceARxPolicy} {
			what := tc.name
			if where == uapi.DeviceARxPolicy {
				if tc.dirs&rx == 0 {
					continue
				}
				what = "rx " + what
			} else if tc.dirs&tx == 0 {
				continue
			}
			kmCheckRefusal(t, what, c.set(dev, kmNest(where, tc.policy...)), tc.msg)
		}
	}

	// The limits are accepted, as are short windows without the flags.
	accepted := []struct {
		name   string
		policy []kmA
		rx     bool
	}{
		{"both flags, 10 ms windows", kmJoin(onOff(minW, minW), egCarrier, egEvents_), false},
		{"events, 10 ms windows", kmJoin(onOff(minW, minW), egEvents_), true},
		{"carrier, schedule of 10 ms steps, once", kmJoin(sched(pass(minW), drop(minW), pass(minW)), kmOnce(), egCarrier), false},
		{"events, schedule of one step, once", kmJoin(sched(drop(minW)), kmOnce(), egEvents_), true},
		{"both flags, the longest schedule", kmJoin(sched(pass(minW), kmStep(kmMode(uapi.ModeDrop), kmU64(uapi.PolicyADurationNs, 1<<63-1-uapi.EdgeMinNs))), egCarrier, egEvents_), false},
		{"time 1 ns 1 ns without flags", onOff(1, 1), true},
		{"a step of 1 ns without flags", sched(pass(1), drop(time.Second)), true},
	}
	for _, tc := range accepted {
		if r := c.set(dev, kmNest(uapi.DeviceAPolicy, tc.policy...)); r.errno != 0 {
			t.Errorf("%s: refused: %v: %s", tc.name, r.errno, r.msg)
		}
		if !tc.rx {
			continue
		}
		if r := c.set(dev, kmNest(uapi.DeviceARxPolicy, tc.policy...)); r.errno != 0 {
			t.Errorf("rx %s: refused: %v: %s", tc.name, r.errno, r.msg)
		}
	}

	// Read back, in GET and in IFLA_INFO_DATA.
	txp := kmJoin(onOff(250*time.Millisecond, 750*time.Millisecond), egCarrier, egEvents_)
	rxp := kmJoin(sched(pass(time.Second), drop(2*time.Second)), kmOnce(), egEvents_)
	c.setTx(dev, txp...)
	c.setRx(dev, rxp...)
	g := c.get(dev)
	kmSame(t, "transmit policy with both flags", g.tx, txp)
	kmSame(t, "receive policy with events", g.rx, rxp)
	if !g.d.Carrier || !g.d.Events || g.d.Rx == nil || g.d.Rx.Carrier || !g.d.Rx.Events {
		t.Errorf("GET: flags tx carrier %v events %v, rx %+v", g.d.Carrier, g.d.Events, g.d.Rx)
	}
	rt := kmRtOpen(t, ns)
	egCheckInfoData(t, "RTM_GETLINK", rt.infoData(dev), txp, rxp)

	// rtnetlink: the same refusals behind IFLA_INFO_DATA.
	rtCases := []struct {
		name string
		data []kmA
		msg  string
	}{
		{"carrier in percent mode", kmJoin(kmMode(uapi.ModePercent), kmPercent(5), kmMark(egCarrier)), egOnlyCarrier},
		{"events in drop mode", kmJoin(kmMode(uapi.ModeDrop), kmMark(egEvents_)), egOnlyEvents},
		{"events in a step", sched(kmStep(kmMode(uapi.ModePass), kmDur(time.Second), kmMark(egEvents_))), egStepEvents},
		{"carrier with a short step", append(sched(pass(time.Second), kmStep(kmMode(uapi.ModeDrop), kmMark(kmDur(minW-1)))), egCarrier), egShortStep},
		{"carrier with a short ON", kmJoin(kmMode(uapi.ModeTime), kmMark(on(5*time.Millisecond)), off(time.Second), egCarrier), egShortOn},
		{"rx carrier", kmJoin(kmNest(uapi.PolicyARx, kmJoin(onOff(time.Second, time.Second), kmMark(egCarrier))...)), egRxCarrier},
		{"rx events with a short OFF", kmJoin(kmMode(uapi.ModePass), kmNest(uapi.PolicyARx, kmJoin(kmMode(uapi.ModeTime), on(time.Second), kmMark(off(minW-1)), egEvents_)...)), egShortOff},
		{"rx carrier in a step", kmJoin(kmNest(uapi.PolicyARx, sched(kmStep(kmMode(uapi.ModePass), kmDur(time.Second), kmMark(egCarrier)))...)), egStepCarrier},
		{"rx events in gilbert mode", kmJoin(kmNest(uapi.PolicyARx, kmJoin(kmMode(uapi.ModeGilbert), kmGE(1, 20, 100, 0), kmMark(egEvents_))...)), egOnlyEvents},
	}
	for _, tc := range rtCases {
		kmCheckRefusal(t, "rtnetlink "+tc.name, rt.change(dev, tc.data...), tc.msg)
	}
	// And a new device with a refused receive policy is not made.
	_, r := rt.link(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, "kei1",
		kmInfo(kmJoin(onOff(minW, minW), egCarrier, kmNest(uapi.PolicyARx, kmJoin(onOff(minW, minW), kmMark(egCarrier))...))...))
	kmCheckRefusal(t, "rtnetlink new device with rx carrier", r, egRxCarrier)
	if _, err := TryGetLink(ns, "kei1"); err == nil {
		t.Error("kei1 was made with a refused receive policy")
	}
	g = c.get(dev)
	kmSame(t, "after rtnetlink refusals", g.tx, txp)
	kmSame(t, "receive policy after rtnetlink refusals", g.rx, rxp)

	// Set through IFLA_INFO_DATA (a change, and a new device), read back
	// through both.
	txp2 := kmJoin(sched(drop(20*time.Millisecond), pass(30*time.Millisecond)), egEvents_, egCarrier, kmSeed(4))
	rxp2 := kmJoin(onOff(time.Second, minW), egEvents_)
	if r := rt.change(dev, append(append([]kmA(nil), txp2...), kmNest(uapi.PolicyARx, rxp2...))...); r.errno != 0 {
		t.Fatalf("rtnetlink change with both flags: %v: %s", r.errno, r.msg)
	}
	g = c.get(dev)
	kmSame(t, "transmit policy set by rtnetlink", g.tx, txp2)
	kmSame(t, "receive policy set by rtnetlink", g.rx, rxp2)
	egCheckInfoData(t, "RTM_GETLINK after the change", rt.infoData(dev), txp2, rxp2)
	_, r = rt.link(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, "kei1",
		kmInfo(append(append([]kmA(nil), txp...), kmNest(uapi.PolicyARx, rxp...))...))
	if r.errno != 0 {
		t.Fatalf("rtnetlink new device with both flags: %v: %s", r.errno, r.msg)
	}
	g = c.get("kei1")
	kmSame(t, "new device's transmit policy", g.tx, txp)
	kmSame(t, "new device's receive policy", g.rx, rxp)
	egCheckInfoData(t, "RTM_GETLINK of the new device", rt.infoData("kei1"), txp, rxp)
}

// egCheckInfoData checks an insane device's IFLA_INFO_DATA against the
// transmit and receive policies set (the step reported left out).
func egCheckInfoData(t *testing.T, what string, data, tx, rx []kmA) {
	t.Helper()
	var gotTx []kmA
	var gotRx *kmA
	for i, a := range data {
		if a.typ == uapi.PolicyARx {
			gotRx = &data[i]
		} else {
			gotTx = append(gotTx, a)
		}
	}
	gotTx, _, err := kmTakePos(gotTx)
	if err != nil || gotRx == nil {
		t.Fatalf("%s: %v, receive policy %v", what, err, gotRx != nil)
	}
	rxAttrs, _, err := kmTakePos(gotRx.kids)
	if err != nil {
		t.Fatal(err)
	}
	kmSame(t, what+" transmit policy", gotTx, tx)
	kmSame(t, what+" receive policy", rxAttrs, rx)
}

// egCount returns how many edges of tr, on epoch, are due by at.
func (tr egTrain) count(epoch, at uint64) uint64 {
	var n uint64
	for at >= epoch+tr.nominal(n+1) && !(tr.once && n+1 >= uint64(len(tr.durs))) {
		n++
	}
	return n
}

// egExpectSpan fails unless edges, from the first on, are those due by the
// replacement of their policy: all due by last, the time just before the
// request, less egLateBound, and none fired after stopped, its ack.
func egExpectSpan(t *testing.T, what string, tr egTrain, edges []*egEdge, epoch, last, stopped uint64) {
	t.Helper()
	lo, hi := tr.count(epoch, last-uint64(egLateBound)), tr.count(epoch, stopped)
	if len(edges) > 0 {
		if skipped := edges[0].Seq - 1; skipped <= lo {
			lo -= skipped
		} else {
			lo = 0
		}
		hi -= min(hi, edges[0].Seq-1)
	}
	if n := uint64(len(edges)); n < lo || n > hi {
		t.Errorf("%s: %d edges, want %d to %d", what, n, lo, hi)
	}
	for _, e := range edges {
		if e.Fired > stopped {
			t.Errorf("%s: edge %v fired %v after its policy was replaced", what, e, time.Duration(e.Fired-stopped))
		}
	}
}

func TestKernelEdgeEvents(t *testing.T) {
	CheckKmsg(t)
	const ns, dev = "kedge", "kei0"
	const ms = time.Millisecond
	kmDevice(t, ns, dev)
	RunIn(t, ns, "ip", "link", "set", dev, "up")
	c := kmOpen(t, ns)
	ev := egListen(t, ns)
	// The initial namespace's listeners hear nothing of kedge's device.
	evInit := egListen(t, "")
	idx := c.get(dev).d.Index
	var lt egLate

	// Time mode, 200 ms ON then 300 ms OFF, for 3 s: edges 1, 2, 3, ...
	// at 200, 500, 700, 1000, ... ms, into step 1 (OFF, DOWN) and step 0
	// (ON, UP) in turn; then pass, and nothing more.
	tr := egTimeTrain(200*ms, 300*ms)
	before := egMono()
	c.setTx(dev, kmJoin(kmTime(200*ms, 300*ms), egEvents_)...)
	after := egMono()
	egSleepUntil(after + uint64(3050*ms))
	last := egMono()
	c.setTx(dev, kmMode(uapi.ModePass))
	stopped := egMono()
	edges := ev.drain(idx, 700*ms)
	epoch := tr.check(t, "time 200ms 300ms", edges, uapi.DirectionTx, 1, before, after, &lt)
	egExpectSpan(t, "time 200ms 300ms", tr, edges, epoch, last, stopped)
	for _, e := range edges {
		if e.Carrier != nil || e.Index != idx || e.Name != dev {
			t.Errorf("time 200ms 300ms: edge %v of device %d, want %s %d without carrier", e, e.Index, dev, idx)
		}
	}
	t.Logf("time 200ms 300ms: %d edges, epoch %v after the request began (it took %v)", len(edges), time.Duration(epoch-before), time.Duration(after-before))
	if other := evInit.drain(0, 10*ms); len(other) != 0 {
		t.Errorf("the initial namespace heard %d edges, first %v", len(other), other[0])
	}

	// A schedule run once, of 3 steps: 2 edges, then none; it holds its
	// last step for good.
	tr = egTrain{durs: []time.Duration{150 * ms, 150 * ms, 150 * ms}, modes: []uint32{uapi.ModePass, uapi.ModeDrop, uapi.ModePercent}, once: true}
	once := kmJoin(kmMode(uapi.ModeSchedule), kmSteps(kmStep(kmMode(uapi.ModePass), kmDur(150*ms)), kmStep(kmMode(uapi.ModeDrop), kmDur(150*ms)),
		kmStep(kmMode(uapi.ModePercent), kmPercent(50), kmDur(150*ms))), kmOnce(), egEvents_)
	before = egMono()
	c.setTx(dev, once...)
	after = egMono()
	egSleepUntil(after + uint64(1200*ms))
	edges = ev.drain(idx, 100*ms)
	if len(edges) != 2 {
		t.Errorf("schedule once of 3 steps: %d edges, want 2: %v", len(edges), edges)
	}
	if len(edges) > 0 {
		tr.check(t, "schedule once", edges, uapi.DirectionTx, 1, before, after, &lt)
	}
	if g := c.get(dev); g.txPos.index == nil || *g.txPos.index != 2 || g.txPos.left != nil {
		t.Errorf("schedule once, after its end: step %v left %v, want 2 for good", g.txPos.index, kmLeft(g.txPos.left))
	}

	// The longest schedule: one edge 10 ms in, then the next is 2^63 - 1
	// ns after the epoch, past what the timer can hold: never.
	tr = egTrain{durs: []time.Duration{10 * ms, 1<<63 - 1 - 10*ms}, modes: []uint32{uapi.ModePass, uapi.ModeDrop}}
	before = egMono()
	c.setTx(dev, kmMode(uapi.ModeSchedule), kmSteps(kmStep(kmMode(uapi.ModePass), kmDur(10*ms)),
		kmStep(kmMode(uapi.ModeDrop), kmU64(uapi.PolicyADurationNs, uint64(1<<63-1-10*ms)))), egEvents_)
	after = egMono()
	egSleepUntil(after + uint64(400*ms))
	edges = ev.drain(idx, 100*ms)
	if len(edges) != 1 {
		t.Errorf("the longest schedule: %d edges, want 1: %v", len(edges), edges)
	} else {
		tr.check(t, "the longest schedule", edges, uapi.DirectionTx, 1, before, after, &lt)
	}

	// Down: no edge; up: none for the coming up itself, the next edge's
	// number counts those skipped, on the same epoch.
	rt := kmRtOpen(t, ns)
	tr = egTimeTrain(100*ms, 100*ms)
	before = egMono()
	c.setTx(dev, kmJoin(kmTime(100*ms, 100*ms), egEvents_)...)
	after = egMono()
	egSleepUntil(after + uint64(450*ms))
	last, down := egSetUp(rt, dev, false)
	edges = ev.drain(idx, 600*ms)
	epoch = tr.check(t, "before down", edges, uapi.DirectionTx, 1, before, after, &lt)
	egExpectSpan(t, "before down", tr, edges, epoch, last, down)
	upAt, _ := egSetUp(rt, dev, true)
	egSleepUntil(egMono() + uint64(450*ms))
	last = egMono()
	c.setTx(dev, kmMode(uapi.ModePass))
	stopped = egMono()
	edges = ev.drain(idx, 300*ms)
	if len(edges) == 0 {
		t.Fatal("no edge after the device came up")
	}
	if first := tr.count(epoch, upAt) + 1; edges[0].Seq < first || edges[0].Time < upAt {
		t.Errorf("after up: first edge %v, want number %d or more, after the up at %d", edges[0], first, upAt)
	}
	tr.check(t, "after up", edges, uapi.DirectionTx, edges[0].Seq, epoch, epoch, &lt)
	egExpectSpan(t, "after up", tr, edges, epoch, last, stopped)

	// The receive policy's edges, on its own epoch; without the transmit
	// policy's carrier flag they say nothing of the carrier, with it they
	// say the device's.
	for _, txCarrier := range []bool{false, true} {
		what := "receive time 150ms 150ms"
		if txCarrier {
			what += " beside a transmit carrier policy"
			// 10 s ON: the carrier stays on meanwhile.
			c.setTx(dev, kmJoin(kmTime(10*time.Second, 10*time.Second), egCarrier)...)
		}
		tr = egTimeTrain(150*ms, 150*ms)
		before = egMono()
		c.setRx(dev, kmJoin(kmTime(150*ms, 150*ms), egEvents_)...)
		after = egMono()
		egSleepUntil(after + uint64(1000*ms))
		last = egMono()
		if r := c.set(dev, kmU32(uapi.DeviceAFlags, uapi.DeviceFRxOff)); r.errno != 0 {
			t.Fatalf("receive policy off: %v: %s", r.errno, r.msg)
		}
		stopped = egMono()
		edges = ev.drain(idx, 500*ms)
		epoch = tr.check(t, what, edges, uapi.DirectionRx, 1, before, after, &lt)
		egExpectSpan(t, what, tr, edges, epoch, last, stopped)
		for _, e := range edges {
			if (e.Carrier != nil) != txCarrier || (txCarrier && *e.Carrier != 1) {
				t.Errorf("%s: edge %v", what, e)
			}
		}
		c.setTx(dev, kmMode(uapi.ModePass))
	}
	ev.check()
	lt.log(t, "edge events")
}

// egMatchLinks checks that rtnetlink reported each edge of an attached
// device: an RTM_NEWLINK read after the edge fired, before the next edge
// (or before until), within egLinkBound of its nominal time, with the
// carrier the edge gave (IFF_LOWER_UP and the operational state, UP or
// LOWERLAYERDOWN: while a stacked device has no carrier the kernel names
// its state LOWERLAYERDOWN, whatever the lower's). With strict false
// (a detached device, whose changes the link watch may batch) it only
// measures: it returns how many edges had their report, and the worst
// delay.
func egMatchLinks(t *testing.T, what string, edges []*egEdge, links []*egLink, until uint64, strict bool) (int, time.Duration) {
	t.Helper()
	var matched int
	var worst time.Duration
	for i, e := range edges {
		end := until
		if i+1 < len(edges) {
			end = edges[i+1].Fired
		}
		on := *e.Carrier == 1
		var found *egLink
		for _, k := range links {
			if k.At >= e.Fired && k.At < end && k.lowerUp() == on &&
				(!strict || (on && k.Oper == egOperUp) || (!on && k.Oper == egOperLowerLayerDown)) {
				found = k
				break
			}
		}
		if found == nil {
			if strict {
				t.Errorf("%s: no RTM_NEWLINK for edge %v", what, e)
			}
			continue
		}
		late := time.Duration(found.At - e.Time)
		if strict && late > egLinkBound {
			t.Errorf("%s: RTM_NEWLINK for edge %v read %v after its nominal time", what, e, late)
		}
		matched++
		worst = max(worst, late)
	}
	return matched, worst
}

// match is egMatchLinks, strict, with the figures into lt.
func (lt *egLate) match(t *testing.T, what string, edges []*egEdge, links []*egLink, until uint64) {
	t.Helper()
	n, worst := egMatchLinks(t, what, edges, links, until, true)
	lt.links += n
	lt.link = max(lt.link, worst)
}

// egCheckCarriers fails unless each edge reports the carrier want says.
func egCheckCarriers(t *testing.T, what string, edges []*egEdge, want func(e *egEdge) bool) {
	t.Helper()
	for _, e := range edges {
		if e.Carrier == nil || (*e.Carrier == 1) != want(e) {
			t.Errorf("%s: edge %v, want carrier %v", what, e, want(e))
		}
	}
}

// egCounts fails unless the carrier counts moved by ups and downs.
func egCounts(t *testing.T, what string, from, to *egLink, ups, downs int) {
	t.Helper()
	if int(to.Up-from.Up) != ups || int(to.Down-from.Down) != downs {
		t.Errorf("%s: carrier up count +%d, down count +%d; want +%d, +%d", what, to.Up-from.Up, to.Down-from.Down, ups, downs)
	}
}

// egUpsDowns counts the edges into UP and DOWN steps.
func egUpsDowns(edges []*egEdge) (ups, downs int) {
	for _, e := range edges {
		if e.State == uapi.EdgeStateDown {
			downs++
		} else {
			ups++
		}
	}
	return ups, downs
}

func TestKernelCarrierFlaps(t *testing.T) {
	CheckKmsg(t)
	const ms = time.Millisecond
	tp, c := kmTopoRaw(t)
	const dev = "insane0"
	ns := tp.Borea
	ev := egListen(t, ns)
	links := egWatchLinks(t, ns)
	rt := kmRtOpen(t, ns)
	idx := c.get(dev).d.Index
	flap := kmJoin(kmTime(300*ms, 300*ms), egCarrier, egEvents_)
	tr := egTimeTrain(300*ms, 300*ms)
	const cycle = uint64(600 * ms)
	var lt egLate
	stateUp := func(e *egEdge) bool { return e.State == uapi.EdgeStateUp }

	// 1. An attached device whose lower has carrier: off in each OFF
	// window, on in each ON window, each change reported and counted.
	// A new device's first link watch run is not urgent (it was down):
	// within a second.
	WaitFor(t, 3*time.Second, "insane0 UP", func() bool {
		k := egLinkNow(rt, dev)
		return k.lowerUp() && k.Oper == egOperUp
	})
	s0 := egLinkNow(rt, dev)
	links.drain(idx, 10*ms)
	before := egMono()
	c.setTx(dev, flap...)
	after := egMono()
	egSleepUntil(after + uint64(2450*ms))
	last := egMono()
	c.setTx(dev, kmMode(uapi.ModePass))
	stopped := egMono()
	s1 := egLinkNow(rt, dev)
	edges := ev.drain(idx, 500*ms)
	epoch := tr.check(t, "attached", edges, uapi.DirectionTx, 1, before, after, &lt)
	egExpectSpan(t, "attached", tr, edges, epoch, last, stopped)
	egCheckCarriers(t, "attached", edges, stateUp)
	lt.match(t, "attached", edges, links.drain(idx, 300*ms), stopped)
	ups, downs := egUpsDowns(edges)
	if len(edges) > 0 && edges[len(edges)-1].State == uapi.EdgeStateDown {
		ups++ // pass gives the carrier back
	}
	if !s1.lowerUp() {
		t.Errorf("after pass: %v", s1)
	}
	egCounts(t, "attached", s0, s1, ups, downs)
	t.Logf("attached: %d edges, carrier up +%d down +%d", len(edges), s1.Up-s0.Up, s1.Down-s0.Down)

	// 2. The lower's carrier wins: with the lower down the device has none,
	// through the ON windows too; when the lower comes back in an OFF
	// window, the carrier stays off until the next ON window.
	before = egMono()
	c.setTx(dev, flap...)
	after = egMono()
	mid := before + (after-before)/2
	egSleepUntil(after + uint64(150*ms))
	start, lowerDown := egSetUp(rt, tp.BoreaDev, false)
	egWithin(t, "lower down", mid, cycle, 0, uint64(300*ms), start, lowerDown)
	if k := egLinkNow(rt, dev); k.lowerUp() {
		t.Errorf("the lower went down in an ON window, the device kept its carrier: %v", k)
	}
	WaitFor(t, 5*time.Second, "LOWERLAYERDOWN", func() bool { return egLinkNow(rt, dev).Oper == egOperLowerLayerDown })
	var during []*egEdge
	for len(during) < 4 {
		e := ev.next(idx, time.Second)
		if e == nil {
			t.Fatalf("lower down: %d edges", len(during))
		}
		during = append(during, e)
		if k := egLinkNow(rt, dev); k.lowerUp() || k.Oper != egOperLowerLayerDown {
			t.Errorf("lower down, after edge %v: %v", e, k)
		}
	}
	egCheckCarriers(t, "lower down", during, func(*egEdge) bool { return false })
	// The middle of an OFF window, after edge 5.
	egSleepUntil(egNextAt(mid, cycle, 450*uint64(ms), egMono()))
	start, lowerUp := egSetUp(rt, tp.BoreaDev, true)
	egWithin(t, "lower up", mid, cycle, uint64(300*ms), cycle, start, lowerUp)
	if k := egLinkNow(rt, dev); k.lowerUp() {
		t.Errorf("the lower came back in an OFF window, the device has carrier: %v", k)
	}
	egSleepUntil(lowerUp + uint64(1300*ms))
	last = egMono()
	c.setTx(dev, kmMode(uapi.ModePass))
	stopped = egMono()
	rest := ev.drain(idx, 500*ms)
	edges = append(during, rest...)
	epoch = tr.check(t, "lower down and up", edges, uapi.DirectionTx, 1, before, after, &lt)
	egExpectSpan(t, "lower down and up", tr, edges, epoch, last, stopped)
	egCheckCarriers(t, "lower down and up", edges, func(e *egEdge) bool {
		return e.State == uapi.EdgeStateUp && (e.Fired < lowerDown || e.Fired > lowerUp)
	})
	var back []*egEdge
	for _, e := range edges {
		if e.Fired > lowerUp {
			back = append(back, e)
		}
	}
	if len(back) < 3 {
		t.Errorf("%d edges after the lower came back, want 3 or more", len(back))
	}
	lt.match(t, "after the lower came back", back, links.drain(idx, 300*ms), stopped)
	if k := egLinkNow(rt, dev); !k.lowerUp() {
		t.Errorf("pass after the lower came back: %v", k)
	}

	// 3. Down: no edge, no carrier change; up: the carrier the step in
	// force gives, at once, without an edge of its own.
	before = egMono()
	c.setTx(dev, flap...)
	after = egMono()
	mid = before + (after-before)/2
	egSleepUntil(egNextAt(mid, cycle, 150*uint64(ms), egMono())) // an ON window
	start, down := egSetUp(rt, dev, false)
	egWithin(t, "down", mid, cycle, 0, uint64(300*ms), start, down)
	sDown := egLinkNow(rt, dev)
	edges = ev.drain(idx, 100*ms)
	for _, e := range edges {
		if e.Fired > down {
			t.Errorf("edge %v after the device went down", e)
		}
	}
	egSleepUntil(egNextAt(mid, cycle, 450*uint64(ms), down+uint64(900*ms))) // an OFF window, a second on
	if edges := ev.drain(idx, 20*ms); len(edges) != 0 {
		t.Errorf("edges while the device is down: %v", edges)
	}
	sStill := egLinkNow(rt, dev)
	egCounts(t, "down", sDown, sStill, 0, 0)
	upAt, upDone := egSetUp(rt, dev, true)
	egWithin(t, "up", mid, cycle, uint64(300*ms), cycle, upAt, upDone)
	sUp := egLinkNow(rt, dev)
	if sUp.lowerUp() {
		t.Errorf("up in an OFF window: %v", sUp)
	}
	egCounts(t, "up in an OFF window", sStill, sUp, 0, 1)
	edges = ev.collect(idx, 800*ms)
	if len(edges) == 0 || edges[0].Time < upAt || edges[0].State != uapi.EdgeStateUp {
		t.Fatalf("after up: edges %v", edges)
	}
	tr.check(t, "after up", edges, uapi.DirectionTx, edges[0].Seq, before, after, &lt)
	egCheckCarriers(t, "after up", edges, stateUp)
	t.Logf("down at %v, up at %v: the first edge after is number %d", time.Duration(down-mid), time.Duration(upAt-mid), edges[0].Seq)

	// 4. Replaced by pass in an OFF window: the carrier is back at once,
	// and stays.
	egSleepUntil(egNextAt(mid, cycle, 450*uint64(ms), egMono()))
	sOff := egLinkNow(rt, dev)
	c.setTx(dev, kmMode(uapi.ModePass))
	passed := egMono()
	egWithin(t, "pass", mid, cycle, uint64(300*ms), cycle, sOff.At, passed)
	sPass := egLinkNow(rt, dev)
	if sOff.lowerUp() || !sPass.lowerUp() {
		t.Errorf("pass in an OFF window: before %v, after %v", sOff, sPass)
	}
	egCounts(t, "pass in an OFF window", sOff, sPass, 1, 0)
	time.Sleep(700 * ms)
	egCounts(t, "pass, 700 ms on", sPass, egLinkNow(rt, dev), 0, 0)
	for _, e := range ev.drain(idx, 10*ms) {
		if e.Fired > passed {
			t.Errorf("edge %v after pass", e)
		}
	}

	// The routes through the device are marked linkdown while its carrier
	// is off (the device's down and up took its route away: back).
	RunIn(t, ns, "ip", "route", "replace", tp.MorganaIP+"/32", "dev", dev)
	route := func() string { return RunIn(t, ns, "ip", "route", "show", tp.MorganaIP+"/32") }
	c.setTx(dev, kmJoin(kmTime(50*ms, 10*time.Second), egCarrier)...)
	WaitFor(t, 3*time.Second, "the route through insane0 linkdown", func() bool { return strings.Contains(route(), "linkdown") })
	c.setTx(dev, kmMode(uapi.ModePass))
	WaitFor(t, 3*time.Second, "the route through insane0 up again", func() bool { return !strings.Contains(route(), "linkdown") })

	// 5. A detached device flaps alone: carrier per step, DOWN and
	// DORMANT, as a detached device with carrier is.
	const det = "insd0"
	RunIn(t, ns, "ip", "link", "add", det, "type", "insane")
	RunIn(t, ns, "ip", "link", "set", det, "up")
	didx := c.get(det).d.Index
	d0 := egLinkNow(rt, det)
	before = egMono()
	c.setTx(det, flap...)
	after = egMono()
	var detached []*egEdge
	for len(detached) < 5 {
		e := ev.next(didx, time.Second)
		if e == nil {
			t.Fatalf("detached: %d edges", len(detached))
		}
		detached = append(detached, e)
		if k := egLinkNow(rt, det); k.lowerUp() != stateUp(e) {
			t.Errorf("detached, after edge %v: %v", e, k)
		}
	}
	last = egMono()
	c.setTx(det, kmMode(uapi.ModePass))
	stopped = egMono()
	d1 := egLinkNow(rt, det)
	detached = append(detached, ev.drain(didx, 300*ms)...)
	epoch = tr.check(t, "detached", detached, uapi.DirectionTx, 1, before, after, &lt)
	egExpectSpan(t, "detached", tr, detached, epoch, last, stopped)
	egCheckCarriers(t, "detached", detached, stateUp)
	ups, downs = egUpsDowns(detached)
	if detached[len(detached)-1].State == uapi.EdgeStateDown {
		ups++
	}
	egCounts(t, "detached", d0, d1, ups, downs)
	// The link watch runs a detached device's changes within a second
	// (they are not urgent for the kernel: it is not stacked): a long OFF
	// window shows DOWN, pass shows DORMANT again.
	c.setTx(det, kmJoin(kmTime(50*ms, 10*time.Second), egCarrier)...)
	WaitFor(t, 3*time.Second, "a detached device DOWN in an OFF window", func() bool {
		k := egLinkNow(rt, det)
		return !k.lowerUp() && k.Oper == egOperDown
	})
	c.setTx(det, kmMode(uapi.ModePass))
	WaitFor(t, 3*time.Second, "a detached device DORMANT again", func() bool {
		k := egLinkNow(rt, det)
		return k.lowerUp() && k.Oper == egOperDormant
	})
	n, worst := egMatchLinks(t, "detached", detached, links.drain(didx, 100*ms), stopped, false)
	t.Logf("detached: %d edges, %d reported by an RTM_NEWLINK of their own, the latest %v after its nominal time", len(detached), n, worst)
	ev.check()
	lt.log(t, "carrier flaps")
}
