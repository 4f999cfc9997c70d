package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"golang.org/x/sys/unix"
)

// The rate phase (issue 25): insane's rate, duplication and corruption
// side by side with netem's and tbf's on the same lowers, in the same run.
//
//   - rate accuracy, UDP: one thread paces numbered datagrams of
//     -rate-size bytes (IP length) to 10.2.0.2 at -rate-over times R for
//     -rate-dur of guest time, through insane0 "mode pass rate R", or
//     straight into low0 under netem "rate R" or tbf "rate R burst B
//     latency 50ms". A packet socket on low0 receives every datagram as it
//     leaves (SO_TIMESTAMPNS: stamped in dev_queue_xmit_nit(), right before
//     the dummy's ndo_start_xmit, on CLOCK_REALTIME). The achieved rate is
//     the bytes of the packets after the first, as the tool charges them,
//     over the time from the first departure to the last, in the window
//     from a tenth of the run on (tbf's first burst left out) to the last
//     departure;
//   - rate accuracy and burstiness, TCP with TSO: one TCP stream from the
//     guest to the tcp phase's sink namespace, over the veth tv0, through
//     tins0 (insane on tv0): "mode pass rate R" there for insane; "mode
//     pass" there and netem or tbf as tv0's root qdisc for the others, so
//     that all three have the same path. A packet socket with
//     PACKET_VNET_HDR on tv0 sees each packet leave with its GSO segment
//     size: a GSO packet that leaves whole (netem, tbf's packets within
//     its burst) counts as the segments it stands for, all leaving at its
//     stamp. The longest run of departures faster than R (each gap shorter
//     than the packet's serialization time at R) and the smallest token
//     bucket the departures conform to at R measure the bursts;
//   - buffer: the same TCP stream through "rate 10mbit buffer 50ms",
//     netem "rate 10mbit limit N" (N packets of 1514 bytes: 50 ms) and tbf
//     "latency 50ms"; a second packet socket on tins0 sees each packet
//     enter (insane's own entry, or, for the qdiscs, the pass relay right
//     before their enqueue), and each wire packet's queueing delay is its
//     departure from tv0 minus its entry into tins0, matched by TCP
//     sequence number;
//   - cost: instructions per packet as the delay phase measures them
//     (the throughput phase's UDP source, measureSrc, 3 interleaved
//     rounds) of insane "mode pass rate 1gbit" (above what the source
//     sends: the packets wait their serialization, 736 ns, and no queue
//     forms), "duplicate 1" and "corrupt 1" against netem's "rate 1gbit",
//     "duplicate 1%" and "corrupt 1%";
//   - duplicate and corrupt: -rate-extra-count numbered datagrams of 72
//     bytes (three copies of the number) paced at -rate-extra-pps through
//     insane "duplicate 1 corrupt 1 seed 3", twice, and netem "duplicate
//     1% corrupt 1%", twice: the whole frames captured on low0 show which
//     datagrams left twice and which bit was flipped, against the
//     configured shares, the counters, genl.Predictor.Extra for insane's
//     seeded draws and the other run of the same configuration.
//
// The analysis is in ratestat.go.

const (
	rateMagic = 0x696e73616e655254 // "insaneRT"
	rateSeed  = 3
	// vnetLen is struct virtio_net_hdr's size, before each packet a
	// PACKET_VNET_HDR socket reads.
	vnetLen = 10
	// ethLen is the Ethernet header the qdiscs on low0 and tv0 see and
	// charge beyond the IP packet (skb->len at the root qdisc).
	ethLen = 14
)

// rateRec is one run of the rate accuracy, burst or buffer parts.
type rateRec struct {
	Part   string `json:"part"` // udp, tcp, buffer
	Tool   string `json:"tool"`
	Config string `json:"config"`
	Rate   uint64 `json:"rate_bps"`
	// Overhead is the bytes the tool charges beyond each IP packet:
	// insane's overhead, the Ethernet header for the qdiscs.
	Overhead int `json:"overhead"`
	// Offered is what the source sent, in bits of IP packets per second
	// of guest time (UDP: the datagrams it sent, first to last send).
	Offered    float64 `json:"offered_bps"`
	Sent       int     `json:"sent,omitempty"`
	SendErrors int     `json:"send_errors,omitempty"`
	// TapPackets are the packets the tap on the lower saw leave, GSO the
	// GSO packets among them; Entries and EntryGSO the same at tins0.
	TapPackets   int     `json:"tap_packets"`
	GSO          int     `json:"gso"`
	Entries      int     `json:"entries,omitempty"`
	EntryGSO     int     `json:"entry_gso,omitempty"`
	Fig          rateFig `json:"fig"`
	ErrPct       float64 `json:"err_pct"`
	ToolDropped  uint64  `json:"tool_dropped"`
	CaptureDrops uint32  `json:"capture_drops"`
	// Late is each departure minus an ideal serializer's at R
	// (scheduleLateness), TCP runs without a buffer.
	Late    *latStat `json:"late,omitempty"`
	LateMin int64    `json:"late_min_ns,omitempty"`
	// LateMaxAt is when the latest departure left, in s from the
	// window's start.
	LateMaxAt float64 `json:"late_max_at_s,omitempty"`
	// Ksoftirqd is the time ksoftirqd/0 ran during the run (its
	// schedstat), in ns of guest time: softirq work deferred to the
	// thread, which waits for the scheduler.
	Ksoftirqd int64 `json:"ksoftirqd_ns"`
	// Buffer part: queueing delays (departure - entry) of the wire
	// packets that entered in the window, the bound (B + one packet's
	// serialization), how many were above it, and the departures whose
	// entry was not found.
	Bound     int64   `json:"bound_ns,omitempty"`
	Delay     latStat `json:"delay"`
	DelayMin  int64   `json:"delay_min_ns,omitempty"`
	Above     int     `json:"above,omitempty"`
	Unmatched int     `json:"unmatched,omitempty"`
	Seconds   float64 `json:"seconds"`
	Error     string  `json:"error,omitempty"`
}

