package main

// The receive direction (rx): a policy for the packets that the pod's
// interface receives from sources routed through the insane device (issue
// 15). The device takes them over from eth0 through eth0's rx_handler,
// which a pod's veth leaves free.

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/insane-netdev/insane/go/genl"
)

// applyRx sets the receive policy of the insane device called name.
func applyRx(c *genl.Client, name string, rx *policySetting) error {
	if rx == nil {
		return nil
	}
	p := rx.policy
	if err := c.ConfigureDevice(name, genl.Config{RxPolicy: &p}); err != nil {
		return kernelError(fmt.Sprintf("set the rx policy of %s (%s)", name, rx.from), err)
	}
	return nil
}

// verifyRx checks the device's receive policy for CHECK.
func verifyRx(d *genl.Device, rx *policySetting) error {
	switch {
	case rx == nil && d.RxPolicy != nil:
		return cniErrorf(types.ErrInternal, "insane: CHECK: %s has rx policy %q, but the configuration sets none", d.Name, d.RxPolicy)
	case rx == nil:
		return nil
	case d.RxPolicy == nil:
		return cniErrorf(types.ErrInternal, "insane: CHECK: %s has no rx policy, but %s says %q", d.Name, rx.from, rx.policy.String())
	case d.RxPolicy.String() != rx.policy.String():
		return cniErrorf(types.ErrInternal, "insane: CHECK: %s has rx policy %q, but %s says %q", d.Name, d.RxPolicy, rx.from, rx.policy.String())
	}
	return nil
}
