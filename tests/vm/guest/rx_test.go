//go:build vmtest

package guest

// The receive policy (issue 15), with real traffic in the article's
// topology: morgana's datagrams to borea come in through insane0, where the
// receive policy decides them; other hosts on the same lower are untouched;
// strict reverse path filtering holds; a lower whose rx_handler is held
// refuses; lifecycle with the receive hook installed.

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

// rxTopo is kTopo with a receive policy (nil: off) on insane0.
func rxTopo(t *testing.T, tx, rx *genl.Policy) (*Topo, *genl.Client) {
	t.Helper()
	Sysctl(t, "", "net.core.rmem_max", "16777216")
	tp := NewTopo(t)
	c := kDial(t, tp.Borea)
	if err := c.AddLinkRx("insane0", tp.BoreaDev, tx, rx); err != nil {
		t.Fatalf("AddLinkRx: %v", err)
	}
	tp.RouteViaInsane(t, "insane0")
	return tp, c
}

// fromMorgana sends n numbered datagrams from morgana to borea.
func (tp *Topo) fromMorgana(t *testing.T, opt vmnet.SendOptions) (vmnet.Sent, vmnet.Received) {
	t.Helper()
	sent, got := UDPFlow(t, tp.Morgana, tp.Borea, tp.BoreaIP, opt)
	if sent.Errors != 0 {
		t.Fatalf("%d sends from morgana refused, first: %v", sent.Errors, sent.FirstError)
	}
	return sent, got
}

// rxAddThird adds host "third" (192.0.2.3) on morgana's side of the wire,
// a macvlan on morgana's veth: its packets reach borea's veth0 too.
func rxAddThird(t *testing.T, tp *Topo) (ns, ip string) {
	t.Helper()
	ns, ip = "third", "192.0.2.3"
	NewNetns(t, ns)
	RunIn(t, tp.Morgana, "ip", "link", "add", "mv0", "link", tp.MorganaDev, "type", "macvlan", "mode", "bridge")
	RunIn(t, tp.Morgana, "ip", "link", "set", "mv0", "netns", ns)
	RunIn(t, ns, "ip", "addr", "add", ip+"/24", "dev", "mv0")
	RunIn(t, ns, "ip", "link", "set", "mv0", "up")
	RunIn(t, ns, "ip", "link", "set", "lo", "up")
	// Borea's address resolved before any burst: datagrams sent while
	// ARP resolves wait in the neighbour's queue, which drops the oldest
	// beyond unres_qlen_bytes (TestRxThirdHostUntouched once saw 1988 of
	// 2000 arrive, none of them taken by insane0).
	mac := strings.TrimSpace(RunIn(t, tp.Borea, "cat", "/sys/class/net/"+tp.BoreaDev+"/address"))
	RunIn(t, ns, "ip", "neigh", "replace", tp.BoreaIP, "lladdr", mac, "dev", "mv0", "nud", "permanent")
	return ns, ip
}

func TestRxPercentBinomial(t *testing.T) {
	CheckKmsg(t)
	const n = 10000
	rx := genl.Percent(80, nil)
	tp, c := rxTopo(t, nil, &rx)

	_, got := tp.fromMorgana(t, vmnet.SendOptions{Count: n})
	s := kDevice(t, c, "insane0").Stats
	kWithin(t, "morgana's datagrams arrived at receive percent 80", len(got.Seqs), n, 0.8, 4)
	Figure(t, "rx datagrams", n)
	if s.RxRelayedPackets+s.RxDropPolicy != n || s.RxDropped() != s.RxDropPolicy {
		t.Errorf("receive counters do not add up: %+v for %d sent", s, n)
	}
	if uint64(len(got.Seqs)) != s.RxRelayedPackets {
		t.Errorf("borea received %d datagrams, insane0 passed up %d", len(got.Seqs), s.RxRelayedPackets)
	}

	// The standard RX counters and ethtool -S count the same.
	l := GetLink(t, tp.Borea, "insane0")
	if l.Stats64.RX.Packets != s.RxRelayedPackets || l.Stats64.RX.Dropped != s.RxDropped() {
		t.Errorf("ip -s link: rx packets %d dropped %d; insane counts %d and %d",
			l.Stats64.RX.Packets, l.Stats64.RX.Dropped, s.RxRelayedPackets, s.RxDropped())
	}
	eth := RunIn(t, tp.Borea, "ethtool", "-S", "insane0")
	for _, want := range []string{"rx_relayed_packets: " + u64s(s.RxRelayedPackets), "rx_drop_policy: " + u64s(s.RxDropPolicy)} {
		if !strings.Contains(eth, want) {
			t.Errorf("ethtool -S lacks %q:\n%s", want, eth)
		}
	}

	// The transmit direction is untouched by the receive policy.
	const m = 2000
	sent, out := tp.UDP(t, vmnet.SendOptions{Count: m})
	after := kDevice(t, c, "insane0").Stats
	if sent.Errors != 0 || len(out.Seqs) != m || after.RelayedPackets != m || after.Dropped() != 0 {
		t.Errorf("transmit at pass under receive percent 80: %d of %d arrived, relayed %d, dropped %d",
			len(out.Seqs), m, after.RelayedPackets, after.Dropped())
	}
	t.Logf("rx: %d of %d passed up; tx: %d of %d relayed", s.RxRelayedPackets, n, after.RelayedPackets, m)
}

