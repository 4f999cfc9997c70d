package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// The -cri directory holds a container runtime for the guest, as make
// test-cri prepares it: Debian's containerd and runc packages unpacked with
// dpkg -x, and crictl built from sigs.k8s.io/cri-tools (GOBIN=DIR/usr/bin).
// The runner packs those binaries, with their shared libraries, into the
// guest's /usr/bin and /usr/sbin, where the guest test TestCRI
// (tests/vm/guest/cri_test.go) finds them; and it builds the programs that
// go with them (criPrograms).

// criTools are the runtime's binaries, by their path under the -cri
// directory, which is also their path in the guest.
var criTools = []string{
	"usr/bin/containerd",
	"usr/bin/containerd-shim-runc-v2",
	"usr/bin/ctr",
	"usr/sbin/runc",
	"usr/bin/crictl",
}

// guestPause is where the pause program goes in the guest; the guest test
// packs it as the sandbox image.
const guestPause = "/usr/libexec/insane/pause"

// criPrograms are the Go programs a run with -cri adds: the sandbox's
// pause program, and the upstream loopback plugin, which containerd runs
// for every pod (a tool line of go.mod, like ptp and host-local).
func criPrograms(cfg *config) []goProgram {
	if cfg.cri == "" {
		return nil
	}
	return []goProgram{
		{pkg: "./tests/vm/runner/pause", guest: guestPause, need: true},
		{pkg: "github.com/containernetworking/plugins/plugins/main/loopback", module: true, guest: guestCNIBin + "/loopback", need: true},
	}
}

// addCRI packs the runtime's binaries and their shared libraries.
func addCRI(a *archive, cfg *config) error {
	if cfg.cri == "" {
		return nil
	}
	for _, t := range criTools {
		host := filepath.Join(cfg.cri, t)
		if info, err := os.Stat(host); err != nil || !info.Mode().IsRegular() {
			return fmt.Errorf("-cri %s: no %s (make test-cri unpacks containerd and runc and builds crictl there)", cfg.cri, t)
		}
		if err := a.File(host, "/"+t, 0o755); err != nil {
			return err
		}
		libs, err := sharedLibs(host, libDirs)
		if err != nil {
			return fmt.Errorf("-cri: %w", err)
		}
		for _, l := range libs {
			if a.Has(guestLibPath(l)) {
				continue
			}
			if err := a.File(l, guestLibPath(l), 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}
