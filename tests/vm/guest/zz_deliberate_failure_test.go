//go:build vmtest

package guest

import "testing"

func TestDeliberateFailure(t *testing.T) {
	out := Run(t, "ip", "-br", "link", "show", "lo")
	t.Errorf("deliberate failure; ip says: %s", out)
}
