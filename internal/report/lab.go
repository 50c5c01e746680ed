package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/hist"
	"github.com/latlab/latlab/internal/probe"
)

// WriteLab writes a `latlab lab` summary: one table per workload (table),
// the whole summary (json, schema in docs/lab-json.md) or one row per
// result (csv).
//
// out.Percentiles chooses the latency columns of the tables (default p50
// and p99) and adds "percentiles_ns" to every JSON result.
func WriteLab(w io.Writer, out Output, s *experiment.Summary) error {
	switch out.Format {
	case FormatJSON:
		return WriteJSON(w, out.Meta, labJSON(s, out.Percentiles))
	case FormatCSV:
		return writeLabCSV(w, s)
	case FormatTable:
		return writeLabTable(w, s, out.Percentiles)
	}
	return CheckFormat(out.Format)
}

// defaultLabPercentiles are the lab tables' latency columns.
var defaultLabPercentiles = []float64{50, 99}

// labResultJSON is a result with the requested percentiles.
type labResultJSON struct {
	experiment.ModeResult
	Percentiles map[string]int64 `json:"percentiles_ns,omitempty"`
}

// labJSON is the summary as JSON writes it: with ps, each result gets
// "percentiles_ns" from its merged histogram.
func labJSON(s *experiment.Summary, ps []float64) any {
	if ps == nil {
		return s
	}
	rs := make([]labResultJSON, len(s.Results))
	for i, r := range s.Results {
		rs[i] = labResultJSON{ModeResult: r, Percentiles: percentilesOf(r.Hist, ps)}
	}
	return struct {
		*experiment.Summary
		Results []labResultJSON `json:"results"`
	}{s, rs}
}

// percentilesOf reads ps from h; nil when h holds nothing.
func percentilesOf(h *hist.Histogram, ps []float64) map[string]int64 {
	if h == nil || h.Count() == 0 {
		return nil
	}
	m := make(map[string]int64, len(ps))
	for _, p := range ps {
		m[PercentileKey(p)] = h.Percentile(p)
	}
	return m
}

// labPercentile is r's percentile p: the stored p50/p99, else read from
// the merged histogram (0 without one).
func labPercentile(r experiment.ModeResult, p float64) int64 {
	switch {
	case p == 50 && r.P50Ns != 0:
		return r.P50Ns
	case p == 99 && r.P99Ns != 0:
		return r.P99Ns
	case r.Hist != nil && r.Hist.Count() > 0:
		return r.Hist.Percentile(p)
	}
	return 0
}

