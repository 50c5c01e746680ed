package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	// the job's history, if one was found after the baseline; ShiftRun
	// the run it starts at (the streak's first run, FirstRun, when no
	// change point places it).
	ChangePoint *stats.ChangePoint
	ShiftRun    int64
	// Suspects: what differs in the environment across the shift.
	Suspects []string
	Summary  string
	// Confirmed: the regression was also seen in the Job.Confirm-1 runs
	// before this one, each judged against the baseline the first of
	// them was (Streak counts the regressed runs, this one included), or
	// ByChangePoint: a change point after the baseline, whose
	// after-segment is the latest runs, shifts the run medians by at
	// least the minimum effect. Only confirmed regressions open alerts;
	// FirstRun is the first run of the streak (or the change point's, if
	// earlier).
	Confirmed     bool
	ByChangePoint bool
	Streak        int
	FirstRun      int64
	// Suppressed: the canary regressed in the same scope (Report.Noisy);
	// the finding neither opens nor resolves alerts.
	Suppressed bool
	// Lingering: not a regression, but the median is still worse by at
	// least half the minimum effect. An open alert stays open on such a
	// run (significant or not: a shift that lost its p-value to noisy
	// trials has not come back), and so does a pending streak if the
	// run is significantly worse; the streak keeps its baseline, and the
	// run does not count towards confirmation.
	Lingering bool
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

// pairKey names a configuration and metric.
func pairKey(configKey, metric string) string { return configKey + " " + metric }

// pairState is what the replay of a job's history (Analyze) knows about
// one configuration and metric.
type pairState struct {
	// pool: the runs that may serve as its baseline, oldest first —
	// complete, not noisy, and not regressed in this configuration and
	// metric.
	pool []*runData
	// streak: the consecutive runs that regressed, oldest first; frozen
	// the baseline the first of them was judged against, which the
	// streak keeps until a run is back within it.
	streak []int64
	frozen []*runData
	// frozenNoise: the runs the streak's noise term comes from.
	frozenNoise []*runData
}

// NoiseRuns is how many of the latest baseline-eligible runs the
// run-to-run noise term is estimated from (at least the baseline's
// runs): a MAD of five medians alone swings too much.
const NoiseRuns = 20

// pairHistory is one configuration and metric over the job's history:
// the run medians, their runs, and the change points found in them.
type pairHistory struct {
	ids    []int64
	series []float64
	cps    []stats.ChangePoint
	seg    map[int64]int // run → segment (0 before the first change point)
}

// Analyze compares run runID of job j with its baseline, configuration by
// configuration and metric by metric (stats.Regression, Holm-adjusted
// across the run), applies the host canary (lab jobs), confirms
// regressions over consecutive runs or by a change point, and for every
// regression names the shift in the job's history (change points over
// run medians) and the environment differences across it.
//
// Baselines are rebuilt by replaying the job's history (its latest
// HistoryRuns runs) in order, with the same rules for every run:
//   - a run that regressed in a configuration and metric, confirmed or
//     not, never enters that pair's baseline;
//   - while a pair's regressed streak lasts (pending confirmation or
//     alerted), it keeps the baseline its first regressed run was judged
//     against; a run back within that baseline (neither regressed nor
//     Lingering) ends the streak, and a finding the canary suppressed
//     leaves it as it is;
//   - noisy runs (the canary regressed) and incomplete ones are never a
//     baseline; a pinned baseline replaces all of this.
//
// The minimum effect's run-to-run term is robust: the MAD of the medians
// of the last NoiseRuns baseline-eligible runs, each taken relative to its
// own segment between change points (runNoise), so neither an outlier nor
// a shift inside the window widens it.
//
// Analyze sequences the phases: readHistory, judgedRuns, pairHistories
// (change points), the replay (judge: compareRun, applyCanary),
// confirmFindings and nameSuspects.
func Analyze(ctx context.Context, st *store.Store, j *Job, runID int64, cp stats.CPOptions, rng *rand.Rand) (*Report, error) {
	h, err := readHistory(ctx, st, j, runID)
	if err != nil {
		return nil, err
	}
	judged := judgedRuns(h.order, h.cur)
	ph := pairHistories(judged, h.cur, cp, rng)
	rp := newReplay(j, h.pin, h.openBy)
	rep := rp.run(j, judged, h.cur, ph)
	confirmFindings(rep, rp.state, ph, h.openBy, rp.confirm)
	nameSuspects(rep, judged, ph, envFingerprints(ctx, st))
	return rep, nil
}

