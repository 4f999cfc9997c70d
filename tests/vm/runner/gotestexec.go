package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The default -module and -ip-plugin, relative to the repository root.
const (
	defaultModule   = "kernel/insane.ko"
	defaultIPPlugin = "iproute2/link_insane.so"
)

// execTimeoutSlack is what the VM gets beyond the test binary's -test.timeout
// as go test -exec: for booting, and the kernel log at the end. go test kills
// its -exec program a minute after the timeout, and the runner needs some
// of that minute before the VM starts, to build the initramfs.
const execTimeoutSlack = 30 * time.Second

// goTestExec checks the settings of a run as go test -exec and derives the
// VM's time limit from the binary's -test.timeout, unless -timeout was given.
func goTestExec(cfg *config) error {
	if cfg.testBinary == "" {
		return nil
	}
	if cfg.mode != "test" {
		return fmt.Errorf("a test binary to run (%s) is for -mode test only", cfg.testBinary)
	}
	if cfg.run != "" {
		return fmt.Errorf("as go test -exec, select tests with go test -run, not -run")
	}
	for _, a := range cfg.testArgs {
		if strings.ContainsAny(a, "\n\x00") {
			return fmt.Errorf("test binary argument %q: a newline or NUL cannot reach the guest", a)
		}
	}
	if !cfg.timeoutSet {
		if d, ok := testTimeout(cfg.testArgs); ok && d > 0 {
			cfg.timeout = d + execTimeoutSlack
		}
	}
	return nil
}

// testTimeout returns the value of the test binary's -test.timeout flag.
func testTimeout(args []string) (time.Duration, bool) {
	var val string
	found := false
	for i := 0; i < len(args); i++ {
		a := strings.TrimPrefix(args[i], "-")
		a = strings.TrimPrefix(a, "-")
		if a == "test.timeout" && i+1 < len(args) {
			val, found = args[i+1], true
			i++
		} else if v, ok := strings.CutPrefix(a, "test.timeout="); ok {
			val, found = v, true
		} else if a == "" {
			break // "--" ends the flags
		}
	}
	if !found {
		return 0, false
	}
	d, err := time.ParseDuration(val)
	if err != nil {
		return 0, false
	}
	return d, true
}

// buildForExec brings kernel/insane.ko and iproute2/link_insane.so up to
// date for a run as go test -exec, which no make target precedes. Other
// files given with -module or -ip-plugin are used as they are.
func buildForExec(ctx context.Context, cfg *config) error {
	if cfg.testBinary == "" {
		return nil
	}
	var steps [][]string
	if cfg.module == filepath.Join(cfg.root, defaultModule) {
		steps = append(steps, []string{"make", "-s", "-C", filepath.Join(cfg.root, "kernel"), "KVER=" + cfg.kver})
	}
	if cfg.ipPlugin == filepath.Join(cfg.root, defaultIPPlugin) {
		steps = append(steps, []string{"make", "-s", "-C", filepath.Join(cfg.root, "iproute2")})
	}
	for _, args := range steps {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
		}
	}
	return nil
}
