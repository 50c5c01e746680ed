package stats

import (
	"math"
	"slices"
	"testing"
)

func near(a, b, tol float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b))
}

func TestMedian(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{nan}, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{nan, 5, 1, nan, 3}, 3},
	} {
		in := slices.Clone(c.in)
		if got := Median(in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.EqualFunc(in, c.in, func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }) {
			t.Errorf("Median modified its input: %v, was %v", in, c.in)
		}
	}
	// The same centre MedianCI reports.
	for n := 1; n <= 12; n++ {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64((i*7919)%13) + 0.5*float64(i%3)
		}
		if got, want := Median(xs), MedianCI(xs, 0.95).Center; got != want {
			t.Errorf("n=%d: Median %v, MedianCI center %v", n, got, want)
		}
	}
}

func TestMedianCI(t *testing.T) {
	nan := math.NaN()
	// Intervals follow benchmath: accumulate Binomial(n, 1/2) mass from
	// the mode outwards, left side first on ties. [l, r) is the range of
	// "values below the median" covered, giving [x(l), x(r)].
	tests := []struct {
		name           string
		xs             []float64
		conf           float64
		center, lo, hi float64
		achieved       float64
		n, skipped     int
		tooFew         bool
	}{
		// n=5, 0.95: even [min,max] is only 1-2/32 = 0.9375.
		{"n5 0.95 too few", []float64{4, 2, 5, 1, 3}, 0.95, 3, 1, 5, 0.9375, 5, 0, true},
		// n=5, 0.90: 10,+10,+5,+5 of 32 → 30/32 with [x(1), x(5)].
		{"n5 0.90", []float64{4, 2, 5, 1, 3}, 0.90, 3, 1, 5, 0.9375, 5, 0, false},
		// n=7, 0.95: 35,+35,+21,+21,+7,+7 of 128 → 126/128 = [min,max].
		{"n7 0.95", []float64{5, 3, 9, 1, 7, 2, 8}, 0.95, 5, 1, 9, 0.984375, 7, 0, false},
		// n=7, 0.90: stops at 119/128 after adding the left 7: [x(1), x(6)].
		{"n7 0.90 left-biased", []float64{5, 3, 9, 1, 7, 2, 8}, 0.90, 5, 1, 8, 0.9296875, 7, 0, false},
		// n=10, 0.95: PMF(2..8) = (45+120+210+252+210+120+45)/1024 =
		// 1002/1024 with [x(2), x(9)]; median (x(5)+x(6))/2.
		{"n10 0.95", []float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5}, 0.95, 5.5, 2, 9, 1002.0 / 1024, 10, 0, false},
		// NaNs dropped and counted: still the n=7 case.
		{"nan dropped", []float64{5, nan, 3, 9, 1, 7, 2, nan, 8}, 0.95, 5, 1, 9, 0.984375, 7, 2, false},
		{"single", []float64{42}, 0.95, 42, 42, 42, 0, 1, 0, true},
		{"empty", nil, 0.95, 0, 0, 0, 0, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.xs)
			e := MedianCI(in, tc.conf)
			want := Estimate{Center: tc.center, Lo: tc.lo, Hi: tc.hi, Confidence: tc.achieved, N: tc.n, TooFew: tc.tooFew, Skipped: tc.skipped}
			if !near(e.Center, want.Center, 1e-12) || e.Lo != want.Lo || e.Hi != want.Hi ||
				!near(e.Confidence, want.Confidence, 1e-12) || e.N != want.N || e.TooFew != want.TooFew || e.Skipped != want.Skipped {
				t.Errorf("MedianCI = %+v, want %+v", e, want)
			}
			if !slices.EqualFunc(in, tc.xs, func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }) {
				t.Errorf("input modified: %v", in)
			}
		})
	}
}

func TestPairedRatio(t *testing.T) {
	nan := math.NaN()
	// Denominators are powers of two so the ratios are exact.
	// Ratios sorted: 0.9 1.0 1.05 1.1 1.15 1.2 1.3 → median 1.1,
	// 7 values at 0.95 → [min, max] at 0.984375.
	r := []float64{1.1, 0.9, 1.3, 1.0, 1.2, 1.05, 1.15}
	var num, den []float64
	for i, x := range r {
		d := math.Ldexp(1, i)
		num, den = append(num, x*d), append(den, d)
	}
	tests := []struct {
		name     string
		num, den []float64
		want     Estimate
		wantErr  bool
	}{
		{"seven pairs", num, den, Estimate{Center: 1.1, Lo: 0.9, Hi: 1.3, Confidence: 0.984375, N: 7}, false},
		{"undefined pairs skipped", append(slices.Clone(num), 1, 2, nan, 3), append(slices.Clone(den), 0, nan, 4, 0),
			Estimate{Center: 1.1, Lo: 0.9, Hi: 1.3, Confidence: 0.984375, N: 7, Skipped: 4}, false},
		{"few pairs", num[:3], den[:3], Estimate{Center: 1.1, Lo: 0.9, Hi: 1.3, Confidence: 0.75, N: 3, TooFew: true}, false},
		{"length mismatch", num, den[:6], Estimate{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := PairedRatio(tc.num, tc.den, 0.95)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if e != tc.want {
				t.Errorf("PairedRatio = %+v, want %+v", e, tc.want)
			}
		})
	}
}

