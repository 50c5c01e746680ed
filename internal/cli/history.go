package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/report"
	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/watch"
)

// openStore opens the database named by --db (or the default path) and
// marks runs left "running" by dead processes as incomplete.
func openStore(ctx context.Context, path string) (*store.Store, error) {
	st, err := store.Open(dbPath(path))
	if err != nil {
		return nil, err
	}
	return markStale(ctx, st)
}

// markStale marks runs left "running" by dead processes as incomplete, so
// every command sees them as they are; it closes st on failure.
func markStale(ctx context.Context, st *store.Store) (*store.Store, error) {
	if _, err := st.MarkStaleRunsIncomplete(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// resolveRun turns "", "latest" or an id into a run.
func resolveRun(ctx context.Context, st *store.Store, arg string) (store.Run, error) {
	if arg == "" || arg == "latest" {
		r, err := st.LatestRun(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return r, fmt.Errorf("no runs in %s yet: 'latlab lab' or 'latlab run SPEC' records one", st.Path())
		}
		return r, err
	}
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil {
		return store.Run{}, usagef("run %q: want a run id (see 'latlab runs') or latest", arg)
	}
	r, err := st.Run(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, fmt.Errorf("run %d is not in %s (see 'latlab runs')", id, st.Path())
	}
	return r, err
}

// withRun opens the existing store, resolves RUN ("" or latest: the
// newest) and loads its outcome for fn.
func withRun(ctx context.Context, db, arg string, fn func(*store.Store, store.Run, *experiment.Outcome) error) error {
	st, err := openStoreExisting(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	run, err := resolveRun(ctx, st, arg)
	if err != nil {
		return err
	}
	o, _, err := experiment.LoadOutcome(ctx, st, run.ID)
	if err != nil {
		return err
	}
	return fn(st, run, o)
}

func newRunCmd(e *env) *cobra.Command {
	var o labOpts
	cmd := &cobra.Command{
		Use:   "run SPEC",
		Short: "Run an experiment described in a YAML spec and record it",
		Long: `Run builds the spec's topology and runs its matrix — modes × workloads × sizes ×
offload presets × placements — in interleaved rounds, exactly as 'latlab lab'
does (lab is this command with a built-in spec: 'latlab lab --print-spec').

Validation errors name the file, the line and the allowed values. Every
trial is written to the database (--db) as it finishes, so an interrupted
run keeps what finished; 'latlab show', 'compare' and 'export' read it back.
Ctrl-C stops after the current trial and marks the run incomplete.`,
		Example: `  latlab lab --print-spec > offloads.yaml   # edit: offloads: [all-on, seg-off, gro-off]
  latlab run offloads.yaml
  latlab run offloads.yaml --db /tmp/exp.db --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, name, err := experiment.LoadSpec(args[0])
			if err != nil {
				return usageError{err}
			}
			return o.run(cmd, e, spec, name, "# latlab run "+args[0]+"\n", "run")
		},
	}
	o.flags(cmd)
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	}
	return cmd
}

func newRunsCmd(e *env) *cobra.Command {
	var (
		out   *outputFlags
		db    *string
		limit int
	)
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List recorded runs, newest first",
		Long: `Runs lists the runs in the database (--db): id, start, duration, status
(complete, incomplete, running), kind (lab, run, watch), spec and trials.
It only reads: a missing database is an error, never created.
-o json writes {"schema_version", "start", "runs": [...]}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			output, err := out.result()
			if err != nil {
				return err
			}
			st, err := openStoreExisting(cmd.Context(), *db)
			if err != nil {
				return err
			}
			defer st.Close()
			if limit < 0 {
				return usagef("--limit %d: want 0 (all) or more", limit)
			}
			runs, err := st.Runs(cmd.Context(), store.RunFilter{Limit: limit})
			if err != nil {
				return err
			}
			ids := make([]int64, len(runs))
			for i, r := range runs {
				ids[i] = r.ID
			}
			counts, err := st.TrialCounts(cmd.Context(), ids)
			if err != nil {
				return err
			}
			var infos []report.RunInfo
			for _, r := range runs {
				infos = append(infos, report.RunInfo{ID: r.ID, Started: r.Started, Finished: r.Finished, Status: string(r.Status),
					SpecName: r.SpecName, Kind: r.Kind, Trials: counts[r.ID].Trials, Seed: r.Seed, Version: r.Version})
			}
			return report.WriteRuns(e.stdout, output, infos)
		},
	}
	out = addOutput(cmd, report.FormatTable, report.FormatJSON, report.FormatCSV)
	db = addDBFlag(cmd)
	cmd.Flags().IntVar(&limit, "limit", 50, "show at most this many runs (0: all)")
	cmd.AddCommand(newRunsPruneCmd(e))
	return cmd
}

// newRunsPruneCmd is `latlab runs prune --older-than AGE`.
func newRunsPruneCmd(e *env) *cobra.Command {
	var (
		olderThan string
		force     bool
		dryRun    bool
		out       *outputFlags
		db        *string
	)
	cmd := &cobra.Command{
		Use:   "prune --older-than AGE",
		Short: "Delete runs older than AGE, with their trials",
		Long: `Prune deletes from the database (--db) every run started more than AGE ago,
with everything that belongs to it: its trials and their histograms, its
environment and the annotations about it. It is one transaction: an error
or a crash deletes nothing.

Kept unless --force:
  - runs an open alert refers to (the run that opened it, or the latest run
    that still showed it): the alert's evidence;
  - runs pinned as a job's baseline in the database.
A watch config's 'baseline: {pinned: RUN}' is not in the database: prune
cannot see it, so check such configs against --dry-run first.
Never deleted: runs still running. Resolved alerts stay in the history,
referring to no run; annotations about no run in particular stay.

AGE is a duration: 90d, 2w, 36h, 1h30m (d is 24h, w is 7d). --dry-run
prints what would go. The file does not shrink: sqlite reuses the pages.`,
		Example: `  latlab runs prune --older-than 90d --dry-run
  latlab runs prune --older-than 90d
  latlab runs prune --older-than 2w --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("older-than") {
				return usagef("--older-than AGE is required (e.g. --older-than 90d)")
			}
			age, err := parseAge(olderThan)
			if err != nil {
				return usageError{fmt.Errorf("--older-than: %w", err)}
			}
			output, err := out.result()
			if err != nil {
				return err
			}
			st, err := openStoreExisting(cmd.Context(), *db)
			if err != nil {
				return err
			}
			defer st.Close()
			cutoff := time.Now().Add(-age)
			res, err := st.DeleteRunsOlderThan(cmd.Context(), cutoff, store.PruneOptions{Force: force, DryRun: dryRun})
			if err != nil {
				return err
			}
			if output.Format == report.FormatJSON {
				protected := res.Protected
				if protected == nil {
					protected = []int64{}
				}
				return report.WriteJSON(e.stdout, output.Meta, struct {
					DryRun      bool      `json:"dry_run"`
					Cutoff      time.Time `json:"started_before"`
					Runs        int       `json:"runs"`
					Trials      int       `json:"trials"`
					Envs        int       `json:"environments"`
					Annotations int       `json:"annotations"`
					Baselines   int       `json:"pinned_baselines"`
					Protected   []int64   `json:"kept_protected"`
					Running     int       `json:"kept_running"`
				}{dryRun, cutoff, res.Runs, res.Trials, res.Environments, res.Annotations, res.Baselines, protected, res.Running})
			}
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			fmt.Fprintf(e.stdout, "%s %d runs started before %s (%d trials, %d environments, %d annotations",
				verb, res.Runs, cutoff.Local().Format("2006-01-02 15:04:05"), res.Trials, res.Environments, res.Annotations)
			if res.Baselines > 0 {
				fmt.Fprintf(e.stdout, ", %d pinned baselines", res.Baselines)
			}
			fmt.Fprintln(e.stdout, ")")
			if len(res.Protected) > 0 {
				ids := make([]string, len(res.Protected))
				for i, id := range res.Protected {
					ids[i] = strconv.FormatInt(id, 10)
				}
				fmt.Fprintf(e.stdout, "kept %d runs that open alerts or pinned baselines refer to: %s (--force deletes them too)\n",
					len(ids), strings.Join(ids, ", "))
			}
			if res.Running > 0 {
				fmt.Fprintf(e.stdout, "kept %d runs still running\n", res.Running)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&olderThan, "older-than", "", "delete runs started more than this long ago: 90d, 2w, 36h (required)")
	cmd.Flags().BoolVar(&force, "force", false, "also delete runs that open alerts or pinned baselines refer to")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be deleted, delete nothing")
	out = addOutput(cmd, report.FormatTable, report.FormatJSON)
	db = addDBFlag(cmd)
	return cmd
}

// maxPruneDays bounds a prune age in days (a century; time.Duration ends
// at 292 years).
const maxPruneDays = 36500

// parseAge parses a prune age: a Go duration, or a whole number of days
// (90d) or weeks (2w). It must be positive.
func parseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if n, unit := strings.TrimRight(s, "dw"), strings.TrimLeft(s, "0123456789"); (unit == "d" || unit == "w") && n != "" {
		v, err := strconv.ParseInt(n, 10, 64)
		if unit == "w" && err == nil {
			v *= 7
		}
		if err != nil || v > maxPruneDays {
			return 0, fmt.Errorf("%q: want at most %dd", s, maxPruneDays)
		}
		d = time.Duration(v) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q: want a duration such as 90d, 2w or 36h", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: want a positive age", s)
	}
	return d, nil
}

func newShowCmd(e *env) *cobra.Command {
	var (
		out *outputFlags
		db  *string
	)
	cmd := &cobra.Command{
		Use:   "show [RUN]",
		Short: "Show a recorded run's tables (default: the latest run)",
		Long: `Show prints a recorded run (default: the latest) as 'latlab lab' printed it,
then the alerts it raised and the notes about it. -o json writes the lab
summary (docs/lab-json.md), -o csv one row per result; --percentiles
chooses the latency columns. It only reads the database (--db).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			output, err := out.result()
			if err != nil {
				return err
			}
			format := output.Format
			return withRun(cmd.Context(), *db, argOr(args, 0), func(st *store.Store, run store.Run, o *experiment.Outcome) error {
				if format == report.FormatTable {
					fmt.Fprintf(e.stdout, "run %d (%s, %s, spec %s), started %s\n", run.ID, run.Kind, run.Status, run.SpecName,
						run.Started.Local().Format("2006-01-02 15:04:05"))
				}
				if err := report.WriteLab(e.stdout, output, experiment.Summarize(o)); err != nil {
					return err
				}
				if format != report.FormatTable {
					return nil
				}
				return writeRunHistory(cmd.Context(), e, st, run)
			})
		},
	}
	out = addOutput(cmd, report.FormatTable, report.FormatJSON, report.FormatCSV).withPercentiles("50,99")
	db = addDBFlag(cmd)
	cmd.ValidArgsFunction = runIDCompletion(db, 1)
	return cmd
}

func newCompareCmd(e *env) *cobra.Command {
	var (
		out    *outputFlags
		db     *string
		metric string
		failOn failOnFlag
	)
	cmd := &cobra.Command{
		Use:   "compare RUN_A RUN_B | compare RUN CONFIG_A CONFIG_B",
		Short: "Compare two runs, or two configurations inside one run",
		Long: `Compare prints a benchstat-like table: for each configuration, the median of
A and of B over their trials with 95% CIs, the change, the p-value
(adjusted across the rows) and a verdict: better, worse, no significant
difference, or too few trials to tell. Two runs are compared with
Mann-Whitney U, Holm-adjusted; two configurations of one run ran in the
same rounds, so they are paired by round and tested with Wilcoxon
signed-rank on the per-round ratios, Bonferroni-adjusted (the footnote
names the test).

Two runs: every configuration present in both is compared, A as the base.
One run and two configuration filters (FIELD=VALUE joined by '/', fields
mode, workload, size, offload, placement): A's configurations are paired with
B's on every other field, e.g. 'latlab compare 7 mode=host mode=veth-routed'
or 'latlab compare latest offload=all-on offload=seg-off'.

It only reads the database (--db). Exit 3 when --fail-on holds (after the
table is printed).`,
		Example: `  latlab compare 3 4
  latlab compare latest mode=host mode=bridge-nat --metric p99
  latlab compare 41 42 --fail-on 'worse>5%'    # CI gate: exit 3 on a regression`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			output, err := out.result()
			if err != nil {
				return err
			}
			format := output.Format
			switch metric {
			case experiment.MetricRate, experiment.MetricP50, experiment.MetricP99:
			default:
				return usagef("--metric %q: want rate, p50 or p99", metric)
			}
			ctx := cmd.Context()
			return withRun(ctx, *db, args[0], func(st *store.Store, ra store.Run, oa *experiment.Outcome) error {
				var rows []experiment.ComparisonRow
				var an, bn string
				var err error
				var rb store.Run
				if len(args) == 2 {
					rb, err = resolveRun(ctx, st, args[1])
					if err != nil {
						return err
					}
					ob, _, err := experiment.LoadOutcome(ctx, st, rb.ID)
					if err != nil {
						return err
					}
					an, bn = fmt.Sprintf("run %d", ra.ID), fmt.Sprintf("run %d", rb.ID)
					if rows, err = experiment.CompareOutcomes(oa, ob, metric); err != nil {
						return err
					}
				} else {
					an, bn = args[1], args[2]
					if rows, err = experiment.CompareConfigs(oa, args[1], args[2], metric); err != nil {
						if strings.Contains(err.Error(), "FIELD=VALUE") {
							return usageError{err}
						}
						return err
					}
				}
				if err := report.WriteComparison(e.stdout, output, an, bn, rows); err != nil {
					return err
				}
				if len(args) == 2 && format == report.FormatTable {
					if err := writeEnvDiff(ctx, e, st, ra, rb); err != nil {
						return err
					}
				}
				return failOn.check(rows)
			})
		},
	}
	out = addOutput(cmd, report.FormatTable, report.FormatJSON, report.FormatCSV)
	db = addDBFlag(cmd)
	cmd.ValidArgsFunction = runIDCompletion(db, 2)
	cmd.Flags().Var(&failOn, "fail-on", "exit 3 (after printing) when a configuration is significantly worse: 'worse', or 'worse>5%' for worse by more than 5% (rate: lower, p50/p99: higher)")
	cmd.Flags().StringVar(&metric, "metric", experiment.MetricRate, "what to compare: rate (tcp_stream: throughput), p50 or p99 (per-trial latency)")
	cmd.RegisterFlagCompletionFunc("metric", fixedCompletion(experiment.MetricRate, experiment.MetricP50, experiment.MetricP99))
	cmd.RegisterFlagCompletionFunc("fail-on", fixedCompletion("worse", "worse>5%"))
	return cmd
}

