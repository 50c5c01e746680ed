package web

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latlab/latlab/internal/buildinfo"
	"github.com/latlab/latlab/internal/store"
)

// metricDescs describe every family served on /metrics (through
// client_golang: Prometheus text format 0.0.4, or OpenMetrics 1.0 when the
// scraper asks for it). Names follow promlint's conventions (base units,
// _total on counters, _ratio on ratios, no quantile label outside a
// summary); docs/dashboard.md lists them with the names they replaced, and
// docs/grafana-latlab.json charts them.
type metricDescs struct {
	buildInfo *prometheus.Desc

	runs, lastRunID, lastRunTime, lastRunDuration *prometheus.Desc

	rate, throughput, latency, ratio *prometheus.Desc

	alertsAvail, alert, alertsByState *prometheus.Desc

	schedAvail, schedRunning, schedLastRun, schedLastOK, schedNextRun,
	schedLastFailed, schedRuns, schedFailures *prometheus.Desc

	scrapeErrors *prometheus.Desc
}

// newMetricDescs builds the descriptors; b fills latlab_build_info's
// labels.
func newMetricDescs(b buildinfo.Info) *metricDescs {
	jobKindLabels := []string{"latlab_job", "kind"}
	configLabels := []string{"latlab_job", "kind", "mode", "workload", "size", "offload", "placement"}
	jobLabels := []string{"latlab_job"}
	d := func(name, help string, labels []string, constLabels prometheus.Labels) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, constLabels)
	}
	with := func(ls []string, more ...string) []string { return append(append([]string{}, ls...), more...) }
	rev := b.Revision
	if rev == "" {
		rev = "unknown"
	}
	return &metricDescs{
		buildInfo: d("latlab_build_info", "Always 1; the labels say which latlab serves these metrics (the version `latlab --version` prints).", nil,
			prometheus.Labels{"version": labelValue(b.Version), "revision": labelValue(rev), "goversion": compoundLabel(b.GoVersion)}),

		runs:            d("latlab_runs", "Recorded runs by status.", []string{"status"}, nil),
		lastRunID:       d("latlab_last_run_id", "Id of the latest complete run of each job and kind.", jobKindLabels, nil),
		lastRunTime:     d("latlab_last_run_timestamp_seconds", "When the latest complete run of each job and kind finished (Unix time).", jobKindLabels, nil),
		lastRunDuration: d("latlab_last_run_duration_seconds", "Wall-clock duration of the latest complete run of each job and kind.", jobKindLabels, nil),

		rate: d("latlab_rate_per_second", "Transactions per second of a configuration in the latest complete run: median over trials and its 95% CI bounds (stat label).",
			with(configLabels, "stat"), nil),
		throughput: d("latlab_throughput_bytes_per_second", "tcp_stream throughput of a configuration in the latest complete run, in bytes per second: median over trials and its 95% CI bounds (stat label).",
			with(configLabels, "stat"), nil),
		latency: d("latlab_latency_seconds", "Latency percentiles (percentile label: p50, p99) of a configuration in the latest complete run, from the merged histograms of its trials.",
			with(configLabels, "percentile"), nil),
		ratio: d("latlab_rate_vs_baseline_ratio", "Rate (throughput for tcp_stream) of a mode over the baseline mode's, paired by round: median and 95% CI bounds (stat label).",
			with(configLabels, "stat"), nil),

		alertsAvail: d("latlab_alerts_available", "1 if this process knows the watch alerts, 0 if alerts are not available here.", nil, nil),
		alert: d("latlab_alert", "One series per alert, labelled with its state; 1 while firing, 0 otherwise.",
			[]string{"alert", "latlab_job", "config", "metric", "state"}, nil),
		alertsByState: d("latlab_alerts", "Number of alerts in each state.", []string{"state"}, nil),

		schedAvail:      d("latlab_scheduler_available", "1 if this process runs the watch scheduler, 0 if scheduler health is not available here.", nil, nil),
		schedRunning:    d("latlab_scheduler_running", "1 while the watch scheduler runs.", nil, nil),
		schedLastRun:    d("latlab_scheduler_last_run_timestamp_seconds", "When the job's last run started (Unix time).", jobLabels, nil),
		schedLastOK:     d("latlab_scheduler_last_success_timestamp_seconds", "When the job's last successful run ended (Unix time).", jobLabels, nil),
		schedNextRun:    d("latlab_scheduler_next_run_timestamp_seconds", "When the job runs next (Unix time).", jobLabels, nil),
		schedLastFailed: d("latlab_scheduler_last_run_failed", "1 if the job's last run failed (the error is on the alerts page and in the log).", jobLabels, nil),
		schedRuns:       d("latlab_scheduler_runs_total", "Runs of the job since the scheduler started.", jobLabels, nil),
		schedFailures:   d("latlab_scheduler_failures_total", "Failed runs of the job since the scheduler started.", jobLabels, nil),

		scrapeErrors: d("latlab_scrape_errors", "Errors met while collecting these metrics (details in the ui's log).", nil, nil),
	}
}

