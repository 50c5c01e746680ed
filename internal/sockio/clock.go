package sockio

import (
	"time"
	_ "unsafe" // for go:linkname
)

// Nanotime is the runtime's monotonic clock (vDSO clock_gettime
// CLOCK_MONOTONIC, ~20 ns, no allocation). time.Now also reads the wall
// clock, which the timed path does not need.
//
//go:linkname Nanotime runtime.nanotime
func Nanotime() int64

// YieldEvery is how often, in Nanotime nanoseconds, a timed flow (the
// client's and the server's) reschedules itself: under the runtime's
// forced-preemption period (10ms), so the runtime never needs to.
const YieldEvery = 5 * int64(time.Millisecond)
