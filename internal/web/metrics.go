package web

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/latlab/latlab/internal/store"
)

// Metric names served on /metrics (Prometheus text exposition format
// 0.0.4). docs/dashboard.md describes them; docs/grafana-latlab.json
// charts them.
const (
	mRuns            = "latlab_runs"
	mLastRunID       = "latlab_last_run_id"
	mLastRunTime     = "latlab_last_run_timestamp_seconds"
	mLastRunDuration = "latlab_last_run_duration_seconds"
	mRate            = "latlab_rate_per_second"
	mThroughput      = "latlab_throughput_bits_per_second"
	mLatency         = "latlab_latency_seconds"
	mRatio           = "latlab_ratio_vs_baseline"
	mAlertsAvail     = "latlab_alerts_available"
	mAlert           = "latlab_alert"
	mAlertsByState   = "latlab_alerts"
	mSchedAvail      = "latlab_scheduler_available"
	mSchedRunning    = "latlab_scheduler_running"
	mSchedLastRun    = "latlab_scheduler_last_run_timestamp_seconds"
	mSchedLastOK     = "latlab_scheduler_last_success_timestamp_seconds"
	mSchedNextRun    = "latlab_scheduler_next_run_timestamp_seconds"
	mSchedLastFailed = "latlab_scheduler_last_run_failed"
	mSchedLastError  = "latlab_scheduler_last_error_info"
	mSchedRuns       = "latlab_scheduler_runs_total"
	mSchedFailures   = "latlab_scheduler_failures_total"
	mScrapeErrors    = "latlab_scrape_errors"
)

var metricHelp = map[string][2]string{
	mRuns:            {"gauge", "Recorded runs by status."},
	mLastRunID:       {"gauge", "Id of the latest complete run of each job and kind."},
	mLastRunTime:     {"gauge", "When the latest complete run of each job and kind finished (Unix time)."},
	mLastRunDuration: {"gauge", "Wall-clock duration of the latest complete run of each job and kind."},
	mRate:            {"gauge", "Transactions per second of a configuration in the latest complete run: median over trials and its 95% CI bounds (stat label)."},
	mThroughput:      {"gauge", "tcp_stream throughput of a configuration in the latest complete run: median over trials and its 95% CI bounds (stat label)."},
	mLatency:         {"gauge", "Latency percentiles of a configuration in the latest complete run, from the merged histograms of its trials."},
	mRatio:           {"gauge", "Rate (throughput for tcp_stream) of a mode over the baseline mode's, paired by round: median and 95% CI bounds (stat label)."},
	mAlertsAvail:     {"gauge", "1 if this process knows the watch alerts, 0 if alerts are not available here."},
	mAlert:           {"gauge", "One series per alert, labelled with its state; 1 while firing, 0 otherwise."},
	mAlertsByState:   {"gauge", "Number of alerts in each state."},
	mSchedAvail:      {"gauge", "1 if this process runs the watch scheduler, 0 if scheduler health is not available here."},
	mSchedRunning:    {"gauge", "1 while the watch scheduler runs."},
	mSchedLastRun:    {"gauge", "When the job's last run started (Unix time)."},
	mSchedLastOK:     {"gauge", "When the job's last successful run ended (Unix time)."},
	mSchedNextRun:    {"gauge", "When the job runs next (Unix time)."},
	mSchedLastFailed: {"gauge", "1 if the job's last run failed."},
	mSchedLastError:  {"gauge", "The job's last error, as a label (1 while the last run failed)."},
	mSchedRuns:       {"counter", "Runs of the job since the scheduler started."},
	mSchedFailures:   {"counter", "Failed runs of the job since the scheduler started."},
	mScrapeErrors:    {"gauge", "Errors met while collecting these metrics (details in the ui's log)."},
}

// promWriter collects samples per metric family, then writes them in the
// text format: families contiguous, HELP and TYPE once each, no duplicate
// series.
type promWriter struct {
	order []string
	fams  map[string]*bytes.Buffer
	seen  map[string]bool
}

func newPromWriter() *promWriter {
	return &promWriter{fams: map[string]*bytes.Buffer{}, seen: map[string]bool{}}
}

