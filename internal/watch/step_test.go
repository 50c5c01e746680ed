package watch

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/store"
)

// stepOutcome is what happened to one synthetic step: the run that
// opened an alert (0: none) and the alert.
type stepOutcome struct {
	low     []int64 // the runs after the step, in order
	openRun int64   // the run at which an alert first showed open
	alert   store.Alert
	reports []*Report
}

// runStep records before runs at the normal level, then after runs with
// veth-routed's rate scaled by rate and its interface's segmentation
// offload switched off, and reports when an alert opened.
func runStep(s *synth, before, after int, rate float64) stepOutcome {
	var o stepOutcome
	for range before {
		s.run("6.1", true, nil)
	}
	for range after {
		rep, id := s.run("6.1", false, &shift{mode: "veth-routed", rate: rate, p50: 1, p99: 1})
		o.low = append(o.low, id)
		o.reports = append(o.reports, rep)
		if o.openRun == 0 {
			if open := s.alerts(store.AlertOpen); len(open) > 0 {
				o.openRun, o.alert = id, open[0]
			}
		}
	}
	return o
}

// A sustained step opens an alert at the second low run with confirm 2,
// naming the offload that changed, and the low runs never become a
// baseline: the issue-18 failure (run 7 entered run 8's baseline, its
// low median widened the minimum effect past the shift, and nothing ever
// alerted) must not come back. Ten seeds each, for a −40% and a −8%
// step (2% trial noise, 1% run-to-run drift).
func TestDetectStepOpensAtSecondLowRun(t *testing.T) {
	for _, c := range []struct {
		name string
		rate float64
	}{{"minus40", 0.6}, {"minus8", 0.92}} {
		t.Run(c.name, func(t *testing.T) {
			for seed := range uint64(10) {
				s := newSynth(t, nil)
				s.rng = rand.New(rand.NewPCG(seed, 18))
				s.w.Seed = seed + 1
				s.w.Logf = nil
				o := runStep(s, 6, 4, c.rate)
				first := o.reports[0].Regressions()
				if len(first) != 1 || first[0].Metric != "rate" || first[0].Mode != "veth-routed" || first[0].Confirmed {
					t.Errorf("seed %d: first low run: %+v", seed, first)
					continue
				}
				if o.openRun != o.low[1] {
					t.Errorf("seed %d: alert opened at run %d, want the second low run %d (low runs %v)", seed, o.openRun, o.low[1], o.low)
					continue
				}
				var sus []string
				json.Unmarshal(o.alert.Suspects, &sus)
				if o.alert.RunID != o.low[0] || o.alert.Metric != "rate" || !strings.Contains(o.alert.ConfigKey, "mode=veth-routed") ||
					!slices.Equal(sus, []string{"tx-tcp-segmentation on→off on a/wire0"}) {
					t.Errorf("seed %d: alert opened by run %d (want %d), %s %s, suspects %v; %s",
						seed, o.alert.RunID, o.low[0], o.alert.ConfigKey, o.alert.Metric, sus, o.alert.Summary)
				}
				if n, open := len(s.alerts("")), len(s.alerts(store.AlertOpen)); n != 1 || open != 1 {
					t.Errorf("seed %d: %d alerts, %d open; want 1, open", seed, n, open)
				}
				// Every later finding of the shifted pair still compares
				// with runs before the step.
				for i, rep := range o.reports {
					for _, f := range rep.Findings {
						if f.Mode != "veth-routed" || f.Metric != "rate" {
							continue
						}
						if !f.Regression.Regressed && !f.Lingering {
							t.Errorf("seed %d: low run %d back within the baseline: %s", seed, o.low[i], describe(f.Regression))
						}
						for _, b := range f.BaselineRuns {
							if b >= o.low[0] {
								t.Errorf("seed %d: low run %d compared with baseline %v, which holds a low run", seed, o.low[i], f.BaselineRuns)
							}
						}
					}
				}
			}
		})
	}
}

// With a larger confirm than the change-point search needs (3 runs
// after the shift), the change point confirms: confirm 5 alerts at the
// third low run, not the fifth, with the same suspect.
func TestDetectChangePointConfirms(t *testing.T) {
	s := newSynth(t, nil)
	s.job.Confirm = 5
	o := runStep(s, 8, 4, 0.6)
	if o.openRun != o.low[2] {
		t.Fatalf("alert opened at run %d, want the third low run %d (low runs %v)", o.openRun, o.low[2], o.low)
	}
	f := o.reports[2].Regressions()[0]
	if !f.ByChangePoint || f.ShiftRun != o.low[0] || !strings.Contains(o.alert.Summary, "confirmed by the change point") {
		t.Errorf("finding %+v; summary %s", f, o.alert.Summary)
	}
	var sus []string
	json.Unmarshal(o.alert.Suspects, &sus)
	if !slices.Equal(sus, []string{"tx-tcp-segmentation on→off on a/wire0"}) || o.alert.RunID != o.low[0] {
		t.Errorf("alert opened by %d, suspects %v", o.alert.RunID, sus)
	}
}

