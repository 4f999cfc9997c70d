package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/internal/policyparse"
)

// The keys of the plugin's network configuration, the runtime capability
// it takes and the pod annotations that override tx and rx.
const (
	keyTx           = "tx"
	keyRx           = "rx"
	keyDestinations = "destinations"

	capAnnotations = "io.kubernetes.cri.pod-annotations"

	annotationPrefix = "insane.dev/"
	annotationTx     = annotationPrefix + "tx"
	annotationRx     = annotationPrefix + "rx"
)

// specKeys are the keys the CNI specification (and its conventions: args,
// runtimeConfig, GC's valid attachments) puts in a plugin's configuration.
// Everything else but the plugin's own keys is refused.
var specKeys = map[string]bool{
	"cniVersion": true, "name": true, "type": true, "capabilities": true,
	"prevResult": true, "runtimeConfig": true, "args": true,
	"cni.dev/valid-attachments": true, "cni.dev/attachments": true,
}

var ownKeys = map[string]bool{keyTx: true, keyRx: true, keyDestinations: true}

// netConf is the plugin's network configuration as the runtime hands it
// over: the list's name and version, prevResult from the main plugin, and
// the runtime configuration of the capabilities the list enables.
type netConf struct {
	types.PluginConf
	Tx            *string  `json:"tx,omitempty"`
	Rx            *string  `json:"rx,omitempty"`
	Destinations  []string `json:"destinations,omitempty"`
	RuntimeConfig struct {
		PodAnnotations map[string]string `json:"io.kubernetes.cri.pod-annotations,omitempty"`
	} `json:"runtimeConfig"`
}

// A policySetting is a policy and where it was read from, for messages.
type policySetting struct {
	policy genl.Policy
	from   string // `"tx" in the network configuration`, `annotation insane.dev/tx`
}

// config is what ADD and CHECK apply: the configuration with the pod's
// annotations applied.
type config struct {
	conf *netConf
	// tx is the transmit policy; pass when neither the configuration nor
	// an annotation gives one.
	tx policySetting
	// rx is the receive policy, nil when none is asked for.
	rx *policySetting
	// destinations are the prefixes routed through the insane device.
	destinations []netip.Prefix
	// defaultDestinations is true when the configuration gives none: a
	// family the pod has no address in is then left alone.
	defaultDestinations bool
}

// defaultDestinations is everything, in both families.
var defaultDestinations = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

func cniErrorf(code uint, format string, a ...any) *types.Error {
	return types.NewError(code, fmt.Sprintf(format, a...), "")
}

// decodeConf reads the JSON of stdin and refuses keys that neither the
// specification nor the plugin knows. It parses prevResult when there is
// one.
func decodeConf(stdin []byte) (*netConf, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(stdin, &raw); err != nil {
		return nil, cniErrorf(types.ErrDecodingFailure, "insane: the network configuration is not a JSON object: %v", err)
	}
	var unknown []string
	for k := range raw {
		if !specKeys[k] && !ownKeys[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, cniErrorf(types.ErrUnsupportedField, "insane: unknown key %s in the network configuration (it takes tx, rx, destinations and capabilities %q)",
			quoteKeys(raw, unknown), capAnnotations)
	}
	conf := &netConf{}
	dec := json.NewDecoder(bytes.NewReader(stdin))
	if err := dec.Decode(conf); err != nil {
		return nil, cniErrorf(types.ErrDecodingFailure, "insane: reading the network configuration: %v", err)
	}
	if rc, ok := raw["runtimeConfig"]; ok {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(rc, &m); err != nil {
			return nil, cniErrorf(types.ErrDecodingFailure, "insane: runtimeConfig is not a JSON object: %v", err)
		}
		for k := range m {
			if k != capAnnotations {
				return nil, cniErrorf(types.ErrUnsupportedField, "insane: unknown runtime configuration %q (the plugin takes only %q)", k, capAnnotations)
			}
		}
	}
	for k := range conf.Capabilities {
		if k != capAnnotations {
			return nil, cniErrorf(types.ErrUnsupportedField, "insane: unknown capability %q (the plugin takes only %q)", k, capAnnotations)
		}
	}
	if conf.RawPrevResult != nil {
		if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
			return nil, cniErrorf(types.ErrDecodingFailure, "insane: %v", err)
		}
	}
	return conf, nil
}

// quoteKeys writes each key with its value, as the specification asks of
// an error about an unsupported field.
func quoteKeys(raw map[string]json.RawMessage, keys []string) string {
	var parts []string
	for _, k := range keys {
		v := string(raw[k])
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		parts = append(parts, fmt.Sprintf("%q (value %s)", k, v))
	}
	return strings.Join(parts, ", ")
}

