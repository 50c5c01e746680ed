package watch

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/store"
)

// Unit tests of Analyze's phases on synthetic runs: tcp_rr trials with a
// rate only (no latency percentiles), so each configuration has one pair,
// "KEY rate".

var (
	keyHost  = experiment.Config{Mode: "host", Workload: "tcp_rr", Size: 64, Offload: "default", Placement: "auto"}.Key()
	keyVeth  = experiment.Config{Mode: "veth-routed", Workload: "tcp_rr", Size: 64, Offload: "default", Placement: "auto"}.Key()
	keyVeth2 = experiment.Config{Mode: "veth-routed", Workload: "tcp_rr", Size: 1024, Offload: "default", Placement: "auto"}.Key()
)

// modeOf is the mode of a configuration key.
func modeOf(key string) string {
	m, _, _ := strings.Cut(strings.TrimPrefix(key, "mode="), "/")
	return m
}

// spread is n rates around c, ±0.4% apart: their median is c.
func spread(c float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = c * (1 + 0.004*(float64(i)-float64(n-1)/2))
	}
	return out
}

// rateRun is a complete run with tcp_rr trials of the given rates per
// configuration key.
func rateRun(id int64, rates map[string][]float64) *runData {
	d := &runData{run: store.Run{ID: id, Status: store.StatusComplete}, trials: map[string][]*store.Trial{}}
	for key, rs := range rates {
		for _, r := range rs {
			d.trials[key] = append(d.trials[key], &store.Trial{RunID: id, ConfigKey: key, Mode: modeOf(key), Workload: "tcp_rr", RatePerSec: r})
		}
	}
	return d
}

func runIDs(rs []*runData) []int64 {
	var ids []int64
	for _, r := range rs {
		ids = append(ids, r.run.ID)
	}
	return ids
}

var rate = metricByName("rate")

func TestNoisyRunsAndIndexRuns(t *testing.T) {
	id := func(v int64) *int64 { return &v }
	notes := []store.Annotation{{RunID: id(2), Text: NoisyNote + "canary"}, {RunID: id(3), Text: "operator: fine"}, {Text: NoisyNote + "no run"}}
	runs := []store.Run{{ID: 1}, {ID: 2}, {ID: 3}}
	trials := []store.Trial{
		{RunID: 1, ConfigKey: keyHost}, {RunID: 1, ConfigKey: keyHost}, {RunID: 1, ConfigKey: keyVeth},
		{RunID: 2, ConfigKey: keyHost, Error: "timeout"},
		{RunID: 9, ConfigKey: keyHost}, // not among the runs
		{RunID: 3, ConfigKey: keyVeth},
	}
	order, byID := indexRuns(runs, trials, noisyRuns(notes))
	if got := runIDs(order); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("order %v", got)
	}
	for _, c := range []struct {
		run   int64
		noisy bool
		n     map[string]int
	}{
		{1, false, map[string]int{keyHost: 2, keyVeth: 1}},
		{2, true, map[string]int{}},
		{3, false, map[string]int{keyVeth: 1}},
	} {
		d := byID[c.run]
		if d.noisy != c.noisy {
			t.Errorf("run %d noisy %v, want %v", c.run, d.noisy, c.noisy)
		}
		if len(d.trials) != len(c.n) {
			t.Errorf("run %d: %d configurations, want %d", c.run, len(d.trials), len(c.n))
		}
		for k, n := range c.n {
			if len(d.trials[k]) != n {
				t.Errorf("run %d %s: %d trials, want %d", c.run, k, len(d.trials[k]), n)
			}
		}
	}
}