// jobHistory is what Analyze reads of a job from the store.
type jobHistory struct {
	// order: the job's latest HistoryRuns runs, oldest first, with their
	// successful trials; cur the run analysed, one of them.
	order []*runData
	cur   *runData
	// pin: the pinned baseline run (nil: none), read from the store if
	// it is older than order.
	pin *runData
	// openBy: the job's open alerts by pairKey.
	openBy map[string]store.Alert
}

// readHistory reads job j's latest runs and trials, the noisy-run
// annotations, its pinned baseline and its open alerts; run runID must be
// among the latest runs.
func readHistory(ctx context.Context, st *store.Store, j *Job, runID int64) (*jobHistory, error) {
	runs, err := st.Runs(ctx, store.RunFilter{JobName: j.Name, Limit: HistoryRuns})
	if err != nil {
		return nil, fmt.Errorf("read the runs of job %s: %w", j.Name, err)
	}
	slices.Reverse(runs) // oldest first
	trials, err := st.JobTrials(ctx, j.Name, HistoryRuns)
	if err != nil {
		return nil, err
	}
	notes, err := st.Annotations(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("read annotations: %w", err)
	}
	order, byID := indexRuns(runs, trials, noisyRuns(notes))
	h := &jobHistory{order: order, cur: byID[runID]}
	if h.cur == nil {
		return nil, fmt.Errorf("run %d is not among the latest %d runs of job %s", runID, HistoryRuns, j.Name)
	}
	pinned, err := st.Baseline(ctx, j.Name)
	switch {
	case err == nil:
		if h.pin = byID[pinned]; h.pin == nil {
			if h.pin, err = loadRun(ctx, st, pinned); err != nil {
				return nil, err
			}
		}
	case errors.Is(err, store.ErrNotFound):
	default:
		return nil, err
	}
	open, err := st.Alerts(ctx, store.AlertFilter{State: store.AlertOpen, Job: j.Name})
	if err != nil {
		return nil, err
	}
	h.openBy = map[string]store.Alert{}
	for _, a := range open {
		h.openBy[pairKey(a.ConfigKey, a.Metric)] = a
	}
	return h, nil
}

// noisyRuns are the runs annotated noisy (NoisyNote).
func noisyRuns(notes []store.Annotation) map[int64]bool {
	noisy := map[int64]bool{}
	for _, a := range notes {
		if a.RunID != nil && strings.HasPrefix(a.Text, NoisyNote) {
			noisy[*a.RunID] = true
		}
	}
	return noisy
}

// indexRuns pairs runs (in their order) with their successful trials,
// configuration by configuration, and marks the noisy ones; trials of
// other runs are left out.
func indexRuns(runs []store.Run, trials []store.Trial, noisy map[int64]bool) (order []*runData, byID map[int64]*runData) {
	byID = map[int64]*runData{}
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
	return order, byID
}

// judgedRuns is the history the replay judges: the complete runs before
// cur (noisy ones too: the canary only suppresses its own scope), then
// cur, whatever its status.
func judgedRuns(order []*runData, cur *runData) []*runData {
	var hist []*runData
	for _, d := range order {
		if d == cur {
			break
		}
		if d.run.Status == store.StatusComplete {
			hist = append(hist, d)
		}
	}
	return append(hist, cur)
}

