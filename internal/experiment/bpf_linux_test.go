package experiment_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/wire"
)

// Issue 24's sidecar order: a sidecar hop costs host a large share of its
// tcp_rr rate, and sockmap on the loopback hop wins a significant part of
// it back (sidecar-sockmap significantly faster than sidecar, paired by
// round, with the lab's signed-rank interval). Passed 11 of 11 runs on the
// 2-vCPU VM (1.09–1.18, lower bounds 1.004–1.125). veth-bpf's order
// (half of veth-routed's gap back) is not asserted: here it wins back
// about a third (docs/design.md).
func TestSidecarSockmapFasterThanSidecar(t *testing.T) {
	testutil.RequireRoot(t)
	spec := experiment.LabSpec{
		Modes:      []string{"host", "sidecar", "sidecar-sockmap"},
		Workloads:  []wire.Workload{wire.TCPRR},
		Duration:   100 * time.Millisecond,
		Warmup:     30 * time.Millisecond,
		TargetCI:   0.02,
		Budget:     45 * time.Second,
		JournalDir: t.TempDir(),
		Seed:       rand.Uint64(),
	}
	out, err := experiment.RunLab(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range out.Modes {
		if m.Name == "sidecar-sockmap" && m.Status == "skipped" {
			testutil.SkipIfUnsupported(t, "sidecar-sockmap skipped: %s", m.Reason)
		}
		if m.Status != "ok" {
			t.Fatalf("%s: %s %s", m.Name, m.Status, m.Reason)
		}
	}
	s := experiment.Summarize(out)
	for _, m := range spec.Modes {
		r := result(s, m, "tcp_rr")
		t.Logf("%-16s rate %s cv %.3f ratio %s %s", m, r.RatePerSec, r.CV, r.RatioVsHost, r.Verdict)
	}
	rates := map[string]map[int]float64{}
	for _, tr := range out.Trials {
		if tr.Result == nil {
			continue
		}
		if rates[tr.Mode] == nil {
			rates[tr.Mode] = map[int]float64{}
		}
		rates[tr.Mode][tr.Round] = tr.Result.RatePerSec
	}
	var d []float64
	for round, sm := range rates["sidecar-sockmap"] {
		if sc, ok := rates["sidecar"][round]; ok {
			d = append(d, math.Log(sm/sc))
		}
	}
	sh := stats.SignedRankShift(d, 0.95)
	t.Logf("%d rounds: sidecar-sockmap/sidecar %.3f [%.3f, %.3f]", sh.N, math.Exp(sh.Estimate), math.Exp(sh.Lo), math.Exp(sh.Hi))
	// Never a wrong answer: sockmap is never significantly slower. A run
	// precise enough to resolve the ~9-18% it wins (the interval within
	// ±4 points) must show it significantly faster; a noisier one (trial
	// CVs near 30% on a busy 2-vCPU VM gave ±11) proves nothing either way
	// and says so (1 run in 10 here).
	if !sh.TooFew && sh.Hi < 0 {
		t.Errorf("sidecar-sockmap is significantly slower than sidecar: %.3f [%.3f, %.3f]", math.Exp(sh.Estimate), math.Exp(sh.Lo), math.Exp(sh.Hi))
	}
	if resolved := !sh.TooFew && (sh.Hi-sh.Lo)/2 <= 0.04; resolved && sh.Lo <= 0 {
		t.Errorf("sidecar-sockmap is not significantly faster than sidecar: %.3f [%.3f, %.3f]", math.Exp(sh.Estimate), math.Exp(sh.Lo), math.Exp(sh.Hi))
	} else if !resolved {
		t.Logf("too noisy to resolve sockmap's gain (interval wider than ±4 points): only its sign is checked")
	}
	if r := result(s, "sidecar", "tcp_rr"); r.Verdict != "worse" {
		t.Errorf("a sidecar hop is not significantly slower than host: %s %s", r.RatioVsHost, r.Verdict)
	}
}
