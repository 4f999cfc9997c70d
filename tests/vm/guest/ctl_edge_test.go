//go:build vmtest

package guest

// The control plane at its edges (issue 23): long policies in plain link
// dumps, GSO packets sent past the qdisc by AF_PACKET, IPsec and the flow
// key of the relay's route, changes that fail half way, and repeated
// attributes.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/uapi"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ceGilbertSchedule is a schedule of n gilbert steps, the largest kind.
func ceGilbertSchedule(n int) genl.Policy {
	p := genl.Policy{Mode: genl.ModeSchedule}
	for i := 0; i < n; i++ {
		p.Steps = append(p.Steps, genl.Step{
			Duration: time.Duration(100+i) * time.Millisecond,
			Action: genl.Policy{Mode: genl.ModeGilbert, Gilbert: genl.GilbertElliott{
				P: float64(1 + i%7), R: 10, LossBad: 100, LossGood: 1,
			}},
		})
	}
	return p
}

// ceRawLinkDump dumps the links of the thread's netns as glibc's
// getifaddrs and Go's syscall.NetlinkRIB do: RTM_GETLINK with NLM_F_DUMP,
// no IFLA_EXT_MASK, read with a 4096-byte buffer. It returns the names in
// order and, per name, the IFLA_INFO_DATA of the link (nil for others).
func ceRawLinkDump() ([]string, map[string][]byte, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, nil, err
	}
	req := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.RTM_GETLINK)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], 1)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, nil, err
	}
	var names []string
	data := map[string][]byte{}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return names, data, err
		}
		msgs, err := ceParseNetlink(buf[:n])
		if err != nil {
			return names, data, err
		}
		for _, m := range msgs {
			switch m.typ {
			case unix.NLMSG_DONE:
				return names, data, nil
			case unix.NLMSG_ERROR:
				return names, data, fmt.Errorf("the dump ended with error %d after %d links",
					-int32(binary.NativeEndian.Uint32(m.data)), len(names))
			case unix.RTM_NEWLINK:
				attrs, err := ttParseAttrs(m.data[unix.SizeofIfInfomsg:])
				if err != nil {
					return names, data, err
				}
				var name string
				var info []byte
				for _, a := range attrs {
					switch a.Type {
					case unix.IFLA_IFNAME:
						name = strings.TrimRight(string(a.Data), "\x00")
					case unix.IFLA_LINKINFO:
						li, err := ttParseAttrs(a.Data)
						if err != nil {
							return names, data, err
						}
						for _, b := range li {
							if b.Type == unix.IFLA_INFO_DATA {
								info = append([]byte(nil), b.Data...)
							}
						}
					}
				}
				names = append(names, name)
				data[name] = info
			}
		}
	}
}

type ceNlMsg struct {
	typ  uint16
	data []byte
}

// ceParseNetlink splits a buffer of netlink messages.
func ceParseNetlink(b []byte) ([]ceNlMsg, error) {
	var msgs []ceNlMsg
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return nil, fmt.Errorf("netlink message of length %d in %d bytes", l, len(b))
		}
		msgs = append(msgs, ceNlMsg{typ: binary.NativeEndian.Uint16(b[4:]), data: b[unix.NLMSG_HDRLEN:l]})
		b = b[min(nlmAlign(l), len(b)):]
	}
	return msgs, nil
}

// ceMissing returns the names of want that got lacks.
func ceMissing(got, want []string) []string {
	have := map[string]bool{}
	for _, n := range got {
		have[n] = true
	}
	var miss []string
	for _, n := range want {
		if !have[n] {
			miss = append(miss, n)
		}
	}
	return miss
}

