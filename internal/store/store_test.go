package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/hist"
)

// TestMain lets the crash test re-run this binary as a writer it can kill.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "sub", "dir", "latlab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testHist is a realistic latency histogram: n log-normal latencies around
// 50 µs. sigma 1.5 with a million values marshals to about 30 KB.
func testHist(seed uint64, n int, sigma float64) *hist.Histogram {
	r := rand.New(rand.NewPCG(seed, 1))
	h := hist.NewDefault()
	for range n {
		h.Record(int64(math.Exp(math.Log(50_000) + sigma*r.NormFloat64())))
	}
	return h
}

func marshal(t testing.TB, h *hist.Histogram) []byte {
	t.Helper()
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameTime(a, b time.Time) bool { return a.Equal(b) }

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	started := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	in := Run{
		Started: started, SpecName: "nightly", Spec: "modes: [host, bridge]\ntrials: 7\n",
		Seed: math.MaxUint64 - 5, Version: "v0.9.1", Kind: "lab", JobName: "nightly-job",
	}
	id, err := s.CreateRun(ctx, &in)
	if err != nil {
		t.Fatal(err)
	}
	if id != in.ID || in.Status != StatusRunning {
		t.Fatalf("CreateRun: id %d, in.ID %d, status %q", id, in.ID, in.Status)
	}
	got, err := s.Run(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !sameTime(got.Started, in.Started) || !got.Finished.IsZero() {
		t.Errorf("times: got %v/%v, want %v/zero", got.Started, got.Finished, in.Started)
	}
	got.Started = in.Started
	if !reflect.DeepEqual(got, in) {
		t.Errorf("run:\n got %+v\nwant %+v", got, in)
	}

	h := testHist(1, 100_000, 1)
	tr := Trial{
		RunID: id, Round: 3, Order: 2, Mode: "bridge", Workload: "tcp_rr", Offload: "default",
		Size: 64, Placement: "cross-core", Transactions: 100_000, DurationS: 0.7,
		RatePerSec: 142857.1, ThroughputBps: 1.5e9, P50Ns: h.Percentile(50), P90Ns: h.Percentile(90),
		P99Ns: h.Percentile(99), P999Ns: h.Percentile(99.9), MaxNs: h.Max(), Lost: 3,
		Error: "", Hist: marshal(t, h), Counters: json.RawMessage(`{"TcpRetransSegs":4}`),
		Started: started.Add(time.Second),
	}
	tid, err := s.AddTrial(ctx, &tr)
	if err != nil {
		t.Fatal(err)
	}
	if tr.ConfigKey != ConfigKey("bridge", "tcp_rr", "default", 64, "cross-core") {
		t.Errorf("default config key %q", tr.ConfigKey)
	}
	failed := Trial{RunID: id, Round: 3, Order: 3, Mode: "host", Workload: "udp_rr", Error: "timeout"}
	if _, err := s.AddTrial(ctx, &failed); err != nil {
		t.Fatal(err)
	}
	ts, err := s.Trials(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].ID != tid {
		t.Fatalf("trials: %+v", ts)
	}
	g := ts[0]
	if !sameTime(g.Started, tr.Started) {
		t.Errorf("trial started %v, want %v", g.Started, tr.Started)
	}
	g.Started = tr.Started
	if !reflect.DeepEqual(g, tr) {
		t.Errorf("trial:\n got %+v\nwant %+v", g, tr)
	}
	var back hist.Histogram
	if err := back.UnmarshalBinary(g.Hist); err != nil {
		t.Fatal(err)
	}
	for _, q := range []float64{0, 50, 90, 99, 99.9, 99.99, 100} {
		if a, b := back.Percentile(q), h.Percentile(q); a != b {
			t.Errorf("p%v: stored %d, original %d", q, a, b)
		}
	}
	if back.Count() != h.Count() || back.Mean() != h.Mean() {
		t.Errorf("count/mean: %d/%v, want %d/%v", back.Count(), back.Mean(), h.Count(), h.Mean())
	}
	if f := ts[1]; f.Hist != nil || f.Counters != nil || f.Error != "timeout" {
		t.Errorf("failed trial: hist %v counters %q error %q", f.Hist, f.Counters, f.Error)
	}

	env := Environment{
		RunID: id, Kernel: "6.12.0", CPUModel: "AMD EPYC 9654", Cores: 96,
		Offload: json.RawMessage(`{"eth0":{"gro":true}}`), Sysctls: json.RawMessage(`{"net.core.busy_poll":0}`),
		Qdiscs: json.RawMessage(`["fq_codel"]`), Version: "v0.9.1",
	}
	if err := s.SetEnvironment(ctx, &env); err != nil {
		t.Fatal(err)
	}
	env.Cores = 48 // replaced, not duplicated
	if err := s.SetEnvironment(ctx, &env); err != nil {
		t.Fatal(err)
	}
	ge, err := s.Environment(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ge, env) {
		t.Errorf("environment:\n got %+v\nwant %+v", ge, env)
	}
	if err := s.SetEnvironment(ctx, &Environment{RunID: id, Extra: json.RawMessage(`{bad`)}); err == nil {
		t.Error("SetEnvironment accepted invalid JSON")
	}

	before := time.Now()
	if err := s.Annotate(ctx, &id, "bridge looks slow"); err != nil {
		t.Fatal(err)
	}
	if err := s.Annotate(ctx, nil, "upgraded kernel"); err != nil {
		t.Fatal(err)
	}
	as, err := s.Annotations(ctx, &id)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Text != "bridge looks slow" || as[0].RunID == nil || *as[0].RunID != id ||
		as[0].Time.Before(before.Add(-time.Second)) {
		t.Errorf("run annotations: %+v", as)
	}
	all, err := s.Annotations(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[1].Text != "upgraded kernel" || all[1].RunID != nil {
		t.Errorf("all annotations: %+v", all)
	}

	fin := started.Add(time.Minute)
	if err := s.FinishRun(ctx, id, StatusComplete, fin); err != nil {
		t.Fatal(err)
	}
	got, err = s.Run(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusComplete || !sameTime(got.Finished, fin) {
		t.Errorf("finished run: %q %v", got.Status, got.Finished)
	}
	if err := s.FinishRun(ctx, id, StatusRunning, fin); err == nil {
		t.Error("FinishRun accepted status running")
	}
}

func TestOrderingAndFilters(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Created out of time order, to see that listing sorts by start.
	specs := []struct {
		day    int
		kind   string
		job    string
		status Status
	}{
		{2, "lab", "", StatusComplete},
		{0, "lab", "nightly", StatusComplete},
		{3, "watch", "nightly", StatusRunning},
		{1, "run", "", StatusIncomplete},
	}
	ids := map[int]int64{} // day → run id
	for _, sp := range specs {
		r := Run{Started: t0.AddDate(0, 0, sp.day), Kind: sp.kind, JobName: sp.job, Status: sp.status}
		id, err := s.CreateRun(ctx, &r)
		if err != nil {
			t.Fatal(err)
		}
		ids[sp.day] = id
	}
	days := func(rs []Run) []int {
		var out []int
		for _, r := range rs {
			out = append(out, r.Started.Day()-1)
		}
		return out
	}
	for _, c := range []struct {
		f    RunFilter
		want []int
	}{
		{RunFilter{}, []int{3, 2, 1, 0}},
		{RunFilter{Limit: 2}, []int{3, 2}},
		{RunFilter{Kind: "lab"}, []int{2, 0}},
		{RunFilter{Status: StatusComplete}, []int{2, 0}},
		{RunFilter{JobName: "nightly"}, []int{3, 0}},
		{RunFilter{JobName: "nightly", Kind: "lab"}, []int{0}},
		{RunFilter{Kind: "nope"}, nil},
	} {
		rs, err := s.Runs(ctx, c.f)
		if err != nil {
			t.Fatal(err)
		}
		if got := days(rs); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Runs(%+v): days %v, want %v", c.f, got, c.want)
		}
	}
	latest, err := s.LatestRun(ctx)
	if err != nil || latest.ID != ids[3] {
		t.Errorf("LatestRun: %+v, %v; want run %d", latest, err, ids[3])
	}

	// Trials come back in round/order order whatever the insertion order;
	// config history spans runs, newest first.
	key := ConfigKey("host", "tcp_rr", "", 64, "")
	for _, day := range []int{0, 2, 1} {
		for _, ro := range [][2]int{{1, 1}, {0, 1}, {1, 0}, {0, 0}} {
			mode := "host"
			if ro[1] == 1 {
				mode = "bridge"
			}
			tr := Trial{RunID: ids[day], Round: ro[0], Order: ro[1], Mode: mode, Workload: "tcp_rr", Size: 64,
				Started: t0.AddDate(0, 0, day).Add(time.Duration(ro[0]*2+ro[1]) * time.Second)}
			if _, err := s.AddTrial(ctx, &tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	ts, err := s.Trials(ctx, ids[2])
	if err != nil {
		t.Fatal(err)
	}
	var order [][2]int
	for _, tr := range ts {
		order = append(order, [2]int{tr.Round, tr.Order})
	}
	if want := [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}}; !reflect.DeepEqual(order, want) {
		t.Errorf("trial order %v, want %v", order, want)
	}
	hs, err := s.ConfigHistory(ctx, key, 0)
	if err != nil {
		t.Fatal(err)
	}
	var hist []string
	for _, tr := range hs {
		hist = append(hist, fmt.Sprintf("%d/%d", tr.Started.Day()-1, tr.Round))
	}
	if want := []string{"2/1", "2/0", "1/1", "1/0", "0/1", "0/0"}; !reflect.DeepEqual(hist, want) {
		t.Errorf("history (day/round) %v, want %v", hist, want)
	}
	if hs, err := s.ConfigHistory(ctx, key, 3); err != nil || len(hs) != 3 {
		t.Errorf("history limit 3: %d trials, %v", len(hs), err)
	}
	if hs, err := s.ConfigHistory(ctx, "no such config", 0); err != nil || len(hs) != 0 {
		t.Errorf("history of unknown config: %v, %v", hs, err)
	}
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if _, err := s.LatestRun(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("LatestRun on empty store: %v", err)
	}
	id := int64(42)
	_, errRun := s.Run(ctx, id)
	_, errTrials := s.Trials(ctx, id)
	_, errEnv := s.Environment(ctx, id)
	_, errAdd := s.AddTrial(ctx, &Trial{RunID: id, Mode: "host"})
	for name, err := range map[string]error{
		"Run":            errRun,
		"Trials":         errTrials,
		"Environment":    errEnv,
		"AddTrial":       errAdd,
		"FinishRun":      s.FinishRun(ctx, id, StatusComplete, time.Now()),
		"SetEnvironment": s.SetEnvironment(ctx, &Environment{RunID: id}),
		"Annotate":       s.Annotate(ctx, &id, "x"),
	} {
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "run 42") {
			t.Errorf("%s: %v, want ErrNotFound naming run 42", name, err)
		}
	}
	if got := errAdd.Error(); got != "add trial to run 42: run 42: not found" {
		t.Errorf("AddTrial error %q", got)
	}
	// A run without an environment: not found, too.
	r := Run{Kind: "lab"}
	if _, err := s.CreateRun(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Environment(ctx, r.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Environment of a run without one: %v", err)
	}
	if ts, err := s.Trials(ctx, r.ID); err != nil || len(ts) != 0 {
		t.Errorf("Trials of an empty run: %v, %v", ts, err)
	}
}

func userVersion(t *testing.T, s *Store) int {
	t.Helper()
	v, err := schemaVersion(context.Background(), s.db)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := openAt(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v := userVersion(t, old); v != 1 {
		t.Fatalf("old database at version %d, want 1", v)
	}
	r := Run{Kind: "lab", SpecName: "old"}
	if _, err := old.CreateRun(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if err := old.SetEnvironment(ctx, &Environment{RunID: r.ID}); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("version 1 should have no environments table: %v", err)
	}
	tr := Trial{RunID: r.ID, Mode: "host", Workload: "tcp_rr", Hist: marshal(t, testHist(2, 1000, 1))}
	if _, err := old.AddTrial(ctx, &tr); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := userVersion(t, s); v != len(migrations) {
		t.Errorf("migrated database at version %d, want %d", v, len(migrations))
	}
	got, err := s.Run(ctx, r.ID)
	if err != nil || got.SpecName != "old" {
		t.Errorf("run after migration: %+v, %v", got, err)
	}
	ts, err := s.Trials(ctx, r.ID)
	if err != nil || len(ts) != 1 || !reflect.DeepEqual(ts[0].Hist, tr.Hist) {
		t.Errorf("trials after migration: %d, %v", len(ts), err)
	}
	if err := s.SetEnvironment(ctx, &Environment{RunID: r.ID, Kernel: "6.1"}); err != nil {
		t.Errorf("environments after migration: %v", err)
	}
	if err := s.Annotate(ctx, &r.ID, "migrated"); err != nil {
		t.Errorf("annotations after migration: %v", err)
	}
	// Reopening an up-to-date database changes nothing.
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

func TestNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(path)
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "upgrade latlab") {
		t.Errorf("Open of a newer database: %v", err)
	}
}

// TestConcurrent has two stores (as two processes would) add trials while
// a third lists runs and trials: busy_timeout and BEGIN IMMEDIATE must
// make them wait for each other, never fail with "database is locked".
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	var stores [3]*Store
	for i := range stores {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	blob := marshal(t, testHist(3, 200_000, 1.5))
	const perWriter = 100
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	done := make(chan struct{})
	runIDs := make([]int64, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := Run{Kind: "lab"}
			if _, err := stores[w].CreateRun(ctx, &r); err != nil {
				errs <- err
				return
			}
			runIDs[w] = r.ID
			for i := range perWriter {
				tr := Trial{RunID: r.ID, Round: i, Mode: "host", Workload: "tcp_rr", Hist: blob}
				if _, err := stores[w].AddTrial(ctx, &tr); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var lists int
	rdone := make(chan struct{})
	go func() {
		defer close(rdone)
		for {
			select {
			case <-done:
				return
			default:
			}
			rs, err := stores[2].Runs(ctx, RunFilter{})
			if err != nil {
				errs <- err
				return
			}
			for _, r := range rs {
				if _, err := stores[2].Trials(ctx, r.ID); err != nil {
					errs <- err
					return
				}
			}
			lists++
		}
	}()
	wg.Wait()
	close(done)
	<-rdone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range runIDs {
		if ts, err := stores[2].Trials(ctx, id); err != nil || len(ts) != perWriter {
			t.Errorf("run %d: %d trials, %v", id, len(ts), err)
		}
	}
	t.Logf("%d listings during %d writes", lists, 2*perWriter)
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("LATLAB_DB", "/tmp/x/latlab.db")
	if got := DefaultPath(); got != "/tmp/x/latlab.db" {
		t.Errorf("LATLAB_DB: %q", got)
	}
	t.Setenv("LATLAB_DB", "")
	t.Setenv("XDG_DATA_HOME", "/data")
	want := "/data/latlab/latlab.db"
	if os.Geteuid() == 0 {
		want = "/var/lib/latlab/latlab.db"
	}
	if got := DefaultPath(); got != want {
		t.Errorf("DefaultPath() = %q, want %q", got, want)
	}
}

func TestOwnerAlive(t *testing.T) {
	me := ownerToken(os.Getpid())
	if me == "" || !ownerAlive(me) {
		t.Fatalf("own token %q not alive", me)
	}
	parts := strings.Split(me, "/")
	for _, tok := range []string{
		parts[0] + "/" + parts[1] + "/1",           // pid reused: other start time
		"00000000-0000-0000-0000-000000000000/1/1", // another boot
		parts[0] + "/999999999/" + parts[2],        // no such process
	} {
		if ownerAlive(tok) {
			t.Errorf("%q alive", tok)
		}
	}
	if !ownerAlive("") {
		t.Error("unknown owner should count as alive")
	}
}

// integrityCheck runs PRAGMA integrity_check.
func integrityCheck(t *testing.T, db *sql.DB) {
	t.Helper()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		t.Fatal(err)
	}
	if res != "ok" {
		t.Errorf("integrity_check: %s", res)
	}
}

func BenchmarkAddTrial(b *testing.B) {
	ctx := context.Background()
	s := openTemp(b)
	blob := marshal(b, testHist(4, 1_000_000, 1.5))
	r := Run{Kind: "lab"}
	if _, err := s.CreateRun(ctx, &r); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(blob)))
	for i := 0; b.Loop(); i++ {
		tr := Trial{RunID: r.ID, Round: i, Mode: "host", Workload: "tcp_rr", Hist: blob,
			Counters: json.RawMessage(`{"TcpRetransSegs":0,"TcpExtTCPTimeouts":0}`)}
		if _, err := s.AddTrial(ctx, &tr); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(blob)), "blob-bytes")
}

// TestPragmas checks that every pooled connection got the settings Open
// documents.
func TestPragmas(t *testing.T) {
	s := openTemp(t)
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // FULL
		"foreign_keys": "1",
		"busy_timeout": strconv.Itoa(int(busyTimeout.Milliseconds())),
	} {
		var got string
		if err := s.db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
	integrityCheck(t, s.db)
}

// OpenExisting never creates a database: a missing file is ErrNoDatabase
// naming the path, and nothing is left behind; an existing one opens.
func TestOpenExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "none.db")
	_, err := OpenExisting(path)
	if !errors.Is(err, ErrNoDatabase) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("OpenExisting of a missing file: %v, want ErrNoDatabase naming %s", err, path)
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenExisting created %s (stat: %v)", filepath.Dir(path), err)
	}
	if _, err := OpenExisting(dir); err == nil || errors.Is(err, ErrNoDatabase) {
		t.Errorf("OpenExisting of a directory: %v", err)
	}
	st, err := Open(filepath.Join(dir, "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = OpenExisting(filepath.Join(dir, "x.db"))
	if err != nil {
		t.Fatalf("OpenExisting of an existing database: %v", err)
	}
	st.Close()
}
