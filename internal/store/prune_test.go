package store

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

type pruneFixture struct {
	s                                   *Store
	old, oldAlert, oldLast, oldPinned   int64
	oldRunning, recent, oldResolvedOnly int64
	cutoff                              time.Time
}

// newPruneFixture: runs 40 days old (plain, one an open alert opened, one
// an open alert last saw, one pinned, one still running, one only a
// resolved alert refers to) and one recent run, each with trials, an
// environment and an annotation.
func newPruneFixture(t *testing.T) *pruneFixture {
	ctx := context.Background()
	s := openTemp(t)
	now := time.Now()
	f := &pruneFixture{s: s, cutoff: now.Add(-30 * 24 * time.Hour)}
	mk := func(age time.Duration, status Status, job string) int64 {
		r := Run{Kind: "watch", JobName: job, Started: now.Add(-age), Status: status}
		if status != StatusRunning {
			r.Finished = r.Started.Add(time.Minute)
		}
		if _, err := s.CreateRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			tr := Trial{RunID: r.ID, Round: i, Mode: "host", Workload: "tcp_rr", Hist: []byte{1}}
			if _, err := s.AddTrial(ctx, &tr); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetEnvironment(ctx, &Environment{RunID: r.ID, Kernel: "6.1"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Annotate(ctx, &r.ID, "note"); err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	day := 24 * time.Hour
	f.old = mk(40*day, StatusComplete, "j")
	f.oldAlert = mk(41*day, StatusComplete, "j")
	f.oldLast = mk(42*day, StatusIncomplete, "j")
	f.oldPinned = mk(43*day, StatusComplete, "j")
	f.oldRunning = mk(44*day, StatusRunning, "j")
	f.oldResolvedOnly = mk(45*day, StatusComplete, "j")
	f.recent = mk(day, StatusComplete, "j")
	a := Alert{Job: "j", ConfigKey: "k", Metric: "rate", RunID: f.oldAlert}
	if _, err := s.OpenAlert(ctx, &a); err != nil {
		t.Fatal(err)
	}
	b := Alert{Job: "j", ConfigKey: "k2", Metric: "rate", RunID: f.recent}
	if _, err := s.OpenAlert(ctx, &b); err != nil {
		t.Fatal(err)
	}
	// b was last seen by oldLast (as if a later run saw it).
	if _, err := s.db.Exec(`UPDATE alerts SET last_run_id = ? WHERE id = ?`, f.oldLast, b.ID); err != nil {
		t.Fatal(err)
	}
	c := Alert{Job: "j", ConfigKey: "k3", Metric: "rate", RunID: f.oldResolvedOnly}
	if _, err := s.OpenAlert(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveAlert(ctx, c.ID, f.recent, now); err != nil {
		t.Fatal(err)
	}
	if err := s.PinBaseline(ctx, "j", f.oldPinned); err != nil {
		t.Fatal(err)
	}
	if err := s.Annotate(ctx, nil, "a note about no run"); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *pruneFixture) exists(t *testing.T, id int64) bool {
	_, err := f.s.Run(context.Background(), id)
	return err == nil
}

func (f *pruneFixture) count(t *testing.T, q string, args ...any) int {
	var n int
	if err := f.s.db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeleteRunsOlderThan(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name       string
		opts       PruneOptions
		deleted    func(f *pruneFixture) []int64
		protected  func(f *pruneFixture) []int64
		wantTrials int
	}{
		{"dry run", PruneOptions{DryRun: true},
			func(f *pruneFixture) []int64 { return nil },
			func(f *pruneFixture) []int64 { return []int64{f.oldAlert, f.oldLast, f.oldPinned} }, 6},
		{"default keeps what alerts and pins refer to", PruneOptions{},
			func(f *pruneFixture) []int64 { return []int64{f.old, f.oldResolvedOnly} },
			func(f *pruneFixture) []int64 { return []int64{f.oldAlert, f.oldLast, f.oldPinned} }, 6},
		{"force", PruneOptions{Force: true},
			func(f *pruneFixture) []int64 {
				return []int64{f.old, f.oldAlert, f.oldLast, f.oldPinned, f.oldResolvedOnly}
			},
			func(f *pruneFixture) []int64 { return nil }, 15},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newPruneFixture(t)
			before := f.count(t, `SELECT COUNT(*) FROM trials`)
			res, err := f.s.DeleteRunsOlderThan(ctx, f.cutoff, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			wantRuns := 2
			if c.opts.Force {
				wantRuns = 5
			}
			if res.Runs != wantRuns || res.Trials != wantRuns*3 || res.Environments != wantRuns || res.Annotations != wantRuns || res.Running != 1 {
				t.Errorf("result %+v, want %d runs with 3 trials, an environment and an annotation each, 1 running", res, wantRuns)
			}
			if !slices.Equal(res.Protected, c.protected(f)) && !(len(res.Protected) == 0 && len(c.protected(f)) == 0) {
				t.Errorf("protected %v, want %v", res.Protected, c.protected(f))
			}
			deleted := c.deleted(f)
			for _, id := range []int64{f.old, f.oldAlert, f.oldLast, f.oldPinned, f.oldRunning, f.oldResolvedOnly, f.recent} {
				if got, want := f.exists(t, id), !slices.Contains(deleted, id); got != want {
					t.Errorf("run %d exists: %v, want %v", id, got, want)
				}
			}
			after := f.count(t, `SELECT COUNT(*) FROM trials`)
			if c.opts.DryRun {
				if after != before {
					t.Errorf("dry run deleted trials: %d → %d", before, after)
				}
			} else if before-after != c.wantTrials {
				t.Errorf("trials %d → %d, want %d fewer", before, after, c.wantTrials)
			}
			// No dependent row is left without its run.
			for _, q := range []string{
				`SELECT COUNT(*) FROM trials WHERE run_id NOT IN (SELECT id FROM runs)`,
				`SELECT COUNT(*) FROM environments WHERE run_id NOT IN (SELECT id FROM runs)`,
				`SELECT COUNT(*) FROM annotations WHERE run_id IS NOT NULL AND run_id NOT IN (SELECT id FROM runs)`,
				`SELECT COUNT(*) FROM baselines WHERE run_id NOT IN (SELECT id FROM runs)`,
				`SELECT COUNT(*) FROM alerts WHERE run_id NOT IN (SELECT id FROM runs) OR last_run_id NOT IN (SELECT id FROM runs)`,
			} {
				if n := f.count(t, q); n != 0 {
					t.Errorf("%d orphans: %s", n, q)
				}
			}
			if n := f.count(t, `SELECT COUNT(*) FROM annotations WHERE run_id IS NULL AND text = 'a note about no run'`); n != 1 {
				t.Errorf("the note about no run was deleted")
			}
			if n := f.count(t, `SELECT COUNT(*) FROM alerts`); n != 3 {
				t.Errorf("%d alerts left, want all 3 (they refer to no run instead)", n)
			}
			_, err = f.s.Baseline(ctx, "j")
			if pinned := err == nil; pinned == (c.opts.Force && !c.opts.DryRun) {
				t.Errorf("baseline pinned: %v with %+v", pinned, c.opts)
			}
			// The run summary follows the deletes.
			counts, err := f.s.RunCounts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var total int
			for _, n := range counts {
				total += n
			}
			if want := f.count(t, `SELECT COUNT(*) FROM runs`); total != want {
				t.Errorf("run counts %v sum to %d, want %d", counts, total, want)
			}
		})
	}
}

// A failing statement inside the transaction deletes nothing.
func TestDeleteRunsOlderThanAtomic(t *testing.T) {
	f := newPruneFixture(t)
	before := f.count(t, `SELECT COUNT(*) FROM trials`)
	// A trigger that fails the last statement, after the dependents went.
	if _, err := f.s.db.Exec(`CREATE TRIGGER no_delete BEFORE DELETE ON runs BEGIN SELECT RAISE(ABORT, 'refused'); END`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.DeleteRunsOlderThan(context.Background(), f.cutoff, PruneOptions{}); err == nil {
		t.Fatal("no error")
	}
	if after := f.count(t, `SELECT COUNT(*) FROM trials`); after != before {
		t.Errorf("a failed prune deleted trials: %d → %d", before, after)
	}
	if !f.exists(t, f.old) {
		t.Errorf("a failed prune deleted a run")
	}
}

// RunGroups and RunCounts follow inserts, status changes and deletes, and
// agree with counting the runs; migrating an existing database fills the
// summary.
func TestRunGroupsSummary(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	old, err := openAt(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		r := Run{Kind: "lab", Started: t0.Add(time.Duration(i) * time.Hour), Status: StatusComplete}
		if _, err := old.CreateRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ids []int64
	for i := range 6 {
		r := Run{Kind: "watch", JobName: "j", Started: t0.Add(time.Duration(10+i) * time.Hour)}
		if _, err := s.CreateRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	for _, id := range ids[:4] {
		if err := s.FinishRun(ctx, id, StatusComplete, t0.Add(100*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishRun(ctx, ids[4], StatusIncomplete, t0.Add(100*time.Hour)); err != nil {
		t.Fatal(err)
	}
	gs, err := s.RunGroups(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 2 || gs[0].Kind != "lab" || gs[0].JobName != "" || gs[0].Counts[StatusComplete] != 5 ||
		gs[1].JobName != "j" || gs[1].Counts[StatusComplete] != 4 || gs[1].Counts[StatusIncomplete] != 1 || gs[1].Counts[StatusRunning] != 1 ||
		gs[1].LatestComplete.ID != ids[3] || gs[0].LatestComplete.Started != t0.Add(4*time.Hour) {
		t.Fatalf("groups %+v", gs)
	}
	if gs, _ := s.RunGroups(ctx, 1); len(gs) != 1 {
		t.Errorf("limit 1: %d groups", len(gs))
	}
	if _, err := s.db.Exec(`DELETE FROM runs WHERE id = ?`, ids[3]); err != nil {
		t.Fatal(err)
	}
	counts, _ := s.RunCounts(ctx)
	if counts[StatusComplete] != 8 || counts[StatusIncomplete] != 1 || counts[StatusRunning] != 1 {
		t.Errorf("counts after a delete: %v", counts)
	}
	if gs, _ := s.RunGroups(ctx, 0); gs[1].LatestComplete.ID != ids[2] {
		t.Errorf("latest complete after deleting it: %d, want %d", gs[1].LatestComplete.ID, ids[2])
	}
	if prev, err := s.PreviousRun(ctx, Run{ID: ids[5], Kind: "watch", JobName: "j", Started: t0.Add(15 * time.Hour)}); err != nil || prev != ids[4] {
		t.Errorf("previous run of %d: %d %v, want %d", ids[5], prev, err, ids[4])
	}
	if prev, _ := s.PreviousRun(ctx, Run{ID: ids[0], Kind: "watch", JobName: "j", Started: t0.Add(10 * time.Hour)}); prev != 0 {
		t.Errorf("previous run of the first: %d", prev)
	}
	if prev, _ := s.PreviousRun(ctx, Run{ID: 999, Kind: "lab", Started: t0.Add(50 * time.Hour)}); prev == 0 {
		t.Errorf("previous lab run (no job) not found")
	}
}

func TestTrialCountsAndOffset(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	var ids []int64
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		r := Run{Kind: "lab", Started: t0.Add(time.Duration(i) * time.Hour)}
		if _, err := s.CreateRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		for k := range i * 2 {
			tr := Trial{RunID: r.ID, Round: k, Hist: make([]byte, 100_000)}
			if k == 0 {
				tr.Error = "boom"
			}
			if _, err := s.AddTrial(ctx, &tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := s.RowsRead()
	c, err := s.TrialCounts(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c[ids[0]]; ok || c[ids[1]] != (TrialCount{2, 1}) || c[ids[2]] != (TrialCount{4, 1}) {
		t.Errorf("counts %v", c)
	}
	if n := s.RowsRead() - before; n != 2 {
		t.Errorf("counting read %d rows, want one per run with trials (2)", n)
	}
	page, err := s.Runs(ctx, RunFilter{Limit: 1, Offset: 1})
	if err != nil || len(page) != 1 || page[0].ID != ids[1] {
		t.Errorf("offset 1 limit 1: %v %v, want run %d", page, err, ids[1])
	}
	if page, _ := s.Runs(ctx, RunFilter{Limit: 5, Offset: 10}); len(page) != 0 {
		t.Errorf("offset past the end: %v", page)
	}
}
