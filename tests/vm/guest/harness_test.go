//go:build vmtest

// Package guest holds the tests that run inside the QEMU guest booted by
// tests/vm/runner (make vm-test). They need root, a kernel that can load
// insane.ko, iproute2 and ethtool, and they change the machine's network
// configuration, so TestMain refuses to run anywhere but in that guest.
//
// This file is the shared harness: commands, network namespaces, the
// article's two-host topology, the module, link counters, numbered UDP
// traffic and the kernel log.
package guest

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insane-netdev/insane/tests/vm/internal/figure"
	"github.com/insane-netdev/insane/tests/vm/internal/kmsg"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

// guestMarker exists only in the VM's initramfs.
const guestMarker = "/etc/vmtest/mode"

func TestMain(m *testing.M) {
	if _, err := os.Stat(guestMarker); err != nil {
		fmt.Fprintln(os.Stderr, "guest tests run only inside the test VM: use make vm-test")
		os.Exit(2)
	}
	// Reverse-path filtering would drop replies that come back on the
	// lower device while the route points at insane0.
	for _, key := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"} {
		if err := sysctl("", key, "0"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}

// TryRun runs a command and returns its standard output. A failure's error
// names the command and carries its exit status and standard error.
func TryRun(args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("TryRun: no command")
	}
	cmd := exec.Command(args[0], args[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(string(out))
		}
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.ReplaceAll(msg, "\n", "; "))
	}
	return string(out), nil
}

// Run runs a command and fails the test if it fails. It returns the
// command's standard output.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := TryRun(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Sh runs a bash command line and fails the test if it fails.
func Sh(t testing.TB, script string) string {
	t.Helper()
	return Run(t, "bash", "-c", script)
}

// nsArgs prefixes args with ip netns exec NS, unless ns is empty.
func nsArgs(ns string, args []string) []string {
	if ns == "" {
		return args
	}
	return append([]string{"ip", "netns", "exec", ns}, args...)
}

// TryRunIn runs a command inside network namespace ns ("" for the initial
// one) with ip netns exec.
func TryRunIn(ns string, args ...string) (string, error) { return TryRun(nsArgs(ns, args)...) }

// RunIn runs a command inside network namespace ns and fails the test if it
// fails.
func RunIn(t testing.TB, ns string, args ...string) string {
	t.Helper()
	return Run(t, nsArgs(ns, args)...)
}

// WaitFor polls cond every 10 ms until it returns true, and fails the test
// if that takes longer than timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sysctl(ns, key, value string) error {
	_, err := TryRunIn(ns, "sysctl", "-q", "-w", key+"="+value)
	return err
}

// Sysctl sets a sysctl inside network namespace ns and fails the test if it
// cannot.
func Sysctl(t testing.TB, ns, key, value string) {
	t.Helper()
	if err := sysctl(ns, key, value); err != nil {
		t.Fatal(err)
	}
}

// NewNetns creates network namespace name with its loopback up, and deletes
// it when the test ends.
func NewNetns(t testing.TB, name string) string {
	t.Helper()
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if _, err := TryRun("ip", "netns", "del", name); err != nil {
			t.Error(err)
		}
	})
	RunIn(t, name, "ip", "link", "set", "lo", "up")
	return name
}

// Veth describes a veth pair between two network namespaces. An empty
// namespace is the initial one; an empty address leaves that end without one.
type Veth struct {
	NS1, Name1, Addr1 string // Addr is a prefix, as in 192.0.2.1/24
	NS2, Name2, Addr2 string
}

// AddVeth creates the pair, assigns the addresses and brings both ends up.
// Deleting either namespace deletes the pair.
func AddVeth(t testing.TB, v Veth) {
	t.Helper()
	args := []string{"ip", "link", "add", v.Name1}
	if v.NS1 != "" {
		args = append(args, "netns", v.NS1)
	}
	args = append(args, "type", "veth", "peer", "name", v.Name2)
	if v.NS2 != "" {
		args = append(args, "netns", v.NS2)
	}
	Run(t, args...)
	for _, end := range []struct{ ns, name, addr string }{{v.NS1, v.Name1, v.Addr1}, {v.NS2, v.Name2, v.Addr2}} {
		if end.addr != "" {
			RunIn(t, end.ns, "ip", "addr", "add", end.addr, "dev", end.name)
		}
		RunIn(t, end.ns, "ip", "link", "set", end.name, "up")
	}
}

