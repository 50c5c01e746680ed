package watch

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/hist"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// A target job runs every workload once per round and records a run of
// kind "watch" with one pseudo-mode named after the job, which
// LoadOutcome and Summarize read like any lab run.
func TestTargetJobRecorded(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	job := &Job{Name: "edge", Confirm: 2, Baseline: BaselineSpec{Last: 5}, Target: &TargetSpec{
		Address: "127.0.0.1:7707", Workloads: []wire.Workload{wire.TCPRR, wire.UDPRR},
		Sizes: []int{64}, Trials: 3, Duration: 100 * time.Millisecond, ServerCPU: wire.CPUNone}}
	var calls []workload.Config
	w := &Watcher{Store: st, Config: &Config{Jobs: []*Job{job}}, Version: "test",
		RunWorkload: func(ctx context.Context, cfg workload.Config) (*workload.Result, error) {
			calls = append(calls, cfg)
			h := hist.NewDefault()
			for i := range 1000 {
				h.Record(int64(20_000 + i))
			}
			return &workload.Result{Workload: cfg.Workload, Transactions: 1000, DurationS: 0.1, RatePerSec: 10_000,
				Latency: workload.Summarize(h), Hist: h, StartedAt: time.Now()}, nil
		}}
	if err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 6 || calls[0].Target != "127.0.0.1:7707" || calls[0].Duration != 100*time.Millisecond || calls[0].ReqSize != 64 {
		t.Fatalf("%d workload runs: %+v", len(calls), calls)
	}
	runs, _ := st.Runs(context.Background(), store.RunFilter{JobName: "edge"})
	if len(runs) != 1 || runs[0].Kind != "watch" || runs[0].Status != store.StatusComplete {
		t.Fatalf("runs %+v", runs)
	}
	o, _, err := experiment.LoadOutcome(context.Background(), st, runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Trials) != 6 || o.Trials[0].Mode != "edge" || o.Spec.Trials != 3 || o.Modes[0].Target != "127.0.0.1:7707" {
		t.Errorf("outcome: %+v", o)
	}
	if sum := experiment.Summarize(o); len(sum.Results) == 0 {
		t.Errorf("summary: %+v", sum)
	}
	// A second identical run: no regression, no alerts.
	if err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if as, _ := st.Alerts(context.Background(), store.AlertFilter{}); len(as) != 0 {
		t.Errorf("alerts: %+v", as)
	}
}

// Watcher.JournalDir (latlab watch --journal-dir) reaches every lab
// job's spec; without it the spec keeps its own.
func TestLabJobJournalDir(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	jobs := []*Job{{Name: "a", Spec: &experiment.LabSpec{}}, {Name: "b", Spec: &experiment.LabSpec{JournalDir: "/spec/own"}}}
	for _, c := range []struct {
		dir  string
		want []string
	}{{"/tmp/latlab-journal-test", []string{"/tmp/latlab-journal-test", "/tmp/latlab-journal-test"}}, {"", []string{"", "/spec/own"}}} {
		var got []string
		w := &Watcher{Store: st, Config: &Config{Jobs: jobs}, JournalDir: c.dir,
			RunLab: func(ctx context.Context, spec experiment.LabSpec, onEvent func(experiment.Event)) (*experiment.Outcome, error) {
				got = append(got, spec.JournalDir)
				return nil, context.Canceled
			}}
		_ = w.RunOnce(context.Background()) // nothing is recorded: the fake runs nothing
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("JournalDir %q: lab specs got %q, want %q", c.dir, got, c.want)
		}
	}
}
