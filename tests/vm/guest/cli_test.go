//go:build vmtest

package guest

// The insane CLI (/usr/bin/insane) against the real module: every command,
// text and JSON output read back, the monitor, and the errors a user sees.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
)

// clOK runs the CLI and fails the test unless it exits 0 with nothing on
// stderr. It returns stdout.
func clOK(t *testing.T, ns string, args ...string) string {
	t.Helper()
	code, out, errOut := clCLI(t, ns, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("insane %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	return out
}

// clFails runs the CLI and checks the exit status and that stderr is one
// line containing every one of want.
func clFails(t *testing.T, cred *syscall.Credential, ns string, code int, args []string, want ...string) {
	t.Helper()
	got, out, errOut := clCLIAs(t, cred, ns, args...)
	if got != code || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") {
		t.Errorf("insane %s: exit %d (want %d), stdout %q, stderr %q", strings.Join(args, " "), got, code, out, errOut)
		return
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Errorf("insane %s: stderr %q lacks %q", strings.Join(args, " "), errOut, w)
		}
	}
}

func TestCLILink(t *testing.T) {
	CheckKmsg(t)
	tp := NewTopo(t)
	b := tp.Borea
	nsArg := []string{"-n", b}

	if out := clOK(t, "", append(nsArg, "link", "add", "ins0", "slave", "veth0", "mode", "percent", "12.5", "seed", "42")...); out != "" {
		t.Errorf("link add printed %q", out)
	}
	idx, lidx := clIfindex(t, b, "ins0"), clIfindex(t, b, "veth0")
	line := fmt.Sprintf("%d: ins0: lower veth0 mode percent 12.5 seed 42\n", idx)
	if out := clOK(t, "", append(nsArg, "link", "show")...); out != line {
		t.Errorf("link show = %q, want %q", out, line)
	}
	// The same through ip netns exec, with the short form.
	if out := clOK(t, b, "show", "ins0"); out != line {
		t.Errorf("show ins0 = %q, want %q", out, line)
	}
	js := clParseJSON(t, clOK(t, b, "-j", "link", "show"))
	if len(js) != 1 || js[0].Ifindex != idx || js[0].Ifname != "ins0" || js[0].Link != "veth0" || js[0].LinkIndex != lidx ||
		js[0].Policy.Mode != "percent" || js[0].Policy.Percent == nil || *js[0].Policy.Percent != 12.5 ||
		js[0].Policy.Seed == nil || *js[0].Policy.Seed != 42 || js[0].Stats != nil {
		t.Errorf("-j link show = %+v", js)
	}
	pretty := clOK(t, b, "-j", "-p", "show", "ins0")
	if strings.Count(pretty, "\n") < 5 || len(clParseJSON(t, pretty)) != 1 {
		t.Errorf("-j -p output is not pretty JSON:\n%s", pretty)
	}

	// set: a seed alone keeps the percentage; then time, detach, attach.
	clOK(t, b, "link", "set", "ins0", "seed", "7")
	if out := clOK(t, b, "show", "ins0"); out != fmt.Sprintf("%d: ins0: lower veth0 mode percent 12.5 seed 7\n", idx) {
		t.Errorf("after set seed: %q", out)
	}
	clOK(t, b, "link", "set", "ins0", "mode", "time", "50", "100")
	if out := clOK(t, b, "show", "ins0"); out != fmt.Sprintf("%d: ins0: lower veth0 mode time 500ms 1s\n", idx) {
		t.Errorf("after mode time 50 100: %q", out)
	}
	if js := clParseJSON(t, clOK(t, b, "-j", "show", "ins0")); *js[0].Policy.OnNs != 500e6 || *js[0].Policy.OffNs != 1e9 {
		t.Errorf("-j after mode time: %+v", js[0].Policy)
	}
	clOK(t, b, "link", "set", "ins0", "mode", "time", "250us", "1.5s")
	if out := clOK(t, b, "show", "ins0"); !strings.HasSuffix(out, "mode time 250us 1500ms\n") {
		t.Errorf("after mode time 250us 1.5s: %q", out)
	}
	// lower and nolower, and their aliases slave and noslave; the output
	// says lower.
	clOK(t, b, "link", "set", "ins0", "nolower")
	if out := clOK(t, b, "show", "ins0"); out != fmt.Sprintf("%d: ins0: nolower mode time 250us 1500ms\n", idx) {
		t.Errorf("after nolower: %q", out)
	}
	clOK(t, b, "link", "set", "ins0", "lower", "veth0")
	clOK(t, b, "link", "set", "ins0", "noslave")
	if out := clOK(t, b, "show", "ins0"); out != fmt.Sprintf("%d: ins0: nolower mode time 250us 1500ms\n", idx) {
		t.Errorf("after lower veth0, noslave: %q", out)
	}
	clOK(t, b, "link", "set", "ins0", "slave", "veth0", "mode", "pass")
	if out := clOK(t, b, "show", "ins0"); out != fmt.Sprintf("%d: ins0: lower veth0 mode pass\n", idx) {
		t.Errorf("after slave veth0 mode pass: %q", out)
	}

	// Counters: everything dropped at percent 0, then reset.
	tp.RouteViaInsane(t, "ins0")
	clOK(t, b, "link", "set", "ins0", "mode", "percent", "0")
	tp.UDP(t, vmnet.SendOptions{Count: 20})
	stats := clOK(t, b, "-s", "show", "ins0")
	if !strings.Contains(stats, "    relayed: packets 0 bytes 0\n    dropped: total 20 policy 20 no-lower 0 no-route 0 lower-refused 0 not-ip 0 loop 0 malformed 0") {
		t.Errorf("-s show after 20 dropped:\n%s", stats)
	}
	if js := clParseJSON(t, clOK(t, b, "-s", "-j", "show", "ins0")); js[0].Stats == nil || js[0].Stats.DropPolicy != 20 || js[0].Stats.Dropped != 20 {
		t.Errorf("-s -j show after 20 dropped: %+v", js[0].Stats)
	}
	clOK(t, b, "link", "set", "ins0", "reset-stats")
	if js := clParseJSON(t, clOK(t, b, "-s", "-j", "show", "ins0")); js[0].Stats == nil || js[0].Stats.Dropped != 0 {
		t.Errorf("after reset-stats: %+v", js[0].Stats)
	}

	// A detached device next to it; delete both.
	clOK(t, b, "link", "add", "ins1")
	out := clOK(t, b, "link", "show")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[1], ": ins1: nolower mode pass") {
		t.Errorf("two devices:\n%s", out)
	}
	clOK(t, b, "link", "del", "ins1")
	clOK(t, b, "link", "delete", "ins0")
	if out := clOK(t, b, "link", "show"); out != "" {
		t.Errorf("show after deleting everything: %q", out)
	}
	if out := clOK(t, b, "-j", "show"); out != "[]\n" {
		t.Errorf("-j show after deleting everything: %q", out)
	}
	clFails(t, nil, b, 1, []string{"show", "ins0"}, "ins0", "no device has this name")
}

