package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/insane-netdev/insane/go/genl"
	"golang.org/x/sys/unix"
)

// Burst loss (issue 16): for each (percent, burst) pair, count datagrams
// numbered 0 to n-1 from one UDP socket to 10.2.0.2 go through insane0 in
// mode burst (unseeded, then seeded) and, with no insane route, through
// netem's gemodel on low0 with the same chain; a packet socket on low0
// receives what leaves it. The sequence numbers that arrived give the loss
// pattern (burststat.go).
//
// The sender is pinned to CPU 1 (an unseeded policy keeps a chain per
// CPU: one CPU, one chain) and sends with sendmmsg(2) in batches of
// burstBatch; the receiver, pinned to CPU 0, reads with recvmmsg(2). The
// sender never runs more than burstWindow sequence numbers ahead of the
// highest one received, so the receiver's buffer (SO_RCVBUFFORCE, 256 MiB)
// never fills; the counts check it: what arrived must be what the tool
// passed and what low0 sent, with no capture drop.

const (
	burstMagic  = 0x696e73616e654252 // "insaneBR"
	burstBatch  = 64
	burstWindow = 1 << 15
	burstSize   = 64 // UDP payload: magic, run, sequence number, padding
)

// burstRec is one run of the burst phase.
type burstRec struct {
	Pair burstPair `json:"pair"`
	// Tool is "insane", "insane-seeded" or "netem"; Config is the
	// policy or the tc command.
	Tool   string  `json:"tool"`
	Config string  `json:"config"`
	Seed   *uint64 `json:"seed,omitempty"`
	Sent   uint64  `json:"sent"`
	// Received counts distinct datagrams of the run seen on low0; Passed
	// those the tool let through (insane's RelayedPackets, netem's
	// qdisc "Sent ... pkt"), ToolDropped those it dropped (insane's
	// DropPolicy, the qdisc's dropped); LowerTx is low0's tx_packets
	// growth; CaptureDrops the packet socket's drops.
	Received     uint64 `json:"received"`
	Passed       uint64 `json:"tool_passed"`
	ToolDropped  uint64 `json:"tool_dropped"`
	LowerTx      uint64 `json:"lower_tx"`
	CaptureDrops uint64 `json:"capture_drops"`
	Duplicates   uint64 `json:"duplicates"`
	// WindowWaits counts the times the sender waited for the receiver.
	WindowWaits uint64      `json:"window_waits"`
	Loss        lossPattern `json:"loss"`
	// PredictorDiffs, for a seeded run, counts the datagrams whose fate
	// differs from genl.Predictor's.
	PredictorDiffs *uint64 `json:"predictor_diffs,omitempty"`
	Seconds        float64 `json:"seconds"`
	// Error says why the run gives no figures (the counts disagree).
	Error string `json:"error,omitempty"`
}

// burstSeed seeds the seeded insane runs.
const burstSeed = 0x5eed16

func burstAccuracy(c *genl.Client, pairs []burstPair, n uint64) (recs []burstRec, skipped []string, err error) {
	fmt.Printf("burst: %d datagrams per run, pairs %v, insane (unseeded, seeded) and netem gemodel ...\n", n, pairs)
	insaneOK := true
	runID := uint64(0)
	for _, pr := range pairs {
		g := burstChain(pr.Percent, pr.Burst)
		seed := uint64(burstSeed)
		for _, tool := range []string{"insane", "insane-seeded", "netem"} {
			rec := burstRec{Pair: pr, Tool: tool, Sent: n}
			runID++
			var r burstTraffic
			switch tool {
			case "insane", "insane-seeded":
				if !insaneOK {
					continue
				}
				var sp *uint64
				if tool == "insane-seeded" {
					sp = &seed
					rec.Seed = sp
				}
				pol := genl.Burst(pr.Percent, pr.Burst, sp)
				rec.Config = "insane0 " + pol.String()
				if err := c.SetPolicy(insane, pol); err != nil {
					insaneOK = false
					skipped = append(skipped, fmt.Sprintf("burst: insane half: the kernel refused %q (%v): it has no mode burst yet", pol.String(), err))
					fmt.Printf("  %s: refused by the kernel (%v): insane runs skipped\n", rec.Config, err)
					continue
				}
				if r, err = insaneBurstRun(c, &rec, n, runID); err != nil {
					return recs, skipped, err
				}
				if sp != nil && rec.Error == "" {
					d := predictorDiffs(pol, seed, r.seen)
					rec.PredictorDiffs = &d
				}
			case "netem":
				args := append([]string{"tc", "qdisc", "add", "dev", lower, "root", "netem", "limit", "100000"}, g.netemGemodel()...)
				rec.Config = strings.Join(args, " ")
				if r, err = netemBurstRun(&rec, args, n, runID); err != nil {
					return recs, skipped, err
				}
			}
			if rec.Error == "" {
				if rec.Loss, err = lossPatternOf(r.seqs(), n); err != nil {
					return recs, skipped, err
				}
			}
			fmt.Printf("  %s: %.1f s, %d of %d arrived%s\n", rec.Config, rec.Seconds, rec.Received, n, errNote(rec.Error))
			recs = append(recs, rec)
		}
	}
	if err := c.SetPolicy(insane, genl.Pass()); err != nil {
		return recs, skipped, err
	}
	return recs, skipped, nil
}

