// Package figure is the one format of a test's headline figures ("lower
// removals", "fuzz messages", ...): the guest harness logs them with Line,
// and the VM runner finds them in the test log with Parse and prints them in
// its summary.
package figure

import (
	"fmt"
	"regexp"
	"strconv"
)

// Line formats a figure as a test logs it.
func Line(name string, n uint64) string {
	return fmt.Sprintf("figure: %s = %d", name, n)
}

// reLine matches Line's output as go test -v prints a test's log:
// "    file_test.go:12: figure: lower removals = 100".
var reLine = regexp.MustCompile(`^\s*\S+\.go:\d+: figure: (.+) = (\d+)\s*$`)

// Parse returns the figure on a line of go test -v output, if there is one.
func Parse(line string) (name string, n uint64, ok bool) {
	m := reLine.FindStringSubmatch(line)
	if m == nil {
		return "", 0, false
	}
	n, err := strconv.ParseUint(m[2], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return m[1], n, true
}