// parseConfig reads and checks the configuration that ADD, CHECK and STATUS
// take. needPrev asks for prevResult (ADD and CHECK).
func parseConfig(stdin []byte, needPrev bool) (*config, error) {
	conf, err := decodeConf(stdin)
	if err != nil {
		return nil, err
	}
	c := &config{conf: conf, tx: policySetting{policy: genl.Pass(), from: "the default"}}
	if conf.Tx != nil {
		if c.tx, err = readPolicy(*conf.Tx, `"tx" in the network configuration`, false); err != nil {
			return nil, err
		}
	}
	if conf.Rx != nil {
		p, err := readPolicy(*conf.Rx, `"rx" in the network configuration`, true)
		if err != nil {
			return nil, err
		}
		c.rx = &p
	}
	// The pod's annotations override the configuration. Other
	// annotations are the pod's business; a key of insane's own that is
	// not known is refused, so that a typo does not go unnoticed.
	for k, v := range conf.RuntimeConfig.PodAnnotations {
		if !strings.HasPrefix(k, annotationPrefix) {
			continue
		}
		switch k {
		case annotationTx:
			if c.tx, err = readPolicy(v, "annotation "+k, false); err != nil {
				return nil, err
			}
		case annotationRx:
			p, err := readPolicy(v, "annotation "+k, true)
			if err != nil {
				return nil, err
			}
			c.rx = &p
		default:
			return nil, cniErrorf(types.ErrUnsupportedField, "insane: unknown pod annotation %q (value %q): the plugin reads %s and %s", k, v, annotationTx, annotationRx)
		}
	}
	if conf.Destinations == nil {
		c.destinations = defaultDestinations
		c.defaultDestinations = true
	} else if c.destinations, err = parseDestinations(conf.Destinations); err != nil {
		return nil, err
	}
	if needPrev && conf.PrevResult == nil {
		return nil, cniErrorf(types.ErrInvalidNetworkConfig,
			"insane: no prevResult: insane is a chained plugin, to be listed after a main plugin (ptp, bridge, ...) that creates the pod's interface")
	}
	return c, nil
}

// readPolicy reads the policy s of the receive direction if rx, else of
// the transmit one; from says where s was found.
func readPolicy(s, from string, rx bool) (policySetting, error) {
	p, err := policyparse.ParseString(s)
	if err != nil {
		return policySetting{}, cniErrorf(types.ErrInvalidNetworkConfig, "insane: %s: %q: %v", from, s, err)
	}
	if rx && p.Carrier {
		// The grammar cannot tell the direction: the client would refuse
		// it only once the device exists.
		return policySetting{}, cniErrorf(types.ErrInvalidNetworkConfig,
			"insane: %s: %q: carrier goes with the transmit policy only", from, s)
	}
	return policySetting{policy: p, from: from}, nil
}

func parseDestinations(ds []string) ([]netip.Prefix, error) {
	if len(ds) == 0 {
		return nil, cniErrorf(types.ErrInvalidNetworkConfig, `insane: "destinations" is empty: leave it out to route everything through the insane device`)
	}
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	for _, s := range ds {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, cniErrorf(types.ErrInvalidNetworkConfig, `insane: "destinations": %q is not a prefix (such as 10.0.0.0/8 or 2001:db8::/32): %v`, s, err)
		}
		if p.Addr().Is4In6() {
			return nil, cniErrorf(types.ErrInvalidNetworkConfig, `insane: "destinations": %q is an IPv4-mapped IPv6 prefix: write it as IPv4`, s)
		}
		if p.Masked() != p {
			return nil, cniErrorf(types.ErrInvalidNetworkConfig, `insane: "destinations": %q has host bits set: the prefix is %s`, s, p.Masked())
		}
		if seen[p] {
			return nil, cniErrorf(types.ErrInvalidNetworkConfig, `insane: "destinations": %s given twice`, p)
		}
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

// podInterface finds the pod's interface (CNI_IFNAME, in the sandbox) in
// prevResult, with its addresses.
func podInterface(res *current.Result, ifName string) (int, []netip.Addr, error) {
	idx := -1
	for i, in := range res.Interfaces {
		if in.Name == ifName && in.Sandbox != "" {
			idx = i
			break
		}
	}
	if idx < 0 {
		return -1, nil, cniErrorf(types.ErrInvalidNetworkConfig,
			"insane: prevResult has no interface %q in the pod's sandbox: the main plugin before insane must create it", ifName)
	}
	var addrs []netip.Addr
	for _, ip := range res.IPs {
		if ip.Interface == nil || *ip.Interface != idx {
			continue
		}
		if a, ok := netip.AddrFromSlice(ip.Address.IP); ok {
			addrs = append(addrs, a.Unmap())
		}
	}
	return idx, addrs, nil
}
