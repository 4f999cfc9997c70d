package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/genl/policytest"
)

// TestPolicyGrammarCases runs the cases the ip plugin's VM test runs too
// (go/genl/policytest/cases.txt) through the CLI's parser, after
// "link add ins0" and, for the valid ones, after "link set ins0".
func TestPolicyGrammarCases(t *testing.T) {
	cases, err := policytest.Cases()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.Name(), func(t *testing.T) {
			subs := []string{"add"}
			if tc.Policy != "" {
				subs = append(subs, "set")
			}
			for _, sub := range subs {
				c, err := parse(append([]string{"link", sub, "ins0"}, tc.Args...))
				if tc.Err != "" {
					var ue *usageError
					if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.Err) {
						t.Errorf("cases.txt:%d: link %s: error %v, want a usage error with %q", tc.Line, sub, err, tc.Err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("cases.txt:%d: link %s: %v", tc.Line, sub, err)
				}
				wantTx, wantRx := tc.Split()
				var got []string
				for _, d := range []struct {
					prefix string
					p      *genl.Policy
					seed   *uint64
				}{{"", c.policy, c.seed}, {"rx ", c.rxPolicy, c.rxSeed}} {
					if d.p == nil {
						if d.seed != nil {
							t.Errorf("cases.txt:%d: link %s: %sseed without a mode", tc.Line, sub, d.prefix)
						}
						continue
					}
					p := *d.p
					p.Seed = d.seed
					if err := p.Validate(); err != nil {
						t.Errorf("cases.txt:%d: link %s: the %spolicy read is invalid: %v", tc.Line, sub, d.prefix, err)
					}
					got = append(got, d.prefix+p.String())
				}
				if c.rxOff {
					got = append(got, "rx off")
				}
				if (wantTx != "") != (c.policy != nil) || (wantRx != "") != (c.rxPolicy != nil || c.rxOff) {
					t.Errorf("cases.txt:%d: link %s: read tx %v rx %v off %v, want %q", tc.Line, sub, c.policy, c.rxPolicy, c.rxOff, tc.Policy)
				}
				if g := strings.Join(got, " "); g != tc.Policy {
					t.Errorf("cases.txt:%d: link %s: read %q, want %q", tc.Line, sub, g, tc.Policy)
				}
			}
		})
	}
}
