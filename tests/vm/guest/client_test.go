//go:build vmtest

package guest

// The Go client (go/genl) against the real module: every method, the
// events, the rtnetlink driver, and the errors a user has to tell apart
// (no such device, module not loaded, refused values, no permission).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
	"golang.org/x/sys/unix"
)

// clDial connects a client in namespace ns ("" for the initial one).
func clDial(t *testing.T, ns string) *genl.Client {
	t.Helper()
	o := &genl.Options{}
	if ns != "" {
		o.NetNSPath = filepath.Join(vmnet.NetnsDir, ns)
	}
	c, err := genl.Dial(o)
	if err != nil {
		t.Fatalf("Dial(%+v): %v", o, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// clEvent waits for the next event and checks its type and device.
func clEvent(t *testing.T, s *genl.Subscription, typ genl.EventType, name string) genl.Event {
	t.Helper()
	select {
	case ev, ok := <-s.Events():
		if !ok {
			t.Fatalf("event stream ended before %s: %v", typ, s.Err())
		}
		if ev.Type != typ || ev.Device.Name != name {
			t.Fatalf("event %s on %s, want %s on %s", ev.Type, ev.Device.Name, typ, name)
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s event within 10 s", typ)
	}
	return genl.Event{}
}

// clNoEvent fails if an event arrives within d.
func clNoEvent(t *testing.T, s *genl.Subscription, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-s.Events():
		if ok {
			t.Fatalf("unexpected event %s on %s", ev.Type, ev.Device.Name)
		}
	case <-time.After(d):
	}
}

func clIfindex(t *testing.T, ns, dev string) int {
	t.Helper()
	return GetLink(t, ns, dev).Ifindex
}

func TestClientDevice(t *testing.T) {
	CheckKmsg(t)
	tp := NewTopo(t)
	c := clDial(t, tp.Borea)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}

	seed := uint64(1<<63 + 42)
	p := genl.Percent(12.345678, &seed)
	if err := c.AddLink("ins0", tp.BoreaDev, &p); err != nil {
		t.Fatal(err)
	}
	d, err := c.Device("ins0")
	if err != nil {
		t.Fatal(err)
	}
	want := &genl.Device{
		Name: "ins0", Index: clIfindex(t, tp.Borea, "ins0"),
		LowerName: tp.BoreaDev, LowerIndex: clIfindex(t, tp.Borea, tp.BoreaDev),
		Policy: p,
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Fatalf("Device (-want +got):\n%s", diff)
	}
	if byIndex, err := c.DeviceByIndex(d.Index); err != nil || cmp.Diff(d, byIndex) != "" {
		t.Fatalf("DeviceByIndex(%d) = %+v, %v", d.Index, byIndex, err)
	}
	// rtnetlink decodes the same policy through the registered driver,
	// and ip sees the link as kind insane on its lower.
	if lp, err := c.LinkPolicy("ins0"); err != nil || cmp.Diff(&p, lp) != "" {
		t.Fatalf("LinkPolicy = %+v, %v", lp, err)
	}
	if l := GetLink(t, tp.Borea, "ins0"); l.Linkinfo.InfoKind != "insane" || l.Link != tp.BoreaDev {
		t.Fatalf("ip sees kind %q on %q", l.Linkinfo.InfoKind, l.Link)
	}

	// A second, detached device; Devices lists both, in index order.
	if err := c.AddLink("ins1", "", nil); err != nil {
		t.Fatal(err)
	}
	ds, err := c.Devices()
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Name != "ins0" || ds[1].Name != "ins1" || ds[1].Attached() || ds[1].Policy.Mode != genl.ModePass {
		t.Fatalf("Devices = %+v", ds)
	}
	// The initial namespace has its own, empty, list.
	if ds, err := clDial(t, "").Devices(); err != nil || len(ds) != 0 {
		t.Fatalf("Devices in the initial namespace = %+v, %v", ds, err)
	}
	// Creating devices is not an event.
	clNoEvent(t, sub, 200*time.Millisecond)

	// Each change comes back as an event carrying the new state.
	tp2 := genl.Time(500*time.Millisecond, time.Second)
	if err := c.SetPolicy("ins0", tp2); err != nil {
		t.Fatal(err)
	}
	if ev := clEvent(t, sub, genl.EventPolicy, "ins0"); cmp.Diff(tp2, ev.Device.Policy) != "" {
		t.Fatalf("policy event carries %+v", ev.Device.Policy)
	}
	if err := c.ConfigureDevice("ins0", genl.Config{Detach: true}); err != nil {
		t.Fatal(err)
	}
	if ev := clEvent(t, sub, genl.EventDetach, "ins0"); ev.Device.Attached() {
		t.Fatalf("detach event shows a lower: %+v", ev.Device)
	}
	if d := clDevice(t, c, "ins0"); d.Attached() {
		t.Fatalf("still attached: %+v", d)
	}
	if err := c.ConfigureDevice("ins1", genl.Config{Lower: tp.BoreaDev}); err != nil {
		t.Fatal(err)
	}
	if ev := clEvent(t, sub, genl.EventAttach, "ins1"); ev.Device.LowerName != tp.BoreaDev {
		t.Fatalf("attach event: %+v", ev.Device)
	}
	if err := c.ConfigureDevice("ins1", genl.Config{ResetStats: true}); err != nil {
		t.Fatal(err)
	}
	clEvent(t, sub, genl.EventResetStats, "ins1")

	// One request, several changes: attach, policy and reset together.
	both := genl.Pass()
	if err := c.ConfigureDevice("ins0", genl.Config{Lower: tp.BoreaDev, Policy: &both, ResetStats: true}); err != nil {
		t.Fatal(err)
	}
	seen := map[genl.EventType]bool{}
	for i := 0; i < 3; i++ {
		select {
		case ev := <-sub.Events():
			seen[ev.Type] = true
			if ev.Device.Name != "ins0" {
				t.Errorf("event on %s", ev.Device.Name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %v after a combined change", seen)
		}
	}
	if !seen[genl.EventAttach] || !seen[genl.EventPolicy] || !seen[genl.EventResetStats] {
		t.Fatalf("events after attach+policy+reset: %v", seen)
	}
	if d := clDevice(t, c, "ins0"); d.LowerName != tp.BoreaDev || d.Policy.Mode != genl.ModePass {
		t.Fatalf("after the combined change: %+v", d)
	}

	// changelink over rtnetlink sets the policy too, and says so.
	rp := genl.Percent(50, nil)
	if err := c.SetLinkPolicy("ins1", rp); err != nil {
		t.Fatal(err)
	}
	if ev := clEvent(t, sub, genl.EventPolicy, "ins1"); cmp.Diff(rp, ev.Device.Policy) != "" {
		t.Fatalf("changelink event carries %+v", ev.Device.Policy)
	}

	if err := c.DeleteLink("ins0"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteLink("ins1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Device("ins0"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Device after DeleteLink: %v", err)
	}
	if ds, err := c.Devices(); err != nil || len(ds) != 0 {
		t.Fatalf("Devices after deleting all = %+v, %v", ds, err)
	}

	// Cancelling the context ends the stream cleanly.
	cancel()
	for range sub.Events() {
	}
	if err := sub.Err(); err != nil {
		t.Fatalf("Err after cancel: %v", err)
	}
}

// clDevice is Device that fails the test on error.
func clDevice(t *testing.T, c *genl.Client, name string) *genl.Device {
	t.Helper()
	d, err := c.Device(name)
	if err != nil {
		t.Fatalf("Device(%s): %v", name, err)
	}
	return d
}

func TestClientStats(t *testing.T) {
	CheckKmsg(t)
	tp := NewTopo(t)
	c := clDial(t, tp.Borea)
	seed := uint64(99)
	p := genl.Percent(60, &seed)
	if err := c.AddLink("ins0", tp.BoreaDev, &p); err != nil {
		t.Fatal(err)
	}
	tp.RouteViaInsane(t, "ins0")
	const n = 400
	sent, got := tp.UDP(t, vmnet.SendOptions{Count: n})
	if sent.Errors != 0 {
		t.Fatalf("%d sends refused: %v", sent.Errors, sent.FirstError)
	}
	// The client's prediction is the kernel's decision, packet by packet.
	var want []uint64
	for k := uint64(0); k < n; k++ {
		if r, ok := p.Relays(k); !ok {
			t.Fatal("a seeded percent policy is not predictable")
		} else if r {
			want = append(want, k)
		}
	}
	if cmp.Diff(want, got.Seqs) != "" {
		t.Errorf("arrived %d datagrams, Policy.Relays predicts %d", len(got.Seqs), len(want))
	}
	s := clDevice(t, c, "ins0").Stats
	if s.RelayedPackets != uint64(len(want)) || s.DropPolicy != uint64(n-len(want)) || s.Dropped() != s.DropPolicy || s.RelayedBytes == 0 {
		t.Errorf("stats %+v for %d sent, %d predicted relayed", s, n, len(want))
	}
	if err := c.ConfigureDevice("ins0", genl.Config{ResetStats: true}); err != nil {
		t.Fatal(err)
	}
	if s := clDevice(t, c, "ins0").Stats; s != (genl.Stats{}) {
		t.Errorf("stats after reset: %+v", s)
	}
}

func TestClientErrors(t *testing.T) {
	CheckKmsg(t)
	tp := NewTopo(t)
	c := clDial(t, tp.Borea)
	if err := c.AddLink("ins0", tp.BoreaDev, nil); err != nil {
		t.Fatal(err)
	}
	notExist := map[string]error{
		"Device(nosuch0)":           func() error { _, err := c.Device("nosuch0"); return err }(),
		"Device(veth0), not insane": func() error { _, err := c.Device(tp.BoreaDev); return err }(),
		"DeviceByIndex(999999)":     func() error { _, err := c.DeviceByIndex(999999); return err }(),
		"ConfigureDevice(nosuch0)":  c.ConfigureDevice("nosuch0", genl.Config{ResetStats: true}),
		"ConfigureDevice(veth0)":    c.ConfigureDevice(tp.BoreaDev, genl.Config{ResetStats: true}),
		"ConfigureDevice lower":     c.ConfigureDevice("ins0", genl.Config{Lower: "nosuch1"}),
		"DeleteLink(nosuch0)":       c.DeleteLink("nosuch0"),
		"DeleteLink(veth0)":         c.DeleteLink(tp.BoreaDev),
		"AddLink lower":             c.AddLink("ins1", "nosuch1", nil),
		"SetLinkPolicy(nosuch0)":    c.SetLinkPolicy("nosuch0", genl.Pass()),
	}
	for what, err := range notExist {
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want os.ErrNotExist", what, err)
		} else if errors.Is(err, genl.ErrNotLoaded) {
			t.Errorf("%s: %v claims the module is missing", what, err)
		}
	}
	// The veth survived the refused delete.
	GetLink(t, tp.Borea, tp.BoreaDev)
	// The kernel's reasons come through.
	var e *genl.Error
	if err := notExist["Device(nosuch0)"]; !errors.As(err, &e) || !strings.Contains(e.Message, "no device has this name") {
		t.Errorf("no extack for a missing device: %v", err)
	}
	if err := notExist["Device(veth0), not insane"]; !strings.Contains(fmt.Sprint(err), "not an insane device") {
		t.Errorf("no extack for a non-insane device: %v", err)
	}

	// Values the client lets through and the kernel refuses.
	refused := []struct {
		what  string
		err   error
		errno unix.Errno
		msg   string
	}{
		{"own lower", c.ConfigureDevice("ins0", genl.Config{Lower: "ins0"}), unix.EINVAL, "cannot be its own lower device"},
		{"loopback lower", c.ConfigureDevice("ins0", genl.Config{Lower: "lo"}), unix.EINVAL, "loopback device cannot be a lower device"},
		{"loopback lower on add", c.AddLink("ins2", "lo", nil), unix.EINVAL, "loopback device cannot be a lower device"},
		{"existing name", c.AddLink("ins0", "", nil), unix.EEXIST, ""},
	}
	for _, r := range refused {
		if !errors.Is(r.err, r.errno) || !errors.As(r.err, &e) || !strings.Contains(e.Message+" "+r.err.Error(), r.msg) {
			t.Errorf("%s: %v, want errno %v with %q", r.what, r.err, r.errno, r.msg)
		}
		if errors.Is(r.err, os.ErrNotExist) || errors.Is(r.err, genl.ErrNotLoaded) {
			t.Errorf("%s: %v wrongly matches os.ErrNotExist", r.what, r.err)
		}
	}
	if !errors.Is(refused[3].err, os.ErrExist) {
		t.Errorf("existing name: %v does not match os.ErrExist", refused[3].err)
	}
	// The client refuses what it knows to be wrong without asking.
	if err := c.ConfigureDevice("ins0", genl.Config{Policy: &genl.Policy{Mode: genl.ModePercent, Percent: 101}}); !errors.Is(err, genl.ErrInvalidPolicy) {
		t.Errorf("percent 101: %v", err)
	}
	// Nothing of that changed ins0.
	if d := clDevice(t, c, "ins0"); d.LowerName != tp.BoreaDev || d.Policy.Mode != genl.ModePass {
		t.Errorf("refused requests changed ins0: %+v", d)
	}
}

// clHelperEnv selects the unprivileged helper mode of the test binary.
const clHelperEnv = "INSANE_CL_HELPER"

// clUnprivileged runs this test binary's TestClientUnprivilegedHelper in a
// new process that gives up root (and so every capability) before it talks
// to the kernel, and returns what the helper reported.
func clUnprivileged(t *testing.T, dev string) map[string]string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestClientUnprivilegedHelper$", "-test.v")
	cmd.Env = append(os.Environ(), clHelperEnv+"="+dev)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unprivileged helper: %v\n%s", err, out)
	}
	res := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "CLRESULT "); ok {
			name, val, _ := strings.Cut(v, "=")
			res[name] = val
		}
	}
	return res
}