// rxPing sends n ICMP echo requests from ns to dst, one every interval,
// and returns how many distinct ones were answered, waiting until no reply
// has come for 500 ms after the last request.
func rxPing(t *testing.T, ns, dst string, n int, interval time.Duration) int {
	t.Helper()
	var conn net.PacketConn
	if err := vmnet.Do(ns, func() error {
		var err error
		conn, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		t.Fatalf("ICMP socket in %s: %v", ns, err)
	}
	defer conn.Close()
	to := &net.IPAddr{IP: net.ParseIP(dst)}
	id := uint16(os.Getpid())
	answered := make(chan int, 1)
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	sending := make(chan struct{})
	go func() {
		seen := map[uint16]bool{}
		buf := make([]byte, 1500)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			m, _, err := conn.ReadFrom(buf)
			if err != nil {
				select {
				case <-sending:
					if time.Since(time.Unix(0, last.Load())) > 500*time.Millisecond {
						answered <- len(seen)
						return
					}
				default:
				}
				continue
			}
			// Go strips the IPv4 header of a raw ip4 socket's packets.
			icmp := buf[:m]
			if len(icmp) >= 8 && icmp[0] == 0 && binary.BigEndian.Uint16(icmp[4:]) == id {
				seen[binary.BigEndian.Uint16(icmp[6:])] = true
				last.Store(time.Now().UnixNano())
			}
		}
	}()
	for seq := 0; seq < n; seq++ {
		req := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq), 'i', 'n', 's', 'a', 'n', 'e', 'r', 'x'}
		binary.BigEndian.PutUint16(req[2:], icmpChecksum(req))
		// A transmit drop may be reported; the request is lost either way.
		_, _ = conn.WriteTo(req, to)
		time.Sleep(interval)
	}
	last.Store(time.Now().UnixNano())
	close(sending)
	return <-answered
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func TestRxPingBothDirections(t *testing.T) {
	CheckKmsg(t)
	const n = 2000
	tx, rx := genl.Percent(90, nil), genl.Percent(90, nil)
	tp, c := rxTopo(t, &tx, &rx)
	ok := rxPing(t, tp.Borea, tp.MorganaIP, n, time.Millisecond)
	Figure(t, "rx pings", n)
	// A request and its reply each pass with probability 0.9.
	kWithin(t, "pings answered through transmit 90 and receive 90", ok, n, 0.81, 4)
	s := kDevice(t, c, "insane0").Stats
	if s.RxRelayedPackets != uint64(ok) || s.RelayedPackets != s.RxRelayedPackets+s.RxDropPolicy {
		t.Errorf("counters %+v: %d answered; every relayed request should have been answered and decided on receive", s, ok)
	}
}

func TestRxSeedReplay(t *testing.T) {
	CheckKmsg(t)
	const n = 3000
	txSeed, rxSeed := uint64(7), uint64(0x5eed)
	tx, rx := genl.Percent(50, &txSeed), genl.Percent(37.5, &rxSeed)
	tp, c := rxTopo(t, &tx, &rx)

	predict := func(p genl.Policy) []uint64 {
		var want []uint64
		for k := uint64(0); k < n; k++ {
			if r, _ := p.Relays(k); r {
				want = append(want, k)
			}
		}
		return want
	}
	for run := 0; run < 2; run++ {
		if run > 0 {
			// Setting the same policies again restarts both sequences.
			if err := c.ConfigureDevice("insane0", genl.Config{Policy: &tx, RxPolicy: &rx}); err != nil {
				t.Fatal(err)
			}
		}
		// Each direction has its own sequence: interleaving them does not
		// shift either.
		_, out := tp.UDP(t, vmnet.SendOptions{Count: n / 2})
		_, in := tp.fromMorgana(t, vmnet.SendOptions{Count: n, Pin: true})
		_, out2 := tp.UDP(t, vmnet.SendOptions{Count: n / 2})
		if want := predict(rx); !equalU64(in.Seqs, want) {
			t.Errorf("run %d: %d datagrams from morgana arrived, the receive seed predicts %d; first difference at %d",
				run, len(in.Seqs), len(want), firstDiff(in.Seqs, want))
		}
		var txGot []uint64
		txGot = append(txGot, out.Seqs...)
		for _, s := range out2.Seqs {
			txGot = append(txGot, s+n/2)
		}
		if want := predict(tx); !equalU64(txGot, want) {
			t.Errorf("run %d: %d datagrams to morgana arrived, the transmit seed predicts %d; first difference at %d",
				run, len(txGot), len(want), firstDiff(txGot, want))
		}
	}
	Figure(t, "rx seeded datagrams", 2*n)
}

