package kmsg

import (
	"reflect"
	"testing"
)

func TestBad(t *testing.T) {
	bad := []string{
		"[    3.1] WARNING: CPU: 1 PID: 77 at net/core/dev.c:10417 netdev_run_todo+0x3c/0x4c0",
		"[    3.1] BUG: kernel NULL pointer dereference, address: 0000000000000008",
		"[    3.1] kernel BUG at net/core/skbuff.c:123!",
		"[    3.1] refcount_t: underflow; use-after-free.",
		"[    3.1] Kernel panic - not syncing: panic_on_warn set ...",
		"[    3.1] Oops: 0000 [#1] PREEMPT SMP NOPTI",
		"[    3.1] general protection fault, probably for non-canonical address",
		"[   13.0] unregister_netdevice: waiting for veth0 to become free. Usage count = 2",
		"[    3.1] BUG: KASAN: slab-use-after-free in insane_xmit+0x10/0x20",
		"[    3.1] UBSAN: shift-out-of-bounds in drivers/net/insane.c:12:3",
		"[    3.1] list_del corruption. prev->next should be ffff, but was ffff",
		"[    3.1] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
		"[    3.1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s!",
		"[  123.1] INFO: task ip:88 blocked for more than 120 seconds.",
		"[    3.1] Call Trace:",
		"[    3.1] WARNING: possible circular locking dependency detected",
	}
	for _, l := range bad {
		if !Bad(l) {
			t.Errorf("Bad(%q) = false, want true", l)
		}
	}
	good := []string{
		"[    1.0] insane: loading out-of-tree module taints kernel.",
		"[    1.0] insane: module verification failed: signature and/or required key missing - tainting kernel",
		"[    1.0] IPv6: ADDRCONF(NETDEV_CHANGE): veth0: link becomes ready",
		"[    1.0] Run /init as init process",
		"[    1.0] debug: unmapping init [mem 0xffffffff82a00000-0xffffffff82bfffff]",
		"[    1.0] Warning: unable to open an initial console.",
		"[    1.0] clocksource: Switched to clocksource tsc",
	}
	for _, l := range good {
		if Bad(l) {
			t.Errorf("Bad(%q) = true, want false", l)
		}
	}
}

func TestScan(t *testing.T) {
	text := "boot\r\n[ 1.0] ok\n[ 2.0] WARNING: CPU: 0 PID: 1 at x\r\n[ 2.1] Call Trace:\nend"
	want := []string{"[ 2.0] WARNING: CPU: 0 PID: 1 at x", "[ 2.1] Call Trace:"}
	if got := Scan(text); !reflect.DeepEqual(got, want) {
		t.Errorf("Scan = %q, want %q", got, want)
	}
	if got := Scan("all fine\n"); got != nil {
		t.Errorf("Scan(clean) = %q, want nil", got)
	}
}