// TestClientUnprivilegedHelper is not a test on its own: it is the body of
// the unprivileged process that TestClientPermission starts. It starts as
// root, since the harness's TestMain needs root, then becomes nobody, which
// drops every capability of every thread.
func TestClientUnprivilegedHelper(t *testing.T) {
	dev := os.Getenv(clHelperEnv)
	if dev == "" {
		t.Skip("helper for TestClientPermission")
	}
	BecomeNobody(t)
	caps := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&caps, &data[0]); err != nil {
		t.Fatal(err)
	}
	report := func(name string, err error) {
		fmt.Printf("CLRESULT %s=%s\n", name, clClass(err))
	}
	fmt.Printf("CLRESULT uid=%d\nCLRESULT capeff=%#x\n", os.Getuid(), uint64(data[1].Effective)<<32|uint64(data[0].Effective))
	c, err := genl.Dial(nil)
	if err != nil {
		report("dial", err)
		return
	}
	defer c.Close()
	_, err = c.Device(dev)
	report("get", err)
	_, err = c.Devices()
	report("dump", err)
	report("set", c.ConfigureDevice(dev, genl.Config{ResetStats: true}))
	report("add", c.AddLink("clperm1", "", nil))
	report("del", c.DeleteLink(dev))
	report("changelink", c.SetLinkPolicy(dev, genl.Pass()))
}

