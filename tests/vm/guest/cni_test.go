//go:build vmtest

package guest

// The CNI plugin (go/cmd/insane-cni), chained after the upstream ptp plugin
// with host-local IPAM, both built from their Go modules and installed by
// the runner in /opt/cni/bin, run through libcni as a container runtime
// runs them. Each test has its own "node" network namespace, where the
// plugins run and ptp puts the host ends of the pods' veths, and a fresh
// network namespace per pod.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
)

// cniBinDir is where the runner installs the plugins; INSANE_CNI_PATH
// overrides it.
func cniBinDir() string {
	if d := os.Getenv("INSANE_CNI_PATH"); d != "" {
		return d
	}
	return "/opt/cni/bin"
}

const cniAnnotations = "io.kubernetes.cri.pod-annotations"

// A cniNode is a node's network namespace with libcni set up to run the
// plugins there.
type cniNode struct {
	t      *testing.T
	ns     string
	cni    *libcni.CNIConfig
	ipam   string // host-local's data directory
	subnet string // the pods' IPv4 subnet, such as 10.77.0.0/24
	gw     string // ptp's gateway, the first address of the subnet
	// subnet6 and gw6, when set, make the pods dual-stack.
	subnet6, gw6 string
}

var cniNodes int

// newCNINode creates the node's namespace. subnetByte picks the pods'
// subnet 10.77.X.0/24.
func newCNINode(t *testing.T) *cniNode {
	t.Helper()
	cniNodes++
	n := &cniNode{
		t:      t,
		ns:     NewNetns(t, fmt.Sprintf("node%d", cniNodes)),
		ipam:   t.TempDir(),
		subnet: fmt.Sprintf("10.77.%d.0/24", cniNodes),
		gw:     fmt.Sprintf("10.77.%d.1", cniNodes),
	}
	n.cni = libcni.NewCNIConfigWithCacheDir([]string{cniBinDir()}, t.TempDir(), nil)
	for _, k := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"} {
		Sysctl(t, n.ns, k, "0")
	}
	return n
}

// ptpConf is the main plugin's configuration.
func (n *cniNode) ptpConf() map[string]any {
	ranges := [][]map[string]string{{{"subnet": n.subnet}}}
	routes := []map[string]string{{"dst": "0.0.0.0/0"}}
	if n.subnet6 != "" {
		ranges = append(ranges, []map[string]string{{"subnet": n.subnet6}})
		routes = append(routes, map[string]string{"dst": "::/0"})
	}
	return map[string]any{
		"type":   "ptp",
		"ipMasq": false,
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  ranges,
			"routes":  routes,
			"dataDir": n.ipam,
		},
	}
}

// list returns a conflist of ptp followed by the insane plugin with the
// given settings (nil: ptp alone).
func (n *cniNode) list(version string, insane map[string]any) *libcni.NetworkConfigList {
	n.t.Helper()
	plugins := []map[string]any{n.ptpConf()}
	if insane != nil {
		p := map[string]any{"type": "insane"}
		for k, v := range insane {
			p[k] = v
		}
		plugins = append(plugins, p)
	}
	b, err := json.Marshal(map[string]any{"cniVersion": version, "name": "podnet", "plugins": plugins})
	if err != nil {
		n.t.Fatal(err)
	}
	l, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		n.t.Fatalf("conflist %s: %v", b, err)
	}
	return l
}

// newPod creates a pod's namespace, with IPv6 off so that its state is
// exactly what the plugins put there.
func (n *cniNode) newPod(name string) string {
	n.t.Helper()
	NewNetns(n.t, name)
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		Sysctl(n.t, name, k, "1")
	}
	return name
}

func cniRT(pod string, annotations map[string]string) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: "ctr-" + pod, NetNS: vmnet.NetnsDir + "/" + pod, IfName: "eth0"}
	if annotations != nil {
		rt.CapabilityArgs = map[string]any{cniAnnotations: annotations}
	}
	return rt
}

// do runs fn in the node's namespace, where the plugins it starts run too.
func (n *cniNode) do(fn func() error) error { return vmnet.Do(n.ns, fn) }

