package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// busyboxApplets are the busybox tools the guest gets. ip, tc and the module
// tools are left out on purpose: iproute2 and kmod provide the real ones.
var busyboxApplets = []string{
	"[", "awk", "basename", "cat", "chmod", "cp", "cut", "date", "dd", "df",
	"dirname", "dmesg", "du", "env", "expr", "false", "find", "free", "grep",
	"head", "hexdump", "hostname", "id", "kill", "less", "ln", "ls", "mkdir",
	"mkfifo", "mknod", "mktemp", "more", "mount", "mv", "nc", "nproc",
	"nsenter", "pidof", "ping", "ping6", "poweroff", "printf", "ps", "readlink",
	"realpath", "reboot", "rm", "rmdir", "sed", "seq", "setsid", "sha256sum",
	"sleep", "sort", "stat", "stty", "sync", "sysctl", "tail", "taskset", "tee",
	"test", "timeout", "top", "touch", "tr", "true", "umount", "uname", "uniq",
	"unshare", "usleep", "vi", "watch", "wc", "which", "xargs", "yes", "tty", "clear", "reset",
}

// hostTools are the dynamically linked host programs the guest gets, with
// the Debian package that provides each (for the error message). An
// optional tool is left out when the host lacks it.
var hostTools = []struct {
	name, dir, pkg string
	optional       bool
}{
	{"bash", "/usr/bin", "bash", false},
	{"ip", "/usr/sbin", "iproute2", false},
	{"tc", "/usr/sbin", "iproute2", false},
	{"ethtool", "/usr/sbin", "ethtool", false},
	{"kmod", "/usr/bin", "kmod", false},
	{"nft", "/usr/sbin", "nftables", true}, // make bench
	{"perf", "/usr/bin", "linux-perf", true},
}

// kmodTools run as kmod under these names.
var kmodTools = []string{"modprobe", "insmod", "rmmod", "lsmod", "modinfo", "depmod"}

// goProgram is a static Go program built for the guest.
type goProgram struct {
	// pkg is the package path relative to the repository root, or, for a
	// dependency's program (module), its import path, built at the
	// version go.mod names.
	pkg    string
	module bool
	test   bool   // build the package's tests (go test -c)
	guest  string // where it goes in the guest
	need   bool   // fail if the package does not build
}

// guestTestPath is where the guest test binary goes in the guest.
const guestTestPath = "/usr/libexec/insane/guest.test"

// guestCNIBin is the guest's CNI bin directory, the conventional
// /opt/cni/bin: the insane plugin as type "insane", and the upstream
// plugins its tests chain it after (tool lines of go.mod).
const guestCNIBin = "/opt/cni/bin"

func goPrograms(cfg *config) []goProgram {
	var progs []goProgram
	if cfg.testBinary == "" {
		progs = append(progs, goProgram{pkg: "./tests/vm/guest", test: true, guest: guestTestPath, need: cfg.mode == "test"})
	}
	return append(append(progs, []goProgram{
		{pkg: "./tests/vm/runner/eventrun", guest: "/usr/libexec/insane/eventrun", need: cfg.mode == "test"},
		{pkg: "./go/cmd/insane", guest: "/usr/bin/insane", need: cfg.mode == "demo"},
		{pkg: "./tests/vm/demo", guest: "/usr/bin/insane-demo", need: cfg.mode == "demo"},
		{pkg: "./tests/vm/bench", guest: "/usr/bin/insane-bench", need: strings.HasPrefix(cfg.guestCmd, "insane-bench")},
		{pkg: "./go/cmd/insane-cni", guest: guestCNIBin + "/insane", need: cfg.mode == "test"},
		{pkg: "github.com/containernetworking/plugins/plugins/main/ptp", module: true, guest: guestCNIBin + "/ptp", need: cfg.mode == "test"},
		{pkg: "github.com/containernetworking/plugins/plugins/ipam/host-local", module: true, guest: guestCNIBin + "/host-local", need: cfg.mode == "test"},
	}...), criPrograms(cfg)...)
}

