package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latlab/latlab/internal/experiment"
)

// WriteLab writes a `latlab lab` summary: one table per workload (table),
// the whole summary (json, schema in docs/lab-json.md) or one row per
// result (csv).
func WriteLab(w io.Writer, format string, s *experiment.Summary) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	case FormatCSV:
		return writeLabCSV(w, s)
	case FormatTable:
		return writeLabTable(w, s)
	}
	return CheckFormat(format)
}

func writeLabTable(w io.Writer, s *experiment.Summary) error {
	p := s.Placement
	fmt.Fprintf(w, "latlab lab: %d trials × %v per configuration (after %v warm-up), rounds interleaved in random order (seed %d)\n",
		s.Trials, secs(s.DurationS), secs(s.WarmupS), s.Seed)
	fmt.Fprintf(w, "placement: client %s, server %s; topology built in %.1f ms", cpuName(p.ClientCPU, p.ClientPinned),
		cpuName(p.ServerCPU, p.ServerPinned), s.BuildMs)
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
		if err := writeLabGroup(w, s, s.Results[gi:ge]); err != nil {
			return err
		}
		gi = ge
	}
	fmt.Fprintln(w)
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
	fmt.Fprintf(w, "Medians over trials with order-statistic 95%% CIs (~: too few trials for 95%%, the interval is [min, max]);\n")
	fmt.Fprintf(w, "ratios pair each mode with %s in the same round; p50/p99 from merged histograms; * marks a\n", s.Baseline)
	fmt.Fprintf(w, "significant difference (Wilcoxon signed-rank on per-round ratios, Holm-adjusted across a table, alpha 0.05).\n")
	return nil
}

func sameGroup(a, b experiment.ModeResult) bool {
	return a.Workload == b.Workload && a.Size == b.Size && a.Offload == b.Offload && a.Placement == b.Placement
}

func writeLabGroup(w io.Writer, s *experiment.Summary, group []experiment.ModeResult) error {
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
		fmt.Fprintf(tw, "%s\tthroughput\t95%% CI\t\tvs %s\t95%% CI\tverdict (Holm-adjusted p)%s\n", title, s.Baseline, offCol)
	} else {
		fmt.Fprintf(tw, "%s\trate/s\t95%% CI\tp50\tp99\tvs %s\t95%% CI\tverdict (Holm-adjusted p)%s\n", title, s.Baseline, offCol)
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
		if stream {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\t%s\t%s\t%s\n", r.Mode, center, ci, ratio, rci, verdict)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Mode, center, ci, Duration(r.P50Ns), Duration(r.P99Ns), ratio, rci, verdict)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range notRun {
		fmt.Fprintf(w, "%s %s: %s\n", r.Mode, r.Status, shorten(r.Reason, 140))
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

func metric(r experiment.ModeResult) *experiment.Interval {
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
