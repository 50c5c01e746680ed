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

// minWilcoxonP is the smallest two-sided p the exact signed-rank test can
// give for n pairs: every sign the same, 2/2^n.
func minWilcoxonP(n int) float64 { return math.Ldexp(2, -n) }

// ComparePaired compares two configurations measured in the same rounds:
// base[i] and new[i] ran in round i, so slow drift of a shared machine
// hits both alike. Medians and CIs are per configuration (MedianCI); the
// test is the Wilcoxon signed-rank test on the per-round log ratios
// log(new[i]/base[i]), which is far more powerful than Mann-Whitney when
// rounds differ from each other. Pairs with a non-positive value are
// dropped. "too few trials" when even identical signs could not reach
// alpha (fewer than 6 pairs at 0.05).
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
	}
	c.DeltaPct = (c.New.Center - c.Base.Center) / c.Base.Center * 100
	c.U, c.P = WilcoxonSignedRank(lr)
	c.PAdjusted = c.P
	c.decide(alpha)
	return c
}
