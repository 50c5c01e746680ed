package watch

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/watch/watchtest"
)

// synth writes synthetic runs of a lab job into a store.
type synth struct {
	t     *testing.T
	st    *store.Store
	job   *Job
	rng   *rand.Rand
	clock *watchtest.FakeClock
	w     *Watcher
	// trialNoise and runDrift are the relative standard deviations of
	// each trial and of each run's level (defaults 2% and 1%).
	trialNoise, runDrift float64
	// trials per mode and run (default 7).
	trials int
}

// shift scales a mode's metrics in one run: p99 1.2 means 20% slower p99.
type shift struct {
	mode           string
	rate, p50, p99 float64
}

func newSynth(t *testing.T, alerts []AlertSpec) *synth {
	st, err := store.Open(filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	job := &Job{Name: "lab-job", Spec: &experiment.LabSpec{Baseline: "host"}, Baseline: BaselineSpec{Last: 5}, Confirm: DefaultConfirm, Alerts: alerts}
	clock := watchtest.NewFakeClock(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	s := &synth{t: t, st: st, job: job, rng: rand.New(rand.NewPCG(5, 5)), clock: clock, trialNoise: 0.02, runDrift: 0.01, trials: 7}
	s.w = &Watcher{Store: st, Config: &Config{Jobs: []*Job{job}}, Clock: clock, Seed: 1,
		Logf: func(f string, a ...any) { t.Logf(f, a...) }}
	return s
}

// run records one complete run with 7 trials of host and veth-routed
// tcp_rr (2% trial noise, 1% run-to-run drift), kernel and offload state
// as given, and checks it.
func (s *synth) run(kernel string, tso bool, sh *shift) (*Report, int64) {
	s.t.Helper()
	ctx := context.Background()
	s.clock.Advance(time.Hour)
	r := store.Run{Kind: "watch", JobName: s.job.Name, Started: s.clock.Now()}
	if _, err := s.st.CreateRun(ctx, &r); err != nil {
		s.t.Fatal(err)
	}
	drift := 1 + s.runDrift*s.rng.NormFloat64()
	for round := range s.trials {
		for i, mode := range []string{"host", "veth-routed"} {
			base := map[string]float64{"host": 40_000, "veth-routed": 50_000}[mode]
			k := [3]float64{1, 1, 1}
			if sh != nil && sh.mode == mode {
				k = [3]float64{sh.rate, sh.p50, sh.p99}
			}
			noise := func() float64 { return drift * (1 + s.trialNoise*s.rng.NormFloat64()) }
			tr := store.Trial{RunID: r.ID, Round: round, Order: i, Mode: mode, Workload: "tcp_rr", Size: 64,
				ConfigKey:  experiment.Config{Mode: mode, Workload: "tcp_rr", Size: 64, Offload: "default", Placement: "auto"}.Key(),
				RatePerSec: 1e9 / base * k[0] / noise(), P50Ns: int64(base * k[1] * noise()), P99Ns: int64(3 * base * k[2] * noise()),
				Started: s.clock.Now().Add(time.Duration(round*2+i) * time.Second)}
			if _, err := s.st.AddTrial(ctx, &tr); err != nil {
				s.t.Fatal(err)
			}
		}
	}
	off, _ := json.Marshal(map[string]map[string]bool{"a/wire0": {"tx-tcp-segmentation": tso, "generic-receive-offload": true}})
	env := store.Environment{RunID: r.ID, Kernel: kernel, CPUModel: "Test CPU", Cores: 2, Offload: off,
		Sysctls: json.RawMessage(`{"net.core.busy_poll":"0"}`), Qdiscs: json.RawMessage(`{"a/wire0":"noqueue"}`)}
	if err := s.st.SetEnvironment(ctx, &env); err != nil {
		s.t.Fatal(err)
	}
	if err := s.st.FinishRun(ctx, r.ID, store.StatusComplete, s.clock.Now().Add(time.Minute)); err != nil {
		s.t.Fatal(err)
	}
	rep, err := s.w.Check(ctx, s.job, r.ID)
	if err != nil {
		s.t.Fatal(err)
	}
	return rep, r.ID
}

func (s *synth) alerts(state store.AlertState) []store.Alert {
	as, err := s.st.Alerts(context.Background(), store.AlertFilter{State: state, Job: s.job.Name})
	if err != nil {
		s.t.Fatal(err)
	}
	return as
}

type hookRecorder struct {
	mu     sync.Mutex
	events []AlertEvent
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev AlertEvent
	b, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &ev) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
}

func (h *hookRecorder) got() []AlertEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]AlertEvent(nil), h.events...)
}

