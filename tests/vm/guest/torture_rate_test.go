//go:build vmtest

package guest

// Torture of rate, duplication and corruption (issue 25,
// INSANE_TORTURE=full): policy churn between rate, duplicate, corrupt,
// delay and plain policies under traffic both ways; then 10,000 datagrams
// queued each way at 100kbit when the device goes down, when its lower is
// removed, when it is deleted, when its namespace is deleted and when the
// module is unloaded: every datagram counted (relayed, or a drop cause:
// flushed, no lower), the socket buffers' skbs given back (the
// skbuff_head_cache slab back near where it was), no kernel report.

import (
	"bufio"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
)

// rtSkbs returns the active objects of the skbuff_head_cache slab: every
// sk_buff the kernel holds.
func rtSkbs(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/slabinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) > 2 && fl[0] == "skbuff_head_cache" {
			n, err := strconv.Atoi(fl[1])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no skbuff_head_cache in /proc/slabinfo")
	return 0
}

// rtCheckSkbs fails unless the kernel's sk_buffs are back within slack
// of base, waiting up to 10 s for RCU and the sockets to give them back.
func rtCheckSkbs(t *testing.T, what string, base, slack int) {
	t.Helper()
	// A debug kernel's KASAN quarantine holds freed objects back from
	// their slab: there, the closing kmemleak scan judges leaks.
	if b, _ := os.ReadFile("/etc/vmtest/debug"); strings.TrimSpace(string(b)) == "true" {
		t.Logf("%s: %d sk_buffs, %d before (debug kernel: not judged, kmemleak is)", what, rtSkbs(t), base)
		return
	}
	var n int
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n = rtSkbs(t); n <= base+slack || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s: %d sk_buffs, %d before", what, n, base)
	if n > base+slack {
		t.Errorf("%s: %d sk_buffs held, %d before the datagrams were queued: %d not given back", what, n, base, n-base)
	}
}

// rtQueue queues n datagrams each way at 100kbit (52 bytes: 4.16 ms each,
// 41.6 s for 10,000) into sinks, and checks that every one is held or
// already relayed. It returns the sinks.
func rtQueue(t *testing.T, tp *Topo, c *kmConn, n int) []*ttSink {
	t.Helper()
	c.setTx("insane0", rtPass(rtRate(100e3))...)
	c.setRx("insane0", rtPass(rtRate(100e3))...)
	c.set("insane0", kmU32(uapi.DeviceAFlags, uapi.DeviceFResetStats))
	var sinks []*ttSink
	for _, w := range rtWays(tp) {
		sink := ttListen(t, w.recvNS, w.dst+":0", nil)
		sinks = append(sinks, sink)
		sent, err := vmnet.Send(w.from, net.JoinHostPort(w.dst, strconv.Itoa(sink.Port())), vmnet.SendOptions{Count: n})
		if err != nil || sent.Errors != 0 {
			t.Fatalf("%s: sending: %v, %d refused (%v)", w.name, err, sent.Errors, sent.FirstError)
		}
	}
	st := c.get("insane0").d.Stats
	for _, w := range rtWays(tp) {
		relayed, drops := rtDir(st, w.rx)
		held := st[uapi.StatsAHeldPackets]
		if w.rx {
			held = st[uapi.StatsARxHeldPackets]
		}
		t.Logf("%s: %d queued, %d relayed, %d dropped", w.name, held, relayed, drops)
		if relayed+drops+held != uint64(n) || drops != 0 || held == 0 {
			t.Errorf("%s: %d sent; held %d relayed %d dropped %d", w.name, n, held, relayed, drops)
		}
	}
	// The slab shows the queued datagrams (most of the 2n: a debug
	// kernel sends slowly enough for some to leave meanwhile): the leak
	// checks after them mean something.
	if q := rtSkbs(t); q < n/2 {
		t.Errorf("%d sk_buffs with %d datagrams queued each way", q, n)
	} else {
		t.Logf("%d sk_buffs with the datagrams queued", q)
	}
	return sinks
}

