package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// Watcher runs a Config's jobs against a store.
type Watcher struct {
	Store   *store.Store
	Config  *Config
	Clock   Clock // nil: RealClock
	Version string
	// Logf logs what happens (nil: nothing).
	Logf func(format string, args ...any)
	// RunLab runs a lab job (nil: experiment.RunLab); tests replace it.
	RunLab func(ctx context.Context, spec experiment.LabSpec, onEvent func(experiment.Event)) (*experiment.Outcome, error)
	// RunWorkload runs one trial of a target job (nil: workload.Run).
	RunWorkload func(ctx context.Context, cfg workload.Config) (*workload.Result, error)
	// HTTPClient sends webhooks (nil: 10s timeout).
	HTTPClient *http.Client
	// Serve, when set, runs beside the scheduler for as long as Run does
	// — the hook for the dashboard (`latlab watch` sets it once the web
	// half exists). Its error, unless ctx was cancelled, ends Run.
	Serve func(ctx context.Context) error
	// JournalDir is where lab jobs journal the objects they create
	// (experiment.LabSpec.JournalDir; "" leaves the spec's, by default
	// journal.DefaultDir).
	JournalDir string
	// ChangePoints tunes the change-point search; Seed its permutations
	// (0: random).
	ChangePoints stats.CPOptions
	Seed         uint64

	sched *Scheduler
}

// Status reports the scheduler's health (for the dashboard): whether Run
// is scheduling, and each job's last run, error and next run.
func (w *Watcher) Status() (running bool, jobs []JobStatus) {
	if w.sched == nil {
		return false, nil
	}
	return w.sched.Status()
}

func (w *Watcher) logf(format string, args ...any) {
	if w.Logf != nil {
		w.Logf(format, args...)
	}
}

func (w *Watcher) clock() Clock {
	if w.Clock == nil {
		return RealClock{}
	}
	return w.Clock
}

// syncBaselines writes the configuration's pinned baselines into the
// store and removes pins of jobs that now use {last: N}.
func (w *Watcher) syncBaselines(ctx context.Context) error {
	for _, j := range w.Config.Jobs {
		if j.Baseline.Pinned != 0 {
			if err := w.Store.PinBaseline(ctx, j.Name, j.Baseline.Pinned); err != nil {
				return fmt.Errorf("job %s: %w", j.Name, err)
			}
		} else if err := w.Store.UnpinBaseline(ctx, j.Name); err != nil {
			return err
		}
	}
	return nil
}