// add records name{labels} value; labels are name, value pairs.
func (p *promWriter) add(name string, v float64, labels ...string) {
	var b strings.Builder
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(labels[i])
			b.WriteString(`="`)
			b.WriteString(escapeLabel(labels[i+1]))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	series := b.String()
	if p.seen[series] {
		return
	}
	p.seen[series] = true
	f := p.fams[name]
	if f == nil {
		f = &bytes.Buffer{}
		p.fams[name] = f
		p.order = append(p.order, name)
	}
	f.WriteString(series)
	f.WriteByte(' ')
	f.WriteString(formatValue(v))
	f.WriteByte('\n')
}

func (p *promWriter) bytes() []byte {
	var out bytes.Buffer
	for _, name := range p.order {
		h := metricHelp[name]
		out.WriteString("# HELP " + name + " " + escapeHelp(h[1]) + "\n")
		out.WriteString("# TYPE " + name + " " + h[0] + "\n")
		out.Write(p.fams[name].Bytes())
	}
	return out.Bytes()
}

// escapeLabel escapes a label value: backslash, double quote, newline.
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return r.Replace(s)
}

// escapeHelp escapes HELP text: backslash and newline.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// maxMetricGroups bounds the (job, kind) groups /metrics reports, and so
// its series: jobs come from a config, kinds from latlab's commands.
const maxMetricGroups = 200

