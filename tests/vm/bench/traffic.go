package main

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The setup and the end that the burst and delay phases' numbered
// datagram runs share: a packet socket on low0 that sees each datagram
// leave, a UDP socket connected to 10.2.0.2:9 that sends them, a receiver
// thread on vCPU 0, and the wait for the last arrivals.

// trafficSockets returns the packet socket on low0 (its statistics reset;
// stamps: each datagram carries SCM_TIMESTAMPNS) and the connected UDP
// socket. The caller closes both.
func trafficSockets(stamps bool) (ps, us int, err error) {
	if ps, err = lowerTap(100 * time.Millisecond); err != nil {
		return -1, -1, err
	}
	if us, err = trafficSetup(ps, stamps); err != nil {
		unix.Close(ps)
		return -1, -1, err
	}
	return ps, us, nil
}

func trafficSetup(ps int, stamps bool) (int, error) {
	if stamps {
		if err := unix.SetsockoptInt(ps, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return -1, err
		}
	}
	// Reading the statistics resets them.
	if _, err := unix.GetsockoptTpacketStats(ps, unix.SOL_PACKET, unix.PACKET_STATISTICS); err != nil {
		return -1, err
	}
	return connectedUDP()
}

// connectedUDP returns a UDP socket connected to 10.2.0.2:9.
func connectedUDP() (int, error) {
	us, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(us, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{10, 2, 0, 2}}); err != nil {
		unix.Close(us)
		return -1, err
	}
	return us, nil
}

// paceThread holds the calling goroutine to its thread, pinned to vCPU 1
// with 1 ns of timer slack, for a paced sender; the func it returns undoes
// that: defer paceThread()().
func paceThread() func() {
	runtime.LockOSThread()
	pin(1)
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	return func() {
		unix.Prctl(unix.PR_SET_TIMERSLACK, 50000, 0, 0, 0)
		pin(-1)
		runtime.UnlockOSThread()
	}
}

// receiver runs recv in a loop on a thread pinned to vCPU 0 until it
// fails, or until stop is set once it times out (EAGAIN) or is
// interrupted; the channel gets nil or the error.
func receiver(stop *atomic.Bool, recv func() error) <-chan error {
	return receiverAt(stop, false, recv)
}

// receiverAt is receiver; with idle, its thread runs SCHED_IDLE, so that
// it never preempts the paced sender (between the sender's clock readings
// and its send, which would add to the lateness measured against them), and
// reads what the kernel queued and stamped whenever nothing else runs.
func receiverAt(stop *atomic.Bool, idle bool, recv func() error) <-chan error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// With idle, the goroutine ends locked to its thread, which
		// then exits: no other goroutine runs at its policy.
		if !idle {
			defer runtime.UnlockOSThread()
		}
		pin(0)
		if idle {
			if err := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0); err != nil {
				done <- fmt.Errorf("SCHED_IDLE: %w", err)
				return
			}
		}
		for {
			err := recv()
			if err == nil {
				continue
			}
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				if stop.Load() {
					done <- nil
					return
				}
				continue
			}
			done <- err
			return
		}
	}()
	return done
}

// waitQuiet returns once nothing has arrived for 300 ms.
func waitQuiet(received func() uint64) {
	for last := received(); ; {
		time.Sleep(300 * time.Millisecond)
		now := received()
		if now == last {
			return
		}
		last = now
	}
}
