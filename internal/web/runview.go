package web

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/hist"
	"github.com/latlab/latlab/internal/report"
	"github.com/latlab/latlab/internal/store"
)

// runView is a run summarised for display.
type runView struct {
	Run      store.Run
	Duration string
	Trials   int
	Failed   int
	Summary  *experiment.Summary
	Groups   []groupView
	Env      []kv // environment, flattened
	Prev     int64
	Err      string // why the run could not be summarised
}

type kv struct{ K, V string }

// groupView is one table of the run: a workload (× size × placement ×
// offload preset), one row per mode.
type groupView struct {
	Title     string
	Stream    bool
	Baseline  string
	Rows      []rowView
	RateChart template.HTML
	RatioChrt template.HTML
	LatChart  template.HTML
}

type rowView struct {
	Mode, Status, Reason  string
	Center, CI            string
	P50, P99              string
	Ratio, RatioCI        string
	Verdict               string
	Significant, TooFew   bool
	Trials, Failed        int
	ConfigKey, HistoryURL string
}

// runView loads, summarises and charts run id. Finished runs are
// cached.
func (s *Server) runView(ctx context.Context, id int64) (*runView, error) {
	if v := s.cache.get(id); v != nil {
		return v, nil
	}
	v, err := buildRunView(ctx, s.opts.Store, id)
	if err != nil {
		return nil, err
	}
	// The previous run of the same kind and job, for the diff link.
	if prev, err := s.opts.Store.PreviousRun(ctx, v.Run); err == nil {
		v.Prev = prev
	}
	if v.Run.Status != store.StatusRunning {
		s.cache.put(v)
	}
	return v, nil
}

func buildRunView(ctx context.Context, st *store.Store, id int64) (*runView, error) {
	run, err := st.Run(ctx, id)
	if err != nil {
		return nil, err
	}
	v := &runView{Run: run, Duration: runDuration(run)}
	if env, err := st.Environment(ctx, id); err == nil {
		for _, p := range flattenEnv(&env) {
			if !strings.HasPrefix(p.K, "extra.") { // the plan: shown as the spec
				v.Env = append(v.Env, p)
			}
		}
	}
	o, _, err := experiment.LoadOutcome(ctx, st, id)
	if err != nil {
		v.Err = err.Error()
		return v, nil
	}
	v.Trials = len(o.Trials)
	for _, t := range o.Trials {
		if t.Result == nil {
			v.Failed++
		}
	}
	if o.Spec.Baseline == "" || len(o.Modes) == 0 {
		v.Err = "the run has no recorded plan (environment), so it cannot be summarised"
		return v, nil
	}
	s := experiment.Summarize(o)
	v.Summary = s
	merged := mergeHists(o)
	for gi := 0; gi < len(s.Results); {
		ge := gi
		for ge < len(s.Results) && sameGroup(s.Results[ge], s.Results[gi]) {
			ge++
		}
		v.Groups = append(v.Groups, buildGroup(s, s.Results[gi:ge], merged))
		gi = ge
	}
	return v, nil
}

func runDuration(r store.Run) string {
	if r.Finished.IsZero() {
		return "-"
	}
	return r.Finished.Sub(r.Started).Round(time.Millisecond).String()
}

func sameGroup(a, b experiment.ModeResult) bool {
	return a.Workload == b.Workload && a.Size == b.Size && a.Offload == b.Offload && a.Placement == b.Placement
}

func mergeHists(o *experiment.Outcome) map[experiment.Config]*hist.Histogram {
	m := map[experiment.Config]*hist.Histogram{}
	for _, t := range o.Trials {
		if t.Result == nil || t.Result.Hist == nil || t.Result.Hist.Count() == 0 {
			continue
		}
		if h := m[t.Config]; h != nil {
			h.Merge(t.Result.Hist)
		} else {
			m[t.Config] = t.Result.Hist.Clone()
		}
	}
	return m
}

func groupTitle(s *experiment.Summary, g experiment.ModeResult) string {
	title := g.Workload
	if g.Size > 0 {
		title += fmt.Sprintf(" · %d B", g.Size)
	}
	if len(s.Placements) > 1 || g.Placement != "auto" {
		title += " · placement " + g.Placement
	}
	if len(s.Offloads) > 1 || g.Offload != "default" {
		title += " · offload " + g.Offload
	}
	return title
}

func metricOf(r experiment.ModeResult) *experiment.Estimate {
	if r.Metric == "throughput_bps" {
		return r.ThroughputBps
	}
	return r.RatePerSec
}