// Run schedules the jobs until ctx is cancelled, with Serve beside them.
func (w *Watcher) Run(ctx context.Context) error {
	if err := w.syncBaselines(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr := make(chan error, 1)
	if w.Serve != nil {
		go func() {
			err := w.Serve(ctx)
			if err != nil && ctx.Err() == nil {
				serveErr <- err
				cancel()
			}
			close(serveErr)
		}()
	} else {
		close(serveErr)
	}
	w.sched = &Scheduler{Jobs: w.Config.Jobs, Clock: w.clock(), Run: w.RunJob, Logf: w.Logf}
	err := w.sched.Loop(ctx)
	cancel()
	if e := <-serveErr; e != nil {
		return errors.Join(err, fmt.Errorf("dashboard: %w", e))
	}
	return err
}

// RunOnce runs every job once, in order, and returns the errors joined.
func (w *Watcher) RunOnce(ctx context.Context) error {
	if err := w.syncBaselines(ctx); err != nil {
		return err
	}
	var errs []error
	for _, j := range w.Config.Jobs {
		if ctx.Err() != nil {
			break
		}
		if err := w.RunJob(ctx, j); err != nil {
			errs = append(errs, fmt.Errorf("job %s: %w", j.Name, err))
		}
	}
	return errors.Join(errs...)
}

// RunJob measures job j once, records the run (kind "watch"), and
// checks it for regressions (Check). An interrupted run is recorded as
// incomplete and not checked.
func (w *Watcher) RunJob(ctx context.Context, j *Job) error {
	var (
		runID      int64
		incomplete bool
		err        error
	)
	if j.Target != nil {
		runID, incomplete, err = w.runTarget(ctx, j)
	} else {
		runID, incomplete, err = w.runLab(ctx, j)
	}
	if err != nil {
		return err
	}
	if runID == 0 {
		return errors.New("nothing was recorded")
	}
	if incomplete {
		w.logf("job %s: run %d incomplete: not checked", j.Name, runID)
		return nil
	}
	_, err = w.Check(context.WithoutCancel(ctx), j, runID)
	return err
}

func (w *Watcher) rng() *rand.Rand {
	seed := w.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return rand.New(rand.NewPCG(seed, 0xa1e7))
}

// Check analyses run runID of job j and acts on it: a noisy run is
// annotated and its suppressed findings (see Analyze) raise and resolve
// nothing; each confirmed regression opens an alert
// (or keeps the open one: no duplicates) and notifies the job's hooks
// once, and each configuration and metric with an open alert that is
// back within its baseline resolves it and notifies again.
func (w *Watcher) Check(ctx context.Context, j *Job, runID int64) (*Report, error) {
	rep, err := Analyze(ctx, w.Store, j, runID, w.ChangePoints, w.rng())
	if err != nil {
		return nil, err
	}
	now := w.clock().Now()
	if rep.Noisy {
		w.logf("job %s: run %d is noisy (%s): alerts in its scope neither raised nor resolved", j.Name, runID, rep.NoisyReason)
		if err := w.Store.Annotate(ctx, &runID, NoisyNote+rep.NoisyReason); err != nil {
			return rep, err
		}
	}
	open, err := w.Store.Alerts(ctx, store.AlertFilter{State: store.AlertOpen, Job: j.Name})
	if err != nil {
		return rep, err
	}
	openBy := map[string]store.Alert{}
	for _, a := range open {
		openBy[a.DedupeKey] = a
	}
	hooks := notifiers(j, w.HTTPClient)
	var errs []error
	send := func(ev *AlertEvent) {
		for _, n := range hooks {
			if err := n.Notify(ctx, ev); err != nil {
				w.logf("job %s: alert %d: %v", j.Name, ev.AlertID, err)
				errs = append(errs, err)
			}
		}
	}
	regressed := 0
	for _, f := range rep.Findings {
		key := store.AlertKey(j.Name, f.ConfigKey, f.Metric)
		if f.Suppressed {
			continue
		}
		r := f.Regression
		ev := &AlertEvent{Job: j.Name, ConfigKey: f.ConfigKey, Metric: f.Metric, RunID: runID,
			BaseMedian: r.Base.Center, NewMedian: r.New.Center, DeltaPct: r.DeltaPct, PValue: r.PAdjusted,
			MinEffect: r.MinEffect, Time: now}
		if r.Regressed && !f.Confirmed {
			if _, ok := openBy[key]; !ok {
				w.logf("job %s: %s %s regressed %s: run %d of %d consecutive regressed runs before alerting; it stays out of the baseline, which stays runs %s until a run is back within it",
					j.Name, f.ConfigKey, f.Metric, describe(r), f.Streak, max(j.Confirm, 1), runList(f.BaselineRuns))
			}
			continue // an open alert stays open
		}
		if r.Regressed {
			regressed++
			a := store.Alert{Job: j.Name, ConfigKey: f.ConfigKey, Metric: f.Metric, RunID: f.FirstRun, LastRunID: runID, OpenedAt: now,
				Summary: f.Summary, Suspects: suspectsJSON(f.Suspects), DedupeKey: key}
			if _, ok := openBy[key]; ok {
				a.RunID = runID // only touches the open alert's last run
			}
			opened, err := w.Store.OpenAlert(ctx, &a)
			if err != nil {
				return rep, err
			}
			if !opened {
				w.logf("job %s: alert %d still open: %s %s", j.Name, a.ID, f.ConfigKey, f.Metric)
				continue
			}
			w.logf("job %s: alert %d opened: %s", j.Name, a.ID, f.Summary)
			ev.Event, ev.AlertID, ev.OpenedBy, ev.Summary, ev.Suspects = "opened", a.ID, f.FirstRun, f.Summary, f.Suspects
			send(ev)
			continue
		}
		a, ok := openBy[key]
		if !ok {
			continue
		}
		if f.Lingering {
			w.logf("job %s: alert %d stays open: %s %s not back within the baseline yet: %s", j.Name, a.ID, f.ConfigKey, f.Metric, describe(r))
			continue
		}
		if err := w.Store.ResolveAlert(ctx, a.ID, runID, now); err != nil {
			return rep, err
		}
		sum := fmt.Sprintf("%s %s back within the baseline: %s", f.ConfigKey, f.Metric, describe(r))
		w.logf("job %s: alert %d resolved: %s", j.Name, a.ID, sum)
		var sus []string
		_ = json.Unmarshal(a.Suspects, &sus)
		ev.Event, ev.AlertID, ev.OpenedBy, ev.Summary, ev.Suspects = "resolved", a.ID, a.RunID, sum, sus
		send(ev)
	}
	w.logf("job %s: run %d checked: %d comparisons, %d regressed", j.Name, runID, len(rep.Findings), regressed)
	if len(errs) > 0 {
		return rep, fmt.Errorf("alert hooks: %w", errors.Join(errs...))
	}
	return rep, nil
}

// runList formats run ids: "3, 4, 5".
func runList(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ", ")
}