// buildInitramfs assembles the guest's root file system and writes it as an
// uncompressed newc cpio archive. It returns the archive's path.
func buildInitramfs(ctx context.Context, cfg *config) (string, error) {
	a := newArchive()
	// A merged /usr like Debian's.
	for _, d := range []string{"bin", "sbin", "lib", "lib64"} {
		if err := a.Symlink("/"+d, "usr/"+d); err != nil {
			return "", err
		}
	}
	for _, d := range []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/root", "/etc", "/usr/sbin"} {
		if err := a.Dir(d); err != nil {
			return "", err
		}
	}
	steps := []func() error{
		func() error { return a.Symlink("/var/run", "../run") },
		// The kernel opens /dev/console for init before devtmpfs is
		// mounted.
		func() error { return a.CharDev("/dev/console", 0o600, 5, 1) },
		func() error { return a.Bytes("/init", initScript, 0o755) },
		func() error { return a.Bytes("/etc/passwd", []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644) },
		func() error { return a.Bytes("/etc/group", []byte("root:x:0:\ntty:x:5:\n"), 0o644) },
		func() error { return a.Bytes("/etc/hosts", []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644) },
		func() error { return vmtestConfig(a, cfg) },
		func() error { return addBusybox(a) },
		func() error { return addHostTools(a) },
		func() error { return addTree(a, "/usr/lib/x86_64-linux-gnu/tc", "/usr/lib/x86_64-linux-gnu/tc") },
		func() error { return addIPPlugin(a, cfg) },
		func() error { return addScripts(a, cfg) },
		func() error { return addGoPrograms(ctx, a, cfg) },
		func() error { return addCRI(a, cfg) },
		func() error { return addModules(ctx, a, cfg) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return "", err
		}
	}
	out := filepath.Join(cfg.out, "initramfs.cpio")
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if _, err := a.WriteTo(bw); err != nil {
		f.Close()
		return "", err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return out, f.Close()
}

