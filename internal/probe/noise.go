package probe

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CPUSample is a reading of the per-CPU counters that say how much of a
// CPU the measurement did not get: steal (/proc/stat: time the hypervisor
// ran someone else), run-queue wait (/proc/schedstat: time runnable tasks
// waited for the CPU; needs CONFIG_SCHEDSTATS) and, machine-wide, CPU
// pressure (/proc/pressure/cpu "some": time at least one task waited).
type CPUSample struct {
	At       time.Time
	Steal    map[int]uint64 // USER_HZ ticks
	Total    map[int]uint64 // USER_HZ ticks, guest time excluded
	RunDelay map[int]uint64 // ns; nil without /proc/schedstat
	// PressureUs is /proc/pressure/cpu's some total (µs); -1 without PSI.
	PressureUs int64
}

// SampleCPUs reads a CPUSample under procRoot ("/proc" or a testdata
// fixture). Only /proc/stat is required.
func SampleCPUs(procRoot string) (*CPUSample, error) {
	s := &CPUSample{At: time.Now(), Steal: map[int]uint64{}, Total: map[int]uint64{}, PressureUs: -1}
	b, err := os.ReadFile(filepath.Join(procRoot, "stat"))
	if err != nil {
		return nil, fmt.Errorf("read CPU steal: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		cpu, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue
		}
		var total uint64
		for i, v := range f[1:] {
			if i >= 8 { // guest and guest_nice are already in user and nice
				break
			}
			n, _ := strconv.ParseUint(v, 10, 64)
			total += n
		}
		steal, _ := strconv.ParseUint(f[8], 10, 64)
		s.Steal[cpu], s.Total[cpu] = steal, total
	}
	if len(s.Total) == 0 {
		return nil, fmt.Errorf("read CPU steal: no cpuN lines in %s", filepath.Join(procRoot, "stat"))
	}
	if b, err := os.ReadFile(filepath.Join(procRoot, "schedstat")); err == nil {
		s.RunDelay = map[int]uint64{}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			// cpuN yld_count 0 sched_count sched_goidle ttwu_count ttwu_local rq_cpu_time run_delay pcount
			f := strings.Fields(sc.Text())
			if len(f) < 10 || !strings.HasPrefix(f[0], "cpu") {
				continue
			}
			cpu, err := strconv.Atoi(f[0][3:])
			if err != nil {
				continue
			}
			s.RunDelay[cpu], _ = strconv.ParseUint(f[8], 10, 64)
		}
	}
	if b, err := os.ReadFile(filepath.Join(procRoot, "pressure", "cpu")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "some ") {
				continue
			}
			for _, kv := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(kv, "total="); ok {
					if n, err := strconv.ParseInt(v, 10, 64); err == nil {
						s.PressureUs = n
					}
				}
			}
		}
	}
	return s, nil
}

// CPUNoise is what happened to the CPUs between two samples.
type CPUNoise struct {
	Seconds float64        `json:"seconds"`
	CPUs    []CPUNoiseStat `json:"cpus"`
	// PressurePct is the share of the time at least one task on the
	// machine waited for a CPU (PSI); -1 without /proc/pressure.
	PressurePct float64 `json:"cpu_pressure_pct"`
}

// CPUNoiseStat is one CPU's share of time stolen and waited for.
type CPUNoiseStat struct {
	CPU      int     `json:"cpu"`
	StealPct float64 `json:"steal_pct"`
	// RunQueueWaitPct is the time runnable tasks waited for this CPU, as a
	// share of the wall time (several waiting tasks count several times);
	// -1 without /proc/schedstat (CONFIG_SCHEDSTATS).
	RunQueueWaitPct float64 `json:"runqueue_wait_pct"`
}

// Noise compares a later sample b with a over the given CPUs (all CPUs
// when cpus is empty).
func (a *CPUSample) Noise(b *CPUSample, cpus []int) *CPUNoise {
	wall := b.At.Sub(a.At)
	n := &CPUNoise{Seconds: wall.Seconds(), PressurePct: -1}
	if len(cpus) == 0 {
		for c := range a.Total {
			cpus = append(cpus, c)
		}
		slices.Sort(cpus)
	}
	for _, c := range cpus {
		st := CPUNoiseStat{CPU: c, RunQueueWaitPct: -1}
		if dt := b.Total[c] - a.Total[c]; b.Total[c] > a.Total[c] {
			st.StealPct = float64(b.Steal[c]-a.Steal[c]) / float64(dt) * 100
		}
		if a.RunDelay != nil && b.RunDelay != nil && wall > 0 {
			st.RunQueueWaitPct = float64(b.RunDelay[c]-a.RunDelay[c]) / float64(wall.Nanoseconds()) * 100
		}
		n.CPUs = append(n.CPUs, st)
	}
	if a.PressureUs >= 0 && b.PressureUs >= a.PressureUs && wall > 0 {
		n.PressurePct = float64(b.PressureUs-a.PressureUs) / float64(wall.Microseconds()) * 100
	}
	return n
}

// MaxSteal is the highest steal share over the CPUs.
func (n *CPUNoise) MaxSteal() float64 {
	m := 0.0
	for _, c := range n.CPUs {
		m = max(m, c.StealPct)
	}
	return m
}