// permutationP is the exact two-sided permutation p-value of U — twice
// the smaller tail, capped at 1 — by brute force over every way of
// choosing which pooled values form sample a (U from midranks).
func permutationP(a, b []float64) float64 {
	pool := slices.Concat(a, b)
	slices.Sort(pool)
	rank := make([]float64, len(pool)) // midranks
	for i := 0; i < len(pool); {
		j := i
		for j < len(pool) && pool[j] == pool[i] {
			j++
		}
		for k := i; k < j; k++ {
			rank[k] = float64(i+1+j) / 2
		}
		i = j
	}
	n1 := len(a)
	uOf := func(idx []int) float64 {
		r := 0.0
		for _, i := range idx {
			r += rank[i]
		}
		return r - float64(n1*(n1+1))/2
	}
	var obsIdx []int // a's values, matched to pooled positions
	used := make([]bool, len(pool))
	for _, x := range a {
		for i, y := range pool {
			if y == x && !used[i] {
				used[i] = true
				obsIdx = append(obsIdx, i)
				break
			}
		}
	}
	obs := uOf(obsIdx)
	var lo, hi, all float64
	idx := make([]int, 0, n1)
	var rec func(i int)
	rec = func(i int) {
		if len(idx) == n1 {
			all++
			u := uOf(idx)
			if u <= obs+1e-9 {
				lo++
			}
			if u >= obs-1e-9 {
				hi++
			}
			return
		}
		if len(pool)-i < n1-len(idx) {
			return
		}
		idx = append(idx, i)
		rec(i + 1)
		idx = idx[:len(idx)-1]
		rec(i + 1)
	}
	rec(0)
	return min(1, 2*min(lo, hi)/all)
}

func TestMannWhitney(t *testing.T) {
	seq := func(from, step float64, n int) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = from + step*float64(i)
		}
		return xs
	}
	rep := func(pairs ...float64) []float64 { // value, count, value, count...
		var xs []float64
		for i := 0; i < len(pairs); i += 2 {
			for range int(pairs[i+1]) {
				xs = append(xs, pairs[i])
			}
		}
		return xs
	}
	tests := []struct {
		name  string
		a, b  []float64
		u, p  float64
		brute bool    // also check p against permutationP
		tol   float64 // relative tolerance on p; 0 means 1e-9
	}{
		// Complete separation, 5 vs 5: U=0, p = 2/C(10,5) = 2/252.
		{"separated 5v5", seq(1, 1, 5), seq(6, 1, 5), 0, 2.0 / 252, true, 0},
		{"separated 5v5 mirrored", seq(6, 1, 5), seq(1, 1, 5), 25, 2.0 / 252, true, 0},
		// Alternating 1,3,5,7,9 vs 2,4,..,10: U = 0+1+2+3+4 = 10. The
		// number of arrangements with U <= 10 is the sum of the first 11
		// coefficients of the Gaussian binomial [10 choose 5]:
		// 1+1+2+3+5+7+9+11+14+16+18 = 87, so p = 2*87/252.
		{"interleaved 5v5", seq(1, 2, 5), seq(2, 2, 5), 10, 174.0 / 252, true, 0},
		// Small sample with ties: exact conditional distribution
		// (benchstat), checked against brute-force permutations.
		// U(a) = 0 (the 1) + 2×0.5 (2s tie the 2) + 2×(1 + 2×0.5) (3s) = 5.
		{"small with ties", []float64{1, 2, 2, 3, 3}, []float64{2, 3, 3, 4, 4, 5}, 5, math.NaN(), true, 0},
		// 30 vs 30 with ties, above the exact limit (25): normal
		// approximation with tie and continuity correction, as scipy's
		// mannwhitneyu(method="asymptotic"):
		//   a = 10×1, 10×2, 10×3;  b = 10×2, 10×3, 10×4
		//   U(a) = 10·(10·0.5) + 10·(10 + 10·0.5) = 50 + 150 = 200
		//   ties t = 10, 20, 20, 10 → Σ(t³-t) = 990+7980+7980+990 = 17940
		//   σ² = 30·30/12 · (61 - 17940/(60·59)) = 4194.915254237288
		//   z = (200 - 450 + 0.5)/σ = -3.8522011286216014
		//   p = 2Φ(z) = erfc(3.8522011286/√2) = 1.1706080954085454e-4
		{"tied 30v30 normal approx", rep(1, 10, 2, 10, 3, 10), rep(2, 10, 3, 10, 4, 10), 200, 1.1706080954085454e-4, false, 0},
		{"all equal", rep(7, 4), rep(7, 3), 6, 1, false, 0},
		{"empty", nil, []float64{1, 2}, 0, 1, false, 0},
		{"nan dropped", []float64{1, math.NaN(), 2, 3, 4, 5}, seq(6, 1, 5), 0, 2.0 / 252, false, 0},
		// Ties, 10 vs 12 (HypothesisTests.jl issue #337): R's
		// coin::wilcox_test(distribution="exact") gives the one-sided
		// P(U <= 22.5) = 0.006001738; twice that is the two-sided p.
		// U(a) = Σ_k #{even b < k} + ½[k even] = 22.5.
		{"ties 10v12 vs R coin", seq(1, 1, 10), seq(2, 2, 12), 22.5, 2 * 0.006001738, true, 1e-7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, p := MannWhitney(tc.a, tc.b)
			if u != tc.u {
				t.Errorf("u = %v, want %v", u, tc.u)
			}
			tol := tc.tol
			if tol == 0 {
				tol = 1e-9
			}
			if !math.IsNaN(tc.p) && !near(p, tc.p, tol) {
				t.Errorf("p = %.17g, want %.17g", p, tc.p)
			}
			// Swapping the samples mirrors U and keeps p.
			a, _ := dropNaN(tc.a)
			b, _ := dropNaN(tc.b)
			mirror := float64(len(a)*len(b)) - u
			if u2, p2 := MannWhitney(tc.b, tc.a); u2 != mirror || !near(p2, p, 1e-12) {
				t.Errorf("swapped: u = %v, p = %v; want u = %v, p = %v", u2, p2, mirror, p)
			}
			if tc.brute {
				if bp := permutationP(tc.a, tc.b); !near(p, bp, 1e-9) {
					t.Errorf("p = %.17g, brute-force permutation p = %.17g", p, bp)
				}
			}
		})
	}
}

