package workload

import (
	_ "unsafe" // for go:linkname
)

// nanotime is the runtime's monotonic clock (vDSO clock_gettime
// CLOCK_MONOTONIC, ~20 ns, no allocation). time.Now also reads the wall
// clock, which the timed path does not need.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64