// all lists every descriptor, for Describe.
func (d *metricDescs) all() []*prometheus.Desc {
	return []*prometheus.Desc{d.buildInfo, d.runs, d.lastRunID, d.lastRunTime, d.lastRunDuration,
		d.rate, d.throughput, d.latency, d.ratio, d.alertsAvail, d.alert, d.alertsByState,
		d.schedAvail, d.schedRunning, d.schedLastRun, d.schedLastOK, d.schedNextRun, d.schedLastFailed,
		d.schedRuns, d.schedFailures, d.scrapeErrors}
}

// maxMetricGroups bounds the (job, kind) groups /metrics reports, and so
// its series: jobs come from a config, kinds from latlab's commands.
const maxMetricGroups = 200

// Label values are never free text. Names (jobs, kinds, modes, workloads,
// offload presets, placements, metrics, states) must be safe identifiers;
// compound keys (an alert's config key) are such names joined by '=', '/',
// ',' and spaces; anything else is replaced by a bounded, sanitised form
// that still tells series apart ("x_" + the safe characters + a hash).
// There is no free-text label: a scheduled job's last error is on the
// alerts page and in the log, /metrics says only that it failed.
const (
	maxNameLabel     = 64
	maxCompoundLabel = 256
)

func nameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' || r == ':' || r == '+'
}

func compoundRune(r rune) bool { return nameRune(r) || r == '=' || r == '/' || r == ',' || r == ' ' }

// safeLabel returns s when every rune passes ok and it fits max bytes;
// otherwise "x_", s's allowed characters (others as '_', cut to fit) and
// 8 hex digits of its FNV-1a hash.
func safeLabel(s string, ok func(rune) bool, max int) string {
	clean := len(s) <= max
	for _, r := range s {
		if !ok(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	h := fnv.New32a()
	h.Write([]byte(s))
	var b strings.Builder
	b.WriteString("x_")
	for _, r := range s {
		if b.Len() >= max-11 {
			break
		}
		if ok(r) && r != ' ' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	fmt.Fprintf(&b, "_%08x", h.Sum32())
	return b.String()
}

// labelValue is a name as a label value (see safeLabel).
func labelValue(s string) string { return safeLabel(s, nameRune, maxNameLabel) }

// compoundLabel is a key made of names as a label value.
func compoundLabel(s string) string { return safeLabel(s, compoundRune, maxCompoundLabel) }

// handleMetrics serves /metrics: a registry made for this request holds
// one scrape collector, so the store reads run under the request's
// context; promhttp negotiates the format (OpenMetrics included) and the
// compression.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(&scrape{s: s, ctx: r.Context()}); err != nil {
		s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("register the metrics collector: %w", err))
		return
	}
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          s.opts.Log,
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}).ServeHTTP(w, r)
}

