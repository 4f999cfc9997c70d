package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
)

// The rate, duplicate and corrupt scenes (issue 25).

const tcpPort = 5001

// rateCounters is the part of `insane -j -s link show` these scenes read.
type rateCounters struct {
	Stats *struct {
		RelayedPackets uint64 `json:"relayed_packets"`
		RelayedBytes   uint64 `json:"relayed_bytes"`
		DropQueueFull  uint64 `json:"drop_queue_full"`
		DropNoMemory   uint64 `json:"drop_no_memory"`
		HeldPackets    uint64 `json:"held_packets"`
		HeldBytes      uint64 `json:"held_bytes"`
		Duplicated     uint64 `json:"duplicated"`
		Corrupted      uint64 `json:"corrupted"`
	} `json:"stats"`
}

func rateStats() (*rateCounters, error) {
	js, err := exec.Command("ip", "netns", "exec", borea, "insane", "-j", "-s", "link", "show", "insane0").Output()
	if err != nil {
		return nil, fmt.Errorf("insane -j -s link show insane0: %v", err)
	}
	var devs []rateCounters
	if err := json.Unmarshal(js, &devs); err != nil {
		return nil, fmt.Errorf("insane -j -s link show insane0: %v", err)
	}
	if len(devs) != 1 || devs[0].Stats == nil {
		return nil, errors.New("insane -j -s link show insane0: no counters for insane0")
	}
	return &devs[0], nil
}

// tcpSink listens on morgana and counts what it reads.
type tcpSink struct {
	ln    net.Listener
	bytes atomic.Int64
	wg    sync.WaitGroup
	conns []net.Conn
	mu    sync.Mutex
}

func listenTCP() (*tcpSink, error) {
	s := &tcpSink{}
	err := vmnet.Do(morgana, func() error {
		var err error
		s.ln, err = net.Listen("tcp4", fmt.Sprintf("%s:%d", morganaIP, tcpPort))
		return err
	})
	if err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				buf := make([]byte, 64<<10)
				for {
					k, err := c.Read(buf)
					s.bytes.Add(int64(k))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return s, nil
}

func (s *tcpSink) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// transfer is one TCP transfer from borea to morgana.
type transfer struct {
	start time.Time // before the connection was opened
	end   time.Time // read after the byte count below
	bytes int64     // what morgana had read by end
}

func (t transfer) mbit() float64 {
	return float64(t.bytes) * 8 / t.end.Sub(t.start).Seconds() / 1e6
}

// tcpTransfer writes from borea to morgana's sink for dur, as fast as TCP
// takes it, and returns what morgana had read when the writer stopped;
// the connection is then reset (what insane0 still holds leaves anyway).
func tcpTransfer(s *tcpSink, dur time.Duration) (transfer, error) {
	t := transfer{start: time.Now()}
	b0 := s.bytes.Load()
	var conn net.Conn
	err := vmnet.Do(borea, func() error {
		var err error
		conn, err = net.DialTimeout("tcp4", fmt.Sprintf("%s:%d", morganaIP, tcpPort), 5*time.Second)
		return err
	})
	if err != nil {
		return t, err
	}
	stop := t.start.Add(dur)
	conn.SetWriteDeadline(stop)
	buf := make([]byte, 64<<10)
	for {
		if _, err := conn.Write(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			conn.Close()
			return t, err
		}
	}
	t.bytes = s.bytes.Load() - b0
	t.end = time.Now()
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	return t, nil
}

// pingStats is busybox ping's summary: sent, received, min/avg/max ms.
type pingStats struct {
	cmd            string
	out            string
	sent, received int
	min, avg, max  float64
}

// pingNow pings morgana from borea count times, interval apart.
func pingNow(count int, interval string) (pingStats, error) {
	args := []string{"ping", "-c", strconv.Itoa(count), "-i", interval, "-q", morganaIP}
	p := pingStats{cmd: borea + "# " + strings.Join(args, " ")}
	out, err := exec.Command("ip", append([]string{"netns", "exec", borea}, args...)...).CombinedOutput()
	p.out = string(out)
	for _, l := range strings.Split(strings.TrimSpace(p.out), "\n") {
		if strings.Contains(l, "transmitted") {
			fmt.Sscanf(strings.TrimSpace(l), "%d packets transmitted, %d packets received", &p.sent, &p.received)
		}
		if i := strings.Index(l, "= "); strings.HasPrefix(l, "round-trip") && i >= 0 {
			f := strings.Split(strings.Fields(l[i+2:])[0], "/")
			if len(f) == 3 {
				p.min, _ = strconv.ParseFloat(f[0], 64)
				p.avg, _ = strconv.ParseFloat(f[1], 64)
				p.max, _ = strconv.ParseFloat(f[2], 64)
			}
		}
	}
	if err != nil && p.received == 0 && p.sent == 0 {
		return p, fmt.Errorf("ping: %v: %s", err, strings.TrimSpace(p.out))
	}
	return p, nil
}

func (p pingStats) print() {
	fmt.Println(p.cmd)
	for _, l := range strings.Split(strings.TrimSpace(p.out), "\n") {
		if strings.Contains(l, "transmitted") || strings.HasPrefix(l, "round-trip") {
			fmt.Printf("  %s\n", l)
		}
	}
}

// pingDuring pings while fn runs, starting after wait.
func pingDuring(wait time.Duration, count int, interval string, fn func() error) (pingStats, error) {
	var p pingStats
	var perr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(wait)
		p, perr = pingNow(count, interval)
	}()
	err := fn()
	<-done
	if err == nil {
		err = perr
	}
	return p, err
}