// extraRec is one duplicate/corrupt run.
type extraRec struct {
	Tool         string         `json:"tool"`
	Config       string         `json:"config"`
	Sent         int            `json:"sent"`
	SendErrors   int            `json:"send_errors"`
	Rate         float64        `json:"rate_pps"`
	Frames       int            `json:"frames"`
	Unknown      int            `json:"unknown"`
	Missing      int            `json:"missing"`
	Dups         int            `json:"dups"`
	DupWant      float64        `json:"dup_want"`
	DupZ         float64        `json:"dup_sigmas"`
	Cors         int            `json:"corrupted"`
	CorBase      int            `json:"corrupt_base"`
	CorWant      float64        `json:"corrupt_want"`
	CorZ         float64        `json:"corrupt_sigmas"`
	Where        map[string]int `json:"where"`
	MultiBit     int            `json:"multi_bit"`
	DupCounter   int64          `json:"dup_counter"`
	CorCounter   int64          `json:"corrupt_counter"`
	ToolDropped  uint64         `json:"tool_dropped"`
	CaptureDrops uint32         `json:"capture_drops"`
	// PredDup and PredCor count the datagrams whose fate differs from
	// genl.Predictor.Extra's (seeded insane runs; -1: not compared);
	// ReplayDup and ReplayCor from the first run of the same
	// configuration (-1: the first run); OverlapDup and OverlapCor the
	// datagrams duplicated (corrupted) in both runs.
	PredDup    int     `json:"pred_dup_diff"`
	PredCor    int     `json:"pred_cor_diff"`
	ReplayDup  int     `json:"replay_dup_diff"`
	ReplayCor  int     `json:"replay_cor_diff"`
	OverlapDup int     `json:"overlap_dup"`
	OverlapCor int     `json:"overlap_cor"`
	Seconds    float64 `json:"seconds"`
	Error      string  `json:"error,omitempty"`
}

// rateResult is the rate phase's report.
type rateResult struct {
	Reps    int        `json:"reps"`
	Seconds float64    `json:"run_seconds"`
	Runs    []rateRec  `json:"runs,omitempty"`
	Cost    []runRec   `json:"cost,omitempty"`
	Extras  []extraRec `json:"extras,omitempty"`
	Skipped []string   `json:"skipped,omitempty"`
}

func (r *rateResult) errors() []string {
	var e []string
	for _, x := range r.Runs {
		if x.Error != "" {
			e = append(e, fmt.Sprintf("rate: %s %s: %s", x.Part, x.Config, x.Error))
		}
	}
	for _, x := range r.Extras {
		if x.Error != "" {
			e = append(e, fmt.Sprintf("rate: extras %s: %s", x.Config, x.Error))
		}
	}
	return e
}

// rateTool is one side of a comparison.
type rateTool struct {
	tool, config string
	overhead     int
	setup        func() error
	teardown     func() error
	dropped      func() (uint64, error)
	// stats reads insane's counters (nil for the qdiscs).
	stats func() (genl.Stats, error)
}

// around runs body between t's setup and teardown: it returns the
// setup's error, named by the config, else body's, else the teardown's.
func (t rateTool) around(body func() error) error {
	if err := t.setup(); err != nil {
		return fmt.Errorf("rate: %s: %w", t.config, err)
	}
	err := body()
	if terr := t.teardown(); err == nil && terr != nil {
		err = terr
	}
	return err
}

// flushInsane takes an insane device down and up: what its delay stage
// holds is flushed and its rate's clock starts over. The routes through
// it go with it.
func flushInsane(dev string) error {
	return runAll([]string{"ip", "link", "set", dev, "down"}, []string{"ip", "link", "set", dev, "up"})
}

func insaneStats(c *genl.Client, dev string) func() (genl.Stats, error) {
	return func() (genl.Stats, error) {
		d, err := c.Device(dev)
		if err != nil {
			return genl.Stats{}, err
		}
		return d.Stats, nil
	}
}

// insaneRateTool is policy p on insane device dev, with via routing the
// traffic through it (on) or not.
func insaneRateTool(c *genl.Client, dev string, p genl.Policy, via func(bool) error) rateTool {
	st := insaneStats(c, dev)
	return rateTool{
		tool: "insane", config: dev + " " + p.String(), overhead: p.Overhead,
		setup: func() error {
			if err := c.SetPolicy(dev, p); err != nil {
				return err
			}
			return via(true)
		},
		teardown: func() error {
			if err := via(false); err != nil {
				return err
			}
			if err := c.SetPolicy(dev, genl.Pass()); err != nil {
				return err
			}
			return flushInsane(dev)
		},
		dropped: func() (uint64, error) {
			s, err := st()
			return s.Dropped(), err
		},
		stats: st,
	}
}

func qdiscDropped(dev string) func() (uint64, error) {
	return func() (uint64, error) {
		out, err := run("tc", "-s", "qdisc", "show", "dev", dev)
		if err != nil {
			return 0, err
		}
		return firstUint(reTcDropped, out)
	}
}

// qdiscRateTool is a root qdisc on dev; before and after, if not nil,
// run around it (the TCP part's pass through tins0).
func qdiscRateTool(dev string, before, after func() error, args ...string) rateTool {
	cmd := append([]string{"tc", "qdisc", "add", "dev", dev, "root"}, args...)
	return rateTool{
		tool: args[0], config: strings.Join(cmd[1:], " "), overhead: ethLen,
		setup: func() error {
			if before != nil {
				if err := before(); err != nil {
					return err
				}
			}
			_, err := run(cmd...)
			return err
		},
		teardown: func() error {
			_, err := run("tc", "qdisc", "del", "dev", dev, "root")
			if after != nil {
				if aerr := after(); err == nil {
					err = aerr
				}
			}
			return err
		},
		dropped: qdiscDropped(dev),
	}
}