func TestJudgedRuns(t *testing.T) {
	mk := func(statuses ...store.Status) []*runData {
		var out []*runData
		for i, s := range statuses {
			out = append(out, &runData{run: store.Run{ID: int64(i + 1), Status: s}})
		}
		return out
	}
	const ok, inc, running = store.StatusComplete, store.StatusIncomplete, store.StatusRunning
	for _, c := range []struct {
		name  string
		order []*runData
		cur   int // index into order
		want  []int64
	}{
		{"all complete", mk(ok, ok, ok), 2, []int64{1, 2, 3}},
		{"incomplete and running runs before are left out", mk(ok, inc, running, ok, ok), 4, []int64{1, 4, 5}},
		{"the run analysed is kept whatever its status", mk(ok, ok, inc), 2, []int64{1, 2, 3}},
		{"runs after the one analysed are left out", mk(ok, ok, ok, ok), 1, []int64{1, 2}},
		{"first run", mk(ok, ok), 0, []int64{1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := runIDs(judgedRuns(c.order, c.order[c.cur])); !slices.Equal(got, c.want) {
				t.Errorf("judged %v, want %v", got, c.want)
			}
		})
	}
}

func TestPairHistories(t *testing.T) {
	level := func(n int, c float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = c * (1 + 0.002*float64(i%3-1))
		}
		return out
	}
	for _, c := range []struct {
		name   string
		medVet []float64 // veth run medians, the last is the run analysed
		host   bool      // the run analysed has host trials too
		cps    []int     // change point indexes of the veth pair
	}{
		{"flat", level(12, 1000), false, nil},
		{"step", append(level(10, 1000), level(6, 600)...), true, []int{10}},
		{"first run", []float64{1000}, false, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hist []*runData
			for i, m := range c.medVet {
				rates := map[string][]float64{keyVeth: spread(m, 5)}
				if c.host || i < len(c.medVet)-1 {
					rates[keyHost] = spread(2000, 5)
				}
				hist = append(hist, rateRun(int64(i+1), rates))
			}
			cur := hist[len(hist)-1]
			ph := pairHistories(hist, cur, stats.CPOptions{}, rand.New(rand.NewPCG(1, 2)))
			wantPairs := []string{pairKey(keyVeth, "rate")}
			if c.host {
				wantPairs = append(wantPairs, pairKey(keyHost, "rate"))
			}
			if len(ph) != len(wantPairs) {
				t.Fatalf("%d pairs, want %v (only the run analysed's)", len(ph), wantPairs)
			}
			h := ph[pairKey(keyVeth, "rate")]
			if h == nil || len(h.series) != len(c.medVet) || !slices.Equal(h.ids, runIDs(hist)) {
				t.Fatalf("history %+v", h)
			}
			for i, m := range c.medVet {
				if h.series[i] != stats.Median(spread(m, 5)) {
					t.Errorf("run %d median %g, want %g", i+1, h.series[i], m)
				}
			}
			var got []int
			for _, cp := range h.cps {
				got = append(got, cp.Index)
			}
			if !slices.Equal(got, c.cps) {
				t.Fatalf("change points at %v, want %v", got, c.cps)
			}
			for i, id := range h.ids {
				want := 0
				for _, cp := range c.cps {
					if i >= cp {
						want++
					}
				}
				if h.seg[id] != want {
					t.Errorf("run %d in segment %d, want %d", id, h.seg[id], want)
				}
			}
		})
	}
}

