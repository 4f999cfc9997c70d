package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestVersionLess(t *testing.T) {
	sorted := []string{
		"6.1.0-9-cloud-amd64",
		"6.1.0-10-cloud-amd64",
		"6.1.0-56-cloud-amd64",
		"6.1.0-56a-cloud-amd64",
		"6.10.0-1-cloud-amd64",
	}
	for i := range sorted {
		for j := range sorted {
			if got := versionLess(sorted[i], sorted[j]); got != (i < j) {
				t.Errorf("versionLess(%s, %s) = %v", sorted[i], sorted[j], got)
			}
		}
	}
}

func TestNewestCloudKernel(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{
		"linux-headers-6.1.0-9-cloud-amd64", "linux-headers-6.1.0-56-cloud-amd64",
		"linux-headers-6.1.0-56-common", "linux-headers-6.1.0-99-amd64", "linux-kbuild-6.1",
	} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := newestCloudKernel(dir)
	if err != nil || got != "6.1.0-56-cloud-amd64" {
		t.Errorf("newestCloudKernel = %q, %v; want 6.1.0-56-cloud-amd64", got, err)
	}
	if _, err := newestCloudKernel(t.TempDir()); err == nil {
		t.Error("no headers: no error")
	}
}

const modulesDep = `kernel/drivers/net/veth.ko:
kernel/net/netfilter/nf_tables.ko: kernel/net/netfilter/nfnetlink.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nft_numgen.ko: kernel/net/netfilter/nf_tables.ko kernel/net/netfilter/nfnetlink.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nfnetlink.ko:
kernel/lib/libcrc32c.ko:
kernel/net/sched/sch-test.ko.xz:
`

func TestModulesClosure(t *testing.T) {
	md, err := parseModulesDep(strings.NewReader(modulesDep))
	if err != nil {
		t.Fatal(err)
	}
	got, err := md.closure([]string{"nft_numgen", "veth", "nf_tables", "sch_test", "ipv6"}, func(n string) bool { return n == "ipv6" })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/net/netfilter/nfnetlink.ko", "kernel/lib/libcrc32c.ko", "kernel/net/netfilter/nf_tables.ko",
		"kernel/net/netfilter/nft_numgen.ko", "kernel/drivers/net/veth.ko", "kernel/net/sched/sch-test.ko.xz",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("closure = %q, want %q", got, want)
	}
	if _, err := md.closure([]string{"nosuch"}, nil); err == nil {
		t.Error("an unknown module was accepted")
	}
	if _, err := parseModulesDep(strings.NewReader("no colon here\n")); err == nil {
		t.Error("a malformed modules.dep was accepted")
	}
}

func TestSharedLibs(t *testing.T) {
	const bash = "/usr/bin/bash"
	if _, err := os.Stat(bash); err != nil {
		t.Skip("no", bash)
	}
	libs, err := sharedLibs(bash, libDirs)
	if err != nil {
		t.Fatal(err)
	}
	bases := make([]string, len(libs))
	for i, l := range libs {
		bases[i] = filepath.Base(l)
		if _, err := os.Stat(l); err != nil {
			t.Errorf("%s: %v", l, err)
		}
	}
	sort.Strings(bases)
	for _, want := range []string{"ld-linux-x86-64.so.2", "libc.so.6"} {
		if i := sort.SearchStrings(bases, want); i == len(bases) || bases[i] != want {
			t.Errorf("bash needs %q, found %q", want, bases)
		}
	}
	if _, err := findLib("libinsane-does-not-exist.so.9", libDirs); err == nil {
		t.Error("a missing library was found")
	}
}

