//go:build vmtest

package guest

// Torture: receive-policy switches under bidirectional traffic. Two clients
// on borea's lower, morgana (routed through insane0) and the third host
// (routed through insane1), exchange datagrams with borea in both
// directions while two control clients, one over generic netlink and one
// over rtnetlink, switch the two devices' receive policies on, off and
// between modes thousands of times. Nothing is lost behind the devices
// (rp_filter is off, sinks have room), so every datagram a client sent to
// borea either arrived or was dropped by a receive policy: received +
// rx dropped == sent, exactly, per client; a policy read half-written,
// freed early, a packet taken by the wrong device or counted twice breaks
// that sum, and the kernel runs with panic_on_warn.
//
// INSANE_TORTURE=full makes 10,000 switches; make test makes 1,000.

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
)

func TestTortureRxSwitches(t *testing.T) {
	CheckKmsg(t)
	total := ttSize(1000, 10000)
	pass := genl.Pass()
	tp, c := rxTopo(t, nil, &pass)
	third, thirdIP := rxAddThird(t, tp)
	if err := c.AddLinkRx("insane1", tp.BoreaDev, nil, &pass); err != nil {
		t.Fatal(err)
	}
	Sysctl(t, tp.Borea, "net.ipv6.conf.insane1.disable_ipv6", "1")
	Sysctl(t, tp.Borea, "net.ipv4.conf.insane1.rp_filter", "0")
	RunIn(t, tp.Borea, "ip", "addr", "add", tp.BoreaIP+"/32", "dev", "insane1")
	RunIn(t, tp.Borea, "ip", "link", "set", "insane1", "up")
	RunIn(t, tp.Borea, "ip", "route", "add", thirdIP+"/32", "dev", "insane1")
	devs := []string{"insane0", "insane1"}

	// Sinks on borea, one per client, and on each client for borea.
	inM := ttListen(t, tp.Borea, tp.BoreaIP+":0", nil)
	inT := ttListen(t, tp.Borea, tp.BoreaIP+":0", nil)
	outM := ttListen(t, tp.Morgana, "0.0.0.0:0", nil)
	outT := ttListen(t, third, "0.0.0.0:0", nil)
	port := func(s *ttSink) string { return strconv.Itoa(s.Port()) }
	senders := []*ttSender{
		ttSend(t, tp.Morgana, []string{tp.BoreaIP + ":" + port(inM)}, 1, 0, time.Millisecond),
		ttSend(t, third, []string{tp.BoreaIP + ":" + port(inT)}, 2, 1, time.Millisecond),
		ttSend(t, tp.Borea, []string{tp.MorganaIP + ":" + port(outM), thirdIP + ":" + port(outT)}, 3, -1, time.Millisecond),
	}

	// Two control clients switch the receive policies meanwhile.
	ca := kDial(t, tp.Borea)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	var counts [2][5]int
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 0x5e1ec7))
			for i := w; i < total; i += 2 {
				dev := devs[r.IntN(2)]
				var p *genl.Policy
				kind := r.IntN(5)
				switch kind {
				case 1:
					p = ptrPolicy(genl.Pass())
				case 2:
					p = ptrPolicy(genl.Percent(float64(r.IntN(101)), nil))
				case 3:
					s := r.Uint64()
					p = ptrPolicy(genl.Percent(float64(r.IntN(101)), &s))
				case 4:
					p = ptrPolicy(genl.Time(time.Duration(1+r.IntN(20))*time.Millisecond, time.Duration(r.IntN(20))*time.Millisecond))
				}
				counts[w][kind]++
				var err error
				if w == 0 {
					// Generic netlink; nil turns the receive policy off.
					cfg := genl.Config{RxPolicy: p, RxOff: p == nil}
					err = ca.ConfigureDevice(dev, cfg)
				} else {
					// rtnetlink, as ip link set ... type insane rx ...
					err = c.SetLinkRxPolicy(dev, p)
				}
				if err != nil {
					errs <- fmt.Errorf("switch %d of %s to %v: %w", i, dev, p, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Both off at the end, then the traffic stops and the sums are taken.
	for _, d := range devs {
		if err := c.SetLinkRxPolicy(d, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range senders {
		s.Stop()
	}
	for _, s := range []*ttSink{inM, inT, outM, outT} {
		s.Quiet()
	}

	s0, s1 := kDevice(t, c, "insane0").Stats, kDevice(t, c, "insane1").Stats
	for _, f := range []struct {
		who      string
		snd      *ttSender
		sink     *ttSink
		dropped  uint64
		relayed  uint64
		otherDev genl.Stats
	}{
		{"morgana", senders[0], inM, s0.RxDropped(), s0.RxRelayedPackets, s1},
		{"third", senders[1], inT, s1.RxDropped(), s1.RxRelayedPackets, s0},
	} {
		sent := f.snd.attempted.Load() - f.snd.refused.Load()
		if got := f.sink.Count(); uint64(got)+f.dropped != uint64(sent) {
			t.Errorf("%s: sent %d, borea received %d, its device dropped %d on receive: %d unaccounted",
				f.who, sent, got, f.dropped, sent-got-int64(f.dropped))
		}
		if f.relayed > uint64(f.sink.Count()) {
			t.Errorf("%s: its device passed up %d, borea received %d", f.who, f.relayed, f.sink.Count())
		}
		t.Logf("%s: sent %d, received %d, dropped on receive %d, passed up %d", f.who, sent, f.sink.Count(), f.dropped, f.relayed)
	}
	// Borea's own datagrams, transmitted at pass, all arrived.
	out := senders[2]
	if sent, got := out.attempted.Load()-out.refused.Load(), outM.Count()+outT.Count(); sent != got {
		t.Errorf("borea sent %d, the clients received %d", sent, got)
	}
	if d0, d1 := kDevice(t, c, "insane0"), kDevice(t, c, "insane1"); d0.RxPolicy != nil || d1.RxPolicy != nil {
		t.Errorf("receive policies left on: %v %v", d0.RxPolicy, d1.RxPolicy)
	}
	t.Logf("switch kinds (off, pass, percent, seeded percent, time): genl %v, rtnetlink %v", counts[0], counts[1])
	Figure(t, "rx policy switches", uint64(total))
}
