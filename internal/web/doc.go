// Package web is latlab's dashboard: a read-only web UI over the results
// database (runs, a run's tables and charts, each configuration's history
// with change points, alerts, the environment diff of two runs) and a
// Prometheus /metrics endpoint. Everything it serves is rendered on the
// server: HTML from embedded templates, charts as inline SVG, CSS inline;
// no JavaScript, no CDN, so it works offline and a page saved to a file
// (WriteRunReport) is self-contained.
//
// Alerts, scheduler health and change-point detection belong to the watch
// half (internal/watch, internal/stats); they are injected through Options
// and each one left nil shows as "not available".
//
// It imports store, experiment, report, stats and hist, and must not import
// cli or watch (alerts and scheduler health come in through Options) nor
// any worker package.
package web