func writeLabTable(w io.Writer, s *experiment.Summary, ps []float64) error {
	if ps == nil {
		ps = defaultLabPercentiles
	}
	p := s.Placement
	if s.TooNoisy != "" {
		fmt.Fprintf(w, "TOO NOISY: %s\n", s.TooNoisy)
	}
	if s.TargetCI > 0 {
		fmt.Fprintf(w, "latlab lab: up to %d rounds × %v per configuration (after %v warm-up), adaptive: until every ratio's CI is within ±%.1f points or %v is spent; rounds interleaved in random order (seed %d)\n",
			s.Trials, secs(s.DurationS), secs(s.WarmupS), s.TargetCI*100, secs(s.BudgetS), s.Seed)
	} else {
		fmt.Fprintf(w, "latlab lab: %d trials × %v per configuration (after %v warm-up), rounds interleaved in random order (seed %d)\n",
			s.Trials, secs(s.DurationS), secs(s.WarmupS), s.Seed)
	}
	if spent := budgetSpent(s); spent != "" {
		fmt.Fprintf(w, "%s\n", spent)
	}
	if len(s.Calibration) > 0 {
		fmt.Fprintf(w, "placement, calibrated per workload:\n")
		for _, c := range s.Calibration {
			fmt.Fprintf(w, "  %s\n", c)
		}
		fmt.Fprintf(w, "topology built in %.1f ms", s.BuildMs)
	} else {
		fmt.Fprintf(w, "placement: client %s, server %s; topology built in %.1f ms", cpuName(p.ClientCPU, p.ClientPinned),
			cpuName(p.ServerCPU, p.ServerPinned), s.BuildMs)
	}
	if s.NATBackend != "" {
		fmt.Fprintf(w, ", NAT via %s", s.NATBackend)
	}
	if s.Congestion != "" {
		fmt.Fprintf(w, "; TCP congestion control %s", s.Congestion)
	}
	fmt.Fprintln(w)
	if s.Incomplete {
		fmt.Fprintln(w, "INCOMPLETE: the run was interrupted; the figures below use the trials that finished.")
	}
	// Results come grouped: consecutive rows share workload, size,
	// placement and offload preset. One table per group.
	for gi := 0; gi < len(s.Results); {
		ge := gi
		for ge < len(s.Results) && sameGroup(s.Results[ge], s.Results[gi]) {
			ge++
		}
		if err := writeLabGroup(w, s, ps, s.Results[gi:ge]); err != nil {
			return err
		}
		gi = ge
	}
	fmt.Fprintln(w)
	for _, m := range s.Modes {
		if len(m.Programs) == 0 {
			continue
		}
		var ps []string
		for _, p := range m.Programs {
			ps = append(ps, p.String())
		}
		fmt.Fprintf(w, "%s: eBPF programs %s\n", m.Name, strings.Join(ps, ", "))
	}
	for _, off := range s.Offloads {
		for _, n := range s.OffloadNotes[off] {
			fmt.Fprintf(w, "offload %s: %s\n", off, n)
		}
	}
	if s.EBPFTier != "" {
		fmt.Fprintf(w, "kernel evidence from %s", s.EBPFTier)
		if s.EBPFTier == "proc" {
			fmt.Fprintf(w, " counters (/proc/softirqs, /proc/stat ticks: coarse softirq time)")
		} else {
			fmt.Fprintf(w, " eBPF programs (softirq counts and times host-wide; drops by reason; run-queue delay)")
		}
		fmt.Fprintln(w)
		for _, u := range s.EBPFUnavailable {
			fmt.Fprintf(w, "  unavailable: %s\n", u)
		}
	}
	if n := s.Noise; n != nil {
		fmt.Fprintf(w, "noise over %v: %s\n", secs(n.Seconds).Round(time.Second), noiseText(n))
	}
	st := s.Statistics
	fmt.Fprintf(w, "Medians over trials with order-statistic 95%% CIs (~: too few trials for 95%%, the interval is [min, max]);\n")
	fmt.Fprintf(w, "cv: trial-to-trial variation. Ratios pair each mode with %s in the same round: %s estimate and CI,\n", s.Baseline, st.Interval)
	fmt.Fprintf(w, "verdict by %s, %s (alpha %g, up to %d comparisons: CIs at %.1f%%;\n", st.Test, st.Adjustment, st.Alpha, st.Family, st.Level*100)
	fmt.Fprintf(w, "~: too few rounds for that level, the range of the ratios is shown). p50/p99 from merged histograms; * marks a significant difference.\n")
	return nil
}

// noiseText says how much of the pinned CPUs the run did not get.
func noiseText(n *probe.CPUNoise) string {
	var parts []string
	for _, c := range n.CPUs {
		t := fmt.Sprintf("cpu%d steal %.1f%%", c.CPU, c.StealPct)
		if c.RunQueueWaitPct >= 0 {
			t += fmt.Sprintf(", run-queue wait %.1f%%", c.RunQueueWaitPct)
		}
		parts = append(parts, t)
	}
	if len(n.CPUs) > 0 && n.CPUs[0].RunQueueWaitPct < 0 {
		parts = append(parts, "per-CPU run-queue wait unavailable (no /proc/schedstat)")
	}
	if n.PressurePct >= 0 {
		parts = append(parts, fmt.Sprintf("CPU pressure (some task waiting, machine-wide) %.1f%%", n.PressurePct))
	}
	return strings.Join(parts, "; ")
}

// ratioCI names the ratio CI column by its level.
func ratioCI(s *experiment.Summary) string {
	if s.Statistics.Level > 0 && s.Statistics.Family > 1 {
		return fmt.Sprintf("%.3g%% CI", s.Statistics.Level*100)
	}
	return "95% CI"
}

func sameGroup(a, b experiment.ModeResult) bool {
	return a.Workload == b.Workload && a.Size == b.Size && a.Offload == b.Offload && a.Placement == b.Placement
}