func errNote(e string) string {
	if e == "" {
		return ""
	}
	return "; ERROR: " + e
}

// predictorDiffs counts the datagrams whose fate differs from what
// genl.Predictor says for pol set with seed.
func predictorDiffs(pol genl.Policy, seed uint64, seen []bool) uint64 {
	p := genl.NewPredictor(seed)
	var d uint64
	for _, s := range seen {
		if p.Relays(pol) != s {
			d++
		}
	}
	return d
}

func insaneBurstRun(c *genl.Client, rec *burstRec, n, runID uint64) (burstTraffic, error) {
	if err := viaInsane(true); err != nil {
		return burstTraffic{}, err
	}
	defer viaInsane(false)
	d0, err := c.Device(insane)
	if err != nil {
		return burstTraffic{}, err
	}
	tx0, err := lowerTx()
	if err != nil {
		return burstTraffic{}, err
	}
	r, err := sendBurstRun(n, runID)
	if err != nil {
		return r, err
	}
	d1, err := c.Device(insane)
	if err != nil {
		return r, err
	}
	tx1, err := lowerTx()
	if err != nil {
		return r, err
	}
	r.fill(rec)
	rec.LowerTx = tx1 - tx0
	rec.Passed = d1.Stats.RelayedPackets - d0.Stats.RelayedPackets
	rec.ToolDropped = d1.Stats.DropPolicy - d0.Stats.DropPolicy
	other := (d1.Stats.Dropped() - d0.Stats.Dropped()) - rec.ToolDropped
	rec.Error = checkCounts(rec, other)
	return r, nil
}

var reQdiscSent = regexp.MustCompile(`Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+) requeues (\d+)\)`)

func netemBurstRun(rec *burstRec, args []string, n, runID uint64) (burstTraffic, error) {
	if _, err := run(args...); err != nil {
		return burstTraffic{}, err
	}
	defer run("tc", "qdisc", "del", "dev", lower, "root")
	tx0, err := lowerTx()
	if err != nil {
		return burstTraffic{}, err
	}
	r, err := sendBurstRun(n, runID)
	if err != nil {
		return r, err
	}
	tx1, err := lowerTx()
	if err != nil {
		return r, err
	}
	out, err := run("tc", "-s", "qdisc", "show", "dev", lower)
	if err != nil {
		return r, err
	}
	m := reQdiscSent.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("netem: no counters in %q", out)
	}
	r.fill(rec)
	rec.LowerTx = tx1 - tx0
	rec.Passed, _ = strconv.ParseUint(m[2], 10, 64)
	rec.ToolDropped, _ = strconv.ParseUint(m[3], 10, 64)
	over, _ := strconv.ParseUint(m[4], 10, 64)
	rec.Error = checkCounts(rec, over)
	return r, nil
}

// checkCounts says what is wrong with a run's counts, "" if nothing:
// every datagram sent must be decided by the tool, and every one it passed
// must have left low0 and reached the receiver once. other counts the
// tool's drops for another cause (netem: overlimits).
func checkCounts(rec *burstRec, other uint64) string {
	var bad []string
	if rec.Passed+rec.ToolDropped != rec.Sent {
		bad = append(bad, fmt.Sprintf("the tool decided %d+%d datagrams of %d sent", rec.Passed, rec.ToolDropped, rec.Sent))
	}
	if other != 0 {
		bad = append(bad, fmt.Sprintf("%d dropped by the tool for another cause", other))
	}
	if rec.Received != rec.Passed || rec.LowerTx != rec.Passed {
		bad = append(bad, fmt.Sprintf("received %d, low0 sent %d, the tool passed %d", rec.Received, rec.LowerTx, rec.Passed))
	}
	if rec.CaptureDrops != 0 {
		bad = append(bad, fmt.Sprintf("the receiver dropped %d", rec.CaptureDrops))
	}
	if rec.Duplicates != 0 {
		bad = append(bad, fmt.Sprintf("%d duplicates", rec.Duplicates))
	}
	return strings.Join(bad, "; ")
}

// burstTraffic is what one run's sender and receiver saw.
type burstTraffic struct {
	seen         []bool
	received     uint64
	dups         uint64
	captureDrops uint64
	waits        uint64
	seconds      float64
}

func (r burstTraffic) fill(rec *burstRec) {
	rec.Received, rec.Duplicates, rec.CaptureDrops = r.received, r.dups, r.captureDrops
	rec.WindowWaits, rec.Seconds = r.waits, r.seconds
}

