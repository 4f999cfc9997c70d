//go:build vmtest

package guest

// The receive hook at its edges (issue 23): the namespace boundary (an
// insane device moved into another namespace takes only what is addressed
// to that namespace, and a receive policy on a lower of another namespace
// needs CAP_NET_ADMIN over it), GSO packets decided and counted per wire
// packet, IPv6 link-local left on the lower's link, and a device moved
// between lowers under traffic.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

// TestRxEdgeNetnsBoundary is the reproduction of issue 23 finding 1:
// insane0 made in the host's namespace on its veth, moved into namespace
// app, which routes everything through it. The host's own traffic stays
// the host's; what the peer sends to app's own address still reaches app
// through insane0.
func TestRxEdgeNetnsBoundary(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	tp := NewTopo(t) // borea is the host, morgana the peer
	const app, appIP = "app", "192.0.2.3"
	NewNetns(t, app)
	RunIn(t, tp.Borea, clCLIBin, "link", "add", "insane0", "lower", tp.BoreaDev, "mode", "pass", "rx", "mode", "pass")
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "netns", app)
	Sysctl(t, app, "net.ipv6.conf.insane0.disable_ipv6", "1")
	RunIn(t, app, "ip", "addr", "add", appIP+"/32", "dev", "insane0")
	RunIn(t, app, "ip", "link", "set", "insane0", "up")
	RunIn(t, app, "ip", "route", "add", "default", "dev", "insane0")
	c := kDial(t, app)

	// The peer pings the host's address on the lower, and sends to it.
	const pings, n = 100, 500
	ok := rxPing(t, tp.Morgana, tp.BoreaIP, pings, time.Millisecond)
	_, got := UDPFlow(t, tp.Morgana, tp.Borea, tp.BoreaIP, vmnet.SendOptions{Count: n})
	taken := kDevice(t, c, "insane0").Stats
	t.Logf("to the host: %d of %d pings answered, %d of %d datagrams arrived; insane0 in %s took %d",
		ok, pings, len(got.Seqs), n, app, taken.RxRelayedPackets+taken.RxDropped())
	if ok != pings || len(got.Seqs) != n {
		t.Errorf("the host's own traffic was taken into %s: %d of %d pings answered, %d of %d datagrams reached the host",
			app, ok, pings, len(got.Seqs), n)
	}
	if taken.RxRelayedPackets+taken.RxDropped() != 0 {
		t.Errorf("insane0 in %s took %d packets addressed to the host", app, taken.RxRelayedPackets+taken.RxDropped())
	}

	// What the peer sends to app's own address, by the lower's MAC, is
	// still taken and delivered in app.
	mac := strings.TrimSpace(RunIn(t, tp.Borea, "cat", "/sys/class/net/"+tp.BoreaDev+"/address"))
	RunIn(t, tp.Morgana, "ip", "neigh", "replace", appIP, "lladdr", mac, "dev", tp.MorganaDev, "nud", "permanent")
	if err := c.ConfigureDevice("insane0", genl.Config{ResetStats: true}); err != nil {
		t.Fatal(err)
	}
	const m = 300
	_, inApp := UDPFlow(t, tp.Morgana, app, appIP, vmnet.SendOptions{Count: m})
	s := kDevice(t, c, "insane0").Stats
	if len(inApp.Seqs) != m || s.RxRelayedPackets != m || s.RxDropped() != 0 {
		t.Errorf("to %s's own address: %d of %d arrived, insane0 passed up %d and dropped %d",
			app, len(inApp.Seqs), m, s.RxRelayedPackets, s.RxDropped())
	}
	Figure(t, "rx netns boundary datagrams", n+m)
}

