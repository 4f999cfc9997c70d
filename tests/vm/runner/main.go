// Command runner boots Debian's cloud kernel in QEMU with an initramfs that
// holds the insane module, iproute2, ethtool, busybox, the guest test binary
// and the insane CLI, and runs the guest tests, an interactive shell, the
// demo or any command in it.
//
// Usage (from the repository root):
//
//	go run ./tests/vm/runner [-mode test|shell|demo|exec] [-run REGEXP] [flags]
//
// In test mode it prints each guest test with its result, the failing tests'
// logs, and a closing line "vm: N passed, N failed". It exits non-zero if a
// test failed, the guest did not finish in time, or the kernel log shows a
// warning, bug, oops, panic or leak.
//
// The guest runs its test binary with -test.v=test2json and the host turns
// the binary's output into Go's standard test events with go tool test2json
// (go doc cmd/test2json); the scripts and the debug run's kmemleak check
// report the same events, written in the guest by tests/vm/runner/eventrun.
// build/vm/events.json keeps every event of the last run, in the format of go
// test -json.
//
// # As go test -exec
//
// When its first argument after the runner's own flags is an executable file
// whose name ends in .test, the runner is go test's -exec program:
//
//	go test -exec "$PWD/build/vm-runner" -tags vmtest ./tests/vm/guest -run X [-v|-json]
//	go test -exec "$PWD/build/vm-runner -append INSANE_TORTURE=full" -tags vmtest ./tests/vm/guest -run TestTorture
//
// It then boots the guest with that binary in place of the one it would
// build, with the module and the other guest programs as in test mode (it
// runs make for kernel/insane.ko and the ip plugin first, unless -module or
// -ip-plugin name other files), and runs the binary with the arguments go
// test gave it (-test.run, -test.v, -test.count, -test.failfast,
// -test.timeout, ...). What the binary prints goes to standard output
// unchanged, plain -test.v text or the test2json framing of go test -json,
// for go test to read. Nothing else runs in the guest, but for the kmemleak
// check of -debug. The runner's own messages and the kernel log verdict go to
// standard error, and it exits non-zero if the binary did or the kernel log
// shows a problem. Without -timeout, the VM's limit is the binary's
// -test.timeout plus 30 s, within the minute go test allows beyond it.
package main

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insane-netdev/insane/tests/vm/internal/kmsg"
	"github.com/insane-netdev/insane/tests/vm/runner/testevent"
	"golang.org/x/sys/unix"
)

//go:embed init.sh
var initScript []byte

// defaultModules are the stock modules the guest tests may load; their
// dependencies come along from modules.dep.
var defaultModules = []string{
	"veth", "dummy", "macvlan", "ifb", "bridge",
	"sch_netem", "act_gact", "cls_matchall", "sch_ingress",
	"pktgen", "nf_tables", "nft_numgen", "xt_statistic",
	"nft_chain_nat", "nft_nat", "nft_ct", "vrf", "ipip",
	"xfrm_user", "esp4", "esp6",
}

// onDemandModules are what the kernel loads by itself (request_module of
// an alias) for the IPsec tests: ESP's AEAD template, its IV generator and
// the default RNG, whose self-tests want ctr(aes) and sha512. Each is
// packed when the kernel has it as a module; a kernel that builds it in,
// or that lacks it (the debug kernel's own config), needs nothing here.
var onDemandModules = []string{
	"authenc", "echainiv", "seqiv", "drbg", "jitterentropy_rng", "ctr", "sha512_generic",
}

// benchModules are what insane-bench adds (its ipvlan case, the rate
// phase's tbf); the debug kernel, which only the guest tests boot, does
// not build them.
var benchModules = []string{"ipvlan", "sch_tbf"}

type config struct {
	mode     string
	kver     string
	kernel   string
	module   string
	ipPlugin string
	run      string
	guestCmd string
	mem      string
	smp      int
	accel    string
	qemu     string
	out      string
	modules  string
	moddir   string
	append   string
	debug    bool
	timeout  time.Duration
	// bootLimit: a boot whose init has said nothing by then is killed
	// and booted again, at most bootTries times in all (0: no limit).
	bootLimit time.Duration
	bootTries int
	verbose   bool
	console   bool
	root      string
	cri       string // a container runtime to pack (cri.go)

	// go test -exec: the test binary go test built and its arguments.
	testBinary string
	testArgs   []string
	timeoutSet bool      // -timeout was given
	msgs       io.Writer // where the runner's own messages go (nil: stdout)
}