func TestReplayBaseline(t *testing.T) {
	k := pairKey(keyVeth, "rate")
	var pool []*runData
	for id := range int64(30) {
		pool = append(pool, rateRun(id+1, nil))
	}
	pin, frozen, frozenNoise := rateRun(100, nil), pool[3:8], pool[0:8]
	ids := func(from, to int64) []int64 {
		var out []int64
		for id := from; id <= to; id++ {
			out = append(out, id)
		}
		return out
	}
	for _, c := range []struct {
		name        string
		pin         *runData
		ps          pairState
		open        *store.Alert
		latest      bool
		base, noise []int64 // nil noise: the baseline's
	}{
		{"pool: last runs, noise over NoiseRuns", nil, pairState{pool: pool}, nil, true, ids(26, 30), ids(11, 30)},
		{"short pool", nil, pairState{pool: pool[:3]}, nil, true, ids(1, 3), ids(1, 3)},
		{"pinned", pin, pairState{pool: pool, frozen: frozen}, nil, true, []int64{100}, nil},
		{"frozen by a streak", nil, pairState{pool: pool, frozen: frozen, frozenNoise: frozenNoise}, nil, true, ids(4, 8), ids(1, 8)},
		{"open alert: the runs before it", nil, pairState{pool: pool}, &store.Alert{RunID: 21}, true, ids(16, 20), ids(1, 20)},
		{"open alert, earlier run of the replay", nil, pairState{pool: pool}, &store.Alert{RunID: 21}, false, ids(26, 30), ids(11, 30)},
	} {
		t.Run(c.name, func(t *testing.T) {
			open := map[string]store.Alert{}
			if c.open != nil {
				open[k] = *c.open
			}
			rp := newReplay(&Job{Baseline: BaselineSpec{Last: 5}}, c.pin, open)
			ps := c.ps
			rp.state[k] = &ps
			base, noise := rp.baseline(k, c.latest)
			if got := runIDs(base); !slices.Equal(got, c.base) {
				t.Errorf("baseline %v, want %v", got, c.base)
			}
			if got := runIDs(noise); !slices.Equal(got, c.noise) {
				t.Errorf("noise runs %v, want %v", got, c.noise)
			}
		})
	}
	if rp := newReplay(&Job{}, nil, nil); rp.last != DefaultBaselineRuns || rp.confirm != 1 {
		t.Errorf("defaults: last %d confirm %d", rp.last, rp.confirm)
	}
}

func TestReplayAdvance(t *testing.T) {
	k := pairKey(keyVeth, "rate")
	old, used := []*runData{rateRun(1, nil)}, []*runData{rateRun(2, nil)}
	reg := stats.RegressionResult{Regressed: true}
	sig := stats.RegressionResult{}
	sig.Significant = true
	for _, c := range []struct {
		name       string
		streak     []int64 // before run 10
		open       int64   // run that opened an open alert (0: none)
		f          Finding
		wantStreak []int64
		wantFrozen []*runData
	}{
		{"regressed: a streak starts, frozen at its baseline", nil, 0, Finding{Regression: reg}, []int64{10}, used},
		{"regressed again: the streak keeps its baseline", []int64{8, 9}, 0, Finding{Regression: reg}, []int64{8, 9, 10}, old},
		{"suppressed: as it was", []int64{9}, 0, Finding{Regression: reg, Suppressed: true}, []int64{9}, old},
		{"back within the baseline: the streak ends", []int64{9}, 0, Finding{}, nil, nil},
		{"lingering, significant: kept, not counted", []int64{9}, 0, Finding{Lingering: true, Regression: sig}, []int64{9}, old},
		{"lingering, pending, not significant: ends", []int64{9}, 0, Finding{Lingering: true}, nil, nil},
		{"lingering, alerted by the streak: kept", []int64{8, 9}, 0, Finding{Lingering: true}, []int64{8, 9}, old},
		{"lingering, open alert opened before: kept", []int64{9}, 7, Finding{Lingering: true}, []int64{9}, old},
		{"lingering, open alert opened later: ends", []int64{9}, 11, Finding{Lingering: true}, nil, nil},
		{"lingering without a streak: nothing", nil, 0, Finding{Lingering: true, Regression: sig}, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			open := map[string]store.Alert{}
			if c.open != 0 {
				open[k] = store.Alert{RunID: c.open}
			}
			rp := newReplay(&Job{Confirm: 2}, nil, open)
			ps := rp.pair(k)
			ps.streak = slices.Clone(c.streak)
			if len(c.streak) > 0 {
				ps.frozen = old
			}
			f := c.f
			f.ConfigKey, f.Metric = keyVeth, "rate"
			rp.advance(&Report{RunID: 10, Findings: []Finding{f}}, [][]*runData{used}, [][]*runData{used})
			if !slices.Equal(ps.streak, c.wantStreak) {
				t.Errorf("streak %v, want %v", ps.streak, c.wantStreak)
			}
			if got, want := runIDs(ps.frozen), runIDs(c.wantFrozen); !slices.Equal(got, want) {
				t.Errorf("frozen baseline %v, want %v", got, want)
			}
		})
	}
}