func (r burstTraffic) seqs() []uint64 {
	s := make([]uint64, 0, r.received)
	for i, ok := range r.seen {
		if ok {
			s = append(s, uint64(i))
		}
	}
	return s
}

// mmsghdr is struct mmsghdr of sendmmsg(2) and recvmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// mmsgs is a batch of count buffers of size bytes for sendmmsg or
// recvmmsg.
type mmsgs struct {
	bufs [][]byte
	iovs []unix.Iovec
	hdrs []mmsghdr
}

func newMmsgs(count, size int) *mmsgs {
	m := &mmsgs{bufs: make([][]byte, count), iovs: make([]unix.Iovec, count), hdrs: make([]mmsghdr, count)}
	for i := range m.bufs {
		m.bufs[i] = make([]byte, size)
		m.iovs[i].Base = &m.bufs[i][0]
		m.iovs[i].SetLen(size)
		m.hdrs[i].hdr.Iov = &m.iovs[i]
		m.hdrs[i].hdr.SetIovlen(1)
	}
	return m
}

// call makes sendmmsg or recvmmsg (trap) on the first k messages.
func (m *mmsgs) call(trap uintptr, fd, k, flags int) (int, error) {
	r, _, e := unix.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(k), uintptr(flags), 0, 0)
	runtime.KeepAlive(m)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// sendBurstRun sends datagrams 0 to n-1 tagged runID and returns what arrived.
func sendBurstRun(n, runID uint64) (burstTraffic, error) {
	res := burstTraffic{seen: make([]bool, n)}
	ps, us, err := trafficSockets(false)
	if err != nil {
		return res, err
	}
	defer unix.Close(ps)
	defer unix.Close(us)

	// next is one more than the highest sequence number received.
	var next, received atomic.Uint64
	var stop atomic.Bool
	rm := newMmsgs(burstBatch, 128)
	recvDone := receiver(&stop, func() error {
		k, err := rm.call(unix.SYS_RECVMMSG, ps, burstBatch, unix.MSG_WAITFORONE)
		if err != nil {
			return err
		}
		for i := 0; i < k; i++ {
			seq, ok := burstSeq(rm.bufs[i][:min(int(rm.hdrs[i].len), len(rm.bufs[i]))], runID)
			if !ok || seq >= n {
				continue
			}
			if res.seen[seq] {
				res.dups++
				continue
			}
			res.seen[seq] = true
			received.Add(1)
			if seq >= next.Load() {
				next.Store(seq + 1)
			}
		}
		return nil
	})

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pin(1)
	defer pin(-1)
	m := newMmsgs(burstBatch, burstSize)
	for i := range m.bufs {
		binary.BigEndian.PutUint64(m.bufs[i], burstMagic)
		binary.BigEndian.PutUint64(m.bufs[i][8:], runID)
	}
	start := time.Now()
	var sendErr error
	for i := uint64(0); i < n && sendErr == nil; {
		k := min(uint64(burstBatch), n-i)
		if i+k > next.Load()+burstWindow {
			res.waits++
			last, since := next.Load(), time.Now()
			for i+k > next.Load()+burstWindow {
				if next.Load() != last {
					last, since = next.Load(), time.Now()
				} else if time.Since(since) > 10*time.Second {
					sendErr = fmt.Errorf("burst: the receiver stalled at %d, %d sent", last, i)
					break
				}
				time.Sleep(100 * time.Microsecond)
			}
			continue
		}
		for j := uint64(0); j < k; j++ {
			binary.BigEndian.PutUint64(m.bufs[j][16:], i+j)
		}
		sent, err := m.call(unix.SYS_SENDMMSG, us, int(k), 0)
		switch {
		case errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN):
		case err != nil:
			sendErr = fmt.Errorf("burst: sendmmsg at %d: %w", i, err)
		default:
			i += uint64(sent)
		}
	}
	if sendErr == nil {
		waitQuiet(received.Load)
	}
	res.seconds = time.Since(start).Seconds()
	stop.Store(true)
	if err := <-recvDone; err != nil {
		return res, err
	}
	if sendErr != nil {
		return res, sendErr
	}
	st, err := unix.GetsockoptTpacketStats(ps, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return res, err
	}
	res.captureDrops = uint64(st.Drops)
	res.received = received.Load()
	return res, nil
}

// burstSeq returns the sequence number of a datagram tagged runID in an IPv4
// packet as a SOCK_DGRAM packet socket reads it.
func burstSeq(b []byte, runID uint64) (uint64, bool) {
	if len(b) < 20 || b[0]>>4 != 4 || b[9] != unix.IPPROTO_UDP {
		return 0, false
	}
	p := b[int(b[0]&15)*4:]
	if len(p) < 8+24 || binary.BigEndian.Uint16(p[2:]) != 9 {
		return 0, false
	}
	p = p[8:]
	if binary.BigEndian.Uint64(p) != burstMagic || binary.BigEndian.Uint64(p[8:]) != runID {
		return 0, false
	}
	return binary.BigEndian.Uint64(p[16:]), true
}
