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
package main

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/insane-netdev/insane/tests/vm/internal/kmsg"
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
	"nft_chain_nat", "nft_nat", "nft_ct", "vrf", "ipip", "ipvlan",
}

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
	verbose  bool
	console  bool
	root     string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.mode, "mode", "test", "test: run the guest tests; shell: interactive guest shell; demo: run the demo; exec: run -guest-cmd")
	flag.StringVar(&cfg.kver, "kver", "", "kernel version to boot (default: newest /usr/src/linux-headers-*-cloud-amd64)")
	flag.StringVar(&cfg.kernel, "kernel", "", "kernel image (default: /boot/vmlinuz-KVER)")
	flag.StringVar(&cfg.module, "module", "kernel/insane.ko", "insane module to install in the guest (empty: none)")
	flag.StringVar(&cfg.ipPlugin, "ip-plugin", "iproute2/link_insane.so", "ip(8) plugin for the insane link type, installed where the guest's ip looks (empty: none)")
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
	flag.BoolVar(&cfg.verbose, "v", false, "stream the guest's raw test output")
	flag.BoolVar(&cfg.console, "console", false, "also stream the guest console (kernel log) to stderr")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "vm: unexpected arguments: %s\n", strings.Join(flag.Args(), " "))
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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

	unlock, err := lockOut(ctx, cfg.out)
	if err != nil {
		return false, err
	}
	defer unlock()

	start := time.Now()
	initrd, err := buildInitramfs(ctx, cfg)
	if err != nil {
		return false, err
	}
	fmt.Printf("vm: initramfs %s built in %.1fs; booting %s\n", rel(cfg.root, initrd), time.Since(start).Seconds(), cfg.kernel)
	return boot(ctx, cfg, initrd)
}

// lockOut takes an exclusive lock on the output directory, waiting for any
// other run that holds it: two runs would overwrite each other's initramfs
// and logs, and two TCG guests on the same cores slow each other down enough
// to upset the tests that measure time.
func lockOut(ctx context.Context, dir string) (func(), error) {
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
			fmt.Printf("vm: waiting for another VM run that uses %s to finish\n", dir)
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

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/insane-netdev/insane\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the insane repository (no go.mod found)")
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

// qemuArgs returns QEMU's arguments. The console (ttyS0) and the results
// port (ttyS1) are written to the files given; in shell mode the console is
// on stdio instead.
func qemuArgs(cfg *config, initrd, consolePath, resultsPath string) []string {
	args := []string{
		"-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
		"-machine", "q35", "-accel", cfg.accel, "-cpu", "max",
		"-smp", fmt.Sprint(cfg.smp), "-m", cfg.mem,
		"-kernel", cfg.kernel, "-initrd", initrd,
		"-append", kernelArgs(debugArgs(cfg, cfg.append)),
	}
	args = append(args, icountArgs()...)
	if cfg.mode == "shell" {
		args = append(args, "-serial", "mon:stdio")
	} else {
		args = append(args, "-chardev", "file,id=console,path="+consolePath, "-serial", "chardev:console")
	}
	args = append(args, "-chardev", "file,id=results,path="+resultsPath, "-serial", "chardev:results")
	return args
}

// boot runs QEMU and reports whether the guest's run was good.
func boot(ctx context.Context, cfg *config, initrd string) (bool, error) {
	consoleLog := filepath.Join(cfg.out, "console.log")
	guestLog := filepath.Join(cfg.out, "guest.log")

	// QEMU writes both serial ports into pipes (reopened through
	// /dev/fd), so that the host sees the guest's output as it comes.
	resultsR, resultsW, err := os.Pipe()
	if err != nil {
		return false, err
	}
	defer resultsR.Close()
	files := []*os.File{resultsW}
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
		consolePath = "/dev/fd/4"
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, cfg.qemu, qemuArgs(cfg, initrd, consolePath, "/dev/fd/3")...)
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	if cfg.mode == "shell" {
		cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
	}
	cmd.WaitDelay = 5 * time.Second
	if cfg.verbose {
		fmt.Printf("vm: %s\n", strings.Join(cmd.Args, " "))
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("starting %s: %w (install qemu-system-x86)", cfg.qemu, err)
	}
	for _, f := range files {
		f.Close()
	}

	consoleDone := make(chan error, 1)
	if consoleR != nil {
		go func() { consoleDone <- saveConsole(consoleR, consoleLog, cfg.console) }()
	} else {
		consoleDone <- nil
	}

	gl, err := os.Create(guestLog)
	if err != nil {
		return false, err
	}
	defer gl.Close()
	res := newResults()
	var printer func(line string, ended *testResult, marker string)
	switch cfg.mode {
	case "test":
		printer = testPrinter(res, cfg.verbose)
	default:
		printer = streamPrinter(res)
	}
	br := bufio.NewReaderSize(resultsR, 64*1024)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			gl.WriteString(line)
			line = strings.TrimRight(line, "\r\n")
			ended, marker := res.Line(line)
			printer(line, ended, marker)
		}
		if err != nil {
			break
		}
	}
	waitErr := cmd.Wait()
	if err := <-consoleDone; err != nil {
		return false, err
	}
	elapsed := time.Since(started)
	timedOut := runCtx.Err() == context.DeadlineExceeded
	if ctx.Err() != nil {
		return false, errors.New("interrupted")
	}

	var console []byte
	if cfg.mode != "shell" {
		console, err = os.ReadFile(consoleLog)
		if err != nil {
			return false, err
		}
	}
	return report(cfg, res, console, reportInfo{
		elapsed:    elapsed,
		timedOut:   timedOut,
		qemuErr:    waitErr,
		consoleLog: rel(cfg.root, consoleLog),
		guestLog:   rel(cfg.root, guestLog),
	}), nil
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

