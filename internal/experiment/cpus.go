package experiment

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/latlab/latlab/internal/wire"
)

// The CPU settings every front end reads (lab and bench flags, spec
// placements, watch targets): "auto" (or empty) lets the side choose,
// "none" leaves it unpinned, anything else names CPUs. The parsers are
// case-sensitive and their errors name only the value: callers add the
// flag or field.
const (
	CPUSettingAuto = "auto"
	CPUSettingNone = "none"
)

// ParseClientCPUs reads a client CPU setting: "" or "auto" (nil, false),
// "none" (nil, true), or a CPU list for ParseCPUList.
func ParseClientCPUs(s string) (cpus []int, none bool, err error) {
	switch s {
	case "", CPUSettingAuto:
		return nil, false, nil
	case CPUSettingNone:
		return nil, true, nil
	}
	cpus, err = ParseCPUList(s)
	return cpus, false, err
}

// ParseServerCPU reads a server CPU setting: "" or "auto"
// (wire.CPUAuto), "none" (wire.CPUNone) or a CPU number, which
// must not be negative. It does not check the number against this
// machine (the server may run elsewhere): CheckCPU does.
func ParseServerCPU(s string) (int, error) {
	switch s {
	case "", CPUSettingAuto:
		return wire.CPUAuto, nil
	case CPUSettingNone:
		return wire.CPUNone, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q (allowed: auto, none or a CPU number)", s)
	}
	if n < 0 {
		return 0, fmt.Errorf("CPU %d is negative", n)
	}
	return n, nil
}

// FormatServerCPU is ParseServerCPU's inverse: "auto", "none" or the
// number.
func FormatServerCPU(cpu int) string {
	switch cpu {
	case wire.CPUAuto:
		return CPUSettingAuto
	case wire.CPUNone:
		return CPUSettingNone
	}
	return strconv.Itoa(cpu)
}

// ParseCPUList reads a CPU list in the kernel's cpulist format: "1",
// "0,2", "2-3,5" (spaces around an item allowed), in the order given.
// Every CPU is below MaxCPU.
func ParseCPUList(s string) ([]int, error) {
	bad := fmt.Errorf("%q is not a CPU list (want e.g. 1 or 0,2 or 2-3)", s)
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, bad
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, bad
			}
		}
		if b >= MaxCPU {
			return nil, fmt.Errorf("%q: CPU %d: CPU numbers are below %d", s, b, MaxCPU)
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// CheckCPU refuses a CPU number that is negative, at least MaxCPU, or
// beyond the CPUs this machine can ever have
// (/sys/devices/system/cpu/possible, when readable).
func CheckCPU(cpu int) error {
	if cpu < 0 {
		return fmt.Errorf("CPU %d is negative", cpu)
	}
	if cpu >= MaxCPU {
		return fmt.Errorf("CPU %d: CPU numbers are below %d", cpu, MaxCPU)
	}
	if n, ok := PossibleCPUs(); ok && cpu >= n {
		return fmt.Errorf("CPU %d: this machine's CPUs are 0..%d (/sys/devices/system/cpu/possible)", cpu, n-1)
	}
	return nil
}

// PossibleCPUs is one more than the highest CPU number this machine can
// have, from /sys/devices/system/cpu/possible ("0-3", "0,2-5"); ok is
// false when it cannot be read (or names CPUs past MaxCPU, which
// CheckCPU refuses anyway).
func PossibleCPUs() (n int, ok bool) {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return 0, false
	}
	return cpuListEnd(strings.TrimSpace(string(b)))
}

// cpuListEnd is one more than the highest CPU of a CPU list; ok is false
// when s is not one.
func cpuListEnd(s string) (int, bool) {
	cpus, err := ParseCPUList(s)
	if err != nil {
		return 0, false
	}
	hi := -1
	for _, c := range cpus {
		hi = max(hi, c)
	}
	return hi + 1, hi >= 0
}
