package main

// The receive direction (rx): a policy for the packets the pod's interface
// receives. The kernel module and the Go client of this version act on
// transmitted packets only (issue 15 adds the receive direction), so a
// configuration or an annotation that asks for rx is refused before
// anything is changed. This file is the one place to wire it once genl
// has it: rxSupported returns nil, applyRx sets the policy on the device
// and verifyRx compares it, and nothing else in the plugin changes.

import (
	"github.com/containernetworking/cni/pkg/types"

	"github.com/insane-netdev/insane/go/genl"
)

// rxSupported tells whether this build can apply an rx policy.
func rxSupported(rx policySetting) error {
	return cniErrorf(types.ErrUnsupportedField,
		"insane: %s (%q): the receive direction is not available in this version of insane (the module and client act on transmitted packets only); leave rx out",
		rx.from, rx.policy.String())
}

// applyRx sets the receive policy of the insane device called name. It is
// called only with a policy that rxSupported accepted.
func applyRx(_ *genl.Client, _ string, rx *policySetting) error {
	if rx == nil {
		return nil
	}
	return rxSupported(*rx)
}

// verifyRx checks the device's receive policy for CHECK.
func verifyRx(_ *genl.Device, rx *policySetting) error {
	if rx == nil {
		return nil
	}
	return rxSupported(*rx)
}
