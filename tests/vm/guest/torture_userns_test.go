//go:build vmtest

package guest

// Permissions in user namespaces. SET_DEVICE is GENL_UNS_ADMIN_PERM: it
// needs CAP_NET_ADMIN in the user namespace that owns the network
// namespace of the socket. So root of a user namespace created by an
// unprivileged user manages insane devices in a network namespace it
// created, and cannot change those of the initial network namespace (owned
// by the initial user namespace), though it can read them. (A process
// without CAP_NET_ADMIN in the initial namespace: TestClientPermission.)
//
// The test binary re-executes itself as TestTortureUserNSHelper, which drops
// to uid 65534 and from there starts two shells as root of a new user
// namespace: one stays in the initial network namespace, one gets its own.
// Each runs the insane CLI and ip and reports every exit status.

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const ttUserNSEnv = "INSANE_TT_USERNS_DEV"

// ttUserNSScript reports "TTR name status output" for each command.
const ttUserNSScript = `r() { local name=$1; shift; local out; out=$("$@" 2>&1); local rc=$?; echo "TTR $name $rc $(echo $out | tr '\n' ' ')"; }
`

// ttUserNSInitScript runs in a new user namespace, in the initial network
// namespace.
const ttUserNSInitScript = ttUserNSScript + `r uid id -u
r capeff awk '/^CapEff/ {print $2}' /proc/self/status
r get insane link show DEV
r dump insane link show
r set insane link set DEV mode percent 10
r reset insane link set DEV reset-stats
r detach insane link set DEV noslave
r add insane link add ttuserns0
r del insane link del DEV
r ipdel ip link del DEV
`

// ttUserNSOwnScript runs in a new user namespace and a new network
// namespace.
const ttUserNSOwnScript = ttUserNSScript + `r uid id -u
r lo ip link set lo up
r dummy ip link add ud0 type dummy
r dummyup ip link set ud0 up
r add insane link add uins0 slave ud0 mode percent 50 seed 7
r set insane link set uins0 mode time 1s 2s
r show insane link show uins0
r dump insane link show
r initdev insane link show DEV
r veth ip link add uv0 type veth peer name uv1
r attach insane link set uins0 slave uv0
r reset insane link set uins0 reset-stats
r setlink ip link set uins0 mtu 1400
r del insane link del uins0
r after insane link show
`

// TestTortureUserNSHelper is not a test on its own: TestTortureUserNS runs
// it in a new process.
func TestTortureUserNSHelper(t *testing.T) {
	dev := os.Getenv(ttUserNSEnv)
	if dev == "" {
		t.Skip("helper for TestTortureUserNS")
	}
	BecomeNobody(t)
	// Changing uid made the process non-dumpable, which gives root its
	// /proc files, and its children's until they exec: then it could not
	// write their uid_map.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		prefix, script string
		flags          uintptr
	}{
		{"init", ttUserNSInitScript, unix.CLONE_NEWUSER},
		{"own", ttUserNSOwnScript, unix.CLONE_NEWUSER | unix.CLONE_NEWNET},
	} {
		cmd := exec.Command("bash", "-c", strings.ReplaceAll(c.script, "DEV", dev))
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  c.flags,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			fmt.Printf("TTR %s/start 1 %v %s\n", c.prefix, err, out)
			continue
		}
		for _, l := range strings.Split(string(out), "\n") {
			if rest, ok := strings.CutPrefix(l, "TTR "); ok {
				fmt.Printf("TTR %s/%s\n", c.prefix, rest)
			}
		}
	}
}

func TestTortureUserNS(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	Run(t, "modprobe", "dummy")
	Run(t, "modprobe", "veth")
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" {
		Run(t, "sysctl", "-qw", "kernel.unprivileged_userns_clone=1")
		t.Cleanup(func() { TryRun("sysctl", "-qw", "kernel.unprivileged_userns_clone=0") })
	}
	const dev = "ttperm0"
	Run(t, "ip", "link", "add", "ttpd0", "type", "dummy")
	t.Cleanup(func() { TryRun("ip", "link", "del", "ttpd0") })
	Run(t, "ip", "link", "add", "link", "ttpd0", "name", dev, "type", "insane")
	t.Cleanup(func() { TryRun("ip", "link", "del", dev) })
	c := kDial(t, "")
	before := kDevice(t, c, dev)

	cmd := exec.Command(os.Args[0], "-test.run=^TestTortureUserNSHelper$", "-test.v")
	cmd.Env = append(os.Environ(), ttUserNSEnv+"="+dev)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	type result struct {
		rc  string
		out string
	}
	res := map[string]result{}
	for _, l := range strings.Split(string(out), "\n") {
		rest, ok := strings.CutPrefix(l, "TTR ")
		if !ok {
			continue
		}
		f := strings.SplitN(rest, " ", 3)
		for len(f) < 3 {
			f = append(f, "")
		}
		res[f[0]] = result{f[1], f[2]}
		t.Logf("%-12s exit %s: %s", f[0], f[1], f[2])
	}
	denied := func(s string) bool {
		s = strings.ToLower(s)
		return strings.Contains(s, "not permitted") || strings.Contains(s, "permission")
	}
	expect := func(name string, ok bool, denial bool, contains string) {
		t.Helper()
		r, found := res[name]
		switch {
		case !found:
			t.Errorf("%s: no result", name)
		case ok && r.rc != "0":
			t.Errorf("%s: exit %s, want success: %s", name, r.rc, r.out)
		case !ok && r.rc == "0":
			t.Errorf("%s: succeeded, want a refusal: %s", name, r.out)
		case denial && !denied(r.out):
			t.Errorf("%s: %s, want a permission error", name, r.out)
		case contains != "" && !strings.Contains(r.out, contains):
			t.Errorf("%s: %q does not contain %q", name, r.out, contains)
		}
	}
	// Root of a new user namespace, in the initial network namespace:
	// full capabilities, but in its own user namespace only.
	expect("init/uid", true, false, "0")
	expect("init/capeff", true, false, "")
	if r := res["init/capeff"]; r.out == "0000000000000000" {
		t.Errorf("no effective capabilities in the new user namespace")
	}
	expect("init/get", true, false, dev)
	expect("init/dump", true, false, dev)
	for _, name := range []string{"init/set", "init/reset", "init/detach", "init/add", "init/del", "init/ipdel"} {
		expect(name, false, true, "")
	}
	after := kDevice(t, c, dev)
	if !after.Policy.Equal(before.Policy) || after.LowerName != "ttpd0" {
		t.Errorf("%s changed: %+v, was %+v", dev, after, before)
	}

	// Root of a new user namespace in a network namespace it owns.
	for _, name := range []string{"own/uid", "own/lo", "own/dummy", "own/dummyup", "own/add", "own/set", "own/show", "own/veth", "own/attach", "own/reset", "own/setlink", "own/del"} {
		expect(name, true, false, "")
	}
	expect("own/show", true, false, "uins0")
	expect("own/dump", true, false, "uins0")
	if strings.Contains(res["own/dump"].out, dev) {
		t.Errorf("the new network namespace lists %s of the initial one: %s", dev, res["own/dump"].out)
	}
	expect("own/initdev", false, false, "")
	if r := res["own/after"]; r.rc != "0" || strings.Contains(r.out, "uins0") {
		t.Errorf("after deleting uins0: exit %s: %s", r.rc, r.out)
	}
}