func (n *cniNode) add(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (*current.Result, error) {
	var res *current.Result
	err := n.do(func() error {
		r, err := n.cni.AddNetworkList(context.Background(), l, rt)
		if err != nil {
			return err
		}
		res, err = current.NewResultFromResult(r)
		return err
	})
	return res, err
}

func (n *cniNode) check(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return n.do(func() error { return n.cni.CheckNetworkList(context.Background(), l, rt) })
}

func (n *cniNode) del(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return n.do(func() error { return n.cni.DelNetworkList(context.Background(), l, rt) })
}

// mustAdd adds the pod and deletes it when the test ends.
func (n *cniNode) mustAdd(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) *current.Result {
	n.t.Helper()
	res, err := n.add(l, rt)
	if err != nil {
		n.t.Fatalf("ADD %s: %v", rt.NetNS, err)
	}
	n.t.Cleanup(func() {
		if err := n.del(l, rt); err != nil {
			n.t.Errorf("DEL %s: %v", rt.NetNS, err)
		}
	})
	return res
}

// podIP returns the pod's IPv4 address from the result.
func podIP(t *testing.T, res *current.Result) string {
	t.Helper()
	for _, ip := range res.IPs {
		if ip.Address.IP.To4() != nil {
			return ip.Address.IP.String()
		}
	}
	t.Fatalf("no IPv4 address in the result %v", res)
	return ""
}

// cniSettled waits until the pod's eth0, and its insane device if it has
// one, are operationally up, as they are soon after an ADD: the kernel's
// link watch sets the state a moment after the plugin brought the device up
// (a fresh-clone run read insane-eth0 UNKNOWN in one snapshot and UP in the
// next, and took it for a change).
func cniSettled(t *testing.T, pod string) {
	t.Helper()
	WaitFor(t, 5*time.Second, "eth0 and any insane device up in "+pod, func() bool {
		out, err := TryRunIn(pod, "ip", "-br", "link", "show")
		if err != nil {
			return false
		}
		eth0 := false
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(f[0], "@")
			if name != "eth0" && !strings.HasPrefix(name, "insane-") {
				continue
			}
			if f[1] != "UP" {
				return false
			}
			eth0 = eth0 || name == "eth0"
		}
		return eth0
	})
}

// cniState is what a pod's namespace holds: links, addresses, routes of
// every table and rules, as ip prints them.
func cniState(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"ip", "-d", "link", "show"},
		{"ip", "addr", "show"},
		{"ip", "route", "show", "table", "all"},
		{"ip", "-6", "route", "show", "table", "all"},
		{"ip", "rule", "show"},
	} {
		fmt.Fprintf(&b, "$ %s\n%s", strings.Join(args, " "), RunIn(t, ns, args...))
	}
	return b.String()
}

// cniDevice returns the insane device of the pod.
func cniDevice(t *testing.T, pod string) *genl.Device {
	t.Helper()
	c := kDial(t, pod)
	d, err := c.Device("insane-eth0")
	if err != nil {
		t.Fatalf("insane device in %s: %v", pod, err)
	}
	return d
}

// cniCode returns the CNI error code of err, or fails.
func cniCode(t *testing.T, err error) *types.Error {
	t.Helper()
	var te *types.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a CNI error", err, err)
	}
	return te
}

// TestCNIAddTraffic runs the conflist ptp + host-local + insane through
// libcni: the pod gets an address and an insane device on eth0, the
// result names it, and its traffic to the node loses packets within 4
// sigma of the tx policy.
func TestCNIAddTraffic(t *testing.T) {
	Sysctl(t, "", "net.core.rmem_max", "16777216")
	n := newCNINode(t)
	pod := n.newPod("pod1")
	// A Debian or systemd node sets rp_filter to loose (2), and pods
	// inherit it: replies come in on eth0 while the route points at the
	// insane device, which loose mode accepts.
	Sysctl(t, pod, "net.ipv4.conf.all.rp_filter", "2")
	l := n.list("1.1.0", map[string]any{"tx": "mode percent 70", "rx": "mode percent 80"})
	res := n.mustAdd(l, cniRT(pod, nil))
	ip := podIP(t, res)
	t.Logf("pod address %s, interfaces %v", ip, res.Interfaces)
	var names []string
	for _, in := range res.Interfaces {
		names = append(names, in.Name)
	}
	if !strings.Contains(strings.Join(names, " "), "insane-eth0") {
		t.Errorf("the result's interfaces %v do not name insane-eth0", names)
	}
	d := cniDevice(t, pod)
	if d.LowerName != "eth0" || d.Policy.String() != "mode percent 70" || d.RxPolicy == nil || d.RxPolicy.String() != "mode percent 80" {
		t.Fatalf("device %s: lower %q, policy %q, rx policy %v", d.Name, d.LowerName, d.Policy, d.RxPolicy)
	}
	routes := RunIn(t, pod, "ip", "route", "show")
	t.Logf("pod routes:\n%s", routes)
	for _, want := range []string{"default dev insane-eth0", n.gw + " dev insane-eth0"} {
		if !strings.Contains(routes, want) {
			t.Errorf("pod routes lack %q", want)
		}
	}
	if err := n.check(l, cniRT(pod, nil)); err != nil {
		t.Errorf("CHECK on a good pod: %v", err)
	}

	const count = 4000
	sent, got := UDPFlow(t, pod, n.ns, n.gw, vmnet.SendOptions{Count: count})
	if sent.Errors != 0 {
		t.Fatalf("%d sends refused, first: %v", sent.Errors, sent.FirstError)
	}
	kWithin(t, "pod to node through tx mode percent 70", len(got.Seqs), count, 0.70, 4)
	d = cniDevice(t, pod)
	if d.Stats.RelayedPackets != uint64(len(got.Seqs)) || d.Stats.RelayedPackets+d.Stats.DropPolicy != count {
		t.Errorf("counters: relayed %d, dropped by policy %d; received %d of %d",
			d.Stats.RelayedPackets, d.Stats.DropPolicy, len(got.Seqs), count)
	}

	// The node's address routes through insane-eth0 in the pod, so what
	// the node sends the pod is taken over and meets the rx policy.
	rx0 := d.Stats
	sent, got = UDPFlow(t, n.ns, pod, ip, vmnet.SendOptions{Count: count})
	if sent.Errors != 0 {
		t.Fatalf("node to pod: %d sends refused, first: %v", sent.Errors, sent.FirstError)
	}
	kWithin(t, "node to pod through rx mode percent 80", len(got.Seqs), count, 0.80, 4)
	d = cniDevice(t, pod)
	if rxr := d.Stats.RxRelayedPackets - rx0.RxRelayedPackets; rxr != uint64(len(got.Seqs)) ||
		rxr+d.Stats.RxDropPolicy-rx0.RxDropPolicy != count {
		t.Errorf("rx counters: relayed %d, dropped by policy %d; received %d of %d",
			rxr, d.Stats.RxDropPolicy-rx0.RxDropPolicy, len(got.Seqs), count)
	}
}