// pairHistories finds the change points over the run medians of every
// configuration and metric of run cur across hist, for the noise term,
// confirmation and suspects. The change-point searches draw from rng in
// the order of cur's sorted configuration keys and Metrics.
func pairHistories(hist []*runData, cur *runData, cp stats.CPOptions, rng *rand.Rand) map[string]*pairHistory {
	ph := map[string]*pairHistory{}
	for _, key := range sortedKeys(cur.trials) {
		for _, m := range Metrics {
			if len(values(cur.trials[key], m)) == 0 {
				continue
			}
			h := &pairHistory{seg: map[int64]int{}}
			for _, d := range hist {
				if vs := values(d.trials[key], m); len(vs) > 0 {
					h.series = append(h.series, stats.Median(vs))
					h.ids = append(h.ids, d.run.ID)
				}
			}
			h.cps = stats.ChangePoints(h.series, cp, rng)
			s := 0
			for i, id := range h.ids {
				for s < len(h.cps) && h.cps[s].Index <= i {
					s++
				}
				h.seg[id] = s
			}
			ph[pairKey(key, m.Name)] = h
		}
	}
	return ph
}

// replay judges the runs of a job's history in order against the
// baselines its rules give them (Analyze), carrying each configuration
// and metric's state forward.
type replay struct {
	pin     *runData // pinned baseline: replaces all the rules
	openBy  map[string]store.Alert
	last    int // baseline runs (Job.Baseline.Last)
	confirm int // regressed runs that confirm (Job.Confirm, at least 1)
	state   map[string]*pairState
}

func newReplay(j *Job, pin *runData, openBy map[string]store.Alert) *replay {
	last := j.Baseline.Last
	if last <= 0 {
		last = DefaultBaselineRuns
	}
	return &replay{pin: pin, openBy: openBy, last: last, confirm: max(j.Confirm, 1), state: map[string]*pairState{}}
}

// pair is the state of pair k, created empty.
func (rp *replay) pair(k string) *pairState {
	if s := rp.state[k]; s != nil {
		return s
	}
	s := &pairState{}
	rp.state[k] = s
	return s
}

// run judges every run of hist in order (cur is the last) and returns
// cur's report.
func (rp *replay) run(j *Job, hist []*runData, cur *runData, ph map[string]*pairHistory) *Report {
	var rep *Report
	for _, d := range hist {
		baseFor := func(key string, m Metric) (base, noise []*runData) {
			return rp.baseline(pairKey(key, m.Name), d == cur)
		}
		r, used, usedNoise := judge(j, d, baseFor, ph)
		rp.advance(r, used, usedNoise)
		if d.run.Status == store.StatusComplete && !d.noisy && !r.Noisy && d != cur {
			rp.addToPools(d, r)
		}
		if d == cur {
			rep = r
		}
	}
	return rep
}

// baseline is the baseline of pair k and the runs its noise term comes
// from (nil: the baseline's): the pinned run; else the baseline a
// regressed streak froze; else the latest runs of the pool — for the run
// analysed (latest), only those before an open alert of the pair, which
// the replay may no longer see (its streak began before the history read,
// or was judged differently then).
func (rp *replay) baseline(k string, latest bool) (base, noise []*runData) {
	ps := rp.pair(k)
	if rp.pin != nil {
		return []*runData{rp.pin}, nil
	}
	if ps.frozen != nil {
		return ps.frozen, ps.frozenNoise
	}
	pool := ps.pool
	if a, ok := rp.openBy[k]; ok && latest {
		pool = nil
		for _, r := range ps.pool {
			if r.run.ID < a.RunID {
				pool = append(pool, r)
			}
		}
	}
	return lastN(pool, rp.last), lastN(pool, max(rp.last, NoiseRuns))
}

// advance carries each finding's pair state past run r: a regression
// extends the streak (its first freezes the baseline it was judged
// against, used[i] and usedNoise[i]), a Lingering run keeps it as it is,
// a run back within the baseline ends it.
func (rp *replay) advance(r *Report, used, usedNoise [][]*runData) {
	for i := range r.Findings {
		f := &r.Findings[i]
		ps := rp.pair(pairKey(f.ConfigKey, f.Metric))
		switch {
		case f.Suppressed:
			// The machine moved: no evidence either way.
		case f.Regression.Regressed:
			if len(ps.streak) == 0 {
				ps.frozen, ps.frozenNoise = used[i], usedNoise[i]
			}
			ps.streak = append(ps.streak, r.RunID)
		case f.Lingering && len(ps.streak) > 0 && (f.Regression.Significant || alertedAt(ps, rp.confirm, rp.openBy, f, r.RunID)):
			// Not back within the baseline yet: the streak and its
			// baseline stay, without counting this run. A pending
			// streak needs the run to be significantly worse still;
			// an alerted one only that its median has not come back.
		default:
			ps.streak, ps.frozen = nil, nil
		}
	}
}

