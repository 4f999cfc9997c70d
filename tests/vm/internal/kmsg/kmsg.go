// Package kmsg recognises kernel log lines that mean a test run is broken:
// warnings, bugs, oopses, panics, sanitizer reports, refcount errors, lockups
// and leaked device references. The VM runner scans the guest's console and
// dmesg with it, and the guest harness scans /dev/kmsg since a mark.
package kmsg

import (
	"regexp"
	"strings"
)

// patterns are matched against single log lines. Each one is something the
// kernel prints only when something is wrong.
var patterns = []*regexp.Regexp{
	regexp.MustCompile(`\bBUG: `),
	regexp.MustCompile(`kernel BUG at`),
	regexp.MustCompile(`\bWARNING: `),
	regexp.MustCompile(`refcount_t: `),
	regexp.MustCompile(`Kernel panic`),
	regexp.MustCompile(`\bOops\b`),
	regexp.MustCompile(`general protection fault`),
	regexp.MustCompile(`unregister_netdevice: waiting for`),
	regexp.MustCompile(`\bKASAN\b`),
	regexp.MustCompile(`\bUBSAN\b`),
	regexp.MustCompile(`\bKFENCE\b`),
	regexp.MustCompile(`kmemleak: .*new suspected memory leak`),
	regexp.MustCompile(`list_(add|del) corruption`),
	regexp.MustCompile(`possible circular locking dependency`),
	regexp.MustCompile(`inconsistent lock state`),
	regexp.MustCompile(`suspicious RCU usage`),
	regexp.MustCompile(`rcu: INFO: .*detected stall`),
	regexp.MustCompile(`soft lockup`),
	regexp.MustCompile(`hard LOCKUP`),
	regexp.MustCompile(`INFO: task .* blocked for more than`),
	regexp.MustCompile(`Call Trace:`),
	regexp.MustCompile(`Attempted to kill init`),
}

// Bad reports whether one log line is a sign of a kernel problem.
func Bad(line string) bool {
	for _, p := range patterns {
		if p.MatchString(line) {
			return true
		}
	}
	return false
}

// Scan returns the lines of text that are signs of a kernel problem, in order.
func Scan(text string) []string {
	var bad []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if Bad(line) {
			bad = append(bad, line)
		}
	}
	return bad
}