func buildGroup(s *experiment.Summary, rows []experiment.ModeResult, merged map[experiment.Config]*hist.Histogram) groupView {
	g := groupView{Title: groupTitle(s, rows[0]), Stream: rows[0].Workload == "tcp_stream", Baseline: s.Baseline}
	unit, fmtV := "transactions/s", func(v float64) string { return fmt.Sprintf("%.0f", v) }
	if g.Stream {
		unit, fmtV = "bit/s", report.Bits
	}
	rate := Chart{Title: g.Title + ": " + map[bool]string{false: "rate", true: "throughput"}[g.Stream] + " (median, 95% CI)",
		YLabel: unit, XRotate: true, YZero: true, Height: 280, Width: 440}
	ratio := Chart{Title: g.Title + ": ratio vs " + s.Baseline + " (median, 95% CI)", YLabel: "ratio", XRotate: true,
		HasYRef: true, YRef: 1, Height: 280, Width: 440}
	lat := Chart{Title: g.Title + ": latency percentiles (merged histograms)", YLabel: "latency", XLabel: "percentile",
		YLog: true, YFormat: fmtNs, Height: 280, Width: 480}
	var rs, rr Series
	rs.Name, rr.Name = "median", "ratio"
	maxN := 0.0
	for i, r := range rows {
		cfg := r.Config()
		rv := rowView{Mode: r.Mode, Status: r.Status, Reason: r.Reason, Trials: r.Trials, Failed: r.Failed,
			ConfigKey: cfg.Key(), Verdict: r.Verdict, Significant: r.Significant}
		rv.HistoryURL = "/history?key=" + strings.ReplaceAll(template.URLQueryEscaper(cfg.Key()), "+", "%20")
		rate.XTicks = append(rate.XTicks, Tick{float64(i), r.Mode})
		ratio.XTicks = append(ratio.XTicks, Tick{float64(i), r.Mode})
		if iv := metricOf(r); iv != nil && r.Status == "ok" {
			rv.Center = fmtV(iv.Median)
			rv.CI = "[" + fmtV(iv.CILow) + ", " + fmtV(iv.CIHigh) + "]"
			rv.TooFew = iv.TooFew
			rs.Points = append(rs.Points, Point{X: float64(i), Y: iv.Median, Lo: iv.CILow, Hi: iv.CIHigh, HasCI: true,
				Title: fmt.Sprintf("%s: %s %s", r.Mode, rv.Center, rv.CI)})
		}
		if r.P50Ns > 0 {
			rv.P50, rv.P99 = report.Duration(r.P50Ns), report.Duration(r.P99Ns)
		}
		if r.Mode == s.Baseline {
			rv.Ratio, rv.Verdict = "1.000", "baseline"
		} else if iv := r.RatioVsHost; iv != nil {
			rv.Ratio = fmt.Sprintf("%.3f", iv.Median)
			rv.RatioCI = fmt.Sprintf("[%.3f, %.3f]", iv.CILow, iv.CIHigh)
			rr.Points = append(rr.Points, Point{X: float64(i), Y: iv.Median, Lo: iv.CILow, Hi: iv.CIHigh, HasCI: true,
				Title: fmt.Sprintf("%s: %s %s", r.Mode, rv.Ratio, rv.RatioCI)})
		}
		if r.PValue != nil {
			rv.Verdict = fmt.Sprintf("%s (p=%.3g)", r.Verdict, *r.PValue)
		}
		g.Rows = append(g.Rows, rv)
		if h := merged[cfg]; h != nil && !g.Stream {
			pts := percentilePoints(h)
			if len(pts) > 0 {
				maxN = math.Max(maxN, pts[len(pts)-1].X)
				lat.Series = append(lat.Series, Series{Name: r.Mode, Line: true, Points: pts})
			}
		}
	}
	rate.Series = []Series{rs}
	ratio.Series = []Series{rr}
	g.RateChart = rate.SVG()
	g.RatioChrt = ratio.SVG()
	if len(lat.Series) > 0 {
		lat.XTicks = ninesTicks(maxN)
		g.LatChart = lat.SVG()
	}
	return g
}

// percentilePoints turns a histogram's buckets into a percentile plot
// (x: nines of the percentile, y: the bucket's upper bound), keeping at
// most one point per 0.02 nines so a chart stays small.
func percentilePoints(h *hist.Histogram) []Point {
	total := h.Count()
	if total == 0 {
		return nil
	}
	var pts []Point
	var cum int64
	last := -1.0
	h.ForEach(func(lo, hi, c int64) {
		cum += c
		q := float64(cum) / float64(total) * 100
		hi = min(hi, h.Max())
		// The last bucket holds the maximum: plot it one nine past the
		// previous point (the plot cannot reach p100).
		var x float64
		if cum == total {
			x = math.Max(last+0.1, nines(100-100/float64(total)))
		} else {
			x = nines(q)
		}
		if x-last < 0.02 && cum != total {
			return
		}
		if len(pts) == 0 {
			pts = append(pts, Point{X: 0, Y: float64(max(h.Min(), 1)), Title: "min " + fmtNs(float64(h.Min()))})
		}
		pts = append(pts, Point{X: x, Y: float64(max(hi, 1)), Title: fmt.Sprintf("p%.4g ≤ %s", q, fmtNs(float64(hi)))})
		last = x
	})
	return pts
}

// WriteRunReport writes run id's page as one self-contained HTML document
// (inline CSS and SVG, no links to a server): what `latlab report RUN
// --html FILE` saves.
func WriteRunReport(ctx context.Context, w io.Writer, st *store.Store, id int64) error {
	v, err := buildRunView(ctx, st, id)
	if err != nil {
		return err
	}
	pages, css, err := parseTemplates()
	if err != nil {
		return err
	}
	return pages["run"].Execute(w, page{Title: fmt.Sprintf("latlab run %d", id), Static: true, CSS: css,
		Data: struct {
			*runView
			Generated time.Time
		}{v, time.Now()}})
}
