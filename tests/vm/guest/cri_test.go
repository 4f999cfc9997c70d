//go:build vmtest

package guest

// The CNI plugin under a real container runtime: Debian 12's containerd
// (its CRI plugin) and runc, driven by crictl as the kubelet drives the
// runtime, with the conflist a node would have in /etc/cni/net.d. make
// test-cri fetches the three and the runner packs them into the guest
// (tests/vm/runner/cri.go); without them TestCRI skips.
//
// What a busybox initramfs guest needs for containerd 1.6's CRI plugin:
// cgroup v2 mounted at /sys/fs/cgroup, the native snapshotter (no overlay
// on the initramfs), runc with NoPivotRoot (pivot_root refuses an
// initramfs root), the loopback plugin (containerd runs it for every pod),
// and a sandbox image in containerd's k8s.io namespace: there is no
// registry, so the test packs the runner's static pause program as an OCI
// image layout and imports it with ctr.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
)

const (
	criDir      = "/tmp/cri"
	criSock     = criDir + "/containerd.sock"
	criConfDir  = criDir + "/net.d"
	criIPAM     = criDir + "/ipam"
	criImage    = "localhost/insane-pause:1"
	criSubnet   = "10.79.0.0/24"
	criGateway  = "10.79.0.1"
	criPause    = "/usr/libexec/insane/pause"
	criCgroupFS = "/sys/fs/cgroup"
	// criDefaultTx is the conflist's tx, which a pod without the
	// annotation gets.
	criDefaultTx = "mode percent 30"
)

// criContainerdConfig is containerd's configuration: everything under
// criDir, the native snapshotter, runc without pivot_root.
const criContainerdConfig = `version = 2
root = "` + criDir + `/root"
state = "` + criDir + `/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "` + criSock + `"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "` + criImage + `"
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        NoPivotRoot = true
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "` + criConfDir + `"
    max_conf_num = 1
`

