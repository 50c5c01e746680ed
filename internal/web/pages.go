package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/report"
	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/store"
)

// ---- runs list ----

type runRow struct {
	store.Run
	Duration string
	Trials   int
	Failed   int
}

type runsData struct {
	Runs              []runRow
	Page              int
	PrevURL, NextURL  string
	Status, Kind, Job string
	Statuses          []string
	First, Last       int
}

// Paging bounds of the runs list: ?page=N (1..MaxPage) of ?limit=N runs
// (1..MaxPageSize; default Options.PageSize). Anything else is a 400, so a
// request can never make the server read more than one page of runs.
const (
	MaxPageSize = 500
	MaxPage     = 1_000_000
)

// boundedParam parses query parameter name as an integer in lo..hi; def
// when absent.
func boundedParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("bad %s %q: want %d..%d", name, v, lo, hi)
	}
	return n, nil
}

func (s *Server) handleRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pg, err := boundedParam(q, "page", 1, 1, MaxPage)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	per, err := boundedParam(q, "limit", s.opts.PageSize, 1, MaxPageSize)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	f := store.RunFilter{Status: store.Status(q.Get("status")), Kind: q.Get("kind"), JobName: q.Get("job")}
	// One page, plus one row to know whether there is a next page.
	f.Limit, f.Offset = per+1, (pg-1)*per
	runs, err := s.opts.Store.Runs(r.Context(), f)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	d := runsData{Page: pg, Status: string(f.Status), Kind: f.Kind, Job: f.JobName,
		Statuses: []string{"", string(store.StatusComplete), string(store.StatusIncomplete), string(store.StatusRunning)}}
	link := func(p int) string {
		v := url.Values{}
		for _, k := range []string{"status", "kind", "job", "limit"} {
			if x := q.Get(k); x != "" {
				v.Set(k, x)
			}
		}
		if p > 1 {
			v.Set("page", strconv.Itoa(p))
		}
		if len(v) == 0 {
			return "/"
		}
		return "/?" + v.Encode()
	}
	if len(runs) > per {
		d.NextURL = link(pg + 1)
		runs = runs[:per]
	}
	if pg > 1 {
		d.PrevURL = link(pg - 1)
	}
	ids := make([]int64, len(runs))
	for i, run := range runs {
		ids[i] = run.ID
	}
	counts, err := s.opts.Store.TrialCounts(r.Context(), ids)
	if err != nil {
		s.opts.Log.Printf("runs page: %v", err)
	}
	for _, run := range runs {
		c := counts[run.ID]
		d.Runs = append(d.Runs, runRow{Run: run, Duration: runDuration(run), Trials: c.Trials, Failed: c.Failed})
	}
	d.First, d.Last = f.Offset+1, f.Offset+len(d.Runs)
	s.render(w, http.StatusOK, "runs", "runs", "latlab runs", d)
}

// ---- one run ----

// loadRun reads the run whose id is arg; on a bad id or a store error it
// has answered the request (400, 404 or 500) and returns false.
func (s *Server) loadRun(w http.ResponseWriter, r *http.Request, arg string) (store.Run, bool) {
	id, err := parseID(arg)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return store.Run{}, false
	}
	run, err := s.opts.Store.Run(r.Context(), id)
	if err != nil {
		s.storeErr(w, r, err)
		return store.Run{}, false
	}
	return run, true
}

func (s *Server) handleRun(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	v, err := s.runView(r.Context(), id)
	if err != nil {
		s.storeErr(w, r, err)
		return
	}
	s.render(w, http.StatusOK, "run", "runs", fmt.Sprintf("latlab run %d", id), struct {
		*runView
		Generated time.Time
	}{v, time.Time{}})
}

// ---- history of a configuration ----

type runPoint struct {
	Run            store.Run
	N              int
	Rate, P50, P99 stats.Estimate
}

type changeView struct {
	Metric   string
	Before   store.Run
	After    store.Run
	From, To string
	Suspects []string
}

type metricChart struct {
	Name  string
	Chart template.HTML
}

type historyData struct {
	Key       string
	Keys      []string
	Stream    bool
	Charts    []metricChart
	Rows      []historyRow
	Changes   []changeView
	CPMissing bool
	Truncated bool
	NRuns     int
}

