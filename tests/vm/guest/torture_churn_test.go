//go:build vmtest

package guest

// Torture: two clients replace insane0's policy thousands of times while
// senders on both CPUs push traffic through it, and every datagram whose
// policy is known must have been decided by that whole policy.
//
// The two policies are percent 100 with seed A (relay everything) and
// percent 0 with seed B (drop everything). A datagram's policy is known
// when its sendto() (which runs insane's transmit synchronously: the device
// is noqueue) overlapped no SET_DEVICE call, and every SET_DEVICE call that
// may have been the last one applied before it set the same policy: a call
// takes effect between its start and its return, and calls that overlap
// each other are applied in an unknown order. That is causality only, no
// timing assumption. A policy read half-written, freed early or mixed with
// the other would relay a datagram sent under B or drop one sent under A;
// with nothing lost behind insane0 (received == relayed, checked), either
// shows. A reader checks meanwhile that GET_DEVICE only ever sees one of the
// two whole policies, and the counters must add up exactly.
//
// TestTortureModeChurn does the same among policies of every mode (burst,
// gilbert, schedule, drop, time, percent, pass), each chosen so that it
// relays everything or drops everything through its own code path.

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

type ttSpan struct{ start, end int64 } // ns since the test's base time

type ttSetCall struct {
	ttSpan
	relay bool // percent 100 (A) rather than percent 0 (B)
}

func TestTorturePolicyChurn(t *testing.T) {
	const seedA, seedB = 0xA11CE, 0xB0B
	sa, sb := uint64(seedA), uint64(seedB)
	polA, polB := genl.Percent(100, &sa), genl.Percent(0, &sb)
	ttPolicyChurn(t, ttSize(2000, 12000), []genl.Policy{polA}, []genl.Policy{polB}, func(tp *Topo) (func() error, func()) {
		// The reader parses the kernel's replies strictly, raw.
		fam := ttFamily(t, tp.Borea)
		rd, err := ttNlOpen(tp.Borea, unix.NETLINK_GENERIC)
		if err != nil {
			t.Fatal(err)
		}
		return func() error {
			d, err := ttGet(rd, fam, "insane0")
			if err != nil {
				return err
			}
			whole := d.Mode == uapi.ModePercent && d.Seed != nil &&
				(d.Percent == uapi.PercentMax && *d.Seed == seedA || d.Percent == 0 && *d.Seed == seedB)
			if !whole {
				return fmt.Errorf("GET_DEVICE read a policy that is neither A nor B: mode %d percent %d seed %v", d.Mode, d.Percent, d.Seed)
			}
			return nil
		}, func() { rd.Close() }
	})
}

// TestTortureModeChurn is the churn among every mode: burst, gilbert,
// schedule, drop and the older ones, each set so that it relays everything
// (group A) or drops everything (group B) through its own code path.
func TestTortureModeChurn(t *testing.T) {
	h := time.Hour
	s1, s2 := uint64(1), uint64(2)
	relay := []genl.Policy{
		genl.Pass(), genl.Percent(100, nil), genl.Burst(100, 5, &s1), genl.Burst(100, 1, nil),
		genl.Gilbert(genl.GilbertElliott{P: 0, R: 20, LossBad: 100}, nil),
		genl.Gilbert(genl.GilbertElliott{P: 30, R: 40, LossBad: 0, LossGood: 0}, &s2),
		genl.Time(h, 0), genl.Schedule(false, nil, genl.Step{Duration: h, Action: genl.Pass()}),
		genl.Schedule(true, &s1, genl.Step{Duration: h, Action: genl.Burst(100, 3, nil)}, genl.Step{Duration: 1, Action: genl.Drop()}),
	}
	drop := []genl.Policy{
		genl.Drop(), genl.Percent(0, &s2), genl.Time(0, h),
		genl.Gilbert(genl.GilbertElliott{P: 50, R: 50, LossBad: 100, LossGood: 100}, nil),
		genl.Gilbert(genl.GilbertElliott{P: 100, R: 1, LossBad: 100, LossGood: 100}, &s1),
		genl.Schedule(false, &s2, genl.Step{Duration: h, Action: genl.Percent(0, nil)}, genl.Step{Duration: h, Action: genl.Pass()}),
		genl.Schedule(false, nil, genl.Step{Duration: h, Action: genl.Gilbert(genl.GilbertElliott{P: 1, R: 1, LossBad: 100, LossGood: 100}, nil)}),
		genl.Schedule(true, nil, genl.Step{Duration: h, Action: genl.Drop()}),
	}
	ttPolicyChurn(t, ttSize(2000, 10000), relay, drop, func(tp *Topo) (func() error, func()) {
		c := kDial(t, tp.Borea)
		return func() error {
			d, err := c.Device("insane0")
			if err != nil {
				return err
			}
			for _, p := range append(append([]genl.Policy(nil), relay...), drop...) {
				if d.Policy.Equal(p) {
					return nil
				}
			}
			return fmt.Errorf("GET_DEVICE read a policy that was never set: %s", d.Policy)
		}, func() {}
	})
}

