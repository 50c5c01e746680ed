// Package web is latlab's dashboard: a read-only web UI over the results
// database (runs, a run's tables and charts, each configuration's history
// with change points, alerts, the environment diff of two runs) and a
// Prometheus /metrics endpoint. Everything it serves is rendered on the
// server: HTML from embedded templates, charts as inline SVG (Chart),
// CSS inline; no JavaScript, no CDN, so it works offline and a page saved
// to a file (WriteRunReport) is self-contained.
//
// It owns the HTTP handlers, their templates and static files, the SVG
// charts and the /metrics exposition; it only reads the store.
//
// Alerts, scheduler health and change-point detection belong to the watch
// half (internal/watch, internal/stats); they are injected through Options
// and each one left nil shows as "not available". So web never imports
// watch or cli, nor anything that touches the machine (topo, offload,
// probe, workload, netns, docker): it may import store, stats, report,
// hist and experiment's types. Test fixtures are in web/webtest.
package web