func TestReplayAddToPools(t *testing.T) {
	d := rateRun(5, map[string][]float64{keyHost: spread(2000, 3), keyVeth: spread(1000, 3), keyVeth2: spread(900, 3)})
	// p50 of host: a pair with no values in the run.
	kHost, kVeth, kVeth2 := pairKey(keyHost, "rate"), pairKey(keyVeth, "rate"), pairKey(keyVeth2, "rate")
	for _, c := range []struct {
		name     string
		findings []Finding
		streaks  map[string][]int64
		pooled   []string
	}{
		{"no findings yet: every pair with values", nil, nil, []string{kHost, kVeth, kVeth2}},
		{"a regressed pair is left out", []Finding{{ConfigKey: keyVeth, Metric: "rate", Regression: stats.RegressionResult{Regressed: true}}}, nil, []string{kHost, kVeth2}},
		{"a pair with a streak is left out", []Finding{{ConfigKey: keyVeth2, Metric: "rate", Lingering: true}}, map[string][]int64{kVeth2: {4}}, []string{kHost, kVeth}},
		{"a streak without a finding this run does not matter", nil, map[string][]int64{kVeth2: {4}}, []string{kHost, kVeth, kVeth2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rp := newReplay(&Job{}, nil, nil)
			for k, s := range c.streaks {
				rp.pair(k).streak = s
			}
			rp.addToPools(d, &Report{RunID: 5, Findings: c.findings})
			var got []string
			for k, ps := range rp.state {
				if slices.Equal(runIDs(ps.pool), []int64{5}) {
					got = append(got, k)
				} else if len(ps.pool) != 0 {
					t.Errorf("%s pool %v", k, runIDs(ps.pool))
				}
			}
			slices.Sort(got)
			if want := slices.Sorted(slices.Values(c.pooled)); !slices.Equal(got, want) {
				t.Errorf("pooled %v, want %v", got, c.pooled)
			}
			if _, ok := rp.state[pairKey(keyHost, "p50")]; ok {
				t.Error("a pair without values got a pool")
			}
		})
	}
}

func TestCompareRun(t *testing.T) {
	steady := func(first int64, c float64) []*runData {
		var out []*runData
		for i := range int64(5) {
			out = append(out, rateRun(first+i, map[string][]float64{keyVeth: spread(c, 7)}))
		}
		return out
	}
	wobbly := func(first int64, c float64) []*runData {
		var out []*runData
		for i, k := range []float64{1, 1.06, 0.94, 1.03, 0.97} {
			out = append(out, rateRun(first+int64(i), map[string][]float64{keyVeth: spread(c*k, 7)}))
		}
		return out
	}
	medians := func(rs []*runData) []float64 {
		var out []float64
		for _, r := range rs {
			out = append(out, stats.Median(values(r.trials[keyVeth], rate)))
		}
		return out
	}
	for _, c := range []struct {
		name             string
		base, noise      []*runData
		new              float64
		findings         int
		regressed, linge bool
		minEffect        float64
	}{
		{"no baseline: no finding", nil, nil, 1000, 0, false, false, 0},
		{"same level", steady(1, 1000), nil, 1000, 1, false, false, stats.MinEffectRate},
		{"20% lower", steady(1, 1000), nil, 800, 1, true, false, stats.MinEffectRate},
		{"2% lower: lingering", steady(1, 1000), nil, 980, 1, false, true, stats.MinEffectRate},
		{"noisy baseline widens the minimum effect", wobbly(1, 1000), nil, 930, 1, false, true,
			2 * runNoise(medians(wobbly(1, 1000)), make([]int, 5))},
		{"noise from the noise runs", steady(1, 1000), wobbly(10, 1000), 930, 1, false, true,
			2 * runNoise(medians(wobbly(10, 1000)), make([]int, 5))},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := rateRun(20, map[string][]float64{keyVeth: spread(c.new, 7)})
			baseFor := func(key string, m Metric) (base, noise []*runData) { return c.base, c.noise }
			rep, used, usedNoise := compareRun(&Job{Name: "j"}, d, baseFor, nil)
			if rep.Job != "j" || rep.RunID != 20 || len(rep.Findings) != c.findings || len(used) != c.findings || len(usedNoise) != c.findings {
				t.Fatalf("report %+v, %d baselines", rep, len(used))
			}
			if c.findings == 0 {
				return
			}
			f := rep.Findings[0]
			if f.ConfigKey != keyVeth || f.Mode != "veth-routed" || f.Workload != "tcp_rr" || f.Metric != "rate" ||
				!slices.Equal(f.BaselineRuns, runIDs(c.base)) {
				t.Errorf("finding %+v", f)
			}
			if f.Regression.Regressed != c.regressed || f.Lingering != c.linge {
				t.Errorf("regressed %v lingering %v, want %v %v: %s", f.Regression.Regressed, f.Lingering, c.regressed, c.linge, describe(f.Regression))
			}
			if f.Regression.MinEffect != c.minEffect {
				t.Errorf("min effect %g, want %g", f.Regression.MinEffect, c.minEffect)
			}
			wantNoise := c.noise
			if wantNoise == nil {
				wantNoise = c.base
			}
			if !slices.Equal(runIDs(usedNoise[0]), runIDs(wantNoise)) || !slices.Equal(runIDs(used[0]), runIDs(c.base)) {
				t.Errorf("used %v noise %v", runIDs(used[0]), runIDs(usedNoise[0]))
			}
		})
	}
}

