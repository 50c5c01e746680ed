package store

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMigrateFromVersion2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	old, err := openAt(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	r := Run{Kind: "watch", JobName: "nightly"}
	if _, err := old.CreateRun(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if err := old.SetEnvironment(ctx, &Environment{RunID: r.ID, Kernel: "6.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := old.OpenAlert(ctx, &Alert{Job: "nightly", RunID: r.ID}); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("version 2 should have no alerts table: %v", err)
	}
	old.Close()

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := userVersion(t, s); v != len(migrations) || v < 3 {
		t.Errorf("version %d after migration, want %d", v, len(migrations))
	}
	if e, err := s.Environment(ctx, r.ID); err != nil || e.Kernel != "6.1" {
		t.Errorf("environment kept: %+v, %v", e, err)
	}
	a := Alert{Job: "nightly", ConfigKey: "k", Metric: "p99", RunID: r.ID}
	if opened, err := s.OpenAlert(ctx, &a); err != nil || !opened {
		t.Errorf("alerts after migration: %v %v", opened, err)
	}
	if err := s.PinBaseline(ctx, "nightly", r.ID); err != nil {
		t.Errorf("baselines after migration: %v", err)
	}
	integrityCheck(t, s.db)
}

func TestAlerts(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	var runs []int64
	for range 3 {
		r := Run{Kind: "watch", JobName: "j"}
		if _, err := s.CreateRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r.ID)
	}
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	a := Alert{Job: "j", ConfigKey: "mode=host", Metric: "p99", RunID: runs[0], OpenedAt: t0,
		Summary: "p99 +12%", Suspects: json.RawMessage(`["kernel 6.1→6.6"]`)}
	opened, err := s.OpenAlert(ctx, &a)
	if err != nil || !opened || a.ID == 0 || a.State != AlertOpen || a.DedupeKey != AlertKey("j", "mode=host", "p99") {
		t.Fatalf("OpenAlert: %v %v %+v", opened, err, a)
	}
	// The same key again: no duplicate, the open one is touched.
	dup := Alert{Job: "j", ConfigKey: "mode=host", Metric: "p99", RunID: runs[1], Summary: "other"}
	opened, err = s.OpenAlert(ctx, &dup)
	if err != nil || opened || dup.ID != a.ID || dup.LastRunID != runs[1] || dup.Summary != "p99 +12%" {
		t.Fatalf("duplicate OpenAlert: %v %v %+v", opened, err, dup)
	}
	other := Alert{Job: "j", ConfigKey: "mode=host", Metric: "rate", RunID: runs[1], OpenedAt: t0.Add(time.Hour)}
	if opened, err := s.OpenAlert(ctx, &other); err != nil || !opened {
		t.Fatal(opened, err)
	}
	open, err := s.Alerts(ctx, AlertFilter{State: AlertOpen, Job: "j"})
	if err != nil || len(open) != 2 || open[0].ID != other.ID {
		t.Fatalf("open alerts: %+v %v", open, err)
	}
	got := open[1]
	if got.RunID != runs[0] || got.LastRunID != runs[1] || string(got.Suspects) != `["kernel 6.1→6.6"]` ||
		!got.OpenedAt.Equal(t0) || !got.ResolvedAt.IsZero() {
		t.Errorf("stored alert: %+v", got)
	}
	if err := s.ResolveAlert(ctx, a.ID, runs[2], t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveAlert(ctx, a.ID, runs[2], t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("resolving twice: %v", err)
	}
	res, err := s.Alerts(ctx, AlertFilter{State: AlertResolved})
	if err != nil || len(res) != 1 || res[0].LastRunID != runs[2] || !res[0].ResolvedAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("resolved: %+v %v", res, err)
	}
	// Once resolved, the key may open again.
	again := Alert{Job: "j", ConfigKey: "mode=host", Metric: "p99", RunID: runs[2]}
	if opened, err := s.OpenAlert(ctx, &again); err != nil || !opened || again.ID == a.ID {
		t.Errorf("reopen: %v %v", opened, err)
	}
	if all, _ := s.Alerts(ctx, AlertFilter{Limit: 2}); len(all) != 2 {
		t.Errorf("limit 2: %d", len(all))
	}
	if byKey, _ := s.Alerts(ctx, AlertFilter{DedupeKey: a.DedupeKey}); len(byKey) != 2 {
		t.Errorf("by key: %d", len(byKey))
	}
	if _, err := s.OpenAlert(ctx, &Alert{Job: "j", Suspects: json.RawMessage(`[`)}); err == nil {
		t.Error("invalid suspects JSON accepted")
	}
}

// Two writers racing to open the same alert: exactly one opens it.
func TestOpenAlertRace(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	opened := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := Alert{Job: "j", ConfigKey: "k", Metric: "p50"}
			ok, err := s.OpenAlert(ctx, &a)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				opened++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if all, _ := s.Alerts(ctx, AlertFilter{}); opened != 1 || len(all) != 1 {
		t.Errorf("%d opened, %d stored", opened, len(all))
	}
}

func TestBaselineAndJobTrials(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if _, err := s.Baseline(ctx, "j"); !errors.Is(err, ErrNotFound) {
		t.Errorf("no baseline: %v", err)
	}
	if err := s.PinBaseline(ctx, "j", 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("pinning a missing run: %v", err)
	}
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var ids []int64
	for i := range 4 {
		job := "j"
		if i == 2 {
			job = "other"
		}
		r := Run{Kind: "watch", JobName: job, Started: t0.Add(time.Duration(i) * time.Hour)}
		if _, err := s.CreateRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		for round := 1; round >= 0; round-- {
			tr := Trial{RunID: r.ID, Round: round, Mode: "host", Workload: "tcp_rr", P50Ns: int64(i*10 + round),
				Hist: []byte{1, 2, 3}, Counters: json.RawMessage(`{}`)}
			if _, err := s.AddTrial(ctx, &tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, id := range []int64{ids[0], ids[3]} {
		if err := s.PinBaseline(ctx, "j", id); err != nil {
			t.Fatal(err)
		}
	}
	if id, err := s.Baseline(ctx, "j"); err != nil || id != ids[3] {
		t.Errorf("baseline: %d %v, want %d", id, err, ids[3])
	}
	ts, err := s.JobTrials(ctx, "j", 2)
	if err != nil {
		t.Fatal(err)
	}
	var p50 []int64
	for _, tr := range ts {
		p50 = append(p50, tr.P50Ns)
		if tr.Hist != nil || tr.Counters != nil {
			t.Errorf("JobTrials loaded blobs")
		}
	}
	if want := []int64{10, 11, 30, 31}; len(p50) != 4 || p50[0] != want[0] || p50[1] != want[1] || p50[2] != want[2] || p50[3] != want[3] {
		t.Errorf("job trials p50 %v, want %v", p50, want)
	}
	if err := s.UnpinBaseline(ctx, "j"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Baseline(ctx, "j"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after unpin: %v", err)
	}
}
