// Package store keeps latlab's results in an embedded SQLite database
// (modernc.org/sqlite, pure Go): runs, their trials with the latency
// histogram of each, the environment they ran in and free-text
// annotations, so that runs can be listed, compared over time and checked
// for regressions.
//
// Each trial is committed in its own transaction as soon as it is added,
// so a run killed at any moment (kill -9 included) keeps every trial that
// finished; MarkStaleRunsIncomplete later marks such runs incomplete.
//
// The store defines its own record types and knows nothing of the
// experiment package: callers convert. Times are stored to the nanosecond
// and come back in UTC.
//
// It imports no latlab package (experiment converts its Outcome into
// store records, not the other way round).
package store
