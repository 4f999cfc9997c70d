//go:build vmtest

package guest

// Torture: teardown races. Module unload with many devices and traffic,
// netns deletion with devices inside and traffic forwarded through them,
// moving an insane device or its lower to another netns under traffic, and
// deleting lowers while several goroutines dump.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

// ttNoWaiting fails if the kernel logged that it waits for a device's
// references since the mark.
func ttNoWaiting(t *testing.T, m KmsgMark) {
	t.Helper()
	for _, l := range m.Since(t) {
		if strings.Contains(l, "waiting for") {
			t.Errorf("kernel log: %s", l)
		}
	}
}

// ttNoInsane fails if namespace ns has an insane device.
func ttNoInsane(t *testing.T, ns string) {
	t.Helper()
	if out := RunIn(t, ns, "ip", "-o", "link", "show", "type", "insane"); out != "" {
		t.Errorf("insane devices left in namespace %q:\n%s", ns, out)
	}
}

func TestTortureModuleUnload(t *testing.T) {
	CheckKmsg(t)
	mark := MarkKmsg(t)
	const devices, routed = 50, 10
	tp := NewTopo(t)
	ns2 := NewNetns(t, "ttthird")
	c := kDial(t, tp.Borea)
	c2 := kDial(t, ns2)
	t.Cleanup(func() { LoadModule(t) })
	RunIn(t, ns2, "ip", "link", "add", "td0", "type", "dummy")
	RunIn(t, ns2, "ip", "link", "set", "td0", "up")
	for i := 0; i < devices; i++ {
		cl, lower := c, tp.BoreaDev
		if i%5 == 4 {
			cl, lower = c2, "td0"
		}
		seed := uint64(i)
		p := genl.Percent(float64(50+i), &seed)
		if err := cl.AddLink("ttu"+strconv.Itoa(i), lower, &p); err != nil {
			t.Fatal(err)
		}
	}
	// Traffic through the first routed devices, to addresses of morgana.
	var script strings.Builder
	var dsts []string
	sink := ttListen(t, tp.Morgana, "0.0.0.0:0", nil)
	for i := 0; len(dsts) < routed; i++ {
		if i%5 == 4 {
			continue // in ttthird
		}
		dev, ip := "ttu"+strconv.Itoa(i), fmt.Sprintf("198.51.100.%d", 10+i)
		fmt.Fprintf(&script, "ip netns exec borea sysctl -qw net.ipv6.conf.%s.disable_ipv6=1\n", dev)
		fmt.Fprintf(&script, "ip -n borea link set %s up\nip -n borea route add %s/32 dev %s src 192.0.2.1\n", dev, ip, dev)
		fmt.Fprintf(&script, "ip -n morgana addr add %s/32 dev veth1\n", ip)
		dsts = append(dsts, ip+":"+strconv.Itoa(sink.Port()))
	}
	Sh(t, "set -e\n"+script.String())
	snd := ttSend(t, tp.Borea, dsts, 1, 0, 0)
	snd2 := ttSend(t, tp.Borea, dsts, 2, 1, 0)
	WaitFor(t, 30*time.Second, "traffic through the insane devices", func() bool { return sink.Count() > 1000 })
	// A subscriber is in the events group when the family goes.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := c.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}

	// modprobe -r fails with EBUSY while a dump holds the module; retry,
	// within a bound.
	start := time.Now()
	var tries int
	for {
		tries++
		_, err := TryRun("modprobe", "-r", "insane")
		if err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("modprobe -r insane still failing after %v: %v", time.Since(start), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	sent := snd.attempted.Load() + snd2.attempted.Load()
	snd.Stop()
	snd2.Stop()
	if ModuleLoaded() {
		t.Error("/sys/module/insane still exists after modprobe -r")
	}
	for _, ns := range []string{"", tp.Borea, tp.Morgana, ns2} {
		ttNoInsane(t, ns)
	}
	// The lowers lost no reference: they go at once.
	ttRunBounded(t, 30*time.Second, "ip", "-n", tp.Borea, "link", "del", tp.BoreaDev)
	ttRunBounded(t, 30*time.Second, "ip", "-n", ns2, "link", "del", "td0")
	ttNoWaiting(t, mark)
	t.Logf("modprobe -r with %d devices and 2 senders: %v, %d attempts; %d datagrams sent, %d received", devices, took.Round(time.Millisecond), tries, sent, sink.Count())
	Figure(t, "devices at unload", uint64(devices))
}

func TestTortureNetnsDeletion(t *testing.T) {
	CheckKmsg(t)
	mark := MarkKmsg(t)
	LoadModule(t)
	const devices = 20
	src, dst := NewNetns(t, "ttsrc"), NewNetns(t, "ttdst")
	const doomed = "ttdoom"
	Run(t, "ip", "netns", "add", doomed)
	t.Cleanup(func() { TryRun("ip", "netns", "del", doomed) })
	var sc strings.Builder
	sc.WriteString(`set -e
ip -n ttdoom link set lo up
ip netns exec ttdoom sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
ip netns exec ttsrc sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
ip -n ttsrc link add a0 type veth peer name a1 netns ttdoom
ip -n ttdoom link add b0 type veth peer name b1 netns ttdst
ip -n ttsrc addr add 10.10.1.1/24 dev a0
ip -n ttdoom addr add 10.10.1.2/24 dev a1
ip -n ttdoom addr add 10.10.2.1/24 dev b0
ip -n ttdst addr add 10.10.2.2/24 dev b1
ip -n ttsrc link set a0 up
ip -n ttdoom link set a1 up
ip -n ttdoom link set b0 up
ip -n ttdst link set b1 up
ip -n ttdst route add local 10.10.3.0/24 dev lo
ip -n ttdst route add local 10.10.4.0/24 dev lo
ip -n ttsrc route add 10.10.3.0/24 via 10.10.1.2
`)
	for i := 0; i < devices; i++ {
		fmt.Fprintf(&sc, "ip -n ttdoom link add link b0 name td%d type insane\n", i)
		fmt.Fprintf(&sc, "ip netns exec ttdoom sysctl -qw net.ipv6.conf.td%d.disable_ipv6=1\n", i)
		fmt.Fprintf(&sc, "ip -n ttdoom link set td%d up\nip -n ttdoom route add 10.10.3.%d/32 dev td%d\n", i, i+1, i)
	}
	// An insane device of ttsrc whose lower is in the doomed namespace.
	sc.WriteString(`ip -n ttdoom link add link b0 name xins type insane
ip -n ttdoom link set xins netns ttsrc
ip netns exec ttsrc sysctl -qw net.ipv6.conf.xins.disable_ipv6=1
ip -n ttsrc link set xins up
ip -n ttsrc route add 10.10.4.0/24 dev xins src 10.10.1.1
`)
	Sh(t, sc.String())

	sink := ttListen(t, dst, "0.0.0.0:0", nil)
	port := strconv.Itoa(sink.Port())
	var dsts []string
	for i := 0; i < devices; i++ {
		dsts = append(dsts, fmt.Sprintf("10.10.3.%d:%s", i+1, port))
	}
	fwd := ttSend(t, src, dsts, 1, 0, 0)
	x := ttSend(t, src, []string{"10.10.4.1:" + port}, 2, 1, 100*time.Microsecond)
	fam := ttFamily(t, src)
	n, err := ttNlOpen(src, unix.NETLINK_GENERIC)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	WaitFor(t, 30*time.Second, "traffic forwarded and relayed", func() bool {
		d, err := ttGet(n, fam, "xins")
		return err == nil && d.Stats[uapi.StatsARelayedPackets] > 100 && sink.Count() > 2000
	})

	start := time.Now()
	ttRunBounded(t, 30*time.Second, "ip", "netns", "del", doomed)
	// The namespace dies in a workqueue; its veth peers go with it.
	WaitFor(t, 60*time.Second, "the doomed namespace's devices to go", func() bool {
		_, e1 := TryGetLink(src, "a0")
		_, e2 := TryGetLink(dst, "b1")
		return e1 != nil && e2 != nil
	})
	gone := time.Since(start)
	fwd.Stop()
	// xins lost its lower with the namespace while traffic raced with the
	// deletion, so its counters are bounded, not exact.
	WaitFor(t, 30*time.Second, "xins to be detached", func() bool {
		d, err := ttGet(n, fam, "xins")
		return err == nil && d.LowerName == ""
	})
	x.Stop()
	d, err := ttGet(n, fam, "xins")
	if err != nil {
		t.Fatal(err)
	}
	if sum, sent := d.ttSum(), uint64(x.attempted.Load()); sum > sent {
		t.Errorf("xins: relayed + dropped = %d, only %d datagrams were sent", sum, sent)
	}
	ttNoWaiting(t, mark)
	t.Logf("netns with %d insane devices forwarding traffic gone in %v; %d datagrams received", devices, gone.Round(time.Millisecond), sink.Count())
	Figure(t, "devices in the deleted netns", uint64(devices))
	t.Logf("xins (lower in the doomed netns): sent %d; %s", x.attempted.Load(), d.ttCounters())
}

func TestTortureMoveDevice(t *testing.T) {
	CheckKmsg(t)
	tp, _ := kTopo(t, nil)
	mv := NewNetns(t, "ttmove")
	famB := ttFamily(t, tp.Borea)
	nb, err := ttNlOpen(tp.Borea, unix.NETLINK_GENERIC)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	vethIdx := uint32(GetLink(t, tp.Borea, tp.BoreaDev).Ifindex)

	// Traffic from borea while insane0 leaves it.
	sink := ttListen(t, tp.Morgana, "0.0.0.0:0", nil)
	dst := tp.MorganaIP + ":" + strconv.Itoa(sink.Port())
	snd := ttSend(t, tp.Borea, []string{dst}, 1, -1, 100*time.Microsecond)
	WaitFor(t, 30*time.Second, "traffic through insane0", func() bool { return sink.Count() > 500 })
	before, err := ttGet(nb, famB, "insane0")
	if err != nil {
		t.Fatal(err)
	}
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "netns", mv)
	snd.Stop()
	sentBefore := uint64(snd.attempted.Load() - snd.refused.Load())
	if _, err := ttGet(nb, famB, "insane0"); !errors.Is(err, unix.ENODEV) {
		t.Errorf("GET insane0 in borea after the move: %v, want ENODEV", err)
	}

	famM := ttFamily(t, mv)
	nm, err := ttNlOpen(mv, unix.NETLINK_GENERIC)
	if err != nil {
		t.Fatal(err)
	}
	defer nm.Close()
	moved, err := ttGet(nm, famM, "insane0")
	if err != nil {
		t.Fatal(err)
	}
	// The lower stays in borea: its index there.
	if moved.LowerName != tp.BoreaDev || moved.LowerIndex != vethIdx {
		t.Errorf("after the move: lower %q (%d), want %q (%d)", moved.LowerName, moved.LowerIndex, tp.BoreaDev, vethIdx)
	}
	// Counters moved with the device: everything sent from borea before
	// the move, no more.
	if sum := moved.ttSum(); sum < before.ttSum() || sum > sentBefore {
		t.Errorf("after the move relayed + dropped = %d; %d before it, %d sent", sum, before.ttSum(), sentBefore)
	}

	// insane0 relays from its new netns through the lower in the old one.
	Sysctl(t, mv, "net.ipv4.conf.all.rp_filter", "0")
	tp2 := &Topo{Borea: mv, Morgana: tp.Morgana, BoreaIP: tp.BoreaIP, MorganaIP: tp.MorganaIP}
	tp2.RouteViaInsane(t, "insane0")
	const n = 2000
	sent, got := UDPFlow(t, mv, tp.Morgana, tp.MorganaIP, vmnet.SendOptions{Count: n})
	after, err := ttGet(nm, famM, "insane0")
	if err != nil {
		t.Fatal(err)
	}
	relayed := after.Stats[uapi.StatsARelayedPackets] - moved.Stats[uapi.StatsARelayedPackets]
	if sent.Errors != 0 || len(got.Seqs) != n || relayed != n || after.ttSum()-moved.ttSum() != n {
		t.Errorf("from the new netns: sent %d (%d refused), received %d, relayed %d; %s", n, sent.Errors, len(got.Seqs), relayed, after.ttCounters())
	}

	// A lower is looked up in the device's own netns, where veth0 is not.
	c := kDial(t, mv)
	if err := c.ConfigureDevice("insane0", genl.Config{Lower: tp.BoreaDev}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("attaching to borea's %s from %s: %v, want not found", tp.BoreaDev, mv, err)
	}
	// Policy changes apply in the new netns.
	seed := uint64(3)
	if err := c.SetPolicy("insane0", genl.Percent(0, &seed)); err != nil {
		t.Fatal(err)
	}
	_, got = UDPFlow(t, mv, tp.Morgana, tp.MorganaIP, vmnet.SendOptions{Count: 200})
	if len(got.Seqs) != 0 {
		t.Errorf("%d datagrams arrived at percent 0", len(got.Seqs))
	}

	// Deleting the lower in borea detaches the device in ttmove, under
	// traffic from ttmove.
	if err := c.SetPolicy("insane0", genl.Pass()); err != nil {
		t.Fatal(err)
	}
	snd = ttSend(t, mv, []string{dst}, 2, -1, 100*time.Microsecond)
	time.Sleep(200 * time.Millisecond)
	ttRunBounded(t, 30*time.Second, "ip", "-n", tp.Borea, "link", "del", tp.BoreaDev)
	time.Sleep(200 * time.Millisecond)
	snd.Stop()
	last, err := ttGet(nm, famM, "insane0")
	if err != nil {
		t.Fatal(err)
	}
	if last.LowerName != "" {
		t.Errorf("still attached to %q after its deletion", last.LowerName)
	}
	// Sends race with the detach: a bound, not an equality.
	if sum, max := last.ttSum()-after.ttSum(), uint64(200+snd.attempted.Load()); sum < 200 || sum > max {
		t.Errorf("relayed + dropped grew by %d: 200 dropped by policy, at most %d datagrams sent", sum, max)
	}
	t.Logf("moved under traffic (%d sent before); %d relayed from the new netns; at the end %s", sentBefore, n, last.ttCounters())
}

func TestTortureMoveLower(t *testing.T) {
	CheckKmsg(t)
	tp, _ := kTopo(t, nil)
	const lowNS = "ttlow"
	Run(t, "ip", "netns", "add", lowNS)
	t.Cleanup(func() { TryRun("ip", "netns", "del", lowNS) })
	fam := ttFamily(t, tp.Borea)
	n, err := ttNlOpen(tp.Borea, unix.NETLINK_GENERIC)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	get := func() *ttDev {
		t.Helper()
		d, err := ttGet(n, fam, "insane0")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	flow := func(count int) int {
		t.Helper()
		_, got := tp.UDP(t, vmnet.SendOptions{Count: count})
		return len(got.Seqs)
	}
	if got := flow(300); got != 300 {
		t.Fatalf("before the move %d of 300 arrived", got)
	}

	// The lower moves away under traffic: the device keeps it.
	sink := ttListen(t, tp.Morgana, "0.0.0.0:0", nil)
	snd := ttSend(t, tp.Borea, []string{tp.MorganaIP + ":" + strconv.Itoa(sink.Port())}, 1, -1, 100*time.Microsecond)
	time.Sleep(200 * time.Millisecond)
	RunIn(t, tp.Borea, "ip", "link", "set", tp.BoreaDev, "netns", lowNS)
	time.Sleep(200 * time.Millisecond)
	snd.Stop()
	bound := 300 + uint64(snd.attempted.Load())
	low := GetLink(t, lowNS, tp.BoreaDev)
	d := get()
	if d.LowerName != tp.BoreaDev || d.LowerIndex != uint32(low.Ifindex) {
		t.Errorf("after moving the lower: lower %q (%d), want %q (%d in %s)", d.LowerName, d.LowerIndex, tp.BoreaDev, low.Ifindex, lowNS)
	}
	// The move takes the lower down, and insane0's carrier with it: the
	// core then drops what is routed to insane0 before insane sees it.
	WaitFor(t, 10*time.Second, "insane0 to follow its lower down", func() bool {
		l, err := TryGetLink(tp.Borea, "insane0")
		return err == nil && l.HasFlag("NO-CARRIER")
	})
	got := flow(300)
	bound += 300
	d = get()
	if got != 0 || d.ttSum() > bound {
		t.Errorf("lower down in %s: %d of 300 arrived; relayed + dropped = %d of at most %d sent", lowNS, got, d.ttSum(), bound)
	}
	t.Logf("lower down in %s: %d of 300 arrived; %s", lowNS, got, d.ttCounters())

	// Up with borea's address in its new netns, it relays there.
	RunIn(t, lowNS, "ip", "addr", "add", tp.BoreaIP+"/24", "dev", tp.BoreaDev)
	RunIn(t, lowNS, "ip", "link", "set", tp.BoreaDev, "up")
	WaitFor(t, 10*time.Second, "insane0 to follow its lower up", func() bool {
		l, err := TryGetLink(tp.Borea, "insane0")
		return err == nil && l.HasFlag("LOWER_UP")
	})
	d0 := get()
	if got := flow(500); got != 500 {
		t.Errorf("with the lower up in %s, %d of 500 arrived", lowNS, got)
	}
	d = get()
	if rel := d.Stats[uapi.StatsARelayedPackets] - d0.Stats[uapi.StatsARelayedPackets]; rel != 500 || d.ttSum()-d0.ttSum() != 500 {
		t.Errorf("500 sent with the lower up in %s: relayed %d; %s", lowNS, rel, d.ttCounters())
	}
	bound += 500

	// Deleting the lower's netns deletes the lower and detaches insane0.
	ttRunBounded(t, 30*time.Second, "ip", "netns", "del", lowNS)
	WaitFor(t, 60*time.Second, "insane0 to be detached", func() bool { return get().LowerName == "" })
	// morgana's end of the pair went with the lower: nobody listens now.
	if _, err := vmnet.Send(tp.Borea, tp.MorganaIP+":9", vmnet.SendOptions{Count: 100}); err != nil {
		t.Fatal(err)
	}
	bound += 100
	d = get()
	if d.ttSum() > bound {
		t.Errorf("after the lower's netns went: %s; at most %d sent", d.ttCounters(), bound)
	}
	t.Logf("at the end: %s", d.ttCounters())
}

func TestTortureDumpWhileDeleting(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	const lowers, perLower, dumpers = 8, 12, 4
	rounds := ttSize(10, 100)
	ns := NewNetns(t, "ttdump")
	c := kDial(t, ns)
	want := map[string]bool{}
	var sc strings.Builder
	sc.WriteString("set -e\n")
	for l := 0; l < lowers; l++ {
		fmt.Fprintf(&sc, "ip -n ttdump link add lw%d type dummy\nip -n ttdump link set lw%d up\n", l, l)
	}
	Sh(t, sc.String())
	for l := 0; l < lowers; l++ {
		for i := 0; i < perLower; i++ {
			name := fmt.Sprintf("dv%d_%d", l, i)
			seed := uint64(l*perLower + i)
			p := genl.Percent(50, &seed)
			if err := c.AddLink(name, "lw"+strconv.Itoa(l), &p); err != nil {
				t.Fatal(err)
			}
			want[name] = true
		}
	}
	fam := ttFamily(t, ns)

	var dumps, interrupted, messages atomic.Int64
	stop := make(chan struct{})
	errs := make(chan error, dumpers)
	var wg sync.WaitGroup
	for i := 0; i < dumpers; i++ {
		nl, err := ttNlOpen(ns, unix.NETLINK_GENERIC)
		if err != nil {
			t.Fatal(err)
		}
		defer nl.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				devs, intr, err := ttDump(nl, fam)
				if err != nil {
					errs <- err
					return
				}
				dumps.Add(1)
				messages.Add(int64(len(devs)))
				if intr {
					interrupted.Add(1)
					continue
				}
				seen := map[string]bool{}
				for _, d := range devs {
					if !want[d.Name] || seen[d.Name] {
						errs <- fmt.Errorf("a dump listed %q unexpectedly or twice", d.Name)
						return
					}
					seen[d.Name] = true
				}
				if len(seen) != len(want) {
					errs <- fmt.Errorf("a complete dump listed %d of %d devices", len(seen), len(want))
					return
				}
			}
		}()
	}

	start := time.Now()
	for r := 0; r < rounds; r++ {
		l := r % lowers
		lw := "lw" + strconv.Itoa(l)
		ttRunBounded(t, 30*time.Second, "bash", "-c", fmt.Sprintf("set -e; ip -n ttdump link del %s; ip -n ttdump link add %s type dummy; ip -n ttdump link set %s up", lw, lw, lw))
		for i := 0; i < perLower; i++ {
			if err := c.ConfigureDevice(fmt.Sprintf("dv%d_%d", l, i), genl.Config{Lower: lw}); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	devs, err := c.Devices()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if !d.Attached() {
			t.Errorf("%s is detached at the end", d.Name)
		}
	}
	t.Logf("%d lower deletions and re-creations (%d re-attaches) in %v while %d goroutines did %d dumps of %d devices (%d messages, %d interrupted)",
		rounds, rounds*perLower, time.Since(start).Round(time.Millisecond), dumpers, dumps.Load(), len(want), messages.Load(), interrupted.Load())
	Figure(t, "lower removals", uint64(rounds))
	Figure(t, "dumps", uint64(dumps.Load()))
}