// msgOut is where the runner's own messages go: standard output, or as go
// test -exec standard error, so that standard output is the test binary's.
func (c *config) msgOut() io.Writer {
	if c.msgs == nil {
		return os.Stdout
	}
	return c.msgs
}

// guestPackage is the import path of the guest tests.
const guestPackage = "github.com/insane-netdev/insane/tests/vm/guest"

// isTestBinary reports whether path names an executable file whose name
// ends in .test, as the binaries that go test builds and hands to -exec.
func isTestBinary(path string) bool {
	if !strings.HasSuffix(path, ".test") {
		return false
	}
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}

func main() {
	var cfg config
	flag.StringVar(&cfg.mode, "mode", "test", "test: run the guest tests; shell: interactive guest shell; demo: run the demo; exec: run -guest-cmd")
	flag.StringVar(&cfg.kver, "kver", "", "kernel version to boot (default: newest /usr/src/linux-headers-*-cloud-amd64)")
	flag.StringVar(&cfg.kernel, "kernel", "", "kernel image (default: /boot/vmlinuz-KVER)")
	flag.StringVar(&cfg.module, "module", defaultModule, "insane module to install in the guest (empty: none)")
	flag.StringVar(&cfg.ipPlugin, "ip-plugin", defaultIPPlugin, "ip(8) plugin for the insane link type, installed where the guest's ip looks (empty: none)")
	flag.StringVar(&cfg.run, "run", "", "run only guest tests (and scripts/*.sh named script/NAME) matching this regexp")
	flag.StringVar(&cfg.guestCmd, "guest-cmd", "", "exec mode: bash command line to run in the guest")
	flag.StringVar(&cfg.mem, "mem", "1G", "guest memory")
	flag.IntVar(&cfg.smp, "smp", 2, "guest CPUs")
	flag.StringVar(&cfg.accel, "accel", "tcg,thread=multi", "QEMU -accel value (nested KVM hangs on this machine type)")
	flag.StringVar(&cfg.qemu, "qemu", "qemu-system-x86_64", "QEMU binary")
	flag.StringVar(&cfg.out, "out", "build/vm", "directory for the initramfs, binaries and logs")
	flag.StringVar(&cfg.modules, "modules", "", "comma-separated extra stock modules to install in the guest")
	flag.StringVar(&cfg.moddir, "moddir", "", "directory with the kernel's modules.dep, modules.builtin and stock modules (default /lib/modules/KVER)")
	flag.StringVar(&cfg.append, "append", "", "extra kernel command line arguments")
	flag.BoolVar(&cfg.debug, "debug", false, "debug kernel run (make test-debug): see debug.go")
	flag.DurationVar(&cfg.timeout, "timeout", 20*time.Minute, "overall limit for the VM run")
	flag.DurationVar(&cfg.bootLimit, "boot-limit", 5*time.Minute, "boot again if the guest's init has not started this long after QEMU did (0: wait for -timeout)")
	flag.IntVar(&cfg.bootTries, "boot-tries", 3, "boots at most, with -boot-limit")
	flag.BoolVar(&cfg.verbose, "v", false, "stream the guest's raw test output")
	flag.BoolVar(&cfg.console, "console", false, "also stream the guest console (kernel log) to stderr")
	flag.StringVar(&cfg.cri, "cri", "", "directory with containerd, runc and crictl to pack into the guest, for TestCRI (make test-cri)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags]\n       %s [flags] PKG.test [test flags]   (as go test -exec)\n", os.Args[0], os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "timeout" {
			cfg.timeoutSet = true
		}
	})
	if flag.NArg() != 0 {
		if !isTestBinary(flag.Arg(0)) {
			fmt.Fprintf(os.Stderr, "vm: unexpected arguments: %s\n", strings.Join(flag.Args(), " "))
			os.Exit(2)
		}
		bin, err := filepath.Abs(flag.Arg(0))
		if err != nil {
			fmt.Fprintf(os.Stderr, "vm: %v\n", err)
			os.Exit(2)
		}
		cfg.testBinary, cfg.testArgs, cfg.msgs = bin, flag.Args()[1:], os.Stderr
	}

	signals := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if cfg.testBinary != "" {
		// go test sends SIGQUIT to an -exec program that outlives
		// its -timeout by a minute: the guest goes down with the
		// runner.
		signals = append(signals, syscall.SIGQUIT)
	}
	ctx, stop := signal.NotifyContext(context.Background(), signals...)
	ok, err := run(ctx, &cfg)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vm: %v\n", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg *config) (bool, error) {
	switch cfg.mode {
	case "test", "shell", "demo":
		if cfg.guestCmd != "" {
			return false, fmt.Errorf("-guest-cmd is for -mode exec only")
		}
	case "exec":
		if cfg.guestCmd == "" {
			return false, fmt.Errorf("-mode exec needs -guest-cmd")
		}
	default:
		return false, fmt.Errorf("unknown mode %q (want test, shell, demo or exec)", cfg.mode)
	}
	if err := goTestExec(cfg); err != nil {
		return false, err
	}
	root, err := repoRoot()
	if err != nil {
		return false, err
	}
	cfg.root = root
	applyIcount(cfg)
	if !filepath.IsAbs(cfg.out) {
		cfg.out = filepath.Join(root, cfg.out)
	}
	if cfg.module != "" && !filepath.IsAbs(cfg.module) {
		cfg.module = filepath.Join(root, cfg.module)
	}
	if cfg.ipPlugin != "" && !filepath.IsAbs(cfg.ipPlugin) {
		cfg.ipPlugin = filepath.Join(root, cfg.ipPlugin)
	}
	if cfg.cri != "" && !filepath.IsAbs(cfg.cri) {
		cfg.cri = filepath.Join(root, cfg.cri)
	}
	if cfg.kver == "" {
		if cfg.kver, err = newestCloudKernel("/usr/src"); err != nil {
			return false, err
		}
	}
	if cfg.kernel == "" {
		cfg.kernel = "/boot/vmlinuz-" + cfg.kver
	}
	if _, err := os.Stat(cfg.kernel); err != nil {
		return false, fmt.Errorf("kernel image: %w (install linux-image-%s)", err, cfg.kver)
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return false, err
	}
	if err := buildForExec(ctx, cfg); err != nil {
		return false, err
	}

	unlock, err := lockOut(ctx, cfg.out, cfg.msgOut())
	if err != nil {
		return false, err
	}
	defer unlock()

	start := time.Now()
	initrd, err := buildInitramfs(ctx, cfg)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(cfg.msgOut(), "vm: initramfs %s built in %.1fs; booting %s\n", rel(cfg.root, initrd), time.Since(start).Seconds(), cfg.kernel)
	for try := 1; ; try++ {
		limit := cfg.bootLimit
		if try >= cfg.bootTries {
			limit = 0 // the last boot runs to -timeout and is reported
		}
		ok, err := boot(ctx, cfg, initrd, limit)
		if !errors.Is(err, errBootHung) {
			return ok, err
		}
		fmt.Fprintf(cfg.msgOut(), "vm: the guest's init had not started %v after boot %d of %d (the kernel hung before user space: last console line %q); booting again\n",
			limit, try, cfg.bootTries, lastLine(filepath.Join(cfg.out, "console.log")))
	}
}

