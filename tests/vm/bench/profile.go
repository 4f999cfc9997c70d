package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/insane-netdev/insane/go/genl"
)

// Profiles (make profile): perf record -e cpu-clock -g, system-wide, while
// one case carries one source's traffic. Under icount the cpu-clock timer
// runs on guest time, one nanosecond per instruction, so the samples are
// proportional to instructions. The guest prints perf report's top
// symbols (self, no children) and the folded stacks between PROFILE-
// lines; on the host, insane-bench -profiles writes them to files and
// draws a flame graph of each.

const (
	profBegin  = "PROFILE-BEGIN "
	profReport = "PROFILE-REPORT "
	profFolded = "PROFILE-FOLDED "
	profEnd    = "PROFILE-END"
)

func profiles(c *genl.Client, cs []dropper, o *options) error {
	if _, err := exec.LookPath("perf"); err != nil {
		return fmt.Errorf("profile: no perf in the guest (install linux-perf on the host: make profile does)")
	}
	// Kernel and module symbols come from /proc/kallsyms.
	if err := sysctl("kernel.kptr_restrict", "0"); err != nil {
		return err
	}
	if err := sysctl("kernel.perf_event_paranoid", "-1"); err != nil {
		return err
	}
	// The cases of the tables, and the delay phase's cost cases (p: insane
	// pass delay 1ms, q: netem delay 1ms).
	byKey := map[string]dropper{}
	for _, d := range append(cs, delayCostCases()...) {
		if _, dup := byKey[d.key]; !dup {
			byKey[d.key] = d
		}
	}
	for _, key := range strings.Split(o.profile, ",") {
		d, ok := byKey[key]
		if !ok {
			return fmt.Errorf("profile: no case %q", key)
		}
		for _, src := range strings.Split(o.profileSrc, ",") {
			if src != srcPktgen && src != srcUDP {
				return fmt.Errorf("profile: unknown source %q", src)
			}
			if err := profileOne(c, d, src, o.profileDur, o.profilePer); err != nil {
				return fmt.Errorf("profile (%s) %s: %w", d.key, src, err)
			}
		}
	}
	return nil
}

func profileOne(c *genl.Client, d dropper, src string, dur time.Duration, period int) error {
	data := fmt.Sprintf("/tmp/perf-%s-%s.data", d.key, src)
	if err := d.setup(c); err != nil {
		return err
	}
	err := func() error {
		var stop atomic.Bool
		done := make(chan error, 1)
		if src == srcPktgen {
			if err := (pktgen{}).configure(1, 0); err != nil {
				return err
			}
			// Writing start returns when the thread stops.
			go func() { done <- pgWrite("pgctrl", "start") }()
		} else {
			go func() {
				_, _, _, err := udpSendUntil(time.Hour, &stop)
				done <- err
			}()
		}
		time.Sleep(200 * time.Millisecond)
		args := []string{"record", "-N", "-q", "-a", "-g", "-e", "cpu-clock"}
		if period > 0 {
			args = append(args, "-c", strconv.Itoa(period))
		}
		args = append(args, "-o", data, "--", "sleep", fmt.Sprintf("%.3f", dur.Seconds()))
		out, rerr := exec.Command("perf", args...).CombinedOutput()
		stop.Store(true)
		if src == srcPktgen {
			if err := pgWrite("pgctrl", "stop"); err != nil && rerr == nil {
				rerr = err
			}
		}
		if err := <-done; err != nil && rerr == nil {
			rerr = err
		}
		if rerr != nil {
			return fmt.Errorf("perf record: %v: %s", rerr, strings.TrimSpace(string(out)))
		}
		return nil
	}()
	if terr := d.teardown(c); err == nil {
		err = terr
	}
	if err != nil {
		return err
	}
	rep, err := run("perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
		"--sort", "sym", "--percent-limit", "0.5")
	if err != nil {
		return err
	}
	cmd := exec.Command("perf", "script", "-i", data, "-F", "comm,ip,sym")
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	folded, ferr := foldStacks(pipe)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("perf script: %w", err)
	}
	if ferr != nil {
		return ferr
	}
	os.Remove(data)
	fmt.Printf("%s%s %s %s\n", profBegin, d.key, src, d.name)
	for _, l := range strings.Split(strings.TrimRight(rep, "\n"), "\n") {
		fmt.Printf("%s%s\n", profReport, l)
	}
	for _, f := range folded {
		fmt.Printf("%s%d %s\n", profFolded, f.count, f.stack)
	}
	fmt.Println(profEnd)
	fmt.Printf("profile: (%s) %s, %s source: %d samples\n", d.key, d.name, src, totalSamples(folded))
	return nil
}

