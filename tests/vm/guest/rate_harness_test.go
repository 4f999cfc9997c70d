//go:build vmtest

package guest

// Helpers of the rate, duplication and corruption tests (issue 25): the
// header's formulas written here from the uapi header alone (serialization
// time, the extras draw, the bit a corruption flips), a packet socket that
// stamps what a device sends or receives (SO_TIMESTAMPNS, taken in
// dev_queue_xmit_nit() on transmit), a pinned UDP sender that reads the
// clock before and after each send, the checksums, and a model of what
// Linux's IPv4 and UDP receive paths make of a packet (which counters of
// /proc/net/snmp and /proc/net/netstat it moves).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

// ttCheckExtras checks a policy level's rate, duplication and corruption as
// the header bounds them (called by ttParsePolicyIn for every reply).
func ttCheckExtras(d *ttDev, seen map[uint16]bool) error {
	switch {
	case seen[uapi.PolicyARate] && (d.Rate < uapi.RateMin || d.Rate > uapi.RateMax):
		return fmt.Errorf("rate %d bit/s", d.Rate)
	case seen[uapi.PolicyAOverhead] && (!seen[uapi.PolicyARate] || d.Overhead > uapi.RateOverheadMax):
		return fmt.Errorf("overhead %d with rate %d", d.Overhead, d.Rate)
	case seen[uapi.PolicyABufferNs] && (!seen[uapi.PolicyARate] || d.Buffer == 0 || d.Buffer > uapi.DelayMaxNs):
		return fmt.Errorf("buffer %d ns with rate %d", d.Buffer, d.Rate)
	case seen[uapi.PolicyADuplicate] && (d.Duplicate == 0 || d.Duplicate > uapi.PercentMax):
		return fmt.Errorf("duplicate %d", d.Duplicate)
	case seen[uapi.PolicyACorrupt] && (d.Corrupt == 0 || d.Corrupt > uapi.PercentMax):
		return fmt.Errorf("corrupt %d", d.Corrupt)
	case d.CorruptHeader && !seen[uapi.PolicyACorrupt]:
		return errors.New("corrupt header without corrupt")
	}
	return nil
}

// Policy attributes of issue 25, for the raw genl requests of kmA.
func rtRate(bps uint64) kmA        { return kmU64(uapi.PolicyARate, bps) }
func rtOverhead(n uint32) kmA      { return kmU32(uapi.PolicyAOverhead, n) }
func rtBuffer(d time.Duration) kmA { return kmU64(uapi.PolicyABufferNs, uint64(d)) }
func rtDup(pct float64) kmA        { return kmU32(uapi.PolicyADuplicate, kmPct(pct)) }
func rtCorrupt(pct float64) kmA    { return kmU32(uapi.PolicyACorrupt, kmPct(pct)) }
func rtCorruptHeader() kmA         { return kmFlag(uapi.PolicyACorruptHeader) }
func rtPass(attrs ...kmA) []kmA    { return append([]kmA{kmMode(uapi.ModePass)}, attrs...) }
func rtSerialNs(l, overhead int, bps uint64) int64 {
	// floor((L + OVERHEAD) * 8 * 10^9 / R), exactly.
	hi, lo := bits.Mul64(uint64(l+overhead), 8e9)
	q, _ := bits.Div64(hi, lo, bps)
	return int64(q)
}

// rtExtra is the header's extras draw of the k-th packet under seed:
// duplicated, corrupted, and y, which picks the bit.
func rtExtra(seed, k uint64, dup, corrupt uint32) (bool, bool, uint32) {
	x := kmMix(seed^uapi.ExtraSalt, k)
	y := uint32(kdMix64(x^uapi.CorruptSalt) >> 32)
	return x>>32 < kmThr(uint64(dup), uapi.PercentMax), x&0xffffffff < kmThr(uint64(corrupt), uapi.PercentMax), y
}

// rtBit is the byte (from the span's start) and the mask of the bit that
// y flips in a span of n bytes.
func rtBit(y uint32, n int) (int, byte) {
	b := (uint64(y) * uint64(8*n)) >> 32
	return int(b >> 3), 1 << (b & 7)
}

// rtPkt is a packet a packet socket saw: from the network header on.
type rtPkt struct {
	at   time.Time // SCM_TIMESTAMPNS
	typ  uint8     // PACKET_HOST, PACKET_OUTGOING, ...
	data []byte
}

// rtCap is a packet socket on one device, collecting what keep accepts.
type rtCap struct {
	fd    int
	stop  atomic.Bool
	done  chan struct{}
	mu    sync.Mutex
	pkts  []rtPkt
	err   error
	keep  func(p rtPkt) bool
	index int
}

