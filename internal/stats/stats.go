package stats

import (
	"fmt"
	"math"
	"slices"

	"github.com/aclements/go-moremath/stats"
	"golang.org/x/perf/benchmath"
)

// Estimate is a central value with a confidence interval.
type Estimate struct {
	// Center is the point estimate: the sample median for MedianCI and
	// PairedRatio, the ratio of the quantiles of the fully merged
	// histograms for BootstrapQuantileRatio.
	Center float64
	// Lo and Hi bound the confidence interval. They are always finite
	// sample values: when TooFew is set they are the sample minimum and
	// maximum, and Confidence says what that interval is worth.
	Lo, Hi float64
	// Confidence is the confidence actually achieved by [Lo, Hi]. An
	// order-statistic interval jumps between discrete levels, so this is
	// at least the requested level when TooFew is false (for example 7
	// values at 0.95 give [min, max] at 0.984375), and below it when
	// TooFew is true. For the bootstrap it is the nominal level asked for.
	Confidence float64
	// N is the number of values used (after dropping NaNs and skipped
	// pairs); for the bootstrap, the smaller of the two trial counts.
	N int
	// TooFew is true when N is too small to reach the requested
	// confidence at all. The interval is then [min, max] with its true,
	// lower, confidence; do not present it as a confidence interval at
	// the requested level.
	TooFew bool
	// Skipped counts inputs left out: NaN values, PairedRatio pairs whose
	// ratio is undefined, bootstrap trials that are nil or empty and
	// bootstrap iterations whose denominator quantile is 0.
	Skipped int
}

// Median returns the sample median of xs: the middle value, or the mean of
// the two middle values for an even count. xs is not modified; NaN values
// are dropped, and an empty (or all-NaN) input gives 0. Use MedianCI when
// the median is reported; Median is for summaries and robust centres (MAD)
// that need no interval.
func Median(xs []float64) float64 {
	s, _ := dropNaN(xs)
	n := len(s)
	if n == 0 {
		return 0
	}
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MedianCI returns the sample median of xs and the order-statistic
// confidence interval of the population median at the given confidence
// (in (0, 1), e.g. 0.95), computed as benchstat does (benchmath's
// AssumeNothing). xs is not modified; NaN values are dropped.
//
// If no pair of sample values brackets the median at the requested
// confidence (fewer than 6 values at 0.95), the result has TooFew set and
// reports [min, max] with the confidence 1-2^(1-N) that interval really
// has. An empty input gives a zero Estimate with TooFew set.
func MedianCI(xs []float64, confidence float64) Estimate {
	vals, skipped := dropNaN(xs)
	n := len(vals)
	if n == 0 {
		return Estimate{TooFew: true, Skipped: skipped}
	}
	th := benchmath.DefaultThresholds
	s := benchmath.NewSample(vals, &th) // sorts vals, our private copy
	sum := benchmath.AssumeNothing.Summary(s, confidence)
	e := Estimate{Center: sum.Center, Lo: sum.Lo, Hi: sum.Hi, Confidence: sum.Confidence, N: n, Skipped: skipped}
	if math.IsInf(sum.Lo, 0) || math.IsInf(sum.Hi, 0) {
		// benchmath marks an interval that would need order statistics
		// beyond the sample with ±Inf. Report the widest finite interval
		// and what it is really worth instead.
		e.TooFew = true
		e.Lo, e.Hi = vals[0], vals[n-1]
		e.Confidence = 1 - math.Ldexp(1, 1-n)
	}
	return e
}

// PairedRatio computes the per-index ratios num[i]/den[i] — trials of two
// configurations run in the same interleaved round — and returns their
// median with an order-statistic confidence interval, as MedianCI. Pairs
// whose ratio is undefined (zero or NaN denominator, NaN or infinite
// result) are left out and counted in Skipped. It fails only when the
// slices differ in length.
func PairedRatio(num, den []float64, confidence float64) (Estimate, error) {
	if len(num) != len(den) {
		return Estimate{}, fmt.Errorf("stats: paired ratio of %d numerators and %d denominators", len(num), len(den))
	}
	ratios := make([]float64, 0, len(num))
	skipped := 0
	for i := range num {
		r := num[i] / den[i]
		if den[i] == 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			skipped++
			continue
		}
		ratios = append(ratios, r)
	}
	e := MedianCI(ratios, confidence)
	e.Skipped = skipped
	return e, nil
}

