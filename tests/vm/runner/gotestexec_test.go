package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIsTestBinary(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"guest.test": 0o755, "plain.test": 0o644, "guest": 0o755} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.test"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"guest.test": true, "plain.test": false, "guest": false, "dir.test": false, "missing.test": false,
	} {
		if got := isTestBinary(filepath.Join(dir, name)); got != want {
			t.Errorf("isTestBinary(%s) = %v, want %v", name, got, want)
		}
	}
}

func TestTestTimeout(t *testing.T) {
	for _, c := range []struct {
		args []string
		want time.Duration
		ok   bool
	}{
		{[]string{"-test.paniconexit0", "-test.timeout=10m0s", "-test.v=true"}, 10 * time.Minute, true},
		{[]string{"-test.timeout", "90s"}, 90 * time.Second, true},
		{[]string{"--test.timeout=1h"}, time.Hour, true},
		{[]string{"-test.run=X"}, 0, false},
		{[]string{"-test.timeout=soon"}, 0, false},
		{[]string{"--", "-test.timeout=1s"}, 0, false},
	} {
		got, ok := testTimeout(c.args)
		if got != c.want || ok != c.ok {
			t.Errorf("testTimeout(%q) = %v, %v; want %v, %v", c.args, got, ok, c.want, c.ok)
		}
	}
}

