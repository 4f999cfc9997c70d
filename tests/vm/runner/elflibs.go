package main

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// libDirs are searched, in order, for a DT_NEEDED library that has no path.
// They are the directories Debian's x86-64 dynamic loader searches when it has
// no cache, so the guest finds each library where the host had it.
var libDirs = []string{
	"/lib/x86_64-linux-gnu",
	"/usr/lib/x86_64-linux-gnu",
	"/lib64",
	"/usr/lib64",
	"/lib",
	"/usr/lib",
}

// sharedLibs returns the host paths of everything the dynamically linked
// ELF executable at exe needs to run: its interpreter and the transitive
// closure of its DT_NEEDED libraries, each found in dirs. A static
// executable needs nothing.
func sharedLibs(exe string, dirs []string) ([]string, error) {
	var out []string
	seen := make(map[string]bool)
	var visit func(file string, top bool) error
	visit = func(file string, top bool) error {
		f, err := elf.Open(file)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		defer f.Close()
		if top {
			for _, p := range f.Progs {
				if p.Type != elf.PT_INTERP {
					continue
				}
				buf := make([]byte, p.Filesz)
				if _, err := p.ReadAt(buf, 0); err != nil {
					return fmt.Errorf("%s: reading PT_INTERP: %w", file, err)
				}
				interp := strings.TrimRight(string(buf), "\x00")
				if !seen[interp] {
					seen[interp] = true
					out = append(out, interp)
				}
			}
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		for _, lib := range needed {
			p, err := findLib(lib, dirs)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
			if err := visit(p, false); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(exe, true); err != nil {
		return nil, err
	}
	return out, nil
}

func findLib(name string, dirs []string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", err
		}
		return name, nil
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("library %s not found in %s", name, strings.Join(dirs, ":"))
}