func TestGuestLibPath(t *testing.T) {
	for in, want := range map[string]string{
		"/lib/x86_64-linux-gnu/libc.so.6":     "/usr/lib/x86_64-linux-gnu/libc.so.6",
		"/lib64/ld-linux-x86-64.so.2":         "/usr/lib64/ld-linux-x86-64.so.2",
		"/usr/lib/x86_64-linux-gnu/libbpf.so": "/usr/lib/x86_64-linux-gnu/libbpf.so",
	} {
		if got := guestLibPath(in); got != want {
			t.Errorf("guestLibPath(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestQemuArgs(t *testing.T) {
	cfg := &config{mode: "test", accel: "tcg,thread=multi", smp: 2, mem: "1G", kernel: "/boot/vmlinuz-x", append: "foo=1"}
	args := strings.Join(qemuArgs(cfg, "/tmp/i.cpio", "/dev/fd/5", "/dev/fd/3", "/dev/fd/4"), " ")
	for _, want := range []string{
		"-no-reboot", "-accel tcg,thread=multi", "-smp 2", "-m 1G", "-kernel /boot/vmlinuz-x", "-initrd /tmp/i.cpio",
		"panic_on_warn=1", "panic=-1", "oops=panic", "console=ttyS0", " foo=1",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q: %s", want, args)
		}
	}
	// ttyS0 is the console, ttyS1 the results, ttyS2 the test output.
	c, r, o := strings.Index(args, "path=/dev/fd/5"), strings.Index(args, "path=/dev/fd/3"), strings.Index(args, "path=/dev/fd/4")
	if c < 0 || r < 0 || o < 0 || c > r || r > o {
		t.Errorf("serial ports out of order: %s", args)
	}
	cfg.mode = "shell"
	args = strings.Join(qemuArgs(cfg, "i", "", "/dev/fd/3", "/dev/fd/4"), " ")
	if !strings.Contains(args, "-serial mon:stdio") || strings.Index(args, "mon:stdio") > strings.Index(args, "path=/dev/fd/3") {
		t.Errorf("shell mode: console not on stdio first: %s", args)
	}
}

func TestVermagic(t *testing.T) {
	if _, err := vermagic("/usr/bin/bash"); err == nil {
		t.Error("vermagic of a program that is not a module: no error")
	}
	ko, _ := filepath.Glob("../../../kernel/insane.ko")
	if len(ko) == 0 {
		t.Skip("kernel/insane.ko not built")
	}
	vm, err := vermagic(ko[0])
	if err != nil || !strings.Contains(vm, "SMP") {
		t.Errorf("vermagic = %q, %v", vm, err)
	}
}

func TestLockOut(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockOut(context.Background(), dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// A second run waits; here it gives up when its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := lockOut(ctx, dir, io.Discard); err == nil {
		t.Fatal("a second lock on the same directory was granted")
	}
	unlock()
	unlock2, err := lockOut(context.Background(), dir, io.Discard)
	if err != nil {
		t.Fatalf("after the first run ended: %v", err)
	}
	unlock2()
}

// A fake QEMU that never starts init is killed at the boot limit, and
// boot says so; one whose init begins and ends is reported as usual.
func TestBootWatchdog(t *testing.T) {
	dir := t.TempDir()
	fake := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := &config{mode: "exec", accel: "tcg", smp: 1, mem: "1G", kernel: "k", out: dir, root: dir,
		timeout: time.Minute, msgs: io.Discard, qemu: fake("hang", "exec sleep 60")}
	start := time.Now()
	_, err := boot(context.Background(), cfg, "i", 300*time.Millisecond)
	if !errors.Is(err, errBootHung) {
		t.Fatalf("a boot that never reaches init: %v, want errBootHung", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the hung boot took %v to give up", d)
	}
	cfg.qemu = fake("ok", "echo '@@@ begin' >&3\necho '@@@ done' >&3")
	if _, err := boot(context.Background(), cfg, "i", 30*time.Second); err != nil {
		t.Fatalf("a boot whose init began: %v", err)
	}
	if got := lastLine(filepath.Join(dir, "gone")); got != "" {
		t.Errorf("lastLine of a missing file: %q", got)
	}
}