// TestKernelLongPolicyDump: a device with two 64-step gilbert schedules
// (transmit and receive, over 7 KB of IFLA_INFO_DATA) must not cut a
// plain link dump short: every standard reader lists every link, and the
// full policy stays readable.
func TestKernelLongPolicyDump(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	ns := NewNetns(t, "ldump")
	RunIn(t, ns, "ip", "link", "add", "ld0", "type", "dummy")
	RunIn(t, ns, "ip", "link", "add", "link", "ld0", "name", "insane0", "type", "insane")
	want := []string{"lo", "ld0", "insane0"}
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("ld%d", i)
		RunIn(t, ns, "ip", "link", "add", name, "type", "dummy")
		want = append(want, name)
	}
	c := kDial(t, ns)
	long := ceGilbertSchedule(uapi.ScheduleStepsMax)
	if err := c.SetPolicy("insane0", long); err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	if err := c.SetLinkRxPolicy("insane0", &long); err != nil {
		t.Fatalf("SetLinkRxPolicy: %v", err)
	}

	var ifs []net.Interface
	if err := vmnet.Do(ns, func() (err error) { ifs, err = net.Interfaces(); return err }); err != nil {
		t.Errorf("net.Interfaces: %v", err)
	}
	var goNames []string
	for _, i := range ifs {
		goNames = append(goNames, i.Name)
	}
	Figure(t, "net.Interfaces links", uint64(len(goNames)))
	if miss := ceMissing(goNames, want); len(miss) > 0 {
		t.Errorf("net.Interfaces listed %v: %v missing", goNames, miss)
	}

	var names []string
	var data map[string][]byte
	derr := vmnet.Do(ns, func() (err error) { names, data, err = ceRawLinkDump(); return err })
	Figure(t, "raw 4 KB dump links", uint64(len(names)))
	if derr != nil {
		t.Errorf("raw dump with a 4096-byte buffer: %v (listed %v)", derr, names)
	}
	if miss := ceMissing(names, want); len(miss) > 0 {
		t.Errorf("raw dump with a 4096-byte buffer listed %v: %v missing", names, miss)
	} else {
		// The compact form: the mode and the number of steps left out.
		info := data["insane0"]
		Figure(t, "insane0 IFLA_INFO_DATA bytes in a 4 KB dump", uint64(len(info)))
		attrs, _ := ttParseAttrs(info)
		omitted := map[string]uint32{}
		for _, a := range attrs {
			switch a.Type {
			case uapi.PolicyAStepsOmitted:
				omitted["tx"] = binary.NativeEndian.Uint32(a.Data)
			case uapi.PolicyASteps:
				t.Error("a 4 KB dump carried the steps: the message cannot have fit")
			case uapi.PolicyARx:
				in, _ := ttParseAttrs(a.Data)
				for _, b := range in {
					if b.Type == uapi.PolicyAStepsOmitted {
						omitted["rx"] = binary.NativeEndian.Uint32(b.Data)
					}
				}
			}
		}
		if omitted["tx"] != uapi.ScheduleStepsMax || omitted["rx"] != uapi.ScheduleStepsMax {
			t.Errorf("insane0 in a 4 KB dump: steps omitted %v, want 64 in both directions", omitted)
		}
	}

	for _, args := range [][]string{{"ip", "link"}, {"ip", "-d", "link"}} {
		out := RunIn(t, ns, args...)
		var got []string
		for _, n := range want {
			if strings.Contains(out, " "+n+":") || strings.Contains(out, " "+n+"@") {
				got = append(got, n)
			}
		}
		if miss := ceMissing(got, want); len(miss) > 0 {
			t.Errorf("%s: %v missing:\n%s", strings.Join(args, " "), miss, out)
		}
	}
	show := RunIn(t, ns, "ip", "-d", "link", "show", "insane0")
	if n := strings.Count(show, "gilbert"); n < 2*uapi.ScheduleStepsMax || strings.Contains(show, "left out") {
		t.Errorf("ip -d link show insane0: %d gilbert steps, want %d:\n%s", n, 2*uapi.ScheduleStepsMax, show)
	}
	cli := clOK(t, ns, "show", "insane0")
	if n := strings.Count(cli, "gilbert"); n < 2*uapi.ScheduleStepsMax {
		t.Errorf("insane show insane0: %d gilbert steps, want %d:\n%s", n, 2*uapi.ScheduleStepsMax, cli)
	}
	d := kDevice(t, c, "insane0")
	if len(d.Policy.Steps) != uapi.ScheduleStepsMax || d.RxPolicy == nil ||
		len(d.RxPolicy.Steps) != uapi.ScheduleStepsMax {
		t.Errorf("genl GET_DEVICE: %d and %v steps", len(d.Policy.Steps), d.RxPolicy)
	}
	devs, err := c.Devices()
	if err != nil || len(devs) != 1 || len(devs[0].Policy.Steps) != uapi.ScheduleStepsMax {
		t.Errorf("genl dump: %v, %d devices", err, len(devs))
	}
	if p, err := c.LinkPolicy("insane0"); err != nil || len(p.Steps) != uapi.ScheduleStepsMax || p.StepsOmitted != 0 {
		t.Errorf("rtnetlink RTM_GETLINK insane0: %v, %+v", err, p)
	}
}

// ceCsum is the ones' complement sum of b folded to 16 bits, plus sum.
func ceCsum(b []byte, sum uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return sum
}