func TestRxTimeWindows(t *testing.T) {
	CheckKmsg(t)
	const on, off = 400 * time.Millisecond, 600 * time.Millisecond
	const period = on + off
	tp, c := rxTopo(t, nil, nil)

	before := time.Now()
	rx := genl.Time(on, off)
	if err := c.ConfigureDevice("insane0", genl.Config{RxPolicy: &rx}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()

	const n = 600
	sent, got := tp.fromMorgana(t, vmnet.SendOptions{Count: n, Interval: 5 * time.Millisecond})
	deepOff, passed, edgeMisses := timeWindowVerdicts(sent, got, before, after, on, period)
	if deepOff > 0 {
		t.Errorf("%d datagrams were passed up deep inside an OFF window", deepOff)
	}
	if edgeMisses > n/100 {
		t.Errorf("%d datagrams sent well inside an ON window were dropped", edgeMisses)
	}
	if passed == 0 || passed == n {
		t.Errorf("receive time mode passed %d of %d datagrams", passed, n)
	}
	s := kDevice(t, c, "insane0").Stats
	if s.RxRelayedPackets != uint64(passed) || s.RxRelayedPackets+s.RxDropPolicy != n {
		t.Errorf("counters %+v disagree with %d passed of %d sent", s, passed, n)
	}
	t.Logf("passed %d of %d over %v; %d late at ON edges", passed, n, sent.At[n-1].Sub(sent.At[0]), edgeMisses)
}

func TestRxTCPTransfer(t *testing.T) {
	CheckKmsg(t)
	const size = 1 << 20
	tx, rx := genl.Percent(95, nil), genl.Percent(95, nil)
	tp, c := rxTopo(t, &tx, &rx)

	took, err := TCPTransfer(t, tp.Borea, tp.Morgana, tp.MorganaIP, size, 120*time.Second)
	if err != nil {
		t.Fatalf("TCP through transmit 95 and receive 95: %v", err)
	}
	s := kDevice(t, c, "insane0").Stats
	if s.DropPolicy == 0 || s.RxDropPolicy == 0 || s.RxRelayedPackets == 0 {
		t.Errorf("the transfer saw no loss in one direction: %+v", s)
	}
	Figure(t, "rx tcp bytes", size)
	t.Logf("1 MiB in %v; transmit dropped %d of %d, receive dropped %d of %d", took,
		s.DropPolicy, s.DropPolicy+s.RelayedPackets, s.RxDropPolicy, s.RxDropPolicy+s.RxRelayedPackets)
}

// TestRxStrictRPFilter is the article's Listing Four on borea with strict
// reverse path filtering and no sysctl change: the replies come in on
// insane0, where the route to morgana points. Receive off shows why the
// article needed rp_filter=0.
func TestRxStrictRPFilter(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	tp := NewTopo(t)
	for _, key := range []string{"all", "default", tp.BoreaDev} {
		Sysctl(t, tp.Borea, "net.ipv4.conf."+key+".rp_filter", "1")
	}
	// The article's session, with the CLI.
	RunIn(t, tp.Borea, clCLIBin, "link", "add", "insane0", "lower", tp.BoreaDev, "mode", "pass", "rx", "mode", "pass")
	RunIn(t, tp.Borea, "ip", "addr", "add", tp.BoreaIP+"/32", "dev", "insane0")
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "up")
	RunIn(t, tp.Borea, "ip", "route", "add", tp.MorganaIP, "dev", "insane0")
	for _, key := range []string{"all", tp.BoreaDev, "insane0"} {
		if v := strings.TrimSpace(RunIn(t, tp.Borea, "sysctl", "-n", "net.ipv4.conf."+key+".rp_filter")); v != "1" {
			t.Fatalf("rp_filter of %s is %s, want 1", key, v)
		}
	}
	if out := RunIn(t, tp.Borea, clCLIBin, "link", "show", "insane0"); !strings.Contains(out, "mode pass rx mode pass") {
		t.Errorf("insane link show: %q", out)
	}

	const n = 300
	// Borea speaks first, as in the article: morgana learns borea's
	// address from borea's ARP request (see the uapi header on ARP).
	if ok := rxPing(t, tp.Borea, tp.MorganaIP, 50, time.Millisecond); ok != 50 {
		t.Errorf("with receive pass and rp_filter=1, %d of 50 pings to morgana were answered", ok)
	}
	_, got := tp.fromMorgana(t, vmnet.SendOptions{Count: n})
	if len(got.Seqs) != n {
		t.Errorf("with receive pass and rp_filter=1, %d of %d datagrams from morgana arrived", len(got.Seqs), n)
	}
	c := kDial(t, tp.Borea)
	if s := kDevice(t, c, "insane0").Stats; s.RxRelayedPackets < n+50 {
		t.Errorf("insane0 passed up %d packets, want the %d datagrams and 50 replies", s.RxRelayedPackets, n)
	}

	// Receive off: morgana's packets arrive on the lower, while the route
	// back points at insane0, and strict rp_filter drops them.
	RunIn(t, tp.Borea, clCLIBin, "link", "set", "insane0", "rx", "off")
	if ok := rxPing(t, tp.Borea, tp.MorganaIP, 10, time.Millisecond); ok != 0 {
		t.Errorf("with receive off and rp_filter=1, %d of 10 pings were answered; the article's problem is gone?", ok)
	}
	Figure(t, "rx rp_filter datagrams", n)
}

func TestRxThirdHostUntouched(t *testing.T) {
	CheckKmsg(t)
	rx := genl.Percent(0, nil) // drops everything it takes over
	tp, c := rxTopo(t, nil, &rx)
	third, thirdIP := rxAddThird(t, tp)

	const n = 2000
	sent, got := UDPFlow(t, third, tp.Borea, tp.BoreaIP, vmnet.SendOptions{Count: n})
	if sent.Errors != 0 || len(got.Seqs) != n {
		t.Errorf("from the third host %s: %d of %d arrived (%d refused); softnet_stat:\n%s\nborea's UDP:\n%s",
			thirdIP, len(got.Seqs), n, sent.Errors, RunIn(t, "", "cat", "/proc/net/softnet_stat"),
			RunIn(t, tp.Borea, "cat", "/proc/net/snmp"))
	}
	s := kDevice(t, c, "insane0").Stats
	if s.RxRelayedPackets != 0 || s.RxDropped() != 0 {
		t.Errorf("insane0 counted the third host's packets: %+v", s)
	}
	// While morgana's, routed through insane0, are all dropped.
	_, fromM := tp.fromMorgana(t, vmnet.SendOptions{Count: 200})
	s = kDevice(t, c, "insane0").Stats
	if len(fromM.Seqs) != 0 || s.RxDropPolicy != 200 {
		t.Errorf("receive percent 0: %d of morgana's 200 arrived, insane0 dropped %d", len(fromM.Seqs), s.RxDropPolicy)
	}
	Figure(t, "rx third-host datagrams", n)
}

