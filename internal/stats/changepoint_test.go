package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

func gauss(r *rand.Rand, n int, mean, sd float64) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = mean + sd*r.NormFloat64()
	}
	return xs
}

func TestChangePointsKnownShifts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name   string
		series []float64
		want   []int
	}{
		{"one step up", append(gauss(r, 30, 100, 2), gauss(r, 30, 110, 2)...), []int{30}},
		{"step down late", append(gauss(r, 40, 100, 2), gauss(r, 5, 90, 2)...), []int{40}},
		{"up then back", append(append(gauss(r, 25, 100, 2), gauss(r, 25, 112, 2)...), gauss(r, 25, 100, 2)...), []int{25, 50}},
		{"flat", gauss(r, 60, 100, 2), nil},
	} {
		cps := ChangePoints(c.series, CPOptions{}, rand.New(rand.NewPCG(7, 7)))
		var got []int
		for _, cp := range cps {
			got = append(got, cp.Index)
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: change points %v, want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: change points %v, want %v", c.name, got, c.want)
			}
		}
		for _, cp := range cps {
			if cp.P >= 0.05 || cp.BeforeCI.N == 0 || cp.AfterCI.N == 0 {
				t.Errorf("%s: %+v", c.name, cp)
			}
		}
		if c.name == "one step up" && len(cps) == 1 {
			if cp := cps[0]; cp.BeforeMedian < 98 || cp.BeforeMedian > 102 || cp.AfterMedian < 108 || cp.AfterMedian > 112 {
				t.Errorf("medians %v → %v, want ~100 → ~110", cp.BeforeMedian, cp.AfterMedian)
			}
		}
	}
}

func TestChangePointsNaNAndShort(t *testing.T) {
	xs := []float64{1, 1, 1, 1, 1, 9, 9, 9, 9, 9}
	xs = append(xs[:3], append([]float64{nan()}, xs[3:]...)...)
	cps := ChangePoints(xs, CPOptions{Permutations: 99, Alpha: 0.05}, rand.New(rand.NewPCG(1, 1)))
	if len(cps) != 1 || cps[0].Index != 6 {
		t.Errorf("with a NaN at 3: %+v, want one change at index 6", cps)
	}
	if cps := ChangePoints([]float64{1, 2, 3}, CPOptions{}, rand.New(rand.NewPCG(1, 1))); len(cps) != 0 {
		t.Errorf("3 points: %+v", cps)
	}
}

// TestChangePointsFalseAlarmRate measures how often pure Gaussian noise
// gets any change point at all: it must stay near Alpha.
func TestChangePointsFalseAlarmRate(t *testing.T) {
	const series, n = 200, 50
	r := rand.New(rand.NewPCG(42, 42))
	for _, alpha := range []float64{0.05, 0.01} {
		hits := 0
		for range series {
			if len(ChangePoints(gauss(r, n, 100, 5), CPOptions{Alpha: alpha}, r)) > 0 {
				hits++
			}
		}
		rate := float64(hits) / series
		t.Logf("false-alarm rate, %d series of %d Gaussian points, 199 permutations, alpha %v: %d/%d = %.3f",
			series, n, alpha, hits, series, rate)
		if rate > 2*alpha+0.01 {
			t.Errorf("false-alarm rate %.3f at alpha %v", rate, alpha)
		}
	}
}

func TestMinEffectAndRegression(t *testing.T) {
	if got := MinEffect(MinEffectP99, nil); got != MinEffectP99 {
		t.Errorf("no runs: %v", got)
	}
	if got := MinEffect(MinEffectP50, []float64{100, 100, 100}); got != MinEffectP50 {
		t.Errorf("no spread: %v", got)
	}
	// CV of {90, 100, 110} is 0.1: twice is 0.2.
	if got := MinEffect(MinEffectP50, []float64{90, 100, 110}); got < 0.199 || got > 0.201 {
		t.Errorf("CV term: %v, want 0.2", got)
	}
	r := rand.New(rand.NewPCG(3, 3))
	base := gauss(r, 35, 50_000, 500)
	worse := gauss(r, 7, 55_000, 500) // p99 10% up: latency, lower is better
	if res := Regression(base, worse, false, MinEffectP99); !res.Regressed || res.Improved || res.Effect < 0.08 {
		t.Errorf("10%% worse latency: %+v", res)
	}
	if res := Regression(base, worse, false, 0.2); res.Regressed {
		t.Errorf("10%% worse with a 20%% minimum effect: regressed")
	}
	small := gauss(r, 7, 50_800, 200) // 1.6%: significant but below 3%
	if res := Regression(base, small, false, MinEffectP50); res.Regressed {
		t.Errorf("1.6%% change regressed: %+v", res)
	}
	faster := gauss(r, 7, 45_000, 500)
	if res := Regression(base, faster, false, MinEffectP99); res.Regressed || !res.Improved {
		t.Errorf("faster: %+v", res)
	}
	// Rate: higher is better, a drop regresses.
	rb, rn := gauss(r, 35, 20_000, 100), gauss(r, 7, 18_000, 100)
	res := []RegressionResult{Regression(rb, rn, true, MinEffectRate), Regression(base, base[:7], false, MinEffectP50)}
	AdjustRegressions(res)
	if !res[0].Regressed || res[1].Regressed || res[0].PAdjusted < res[0].P {
		t.Errorf("rate drop after Holm: %+v", res)
	}
}

func nan() float64 { return math.NaN() }