// vmtestConfig writes the host's settings for the guest init.
func vmtestConfig(a *archive, cfg *config) error {
	mode := cfg.mode
	cmd := cfg.guestCmd
	if mode == "demo" {
		mode, cmd = "exec", "insane-demo"
	}
	// The test binary's own timeout leaves time for it to print where it
	// hung before the host gives up on the VM.
	testTimeout := cfg.timeout * 9 / 10
	files := map[string]string{
		"mode":    mode,
		"run":     cfg.run,
		"cmd":     cmd,
		"timeout": testTimeout.String(),
		"debug":   fmt.Sprint(cfg.debug),
		// As go test -exec, the test binary's arguments, one a line
		// (goTestExec refuses a newline in one).
		"args":   strings.Join(cfg.testArgs, "\n"),
		"gotest": fmt.Sprint(cfg.testBinary != ""),
	}
	for name, v := range files {
		if err := a.Bytes("/etc/vmtest/"+name, []byte(v+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func addBusybox(a *archive) error {
	bb, err := findTool("busybox", "busybox-static")
	if err != nil {
		return err
	}
	f, err := elf.Open(bb)
	if err != nil {
		return err
	}
	static := true
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			static = false
		}
	}
	f.Close()
	if !static {
		return fmt.Errorf("%s is not statically linked (install busybox-static)", bb)
	}
	if err := a.File(bb, "/usr/bin/busybox", 0o755); err != nil {
		return err
	}
	for _, app := range busyboxApplets {
		if err := a.Symlink("/usr/bin/"+app, "busybox"); err != nil {
			return err
		}
	}
	return nil
}

// findTool looks for a host program in the usual directories, whatever PATH
// says.
func findTool(name, pkg string) (string, error) {
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := filepath.Join(d, name)
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found (install %s)", name, pkg)
}

// guestLibPath maps a host library path to the guest's merged-/usr layout.
func guestLibPath(p string) string {
	for _, d := range []string{"/lib/", "/lib64/", "/bin/", "/sbin/"} {
		if strings.HasPrefix(p, d) {
			return "/usr" + p
		}
	}
	return p
}

func addHostTools(a *archive) error {
	for _, t := range hostTools {
		host, err := findTool(t.name, t.pkg)
		if err != nil {
			if t.optional {
				continue
			}
			return err
		}
		if err := a.File(host, path.Join(t.dir, t.name), 0o755); err != nil {
			return err
		}
		libs, err := sharedLibs(host, libDirs)
		if err != nil {
			return err
		}
		for _, l := range libs {
			if err := a.File(l, guestLibPath(l), 0o755); err != nil {
				return err
			}
		}
	}
	// Scripts that say /bin/sh get bash, not busybox's sh, whose
	// built-in applets would shadow iproute2.
	if err := a.Symlink("/usr/bin/sh", "bash"); err != nil {
		return err
	}
	for _, t := range kmodTools {
		if err := a.Symlink("/usr/sbin/"+t, "../bin/kmod"); err != nil {
			return err
		}
	}
	return nil
}

func addTree(a *archive, host, guest string) error {
	if _, err := os.Stat(host); err != nil {
		return nil // optional
	}
	return a.Tree(host, guest)
}

// ipPluginDir is where Debian's ip looks for link_<kind>.so (its IP_LIB_DIR).
const ipPluginDir = "/usr/lib/x86_64-linux-gnu/ip"

// addIPPlugin installs iproute2/link_insane.so, so that the guest's ip
// parses and prints the insane link type.
func addIPPlugin(a *archive, cfg *config) error {
	if cfg.ipPlugin == "" {
		return nil
	}
	if _, err := os.Stat(cfg.ipPlugin); err != nil {
		return fmt.Errorf("ip plugin: %w (build it with make -C iproute2)", err)
	}
	return a.File(cfg.ipPlugin, ipPluginDir+"/link_insane.so", 0o644)
}

// addScripts installs tests/vm/scripts/*.sh, run by init in test mode.
func addScripts(a *archive, cfg *config) error {
	scripts, err := filepath.Glob(filepath.Join(cfg.root, "tests/vm/scripts/*.sh"))
	if err != nil {
		return err
	}
	for _, s := range scripts {
		if err := a.File(s, "/usr/libexec/insane/scripts/"+filepath.Base(s), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func addGoPrograms(ctx context.Context, a *archive, cfg *config) error {
	if cfg.testBinary != "" {
		if err := addTestBinary(a, cfg.testBinary); err != nil {
			return err
		}
	}
	for _, p := range goPrograms(cfg) {
		if _, err := os.Stat(filepath.Join(cfg.root, p.pkg)); err != nil && !p.module {
			if p.need {
				return fmt.Errorf("%s: %w", p.pkg, err)
			}
			continue
		}
		out := filepath.Join(cfg.out, path.Base(p.guest))
		if path.Dir(p.guest) == guestCNIBin {
			// The plugin is "insane" there, like the CLI.
			out = filepath.Join(cfg.out, "cni-"+path.Base(p.guest))
		}
		args := []string{"build", "-trimpath", "-o", out}
		if p.test {
			args = []string{"test", "-c", "-tags", "vmtest", "-trimpath", "-o", out}
		}
		args = append(args, p.pkg)
		cmd := exec.CommandContext(ctx, goTool(), args...)
		cmd.Dir = cfg.root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		msg, err := cmd.CombinedOutput()
		if err != nil {
			if p.need {
				return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, msg)
			}
			fmt.Fprintf(os.Stderr, "vm: warning: %s does not build, leaving it out of the guest: %s\n", p.pkg, firstLine(string(msg)))
			continue
		}
		if err := a.File(out, p.guest, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// addTestBinary installs the test binary go test built and handed to the
// runner as its -exec program, with its shared libraries if it is
// dynamically linked (go test builds with cgo when it can).
func addTestBinary(a *archive, bin string) error {
	if err := a.File(bin, guestTestPath, 0o755); err != nil {
		return err
	}
	libs, err := sharedLibs(bin, libDirs)
	if err != nil {
		return err
	}
	for _, l := range libs {
		if err := a.File(l, guestLibPath(l), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// addModules stages the stock modules the tests need and insane.ko in a
// host directory, runs depmod on it so that modprobe and the kernel's
// autoload find them, and copies it into the guest.
func addModules(ctx context.Context, a *archive, cfg *config) error {
	src := filepath.Join("/lib/modules", cfg.kver)
	if cfg.moddir != "" {
		src = cfg.moddir
	}
	stage := filepath.Join(cfg.out, "modroot")
	if err := os.RemoveAll(stage); err != nil {
		return err
	}
	dst := filepath.Join(stage, "lib/modules", cfg.kver)

	depFile, err := os.Open(filepath.Join(src, "modules.dep"))
	if err != nil {
		return fmt.Errorf("%w (install linux-image-%s)", err, cfg.kver)
	}
	md, err := parseModulesDep(depFile)
	depFile.Close()
	if err != nil {
		return err
	}
	builtin := map[string]bool{}
	if f, err := os.Open(filepath.Join(src, "modules.builtin")); err == nil {
		builtin, err = parseBuiltin(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	names := append([]string(nil), defaultModules...)
	for _, m := range onDemandModules {
		if _, ok := md.byName[m]; ok {
			names = append(names, m)
		}
	}
	if strings.HasPrefix(cfg.guestCmd, "insane-bench") {
		names = append(names, benchModules...)
	}
	for _, m := range strings.Split(cfg.modules, ",") {
		if m = strings.TrimSpace(m); m != "" {
			names = append(names, m)
		}
	}
	mods, err := md.closure(names, func(n string) bool { return builtin[n] })
	if err != nil {
		return err
	}
	for _, m := range mods {
		if err := copyFile(filepath.Join(src, m), filepath.Join(dst, m)); err != nil {
			return err
		}
	}
	for _, f := range []string{"modules.order", "modules.builtin", "modules.builtin.modinfo"} {
		if err := copyFile(filepath.Join(src, f), filepath.Join(dst, f)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if cfg.module != "" {
		if _, err := os.Stat(cfg.module); err != nil {
			return fmt.Errorf("insane module: %w (build it with make -C kernel)", err)
		}
		if vm, err := vermagic(cfg.module); err != nil {
			return err
		} else if got := strings.Fields(vm); len(got) == 0 || got[0] != cfg.kver {
			return fmt.Errorf("%s is built for %q, not %s", cfg.module, vm, cfg.kver)
		}
		if err := copyFile(cfg.module, filepath.Join(dst, "extra/insane.ko")); err != nil {
			return err
		}
	}
	depmod, err := findTool("depmod", "kmod")
	if err != nil {
		return err
	}
	if msg, err := exec.CommandContext(ctx, depmod, "-b", stage, cfg.kver).CombinedOutput(); err != nil {
		return fmt.Errorf("depmod: %v: %s", err, strings.TrimSpace(string(msg)))
	}
	return a.Tree(filepath.Join(stage, "lib/modules"), "/usr/lib/modules")
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// vermagic returns the vermagic string of a kernel module.
func vermagic(ko string) (string, error) {
	f, err := elf.Open(ko)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return "", fmt.Errorf("%s: no .modinfo section", ko)
	}
	data, err := s.Data()
	if err != nil {
		return "", fmt.Errorf("%s: %w", ko, err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("vermagic=")); ok {
			return string(v), nil
		}
	}
	return "", fmt.Errorf("%s: no vermagic", ko)
}

// newestCloudKernel returns the newest version that has cloud kernel
// headers under dir, as in linux-headers-6.1.0-56-cloud-amd64.
func newestCloudKernel(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	re := regexp.MustCompile(`^linux-headers-(.+-cloud-amd64)$`)
	var vers []string
	for _, e := range entries {
		if m := re.FindStringSubmatch(e.Name()); m != nil {
			vers = append(vers, m[1])
		}
	}
	if len(vers) == 0 {
		return "", fmt.Errorf("no %s/linux-headers-*-cloud-amd64 (install linux-headers-cloud-amd64)", dir)
	}
	sort.Slice(vers, func(i, j int) bool { return versionLess(vers[i], vers[j]) })
	return vers[len(vers)-1], nil
}

// versionLess orders versions like sort -V: runs of digits compare as
// numbers, everything else byte by byte.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ad, bd := isDigit(a[0]), isDigit(b[0])
		if ad && bd {
			an, ar := splitRun(a, true)
			bn, br := splitRun(b, true)
			ai, _ := strconv.ParseUint(an, 10, 64)
			bi, _ := strconv.ParseUint(bn, 10, 64)
			if ai != bi {
				return ai < bi
			}
			a, b = ar, br
			continue
		}
		if ad != bd {
			return ad // a digit sorts before anything else
		}
		as, ar := splitRun(a, false)
		bs, br := splitRun(b, false)
		if as != bs {
			return as < bs
		}
		a, b = ar, br
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func splitRun(s string, digits bool) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) == digits {
		i++
	}
	return s[:i], s[i:]
}