// setNetState adds the offload and qdisc state to run runID's
// environment.
func (w *Watcher) setNetState(ctx context.Context, runID int64, ns *NetState) {
	if ns == nil || (len(ns.Offload) == 0 && len(ns.Qdiscs) == 0) {
		return
	}
	e, err := w.Store.Environment(ctx, runID)
	if err != nil {
		return
	}
	e.Offload, _ = json.Marshal(ns.Offload)
	e.Qdiscs, _ = json.Marshal(ns.Qdiscs)
	if err := w.Store.SetEnvironment(ctx, &e); err != nil {
		w.logf("run %d: record interface state: %v", runID, err)
	}
}

func (w *Watcher) runLab(ctx context.Context, j *Job) (int64, bool, error) {
	spec := *j.Spec
	if w.JournalDir != "" {
		spec.JournalDir = w.JournalDir
	}
	rec := &experiment.StoreRecorder{Store: w.Store, Kind: "watch", SpecName: j.SpecName, SpecText: j.SpecText,
		Version: w.Version, JobName: j.Name}
	spec.Recorder = rec
	var ns NetState
	onEvent := func(ev experiment.Event) {
		if ev.Kind == "built" && ev.Lab != nil {
			// The lab's own namespaces, read only; labelled without the
			// run's random prefix so runs compare.
			for _, n := range ev.Lab.Namespaces() {
				_ = captureNetState(&ns, topo.NetNSPath(n), strings.TrimPrefix(n, ev.Lab.Prefix+"-"))
			}
		}
		if ev.Kind == "trial" && ev.Trial != nil && ev.Trial.Error != "" {
			w.logf("job %s: trial failed: %s %s: %s", j.Name, ev.Trial.Mode, ev.Trial.Workload, ev.Trial.Error)
		}
	}
	run := w.RunLab
	if run == nil {
		run = experiment.RunLab
	}
	out, err := run(ctx, spec, onEvent)
	if rec.RunID != 0 {
		w.setNetState(context.WithoutCancel(ctx), rec.RunID, &ns)
	}
	if out == nil {
		return rec.RunID, true, err
	}
	if err != nil {
		w.logf("job %s: %v", j.Name, err)
	}
	return rec.RunID, out.Incomplete || err != nil, nil
}

