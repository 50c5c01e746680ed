package probe

import (
	"math"
	"testing"
	"time"
)

// Steal and run-queue wait between two fixture readings: cpu0 had 100 of
// its 300 ticks stolen (a third) and its run queue waited 0.5 s in 2 s
// (25%); cpu1 nothing; PSI 0.2 s of 2 s (10%).
func TestCPUNoiseFromFixtures(t *testing.T) {
	a, err := SampleCPUs("testdata/noise/a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := SampleCPUs("testdata/noise/b")
	if err != nil {
		t.Fatal(err)
	}
	a.At = time.Unix(100, 0)
	b.At = a.At.Add(2 * time.Second)
	n := a.Noise(b, []int{0, 1})
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	if len(n.CPUs) != 2 || !near(n.CPUs[0].StealPct, 100.0/3) || !near(n.CPUs[0].RunQueueWaitPct, 25) ||
		n.CPUs[1].StealPct != 0 || n.CPUs[1].RunQueueWaitPct != 0 || !near(n.PressurePct, 10) || !near(n.MaxSteal(), 100.0/3) {
		t.Errorf("noise %+v", n)
	}
	// Without schedstat and PSI (older or smaller kernels) those read -1.
	a.RunDelay, a.PressureUs = nil, -1
	if n := a.Noise(b, nil); len(n.CPUs) != 2 || n.CPUs[0].RunQueueWaitPct != -1 || n.PressurePct != -1 {
		t.Errorf("without schedstat: %+v", n)
	}
	if _, err := SampleCPUs("testdata/nonexistent"); err == nil {
		t.Error("missing /proc/stat: no error")
	}
}