// tbfBurst is the bucket given to tbf at rate R: R / HZ (250) as tc-tbf(8)
// asks, at least 1600 bytes (a full frame and some).
func tbfBurst(rate uint64) uint64 { return max(rate/8/250, 1600) }

// tap is a packet socket that records what one device sends.
type tap struct {
	fd     int
	keep   int
	frames bool
	filter func(l int, ip []byte) bool
	pkts   []tapPkt
	count  atomic.Int64
	stop   atomic.Bool
	done   <-chan error
	drops  uint32
}

// openTap opens a packet socket on dev with PACKET_VNET_HDR (each packet
// comes with its GSO fields) and SO_TIMESTAMPNS, that keeps the first keep
// bytes from the network header on of each packet dev sends that filter
// takes (the IP length and the bytes it has), or, with frames, the whole
// frame with its link-layer header.
func openTap(dev string, keep int, frames bool, filter func(l int, ip []byte) bool) (*tap, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, err
	}
	t := &tap{fd: fd, keep: keep, frames: frames, filter: filter}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	for _, set := range []func() error{
		func() error { return unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1) },
		func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 256<<20) },
		func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) },
		func() error { return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv) },
		func() error {
			return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
		},
		func() error {
			// Reading the statistics resets them.
			_, err := unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
			return err
		},
	} {
		if err := set(); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("packet socket on %s: %w", dev, err)
		}
	}
	return t, nil
}

