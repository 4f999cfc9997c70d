package main

import (
	"errors"
	"strings"
	"testing"

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
				if c.policy == nil {
					t.Fatalf("cases.txt:%d: link %s: no policy", tc.Line, sub)
				}
				p := *c.policy
				p.Seed = c.seed
				if err := p.Validate(); err != nil {
					t.Errorf("cases.txt:%d: link %s: the policy read is invalid: %v", tc.Line, sub, err)
				}
				if p.String() != tc.Policy {
					t.Errorf("cases.txt:%d: link %s: read %q, want %q", tc.Line, sub, p, tc.Policy)
				}
			}
		})
	}
}