func TestTortureRate(t *testing.T) {
	if !ttFull() {
		t.Skip("INSANE_TORTURE=full only")
	}
	CheckKmsg(t)
	mark := MarkKmsg(t)
	t.Cleanup(func() { LoadModule(t) })
	pass := kmMode(uapi.ModePass)
	ms := time.Millisecond
	policies := [][]kmA{
		{pass},
		rtPass(rtRate(10e6)),
		rtPass(rtRate(1e6), rtBuffer(5*ms), rtOverhead(38)),
		rtPass(rtRate(100e3), kdLimit(50)),
		rtPass(rtDup(20), rtCorrupt(10)),
		rtPass(kdDelay(5*ms), kdJitter(3*ms), rtRate(5e6), rtDup(5), kmSeed(7)),
		{kmMode(uapi.ModePercent), kmPercent(50), rtCorrupt(5), rtCorruptHeader(), kmSeed(3)},
		{kmMode(uapi.ModeSchedule), kmSteps(
			kmStep(pass, rtRate(2e6), kmDur(30*ms)),
			kmStep(pass, rtDup(10), kdDelay(ms), kmDur(20*ms)),
			kmStep(kmMode(uapi.ModeDrop), rtRate(1e6), kmDur(10*ms)),
			kmStep(kmMode(uapi.ModeBurst), kmPercent(80), kmBurst(3), rtCorrupt(50), kmDur(10*ms)))},
		kmJoin(kmTime(20*ms, 10*ms), rtRate(3e6), rtDup(1)),
		{kmMode(uapi.ModeDrop)},
		rtPass(kmU32(uapi.PolicyADuplicate, uapi.PercentMax), kmU32(uapi.PolicyACorrupt, uapi.PercentMax)),
	}

	t.Run("churn", func(t *testing.T) {
		tp, c := rtTopo(t)
		// The floods stop on every way out of the test (see
		// TestTortureDelay).
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var once sync.Once
		stopFloods := func() {
			once.Do(func() { close(stop) })
			wg.Wait()
		}
		t.Cleanup(stopFloods)
		for _, w := range rtWays(tp) {
			sink := ttListen(t, w.recvNS, w.dst+":0", nil)
			dst := net.JoinHostPort(w.dst, strconv.Itoa(sink.Port()))
			wg.Add(1)
			go func(from string) {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, _ = vmnet.Send(from, dst, vmnet.SendOptions{Count: 500, Size: 200, Interval: 100 * time.Microsecond})
				}
			}(w.from)
		}
		i := ttChurn(t, c, tp, policies, 3, 20*time.Second)
		stopFloods()
		// What the churn left departs or is flushed: every datagram
		// handled is counted once, with the copies.
		RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "down")
		st := c.get("insane0").d.Stats
		for _, rx := range []bool{false, true} {
			relayed, drops := rtDir(st, rx)
			dup, cor := st[uapi.StatsADuplicated], st[uapi.StatsACorrupted]
			if rx {
				dup, cor = st[uapi.StatsARxDuplicated], st[uapi.StatsARxCorrupted]
			}
			t.Logf("rx %v: relayed %d, dropped %d, duplicated %d, corrupted %d", rx, relayed, drops, dup, cor)
			if dup == 0 || cor == 0 || relayed == 0 {
				t.Errorf("rx %v: the churn relayed %d, duplicated %d, corrupted %d", rx, relayed, dup, cor)
			}
		}
		if st[uapi.StatsAHeldPackets]+st[uapi.StatsARxHeldPackets] != 0 {
			t.Errorf("held after down: %v", st)
		}
		t.Logf("%d policy changes each way under traffic; counters %s", i, c.get("insane0").d.ttCounters())
		Figure(t, "rate churn policy changes", uint64(i))
	})

	const n = 10000
	// Down: every datagram counted, relayed or flushed.
	t.Run("down", func(t *testing.T) {
		tp, c := rtTopo(t)
		base := rtSkbs(t)
		rtQueue(t, tp, c, n)
		RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "down")
		st := c.get("insane0").d.Stats
		for _, w := range rtWays(tp) {
			relayed, drops := rtDir(st, w.rx)
			flushed := st[uapi.StatsADropFlushed]
			if w.rx {
				flushed = st[uapi.StatsARxDropFlushed]
			}
			if relayed+drops != n || flushed != drops || flushed == 0 {
				t.Errorf("%s: after down: relayed %d, flushed %d, drops %d, of %d", w.name, relayed, flushed, drops, n)
			}
		}
		if st[uapi.StatsAHeldPackets]+st[uapi.StatsARxHeldPackets]+st[uapi.StatsAHeldBytes]+st[uapi.StatsARxHeldBytes] != 0 {
			t.Errorf("held after down: %v", st)
		}
		rtCheckSkbs(t, "after down", base, 2000)
		Figure(t, "rate datagrams flushed", st[uapi.StatsADropFlushed]+st[uapi.StatsARxDropFlushed])
	})
	// The lower removed: the transmit side's held datagrams stay held,
	// and depart into NO_LOWER; the received ones are insane0's. Down
	// flushes what is left: every datagram counted.
	t.Run("lower", func(t *testing.T) {
		tp, c := rtTopo(t)
		base := rtSkbs(t)
		rtQueue(t, tp, c, n)
		RunIn(t, tp.Borea, "ip", "link", "del", tp.BoreaDev)
		time.Sleep(200 * time.Millisecond)
		st := c.get("insane0").d.Stats
		t.Logf("lower gone: held %d and %d, no-lower %d", st[uapi.StatsAHeldPackets], st[uapi.StatsARxHeldPackets], st[uapi.StatsADropNoLower])
		if st[uapi.StatsAHeldPackets] == 0 || st[uapi.StatsARxHeldPackets] == 0 || st[uapi.StatsADropNoLower] == 0 {
			t.Errorf("lower gone: counters %v", st)
		}
		RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "down")
		st = c.get("insane0").d.Stats
		for _, rx := range []bool{false, true} {
			relayed, drops := rtDir(st, rx)
			if relayed+drops != n {
				t.Errorf("rx %v: %d relayed, %d dropped, of %d; counters %s", rx, relayed, drops, n, c.get("insane0").d.ttCounters())
			}
		}
		if st[uapi.StatsAHeldPackets]+st[uapi.StatsARxHeldPackets] != 0 {
			t.Errorf("held after down: %v", st)
		}
		rtCheckSkbs(t, "lower gone, then down", base, 2000)
	})
	// Deleted with everything queued: the device, its namespace, the
	// module. The module unloads, the sk_buffs come back.
	for _, how := range []string{"delete", "netns", "unload"} {
		t.Run(how, func(t *testing.T) {
			tp, c := rtTopo(t)
			base := rtSkbs(t)
			sinks := rtQueue(t, tp, c, n)
			switch how {
			case "delete":
				RunIn(t, tp.Borea, "ip", "link", "del", "insane0")
			case "netns":
				// Nothing of the test's may hold borea: its sockets
				// there go first, so that the namespace is destroyed
				// with insane0 in it.
				sinks[1].Close()
				c.n.Close()
				c.n.fd = -1
				Run(t, "ip", "netns", "del", tp.Borea)
				Run(t, "ip", "netns", "add", tp.Borea)
			}
			UnloadModule(t)
			if ModuleLoaded() {
				t.Fatalf("%s: the module stays loaded with datagrams queued", how)
			}
			rtCheckSkbs(t, how, base, 2000)
			LoadModule(t)
		})
	}
	ttNoWaiting(t, mark)
}
