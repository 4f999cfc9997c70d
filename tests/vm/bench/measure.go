package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"golang.org/x/sys/unix"
)

// Allocations per packet, counted by the kmem tracepoints' histogram
// triggers while pktgen sends a fixed number of packets on one CPU.

const tracing = "/sys/kernel/tracing"

// allocEvents are the kmem events counted; 6.1 folded the _node variants
// into kmalloc and kmem_cache_alloc, but older names are tried too.
var allocEvents = []string{"kmalloc", "kmalloc_node", "kmem_cache_alloc", "kmem_cache_alloc_node", "mm_page_alloc"}

type allocRec struct {
	Case string `json:"case"`
	Sent uint64 `json:"sent"`
	// Hits per event, and per allocation site (kmalloc and
	// kmem_cache_alloc only).
	Hits  map[string]uint64 `json:"hits"`
	Sites map[string]uint64 `json:"sites"`
}

func mountTracing() error {
	if _, err := os.Stat(tracing + "/events"); err == nil {
		return nil
	}
	return unix.Mount("tracefs", tracing, "tracefs", 0, "")
}

func trigger(event string) string {
	if event == "mm_page_alloc" {
		return "hist:keys=order"
	}
	return "hist:keys=call_site.sym"
}

var (
	reHits = regexp.MustCompile(`Hits: (\d+)`)
	reSite = regexp.MustCompile(`call_site:\s*\[[0-9a-f]+\]\s*(\S+)\s*\}\s*hitcount:\s*(\d+)`)
)

// threadPID finds a kernel thread by name.
func threadPID(comm string) (int, error) {
	ds, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, d := range ds {
		b, err := os.ReadFile(d)
		if err == nil && strings.TrimSpace(string(b)) == comm {
			return strconv.Atoi(filepath.Base(filepath.Dir(d)))
		}
	}
	return 0, fmt.Errorf("no thread %s", comm)
}

func allocations(c *genl.Client, cs []dropper, count uint64) ([]allocRec, error) {
	if err := mountTracing(); err != nil {
		return nil, fmt.Errorf("tracefs: %w", err)
	}
	var events []string
	for _, e := range allocEvents {
		if _, err := os.Stat(filepath.Join(tracing, "events/kmem", e, "trigger")); err == nil {
			events = append(events, e)
		}
	}
	if len(events) == 0 {
		return nil, errors.New("no kmem allocation tracepoints")
	}
	// Packets injected by pktgen are handled to the end in its thread
	// (netif_receive mode, no qdisc queueing in these cases): counting
	// only there leaves out this program and the tools it runs.
	pid, err := threadPID("kpktgend_0")
	if err != nil {
		return nil, err
	}
	filter := fmt.Sprintf(" if common_pid == %d", pid)
	var out []allocRec
	for _, d := range cs {
		rec := allocRec{Case: d.key, Hits: map[string]uint64{}, Sites: map[string]uint64{}}
		around := func() (func() error, error) {
			for _, e := range events {
				if err := writeFile(filepath.Join(tracing, "events/kmem", e, "trigger"), trigger(e)+filter); err != nil {
					return nil, fmt.Errorf("%s trigger: %w", e, err)
				}
			}
			return func() error {
				var first error
				for _, e := range events {
					dir := filepath.Join(tracing, "events/kmem", e)
					b, err := os.ReadFile(filepath.Join(dir, "hist"))
					if err == nil {
						if m := reHits.FindSubmatch(b); m != nil {
							rec.Hits[e], _ = strconv.ParseUint(string(m[1]), 10, 64)
						}
						for _, m := range reSite.FindAllSubmatch(b, -1) {
							n, _ := strconv.ParseUint(string(m[2]), 10, 64)
							site := string(m[1])
							if i := strings.IndexByte(site, '+'); i > 0 {
								site = site[:i]
							}
							rec.Sites[site] += n
						}
					}
					if werr := writeFile(filepath.Join(dir, "trigger"), "!"+trigger(e)+filter); err == nil {
						err = werr
					}
					if err != nil && first == nil {
						first = fmt.Errorf("%s hist: %w", e, err)
					}
				}
				return first
			}, nil
		}
		r, err := measure(c, d, 1, count, 0, around)
		if err != nil {
			return nil, err
		}
		rec.Sent = r.Sent
		out = append(out, rec)
	}
	return out, nil
}

