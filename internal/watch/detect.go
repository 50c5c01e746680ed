package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/store"
)

// Metric is a per-trial value regression detection looks at.
type Metric struct {
	Name           string // rate, p50, p99
	HigherIsBetter bool
	// Floor is the smallest effect worth an alert (stats.MinEffect*).
	Floor float64
	// Value reads the metric from a trial; ok false where it does not
	// apply (latency percentiles of tcp_stream).
	Value func(t *store.Trial) (v float64, ok bool)
}

// Metrics are the metrics watch compares: the rate (throughput for
// tcp_stream), p50 and p99 latency.
var Metrics = []Metric{
	{Name: "rate", HigherIsBetter: true, Floor: stats.MinEffectRate, Value: func(t *store.Trial) (float64, bool) {
		if t.Workload == "tcp_stream" {
			return t.ThroughputBps, true
		}
		return t.RatePerSec, true
	}},
	{Name: "p50", Floor: stats.MinEffectP50, Value: func(t *store.Trial) (float64, bool) {
		return float64(t.P50Ns), t.Workload != "tcp_stream" && t.P50Ns > 0
	}},
	{Name: "p99", Floor: stats.MinEffectP99, Value: func(t *store.Trial) (float64, bool) {
		return float64(t.P99Ns), t.Workload != "tcp_stream" && t.P99Ns > 0
	}},
}

// NoisyNote starts the annotation that marks a run noisy: its baseline
// mode (the host canary) regressed, so the machine, not the path, moved.
// Noisy runs raise and resolve no alerts and are never a baseline.
const NoisyNote = "watch: noisy run: "

// HistoryRuns is how many of a job's latest runs detection reads.
const HistoryRuns = 100

// Finding is one configuration and metric of a run compared with its
// baseline.
type Finding struct {
	ConfigKey string
	Mode      string
	Workload  string
	Metric    string
	// BaselineRuns are the runs compared with.
	BaselineRuns []int64
	Regression   stats.RegressionResult
	// ChangePoint is the latest shift of the metric's run medians over
	// the job's history, if one was found; ShiftRun the run it starts at
	// (the current run when no change point places it).
	ChangePoint *stats.ChangePoint
	ShiftRun    int64
	// Suspects: what differs in the environment across the shift.
	Suspects []string
	Summary  string
	// Confirmed: the regression was also seen in the Job.Confirm-1 good
	// runs before this one (each against its own baseline). Only
	// confirmed regressions open alerts; FirstRun is the first run of the
	// streak.
	Confirmed bool
	FirstRun  int64
	// Suppressed: the canary regressed in the same scope (Report.Noisy);
	// the finding neither opens nor resolves alerts.
	Suppressed bool
}

// Report is what detection made of one run.
type Report struct {
	Job   string
	RunID int64
	// Noisy: the canary (the lab's baseline mode) regressed itself; the
	// findings in its scope are Suppressed, and the run is never a
	// baseline.
	Noisy       bool
	NoisyReason string
	Findings    []Finding
}

// Regressions returns the findings that regressed and are not
// suppressed by the canary.
func (r *Report) Regressions() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Regression.Regressed && !f.Suppressed {
			out = append(out, f)
		}
	}
	return out
}

type runData struct {
	run    store.Run
	trials map[string][]*store.Trial // config key → successful trials
	noisy  bool
}