// errBootHung: the guest's init had not started by the boot limit.
var errBootHung = errors.New("the guest's init did not start in time")

// lastLine returns the last non-empty line of the file at path.
func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// lockOut takes an exclusive lock on the output directory, waiting for any
// other run that holds it: two runs would overwrite each other's initramfs
// and logs, and two TCG guests on the same cores slow each other down enough
// to upset the tests that measure time.
func lockOut(ctx context.Context, dir string, msgs io.Writer) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	waiting := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", dir, err)
		}
		if !waiting {
			fmt.Fprintf(msgs, "vm: waiting for another VM run that uses %s to finish\n", dir)
			waiting = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, errors.New("interrupted")
		case <-time.After(time.Second):
		}
	}
	return func() { f.Close() }, nil
}

// repoRoot finds the repository from the working directory (go test runs
// an -exec program in the package's directory) or else from where the
// runner's executable is (build/vm-runner).
func repoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		if root, ok := findRoot(dir); ok {
			return root, nil
		}
	}
	return "", errors.New("not inside the insane repository (no go.mod found)")
}

func findRoot(dir string) (string, bool) {
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/insane-netdev/insane\n") {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// kernelArgs is the guest kernel command line. Any warning panics, any panic
// reboots at once, and -no-reboot turns that reboot into QEMU's exit.
func kernelArgs(extra string) string {
	args := "console=ttyS0,115200 panic_on_warn=1 panic=-1 oops=panic softlockup_panic=1 " +
		"hung_task_panic=1 mitigations=off random.trust_cpu=on net.ifnames=0 rdinit=/init"
	if extra != "" {
		args += " " + extra
	}
	return args
}

// testArgs adds a test run's kernel arguments to extra. The kfree_skb
// tracepoint (TestRelayDropReasons reads its drop reasons) is enabled at
// boot, before the second CPU comes up, and stays on: enabling an event at
// run time patches the scheduler's static calls (the comm recording) with
// text_poke_bp(), and under QEMU 7.2's multi-threaded TCG one such patch
// left a vCPU looping on the breakpoint while the other waited for it (a
// soft lockup in the first fresh-clone run of 93672a4).
func testArgs(cfg *config, extra string) string {
	if cfg.mode != "test" {
		return extra
	}
	args := "trace_event=skb:kfree_skb"
	if extra != "" {
		args += " " + extra
	}
	return args
}

// qemuArgs returns QEMU's arguments. The console (ttyS0), the results port
// (ttyS1) and the test port (ttyS2) are written to the files given; in shell
// mode the console is on stdio instead.
func qemuArgs(cfg *config, initrd, consolePath, resultsPath, testsPath string) []string {
	args := []string{
		"-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
		"-machine", "q35", "-accel", cfg.accel, "-cpu", "max",
		"-smp", fmt.Sprint(cfg.smp), "-m", cfg.mem,
		"-kernel", cfg.kernel, "-initrd", initrd,
		"-append", kernelArgs(debugArgs(cfg, testArgs(cfg, cfg.append))),
	}
	args = append(args, icountArgs()...)
	if cfg.mode == "shell" {
		args = append(args, "-serial", "mon:stdio")
	} else {
		args = append(args, "-chardev", "file,id=console,path="+consolePath, "-serial", "chardev:console")
	}
	args = append(args, "-chardev", "file,id=results,path="+resultsPath, "-serial", "chardev:results")
	args = append(args, "-chardev", "file,id=tests,path="+testsPath, "-serial", "chardev:tests")
	return args
}

// boot runs QEMU once and reports whether the guest's run was good. With
// limit, a guest whose init has not begun that long after QEMU started is
// killed, and boot returns errBootHung.
func boot(ctx context.Context, cfg *config, initrd string, limit time.Duration) (bool, error) {
	consoleLog := filepath.Join(cfg.out, "console.log")
	guestLog := filepath.Join(cfg.out, "guest.log")
	eventsLog := filepath.Join(cfg.out, "events.json")

	// QEMU writes the serial ports into pipes (reopened through
	// /dev/fd), so that the host sees the guest's output as it comes.
	resultsR, resultsW, err := os.Pipe()
	if err != nil {
		return false, err
	}
	defer resultsR.Close()
	testsR, testsW, err := os.Pipe()
	if err != nil {
		return false, err
	}
	defer testsR.Close()
	files := []*os.File{resultsW, testsW}
	consolePath := ""
	var consoleR *os.File
	if cfg.mode != "shell" {
		var consoleW *os.File
		consoleR, consoleW, err = os.Pipe()
		if err != nil {
			return false, err
		}
		defer consoleR.Close()
		files = append(files, consoleW)
		consolePath = "/dev/fd/5"
	}

	gl, err := os.Create(guestLog)
	if err != nil {
		return false, err
	}
	defer gl.Close()
	s := &session{cfg: cfg, res: newResults(), guestLog: gl}
	if cfg.mode == "test" && cfg.testBinary == "" {
		el, err := os.Create(eventsLog)
		if err != nil {
			return false, err
		}
		defer el.Close()
		s.events = el
		s.printer = testPrinter(cfg.msgOut(), cfg.verbose)
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	// The test port: through go tool test2json into events, or as go
	// test -exec to standard output as it is.
	var port *testPort
	switch {
	case cfg.testBinary != "":
		port = newTestPort(testsR, nopCloser{io.MultiWriter(os.Stdout, gl)}, nil)
	case cfg.mode == "test":
		if port, err = s.test2json(runCtx, testsR); err != nil {
			return false, err
		}
	default:
		port = newTestPort(testsR, nopCloser{io.Discard}, nil)
	}

	cmd := exec.CommandContext(runCtx, cfg.qemu, qemuArgs(cfg, initrd, consolePath, "/dev/fd/3", "/dev/fd/4")...)
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	if cfg.mode == "shell" {
		cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
	}
	cmd.WaitDelay = 5 * time.Second
	if cfg.verbose {
		fmt.Fprintf(cfg.msgOut(), "vm: %s\n", strings.Join(cmd.Args, " "))
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		port.Close()
		return false, fmt.Errorf("starting %s: %w (install qemu-system-x86)", cfg.qemu, err)
	}
	for _, f := range files {
		f.Close()
	}

	// The watchdog: the results port's first marker comes from init.
	var hung atomic.Bool
	if limit > 0 {
		watch := time.AfterFunc(limit, func() {
			s.mu.Lock()
			begun := s.res.Begun
			s.mu.Unlock()
			if !begun {
				hung.Store(true)
				_ = cmd.Process.Kill()
			}
		})
		defer watch.Stop()
	}

	consoleDone := make(chan error, 1)
	if consoleR != nil {
		go func() { consoleDone <- saveConsole(consoleR, consoleLog, cfg.console) }()
	} else {
		consoleDone <- nil
	}

	var portErr error
	br := bufio.NewReaderSize(resultsR, 64*1024)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			marker := s.resultsLine(line)
			// The guest has written all of its test binary's output
			// when it says the binary exited: the events of that
			// output come before whatever follows.
			if f := strings.Fields(marker); len(f) >= 2 && f[0] == markExit && f[1] == guestTest {
				if err := port.Drain(); err != nil && portErr == nil {
					portErr = err
				}
			}
		}
		if err != nil {
			break
		}
	}
	waitErr := cmd.Wait()
	if err := port.Close(); err != nil && portErr == nil {
		portErr = err
	}
	if err := <-consoleDone; err != nil {
		return false, err
	}
	if hung.Load() {
		return false, errBootHung
	}
	s.res.Finish()
	elapsed := time.Since(started)
	timedOut := runCtx.Err() == context.DeadlineExceeded
	if ctx.Err() != nil {
		return false, errors.New("interrupted")
	}
	if portErr != nil {
		return false, fmt.Errorf("test output: %w", portErr)
	}

	var console []byte
	if cfg.mode != "shell" {
		console, err = os.ReadFile(consoleLog)
		if err != nil {
			return false, err
		}
	}
	info := reportInfo{
		elapsed:    elapsed,
		timedOut:   timedOut,
		qemuErr:    waitErr,
		consoleLog: rel(cfg.root, consoleLog),
		guestLog:   rel(cfg.root, guestLog),
	}
	if s.events != nil {
		info.eventsLog = rel(cfg.root, eventsLog)
	}
	return report(cfg, s.res, console, info), nil
}