// Time-mode edges: a UDP sender sends numbered datagrams through insane0 as
// fast as it can, bracketing each send(2) by CLOCK_MONOTONIC readings (the
// clock of ktime_get_ns(), which time mode uses). insane decides inside
// that bracket, since the UDP send path runs down to insane_xmit() in the
// sender's own system call (insane0 has no qdisc). A packet socket on low0
// sees every relayed datagram. The policy's epoch is bracketed the same way
// around the netlink request that sets it.

type edgeResult struct {
	OnNS, OffNS int64
	Sent        int
	Relayed     int
	CaptureDrop uint32
	SendErrors  int
	EpochWidth  int64 // ns between the readings around the policy change
	// Packets whose bracket lies wholly inside an ON (OFF) window, and
	// those of them that were dropped (relayed): decisions contradicting
	// the policy.
	CertainOn, WrongOn   int
	CertainOff, WrongOff int
	Ambiguous            int
	// Edges seen (verdict changes), expected in the sending span, and
	// those whose bracket holds the nominal edge time.
	Edges, Expected, InBracket int
	// Tight counts the changes whose bracket half width is at most
	// TightNS (four median send gaps). ErrMedian, ErrP95 and ErrMax are
	// the distances, for those, from the nominal edge to the middle of
	// the bracket; HalfWidthMedian is the median half width of all.
	Tight                     int
	TightNS                   int64
	ErrMedian, ErrP95, ErrMax int64
	HalfWidthMedian           int64
	// The same against a grid whose epoch is fitted to the tight changes
	// (the median of the epochs each implies): FitOffset is the fitted
	// epoch minus the middle of the epoch bracket; FitInBracket counts
	// tight changes whose own bracket holds the fitted edge; Spurious
	// counts changes more than a quarter window away from any edge.
	FitOffset                          int64
	FitErrMedian, FitErrP95, FitErrMax int64
	FitInBracket, Spurious             int
	GapMedian                          int64 // ns between consecutive sends
}

func mono() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

const edgeMagic = 0x696e73616e656564 // "insaneed"

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// lowerTap opens a packet socket that sees what the lower sends (outgoing
// packets reach only ETH_P_ALL taps), with a 256 MiB buffer and reads that
// time out after timeout.
func lowerTap(timeout time.Duration) (int, error) {
	ifi, err := net.InterfaceByName(lower)
	if err != nil {
		return -1, err
	}
	ps, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return -1, err
	}
	tv := unix.NsecToTimeval(int64(timeout))
	if err := unix.Bind(ps, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		unix.Close(ps)
		return -1, err
	}
	if err := unix.SetsockoptInt(ps, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 256<<20); err != nil {
		unix.Close(ps)
		return -1, err
	}
	if err := unix.SetsockoptTimeval(ps, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(ps)
		return -1, err
	}
	return ps, nil
}

func timeEdges(c *genl.Client, on, off, dur time.Duration) (edgeResult, error) {
	res := edgeResult{OnNS: int64(on), OffNS: int64(off)}
	if err := viaInsane(true); err != nil {
		return res, err
	}
	defer viaInsane(false)
	ps, err := lowerTap(200 * time.Millisecond)
	if err != nil {
		return res, err
	}
	defer unix.Close(ps)
	us, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return res, err
	}
	defer unix.Close(us)
	if err := unix.Connect(us, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{10, 2, 0, 2}}); err != nil {
		return res, err
	}

	// The receiver marks each sequence number it sees.
	maxPkts := 4 << 20
	seen := make([]bool, maxPkts)
	var stop atomic.Bool
	recvDone := make(chan error, 1)
	go func() {
		// The receiver on CPU 0, the sender on CPU 1.
		runtime.LockOSThread()
		pin(0)
		buf := make([]byte, 2048)
		for {
			n, _, err := unix.Recvfrom(ps, buf, 0)
			if err != nil {
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
					if stop.Load() {
						recvDone <- nil
						return
					}
					continue
				}
				recvDone <- err
				return
			}
			if n < 20 || buf[0]>>4 != 4 || buf[9] != unix.IPPROTO_UDP {
				continue
			}
			p := buf[int(buf[0]&15)*4+8 : n]
			if len(p) < 16 || binary.BigEndian.Uint64(p) != edgeMagic {
				continue
			}
			if s := binary.BigEndian.Uint64(p[8:]); s < uint64(maxPkts) {
				seen[s] = true
			}
		}
	}()

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pin(1)
	defer pin(-1)
	t0 := make([]int64, 0, 1<<20)
	t1 := make([]int64, 0, 1<<20)
	// A first request resolves the family and warms the path, so that
	// the bracket around the second is as tight as it gets.
	if err := c.SetPolicy(insane, genl.Pass()); err != nil {
		stop.Store(true)
		<-recvDone
		return res, err
	}
	eb := mono()
	if err := c.SetPolicy(insane, genl.Time(on, off)); err != nil {
		stop.Store(true)
		<-recvDone
		return res, err
	}
	ea := mono()
	buf := make([]byte, 64)
	binary.BigEndian.PutUint64(buf, edgeMagic)
	end := ea + int64(dur)
	for seq := 0; seq < maxPkts; seq++ {
		binary.BigEndian.PutUint64(buf[8:], uint64(seq))
		a := mono()
		if a > end {
			break
		}
		_, err := unix.Write(us, buf)
		b := mono()
		if err != nil {
			res.SendErrors++
		}
		t0 = append(t0, a)
		t1 = append(t1, b)
	}
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	if err := <-recvDone; err != nil {
		return res, err
	}
	if st, err := unix.GetsockoptTpacketStats(ps, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		res.CaptureDrop = st.Drops
	}
	if err := c.SetPolicy(insane, genl.Pass()); err != nil {
		return res, err
	}
	analyzeEdges(&res, t0, t1, seen, eb, ea)
	return res, nil
}