type historyRow struct {
	Run                  store.Run
	N                    int
	Rate, P50, P99       string
	RateCI, P50CI, P99CI string
	Change               bool
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	key := r.URL.Query().Get("key")
	d := historyData{Key: key, CPMissing: s.opts.ChangePoints == nil}
	if key == "" {
		keys, err := s.recentKeys(ctx, 20)
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		d.Keys = keys
		s.render(w, http.StatusOK, "history", "history", "latlab history", d)
		return
	}
	pts, truncated, err := s.history(ctx, key, s.opts.HistoryRuns)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	d.Truncated, d.NRuns = truncated, len(pts)
	d.Stream = strings.Contains(key, "workload=tcp_stream")
	if len(pts) == 0 {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no trials of configuration %q", key))
		return
	}
	anns, _ := s.opts.Store.Annotations(ctx, nil)
	envs := map[int64][]kv{}
	envOf := func(id int64) []kv {
		if e, ok := envs[id]; ok {
			return e
		}
		var out []kv
		if e, err := s.opts.Store.Environment(ctx, id); err == nil {
			out = flattenEnv(&e)
		}
		envs[id] = out
		return out
	}
	changeAt := map[int]bool{}
	rateName, rateUnit, rateFmt := "rate", "transactions/s", func(v float64) string { return fmt.Sprintf("%.0f", v) }
	if d.Stream {
		rateName, rateUnit, rateFmt = "throughput", "bit/s", report.Bits
	}
	for _, m := range []struct {
		name, unit string
		get        func(p runPoint) stats.Estimate
		yf         func(float64) string
	}{
		{rateName, rateUnit, func(p runPoint) stats.Estimate { return p.Rate }, compact},
		{"p50", "latency", func(p runPoint) stats.Estimate { return p.P50 }, fmtNs},
		{"p99", "latency", func(p runPoint) stats.Estimate { return p.P99 }, fmtNs},
	} {
		if d.Stream && m.name != rateName {
			continue
		}
		c := Chart{Title: key + ": " + m.name + " per run (median over trials, 95% CI)", YLabel: m.unit, XLabel: "run",
			YFormat: m.yf, Height: 280, Width: 900}
		var ser Series
		ser.Name, ser.Line, ser.Dots = m.name, true, true
		var series []float64
		for i, p := range pts {
			e := m.get(p)
			series = append(series, e.Center)
			ser.Points = append(ser.Points, Point{X: float64(i), Y: e.Center, Lo: e.Lo, Hi: e.Hi, HasCI: e.N > 0,
				Title: fmt.Sprintf("run %d (%s): %s [%s, %s], %d trials", p.Run.ID, p.Run.Started.UTC().Format("2006-01-02 15:04"),
					m.yf(e.Center), m.yf(e.Lo), m.yf(e.Hi), e.N)})
		}
		c.XTicks = runTicks(pts)
		if s.opts.ChangePoints != nil {
			for _, i := range s.opts.ChangePoints(series) {
				if i <= 0 || i >= len(pts) {
					continue
				}
				changeAt[i] = true
				ser.Points[i].Flag = true
				cv := changeView{Metric: m.name, Before: pts[i-1].Run, After: pts[i].Run,
					From: m.yf(series[i-1]), To: m.yf(series[i])}
				cv.Suspects = suspects(envOf(pts[i-1].Run.ID), envOf(pts[i].Run.ID), anns, pts[i-1].Run, pts[i].Run)
				d.Changes = append(d.Changes, cv)
				c.Markers = append(c.Markers, Marker{X: float64(i) - 0.5, Label: "change",
					Title: fmt.Sprintf("change point between run %d and run %d: %s", pts[i-1].Run.ID, pts[i].Run.ID, strings.Join(cv.Suspects, "; "))})
			}
		}
		c.Series = []Series{ser}
		d.Charts = append(d.Charts, metricChart{Name: m.name, Chart: c.SVG()})
	}
	for i := len(pts) - 1; i >= 0; i-- { // newest first in the table
		p := pts[i]
		row := historyRow{Run: p.Run, N: p.N, Change: changeAt[i]}
		row.Rate, row.RateCI = rateFmt(p.Rate.Center), ciStr(p.Rate, rateFmt)
		if !d.Stream {
			row.P50, row.P50CI = fmtNs(p.P50.Center), ciStr(p.P50, fmtNs)
			row.P99, row.P99CI = fmtNs(p.P99.Center), ciStr(p.P99, fmtNs)
		}
		d.Rows = append(d.Rows, row)
	}
	s.render(w, http.StatusOK, "history", "history", "latlab history: "+key, d)
}

func ciStr(e stats.Estimate, f func(float64) string) string {
	s := "[" + f(e.Lo) + ", " + f(e.Hi) + "]"
	if e.TooFew {
		s += "~"
	}
	return s
}

func runTicks(pts []runPoint) []Tick {
	var t []Tick
	step := max(1, len(pts)/12)
	for i := 0; i < len(pts); i += step {
		t = append(t, Tick{float64(i), strconv.FormatInt(pts[i].Run.ID, 10)})
	}
	return t
}

