// Package stats holds the statistics latlab reports about interleaved
// trials: medians with order-statistic confidence intervals, paired
// ratios, the Mann–Whitney U test, Holm–Bonferroni adjustment, a
// benchstat-like comparison of two configurations and a cluster bootstrap
// for ratios of latency quantiles.
//
// Medians and their intervals come from golang.org/x/perf/benchmath, and
// the U test from the go-moremath library beneath it, so the numbers
// match benchstat's; the one exception is the U test on small samples
// with ties, where go-moremath's p-value depends on the argument order
// and this package computes the exact distribution itself. Nothing here
// keeps package-level state; the bootstrap draws only from the
// *rand.Rand it is given.
//
// NaN values are dropped wherever samples are taken (and counted in
// Estimate.Skipped where there is one); they are never sorted or ranked.
//
// It imports only hist of latlab: no experiment, store or report type
// reaches it (callers pass numbers).
package stats
