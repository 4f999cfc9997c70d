package main

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// testPort copies the host end of the guest's test port (a pipe QEMU writes
// ttyS2 into) to dst as it comes, byte for byte.
type testPort struct {
	r     *os.File
	dst   io.WriteCloser
	after func() error // waits for whatever reads dst; may be nil

	done    chan struct{} // closed when the copy has ended
	copyErr error
	once    sync.Once
	err     error
}

func newTestPort(r *os.File, dst io.WriteCloser, after func() error) *testPort {
	p := &testPort{r: r, dst: dst, after: after, done: make(chan struct{})}
	go p.copy()
	return p
}

func (p *testPort) copy() {
	defer close(p.done)
	buf := make([]byte, 32*1024)
	for {
		n, err := p.r.Read(buf)
		if n > 0 {
			if _, werr := p.dst.Write(buf[:n]); werr != nil {
				p.copyErr = werr
				// Keep reading, so that QEMU never blocks on
				// the port.
				p.dst = nopCloser{io.Discard}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) {
				p.copyErr = err
			}
			return
		}
	}
}

// Drain ends the copy once everything that is in the pipe now has been
// copied, closes dst and waits for its reader. The guest writes its exit
// marker on the results port only after the test port's last close, which
// waits until the port has sent everything, and QEMU writes each byte into
// the pipe as the guest sends it: when the host reads that marker, all of the
// test binary's output is in the pipe or already copied.
func (p *testPort) Drain() error {
	p.once.Do(func() {
		p.err = p.waitEmpty()
		if p.err == nil {
			// Wake the copy, which is blocked reading an empty pipe.
			p.err = p.r.SetReadDeadline(time.Now())
		}
		<-p.done
		p.finish()
	})
	return p.err
}

// Close ends the copy when QEMU has exited (the pipe is at its end) or
// never started, closes dst and waits for its reader.
func (p *testPort) Close() error {
	p.once.Do(func() {
		p.r.SetReadDeadline(time.Now().Add(5 * time.Second))
		<-p.done
		p.finish()
	})
	return p.err
}

func (p *testPort) finish() {
	if err := p.dst.Close(); err != nil && p.err == nil {
		p.err = err
	}
	if p.after != nil {
		if err := p.after(); err != nil && p.err == nil {
			p.err = err
		}
	}
	if p.copyErr != nil && p.err == nil {
		p.err = p.copyErr
	}
}

// waitEmpty waits until the pipe holds no unread byte (TIOCINQ is
// FIONREAD, which pipes answer too).
func (p *testPort) waitEmpty() error {
	rc, err := p.r.SyscallConn()
	if err != nil {
		return err
	}
	for {
		var n int
		var ioErr error
		if err := rc.Control(func(fd uintptr) { n, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil {
			return err
		}
		if ioErr != nil {
			return ioErr
		}
		if n == 0 {
			return nil
		}
		select {
		case <-p.done:
			return nil
		case <-time.After(5 * time.Millisecond):
		}
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
