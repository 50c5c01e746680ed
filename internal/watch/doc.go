// Package watch runs latlab measurements on a schedule and watches them
// for regressions: every run of a job is compared with the job's baseline
// per configuration and metric (Mann–Whitney plus a minimum effect), the
// shift is placed in the job's history with E-Divisive change points, the
// environment differences across it are named as suspects, and alerts
// are opened, deduplicated, sent to webhooks or commands and resolved in
// the store.
//
// It owns the watch config (ParseConfig, LoadConfig: jobs, schedules,
// baselines, alert hooks), the scheduler and its Clock, regression
// detection (Analyze: history, baselines, comparison, the host canary,
// confirmation and change points), environment fingerprints and their
// Diff, and alert delivery. The statistics themselves are stats', the
// runs and alerts live in store, and lab jobs run through experiment.
//
// It sits beside web, above experiment and store: it never imports cli
// (flags, output and exit codes are cli's), web (the dashboard shows
// alerts and scheduler health through web.Options, which cli fills) or
// report. Test helpers (watchtest.FakeClock) are in watch/watchtest.
package watch