// history returns, oldest first, up to n runs' medians of configuration
// key (successful trials only).
func (s *Server) history(ctx context.Context, key string, n int) ([]runPoint, bool, error) {
	limit := n * 16
	var trials []store.Trial
	for {
		ts, err := s.opts.Store.ConfigHistory(ctx, key, limit)
		if err != nil {
			return nil, false, err
		}
		trials = ts
		runs := map[int64]bool{}
		for _, t := range ts {
			runs[t.RunID] = true
		}
		if len(runs) > n || len(ts) < limit || limit >= 1<<20 {
			break
		}
		limit *= 4
	}
	type acc struct{ rate, p50, p99 []float64 }
	by := map[int64]*acc{}
	var order []int64 // newest first, as ConfigHistory returns
	stream := strings.Contains(key, "workload=tcp_stream")
	for _, t := range trials {
		a := by[t.RunID]
		if a == nil {
			if len(order) == n { // keep the newest n runs
				continue
			}
			a = &acc{}
			by[t.RunID] = a
			order = append(order, t.RunID)
		}
		if t.Error != "" {
			continue
		}
		v := t.RatePerSec
		if stream {
			v = t.ThroughputBps
		}
		a.rate = append(a.rate, v)
		a.p50 = append(a.p50, float64(t.P50Ns))
		a.p99 = append(a.p99, float64(t.P99Ns))
	}
	truncated := len(order) == n
	var pts []runPoint
	for _, id := range order {
		a := by[id]
		if len(a.rate) == 0 {
			continue
		}
		run, err := s.opts.Store.Run(ctx, id)
		if err != nil {
			return nil, false, err
		}
		pts = append(pts, runPoint{Run: run, N: len(a.rate), Rate: stats.MedianCI(a.rate, experiment.Confidence),
			P50: stats.MedianCI(a.p50, experiment.Confidence), P99: stats.MedianCI(a.p99, experiment.Confidence)})
	}
	sort.SliceStable(pts, func(i, j int) bool {
		if !pts[i].Run.Started.Equal(pts[j].Run.Started) {
			return pts[i].Run.Started.Before(pts[j].Run.Started)
		}
		return pts[i].Run.ID < pts[j].Run.ID
	})
	return pts, truncated, nil
}