// TestCNIDestinations routes only a listed prefix through the insane
// device: traffic to it loses packets, traffic elsewhere is untouched.
func TestCNIDestinations(t *testing.T) {
	Sysctl(t, "", "net.core.rmem_max", "16777216")
	n := newCNINode(t)
	RunIn(t, n.ns, "ip", "link", "add", "svc0", "type", "dummy")
	RunIn(t, n.ns, "ip", "addr", "add", "198.51.100.1/32", "dev", "svc0")
	RunIn(t, n.ns, "ip", "addr", "add", "203.0.113.1/32", "dev", "svc0")
	RunIn(t, n.ns, "ip", "link", "set", "svc0", "up")
	pod := n.newPod("pod1")
	l := n.list("1.1.0", map[string]any{"tx": "mode percent 50", "destinations": []string{"198.51.100.0/24"}})
	n.mustAdd(l, cniRT(pod, nil))

	const count = 2000
	sent, got := UDPFlow(t, pod, n.ns, "198.51.100.1", vmnet.SendOptions{Count: count})
	if sent.Errors != 0 {
		t.Fatalf("%d sends refused: %v", sent.Errors, sent.FirstError)
	}
	kWithin(t, "to 198.51.100.1, a destination", len(got.Seqs), count, 0.5, 4)
	before := cniDevice(t, pod).Stats
	for _, dst := range []string{"203.0.113.1", n.gw} {
		sent, got := UDPFlow(t, pod, n.ns, dst, vmnet.SendOptions{Count: count})
		if sent.Errors != 0 || len(got.Seqs) != count {
			t.Errorf("to %s, outside the destinations: %d of %d arrived, %d sends refused", dst, len(got.Seqs), count, sent.Errors)
		}
	}
	after := cniDevice(t, pod).Stats
	if after != before {
		t.Errorf("the device counted traffic outside its destinations: %+v, then %+v", before, after)
	}
	if err := n.check(l, cniRT(pod, nil)); err != nil {
		t.Errorf("CHECK: %v", err)
	}
}

// TestCNIDualStack gives a pod IPv4 and IPv6 addresses: both families'
// routes go through the insane device, IPv6 ones with a metric one better
// than ptp's, and IPv6 traffic to the node loses packets within 4 sigma.
func TestCNIDualStack(t *testing.T) {
	Sysctl(t, "", "net.core.rmem_max", "16777216")
	n := newCNINode(t)
	n.subnet6 = fmt.Sprintf("fd00:77:%d::/64", cniNodes)
	n.gw6 = fmt.Sprintf("fd00:77:%d::1", cniNodes)
	pod := NewNetns(t, "pod1")
	l := n.list("1.1.0", map[string]any{"tx": "mode percent 60"})
	res := n.mustAdd(l, cniRT(pod, nil))
	if len(res.IPs) != 2 {
		t.Fatalf("addresses %v, want one of each family", res.IPs)
	}
	routes := RunIn(t, pod, "ip", "-6", "route", "show")
	t.Logf("pod IPv6 routes:\n%s", routes)
	for _, want := range []string{"default dev insane-eth0 proto static metric 1023", n.subnet6 + " dev insane-eth0 proto static metric 1023"} {
		if !strings.Contains(routes, want) {
			t.Errorf("the pod's IPv6 routes lack %q", want)
		}
	}
	if err := n.check(l, cniRT(pod, nil)); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	WaitFor(t, 10*time.Second, "the node's IPv6 gateway address out of DAD", func() bool {
		out, err := TryRunIn(n.ns, "ip", "-6", "addr", "show", "tentative")
		return err == nil && !strings.Contains(out, n.gw6)
	})
	const count = 2000
	sent, got := UDPFlow(t, pod, n.ns, n.gw6, vmnet.SendOptions{Count: count})
	if sent.Errors != 0 {
		t.Fatalf("%d sends refused, first: %v", sent.Errors, sent.FirstError)
	}
	kWithin(t, "IPv6 pod to node through tx mode percent 60", len(got.Seqs), count, 0.60, 4)
	if d := cniDevice(t, pod); d.Stats.RelayedPackets < uint64(len(got.Seqs)) {
		t.Errorf("the device relayed %d packets, %d arrived", d.Stats.RelayedPackets, len(got.Seqs))
	}
}