// start receives on a thread pinned to vCPU 0 until finish.
func (t *tap) start() {
	buf := make([]byte, vnetLen+ethLen+max(t.keep, extraFrame))
	oob := make([]byte, 256)
	t.done = receiver(&t.stop, func() error {
		n, oobn, _, from, err := unix.Recvmsg(t.fd, buf, oob, unix.MSG_TRUNC)
		if err != nil {
			return err
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype != unix.PACKET_OUTGOING {
			return nil
		}
		hl := 0
		if ll.Hatype == unix.ARPHRD_ETHER {
			hl = ethLen
		}
		got := min(n, len(buf))
		if got < vnetLen+hl+20 {
			return nil
		}
		ip := buf[vnetLen+hl : got]
		l := n - vnetLen - hl
		if t.filter != nil && !t.filter(l, ip) {
			return nil
		}
		ts, ok := stampOf(oob[:oobn])
		if !ok {
			return errors.New("rate: a packet without SCM_TIMESTAMPNS")
		}
		p := tapPkt{t: ts, l: l, needsCsum: buf[0]&1 != 0}
		if buf[1] != 0 { // gso_type
			p.gsoSize = int(binary.LittleEndian.Uint16(buf[4:]))
		}
		if t.frames {
			p.frame = append([]byte(nil), buf[vnetLen:got]...)
		} else {
			p.hdr = append([]byte(nil), ip[:min(len(ip), t.keep)]...)
		}
		t.pkts = append(t.pkts, p)
		t.count.Add(1)
		return nil
	})
}

// finish waits until nothing has arrived for 300 ms, or for at most
// maxWait (0: no bound), then stops the receiver and closes the socket.
func (t *tap) finish(maxWait time.Duration) error {
	deadline := time.Now().Add(maxWait)
	for last := t.count.Load(); ; {
		time.Sleep(300 * time.Millisecond)
		now := t.count.Load()
		if now == last || maxWait > 0 && time.Now().After(deadline) {
			break
		}
		last = now
	}
	t.stop.Store(true)
	err := <-t.done
	if st, serr := unix.GetsockoptTpacketStats(t.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); serr == nil {
		t.drops = st.Drops
	} else if err == nil {
		err = serr
	}
	unix.Close(t.fd)
	return err
}

// pace sends n datagrams (n 0: for dur) from us, filled by fill, at pps
// on CLOCK_REALTIME (absolute sleeps, 1 ns of timer slack; a sender behind
// its schedule sends at once). It returns the datagrams sent, the failed
// sends and the CLOCK_REALTIME readings before the first and the last.
func pace(us int, size, n int, dur time.Duration, pps float64, fill func(b []byte, i int), stamps *[]int64) (sent, errs int, first, last int64, err error) {
	defer paceThread()()
	buf := make([]byte, size)
	gap := 1e9 / pps
	start := time.Now().UnixNano() + int64(time.Millisecond)
	end := start + int64(dur)
	for i := 0; n == 0 || i < n; i++ {
		due := start + int64(float64(i)*gap)
		if n == 0 && due >= end {
			break
		}
		for time.Now().UnixNano() < due {
			ts := unix.NsecToTimespec(due)
			if err := unix.ClockNanosleep(unix.CLOCK_REALTIME, unix.TIMER_ABSTIME, &ts, nil); err != nil && !errors.Is(err, unix.EINTR) {
				return sent, errs, first, last, err
			}
		}
		fill(buf, i)
		t := time.Now().UnixNano()
		if i == 0 {
			first = t
		}
		last = t
		if stamps != nil {
			*stamps = append(*stamps, t)
		}
		if _, err := unix.Write(us, buf); err != nil {
			errs++
		} else {
			sent++
		}
	}
	return sent, errs, first, last, nil
}

// openUDPTap opens a tap on low0 (openTap's keep, frames and filter) and
// a UDP socket connected to 10.2.0.2:9; the caller closes both.
func openUDPTap(keep int, frames bool, filter func(l int, ip []byte) bool) (*tap, int, error) {
	tp, err := openTap(lower, keep, frames, filter)
	if err != nil {
		return nil, -1, err
	}
	us, err := connectedUDP()
	if err != nil {
		unix.Close(tp.fd)
		return nil, -1, err
	}
	return tp, us, nil
}

// udpRateFilter takes the rate runs' datagrams to 10.2.0.2:9.
func udpRateFilter(runID uint64) func(int, []byte) bool {
	return func(_ int, b []byte) bool {
		if len(b) < 44 || b[0] != 0x45 || b[9] != unix.IPPROTO_UDP || [4]byte(b[16:20]) != [4]byte{10, 2, 0, 2} {
			return false
		}
		return binary.BigEndian.Uint64(b[28:]) == rateMagic && binary.BigEndian.Uint64(b[36:]) == runID
	}
}

// udpRateRun sends datagrams of size bytes (IP length) at over times rate
// for dur through t and measures their departures from low0.
func udpRateRun(t rateTool, rate uint64, size int, over float64, dur time.Duration, runID uint64) (rateRec, error) {
	rec := rateRec{Part: "udp", Tool: t.tool, Config: t.config, Rate: rate, Overhead: t.overhead}
	err := t.around(func() error {
		d0, err := t.dropped()
		if err != nil {
			return err
		}
		tp, us, err := openUDPTap(52, false, udpRateFilter(runID))
		if err != nil {
			return err
		}
		defer unix.Close(us)
		tp.start()
		begin := time.Now()
		k0 := ksoftirqdNs()
		pps := over * float64(rate) / 8 / float64(size)
		var first, last int64
		stamps := make([]int64, 0, int(pps*dur.Seconds())+16)
		rec.Sent, rec.SendErrors, first, last, err = pace(us, size-28, 0, dur, pps, func(b []byte, i int) {
			binary.BigEndian.PutUint64(b, rateMagic)
			binary.BigEndian.PutUint64(b[8:], runID)
			binary.BigEndian.PutUint64(b[16:], uint64(i))
		}, &stamps)
		if ferr := tp.finish(0); err == nil {
			err = ferr
		}
		if err != nil {
			return err
		}
		rec.Seconds = time.Since(begin).Seconds()
		rec.Ksoftirqd = ksoftirqdNs() - k0
		d1, err := t.dropped()
		if err != nil {
			return err
		}
		rec.ToolDropped, rec.CaptureDrops = d1-d0, tp.drops
		if last > first && rec.Sent > 1 {
			rec.Offered = float64(rec.Sent-1) * float64(size) * 8 * 1e9 / float64(last-first)
		}
		rec.TapPackets = len(tp.pkts)
		w := wirePackets(tp.pkts)
		from := first + int64(dur)/10
		rec.Fig = rateFigures(w, from, 1<<62, rate, t.overhead)
		rec.ErrPct = 100 * (rec.Fig.ChargedBps/float64(rate) - 1)
		// Each datagram's number keys its departure to its send.
		for i := range w {
			if h := tp.pkts[i].hdr; len(h) >= 52 {
				w[i].seq, w[i].keyed = uint32(binary.BigEndian.Uint64(h[44:])), true
			}
		}
		ents := make([]wirePkt, len(stamps))
		for i, at := range stamps {
			ents[i] = wirePkt{t: at, l: size, seq: uint32(i), keyed: true}
		}
		rec.setLate(scheduleLateness(ents, w, rate, t.overhead, from, 1<<62))
		var bad []string
		if uint64(rec.TapPackets)+rec.ToolDropped != uint64(rec.Sent) {
			bad = append(bad, fmt.Sprintf("%d sent, %d left low0, %d dropped by the tool", rec.Sent, rec.TapPackets, rec.ToolDropped))
		}
		if rec.CaptureDrops != 0 {
			bad = append(bad, fmt.Sprintf("the capture dropped %d", rec.CaptureDrops))
		}
		rec.Error = strings.Join(bad, "; ")
		return nil
	})
	return rec, err
}

// setLate fills the lateness figures from scheduleLateness.
func (rec *rateRec) setLate(late, at []int64) {
	if len(late) == 0 {
		return
	}
	ls := latencyStats(late)
	rec.Late, rec.LateMin = &ls, quantile(late, 0)
	for i, l := range late {
		if l == ls.Max {
			rec.LateMaxAt = float64(at[i]-at[0]) / 1e9
			break
		}
	}
}

// ksoftirqdNs is the time ksoftirqd/0 has run (the first field of its
// /proc/PID/schedstat), 0 if it cannot be read.
func ksoftirqdNs() int64 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "ksoftirqd/0" {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/schedstat")
		if err != nil {
			return 0
		}
		f := strings.Fields(string(st))
		if len(f) == 0 {
			return 0
		}
		v, _ := strconv.ParseInt(f[0], 10, 64)
		return v
	}
	return 0
}

// tcpRoute sends the sink's address through tins0 (on), or not.
func tcpRoute(on bool) error {
	if on {
		_, err := run("ip", "route", "replace", tcpDstIP+"/32", "dev", tcpIns, "src", "10.3.0.1")
		return err
	}
	out, err := run("ip", "route", "show", tcpDstIP+"/32")
	if err != nil || strings.TrimSpace(out) == "" {
		return err
	}
	_, err = run("ip", "route", "del", tcpDstIP+"/32")
	return err
}

// tcpQdiscTool is a root qdisc on tv0 with tins0 passing.
func tcpQdiscTool(c *genl.Client, args ...string) rateTool {
	return qdiscRateTool(tcpLower, func() error {
		if err := c.SetPolicy(tcpIns, genl.Pass()); err != nil {
			return err
		}
		return tcpRoute(true)
	}, func() error { return tcpRoute(false) }, args...)
}

// tcpFilter takes the TCP packets to the sink.
func tcpFilter(_ int, b []byte) bool {
	return len(b) >= 20 && b[0]>>4 == 4 && b[9] == unix.IPPROTO_TCP && [4]byte(b[16:20]) == [4]byte{10, 3, 0, 2}
}