// recentKeys lists the configuration keys of the latest n runs.
func (s *Server) recentKeys(ctx context.Context, n int) ([]string, error) {
	runs, err := s.opts.Store.Runs(ctx, store.RunFilter{Limit: n})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var keys []string
	for _, run := range runs {
		ts, err := s.opts.Store.Trials(ctx, run.ID)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if !seen[t.ConfigKey] {
				seen[t.ConfigKey] = true
				keys = append(keys, t.ConfigKey)
			}
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// suspects names what changed between two runs: the environment
// (kernel, sysctls, offloads, latlab version, ...) and the annotations
// made in between.
func suspects(before, after []kv, anns []store.Annotation, rb, ra store.Run) []string {
	var out []string
	for _, d := range diffKV(before, after) {
		if !d.Changed || noise(d.K) {
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s → %s", d.K, orNone(d.A), orNone(d.B)))
	}
	if len(out) > 12 {
		out = append(out[:12], fmt.Sprintf("… and %d more (see the diff)", len(out)-12))
	}
	for _, a := range anns {
		if a.Time.After(rb.Started) && !a.Time.After(ra.Started) {
			out = append(out, "note "+a.Time.UTC().Format("2006-01-02 15:04")+": "+a.Text)
		}
	}
	return out
}

// noise are environment fields that differ between any two runs.
func noise(k string) bool {
	for _, n := range []string{"build_ns", "extra.prefix", "netns", "extra.spec.seed", ".target"} {
		if strings.Contains(k, n) {
			return true
		}
	}
	return false
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// ---- alerts ----

type alertsData struct {
	Available, SchedAvailable bool
	Err                       string
	Alerts                    []AlertView
	Firing                    int
	Health                    SchedulerHealth
}

func (s *Server) handleAlerts(w http.ResponseWriter, r *http.Request) {
	d := alertsData{Available: s.opts.Alerts != nil, SchedAvailable: s.opts.Scheduler != nil}
	if s.opts.Alerts != nil {
		as, err := s.opts.Alerts.Alerts(r.Context())
		if err != nil {
			d.Err = err.Error()
		}
		sort.SliceStable(as, func(i, j int) bool { return stateRank(as[i].State) < stateRank(as[j].State) })
		d.Alerts = as
		for _, a := range as {
			if a.State == AlertFiring {
				d.Firing++
			}
		}
	}
	if s.opts.Scheduler != nil {
		d.Health = s.opts.Scheduler.Health()
	}
	s.render(w, http.StatusOK, "alerts", "alerts", "latlab alerts", d)
}

func stateRank(s string) int {
	switch s {
	case AlertFiring:
		return 0
	case AlertPending:
		return 1
	case AlertResolved:
		return 3
	}
	return 2
}

// ---- environment diff ----

type diffRow struct {
	K, A, B string
	Changed bool
}

type diffData struct {
	A, B     *store.Run
	AStr     string
	BStr     string
	Rows     []diffRow
	All      bool
	NChanged int
	SpecSame bool
	// NoPrev: only B was given and no earlier run of its kind and job
	// exists to compare it with.
	NoPrev bool
}

func (s *Server) handleDiff(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	d := diffData{AStr: q.Get("a"), BStr: q.Get("b"), All: q.Get("all") != ""}
	if d.AStr == "" && d.BStr != "" {
		// The runs page links /diff?b=N: compare with the run before
		// N (same kind and job).
		run, ok := s.loadRun(w, r, d.BStr)
		if !ok {
			return
		}
		prev, err := s.opts.Store.PreviousRun(ctx, run)
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		if prev == 0 {
			d.NoPrev = true
			s.render(w, http.StatusOK, "diff", "diff", "latlab diff", d)
			return
		}
		d.AStr = strconv.FormatInt(prev, 10)
	}
	if d.AStr == "" || d.BStr == "" {
		s.render(w, http.StatusOK, "diff", "diff", "latlab diff", d)
		return
	}
	var envs [2][]kv
	for i, arg := range []string{d.AStr, d.BStr} {
		run, ok := s.loadRun(w, r, arg)
		if !ok {
			return
		}
		if i == 0 {
			d.A = &run
		} else {
			d.B = &run
		}
		e, err := s.opts.Store.Environment(ctx, run.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		envs[i] = append([]kv{{"run.kind", run.Kind}, {"run.job", run.JobName}, {"run.spec_name", run.SpecName},
			{"run.version", run.Version}}, flattenEnv(&e)...)
	}
	d.SpecSame = d.A.Spec == d.B.Spec
	for _, row := range diffKV(envs[0], envs[1]) {
		if row.Changed {
			d.NChanged++
		}
		if d.All || row.Changed {
			d.Rows = append(d.Rows, row)
		}
	}
	s.render(w, http.StatusOK, "diff", "diff", fmt.Sprintf("latlab diff %d %d", d.A.ID, d.B.ID), d)
}

func diffKV(a, b []kv) []diffRow {
	am, bm := map[string]string{}, map[string]string{}
	var keys []string
	for _, p := range a {
		am[p.K] = p.V
		keys = append(keys, p.K)
	}
	for _, p := range b {
		if _, ok := am[p.K]; !ok {
			if _, dup := bm[p.K]; !dup {
				keys = append(keys, p.K)
			}
		}
		bm[p.K] = p.V
	}
	var out []diffRow
	for _, k := range keys {
		va, oka := am[k]
		vb, okb := bm[k]
		out = append(out, diffRow{K: k, A: va, B: vb, Changed: va != vb || oka != okb})
	}
	return out
}

// flattenEnv turns an environment into sorted key/value pairs: kernel,
// cpu_model, cores, version, then sysctls.*, offload.*, qdiscs.* and
// extra.* (the run's plan) with JSON objects flattened to dotted keys.
func flattenEnv(e *store.Environment) []kv {
	out := []kv{{"kernel", e.Kernel}, {"cpu_model", e.CPUModel}, {"cores", strconv.Itoa(e.Cores)}, {"version", e.Version}}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"sysctls", e.Sysctls}, {"offload", e.Offload}, {"qdiscs", e.Qdiscs}, {"extra", e.Extra}} {
		if len(f.raw) == 0 {
			continue
		}
		var v any
		if json.Unmarshal(f.raw, &v) != nil {
			out = append(out, kv{f.name, string(f.raw)})
			continue
		}
		var part []kv
		flattenJSON(f.name, v, &part)
		sort.Slice(part, func(i, j int) bool { return part[i].K < part[j].K })
		out = append(out, part...)
	}
	return out
}

func flattenJSON(prefix string, v any, out *[]kv) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flattenJSON(prefix+"."+k, e, out)
		}
	case []any:
		// Arrays of named objects (modes, presets) key by name: stabler
		// diffs than positions.
		for i, e := range x {
			k := strconv.Itoa(i)
			if m, ok := e.(map[string]any); ok {
				if n, ok := m["name"].(string); ok && n != "" {
					k = n
				}
			}
			flattenJSON(prefix+"["+k+"]", e, out)
		}
		if len(x) == 0 {
			*out = append(*out, kv{prefix, "[]"})
		}
	case nil:
		*out = append(*out, kv{prefix, "null"})
	case string:
		*out = append(*out, kv{prefix, x})
	default:
		b, _ := json.Marshal(x)
		*out = append(*out, kv{prefix, string(b)})
	}
}
