package policytest

import (
	"strings"
	"testing"
)

func TestCasesParse(t *testing.T) {
	cs, err := Cases()
	if err != nil {
		t.Fatal(err)
	}
	var valid, refused int
	for _, c := range cs {
		if c.Policy != "" {
			valid++
			tx, rx := c.Split()
			if tx != "" && !strings.HasPrefix(tx, "mode ") || rx != "" && rx != "off" && !strings.HasPrefix(rx, "mode ") ||
				tx == "" && rx == "" {
				t.Errorf("line %d: policy %q is not [mode ...] [rx mode ...|rx off]", c.Line, c.Policy)
			}
			if tx != "" && rx != "" && c.Policy != tx+" rx "+rx || tx == "" && c.Policy != "rx "+rx {
				t.Errorf("line %d: %q splits into %q and %q", c.Line, c.Policy, tx, rx)
			}
		} else {
			refused++
		}
	}
	if valid < 20 || refused < 30 {
		t.Errorf("%d valid and %d refused cases: cases.txt lost some", valid, refused)
	}
	if c := cs[0]; c.Name() != "mode pass" || c.Policy != "mode pass" || c.Line < 10 {
		t.Errorf("first case %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	for _, text := range []string{
		"mode pass\n",                      // no =>
		"mode pass =>\n",                   // nothing after
		"mode pass => error:\n",            // empty error
		"=> mode pass\n",                   // no words
		"a => mode pass\na => mode pass\n", // twice
	} {
		if _, err := parse(text); err == nil {
			t.Errorf("parse(%q) succeeded", text)
		}
	}
	cs, err := parse("# c\n\n  mode  time 1 2   =>   mode time  10ms 20ms \nx => error:  bad  x \n")
	if err != nil || len(cs) != 2 || cs[0].Policy != "mode time 10ms 20ms" || cs[0].Line != 3 ||
		len(cs[0].Args) != 4 || cs[1].Err != "bad  x" {
		t.Errorf("parse = %+v, %v", cs, err)
	}
}