// ceGSOTCPv4 is a virtio_net_hdr and an IPv4 TCP packet of segs segments
// of mss bytes from src to dst, its checksum left to the device
// (NEEDS_CSUM: the field holds the pseudo-header's sum).
func ceGSOTCPv4(src, dst net.IP, segs, mss int) []byte {
	payload := make([]byte, segs*mss)
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+20+len(payload)))
	ip[6] = 0x40 // DF
	ip[8] = 64
	ip[9] = unix.IPPROTO_TCP
	copy(ip[12:], src.To4())
	copy(ip[16:], dst.To4())
	binary.BigEndian.PutUint16(ip[10:], ^uint16(ceCsum(ip, 0)))
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 9)
	binary.BigEndian.PutUint32(tcp[4:], 1)
	tcp[12] = 5 << 4
	tcp[13] = 0x18 // PSH ACK
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	pseudo := append(append(append([]byte{}, src.To4()...), dst.To4()...), 0, unix.IPPROTO_TCP, 0, 0)
	binary.BigEndian.PutUint16(pseudo[10:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(tcp[16:], uint16(ceCsum(pseudo, 0)))
	vnet := make([]byte, 10)                             // struct virtio_net_hdr, host order
	vnet[0] = 1                                          // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnet[1] = 1                                          // VIRTIO_NET_HDR_GSO_TCPV4
	binary.NativeEndian.PutUint16(vnet[2:], 40)          // hdr_len
	binary.NativeEndian.PutUint16(vnet[4:], uint16(mss)) // gso_size
	binary.NativeEndian.PutUint16(vnet[6:], 20)          // csum_start
	binary.NativeEndian.PutUint16(vnet[8:], 16)          // csum_offset
	return append(append(append(vnet, ip...), tcp...), payload...)
}

// ceSysStat reads a counter of /sys/class/net/DEV/statistics in ns.
func ceSysStat(t *testing.T, ns, dev, name string) uint64 {
	t.Helper()
	var v uint64
	out := RunIn(t, ns, "cat", "/sys/class/net/"+dev+"/statistics/"+name)
	if _, err := fmt.Sscan(out, &v); err != nil {
		t.Fatalf("%s of %s: %q", name, dev, out)
	}
	return v
}

// TestKernelPacketBypassGSO: a GSO TCP packet sent on insane0 by an
// AF_PACKET socket with PACKET_QDISC_BYPASS and PACKET_VNET_HDR, under a
// policy other than pass, is cut into its segments and each is decided and
// counted under a named cause; the core drops none of it.
func TestKernelPacketBypassGSO(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	tp := NewTopo(t)
	tp.AddInsane(t, "insane0", "mode", "percent", "50", "seed", "1")
	c := kDial(t, tp.Borea)
	ifi := GetLink(t, tp.Borea, "insane0").Ifindex
	const segs, mss = 4, 1000

	before := kDevice(t, c, "insane0").Stats
	coreBefore := ceSysStat(t, tp.Borea, "insane0", "tx_dropped")
	var fd int
	if err := vmnet.Do(tp.Borea, func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		t.Fatalf("PACKET_VNET_HDR: %v", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		t.Fatalf("PACKET_QDISC_BYPASS: %v", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	pkt := ceGSOTCPv4(net.ParseIP(tp.BoreaIP), net.ParseIP(tp.MorganaIP), segs, mss)
	// The core's drop of a packet it cut shows as ENOBUFS here.
	if err := unix.Sendto(fd, pkt, 0, sa); err != nil {
		t.Errorf("sending the GSO packet: %v", err)
	}
	after := kDevice(t, c, "insane0").Stats
	coreDropped := ceSysStat(t, tp.Borea, "insane0", "tx_dropped") - coreBefore
	decided := after.RelayedPackets + after.DropPolicy - before.RelayedPackets - before.DropPolicy
	insaneDropped := after.Dropped() - before.Dropped()
	Figure(t, "segments decided", decided)
	Figure(t, "tx_dropped growth", coreDropped)
	t.Logf("relayed %d, dropped by the policy %d, all insane drops %d, tx_dropped +%d",
		after.RelayedPackets-before.RelayedPackets, after.DropPolicy-before.DropPolicy, insaneDropped, coreDropped)
	if decided != segs || insaneDropped != after.DropPolicy-before.DropPolicy {
		t.Errorf("the %d segments of the GSO packet: %d decided (relayed or dropped by the policy), %d insane drops in all; want %d decided, no other cause",
			segs, decided, insaneDropped, segs)
	}
	if coreDropped != insaneDropped {
		t.Errorf("tx_dropped grew by %d, insane's drops by %d: the core dropped what insane never saw", coreDropped, insaneDropped)
	}
}

// ceCapture counts, on dev in ns, the IPv4 and IPv6 packets of protocol
// proto to the given addresses until stop is closed.
type ceCapture struct {
	fd   int
	done chan struct{}
	fin  chan struct{}
	v4   int
	v6   int
}

func ceCaptureStart(t *testing.T, ns, dev string, proto uint8, dst4, dst6 net.IP) *ceCapture {
	t.Helper()
	ifi := GetLink(t, ns, dev).Ifindex
	cp := &ceCapture{done: make(chan struct{}), fin: make(chan struct{})}
	if err := vmnet.Do(ns, func() (err error) {
		cp.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(cp.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi}); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(cp.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(cp.fin)
		buf := make([]byte, 65536)
		for {
			select {
			case <-cp.done:
				return
			default:
			}
			n, _, err := unix.Recvfrom(cp.fd, buf, 0)
			if err != nil {
				continue
			}
			b := buf[:n]
			switch {
			case n >= 20 && b[0]>>4 == 4 && b[9] == proto && net.IP(b[16:20]).Equal(dst4):
				cp.v4++
			case n >= 40 && b[0]>>4 == 6 && b[6] == proto && net.IP(b[24:40]).Equal(dst6):
				cp.v6++
			}
		}
	}()
	return cp
}

// Stop ends the capture after a quiet moment and returns the counts.
func (cp *ceCapture) Stop() (int, int) {
	time.Sleep(300 * time.Millisecond)
	close(cp.done)
	<-cp.fin
	unix.Close(cp.fd)
	return cp.v4, cp.v6
}

// ceRelayTopo: insane0 in netns "app" stacked on veth0 in borea, so that
// only the relay's own route lookup, in borea, can apply borea's IPsec
// policies and rules (app's sockets know none of them). Both families.
func ceRelayTopo(t *testing.T) *Topo {
	t.Helper()
	tp := NewTopo(t)
	app := NewNetns(t, "app")
	RunIn(t, tp.Borea, "ip", "addr", "add", "2001:db8::1/64", "dev", tp.BoreaDev, "nodad")
	RunIn(t, tp.Morgana, "ip", "addr", "add", "2001:db8::2/64", "dev", tp.MorganaDev, "nodad")
	RunIn(t, tp.Borea, "ip", "link", "add", "link", tp.BoreaDev, "name", "insane0", "type", "insane")
	RunIn(t, tp.Borea, "ip", "link", "set", "insane0", "netns", app)
	Sysctl(t, app, "net.ipv4.conf.all.rp_filter", "0")
	RunIn(t, app, "ip", "addr", "add", tp.BoreaIP+"/32", "dev", "insane0")
	RunIn(t, app, "ip", "addr", "add", "2001:db8::1/128", "dev", "insane0", "nodad")
	RunIn(t, app, "ip", "link", "set", "insane0", "up")
	RunIn(t, app, "ip", "route", "add", tp.MorganaIP+"/32", "dev", "insane0")
	RunIn(t, app, "ip", "-6", "route", "add", "2001:db8::2/128", "dev", "insane0")
	// Let the neighbours resolve first, so that nothing is queued.
	RunIn(t, tp.Borea, "ping", "-c", "1", "-W", "2", tp.MorganaIP)
	RunIn(t, tp.Borea, "ping", "-6", "-c", "1", "-W", "2", "2001:db8::2")
	return tp
}

// TestRelayIPsecAndFlowKey: an outbound IPsec policy in the lower's netns
// applies to relayed IPv4 and IPv6 alike (the datagrams leave as ESP), and
// an ip rule on the destination port steers the relay's route (an
// unreachable route in the rule's table: counted as drop_no_route).
func TestRelayIPsecAndFlowKey(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	// The kernel loads the crypto modules it needs by itself.
	for _, m := range []string{"xfrm_user", "esp4", "esp6"} {
		Run(t, "modprobe", m)
	}
	tp := ceRelayTopo(t)
	const enc = "0x00112233445566778899aabbccddeeff"
	const auth = "0x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	for i, pair := range [][2]string{{tp.BoreaIP, tp.MorganaIP}, {"2001:db8::1", "2001:db8::2"}} {
		spi := fmt.Sprint(0x1000 + i)
		state := []string{"ip", "xfrm", "state", "add", "src", pair[0], "dst", pair[1], "proto", "esp", "spi", spi,
			"mode", "transport", "enc", "cbc(aes)", enc, "auth", "hmac(sha256)", auth}
		out, err := TryRunIn(tp.Borea, state...)
		if err != nil {
			// The first use instantiates the algorithm: say what the kernel said, once more.
			t.Logf("xfrm state add: %v: %s; kernel: %s", err, out, RunIn(t, tp.Borea, "sh", "-c", "dmesg | tail -5"))
			RunIn(t, tp.Borea, state...)
		}
		RunIn(t, tp.Borea, "ip", "xfrm", "policy", "add", "src", pair[0], "dst", pair[1], "proto", "17", "dir", "out",
			"tmpl", "src", pair[0], "dst", pair[1], "proto", "esp", "mode", "transport")
	}
	t.Cleanup(func() {
		TryRunIn(tp.Borea, "ip", "xfrm", "policy", "flush")
		TryRunIn(tp.Borea, "ip", "xfrm", "state", "flush")
	})
	const n = 20
	cp := ceCaptureStart(t, tp.Morgana, tp.MorganaDev, unix.IPPROTO_ESP, net.ParseIP(tp.MorganaIP), net.ParseIP("2001:db8::2"))
	_, got4 := UDPFlow(t, "app", tp.Morgana, tp.MorganaIP, vmnet.SendOptions{Count: n})
	_, got6 := UDPFlow(t, "app", tp.Morgana, "2001:db8::2", vmnet.SendOptions{Count: n})
	esp4, esp6 := cp.Stop()
	Figure(t, "ESP packets IPv4", uint64(esp4))
	Figure(t, "ESP packets IPv6", uint64(esp6))
	t.Logf("plain UDP received: IPv4 %d, IPv6 %d", len(got4.Seqs), len(got6.Seqs))
	if esp4 != n || esp6 != n {
		t.Errorf("relayed UDP left as ESP: IPv4 %d of %d, IPv6 %d of %d", esp4, n, esp6, n)
	}
	if len(got4.Seqs) != 0 || len(got6.Seqs) != 0 {
		t.Errorf("plain UDP reached the peer past the IPsec policy: IPv4 %d, IPv6 %d", len(got4.Seqs), len(got6.Seqs))
	}

	// ip rule dport: the relay's lookup carries the ports.
	TryRunIn(tp.Borea, "ip", "xfrm", "policy", "flush")
	const port = 5555
	for _, fam := range []string{"-4", "-6"} {
		RunIn(t, tp.Borea, "ip", fam, "rule", "add", "pref", "100", "dport", fmt.Sprint(port), "table", "100")
	}
	// Table 100 sends the peer's addresses to a gateway whose (static,
	// made up) MAC the peer does not answer to: steered datagrams leave
	// the lower, counted as relayed, and never arrive. (An unreachable
	// route would not show: with the lower as output interface, a failed
	// IPv4 lookup is taken as on-link.)
	const gwMAC = "02:00:00:00:00:99"
	RunIn(t, tp.Borea, "ip", "neigh", "add", "192.0.2.3", "lladdr", gwMAC, "dev", tp.BoreaDev, "nud", "permanent")
	RunIn(t, tp.Borea, "ip", "-6", "neigh", "add", "2001:db8::3", "lladdr", gwMAC, "dev", tp.BoreaDev, "nud", "permanent")
	RunIn(t, tp.Borea, "ip", "route", "add", tp.MorganaIP+"/32", "via", "192.0.2.3", "dev", tp.BoreaDev, "table", "100")
	RunIn(t, tp.Borea, "ip", "-6", "route", "add", "2001:db8::2/128", "via", "2001:db8::3", "dev", tp.BoreaDev, "table", "100")
	t.Cleanup(func() {
		for _, fam := range []string{"-4", "-6"} {
			TryRunIn(tp.Borea, "ip", fam, "rule", "del", "pref", "100")
		}
	})
	c := kDial(t, "app")
	for _, dst := range []string{tp.MorganaIP, "[2001:db8::2]"} {
		before := kDevice(t, c, "insane0").Stats
		r, err := vmnet.Listen(tp.Morgana, fmt.Sprintf("%s:%d", dst, port), 77)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vmnet.Send("app", fmt.Sprintf("%s:%d", dst, port), vmnet.SendOptions{Count: n, Run: 77}); err != nil {
			r.Close()
			t.Fatal(err)
		}
		r.Wait(n, 300*time.Millisecond, 2*time.Second)
		got := r.Close()
		after := kDevice(t, c, "insane0").Stats
		relayed := after.RelayedPackets - before.RelayedPackets
		Figure(t, "datagrams to port 5555 that arrived "+dst, uint64(len(got.Seqs)))
		// The kernel's own IPv6 packets on insane0 may add to the counters,
		// never take away: at least the test's datagrams were relayed.
		if relayed < n || len(got.Seqs) != 0 {
			t.Errorf("to %s port %d (ip rule dport to table 100, a gateway the peer ignores): relayed +%d, %d arrived; want at least +%d relayed, none arrived",
				dst, port, relayed, len(got.Seqs), n)
		}
		// Another port takes the main table.
		_, other := UDPFlow(t, "app", tp.Morgana, strings.Trim(dst, "[]"), vmnet.SendOptions{Count: n})
		if len(other.Seqs) != n {
			t.Errorf("to %s on another port: %d of %d arrived", dst, len(other.Seqs), n)
		}
	}
}

// ceFailNth injects allocation failures into one netlink request at a
// time, as syzkaller does: /proc/thread-self/fail-nth set to n makes the
// n-th slab allocation that this thread's next system calls make fail
// (failslab). Unlike fail_function, no kprobe is involved: fail_function's
// int3 handler runs as an NMI for lockdep and draws its random number there
// (should_fail_ex), which lockdep on the debug kernel reports as an
// inconsistent lock state on batched_entropy_u8 and then turns itself off.
type ceFailNth struct {
	t    *testing.T
	file *os.File // this thread's fail-nth
}

// ceFailNthOpen locks the calling goroutine to its thread (until the test
// ends) and prepares failslab, or skips the test when the kernel has no
// fault injection (the Debian cloud kernel; the debug kernel has it).
func ceFailNthOpen(t *testing.T) *ceFailNth {
	t.Helper()
	const dbg = "/sys/kernel/debug/failslab"
	if _, err := os.Stat(dbg); err != nil {
		TryRun("mount", "-t", "debugfs", "none", "/sys/kernel/debug")
	}
	if _, err := os.Stat(dbg); err != nil {
		t.Skipf("%s is absent (the kernel has no CONFIG_FAILSLAB): make test-debug runs this test", dbg)
	}
	// GFP_KERNEL allocations too (failslab leaves them alone by default),
	// and no stack dump for each injected failure.
	for f, v := range map[string]string{"ignore-gfp-wait": "N", "verbose": "0"} {
		old, err := os.ReadFile(dbg + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dbg+"/"+f, []byte(v), 0); err != nil {
			t.Fatalf("failslab %s: %v", f, err)
		}
		t.Cleanup(func() { _ = os.WriteFile(dbg+"/"+f, old, 0) })
	}
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	f, err := os.OpenFile("/proc/thread-self/fail-nth", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("fail-nth: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return &ceFailNth{t: t, file: f}
}

// do sends payload as one request on n (opened on this thread) with the
// nth allocation failing. It returns the errno and extack message of the
// reply (lost: the reply itself could not be allocated) and whether the
// nth allocation was reached at all.
func (f *ceFailNth) do(n *ttNl, typ, flags uint16, payload []byte, nth int) (errno unix.Errno, msg string, lost, reached bool) {
	t := f.t
	t.Helper()
	if _, err := f.file.WriteAt([]byte(fmt.Sprint(nth)), 0); err != nil {
		t.Fatalf("fail-nth %d: %v", nth, err)
	}
	seq, serr := n.request(typ, flags, payload)
	buf := make([]byte, 16)
	k, err := f.file.ReadAt(buf, 0)
	if err != nil && k == 0 {
		t.Fatalf("reading fail-nth: %v", err)
	}
	left := strings.TrimSpace(string(buf[:k]))
	if _, err := f.file.WriteAt([]byte("0"), 0); err != nil {
		t.Fatalf("fail-nth 0: %v", err)
	}
	reached = left == "0"
	if serr != nil {
		// netlink_sendmsg could not allocate the request's skb.
		if !errors.Is(serr, unix.ENOBUFS) && !errors.Is(serr, unix.ENOMEM) {
			t.Fatalf("failure %d: sendto: %v", nth, serr)
		}
		return serr.(unix.Errno), "", false, reached
	}
	msgs, err := n.replies(seq)
	if err != nil {
		if errors.Is(err, unix.ENOBUFS) {
			return 0, "", true, reached
		}
		t.Fatalf("failure %d: %v", nth, err)
	}
	last := msgs[len(msgs)-1]
	if last.Type != unix.NLMSG_ERROR {
		t.Fatalf("failure %d: the reply ends with message type %d", nth, last.Type)
	}
	errno, msg, err = ttNlErr(last, unix.NLMSG_HDRLEN+len(payload))
	if err != nil {
		t.Fatalf("failure %d: %v", nth, err)
	}
	return errno, msg, false, reached
}

// TestKernelChangeAllOrNothing: a change that fails part way, whichever of
// its allocations fails (the lower's receive hook among them), changes
// nothing: not the transmit policy, not the lower, not the receive policy.
// Each request (over rtnetlink and generic netlink) is sent again and again
// with its 1st, 2nd, 3rd ... slab allocation failing, until it makes no more
// allocations than that: after each, the device is either as before (the
// request refused) or as asked (an allocation that the kernel could do
// without, or the reply lost), never in between. Needs fault injection
// (the debug kernel).
func TestKernelChangeAllOrNothing(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	fn := ceFailNthOpen(t)
	Run(t, "ip", "link", "add", "aon0", "type", "dummy")
	t.Cleanup(func() { TryRun("ip", "link", "del", "aon0") })
	Run(t, "ip", "link", "add", "aon1", "type", "dummy")
	t.Cleanup(func() { TryRun("ip", "link", "del", "aon1") })
	Run(t, "ip", "link", "add", "link", "aon0", "name", "aonins", "type", "insane", "mode", "percent", "25")
	t.Cleanup(func() { TryRun("ip", "link", "del", "aonins") })
	c := kDial(t, "")
	rt, err := ttNlOpen("", unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	gn, err := ttNlOpen("", unix.NETLINK_GENERIC)
	if err != nil {
		t.Fatal(err)
	}
	defer gn.Close()
	fam := ttFamily(t, "")
	ifindex := kDevice(t, c, "aonins").Index

	drop := genl.Policy{Mode: genl.ModeDrop}
	pass := genl.Policy{Mode: genl.ModePass}
	percent25 := func(d *genl.Device) bool {
		return d.Policy.Mode == genl.ModePercent && d.Policy.PercentUnits() == 25_000_000
	}
	rtChange := func(d genl.LinkData) []byte {
		b, err := (&rtnetlink.LinkMessage{
			Family: unix.AF_UNSPEC,
			Index:  uint32(ifindex),
			Attributes: &rtnetlink.LinkAttributes{
				Info: &rtnetlink.LinkInfo{Kind: uapi.LinkKind, Data: &d},
			},
		}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	genlSet := func(attrs func(ae *netlink.AttributeEncoder)) []byte {
		ae := netlink.NewAttributeEncoder()
		ae.String(uapi.DeviceAIfname, "aonins")
		attrs(ae)
		b, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{uapi.CmdSetDevice, uapi.GenlVersion, 0, 0}, b...)
	}
	rxPass := func(ae *netlink.AttributeEncoder) {
		ae.Nested(uapi.DeviceARxPolicy, func(ne *netlink.AttributeEncoder) error {
			ne.Uint32(uapi.PolicyAMode, uapi.ModePass)
			return nil
		})
	}
	type change struct {
		name    string
		rx      bool // the receive policy is on before the change
		n       *ttNl
		typ     uint16
		payload []byte
		before  func(d *genl.Device) bool
		after   func(d *genl.Device) bool
	}
	before := func(rx bool) func(d *genl.Device) bool {
		return func(d *genl.Device) bool {
			return percent25(d) && d.LowerName == "aon0" && (d.RxPolicy != nil) == rx &&
				(!rx || d.RxPolicy.Mode == genl.ModePass)
		}
	}
	dropRxPass := func(lower string) func(d *genl.Device) bool {
		return func(d *genl.Device) bool {
			return d.Policy.Mode == genl.ModeDrop && d.LowerName == lower && d.RxPolicy != nil &&
				d.RxPolicy.Mode == genl.ModePass
		}
	}
	changes := []change{
		{"changelink tx + rx policy", false, rt, unix.RTM_NEWLINK,
			rtChange(genl.LinkData{Policy: &drop, RxPolicy: &pass}), before(false), dropRxPass("aon0")},
		{"SET_DEVICE policy + rx policy", false, gn, fam,
			genlSet(func(ae *netlink.AttributeEncoder) { kPolicy(uapi.ModeDrop, nil)(ae); rxPass(ae) }),
			before(false), dropRxPass("aon0")},
		{"SET_DEVICE lower + policy + rx policy", false, gn, fam,
			genlSet(func(ae *netlink.AttributeEncoder) {
				ae.String(uapi.DeviceALowerIfname, "aon1")
				kPolicy(uapi.ModeDrop, nil)(ae)
				rxPass(ae)
			}), before(false), dropRxPass("aon1")},
		{"SET_DEVICE lower + policy, rx on", true, gn, fam,
			genlSet(func(ae *netlink.AttributeEncoder) {
				ae.String(uapi.DeviceALowerIfname, "aon1")
				kPolicy(uapi.ModeDrop, nil)(ae)
			}), before(true), dropRxPass("aon1")},
	}
	reset := func(rx bool) {
		t.Helper()
		cfg := genl.Config{Lower: "aon0", Policy: &genl.Policy{Mode: genl.ModePercent, Percent: 25}, RxOff: !rx}
		if rx {
			cfg = genl.Config{Lower: "aon0", Policy: cfg.Policy, RxPolicy: &pass}
		}
		if err := c.ConfigureDevice("aonins", cfg); err != nil {
			t.Fatalf("restoring the device: %v", err)
		}
	}
	const most = 400
	for _, ch := range changes {
		reset(ch.rx)
		if d := kDevice(t, c, "aonins"); !ch.before(d) {
			t.Fatalf("%s: the device before: policy %+v, lower %q, rx %+v", ch.name, d.Policy, d.LowerName, d.RxPolicy)
		}
		var refused, done, lost, hook int
		nth := 1
		for ; nth <= most; nth++ {
			errno, msg, gone, reached := fn.do(ch.n, ch.typ, unix.NLM_F_REQUEST|unix.NLM_F_ACK, ch.payload, nth)
			d := kDevice(t, c, "aonins")
			if !reached {
				// Every allocation of the request succeeded.
				if errno != 0 || gone || !ch.after(d) {
					t.Errorf("%s without a failure: %v %q (reply lost %v); the device: policy %+v, lower %q, rx %+v",
						ch.name, errno, msg, gone, d.Policy, d.LowerName, d.RxPolicy)
				}
				break
			}
			switch {
			case ch.before(d) && (errno != 0):
				refused++
				if errno == unix.ENOMEM && strings.Contains(msg, "out of memory for the receive hook") {
					hook++
				}
			case ch.after(d) && (errno == 0 || gone):
				done++
				if gone {
					lost++
				}
				reset(ch.rx)
			default:
				t.Errorf("%s, allocation %d failing: %v %q (reply lost %v); the device half changed or the reply wrong: policy %+v, lower %q, rx %+v",
					ch.name, nth, errno, msg, gone, d.Policy, d.LowerName, d.RxPolicy)
				reset(ch.rx)
			}
		}
		if nth > most {
			t.Errorf("%s: still reaching a failure at allocation %d", ch.name, most)
		}
		t.Logf("%s: %d allocations: %d refused (%d by the receive hook's, with its message), %d done (%d of them with the reply lost)",
			ch.name, nth-1, refused, hook, done, lost)
		// The lower's receive hook is needed (rx turned on, or moved to
		// a new lower): its allocation failing refuses the change.
		if hook == 0 {
			t.Errorf("%s: no failure refused the change with ENOMEM and the receive hook's message", ch.name)
		}
	}
}

// ceAttrOffset returns the offset, within b (attributes), of the nth
// (from 0) attribute of type typ at the end of path, each step of path
// the first attribute of that type; -1 if there is none.
func ceAttrOffset(b []byte, nth int, typ uint16, path ...uint16) int {
	off := 0
	for _, p := range path {
		found := false
		for i := 0; i+4 <= len(b); {
			l := int(binary.NativeEndian.Uint16(b[i:]))
			if binary.NativeEndian.Uint16(b[i+2:])&0x3fff == p {
				off += i + 4
				b = b[i+4 : i+l]
				found = true
				break
			}
			i += nlmAlign(l)
		}
		if !found {
			return -1
		}
	}
	for i := 0; i+4 <= len(b); {
		l := int(binary.NativeEndian.Uint16(b[i:]))
		if binary.NativeEndian.Uint16(b[i+2:])&0x3fff == typ {
			if nth == 0 {
				return off + i
			}
			nth--
		}
		i += nlmAlign(l)
	}
	return -1
}

// TestKernelRefusesDuplicateAttrs: an attribute given twice is refused
// at every level, naming it and pointing at its second occurrence, and
// nothing changes.
func TestKernelRefusesDuplicateAttrs(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	Run(t, "ip", "link", "add", "dup0", "type", "dummy")
	t.Cleanup(func() { TryRun("ip", "link", "del", "dup0") })
	Run(t, "ip", "link", "add", "link", "dup0", "name", "dupins", "type", "insane", "mode", "percent", "25")
	t.Cleanup(func() { TryRun("ip", "link", "del", "dupins") })
	c := kDial(t, "")
	same := func(what string) {
		t.Helper()
		d := kDevice(t, c, "dupins")
		if d.Policy.Mode != genl.ModePercent || d.Policy.PercentUnits() != 25_000_000 || d.RxPolicy != nil {
			t.Errorf("%s: the device changed: policy %+v, rx %+v", what, d.Policy, d.RxPolicy)
		}
	}
	check := func(what string, err error, msg string, want int) {
		t.Helper()
		kRefused(t, what, err, unix.EINVAL, msg)
		var oe *netlink.OpError
		if errors.As(err, &oe) {
			if oe.Message != msg {
				t.Errorf("%s: message %q, want %q", what, oe.Message, msg)
			}
			if oe.Offset != want {
				t.Errorf("%s: offset %d, want %d", what, oe.Offset, want)
			}
		}
		same(what)
	}
	step := func(ae *netlink.AttributeEncoder, dupMode bool) {
		ae.Nested(uapi.PolicyASteps, func(se *netlink.AttributeEncoder) error {
			se.Nested(uapi.StepsAStep, func(st *netlink.AttributeEncoder) error {
				st.Uint32(uapi.PolicyAMode, uapi.ModePass)
				st.Uint64(uapi.PolicyADurationNs, 1e9)
				if dupMode {
					st.Uint32(uapi.PolicyAMode, uapi.ModeDrop)
				}
				return nil
			})
			return nil
		})
	}
	policyCases := []struct {
		name string
		body func(ae *netlink.AttributeEncoder)
		msg  string
		typ  uint16
		path []uint16 // within the policy
	}{
		{"MODE twice", func(ae *netlink.AttributeEncoder) {
			ae.Uint32(uapi.PolicyAMode, uapi.ModePercent)
			ae.Uint32(uapi.PolicyAPercent, 1)
			ae.Uint32(uapi.PolicyAMode, uapi.ModeDrop)
		}, "INSANE_POLICY_A_MODE is given more than once", uapi.PolicyAMode, nil},
		{"PERCENT twice", func(ae *netlink.AttributeEncoder) {
			ae.Uint32(uapi.PolicyAMode, uapi.ModePercent)
			ae.Uint32(uapi.PolicyAPercent, 1)
			ae.Uint32(uapi.PolicyAPercent, 2)
		}, "INSANE_POLICY_A_PERCENT is given more than once", uapi.PolicyAPercent, nil},
		{"STEPS twice", func(ae *netlink.AttributeEncoder) {
			ae.Uint32(uapi.PolicyAMode, uapi.ModeSchedule)
			step(ae, false)
			step(ae, false)
		}, "INSANE_POLICY_A_STEPS is given more than once", uapi.PolicyASteps, nil},
		{"MODE twice in a step", func(ae *netlink.AttributeEncoder) {
			ae.Uint32(uapi.PolicyAMode, uapi.ModeSchedule)
			step(ae, true)
		}, "INSANE_POLICY_A_MODE is given more than once", uapi.PolicyAMode,
			[]uint16{uapi.PolicyASteps, uapi.StepsAStep}},
	}

	// Generic netlink: the request's top level, then each level of the
	// transmit and the receive policy.
	r := kRawDial(t)
	const genlHdr = 16 + 4
	encode := func(f func(ae *netlink.AttributeEncoder)) []byte {
		ae := netlink.NewAttributeEncoder()
		f(ae)
		b, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	top := func(ae *netlink.AttributeEncoder) {
		ae.String(uapi.DeviceAIfname, "dupins")
		kPolicy(uapi.ModeDrop, nil)(ae)
		kPolicy(uapi.ModePass, nil)(ae)
	}
	_, err := r.do(uapi.CmdSetDevice, 0, top)
	check("genl INSANE_DEVICE_A_POLICY twice", err, "INSANE_DEVICE_A_POLICY is given more than once",
		genlHdr+ceAttrOffset(encode(top), 1, uapi.DeviceAPolicy))
	name := func(ae *netlink.AttributeEncoder) {
		ae.String(uapi.DeviceAIfname, "dupins")
		ae.String(uapi.DeviceAIfname, "dupins")
	}
	_, err = r.do(uapi.CmdGetDevice, 0, name)
	check("genl GET_DEVICE INSANE_DEVICE_A_IFNAME twice", err, "INSANE_DEVICE_A_IFNAME is given more than once",
		genlHdr+ceAttrOffset(encode(name), 1, uapi.DeviceAIfname))
	for _, nest := range []uint16{uapi.DeviceAPolicy, uapi.DeviceARxPolicy} {
		for _, pc := range policyCases {
			if nest == uapi.DeviceARxPolicy && pc.typ == uapi.PolicyASteps {
				continue // kept short: the same parser
			}
			f := func(ae *netlink.AttributeEncoder) {
				ae.String(uapi.DeviceAIfname, "dupins")
				ae.Nested(nest, func(ne *netlink.AttributeEncoder) error { pc.body(ne); return nil })
			}
			_, err := r.do(uapi.CmdSetDevice, 0, f)
			check(fmt.Sprintf("genl nest %d: %s", nest, pc.name), err, pc.msg,
				genlHdr+ceAttrOffset(encode(f), 1, pc.typ, append([]uint16{nest}, pc.path...)...))
		}
	}

	// rtnetlink: IFLA_INFO_DATA, then INSANE_POLICY_A_RX in it.
	rc := kRtnlDial(t)
	const rtHdr = 16 + unix.SizeofIfInfomsg
	for _, rx := range []bool{false, true} {
		for _, pc := range policyCases {
			f := func(ae *netlink.AttributeEncoder) {
				ae.String(unix.IFLA_IFNAME, "dupins")
				ae.Nested(unix.IFLA_LINKINFO, func(li *netlink.AttributeEncoder) error {
					li.String(unix.IFLA_INFO_KIND, uapi.LinkKind)
					li.Nested(unix.IFLA_INFO_DATA, func(d *netlink.AttributeEncoder) error {
						if rx {
							d.Nested(uapi.PolicyARx, func(ne *netlink.AttributeEncoder) error { pc.body(ne); return nil })
						} else {
							pc.body(d)
						}
						return nil
					})
					return nil
				})
			}
			b := encode(f)
			path := []uint16{unix.IFLA_LINKINFO, unix.IFLA_INFO_DATA}
			if rx {
				path = append(path, uapi.PolicyARx)
			}
			_, err := rc.Execute(netlink.Message{
				Header: netlink.Header{Type: unix.RTM_NEWLINK, Flags: netlink.Request | netlink.Acknowledge},
				Data:   append(make([]byte, unix.SizeofIfInfomsg), b...),
			})
			check(fmt.Sprintf("rtnetlink rx=%v: %s", rx, pc.name), err, pc.msg,
				rtHdr+ceAttrOffset(b, 1, pc.typ, append(path, pc.path...)...))
		}
	}
}