func TestApplyCanary(t *testing.T) {
	keyHost2 := experiment.Config{Mode: "host", Workload: "tcp_rr", Size: 1024, Offload: "default", Placement: "auto"}.Key()
	keyMac := experiment.Config{Mode: "macvlan", Workload: "tcp_rr", Size: 64, Offload: "default", Placement: "auto"}.Key()
	find := func(key, metric string, regressed bool) Finding {
		return Finding{ConfigKey: key, Mode: modeOf(key), Metric: metric, Regression: stats.RegressionResult{Regressed: regressed}}
	}
	lab := &Job{Spec: &experiment.LabSpec{}}
	for _, c := range []struct {
		name       string
		job        *Job
		findings   []Finding
		suppressed []bool
		reason     string // substrings, "" for not noisy
	}{
		{"target job: no canary", &Job{Target: &TargetSpec{}}, []Finding{find(keyHost, "rate", true), find(keyVeth, "rate", true)}, []bool{false, false}, ""},
		{"canary fine", lab, []Finding{find(keyHost, "rate", false), find(keyVeth, "rate", true)}, []bool{false, false}, ""},
		{"canary regressed: its scope suppressed", lab,
			[]Finding{find(keyHost, "rate", true), find(keyVeth, "rate", true), find(keyVeth, "p99", true), find(keyVeth2, "rate", true)},
			[]bool{true, true, false, false}, "canary " + keyHost + " rate"},
		{"two scopes", lab, []Finding{find(keyHost, "rate", true), find(keyHost2, "rate", true), find(keyVeth2, "rate", false)},
			[]bool{true, true, true}, "canary " + keyHost + " rate"},
		{"another baseline mode", &Job{Spec: &experiment.LabSpec{Baseline: "macvlan"}},
			[]Finding{find(keyHost, "rate", true), find(keyMac, "rate", true), find(keyVeth, "rate", true)}, []bool{true, true, true}, "canary " + keyMac},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := &Report{Findings: c.findings}
			applyCanary(c.job, rep)
			for i, f := range rep.Findings {
				if f.Suppressed != c.suppressed[i] {
					t.Errorf("%s %s suppressed %v, want %v", f.ConfigKey, f.Metric, f.Suppressed, c.suppressed[i])
				}
			}
			if rep.Noisy != (c.reason != "") || !strings.Contains(rep.NoisyReason, c.reason) {
				t.Errorf("noisy %v %q, want %q", rep.Noisy, rep.NoisyReason, c.reason)
			}
			if c.name == "two scopes" && strings.Count(rep.NoisyReason, "; ") != 1 {
				t.Errorf("reason %q: want both scopes", rep.NoisyReason)
			}
		})
	}
}