// Label values are never free text. Names (jobs, kinds, modes, workloads,
// offload presets, placements, metrics, states) must be safe identifiers;
// compound keys (an alert's config key) are such names joined by '=', '/',
// ',' and spaces; anything else is replaced by a bounded, sanitised form
// that still tells series apart ("x_" + the safe characters + a hash). An
// error message, the one free-text label, is cut to its first line,
// sanitised and bounded (freeTextLabel).
const (
	maxNameLabel     = 64
	maxCompoundLabel = 256
	maxFreeLabel     = 120
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

// freeTextLabel bounds and sanitises free text (an error message) for a
// label: the first line, characters outside a conservative set as '_',
// at most maxFreeLabel bytes ("..." when cut).
func freeTextLabel(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxFreeLabel-3 {
			b.WriteString("...")
			break
		}
		if compoundRune(r) || strings.ContainsRune("()[]<>@#%&*!?'|~^$;", r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	body := s.metrics(r.Context())
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write(body)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metrics collects every metric.
func (s *Server) metrics(ctx context.Context) []byte {
	p := newPromWriter()
	errs := 0
	// Counts and each (job, kind)'s latest complete run come from the
	// store's run summary: a scrape reads a few rows per group, never
	// every run; each latest run's summary comes from the view cache.
	counts, err := s.opts.Store.RunCounts(ctx)
	if err != nil {
		s.opts.Log.Printf("metrics: %v", err)
		errs++
	}
	for _, st := range []store.Status{store.StatusComplete, store.StatusIncomplete, store.StatusRunning} {
		p.add(mRuns, float64(counts[st]), "status", string(st))
	}
	groups, err := s.opts.Store.RunGroups(ctx, maxMetricGroups+1)
	if err != nil {
		s.opts.Log.Printf("metrics: %v", err)
		errs++
	}
	if len(groups) > maxMetricGroups {
		s.opts.Log.Printf("metrics: more than %d (job, kind) groups of runs: only the first %d are reported", maxMetricGroups, maxMetricGroups)
		groups = groups[:maxMetricGroups]
		errs++
	}
	type jk struct{ job, kind string }
	latest := map[jk]store.Run{}
	var keys []jk
	for _, g := range groups { // ordered by job, then kind
		if g.LatestComplete.ID == 0 {
			continue
		}
		k := jk{labelValue(g.JobName), labelValue(g.Kind)}
		if _, dup := latest[k]; dup { // two raw names sanitised alike: keep the first
			continue
		}
		latest[k] = g.LatestComplete
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].job != keys[j].job {
			return keys[i].job < keys[j].job
		}
		return keys[i].kind < keys[j].kind
	})
	for _, k := range keys {
		run := latest[k]
		jl := []string{"latlab_job", k.job, "kind", k.kind}
		p.add(mLastRunID, float64(run.ID), jl...)
		p.add(mLastRunTime, float64(run.Finished.UnixNano())/1e9, jl...)
		p.add(mLastRunDuration, run.Finished.Sub(run.Started).Seconds(), jl...)
	}
	for _, k := range keys {
		run := latest[k]
		v, err := s.runView(ctx, run.ID)
		if err != nil {
			s.opts.Log.Printf("metrics: run %d: %v", run.ID, err)
			errs++
			continue
		}
		if v.Summary == nil {
			continue
		}
		for _, res := range v.Summary.Results {
			if res.Status != "ok" {
				continue
			}
			l := []string{"latlab_job", k.job, "kind", k.kind, "mode", labelValue(res.Mode), "workload", labelValue(res.Workload),
				"size", strconv.Itoa(res.Size), "offload", labelValue(res.Offload), "placement", labelValue(res.Placement)}
			with := func(extra ...string) []string { return append(append([]string{}, l...), extra...) }
			if iv := res.RatePerSec; iv != nil && res.Metric != "throughput_bps" {
				p.add(mRate, iv.Median, with("stat", "median")...)
				p.add(mRate, iv.CILow, with("stat", "ci_low")...)
				p.add(mRate, iv.CIHigh, with("stat", "ci_high")...)
			}
			if iv := res.ThroughputBps; iv != nil {
				p.add(mThroughput, iv.Median, with("stat", "median")...)
				p.add(mThroughput, iv.CILow, with("stat", "ci_low")...)
				p.add(mThroughput, iv.CIHigh, with("stat", "ci_high")...)
			}
			if res.P50Ns > 0 {
				p.add(mLatency, float64(res.P50Ns)/1e9, with("quantile", "0.5")...)
				p.add(mLatency, float64(res.P99Ns)/1e9, with("quantile", "0.99")...)
			}
			if iv := res.RatioVsHost; iv != nil {
				p.add(mRatio, iv.Median, with("stat", "median")...)
				p.add(mRatio, iv.CILow, with("stat", "ci_low")...)
				p.add(mRatio, iv.CIHigh, with("stat", "ci_high")...)
			}
		}
	}

	p.add(mAlertsAvail, b2f(s.opts.Alerts != nil))
	if s.opts.Alerts != nil {
		as, err := s.opts.Alerts.Alerts(ctx)
		if err != nil {
			s.opts.Log.Printf("metrics: alerts: %v", err)
			errs++
		}
		by := map[string]int{AlertFiring: 0, AlertPending: 0, AlertResolved: 0}
		for _, a := range as {
			by[a.State]++
			p.add(mAlert, b2f(a.State == AlertFiring), "alert", compoundLabel(a.Name), "latlab_job", labelValue(a.Job),
				"config", compoundLabel(a.ConfigKey), "metric", labelValue(a.Metric), "state", labelValue(a.State))
		}
		states := make([]string, 0, len(by))
		for st := range by {
			states = append(states, st)
		}
		sort.Strings(states)
		for _, st := range states {
			p.add(mAlertsByState, float64(by[st]), "state", labelValue(st))
		}
	}
	p.add(mSchedAvail, b2f(s.opts.Scheduler != nil))
	if s.opts.Scheduler != nil {
		h := s.opts.Scheduler.Health()
		p.add(mSchedRunning, b2f(h.Running))
		ts := func(name string, t interface {
			IsZero() bool
			UnixNano() int64
		}, jl []string) {
			if !t.IsZero() {
				p.add(name, float64(t.UnixNano())/1e9, jl...)
			}
		}
		for _, j := range h.Jobs {
			jl := []string{"latlab_job", labelValue(j.Name)}
			ts(mSchedLastRun, j.LastRun, jl)
			ts(mSchedLastOK, j.LastSuccess, jl)
			ts(mSchedNextRun, j.NextRun, jl)
			p.add(mSchedLastFailed, b2f(j.LastError != ""), jl...)
			if j.LastError != "" {
				p.add(mSchedLastError, 1, "latlab_job", labelValue(j.Name), "error", freeTextLabel(j.LastError))
			}
			p.add(mSchedRuns, float64(j.Runs), jl...)
			p.add(mSchedFailures, float64(j.Failures), jl...)
		}
	}
	p.add(mScrapeErrors, float64(errs))
	return p.bytes()
}