// stackCount is one folded stack: frames from the outermost, joined by
// ";", with the command first, and the samples that had it.
type stackCount struct {
	stack string
	count int
}

func totalSamples(f []stackCount) int {
	n := 0
	for _, s := range f {
		n += s.count
	}
	return n
}

// foldStacks reads perf script -F comm,ip,sym output with call chains: a
// sample is a line with the command, then one indented line per frame,
// "ADDRESS SYMBOL", innermost first, then a blank line. It returns each
// distinct stack with its count, most frequent first.
func foldStacks(r io.Reader) ([]stackCount, error) {
	counts := map[string]int{}
	var comm string
	var frames []string
	flush := func() {
		if comm == "" && len(frames) == 0 {
			return
		}
		parts := []string{comm}
		for i := len(frames) - 1; i >= 0; i-- {
			parts = append(parts, frames[i])
		}
		counts[strings.Join(parts, ";")]++
		comm, frames = "", nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			flush()
			comm = strings.TrimSpace(line)
			if comm == "" {
				comm = "[unknown]"
			}
			continue
		}
		f := strings.Fields(line)
		sym := "[unknown]"
		if len(f) >= 2 {
			sym = strings.Join(f[1:], " ")
			// A trailing " (dso)" when perf adds one.
			if i := strings.LastIndex(sym, " ("); i > 0 && strings.HasSuffix(sym, ")") {
				sym = sym[:i]
			}
		}
		frames = append(frames, strings.ReplaceAll(sym, ";", ":"))
	}
	flush()
	out := make([]stackCount, 0, len(counts))
	for s, n := range counts {
		out = append(out, stackCount{s, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].count != out[j].count {
			return out[i].count > out[j].count
		}
		return out[i].stack < out[j].stack
	})
	return out, sc.Err()
}

// profileRec is one profile read back from a guest log.
type profileRec struct {
	key, source, name string
	report            []string
	folded            []stackCount
}

// readProfiles reads every profile from a guest log.
func readProfiles(r io.Reader) ([]profileRec, error) {
	var out []profileRec
	var cur *profileRec
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, profBegin):
			f := strings.SplitN(strings.TrimPrefix(line, profBegin), " ", 3)
			if len(f) < 2 {
				return nil, fmt.Errorf("bad profile line %q", line)
			}
			cur = &profileRec{key: f[0], source: f[1]}
			if len(f) == 3 {
				cur.name = f[2]
			}
		case cur == nil:
		case strings.HasPrefix(line, profReport):
			cur.report = append(cur.report, strings.TrimPrefix(line, profReport))
		case strings.HasPrefix(line, profFolded):
			n, stack, ok := strings.Cut(strings.TrimPrefix(line, profFolded), " ")
			c, err := strconv.Atoi(n)
			if !ok || err != nil {
				return nil, fmt.Errorf("bad folded line %q", line)
			}
			cur.folded = append(cur.folded, stackCount{stack, c})
		case line == profEnd:
			out = append(out, *cur)
			cur = nil
		}
	}
	return out, sc.Err()
}

// writeProfiles writes, for each profile in the guest log, the top
// symbols (profile-KEY-SOURCE.txt), the folded stacks (.folded) and a
// flame graph (.svg) into dir.
func writeProfiles(logPath, dir string) error {
	f, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	ps, err := readProfiles(f)
	if err != nil {
		return fmt.Errorf("%s: %w", logPath, err)
	}
	if len(ps) == 0 {
		return fmt.Errorf("%s: no profile (did the guest finish?)", logPath)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range ps {
		base := filepath.Join(dir, fmt.Sprintf("profile-%s-%s", p.key, p.source))
		var folded strings.Builder
		for _, s := range p.folded {
			fmt.Fprintf(&folded, "%s %d\n", s.stack, s.count)
		}
		title := fmt.Sprintf("(%s) %s, %s source: perf cpu-clock under icount (samples proportional to instructions)", p.key, p.name, p.source)
		for _, w := range []struct{ ext, data string }{
			{".txt", strings.Join(p.report, "\n") + "\n"},
			{".folded", folded.String()},
			{".svg", flameSVG(title, p.folded)},
		} {
			if err := os.WriteFile(base+w.ext, []byte(w.data), 0o644); err != nil {
				return err
			}
		}
		fmt.Printf("insane-bench: wrote %s.{txt,folded,svg} (%d samples)\n", base, totalSamples(p.folded))
	}
	return nil
}