// rtCapture opens a packet socket (SOCK_DGRAM: from the network header
// on) on device dev of namespace ns, with SO_TIMESTAMPNS, and keeps the
// IPv4 packets that keep accepts until Stop. It is an ETH_P_ALL tap: only
// those see what a device sends (dev_queue_xmit_nit()), and what a
// device's rx_handler takes (the lower's, with insane's receive policy).
func rtCapture(t testing.TB, ns, dev string, keep func(p rtPkt) bool) *rtCap {
	t.Helper()
	c := &rtCap{done: make(chan struct{}), keep: keep}
	proto := int(htons(unix.ETH_P_ALL))
	err := vmnet.Do(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		c.index = ifi.Index
		c.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		return unix.Bind(c.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if err != nil {
		t.Fatalf("packet socket on %s in %s: %v", dev, ns, err)
	}
	for _, o := range [][2]int{{unix.SO_TIMESTAMPNS, 1}, {unix.SO_RCVBUFFORCE, 64 << 20}} {
		if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, o[0], o[1]); err != nil {
			unix.Close(c.fd)
			t.Fatal(err)
		}
	}
	tv := unix.Timeval{Usec: 20000}
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(c.fd)
		t.Fatal(err)
	}
	// What was queued before the bind, from any device, goes.
	_, _ = unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	go c.loop()
	t.Cleanup(func() { c.Stop() })
	return c
}

func (c *rtCap) loop() {
	defer close(c.done)
	buf := make([]byte, 70000)
	oob := make([]byte, 256)
	for {
		n, oobn, _, from, err := unix.Recvmsg(c.fd, buf, oob, unix.MSG_TRUNC)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				if c.stop.Load() {
					return
				}
				continue
			}
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Ifindex != c.index || ll.Protocol != htons(unix.ETH_P_IP) || n > len(buf) {
			continue
		}
		p := rtPkt{typ: ll.Pkttype, data: append([]byte(nil), buf[:n]...)}
		if ts, ok := rtStamp(oob[:oobn]); ok {
			p.at = ts
		}
		if c.keep != nil && !c.keep(p) {
			continue
		}
		c.mu.Lock()
		c.pkts = append(c.pkts, p)
		c.mu.Unlock()
	}
}

// rtStamp returns the SCM_TIMESTAMPNS of a message's control data.
func rtStamp(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			return time.Unix(ts.Sec, ts.Nsec), true
		}
	}
	return time.Time{}, false
}

// Stop stops the capture and returns what it kept, in the order the
// socket received it; it fails the test if the socket dropped any packet
// (PACKET_STATISTICS) or a packet came without its stamp. It may be
// called more than once.
func (c *rtCap) Stop() []rtPkt {
	if !c.stop.Swap(true) {
		<-c.done
		st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
		unix.Close(c.fd)
		c.mu.Lock()
		if err == nil && st.Drops != 0 {
			c.err = fmt.Errorf("the packet socket dropped %d packets", st.Drops)
		}
		for _, p := range c.pkts {
			if p.at.IsZero() && c.err == nil {
				c.err = errors.New("a packet came without SCM_TIMESTAMPNS")
			}
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pkts
}

// Err is what went wrong with the capture, once stopped.
func (c *rtCap) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// rtStopCapture stops c and fails the test if it went wrong.
func rtStopCapture(t testing.TB, c *rtCap) []rtPkt {
	t.Helper()
	p := c.Stop()
	if err := c.Err(); err != nil {
		t.Fatalf("capture: %v", err)
	}
	return p
}

// rtUDPTo keeps IPv4 UDP packets to port dport (not outgoing with
// in, outgoing only without).
func rtUDPTo(dport int, in bool) func(rtPkt) bool {
	return func(p rtPkt) bool {
		if (p.typ == unix.PACKET_OUTGOING) == in {
			return false
		}
		d := p.data
		if len(d) < 28 || d[0]>>4 != 4 || d[9] != unix.IPPROTO_UDP {
			return false
		}
		ihl := int(d[0]&15) * 4
		return len(d) >= ihl+8 && int(binary.BigEndian.Uint16(d[ihl+2:])) == dport
	}
}

// rtIncoming keeps every IPv4 packet that is not outgoing: for the
// corrupted ones, whose ports and addresses may be what the flip hit.
func rtIncoming(p rtPkt) bool { return p.typ != unix.PACKET_OUTGOING }

// rtSent is what rtSend did: the clock read before and after each send,
// and the sending socket's port.
type rtSent struct {
	before, after []time.Time
	port          int
}

// rtSend sends n numbered datagrams of size bytes of payload (vmnet's
// header, then zeros) of run from namespace ns to dst:port, from a thread
// pinned to cpu, interval apart (0: back to back). Every send must be
// taken.
func rtSend(t testing.TB, ns, dst string, port, n, size int, run uint64, cpu int, interval time.Duration) rtSent {
	t.Helper()
	var fd int
	if err := vmnet.Do(ns, func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{})
	}); err != nil {
		t.Fatalf("sender in %s: %v", ns, err)
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	to := &unix.SockaddrInet4{Port: port}
	copy(to.Addr[:], net.ParseIP(dst).To4())
	s := rtSent{before: make([]time.Time, n), after: make([]time.Time, n), port: sa.(*unix.SockaddrInet4).Port}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread dies with the goroutine: its affinity goes with it.
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			errc <- fmt.Errorf("pinning to CPU %d: %w", cpu, err)
			return
		}
		buf := make([]byte, size)
		start := time.Now()
		for i := 0; i < n; i++ {
			if interval > 0 {
				if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
					time.Sleep(d)
				}
			}
			vmnet.Encode(buf, run, uint64(i))
			s.before[i] = time.Now()
			err := unix.Sendto(fd, buf, 0, to)
			s.after[i] = time.Now()
			if err != nil {
				errc <- fmt.Errorf("send %d: %w", i, err)
				return
			}
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("sending from %s: %v", ns, err)
	}
	return s
}

