package experiment

import (
	"slices"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/wire"
)

func TestParseClientCPUs(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    []int
		none    bool
		wantErr string
	}{
		{"", nil, false, ""},
		{"auto", nil, false, ""},
		{"none", nil, true, ""},
		{"1", []int{1}, false, ""},
		{"0,2", []int{0, 2}, false, ""},
		{"2-3,5", []int{2, 3, 5}, false, ""},
		{" 1 , 0 ", []int{1, 0}, false, ""},
		{"4095", []int{4095}, false, ""},
		{"AUTO", nil, false, `"AUTO" is not a CPU list`}, // case is the caller's: flags lower-case, specs do not
		{"x", nil, false, `"x" is not a CPU list (want e.g. 1 or 0,2 or 2-3)`},
		{"-1", nil, false, "is not a CPU list"},
		{"3-1", nil, false, "is not a CPU list"},
		{"0-", nil, false, "is not a CPU list"},
		{"1,,2", nil, false, "is not a CPU list"},
		{"4096", nil, false, `"4096": CPU 4096: CPU numbers are below 4096`},
		{"0-2000000000", nil, false, "CPU numbers are below 4096"},
	} {
		got, none, err := ParseClientCPUs(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) || none != c.none {
			t.Errorf("%q: %v none=%v err %v, want %v none=%v", c.in, got, none, err, c.want, c.none)
		}
	}
}

func TestParseServerCPU(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    int
		wantErr string
	}{
		{"", wire.CPUAuto, ""},
		{"auto", wire.CPUAuto, ""},
		{"none", wire.CPUNone, ""},
		{"0", 0, ""},
		{"7", 7, ""},
		{"fast", 0, `"fast" (allowed: auto, none or a CPU number)`},
		{"3x", 0, `"3x" (allowed: auto, none or a CPU number)`},
		{"None", 0, "allowed: auto, none"},
		{"-3", 0, "CPU -3 is negative"},
	} {
		got, err := ParseServerCPU(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %d %v, want %d", c.in, got, err, c.want)
		}
		if c.in != "" {
			if s := FormatServerCPU(got); s != c.in {
				t.Errorf("FormatServerCPU(%d) = %q, want %q", got, s, c.in)
			}
		}
	}
}

func TestCPUListEnd(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{{"0", 1, true}, {"0-3", 4, true}, {"0,2-5", 6, true}, {"0-1,8", 9, true}, {"", 0, false}, {"x", 0, false}, {"0-", 0, false}} {
		if got, ok := cpuListEnd(c.in); got != c.want || ok != c.ok {
			t.Errorf("%q: %d %v, want %d %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
