// Package hist records latencies in HDR-style log-linear histograms:
// constant-time, allocation-free recording on the timed path, exact
// merging across flows and intervals, and percentiles whose relative error
// is bounded by the configured number of significant decimal digits.
//
// Values are int64 nanoseconds. Each power-of-two range is split into
// linear sub-buckets, enough of them that any value is represented to
// within 10^-sigDigits of itself. Memory: the default histogram (3 digits,
// values up to 2^36 ns ≈ 68.7 s) has 27,648 counters, 216 KiB; a 2-digit
// histogram over the same range has 3,968 counters, 31 KiB.
//
// Percentiles are never averaged across histograms: merge them and ask the
// merged histogram.
//
// It imports no latlab package (workload and stats build on it).
package hist
