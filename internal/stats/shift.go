package stats

import (
	"math"
	"slices"
)

// Shift is the exact Wilcoxon signed-rank test of paired differences and
// the Hodges–Lehmann interval that is its dual: both are read off the
// same sorted Walsh averages (d[i]+d[j])/2, i ≤ j, so the interval
// excludes 0 exactly when the test rejects at the interval's level.
// latlab uses it on per-round log ratios: exp of Estimate, Lo and Hi is
// the ratio and its interval.
type Shift struct {
	// N is the number of differences used (NaNs dropped; zeros kept,
	// which makes the test conservative rather than dropping evidence).
	N int
	// Estimate is the Hodges–Lehmann estimate: the median of the Walsh
	// averages.
	Estimate float64
	// Lo and Hi bound the interval: the k-th smallest and k-th largest
	// Walsh averages, k the largest order with P(W ≤ k-1) ≤ (1-level)/2
	// under the signed-rank null. ±Inf when TooFew.
	Lo, Hi float64
	// Level is the confidence asked for; Confidence is the level the
	// discrete interval really has (≥ Level unless TooFew).
	Level, Confidence float64
	// TooFew: even N equal signs could not exclude 0 at Level
	// (2^-N > (1-Level)/2); the interval is unbounded.
	TooFew bool
	// Pos and Neg count the Walsh averages above and below 0.
	Pos, Neg int
	// P is the exact two-sided p-value, 2·P(W ≥ max(Pos, Neg)) capped at
	// 1 (normal approximation beyond exactShiftLimit differences).
	P float64
}

// exactShiftLimit is the largest N for which the null distribution of W
// is computed exactly (O(N^3) work); beyond it a normal approximation
// with continuity correction is used.
const exactShiftLimit = 200

// SignedRankShift computes Shift for differences d at the given
// confidence level (in (0, 1)). Significant(level) and excluding 0 are
// the same thing: P ≤ 1-level ⇔ Lo > 0 or Hi < 0.
func SignedRankShift(d []float64, level float64) Shift {
	xs, _ := dropNaN(d)
	n := len(xs)
	s := Shift{N: n, Level: level, P: 1, Lo: math.Inf(-1), Hi: math.Inf(1)}
	if n == 0 {
		s.TooFew = true
		return s
	}
	walsh := make([]float64, 0, n*(n+1)/2)
	for i := range xs {
		for j := i; j < n; j++ {
			walsh = append(walsh, (xs[i]+xs[j])/2)
		}
	}
	slices.Sort(walsh)
	nw := len(walsh)
	if nw%2 == 1 {
		s.Estimate = walsh[nw/2]
	} else {
		s.Estimate = (walsh[nw/2-1] + walsh[nw/2]) / 2
	}
	for _, w := range walsh {
		switch {
		case w > 0:
			s.Pos++
		case w < 0:
			s.Neg++
		}
	}
	cdf := signedRankCDF(n) // cdf(k) = P(W ≤ k)
	tail := (1 - level) / 2
	// k: largest with P(W ≤ k-1) ≤ tail.
	k := 0
	for k < nw/2 && cdf(k) <= tail {
		k++
	}
	if k == 0 {
		s.TooFew = true
		s.Confidence = 0
	} else {
		s.Lo, s.Hi = walsh[k-1], walsh[nw-k]
		s.Confidence = 1 - 2*cdf(k-1)
	}
	m := max(s.Pos, s.Neg)
	s.P = min(1, 2*cdf(nw-m)) // P(W ≥ m) = P(W ≤ N-m) by symmetry
	return s
}

// Excludes reports whether the interval excludes v (it never does when
// TooFew).
func (s Shift) Excludes(v float64) bool { return !s.TooFew && (s.Lo > v || s.Hi < v) }

// signedRankCDF returns k ↦ P(W ≤ k) for the signed-rank statistic of n
// untied, non-zero differences (W = the number of positive Walsh
// averages, 0..n(n+1)/2).
func signedRankCDF(n int) func(k int) float64 {
	total := n * (n + 1) / 2
	if n > exactShiftLimit {
		return normalSignedRankCDF(n)
	}
	// prob[s] = P(W = s), built one rank at a time: each rank r is in the
	// positive set with probability 1/2.
	prob := make([]float64, total+1)
	prob[0] = 1
	reach := 0
	for r := 1; r <= n; r++ {
		reach += r
		for s := reach; s >= 0; s-- {
			v := prob[s]
			if s >= r {
				v += prob[s-r]
			}
			prob[s] = v / 2
		}
	}
	cum := make([]float64, total+1)
	acc := 0.0
	for s, p := range prob {
		acc += p
		cum[s] = acc
	}
	return func(k int) float64 {
		switch {
		case k < 0:
			return 0
		case k >= total:
			return 1
		}
		return cum[k]
	}
}

// normalSignedRankCDF is the normal approximation of signedRankCDF, with
// continuity correction.
func normalSignedRankCDF(n int) func(k int) float64 {
	mean := float64(n*(n+1)) / 4
	sd := math.Sqrt(float64(n*(n+1)*(2*n+1)) / 24)
	return func(k int) float64 {
		if k < 0 {
			return 0
		}
		z := (float64(k) + 0.5 - mean) / sd
		return 0.5 * math.Erfc(-z/math.Sqrt2)
	}
}

// MinRoundsFor is the fewest paired rounds for which the signed-rank
// test can reach alpha/family (a Bonferroni family of that many
// comparisons): 2^(1-n) ≤ alpha/family.
func MinRoundsFor(alpha float64, family int) int {
	family = max(family, 1)
	n := 1
	for math.Ldexp(2, -n) > alpha/float64(family) {
		n++
	}
	return n
}