// runTarget measures a running server: every (workload, size) once per
// round in a fresh random order, Trials rounds, recorded through
// experiment.StoreRecorder as a run with one pseudo-mode named after the
// job, so that show, compare and export read it like any lab run.
func (w *Watcher) runTarget(ctx context.Context, j *Job) (int64, bool, error) {
	t := j.Target
	seed := rand.Uint64()
	o := &experiment.Outcome{
		Spec: experiment.LabSpec{Modes: []string{j.Name}, Workloads: t.Workloads, Sizes: t.Sizes, Trials: t.Trials,
			Duration: t.Duration, Warmup: t.Warmup, Seed: seed, Baseline: j.Name,
			Offloads:   []offload.Preset{{Name: offload.PresetDefault}},
			Placements: []experiment.Placement{{Name: "auto", ClientCPUs: t.ClientCPUs, ServerCPU: t.ServerCPU}}},
		Modes: []experiment.ModeInfo{{Name: j.Name, Description: "target " + t.Address, Status: string(topo.StatusOK),
			ClientNS: t.NetNS, Target: t.Address}},
		Started: w.clock().Now().UTC(),
	}
	text, _ := json.Marshal(struct {
		Target *TargetSpec `json:"target"`
	}{t})
	rec := &experiment.StoreRecorder{Store: w.Store, Kind: "watch", SpecName: j.Name, SpecText: string(text),
		Version: w.Version, JobName: j.Name}
	var ns NetState
	if err := captureNetState(&ns, t.NetNS, "client"); err != nil {
		w.logf("job %s: interface state: %v", j.Name, err)
	}
	if err := rec.Begin(o); err != nil {
		return 0, true, fmt.Errorf("record run: %w", err)
	}
	run := w.RunWorkload
	if run == nil {
		run = workload.Run
	}
	type cfg struct {
		wl   wire.Workload
		size int
	}
	var cfgs []cfg
	for _, wl := range t.Workloads {
		if wl == wire.TCPStream {
			cfgs = append(cfgs, cfg{wl, 0})
			continue
		}
		for _, sz := range t.Sizes {
			cfgs = append(cfgs, cfg{wl, sz})
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x1a7))
	var runErr error
rounds:
	for round := 1; round <= t.Trials; round++ {
		order := slices.Clone(cfgs)
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for i, c := range order {
			if ctx.Err() != nil {
				o.Incomplete = true
				break rounds
			}
			wc := workload.Config{Target: t.Address, Workload: c.wl, Warmup: t.Warmup, Duration: t.Duration,
				NetNS: t.NetNS, ClientCPUs: t.ClientCPUs, ServerCPU: t.ServerCPU, Interval: t.Duration, IOTimeout: 5 * time.Second}
			if c.size > 0 {
				wc.ReqSize, wc.RespSize = c.size, c.size
			}
			wc.Defaults()
			tr := experiment.TrialResult{Round: round, Order: i, Config: experiment.Config{
				Mode: j.Name, Workload: c.wl, Size: c.size, Offload: offload.PresetDefault, Placement: "auto"}}
			var r *workload.Result
			err := wc.Validate()
			if err == nil {
				r, err = run(ctx, wc)
			}
			if err != nil {
				if ctx.Err() != nil {
					o.Incomplete = true // the interrupted trial is not kept
					break rounds
				}
				tr.Error = err.Error()
				w.logf("job %s: trial failed: %s size %d: %v", j.Name, c.wl, c.size, err)
			} else {
				tr.Result = r
			}
			o.Trials = append(o.Trials, tr)
			if err := rec.Trial(&o.Trials[len(o.Trials)-1]); err != nil {
				runErr = fmt.Errorf("record trial: %w", err)
				o.Incomplete = true
				break rounds
			}
		}
	}
	o.Finished = w.clock().Now().UTC()
	if err := rec.End(o); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("record run: %w", err))
	}
	w.setNetState(context.WithoutCancel(ctx), rec.RunID, &ns)
	return rec.RunID, o.Incomplete, runErr
}