func TestCLIErrors(t *testing.T) {
	CheckKmsg(t)
	tp := NewTopo(t)
	b := tp.Borea
	clOK(t, b, "link", "add", "ins0", "slave", "veth0")

	// Usage errors: one line with a hint, exit 2, nothing sent.
	for _, args := range [][]string{
		{"link", "add"},
		{"link", "add", "ins9", "mode", "percent", "101"},
		{"link", "add", "ins9", "mode", "time", "1.5", "1"},
		{"link", "frobnicate"},
		{"link", "set", "ins0", "bogus"},
		{"-x", "show"},
	} {
		clFails(t, nil, b, 2, args, "try 'insane help'")
	}
	if _, err := TryGetLink(b, "ins9"); err == nil {
		t.Error("a usage error created ins9")
	}
	for _, args := range [][]string{{"help"}, {"link", "help"}} {
		if out := clOK(t, "", args...); !strings.Contains(out, "insane link set NAME [ lower DEV | nolower ] [ [ tx ] POLICY ] [ rx { POLICY | off } ]") {
			t.Errorf("insane %s:\n%s", strings.Join(args, " "), out)
		}
	}

	// The kernel's refusals, in its words.
	clFails(t, nil, b, 1, []string{"link", "add", "ins9", "slave", "lo"}, "loopback device cannot be a lower device")
	clFails(t, nil, b, 1, []string{"link", "set", "ins0", "slave", "ins0"}, "cannot be its own lower device")
	clFails(t, nil, b, 1, []string{"link", "set", "ins0", "slave", "nosuch1"}, "no device has this name")
	clFails(t, nil, b, 1, []string{"link", "set", "nosuch0", "reset-stats"}, "nosuch0", "no device has this name")
	clFails(t, nil, b, 1, []string{"link", "set", "veth0", "reset-stats"}, "not an insane device")
	clFails(t, nil, b, 1, []string{"link", "del", "veth0"}, "not an insane device")
	clFails(t, nil, b, 1, []string{"link", "add", "ins0"}, "file exists")
	clFails(t, nil, "", 1, []string{"-n", "nosuchns", "show"}, "/var/run/netns/nosuchns")

	// Without CAP_NET_ADMIN: reading works, changing is refused.
	c := clDial(t, "")
	if err := c.AddLink("clperm0", "", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DeleteLink("clperm0") })
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	code, out, errOut := clCLIAs(t, nobody, "", "show", "clperm0")
	if code != 0 || !regexp.MustCompile(`^\d+: clperm0: nolower mode pass\n$`).MatchString(out) {
		t.Errorf("show as nobody: exit %d, %q, %q", code, out, errOut)
	}
	for _, args := range [][]string{
		{"link", "set", "clperm0", "reset-stats"},
		{"link", "set", "clperm0", "mode", "percent", "5"},
		{"link", "add", "clperm1"},
		{"link", "del", "clperm0"},
	} {
		clFails(t, nobody, "", 1, args, "operation not permitted", "CAP_NET_ADMIN")
	}
	clFails(t, nobody, "", 1, []string{"-n", b, "show"}, "operation not permitted")
	if _, err := c.Device("clperm0"); err != nil {
		t.Errorf("clperm0 after the refused commands: %v", err)
	}
}

