package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/web/webtest"
	"github.com/latlab/latlab/internal/wire"
)

func TestHistoryEmptyDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, _ := runCLI(t, "runs", "--db", db)
	if code != ExitOK || !strings.Contains(out, "no runs yet") {
		t.Errorf("runs on an empty db: %d %q", code, out)
	}
	code, out, _ = runCLI(t, "runs", "--db", db, "--json")
	var doc struct {
		SchemaVersion int               `json:"schema_version"`
		Runs          []json.RawMessage `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != ExitOK || err != nil || doc.SchemaVersion != 1 || doc.Runs == nil || len(doc.Runs) != 0 {
		t.Errorf("runs --json on an empty db: %d %q", code, out)
	}
	if code, _, stderr := runCLI(t, "show", "--db", db); code != ExitFailed || !strings.Contains(stderr, "no runs") {
		t.Errorf("show on an empty db: %d %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "compare", "x", "y", "--db", db); code != ExitUsage {
		t.Errorf("compare x y: exit %d, want usage", code)
	}
}

func TestRunSpecInvalidNamesFileAndLine(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(f, []byte("name: x\nworkloads:\n  - tcp_rr\n  - ping\n"), 0o644)
	code, _, stderr := runCLI(t, "run", f, "--db", filepath.Join(t.TempDir(), "h.db"))
	if code != ExitUsage || !strings.Contains(stderr, f+":4: workloads[1]") || !strings.Contains(stderr, "tcp_stream") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// Two recorded runs, then every history command on them, and the benchstat
// export through the real benchstat.
func TestHistoryCommandsEndToEnd(t *testing.T) {
	testutil.RequireRoot(t)
	db := filepath.Join(t.TempDir(), "h.db")
	spec := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(spec, []byte("name: small\nmodes: [macvlan]\nworkloads: [tcp_rr, tcp_stream]\ntrials: 3\nduration: 100ms\nwarmup: 0s\n"), 0o644)
	jd := t.TempDir()
	for i := 0; i < 2; i++ {
		if code, _, stderr := runCLI(t, "run", spec, "--db", db, "--journal-dir", jd, "-q"); code != ExitOK {
			t.Fatalf("run %d: %s", i, stderr)
		}
	}
	code, out, _ := runCLI(t, "runs", "--db", db, "--json")
	var runs []struct {
		ID       int64     `json:"id"`
		Started  time.Time `json:"started"`
		Status   string    `json:"status"`
		SpecName string    `json:"spec_name"`
		Trials   int       `json:"trials"`
	}
	if err := unmarshalRuns(out, &runs); code != ExitOK || err != nil {
		t.Fatalf("runs --json: %d %v %s", code, err, out)
	}
	if len(runs) != 2 || runs[0].ID <= runs[1].ID || runs[0].Status != "complete" || runs[0].SpecName != "small" ||
		runs[0].Trials != 12 || runs[0].Started.IsZero() {
		t.Fatalf("runs: %+v", runs)
	}
	newest, oldest := strconv.FormatInt(runs[0].ID, 10), strconv.FormatInt(runs[1].ID, 10)

	code, out, _ = runCLI(t, "show", "--db", db)
	if code != ExitOK || !strings.Contains(out, "run "+newest) || !strings.Contains(out, "macvlan") || !strings.Contains(out, "tcp_stream") {
		t.Errorf("show: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "compare", oldest, newest, "--db", db)
	if code != ExitOK || !strings.Contains(out, "mode=macvlan/workload=tcp_rr") || !strings.Contains(out, "run "+oldest) {
		t.Errorf("compare runs: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "compare", "latest", "mode=host", "mode=macvlan", "--db", db, "--json", "--metric", "p99")
	var cmp struct {
		Rows []struct {
			Name    string `json:"name"`
			Unit    string `json:"unit"`
			Verdict string `json:"verdict"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(out), &cmp); code != ExitOK || err != nil || len(cmp.Rows) != 1 ||
		cmp.Rows[0].Unit != "ns" || !strings.Contains(cmp.Rows[0].Name, "workload=tcp_rr") {
		t.Errorf("compare configs: %d %v\n%s", code, err, out)
	}
	code, out, _ = runCLI(t, "export", "--db", db, "--format", "csv")
	if code != ExitOK || strings.Count(out, "\n") != 13 || !strings.HasPrefix(out, "run,round,order,mode") {
		t.Errorf("export csv: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "export", "--db", db)
	if code != ExitOK || strings.Count(out, "BenchmarkLatlab/mode=") != 12 {
		t.Fatalf("export benchstat: %d\n%s", code, out)
	}
	// The real benchstat must accept it and pivot on the mode.
	f := filepath.Join(t.TempDir(), "lab.txt")
	os.WriteFile(f, []byte(out), 0o644)
	bs := filepath.Join(t.TempDir(), "benchstat")
	if b, err := exec.Command("go", "build", "-o", bs, "golang.org/x/perf/cmd/benchstat").CombinedOutput(); err != nil {
		t.Fatalf("build benchstat: %v\n%s", err, b)
	}
	b, err := exec.Command(bs, "-col", "/mode", f).CombinedOutput()
	if err != nil || !strings.Contains(string(b), "host") || !strings.Contains(string(b), "macvlan") || !strings.Contains(string(b), "txn/s") {
		t.Errorf("benchstat -col /mode: %v\n%s", err, b)
	}
	// HdrHistogram formats: an interval per latency trial, tagged; one
	// configuration's distribution; --config only with hgrm.
	code, out, _ = runCLI(t, "export", "--db", db, "--format", "hlog")
	if code != ExitOK || strings.Count(out, "\nTag=mode=") != 6 || strings.Count(out, "/workload=tcp_rr/") != 6 {
		t.Errorf("export hlog: %d, want 6 tcp_rr intervals\n%s", code, out)
	}
	code, out, _ = runCLI(t, "export", "--db", db, "--format", "hgrm", "--config", "mode=macvlan/workload=tcp_rr")
	if code != ExitOK || !strings.Contains(out, "Percentile") || !strings.Contains(out, "Total count") {
		t.Errorf("export hgrm: %d\n%s", code, out)
	}
	if code, _, stderr := runCLI(t, "export", "--db", db, "--format", "hgrm"); code == ExitOK || !strings.Contains(stderr, "configurations match") {
		t.Errorf("export hgrm of a run with two latency configurations, no --config: %d %s", code, stderr)
	}
	if code, _, _ := runCLI(t, "export", "--db", db, "--format", "csv", "--config", "mode=host"); code != ExitUsage {
		t.Errorf("export --format csv --config: exit %d, want %d", code, ExitUsage)
	}
}

// A run killed with SIGKILL keeps the trials that finished; the next
// command marks it incomplete.
func TestKilledRunKeepsFinishedTrials(t *testing.T) {
	testutil.RequireRoot(t)
	db := filepath.Join(t.TempDir(), "h.db")
	jd := t.TempDir()
	cmd, errs, _ := startLab(t, jd, "--db", db, "--modes", "host", "--workloads", "udp_rr", "-n", "100", "-d", "100ms", "--warmup", "0s")
	for {
		l, err := errs.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, "round 2 done") {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	go io.Copy(io.Discard, errs)
	runCLI(t, "cleanup", "--journal-dir", jd)
	code, out, _ := runCLI(t, "runs", "--db", db, "--json")
	var runs []struct {
		Status string `json:"status"`
		Trials int    `json:"trials"`
	}
	unmarshalRuns(out, &runs)
	if code != ExitOK || len(runs) != 1 || runs[0].Status != "incomplete" || runs[0].Trials < 2 {
		t.Fatalf("after kill -9: %d %s", code, out)
	}
	if code, out, _ := runCLI(t, "show", "--db", db); code != ExitOK || !strings.Contains(out, "INCOMPLETE") {
		t.Errorf("show of the killed run: %d\n%s", code, out)
	}
}

// A run is reproducible from what it recorded: lab with flags stores the
// spec that ran (flags folded in, the calibrated placements, the seed),
// and `latlab run` of that spec runs the same configurations the same
// number of times.
func TestLabStoredSpecReruns(t *testing.T) {
	testutil.RequireRoot(t)
	db := filepath.Join(t.TempDir(), "r.db")
	jd := t.TempDir()
	if code, _, stderr := runCLI(t, "lab", "--modes", "host,veth-routed", "--workloads", "tcp_rr,udp_rr", "--trials", "3",
		"-d", "50ms", "--warmup", "0s", "--seed", "77", "--db", db, "--journal-dir", jd, "-q"); code != ExitOK {
		t.Fatalf("lab: %s", stderr)
	}
	ctx := t.Context()
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	first, err := st.Run(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"trials: 3", "seed: 77", "- veth-routed", "- udp_rr", "client_cpus:", "# latlab lab ", "--trials=3"} {
		if !strings.Contains(first.Spec, want) {
			t.Errorf("stored spec lacks %q:\n%s", want, first.Spec)
		}
	}
	if strings.Contains(first.Spec, "tcp_stream") || strings.Contains(first.Spec, "bridge-nat") {
		t.Errorf("stored spec holds what did not run:\n%s", first.Spec)
	}
	spec := filepath.Join(t.TempDir(), "again.yaml")
	os.WriteFile(spec, []byte(first.Spec), 0o644)
	if code, _, stderr := runCLI(t, "run", spec, "--db", db, "--journal-dir", jd, "-q"); code != ExitOK {
		t.Fatalf("run of the stored spec: %s", stderr)
	}
	counts := func(id int64) map[string]int {
		trials, err := st.Trials(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, tr := range trials {
			m[tr.ConfigKey]++
		}
		return m
	}
	a, b := counts(1), counts(2)
	if len(a) != 4 || !maps.Equal(a, b) {
		t.Errorf("configurations and trial counts differ:\nlab %v\nrun %v", a, b)
	}
	second, _ := st.Run(ctx, 2)
	if second.Seed != 77 {
		t.Errorf("rerun seed %d, want 77", second.Seed)
	}
}

// `latlab runs prune`: a dry run deletes nothing, a prune deletes the old
// runs with their trials but keeps what an open alert refers to, --force
// deletes that too; bad ages are usage errors.
func TestRunsPrune(t *testing.T) {
	db := filepath.Join(t.TempDir(), "p.db")
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now()
	mk := func(age time.Duration) int64 {
		r := store.Run{Kind: "watch", JobName: "j", Started: now.Add(-age), Finished: now.Add(-age + time.Minute), Status: store.StatusComplete}
		if _, err := st.CreateRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if _, err := st.AddTrial(ctx, &store.Trial{RunID: r.ID, Round: i, Mode: "host", Workload: "tcp_rr"}); err != nil {
				t.Fatal(err)
			}
		}
		return r.ID
	}
	day := 24 * time.Hour
	old, alerted, recent := mk(100*day), mk(95*day), mk(day)
	if _, err := st.OpenAlert(ctx, &store.Alert{Job: "j", ConfigKey: "k", Metric: "rate", RunID: alerted}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	left := func() []int64 {
		s, err := store.Open(db)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		runs, err := s.Runs(ctx, store.RunFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, r := range runs {
			ids = append(ids, r.ID)
		}
		return ids
	}
	for _, bad := range []string{"", "0", "-5d", "x", "1y", "99999999d", "9999999w"} {
		if code, _, stderr := runCLI(t, "runs", "prune", "--db", db, "--older-than", bad); code != ExitUsage {
			t.Errorf("--older-than %q: exit %d (%s), want usage", bad, code, stderr)
		}
	}
	if code, _, _ := runCLI(t, "runs", "prune", "--db", db); code != ExitUsage {
		t.Errorf("no --older-than: exit %d, want usage", code)
	}
	code, out, stderr := runCLI(t, "runs", "prune", "--db", db, "--older-than", "30d", "--dry-run")
	if code != ExitOK || !strings.Contains(out, "would delete 1 runs") || !strings.Contains(out, "2 trials") ||
		!strings.Contains(out, "kept 1 runs that open alerts or pinned baselines refer to: "+strconv.FormatInt(alerted, 10)) {
		t.Errorf("dry run: %d %q %s", code, out, stderr)
	}
	if got := left(); len(got) != 3 {
		t.Errorf("dry run deleted runs: %v left", got)
	}
	code, out, stderr = runCLI(t, "runs", "prune", "--db", db, "--older-than", "30d")
	if code != ExitOK || !strings.HasPrefix(out, "deleted 1 runs") {
		t.Errorf("prune: %d %q %s", code, out, stderr)
	}
	if got := left(); len(got) != 2 || got[0] != recent || got[1] != alerted {
		t.Errorf("after prune: %v left, want %d and %d (old %d gone)", got, recent, alerted, old)
	}
	code, out, _ = runCLI(t, "runs", "prune", "--db", db, "--older-than", "4w", "--force")
	if code != ExitOK || !strings.HasPrefix(out, "deleted 1 runs") {
		t.Errorf("prune --force: %d %q", code, out)
	}
	if got := left(); len(got) != 1 || got[0] != recent {
		t.Errorf("after prune --force: %v left, want only %d", got, recent)
	}
	// `latlab runs` still lists, with trial counts.
	code, out, _ = runCLI(t, "runs", "--db", db, "--json")
	if code != ExitOK || !strings.Contains(out, `"trials": 2`) {
		t.Errorf("runs after prune: %d %s", code, out)
	}
	if code, _, _ := runCLI(t, "runs", "--db", db, "--limit", "-1"); code != ExitUsage {
		t.Errorf("--limit -1: exit %d, want usage", code)
	}
	code, out, _ = runCLI(t, "runs", "prune", "--help")
	if code != ExitOK || !strings.Contains(out, "--force") || !strings.Contains(out, "open alert") || !strings.Contains(out, "one transaction") {
		t.Errorf("prune --help: %d\n%s", code, out)
	}
}

func TestParseAge(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true}, {"2w", 14 * 24 * time.Hour, true}, {"36h", 36 * time.Hour, true},
		{"1h30m", 90 * time.Minute, true}, {"36500d", 36500 * 24 * time.Hour, true},
		{"36501d", 0, false}, {"0d", 0, false}, {"0", 0, false}, {"-1h", 0, false}, {"d", 0, false}, {"1.5d", 0, false}, {"", 0, false},
	} {
		got, err := parseAge(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseAge(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

// compare A B prints the environment diff (the suspects) under its
// table, and notes made in between; show prints the alerts and notes of
// a watch run.
func TestCompareEnvDiffAndShowHistory(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	a := webtest.Record(t, st, webtest.Run{Started: t0, Kind: "watch", Job: "edge", Kernel: "6.1", Seed: 1})
	b := webtest.Record(t, st, webtest.Run{Started: t0.Add(time.Hour), Kind: "watch", Job: "edge", Kernel: "6.6", Seed: 2})
	for id, tso := range map[int64]bool{a: true, b: false} {
		e, err := st.Environment(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		e.Offload, _ = json.Marshal(map[string]map[string]bool{"client/c0": {"tx-tcp-segmentation": tso, "rx-gro-hw": false}})
		if err := st.SetEnvironment(ctx, &e); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Annotate(ctx, &b, "watch: noisy run: canary"); err != nil {
		t.Fatal(err)
	}
	al := store.Alert{Job: "edge", ConfigKey: "mode=host/workload=tcp_rr/size=64/offload=default/placement=auto", Metric: "rate",
		RunID: b, LastRunID: b, Summary: "rate regressed -40%"}
	if _, err := st.OpenAlert(ctx, &al); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, errs := runCLI(t, "compare", strconv.FormatInt(a, 10), strconv.FormatInt(b, 10), "--db", db)
	want := fmt.Sprintf("\nenvironment, run %d → run %d (suspects):\n  kernel 6.1→6.6\n  tx-tcp-segmentation on→off on client/c0\n", a, b)
	if code != ExitOK || !strings.Contains(out, want) {
		t.Errorf("compare: %d %s\n%s\nwant under the table:%s", code, errs, out, want)
	}
	if code, out, _ := runCLI(t, "compare", strconv.FormatInt(a, 10), strconv.FormatInt(a, 10), "--db", db); code != ExitOK ||
		!strings.Contains(out, fmt.Sprintf("environment: no differences between run %d and run %d", a, a)) {
		t.Errorf("compare a run with itself: %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, "compare", strconv.FormatInt(a, 10), strconv.FormatInt(b, 10), "--db", db, "--json"); code != ExitOK || strings.Contains(out, "suspects") {
		t.Errorf("compare --json carries the text diff: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "show", strconv.FormatInt(b, 10), "--db", db)
	if code != ExitOK || !strings.Contains(out, fmt.Sprintf("alert %d (open) opened by this run: rate regressed -40%%", al.ID)) ||
		!strings.Contains(out, "note: watch: noisy run: canary") {
		t.Errorf("show: %d\n%s", code, out)
	}
}

// compare --fail-on gates a pipeline: exit 3 after the table when a
// configuration is significantly worse (by more than the threshold, in
// the threshold form), 0 otherwise; a malformed condition is a usage error.
func TestCompareFailOn(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	a := webtest.Record(t, st, webtest.Run{Started: t0, Seed: 1, Workloads: []wire.Workload{wire.TCPRR}})
	// veth-routed's round trip 26 → 40 µs: its rate ~35% lower.
	b := webtest.Record(t, st, webtest.Run{Started: t0.Add(time.Hour), Seed: 2, Workloads: []wire.Workload{wire.TCPRR},
		Modes: []string{"host", "veth-routed"}, LatUs: []float64{20, 40}})
	st.Close()
	ra, rb := strconv.FormatInt(a, 10), strconv.FormatInt(b, 10)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, ExitOK, ""},
		{[]string{"--fail-on", "worse"}, ExitRegressed, "--fail-on worse: 1 configuration(s) regressed: mode=veth-routed"},
		{[]string{"--fail-on", "worse>10%"}, ExitRegressed, "--fail-on worse>10%: 1 configuration(s) regressed"},
		{[]string{"--fail-on", "worse>60%"}, ExitOK, ""},
		{[]string{"--fail-on", "better"}, ExitUsage, `"better": want worse or worse>N%`},
		{[]string{"--fail-on", "worse>x%"}, ExitUsage, "want worse or worse>N%"},
	} {
		code, out, errs := runCLI(t, append([]string{"compare", ra, rb, "--db", db}, tc.args...)...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("compare %v: exit %d (want %d), stderr %q (want %q)", tc.args, code, tc.code, errs, tc.want)
		}
		if tc.code != ExitUsage && !strings.Contains(out, "veth-routed") {
			t.Errorf("compare %v: the table must be printed before the verdict:\n%s", tc.args, out)
		}
	}
	// B against itself regressed nowhere.
	if code, _, errs := runCLI(t, "compare", rb, rb, "--db", db, "--fail-on", "worse"); code != ExitOK {
		t.Errorf("compare B B --fail-on worse: exit %d: %s", code, errs)
	}
}

// latlab --version prints the same version as latlab version.
func TestRootVersionFlag(t *testing.T) {
	code, out, _ := runCLI(t, "--version")
	if code != ExitOK || out != "latlab "+Version()+"\n" {
		t.Errorf("--version: exit %d, %q", code, out)
	}
}

// unmarshalRuns decodes `latlab runs -o json`'s "runs" into runs.
func unmarshalRuns(out string, runs any) error {
	var doc struct {
		Runs json.RawMessage `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return err
	}
	return json.Unmarshal(doc.Runs, runs)
}
