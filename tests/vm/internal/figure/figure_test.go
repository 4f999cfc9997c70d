package figure

import "testing"

func TestRoundTrip(t *testing.T) {
	line := "    torture_lower_test.go:124: " + Line("lower removals", 100)
	name, n, ok := Parse(line)
	if !ok || name != "lower removals" || n != 100 {
		t.Errorf("Parse(%q) = %q, %d, %v", line, name, n, ok)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, l := range []string{
		"    a_test.go:10: 100 lower removals",
		"    c_test.go:7: figure: not a number = x",
		"    c_test.go:8: figure: too big = 18446744073709551616",
		"    c_test.go:9: the figure: = 3",
		"figure: no file prefix = 3",
	} {
		if name, n, ok := Parse(l); ok {
			t.Errorf("Parse(%q) = %q, %d, true; want no figure", l, name, n)
		}
	}
}
