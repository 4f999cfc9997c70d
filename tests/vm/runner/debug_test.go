package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitAtMark(t *testing.T) {
	log := "[ 1.0] boot\n[ 2.0] BUG: KASAN: wild-memory-access in do_raw_spin_lock\n[ 3.0] " + kmsgMark + "\n[ 4.0] WARNING: CPU: 0 PID: 1 at x\n"
	before, after := splitAtMark(log)
	if want := "[ 1.0] boot\n[ 2.0] BUG: KASAN: wild-memory-access in do_raw_spin_lock\n"; before != want {
		t.Errorf("before = %q, want %q", before, want)
	}
	if want := "[ 3.0] " + kmsgMark + "\n[ 4.0] WARNING: CPU: 0 PID: 1 at x\n"; after != want {
		t.Errorf("after = %q, want %q", after, want)
	}
	// No mark: the guest never reached user space, and everything counts.
	if before, after := splitAtMark("[ 1.0] BUG: x\n"); before != "" || after != "[ 1.0] BUG: x\n" {
		t.Errorf("splitAtMark(no mark) = %q, %q", before, after)
	}
}

func TestCountReports(t *testing.T) {
	lines := []string{
		"[ 5.0] BUG: KASAN: slab-use-after-free in insane_xmit+0x10/0x20",
		"[ 5.1] Call Trace:",
		"[ 6.0] BUG: KFENCE: out-of-bounds read in foo",
		"[ 7.0] UBSAN: shift-out-of-bounds in drivers/net/insane.c:12:3",
		"[ 8.0] WARNING: possible circular locking dependency detected",
		"[ 8.5] BUG: sleeping function called from invalid context at mm/slab.h:1",
		"[ 9.0] WARNING: CPU: 1 PID: 77 at net/core/dev.c:10417 netdev_run_todo+0x3c/0x4c0",
		"[10.0] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
		"[11.0] general protection fault, probably for non-canonical address",
	}
	want := map[string]int{"KASAN": 1, "KFENCE": 1, "UBSAN": 1, "lockdep": 2, "WARNING": 1, "kmemleak": 1, "BUG/Oops": 1}
	if got := countReports(lines); !reflect.DeepEqual(got, want) {
		t.Errorf("countReports = %v, want %v", got, want)
	}
}

// kmemleakEvents are the events eventrun writes for a kmemleak check that
// found one leak.
const kmemleakEvents = `{"Action":"run","Package":"r","Test":"kmemleak"}
{"Action":"output","Package":"r","Test":"kmemleak","Output":"=== RUN   kmemleak\n"}
{"Action":"output","Package":"r","Test":"kmemleak","Output":"    kmemleak: 1 suspected leaks\n"}
{"Action":"output","Package":"r","Test":"kmemleak","Output":"unreferenced object 0xffff888003a4b000 (size 64):\n"}
{"Action":"output","Package":"r","Test":"kmemleak","Output":"  backtrace:\n"}
{"Action":"output","Package":"r","Test":"kmemleak","Output":"    exit status 1\n"}
{"Action":"output","Package":"r","Test":"kmemleak","Output":"--- FAIL: kmemleak (7.10s)\n"}
{"Action":"fail","Package":"r","Test":"kmemleak","Elapsed":7.1}
`

func TestKmemleakLeaks(t *testing.T) {
	res := newResults()
	feedPort(res, kmemleakEvents)
	if n, ran := kmemleakLeaks(res); n != 1 || !ran {
		t.Errorf("kmemleakLeaks = %d, %v; want 1, true", n, ran)
	}
	if st := res.byName[kmemleakCheck].Status; st != statusFail {
		t.Errorf("kmemleak check status %q, want FAIL", st)
	}
	if n, ran := kmemleakLeaks(newResults()); n != 0 || ran {
		t.Errorf("kmemleakLeaks(no check) = %d, %v; want 0, false", n, ran)
	}
}

func TestDebugSummary(t *testing.T) {
	res := newResults()
	feed(t, res, `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":1}
{"Action":"run","Package":"p","Test":"TestB"}
{"Action":"skip","Package":"p","Test":"TestB","Elapsed":0}
`)
	feedPort(res, "@@@ begin\n@@@ exit guest.test 0\n"+kmemleakEvents+"@@@ done\n")
	var out strings.Builder
	cfg := &config{mode: "test", debug: true, msgs: &out}
	early := []string{"[ 2.0] BUG: KASAN: wild-memory-access in do_raw_spin_lock"}
	kernel := []string{"[ 9.0] WARNING: CPU: 1 PID: 77 at net/core/dev.c:10417 netdev_run_todo+0x3c/0x4c0", "[ 9.5] UBSAN: shift-out-of-bounds in x"}
	if p := debugSummary(cfg, res, early, kernel); len(p) != 0 {
		t.Errorf("problems %q", p)
	}
	want := `vm: warning: the kernel log shows problems before user space began (not counted; no test or module had run):
    [ 2.0] BUG: KASAN: wild-memory-access in do_raw_spin_lock
vm: debug kernel: tests 1 passed, 1 failed, 1 skipped; kmemleak leaks: 1
vm: debug kernel: reports after user space began: KASAN 0, KFENCE 0, UBSAN 1, lockdep 0, kmemleak 0, WARNING 1, BUG/Oops 0, refcount/list 0; before: 1 lines (warning only)
`
	if out.String() != want {
		t.Errorf("debug summary:\n%s\nwant:\n%s", out.String(), want)
	}

	// A finished run without the kmemleak check is a problem.
	res = newResults()
	feedPort(res, "@@@ begin\n@@@ done\n")
	out.Reset()
	if p := debugSummary(cfg, res, nil, nil); !reflect.DeepEqual(p, []string{"the kmemleak check did not run"}) {
		t.Errorf("problems %q", p)
	}
	if !strings.Contains(out.String(), "kmemleak leaks: not checked") {
		t.Errorf("debug summary without the check:\n%s", out.String())
	}

	// As go test -exec, the tests are go test's to count.
	out.Reset()
	cfg.testBinary = "/tmp/guest.test"
	debugSummary(cfg, res, nil, nil)
	if !strings.HasPrefix(out.String(), "vm: debug kernel: kmemleak leaks: not checked\n") {
		t.Errorf("debug summary as go test -exec:\n%s", out.String())
	}
}

func TestDebugArgs(t *testing.T) {
	if got := debugArgs(&config{}, "x=1"); got != "x=1" {
		t.Errorf("debugArgs(normal) = %q", got)
	}
	if got := debugArgs(&config{debug: true}, "x=1"); got != "panic_on_warn=0 kasan_multi_shot rcupdate.rcu_cpu_stall_timeout=100 x=1" {
		t.Errorf("debugArgs(debug) = %q", got)
	}
}