func TestGoTestExec(t *testing.T) {
	cfg := &config{mode: "test", timeout: 20 * time.Minute, testBinary: "/tmp/guest.test",
		testArgs: []string{"-test.paniconexit0", "-test.timeout=10m0s", "-test.run=TestKernel"}}
	if err := goTestExec(cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.timeout != 10*time.Minute+execTimeoutSlack {
		t.Errorf("VM timeout %v, want the binary's 10m plus %v", cfg.timeout, execTimeoutSlack)
	}
	// -timeout given: it stays.
	cfg = &config{mode: "test", timeout: time.Hour, timeoutSet: true, testBinary: "/tmp/guest.test", testArgs: []string{"-test.timeout=1m"}}
	if err := goTestExec(cfg); err != nil || cfg.timeout != time.Hour {
		t.Errorf("goTestExec with -timeout: %v, timeout %v", err, cfg.timeout)
	}
	for _, bad := range []*config{
		{mode: "demo", testBinary: "/tmp/guest.test"},
		{mode: "test", run: "X", testBinary: "/tmp/guest.test"},
		{mode: "test", testBinary: "/tmp/guest.test", testArgs: []string{"-test.run=A\nB"}},
	} {
		if err := goTestExec(bad); err == nil {
			t.Errorf("goTestExec(%+v) accepted it", *bad)
		}
	}
	// Not as go test -exec: nothing to check.
	if err := goTestExec(&config{mode: "demo"}); err != nil {
		t.Error(err)
	}
}

func TestFindRoot(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "tests", "vm", "guest")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok := findRoot(sub); ok {
		t.Error("found a root without go.mod")
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module github.com/insane-netdev/insane\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, ok := findRoot(sub); !ok || got != root {
		t.Errorf("findRoot = %q, %v; want %q", got, ok, root)
	}
}

// runReport runs report on the results of stream and port.
func runReport(t *testing.T, cfg *config, events, port string, console string) (bool, string) {
	t.Helper()
	var out strings.Builder
	cfg.msgs = &out
	res := newResults()
	feed(t, res, events)
	feedPort(res, port)
	res.Finish()
	good := report(cfg, res, []byte(console), reportInfo{elapsed: 12300 * time.Millisecond, consoleLog: "c.log", guestLog: "g.log"})
	return good, out.String()
}

const passingEvents = `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:11: figure: lower removals = 100\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":1.5}
{"Action":"run","Package":"p","Test":"TestB"}
{"Action":"skip","Package":"p","Test":"TestB","Elapsed":0}
`

func TestReport(t *testing.T) {
	good, out := runReport(t, &config{mode: "test"}, passingEvents, "@@@ begin\n@@@ exit guest.test 0\n@@@ done\n", "")
	want := `vm: figures of TestA: lower removals 100
vm: kernel log: 0 report lines (warnings, bugs, oopses, refcount and RCU reports, hung unregisters)
vm: guest ran 12.3s; console log: c.log; guest output: g.log
vm: 1 passed, 0 failed, 1 skipped
`
	if !good || out != want {
		t.Errorf("report = %v:\n%s\nwant true:\n%s", good, out, want)
	}

	// A kernel warning fails a run whose tests passed, and counts in the
	// closing line.
	good, out = runReport(t, &config{mode: "test"}, passingEvents, "@@@ begin\n@@@ exit guest.test 0\n@@@ done\n",
		"[ 3.0] WARNING: CPU: 0 PID: 1 at net/core/dev.c:1 x\n")
	if good || !strings.Contains(out, "vm: kernel log: 1 report lines") || !strings.HasSuffix(out, "vm: 1 passed, 1 failed, 1 skipped\n") {
		t.Errorf("report with a kernel warning = %v:\n%s", good, out)
	}

	// -run that matched nothing.
	good, out = runReport(t, &config{mode: "test"}, "", "@@@ begin\n@@@ exit guest.test 0\n@@@ done\n", "")
	if good || !strings.Contains(out, "vm: no test ran (check -run)") {
		t.Errorf("report with no test = %v:\n%s", good, out)
	}
}

func TestReportGoTestExec(t *testing.T) {
	cfg := func() *config { return &config{mode: "test", testBinary: "/tmp/guest.test"} }
	// go test reports the tests: the verdict is the kernel log and the
	// binary's exit status, with no closing count.
	good, out := runReport(t, cfg(), "", "@@@ begin\n@@@ exit guest.test 0\n@@@ dmesg-begin\n[ 1.0] ok\n@@@ dmesg-end\n@@@ done\n", "")
	want := `vm: kernel log: 0 report lines (warnings, bugs, oopses, refcount and RCU reports, hung unregisters)
vm: guest ran 12.3s; console log: c.log; guest output: g.log
`
	if !good || out != want {
		t.Errorf("report = %v:\n%s\nwant true:\n%s", good, out, want)
	}

	good, out = runReport(t, cfg(), "", "@@@ begin\n@@@ exit guest.test 1\n@@@ done\n", "")
	if good || !strings.Contains(out, "vm: guest.test exited with status 1\n") || !strings.HasSuffix(out, "vm: FAIL: the test binary exited with status 1\n") {
		t.Errorf("report of a failed binary = %v:\n%s", good, out)
	}

	good, out = runReport(t, cfg(), "", "@@@ begin\n@@@ exit guest.test 0\n@@@ dmesg-begin\n[ 5.0] unregister_netdevice: waiting for insane0 to become free. Usage count = 2\n@@@ dmesg-end\n@@@ done\n", "")
	if good || !strings.Contains(out, "vm: the kernel log shows problems:\n    [ 5.0] unregister_netdevice: waiting") || !strings.HasSuffix(out, "vm: FAIL: the kernel log shows problems\n") {
		t.Errorf("report of a hung unregister = %v:\n%s", good, out)
	}

	// The kmemleak check of -debug fails the verdict and shows its log.
	c := cfg()
	c.debug = true
	good, out = runReport(t, c, "", "@@@ begin\n@@@ exit guest.test 0\n"+kmemleakEvents+"@@@ done\n", "")
	if good || !strings.Contains(out, "    FAIL kmemleak\n        |     kmemleak: 1 suspected leaks\n") || !strings.HasSuffix(out, "vm: FAIL: a check after the tests failed\n") {
		t.Errorf("report of a leak = %v:\n%s", good, out)
	}
}

func TestVmtestConfig(t *testing.T) {
	read := func(a *archive, name string) string {
		t.Helper()
		e := a.files["/etc/vmtest/"+name]
		if e == nil {
			t.Fatalf("no /etc/vmtest/%s", name)
		}
		return string(e.data)
	}
	a := newArchive()
	cfg := &config{mode: "test", timeout: 20 * time.Minute, run: "TestA"}
	if err := vmtestConfig(a, cfg); err != nil {
		t.Fatal(err)
	}
	if got := read(a, "gotest"); got != "false\n" {
		t.Errorf("gotest = %q", got)
	}
	if got := read(a, "timeout"); got != "18m0s\n" {
		t.Errorf("timeout = %q, want 9/10 of the VM's", got)
	}

	// As go test -exec, init gets go test's arguments, one a line.
	a = newArchive()
	cfg = &config{mode: "test", timeout: time.Minute, testBinary: "/tmp/guest.test",
		testArgs: []string{"-test.paniconexit0", "-test.run=TestKernel|TestIPLink", "-test.v=test2json"}}
	if err := vmtestConfig(a, cfg); err != nil {
		t.Fatal(err)
	}
	if got := read(a, "gotest"); got != "true\n" {
		t.Errorf("gotest = %q", got)
	}
	if got, want := read(a, "args"), "-test.paniconexit0\n-test.run=TestKernel|TestIPLink\n-test.v=test2json\n"; got != want {
		t.Errorf("args = %q, want %q", got, want)
	}
}