// An open alert resolves only when the median comes back: a low run
// whose single trial cannot be significant (p ≥ 0.05 however low it
// is) keeps it open; a normal run resolves it.
func TestDetectAlertNeedsMedianBack(t *testing.T) {
	s := newSynth(t, nil)
	o := runStep(s, 6, 2, 0.6)
	if o.openRun != o.low[1] {
		t.Fatalf("alert opened at run %d, want %d", o.openRun, o.low[1])
	}
	s.trials = 1
	rep, _ := s.run("6.1", false, &shift{mode: "veth-routed", rate: 0.6, p50: 1, p99: 1})
	var f *Finding
	for i := range rep.Findings {
		if rep.Findings[i].Mode == "veth-routed" && rep.Findings[i].Metric == "rate" {
			f = &rep.Findings[i]
		}
	}
	if f == nil || f.Regression.Regressed || !f.Lingering {
		t.Fatalf("one-trial low run: %+v", f)
	}
	if open := s.alerts(store.AlertOpen); len(open) != 1 {
		t.Fatalf("one-trial low run (%s) resolved the alert", describe(f.Regression))
	}
	s.trials = 7
	_, back := s.run("6.1", true, nil)
	if res := s.alerts(store.AlertResolved); len(res) != 1 || res[0].LastRunID != back {
		t.Errorf("normal run did not resolve: %+v", res)
	}
}

// One outlying run inside the baseline does not widen the minimum
// effect: the robust noise term stays near the drift.
func TestRunNoiseRobust(t *testing.T) {
	flat := []float64{100, 101, 99, 100.5, 99.5}
	out := []float64{100, 101, 99, 100.5, 60}
	segs := make([]int, 5)
	a, b := runNoise(flat, segs), runNoise(out, segs)
	if a <= 0 || a > 0.02 || b > 2*a {
		t.Errorf("noise %.4f without the outlier, %.4f with it", a, b)
	}
	// A shift between segments does not count at all.
	shifted := []float64{100, 101, 99, 80, 81, 79}
	if n := runNoise(shifted, []int{0, 0, 0, 1, 1, 1}); n > 0.02 {
		t.Errorf("noise %.4f across a change point", n)
	}
	if n := runNoise([]float64{100}, []int{0}); n != 0 {
		t.Errorf("one run: %v", n)
	}
}

// TestDetectRates measures false alarms and detection over step sizes ×
// noise levels (the table in docs/watch.md). It takes a few minutes:
// LATLAB_WATCH_RATES=1 go test -v -run Rates ./internal/watch
func TestDetectRates(t *testing.T) {
	if os.Getenv("LATLAB_WATCH_RATES") != "1" {
		t.Skip("set LATLAB_WATCH_RATES=1 to measure (a few minutes)")
	}
	const series = 20
	type level struct{ trial, drift float64 }
	levels := []level{{0.01, 0.005}, {0.02, 0.01}, {0.05, 0.025}}
	steps := []float64{0.03, 0.05, 0.08, 0.15, 0.40}
	var out strings.Builder
	fmt.Fprintf(&out, "| trial noise / run drift | false alarms (alerts per run, %d×40 runs) |", series)
	for _, st := range steps {
		fmt.Fprintf(&out, " −%.0f%% |", st*100)
	}
	out.WriteString("\n")
	for _, lv := range levels {
		alerts, runs := 0, 0
		for k := range uint64(series) {
			s := newSynth(t, nil)
			s.trialNoise, s.runDrift, s.w.Logf = lv.trial, lv.drift, nil
			s.rng = rand.New(rand.NewPCG(k, 100))
			s.w.Seed = k + 1
			for range 40 {
				s.run("6.1", true, nil)
			}
			alerts += len(s.alerts(""))
			runs += 40
		}
		fmt.Fprintf(&out, "| %.0f%% / %.1f%% | %d in %d |", lv.trial*100, lv.drift*100, alerts, runs)
		for _, st := range steps {
			at2, by4 := 0, 0
			for k := range uint64(series) {
				s := newSynth(t, nil)
				s.trialNoise, s.runDrift, s.w.Logf = lv.trial, lv.drift, nil
				s.rng = rand.New(rand.NewPCG(k, 200))
				s.w.Seed = k + 1
				o := runStep(s, 6, 4, 1-st)
				if o.openRun != 0 && o.openRun <= o.low[1] {
					at2++
				}
				if o.openRun != 0 {
					by4++
				}
			}
			fmt.Fprintf(&out, " %d%% / %d%% |", at2*100/series, by4*100/series)
		}
		out.WriteString("\n")
	}
	t.Logf("detection: alert by the 2nd / by the 4th low run, %d series each, confirm 2\n%s", series, out.String())
}
