package web

import (
	"strings"
	"testing"
)

// Label values: safe names pass as they are; anything else comes out
// bounded, with only safe characters, and distinct inputs stay distinct.
func TestLabelValuesAreNeverFreeText(t *testing.T) {
	long := strings.Repeat("a", 300)
	for _, c := range []struct {
		name, in string
		f        func(string) string
		same     bool // comes back unchanged
		max      int
	}{
		{"mode", "veth-routed", labelValue, true, maxNameLabel},
		{"offload preset", "all-off", labelValue, true, maxNameLabel},
		{"job", "nightly.v2_x", labelValue, true, maxNameLabel},
		{"empty job", "", labelValue, true, maxNameLabel},
		{"quote", `a"b`, labelValue, false, maxNameLabel},
		{"newline", "a\nb", labelValue, false, maxNameLabel},
		{"brace", "a}b{c=", labelValue, false, maxNameLabel},
		{"unicode", "café", labelValue, false, maxNameLabel},
		{"space in a name", "a b", labelValue, false, maxNameLabel},
		{"long name", long, labelValue, false, maxNameLabel},
		{"config key", "mode=host workload=tcp_rr offload=default size=64 placement=auto", compoundLabel, true, maxCompoundLabel},
		{"config key with a quote", `mode=host" workload=x`, compoundLabel, false, maxCompoundLabel},
		{"long config key", long, compoundLabel, false, maxCompoundLabel},
	} {
		got := c.f(c.in)
		if c.same != (got == c.in) {
			t.Errorf("%s: %q → %q (unchanged: %v, want %v)", c.name, c.in, got, got == c.in, c.same)
		}
		if len(got) > c.max {
			t.Errorf("%s: %d bytes, bound %d", c.name, len(got), c.max)
		}
		for _, r := range got {
			if !compoundRune(r) {
				t.Errorf("%s: %q holds %q", c.name, got, r)
			}
		}
		if !c.same && !strings.HasPrefix(got, "x_") {
			t.Errorf("%s: sanitised %q is not marked x_", c.name, got)
		}
	}
	if labelValue("a\"b") == labelValue("a\nb") {
		t.Error("two different names sanitised to the same label")
	}
}