func TestRxTwoDevicesOneLower(t *testing.T) {
	CheckKmsg(t)
	pass, none := genl.Pass(), genl.Percent(0, nil)
	tp, c := rxTopo(t, nil, &pass)
	third, thirdIP := rxAddThird(t, tp)
	if err := c.AddLinkRx("insane1", tp.BoreaDev, nil, &none); err != nil {
		t.Fatal(err)
	}
	Sysctl(t, tp.Borea, "net.ipv6.conf.insane1.disable_ipv6", "1")
	Sysctl(t, tp.Borea, "net.ipv4.conf.insane1.rp_filter", "0")
	RunIn(t, tp.Borea, "ip", "addr", "add", tp.BoreaIP+"/32", "dev", "insane1")
	RunIn(t, tp.Borea, "ip", "link", "set", "insane1", "up")
	RunIn(t, tp.Borea, "ip", "route", "add", thirdIP+"/32", "dev", "insane1")

	const n = 1000
	_, fromM := tp.fromMorgana(t, vmnet.SendOptions{Count: n})
	_, fromT := UDPFlow(t, third, tp.Borea, tp.BoreaIP, vmnet.SendOptions{Count: n})
	s0, s1 := kDevice(t, c, "insane0").Stats, kDevice(t, c, "insane1").Stats
	if len(fromM.Seqs) != n || s0.RxRelayedPackets != n || s0.RxDropped() != 0 {
		t.Errorf("insane0 (morgana, receive pass): %d of %d arrived, counters %+v", len(fromM.Seqs), n, s0)
	}
	if len(fromT.Seqs) != 0 || s1.RxDropPolicy != n || s1.RxRelayedPackets != 0 {
		t.Errorf("insane1 (third, receive percent 0): %d of %d arrived, counters %+v", len(fromT.Seqs), n, s1)
	}
	// Turning one off leaves the other's hook in place.
	if err := c.ConfigureDevice("insane1", genl.Config{RxOff: true}); err != nil {
		t.Fatal(err)
	}
	_, fromM = tp.fromMorgana(t, vmnet.SendOptions{Count: 100})
	_, fromT = UDPFlow(t, third, tp.Borea, tp.BoreaIP, vmnet.SendOptions{Count: 100})
	if s := kDevice(t, c, "insane0").Stats; len(fromM.Seqs) != 100 || s.RxRelayedPackets != n+100 {
		t.Errorf("after insane1's rx off: %d of morgana's 100 arrived, insane0 passed up %d", len(fromM.Seqs), s.RxRelayedPackets)
	}
	// insane1's receive policy is off: the third host's packets stay on
	// the lower, where rp_filter is off, and arrive.
	if len(fromT.Seqs) != 100 || kDevice(t, c, "insane1").Stats.RxDropPolicy != n {
		t.Errorf("after insane1's rx off: %d of the third host's 100 arrived", len(fromT.Seqs))
	}
	Figure(t, "rx two-device datagrams", 2*n+200)
}

func TestRxCaptureBeforeDecision(t *testing.T) {
	CheckKmsg(t)
	const n = 2000
	seed := uint64(11)
	rx := genl.Percent(50, &seed)
	tp, c := rxTopo(t, nil, &rx)

	onInsane := rxOpenTap(t, tp.Borea, "insane0", tp.MorganaIP)
	onLower := rxOpenTap(t, tp.Borea, tp.BoreaDev, tp.MorganaIP)
	stop := make(chan struct{})
	onInsane.start(stop)
	onLower.start(stop)
	_, got := tp.fromMorgana(t, vmnet.SendOptions{Count: n, Pin: true})
	close(stop)
	seenInsane, seenLower := <-onInsane.done, <-onLower.done

	s := kDevice(t, c, "insane0").Stats
	if seenInsane != n {
		t.Errorf("a capture on insane0 saw %d of %d datagrams, the dropped ones included", seenInsane, n)
	}
	if seenLower != n {
		t.Errorf("a capture on %s saw %d of %d datagrams", tp.BoreaDev, seenLower, n)
	}
	if s.RxDropPolicy == 0 || uint64(len(got.Seqs)) != s.RxRelayedPackets || s.RxRelayedPackets+s.RxDropPolicy != n {
		t.Errorf("borea received %d; insane0 counters %+v", len(got.Seqs), s)
	}
	t.Logf("insane0 saw %d, %s saw %d, %d passed up, %d dropped", seenInsane, tp.BoreaDev, seenLower, s.RxRelayedPackets, s.RxDropPolicy)
}