// clClass names the kind of an error for the helper's report.
func clClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, os.ErrPermission):
		return "permission"
	case errors.Is(err, os.ErrNotExist):
		return "notexist"
	}
	return "other: " + err.Error()
}

func TestClientPermission(t *testing.T) {
	CheckKmsg(t)
	LoadModule(t)
	c := clDial(t, "")
	if err := c.AddLink("clperm0", "", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DeleteLink("clperm0") })
	got := clUnprivileged(t, "clperm0")
	want := map[string]string{
		"uid": "65534", "capeff": "0x0",
		"get": "ok", "dump": "ok",
		"set": "permission", "add": "permission", "del": "permission", "changelink": "permission",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unprivileged results (-want +got):\n%s", diff)
	}
	if _, err := c.Device("clperm0"); err != nil {
		t.Errorf("clperm0 after the unprivileged attempts: %v", err)
	}
}

// clModuleFile returns the path of insane.ko under /lib/modules.
func clModuleFile(t *testing.T) string {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	rel := strings.TrimRight(string(u.Release[:]), "\x00")
	p := filepath.Join("/lib/modules", rel, "extra", "insane.ko")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the module is not where autoload finds it: %v", err)
	}
	return p
}

// clWithoutModule unloads insane and hides its file so that the kernel
// cannot autoload it, until the test ends.
func clWithoutModule(t *testing.T) {
	t.Helper()
	ko := clModuleFile(t)
	UnloadModule(t)
	hidden := ko + ".hidden"
	if err := os.Rename(ko, hidden); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Rename(hidden, ko); err != nil {
			t.Errorf("restoring %s: %v", ko, err)
			return
		}
		if _, err := TryRun("modprobe", "insane"); err != nil {
			t.Errorf("reloading the module: %v", err)
		}
	})
}