// scrape is the collector of one /metrics request. It reads the store's
// run summary (a few rows per (job, kind) group, never every run), each
// latest run's summary from the view cache, and the watch half's alerts
// and scheduler health. It is made for one request and collected once, so
// Collect keeps its state in the struct.
type scrape struct {
	s   *Server
	ctx context.Context
	ch  chan<- prometheus.Metric
	// seen holds the series sent: two raw names can sanitise alike, and a
	// series goes out once.
	seen map[seriesKey]bool
	errs int
}

// seriesKey names a series: its family and label values.
type seriesKey struct {
	d  *prometheus.Desc
	lv string
}

// Describe sends every family's descriptor.
func (c *scrape) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.s.descs.all() {
		ch <- d
	}
}

// Collect reads the figures and sends them.
func (c *scrape) Collect(ch chan<- prometheus.Metric) {
	c.ch, c.seen, c.errs = ch, map[seriesKey]bool{}, 0
	d := c.s.descs
	c.send(d.buildInfo, prometheus.GaugeValue, 1)
	c.collectRuns()
	c.collectAlerts()
	c.collectScheduler()
	c.send(d.scrapeErrors, prometheus.GaugeValue, float64(c.errs))
}

// send sends one sample, once per series; an invalid one (it cannot be,
// label values are sanitised) is counted and logged.
func (c *scrape) send(d *prometheus.Desc, t prometheus.ValueType, v float64, lv ...string) {
	key := seriesKey{d, strings.Join(lv, "\xff")}
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	m, err := prometheus.NewConstMetric(d, t, v, lv...)
	if err != nil {
		c.fail(err)
		return
	}
	c.ch <- m
}

// gauge sends one gauge sample (see send).
func (c *scrape) gauge(d *prometheus.Desc, v float64, lv ...string) {
	c.send(d, prometheus.GaugeValue, v, lv...)
}

// fail logs an error met while collecting and counts it for
// latlab_scrape_errors.
func (c *scrape) fail(err error) {
	c.s.opts.Log.Printf("metrics: %v", err)
	c.errs++
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// runGroup is one (job, kind) group's latest complete run, its names as
// label values.
type runGroup struct {
	job, kind string
	run       store.Run
}

// collectRuns sends the run counts, each group's last run and its
// results.
func (c *scrape) collectRuns() {
	d := c.s.descs
	counts, err := c.s.opts.Store.RunCounts(c.ctx)
	if err != nil {
		c.fail(fmt.Errorf("count runs: %w", err))
	}
	for _, st := range []store.Status{store.StatusComplete, store.StatusIncomplete, store.StatusRunning} {
		c.gauge(d.runs, float64(counts[st]), string(st))
	}
	groups := c.latestRuns()
	for _, g := range groups {
		c.gauge(d.lastRunID, float64(g.run.ID), g.job, g.kind)
		c.gauge(d.lastRunTime, float64(g.run.Finished.UnixNano())/1e9, g.job, g.kind)
		c.gauge(d.lastRunDuration, g.run.Finished.Sub(g.run.Started).Seconds(), g.job, g.kind)
	}
	for _, g := range groups {
		c.collectResults(g)
	}
}

// latestRuns returns the latest complete run of each (job, kind) group,
// at most maxMetricGroups, ordered by job then kind label.
func (c *scrape) latestRuns() []runGroup {
	groups, err := c.s.opts.Store.RunGroups(c.ctx, maxMetricGroups+1)
	if err != nil {
		c.fail(fmt.Errorf("read the run groups: %w", err))
	}
	if len(groups) > maxMetricGroups {
		c.fail(fmt.Errorf("more than %d (job, kind) groups of runs: only the first %d are reported", maxMetricGroups, maxMetricGroups))
		groups = groups[:maxMetricGroups]
	}
	var out []runGroup
	seen := map[[2]string]bool{}
	for _, g := range groups { // ordered by job, then kind
		if g.LatestComplete.ID == 0 {
			continue
		}
		k := [2]string{labelValue(g.JobName), labelValue(g.Kind)}
		if seen[k] { // two raw names sanitised alike: keep the first
			continue
		}
		seen[k] = true
		out = append(out, runGroup{job: k[0], kind: k[1], run: g.LatestComplete})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].job != out[j].job {
			return out[i].job < out[j].job
		}
		return out[i].kind < out[j].kind
	})
	return out
}

