package main

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/insane-netdev/insane/go/genl"
)

// deviceName is the name of the insane device ADD creates on the pod's
// interface ifName: "insane-" and the interface's name, or, where that
// would be too long for a device name, "ins" and a hash of it. DEL and
// CHECK find the device by this name.
func deviceName(ifName string) string {
	if n := "insane-" + ifName; len(n) < unix.IFNAMSIZ {
		return n
	}
	h := fnv.New32a()
	h.Write([]byte(ifName))
	return fmt.Sprintf("ins%08x", h.Sum32())
}

// A pod is the pod's network namespace, open, with a generic netlink and
// an rtnetlink connection in it.
type pod struct {
	path string
	ns   ns.NetNS
	gc   *genl.Client
	rt   *rtnetlink.Conn
}

func openPod(path string) (*pod, error) {
	netns, err := ns.GetNS(path)
	if err != nil {
		return nil, err
	}
	p := &pod{path: path, ns: netns}
	fd := int(netns.Fd())
	if p.gc, err = genl.Dial(&genl.Options{NetNS: fd}); err != nil {
		p.close()
		return nil, err
	}
	if p.rt, err = rtnetlink.Dial(&netlink.Config{NetNS: fd, Strict: true}); err != nil {
		p.close()
		return nil, fmt.Errorf("dial rtnetlink: %w", err)
	}
	if err = p.rt.SetOption(netlink.ExtendedAcknowledge, true); err != nil {
		p.close()
		return nil, fmt.Errorf("dial rtnetlink: %w", err)
	}
	return p, nil
}

func (p *pod) close() {
	if p.rt != nil {
		p.rt.Close()
	}
	if p.gc != nil {
		p.gc.Close()
	}
	p.ns.Close()
}

// link returns the pod's link called name.
func (p *pod) link(name string) (*rtnetlink.LinkMessage, error) {
	links, err := p.rt.Link.List()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", netlinkError(err))
	}
	for i := range links {
		if links[i].Attributes != nil && links[i].Attributes.Name == name {
			return &links[i], nil
		}
	}
	return nil, os.ErrNotExist
}

func (p *pod) setUp(index uint32) error {
	err := p.rt.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: index, Flags: unix.IFF_UP, Change: unix.IFF_UP})
	if err != nil {
		return fmt.Errorf("set the insane device up: %w", netlinkError(err))
	}
	return nil
}

// openPodError is the CNI error for a pod's netns that cannot be used.
func openPodError(path string, err error) error {
	return cniErrorf(types.ErrInvalidNetNS, "insane: the pod's network namespace %q: %v", path, err)
}

// kernelError is the CNI error for a refusal of the kernel.
func kernelError(what string, err error) error {
	switch {
	case errors.Is(err, genl.ErrNotLoaded):
		return cniErrorf(types.ErrPluginNotAvailable,
			"insane: %s: the insane kernel module is not loaded and could not be loaded; install it (DKMS, see the insane README) and run modprobe insane", what)
	case errors.Is(err, os.ErrPermission):
		return cniErrorf(types.ErrInternal, "insane: %s: %v (the plugin needs CAP_NET_ADMIN and CAP_SYS_ADMIN)", what, err)
	}
	return cniErrorf(types.ErrInternal, "insane: %s: %v", what, err)
}

// target is what ADD and CHECK work on: the pod's interface from
// prevResult and the routes' destinations for its address families.
type target struct {
	res   *current.Result
	src4  netip.Addr
	dests []netip.Prefix
}