// tcpRateRun sends one TCP stream to the sink through t for dur and
// measures its departures from tv0 against rate from skip on; with
// buffer, also each wire packet's queueing delay (from its entry into
// tins0) against buffer plus a full packet's serialization.
func tcpRateRun(t rateTool, rate uint64, dur, skip, buffer time.Duration) (rateRec, error) {
	rec := rateRec{Part: "tcp", Tool: t.tool, Config: t.config, Rate: rate, Overhead: t.overhead}
	if buffer > 0 {
		rec.Part = "buffer"
	}
	err := t.around(func() error {
		d0, err := t.dropped()
		if err != nil {
			return err
		}
		dep, err := openTap(tcpLower, 64, false, tcpFilter)
		if err != nil {
			return err
		}
		ent, err := openTap(tcpIns, 64, false, tcpFilter)
		if err != nil {
			unix.Close(dep.fd)
			return err
		}
		dep.start()
		ent.start()
		begin := time.Now()
		k0 := ksoftirqdNs()
		t0, t1, werr := tcpStream(dur)
		rec.Ksoftirqd = ksoftirqdNs() - k0
		// The qdiscs and a bounded buffer empty within seconds; insane
		// without a buffer may hold megabytes, flushed at teardown.
		wait := 500 * time.Millisecond
		if buffer > 0 {
			wait = 10 * time.Second
		}
		derr := dep.finish(wait)
		eerr := ent.finish(wait)
		rec.Seconds = time.Since(begin).Seconds()
		for _, e := range []error{werr, derr, eerr} {
			if e != nil {
				return e
			}
		}
		d1, err := t.dropped()
		if err != nil {
			return err
		}
		rec.ToolDropped, rec.CaptureDrops = d1-d0, dep.drops+ent.drops
		rec.TapPackets, rec.Entries = len(dep.pkts), len(ent.pkts)
		var entBytes int64
		for _, p := range dep.pkts {
			if p.gsoSize > 0 {
				rec.GSO++
			}
		}
		for _, p := range ent.pkts {
			if p.gsoSize > 0 {
				rec.EntryGSO++
			}
			if p.t >= t0+int64(skip) && p.t <= t1 {
				entBytes += int64(p.l)
			}
		}
		if t1 > t0+int64(skip) {
			rec.Offered = float64(entBytes) * 8 * 1e9 / float64(t1-t0-int64(skip))
		}
		deps, ents := wirePackets(dep.pkts), wirePackets(ent.pkts)
		rec.Fig = rateFigures(deps, t0+int64(skip), t1, rate, t.overhead)
		rec.ErrPct = 100 * (rec.Fig.ChargedBps/float64(rate) - 1)
		if buffer == 0 {
			rec.setLate(scheduleLateness(ents, deps, rate, t.overhead, t0+int64(skip), t1))
		}
		if buffer > 0 {
			d, un := queueDelays(ents, deps, t0+int64(skip), t1)
			rec.Unmatched = un
			rec.Delay = latencyStats(d)
			rec.DelayMin = quantile(d, 0)
			rec.Bound = int64(buffer) + serNs(1500, t.overhead, rate)
			for _, x := range d {
				if x > rec.Bound {
					rec.Above++
				}
			}
		}
		if rec.CaptureDrops != 0 {
			rec.Error = fmt.Sprintf("the capture dropped %d", rec.CaptureDrops)
		}
		return nil
	})
	return rec, err
}

// tcpStream writes to the sink as fast as the connection takes it for dur
// and returns the CLOCK_REALTIME readings when it began and ended; the
// connection is then reset (SO_LINGER 0), so that its unsent data goes.
func tcpStream(dur time.Duration) (t0, t1 int64, err error) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	tv := unix.NsecToTimeval(int64(20 * time.Millisecond))
	if err := unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		unix.Close(s)
		return 0, 0, err
	}
	if err := unix.Connect(s, &unix.SockaddrInet4{Port: tcpPort, Addr: [4]byte{10, 3, 0, 2}}); err != nil {
		unix.Close(s)
		return 0, 0, fmt.Errorf("connect %s:%d: %w", tcpDstIP, tcpPort, err)
	}
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for !stop.Load() {
			if _, err := unix.Write(s, buf); err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				done <- err
				return
			}
		}
		done <- nil
	}()
	t0 = time.Now().UnixNano()
	time.Sleep(dur)
	t1 = time.Now().UnixNano()
	stop.Store(true)
	err = <-done
	_ = unix.SetsockoptLinger(s, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(s)
	return t0, t1, err
}