func saveConsole(r io.Reader, path string, echo bool) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var w io.Writer = f
	if echo {
		w = io.MultiWriter(f, os.Stderr)
	}
	_, err = io.Copy(w, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// session is what one boot has seen, fed from the results port and the
// test port's events.
type session struct {
	cfg      *config
	mu       sync.Mutex // the two ports are read by two goroutines
	res      *results
	guestLog io.Writer
	events   io.Writer                   // events.json, in test mode
	printer  func(*testResult, []string) // in test mode
}

// event takes one test event.
func (s *session) event(e testevent.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.events != nil {
		if b, err := json.Marshal(e); err == nil {
			s.events.Write(append(b, '\n'))
		}
	}
	if e.Action == testevent.Output {
		io.WriteString(s.guestLog, e.Output)
	}
	ended, lines := s.res.Event(e)
	if s.printer != nil {
		s.printer(ended, lines)
	}
}

// resultsLine takes one line of the results port and returns the marker it
// carried, if any.
func (s *session) resultsLine(line string) string {
	// Test events on the results port come from eventrun, in test mode
	// only: in exec and demo mode a line is the program's own output.
	marker, ev := func() (string, *testevent.Event) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.res.Line(line, s.cfg.mode == "test")
	}()
	if ev != nil {
		s.event(*ev)
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	io.WriteString(s.guestLog, line)
	if marker != "" || s.res.inDmesg {
		return marker
	}
	text := strings.TrimRight(line, "\r\n")
	switch {
	case s.cfg.mode == "test" && s.cfg.testBinary == "":
		s.res.Stray = append(s.res.Stray, text)
		if s.cfg.verbose {
			fmt.Fprintf(s.cfg.msgOut(), "    | %s\n", text)
		}
	case s.cfg.mode == "test":
		s.res.Stray = append(s.res.Stray, text)
	default:
		// -mode exec and demo: the program's output as it comes.
		fmt.Println(text)
	}
	return ""
}

// test2json starts go tool test2json on the test port, its events going to
// the session.
func (s *session) test2json(ctx context.Context, r *os.File) (*testPort, error) {
	cmd := exec.CommandContext(ctx, goTool(), "tool", "test2json", "-t", "-p", guestPackage)
	cmd.Dir = s.cfg.root
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("go tool test2json: %w", err)
	}
	decoded := make(chan error, 1)
	go func() {
		decoded <- decodeEvents(out, s.event)
	}()
	return newTestPort(r, in, func() error {
		derr := <-decoded
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("go tool test2json: %w", err)
		}
		return derr
	}), nil
}