func TestConfirmFindings(t *testing.T) {
	k := pairKey(keyVeth, "rate")
	// Runs 1–12; the change point at index 8 is run 9, after the
	// baseline (runs 4–8) or inside it (runs 5–9).
	ph := &pairHistory{ids: []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}
	big := stats.ChangePoint{Index: 8, BeforeMedian: 1000, AfterMedian: 800}
	small := stats.ChangePoint{Index: 8, BeforeMedian: 1000, AfterMedian: 990}
	for _, c := range []struct {
		name      string
		f         Finding
		streak    []int64
		cps       []stats.ChangePoint
		open      int64
		confirmed bool
		byCP      bool
		first     int64
		shift     int64
	}{
		{"not regressed: untouched", Finding{}, []int64{12}, nil, 0, false, false, 0, 0},
		{"suppressed: untouched", Finding{Suppressed: true, Regression: stats.RegressionResult{Regressed: true}}, []int64{12}, nil, 0, false, false, 0, 0},
		{"one run of two: pending", Finding{}, []int64{12}, nil, 0, false, false, 12, 0},
		{"two runs: confirmed", Finding{}, []int64{11, 12}, nil, 0, true, false, 11, 0},
		{"open alert continues", Finding{}, []int64{12}, nil, 5, true, false, 5, 0},
		{"change point after the baseline confirms", Finding{}, []int64{12}, []stats.ChangePoint{big}, 0, true, true, 9, 9},
		{"small change point places but does not confirm", Finding{}, []int64{12}, []stats.ChangePoint{small}, 0, false, false, 12, 9},
		{"change point inside the baseline is ignored", Finding{BaselineRuns: []int64{5, 6, 7, 8, 9}}, []int64{12}, []stats.ChangePoint{big}, 0, false, false, 12, 0},
		{"only the last change point counts", Finding{}, []int64{12}, []stats.ChangePoint{big, {Index: 10, BeforeMedian: 800, AfterMedian: 790}}, 0, false, false, 12, 11},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.f
			f.ConfigKey, f.Metric = keyVeth, "rate"
			if !f.Suppressed && !strings.HasSuffix(c.name, "untouched") {
				f.Regression = stats.RegressionResult{Regressed: true, MinEffect: 0.03}
			}
			if f.BaselineRuns == nil {
				f.BaselineRuns = []int64{4, 5, 6, 7, 8}
			}
			h := *ph
			h.cps = c.cps
			open := map[string]store.Alert{}
			if c.open != 0 {
				open[k] = store.Alert{RunID: c.open}
			}
			rep := &Report{Findings: []Finding{f}}
			confirmFindings(rep, map[string]*pairState{k: {streak: c.streak}}, map[string]*pairHistory{k: &h}, open, 2)
			got := rep.Findings[0]
			if got.Confirmed != c.confirmed || got.ByChangePoint != c.byCP || got.FirstRun != c.first || got.ShiftRun != c.shift {
				t.Errorf("confirmed %v by change point %v first run %d shift run %d, want %v %v %d %d",
					got.Confirmed, got.ByChangePoint, got.FirstRun, got.ShiftRun, c.confirmed, c.byCP, c.first, c.shift)
			}
			if c.first != 0 && got.Streak != len(c.streak) {
				t.Errorf("streak %d, want %d", got.Streak, len(c.streak))
			}
			if (got.ChangePoint != nil) != (c.shift != 0) {
				t.Errorf("change point %+v", got.ChangePoint)
			}
		})
	}
}

