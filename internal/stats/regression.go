package stats

import "math"

// Minimum effects below which a regression is not reported however
// significant it is: small, real shifts of a shared machine are not worth
// an alert. Fractions of the baseline median.
const (
	MinEffectP99  = 0.05
	MinEffectP50  = 0.03
	MinEffectRate = 0.03
)

// RegressionAlpha is the significance level of Regression's Mann–Whitney
// test (before any adjustment by the caller).
const RegressionAlpha = 0.05

// MinEffect is the minimum effect a regression must have: the larger of
// floor (MinEffectP99, MinEffectP50, MinEffectRate) and twice the
// run-to-run coefficient of variation of the baseline, computed from
// runMedians, one value per baseline run (the median of that run's
// trials). Trials of one run are closer to each other than runs are, so
// pooled trials alone would call ordinary run-to-run drift significant;
// the CV term keeps alerts above that drift. With fewer than two runs the
// CV is unknown and floor is returned.
func MinEffect(floor float64, runMedians []float64) float64 {
	vals, _ := dropNaN(runMedians)
	if len(vals) < 2 {
		return floor
	}
	var sum float64
	for _, v := range vals {
		sum += v
	}
	mean := sum / float64(len(vals))
	if mean == 0 {
		return floor
	}
	var ss float64
	for _, v := range vals {
		ss += (v - mean) * (v - mean)
	}
	cv := math.Sqrt(ss/float64(len(vals)-1)) / math.Abs(mean)
	return max(floor, 2*cv)
}

// RegressionResult is the outcome of Regression.
type RegressionResult struct {
	// Comparison holds the medians with 95% CIs, the change in percent
	// and the Mann–Whitney p-value (Verdict from the test alone).
	Comparison
	// MinEffect is the minimum effect used, as a fraction.
	MinEffect float64
	// Effect is the relative change of the median in the bad direction:
	// positive when the new values are worse, as a fraction (0.07: 7%
	// worse).
	Effect float64
	// Regressed: significantly worse by at least MinEffect. Improved: the
	// same, better.
	Regressed, Improved bool
}

// Regression decides whether per-trial values new are a regression
// against base: the two-sided Mann–Whitney p-value is below
// RegressionAlpha (after AdjustRegressions, if the caller makes several
// decisions at once), the median moved in the bad direction, and by at
// least minEffect (a fraction of the base median; see MinEffect).
// higherIsBetter is true for rates, false for latencies.
func Regression(base, new []float64, higherIsBetter bool, minEffect float64) RegressionResult {
	r := RegressionResult{Comparison: Compare(base, new, higherIsBetter, RegressionAlpha, 0.95), MinEffect: minEffect}
	r.decide()
	return r
}

func (r *RegressionResult) decide() {
	r.Effect = r.DeltaPct / 100
	if r.HigherIsBetter {
		r.Effect = -r.Effect
	}
	if math.IsNaN(r.Effect) {
		r.Effect = 0
	}
	big := math.Abs(r.Effect) >= r.MinEffect
	r.Regressed = r.Significant && r.Verdict == Worse && r.Effect > 0 && big
	r.Improved = r.Significant && r.Verdict == Better && r.Effect < 0 && big
}

// AdjustRegressions applies the Holm–Bonferroni adjustment across the
// regression decisions of one run (every configuration and metric), so
// that the chance of any false alert stays below RegressionAlpha, and
// redoes each decision.
func AdjustRegressions(rs []RegressionResult) {
	cs := make([]Comparison, len(rs))
	for i := range rs {
		cs[i] = rs[i].Comparison
	}
	AdjustComparisons(cs, RegressionAlpha)
	for i := range rs {
		rs[i].Comparison = cs[i]
		rs[i].decide()
	}
}
