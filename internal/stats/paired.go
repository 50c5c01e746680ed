package stats

import (
	"math"
	"slices"
)

// WilcoxonSignedRank performs the two-sided Wilcoxon signed-rank test of
// paired differences d (zero differences are dropped, as Wilcoxon did).
// w is the sum of the ranks of the positive differences; ties in |d| get
// average ranks. The p-value comes from the exact distribution of w given
// the ranks (ties included), computed by dynamic programming over the
// 2^n equally likely sign assignments, for up to 60 pairs; beyond that the
// normal approximation with tie correction. NaN differences are dropped.
func WilcoxonSignedRank(d []float64) (w, p float64) {
	var nz []float64
	for _, x := range d {
		if x != 0 && !math.IsNaN(x) {
			nz = append(nz, x)
		}
	}
	n := len(nz)
	if n == 0 {
		return 0, 1
	}
	// Ranks of |d|, doubled so average ranks are integers.
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmpFloat(math.Abs(nz[a]), math.Abs(nz[b])) })
	rank2 := make([]int, n) // 2 × rank
	for i := 0; i < n; {
		j := i
		for j+1 < n && math.Abs(nz[idx[j+1]]) == math.Abs(nz[idx[i]]) {
			j++
		}
		r2 := i + j + 2 // 2 × average of ranks i+1..j+1
		for k := i; k <= j; k++ {
			rank2[idx[k]] = r2
		}
		i = j + 1
	}
	w2 := 0
	total2 := 0
	for i, x := range nz {
		total2 += rank2[i]
		if x > 0 {
			w2 += rank2[i]
		}
	}
	w = float64(w2) / 2
	if n > 60 {
		mean := float64(total2) / 4
		var v float64
		for _, r := range rank2 {
			v += float64(r*r) / 4
		}
		v /= 4
		z := (math.Abs(w-mean) - 0.5) / math.Sqrt(v)
		if z < 0 {
			z = 0
		}
		return w, min(1, math.Erfc(z/math.Sqrt2))
	}
	// counts[s]: sign assignments whose positive doubled-rank sum is s.
	counts := make([]float64, total2+1)
	counts[0] = 1
	for _, r := range rank2 {
		for s := total2; s >= r; s-- {
			counts[s] += counts[s-r]
		}
	}
	all := math.Ldexp(1, n)
	var lo, hi float64
	for s, c := range counts {
		if s <= w2 {
			lo += c
		}
		if s >= w2 {
			hi += c
		}
	}
	return w, min(1, 2*min(lo, hi)/all)
}

// ComparePaired compares two configurations measured in the same rounds:
// base[i] and new[i] ran in round i, so slow drift of a shared machine
// hits both alike. Medians and CIs are per configuration (MedianCI). The
// test and the ratio's interval are one statistic: the Wilcoxon
// signed-rank test on the per-round log ratios log(new[i]/base[i]) and
// its dual, the Hodges–Lehmann interval (SignedRankShift), so the verdict
// is significant exactly when Ratio's interval excludes 1. Pairs with a
// non-positive value are dropped. Alone, the comparison is judged at
// alpha; AdjustComparisons widens Ratio to the Bonferroni level of its
// family and redoes the verdict. "too few trials" when even identical
// signs could not reach the (adjusted) level: fewer than 6 pairs at 0.05,
// 7 for a family of 3.
func ComparePaired(base, new []float64, higherIsBetter bool, alpha, confidence float64) Comparison {
	var lr []float64
	var b, nw []float64
	for i := 0; i < len(base) && i < len(new); i++ {
		if base[i] > 0 && new[i] > 0 {
			lr = append(lr, math.Log(new[i]/base[i]))
			b = append(b, base[i])
			nw = append(nw, new[i])
		}
	}
	c := Comparison{
		Base:           MedianCI(b, confidence),
		New:            MedianCI(nw, confidence),
		HigherIsBetter: higherIsBetter,
		Paired:         true,
		logRatios:      lr,
	}
	c.DeltaPct = (c.New.Center - c.Base.Center) / c.Base.Center * 100
	c.setFamily(alpha, 1)
	return c
}

// setFamily judges a paired comparison as one of family comparisons
// (Bonferroni): the interval is computed at 1 - alpha/family, the p-value
// multiplied by family, and the verdict follows the interval.
func (c *Comparison) setFamily(alpha float64, family int) {
	family = max(family, 1)
	sh := SignedRankShift(c.logRatios, 1-alpha/float64(family))
	c.U = float64(sh.Pos) + float64(len(c.logRatios)*(len(c.logRatios)+1)/2-sh.Pos-sh.Neg)/2
	c.P = sh.P
	c.PAdjusted = min(1, sh.P*float64(family))
	c.Family = family
	c.Method = MethodPaired
	c.Ratio = Estimate{Center: math.Exp(sh.Estimate), Lo: math.Exp(sh.Lo), Hi: math.Exp(sh.Hi),
		Confidence: sh.Confidence, N: sh.N, TooFew: sh.TooFew}
	c.Significant = false
	switch {
	case sh.TooFew:
		c.Verdict = TooFewTrials
	case !sh.Excludes(0):
		c.Verdict = NoDifference
	default:
		c.Significant = true
		if (sh.Estimate > 0) == c.HigherIsBetter {
			c.Verdict = Better
		} else {
			c.Verdict = Worse
		}
	}
}