// ttPolicyChurn runs the churn: the policies of relayAll relay everything,
// those of dropAll drop everything; each SET_DEVICE picks a group, then one of
// its policies, at random. reader returns a check of one GET_DEVICE read,
// run in a loop meanwhile, and a cleanup.
func ttPolicyChurn(t *testing.T, total int, relayAll, dropAll []genl.Policy, reader func(*Topo) (func() error, func())) {
	CheckKmsg(t)
	if runtime.NumCPU() < 2 {
		t.Fatalf("%d CPUs; the churn test needs 2", runtime.NumCPU())
	}
	tp, _ := kTopo(t, &relayAll[0])
	base := time.Now()
	since := func() int64 { return int64(time.Since(base)) }

	// Receiver: which datagram of which sender arrived.
	var mu sync.Mutex
	arrived := [2]map[uint64]bool{{}, {}}
	dups := 0
	sink := ttListen(t, tp.Morgana, "0.0.0.0:0", func(b []byte) {
		id, seq := binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
		if id > 1 {
			return
		}
		mu.Lock()
		if arrived[id][seq] {
			dups++
		}
		arrived[id][seq] = true
		mu.Unlock()
	})
	dst := &net.UDPAddr{IP: net.ParseIP(tp.MorganaIP), Port: sink.Port()}

	// Two senders, one pinned to each CPU, timing each sendto().
	var sends [2][]ttSpan
	var refused [2]int
	stop := make(chan struct{})
	var swg sync.WaitGroup
	for id := 0; id < 2; id++ {
		var conn *net.UDPConn
		if err := vmnet.Do(tp.Borea, func() error {
			var err error
			conn, err = net.ListenUDP("udp4", nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		swg.Add(1)
		go func() {
			defer swg.Done()
			defer conn.Close()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var set unix.CPUSet
			set.Set(id)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				t.Errorf("pinning sender %d: %v", id, err)
			}
			buf := make([]byte, 32)
			for seq := uint64(0); ; seq++ {
				if seq%16 == 0 {
					select {
					case <-stop:
						return
					default:
					}
					time.Sleep(100 * time.Microsecond)
				}
				binary.BigEndian.PutUint64(buf, uint64(id))
				binary.BigEndian.PutUint64(buf[8:], seq)
				s := since()
				_, err := conn.WriteToUDP(buf, dst)
				sends[id] = append(sends[id], ttSpan{s, since()})
				if err != nil {
					refused[id]++
				}
			}
		}()
	}

	// A reader: every policy it sees is one that was set, whole.
	read, closeReader := reader(tp)
	defer closeReader()
	var reads atomic.Int64
	rdStop := make(chan struct{})
	rdDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-rdStop:
				rdDone <- nil
				return
			default:
			}
			if err := read(); err != nil {
				rdDone <- err
				return
			}
			reads.Add(1)
		}
	}()

	// Two clients, each with its own socket, set A or B at random, with
	// short random pauses that leave windows of a known policy.
	rngSeed := uint64(0x5e7c4a11)
	t.Logf("policy choices from math/rand/v2 PCG seed %#x", rngSeed)
	var calls [2][]ttSetCall
	var cwg sync.WaitGroup
	errs := make(chan error, 2)
	for cl := 0; cl < 2; cl++ {
		c := kDial(t, tp.Borea)
		r := rand.New(rand.NewPCG(rngSeed, uint64(cl)))
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for i := 0; i < total/2; i++ {
				relay := r.IntN(2) == 0
				p := dropAll[r.IntN(len(dropAll))]
				if relay {
					p = relayAll[r.IntN(len(relayAll))]
				}
				s := since()
				if err := c.SetPolicy("insane0", p); err != nil {
					errs <- err
					return
				}
				calls[cl] = append(calls[cl], ttSetCall{ttSpan{s, since()}, relay})
				if r.IntN(4) == 0 {
					time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
				}
			}
		}()
	}
	cwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("SET_DEVICE: %v", err)
	}
	churn := time.Since(base)
	close(stop)
	swg.Wait()
	close(rdStop)
	if err := <-rdDone; err != nil {
		t.Fatal(err)
	}

	c := kDial(t, tp.Borea)
	d := kDevice(t, c, "insane0")
	var sent, ref int
	for id := range sends {
		sent += len(sends[id])
		ref += refused[id]
	}
	reached := uint64(sent - ref)
	sink.WaitQuiet(int64(d.Stats.RelayedPackets), 500*time.Millisecond)
	s := d.Stats
	if s.RelayedPackets+s.DropPolicy != reached || s.Dropped() != s.DropPolicy {
		t.Errorf("counters %+v do not add up to the %d datagrams sent (%d refused)", s, sent, ref)
	}
	mu.Lock()
	got := uint64(len(arrived[0]) + len(arrived[1]))
	mu.Unlock()
	if got != s.RelayedPackets || dups != 0 {
		t.Errorf("morgana received %d datagrams (%d duplicates), insane0 relayed %d", got, dups, s.RelayedPackets)
	}

	// Merge the SET calls into busy blocks; the gaps between them have a
	// known policy when the block's possible last calls agree.
	all := append(append([]ttSetCall(nil), calls[0]...), calls[1]...)
	sort.Slice(all, func(i, j int) bool { return all[i].start < all[j].start })
	type block struct {
		start, end int64
		known      bool
		relay      bool
	}
	var blocks []block
	for i := 0; i < len(all); {
		b := block{start: all[i].start, end: all[i].end}
		j := i + 1
		for j < len(all) && all[j].start <= b.end {
			if all[j].end > b.end {
				b.end = all[j].end
			}
			j++
		}
		// The call that started last was applied after every call
		// that ended before it started; the candidates for the last
		// one applied are it and the calls still running then.
		lastStart := all[j-1].start
		b.known, b.relay = true, all[j-1].relay
		for _, c := range all[i:j] {
			if c.end >= lastStart && c.relay != b.relay {
				b.known = false
			}
		}
		blocks = append(blocks, b)
		i = j
	}
	var known [2]int // [0]: known B (drop), [1]: known A (relay)
	var bad []string
	for id := range sends {
		for seq, sp := range sends[id] {
			// The last block that began before the send began.
			k := sort.Search(len(blocks), func(k int) bool { return blocks[k].start > sp.start }) - 1
			relay, ok := true, true // before any call: policy A
			if k >= 0 {
				relay, ok = blocks[k].relay, blocks[k].known && blocks[k].end < sp.start
			}
			if k+1 < len(blocks) && blocks[k+1].start <= sp.end {
				ok = false
			}
			if !ok {
				continue
			}
			mu.Lock()
			arr := arrived[id][uint64(seq)]
			mu.Unlock()
			if relay {
				known[1]++
			} else {
				known[0]++
			}
			if arr != relay && len(bad) < 20 {
				bad = append(bad, fmt.Errorf("sender %d datagram %d, sent at %v–%v under policy %s, arrived %v",
					id, seq, time.Duration(sp.start), time.Duration(sp.end), map[bool]string{true: "A (relay all)", false: "B (drop all)"}[relay], arr).Error())
			}
		}
	}
	for _, b := range bad {
		t.Error(b)
	}
	if known[0] == 0 || known[1] == 0 {
		t.Errorf("no datagram of known policy (A %d, B %d): the check proved nothing", known[1], known[0])
	}
	t.Logf("%d SET_DEVICE calls by 2 clients in %v, %d GET_DEVICE reads of whole policies", len(all), churn.Round(time.Millisecond), reads.Load())
	t.Logf("sent %d datagrams from 2 CPUs (%d refused), relayed %d, dropped by policy %d, received %d", sent, ref, s.RelayedPackets, s.DropPolicy, got)
	t.Logf("datagrams of known policy: %d under A all arrived, %d under B none arrived (%d busy blocks)", known[1], known[0], len(blocks))
	Figure(t, "SET_DEVICE calls", uint64(len(all)))
	Figure(t, "GET_DEVICE reads", uint64(reads.Load()))
	Figure(t, "datagrams sent", uint64(sent))
}
