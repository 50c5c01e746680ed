package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestVersion(t *testing.T) {
	mod := func(v string) *debug.BuildInfo { return &debug.BuildInfo{Main: debug.Module{Version: v}} }
	rev := "0123456789abcdef0123456789abcdef01234567"
	for _, c := range []struct {
		name, linked string
		bi           *debug.BuildInfo
		ok           bool
		rev          string
		dirty        bool
		want         string
	}{
		{"linker-set wins", "v1.2.3", mod("v0.9.0"), true, rev, true, "v1.2.3"},
		{"no build info", "", nil, false, "", false, "devel"},
		{"module version", "", mod("v0.9.0"), true, rev, false, "v0.9.0"},
		{"devel with revision", "", mod("(devel)"), true, rev, false, "devel-0123456789ab"},
		{"dirty tree", "", mod("(devel)"), true, rev, true, "devel-0123456789ab-dirty"},
		{"nothing recorded", "", mod("(devel)"), true, "", false, "devel"},
	} {
		if got := version(c.linked, c.bi, c.ok, c.rev, c.dirty); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestRead(t *testing.T) {
	in := Read("v9.9.9")
	if in.Version != "v9.9.9" {
		t.Errorf("version %q", in.Version)
	}
	if in.GoVersion != runtime.Version() {
		t.Errorf("go version %q, want %q", in.GoVersion, runtime.Version())
	}
}
