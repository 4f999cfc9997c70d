package main

import (
	"errors"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// FuzzParseConfig feeds arbitrary network configurations to the parser ADD
// and CHECK use. It must not panic; every refusal is a CNI error with a
// code and a message; what it accepts has a valid tx policy, a valid rx
// policy if any, and masked, distinct destinations.
func FuzzParseConfig(f *testing.F) {
	for _, keys := range []string{
		``, `, "tx": "mode percent 80 seed 42"`, `, "tx": "mode time 1s 2s", "destinations": ["10.0.0.0/8", "::/0"]`,
		`, "rx": "mode pass"`, `, "destinations": []`, `, "loss": 1`,
		`, "tx": "mode percent 99 duplicate 1 corrupt 0.1 header seed 3", "rx": "mode pass rate 2mbit overhead 38 buffer 50ms"`,
		`, "tx": "mode schedule 10s pass rate 10mbit 5s drop duplicate 5"`,
		`, "capabilities": {"io.kubernetes.cri.pod-annotations": true}, "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {"insane.dev/tx": "mode pass"}}`,
	} {
		f.Add(netconf("1.1.0", keys, true))
		f.Add(netconf("0.4.0", keys, false))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := parseConfig(b, false)
		if err != nil {
			var te *types.Error
			if !errors.As(err, &te) || te.Code == 0 || te.Msg == "" {
				t.Fatalf("refusal %v is not a CNI error with a code and a message", err)
			}
			return
		}
		if err := cfg.tx.policy.Validate(); err != nil {
			t.Fatalf("accepted an invalid tx policy: %v", err)
		}
		if cfg.rx != nil {
			if err := cfg.rx.policy.Validate(); err != nil {
				t.Fatalf("accepted an invalid rx policy: %v", err)
			}
		}
		seen := map[string]bool{}
		for _, d := range cfg.destinations {
			if d.Masked() != d || seen[d.String()] {
				t.Fatalf("destinations %v", cfg.destinations)
			}
			seen[d.String()] = true
		}
	})
}
