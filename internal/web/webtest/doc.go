// Package webtest fills a results database with synthetic runs for the
// dashboard's tests and benchmarks: real histograms, recorded through
// experiment.StoreRecorder exactly as `latlab lab` records a run.
//
// It is for tests and benchmarks only: no non-test code may import it.
package webtest