// rxUserNS starts bash as root of a new user namespace in a new network
// namespace that the user namespace owns, and names that network
// namespace ns. The shell runs script once a line is written to it.
func rxUserNS(t *testing.T, ns, script string) (start func() string) {
	t.Helper()
	cmd := exec.Command("bash", "-c", "read go; "+script)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("a shell in a new user namespace: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	Run(t, "ip", "netns", "attach", ns, strconv.Itoa(cmd.Process.Pid))
	t.Cleanup(func() { _, _ = TryRun("ip", "netns", "del", ns) })
	return func() string {
		if _, err := io.WriteString(in, "go\n"); err != nil {
			t.Fatal(err)
		}
		in.Close()
		_ = cmd.Wait()
		return out.String()
	}
}

// TestRxEdgeCapability: root of a user namespace that owns only app's
// network namespace, where insane0 lives while its lower stays in the
// host's, may change insane0's transmit policy and turn its receive
// policy off, but not set a receive policy, over either netlink.
func TestRxEdgeCapability(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	tp := NewTopo(t)
	const ns = "appu"
	const msg = "a receive policy takes packets off the lower device, which is in another network namespace: it needs CAP_NET_ADMIN over that namespace too"
	start := rxUserNS(t, ns, ttUserNSScript+`r capeff awk '/^CapEff/ {print $2}' /proc/self/status
r tx insane link set insane0 mode percent 50
r rxgenl insane link set insane0 rx mode percent 50
r rxrtnl ip link set insane0 type insane rx mode percent 50
r off insane link set insane0 rx off
r ongenl insane link set insane0 rx mode pass
r onrtnl ip link set insane0 type insane rx mode pass
`)
	RunIn(t, tp.Borea, clCLIBin, "link", "add", "insane0", "lower", tp.BoreaDev, "mode", "pass", "rx", "mode", "pass")
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "netns", ns)
	out := start()
	res := map[string][2]string{}
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "TTR "); ok {
			f := strings.SplitN(rest, " ", 3)
			for len(f) < 3 {
				f = append(f, "")
			}
			res[f[0]] = [2]string{f[1], f[2]}
			t.Logf("%-7s exit %s: %s", f[0], f[1], f[2])
		}
	}
	if r := res["capeff"]; r[0] != "0" || r[1] == "0000000000000000" {
		t.Fatalf("no capabilities in the new user namespace: %v\n%s", r, out)
	}
	for _, c := range []struct {
		name string
		ok   bool
	}{{"tx", true}, {"rxgenl", false}, {"rxrtnl", false}, {"off", true}, {"ongenl", false}, {"onrtnl", false}} {
		r, found := res[c.name]
		switch {
		case !found:
			t.Errorf("%s: no result:\n%s", c.name, out)
		case c.ok && r[0] != "0":
			t.Errorf("%s: exit %s, want success: %s", c.name, r[0], r[1])
		case !c.ok && (r[0] == "0" || !strings.Contains(r[1], msg)):
			t.Errorf("%s: exit %s: %q, want EPERM and %q", c.name, r[0], r[1], msg)
		}
	}
	d := kDevice(t, kDial(t, ns), "insane0")
	if d.Policy.String() != "mode percent 50" || d.RxPolicy != nil {
		t.Errorf("after the user namespace's commands: transmit %q, receive %v; want percent 50 and off", d.Policy, d.RxPolicy)
	}
	// Root of the initial user namespace may.
	if err := kDial(t, ns).ConfigureDevice("insane0", genl.Config{RxPolicy: ptrPolicy(genl.Pass())}); err != nil {
		t.Errorf("root of the initial user namespace setting the receive policy: %v", err)
	}
}