// Topo is the article's topology: host borea and host morgana, here two
// network namespaces joined by a veth pair on a documentation prefix.
type Topo struct {
	Borea, Morgana       string // namespace names
	BoreaDev, MorganaDev string // the veth ends
	BoreaIP, MorganaIP   string // their IPv4 addresses
}

// NewTopo creates namespaces "borea" and "morgana" with veth0
// (192.0.2.1/24) in borea and veth1 (192.0.2.2/24) in morgana. It is not
// for parallel tests: the names are fixed. With AddInsane or
// RouteViaInsane, borea's traffic to morgana goes through insane0:
//
//	netns borea                                     netns morgana
//	+-------------------------------------+         +----------------+
//	|  socket                             |         |  socket        |
//	|    | route 192.0.2.2/32 dev insane0 |         |    ^           |
//	|    v                                |         |    |           |
//	|  insane0 (192.0.2.1/32) -- relay -> veth0 ====== veth1          |
//	|                       policy drops  | 192.0.2.1/24  192.0.2.2/24 |
//	+-------------------------------------+         +----------------+
//
// Replies from morgana come back on veth0, beside insane0.
func NewTopo(t testing.TB) *Topo {
	t.Helper()
	tp := &Topo{
		Borea: "borea", Morgana: "morgana",
		BoreaDev: "veth0", MorganaDev: "veth1",
		BoreaIP: "192.0.2.1", MorganaIP: "192.0.2.2",
	}
	NewNetns(t, tp.Borea)
	NewNetns(t, tp.Morgana)
	for _, ns := range []string{tp.Borea, tp.Morgana} {
		Sysctl(t, ns, "net.ipv4.conf.all.rp_filter", "0")
		Sysctl(t, ns, "net.ipv4.conf.default.rp_filter", "0")
	}
	AddVeth(t, Veth{
		NS1: tp.Borea, Name1: tp.BoreaDev, Addr1: tp.BoreaIP + "/24",
		NS2: tp.Morgana, Name2: tp.MorganaDev, Addr2: tp.MorganaIP + "/24",
	})
	return tp
}

// AddInsane creates insane device name on borea's veth with ip link, passing
// extra arguments after "type insane", and routes morgana through it (see
// RouteViaInsane).
func (tp *Topo) AddInsane(t testing.TB, name string, extra ...string) {
	t.Helper()
	RunIn(t, tp.Borea, append([]string{"ip", "link", "add", "link", tp.BoreaDev, "name", name, "type", "insane"}, extra...)...)
	tp.RouteViaInsane(t, name)
}

// RouteViaInsane does what the article does on borea for an existing insane
// device: gives it borea's address as a /32, brings it up and routes
// morgana's address through it. IPv6 is disabled on the device so that its
// counters see only the test's traffic.
func (tp *Topo) RouteViaInsane(t testing.TB, dev string) {
	t.Helper()
	Sysctl(t, tp.Borea, "net.ipv6.conf."+dev+".disable_ipv6", "1")
	Sysctl(t, tp.Borea, "net.ipv4.conf."+dev+".rp_filter", "0")
	RunIn(t, tp.Borea, "ip", "addr", "add", tp.BoreaIP+"/32", "dev", dev)
	RunIn(t, tp.Borea, "ip", "link", "set", dev, "up")
	RunIn(t, tp.Borea, "ip", "route", "add", tp.MorganaIP+"/32", "dev", dev)
}

// UDP sends opt.Count numbered datagrams from borea to morgana's address
// and returns what was sent and what arrived. The receiver waits for the
// stragglers until nothing has arrived for 500 ms.
func (tp *Topo) UDP(t testing.TB, opt vmnet.SendOptions) (vmnet.Sent, vmnet.Received) {
	t.Helper()
	return UDPFlow(t, tp.Borea, tp.Morgana, tp.MorganaIP, opt)
}

var udpRun uint64

