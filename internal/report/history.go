package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/store"
)

// RunInfo is one line of `latlab runs`.
type RunInfo struct {
	ID       int64     `json:"id"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Status   string    `json:"status"`
	SpecName string    `json:"spec_name"`
	Kind     string    `json:"kind"`
	Trials   int       `json:"trials"`
	Seed     uint64    `json:"seed"`
	Version  string    `json:"latlab_version"`
}

// WriteRuns writes the list of runs (JSON: {"runs": [...]} in the
// envelope).
func WriteRuns(w io.Writer, out Output, runs []RunInfo) error {
	switch format := out.Format; format {
	case FormatJSON:
		if runs == nil {
			runs = []RunInfo{}
		}
		return WriteJSON(w, out.Meta, struct {
			Runs []RunInfo `json:"runs"`
		}{runs})
	case FormatCSV:
		cw := csv.NewWriter(w)
		cw.Write([]string{"id", "started", "finished", "status", "spec_name", "kind", "trials", "seed"})
		for _, r := range runs {
			cw.Write([]string{strconv.FormatInt(r.ID, 10), r.Started.Format(time.RFC3339), fmtTimeOpt(r.Finished), r.Status,
				r.SpecName, r.Kind, strconv.Itoa(r.Trials), strconv.FormatUint(r.Seed, 10)})
		}
		cw.Flush()
		return cw.Error()
	case FormatTable:
		if len(runs) == 0 {
			_, err := fmt.Fprintln(w, "no runs yet: 'latlab lab' or 'latlab run SPEC' records one")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTARTED\tDURATION\tSTATUS\tKIND\tSPEC\tTRIALS")
		for _, r := range runs {
			d := "-"
			if !r.Finished.IsZero() {
				d = r.Finished.Sub(r.Started).Round(time.Second).String()
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\n", r.ID, r.Started.Local().Format("2006-01-02 15:04:05"), d, r.Status, r.Kind, r.SpecName, r.Trials)
		}
		return tw.Flush()
	}
	return CheckFormat(out.Format)
}

func fmtTimeOpt(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}

// WriteComparison writes a benchstat-like comparison: base and new medians
// with CIs, the change, the Holm-adjusted p-value and the verdict.
func WriteComparison(w io.Writer, o Output, baseName, newName string, rows []experiment.ComparisonRow) error {
	switch o.Format {
	case FormatJSON:
		type row struct {
			Name      string              `json:"name"`
			Unit      string              `json:"unit"`
			Base      experiment.Estimate `json:"base"`
			New       experiment.Estimate `json:"new"`
			DeltaPct  float64             `json:"delta_pct"`
			P         float64             `json:"p_value"`
			PAdjusted float64             `json:"p_adjusted"`
			Sig       bool                `json:"significant"`
			Verdict   string              `json:"verdict"`
		}
		out := struct {
			Base string `json:"base"`
			New  string `json:"new"`
			Rows []row  `json:"rows"`
		}{Base: baseName, New: newName}
		for _, r := range rows {
			out.Rows = append(out.Rows, row{r.Name, r.Unit, *experiment.EstimateOf(r.Base), *experiment.EstimateOf(r.New), finite(r.DeltaPct), r.P, r.PAdjusted, r.Significant, string(r.Verdict)})
		}
		return WriteJSON(w, o.Meta, out)
	case FormatCSV:
		cw := csv.NewWriter(w)
		cw.Write([]string{"name", "unit", "base_median", "base_ci_low", "base_ci_high", "new_median", "new_ci_low", "new_ci_high", "delta_pct", "p_value", "p_adjusted", "verdict"})
		f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
		for _, r := range rows {
			cw.Write([]string{r.Name, r.Unit, f(r.Base.Center), f(r.Base.Lo), f(r.Base.Hi), f(r.New.Center), f(r.New.Lo), f(r.New.Hi),
				f(r.DeltaPct), f(r.P), f(r.PAdjusted), string(r.Verdict)})
		}
		cw.Flush()
		return cw.Error()
	case FormatTable:
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "\t%s\t\t%s\t\t\t\n", baseName, newName)
		fmt.Fprintf(tw, "configuration\tmedian\t95%% CI\tmedian\t95%% CI\tdelta\tverdict (adjusted p)\n")
		for _, r := range rows {
			mark := ""
			if r.Significant {
				mark = "* "
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%+.1f%%\t%s%s (p=%.3g, n=%d+%d)\n", r.Name,
				human(r.Base.Center, r.Unit), ciText(r.Base, r.Unit), human(r.New.Center, r.Unit), ciText(r.New, r.Unit),
				r.DeltaPct, mark, r.Verdict, r.PAdjusted, r.Base.N, r.New.N)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		method := stats.MethodUnpaired
		if len(rows) > 0 && rows[0].Method != "" {
			method = rows[0].Method
		}
		_, err := fmt.Fprintf(w, "\nMedians over trials, order-statistic CIs (~: fewer trials than a 95%% CI needs); %s; * significant at 0.05.\n", method)
		return err
	}
	return CheckFormat(o.Format)
}

func finite(v float64) float64 {
	if v != v || v > 1e300 || v < -1e300 {
		return 0
	}
	return v
}

func human(v float64, unit string) string {
	switch unit {
	case "ns":
		return Duration(int64(v))
	case "bit/s":
		return Bits(v)
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + "/s"
}

func ciText(e stats.Estimate, unit string) string {
	s := "[" + human(e.Lo, unit) + ", " + human(e.Hi, unit) + "]"
	if e.TooFew {
		s += "~"
	}
	return s
}

// FormatBenchstat is WriteExport's format beside FormatCSV: benchstat
// lines.
const FormatBenchstat = "benchstat"

// WriteExport writes a run's trials: benchstat (one line per trial, the
// configuration as /key=value name parts so `benchstat -col /mode` works),
// csv (one row per trial) or json (the trials and the summary).
func WriteExport(w io.Writer, out Output, run *store.Run, o *experiment.Outcome) error {
	switch format := out.Format; format {
	case FormatBenchstat:
		fmt.Fprintf(w, "goos: linux\npkg: latlab\nrun: %d\nspec: %s\nseed: %d\n", run.ID, strings.ReplaceAll(run.SpecName, " ", "_"), run.Seed)
		for _, t := range o.Trials {
			if t.Result == nil {
				continue
			}
			r := t.Result
			name := fmt.Sprintf("BenchmarkLatlab/mode=%s/workload=%s/size=%d/offload=%s/placement=%s",
				t.Mode, t.Workload, t.Size, t.Offload, t.Placement)
			n := r.Transactions
			if n < 1 {
				n = 1
			}
			if t.Workload == "tcp_stream" {
				fmt.Fprintf(w, "%s\t%d\t%.0f bit/s\n", name, n, r.ThroughputBps)
				continue
			}
			fmt.Fprintf(w, "%s\t%d\t%.1f txn/s", name, n, r.RatePerSec)
			if l := r.Latency; l != nil {
				fmt.Fprintf(w, "\t%d p50-ns\t%d p99-ns", l.P50, l.P99)
			}
			fmt.Fprintln(w)
		}
		return nil
	case FormatCSV:
		cw := csv.NewWriter(w)
		cw.Write([]string{"run", "round", "order", "mode", "workload", "size", "offload", "placement", "transactions",
			"duration_s", "rate_per_sec", "throughput_bps", "p50_ns", "p99_ns", "lost", "error"})
		f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
		for _, t := range o.Trials {
			row := []string{strconv.FormatInt(run.ID, 10), strconv.Itoa(t.Round), strconv.Itoa(t.Order), t.Mode, string(t.Workload),
				strconv.Itoa(t.Size), t.Offload, t.Placement}
			if r := t.Result; r != nil {
				var p50, p99 int64
				if r.Latency != nil {
					p50, p99 = r.Latency.P50, r.Latency.P99
				}
				row = append(row, strconv.FormatInt(r.Transactions, 10), f(r.DurationS), f(r.RatePerSec), f(r.ThroughputBps),
					strconv.FormatInt(p50, 10), strconv.FormatInt(p99, 10), strconv.FormatInt(r.Lost, 10), "")
			} else {
				row = append(row, "", "", "", "", "", "", "", t.Error)
			}
			cw.Write(row)
		}
		cw.Flush()
		return cw.Error()
	case FormatJSON:
		return WriteJSON(w, out.Meta, struct {
			Run     RunInfo                  `json:"run"`
			Trials  []experiment.TrialResult `json:"trials"`
			Summary *experiment.Summary      `json:"summary"`
		}{RunInfo{ID: run.ID, Started: run.Started, Finished: run.Finished, Status: string(run.Status), SpecName: run.SpecName,
			Kind: run.Kind, Trials: len(o.Trials), Seed: run.Seed, Version: run.Version}, o.Trials, experiment.Summarize(o)})
	}
	return fmt.Errorf("unknown export format %q (want benchstat, csv or json)", out.Format)
}