// rxSnmpTcp returns the TCP counters of /proc/net/snmp in ns.
func rxSnmpTcp(t *testing.T, ns string) map[string]uint64 {
	t.Helper()
	out := RunIn(t, ns, "cat", "/proc/net/snmp")
	var names []string
	m := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "Tcp:" {
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
	if _, ok := m["OutSegs"]; !ok {
		t.Fatalf("no Tcp OutSegs in %s's /proc/net/snmp:\n%s", ns, out)
	}
	return m
}

// rxTCPFromMorgana sends size bytes over TCP from morgana to borea and
// returns the TCP segments morgana sent meanwhile (OutSegs, which counts
// pure ACKs but not retransmissions, plus RetransSegs): on a veth, each
// one is a packet on the wire.
func rxTCPFromMorgana(t *testing.T, tp *Topo, size int) uint64 {
	t.Helper()
	before := rxSnmpTcp(t, tp.Morgana)
	if _, err := TCPTransfer(t, tp.Morgana, tp.Borea, tp.BoreaIP, size, 120*time.Second); err != nil {
		t.Fatalf("TCP from morgana to borea: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	after := rxSnmpTcp(t, tp.Morgana)
	return after["OutSegs"] - before["OutSegs"] + after["RetransSegs"] - before["RetransSegs"]
}

// TestRxEdgeGSO: veth passes the sender's TSO packets whole; the receive
// policy decides, and the counters count, each wire packet.
func TestRxEdgeGSO(t *testing.T) {
	CheckKmsg(t)
	const size = 10 << 20
	pass := genl.Pass()
	tp, c := rxTopo(t, nil, &pass)
	if out := RunIn(t, tp.Morgana, "ethtool", "-k", tp.MorganaDev); !strings.Contains(out, "tcp-segmentation-offload: on") {
		t.Logf("morgana's veth does not do TSO:\n%s", out)
	}

	segs := rxTCPFromMorgana(t, tp, size)
	s := kDevice(t, c, "insane0").Stats
	t.Logf("receive pass: morgana sent %d TCP segments, insane0 passed up %d, dropped %d", segs, s.RxRelayedPackets, s.RxDropped())
	if s.RxRelayedPackets != segs || s.RxDropped() != 0 {
		t.Errorf("receive pass: morgana sent %d TCP segments; insane0 counted %d passed up and %d dropped", segs, s.RxRelayedPackets, s.RxDropped())
	}

	seed := uint64(3)
	rx := genl.Percent(99, &seed)
	if err := c.ConfigureDevice("insane0", genl.Config{RxPolicy: &rx, ResetStats: true}); err != nil {
		t.Fatal(err)
	}
	segs = rxTCPFromMorgana(t, tp, size)
	s = kDevice(t, c, "insane0").Stats
	t.Logf("receive percent 99 seed 3: morgana sent %d TCP segments, insane0 passed up %d, dropped %d (policy %d)",
		segs, s.RxRelayedPackets, s.RxDropped(), s.RxDropPolicy)
	if s.RxRelayedPackets+s.RxDropped() != segs || s.RxDropped() != s.RxDropPolicy {
		t.Errorf("receive percent 99: morgana sent %d TCP segments; insane0 counted %d passed up and %d dropped (policy %d)",
			segs, s.RxRelayedPackets, s.RxDropped(), s.RxDropPolicy)
	}
	// Each wire packet is drawn: about 1 % are dropped.
	kWithin(t, "wire packets dropped at receive percent 99", int(s.RxDropPolicy), int(segs), 0.01, 4)
	Figure(t, "rx gso bytes", 2*size)
}

// rxLinkLocal returns the IPv6 link-local address of dev in ns.
func rxLinkLocal(t *testing.T, ns, dev string) string {
	t.Helper()
	var addr string
	WaitFor(t, 10*time.Second, dev+"'s link-local address", func() bool {
		out, _ := TryRunIn(ns, "ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link")
		if m := regexp.MustCompile(`inet6 (fe80::[0-9a-f:]+)/64`).FindStringSubmatch(out); m != nil && !strings.Contains(out, "tentative") {
			addr = m[1]
			return true
		}
		return false
	})
	return addr
}

// rxPing6 sends n ICMPv6 echo requests from ns to dst (on link zone),
// one every interval, and returns how many distinct ones were answered,
// waiting until no reply has come for 500 ms after the last request.
func rxPing6(t *testing.T, ns, dst, zone string, n int, interval time.Duration) int {
	t.Helper()
	var conn net.PacketConn
	if err := vmnet.Do(ns, func() error {
		var err error
		conn, err = net.ListenPacket("ip6:ipv6-icmp", "::")
		return err
	}); err != nil {
		t.Fatalf("ICMPv6 socket in %s: %v", ns, err)
	}
	defer conn.Close()
	to := &net.IPAddr{IP: net.ParseIP(dst), Zone: zone}
	id := uint16(os.Getpid())
	seen := map[uint16]bool{}
	var sentAll atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			m, _, err := conn.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) && len(seen) < n && !sentAll.Load() {
					continue
				}
				return
			}
			// The kernel strips the IPv6 header: an echo reply is type 129.
			if m >= 8 && buf[0] == 129 && binary.BigEndian.Uint16(buf[4:]) == id {
				seen[binary.BigEndian.Uint16(buf[6:])] = true
			}
		}
	}()
	for seq := 0; seq < n; seq++ {
		// The kernel fills in an ICMPv6 checksum.
		req := []byte{128, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq), 'i', 'n', 's', 'a', 'n', 'e', 'l', 'l'}
		if _, err := conn.WriteTo(req, to); err != nil {
			t.Errorf("echo request %d to %s: %v", seq, to, err)
		}
		time.Sleep(interval)
	}
	sentAll.Store(true)
	<-done
	return len(seen)
}

