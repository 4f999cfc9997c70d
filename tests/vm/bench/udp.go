package main

import (
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpSend is the socket source: one connected UDP socket sends 64-byte
// datagrams to 10.2.0.2 in a tight loop for dur of guest time, the shape
// of a real application's traffic. It returns the successful sends, the
// failed ones and the successful sends per second of guest time (per
// instruction, under icount).
func udpSend(dur time.Duration) (sent, errs uint64, pps float64, err error) {
	return udpSendUntil(dur, nil)
}

// udpSendUntil is udpSend that also stops, if stop is not nil, once stop
// reports true.
func udpSendUntil(dur time.Duration, stop *atomic.Bool) (sent, errs uint64, pps float64, err error) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return 0, 0, 0, err
	}
	defer unix.Close(s)
	if err := unix.Connect(s, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{10, 2, 0, 2}}); err != nil {
		return 0, 0, 0, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 64)
	p, n := uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf))
	t0 := mono()
	end, t1 := t0+int64(dur), t0
	for t1 < end && (stop == nil || !stop.Load()) {
		// The clock is read once per 32 sends, so that it weighs
		// little in the count.
		for i := 0; i < 32; i++ {
			// A raw write: no entersyscall/exitsyscall, so the Go
			// runtime's monitor never hands this thread's P away in
			// the middle of the loop (a send never blocks on the
			// dummy lower). That handoff made the UDP rate spread.
			if _, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(s), p, n); e == 0 {
				sent++
			} else {
				errs++
			}
		}
		t1 = mono()
	}
	return sent, errs, float64(sent) / (float64(t1-t0) / 1e9), nil
}
