package main

import (
	"strings"
	"testing"
)

func TestIcount(t *testing.T) {
	defer func(v bool) { *icount = v }(*icount)

	*icount = false
	cfg := &config{accel: "tcg,thread=multi", smp: 2, append: "x=1", kernel: "k", mem: "1G"}
	applyIcount(cfg)
	if cfg.accel != "tcg,thread=multi" || cfg.smp != 2 || cfg.append != "x=1" {
		t.Errorf("without -icount the config changed: %+v", cfg)
	}
	if a := strings.Join(qemuArgs(cfg, "i", "c", "r", "t"), " "); strings.Contains(a, "-icount") {
		t.Errorf("without -icount QEMU gets %q", a)
	}

	*icount = true
	applyIcount(cfg)
	if cfg.accel != "tcg,thread=single" || cfg.smp != 1 || cfg.append != "x=1 "+icountCmdline {
		t.Errorf("with -icount: accel %q, smp %d, append %q", cfg.accel, cfg.smp, cfg.append)
	}
	a := strings.Join(qemuArgs(cfg, "i", "c", "r", "t"), " ")
	for _, want := range []string{"-accel tcg,thread=single", "-smp 1", "-icount shift=0,sleep=off,align=off", icountCmdline} {
		if !strings.Contains(a, want) {
			t.Errorf("QEMU arguments %q lack %q", a, want)
		}
	}
}