// pin binds the calling thread to one CPU, or to all with cpu < 0.
func pin(cpu int) {
	var set unix.CPUSet
	if cpu < 0 {
		for i := 0; i < runtime.NumCPU(); i++ {
			set.Set(i)
		}
	} else {
		set.Set(cpu % runtime.NumCPU())
	}
	_ = unix.SchedSetaffinity(0, &set)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func analyzeEdges(res *edgeResult, t0, t1 []int64, seen []bool, eb, ea int64) {
	on, period := res.OnNS, res.OnNS+res.OffNS
	res.Sent = len(t0)
	res.EpochWidth = ea - eb
	for i := range t0 {
		if seen[i] {
			res.Relayed++
		}
		// The decision time minus the epoch lies in [lo, hi].
		lo, hi := t0[i]-ea, t1[i]-eb
		n := floorDiv(lo, period)
		switch {
		case hi < n*period+on:
			res.CertainOn++
			if !seen[i] {
				res.WrongOn++
			}
		case lo >= n*period+on && hi < (n+1)*period:
			res.CertainOff++
			if seen[i] {
				res.WrongOff++
			}
		default:
			res.Ambiguous++
		}
	}
	emid := (eb + ea) / 2
	type change struct{ lo, hi, mid, offset int64 }
	var changes []change
	var gaps []int64
	for i := 0; i+1 < len(t0); i++ {
		gaps = append(gaps, t0[i+1]-t0[i])
		if seen[i] == seen[i+1] {
			continue
		}
		lo, hi := t0[i], t1[i+1]
		ch := change{lo: lo, hi: hi, mid: (lo + hi) / 2}
		if seen[i] {
			ch.offset = on // falling edge: ON -> OFF
		}
		changes = append(changes, ch)
	}
	res.Edges = len(changes)
	// nearest returns the edge of the grid with epoch e nearest to ch.
	nearest := func(ch change, e int64) int64 {
		base := e + ch.offset
		k := int64(math.Round(float64(ch.mid-base) / float64(period)))
		return base + k*period
	}
	abs := func(x int64) int64 {
		if x < 0 {
			return -x
		}
		return x
	}
	// Every change must hold a nominal edge within its bracket widened
	// by the epoch's uncertainty. Only changes whose bracket is tight
	// (the sender was not stalled across the edge) say how precisely.
	tight := 4 * quantile(gaps, 0.5)
	var errs, widths, implied []int64
	for _, ch := range changes {
		e := abs(ch.mid - nearest(ch, emid))
		hw := (ch.hi - ch.lo) / 2
		if e <= hw+res.EpochWidth/2 {
			res.InBracket++
		}
		widths = append(widths, hw)
		if hw <= tight {
			res.Tight++
			errs = append(errs, e)
			implied = append(implied, emid+(ch.mid-nearest(ch, emid)))
		}
	}
	res.TightNS = tight
	if len(implied) > 0 {
		efit := quantile(implied, 0.5)
		res.FitOffset = efit - emid
		var ferrs []int64
		for _, ch := range changes {
			e := abs(ch.mid - nearest(ch, efit))
			hw := (ch.hi - ch.lo) / 2
			if hw <= tight {
				if e <= hw {
					res.FitInBracket++
				}
				ferrs = append(ferrs, e)
			}
			if 4*(e-hw) > min(res.OnNS, res.OffNS) {
				res.Spurious++
			}
		}
		res.FitErrMedian = quantile(ferrs, 0.5)
		res.FitErrP95 = quantile(ferrs, 0.95)
		res.FitErrMax = quantile(ferrs, 1)
	}
	// Edges expected between the first and the last send; the epoch
	// itself opens the first ON window but shows no change.
	if len(t0) > 0 {
		first, last := t0[0]-emid, t1[len(t1)-1]-emid
		for k := floorDiv(first, period); k*period <= last; k++ {
			for _, x := range []int64{k * period, k*period + on} {
				if x != 0 && x > first && x < last {
					res.Expected++
				}
			}
		}
	}
	res.ErrMedian = quantile(errs, 0.5)
	res.ErrP95 = quantile(errs, 0.95)
	res.ErrMax = quantile(errs, 1)
	res.HalfWidthMedian = quantile(widths, 0.5)
	res.GapMedian = quantile(gaps, 0.5)
}

func quantile(v []int64, q float64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(math.Round(q*float64(len(s)-1)))]
}