// addToPools takes run d, judged as r, into the baseline pool of every
// pair it has values for that did not regress (or had nothing to compare
// with yet) and has no streak going.
func (rp *replay) addToPools(d *runData, r *Report) {
	regressed := map[string]bool{}
	for _, f := range r.Findings {
		if f.Regression.Regressed || len(rp.pair(pairKey(f.ConfigKey, f.Metric)).streak) > 0 {
			regressed[pairKey(f.ConfigKey, f.Metric)] = true
		}
	}
	for key, ts := range d.trials {
		for _, m := range Metrics {
			k := pairKey(key, m.Name)
			if !regressed[k] && len(values(ts, m)) > 0 {
				ps := rp.pair(k)
				ps.pool = append(ps.pool, d)
			}
		}
	}
}

// confirmFindings confirms the regressions of rep (not suppressed) from
// the replay's state: an open alert continues; otherwise confirm
// consecutive regressed runs (each judged against the baseline of the
// first), or a change point after the baseline whose after-segment is the
// latest runs and whose shift reaches the minimum effect. It sets each
// one's Streak, FirstRun and, where a change point places the shift,
// ChangePoint and ShiftRun.
func confirmFindings(rep *Report, state map[string]*pairState, ph map[string]*pairHistory, openBy map[string]store.Alert, confirm int) {
	for i := range rep.Findings {
		f := &rep.Findings[i]
		if !f.Regression.Regressed || f.Suppressed {
			continue
		}
		k := pairKey(f.ConfigKey, f.Metric)
		ps := state[k]
		f.Streak = len(ps.streak)
		f.FirstRun = ps.streak[0]
		h := ph[k]
		if c := lastChangePoint(h, f); c != nil {
			f.ChangePoint = c
			f.ShiftRun = h.ids[c.Index]
		}
		if a, ok := openBy[k]; ok {
			f.Confirmed, f.FirstRun = true, a.RunID // continues an open alert: nothing to confirm
			continue
		}
		switch {
		case f.Streak >= confirm:
			f.Confirmed = true
		case f.ChangePoint != nil && shiftEffect(f.ChangePoint, metricByName(f.Metric)) >= f.Regression.MinEffect:
			f.Confirmed, f.ByChangePoint = true, true
			f.FirstRun = min(f.FirstRun, f.ShiftRun)
		}
	}
}

// nameSuspects places every regression of rep (suppressed ones too) at
// its shift run — the change point's, else the streak's first — names the
// environment differences between the run before the shift and the shift
// run as its suspects (fp gives a run's fingerprint), and writes its
// Summary.
func nameSuspects(rep *Report, hist []*runData, ph map[string]*pairHistory, fp func(runID int64) Fingerprint) {
	for i := range rep.Findings {
		f := &rep.Findings[i]
		if !f.Regression.Regressed {
			continue
		}
		if f.ShiftRun == 0 {
			f.ShiftRun = f.FirstRun
		}
		before := int64(0)
		for _, d := range hist {
			if d.run.ID < f.ShiftRun && len(d.trials[f.ConfigKey]) > 0 {
				before = d.run.ID
			}
		}
		if f.ChangePoint != nil {
			h := ph[pairKey(f.ConfigKey, f.Metric)]
			before = h.ids[f.ChangePoint.Index-1]
		}
		if before != 0 {
			f.Suspects = Diff(fp(before), fp(f.ShiftRun))
		}
		f.Summary = summary(f)
	}
}

