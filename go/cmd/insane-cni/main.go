// Command insane-cni is a chained CNI plugin, of type "insane", that gives
// a pod an insane device, the fault-injecting network interface, on the
// interface the main plugin (ptp, bridge, ...) made, and routes the
// configured destinations through it:
//
//	{ "type": "insane", "tx": "mode percent 80 seed 42",
//	  "destinations": ["0.0.0.0/0", "::/0"],
//	  "capabilities": { "io.kubernetes.cri.pod-annotations": true } }
//
// tx is a policy in the grammar of the insane CLI; the pod annotation
// insane.dev/tx overrides it. It is installed into the CNI bin directory as
// "insane" (make install-cni). See docs/cni.md.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
)

// supported are the CNI versions the plugin speaks: every version with
// chaining (prevResult), 0.3.0 on.
var supported = version.VersionsStartingFrom("0.3.0")

const about = "CNI plugin insane: a fault-injecting insane device on a pod's interface (chained)"

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    cmdAdd,
		Del:    cmdDel,
		Check:  cmdCheck,
		Status: cmdStatus,
		GC:     cmdGC,
	}, supported, about)
}