func writeLabGroup(w io.Writer, s *experiment.Summary, ps []float64, group []experiment.ModeResult) error {
	g := group[0]
	stream := g.Workload == "tcp_stream"
	title := g.Workload
	if len(s.Sizes) > 1 && g.Size > 0 {
		title += fmt.Sprintf(" · %d B", g.Size)
	}
	if len(s.Placements) > 1 {
		title += " · " + g.Placement
	}
	multi := len(s.Offloads) > 1
	if multi || g.Offload != "default" {
		title += " · offload " + g.Offload
	}
	offCol := ""
	if multi && g.Offload != s.Offloads[0] {
		offCol = "\tvs " + s.Offloads[0] + "\tverdict"
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if stream {
		fmt.Fprintf(tw, "%s\tthroughput\t95%% CI\tcv\t\tvs %s\t%s\tverdict (Bonferroni-adjusted p)%s\n", title, s.Baseline, ratioCI(s), offCol)
	} else {
		var cols []string
		for _, p := range ps {
			cols = append(cols, PercentileName(p))
		}
		fmt.Fprintf(tw, "%s\trate/s\t95%% CI\tcv\t%s\tvs %s\t%s\tverdict (Bonferroni-adjusted p)%s\n", title, strings.Join(cols, "\t"), s.Baseline, ratioCI(s), offCol)
	}
	// Modes that did not run go under the table: a row with fewer cells
	// would restart tabwriter's column alignment.
	var notRun []experiment.ModeResult
	for _, r := range group {
		if r.Status != "ok" {
			notRun = append(notRun, r)
			continue
		}
		var center, ci string
		if stream {
			center, ci = Bits(r.ThroughputBps.Median), fmt.Sprintf("[%s, %s]", Bits(r.ThroughputBps.CILow), Bits(r.ThroughputBps.CIHigh))
		} else {
			center, ci = fmt.Sprintf("%.0f", r.RatePerSec.Median), fmt.Sprintf("[%.0f, %.0f]", r.RatePerSec.CILow, r.RatePerSec.CIHigh)
		}
		if iv := metric(r); iv != nil && iv.TooFew {
			ci += "~"
		}
		ratio, rci, verdict := "1.000", "", "baseline"
		if r.Mode != s.Baseline {
			ratio, rci, verdict = "-", "", r.Verdict
			if r.RatioVsHost != nil {
				ratio = fmt.Sprintf("%.3f", r.RatioVsHost.Median)
				rci = fmt.Sprintf("[%.3f, %.3f]", r.RatioVsHost.CILow, r.RatioVsHost.CIHigh)
				if r.RatioVsHost.TooFew {
					rci += "~"
				}
			}
			if r.PValue != nil {
				verdict = fmt.Sprintf("%s (p=%.3g)", r.Verdict, *r.PValue)
				if r.Significant {
					verdict = "* " + verdict
				}
			}
		}
		if r.Failed > 0 {
			verdict += fmt.Sprintf(" [%d trial(s) failed]", r.Failed)
		}
		if v := r.VsOffload; v != nil && offCol != "" {
			vr := "-"
			if v.Ratio != nil {
				vr = fmt.Sprintf("%.3f [%.3f, %.3f]", v.Ratio.Median, v.Ratio.CILow, v.Ratio.CIHigh)
			}
			mark := ""
			if v.Significant {
				mark = "* "
			}
			verdict += fmt.Sprintf("\t%s\t%s%s (p=%.3g)", vr, mark, v.Verdict, v.PValue)
		}
		cv := fmt.Sprintf("%.1f%%", r.CV*100)
		if stream {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\t%s\t%s\t%s\n", r.Mode, center, ci, cv, ratio, rci, verdict)
		} else {
			var lat []string
			for _, p := range ps {
				lat = append(lat, Duration(labPercentile(r, p)))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Mode, center, ci, cv, strings.Join(lat, "\t"), ratio, rci, verdict)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range notRun {
		fmt.Fprintf(w, "%s %s: %s\n", r.Mode, r.Status, shorten(r.Reason, 140))
	}
	for _, r := range group {
		if len(r.OutlierRounds) == 0 {
			continue
		}
		var rs []string
		for _, o := range r.OutlierRounds {
			rs = append(rs, fmt.Sprintf("round %d at %.3f", o.Round, o.Ratio))
		}
		fmt.Fprintf(w, "%s: outlier rounds (kept; median ratio %.3f): %s\n", r.Mode, r.OutlierRounds[0].Median, strings.Join(rs, ", "))
	}
	for _, pr := range s.Precision {
		if string(pr.Workload) == g.Workload && pr.Size == g.Size && pr.Offload == g.Offload && pr.Placement == g.Placement && (pr.Target > 0 || pr.HalfWidth >= 0) {
			fmt.Fprintf(w, "precision: %s\n", pr)
		}
	}
	return writeAttribution(w, group)
}

// writeAttribution prints the kernel evidence of a group, if any.
func writeAttribution(w io.Writer, group []experiment.ModeResult) error {
	has := false
	for _, r := range group {
		has = has || r.Attribution != nil
	}
	if !has {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  kernel evidence\tNET_RX/txn\tNET_TX/txn\tsoftirq µs/txn\tdrops\tretrans\trunq µs\texplanation\n")
	for _, r := range group {
		a := r.Attribution
		if a == nil {
			continue
		}
		rq := "-"
		if a.RunqDelayUsMean > 0 {
			rq = fmt.Sprintf("%.1f", a.RunqDelayUsMean)
		}
		fmt.Fprintf(tw, "  %s\t%.2f\t%.2f\t%.2f\t%d\t%d\t%s\t%s\n", r.Mode, a.NetRXSoftirqsPerTxn, a.NetTXSoftirqsPerTxn,
			a.SoftirqUsPerTxn, a.Drops, a.Retransmits, rq, a.Explanation)
	}
	return tw.Flush()
}

func metric(r experiment.ModeResult) *experiment.Estimate {
	if r.Metric == "throughput_bps" {
		return r.ThroughputBps
	}
	return r.RatePerSec
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

var labCSVHeader = []string{
	"mode", "workload", "size", "offload", "placement", "status", "reason", "trials", "metric", "median", "ci_low", "ci_high",
	"p50_ns", "p99_ns", "ratio_vs_baseline", "ratio_ci_low", "ratio_ci_high", "p_value", "significant", "verdict",
}

func writeLabCSV(w io.Writer, s *experiment.Summary) error {
	cw := csv.NewWriter(w)
	cw.Write(labCSVHeader)
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, r := range s.Results {
		row := []string{r.Mode, r.Workload, strconv.Itoa(r.Size), r.Offload, r.Placement, r.Status, strings.ReplaceAll(r.Reason, "\n", " "), strconv.Itoa(r.Trials), r.Metric}
		if iv := metric(r); iv != nil {
			row = append(row, f(iv.Median), f(iv.CILow), f(iv.CIHigh))
		} else {
			row = append(row, "", "", "")
		}
		row = append(row, strconv.FormatInt(r.P50Ns, 10), strconv.FormatInt(r.P99Ns, 10))
		if iv := r.RatioVsHost; iv != nil {
			row = append(row, f(iv.Median), f(iv.CILow), f(iv.CIHigh))
		} else {
			row = append(row, "", "", "")
		}
		p := ""
		if r.PValue != nil {
			p = f(*r.PValue)
		}
		row = append(row, p, strconv.FormatBool(r.Significant), r.Verdict)
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// budgetSpent says how an adaptive run spent its rounds' time, per group:
// "rounds: 2m58s of the 3m0s budget: tcp_rr/64B 1m5s (31 rounds), ...".
func budgetSpent(s *experiment.Summary) string {
	if s.TargetCI <= 0 || len(s.Precision) == 0 {
		return ""
	}
	var total float64
	var parts []string
	for _, p := range s.Precision {
		total += p.SpentS
		name := string(p.Workload)
		if p.Size > 0 {
			name += fmt.Sprintf("/%dB", p.Size)
		}
		if p.Offload != "" && p.Offload != "default" {
			name += "/" + p.Offload
		}
		parts = append(parts, fmt.Sprintf("%s %v (%d rounds)", name, secs(math.Round(p.SpentS)), p.Rounds))
	}
	return fmt.Sprintf("rounds: %v of the %v budget: %s; after the minimum rounds the budget goes to the groups that can still reach the target, then to tcp_rr/udp_rr",
		secs(math.Round(total)), secs(s.BudgetS), strings.Join(parts, ", "))
}
