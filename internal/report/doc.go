// Package report renders results as tables, JSON and CSV.
//
// It owns every table, CSV and JSON latlab prints: `latlab lab`/`run`/
// `show` (an experiment.Summary), stored runs and comparisons, `latlab
// bench` and the offload commands. It reads experiment, store, stats,
// probe, offload and workload results and must not import cli, watch, web
// or docker/dockerlab; it knows no flags (callers pass a format name).
package report