func newTarget(cfg *config, ifName string) (*target, error) {
	res, err := current.NewResultFromResult(cfg.conf.PrevResult)
	if err != nil {
		return nil, cniErrorf(types.ErrDecodingFailure, "insane: prevResult: %v", err)
	}
	_, addrs, err := podInterface(res, ifName)
	if err != nil {
		return nil, err
	}
	t := &target{res: res}
	var has4, has6 bool
	for _, a := range addrs {
		if a.Is4() {
			if !has4 {
				t.src4 = a
			}
			has4 = true
		} else {
			has6 = true
		}
	}
	for _, d := range cfg.destinations {
		if d.Addr().Is4() && has4 || !d.Addr().Is4() && has6 {
			t.dests = append(t.dests, d)
			continue
		}
		if !cfg.defaultDestinations {
			fam := "IPv6"
			if d.Addr().Is4() {
				fam = "IPv4"
			}
			return nil, cniErrorf(types.ErrInvalidNetworkConfig,
				`insane: "destinations": %s is %s, but prevResult gives the pod's interface %q no %s address`, d, fam, ifName, fam)
		}
	}
	return t, nil
}

// openCall is where ADD and CHECK start: the configuration, its target,
// the pod's namespace (to be closed by the caller) and the pod's interface,
// whose absence is an error of class missingClass, worded by missingFormat
// (with the interface's name, the namespace and the error).
func openCall(args *skel.CmdArgs, missingClass uint, missingFormat string) (*config, *target, *pod, *rtnetlink.LinkMessage, error) {
	cfg, err := parseConfig(args.StdinData, true)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	t, err := newTarget(cfg, args.IfName)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	p, err := openPod(args.Netns)
	if err != nil {
		return nil, nil, nil, nil, openPodError(args.Netns, err)
	}
	podLink, err := p.link(args.IfName)
	if err != nil {
		p.close()
		return nil, nil, nil, nil, cniErrorf(missingClass, missingFormat, args.IfName, args.Netns, err)
	}
	return cfg, t, p, podLink, nil
}

func cmdAdd(args *skel.CmdArgs) error {
	cfg, t, p, podLink, err := openCall(args, types.ErrInvalidNetworkConfig,
		"insane: the pod's interface %q from prevResult is not in %s: %v")
	if err != nil {
		return err
	}
	defer p.close()
	name := deviceName(args.IfName)
	tx := cfg.tx.policy
	if err := p.gc.AddLink(name, args.IfName, &tx); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return cniErrorf(types.ErrInternal, "insane: a device called %s exists already in %s: ADD was run twice, or the name is taken", name, args.Netns)
		}
		return kernelError("create the insane device "+name, err)
	}
	// From here on, a failure deletes the device, and with it every route
	// through it: nothing of ADD's is left behind.
	fail := func(err error) error {
		if derr := p.gc.DeleteLink(name); derr != nil && !errors.Is(derr, os.ErrNotExist) {
			var ce *types.Error
			if errors.As(err, &ce) {
				ce.Details = fmt.Sprintf("undoing ADD: deleting %s: %v", name, derr)
			}
		}
		return err
	}
	if err := applyRx(p.gc, name, cfg.rx); err != nil {
		return fail(err)
	}
	insLink, err := p.link(name)
	if err != nil {
		return fail(kernelError("find the new device "+name, err))
	}
	if err := p.setUp(insLink.Index); err != nil {
		return fail(kernelError(name, err))
	}
	table, err := listMain(p.rt)
	if err != nil {
		return fail(kernelError("routes", err))
	}
	for _, r := range planRoutes(t.dests, table, podLink.Index, t.src4) {
		if err := addRoute(p.rt, r, insLink.Index); err != nil {
			return fail(kernelError("routes through "+name, err))
		}
	}
	t.res.Interfaces = append(t.res.Interfaces, &current.Interface{Name: name, Sandbox: args.Netns})
	return types.PrintResult(t.res, cfg.conf.CNIVersion)
}

