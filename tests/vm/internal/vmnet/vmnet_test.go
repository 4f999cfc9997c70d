package vmnet

import (
	"testing"
	"time"
)

func TestEncodeDecode(t *testing.T) {
	buf := make([]byte, MinSize+5)
	encode(buf, 7, 123456789)
	run, seq, ok := decode(buf)
	if !ok || run != 7 || seq != 123456789 {
		t.Fatalf("decode = %d, %d, %v; want 7, 123456789, true", run, seq, ok)
	}
	if _, _, ok := decode(buf[:MinSize-1]); ok {
		t.Error("decode accepted a short datagram")
	}
	buf[0] = 'X'
	if _, _, ok := decode(buf); ok {
		t.Error("decode accepted a bad magic")
	}
}

func TestLoopback(t *testing.T) {
	r, err := Listen("", "127.0.0.1:0", 42)
	if err != nil {
		t.Fatal(err)
	}
	// Datagrams of another run must be ignored.
	if _, err := Send("", r.Addr().String(), SendOptions{Count: 5, Run: 41}); err != nil {
		t.Fatal(err)
	}
	sent, err := Send("", r.Addr().String(), SendOptions{Count: 100, Interval: 100 * time.Microsecond, Size: 200, Run: 42})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Errors != 0 || len(sent.At) != 100 {
		t.Fatalf("sent %d with %d errors (%v)", len(sent.At), sent.Errors, sent.FirstError)
	}
	if n := r.Wait(100, time.Second, 10*time.Second); n != 100 {
		t.Errorf("Wait = %d, want 100", n)
	}
	rc := r.Close()
	if len(rc.Seqs) != 100 || rc.Seqs[0] != 0 || rc.Seqs[99] != 99 {
		t.Errorf("received %d datagrams, seqs %v", len(rc.Seqs), rc.Seqs)
	}
	if !rc.Has(50) || rc.Has(100) {
		t.Error("Has disagrees with Seqs")
	}
}

func TestWaitQuiet(t *testing.T) {
	r, err := Listen("", "127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	if n := r.Wait(10, 200*time.Millisecond, 5*time.Second); n != 0 {
		t.Errorf("Wait = %d, want 0", n)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Errorf("Wait with nothing arriving took %v, want about 200ms", d)
	}
}

func TestSendSize(t *testing.T) {
	if _, err := Send("", "127.0.0.1:9", SendOptions{Count: 1, Size: MinSize - 1}); err == nil {
		t.Error("Send accepted a datagram smaller than the header")
	}
}