// extraRun sends n numbered datagrams at pps through t and judges every
// frame that leaves low0.
func extraRun(t rateTool, n int, pps float64, runID uint64) (extraRec, extraObs, error) {
	rec := extraRec{Tool: t.tool, Config: t.config, Sent: n, PredDup: -1, PredCor: -1, ReplayDup: -1, ReplayCor: -1}
	var o extraObs
	err := t.around(func() error {
		d0, err := t.dropped()
		if err != nil {
			return err
		}
		var s0 genl.Stats
		if t.stats != nil {
			if s0, err = t.stats(); err != nil {
				return err
			}
		}
		tp, us, err := openUDPTap(0, true, func(l int, _ []byte) bool { return l == extraFrame-extraEth })
		if err != nil {
			return err
		}
		defer unix.Close(us)
		sa, err := unix.Getsockname(us)
		if err != nil {
			unix.Close(tp.fd)
			return err
		}
		sport := uint16(sa.(*unix.SockaddrInet4).Port)
		tp.start()
		begin := time.Now()
		sent, errs, first, last, err := pace(us, extraPayload, n, 0, pps, func(b []byte, i int) { fillExtra(b, runID, uint64(i)) }, nil)
		if ferr := tp.finish(0); err == nil {
			err = ferr
		}
		if err != nil {
			return err
		}
		rec.Seconds = time.Since(begin).Seconds()
		rec.SendErrors = errs
		if last > first {
			rec.Rate = float64(sent-1) * 1e9 / float64(last-first)
		}
		d1, err := t.dropped()
		if err != nil {
			return err
		}
		rec.ToolDropped, rec.CaptureDrops = d1-d0, tp.drops
		if t.stats != nil {
			s1, err := t.stats()
			if err != nil {
				return err
			}
			rec.DupCounter = int64(s1.Duplicated - s0.Duplicated)
			rec.CorCounter = int64(s1.Corrupted - s0.Corrupted)
		} else {
			rec.DupCounter, rec.CorCounter = -1, -1
		}
		o = observeExtras(tp.pkts, n, sport, runID)
		rec.Frames, rec.Unknown, rec.Where, rec.MultiBit = o.frames, o.unknown, o.where, o.multiBit
		rec.Missing = n - len(o.copies)
		rec.Dups, rec.Cors = o.duplicates(), len(o.corrupt)
		var bad []string
		if errs != 0 || rec.Missing != 0 || rec.Unknown != 0 || rec.CaptureDrops != 0 || rec.ToolDropped != 0 {
			bad = append(bad, fmt.Sprintf("%d sent (%d send errors), %d never left low0, %d frames unread, the capture dropped %d, the tool %d",
				n, errs, rec.Missing, rec.Unknown, rec.CaptureDrops, rec.ToolDropped))
		}
		if t.stats != nil && (rec.DupCounter != int64(rec.Dups) || rec.CorCounter != int64(rec.Cors)) {
			bad = append(bad, fmt.Sprintf("counters: %d duplicated, %d corrupted; seen %d, %d", rec.DupCounter, rec.CorCounter, rec.Dups, rec.Cors))
		}
		rec.Error = strings.Join(bad, "; ")
		return nil
	})
	return rec, o, err
}

// The cost cases, keys of their own beside cases()'s and the delay's.
func rateCostCases() []dropper {
	a, b := lowerCases()
	pol := func(f func(*genl.Policy)) genl.Policy {
		p := genl.Pass()
		f(&p)
		return p
	}
	return []dropper{a, b,
		insaneCase("r", "insane pass rate 1gbit", 0, pol(func(p *genl.Policy) { p.Rate = 1e9 })),
		netemCase("n", "rate", "1gbit"),
		insaneCase("u", "insane pass duplicate 1", 0, pol(func(p *genl.Policy) { p.Duplicate = 1 })),
		netemCase("w", "duplicate", "1%"),
		insaneCase("x", "insane pass corrupt 1", 0, pol(func(p *genl.Policy) { p.Corrupt = 1 })),
		netemCase("y", "corrupt", "1%"),
	}
}

// rateParts are the parts of the phase, all by default.
const rateParts = "udp,tcp,buffer,cost,extra"

