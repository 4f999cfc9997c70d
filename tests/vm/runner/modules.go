package main

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// moduleDeps is modules.dep: each module's path (relative to
// /lib/modules/KVER) mapped to the paths of the modules it depends on.
type moduleDeps struct {
	deps   map[string][]string
	byName map[string]string // module name ("sch_netem") to path
}

// modName is the module name of a module path: the base name without .ko or
// a compression suffix, with dashes read as underscores as modprobe does.
func modName(p string) string {
	base := path.Base(p)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

func parseModulesDep(r io.Reader) (*moduleDeps, error) {
	md := &moduleDeps{deps: make(map[string][]string), byName: make(map[string]string)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		mod, rest, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("modules.dep:%d: no colon", line)
		}
		md.deps[mod] = strings.Fields(rest)
		md.byName[modName(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return md, nil
}

// closure returns the paths of the named modules and of everything they
// depend on, each once, dependencies first. A name that is not a module is
// an error, unless builtin reports it as built into the kernel.
func (md *moduleDeps) closure(names []string, builtin func(string) bool) ([]string, error) {
	var out []string
	seen := make(map[string]bool)
	var visit func(p string)
	visit = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		for _, d := range md.deps[p] {
			visit(d)
		}
		out = append(out, p)
	}
	for _, n := range names {
		n = strings.ReplaceAll(n, "-", "_")
		p, ok := md.byName[n]
		if !ok {
			if builtin != nil && builtin(n) {
				continue
			}
			return nil, fmt.Errorf("module %s is neither in modules.dep nor built in", n)
		}
		visit(p)
	}
	return out, nil
}

// parseBuiltin reads modules.builtin into a set of module names.
func parseBuiltin(r io.Reader) (map[string]bool, error) {
	set := make(map[string]bool)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			set[modName(t)] = true
		}
	}
	return set, sc.Err()
}