func TestMinMannWhitneyP(t *testing.T) {
	tests := []struct {
		n1, n2 int
		want   float64
	}{
		{2, 2, 2.0 / 6}, {3, 3, 2.0 / 20}, {3, 4, 2.0 / 35}, {4, 4, 2.0 / 70},
		{5, 5, 2.0 / 252}, {1, 1, 1}, {0, 5, 1}, {3, 5, 2.0 / 56},
	}
	for _, tc := range tests {
		if got := minMannWhitneyP(tc.n1, tc.n2); !near(got, tc.want, 1e-12) {
			t.Errorf("minMannWhitneyP(%d, %d) = %v, want %v", tc.n1, tc.n2, got, tc.want)
		}
		// It must be what MannWhitney really gives at complete separation.
		if tc.n1 > 0 && tc.n2 > 0 && tc.n1+tc.n2 > 2 {
			a := make([]float64, tc.n1)
			b := make([]float64, tc.n2)
			for i := range b {
				b[i] = float64(len(a) + i)
			}
			for i := range a {
				a[i] = float64(i)
			}
			if _, p := MannWhitney(a, b); !near(p, tc.want, 1e-9) {
				t.Errorf("MannWhitney separated %d vs %d: p = %v, want %v", tc.n1, tc.n2, p, tc.want)
			}
		}
	}
}