func TestRxBridgePortRefused(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	tp := NewTopo(t)
	RunIn(t, tp.Borea, "ip", "link", "add", "br0", "type", "bridge")
	RunIn(t, tp.Borea, "ip", "link", "set", tp.BoreaDev, "master", "br0")
	RunIn(t, tp.Borea, "ip", "link", "set", "br0", "up")
	c := kDial(t, tp.Borea)
	const msg = "the lower device is a bridge port: the bridge holds its rx_handler"

	rx := genl.Pass()
	err := c.AddLinkRx("insane0", tp.BoreaDev, nil, &rx)
	if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), msg) {
		t.Errorf("creating insane0 with a receive policy on a bridge port: %v, want EBUSY and %q", err, msg)
	}
	if err := c.AddLink("insane0", tp.BoreaDev, nil); err != nil {
		t.Fatal(err)
	}
	err = c.ConfigureDevice("insane0", genl.Config{RxPolicy: &rx})
	if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), msg) {
		t.Errorf("setting a receive policy on a bridge port's insane device: %v, want EBUSY and %q", err, msg)
	}
	// TryRunIn's error carries the command's output.
	_, err = TryRunIn(tp.Borea, "ip", "link", "set", "insane0", "type", "insane", "rx", "mode", "pass")
	if err == nil || !strings.Contains(err.Error(), "Error: "+msg) {
		t.Errorf("ip link set ... rx mode pass on a bridge port: %v", err)
	}
	_, err = TryRunIn(tp.Borea, clCLIBin, "link", "set", "insane0", "rx", "mode", "pass")
	if err == nil || !strings.Contains(err.Error(), "insane: set device insane0: device or resource busy: "+msg) {
		t.Errorf("insane link set ... rx mode pass on a bridge port: %v", err)
	}
	if d := kDevice(t, c, "insane0"); d.RxPolicy != nil {
		t.Errorf("a refused receive policy is set: %v", d.RxPolicy)
	}
	// The transmit direction still relays. The bridge takes the lower's
	// ARP replies too, so morgana's address is resolved by hand.
	tp.RouteViaInsane(t, "insane0")
	mac := strings.TrimSpace(RunIn(t, tp.Morgana, "cat", "/sys/class/net/"+tp.MorganaDev+"/address"))
	RunIn(t, tp.Borea, "ip", "neigh", "replace", tp.MorganaIP, "lladdr", mac, "dev", tp.BoreaDev, "nud", "permanent")
	const n = 500
	sent, got := tp.UDP(t, vmnet.SendOptions{Count: n})
	if sent.Errors != 0 || len(got.Seqs) != n {
		t.Errorf("transmit through a bridge port's insane device: %d of %d arrived", len(got.Seqs), n)
	}
	if s := kDevice(t, c, "insane0").Stats; s.RelayedPackets != n {
		t.Errorf("relayed %d of %d", s.RelayedPackets, n)
	}

	// The other way round: with insane's hook on a lower, a bridge cannot
	// take it.
	RunIn(t, tp.Borea, "ip", "link", "set", tp.BoreaDev, "nomaster")
	if err := c.ConfigureDevice("insane0", genl.Config{RxPolicy: &rx}); err != nil {
		t.Fatalf("receive policy once the lower left the bridge: %v", err)
	}
	if _, err := TryRunIn(tp.Borea, "ip", "link", "set", tp.BoreaDev, "master", "br0"); err == nil {
		t.Error("a bridge took a lower whose rx_handler insane holds")
	}
	if err := c.ConfigureDevice("insane0", genl.Config{RxOff: true}); err != nil {
		t.Fatal(err)
	}
	RunIn(t, tp.Borea, "ip", "link", "set", tp.BoreaDev, "master", "br0")
}

// rxBidi starts traffic both ways between borea and morgana (port 9: the
// receiver answers with ICMP port unreachable, traffic too).
func rxBidi(t *testing.T, tp *Topo) (stop func()) {
	stopBorea, stopMorgana := rxBidi2(t, tp)
	return func() { stopBorea(); stopMorgana() }
}

// rxBidi2 is rxBidi with a stop for each side.
func rxBidi2(t *testing.T, tp *Topo) (stopBorea, stopMorgana func()) {
	t.Helper()
	a := ttSend(t, tp.Borea, []string{tp.MorganaIP + ":9"}, 1, -1, time.Millisecond)
	b := ttSend(t, tp.Morgana, []string{tp.BoreaIP + ":9"}, 2, -1, time.Millisecond)
	return a.Stop, b.Stop
}

