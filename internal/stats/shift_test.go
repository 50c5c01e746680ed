package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The exact signed-rank null distribution, checked against hand counts of
// the 2^n sign patterns.
func TestSignedRankCDF(t *testing.T) {
	cdf := signedRankCDF(3) // W over subsets of {1,2,3}: 0,1,2,3,3,4,5,6
	want := []float64{1, 2, 3, 5, 6, 7, 8}
	for k, w := range want {
		if got := cdf(k); math.Abs(got-w/8) > 1e-15 {
			t.Errorf("n=3: P(W<=%d) = %v, want %v/8", k, got, w)
		}
	}
	if cdf(-1) != 0 || cdf(100) != 1 {
		t.Errorf("n=3 tails: %v %v", cdf(-1), cdf(100))
	}
	// Beyond the exact limit the normal approximation takes over and is
	// close to the exact one at the limit.
	ex, ap := signedRankCDF(exactShiftLimit), normalSignedRankCDF(exactShiftLimit)
	for _, k := range []int{7000, 8000, 9000, 10050} {
		if math.Abs(ex(k)-ap(k)) > 0.002 {
			t.Errorf("P(W<=%d): exact %v vs approx %v at the limit", k, ex(k), ap(k))
		}
	}
}

// The case the issue reported: six rounds, three comparisons. The exact
// test cannot go below 2/64, so with a Bonferroni family of 3 (0.0167)
// there is no interval at all: the verdict is "too few trials" and no
// bounded interval is printed, never a CI excluding 1 beside "no
// significant difference".
func TestSixRoundsThreeComparisons(t *testing.T) {
	base := []float64{100, 101, 99, 102, 100, 98}
	var cs []Comparison
	for _, f := range []float64{0.786, 0.95, 1.06} {
		var nw []float64
		for i, b := range base {
			nw = append(nw, b*f*(1+0.01*float64(i%3-1)))
		}
		cs = append(cs, ComparePaired(base, nw, true, 0.05, 0.95))
	}
	// Alone, six equal signs reach p = 2/64 < 0.05: significant, and the
	// interval excludes 1.
	if c := cs[0]; !c.Significant || c.Verdict != Worse || !(c.Ratio.Hi < 1) || c.Ratio.TooFew {
		t.Errorf("alone: %+v", c)
	}
	AdjustComparisons(cs, 0.05)
	for i, c := range cs {
		if c.Verdict != TooFewTrials || c.Significant || !c.Ratio.TooFew || !math.IsInf(c.Ratio.Hi, 1) || c.Family != 3 {
			t.Errorf("comparison %d in a family of 3 with 6 rounds: verdict %q, ratio %+v, family %d", i, c.Verdict, c.Ratio, c.Family)
		}
	}
	if MinRoundsFor(0.05, 3) != 7 || MinRoundsFor(0.05, 1) != 6 || MinRoundsFor(0.05, 5) != 8 {
		t.Errorf("MinRoundsFor: %d %d %d", MinRoundsFor(0.05, 3), MinRoundsFor(0.05, 1), MinRoundsFor(0.05, 5))
	}
}

// Duality, on random data of every small size and several levels: the
// test rejects exactly when the interval excludes 0, and the interval's
// real confidence is at least the level asked.
func TestShiftDuality(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 6))
	for iter := 0; iter < 3000; iter++ {
		n := 1 + rng.IntN(30)
		shift := (rng.Float64() - 0.5) * 2
		d := make([]float64, n)
		for i := range d {
			d[i] = shift + rng.NormFloat64()
			if rng.IntN(10) == 0 {
				d[i] = float64(rng.IntN(3) - 1) // ties and zeros
			}
		}
		level := []float64{0.9, 0.95, 0.99, 1 - 0.05/3, 1 - 0.05/7}[rng.IntN(5)]
		s := SignedRankShift(d, level)
		rejects := s.P <= 1-level
		if rejects != s.Excludes(0) {
			t.Fatalf("n=%d level %v: p=%v but interval [%v, %v] (too few %v); d=%v", n, level, s.P, s.Lo, s.Hi, s.TooFew, d)
		}
		if !s.TooFew && (s.Confidence < level-1e-12 || !(s.Lo <= s.Estimate && s.Estimate <= s.Hi)) {
			t.Fatalf("n=%d level %v: confidence %v, [%v, %v] around %v", n, level, s.Confidence, s.Lo, s.Hi, s.Estimate)
		}
		if s.TooFew != (math.Ldexp(1, -n) > (1-level)/2) {
			t.Fatalf("n=%d level %v: too few %v", n, level, s.TooFew)
		}
	}
}

// The Hodges–Lehmann estimate and interval of a known sample: d = 1..9,
// Walsh averages 1, 1.5, ..., 9; the 95% interval for n=9 is the 6th
// smallest and 6th largest (P(W ≤ 5) = 10/512 ≤ 0.025 < P(W ≤ 6) = 14/512).
func TestShiftKnownSample(t *testing.T) {
	d := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}
	s := SignedRankShift(d, 0.95)
	if s.Estimate != 5 || s.N != 9 || s.Pos != 45 || s.P != 2.0/512 {
		t.Errorf("estimate %v n %d pos %d p %v", s.Estimate, s.N, s.Pos, s.P)
	}
	// Walsh averages sorted: 1,1.5,2,2,2.5,2.5,3,... the 6th is 2.5.
	if s.Lo != 2.5 || s.Hi != 7.5 || math.Abs(s.Confidence-(1-2*10.0/512)) > 1e-12 {
		t.Errorf("interval [%v, %v] at %v", s.Lo, s.Hi, s.Confidence)
	}
	if e := SignedRankShift(nil, 0.95); !e.TooFew || e.P != 1 {
		t.Errorf("empty: %+v", e)
	}
}

// The paired comparison's ratio and verdict agree everywhere, alone and
// after adjustment: a significant verdict exactly when the ratio's
// interval excludes 1, and the direction follows the estimate.
func TestComparePairedVerdictFollowsInterval(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 500; iter++ {
		n := 3 + rng.IntN(25)
		fam := 1 + rng.IntN(6)
		var cs []Comparison
		for k := 0; k < fam; k++ {
			eff := 1 + (rng.Float64()-0.5)*0.1
			base, nw := make([]float64, n), make([]float64, n)
			for i := range base {
				base[i] = 1000 * (1 + rng.Float64())
				nw[i] = base[i] * eff * (1 + rng.NormFloat64()*0.03)
			}
			cs = append(cs, ComparePaired(base, nw, true, 0.05, 0.95))
		}
		AdjustComparisons(cs, 0.05)
		for _, c := range cs {
			excl := !c.Ratio.TooFew && (c.Ratio.Lo > 1 || c.Ratio.Hi < 1)
			if c.Significant != excl || (c.Significant && (c.Verdict == Worse) != (c.Ratio.Center < 1)) {
				t.Fatalf("n=%d family %d: verdict %q significant %v, ratio %+v", n, fam, c.Verdict, c.Significant, c.Ratio)
			}
			if c.Significant != (c.PAdjusted <= 0.05) {
				t.Fatalf("n=%d family %d: adjusted p %v but significant %v", n, fam, c.PAdjusted, c.Significant)
			}
		}
	}
}