// TestCNIAnnotations overrides the configuration's policy with the pod
// annotation, delivered as runtime config of the capability.
func TestCNIAnnotations(t *testing.T) {
	n := newCNINode(t)
	l := n.list("1.1.0", map[string]any{
		"tx":           "mode percent 10",
		"capabilities": map[string]bool{cniAnnotations: true},
	})
	ann := map[string]string{"insane.dev/tx": "mode percent 55 seed 7", "other.example/key": "ignored"}
	pod := n.newPod("pod1")
	n.mustAdd(l, cniRT(pod, ann))
	if got := cniDevice(t, pod).Policy.String(); got != "mode percent 55 seed 7" {
		t.Errorf("policy with the annotation: %q", got)
	}
	podRx := n.newPod("podrx")
	n.mustAdd(l, cniRT(podRx, map[string]string{"insane.dev/rx": "mode percent 90"}))
	if rx := cniDevice(t, podRx).RxPolicy; rx == nil || rx.String() != "mode percent 90" {
		t.Errorf("rx policy with the rx annotation: %v", rx)
	}
	if err := n.check(l, cniRT(podRx, map[string]string{"insane.dev/rx": "mode percent 90"})); err != nil {
		t.Errorf("CHECK with the rx annotation: %v", err)
	}
	if err := n.check(l, cniRT(podRx, nil)); err == nil || !strings.Contains(err.Error(), "has rx policy") {
		t.Errorf("CHECK without the rx annotation: %v, want the rx mismatch", err)
	}
	if err := n.check(l, cniRT(pod, ann)); err != nil {
		t.Errorf("CHECK with the same annotation: %v", err)
	}
	// CHECK against the configuration alone sees the annotation's policy
	// and says which setting disagrees.
	err := n.check(l, cniRT(pod, nil))
	if err == nil || !strings.Contains(err.Error(), `"tx" in the network configuration says "mode percent 10"`) {
		t.Errorf("CHECK without the annotation: %v", err)
	}

	pod2 := n.newPod("pod2")
	n.mustAdd(l, cniRT(pod2, map[string]string{"unrelated": "x"}))
	if got := cniDevice(t, pod2).Policy.String(); got != "mode percent 10" {
		t.Errorf("policy without the annotation: %q", got)
	}

	// A bad value, rx and an unknown insane.dev/ key are refused.
	for i, c := range []struct {
		ann  map[string]string
		code uint
		msg  string
	}{
		{map[string]string{"insane.dev/tx": "mode percent 101"}, types.ErrInvalidNetworkConfig, `annotation insane.dev/tx: "mode percent 101": percentage "101" is not between 0 and 100`},
		{map[string]string{"insane.dev/rx": "mode chaos"}, types.ErrInvalidNetworkConfig, `annotation insane.dev/rx: "mode chaos": unknown mode "chaos"`},
		{map[string]string{"insane.dev/txx": "mode pass"}, types.ErrUnsupportedField, `unknown pod annotation "insane.dev/txx"`},
	} {
		pod := n.newPod(fmt.Sprintf("podbad%d", i))
		_, err := n.add(l, cniRT(pod, c.ann))
		te := cniCode(t, err)
		if te.Code != c.code || !strings.Contains(te.Msg, c.msg) {
			t.Errorf("annotations %v: code %d, msg %q; want code %d with %q", c.ann, te.Code, te.Msg, c.code, c.msg)
		}
		if err := n.del(l, cniRT(pod, c.ann)); err != nil {
			t.Errorf("DEL after a refused ADD: %v", err)
		}
	}
}