// cmdDel deletes the insane device ADD made, and so every route through
// it. It needs nothing from the configuration but what skel checks, so
// that a configuration changed since ADD never stops a pod's teardown, and
// it succeeds when the netns or the device is gone already. A device of
// that name that is not an insane device on the pod's interface is not
// ADD's and is left alone.
func cmdDel(args *skel.CmdArgs) error {
	if args.Netns == "" {
		return nil
	}
	p, err := openPod(args.Netns)
	if err != nil {
		var notExist ns.NSPathNotExistErr
		var notNS ns.NSPathNotNSErr
		if errors.As(err, &notExist) || errors.As(err, &notNS) {
			return nil
		}
		return openPodError(args.Netns, err)
	}
	defer p.close()
	name := deviceName(args.IfName)
	d, err := p.gc.Device(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil // gone, not an insane device, or no module: none of ADD's
	}
	if err != nil {
		return kernelError("find "+name, err)
	}
	if d.Attached() && d.LowerName != args.IfName {
		return nil
	}
	if err := p.gc.DeleteLink(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return kernelError("delete "+name, err)
	}
	return nil
}

// cmdCheck verifies that the device ADD made is there, on the pod's
// interface and up, with the policies of the configuration, and that every
// route ADD would make is there through it.
func cmdCheck(args *skel.CmdArgs) error {
	cfg, t, p, podLink, err := openCall(args, types.ErrInternal, "insane: CHECK: the pod's interface %q is not in %s: %v")
	if err != nil {
		return err
	}
	defer p.close()
	name := deviceName(args.IfName)
	d, err := p.gc.Device(name)
	if errors.Is(err, os.ErrNotExist) {
		return cniErrorf(types.ErrInternal, "insane: CHECK: the insane device %s is missing from %s (deleted since ADD?)", name, args.Netns)
	}
	if err != nil {
		return kernelError("CHECK: "+name, err)
	}
	if d.LowerName != args.IfName {
		lower := "no lower device"
		if d.Attached() {
			lower = "lower " + d.LowerName
		}
		return cniErrorf(types.ErrInternal, "insane: CHECK: %s has %s, not the pod's interface %s", name, lower, args.IfName)
	}
	if got, want := d.Policy.String(), cfg.tx.policy.String(); got != want {
		return cniErrorf(types.ErrInternal, "insane: CHECK: %s has tx policy %q, but %s says %q", name, got, cfg.tx.from, want)
	}
	if err := verifyRx(d, cfg.rx); err != nil {
		return err
	}
	insLink, err := p.link(name)
	if err != nil {
		return kernelError("CHECK: "+name, err)
	}
	if insLink.Flags&unix.IFF_UP == 0 {
		return cniErrorf(types.ErrInternal, "insane: CHECK: %s is down", name)
	}
	table, err := listMain(p.rt)
	if err != nil {
		return kernelError("CHECK: routes", err)
	}
	if missing := missingRoutes(table, planRoutes(t.dests, table, podLink.Index, t.src4), insLink.Index); len(missing) > 0 {
		var s []string
		for _, r := range missing {
			s = append(s, r.String())
		}
		return cniErrorf(types.ErrInternal, "insane: CHECK: routes missing through %s: %s", name, strings.Join(s, ", "))
	}
	return nil
}

// cmdStatus reports whether ADD can work: the configuration is valid and
// the kernel module is there (a generic netlink lookup of the family loads
// it if it is installed).
func cmdStatus(args *skel.CmdArgs) error {
	if _, err := parseConfig(args.StdinData, false); err != nil {
		return err
	}
	c, err := genl.Dial(nil)
	if err != nil {
		return kernelError("STATUS", err)
	}
	defer c.Close()
	if _, err := c.Family(); err != nil {
		if errors.Is(err, genl.ErrNotLoaded) {
			return kernelError("STATUS", err)
		}
		return cniErrorf(types.ErrPluginNotAvailable, "insane: STATUS: %v", err)
	}
	return nil
}

// cmdGC has nothing to collect: everything ADD makes is in the pod's
// network namespace, on the pod's interface, and goes with it.
func cmdGC(args *skel.CmdArgs) error {
	_, err := decodeConf(args.StdinData)
	return err
}