func TestClientModuleNotLoaded(t *testing.T) {
	clWithoutModule(t)
	c := clDial(t, "")
	checks := map[string]error{
		"Devices":   func() error { _, err := c.Devices(); return err }(),
		"Device":    func() error { _, err := c.Device("ins0"); return err }(),
		"Configure": c.ConfigureDevice("ins0", genl.Config{ResetStats: true}),
		"AddLink":   c.AddLink("ins0", "", nil),
		"Subscribe": func() error { _, err := c.Subscribe(context.Background()); return err }(),
	}
	for what, err := range checks {
		var nl *genl.NotLoadedError
		if !errors.As(err, &nl) || !errors.Is(err, genl.ErrNotLoaded) || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s without the module: %v", what, err)
		}
	}
	if ModuleLoaded() {
		t.Fatal("the module got loaded although its file is hidden")
	}
	// The CLI says so and names the fix.
	code, out, errOut := clCLI(t, "", "link", "show")
	if code != 1 || out != "" || !strings.Contains(errOut, "not loaded") || !strings.Contains(errOut, "modprobe insane") {
		t.Errorf("insane link show without the module: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = clCLI(t, "", "link", "add", "ins0")
	if code != 1 || !strings.Contains(errOut, "modprobe insane") {
		t.Errorf("insane link add without the module: exit %d, stderr %q", code, errOut)
	}
}

func TestClientAutoload(t *testing.T) {
	// With the module on disk but not loaded, the first generic netlink
	// request loads it through its genl family alias.
	UnloadModule(t)
	c := clDial(t, "")
	if _, err := c.Devices(); err != nil {
		t.Fatalf("Devices with the module unloaded but loadable: %v", err)
	}
	if !ModuleLoaded() {
		t.Fatal("the module was not autoloaded")
	}
	// The same client survives an unload: its cached family ID is stale,
	// and the next request looks the family up again, loading the module.
	f1, err := c.Family()
	if err != nil {
		t.Fatal(err)
	}
	UnloadModule(t)
	if _, err := c.Device("nosuch0"); !errors.Is(err, os.ErrNotExist) || errors.Is(err, genl.ErrNotLoaded) {
		t.Fatalf("Device after a reload: %v, want a plain no such device", err)
	}
	f2, err := c.Family()
	if err != nil || !ModuleLoaded() {
		t.Fatalf("family after the reload: %v, loaded %v", err, ModuleLoaded())
	}
	t.Logf("family ID %d before the reload, %d after", f1.ID, f2.ID)
}

// clCLIBin is where the runner installs the CLI.
const clCLIBin = "/usr/bin/insane"

// clCLI runs the insane CLI in namespace ns ("" for the initial one) and
// returns its exit status and output.
func clCLI(t *testing.T, ns string, args ...string) (int, string, string) {
	t.Helper()
	return clCLIAs(t, nil, ns, args...)
}

func clCLIAs(t *testing.T, cred *syscall.Credential, ns string, args ...string) (int, string, string) {
	t.Helper()
	if _, err := os.Stat(clCLIBin); err != nil {
		t.Fatalf("the CLI is not in the guest: %v", err)
	}
	full := nsArgs(ns, append([]string{clCLIBin}, args...))
	cmd := exec.Command(full[0], full[1:]...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %v: %v", full, err)
	}
	return code, stdout.String(), stderr.String()
}

// clJSON is the part of insane -j show that the tests read back.
type clJSON struct {
	Ifindex   int    `json:"ifindex"`
	Ifname    string `json:"ifname"`
	Link      string `json:"link"`
	LinkIndex int    `json:"link_index"`
	Policy    struct {
		Mode    string   `json:"mode"`
		Percent *float64 `json:"percent"`
		Seed    *uint64  `json:"seed"`
		OnNs    *int64   `json:"on_ns"`
		OffNs   *int64   `json:"off_ns"`
	} `json:"policy"`
	Stats *struct {
		RelayedPackets uint64 `json:"relayed_packets"`
		Dropped        uint64 `json:"dropped"`
		DropPolicy     uint64 `json:"drop_policy"`
	} `json:"stats"`
}

func clParseJSON(t *testing.T, out string) []clJSON {
	t.Helper()
	var v []clJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("insane -j output does not parse: %v\n%s", err, out)
	}
	return v
}