// envFingerprints returns the fingerprint of a run's environment, read
// from the store once per run (an empty one where it cannot be read).
func envFingerprints(ctx context.Context, st *store.Store) func(runID int64) Fingerprint {
	envs := map[int64]Fingerprint{}
	return func(id int64) Fingerprint {
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
}

// judge compares run d with the baselines baseFor gives each of its
// configurations and metrics, Holm-adjusts across the run (compareRun)
// and applies the canary (applyCanary). used[i] is the baseline of
// Findings[i], noise[i] the runs its noise term came from.
func judge(j *Job, d *runData, baseFor func(key string, m Metric) (base, noise []*runData), ph map[string]*pairHistory) (*Report, [][]*runData, [][]*runData) {
	rep, used, usedNoise := compareRun(j, d, baseFor, ph)
	applyCanary(j, rep)
	return rep, used, usedNoise
}

// compareRun compares run d with the baselines baseFor gives each of its
// configurations and metrics (stats.Regression; the minimum effect is the
// metric's floor or twice runNoise over the noise runs, nil meaning the
// baseline's), Holm-adjusts across the run and marks the Lingering
// findings. A pair without baseline values gives no finding. used[i] is
// the baseline of Findings[i], noise[i] the runs its noise term came from
// (nil: the baseline's).
func compareRun(j *Job, d *runData, baseFor func(key string, m Metric) (base, noise []*runData), ph map[string]*pairHistory) (*Report, [][]*runData, [][]*runData) {
	rep := &Report{Job: j.Name, RunID: d.run.ID}
	var used, usedNoise [][]*runData
	var results []stats.RegressionResult
	for _, key := range sortedKeys(d.trials) {
		newTrials := d.trials[key]
		for _, m := range Metrics {
			newVals := values(newTrials, m)
			if len(newVals) == 0 {
				continue
			}
			base, noise := baseFor(key, m)
			var baseVals []float64
			var baseIDs []int64
			for _, b := range base {
				vs := values(b.trials[key], m)
				if len(vs) == 0 {
					continue
				}
				baseVals = append(baseVals, vs...)
				baseIDs = append(baseIDs, b.run.ID)
			}
			if len(baseVals) == 0 {
				continue
			}
			if noise == nil {
				noise = base
			}
			var runMedians []float64
			var segs []int
			h := ph[pairKey(key, m.Name)]
			for _, b := range noise {
				if vs := values(b.trials[key], m); len(vs) > 0 {
					runMedians = append(runMedians, stats.Median(vs))
					seg := 0
					if h != nil {
						seg = h.seg[b.run.ID]
					}
					segs = append(segs, seg)
				}
			}
			minEffect := max(m.Floor, 2*runNoise(runMedians, segs))
			f := Finding{ConfigKey: key, Mode: newTrials[0].Mode, Workload: newTrials[0].Workload, Metric: m.Name, BaselineRuns: baseIDs,
				Regression: stats.Regression(baseVals, newVals, m.HigherIsBetter, minEffect)}
			rep.Findings = append(rep.Findings, f)
			used, usedNoise = append(used, base), append(usedNoise, noise)
			results = append(results, f.Regression)
		}
	}
	stats.AdjustRegressions(results)
	for i := range rep.Findings {
		f := &rep.Findings[i]
		f.Regression = results[i]
		r := f.Regression
		f.Lingering = !r.Regressed && r.Effect >= r.MinEffect/2
	}
	return rep, used, usedNoise
}

// applyCanary applies the host canary to a lab job's report: the
// baseline mode measures the machine itself. Where it regressed too
// (same workload, size, offload, placement and metric), the other modes'
// changes are the machine's, not their paths': those findings are
// suppressed and the run is noisy. Target jobs have no canary.
func applyCanary(j *Job, rep *Report) {
	if j.Spec == nil {
		return
	}
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

// alertedAt reports whether finding f's pair was alerted at run id of the
// replay: its streak reached the job's confirm, or an alert that is open
// now had opened by then.
func alertedAt(ps *pairState, confirm int, open map[string]store.Alert, f *Finding, id int64) bool {
	if len(ps.streak) >= confirm {
		return true
	}
	a, ok := open[pairKey(f.ConfigKey, f.Metric)]
	return ok && a.RunID <= id
}

// lastChangePoint returns the pair's latest change point if it places
// finding f's shift: it lies after every baseline run (a shift inside
// the baseline was judged normal then; with a short after-segment the
// search also tends to put the point too early), so its after-segment
// is the latest runs, this one included.
func lastChangePoint(h *pairHistory, f *Finding) *stats.ChangePoint {
	if h == nil || len(h.cps) == 0 {
		return nil
	}
	c := h.cps[len(h.cps)-1]
	if len(f.BaselineRuns) > 0 && h.ids[c.Index] <= slices.Max(f.BaselineRuns) {
		return nil
	}
	return &c
}

// shiftEffect is a change point's shift in metric m's bad direction, as
// a fraction of the before-segment's median (negative: an improvement).
func shiftEffect(c *stats.ChangePoint, m Metric) float64 {
	if c.BeforeMedian == 0 {
		return 0
	}
	e := (c.AfterMedian - c.BeforeMedian) / math.Abs(c.BeforeMedian)
	if m.HigherIsBetter {
		e = -e
	}
	return e
}

// madConsistency makes 1.4826·MAD an unbiased estimate of a normal
// standard deviation for n values (Croux & Rousseeuw 1992: their small
// sample factors up to 9, n/(n-0.8) beyond).
func madConsistency(n int) float64 {
	small := [...]float64{2: 1.196, 3: 1.495, 4: 1.363, 5: 1.206, 6: 1.200, 7: 1.140, 8: 1.129, 9: 1.107}
	if n < len(small) {
		return small[max(n, 2)]
	}
	return float64(n) / (float64(n) - 0.8)
}

// runNoise is the baseline's run-to-run coefficient of variation,
// robustly: 1.4826 × the MAD of the runs' medians, each taken relative to
// the median of its own segment (segs: runs between the same change
// points; a segment with one baseline run says nothing about noise and is
// left out), over the median of all of them. One outlying run cannot
// move it much, and a shift between segments not at all. 0 when fewer
// than two runs remain (the floor applies).
func runNoise(meds []float64, segs []int) float64 {
	bySeg := map[int][]float64{}
	for i, v := range meds {
		bySeg[segs[i]] = append(bySeg[segs[i]], v)
	}
	var dev []float64
	for _, vs := range bySeg {
		if len(vs) < 2 {
			continue
		}
		c := stats.Median(vs)
		for _, v := range vs {
			dev = append(dev, math.Abs(v-c))
		}
	}
	if len(dev) < 2 || len(meds) == 0 {
		return 0
	}
	center := math.Abs(stats.Median(meds))
	if center == 0 {
		return 0
	}
	return 1.4826 * madConsistency(len(dev)) * stats.Median(dev) / center
}

// loadRun reads one run and its successful trials.
func loadRun(ctx context.Context, st *store.Store, id int64) (*runData, error) {
	r, err := st.Run(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read pinned baseline run %d: %w", id, err)
	}
	d := &runData{run: r, trials: map[string][]*store.Trial{}}
	ts, err := st.Trials(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read trials of pinned baseline run %d: %w", id, err)
	}
	for i := range ts {
		if ts[i].Error == "" {
			d.trials[ts[i].ConfigKey] = append(d.trials[ts[i].ConfigKey], &ts[i])
		}
	}
	return d, nil
}

func lastN(rs []*runData, n int) []*runData {
	if len(rs) > n {
		return rs[len(rs)-n:]
	}
	return rs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
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

func describe(r stats.RegressionResult) string {
	return fmt.Sprintf("%+.1f%% (%s → %s, p=%.2g, min effect %.1f%%)",
		r.DeltaPct, fmtVal(r.Base.Center), fmtVal(r.New.Center), r.PAdjusted, r.MinEffect*100)
}

func fmtVal(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.3gG", v/1e9)
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
	if f.ByChangePoint {
		s += "; confirmed by the change point"
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