// UDPFlow sends opt.Count numbered datagrams from namespace from to address
// dst (an IP) on a receiver in namespace to, and returns what was sent and
// which datagrams arrived. opt.Run is chosen when zero.
func UDPFlow(t testing.TB, from, to, dst string, opt vmnet.SendOptions) (vmnet.Sent, vmnet.Received) {
	t.Helper()
	if opt.Run == 0 {
		udpRun++
		opt.Run = uint64(os.Getpid())<<32 | udpRun
	}
	host := dst
	if strings.Contains(dst, ":") {
		host = "[" + dst + "]"
	}
	r, err := vmnet.Listen(to, host+":0", opt.Run)
	if err != nil {
		t.Fatalf("listening in %s: %v", to, err)
	}
	sent, err := vmnet.Send(from, fmt.Sprintf("%s:%d", host, r.Addr().Port), opt)
	if err != nil {
		r.Close()
		t.Fatalf("sending from %s: %v", from, err)
	}
	r.Wait(opt.Count, 500*time.Millisecond, 10*time.Second)
	return sent, r.Close()
}

// TCPTransfer sends size bytes of a fixed pattern over TCP from namespace
// from to a listener on address ip (IPv4) in namespace to, within timeout:
// the sender half-closes after the last byte, the receiver counts and
// hashes everything until then and closes, and the sender reads that
// close, so that both FINs have been sent when it returns. It returns how
// long the receiver took from the connection's setup to the sender's FIN,
// or an error unless every byte arrived intact.
func TCPTransfer(t *testing.T, from, to, ip string, size int, timeout time.Duration) (time.Duration, error) {
	t.Helper()
	var ln net.Listener
	if err := vmnet.Do(to, func() error {
		var err error
		ln, err = net.Listen("tcp4", ip+":0")
		return err
	}); err != nil {
		t.Fatalf("listening in %s: %v", to, err)
	}
	defer ln.Close()
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(timeout))
		h := sha256.New()
		n, err := io.Copy(h, conn)
		r := result{n: n, err: err}
		copy(r.sum[:], h.Sum(nil))
		done <- r
	}()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	var conn net.Conn
	if err := vmnet.Do(from, func() error {
		var err error
		conn, err = net.DialTimeout("tcp4", ln.Addr().String(), 30*time.Second)
		return err
	}); err != nil {
		return 0, fmt.Errorf("connecting from %s: %w", from, err)
	}
	defer conn.Close()
	start := time.Now()
	_ = conn.SetDeadline(start.Add(timeout))
	if _, err := io.Copy(conn, bytes.NewReader(data)); err != nil {
		return 0, fmt.Errorf("sending: %w", err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, fmt.Errorf("closing the sending half: %w", err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(timeout):
		return 0, fmt.Errorf("the transfer did not complete within %v", timeout)
	}
	took := time.Since(start)
	if r.err != nil || r.n != int64(size) || r.sum != sha256.Sum256(data) {
		return took, fmt.Errorf("%s received %d bytes (err %v), want %d intact", to, r.n, r.err, size)
	}
	// The receiver has closed: the sender reads its FIN, and
	// acknowledges it.
	if _, err := io.Copy(io.Discard, conn); err != nil {
		return took, fmt.Errorf("reading the receiver's close: %w", err)
	}
	return took, nil
}

// Module helpers. The kernel autoloads insane through its rtnl-link alias
// when ip link add names the type.

// ModuleLoaded reports whether insane is loaded.
func ModuleLoaded() bool {
	_, err := os.Stat("/sys/module/insane")
	return err == nil
}

// LoadModule loads insane with modprobe.
func LoadModule(t testing.TB) {
	t.Helper()
	Run(t, "modprobe", "insane")
}

// UnloadModule removes insane, waiting up to 10 s for devices that are
// still being destroyed to let go of it.
func UnloadModule(t testing.TB) {
	t.Helper()
	if !ModuleLoaded() {
		return
	}
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err = TryRun("modprobe", "-r", "insane"); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal(err)
}

// Link is the part of ip -d -j link show that the tests look at.
type Link struct {
	Ifindex   int      `json:"ifindex"`
	Ifname    string   `json:"ifname"`
	Link      string   `json:"link"` // the lower device's name, when ip knows it
	Flags     []string `json:"flags"`
	MTU       int      `json:"mtu"`
	Operstate string   `json:"operstate"`
	LinkType  string   `json:"link_type"`
	Linkinfo  struct {
		InfoKind string          `json:"info_kind"`
		InfoData json.RawMessage `json:"info_data"`
	} `json:"linkinfo"`
	Stats64 struct {
		RX LinkCounters `json:"rx"`
		TX LinkCounters `json:"tx"`
	} `json:"stats64"`
}

// LinkCounters are one direction's counters from ip -s -j link show.
type LinkCounters struct {
	Bytes   uint64 `json:"bytes"`
	Packets uint64 `json:"packets"`
	Errors  uint64 `json:"errors"`
	Dropped uint64 `json:"dropped"`
}

// HasFlag reports whether the link has the flag, as ip prints it ("UP",
// "LOWER_UP", "NO-CARRIER", ...).
func (l Link) HasFlag(f string) bool {
	for _, g := range l.Flags {
		if g == f {
			return true
		}
	}
	return false
}

// TryGetLink reads device dev in namespace ns with ip -d -s -j link show.
func TryGetLink(ns, dev string) (Link, error) {
	out, err := TryRunIn(ns, "ip", "-d", "-s", "-j", "link", "show", "dev", dev)
	if err != nil {
		return Link{}, err
	}
	var links []Link
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return Link{}, fmt.Errorf("ip -j link show dev %s: %v", dev, err)
	}
	if len(links) != 1 {
		return Link{}, fmt.Errorf("ip -j link show dev %s: %d links", dev, len(links))
	}
	return links[0], nil
}