// waitDrained waits until insane0 holds nothing (at most max) and returns
// how long it took.
func waitDrained(max time.Duration) (time.Duration, bool, error) {
	start := time.Now()
	for time.Since(start) < max {
		s, err := rateStats()
		if err != nil {
			return 0, false, err
		}
		if s.Stats.HeldPackets == 0 {
			return time.Since(start), true, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start), false, nil
}

// sampleHeld samples insane0's held bytes every 50 ms until the function
// it returns is called, which returns the largest and the samples taken.
// pingedTransfer sends TCP to sink for dur while pinging count times (0.2 s
// apart, from 500 ms in), and samples what insane0 holds meanwhile.
func pingedTransfer(sink *tcpSink, count int, dur time.Duration) (t transfer, p pingStats, peak uint64, samples int, err error) {
	held := sampleHeld()
	p, err = pingDuring(500*time.Millisecond, count, "0.2", func() error {
		var err error
		t, err = tcpTransfer(sink, dur)
		return err
	})
	peak, samples = held()
	return t, p, peak, samples, err
}

// showStats prints insane -s link show insane0, run in borea.
func showStats() error {
	out, err := sh(borea, "insane", "-s", "link", "show", "insane0")
	if err != nil {
		return err
	}
	fmt.Print(out)
	return nil
}

func sampleHeld() func() (peak uint64, samples int) {
	var stop atomic.Bool
	type result struct {
		peak uint64
		n    int
	}
	done := make(chan result)
	go func() {
		var r result
		for !stop.Load() {
			if s, err := rateStats(); err == nil {
				r.n++
				r.peak = max(r.peak, s.Stats.HeldBytes)
			}
			time.Sleep(50 * time.Millisecond)
		}
		done <- r
	}()
	return func() (uint64, int) {
		stop.Store(true)
		r := <-done
		return r.peak, r.n
	}
}

func rateMode() error {
	sink, err := listenTCP()
	if err != nil {
		return err
	}
	defer sink.close()
	if err := rateScene(sink); err != nil {
		return err
	}
	return bufferScene(sink)
}

// judgeGoodput checks a transfer against rate R: exactly, never above R
// (every byte morgana read left insane0 after the transfer began, at most
// R bits a second; the connection's headers make the goodput lower
// still); and close to it unless a busy machine slowed the sender.
func judgeGoodput(t transfer, r float64) {
	fmt.Printf("  morgana read %d bytes in %.2f s: %.2f Mbit/s of goodput\n", t.bytes, t.end.Sub(t.start).Seconds(), t.mbit())
	check(float64(t.bytes)*8 <= r*t.end.Sub(t.start).Seconds(), "never above %.0f Mbit/s (%.2f)", r/1e6, t.mbit())
	// 1448 bytes of data in a 1500-byte packet; the handshake and slow
	// start take a little of the time.
	if t.mbit() < 0.8*r/1e6 {
		cannotJudge("the goodput %.2f Mbit/s is under 80 %% of the rate: a busy machine slowed the sender", t.mbit())
		return
	}
	fmt.Printf("  [ok  ] the goodput is %.1f %% of the rate (TCP's headers take 3.5 %%)\n", 100*t.mbit()/(r/1e6))
}

func rateScene(sink *tcpSink) error {
	const r = 10e6
	fmt.Println("\n== rate: 10 Mbit/s on the way to morgana, one TCP transfer for 2 s")
	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "pass", "reset-stats"); err != nil {
		return err
	}
	base, err := pingNow(5, "0.2")
	if err != nil {
		return err
	}
	base.print()
	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "pass", "rate", "10mbit", "reset-stats"); err != nil {
		return err
	}
	t, p, peak, samples, err := pingedTransfer(sink, 5, 2*time.Second)
	if err != nil {
		return err
	}
	judgeGoodput(t, r)
	if _, ok, err := waitDrained(30 * time.Second); err != nil {
		return err
	} else if !ok {
		check(false, "insane0 emptied its queue within 30 s")
	}
	p.print()
	fmt.Printf("  insane0 held up to %d bytes (%d samples): %.0f ms of waiting at 10 Mbit/s; the echo requests queued\n", peak, samples, float64(peak)*8/r*1e3)
	fmt.Printf("  behind the transfer's packets, and the round trip rose from %.1f ms to %.1f ms on average (no buffer: TCP decides)\n", base.avg, p.avg)
	return showStats()
}