func TestRxLifecycle(t *testing.T) {
	CheckKmsg(t)
	rx := genl.Percent(50, nil)

	t.Run("lower removal", func(t *testing.T) {
		tp, c := rxTopo(t, nil, &rx)
		stop := rxBidi(t, tp)
		defer stop()
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		RunIn(t, tp.Borea, "ip", "link", "del", tp.BoreaDev)
		// A hang detector, not a speed target.
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("deleting the lower took %v", d)
		} else {
			t.Logf("deleting the lower with the receive hook under traffic took %v", d)
		}
		// The traffic stops here. Left running, morgana's sender fills
		// its neighbour queue for borea on the new pair before borea's
		// end is up, the first ARP request is lost, and the next one
		// comes a second later: the datagrams below would meet a full
		// queue (seen: all 100 dropped, reason NEIGH_QUEUEFULL).
		stop()
		d := kDevice(t, c, "insane0")
		if d.Attached() || d.RxPolicy == nil || d.RxPolicy.String() != rx.String() {
			t.Errorf("after the lower went: attached %v, receive policy %v", d.Attached(), d.RxPolicy)
		}
		// A new lower takes the hook again.
		AddVeth(t, Veth{NS1: tp.Borea, Name1: tp.BoreaDev, Addr1: tp.BoreaIP + "/24",
			NS2: tp.Morgana, Name2: tp.MorganaDev, Addr2: tp.MorganaIP + "/24"})
		if err := c.ConfigureDevice("insane0", genl.Config{Lower: tp.BoreaDev, RxPolicy: ptrPolicy(genl.Pass())}); err != nil {
			t.Fatal(err)
		}
		RunIn(t, tp.Borea, "ip", "route", "replace", tp.MorganaIP+"/32", "dev", "insane0")
		_, got := tp.fromMorgana(t, vmnet.SendOptions{Count: 100})
		if len(got.Seqs) != 100 {
			t.Errorf("after re-attach with receive pass: %d of 100 arrived; insane0: %+v", len(got.Seqs), *kDevice(t, c, "insane0"))
		}
	})

	t.Run("module unload", func(t *testing.T) {
		tp, _ := rxTopo(t, nil, &rx)
		stop := rxBidi(t, tp)
		time.Sleep(300 * time.Millisecond)
		UnloadModule(t)
		stop()
		// The lower's rx_handler is free again: a bridge can take it.
		RunIn(t, tp.Borea, "ip", "link", "add", "br0", "type", "bridge")
		RunIn(t, tp.Borea, "ip", "link", "set", tp.BoreaDev, "master", "br0")
		RunIn(t, tp.Borea, "ip", "link", "del", "br0")
		LoadModule(t)
	})

	t.Run("netns deletion", func(t *testing.T) {
		tp, _ := rxTopo(t, nil, &rx)
		stopBorea, stopMorgana := rxBidi2(t, tp)
		defer stopMorgana()
		time.Sleep(300 * time.Millisecond)
		// Borea's sender socket would keep its netns alive; morgana's
		// goes on sending into the lower while the netns goes.
		stopBorea()
		Run(t, "ip", "netns", "del", tp.Borea)
		WaitFor(t, 20*time.Second, "borea's devices to go", func() bool {
			b, err := os.ReadFile("/sys/module/insane/refcnt")
			return err == nil && string(b) == "0\n"
		})
		// For NewTopo's cleanup, which deletes it.
		Run(t, "ip", "netns", "add", tp.Borea)
	})

	t.Run("device moves to another netns", func(t *testing.T) {
		tp, c := rxTopo(t, nil, &rx)
		NewNetns(t, "app")
		stop := rxBidi(t, tp)
		time.Sleep(300 * time.Millisecond)
		RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "netns", "app")
		stop()
		ca := kDial(t, "app")
		d := kDevice(t, ca, "insane0")
		if d.RxPolicy == nil {
			t.Fatal("the receive policy did not survive the move")
		}
		_ = c
		rxCrossNetns(t, tp, ca, "app")
	})

	t.Run("lower moves to another netns", func(t *testing.T) {
		tp, c := rxTopo(t, nil, &rx)
		NewNetns(t, "wire")
		stop := rxBidi(t, tp)
		time.Sleep(300 * time.Millisecond)
		mac := strings.TrimSpace(RunIn(t, tp.Borea, "cat", "/sys/class/net/"+tp.BoreaDev+"/address"))
		RunIn(t, tp.Borea, "ip", "link", "set", tp.BoreaDev, "netns", "wire")
		stop()
		RunIn(t, "wire", "ip", "link", "set", tp.BoreaDev, "up")
		// The lower lost borea's addresses on the way: nobody answers ARP
		// for borea on the wire any more.
		RunIn(t, tp.Morgana, "ip", "neigh", "replace", tp.BoreaIP, "lladdr", mac, "dev", tp.MorganaDev, "nud", "permanent")
		if err := c.ConfigureDevice("insane0", genl.Config{RxPolicy: ptrPolicy(genl.Pass()), ResetStats: true}); err != nil {
			t.Fatal(err)
		}
		// The lookup stays in insane0's netns (borea): morgana's packets,
		// arriving on the lower in "wire", are received in borea.
		_, got := tp.fromMorgana(t, vmnet.SendOptions{Count: 200})
		s := kDevice(t, c, "insane0").Stats
		if len(got.Seqs) != 200 || s.RxRelayedPackets != 200 {
			t.Errorf("lower in another netns: %d of 200 arrived in borea, insane0 passed up %d", len(got.Seqs), s.RxRelayedPackets)
		}
		RunIn(t, "wire", "ip", "link", "del", tp.BoreaDev)
	})
	Figure(t, "rx lifecycle cases", 5)
}

func ptrPolicy(p genl.Policy) *genl.Policy { return &p }

// rxCrossNetns checks an insane device in netns ns whose lower stayed in
// borea: the reverse lookup is made in ns, the packet crosses scrubbed and
// is delivered in ns, and the seeded receive sequence holds.
func rxCrossNetns(t *testing.T, tp *Topo, c *genl.Client, ns string) {
	t.Helper()
	Sysctl(t, ns, "net.ipv4.conf.all.rp_filter", "0")
	Sysctl(t, ns, "net.ipv4.conf.insane0.rp_filter", "0")
	RunIn(t, ns, "ip", "addr", "add", tp.BoreaIP+"/32", "dev", "insane0")
	RunIn(t, ns, "ip", "link", "set", "insane0", "up")
	RunIn(t, ns, "ip", "link", "set", "lo", "up")
	RunIn(t, ns, "ip", "route", "add", tp.MorganaIP+"/32", "dev", "insane0")
	seed := uint64(99)
	rx := genl.Percent(50, &seed)
	if err := c.ConfigureDevice("insane0", genl.Config{RxPolicy: &rx, ResetStats: true}); err != nil {
		t.Fatal(err)
	}
	const n = 500
	sent, got := UDPFlow(t, tp.Morgana, ns, tp.BoreaIP, vmnet.SendOptions{Count: n, Pin: true})
	if sent.Errors != 0 {
		t.Fatalf("%d sends refused", sent.Errors)
	}
	var want []uint64
	for k := uint64(0); k < n; k++ {
		if r, _ := rx.Relays(k); r {
			want = append(want, k)
		}
	}
	if !equalU64(got.Seqs, want) {
		t.Errorf("lower in another netns: %d of %d arrived in %s, the seed predicts %d (first difference at %d)",
			len(got.Seqs), n, ns, len(want), firstDiff(got.Seqs, want))
	}
	if s := kDevice(t, c, "insane0").Stats; s.RxRelayedPackets != uint64(len(want)) || s.RxDropPolicy != uint64(n-len(want)) {
		t.Errorf("counters %+v, want %d passed up", s, len(want))
	}
	// Transmit from ns still relays out of the lower in borea.
	sent, out := UDPFlow(t, ns, tp.Morgana, tp.MorganaIP, vmnet.SendOptions{Count: 100})
	if sent.Errors != 0 || len(out.Seqs) != 100 {
		t.Errorf("transmit from %s: %d of 100 arrived", ns, len(out.Seqs))
	}
}

