package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/insane-netdev/insane/go/genl"
)

// dispatch runs the plugin's main dispatcher (skel, as main runs it) with
// the CNI environment and stdin, and returns what it printed and its error.
func dispatch(t *testing.T, env map[string]string, stdin []byte) ([]byte, *types.Error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		inW.Write(stdin)
		inW.Close()
	}()
	oldIn, oldOut := os.Stdin, os.Stdout
	os.Stdin, os.Stdout = inR, outW
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(outR)
		done <- b
	}()
	e := skel.PluginMainFuncsWithError(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, Status: cmdStatus, GC: cmdGC}, supported, about)
	os.Stdin, os.Stdout = oldIn, oldOut
	outW.Close()
	inR.Close()
	return <-done, e
}

func cniEnv(command, netns string) map[string]string {
	return map[string]string{
		"CNI_COMMAND": command, "CNI_CONTAINERID": "ctr1", "CNI_NETNS": netns,
		"CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin",
	}
}

func TestVersion(t *testing.T) {
	out, e := dispatch(t, map[string]string{"CNI_COMMAND": "VERSION"}, []byte(`{"cniVersion": "1.1.0"}`))
	if e != nil {
		t.Fatal(e)
	}
	var v struct {
		Supported []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if strings.Join(v.Supported, " ") != "0.3.0 0.3.1 0.4.0 1.0.0 1.1.0" {
		t.Errorf("supported versions %v", v.Supported)
	}
}

func TestDispatchErrors(t *testing.T) {
	// A version without chaining.
	_, e := dispatch(t, cniEnv("ADD", "/var/run/netns/nosuch"), netconf("0.2.0", "", true))
	if e == nil || e.Code != types.ErrIncompatibleCNIVersion {
		t.Errorf("ADD at 0.2.0: %v", e)
	}
	_, e = dispatch(t, cniEnv("ADD", "/var/run/netns/nosuch"), netconf("1.1.0", `, "txx": "mode pass"`, true))
	if e == nil || e.Code != types.ErrUnsupportedField || !strings.Contains(e.Msg, `"txx"`) {
		t.Errorf("ADD with an unknown key: %v", e)
	}
	_, e = dispatch(t, cniEnv("ADD", "/var/run/netns/nosuch"), netconf("1.1.0", `, "tx": "mode pass"`, true))
	if e == nil || e.Code != types.ErrInvalidNetNS || !strings.Contains(e.Msg, "/var/run/netns/nosuch") {
		t.Errorf("ADD in a missing netns: %v", e)
	}
	_, e = dispatch(t, cniEnv("CHECK", "/var/run/netns/nosuch"), netconf("1.1.0", `, "tx": "mode pass"`, false))
	if e == nil || e.Code != types.ErrInvalidNetworkConfig {
		t.Errorf("CHECK without prevResult: %v", e)
	}
}

// DEL succeeds when there is nothing to delete: no netns, or a netns that
// is gone.
func TestDelGone(t *testing.T) {
	for _, netns := range []string{"", "/var/run/netns/nosuch-insane-test"} {
		args := &skel.CmdArgs{ContainerID: "ctr1", Netns: netns, IfName: "eth0", StdinData: netconf("1.1.0", `, "tx": "mode pass"`, true)}
		if err := testutils.CmdDelWithArgs(args, func() error { return cmdDel(args) }); err != nil {
			t.Errorf("DEL with netns %q: %v", netns, err)
		}
	}
	// A configuration edited since ADD does not stop DEL.
	args := &skel.CmdArgs{ContainerID: "ctr1", Netns: "/var/run/netns/nosuch-insane-test", IfName: "eth0", StdinData: netconf("1.1.0", `, "tx": "mode bogus"`, false)}
	if err := testutils.CmdDelWithArgs(args, func() error { return cmdDel(args) }); err != nil {
		t.Errorf("DEL with a bad configuration: %v", err)
	}
}

// A netns that exists but has no insane device: DEL has nothing to do, and
// CHECK says the device is missing. It needs the right to create a netns.
func TestDelCheckFreshNetns(t *testing.T) {
	netns, err := testutils.NewNS()
	if err != nil {
		t.Skipf("cannot create a network namespace here: %v", err)
	}
	defer func() {
		netns.Close()
		testutils.UnmountNS(netns)
	}()
	args := &skel.CmdArgs{ContainerID: "ctr1", Netns: netns.Path(), IfName: "eth0", StdinData: netconf("1.1.0", `, "tx": "mode pass"`, true)}
	if err := testutils.CmdDelWithArgs(args, func() error { return cmdDel(args) }); err != nil {
		t.Errorf("DEL in a netns without the device: %v", err)
	}
	err = testutils.CmdCheckWithArgs(args, func() error { return cmdCheck(args) })
	var te *types.Error
	if !errors.As(err, &te) || !strings.Contains(te.Msg, `the pod's interface "eth0" is not in`) {
		t.Errorf("CHECK in a netns without eth0: %v", err)
	}
	_, _, err = testutils.CmdAddWithArgs(args, func() error { return cmdAdd(args) })
	if !errors.As(err, &te) || te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, `the pod's interface "eth0" from prevResult is not in`) {
		t.Errorf("ADD in a netns without eth0: %v", err)
	}
}

// STATUS reports the module; on a host without it (the build machine) the
// answer is code 50.
func TestStatus(t *testing.T) {
	c, err := genl.Dial(nil)
	if err != nil {
		t.Skipf("no generic netlink here: %v", err)
	}
	_, famErr := c.Family()
	c.Close()
	args := &skel.CmdArgs{StdinData: netconf("1.1.0", `, "tx": "mode pass"`, false)}
	err = testutils.CmdStatus(func() error { return cmdStatus(args) })
	switch {
	case famErr == nil:
		if err != nil {
			t.Errorf("STATUS with the module loaded: %v", err)
		}
	case errors.Is(famErr, genl.ErrNotLoaded):
		var te *types.Error
		if !errors.As(err, &te) || te.Code != types.ErrPluginNotAvailable || !strings.Contains(te.Msg, "modprobe insane") {
			t.Errorf("STATUS without the module: %v", err)
		}
	default:
		t.Skipf("generic netlink: %v", famErr)
	}
	args = &skel.CmdArgs{StdinData: netconf("1.1.0", `, "tx": "mode nope"`, false)}
	if err := testutils.CmdStatus(func() error { return cmdStatus(args) }); err == nil {
		t.Error("STATUS accepted a bad policy")
	}
}

func TestGC(t *testing.T) {
	args := &skel.CmdArgs{StdinData: []byte(`{"cniVersion": "1.1.0", "name": "podnet", "type": "insane", "tx": "mode pass",
		"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}], "cni.dev/attachments": []}`)}
	if err := cmdGC(args); err != nil {
		t.Errorf("GC: %v", err)
	}
}