func TestHolm(t *testing.T) {
	tests := []struct {
		name string
		ps   []float64
		want []float64
	}{
		// Sorted 0.005×4 = 0.02, 0.01×3 = 0.03, 0.03×2 = 0.06,
		// 0.04×1 = 0.04 → raised to 0.06 to stay monotone.
		{"textbook", []float64{0.01, 0.04, 0.03, 0.005}, []float64{0.03, 0.06, 0.06, 0.02}},
		{"capped", []float64{0.6, 0.5}, []float64{1, 1}},
		{"ties", []float64{0.02, 0.5, 0.02}, []float64{0.06, 0.5, 0.06}},
		{"single", []float64{0.04}, []float64{0.04}},
		{"nan as 1", []float64{math.NaN(), 0.01}, []float64{1, 0.02}},
		{"empty", []float64{}, []float64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Holm(tc.ps)
			if !slices.EqualFunc(got, tc.want, func(a, b float64) bool { return near(a, b, 1e-12) }) {
				t.Errorf("Holm(%v) = %v, want %v", tc.ps, got, tc.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	base := []float64{100, 101, 99, 102, 98}
	lower := []float64{90, 91, 89, 92, 88}
	higher := []float64{110, 111, 109, 112, 108}
	tests := []struct {
		name           string
		base, new      []float64
		higherIsBetter bool
		alpha          float64
		verdict        Verdict
		p, delta       float64
	}{
		{"latency down is better", base, lower, false, 0.05, Better, 2.0 / 252, -10},
		{"latency up is worse", base, higher, false, 0.05, Worse, 2.0 / 252, 10},
		{"throughput up is better", base, higher, true, 0.05, Better, 2.0 / 252, 10},
		{"throughput down is worse", base, lower, true, 0.05, Worse, 2.0 / 252, -10},
		{"identical", base, base, false, 0.05, NoDifference, 1, 0},
		// 2 vs 2 can give at best p = 2/6.
		{"2v2 too few", base[:2], lower[:2], false, 0.05, TooFewTrials, 1.0 / 3, -9.950248756218906},
		// 3 vs 3 reaches 2/20 = 0.1: too few at 0.05, enough at 0.2.
		{"3v3 too few at 0.05", base[:3], lower[:3], false, 0.05, TooFewTrials, 0.1, -10},
		{"3v3 enough at 0.2", base[:3], lower[:3], false, 0.2, Better, 0.1, -10},
		// 4 vs 4 reaches 2/70 = 0.0286.
		{"4v4 separated", base[:4], lower[:4], false, 0.05, Better, 2.0 / 70, -9.950248756218906},
		// Overlapping: 1,3,5,7,9 vs 2,4,6,8,10 → p = 174/252.
		{"overlap", []float64{1, 3, 5, 7, 9}, []float64{2, 4, 6, 8, 10}, false, 0.05, NoDifference, 174.0 / 252, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Compare(tc.base, tc.new, tc.higherIsBetter, tc.alpha, 0.95)
			if c.Verdict != tc.verdict {
				t.Errorf("verdict %q, want %q (%+v)", c.Verdict, tc.verdict, c)
			}
			if !near(c.P, tc.p, 1e-9) || c.PAdjusted != c.P {
				t.Errorf("P = %v, PAdjusted = %v, want both %v", c.P, c.PAdjusted, tc.p)
			}
			if !near(c.DeltaPct, tc.delta, 1e-9) {
				t.Errorf("DeltaPct = %v, want %v", c.DeltaPct, tc.delta)
			}
			if sig := tc.verdict == Better || tc.verdict == Worse; c.Significant != sig {
				t.Errorf("Significant = %v, want %v", c.Significant, sig)
			}
		})
	}
}

// Identical distributions: draws from one distribution, split in two,
// must not come out as a difference.
func TestCompareSameDistribution(t *testing.T) {
	// A fixed, irregular sequence (deterministic, no rng needed).
	var a, b []float64
	for i := range 20 {
		x := 100 + 10*math.Sin(float64(i)*1.7)
		if i%2 == 0 {
			a = append(a, x)
		} else {
			b = append(b, x)
		}
	}
	c := Compare(a, b, false, 0.05, 0.95)
	if c.Verdict != NoDifference || c.Significant || c.P < 0.05 {
		t.Errorf("same distribution: %+v", c)
	}
}

func TestAdjustComparisons(t *testing.T) {
	base := []float64{100, 101, 99, 102, 98}
	lower := []float64{90, 91, 89, 92, 88}
	family := func(k int) []Comparison {
		cs := []Comparison{Compare(base[:2], lower[:2], false, 0.05, 0.95)} // too few
		for range k {
			cs = append(cs, Compare(base, lower, false, 0.05, 0.95))
		}
		return cs
	}
	tests := []struct {
		name    string
		k       int
		padj    float64
		verdict Verdict
	}{
		// Family of 3 (the too-few one has p = 1/3 and ranks last):
		// 2/252 × 3 = 0.0238 < 0.05.
		{"three", 2, 3 * 2.0 / 252, Better},
		// Family of 7: 2/252 × 7 = 0.0556, no longer significant.
		{"seven", 6, 7 * 2.0 / 252, NoDifference},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := family(tc.k)
			AdjustComparisons(cs, 0.05)
			if cs[0].Verdict != TooFewTrials || cs[0].Significant {
				t.Errorf("too-few comparison became %+v", cs[0])
			}
			for _, c := range cs[1:] {
				if !near(c.PAdjusted, tc.padj, 1e-9) || c.Verdict != tc.verdict || c.Significant != (tc.verdict == Better) {
					t.Errorf("got PAdjusted %v verdict %q significant %v, want %v %q", c.PAdjusted, c.Verdict, c.Significant, tc.padj, tc.verdict)
				}
				if !near(c.P, 2.0/252, 1e-9) {
					t.Errorf("raw P changed to %v", c.P)
				}
			}
		})
	}
}