// Memory per device: the growth of slab, per-cpu and total used memory
// when n devices are created in a fresh network namespace, divided by n.

type memRec struct {
	Kind         string  `json:"kind"`
	N            int     `json:"n"`
	SlabKB       int64   `json:"slab_kb"`
	SlabObjBytes int64   `json:"slab_obj_bytes"`
	PercpuKB     int64   `json:"percpu_kb"`
	UsedKB       int64   `json:"used_kb"`
	Seconds      float64 `json:"seconds"`
}

// shrink drops the page cache and returns empty slabs to the page
// allocator, so that Slab counts what is in use.
func shrink() {
	_ = writeFile("/proc/sys/vm/drop_caches", "3")
	ms, _ := filepath.Glob("/sys/kernel/slab/*/shrink")
	for _, m := range ms {
		_ = writeFile(m, "1")
	}
}

// slabBytes sums active objects times object size over /proc/slabinfo.
func slabBytes() (int64, error) {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return 0, err
	}
	var total int64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "slabinfo") {
			continue
		}
		active, err1 := strconv.ParseInt(f[1], 10, 64)
		size, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 == nil && err2 == nil {
			total += active * size
		}
	}
	return total, nil
}

type memSnap struct {
	slab, percpu, used, obj int64
}

func snapshot() (memSnap, error) {
	time.Sleep(500 * time.Millisecond) // RCU callbacks
	shrink()
	m, err := meminfo()
	if err != nil {
		return memSnap{}, err
	}
	obj, err := slabBytes()
	if err != nil {
		return memSnap{}, err
	}
	return memSnap{
		slab:   m["Slab"],
		percpu: m["Percpu"],
		used:   m["MemTotal"] - m["MemFree"],
		obj:    obj,
	}, nil
}

const memNS = "benchmem"

func memory(n int) ([]memRec, error) {
	var out []memRec
	for _, kind := range []string{"dummy", "insane", "dummy", "insane"} {
		if _, err := run("ip", "netns", "add", memNS); err != nil {
			return nil, err
		}
		if err := runAll(
			[]string{"ip", "-n", memNS, "link", "add", "m0", "type", "dummy"},
			[]string{"ip", "-n", memNS, "link", "set", "m0", "up"},
		); err != nil {
			return nil, err
		}
		var batch strings.Builder
		for i := 0; i < n; i++ {
			if kind == "insane" {
				fmt.Fprintf(&batch, "link add x%d link m0 type insane\n", i)
			} else {
				fmt.Fprintf(&batch, "link add x%d type dummy\n", i)
			}
		}
		before, err := snapshot()
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if err := runIn(batch.String(), "ip", "-n", memNS, "-batch", "-"); err != nil {
			return nil, err
		}
		secs := time.Since(start).Seconds()
		after, err := snapshot()
		if err != nil {
			return nil, err
		}
		out = append(out, memRec{
			Kind: kind, N: n, Seconds: secs,
			SlabKB:       after.slab - before.slab,
			SlabObjBytes: after.obj - before.obj,
			PercpuKB:     after.percpu - before.percpu,
			UsedKB:       after.used - before.used,
		})
		if _, err := run("ip", "netns", "del", memNS); err != nil {
			return nil, err
		}
		// The namespace is torn down by a worker: wait for the slab
		// to stop shrinking.
		prev := int64(-1)
		for i := 0; i < 60; i++ {
			s, err := snapshot()
			if err != nil {
				return nil, err
			}
			if prev >= 0 && s.slab >= prev-8 {
				break
			}
			prev = s.slab
		}
	}
	return out, nil
}