// rtSeq returns the run and sequence number of a captured UDP datagram
// of vmnet's format, ok false if it is not one.
func rtSeq(p []byte) (run, seq uint64, ok bool) {
	if len(p) < 20 || p[0]>>4 != 4 {
		return 0, 0, false
	}
	ihl := int(p[0]&15) * 4
	u := p[ihl:]
	if len(u) < 8+vmnet.MinSize || string(u[8:16]) != "insaneVM" {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(u[16:]), binary.BigEndian.Uint64(u[24:]), true
}

// rtSum is the one's complement sum of b folded to 16 bits, from initial.
func rtSum(b []byte, initial uint32) uint16 {
	s := initial
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// rtPseudo is the sum of UDP's IPv4 pseudo header for a datagram of
// ulen bytes.
func rtPseudo(src, dst []byte, ulen int) uint32 {
	return uint32(rtSum(append(append(append([]byte(nil), src...), dst...), 0, unix.IPPROTO_UDP, byte(ulen>>8), byte(ulen)), 0))
}

// rtUDP builds a UDP datagram (header and payload) from sport to dport
// between src and dst with its full checksum, and returns it with the
// checksum field's value under CHECKSUM_PARTIAL (the pseudo header's sum,
// not complemented), which is what leaves a device with checksum offload.
func rtUDP(src, dst []byte, sport, dport int, payload []byte) ([]byte, uint16) {
	u := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(u, uint16(sport))
	binary.BigEndian.PutUint16(u[2:], uint16(dport))
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	ps := rtPseudo(src, dst, len(u))
	c := ^rtSum(u, ps)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return u, uint16(ps)
}

// rtPayload is the payload of datagram seq of run, size bytes.
func rtPayload(run, seq uint64, size int) []byte {
	b := make([]byte, size)
	vmnet.Encode(b, run, seq)
	return b
}

// rtVerdict is what Linux 6.1's receive path makes of an IPv4 packet sent
// to a host that has a UDP socket on the datagram's port: ip_rcv_core()'s
// checks, then __udp4_lib_rcv()'s and the socket's checksum check (at
// recvmsg, for a packet without a verified checksum).
type rtVerdict struct {
	ipHdrErr, ipCsumErr, ipTrunc bool // Ip InHdrErrors, IpExt InCsumErrors, InTruncatedPkts
	udpErr, udpCsumErr           bool // Udp InErrors, InCsumErrors
	delivered                    bool
}

// rtReceive models the receiver's verdict on p, a packet without a valid
// checksum state (CHECKSUM_NONE: a corrupted packet), whose IPv4 and UDP
// checksums are therefore verified. It holds for the packets of these
// tests: a host address as destination, no options, no fragments.
func rtReceive(p []byte) rtVerdict {
	var v rtVerdict
	if len(p) < 20 {
		v.ipHdrErr = true
		return v
	}
	ihl := int(p[0]&15) * 4
	if p[0]>>4 != 4 || ihl < 20 || len(p) < ihl {
		v.ipHdrErr = true
		return v
	}
	if rtSum(p[:ihl], 0) != 0xffff {
		v.ipCsumErr, v.ipHdrErr = true, true
		return v
	}
	tot := int(binary.BigEndian.Uint16(p[2:]))
	if len(p) < tot {
		v.ipTrunc = true
		return v
	}
	if tot < ihl {
		v.ipHdrErr = true
		return v
	}
	// The fields a flip may have changed that another check of the stack
	// would catch (fragments, another protocol, another destination) are
	// not met by these tests' packets: the header's checksum catches any
	// one bit flipped in the header.
	u := p[ihl:tot]
	if len(u) < 8 {
		v.udpErr = true
		return v
	}
	ulen := int(binary.BigEndian.Uint16(u[4:]))
	if ulen > len(u) || ulen < 8 {
		v.udpErr = true
		return v
	}
	u = u[:ulen]
	if binary.BigEndian.Uint16(u[6:]) == 0 {
		v.delivered = true
		return v
	}
	if rtSum(u, rtPseudo(p[12:16], p[16:20], ulen)) != 0xffff {
		v.udpErr, v.udpCsumErr = true, true
		return v
	}
	v.delivered = true
	return v
}

// rtIntact reports whether p is exactly the datagram u (header and
// payload from rtUDP) in an intact IPv4 header from src to dst, its UDP
// checksum field either complete or the CHECKSUM_PARTIAL value.
func rtIntact(p, src, dst, u []byte, partial uint16) bool {
	if len(p) < 20 || p[0] != 0x45 || len(p) != 20+len(u) || rtSum(p[:20], 0) != 0xffff ||
		int(binary.BigEndian.Uint16(p[2:])) != len(p) || p[9] != unix.IPPROTO_UDP ||
		string(p[12:16]) != string(src) || string(p[16:20]) != string(dst) {
		return false
	}
	q := p[20:]
	if string(q[:6]) != string(u[:6]) || string(q[8:]) != string(u[8:]) {
		return false
	}
	c := binary.BigEndian.Uint16(q[6:])
	return c == binary.BigEndian.Uint16(u[6:]) || c == partial
}

// rtNetStats reads the counters of /proc/net/snmp and /proc/net/netstat
// of namespace ns, as "Udp.InErrors", "IpExt.InCsumErrors", ...
func rtNetStats(t testing.TB, ns string) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, f := range []string{"/proc/net/snmp", "/proc/net/netstat"} {
		lines := strings.Split(RunIn(t, ns, "cat", f), "\n")
		for i := 0; i+1 < len(lines); i += 2 {
			h, v := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			if len(h) == 0 || len(h) != len(v) || h[0] != v[0] {
				continue
			}
			g := strings.TrimSuffix(h[0], ":")
			for j := 1; j < len(h); j++ {
				if n, err := strconv.ParseUint(v[j], 10, 64); err == nil {
					m[g+"."+h[j]] = n
				}
			}
		}
	}
	return m
}

// rtStatsDelta returns after - before for the named counters.
func rtStatsDelta(before, after map[string]uint64, names ...string) map[string]uint64 {
	d := map[string]uint64{}
	for _, n := range names {
		d[n] = after[n] - before[n]
	}
	return d
}

// rtDir sums a direction's counters: relayed, and every drop cause.
func rtDir(st [uapi.StatsAMax + 1]uint64, rx bool) (relayed, drops uint64) {
	for _, c := range genl.Counters() {
		if c.Rx != rx {
			continue
		}
		switch {
		case c.Drop:
			drops += st[c.Attr]
		case c.Attr == uapi.StatsARelayedPackets || c.Attr == uapi.StatsARxRelayedPackets:
			relayed += st[c.Attr]
		}
	}
	return relayed, drops
}

// rtWaitIdle waits until insane0 holds no packet either way, and then
// for wait more: the serialization clock is then in the past.
func rtWaitIdle(t *testing.T, c *kmConn, dev string, wait time.Duration) [uapi.StatsAMax + 1]uint64 {
	t.Helper()
	var st [uapi.StatsAMax + 1]uint64
	WaitFor(t, 60*time.Second, dev+" to hold no packet", func() bool {
		st = c.get(dev).d.Stats
		return st[uapi.StatsAHeldPackets] == 0 && st[uapi.StatsARxHeldPackets] == 0
	})
	time.Sleep(wait)
	return c.get(dev).d.Stats
}

// rtHasExtras reports whether a device read back has a rate, duplicate or
// corrupt in either policy or any step (for the fuzzer's statistics).
func rtHasExtras(d *ttDev) bool {
	var has func(p *ttDev) bool
	has = func(p *ttDev) bool {
		if p == nil {
			return false
		}
		if p.Rate != 0 || p.Duplicate != 0 || p.Corrupt != 0 {
			return true
		}
		for _, st := range p.Steps {
			if has(st) {
				return true
			}
		}
		return false
	}
	return has(d) || has(d.Rx)
}