// TestCNICheckDel checks CHECK on a good pod and on one whose device was
// deleted behind the plugin's back, DEL twice, DEL of a pod whose netns is
// gone, and that DEL leaves exactly what ptp left.
func TestCNICheckDel(t *testing.T) {
	n := newCNINode(t)
	pod := n.newPod("pod1")
	rt := cniRT(pod, nil)
	ptpOnly := n.list("1.1.0", nil)
	if _, err := n.add(ptpOnly, rt); err != nil {
		t.Fatalf("ptp ADD: %v", err)
	}
	cniSettled(t, pod)
	ptpLeft := cniState(t, pod)

	// The insane plugin alone, chained by hand on ptp's cached result, as
	// the second plugin of a list is run.
	prev, err := n.cni.GetNetworkListCachedResult(ptpOnly, rt)
	if err != nil || prev == nil {
		t.Fatalf("ptp's cached result: %v", err)
	}
	insaneConf := func(extra string) *libcni.PluginConfig {
		var pb bytes.Buffer
		if err := prev.PrintTo(&pb); err != nil {
			t.Fatal(err)
		}
		b := fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "podnet", "type": "insane", "tx": "mode percent 90"%s, "prevResult": %s}`, extra, pb.String())
		c, err := libcni.NetworkPluginConfFromBytes([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	conf := insaneConf("")
	ctx := context.Background()
	if err := n.do(func() error { _, err := n.cni.AddNetwork(ctx, conf, rt); return err }); err != nil {
		t.Fatalf("insane ADD: %v", err)
	}
	cniSettled(t, pod)
	if cniState(t, pod) == ptpLeft {
		t.Fatal("insane ADD changed nothing")
	}
	if err := n.do(func() error { return n.cni.CheckNetwork(ctx, conf, rt) }); err != nil {
		t.Errorf("CHECK on a good pod: %v", err)
	}
	// ADD again on the same pod is refused, and leaves the first ADD's
	// device as it was.
	withDevice := cniState(t, pod)
	err = n.do(func() error { _, err := n.cni.AddNetwork(ctx, conf, rt); return err })
	if te := cniCode(t, err); te.Code != types.ErrInternal || !strings.Contains(te.Msg, "a device called insane-eth0 exists already") {
		t.Errorf("a second ADD: code %d, %q", te.Code, te.Msg)
	}
	if s := cniState(t, pod); s != withDevice {
		t.Errorf("the refused second ADD changed the pod:\n%s\nbefore:\n%s", s, withDevice)
	}
	if err := n.do(func() error { return n.cni.CheckNetwork(ctx, conf, rt) }); err != nil {
		t.Errorf("CHECK after a refused second ADD: %v", err)
	}
	// Another policy set from the node (insane -n) is what CHECK reports.
	nsPath := vmnet.NetnsDir + "/" + pod
	if code, _, errOut := clCLI(t, "", "-n", nsPath, "link", "set", "insane-eth0", "mode", "pass"); code != 0 {
		t.Fatalf("insane -n %s link set: %s", nsPath, errOut)
	}
	err = n.do(func() error { return n.cni.CheckNetwork(ctx, conf, rt) })
	if err == nil || !strings.Contains(err.Error(), `has tx policy "mode pass"`) {
		t.Errorf("CHECK after a policy change: %v", err)
	}
	// A route deleted behind its back.
	if code, _, errOut := clCLI(t, "", "-n", nsPath, "link", "set", "insane-eth0", "mode", "percent", "90"); code != 0 {
		t.Fatal(errOut)
	}
	RunIn(t, pod, "ip", "route", "del", n.gw, "dev", "insane-eth0")
	err = n.do(func() error { return n.cni.CheckNetwork(ctx, conf, rt) })
	if err == nil || !strings.Contains(err.Error(), "routes missing through insane-eth0: "+n.gw+"/32") {
		t.Errorf("CHECK after a route was deleted: %v", err)
	}
	// The device deleted behind its back.
	RunIn(t, pod, "ip", "link", "del", "insane-eth0")
	err = n.do(func() error { return n.cni.CheckNetwork(ctx, conf, rt) })
	if err == nil || !strings.Contains(err.Error(), "the insane device insane-eth0 is missing") {
		t.Errorf("CHECK after the device was deleted: %v", err)
	} else {
		t.Logf("CHECK: %v", err)
	}
	if s := cniState(t, pod); s != ptpLeft {
		t.Errorf("deleting the device left:\n%s\nptp left:\n%s", s, ptpLeft)
	}

	// ADD again, then DEL twice: each leaves exactly what ptp left.
	if err := n.do(func() error { _, err := n.cni.AddNetwork(ctx, conf, rt); return err }); err != nil {
		t.Fatalf("insane ADD again: %v", err)
	}
	for i := 1; i <= 2; i++ {
		if err := n.do(func() error { return n.cni.DelNetwork(ctx, conf, rt) }); err != nil {
			t.Errorf("DEL %d: %v", i, err)
		}
		if s := cniState(t, pod); s != ptpLeft {
			t.Errorf("after DEL %d the pod holds:\n%s\nptp left:\n%s", i, s, ptpLeft)
		}
	}

	// The whole list, then DEL twice, and DEL once the netns is gone.
	if err := n.del(ptpOnly, rt); err != nil {
		t.Fatalf("ptp DEL: %v", err)
	}
	l := n.list("1.1.0", map[string]any{"tx": "mode percent 90"})
	if _, err := n.add(l, rt); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	for i := 1; i <= 2; i++ {
		if err := n.del(l, rt); err != nil {
			t.Errorf("list DEL %d: %v", i, err)
		}
	}
	if links := cniLinks(t, pod); len(links) != 0 {
		t.Errorf("after the list's DEL the pod has: %v", links)
	}
	gone := cniRT("nosuchpod", nil)
	if err := n.do(func() error { return n.cni.DelNetwork(ctx, conf, gone) }); err != nil {
		t.Errorf("DEL with the netns gone: %v", err)
	}
}

// cniExec runs the insane plugin binary as a runtime does, in the node's
// namespace, and returns its exit status and standard output.
func (n *cniNode) cniExec(command, pod string, stdin []byte) (int, []byte) {
	n.t.Helper()
	var code int
	var out []byte
	err := n.do(func() error {
		cmd := exec.Command(filepath.Join(cniBinDir(), "insane"))
		cmd.Env = []string{
			"CNI_COMMAND=" + command, "CNI_CONTAINERID=ctr-" + pod, "CNI_NETNS=" + vmnet.NetnsDir + "/" + pod,
			"CNI_IFNAME=eth0", "CNI_PATH=" + cniBinDir(),
		}
		cmd.Stdin = bytes.NewReader(stdin)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		err := cmd.Run()
		out = stdout.Bytes()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
			return nil
		}
		return err
	})
	if err != nil {
		n.t.Fatal(err)
	}
	return code, out
}

// TestCNIBadConfigs runs the plugin on refused configurations: each is a
// CNI error with the right code and a message, a non-zero exit, and the pod
// keeps exactly what ptp left.
func TestCNIBadConfigs(t *testing.T) {
	n := newCNINode(t)
	pod := n.newPod("pod1")
	rt := cniRT(pod, nil)
	ptpOnly := n.list("1.1.0", nil)
	if _, err := n.add(ptpOnly, rt); err != nil {
		t.Fatalf("ptp ADD: %v", err)
	}
	t.Cleanup(func() {
		if err := n.del(ptpOnly, rt); err != nil {
			t.Error(err)
		}
	})
	cniSettled(t, pod)
	ptpLeft := cniState(t, pod)
	prev, err := n.cni.GetNetworkListCachedResult(ptpOnly, rt)
	if err != nil {
		t.Fatal(err)
	}
	var pb bytes.Buffer
	if err := prev.PrintTo(&pb); err != nil {
		t.Fatal(err)
	}
	conf := func(keys string, withPrev bool) []byte {
		s := `{"cniVersion": "1.1.0", "name": "podnet", "type": "insane"` + keys
		if withPrev {
			s += `, "prevResult": ` + pb.String()
		}
		return []byte(s + "}")
	}
	cases := []struct {
		name    string
		stdin   []byte
		code    uint
		msg     string
		unmount bool // without the module
	}{
		{"unknown key", conf(`, "tx": "mode pass", "loss": 5`, true), types.ErrUnsupportedField, `unknown key "loss" (value 5)`, false},
		{"unknown capability", conf(`, "capabilities": {"portMappings": true}`, true), types.ErrUnsupportedField, `unknown capability "portMappings"`, false},
		{"bad policy", conf(`, "tx": "mode percent 80 seed 4 seed 5"`, true), types.ErrInvalidNetworkConfig, `"tx" in the network configuration: "mode percent 80 seed 4 seed 5": seed given twice`, false},
		{"bad policy word", conf(`, "tx": "mode chaos"`, true), types.ErrInvalidNetworkConfig, `unknown mode "chaos"`, false},
		{"bad prefix", conf(`, "destinations": ["10.0.0.0/33"]`, true), types.ErrInvalidNetworkConfig, `"10.0.0.0/33" is not a prefix`, false},
		{"host bits", conf(`, "destinations": ["10.1.2.3/8"]`, true), types.ErrInvalidNetworkConfig, `"10.1.2.3/8" has host bits set: the prefix is 10.0.0.0/8`, false},
		{"no IPv6 address", conf(`, "destinations": ["2001:db8::/32"]`, true), types.ErrInvalidNetworkConfig, `no IPv6 address`, false},
		{"bad rx", conf(`, "rx": "mode percent 90 seed"`, true), types.ErrInvalidNetworkConfig, `"rx" in the network configuration`, false},
		{"no prevResult", conf(`, "tx": "mode pass"`, false), types.ErrInvalidNetworkConfig, "no prevResult: insane is a chained plugin", false},
		{"missing module", conf(`, "tx": "mode percent 50"`, true), types.ErrPluginNotAvailable, "the insane kernel module is not loaded", true},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			if c.unmount {
				clWithoutModule(t)
			}
			code, out := n.cniExec("ADD", pod, c.stdin)
			var te types.Error
			if err := json.Unmarshal(out, &te); err != nil {
				t.Fatalf("exit %d, stdout %q: not a CNI error: %v", code, out, err)
			}
			if code == 0 || te.Code != c.code || !strings.Contains(te.Msg, c.msg) {
				t.Errorf("exit %d, code %d, msg %q; want a non-zero exit, code %d, a message with %q", code, te.Code, te.Msg, c.code, c.msg)
			} else {
				t.Logf("exit %d, code %d: %s", code, te.Code, te.Msg)
			}
			if s := cniState(t, pod); s != ptpLeft {
				t.Errorf("the refused ADD left:\n%s\nptp left:\n%s", s, ptpLeft)
			}
		})
	}
	// STATUS says whether the module can be had.
	status := conf(`, "tx": "mode pass"`, false)
	if code, out := n.cniExec("STATUS", pod, status); code != 0 {
		t.Errorf("STATUS with the module: exit %d, %s", code, out)
	}
	t.Run("status_without_module", func(t *testing.T) {
		clWithoutModule(t)
		code, out := n.cniExec("STATUS", pod, status)
		var te types.Error
		if err := json.Unmarshal(out, &te); err != nil || code == 0 || te.Code != types.ErrPluginNotAvailable {
			t.Errorf("STATUS without the module: exit %d, %s", code, out)
		}
	})
}

// TestCNIVersions runs ADD, CHECK (where the version has it) and DEL
// through libcni at each version the plugin speaks, and VERSION, STATUS
// and GC.
func TestCNIVersions(t *testing.T) {
	n := newCNINode(t)
	ctx := context.Background()
	var info []string
	err := n.do(func() error {
		vi, err := n.cni.GetVersionInfo(ctx, "insane")
		if err == nil {
			info = vi.SupportedVersions()
		}
		return err
	})
	if err != nil || !strings.Contains(strings.Join(info, " "), "1.1.0") || !strings.Contains(strings.Join(info, " "), "0.3.0") {
		t.Errorf("VERSION: %v, %v", info, err)
	}
	for i, v := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		pod := n.newPod(fmt.Sprintf("pod%d", i))
		l := n.list(v, map[string]any{"tx": "mode percent 99"})
		rt := cniRT(pod, nil)
		res, err := n.add(l, rt)
		if err != nil {
			t.Errorf("%s: ADD: %v", v, err)
			continue
		}
		if d := cniDevice(t, pod); d.Policy.String() != "mode percent 99" || len(res.IPs) == 0 {
			t.Errorf("%s: device policy %q, result %v", v, d.Policy, res)
		}
		if v != "0.3.1" {
			if err := n.check(l, rt); err != nil {
				t.Errorf("%s: CHECK: %v", v, err)
			}
		}
		if err := n.del(l, rt); err != nil {
			t.Errorf("%s: DEL: %v", v, err)
		}
		if links := cniLinks(t, pod); len(links) != 0 {
			t.Errorf("%s: after DEL: %v", v, links)
		}
	}
	l := n.list("1.1.0", map[string]any{"tx": "mode pass"})
	if err := n.do(func() error { return n.cni.GetStatusNetworkList(ctx, l) }); err != nil {
		t.Errorf("STATUS: %v", err)
	}
	if err := n.do(func() error { return n.cni.GCNetworkList(ctx, l, &libcni.GCArgs{}) }); err != nil {
		t.Errorf("GC: %v", err)
	}
}

// cniBatch runs ip -batch with the commands of script.
func cniBatch(t *testing.T, script string) {
	t.Helper()
	cmd := exec.Command("ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v: %s", err, out)
	}
}

// cniLeft describes the links other than lo and the routes of any table
// that namespace ns holds, "" when there are none.
// cniFallback are the devices a kernel with the IPIP, SIT, GRE or VTI
// drivers built in (the debug kernel) creates in every network namespace.
var cniFallback = map[string]bool{
	"tunl0": true, "sit0": true, "ip6tnl0": true, "gre0": true, "gretap0": true, "erspan0": true,
	"ip_vti0": true, "ip6_vti0": true, "ip6gre0": true, "ip6gretap0": true, "ip6erspan0": true,
}

// cniLinks returns the names of ns's links other than lo and the fallback
// devices.
func cniLinks(t *testing.T, ns string) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(RunIn(t, ns, "ip", "-br", "link", "show")), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		name, _, _ := strings.Cut(f[0], "@")
		if name != "lo" && !cniFallback[name] {
			names = append(names, f[0])
		}
	}
	return names
}

func cniLeft(t *testing.T, ns string) string {
	t.Helper()
	var left []string
	err := vmnet.Do(ns, func() error {
		c, err := rtnetlink.Dial(nil)
		if err != nil {
			return err
		}
		defer c.Close()
		links, err := c.Link.List()
		if err != nil {
			return err
		}
		for _, l := range links {
			if l.Attributes != nil && l.Attributes.Name != "lo" && !cniFallback[l.Attributes.Name] {
				left = append(left, "link "+l.Attributes.Name)
			}
		}
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			routes, err := c.Route.ListMatch(&rtnetlink.RouteMessage{Family: fam})
			if err != nil {
				return err
			}
			for _, r := range routes {
				if r.Attributes.OutIface != 1 { // lo
					left = append(left, fmt.Sprintf("route %v/%d dev %d", r.Attributes.Dst, r.DstLength, r.Attributes.OutIface))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("netns %s: %v", ns, err)
	}
	return strings.Join(left, ", ")
}

// TestTortureCNIPods adds and deletes 100 pods (300 with INSANE_TORTURE=full)
// in parallel batches of 10; nothing is left behind: no device, route or address in the pods or the node, no IP
// allocation, no reference on the module, and a clean kernel log.
func TestTortureCNIPods(t *testing.T) {
	pods := ttSize(100, 300)
	const batch = 10
	mark := MarkKmsg(t)
	n := newCNINode(t)
	// Room for 1,021 pods.
	n.subnet, n.gw = "10.78.0.0/22", "10.78.0.1"
	nodeBefore := cniState(t, n.ns)
	LoadModule(t) // run alone, no test before has loaded it
	refBefore := Sh(t, "cat /sys/module/insane/refcnt")
	l := n.list("1.1.0", map[string]any{"tx": "mode percent 75 seed 1", "capabilities": map[string]bool{cniAnnotations: true}})
	// The pods' namespaces, made and removed by one ip -batch each.
	var names []string
	var add, del strings.Builder
	for i := 0; i < pods; i++ {
		names = append(names, fmt.Sprintf("many%d", i))
		fmt.Fprintf(&add, "netns add %s\n", names[i])
		fmt.Fprintf(&del, "netns del %s\n", names[i])
	}
	cniBatch(t, add.String())
	t.Cleanup(func() { cniBatch(t, del.String()) })
	start := time.Now()
	runBatches := func(what string, fn func(i int) error) {
		for lo := 0; lo < pods; lo += batch {
			var wg sync.WaitGroup
			errs := make([]error, pods)
			for i := lo; i < lo+batch && i < pods; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					errs[i] = fn(i)
				}(i)
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("%s pod %d: %v", what, i, err)
				}
			}
		}
	}
	ann := func(i int) map[string]string {
		return map[string]string{"insane.dev/tx": fmt.Sprintf("mode percent %d", 50+i%50)}
	}
	runBatches("ADD", func(i int) error { _, err := n.add(l, cniRT(names[i], ann(i))); return err })
	added := time.Since(start)
	for i, pod := range names {
		d := cniDevice(t, pod)
		if want := fmt.Sprintf("mode percent %d", 50+i%50); d.Policy.String() != want {
			t.Errorf("pod %d: policy %q, want %q", i, d.Policy, want)
		}
	}
	// lo is left out, and so are the fallback tunnels of a kernel with
	// IPIP or SIT built in (the debug kernel's).
	veths := len(cniLinks(t, n.ns))
	runBatches("DEL", func(i int) error { return n.del(l, cniRT(names[i], ann(i))) })
	t.Logf("%d pods in batches of %d: ADD %v, DEL %v; the node had %d links", pods, batch, added.Round(time.Millisecond),
		(time.Since(start) - added).Round(time.Millisecond), veths)
	if veths != pods {
		t.Errorf("the node had %d links besides lo with %d pods up, want %d", veths, pods, pods)
	}
	for i, pod := range names {
		if left := cniLeft(t, pod); left != "" {
			t.Errorf("pod %d after DEL: %s", i, left)
		}
	}
	if s := cniState(t, n.ns); s != nodeBefore {
		t.Errorf("the node after DEL:\n%s\nbefore:\n%s", s, nodeBefore)
	}
	var left []string
	err := filepath.Walk(n.ipam, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.HasPrefix(info.Name(), "last_reserved_ip") && info.Name() != "lock" {
			left = append(left, p)
		}
		return err
	})
	if err != nil || len(left) > 0 {
		sort.Strings(left)
		t.Errorf("host-local allocations left: %v %v", left, err)
	}
	if ref := Sh(t, "cat /sys/module/insane/refcnt"); ref != refBefore {
		t.Errorf("module references: %s before, %s after", strings.TrimSpace(refBefore), strings.TrimSpace(ref))
	}
	mark.Check(t)
	if !t.Failed() {
		Figure(t, "pods added and deleted", uint64(pods))
	}
}

// TestCNIService sends service traffic through the plugin's setup: an
// OUTPUT DNAT in a pod, as kube-proxy programs a service address, to
// another pod reached through the insane device; and the node's OUTPUT
// DNAT to a pod, whose replies leave through its insane device.
func TestCNIService(t *testing.T) {
	n := newCNINode(t)
	l := n.list("1.1.0", map[string]any{"tx": "mode pass"})
	client, server := n.newPod("client"), n.newPod("server")
	n.mustAdd(l, cniRT(client, nil))
	serverIP := podIP(t, n.mustAdd(l, cniRT(server, nil)))

	const svc = "198.51.100.7"
	nft := func(ns, dst string) {
		RunIn(t, ns, "nft", "add", "table", "ip", "svc")
		RunIn(t, ns, "nft", "add", "chain", "ip", "svc", "out", "{ type nat hook output priority -100; }")
		RunIn(t, ns, "nft", "add", "rule", "ip", "svc", "out", "ip", "daddr", svc, "dnat", "to", dst)
	}
	nft(client, serverIP)
	const count = 500
	r, err := vmnet.Listen(server, serverIP+":0", 77)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := vmnet.Send(client, fmt.Sprintf("%s:%d", svc, r.Addr().Port), vmnet.SendOptions{Count: count, Run: 77})
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	r.Wait(count, 500*time.Millisecond, 10*time.Second)
	got := r.Close()
	d := cniDevice(t, client)
	if sent.Errors != 0 || len(got.Seqs) != count || d.Stats.RelayedPackets < count {
		t.Errorf("client to service %s (DNAT to %s): %d of %d arrived, %d refused; the client's device relayed %d",
			svc, serverIP, len(got.Seqs), count, sent.Errors, d.Stats.RelayedPackets)
	}

	// The node reaches the server pod by a service address (routed, as
	// a node routes it, before OUTPUT's DNAT); the echo replies leave the
	// pod through its insane device.
	RunIn(t, n.ns, "ip", "link", "add", "svc0", "type", "dummy")
	RunIn(t, n.ns, "ip", "link", "set", "svc0", "up")
	RunIn(t, n.ns, "ip", "route", "add", "198.51.100.0/24", "dev", "svc0")
	nft(n.ns, serverIP)
	before := cniDevice(t, server).Stats.RelayedPackets
	out, err := TryRunIn(n.ns, "ping", "-c", "5", "-W", "2", svc)
	if err != nil {
		t.Errorf("ping the service from the node: %v", err)
	}
	replies := cniDevice(t, server).Stats.RelayedPackets - before
	if !strings.Contains(out, "5 packets received") || replies < 5 {
		t.Errorf("ping %s: the server's device relayed %d packets:\n%s", svc, replies, out)
	}
}