// GetLink reads device dev in namespace ns and fails the test if it cannot.
func GetLink(t testing.TB, ns, dev string) Link {
	t.Helper()
	l, err := TryGetLink(ns, dev)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// KmsgMark is a position in the kernel log.
type KmsgMark struct{ seq int64 }

// MarkKmsg returns the current end of the kernel log.
func MarkKmsg(t testing.TB) KmsgMark {
	t.Helper()
	recs, err := readKmsg()
	if err != nil {
		t.Fatal(err)
	}
	m := KmsgMark{seq: -1}
	if len(recs) > 0 {
		m.seq = recs[len(recs)-1].seq
	}
	return m
}

// Since returns the kernel log messages logged after the mark.
func (m KmsgMark) Since(t testing.TB) []string {
	t.Helper()
	recs, err := readKmsg()
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, r := range recs {
		if r.seq > m.seq {
			msgs = append(msgs, r.msg)
		}
	}
	return msgs
}

// Check fails the test if the kernel logged a warning, bug, oops, leak or
// similar problem after the mark.
func (m KmsgMark) Check(t testing.TB) {
	t.Helper()
	var bad []string
	for _, msg := range m.Since(t) {
		if kmsg.Bad(msg) {
			bad = append(bad, msg)
		}
	}
	if len(bad) > 0 {
		t.Errorf("kernel log since the test began:\n%s", strings.Join(bad, "\n"))
	}
}

// Figure logs one of a test's headline figures ("lower removals", "fuzz
// messages", ...). The runner collects them from the test log and prints them
// in its summary, so that a run shows what it did without -v. Log a figure
// once the work it counts is done and checked.
func Figure(t testing.TB, name string, n uint64) {
	t.Helper()
	t.Log(figure.Line(name, n))
}

// CheckKmsg marks the kernel log now and checks it when the test ends.
func CheckKmsg(t testing.TB) {
	t.Helper()
	m := MarkKmsg(t)
	t.Cleanup(func() { m.Check(t) })
}

type kmsgRecord struct {
	seq int64
	msg string
}

// readKmsg returns every record in the kernel's log buffer.
func readKmsg() ([]kmsgRecord, error) {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("/dev/kmsg: %w", err)
	}
	defer unix.Close(fd)
	var recs []kmsgRecord
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return recs, nil
		}
		if errors.Is(err, unix.EPIPE) {
			continue // overwritten records: skip to the next one
		}
		if err != nil {
			return nil, fmt.Errorf("/dev/kmsg: %w", err)
		}
		// "prio,seq,usec,flags;message\n KEY=value\n..."
		head, body, ok := strings.Cut(string(buf[:n]), ";")
		if !ok {
			continue
		}
		fields := strings.Split(head, ",")
		if len(fields) < 2 {
			continue
		}
		seq, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		msg, _, _ := strings.Cut(body, "\n")
		recs = append(recs, kmsgRecord{seq: seq, msg: msg})
	}
}

// BecomeNobody turns the calling process, which starts as root, into uid and
// gid 65534 with no supplementary groups. Since Go applies it to every thread,
// the process loses every capability. For helper processes re-executed from
// the test binary: the harness's TestMain itself needs root.
func BecomeNobody(t testing.TB) {
	t.Helper()
	if err := syscall.Setgroups(nil); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setgid(65534); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setuid(65534); err != nil {
		t.Fatal(err)
	}
}