// testPrinter prints each test as it ends, with the log of a failed test.
func testPrinter(res *results, verbose bool) func(string, *testResult, string) {
	return func(line string, ended *testResult, marker string) {
		if verbose && marker == "" && !res.inDmesg {
			fmt.Printf("    | %s\n", line)
		}
		if ended == nil {
			return
		}
		indent := strings.Repeat("    ", ended.Depth())
		fmt.Printf("%s%s %s (%s)\n", indent, ended.Status, ended.Name, ended.Elapsed)
		if ended.Status == statusFail && !verbose {
			for _, l := range ended.Log {
				fmt.Printf("%s    | %s\n", indent, l)
			}
		}
	}
}

// streamPrinter copies the guest program's output to stdout as it comes.
func streamPrinter(res *results) func(string, *testResult, string) {
	return func(line string, _ *testResult, marker string) {
		if marker != "" || res.inDmesg {
			return
		}
		fmt.Println(line)
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
}

// printFigures prints the headline figures of the tests that passed, one
// line per test, in the order the tests ran.
func printFigures(res *results) {
	for _, t := range res.Tests {
		f := t.Figures()
		if len(f) == 0 {
			continue
		}
		parts := make([]string, len(f))
		for i, x := range f {
			parts[i] = fmt.Sprintf("%s %d", x.Name, x.Value)
		}
		fmt.Printf("vm: figures of %s: %s\n", t.Name, strings.Join(parts, ", "))
	}
}

// report prints the verdict and returns whether the run was good.
func report(cfg *config, res *results, console []byte, info reportInfo) bool {
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
			fmt.Println("vm: failed tests:")
			for _, t := range res.Tests {
				if t.Status == statusFail || t.Status == "" {
					what := "FAIL"
					if t.Status == "" {
						what = "did not finish:"
					}
					fmt.Printf("    %s %s\n", what, t.Name)
				}
			}
		}
		printFigures(res)
		if !cfg.debug {
			// The debug summary counts the reports by kind.
			fmt.Printf("vm: kernel log: %d report lines (warnings, bugs, oopses, refcount and RCU reports, hung unregisters)\n", len(kernel))
		}
		if passed+failed+skipped == 0 && res.Done {
			problems = append(problems, "no test ran (check -run)")
		}
		defer func() {
			// Problems outside the tests count as failures too, so
			// that the closing line never reads as a clean run when
			// the exit status is not zero.
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
			fmt.Println(line)
		}()
		good = failed == 0
	}
	if len(kernel) > 0 {
		good = false
		fmt.Println("vm: the kernel log shows problems:")
		for _, l := range kernel {
			fmt.Printf("    %s\n", l)
		}
	}
	if cfg.debug {
		problems = append(problems, debugSummary(cfg, res, early, kernel)...)
	}
	for _, p := range problems {
		good = false
		fmt.Printf("vm: %s\n", p)
	}
	fmt.Printf("vm: guest ran %.1fs; console log: %s; guest output: %s\n", info.elapsed.Seconds(), info.consoleLog, info.guestLog)
	return good
}