// MannWhitney performs the two-sided Mann–Whitney U test of a against b.
// u is the U statistic of a: the number of pairs (a[i], b[j]) with
// a[i] > b[j], plus half the number of tied pairs, so u above
// len(a)*len(b)/2 means a tends to be larger. The two-sided p-value is
// twice the smaller tail probability of u, capped at 1; it does not
// depend on the order of the arguments.
//
// Without ties, samples of up to 50 values use the exact distribution of
// U, as benchstat does (go-moremath's MannWhitneyUTest). With ties,
// samples of up to 25 values use the exact permutation distribution of U
// given the ties (computed here: go-moremath has one too, but its
// two-sided p-value then depends on the argument order). Larger samples
// use the normal approximation with tie and continuity corrections,
// which matches scipy.stats.mannwhitneyu(method="asymptotic").
//
// NaN values are dropped. If either sample is empty, or all values are
// equal, there is no evidence of a difference and p is 1.
func MannWhitney(a, b []float64) (u, p float64) {
	a, _ = dropNaN(a)
	b, _ = dropNaN(b)
	if len(a) == 0 || len(b) == 0 {
		return 0, 1
	}
	n1, n2 := len(a), len(b)
	ties := tieGroups(a, b)
	if len(ties) == 1 { // all values equal: U sits exactly in the middle
		return float64(n1*n2) / 2, 1
	}
	if len(ties) < n1+n2 && n1 <= exactTiesLimit && n2 <= exactTiesLimit {
		for _, x := range a {
			for _, y := range b {
				if x > y {
					u++
				} else if x == y {
					u += 0.5
				}
			}
		}
		lo, hi := tiedUTails(tiedUDist(ties, n1), n1, u)
		return u, min(2*min(lo, hi), 1)
	}
	res, err := stats.MannWhitneyUTest(a, b, stats.LocationDiffers)
	if err != nil { // cannot happen: both samples non-empty, not all equal
		return float64(n1*n2) / 2, 1
	}
	return res.U, min(res.P, 1)
}

// exactTiesLimit is the largest sample size for which MannWhitney uses the
// exact distribution of U when there are ties (go-moremath's default).
const exactTiesLimit = 25

// tieGroups returns the sizes of the runs of equal values in the pooled,
// sorted sample.
func tieGroups(a, b []float64) []int {
	pool := slices.Concat(a, b)
	slices.Sort(pool)
	var groups []int
	for i := 0; i < len(pool); {
		j := i + 1
		for j < len(pool) && pool[j] == pool[i] {
			j++
		}
		groups = append(groups, j-i)
		i = j
	}
	return groups
}

// tiedUDist is the permutation distribution of U for a sample of n1
// values drawn from a pooled sample with the given tie groups (ascending
// values): dist[s] counts the subsets of size n1 whose doubled midrank
// sum is s. It is a dynamic program over the groups: taking c of a
// group's t values (C(t, c) ways) adds c times its doubled midrank.
func tiedUDist(groups []int, n1 int) []float64 {
	n := 0
	for _, t := range groups {
		n += t
	}
	width := n*(n+1) + 1 // doubled midrank sums range over [0, n(n+1)]
	f := make([]float64, (n1+1)*width)
	g := make([]float64, len(f))
	f[0] = 1
	start, reach := 0, 0 // reach: largest sum possible so far
	for _, t := range groups {
		r2 := 2*start + t + 1 // doubled midrank of ranks start+1..start+t
		clear(g)
		for k := 0; k <= n1; k++ {
			for s, ways := range f[k*width : k*width+reach+1] {
				if ways == 0 {
					continue
				}
				binom := 1.0
				for c := 0; c <= t && k+c <= n1; c++ {
					g[(k+c)*width+s+c*r2] += ways * binom
					binom = binom * float64(t-c) / float64(c+1)
				}
			}
		}
		f, g = g, f
		start += t
		reach += t * r2
	}
	return f[n1*width:]
}

// tiedUTails returns P(U <= u) and P(U >= u) under dist (from tiedUDist).
func tiedUTails(dist []float64, n1 int, u float64) (lo, hi float64) {
	// U = R1 - n1(n1+1)/2, so doubled: s = 2U + n1(n1+1).
	obs := int(math.Round(2*u)) + n1*(n1+1)
	var total float64
	for s, ways := range dist {
		total += ways
		if s <= obs {
			lo += ways
		}
		if s >= obs {
			hi += ways
		}
	}
	return lo / total, hi / total
}

// minMannWhitneyP is the smallest two-sided p-value the exact
// Mann–Whitney test can give for samples of n1 and n2 values: complete
// separation, U = 0, has probability 1/C(n1+n2, n1) on each side.
func minMannWhitneyP(n1, n2 int) float64 {
	if n1 == 0 || n2 == 0 {
		return 1
	}
	c := 1.0 // C(n1+n2, n1), built up as a product of ratios
	for i := 1; i <= n1; i++ {
		c = c * float64(n2+i) / float64(i)
	}
	return min(2/c, 1)
}

// Holm returns the Holm–Bonferroni adjusted p-values of ps, in the same
// order as ps: sorted ascending, the k-th smallest (k from 0) is
// multiplied by len(ps)-k, then running maxima keep the adjusted values
// monotone and they are capped at 1. A result below alpha rejects its
// hypothesis with family-wise error rate alpha. NaN p-values count as 1.
func Holm(ps []float64) []float64 {
	m := len(ps)
	order := make([]int, m)
	for i := range order {
		order[i] = i
	}
	p := func(i int) float64 {
		if math.IsNaN(ps[i]) {
			return 1
		}
		return ps[i]
	}
	slices.SortStableFunc(order, func(i, j int) int { return cmpFloat(p(i), p(j)) })
	adj := make([]float64, m)
	running := 0.0
	for k, i := range order {
		running = max(running, min(float64(m-k)*p(i), 1))
		adj[i] = running
	}
	return adj
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// dropNaN returns a fresh copy of xs without NaNs and how many it left out.
func dropNaN(xs []float64) ([]float64, int) {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			out = append(out, x)
		}
	}
	return out, len(xs) - len(out)
}