func TestRxLowerInAnotherNetns(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	tp := NewTopo(t)
	NewNetns(t, "app")
	cb := kDial(t, tp.Borea)
	pass := genl.Pass()
	if err := cb.AddLinkRx("insane0", tp.BoreaDev, nil, &pass); err != nil {
		t.Fatal(err)
	}
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "netns", "app")
	ca := kDial(t, "app")
	rxCrossNetns(t, tp, ca, "app")
	// Nothing was delivered in borea itself: the packets left for app.
	_, got := UDPFlow(t, tp.Morgana, tp.Borea, tp.BoreaIP, vmnet.SendOptions{Count: 50})
	if len(got.Seqs) != 0 {
		t.Errorf("borea's own socket received %d of 50 datagrams that insane0 took to app", len(got.Seqs))
	}
}

func TestRxEvents(t *testing.T) {
	CheckKmsg(t)
	tp, c := rxTopo(t, nil, nil)
	_ = tp
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rx := genl.Percent(90, nil)
	if err := c.ConfigureDevice("insane0", genl.Config{RxPolicy: &rx}); err != nil {
		t.Fatal(err)
	}
	ev := kNextEvent(t, sub)
	if ev.Type != genl.EventRxPolicy || ev.Device.RxPolicy == nil || ev.Device.RxPolicy.String() != "mode percent 90" {
		t.Errorf("event after rx on: %v %+v", ev.Type, ev.Device.RxPolicy)
	}
	if err := c.SetLinkRxPolicy("insane0", nil); err != nil {
		t.Fatal(err)
	}
	ev = kNextEvent(t, sub)
	if ev.Type != genl.EventRxPolicy || ev.Device.RxPolicy != nil {
		t.Errorf("event after rx off over rtnetlink: %v %+v", ev.Type, ev.Device.RxPolicy)
	}
	// Contradictions are refused, nothing changes.
	err = c.ConfigureDevice("insane0", genl.Config{RxPolicy: &rx, RxOff: true})
	if err == nil {
		t.Error("RxPolicy with RxOff accepted")
	}
	if d, err := c.LinkData("insane0"); err != nil || d.RxPolicy != nil {
		t.Errorf("LinkData %+v, %v: want the receive policy off", d, err)
	}
	if err := c.SetLinkRxPolicy("insane0", &rx); err != nil {
		t.Fatal(err)
	}
	if d, err := c.LinkData("insane0"); err != nil || d.RxPolicy == nil || d.RxPolicy.String() != "mode percent 90" {
		t.Errorf("LinkData %+v, %v: want receive percent 90", d, err)
	}
	if ev := kNextEvent(t, sub); ev.Type != genl.EventRxPolicy {
		t.Errorf("event after rx on over rtnetlink: %v", ev.Type)
	}
}

// TestRxCLI drives the receive grammar of the insane CLI against the module:
// link add ... rx POLICY, link set NAME rx POLICY | rx off | tx POLICY,
// show, -s and -j.
func TestRxCLI(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	tp := NewTopo(t)
	b := tp.Borea
	clOK(t, b, "link", "add", "ins0", "lower", tp.BoreaDev, "mode", "percent", "80", "rx", "mode", "percent", "90", "seed", "3")
	if out := clOK(t, b, "link", "show", "ins0"); !strings.HasSuffix(out, ": ins0: lower "+tp.BoreaDev+" mode percent 80 rx mode percent 90 seed 3\n") {
		t.Errorf("show after add: %q", out)
	}
	out := clOK(t, b, "-s", "link", "show", "ins0")
	for _, want := range []string{"\n    rx relayed: packets 0 bytes 0\n", "\n    rx dropped: total 0 policy 0 no-memory 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("-s show lacks %q:\n%s", want, out)
		}
	}
	js := clOK(t, b, "-j", "-s", "link", "show", "ins0")
	for _, want := range []string{`"rx_policy":{"mode":"percent","percent":90,"seed":3}`, `"rx_dropped":0,"rx_drop_policy":0`} {
		if !strings.Contains(js, want) {
			t.Errorf("-j -s show lacks %s:\n%s", want, js)
		}
	}
	// tx changes only the transmit policy; rx seed keeps the percentage.
	clOK(t, b, "link", "set", "ins0", "tx", "mode", "time", "1s", "2s")
	clOK(t, b, "link", "set", "ins0", "rx", "seed", "4")
	if out := clOK(t, b, "link", "show", "ins0"); !strings.Contains(out, " mode time 1s 2s rx mode percent 90 seed 4\n") {
		t.Errorf("show after tx and rx seed: %q", out)
	}
	clOK(t, b, "link", "set", "ins0", "rx", "off")
	if out := clOK(t, b, "link", "show", "ins0"); strings.Contains(out, " rx ") {
		t.Errorf("show after rx off: %q", out)
	}
	if js := clOK(t, b, "-j", "link", "show", "ins0"); strings.Contains(js, "rx_policy") {
		t.Errorf("-j show after rx off: %s", js)
	}
	clFails(t, nil, b, 1, []string{"link", "set", "ins0", "rx", "seed", "5"}, "receive policy is off: a seed goes with mode percent")
	clFails(t, nil, b, 2, []string{"link", "set", "ins0", "rx", "mode", "pass", "rx", "off"}, "rx off given with another receive policy")
	clOK(t, b, "link", "set", "ins0", "rx", "mode", "pass")
	d := kDevice(t, kDial(t, b), "ins0")
	if d.RxPolicy == nil || d.RxPolicy.String() != "mode pass" || d.Policy.String() != "mode time 1s 2s" {
		t.Errorf("after the CLI: transmit %q, receive %v", d.Policy, d.RxPolicy)
	}
	clOK(t, b, "link", "del", "ins0")
}

