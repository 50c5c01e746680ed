package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Exact signed-rank p-values, worked by hand from the 2^n sign patterns
// (and matching R's wilcox.test(exact=TRUE) for the untied cases).
func TestWilcoxonSignedRank(t *testing.T) {
	cases := []struct {
		name string
		d    []float64
		w, p float64
	}{
		// All 6 positive: only 1 of 64 patterns has W+=21, two-sided 2/64.
		{"all positive n=6", []float64{1, 2, 3, 4, 5, 6}, 21, 2.0 / 64},
		// n=5 all negative: W+=0, 2/32.
		{"all negative n=5", []float64{-1, -2, -3, -4, -5}, 0, 2.0 / 32},
		// n=4, ranks 1..4, positives {4}: W+=4; P(W+<=4)=6/16 (sums 0,1,2,3,3,4,4 -> count 7? see below)
		// Sums of subsets of {1,2,3,4} that are <= 4: {},{1},{2},{3},{1,2},{4},{1,3} = 7 of 16;
		// P(W+>=4) = 1 - P(W+<=3) = 1 - 5/16 = 11/16; two-sided 2*7/16 = 0.875.
		{"mixed n=4", []float64{-1, -2, -3, 4}, 4, 14.0 / 16},
		// Zeros are dropped: same as all positive n=6.
		{"zeros dropped", []float64{0, 1, 2, 0, 3, 4, 5, 6}, 21, 2.0 / 64},
		// Ties: |d| = 1,1,2 → ranks 1.5,1.5,3; positives {1.5,3}: W+=4.5.
		// Subset sums of {1.5,1.5,3}: 0,1.5,1.5,3,3,4.5,4.5,6 → P(W+>=4.5)=3/8, P(<=4.5)=7/8; p=6/8.
		{"ties", []float64{1, -1, 2}, 4.5, 6.0 / 8},
	}
	for _, c := range cases {
		w, p := WilcoxonSignedRank(c.d)
		if w != c.w || math.Abs(p-c.p) > 1e-12 {
			t.Errorf("%s: W+ %v p %v, want %v %v", c.name, w, p, c.w, c.p)
		}
	}
	if w, p := WilcoxonSignedRank(nil); w != 0 || p != 1 {
		t.Errorf("empty: %v %v", w, p)
	}
}

// The normal approximation (n > 60) agrees with the exact distribution
// where both apply, within a little.
func TestWilcoxonNormalApprox(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	d := make([]float64, 61)
	for i := range d {
		d[i] = rng.NormFloat64() + 0.3
	}
	_, pApprox := WilcoxonSignedRank(d)
	_, pExact := WilcoxonSignedRank(d[:60])
	if pApprox <= 0 || pApprox > 0.05 || pExact > 0.05 {
		t.Errorf("a 0.3σ shift over 60 pairs: exact %v, approx %v", pExact, pApprox)
	}
}

// Paired comparison sees a consistent 8% drop through large round-to-round
// swings that hide it from the unpaired test.
func TestComparePairedSeesThroughDrift(t *testing.T) {
	base := []float64{10000, 18000, 12000, 16000, 11000, 17500, 13000, 15000, 10500}
	var nw []float64
	for i, b := range base {
		nw = append(nw, b*(0.92+0.01*float64(i%3-1)))
	}
	unpaired := Compare(base, nw, true, 0.05, 0.95)
	paired := ComparePaired(base, nw, true, 0.05, 0.95)
	if unpaired.Significant {
		t.Errorf("unpaired test should not see it through the drift: p=%v", unpaired.P)
	}
	if !paired.Significant || paired.Verdict != Worse || paired.P > 0.01 {
		t.Errorf("paired: %+v", paired)
	}
	// Five pairs can never reach 0.05 two-sided (2/32 = 0.0625).
	if c := ComparePaired(base[:5], nw[:5], true, 0.05, 0.95); c.Verdict != TooFewTrials {
		t.Errorf("5 pairs: %v", c.Verdict)
	}
	// No difference: ratios scattered around 1.
	same := []float64{10100, 17900, 12100, 15900, 11050, 17400, 13050, 14950, 10550}
	if c := ComparePaired(base, same, true, 0.05, 0.95); c.Significant {
		t.Errorf("scattered ratios judged significant: %+v", c)
	}
}
