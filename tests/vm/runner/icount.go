package main

import "flag"

// Instruction counting (make bench, make profile). With -icount the guest
// runs under single-threaded TCG with QEMU's -icount shift=0: guest time
// advances by one nanosecond per guest instruction, so a rate the guest
// measures against its own clock is a rate per instruction, whatever the
// host's load. sleep=off lets an idle guest jump to its next timer instead
// of waiting for it in real time; align=off does not slow the guest down to
// real time. QEMU 7.2 hangs bringing up a second vCPU under icount, so the
// guest has one.
var icount = flag.Bool("icount", false, "run the guest under -icount shift=0 (1 ns of guest time per instruction), single-threaded TCG, 1 vCPU")

// icountCmdline tells the guest it runs under icount (insane-bench reads
// it from /proc/cmdline); the kernel passes it on to init's environment.
const icountCmdline = "insane_icount=1"

// applyIcount fixes the accelerator, the vCPU count and the kernel command
// line for an icount run.
func applyIcount(cfg *config) {
	if !*icount {
		return
	}
	cfg.accel = "tcg,thread=single"
	cfg.smp = 1
	if cfg.append != "" {
		cfg.append += " "
	}
	cfg.append += icountCmdline
}

// icountArgs are QEMU's extra arguments for an icount run.
func icountArgs() []string {
	if !*icount {
		return nil
	}
	return []string{"-icount", "shift=0,sleep=off,align=off"}
}