// Analyze compares run runID of job with its baseline, configuration by
// configuration and metric by metric (stats.Regression, Holm-adjusted
// across the run), applies the host canary (lab jobs), and for every
// regression looks for the shift in the job's history (change points
// over run medians) and the environment differences across it.
//
// While an alert is open for a configuration and metric, that pair keeps
// the baseline it had when the alert opened (the runs before the opening
// run), so a regression that persists does not become its own baseline.
func Analyze(ctx context.Context, st *store.Store, j *Job, runID int64, cp stats.CPOptions, rng *rand.Rand) (*Report, error) {
	rep := &Report{Job: j.Name, RunID: runID}
	runs, err := st.Runs(ctx, store.RunFilter{JobName: j.Name, Limit: HistoryRuns})
	if err != nil {
		return nil, err
	}
	slices.Reverse(runs) // oldest first
	trials, err := st.JobTrials(ctx, j.Name, HistoryRuns)
	if err != nil {
		return nil, err
	}
	notes, err := st.Annotations(ctx, nil)
	if err != nil {
		return nil, err
	}
	noisy := map[int64]bool{}
	for _, a := range notes {
		if a.RunID != nil && strings.HasPrefix(a.Text, NoisyNote) {
			noisy[*a.RunID] = true
		}
	}
	byID := map[int64]*runData{}
	var order []*runData
	for _, r := range runs {
		d := &runData{run: r, trials: map[string][]*store.Trial{}, noisy: noisy[r.ID]}
		byID[r.ID] = d
		order = append(order, d)
	}
	for i := range trials {
		t := &trials[i]
		if d := byID[t.RunID]; d != nil && t.Error == "" {
			d.trials[t.ConfigKey] = append(d.trials[t.ConfigKey], t)
		}
	}
	cur := byID[runID]
	if cur == nil {
		return nil, fmt.Errorf("run %d is not among the latest %d runs of job %s", runID, HistoryRuns, j.Name)
	}
	// Candidate baseline runs: complete, not noisy, before this one.
	var good []*runData
	pinned, err := st.Baseline(ctx, j.Name)
	switch {
	case err == nil:
		d := byID[pinned]
		if d == nil {
			r, err := st.Run(ctx, pinned)
			if err != nil {
				return nil, err
			}
			d = &runData{run: r, trials: map[string][]*store.Trial{}}
			ts, err := st.Trials(ctx, pinned)
			if err != nil {
				return nil, err
			}
			for i := range ts {
				if ts[i].Error == "" {
					d.trials[ts[i].ConfigKey] = append(d.trials[ts[i].ConfigKey], &ts[i])
				}
			}
		}
		good = []*runData{d}
	case errors.Is(err, store.ErrNotFound):
		for _, d := range order {
			if d == cur {
				break
			}
			if d.run.Status == store.StatusComplete && !d.noisy {
				good = append(good, d)
			}
		}
	default:
		return nil, err
	}
	open, err := st.Alerts(ctx, store.AlertFilter{State: store.AlertOpen, Job: j.Name})
	if err != nil {
		return nil, err
	}
	openBy := map[string]store.Alert{}
	for _, a := range open {
		openBy[a.DedupeKey] = a
	}
	last := j.Baseline.Last
	if last <= 0 {
		last = DefaultBaselineRuns
	}

	keys := make([]string, 0, len(cur.trials))
	for k := range cur.trials {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var results []stats.RegressionResult
	for _, key := range keys {
		newTrials := cur.trials[key]
		for _, m := range Metrics {
			newVals := values(newTrials, m)
			if len(newVals) == 0 {
				continue
			}
			base := good
			if a, ok := openBy[store.AlertKey(j.Name, key, m.Name)]; ok && pinned == 0 {
				base = nil
				for _, d := range good {
					if d.run.ID < a.RunID {
						base = append(base, d)
					}
				}
			}
			if pinned == 0 && len(base) > last {
				base = base[len(base)-last:]
			}
			var baseVals, runMedians []float64
			var baseIDs []int64
			for _, d := range base {
				vs := values(d.trials[key], m)
				if len(vs) == 0 {
					continue
				}
				baseVals = append(baseVals, vs...)
				runMedians = append(runMedians, median(vs))
				baseIDs = append(baseIDs, d.run.ID)
			}
			if len(baseVals) == 0 {
				continue
			}
			f := Finding{ConfigKey: key, Mode: newTrials[0].Mode, Workload: newTrials[0].Workload, Metric: m.Name, BaselineRuns: baseIDs,
				Regression: stats.Regression(baseVals, newVals, m.HigherIsBetter, stats.MinEffect(m.Floor, runMedians))}
			rep.Findings = append(rep.Findings, f)
			results = append(results, f.Regression)
		}
	}
	stats.AdjustRegressions(results)
	for i := range rep.Findings {
		rep.Findings[i].Regression = results[i]
	}

	// The canary: in a lab job the baseline mode measures the machine
	// itself. Where it regressed too (same workload, size, offload,
	// placement and metric), the other modes' changes are the machine's,
	// not their paths': those findings are suppressed and the run is
	// noisy.
	if j.Spec != nil {
		canary := j.Spec.Baseline
		if canary == "" {
			canary = "host"
		}
		hit := map[string]string{} // scope → why
		for _, f := range rep.Findings {
			if f.Mode == canary && f.Regression.Regressed {
				hit[canaryScope(f)] = fmt.Sprintf("canary %s %s %s", f.ConfigKey, f.Metric, describe(f.Regression))
			}
		}
		var why []string
		for i := range rep.Findings {
			f := &rep.Findings[i]
			if r, ok := hit[canaryScope(*f)]; ok {
				f.Suppressed = true
				if !slices.Contains(why, r) {
					why = append(why, r)
				}
			}
		}
		if len(why) > 0 {
			slices.Sort(why)
			rep.Noisy, rep.NoisyReason = true, strings.Join(why, "; ")
		}
	}

	// Confirmation: the same configuration and metric must have regressed
	// in the previous Confirm-1 good runs too, each against the last runs
	// before it (or the pin).
	confirm := max(j.Confirm, 1)
	var prev []*runData // complete runs before this one, noisy ones too
	for _, d := range order {
		if d == cur {
			break
		}
		if d.run.Status == store.StatusComplete {
			prev = append(prev, d)
		}
	}
	for i := range rep.Findings {
		f := &rep.Findings[i]
		if !f.Regression.Regressed || f.Suppressed {
			continue
		}
		f.Confirmed, f.FirstRun = true, runID
		if a, ok := openBy[store.AlertKey(j.Name, f.ConfigKey, f.Metric)]; ok {
			f.FirstRun = a.RunID // continues an open alert: nothing to confirm
			continue
		}
		m := metricByName(f.Metric)
		for k := 1; k < confirm; k++ {
			pi := len(prev) - k
			if pi < 0 {
				f.Confirmed = false
				break
			}
			bs := good
			if pinned == 0 {
				bs = nil
				for _, d := range good {
					if d.run.ID < prev[pi].run.ID {
						bs = append(bs, d)
					}
				}
				bs = bs[max(0, len(bs)-last):]
			}
			var bv, rm []float64
			for _, d := range bs {
				if vs := values(d.trials[f.ConfigKey], m); len(vs) > 0 {
					bv = append(bv, vs...)
					rm = append(rm, median(vs))
				}
			}
			nv := values(prev[pi].trials[f.ConfigKey], m)
			if len(bv) == 0 || len(nv) == 0 || !stats.Regression(bv, nv, m.HigherIsBetter, stats.MinEffect(m.Floor, rm)).Regressed {
				f.Confirmed = false
				break
			}
			f.FirstRun = prev[pi].run.ID
		}
	}

	envs := map[int64]Fingerprint{}
	fp := func(id int64) Fingerprint {
		if f, ok := envs[id]; ok {
			return f
		}
		e, err := st.Environment(ctx, id)
		if err != nil {
			e = store.Environment{}
		}
		envs[id] = FingerprintOf(e)
		return envs[id]
	}
	// History for change points: the complete runs (noisy ones too: the
	// canary only suppresses its own scope) and this one.
	hist := append(slices.Clone(prev), cur)
	for i := range rep.Findings {
		f := &rep.Findings[i]
		if !f.Regression.Regressed {
			continue
		}
		m := metricByName(f.Metric)
		var series []float64
		var ids []int64
		for _, d := range hist {
			if vs := values(d.trials[f.ConfigKey], m); len(vs) > 0 {
				series = append(series, median(vs))
				ids = append(ids, d.run.ID)
			}
		}
		f.ShiftRun = f.FirstRun
		if cps := stats.ChangePoints(series, cp, rng); len(cps) > 0 {
			c := cps[len(cps)-1]
			// Only a shift inside the baseline window or after it explains
			// this regression; older ones were absorbed long ago.
			if len(f.BaselineRuns) == 0 || ids[c.Index] >= f.BaselineRuns[0] {
				f.ChangePoint = &c
				f.ShiftRun = ids[c.Index]
			}
		}
		before := int64(0)
		if f.ChangePoint != nil {
			before = ids[f.ChangePoint.Index-1]
		} else {
			for _, d := range hist {
				if d.run.ID < f.ShiftRun {
					before = d.run.ID
				}
			}
		}
		if before != 0 {
			f.Suspects = Diff(fp(before), fp(f.ShiftRun))
		}
		f.Summary = summary(f)
	}
	return rep, nil
}

// canaryScope is a finding's configuration without its mode, and its
// metric.
func canaryScope(f Finding) string {
	k := f.ConfigKey
	if rest, ok := strings.CutPrefix(k, "mode="+f.Mode); ok {
		k = rest
	}
	return k + " " + f.Metric
}

func metricByName(name string) Metric {
	for _, m := range Metrics {
		if m.Name == name {
			return m
		}
	}
	return Metrics[0]
}

func values(ts []*store.Trial, m Metric) []float64 {
	var out []float64
	for _, t := range ts {
		if v, ok := m.Value(t); ok {
			out = append(out, v)
		}
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func describe(r stats.RegressionResult) string {
	return fmt.Sprintf("%+.1f%% (%s → %s, p=%.2g, min effect %.1f%%)",
		r.DeltaPct, fmtVal(r.Base.Center), fmtVal(r.New.Center), r.PAdjusted, r.MinEffect*100)
}

func fmtVal(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.4gk", v/1e3)
	}
	return fmt.Sprintf("%.4g", v)
}

func summary(f *Finding) string {
	what := f.Metric
	if f.Metric != "rate" {
		what += " latency (ns)"
	}
	s := fmt.Sprintf("%s %s regressed %s", f.ConfigKey, what, describe(f.Regression))
	if f.ChangePoint != nil {
		s += fmt.Sprintf("; shift at run %d (run medians %s → %s, p=%.2g)", f.ShiftRun,
			fmtVal(f.ChangePoint.BeforeMedian), fmtVal(f.ChangePoint.AfterMedian), f.ChangePoint.P)
	}
	if len(f.Suspects) > 0 {
		s += "; suspects: " + strings.Join(f.Suspects, ", ")
	}
	return s
}

// suspectsJSON encodes suspects for the store.
func suspectsJSON(s []string) json.RawMessage {
	if len(s) == 0 {
		return nil
	}
	b, _ := json.Marshal(s)
	return b
}
