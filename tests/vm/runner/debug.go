package main

import (
	"fmt"
	"regexp"
	"strings"
)

// A debug run (-debug, make test-debug) boots a kernel built with KASAN,
// lockdep, UBSAN, KFENCE and kmemleak (tests/vm/debugkernel). It differs from
// a normal run in three ways:
//
//   - The kernel keeps going after a report (panic_on_warn=0,
//     kasan_multi_shot), so that one run shows every report, not the first.
//     RCU stalls are reported after 100 s instead of 21 s (as syzkaller
//     does): under TCG, KASAN and lockdep slow the guest that much.
//   - Reports the kernel logged before user space began (before any test
//     and before insane.ko could be loaded) are shown as warnings and do not
//     fail the run: a KASAN kernel under TCG now and then reports during
//     early boot, with no module loaded. init.sh writes kmsgMark to the
//     kernel log when user space begins; every report after it fails the run.
//   - init.sh scans kmemleak before the tests (and clears what boot left
//     behind) and again after them, as a check named kmemleakCheck that fails
//     on any suspected leak.
//
// The closing summary counts the reports of each kind.

// kmsgMark is the line init.sh writes to /dev/kmsg when user space begins.
const kmsgMark = "insane-vm: user space begins"

// kmemleakCheck is the name of init.sh's closing kmemleak check.
const kmemleakCheck = "kmemleak"

// debugArgs adds the debug run's kernel arguments to extra. They come after
// the runner's own (kernelArgs), and the last value of a parameter wins.
func debugArgs(cfg *config, extra string) string {
	if !cfg.debug {
		return extra
	}
	args := "panic_on_warn=0 kasan_multi_shot rcupdate.rcu_cpu_stall_timeout=100"
	if extra != "" {
		args += " " + extra
	}
	return args
}

// splitAtMark splits a kernel log at kmsgMark. Without the mark (the guest
// never reached user space), all of it counts as after.
func splitAtMark(text string) (before, after string) {
	i := strings.Index(text, kmsgMark)
	if i < 0 {
		return "", text
	}
	if j := strings.LastIndexByte(text[:i], '\n'); j >= 0 {
		return text[:j+1], text[j+1:]
	}
	return "", text
}

// reportKinds classify the kernel log's report lines (those kmsg.Bad
// selects) for the debug summary, first match wins.
var reportKinds = []struct {
	name string
	re   *regexp.Regexp
}{
	{"KASAN", regexp.MustCompile(`BUG: KASAN: `)},
	{"KFENCE", regexp.MustCompile(`BUG: KFENCE: `)},
	{"UBSAN", regexp.MustCompile(`UBSAN: `)},
	{"lockdep", regexp.MustCompile(`WARNING: (possible (circular|recursive) locking|inconsistent lock state|suspicious RCU usage|bad unlock balance|lock held)|BUG: (Invalid wait context|sleeping function called|scheduling while atomic)|BUG: workqueue leaked lock|possible irq lock inversion`)},
	{"kmemleak", regexp.MustCompile(`kmemleak: .*new suspected memory leak`)},
	{"WARNING", regexp.MustCompile(`WARNING: `)},
	{"BUG/Oops", regexp.MustCompile(`BUG: |kernel BUG at|\bOops\b|general protection fault|Kernel panic`)},
	{"refcount/list", regexp.MustCompile(`refcount_t: |list_(add|del) corruption|unregister_netdevice: waiting`)},
}

// countReports counts the report lines of each kind; the stack traces and
// other lines that belong to a report are not counted.
func countReports(lines []string) map[string]int {
	n := make(map[string]int)
	for _, l := range lines {
		for _, k := range reportKinds {
			if k.re.MatchString(l) {
				n[k.name]++
				break
			}
		}
	}
	return n
}

// kmemleakLeaks returns the number of suspected leaks in the closing
// kmemleak check's output, and whether the check ran.
func kmemleakLeaks(res *results) (int, bool) {
	t := res.byName[kmemleakCheck]
	if t == nil {
		return 0, false
	}
	n := 0
	for _, l := range t.Output {
		if strings.Contains(l, "unreferenced object 0x") {
			n++
		}
	}
	return n, true
}

// debugSummary prints the reports from before user space as a warning and
// the closing counts. It returns a problem if the kmemleak check never ran.
func debugSummary(cfg *config, res *results, early, kernel []string) []string {
	var problems []string
	w := cfg.msgOut()
	if len(early) > 0 {
		fmt.Fprintln(w, "vm: warning: the kernel log shows problems before user space began (not counted; no test or module had run):")
		for _, l := range early {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	counts := countReports(kernel)
	leaks, ran := kmemleakLeaks(res)
	leakText := fmt.Sprint(leaks)
	if t := res.byName[kmemleakCheck]; ran && leaks == 0 && t.Status != statusPass {
		leakText = "check failed (see above)"
	}
	if !ran {
		leakText = "not checked"
		if res.Done && cfg.mode == "test" {
			problems = append(problems, "the kmemleak check did not run")
		}
	}
	if cfg.testBinary != "" {
		// As go test -exec, go test counts the tests.
		fmt.Fprintf(w, "vm: debug kernel: kmemleak leaks: %s\n", leakText)
	} else {
		passed, failed, skipped := res.Counts()
		fmt.Fprintf(w, "vm: debug kernel: tests %d passed, %d failed, %d skipped; kmemleak leaks: %s\n", passed, failed, skipped, leakText)
	}
	var parts []string
	for _, k := range reportKinds {
		parts = append(parts, fmt.Sprintf("%s %d", k.name, counts[k.name]))
	}
	fmt.Fprintf(w, "vm: debug kernel: reports after user space began: %s; before: %d lines (warning only)\n", strings.Join(parts, ", "), len(early))
	return problems
}