// ratePhase runs the whole phase.
func ratePhase(c *genl.Client, o *options) (*rateResult, error) {
	res := &rateResult{Reps: o.rateReps, Seconds: o.dur.Seconds()}
	part := func(p string) bool { return strings.Contains(","+o.rateParts+",", ","+p+",") }
	start := time.Now()
	_, tbfErr := run("modprobe", "sch_tbf")
	if tbfErr != nil {
		res.Skipped = append(res.Skipped, "rate: tbf: no sch_tbf in the guest ("+tbfErr.Error()+")")
	}
	passRate := func(r uint64, f func(*genl.Policy)) genl.Policy {
		p := genl.Pass()
		p.Rate = r
		if f != nil {
			f(&p)
		}
		return p
	}
	runID := uint64(0)
	if part("udp") {
		fmt.Printf("rate: UDP, %d-byte datagrams at %.2f R for %s each ...\n", o.rateSize, o.rateOver, o.rateDur)
		for _, r := range []uint64{1e6, 10e6, 100e6} {
			tools := []rateTool{
				insaneRateTool(c, insane, passRate(r, nil), viaInsane),
				qdiscRateTool(lower, nil, nil, "netem", "rate", genl.FormatRate(r)),
			}
			if tbfErr == nil {
				tools = append(tools, qdiscRateTool(lower, nil, nil, "tbf", "rate", genl.FormatRate(r), "burst", fmt.Sprint(tbfBurst(r)), "latency", "50ms"))
			}
			if r == 10e6 {
				tools = append(tools, insaneRateTool(c, insane, passRate(r, func(p *genl.Policy) { p.Overhead = 38 }), viaInsane))
			}
			for _, t := range tools {
				runID++
				rec, err := udpRateRun(t, r, o.rateSize, o.rateOver, o.rateDur, runID)
				if err != nil {
					return res, err
				}
				fmt.Printf("  %s: %d sent, %d left, rate %.4f Mbit/s (%+.3f %%), %d dropped%s\n", rec.Config, rec.Sent, rec.TapPackets, rec.Fig.ChargedBps/1e6, rec.ErrPct, rec.ToolDropped, errNote(rec.Error))
				res.Runs = append(res.Runs, rec)
			}
		}
		fmt.Printf("  UDP done at %s\n", time.Since(start).Round(time.Second))
	}
	if part("tcp") || part("buffer") {
		if err := setupTCP(); err != nil {
			return res, err
		}
		var recv atomic.Uint64
		if err := tcpSink(&recv); err != nil {
			return res, fmt.Errorf("tcp sink: %w", err)
		}
		// A first connection resolves tv0's neighbour and warms up.
		if err := tcpRoute(true); err != nil {
			return res, err
		}
		if _, _, err := tcpStream(100 * time.Millisecond); err != nil {
			return res, err
		}
		if err := tcpRoute(false); err != nil {
			return res, err
		}
		tcpViaIns := func(on bool) error { return tcpRoute(on) }
		var steps []struct {
			t      rateTool
			r      uint64
			dur    time.Duration
			buffer time.Duration
		}
		add := func(t rateTool, r uint64, dur, buffer time.Duration) {
			steps = append(steps, struct {
				t      rateTool
				r      uint64
				dur    time.Duration
				buffer time.Duration
			}{t, r, dur, buffer})
		}
		if part("tcp") {
			for _, r := range []uint64{10e6, 100e6} {
				add(insaneRateTool(c, tcpIns, passRate(r, nil), tcpViaIns), r, o.rateTCPDur, 0)
				add(tcpQdiscTool(c, "netem", "rate", genl.FormatRate(r)), r, o.rateTCPDur, 0)
				if tbfErr == nil {
					add(tcpQdiscTool(c, "tbf", "rate", genl.FormatRate(r), "burst", fmt.Sprint(tbfBurst(r)), "latency", "50ms"), r, o.rateTCPDur, 0)
				}
			}
		}
		if part("buffer") {
			const r, b = 10e6, 50 * time.Millisecond
			limit := int64(b) * r / 8 / 1e9 / 1514
			add(insaneRateTool(c, tcpIns, passRate(r, func(p *genl.Policy) { p.Buffer = b }), tcpViaIns), r, o.rateBufferDur, b)
			add(tcpQdiscTool(c, "netem", "rate", genl.FormatRate(r), "limit", fmt.Sprint(limit)), r, o.rateBufferDur, b)
			if tbfErr == nil {
				add(tcpQdiscTool(c, "tbf", "rate", genl.FormatRate(r), "burst", fmt.Sprint(tbfBurst(r)), "latency", "50ms"), r, o.rateBufferDur, b)
			}
		}
		for _, s := range steps {
			rec, err := tcpRateRun(s.t, s.r, s.dur, s.dur/5, s.buffer)
			if err != nil {
				return res, err
			}
			fmt.Printf("  %s %s: %d left (%d GSO), %d entered (%d GSO), rate %.4f Mbit/s (%+.3f %%), longest run %d (%d), bucket %.0f B, %d dropped%s\n",
				rec.Part, rec.Config, rec.TapPackets, rec.GSO, rec.Entries, rec.EntryGSO, rec.Fig.ChargedBps/1e6, rec.ErrPct, rec.Fig.LongestRun, rec.Fig.LongestStrict, rec.Fig.Bucket, rec.ToolDropped, errNote(rec.Error))
			if rec.Part == "buffer" {
				fmt.Printf("    queueing delay p50 %.2f ms, p99 %.2f ms, max %.2f ms (bound %.2f ms, %d above), %d departures unmatched\n",
					float64(rec.Delay.Median)/1e6, float64(rec.Delay.P99)/1e6, float64(rec.Delay.Max)/1e6, float64(rec.Bound)/1e6, rec.Above, rec.Unmatched)
			}
			res.Runs = append(res.Runs, rec)
		}
		fmt.Printf("  TCP done at %s\n", time.Since(start).Round(time.Second))
	}
	if part("cost") {
		fmt.Printf("rate: cost, %d rounds x %s, UDP source ...\n", o.rateReps, o.dur)
		var err error
		if res.Cost, err = throughput(c, rateCostCases(), []string{srcUDP}, []int{1}, o.rateReps, o.dur); err != nil {
			return res, err
		}
		if err := c.SetPolicy(insane, genl.Pass()); err != nil {
			return res, err
		}
		fmt.Printf("  cost done at %s\n", time.Since(start).Round(time.Second))
	}
	if part("extra") {
		seed := uint64(rateSeed)
		p := genl.Pass()
		p.Duplicate, p.Corrupt, p.Seed = 1, 1, &seed
		ins := insaneRateTool(c, insane, p, viaInsane)
		ne := qdiscRateTool(lower, nil, nil, "netem", "duplicate", "1%", "corrupt", "1%")
		pdup, pcor := predictedExtras(seed, o.rateExtraCount, p.DuplicateUnits(), p.CorruptUnits())
		for _, t := range []rateTool{ins, ne} {
			var first *extraObs
			for i := 0; i < 2; i++ {
				runID++
				rec, obs, err := extraRun(t, o.rateExtraCount, o.rateExtraPPS, runID)
				if err != nil {
					return res, err
				}
				n := rec.Sent
				rec.DupWant = 0.01 * float64(n)
				rec.DupZ = binomSigmas(rec.Dups, n, 0.01)
				// insane corrupts originals only; netem each frame,
				// its copies too.
				rec.CorBase = n
				if t.tool != "insane" {
					rec.CorBase = rec.Frames
				}
				rec.CorWant = 0.01 * float64(rec.CorBase)
				rec.CorZ = binomSigmas(rec.Cors, rec.CorBase, 0.01)
				if t.tool == "insane" {
					rec.PredDup, rec.PredCor = extraAgreement(&obs, pdup, pcor)
				}
				if first != nil {
					d, cr := first.asReference()
					rec.ReplayDup, rec.ReplayCor = extraAgreement(&obs, d, cr)
					rec.OverlapDup, rec.OverlapCor = overlap(first, &obs)
				} else {
					first = &obs
				}
				fmt.Printf("  %s: %d sent, %d frames, %d duplicated (%.1f σ), %d corrupted (%.1f σ)%s\n", rec.Config, n, rec.Frames, rec.Dups, rec.DupZ, rec.Cors, rec.CorZ, errNote(rec.Error))
				res.Extras = append(res.Extras, rec)
			}
		}
		fmt.Printf("  duplicate and corrupt done at %s\n", time.Since(start).Round(time.Second))
	}
	return res, nil
}

func lateCell(x rateRec) string {
	if x.Late == nil || x.Late.N == 0 {
		return "-"
	}
	us := func(v int64) string { return fmt.Sprintf("%.1f", float64(v)/1e3) }
	return us(x.Late.Median) + " / " + us(x.Late.P99) + " / " + us(x.Late.Max) + " / " + us(x.LateMin)
}

func mbit(bps float64) string { return fmt.Sprintf("%.4f", bps/1e6) }