func bufferScene(sink *tcpSink) error {
	const r, b = 2e6, 50 * time.Millisecond
	fmt.Println("\n== rate 2 Mbit/s with a 50 ms buffer: TCP for 3 s, pinged meanwhile")
	base, err := pingNow(5, "0.2")
	if err != nil {
		return err
	}
	base.print()
	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "pass", "rate", "2mbit", "buffer", "50ms", "reset-stats"); err != nil {
		return err
	}
	t, p, peak, samples, err := pingedTransfer(sink, 10, 3*time.Second)
	if err != nil {
		return err
	}
	judgeGoodput(t, r)
	if _, _, err := waitDrained(5 * time.Second); err != nil {
		return err
	}
	p.print()
	s, err := rateStats()
	if err != nil {
		return err
	}
	if err := showStats(); err != nil {
		return err
	}
	if s.Stats.DropQueueFull == 0 {
		cannotJudge("TCP never filled the buffer (no queue-full drop)")
	} else {
		fmt.Printf("  [ok  ] the buffer refused %d packets (drop_queue_full): TCP backs off instead of queueing seconds\n", s.Stats.DropQueueFull)
	}
	// At most B of waiting at R, plus the packet on the wire and the last
	// one let in.
	bound := uint64(r*b.Seconds()/8) + 2*1500
	if peak <= bound {
		fmt.Printf("  [ok  ] insane0 held at most %d bytes (%d samples; 50 ms at 2 Mbit/s is 12500 bytes, and two packets more)\n", peak, samples)
	} else {
		cannotJudge("insane0 held %d bytes at a sample, more than %d: a release late on a busy machine", peak, bound)
	}
	// An echo request waits at most B, and its own 84 bytes at R.
	due := b.Seconds()*1e3 + 84*8/r*1e3
	switch {
	case p.received == 0:
		cannotJudge("no echo reply came back")
	case p.max > due+base.max+20:
		cannotJudge("the slowest round trip took %.1f ms, more than %.1f ms (the buffer, the round trip without it and 20 ms): a busy machine", p.max, due+base.max+20)
	default:
		fmt.Printf("  [ok  ] under load the round trip stayed bounded: at most %.1f ms (%.1f ms of buffer and serialization, %.1f ms without load)\n", p.max, due, base.max)
	}
	if p.sent > p.received {
		fmt.Printf("  %d echo requests found the buffer full: dropped, and counted in queue-full with TCP's\n", p.sent-p.received)
	}
	_, err = sh(borea, "insane", "link", "set", "insane0", "mode", "pass")
	return err
}

// udpSnmp reads morgana's UDP counters (InErrors, InCsumErrors,
// RcvbufErrors) from /proc/net/snmp.
func udpSnmp() (map[string]uint64, error) {
	out, err := exec.Command("ip", "netns", "exec", morgana, "cat", "/proc/net/snmp").Output()
	if err != nil {
		return nil, err
	}
	var names []string
	m := map[string]uint64{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, v := range f[1:] {
			if i < len(names) {
				m[names[i]], _ = strconv.ParseUint(v, 10, 64)
			}
		}
	}
	if names == nil {
		return nil, errors.New("no Udp line in morgana's /proc/net/snmp")
	}
	return m, nil
}