// TestRxIPv6 takes over IPv6 as IPv4, and leaves neighbour discovery on
// the lower: the seeded receive sequence counts morgana's datagrams only,
// and morgana keeps reaching borea while its neighbour entry is probed.
func TestRxIPv6(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	tp := NewTopo(t)
	const b6, m6 = "2001:db8::1", "2001:db8::2"
	RunIn(t, tp.Borea, "ip", "addr", "add", b6+"/64", "dev", tp.BoreaDev, "nodad")
	RunIn(t, tp.Morgana, "ip", "addr", "add", m6+"/64", "dev", tp.MorganaDev, "nodad")
	c := kDial(t, tp.Borea)
	seed := uint64(0x6666)
	rx := genl.Percent(60, &seed)
	if err := c.AddLinkRx("insane0", tp.BoreaDev, nil, &rx); err != nil {
		t.Fatal(err)
	}
	RunIn(t, tp.Borea, "ip", "addr", "add", b6+"/128", "dev", "insane0", "nodad")
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "up")
	RunIn(t, tp.Borea, "ip", "-6", "route", "add", m6+"/128", "dev", "insane0")
	// Borea speaks first over IPv6, through insane0 and out of the lower.
	if sent, got := UDPFlow(t, tp.Borea, tp.Morgana, m6, vmnet.SendOptions{Count: 100}); sent.Errors != 0 || len(got.Seqs) != 100 {
		t.Fatalf("borea to morgana over IPv6: %d of 100 arrived (%d refused)", len(got.Seqs), sent.Errors)
	}
	if err := c.ConfigureDevice("insane0", genl.Config{RxPolicy: &rx, ResetStats: true}); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	// Spread over a few seconds, so that morgana's neighbour entry for
	// borea goes stale and is probed (unicast NS) meanwhile.
	sent, got := UDPFlow(t, tp.Morgana, tp.Borea, b6, vmnet.SendOptions{Count: n, Interval: 6 * time.Millisecond})
	if sent.Errors != 0 {
		t.Fatalf("%d sends refused", sent.Errors)
	}
	var want []uint64
	for k := uint64(0); k < n; k++ {
		if r, _ := rx.Relays(k); r {
			want = append(want, k)
		}
	}
	if !equalU64(got.Seqs, want) {
		t.Errorf("over IPv6 %d of %d arrived, the receive seed predicts %d; first difference at %d",
			len(got.Seqs), n, len(want), firstDiff(got.Seqs, want))
	}
	s := kDevice(t, c, "insane0").Stats
	if s.RxRelayedPackets != uint64(len(want)) || s.RxDropPolicy != uint64(n-len(want)) {
		t.Errorf("counters %+v, want %d passed up and %d dropped: only morgana's datagrams", s, len(want), n-len(want))
	}
	Figure(t, "rx IPv6 datagrams", n)
}

// TestRxNetfilterIif: what insane0 takes over is received on insane0 as
// netfilter sees it too (iif insane0 in prerouting), and what it passes up
// reaches the local socket after that.
func TestRxNetfilterIif(t *testing.T) {
	CheckKmsg(t)
	pass := genl.Pass()
	tp, _ := rxTopo(t, nil, &pass)
	script := `table inet rxt {
	chain pre {
		type filter hook prerouting priority 0; policy accept;
		iifname "insane0" ip saddr ` + tp.MorganaIP + ` udp dport 1-65535 counter
		iifname "` + tp.BoreaDev + `" ip saddr ` + tp.MorganaIP + ` udp dport 1-65535 counter
	}
}
`
	cmd := exec.Command("ip", "netns", "exec", tp.Borea, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	const n = 300
	_, got := tp.fromMorgana(t, vmnet.SendOptions{Count: n})
	if len(got.Seqs) != n {
		t.Errorf("%d of %d arrived", len(got.Seqs), n)
	}
	out := RunIn(t, tp.Borea, "nft", "list", "chain", "inet", "rxt", "pre")
	var counts []string
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "counter packets "); i >= 0 {
			counts = append(counts, strings.Fields(l[i+len("counter packets "):])[0])
		}
	}
	if len(counts) != 2 || counts[0] != u64s(n) || counts[1] != "0" {
		t.Errorf("prerouting counters (iif insane0, iif %s) = %v, want [%d 0]:\n%s", tp.BoreaDev, counts, n, out)
	}
}