// decodeEvents reads a stream of test events and hands each to fn.
func decodeEvents(r io.Reader, fn func(testevent.Event)) error {
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			e, perr := testevent.Parse(line)
			if perr != nil {
				return fmt.Errorf("test event %q: %w", line, perr)
			}
			fn(e)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// testPrinter prints each test as it ends, with the log of a failed test,
// and with verbose every line of output as it comes.
func testPrinter(w io.Writer, verbose bool) func(*testResult, []string) {
	return func(ended *testResult, lines []string) {
		if verbose {
			for _, l := range lines {
				fmt.Fprintf(w, "    | %s\n", l)
			}
		}
		if ended == nil {
			return
		}
		indent := strings.Repeat("    ", ended.Depth())
		fmt.Fprintf(w, "%s%s %s (%.2fs)\n", indent, ended.Status, ended.Name, ended.Elapsed)
		if ended.Status == statusFail && !verbose {
			for _, l := range ended.Log() {
				fmt.Fprintf(w, "%s    | %s\n", indent, l)
			}
		}
	}
}

// dedupe drops repeated lines, keeping the first of each.
func dedupe(lines []string) []string {
	seen := make(map[string]bool)
	var out []string
	for _, l := range lines {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

type reportInfo struct {
	elapsed    time.Duration
	timedOut   bool
	qemuErr    error
	consoleLog string
	guestLog   string
	eventsLog  string // "" if none was written
}

// printFigures prints the headline figures of the tests that passed, one
// line per test, in the order the tests ran.
func printFigures(w io.Writer, res *results) {
	for _, t := range res.Tests {
		f := t.Figures()
		if len(f) == 0 {
			continue
		}
		parts := make([]string, len(f))
		for i, x := range f {
			parts[i] = fmt.Sprintf("%s %d", x.Name, x.Value)
		}
		fmt.Fprintf(w, "vm: figures of %s: %s\n", t.Name, strings.Join(parts, ", "))
	}
}

// report prints the verdict and returns whether the run was good. As go
// test -exec, it leaves the tests to go test and prints the rest on
// standard error.
func report(cfg *config, res *results, console []byte, info reportInfo) bool {
	w := cfg.msgOut()
	good := true
	var problems []string
	if cfg.mode == "shell" {
		return info.qemuErr == nil
	}
	if info.timedOut {
		problems = append(problems, fmt.Sprintf("timed out after %v", cfg.timeout))
	}
	problems = append(problems, res.Problems()...)
	if info.qemuErr != nil && !info.timedOut {
		problems = append(problems, fmt.Sprintf("qemu: %v", info.qemuErr))
	}
	// The console has the kernel log as it happened (including a panic
	// that ends the run); the dmesg section has all of it, whatever the
	// console log level.
	consoleText, dmesgText := string(console), strings.Join(res.Dmesg, "\n")
	var early []string
	if cfg.debug {
		var c, d string
		c, consoleText = splitAtMark(consoleText)
		d, dmesgText = splitAtMark(dmesgText)
		early = dedupe(append(kmsg.Scan(c), kmsg.Scan(d)...))
	}
	kernel := dedupe(append(kmsg.Scan(consoleText), kmsg.Scan(dmesgText)...))

	if cfg.mode == "test" {
		passed, failed, skipped := res.Counts()
		if failed > 0 {
			fmt.Fprintln(w, "vm: failed tests:")
			for _, t := range res.Tests {
				if t.Status == statusFail || t.Status == "" {
					what := "FAIL"
					if t.Status == "" {
						what = "did not finish:"
					}
					fmt.Fprintf(w, "    %s %s\n", what, t.Name)
					if cfg.testBinary != "" {
						// Nobody printed its log yet.
						for _, l := range t.Log() {
							fmt.Fprintf(w, "        | %s\n", l)
						}
					}
				}
			}
		}
		good = failed == 0
		if cfg.testBinary != "" {
			// go test reports the tests; the exit status of the
			// binary is part of the verdict.
			if st, ok := res.exitStatus(guestTest); ok && st != 0 {
				good = false
				if failed > 0 {
					fmt.Fprintf(w, "vm: %s exited with status %d\n", guestTest, st)
				}
			}
		} else {
			printFigures(w, res)
			if passed+failed+skipped == 0 && res.Done {
				problems = append(problems, "no test ran (check -run)")
			}
		}
		if !cfg.debug {
			// The debug summary counts the reports by kind.
			fmt.Fprintf(w, "vm: kernel log: %d report lines (warnings, bugs, oopses, refcount and RCU reports, hung unregisters)\n", len(kernel))
		}
		if cfg.testBinary == "" {
			defer func() {
				// Problems outside the tests count as failures
				// too, so that the closing line never reads as
				// a clean run when the exit status is not zero.
				extra := 0
				if len(problems) > 0 {
					extra++
				}
				if len(kernel) > 0 {
					extra++
				}
				line := fmt.Sprintf("vm: %d passed, %d failed", passed, failed+extra)
				if skipped > 0 {
					line += fmt.Sprintf(", %d skipped", skipped)
				}
				fmt.Fprintln(w, line)
			}()
		}
	}
	if len(kernel) > 0 {
		good = false
		fmt.Fprintln(w, "vm: the kernel log shows problems:")
		for _, l := range kernel {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	if cfg.debug {
		problems = append(problems, debugSummary(cfg, res, early, kernel)...)
	}
	for _, p := range problems {
		good = false
		fmt.Fprintf(w, "vm: %s\n", p)
	}
	logs := fmt.Sprintf("console log: %s; guest output: %s", info.consoleLog, info.guestLog)
	if info.eventsLog != "" {
		logs += "; test events: " + info.eventsLog
	}
	fmt.Fprintf(w, "vm: guest ran %.1fs; %s\n", info.elapsed.Seconds(), logs)
	if cfg.testBinary != "" && !good {
		fmt.Fprintf(w, "vm: FAIL: %s\n", strings.Join(execVerdict(res, kernel), "; "))
	}
	return good
}

// execVerdict says why a run as go test -exec failed.
func execVerdict(res *results, kernel []string) []string {
	var why []string
	if st, ok := res.exitStatus(guestTest); !ok {
		why = append(why, "the test binary did not finish")
	} else if st != 0 {
		why = append(why, fmt.Sprintf("the test binary exited with status %d", st))
	}
	if len(kernel) > 0 {
		why = append(why, "the kernel log shows problems")
	}
	if _, failed, _ := res.Counts(); failed > 0 {
		why = append(why, "a check after the tests failed")
	}
	if len(why) == 0 {
		why = append(why, "see above")
	}
	return why
}
