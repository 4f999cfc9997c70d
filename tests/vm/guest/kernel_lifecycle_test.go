//go:build vmtest

package guest

// Stacking and teardown: lower removal under traffic and re-attach, events,
// module unload with devices present, netns deletion, IPv6 relay and the
// not-IP counter.

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

func u64s(v uint64) string { return strconv.FormatUint(v, 10) }

// kNextEvent waits for the next event of the subscription.
func kNextEvent(t *testing.T, s *genl.Subscription) genl.Event {
	t.Helper()
	select {
	case ev, ok := <-s.Events():
		if !ok {
			t.Fatalf("event stream ended: %v", s.Err())
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return genl.Event{}
}

func TestKernelLowerRemovalUnderTraffic(t *testing.T) {
	CheckKmsg(t)
	seed := uint64(7)
	p := genl.Percent(90, &seed)
	tp, c := kTopo(t, &p)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Traffic flows through insane0 while its lower goes away.
	snd := ttSend(t, tp.Borea, []string{tp.MorganaIP + ":9"}, 0, -1, 0)
	time.Sleep(300 * time.Millisecond)

	start := time.Now()
	RunIn(t, tp.Borea, "ip", "link", "del", tp.BoreaDev)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("deleting the lower took %v", d)
	}
	time.Sleep(300 * time.Millisecond)
	snd.Stop()
	if snd.attempted.Load() == snd.refused.Load() {
		t.Fatalf("no traffic was sent (%d attempts refused)", snd.refused.Load())
	}

	ev := kNextEvent(t, sub)
	if ev.Type != genl.EventDetach || ev.Device.Name != "insane0" || ev.Device.Attached() {
		t.Errorf("event after lower removal: %+v", ev)
	}

	d := kDevice(t, c, "insane0")
	if d.Attached() {
		t.Errorf("insane0 still has lower %q (%d)", d.LowerName, d.LowerIndex)
	}
	if d.Policy.Mode != genl.ModePercent || d.Policy.Seed == nil || *d.Policy.Seed != seed {
		t.Errorf("policy not kept: %+v", d.Policy)
	}
	// Detached, it goes dormant (through linkwatch, asynchronously) and
	// counts every packet routed to it as dropped for having no lower.
	WaitFor(t, 5*time.Second, "insane0 to be dormant (NO-CARRIER)", func() bool {
		l, err := TryGetLink(tp.Borea, "insane0")
		return err == nil && l.HasFlag("NO-CARRIER") && l.Operstate == "DORMANT"
	})
	before := kDevice(t, c, "insane0").Stats
	sent, _ := vmnet.Send(tp.Borea, tp.MorganaIP+":9", vmnet.SendOptions{Count: 40})
	after := kDevice(t, c, "insane0").Stats
	// The seeded policy decides first: what it relays has no lower to go to.
	if len(sent.At) != 40 || after.DropNoLower+after.DropPolicy-before.DropNoLower-before.DropPolicy != 40 ||
		after.RelayedPackets != before.RelayedPackets {
		t.Errorf("40 datagrams to a detached device: before %+v, after %+v", before, after)
	}
	if d.Stats.RelayedPackets+d.Stats.Dropped() > uint64(snd.attempted.Load()) {
		t.Errorf("counted %d+%d packets for %d sent", d.Stats.RelayedPackets, d.Stats.Dropped(), snd.attempted.Load())
	}

	// A new lower, attached over generic netlink, carries traffic again.
	AddVeth(t, Veth{
		NS1: tp.Borea, Name1: "veth2", Addr1: tp.BoreaIP + "/24",
		NS2: tp.Morgana, Name2: "veth3", Addr2: "",
	})
	RunIn(t, tp.Morgana, "ip", "addr", "add", "192.0.2.3/24", "dev", "veth3")
	if err := c.ConfigureDevice("insane0", genl.Config{Lower: "veth2", Policy: ptr(genl.Pass())}); err != nil {
		t.Fatal(err)
	}
	ev = kNextEvent(t, sub)
	if ev.Type != genl.EventAttach || ev.Device.LowerName != "veth2" {
		t.Errorf("event after attach: %+v", ev)
	}
	if ev = kNextEvent(t, sub); ev.Type != genl.EventPolicy || ev.Device.Policy.Mode != genl.ModePass {
		t.Errorf("event after the policy change: %+v", ev)
	}
	WaitFor(t, 5*time.Second, "carrier on insane0", func() bool {
		l, err := TryGetLink(tp.Borea, "insane0")
		return err == nil && l.HasFlag("LOWER_UP")
	})
	RunIn(t, tp.Borea, "ip", "route", "replace", "192.0.2.3/32", "dev", "insane0")
	sent, got := UDPFlow(t, tp.Borea, tp.Morgana, "192.0.2.3", vmnet.SendOptions{Count: 200})
	if len(got.Seqs) != len(sent.At) {
		t.Errorf("after re-attach %d of %d datagrams arrived", len(got.Seqs), len(sent.At))
	}
	if d := kDevice(t, c, "insane0"); d.LowerName != "veth2" {
		t.Errorf("after re-attach: lower %q", d.LowerName)
	}
}

func ptr[T any](v T) *T { return &v }

func TestKernelCreateDetachedThenAttach(t *testing.T) {
	CheckKmsg(t)
	tp := NewTopo(t)
	c := kDial(t, tp.Borea)
	if err := c.AddLink("insane0", "", nil); err != nil {
		t.Fatal(err)
	}
	d := kDevice(t, c, "insane0")
	if d.Attached() || d.Policy.Mode != genl.ModePass {
		t.Fatalf("new detached device: %+v", d)
	}
	// IPv6 off before the device is up, so that the kernel sends nothing
	// of its own through it (router solicitations: no-lower once
	// detached) and the counts below are only the test's datagrams.
	Sysctl(t, tp.Borea, "net.ipv6.conf.insane0.disable_ipv6", "1")
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "up")
	WaitFor(t, 5*time.Second, "a detached device to be dormant (NO-CARRIER)", func() bool {
		l, err := TryGetLink(tp.Borea, "insane0")
		return err == nil && l.HasFlag("NO-CARRIER") && l.Operstate == "DORMANT"
	})
	RunIn(t, tp.Borea, "ip", "link", "set", tp.BoreaDev, "mtu", "1400")
	if err := c.ConfigureDevice("insane0", genl.Config{Lower: tp.BoreaDev}); err != nil {
		t.Fatal(err)
	}
	l := GetLink(t, tp.Borea, "insane0")
	if l.MTU != 1400 || l.Link != tp.BoreaDev || !l.HasFlag("LOWER_UP") {
		t.Errorf("after attach: mtu %d link %q flags %v", l.MTU, l.Link, l.Flags)
	}
	// MTU and carrier follow the lower.
	RunIn(t, tp.Borea, "ip", "link", "set", tp.BoreaDev, "mtu", "1300")
	RunIn(t, tp.Borea, "ip", "link", "set", tp.BoreaDev, "down")
	WaitFor(t, 5*time.Second, "insane0 to follow its lower down", func() bool {
		l, err := TryGetLink(tp.Borea, "insane0")
		return err == nil && l.MTU == 1300 && l.HasFlag("NO-CARRIER")
	})
	RunIn(t, tp.Borea, "ip", "link", "set", tp.BoreaDev, "up")
	WaitFor(t, 5*time.Second, "insane0 to follow its lower up", func() bool {
		l, err := TryGetLink(tp.Borea, "insane0")
		return err == nil && l.HasFlag("LOWER_UP")
	})
	if err := c.ConfigureDevice("insane0", genl.Config{Detach: true}); err != nil {
		t.Fatal(err)
	}
	if d := kDevice(t, c, "insane0"); d.Attached() {
		t.Errorf("still attached after detach: %+v", d)
	}
	// Every packet routed to a detached device is counted as such.
	RunIn(t, tp.Borea, "ip", "addr", "add", tp.BoreaIP+"/32", "dev", "insane0")
	RunIn(t, tp.Borea, "ip", "route", "add", tp.MorganaIP+"/32", "dev", "insane0")
	before := kDevice(t, c, "insane0").Stats
	sent, _ := vmnet.Send(tp.Borea, tp.MorganaIP+":9", vmnet.SendOptions{Count: 30})
	after := kDevice(t, c, "insane0").Stats
	if len(sent.At) != 30 || after.DropNoLower-before.DropNoLower != 30 || after.RelayedPackets != before.RelayedPackets {
		t.Errorf("30 datagrams to a detached device: before %+v, after %+v", before, after)
	}
}

