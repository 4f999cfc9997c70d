// Package policytest holds the cases of the policy grammar that the insane
// CLI (go/cmd/insane) and the ip(8) plugin (iproute2/link_insane.c) share:
// the words that follow "insane link add NAME" or "ip link ... type
// insane", and the policy both must read from them or a part of the error
// message both must give. The CLI's unit tests, those of
// go/internal/policyparse (the Go parser, which the CLI and the CNI plugin
// share) and the plugin's VM test run every case, so that the two parsers
// cannot drift apart.
//
// The cases live in cases.txt, embedded, so that a test binary built on the
// host and run in the VM guest carries them.
package policytest

import (
	_ "embed"
	"fmt"
	"strings"
)

//go:embed cases.txt
var casesText string

// A Case is one line of cases.txt.
type Case struct {
	Line int      // in cases.txt, from 1
	Args []string // the words of the policy
	// Policy is what both parsers must read, as genl.Policy.String and
	// ip -d link show print it; "" when the words must be refused.
	Policy string
	// Err is a part of the message that both parsers must give when they
	// refuse the words; "" for a valid policy.
	Err string
}

// Split returns the two directions of Policy: the transmit policy's
// string ("" when the words set none) and the receive policy's ("" when
// they set none, "off" for rx off).
func (c Case) Split() (tx, rx string) {
	if r, ok := strings.CutPrefix(c.Policy, "rx "); ok {
		return "", r
	}
	tx, rx, _ = strings.Cut(c.Policy, " rx ")
	return tx, rx
}

// Name is the case's words, for t.Run.
func (c Case) Name() string { return strings.Join(c.Args, " ") }

// Cases returns every case of cases.txt, in order.
func Cases() ([]Case, error) {
	return parse(casesText)
}

func parse(text string) ([]Case, error) {
	var out []Case
	seen := map[string]int{}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		words, want, ok := strings.Cut(line, "=>")
		if !ok {
			return nil, fmt.Errorf("cases.txt:%d: no \"=>\"", n)
		}
		c := Case{Line: n, Args: strings.Fields(words)}
		want = strings.TrimSpace(want)
		if msg, isErr := strings.CutPrefix(want, "error:"); isErr {
			c.Err = strings.TrimSpace(msg)
		} else {
			c.Policy = strings.Join(strings.Fields(want), " ")
		}
		if c.Policy == "" && c.Err == "" {
			return nil, fmt.Errorf("cases.txt:%d: neither a policy nor an error after \"=>\"", n)
		}
		if len(c.Args) == 0 {
			return nil, fmt.Errorf("cases.txt:%d: no words before \"=>\"", n)
		}
		if prev, dup := seen[c.Name()]; dup {
			return nil, fmt.Errorf("cases.txt:%d: the words of line %d again", n, prev)
		}
		seen[c.Name()] = n
		out = append(out, c)
	}
	return out, nil
}