// TestRxEdgeLinkLocal: link-local unicast belongs to the lower's link, as
// neighbour discovery does, whatever the routes of insane0 say.
func TestRxEdgeLinkLocal(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	tp := NewTopo(t)
	RunIn(t, tp.Borea, clCLIBin, "link", "add", "insane0", "lower", tp.BoreaDev, "mode", "pass", "rx", "mode", "pass")
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "up")
	// insane0's own fe80::/64 route, first among the equal ones: a lookup
	// with no output interface then finds insane0.
	RunIn(t, tp.Borea, "ip", "-6", "route", "replace", "fe80::/64", "dev", "insane0", "metric", "1")
	hostLL := rxLinkLocal(t, tp.Borea, tp.BoreaDev)
	peerLL := rxLinkLocal(t, tp.Morgana, tp.MorganaDev)
	t.Logf("host %s, peer %s; %s", hostLL, peerLL,
		strings.TrimSpace(RunIn(t, tp.Borea, "ip", "-6", "route", "get", peerLL, "from", hostLL)))
	c := kDial(t, tp.Borea)
	before := kDevice(t, c, "insane0").Stats

	const n = 50
	replies := rxPing6(t, tp.Morgana, hostLL, tp.MorganaDev, n, time.Millisecond)
	after := kDevice(t, c, "insane0").Stats
	taken := after.RxRelayedPackets + after.RxDropped() - before.RxRelayedPackets - before.RxDropped()
	t.Logf("ping6 of the host's link-local address: %d of %d replies; insane0 took %d packets", replies, n, taken)
	if taken != 0 || replies != n {
		t.Errorf("link-local unicast from the peer: insane0 took %d packets, %d of %d pings answered; want 0 taken and every reply", taken, replies, n)
	}
	Figure(t, "rx link-local pings", n)
}