// criConflist is the network a node would have: ptp with host-local, then
// insane, which takes the pods' annotations.
func criConflist(version string) []byte {
	b, err := json.MarshalIndent(map[string]any{
		"cniVersion": version,
		"name":       "podnet",
		"plugins": []map[string]any{
			{
				"type": "ptp", "ipMasq": false,
				"ipam": map[string]any{
					"type": "host-local", "dataDir": criIPAM,
					"ranges": [][]map[string]string{{{"subnet": criSubnet}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			{
				"type":         "insane",
				"tx":           criDefaultTx,
				"capabilities": map[string]bool{cniAnnotations: true},
			},
		},
	}, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// criRuntime is a running containerd.
type criRuntime struct {
	t       *testing.T
	cmd     *exec.Cmd
	log     string
	exited  chan error
	stopped bool
}

// crictl runs crictl against the test's containerd and returns its
// standard output; the error carries its standard error.
func crictl(args ...string) (string, error) {
	out, err := TryRun(append([]string{"crictl", "--config", criDir + "/crictl.yaml"}, args...)...)
	if err != nil {
		// crictl quotes the runtime's message: unquoted, it reads as
		// the plugin wrote it.
		err = errors.New(strings.ReplaceAll(err.Error(), `\"`, `"`))
	}
	return out, err
}

// criCrictlConfig points crictl at the test's containerd.
const criCrictlConfig = `runtime-endpoint: unix://` + criSock + `
image-endpoint: unix://` + criSock + `
timeout: 120
`

// criMessage returns, for a log, the part of a failed runp's error from
// the failing plugin on: `plugin type="insane" failed (add): ...`.
func criMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "plugin type="); i >= 0 {
		msg = msg[i:]
		if j := strings.Index(msg, `"; `); j >= 0 {
			msg = msg[:j]
		}
	}
	return msg
}

func mustCrictl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := crictl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// criInfo is the part of crictl info the test reads.
type criInfo struct {
	Status struct {
		Conditions []struct {
			Type   string `json:"type"`
			Status bool   `json:"status"`
		} `json:"conditions"`
	} `json:"status"`
	CNIConfig struct {
		Networks []struct {
			Config struct {
				Name       string `json:"Name"`
				CNIVersion string `json:"CNIVersion"`
			} `json:"Config"`
		} `json:"Networks"`
	} `json:"cniconfig"`
}

// podnetVersion returns the cniVersion of the podnet conflist containerd
// has loaded ("" if none) and whether its network is ready.
func podnetVersion() (string, bool, error) {
	out, err := crictl("info")
	if err != nil {
		return "", false, err
	}
	var info criInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return "", false, fmt.Errorf("crictl info: %v", err)
	}
	ready := false
	for _, c := range info.Status.Conditions {
		if c.Type == "NetworkReady" {
			ready = c.Status
		}
	}
	for _, n := range info.CNIConfig.Networks {
		if n.Config.Name == "podnet" {
			return n.Config.CNIVersion, ready, nil
		}
	}
	return "", ready, nil
}

func writeConflist(t *testing.T, version string) {
	t.Helper()
	// Renamed into place, so that containerd never reads half a file.
	tmp := filepath.Join(criDir, "podnet.conflist.tmp")
	if err := os.WriteFile(tmp, criConflist(version), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(criConfDir, "10-podnet.conflist")); err != nil {
		t.Fatal(err)
	}
}

// criSetup mounts cgroup v2 if need be and writes containerd's and
// crictl's configurations and the conflist at CNI 1.0.0.
func criSetup(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(criCgroupFS + "/cgroup.controllers"); err != nil {
		if err := unix.Mount("cgroup2", criCgroupFS, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			t.Fatalf("mounting cgroup v2 on %s: %v", criCgroupFS, err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(criCgroupFS, 0); err != nil {
				t.Logf("unmounting %s: %v", criCgroupFS, err)
			}
		})
	}
	if err := os.RemoveAll(criDir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(criDir); err != nil {
			t.Errorf("removing %s: %v", criDir, err)
		}
	})
	for _, d := range []string{criConfDir, criIPAM, criDir + "/logs"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range map[string]string{"config.toml": criContainerdConfig, "crictl.yaml": criCrictlConfig} {
		if err := os.WriteFile(filepath.Join(criDir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConflist(t, "1.0.0")
}

// startContainerd starts containerd and waits until its CRI service
// answers with the network ready and the podnet conflist at version loaded.
// It returns how long that took.
func startContainerd(t *testing.T, version string) (*criRuntime, time.Duration) {
	t.Helper()
	r := &criRuntime{t: t, log: filepath.Join(criDir, fmt.Sprintf("containerd-%d.log", time.Now().UnixNano()))}
	logf, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r.cmd = exec.Command("containerd", "--config", filepath.Join(criDir, "config.toml"), "--log-level", "info")
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting containerd: %v", err)
	}
	logf.Close()
	r.exited = make(chan error, 1)
	go func() { r.exited <- r.cmd.Wait() }()
	t.Cleanup(r.stop)

	deadline := time.Now().Add(90 * time.Second)
	for {
		v, ready, err := podnetVersion()
		if err == nil && v == version && ready {
			break
		}
		select {
		case err := <-r.exited:
			r.exited <- err
			t.Fatalf("containerd exited (%v):\n%s", err, r.tail(40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd's CRI service not ready with the podnet conflist %s after 90 s (version %q, ready %v, %v):\n%s",
				version, v, ready, err, r.tail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return r, time.Since(start)
}

// tail returns the last n lines of containerd's log.
func (r *criRuntime) tail(n int) string {
	b, _ := os.ReadFile(r.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop removes any pod left (by a failed check), then stops containerd.
func (r *criRuntime) stop() {
	if r.stopped {
		return
	}
	r.stopped = true
	if out, err := crictl("pods", "-q"); err == nil && strings.TrimSpace(out) != "" {
		r.t.Logf("pods left at the end, removing them: %s", strings.Fields(out))
		crictl("stopp", "-a")
		crictl("rmp", "-a", "-f")
	}
	if r.t.Failed() {
		r.t.Logf("containerd's log, the end:\n%s", r.tail(60))
	}
	syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(15 * time.Second):
		r.t.Errorf("containerd did not exit within 15 s of SIGTERM")
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.exited
	}
}

// criPauseTar packs the pause program as a one-layer OCI image layout,
// which ctr images import reads.
func criPauseTar(t *testing.T) string {
	t.Helper()
	bin, err := os.ReadFile(criPause)
	if err != nil {
		t.Fatalf("the pause program: %v (the runner packs it with -cri)", err)
	}
	mtime := time.Unix(0, 0)
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Name: "pause", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg, ModTime: mtime}); err != nil {
		t.Fatal(err)
	}
	tw.Write(bin)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	blobs := map[string][]byte{}
	desc := func(mediaType string, b []byte) map[string]any {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = b
		return map[string]any{"mediaType": mediaType, "digest": d, "size": len(b)}
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	layerDesc := desc("application/vnd.oci.image.layer.v1.tar", layer.Bytes())
	config := mustJSON(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": []string{"/pause"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDesc["digest"].(string)}},
	})
	manifest := mustJSON(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        desc("application/vnd.oci.image.config.v1+json", config),
		"layers":        []any{layerDesc},
	})
	md := desc("application/vnd.oci.image.manifest.v1+json", manifest)
	md["platform"] = map[string]string{"architecture": "amd64", "os": "linux"}
	md["annotations"] = map[string]string{"org.opencontainers.image.ref.name": "1"}
	index := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{md}})

	path := filepath.Join(criDir, "pause.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ow := tar.NewWriter(f)
	add := func(name string, b []byte) {
		if err := ow.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
		ow.Write(b)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion": "1.0.0"}`))
	add("index.json", index)
	var names []string
	for d := range blobs {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		add("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), blobs[d])
	}
	if err := ow.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// criPod is a pod sandbox made with crictl runp.
type criPod struct {
	name, id string
	netns    string // the path containerd pinned the network namespace at
	ip       string
}

// runp creates a pod sandbox with the annotations and returns it, or the
// error crictl reported.
func runp(t *testing.T, name string, annotations map[string]string) (*criPod, error) {
	t.Helper()
	cfg, err := json.Marshal(map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "insane-test", "uid": name + "-uid", "attempt": 0},
		"hostname":      name,
		"log_directory": criDir + "/logs/" + name,
		"annotations":   annotations,
		// containerd writes the sandbox's resolv.conf from this, instead
		// of copying the guest's, which has none.
		"dns_config": map[string]any{"servers": []string{"192.0.2.53"}},
		"linux":      map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(criDir, name+".json")
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := crictl("runp", path)
	if err != nil {
		return nil, err
	}
	p := &criPod{name: name, id: strings.TrimSpace(out)}
	var insp struct {
		Status struct {
			Network struct {
				IP string `json:"ip"`
			} `json:"network"`
		} `json:"status"`
		Info struct {
			RuntimeSpec struct {
				Linux struct {
					Namespaces []struct {
						Type string `json:"type"`
						Path string `json:"path"`
					} `json:"namespaces"`
				} `json:"linux"`
			} `json:"runtimeSpec"`
		} `json:"info"`
	}
	js, err := crictl("inspectp", "-o", "json", p.id)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal([]byte(js), &insp); err != nil {
		return p, fmt.Errorf("crictl inspectp: %v", err)
	}
	// docs/cni.md's jq path to the pod's network namespace.
	for _, ns := range insp.Info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			p.netns = ns.Path
		}
	}
	p.ip = insp.Status.Network.IP
	if p.netns == "" || p.ip == "" {
		return p, fmt.Errorf("crictl inspectp %s: network namespace %q, address %q", name, p.netns, p.ip)
	}
	return p, nil
}

func mustRunp(t *testing.T, name string, annotations map[string]string) *criPod {
	t.Helper()
	p, err := runp(t, name, annotations)
	if err != nil {
		t.Fatalf("crictl runp %s: %v", name, err)
	}
	return p
}

// device reads the pod's insane device over generic netlink in the pod's
// network namespace.
func (p *criPod) device(t *testing.T) *genl.Device {
	t.Helper()
	c, err := genl.Dial(&genl.Options{NetNSPath: p.netns})
	if err != nil {
		t.Fatalf("pod %s: %v", p.name, err)
	}
	defer c.Close()
	d, err := c.Device("insane-eth0")
	if err != nil {
		t.Fatalf("pod %s: the insane device: %v", p.name, err)
	}
	return d
}

// checkPolicies checks that the pod's device sits on eth0 with these
// policies (rx "" for none).
func (p *criPod) checkPolicies(t *testing.T, tx, rx string) {
	t.Helper()
	d := p.device(t)
	gotRx := ""
	if d.RxPolicy != nil {
		gotRx = d.RxPolicy.String()
	}
	if d.LowerName != "eth0" || d.Policy.String() != tx || gotRx != rx {
		t.Errorf("pod %s: insane-eth0 on %q, tx %q, rx %q; want on eth0, tx %q, rx %q", p.name, d.LowerName, d.Policy, gotRx, tx, rx)
	}
}

// criNode is what the node (the guest's initial namespace) and the runtime
// hold that a pod adds to: links and routes, pinned network namespaces,
// host-local's allocations, the sandboxes crictl lists, and the module's
// references.
type criNode struct {
	state, netns, ipam, pods, refcnt string
}

func criNodeState(t *testing.T) criNode {
	t.Helper()
	var n criNode
	n.state = cniState(t, "")
	entries, _ := os.ReadDir(vmnet.NetnsDir)
	var ns []string
	for _, e := range entries {
		ns = append(ns, e.Name())
	}
	n.netns = strings.Join(ns, " ")
	var ipam []string
	filepath.Walk(criIPAM, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.HasPrefix(info.Name(), "last_reserved_ip") && info.Name() != "lock" {
			ipam = append(ipam, strings.TrimPrefix(p, criIPAM+"/"))
		}
		return nil
	})
	sort.Strings(ipam)
	n.ipam = strings.Join(ipam, " ")
	n.pods = strings.Join(strings.Fields(mustCrictl(t, "pods", "-q")), " ")
	n.refcnt = strings.TrimSpace(Sh(t, "cat /sys/module/insane/refcnt"))
	return n
}

// checkNode compares the node with what it held before.
func checkNode(t *testing.T, what string, before criNode) {
	t.Helper()
	after := criNodeState(t)
	if after.state != before.state {
		t.Errorf("%s: the node holds\n%s\nbefore:\n%s", what, after.state, before.state)
	}
	for _, c := range []struct{ name, got, want string }{
		{"pinned network namespaces", after.netns, before.netns},
		{"host-local allocations", after.ipam, before.ipam},
		{"pod sandboxes", after.pods, before.pods},
		{"insane module references", after.refcnt, before.refcnt},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s %q, before %q", what, c.name, c.got, c.want)
		}
	}
}

// holdNetns opens the pod's network namespace, so that it outlives the
// pod: what is left in it after crictl stopp is what CNI DEL left, not what
// the namespace's destruction took away.
func (p *criPod) holdNetns(t *testing.T) string {
	t.Helper()
	f, err := os.Open(p.netns)
	if err != nil {
		t.Fatalf("pod %s: %v", p.name, err)
	}
	t.Cleanup(func() { f.Close() })
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())
}

// stopRemove stops and removes the pods, all at once, and checks that each
// one's network namespace was emptied by CNI DEL and unpinned.
func stopRemove(t *testing.T, pods []*criPod) time.Duration {
	t.Helper()
	held := make([]string, len(pods))
	for i, p := range pods {
		held[i] = p.holdNetns(t)
	}
	start := time.Now()
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := crictl("stopp", p.id); err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = crictl("rmp", p.id)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	for i, p := range pods {
		if errs[i] != nil {
			t.Errorf("pod %s: %v", p.name, errs[i])
			continue
		}
		if left := cniLeft(t, held[i]); left != "" {
			t.Errorf("pod %s: its network namespace after crictl stopp and rmp holds %s", p.name, left)
		}
		if _, err := os.Stat(p.netns); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pod %s: %s is still there (%v)", p.name, p.netns, err)
		}
	}
	return took
}

// criTraffic sends n numbered datagrams each way between the pod and the
// host end of its ptp link, and returns how many arrived each way.
func criTraffic(t *testing.T, p *criPod, n int) (out, in int) {
	t.Helper()
	// Each side learns the other's link-layer address first (ARP is
	// not decided by the policies), so that no datagram waits in, or
	// overflows, a neighbour queue.
	cniSettled(t, filepath.Base(p.netns))
	TryRunIn("", "ping", "-c", "1", "-W", "1", p.ip)
	TryRunIn(filepath.Base(p.netns), "ping", "-c", "1", "-W", "1", criGateway)
	sent, got := UDPFlow(t, p.netns, "", criGateway, vmnet.SendOptions{Count: n})
	if sent.Errors != 0 {
		t.Fatalf("pod %s to the node: %d sends refused, first: %v", p.name, sent.Errors, sent.FirstError)
	}
	out = len(got.Seqs)
	sent, got = UDPFlow(t, "", p.netns, p.ip, vmnet.SendOptions{Count: n})
	if sent.Errors != 0 {
		t.Fatalf("the node to pod %s: %d sends refused, first: %v", p.name, sent.Errors, sent.FirstError)
	}
	return out, len(got.Seqs)
}

// TestCRI runs the plugin under containerd's CRI plugin: pods made with
// crictl runp get insane-eth0 with the policies of their annotations, both
// directions, and their traffic to and from the node meets them; a bad
// annotation makes runp fail with insane's message and leaves nothing;
// crictl stopp and rmp leave nothing; five pods at once; and containerd 1.6
// refuses a conflist at CNI 1.1.0 before insane runs (docs/cni.md).
func TestCRI(t *testing.T) {
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("containerd is not in the guest: make test-cri packs it")
	}
	mark := MarkKmsg(t)
	LoadModule(t)
	Sysctl(t, "", "net.core.rmem_max", "16777216")
	var versions []string
	for _, args := range [][]string{{"containerd", "--version"}, {"runc", "--version"}} {
		out, err := TryRun(args...)
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, strings.SplitN(strings.TrimSpace(out), "\n", 2)[0])
	}
	t.Logf("runtime: %s", strings.Join(versions, "; "))
	criSetup(t)
	rt, took := startContainerd(t, "1.0.0")
	t.Logf("containerd's CRI service ready in %.1f s", took.Seconds())
	Figure(t, "containerd start ms", uint64(took.Milliseconds()))
	if out, err := TryRun("ctr", "-a", criSock, "-n", "k8s.io", "images", "import", "--snapshotter", "native",
		"--base-name", strings.Split(criImage, ":")[0], criPauseTar(t)); err != nil {
		t.Fatalf("importing the pause image: %v", err)
	} else {
		t.Logf("ctr images import: %s", strings.TrimSpace(out))
	}
	mustCrictl(t, "inspecti", criImage)
	before := criNodeState(t)
	pods := 0

	t.Run("annotations", func(t *testing.T) {
		const n = 300
		cases := []struct {
			name    string
			ann     map[string]string
			tx, rx  string
			out, in int // datagrams that arrive pod to node, node to pod
		}{
			{"tx-drop", map[string]string{"insane.dev/tx": "mode drop"}, "mode drop", "", 0, n},
			{"rx-drop", map[string]string{"insane.dev/tx": "mode pass", "insane.dev/rx": "mode drop"}, "mode pass", "mode drop", n, 0},
			{"pass", map[string]string{"insane.dev/tx": "mode pass", "insane.dev/rx": "mode pass", "other.example/key": "x"}, "mode pass", "mode pass", n, n},
			{"default", nil, criDefaultTx, "", -1, -1},
		}
		var made []*criPod
		for _, c := range cases {
			start := time.Now()
			p := mustRunp(t, c.name, c.ann)
			pods++
			made = append(made, p)
			t.Logf("pod %s: crictl runp %.1f s, %s at %s", c.name, time.Since(start).Seconds(), p.netns, p.ip)
			p.checkPolicies(t, c.tx, c.rx)
			if c.out < 0 {
				continue
			}
			d0 := p.device(t).Stats
			out, in := criTraffic(t, p, n)
			d := p.device(t).Stats
			t.Logf("pod %s: pod to node %d of %d, node to pod %d of %d; tx relayed %d dropped %d, rx relayed %d dropped %d",
				c.name, out, n, in, n, d.RelayedPackets-d0.RelayedPackets, d.DropPolicy-d0.DropPolicy,
				d.RxRelayedPackets-d0.RxRelayedPackets, d.RxDropPolicy-d0.RxDropPolicy)
			if out != c.out || in != c.in {
				t.Errorf("pod %s (tx %q, rx %q): pod to node %d of %d, node to pod %d of %d; want %d and %d",
					c.name, c.tx, c.rx, out, n, in, n, c.out, c.in)
			}
			// The device decides what the test sent, and perhaps
			// the pod's own IPv6 packets besides.
			txGot := d.RelayedPackets - d0.RelayedPackets
			if c.out == 0 {
				txGot = d.DropPolicy - d0.DropPolicy
			}
			if txGot < n {
				t.Errorf("pod %s: the transmit policy decided %d of the %d datagrams the pod sent", c.name, txGot, n)
			}
			if c.rx != "" {
				rxGot := d.RxRelayedPackets - d0.RxRelayedPackets
				if c.in == 0 {
					rxGot = d.RxDropPolicy - d0.RxDropPolicy
				}
				if rxGot < n {
					t.Errorf("pod %s: the receive policy decided %d of the %d datagrams the node sent", c.name, rxGot, n)
				}
			}
		}
		// docs/cni.md's way of reading a pod's device from the node.
		if code, out, errOut := clCLI(t, "", "-n", made[0].netns, "-s", "link", "show", "insane-eth0"); code != 0 || !strings.Contains(out, "mode drop") {
			t.Errorf("insane -n %s -s link show insane-eth0: exit %d, %q, %q", made[0].netns, code, out, errOut)
		}
		took := stopRemove(t, made)
		t.Logf("%d pods stopped and removed in %.1f s", len(made), took.Seconds())
		checkNode(t, "after crictl stopp and rmp", before)
	})

	t.Run("bad-annotation", func(t *testing.T) {
		for i, c := range []struct {
			ann map[string]string
			msg string
		}{
			{map[string]string{"insane.dev/tx": "mode percent 101"}, `insane: annotation insane.dev/tx: "mode percent 101": percentage "101" is not between 0 and 100`},
			{map[string]string{"insane.dev/rx": "mode chaos"}, `insane: annotation insane.dev/rx: "mode chaos": unknown mode "chaos"`},
			{map[string]string{"insane.dev/loss": "5"}, `insane: unknown pod annotation "insane.dev/loss"`},
		} {
			_, err := runp(t, fmt.Sprintf("bad%d", i), c.ann)
			if err == nil || !strings.Contains(err.Error(), `plugin type="insane" failed (add): `+c.msg) {
				t.Errorf("crictl runp with %v: %v; want insane's ADD to fail with %q", c.ann, err, c.msg)
			} else {
				t.Logf("crictl runp with %v: %s", c.ann, criMessage(err))
			}
			checkNode(t, fmt.Sprintf("after the refused runp with %v", c.ann), before)
		}
	})

	t.Run("five-at-once", func(t *testing.T) {
		const k = 5
		made := make([]*criPod, k)
		errs := make([]error, k)
		ann := func(i int) (string, string) {
			tx, rx := fmt.Sprintf("mode percent %d seed %d", 10*(i+1), i+1), ""
			if i%2 == 1 {
				rx = fmt.Sprintf("mode percent %d", 50+i)
			}
			return tx, rx
		}
		linksBefore := len(cniLinks(t, ""))
		start := time.Now()
		var wg sync.WaitGroup
		for i := 0; i < k; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tx, rx := ann(i)
				a := map[string]string{"insane.dev/tx": tx}
				if rx != "" {
					a["insane.dev/rx"] = rx
				}
				made[i], errs[i] = runp(t, "many"+strconv.Itoa(i), a)
			}()
		}
		wg.Wait()
		took := time.Since(start)
		var up []*criPod
		for i, p := range made {
			if errs[i] != nil {
				t.Errorf("pod %d: %v", i, errs[i])
			}
			if p != nil {
				up = append(up, p)
			}
		}
		pods += len(up)
		t.Logf("%d pods at once: crictl runp %.1f s", k, took.Seconds())
		Figure(t, "ms for 5 crictl runp at once", uint64(took.Milliseconds()))
		if len(up) == k {
			ips := map[string]bool{}
			for i, p := range made {
				tx, rx := ann(i)
				p.checkPolicies(t, tx, rx)
				ips[p.ip] = true
			}
			if len(ips) != k {
				t.Errorf("%d pods, %d distinct addresses", k, len(ips))
			}
			if links := len(cniLinks(t, "")); links != linksBefore+k {
				t.Errorf("the node has %d links besides lo with %d pods up, %d before", links, k, linksBefore)
			}
		}
		took = stopRemove(t, up)
		t.Logf("%d pods stopped and removed at once in %.1f s", len(up), took.Seconds())
		checkNode(t, "after stopping and removing the five", before)
	})

	t.Run("cni-1.1.0-refused", func(t *testing.T) {
		// containerd 1.6 runs the plugins through libcni 1.1, which
		// reads results up to CNI 1.0.0: ptp's 1.1.0 result is
		// refused before insane runs. docs/cni.md says to write 1.0.0
		// for it. containerd reads the conflist again as it starts.
		rt.stop()
		writeConflist(t, "1.1.0")
		startContainerd(t, "1.1.0")
		_, err := runp(t, "v110", map[string]string{"insane.dev/tx": "mode pass"})
		if err == nil || !strings.Contains(err.Error(), `plugin type="ptp" failed (add): unsupported CNI result version "1.1.0"`) {
			t.Errorf("crictl runp with the conflist at 1.1.0: %v; want containerd 1.6 to refuse ptp's 1.1.0 result", err)
		} else {
			t.Logf("crictl runp with the conflist at 1.1.0: %s", criMessage(err))
		}
		checkNode(t, "after the refused runp at CNI 1.1.0", before)
	})

	mark.Check(t)
	if !t.Failed() {
		Figure(t, "pods run with crictl", uint64(pods))
	}
}