// collectResults sends the figures of each ok result of g's run.
func (c *scrape) collectResults(g runGroup) {
	d := c.s.descs
	v, err := c.s.runView(c.ctx, g.run.ID)
	if err != nil {
		c.fail(fmt.Errorf("run %d: %w", g.run.ID, err))
		return
	}
	if v.Summary == nil {
		return
	}
	for _, res := range v.Summary.Results {
		if res.Status != "ok" {
			continue
		}
		cfg := []string{g.job, g.kind, labelValue(res.Mode), labelValue(res.Workload),
			strconv.Itoa(res.Size), labelValue(res.Offload), labelValue(res.Placement)}
		with := func(last string) []string { return append(append([]string{}, cfg...), last) }
		interval := func(desc *prometheus.Desc, scale, median, low, high float64) {
			c.gauge(desc, median*scale, with("median")...)
			c.gauge(desc, low*scale, with("ci_low")...)
			c.gauge(desc, high*scale, with("ci_high")...)
		}
		if iv := res.RatePerSec; iv != nil && res.Metric != "throughput_bps" {
			interval(d.rate, 1, iv.Median, iv.CILow, iv.CIHigh)
		}
		if iv := res.ThroughputBps; iv != nil { // bits per second in the summary
			interval(d.throughput, 1.0/8, iv.Median, iv.CILow, iv.CIHigh)
		}
		if res.P50Ns > 0 {
			c.gauge(d.latency, float64(res.P50Ns)/1e9, with("p50")...)
			c.gauge(d.latency, float64(res.P99Ns)/1e9, with("p99")...)
		}
		if iv := res.RatioVsHost; iv != nil {
			interval(d.ratio, 1, iv.Median, iv.CILow, iv.CIHigh)
		}
	}
}

// collectAlerts sends one series per alert and the count per state.
func (c *scrape) collectAlerts() {
	d := c.s.descs
	c.gauge(d.alertsAvail, b2f(c.s.opts.Alerts != nil))
	if c.s.opts.Alerts == nil {
		return
	}
	as, err := c.s.opts.Alerts.Alerts(c.ctx)
	if err != nil {
		c.fail(fmt.Errorf("alerts: %w", err))
	}
	by := map[string]int{AlertFiring: 0, AlertPending: 0, AlertResolved: 0}
	for _, a := range as {
		by[a.State]++
		c.gauge(d.alert, b2f(a.State == AlertFiring), compoundLabel(a.Name), labelValue(a.Job),
			compoundLabel(a.ConfigKey), labelValue(a.Metric), labelValue(a.State))
	}
	states := make([]string, 0, len(by))
	for st := range by {
		states = append(states, st)
	}
	sort.Strings(states)
	for _, st := range states {
		c.gauge(d.alertsByState, float64(by[st]), labelValue(st))
	}
}

// collectScheduler sends the watch scheduler's health, per job.
func (c *scrape) collectScheduler() {
	d := c.s.descs
	c.gauge(d.schedAvail, b2f(c.s.opts.Scheduler != nil))
	if c.s.opts.Scheduler == nil {
		return
	}
	h := c.s.opts.Scheduler.Health()
	c.gauge(d.schedRunning, b2f(h.Running))
	ts := func(desc *prometheus.Desc, t time.Time, job string) {
		if !t.IsZero() {
			c.gauge(desc, float64(t.UnixNano())/1e9, job)
		}
	}
	for _, j := range h.Jobs {
		job := labelValue(j.Name)
		ts(d.schedLastRun, j.LastRun, job)
		ts(d.schedLastOK, j.LastSuccess, job)
		ts(d.schedNextRun, j.NextRun, job)
		c.gauge(d.schedLastFailed, b2f(j.LastError != ""), job)
		c.send(d.schedRuns, prometheus.CounterValue, float64(j.Runs), job)
		c.send(d.schedFailures, prometheus.CounterValue, float64(j.Failures), job)
	}
}
