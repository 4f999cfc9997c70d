// Package vmnet holds the network helpers shared by the guest tests and the
// demo: running code inside a network namespace, and an exact UDP sender and
// receiver that number their datagrams, so that a test knows which ones
// arrived rather than only how many.
package vmnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// NetnsDir is where iproute2 keeps named network namespaces.
const NetnsDir = "/run/netns"

// Do runs fn on an OS thread that has joined network namespace ns: a name
// under NetnsDir, or a path. With ns empty it runs fn in the caller's
// namespace. Sockets created by fn stay in ns for their whole life, so they
// can be used from any goroutine after Do returns.
func Do(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	path := ns
	if !filepath.IsAbs(ns) {
		path = filepath.Join(NetnsDir, ns)
	}
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("netns %s: %w", ns, err)
	}
	defer target.Close()

	errc := make(chan error, 1)
	go func() {
		// The goroutine keeps its thread locked unless the thread is
		// back in its own namespace, so a thread left in the wrong
		// namespace dies with the goroutine instead of being reused.
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		defer self.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back from %s: %w", ns, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Header layout of every datagram: magic, run, sequence number.
const (
	magic      = "insaneVM"
	headerSize = len(magic) + 8 + 8
	// MinSize is the smallest payload Send accepts.
	MinSize = headerSize
)

func encode(buf []byte, run, seq uint64) {
	copy(buf, magic)
	binary.BigEndian.PutUint64(buf[len(magic):], run)
	binary.BigEndian.PutUint64(buf[len(magic)+8:], seq)
}

func decode(buf []byte) (run, seq uint64, ok bool) {
	if len(buf) < headerSize || string(buf[:len(magic)]) != magic {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(buf[len(magic):]), binary.BigEndian.Uint64(buf[len(magic)+8:]), true
}

// Receiver collects numbered datagrams of one run on a UDP socket.
type Receiver struct {
	conn *net.UDPConn
	run  uint64

	mu      sync.Mutex
	arrived map[uint64]time.Time
	dups    int
	last    time.Time
	changed chan struct{}
	done    chan struct{}
}

// receiveBuffer is every Receiver's socket buffer. A test counts what
// arrives against what insane relayed, so the receiver must not drop what
// it is sent while a loaded host keeps it from reading: with the default
// net.core.rmem_max (208 KB) a burst of 200,000 datagrams lost 559 of them
// at the socket on a fresh machine running two guests.
const receiveBuffer = 4 << 20

// setReadBuffer sets conn's receive buffer to n bytes whatever
// net.core.rmem_max says (SO_RCVBUFFORCE: the guest's tests run as root),
// or within rmem_max where that is refused.
func setReadBuffer(conn *net.UDPConn, n int) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil {
		return err
	}
	if serr == nil {
		return nil
	}
	return conn.SetReadBuffer(n)
}

// Listen opens a Receiver for datagrams of run on addr ("ip:port"; port 0
// picks one) inside network namespace ns ("" for the current one).
func Listen(ns, addr string, run uint64) (*Receiver, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	var conn *net.UDPConn
	err = Do(ns, func() error {
		var err error
		conn, err = net.ListenUDP("udp", ua)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := setReadBuffer(conn, receiveBuffer); err != nil {
		conn.Close()
		return nil, err
	}
	r := &Receiver{
		conn:    conn,
		run:     run,
		arrived: make(map[uint64]time.Time),
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	go r.loop()
	return r, nil
}

func (r *Receiver) loop() {
	defer close(r.done)
	buf := make([]byte, 65536)
	for {
		n, _, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		run, seq, ok := decode(buf[:n])
		if !ok || run != r.run {
			continue
		}
		now := time.Now()
		r.mu.Lock()
		if _, dup := r.arrived[seq]; dup {
			r.dups++
		} else {
			r.arrived[seq] = now
		}
		r.last = now
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
	}
}

// Addr is the address the receiver listens on.
func (r *Receiver) Addr() *net.UDPAddr { return r.conn.LocalAddr().(*net.UDPAddr) }

// Count is the number of distinct datagrams received so far.
func (r *Receiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.arrived)
}

// Wait returns once n distinct datagrams have arrived, or once no datagram has
// arrived for quiet, or after max, whichever comes first. It returns the
// count at that moment. The quiet period counts from the later of the last
// arrival and the call, so datagrams still in flight when the sender
// finished get at least quiet to arrive.
func (r *Receiver) Wait(n int, quiet, max time.Duration) int {
	start := time.Now()
	deadline := start.Add(max)
	for {
		r.mu.Lock()
		count, last, changed := len(r.arrived), r.last, r.changed
		r.mu.Unlock()
		if count >= n {
			return count
		}
		now := time.Now()
		if now.After(deadline) {
			return count
		}
		if last.Before(start) {
			last = start
		}
		wake := last.Add(quiet)
		if wake.After(deadline) {
			wake = deadline
		}
		if !wake.After(now) {
			return count
		}
		select {
		case <-changed:
		case <-time.After(wake.Sub(now)):
			// Woke from a timer: quiet long enough unless something
			// arrived meanwhile, which the loop rechecks.
			r.mu.Lock()
			moved := r.last.After(last)
			r.mu.Unlock()
			if !moved {
				return r.Count()
			}
		}
	}
}

// Received is what a Receiver saw.
type Received struct {
	// Seqs lists the distinct sequence numbers received, ascending.
	Seqs []uint64
	// At maps each received sequence number to its first arrival time.
	At map[uint64]time.Time
	// Duplicates counts datagrams received more than once.
	Duplicates int
}

// Has reports whether sequence number seq arrived.
func (rc Received) Has(seq uint64) bool {
	_, ok := rc.At[seq]
	return ok
}

// Close stops the receiver and returns what it received.
func (r *Receiver) Close() Received {
	r.conn.Close()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	rc := Received{At: make(map[uint64]time.Time, len(r.arrived)), Duplicates: r.dups}
	for seq, at := range r.arrived {
		rc.Seqs = append(rc.Seqs, seq)
		rc.At[seq] = at
	}
	sort.Slice(rc.Seqs, func(i, j int) bool { return rc.Seqs[i] < rc.Seqs[j] })
	return rc
}

// SendOptions describes a burst of numbered datagrams.
type SendOptions struct {
	// Count datagrams are sent, numbered 0 to Count-1.
	Count int
	// Interval is the time between two sends; 0 sends back to back.
	Interval time.Duration
	// Size is the UDP payload size, at least MinSize (the default).
	Size int
	// Run tags the datagrams so that a Receiver ignores other runs.
	Run uint64
	// Pin sends from a thread pinned to CPU, so that every datagram is
	// transmitted on that CPU (the device is noqueue): per-CPU state in
	// the kernel then sees one sequence.
	Pin bool
	CPU int
}

// Sent is what Send did.
type Sent struct {
	// At holds the time each datagram was handed to the kernel.
	At []time.Time
	// Errors counts sends that the kernel refused (the datagram is then
	// not on the wire); FirstError is the first of them.
	Errors     int
	FirstError error
}

// Send sends opt.Count numbered datagrams from network namespace ns ("" for
// the current one) to dst ("ip:port"). A refused send is counted, not fatal:
// a device that drops may report it.
func Send(ns, dst string, opt SendOptions) (Sent, error) {
	if opt.Size == 0 {
		opt.Size = MinSize
	}
	if opt.Size < MinSize || opt.Size > 65507 {
		return Sent{}, fmt.Errorf("datagram size %d out of range [%d, 65507]", opt.Size, MinSize)
	}
	ua, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		return Sent{}, err
	}
	network := "udp4"
	if ua.IP.To4() == nil {
		network = "udp6"
	}
	var conn *net.UDPConn
	err = Do(ns, func() error {
		var err error
		conn, err = net.ListenUDP(network, nil)
		return err
	})
	if err != nil {
		return Sent{}, err
	}
	defer conn.Close()

	if opt.Pin {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var old, set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &old); err != nil {
			return Sent{}, err
		}
		set.Set(opt.CPU)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return Sent{}, fmt.Errorf("pinning the sender to CPU %d: %w", opt.CPU, err)
		}
		defer unix.SchedSetaffinity(0, &old)
	}
	s := Sent{At: make([]time.Time, opt.Count)}
	buf := make([]byte, opt.Size)
	start := time.Now()
	for i := 0; i < opt.Count; i++ {
		if opt.Interval > 0 {
			if d := time.Until(start.Add(time.Duration(i) * opt.Interval)); d > 0 {
				time.Sleep(d)
			}
		}
		encode(buf, opt.Run, uint64(i))
		s.At[i] = time.Now()
		if _, err := conn.WriteToUDP(buf, ua); err != nil {
			s.Errors++
			if s.FirstError == nil {
				s.FirstError = err
			}
		}
	}
	return s, nil
}

// Encode writes the header of datagram seq of run into buf (at least
// MinSize bytes), as Send does, for senders of a test's own.
func Encode(buf []byte, run, seq uint64) { encode(buf, run, seq) }