// A real shift raises exactly one alert, naming the kernel change; the
// runs that keep showing it raise nothing more; a run back within the
// baseline resolves it. Hooks see exactly one "opened" and one
// "resolved".
func TestDetectShiftAlertResolve(t *testing.T) {
	hook := &hookRecorder{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "events.jsonl")
	s := newSynth(t, []AlertSpec{{Webhook: srv.URL}, {Command: []string{"sh", "-c", "cat >> " + out + "; echo >> " + out}}})
	for range 8 {
		if rep, _ := s.run("6.1", true, nil); len(rep.Regressions()) != 0 || rep.Noisy {
			t.Fatalf("noise regressed: %+v", rep.Regressions())
		}
	}
	// veth-routed p99 up 20% with a new kernel; rate and p50 unchanged.
	rep, shiftRun := s.run("6.6", true, &shift{mode: "veth-routed", rate: 1, p50: 1, p99: 1.2})
	regs := rep.Regressions()
	if len(regs) != 1 || regs[0].Metric != "p99" || regs[0].Mode != "veth-routed" || regs[0].Confirmed {
		t.Fatalf("regressions: %+v", regs)
	}
	if n := len(s.alerts("")); n != 0 {
		t.Fatalf("one regressed run opened %d alerts (confirm 2)", n)
	}
	rep, _ = s.run("6.6", true, &shift{mode: "veth-routed", rate: 1, p50: 1, p99: 1.2})
	if regs := rep.Regressions(); len(regs) != 1 || !regs[0].Confirmed || regs[0].FirstRun != shiftRun {
		t.Fatalf("second run: %+v", regs)
	}
	open := s.alerts(store.AlertOpen)
	if len(open) != 1 {
		t.Fatalf("%d open alerts", len(open))
	}
	var sus []string
	json.Unmarshal(open[0].Suspects, &sus)
	if len(sus) != 1 || sus[0] != "kernel 6.1→6.6" || open[0].RunID != shiftRun {
		t.Errorf("alert: suspects %v, run %d (want kernel 6.1→6.6, run %d); %s", sus, open[0].RunID, shiftRun, open[0].Summary)
	}
	t.Logf("alert summary: %s", open[0].Summary)
	// Still regressed: no duplicate, last run moves on; the change point
	// now places the shift at the first shifted run.
	var last int64
	for range 3 {
		rep, last = s.run("6.6", true, &shift{mode: "veth-routed", rate: 1, p50: 1, p99: 1.2})
		if len(rep.Regressions()) != 1 {
			t.Errorf("persisting shift: %d regressions", len(rep.Regressions()))
		}
	}
	if f := rep.Regressions()[0]; f.ChangePoint == nil || f.ShiftRun != shiftRun || len(f.Suspects) != 1 || f.Suspects[0] != "kernel 6.1→6.6" {
		t.Errorf("change point: %+v shift run %d suspects %v, want run %d", f.ChangePoint, f.ShiftRun, f.Suspects, shiftRun)
	}
	if open := s.alerts(store.AlertOpen); len(open) != 1 || open[0].LastRunID != last {
		t.Errorf("open alerts after persisting shift: %+v", open)
	}
	// Back to normal: resolved.
	_, back := s.run("6.1", true, nil)
	if open := s.alerts(store.AlertOpen); len(open) != 0 {
		t.Errorf("still open after recovery: %+v", open)
	}
	res := s.alerts(store.AlertResolved)
	if len(res) != 1 || res[0].LastRunID != back {
		t.Errorf("resolved: %+v", res)
	}
	evs := hook.got()
	if len(evs) != 2 || evs[0].Event != "opened" || evs[1].Event != "resolved" || evs[0].AlertID != evs[1].AlertID ||
		evs[0].Metric != "p99" || evs[0].Suspects[0] != "kernel 6.1→6.6" || evs[0].DeltaPct < 15 || evs[1].OpenedBy != shiftRun {
		t.Errorf("webhook events: %+v", evs)
	}
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"event":"opened"`) || !strings.Contains(lines[1], `"event":"resolved"`) {
		t.Errorf("command hook got:\n%s", b)
	}
}

// An offload change is named as the suspect.
func TestDetectOffloadSuspect(t *testing.T) {
	s := newSynth(t, nil)
	for range 6 {
		s.run("6.1", true, nil)
	}
	s.run("6.1", false, &shift{mode: "veth-routed", rate: 0.8, p50: 1, p99: 1})
	rep, _ := s.run("6.1", false, &shift{mode: "veth-routed", rate: 0.8, p50: 1, p99: 1})
	regs := rep.Regressions()
	if len(regs) != 1 || regs[0].Metric != "rate" {
		t.Fatalf("regressions: %+v", regs)
	}
	if sus := regs[0].Suspects; len(sus) != 1 || sus[0] != "tx-tcp-segmentation on→off on a/wire0" {
		t.Errorf("suspects %v", sus)
	}
}

// Pure noise over many runs raises nothing.
func TestDetectNoiseRaisesNothing(t *testing.T) {
	s := newSynth(t, nil)
	const runs = 60
	comparisons, single, noisy := 0, 0, 0
	for range runs {
		rep, _ := s.run("6.1", true, nil)
		comparisons += len(rep.Findings)
		single += len(rep.Regressions())
		if rep.Noisy {
			noisy++
		}
	}
	n := len(s.alerts(""))
	t.Logf("%d noise runs (2%% trial noise, 1%% run drift), %d comparisons: %d single-run regressions, %d runs marked noisy by the canary, %d alerts (confirm %d)",
		runs, comparisons, single, noisy, n, s.job.Confirm)
	if n != 0 {
		t.Errorf("%d alerts on noise", n)
	}
}

// When the canary (host) regresses, the run is marked noisy: nothing is
// raised or resolved, and it never serves as a baseline.
func TestCanarySuppression(t *testing.T) {
	hook := &hookRecorder{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	s := newSynth(t, []AlertSpec{{Webhook: srv.URL}})
	for range 6 {
		s.run("6.1", true, nil)
	}
	// The whole machine slowed down: host and veth-routed alike.
	s.job.Spec.Baseline = "host"
	s.job.Confirm = 1
	rep, id := s.run("6.1", true, &shift{mode: "host", rate: 0.7, p50: 1.3, p99: 1.3})
	if !rep.Noisy || !strings.Contains(rep.NoisyReason, "mode=host") {
		t.Fatalf("not noisy: %+v", rep)
	}
	if n := len(s.alerts("")); n != 0 || len(hook.got()) != 0 {
		t.Errorf("noisy run raised %d alerts, %d hooks", n, len(hook.got()))
	}
	notes, _ := s.st.Annotations(context.Background(), &id)
	if len(notes) != 1 || !strings.HasPrefix(notes[0].Text, NoisyNote) {
		t.Errorf("annotations: %+v", notes)
	}
	// The next normal run compares with the runs before the noisy one.
	rep, _ = s.run("6.1", true, nil)
	for _, f := range rep.Findings {
		for _, b := range f.BaselineRuns {
			if b == id {
				t.Errorf("noisy run %d used as baseline", id)
			}
		}
	}
	// Target jobs have no canary.
	if (&Job{Target: &TargetSpec{}}).Spec != nil {
		t.Fatal("unreachable")
	}
}

// A pinned baseline is used instead of the last runs.
func TestPinnedBaseline(t *testing.T) {
	s := newSynth(t, nil)
	_, pin := s.run("6.1", true, nil)
	if err := s.st.PinBaseline(context.Background(), s.job.Name, pin); err != nil {
		t.Fatal(err)
	}
	rep, _ := s.run("6.1", true, nil)
	if len(rep.Findings) == 0 || len(rep.Findings[0].BaselineRuns) != 1 || rep.Findings[0].BaselineRuns[0] != pin {
		t.Errorf("baseline runs %v, want [%d]", rep.Findings[0].BaselineRuns, pin)
	}
}

func TestDiff(t *testing.T) {
	a := Fingerprint{"kernel": "6.1", "sysctl net.core.busy_poll": "0", "qdisc a/wire0": "noqueue", "offload gro on a/wire0": "on", "cores": "2"}
	b := Fingerprint{"kernel": "6.6", "sysctl net.core.busy_poll": "50", "qdisc a/wire0": "fq_codel", "offload gro on a/wire0": "off", "cores": "2",
		"offload tso on b/eth0": "on"}
	got := strings.Join(Diff(a, b), "; ")
	want := "gro on→off on a/wire0; kernel 6.1→6.6; net.core.busy_poll 0→50; qdisc noqueue→fq_codel on a/wire0; tso (none)→on on b/eth0"
	if got != want {
		t.Errorf("diff:\n got %s\nwant %s", got, want)
	}
}
