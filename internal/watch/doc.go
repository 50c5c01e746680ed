// Package watch runs latlab measurements on a schedule and watches them
// for regressions: every run of a job is compared with the job's baseline
// per configuration and metric (Mann–Whitney plus a minimum effect), the
// shift is placed in the job's history with E-Divisive change points, the
// environment differences across it are named as suspects, and alerts
// are opened, deduplicated, sent to webhooks or commands and resolved in
// the store.
//
// It imports experiment, store, stats and the workers it needs for a
// target (topo, offload, workload), and must not import cli, web, report
// or docker/dockerlab: the dashboard reads alerts through store.
package watch