// clMonitor runs insane monitor in the background and delivers its lines.
type clMonitor struct {
	cmd   *exec.Cmd
	lines chan string
}

func clStartMonitor(t *testing.T, args ...string) *clMonitor {
	t.Helper()
	cmd := exec.Command(clCLIBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &clMonitor{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		defer close(m.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			m.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if stderr.Len() > 0 {
			t.Logf("monitor stderr: %s", stderr.String())
		}
	})
	return m
}

// ready pokes the device with reset-stats until the monitor shows it has
// subscribed, since it gives no other sign.
func (m *clMonitor) ready(t *testing.T, ns, dev string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		clOK(t, ns, "link", "set", dev, "reset-stats")
		select {
		case l := <-m.lines:
			if !strings.Contains(l, "reset-stats") {
				t.Fatalf("first monitor line: %q", l)
			}
			return
		case <-time.After(300 * time.Millisecond):
		}
	}
	t.Fatal("the monitor printed nothing within 15 s")
}

// next returns the next line that is not a leftover of ready.
func (m *clMonitor) next(t *testing.T) string {
	t.Helper()
	for {
		select {
		case l, ok := <-m.lines:
			if !ok {
				t.Fatal("the monitor ended")
			}
			if strings.Contains(l, "reset-stats") {
				continue
			}
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no monitor line within 10 s")
		}
	}
}

// interrupt sends SIGINT and checks that the monitor exits 0.
func (m *clMonitor) interrupt(t *testing.T) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("monitor after SIGINT: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("monitor still running 5 s after SIGINT")
	}
}

func TestCLIMonitor(t *testing.T) {
	CheckKmsg(t)
	tp := NewTopo(t)
	b := tp.Borea
	clOK(t, b, "link", "add", "ins0", "slave", "veth0")
	idx := clIfindex(t, b, "ins0")

	m := clStartMonitor(t, "-n", b, "monitor")
	m.ready(t, b, "ins0")
	ts := `\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(?:Z|[+-]\d\d:\d\d))\]`
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"mode", "percent", "50", "seed", "3"}, fmt.Sprintf(`policy %d: ins0: lower veth0 mode percent 50 seed 3`, idx)},
		{[]string{"noslave"}, fmt.Sprintf(`detach %d: ins0: nolower mode percent 50 seed 3`, idx)},
		{[]string{"slave", "veth0"}, fmt.Sprintf(`attach %d: ins0: lower veth0 mode percent 50 seed 3`, idx)},
		{[]string{"mode", "time", "1s", "2s"}, fmt.Sprintf(`policy %d: ins0: lower veth0 mode time 1s 2s`, idx)},
	}
	for _, s := range steps {
		clOK(t, b, append([]string{"link", "set", "ins0"}, s.args...)...)
		l := m.next(t)
		re := regexp.MustCompile("^" + ts + " " + regexp.QuoteMeta(s.want) + "$")
		sm := re.FindStringSubmatch(l)
		if sm == nil {
			t.Errorf("after set %s: monitor printed %q, want %q", strings.Join(s.args, " "), l, s.want)
			continue
		}
		at, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", sm[1])
		if err != nil || time.Since(at) > time.Minute || time.Since(at) < -time.Minute {
			t.Errorf("timestamp %q: %v", sm[1], err)
		}
	}
	// Events of another namespace do not show.
	clOK(t, "", "link", "add", "clmon0")
	clOK(t, "", "link", "set", "clmon0", "mode", "pass")
	clOK(t, "", "link", "del", "clmon0")
	clOK(t, b, "link", "set", "ins0", "mode", "pass")
	if l := m.next(t); !strings.HasSuffix(l, fmt.Sprintf("policy %d: ins0: lower veth0 mode pass", idx)) {
		t.Errorf("monitor printed %q: an event from another namespace?", l)
	}
	m.interrupt(t)

	// JSON, one object per event, with the counters under -s.
	mj := clStartMonitor(t, "-n", b, "-s", "-j", "monitor")
	mj.ready(t, b, "ins0")
	clOK(t, b, "link", "set", "ins0", "mode", "percent", "25")
	var ev struct {
		Timestamp string `json:"timestamp"`
		Event     string `json:"event"`
		clJSON
	}
	l := mj.next(t)
	if err := json.Unmarshal([]byte(l), &ev); err != nil {
		t.Fatalf("monitor -j line %q: %v", l, err)
	}
	if ev.Event != "policy" || ev.Ifname != "ins0" || ev.Ifindex != idx || ev.Policy.Mode != "percent" ||
		ev.Policy.Percent == nil || *ev.Policy.Percent != 25 || ev.Stats == nil || ev.Timestamp == "" {
		t.Errorf("monitor -j event: %s", l)
	}
	mj.interrupt(t)

	// What the CLI printed agrees with the client.
	d := clDevice(t, clDial(t, b), "ins0")
	if d.Policy.Mode != genl.ModePercent || d.Policy.PercentUnits() != 25000000 {
		t.Errorf("policy after the monitor test: %+v", d.Policy)
	}
}