// printRate prints the rate phase's tables.
func printRate(r *rateResult, icount bool) {
	unit := "guest ns"
	if icount {
		unit = "instructions"
	}
	var acc, buf []rateRec
	for _, x := range r.Runs {
		if x.Part == "buffer" {
			buf = append(buf, x)
		} else {
			acc = append(acc, x)
		}
	}
	if len(acc) > 0 {
		fmt.Printf("\n### Rate (issue 25): achieved rate on the lower against R, and bursts\n\n")
		fmt.Println("| source | config | R | offered, Mbit/s | left (GSO seen whole) | window, s | rate as charged, Mbit/s | error | IP rate, Mbit/s | longest run back to back (gaps < t/2) | longest run faster than R (gaps < t) | gaps < t | bucket needed, B (packets) | idle gaps | against an ideal serializer: p50 / p99 / max / min, µs | latest at, s | ksoftirqd ran, ms | tool drops |")
		fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, x := range acc {
			left := fmt.Sprint(x.TapPackets)
			if x.Part == "tcp" {
				left = fmt.Sprintf("%d (%d GSO; %d wire)", x.TapPackets, x.GSO, x.Fig.N)
			}
			pk := 0.0
			if x.Fig.MaxPkt > 0 {
				pk = x.Fig.Bucket / float64(x.Fig.MaxPkt)
			}
			fmt.Printf("| %s | %s | %s | %s | %s | %.3f | %s | %+.3f %% | %s | %d | %d | %d of %d | %.0f (%.1f) | %d | %s | %.3f | %.3f | %d |%s\n",
				x.Part, x.Config, genl.FormatRate(x.Rate), mbit(x.Offered), left, float64(x.Fig.Span)/1e9, mbit(x.Fig.ChargedBps), x.ErrPct, mbit(x.Fig.IPBps),
				x.Fig.LongestRun, x.Fig.LongestStrict, x.Fig.FastGaps, max(x.Fig.N-1, 0), x.Fig.Bucket, pk, x.Fig.IdleGaps, lateCell(x), x.LateMaxAt, float64(x.Ksoftirqd)/1e6, x.ToolDropped, errNote(x.Error))
		}
		fmt.Println()
		fmt.Println("Charged: insane counts the IP length plus its overhead; netem and tbf, as root qdiscs of an Ethernet lower, the frame (IP + 14).")
		fmt.Println("TCP entered tins0 as GSO packets (the entries column of the log above); tins0 cuts them for insane's rate, the qdiscs see them whole.")
	}
	if len(buf) > 0 {
		fmt.Printf("\n### Rate (issue 25): TCP through a 50 ms buffer at 10 Mbit/s, queueing delay (departure from tv0 - entry into tins0)\n\n")
		fmt.Println("| config | left (GSO) | wire packets timed | delay p50, ms | p99 | max | min | bound B + t, ms | above the bound | departures unmatched | tool drops | rate as charged, Mbit/s |")
		fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, x := range buf {
			fmt.Printf("| %s | %d (%d) | %d | %.3f | %.3f | %.3f | %.3f | %.3f | %d | %d | %d | %s |%s\n",
				x.Config, x.TapPackets, x.GSO, x.Delay.N, float64(x.Delay.Median)/1e6, float64(x.Delay.P99)/1e6, float64(x.Delay.Max)/1e6, float64(x.DelayMin)/1e6,
				float64(x.Bound)/1e6, x.Above, x.Unmatched, x.ToolDropped, mbit(x.Fig.ChargedBps), errNote(x.Error))
		}
	}
	if len(r.Cost) > 0 {
		m := byRep(r.Cost)
		fmt.Printf("\n### Rate (issue 25): cost, UDP source, 1 CPU (%d rounds x %.1f s; median [min–max])\n\n", r.Reps, r.Seconds)
		printCostTable(m, unit, rateCostCases())
		fmt.Println()
		for _, p := range [][3]string{{"r", "n", "rate 1gbit"}, {"u", "w", "duplicate 1 %"}, {"x", "y", "corrupt 1 %"}} {
			fmt.Printf("insane / netem, %s, rate in the same round: %s\n", p[2], pairRatio(m, p[0], p[1], 1, srcUDP).format(1, 3))
		}
	}
	if len(r.Extras) > 0 {
		fmt.Printf("\n### Rate (issue 25): duplicate and corrupt, 1 %% each, numbered datagrams captured whole on low0\n\n")
		fmt.Println("| config | sent | frames | duplicated (want) | σ | counter | corrupted (want) | σ | counter | where | multi-bit | against the predictor (dup, corrupt differ) | against the first run (differ) | in both runs (dup, corrupt) |")
		fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, x := range r.Extras {
			cnt := func(v int64) string {
				if v < 0 {
					return "-"
				}
				return fmt.Sprint(v)
			}
			pair := func(a, b int) string {
				if a < 0 {
					return "-"
				}
				return fmt.Sprintf("%d, %d", a, b)
			}
			var where []string
			for _, k := range []string{"eth", "ip", "udp", "payload"} {
				if x.Where[k] > 0 {
					where = append(where, fmt.Sprintf("%s %d", k, x.Where[k]))
				}
			}
			both := "-"
			if x.ReplayDup >= 0 {
				both = fmt.Sprintf("%d, %d", x.OverlapDup, x.OverlapCor)
			}
			fmt.Printf("| %s | %d | %d | %d (%.0f) | %+.2f | %s | %d (%.0f) | %+.2f | %s | %s | %d | %s | %s | %s |%s\n",
				x.Config, x.Sent, x.Frames, x.Dups, x.DupWant, x.DupZ, cnt(x.DupCounter), x.Cors, x.CorWant, x.CorZ, cnt(x.CorCounter),
				strings.Join(where, ", "), x.MultiBit, pair(x.PredDup, x.PredCor), pair(x.ReplayDup, x.ReplayCor), both, errNote(x.Error))
		}
	}
	for _, s := range r.Skipped {
		fmt.Printf("\nskipped: %s\n", s)
	}
}