func extrasMode() error {
	const (
		n    = 2000
		pct  = 5
		seed = 11
		// The datagrams' UDP header and payload: the span a flip hits.
		span = 8 + vmnet.MinSize
	)
	fmt.Printf("\n== duplicate %d %% and corrupt %d %%, seed %d: %d datagrams\n", pct, pct, seed, n)
	fmt.Println("   a copy follows its original right behind, untouched; a corrupted datagram has one bit flipped past")
	fmt.Println("   its IP header, after its checksum was written, so morgana's UDP finds a bad checksum and drops it")
	args := []string{"insane", "link", "set", "insane0", "mode", "pass", "duplicate", strconv.Itoa(pct), "corrupt", strconv.Itoa(pct), "seed", strconv.Itoa(seed), "reset-stats"}
	if _, err := sh(borea, args...); err != nil {
		return err
	}
	before, err := udpSnmp()
	if err != nil {
		return err
	}
	sent, rcvd, err := flow(n, 250*time.Microsecond)
	if err != nil {
		return err
	}
	after, err := udpSnmp()
	if err != nil {
		return err
	}
	if err := showStats(); err != nil {
		return err
	}
	s, err := rateStats()
	if err != nil {
		return err
	}
	delta := func(k string) uint64 { return after[k] - before[k] }
	fmt.Printf("%s# cat /proc/net/snmp   (Udp: before -> after)\n", morgana)
	for _, k := range []string{"InDatagrams", "InErrors", "InCsumErrors", "RcvbufErrors"} {
		fmt.Printf("  %-13s %d -> %d\n", k, before[k], after[k])
	}
	fmt.Printf("  morgana received %d of %d datagrams, %d of them twice\n", len(rcvd.Seqs), n, rcvd.Duplicates)

	// What the seed says: the k-th datagram takes k (nothing else
	// crosses insane0 meanwhile).
	p := genl.Policy{Mode: genl.ModePass, Duplicate: pct, Corrupt: pct}
	pr := genl.NewPredictor(seed)
	var dups, cors, lost, twice, short int
	arrive := map[uint64]bool{}
	for k := uint64(0); k < n; k++ {
		d, c, y := pr.Extra(k, p.DuplicateUnits(), p.CorruptUnits())
		if d {
			dups++
		}
		if c {
			cors++
			// A flip of the UDP length to more than the packet, or
			// under 8, is a short packet; every other flip, a bad
			// checksum.
			if i, m := genl.CorruptBit(y, span); i == 4 || i == 5 {
				var l [2]byte
				binary.BigEndian.PutUint16(l[:], uint16(span))
				l[i-4] ^= m
				if v := int(binary.BigEndian.Uint16(l[:])); v > span || v < 8 {
					short++
				}
			}
		}
		switch {
		case c && !d:
			lost++
		case d && !c:
			twice++
			arrive[k] = true
		default:
			arrive[k] = true
		}
	}
	mean, sigma := float64(n)*pct/100, math.Sqrt(float64(n)*pct/100*(1-pct/100.0))
	check(sent.Errors == 0, "every send was accepted (%d refused)", sent.Errors)
	for _, c := range []struct {
		what string
		got  uint64
	}{{"duplicated", s.Stats.Duplicated}, {"corrupted", s.Stats.Corrupted}} {
		check(math.Abs(float64(c.got)-mean) <= 4*sigma, "%s %d is within 4 sigma of %.0f (%.0f..%.0f)", c.what, c.got, mean, mean-4*sigma, mean+4*sigma)
	}
	if s.Stats.Duplicated != uint64(dups) || s.Stats.Corrupted != uint64(cors) {
		cannotJudge("the counters (%d, %d) are not the seed's draws for these %d datagrams (%d, %d): other packets crossed insane0", s.Stats.Duplicated, s.Stats.Corrupted, n, dups, cors)
		return nil
	}
	fmt.Printf("  [ok  ] the counters are the seed's draws: the Go client's Predictor.Extra says %d duplicated, %d corrupted\n", dups, cors)
	same := len(rcvd.Seqs) == len(arrive)
	for _, k := range rcvd.Seqs {
		same = same && arrive[k]
	}
	if delta("RcvbufErrors") != 0 && (!same || rcvd.Duplicates != twice) {
		cannotJudge("morgana's socket buffer overflowed (%d): a busy machine", delta("RcvbufErrors"))
		return nil
	}
	check(same && rcvd.Duplicates == twice, "morgana received exactly the datagrams the seed spares (%d: %d corrupted without a clean copy are lost), %d twice (%d due)", len(arrive), lost, rcvd.Duplicates, twice)
	check(delta("InCsumErrors") == uint64(cors-short) && delta("InErrors") == uint64(cors),
		"morgana's UDP counted every corrupted datagram as an error: InErrors +%d, InCsumErrors +%d (%d, %d due: %d flips made the length too long)", delta("InErrors"), delta("InCsumErrors"), cors, cors-short, short)
	_, err = sh(borea, "insane", "link", "set", "insane0", "mode", "pass")
	return err
}
