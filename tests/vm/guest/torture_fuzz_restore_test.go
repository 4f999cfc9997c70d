//go:build vmtest

package guest

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTortureFuzzRestore: the fuzzer's fixture restore undoes what the
// fuzzer may do to the loopback device. Run k24vm6 of TestTortureFuzz lost
// lo: the fuzzer had taken it down, named it fzi0 and brought it up again,
// and the restore's rename (with IFF_UP, in one request) was refused with
// EBUSY, unseen. Not a torture test: it runs in make test, in seconds.
func TestTortureFuzzRestore(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	NewNetns(t, ttFuzzNS)
	NewNetns(t, ttFuzzPeer)
	rt, err := ttNlOpen(ttFuzzNS, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	f := &ttFuzzer{rt: rt, stats: map[string]int{}, errnos: map[unix.Errno]int{}}
	f.restore(t)
	for _, c := range []struct{ what, script string }{
		{"lo named fzi0 and up (run k24vm6)", "link del fzi0\nlink set lo down\nlink set lo name fzi0\nlink set fzi0 up\n"},
		{"lo named fzn1 and down", "link set lo down\nlink set lo name fzn1\n"},
		{"lo named fzn2 and up, and a device of the fuzzer's named lo", "link set lo down\nlink set lo name fzn2\nlink set fzn2 up\nlink add lo type insane\n"},
	} {
		Sh(t, fmt.Sprintf("ip -n %s -batch - <<'EOF'\n%sEOF", ttFuzzNS, c.script))
		f.restore(t)
		out := RunIn(t, ttFuzzNS, "ip", "-o", "link", "show")
		var lo string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.HasPrefix(l, "1: ") {
				lo = l
			}
		}
		if !strings.HasPrefix(lo, "1: lo: <") || !strings.Contains(lo, ",UP") {
			t.Errorf("%s: after the restore, index 1 is %q, want lo and up", c.what, lo)
		}
		for _, name := range ttFixture {
			if n := strings.Count(out, ": "+name+": ") + strings.Count(out, ": "+name+"@"); n != 1 {
				t.Errorf("%s: after the restore, %d devices named %s:\n%s", c.what, n, name, out)
			}
		}
	}
	t.Logf("restores: %v", f.stats)
}
