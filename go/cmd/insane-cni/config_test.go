package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/insane-netdev/insane/go/genl"
)

// prevResult is what ptp returns for a pod with one IPv4 address.
const prevResult = `{"cniVersion": "1.1.0",
	"interfaces": [{"name": "veth1234", "mac": "aa:bb:cc:dd:ee:01"}, {"name": "eth0", "mac": "aa:bb:cc:dd:ee:02", "sandbox": "/var/run/netns/pod"}],
	"ips": [{"address": "10.77.1.5/24", "gateway": "10.77.1.1", "interface": 1}],
	"routes": [{"dst": "0.0.0.0/0"}]}`

// netconf writes a configuration with the given keys after type.
func netconf(version, keys string, prev bool) []byte {
	s := fmt.Sprintf(`{"cniVersion": %q, "name": "podnet", "type": "insane"%s`, version, keys)
	if prev {
		s += `, "prevResult": ` + prevResult
	}
	return []byte(s + "}")
}

func cniErr(t *testing.T, err error) *types.Error {
	t.Helper()
	var te *types.Error
	if !errors.As(err, &te) {
		t.Fatalf("%v (%T) is not a CNI error", err, err)
	}
	return te
}

func TestParseConfig(t *testing.T) {
	cfg, err := parseConfig(netconf("1.1.0", `, "tx": "mode percent 80 seed 42", "destinations": ["10.0.0.0/8", "2001:db8::/32"]`, true), true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.tx.policy.String() != "mode percent 80 seed 42" || cfg.rx != nil || cfg.defaultDestinations {
		t.Errorf("tx %q, rx %v, default destinations %v", cfg.tx.policy, cfg.rx, cfg.defaultDestinations)
	}
	if fmt.Sprint(cfg.destinations) != "[10.0.0.0/8 2001:db8::/32]" {
		t.Errorf("destinations %v", cfg.destinations)
	}
	tg, err := newTarget(cfg, "eth0")
	if err == nil || cniErr(t, err).Code != types.ErrInvalidNetworkConfig || !strings.Contains(err.Error(), "2001:db8::/32 is IPv6, but prevResult gives the pod's interface \"eth0\" no IPv6 address") {
		t.Errorf("an IPv6 destination for an IPv4 pod: %v, %v", tg, err)
	}

	// Defaults: pass, everything; a family without an address is left
	// alone.
	cfg, err = parseConfig(netconf("1.0.0", "", true), true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.tx.policy.String() != "mode pass" || !cfg.defaultDestinations {
		t.Errorf("defaults: %q, %v", cfg.tx.policy, cfg.destinations)
	}
	tg, err = newTarget(cfg, "eth0")
	if err != nil || fmt.Sprint(tg.dests) != "[0.0.0.0/0]" || tg.src4.String() != "10.77.1.5" {
		t.Errorf("target: %+v, %v", tg, err)
	}
	if _, err := newTarget(cfg, "net1"); err == nil || cniErr(t, err).Code != types.ErrInvalidNetworkConfig {
		t.Errorf("an interface prevResult lacks: %v", err)
	}
}

func TestParseConfigOlderVersions(t *testing.T) {
	for _, v := range []string{"0.3.0", "0.3.1", "0.4.0"} {
		prev := strings.Replace(prevResult, `"cniVersion": "1.1.0"`, fmt.Sprintf("%q: %q", "cniVersion", v), 1)
		prev = strings.Replace(prev, `"ips": [{"address"`, `"ips": [{"version": "4", "address"`, 1)
		b := []byte(fmt.Sprintf(`{"cniVersion": %q, "name": "n", "type": "insane", "tx": "mode pass", "prevResult": %s}`, v, prev))
		cfg, err := parseConfig(b, true)
		if err != nil {
			t.Errorf("%s: %v", v, err)
			continue
		}
		if tg, err := newTarget(cfg, "eth0"); err != nil || tg.src4.String() != "10.77.1.5" {
			t.Errorf("%s: target %+v, %v", v, tg, err)
		}
	}
}

func TestAnnotations(t *testing.T) {
	caps := `, "capabilities": {"io.kubernetes.cri.pod-annotations": true}`
	rc := func(ann string) string {
		return caps + `, "tx": "mode percent 10", "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {` + ann + `}}`
	}
	cfg, err := parseConfig(netconf("1.1.0", rc(`"insane.dev/tx": "mode time 1s 2s", "example.com/other": "x"`), true), true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.tx.policy.String() != "mode time 1s 2s" || cfg.tx.from != "annotation insane.dev/tx" {
		t.Errorf("with the annotation: %q from %s", cfg.tx.policy, cfg.tx.from)
	}
	cfg, err = parseConfig(netconf("1.1.0", rc(`"insane.dev/rx": "mode percent 90 seed 3"`), true), true)
	if err != nil || cfg.rx == nil || cfg.rx.policy.String() != "mode percent 90 seed 3" || cfg.rx.from != "annotation insane.dev/rx" {
		t.Errorf("with an rx annotation: %v, %v", cfg, err)
	}
	// The delay words, through the shared parser, both directions.
	cfg, err = parseConfig(netconf("1.1.0", rc(`"insane.dev/tx": "mode pass delay 50ms jitter 10ms seed 5 limit 2000", `+
		`"insane.dev/rx": "mode schedule 10s pass 2s pass delay 400ms distribution normal jitter 50ms 10s pass"`), true), true)
	if err != nil || cfg.tx.policy.String() != "mode pass delay 50ms jitter 10ms seed 5 limit 2000" || cfg.rx == nil ||
		cfg.rx.policy.String() != "mode schedule 10s pass 2s pass delay 400ms jitter 50ms distribution normal 10s pass" {
		t.Errorf("with delay annotations: %v, %v", cfg, err)
	} else if p := cfg.tx.policy; p.Delay != 50*time.Millisecond || p.Jitter != 10*time.Millisecond || p.Limit != 2000 ||
		cfg.rx.policy.Steps[1].Action.Distribution != genl.DistNormal {
		t.Errorf("delay fields: tx %+v rx %+v", p, cfg.rx.policy)
	}
	// Rate, duplication and corruption, the same way: a slow, lossy
	// downlink and a duplicating, corrupting uplink.
	cfg, err = parseConfig(netconf("1.1.0", rc(`"insane.dev/tx": "mode percent 99 duplicate 1 corrupt 0.1 header seed 3", `+
		`"insane.dev/rx": "mode pass rate 2mbit overhead 38 buffer 50ms delay 20ms"`), true), true)
	if err != nil || cfg.tx.policy.String() != "mode percent 99 duplicate 1 corrupt 0.1 header seed 3" || cfg.rx == nil ||
		cfg.rx.policy.String() != "mode pass delay 20ms rate 2mbit overhead 38 buffer 50ms" {
		t.Errorf("with rate, duplicate and corrupt annotations: %v, %v", cfg, err)
	} else if p, rx := cfg.tx.policy, cfg.rx.policy; p.Duplicate != 1 || p.Corrupt != 0.1 || !p.CorruptHeader ||
		rx.Rate != 2e6 || rx.Overhead != 38 || rx.Buffer != 50*time.Millisecond {
		t.Errorf("rate, duplicate and corrupt fields: tx %+v rx %+v", p, rx)
	}
	cfg, err = parseConfig(netconf("1.1.0", `, "tx": "mode schedule 10s pass rate 10mbit 5s drop", "rx": "mode pass rate 1.5MBps"`, true), true)
	if err != nil || cfg.tx.policy.Steps[0].Action.Rate != 10e6 || cfg.rx == nil || cfg.rx.policy.String() != "mode pass rate 12mbit" {
		t.Errorf("rates in the network configuration: %+v, %v", cfg, err)
	}
	cfg, err = parseConfig(netconf("1.1.0", rc(`"example.com/other": "x"`), true), true)
	if err != nil || cfg.tx.policy.String() != "mode percent 10" {
		t.Errorf("without it: %v, %v", cfg, err)
	}
	for ann, want := range map[string]struct {
		code uint
		msg  string
	}{
		`"insane.dev/tx": "mode percent"`:     {types.ErrInvalidNetworkConfig, `insane: annotation insane.dev/tx: "mode percent": mode percent needs a percentage`},
		`"insane.dev/rx": "mode percent 101"`: {types.ErrInvalidNetworkConfig, `annotation insane.dev/rx: "mode percent 101": percentage "101" is not between 0 and 100`},
		`"insane.dev/loss": "5"`:              {types.ErrUnsupportedField, `unknown pod annotation "insane.dev/loss" (value "5")`},
		`"insane.dev/tx": "mode pass seed 1"`: {types.ErrInvalidNetworkConfig, "seed goes with mode percent, burst, gilbert or schedule, or a jitter, duplicate or corrupt, not mode pass"},
		`"insane.dev/tx": "mode pass delay 5ms jitter 6ms"`: {types.ErrInvalidNetworkConfig,
			`annotation insane.dev/tx: "mode pass delay 5ms jitter 6ms": jitter 6ms with delay 5ms: uniform would draw below 0`},
		`"insane.dev/rx": "mode schedule 1s pass limit 5 2s drop"`: {types.ErrInvalidNetworkConfig, "a step takes no limit"},
		`"insane.dev/rx": "mode time 1s 1s carrier"`: {types.ErrInvalidNetworkConfig,
			`annotation insane.dev/rx: "mode time 1s 1s carrier": carrier goes with the transmit policy only`},
		`"insane.dev/tx": "mode pass rate 10mbits"`: {types.ErrInvalidNetworkConfig,
			`annotation insane.dev/tx: "mode pass rate 10mbits": rate "10mbits": unknown unit "mbits"`},
		`"insane.dev/rx": "mode pass buffer 5ms"`:  {types.ErrInvalidNetworkConfig, "buffer goes with rate R, before seed and limit"},
		`"insane.dev/tx": "mode pass duplicate 0"`: {types.ErrInvalidNetworkConfig, "duplicate 0 must be above 0"},
		`"insane.dev/tx": "mode schedule 1s pass once corrupt 1"`: {types.ErrInvalidNetworkConfig,
			"a schedule's corrupt goes in its steps: 10s pass corrupt 0.1"},
	} {
		_, err := parseConfig(netconf("1.1.0", rc(ann), true), true)
		if te := cniErr(t, err); te.Code != want.code || !strings.Contains(te.Msg, want.msg) {
			t.Errorf("%s: code %d, %q; want %d, %q", ann, te.Code, te.Msg, want.code, want.msg)
		}
	}
}

func TestParseConfigRefuses(t *testing.T) {
	for keys, want := range map[string]struct {
		code uint
		msg  string
	}{
		`, "loss": 20`:                                   {types.ErrUnsupportedField, `unknown key "loss" (value 20)`},
		`, "ipam": {"type": "host-local"}`:               {types.ErrUnsupportedField, `unknown key "ipam"`},
		`, "capabilities": {"portMappings": true}`:       {types.ErrUnsupportedField, `unknown capability "portMappings"`},
		`, "runtimeConfig": {"bandwidth": {}}`:           {types.ErrUnsupportedField, `unknown runtime configuration "bandwidth"`},
		`, "tx": "mode percent 120"`:                     {types.ErrInvalidNetworkConfig, `"tx" in the network configuration: "mode percent 120": percentage "120" is not between 0 and 100`},
		`, "tx": ""`:                                     {types.ErrInvalidNetworkConfig, "a policy needs mode"},
		`, "tx": "lower eth1"`:                           {types.ErrInvalidNetworkConfig, `unknown keyword "lower"`},
		`, "tx": 5`:                                      {types.ErrDecodingFailure, "reading the network configuration"},
		`, "rx": "mode nonsense"`:                        {types.ErrInvalidNetworkConfig, `unknown mode "nonsense"`},
		`, "rx": "mode time 1s 1s events carrier"`:       {types.ErrInvalidNetworkConfig, "carrier goes with the transmit policy only"},
		`, "tx": "mode time 5ms 1s carrier"`:             {types.ErrInvalidNetworkConfig, "carrier needs windows of at least 10ms: ON lasts 5ms"},
		`, "destinations": []`:                           {types.ErrInvalidNetworkConfig, `"destinations" is empty`},
		`, "destinations": ["10.0.0.0/33"]`:              {types.ErrInvalidNetworkConfig, `"10.0.0.0/33" is not a prefix`},
		`, "destinations": ["10.0.0.1"]`:                 {types.ErrInvalidNetworkConfig, `"10.0.0.1" is not a prefix`},
		`, "destinations": ["eth0"]`:                     {types.ErrInvalidNetworkConfig, `"eth0" is not a prefix`},
		`, "destinations": ["10.1.2.3/8"]`:               {types.ErrInvalidNetworkConfig, `has host bits set: the prefix is 10.0.0.0/8`},
		`, "destinations": ["::ffff:10.0.0.0/104"]`:      {types.ErrInvalidNetworkConfig, "IPv4-mapped"},
		`, "destinations": ["10.0.0.0/8", "10.0.0.0/8"]`: {types.ErrInvalidNetworkConfig, "10.0.0.0/8 given twice"},
	} {
		_, err := parseConfig(netconf("1.1.0", keys, true), true)
		if te := cniErr(t, err); te.Code != want.code || !strings.Contains(te.Msg, want.msg) {
			t.Errorf("%s: code %d, %q; want %d, %q", keys, te.Code, te.Msg, want.code, want.msg)
		}
	}
	_, err := parseConfig(netconf("1.1.0", `, "tx": "mode pass"`, false), true)
	if te := cniErr(t, err); te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, "no prevResult: insane is a chained plugin") {
		t.Errorf("no prevResult: %v", te)
	}
	if _, err := parseConfig(netconf("1.1.0", `, "tx": "mode pass"`, false), false); err != nil {
		t.Errorf("no prevResult where none is needed (STATUS): %v", err)
	}
	if _, err := parseConfig([]byte(`[1, 2]`), false); cniErr(t, err).Code != types.ErrDecodingFailure {
		t.Errorf("not an object: %v", err)
	}
}

func TestDeviceName(t *testing.T) {
	for in, want := range map[string]string{"eth0": "insane-eth0", "net1": "insane-net1", "eth12345": "insane-eth12345"} {
		if got := deviceName(in); got != want {
			t.Errorf("deviceName(%q) = %q, want %q", in, got, want)
		}
	}
	a, b := deviceName("a-long-ifname0"), deviceName("a-long-ifname1")
	if a == b || len(a) > 15 || !strings.HasPrefix(a, "ins") {
		t.Errorf("long names: %q, %q", a, b)
	}
}

func TestParseConfigRx(t *testing.T) {
	cfg, err := parseConfig(netconf("1.1.0", `, "tx": "mode pass", "rx": "mode time 1s 500ms"`, true), true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.rx == nil || cfg.rx.policy.String() != "mode time 1s 500ms" || cfg.rx.from != `"rx" in the network configuration` {
		t.Errorf("rx %+v", cfg.rx)
	}
	// The edge flags: carrier in the transmit policy only, events in both.
	cfg, err = parseConfig(netconf("1.1.0", `, "tx": "mode time 5s 2s carrier events", "rx": "mode time 5s 2s events"`, true), true)
	if err != nil || !cfg.tx.policy.Carrier || !cfg.tx.policy.Events || cfg.rx == nil || !cfg.rx.policy.Events {
		t.Errorf("edge flags: %+v, %v", cfg, err)
	}
}