func newExportCmd(e *env) *cobra.Command {
	var (
		out    *outputFlags
		db     *string
		config string
	)
	cmd := &cobra.Command{
		Use:   "export [RUN]",
		Short: "Export a run's trials: benchstat, csv, json, or HdrHistogram hlog/hgrm",
		Long: `Export writes every trial of a run (default: the latest). The benchstat
format names each configuration as /key=value parts of the benchmark name,
so golang.org/x/perf/cmd/benchstat can pivot on them:

  latlab export -o benchstat > lab.txt
  benchstat -col /mode lab.txt

-o csv writes one row per trial, -o json the trials and the summary
(--json is -o json; --format is the older name of -o). HdrHistogram's own
tools read the latency histograms:

  -o hlog   an interval log, one histogram per trial tagged with its
            configuration (nanoseconds), for HistogramLogProcessor (-tag
            selects a configuration), HistogramLogAnalyzer and
            HdrHistogramVisualizer
  -o hgrm   the percentile distribution of one configuration, its trials
            merged, values in microseconds, for HdrHistogram's plotter and
            hdr-plot; --config names it by its key or any part only its key
            contains (e.g. mode=macvlan/workload=tcp_rr)

  latlab export -o hgrm --config mode=host/workload=tcp_rr > host.hgrm

It only reads the database (--db).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			output, err := out.result()
			if err != nil {
				return err
			}
			if config != "" && output.Format != report.FormatHgrm {
				return usagef("--config selects the configuration of -o hgrm; -o %s exports them all", output.Format)
			}
			return withRun(cmd.Context(), *db, argOr(args, 0), func(_ *store.Store, run store.Run, o *experiment.Outcome) error {
				switch output.Format {
				case report.FormatHlog:
					return report.WriteHlog(e.stdout, &run, o)
				case report.FormatHgrm:
					return report.WriteHgrm(e.stdout, o, config)
				}
				return report.WriteExport(e.stdout, output, &run, o)
			})
		},
	}
	out = addOutput(cmd, report.FormatBenchstat, report.FormatCSV, report.FormatJSON, report.FormatHlog, report.FormatHgrm)
	cmd.Flags().StringVar(&config, "config", "", "with -o hgrm: the configuration (its key, or a part only it contains)")
	db = addDBFlag(cmd)
	cmd.ValidArgsFunction = runIDCompletion(db, 1)
	return cmd
}

func argOr(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

// writeEnvDiff prints, under a comparison of two runs, what differs in
// their environments — the suspects, in the words watch alerts use
// (kernel, CPU, cores, latlab version, sysctls, offload features and
// qdiscs of the interfaces measured through) — and the notes made
// between the two runs, as the dashboard's diff and history pages show
// them.
func writeEnvDiff(ctx context.Context, e *env, st *store.Store, a, b store.Run) error {
	var fps [2]watch.Fingerprint
	for i, r := range []store.Run{a, b} {
		env, err := st.Environment(ctx, r.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("read the environment of run %d: %w", r.ID, err)
		}
		fps[i] = watch.FingerprintOf(env)
	}
	diff := watch.Diff(fps[0], fps[1])
	lo, hi := a, b
	if hi.Started.Before(lo.Started) {
		lo, hi = hi, lo
	}
	notes, err := st.Annotations(ctx, nil)
	if err != nil {
		return fmt.Errorf("read annotations: %w", err)
	}
	for _, n := range notes {
		if n.Time.After(lo.Started) && !n.Time.After(hi.Started) {
			diff = append(diff, "note "+n.Time.UTC().Format("2006-01-02 15:04")+": "+n.Text)
		}
	}
	if len(diff) == 0 {
		fmt.Fprintf(e.stdout, "\nenvironment: no differences between run %d and run %d\n", a.ID, b.ID)
		return nil
	}
	fmt.Fprintf(e.stdout, "\nenvironment, run %d → run %d (suspects):\n", a.ID, b.ID)
	for _, d := range diff {
		fmt.Fprintf(e.stdout, "  %s\n", d)
	}
	return nil
}

// writeRunHistory prints, under a run's tables, what watch made of it:
// the alerts it opened or last showed, and the notes about it.
func writeRunHistory(ctx context.Context, e *env, st *store.Store, run store.Run) error {
	var lines []string
	if run.JobName != "" {
		as, err := st.Alerts(ctx, store.AlertFilter{Job: run.JobName})
		if err != nil {
			return fmt.Errorf("read the alerts of job %s: %w", run.JobName, err)
		}
		for _, a := range as {
			switch run.ID {
			case a.RunID:
				lines = append(lines, fmt.Sprintf("alert %d (%s) opened by this run: %s", a.ID, a.State, a.Summary))
			case a.LastRunID:
				lines = append(lines, fmt.Sprintf("alert %d (%s, opened by run %d) seen in this run: %s", a.ID, a.State, a.RunID, a.Summary))
			}
		}
	}
	notes, err := st.Annotations(ctx, &run.ID)
	if err != nil {
		return fmt.Errorf("read the notes of run %d: %w", run.ID, err)
	}
	for _, n := range notes {
		lines = append(lines, "note: "+n.Text)
	}
	if len(lines) > 0 {
		fmt.Fprintln(e.stdout)
		for _, l := range lines {
			fmt.Fprintln(e.stdout, l)
		}
	}
	return nil
}

// failOnFlag is compare's --fail-on: "" (never), "worse" (any row judged
// significantly worse) or "worse>N%" (and worse by more than N%).
type failOnFlag struct {
	set bool
	pct float64
}

func (f *failOnFlag) String() string {
	switch {
	case !f.set:
		return ""
	case f.pct == 0:
		return "worse"
	}
	return fmt.Sprintf("worse>%g%%", f.pct)
}

func (f *failOnFlag) Type() string { return "condition" }

func (f *failOnFlag) Set(v string) error {
	if v == "worse" {
		*f = failOnFlag{set: true}
		return nil
	}
	if n, ok := strings.CutPrefix(v, "worse>"); ok {
		if n, ok := strings.CutSuffix(n, "%"); ok {
			if p, err := strconv.ParseFloat(n, 64); err == nil && p >= 0 && p < 1000 {
				*f = failOnFlag{set: true, pct: p}
				return nil
			}
		}
	}
	return fmt.Errorf("%q: want worse or worse>N%% (e.g. worse>5%%)", v)
}

// check returns a regressedError naming the rows that meet the condition.
func (f *failOnFlag) check(rows []experiment.ComparisonRow) error {
	if !f.set {
		return nil
	}
	var bad []string
	for _, r := range rows {
		if r.Verdict == stats.Worse && math.Abs(r.DeltaPct) > f.pct {
			bad = append(bad, fmt.Sprintf("%s %+.1f%%", r.Name, r.DeltaPct))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return regressedError{fmt.Sprintf("--fail-on %s: %d configuration(s) regressed: %s", f, len(bad), strings.Join(bad, "; "))}
}