func TestNameSuspects(t *testing.T) {
	// Runs 1–6 with veth trials, except run 4; the kernel changes every
	// run but the last. The veth pair's history lacks run 2 (its metric
	// had no values there).
	var hist []*runData
	for id := range int64(6) {
		rates := map[string][]float64{keyHost: spread(2000, 3)}
		if id+1 != 4 {
			rates[keyVeth] = spread(1000, 3)
		}
		hist = append(hist, rateRun(id+1, rates))
	}
	kernel := map[int64]string{1: "6.0", 2: "6.1", 3: "6.6", 4: "6.7", 5: "6.8", 6: "6.8"}
	fp := func(id int64) Fingerprint { return Fingerprint{"kernel": kernel[id]} }
	ph := map[string]*pairHistory{pairKey(keyVeth, "rate"): {ids: []int64{1, 3, 5, 6}}}
	reg := stats.RegressionResult{Regressed: true}
	for _, c := range []struct {
		name     string
		f        Finding
		shift    int64
		suspects []string
	}{
		{"not regressed: untouched", Finding{FirstRun: 3}, 0, nil},
		{"shift at the streak's first run", Finding{Regression: reg, FirstRun: 3}, 3, []string{"kernel 6.1→6.6"}},
		{"the run before with the configuration's trials", Finding{Regression: reg, FirstRun: 5}, 5, []string{"kernel 6.6→6.8"}},
		{"change point's run before", Finding{Regression: reg, FirstRun: 6, ShiftRun: 3, ChangePoint: &stats.ChangePoint{Index: 1}}, 3, []string{"kernel 6.0→6.6"}},
		{"nothing changed", Finding{Regression: reg, FirstRun: 6}, 6, nil},
		{"no run before", Finding{Regression: reg, FirstRun: 1}, 1, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.f
			f.ConfigKey, f.Metric = keyVeth, "rate"
			rep := &Report{Findings: []Finding{f}}
			nameSuspects(rep, hist, ph, fp)
			got := rep.Findings[0]
			if got.ShiftRun != c.shift || !slices.Equal(got.Suspects, c.suspects) {
				t.Errorf("shift run %d suspects %v, want %d %v", got.ShiftRun, got.Suspects, c.shift, c.suspects)
			}
			if (got.Summary != "") != got.Regression.Regressed || (len(c.suspects) > 0 && !strings.Contains(got.Summary, "suspects: "+c.suspects[0])) {
				t.Errorf("summary %q", got.Summary)
			}
		})
	}
}

// readHistory reads the job's runs oldest first with their successful
// trials, marks noisy runs, finds the pinned baseline and the open
// alerts, and refuses a run outside the history.
func TestReadHistory(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	job := &Job{Name: "j"}
	var ids []int64
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 4 {
		r := store.Run{Kind: "watch", JobName: "j", Started: t0.Add(time.Duration(i) * time.Hour)}
		id, err := st.CreateRun(ctx, &r)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		for _, e := range []string{"", "", "refused"} {
			if _, err := st.AddTrial(ctx, &store.Trial{RunID: id, ConfigKey: keyVeth, Mode: "veth-routed", Workload: "tcp_rr", RatePerSec: 1000, Error: e}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.FinishRun(ctx, id, store.StatusComplete, r.Started.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	other := store.Run{Kind: "watch", JobName: "other"}
	otherID, _ := st.CreateRun(ctx, &other)

	if _, err := readHistory(ctx, st, job, otherID); err == nil || err.Error() != "run 5 is not among the latest 100 runs of job j" {
		t.Errorf("run of another job: %v", err)
	}
	if err := st.Annotate(ctx, &ids[1], NoisyNote+"canary"); err != nil {
		t.Fatal(err)
	}
	if err := st.PinBaseline(ctx, "j", ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenAlert(ctx, &store.Alert{Job: "j", ConfigKey: keyVeth, Metric: "p99", RunID: ids[2]}); err != nil {
		t.Fatal(err)
	}
	h, err := readHistory(ctx, st, job, ids[2])
	if err != nil {
		t.Fatal(err)
	}
	if got := runIDs(h.order); !slices.Equal(got, ids) {
		t.Errorf("order %v, want %v", got, ids)
	}
	if h.cur != h.order[2] || h.pin != h.order[0] {
		t.Errorf("cur %d pin %v", h.cur.run.ID, h.pin)
	}
	for i, d := range h.order {
		if d.noisy != (i == 1) || len(d.trials[keyVeth]) != 2 {
			t.Errorf("run %d: noisy %v, %d trials", d.run.ID, d.noisy, len(d.trials[keyVeth]))
		}
	}
	if a, ok := h.openBy[pairKey(keyVeth, "p99")]; !ok || a.RunID != ids[2] || len(h.openBy) != 1 {
		t.Errorf("open alerts %+v", h.openBy)
	}
}