// TestTortureRxMove moves insane0 between two lowers (detach then attach,
// and straight from one to the other) while both lowers carry traffic both
// ways. Each lower keeps a device of its own with the receive policy on,
// so the old port never empties on a move. A reader of the old port's list
// standing on insane0 while it joins the new list would follow it there:
// a wild pointer or an endless loop. Every datagram is accounted at the
// end. INSANE_TORTURE=full makes 5,000 moves; make test makes 300.
func TestTortureRxMove(t *testing.T) {
	CheckKmsg(t)
	total := ttSize(300, 5000)
	half := genl.Percent(50, nil)
	// insane1 on veth0 routes morgana and decides at percent 50.
	Sysctl(t, "", "net.core.rmem_max", "16777216")
	tp := NewTopo(t)
	c := kDial(t, tp.Borea)
	if err := c.AddLinkRx("insane1", tp.BoreaDev, nil, &half); err != nil {
		t.Fatal(err)
	}
	tp.RouteViaInsane(t, "insane1")
	third, thirdIP := rxAddThird(t, tp)
	const tertia, tertiaIP, hostIP2 = "tertia", "198.51.100.2", "198.51.100.1"
	NewNetns(t, tertia)
	Sysctl(t, tertia, "net.ipv4.conf.all.rp_filter", "0")
	AddVeth(t, Veth{NS1: tp.Borea, Name1: "veth2", Addr1: hostIP2 + "/24", NS2: tertia, Name2: "veth3", Addr2: tertiaIP + "/24"})
	pass := genl.Pass()
	// insane2 on veth2 and insane0, which moves, route nobody: the hook
	// walks their list to the end for third's and tertia's packets.
	for _, d := range []struct{ name, lower string }{{"insane2", "veth2"}, {"insane0", tp.BoreaDev}} {
		if err := c.AddLinkRx(d.name, d.lower, nil, &pass); err != nil {
			t.Fatal(err)
		}
		Sysctl(t, tp.Borea, "net.ipv6.conf."+d.name+".disable_ipv6", "1")
		RunIn(t, tp.Borea, "ip", "link", "set", d.name, "up")
	}

	inM := ttListen(t, tp.Borea, tp.BoreaIP+":0", nil)
	inT := ttListen(t, tp.Borea, tp.BoreaIP+":0", nil)
	inX := ttListen(t, tp.Borea, hostIP2+":0", nil)
	outM := ttListen(t, tp.Morgana, "0.0.0.0:0", nil)
	outT := ttListen(t, third, "0.0.0.0:0", nil)
	outX := ttListen(t, tertia, "0.0.0.0:0", nil)
	port := func(s *ttSink) string { return strconv.Itoa(s.Port()) }
	senders := []*ttSender{
		ttSend(t, tp.Morgana, []string{tp.BoreaIP + ":" + port(inM)}, 1, 0, time.Millisecond),
		ttSend(t, third, []string{tp.BoreaIP + ":" + port(inT)}, 2, 1, time.Millisecond),
		ttSend(t, tertia, []string{hostIP2 + ":" + port(inX)}, 3, 0, time.Millisecond),
		ttSend(t, tp.Borea, []string{tp.MorganaIP + ":" + port(outM), thirdIP + ":" + port(outT), tertiaIP + ":" + port(outX)}, 4, 1, time.Millisecond),
	}

	ca := kDial(t, tp.Borea)
	lowers := []string{"veth2", tp.BoreaDev}
	start := time.Now()
	for i := 0; i < total; i++ {
		if i%4 < 2 {
			if err := ca.ConfigureDevice("insane0", genl.Config{Detach: true}); err != nil {
				t.Fatalf("move %d: detach: %v", i, err)
			}
		}
		if err := ca.ConfigureDevice("insane0", genl.Config{Lower: lowers[i%2]}); err != nil {
			t.Fatalf("move %d: attach to %s: %v", i, lowers[i%2], err)
		}
	}
	elapsed := time.Since(start)
	for _, s := range senders {
		s.Stop()
	}
	for _, s := range []*ttSink{inM, inT, inX, outM, outT, outX} {
		s.Quiet()
	}

	s0, s1, s2 := kDevice(t, c, "insane0").Stats, kDevice(t, c, "insane1").Stats, kDevice(t, c, "insane2").Stats
	for _, f := range []struct {
		who     string
		snd     *ttSender
		sinks   []*ttSink
		dropped uint64
	}{
		{"morgana (through insane1)", senders[0], []*ttSink{inM}, s1.RxDropped()},
		{"third (no insane route)", senders[1], []*ttSink{inT}, 0},
		{"tertia (no insane route)", senders[2], []*ttSink{inX}, 0},
		{"borea", senders[3], []*ttSink{outM, outT, outX}, 0},
	} {
		sent := f.snd.attempted.Load() - f.snd.refused.Load()
		var got int64
		for _, s := range f.sinks {
			got += s.Count()
		}
		if uint64(got)+f.dropped != uint64(sent) {
			t.Errorf("%s: sent %d, received %d, dropped on receive %d: %d unaccounted", f.who, sent, got, f.dropped, sent-got-int64(f.dropped))
		}
		t.Logf("%s: sent %d, received %d, dropped on receive %d", f.who, sent, got, f.dropped)
	}
	if n := s0.RxRelayedPackets + s0.RxDropped() + s2.RxRelayedPackets + s2.RxDropped(); n != 0 {
		t.Errorf("insane0 and insane2 route nobody, yet took %d packets: %+v %+v", n, s0, s2)
	}
	if s1.RxRelayedPackets == 0 || s1.RxDropPolicy == 0 {
		t.Errorf("insane1 decided nothing: %+v", s1)
	}
	d := kDevice(t, c, "insane0")
	if want := lowers[(total-1)%2]; d.LowerName != want || d.RxPolicy == nil {
		t.Errorf("after the moves insane0 is on %q with receive policy %v, want %s", d.LowerName, d.RxPolicy, want)
	}
	t.Logf("%d moves in %v", total, elapsed)
	Figure(t, "rx moves", uint64(total))
}