func TestKernelModuleUnloadWithDevices(t *testing.T) {
	CheckKmsg(t)
	tp := NewTopo(t)
	ns2 := NewNetns(t, "third")
	cb := kDial(t, tp.Borea)
	c2 := kDial(t, ns2)
	for i := 0; i < 4; i++ {
		if err := cb.AddLink("ins"+strconv.Itoa(i), tp.BoreaDev, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := cb.AddLink("insd", "", nil); err != nil {
		t.Fatal(err)
	}
	if err := c2.AddLink("ins9", "", nil); err != nil {
		t.Fatal(err)
	}
	tp.RouteViaInsane(t, "ins0")
	tp.UDP(t, vmnet.SendOptions{Count: 100})

	UnloadModule(t)
	for _, ns := range []string{tp.Borea, ns2} {
		out := RunIn(t, ns, "ip", "-o", "link", "show", "type", "insane")
		if out != "" {
			t.Errorf("insane devices left in %s after unload:\n%s", ns, out)
		}
	}
	// The lower lost no reference: it can be deleted at once.
	RunIn(t, tp.Borea, "ip", "link", "del", tp.BoreaDev)
	LoadModule(t)
}

func TestKernelNetnsDeletion(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	Run(t, "ip", "netns", "add", "doomed")
	RunIn(t, "doomed", "ip", "link", "add", "d0", "type", "dummy")
	RunIn(t, "doomed", "ip", "link", "add", "link", "d0", "name", "insane0", "type", "insane")
	RunIn(t, "doomed", "ip", "link", "add", "link", "d0", "name", "insane1", "type", "insane")
	RunIn(t, "doomed", "ip", "link", "add", "insane2", "type", "insane")
	// A lower in the initial namespace for a device in the doomed one.
	Run(t, "ip", "link", "add", "d1", "type", "dummy")
	defer TryRun("ip", "link", "del", "d1")
	Run(t, "ip", "link", "add", "link", "d1", "name", "insmv", "type", "insane")
	Run(t, "ip", "link", "set", "insmv", "netns", "doomed")

	start := time.Now()
	Run(t, "ip", "netns", "del", "doomed")
	// Namespace cleanup is asynchronous: the module's use count shows
	// when every device is gone.
	WaitFor(t, 20*time.Second, "the doomed namespace's devices to go", func() bool {
		b, err := os.ReadFile("/sys/module/insane/refcnt")
		return err == nil && string(b) == "0\n"
	})
	t.Logf("namespace and its devices gone in %v", time.Since(start))
	// The lower that stayed behind is free.
	Run(t, "ip", "link", "del", "d1")
}

func TestKernelIPv6Relay(t *testing.T) {
	CheckKmsg(t)
	tp, c := kTopo(t, nil)
	RunIn(t, tp.Borea, "ip", "addr", "add", "2001:db8::1/64", "dev", tp.BoreaDev, "nodad")
	RunIn(t, tp.Morgana, "ip", "addr", "add", "2001:db8::2/64", "dev", tp.MorganaDev, "nodad")
	Sysctl(t, tp.Borea, "net.ipv6.conf.insane0.disable_ipv6", "0")
	RunIn(t, tp.Borea, "ip", "addr", "add", "2001:db8::1/128", "dev", "insane0", "nodad")
	RunIn(t, tp.Borea, "ip", "-6", "route", "add", "2001:db8::2/128", "dev", "insane0")
	before := kDevice(t, c, "insane0").Stats

	sent, got := UDPFlow(t, tp.Borea, tp.Morgana, "2001:db8::2", vmnet.SendOptions{Count: 300})
	if len(got.Seqs) != len(sent.At) {
		t.Errorf("%d of %d IPv6 datagrams arrived", len(got.Seqs), len(sent.At))
	}
	after := kDevice(t, c, "insane0").Stats
	if after.RelayedPackets-before.RelayedPackets < 300 {
		t.Errorf("relayed %d IPv6 packets, sent 300", after.RelayedPackets-before.RelayedPackets)
	}
}

func TestKernelNotIPDropped(t *testing.T) {
	CheckKmsg(t)
	tp, c := kTopo(t, nil)
	l := GetLink(t, tp.Borea, "insane0")
	const n = 25
	proto := uint16(0x88b5) // IEEE local experimental EtherType
	err := vmnet.Do(tp.Borea, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(proto)))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: l.Ifindex}
		for i := 0; i < n; i++ {
			if err := unix.Sendto(fd, []byte("not an IP packet"), 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s := kDevice(t, c, "insane0").Stats
	if s.DropNotIP != n || s.RelayedPackets != 0 {
		t.Errorf("after %d non-IP frames: %+v", n, s)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func TestKernelNoSuchDevice(t *testing.T) {
	LoadModule(t)
	c := kDial(t, "")
	_, err := c.Device("nosuch0")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Device(nosuch0): %v, want os.ErrNotExist", err)
	}
}
