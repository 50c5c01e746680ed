package cli

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/report"
	"github.com/latlab/latlab/internal/watch"
)

func newWatchCmd(e *env) *cobra.Command {
	var (
		out        *outputFlags
		db         *string
		config     string
		once       bool
		check      bool
		listen     string
		token      string
		journalDir string
	)
	cmd := &cobra.Command{
		Use:   "watch --config FILE",
		Short: "Run jobs on a schedule and alert on regressions",
		Long: `Watch runs the jobs of a configuration file on their schedules, one at a
time, records every run (kind "watch") and checks it against the job's
baseline: per configuration and metric (rate, p50, p99) a Mann-Whitney test
with a minimum effect (5% for p99, 3% for p50 and rate, or twice the
robust run-to-run noise if larger), Holm-adjusted across the run, confirmed
over consecutive runs or by a change point (E-Divisive) that places the
shift in the job's history; the environment differences across it are
named as suspects (kernel, sysctls, offloads, qdiscs). A run that
regressed never enters a baseline, and a pending regression keeps the
baseline its first run was judged against. In lab jobs the baseline mode
is a canary: where it regressed too, the run is marked noisy and raises
nothing. Alerts are deduplicated, sent to webhooks (JSON POST) or commands
(JSON on stdin) and resolved when a later run is back within the baseline.

A job either runs a lab spec (spec: FILE; needs root) or measures a server
that already runs (target: {address: HOST:PORT, netns: NAME}). Lab jobs
journal every object they create under --journal-dir (as 'latlab lab'
does; give 'latlab cleanup' the same one to undo what a crash left). SIGINT or SIGTERM stop
after the trial in progress. See docs/watch.md.

--check validates the file and prints its jobs (-o table, json or csv);
without --check, -o table is the only output (watch logs to stderr).`,
		Example: `  latlab watch --config /etc/latlab/watch.yaml
  latlab watch --config watch.yaml --once        # every job once, then exit
  latlab watch --config watch.yaml --check       # validate the file and exit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if config == "" {
				return usagef("--config FILE is required")
			}
			output, err := out.result()
			if err != nil {
				return err
			}
			if !check && output.Format != report.FormatTable {
				return usagef("-o %s applies to --check only: watch itself logs to stderr", output.Format)
			}
			cfg, err := watch.LoadConfig(config)
			if err != nil {
				return usageError{err}
			}
			if check {
				return writeWatchCheck(e, output, cfg)
			}
			for _, j := range cfg.Jobs {
				if j.Spec != nil && os.Geteuid() != 0 {
					return fmt.Errorf("job %s runs a lab spec: latlab watch needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces", j.Name)
				}
			}
			st, err := openStore(cmd.Context(), *db)
			if err != nil {
				return err
			}
			defer st.Close()
			reg := undoers()
			w := &watch.Watcher{Store: st, Config: cfg, Version: Version(), JournalDir: journalDir,
				Logf: func(format string, a ...any) {
					fmt.Fprintf(e.stderr, "%s %s\n", time.Now().Format("2006-01-02T15:04:05"), fmt.Sprintf(format, a...))
				},
				RunLab: func(ctx context.Context, spec experiment.LabSpec, onEvent func(experiment.Event)) (*experiment.Outcome, error) {
					spec.Undoers = reg // sweep Docker runs' journals too
					return experiment.RunLab(ctx, spec, onEvent)
				}}
			if once {
				return w.RunOnce(cmd.Context())
			}
			if listen != "" {
				w.Serve = func(ctx context.Context) error { return serveDashboard(ctx, e, st, w, listen, token) }
			}
			w.Logf("watching %d jobs, recording in %s", len(cfg.Jobs), st.Path())
			return w.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&config, "config", "", "watch configuration (YAML; see docs/watch.md)")
	f.BoolVar(&once, "once", false, "run every job once, check it, and exit")
	f.BoolVar(&check, "check", false, "validate the configuration, print the jobs and exit")
	f.StringVar(&listen, "listen", DefaultUIListen, "serve the dashboard and /metrics here while watching (\"\" to not serve)")
	f.StringVar(&journalDir, "journal-dir", journal.DefaultDir, "where lab jobs journal the objects they create (as latlab lab --journal-dir)")
	f.StringVar(&token, "token", os.Getenv("LATLAB_UI_TOKEN"), "require this bearer token on the dashboard (default $LATLAB_UI_TOKEN)")
	out = addOutput(cmd, report.FormatTable, report.FormatJSON, report.FormatCSV)
	db = addDBFlag(cmd)
	cmd.MarkFlagFilename("config", "yaml", "yml")
	cmd.MarkFlagDirname("journal-dir")
	cmd.RegisterFlagCompletionFunc("listen", fixedCompletion(DefaultUIListen, ""))
	return cmd
}

// watchJob is one line of watch --check.
type watchJob struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"` // "lab" or "target"
	What     string    `json:"what"` // the spec file or the target address
	Schedule string    `json:"schedule"`
	Next     time.Time `json:"next"`
	Overlap  string    `json:"overlap"`
}

// writeWatchCheck prints the jobs of a valid configuration.
func writeWatchCheck(e *env, out report.Output, cfg *watch.Config) error {
	var jobs []watchJob
	for _, j := range cfg.Jobs {
		wj := watchJob{Name: j.Name, Kind: "target", Schedule: j.ScheduleText, Next: j.Schedule.Next(time.Now()), Overlap: string(j.Overlap)}
		if j.Target != nil {
			wj.What = j.Target.Address
		}
		if j.Spec != nil {
			wj.Kind, wj.What = "lab", j.SpecFile
		}
		jobs = append(jobs, wj)
	}
	switch out.Format {
	case report.FormatJSON:
		if jobs == nil {
			jobs = []watchJob{}
		}
		return report.WriteJSON(e.stdout, out.Meta, struct {
			Jobs []watchJob `json:"jobs"`
		}{jobs})
	case report.FormatCSV:
		cw := csv.NewWriter(e.stdout)
		cw.Write([]string{"name", "kind", "what", "schedule", "next", "overlap"})
		for _, j := range jobs {
			cw.Write([]string{j.Name, j.Kind, j.What, j.Schedule, j.Next.Format(time.RFC3339), j.Overlap})
		}
		cw.Flush()
		return cw.Error()
	}
	for _, j := range jobs {
		kind := "target " + j.What
		if j.Kind == "lab" {
			kind = "lab spec " + j.What
		}
		fmt.Fprintf(e.stdout, "%s: %s, schedule %q (next %s), overlap %s\n", j.Name, kind, j.Schedule, j.Next.Format(time.RFC3339), j.Overlap)
	}
	return nil
}
