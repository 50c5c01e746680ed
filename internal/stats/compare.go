package stats

// Verdict is the one-phrase outcome of a Comparison.
type Verdict string

// The possible verdicts.
const (
	Better       Verdict = "better"
	Worse        Verdict = "worse"
	NoDifference Verdict = "no significant difference"
	TooFewTrials Verdict = "too few trials"
)

// Comparison compares per-trial values of a base and a new configuration,
// benchstat-style: medians with confidence intervals, the percentage
// change of the medians and a two-sided Mann–Whitney U test.
type Comparison struct {
	// Base and New summarise each side (MedianCI).
	Base, New Estimate
	// DeltaPct is (New.Center-Base.Center)/Base.Center*100; ±Inf (or NaN
	// when both are 0) if Base.Center is 0.
	DeltaPct float64
	// U is the Mann–Whitney U statistic of New against Base; above
	// New.N*Base.N/2 the new values tend to be larger.
	U float64
	// P is the two-sided Mann–Whitney p-value.
	P float64
	// PAdjusted is P after Holm–Bonferroni adjustment across the
	// comparisons of one report (AdjustComparisons); P until then.
	PAdjusted float64
	// Significant is PAdjusted < alpha, and never true with too few trials.
	Significant bool
	// HigherIsBetter records the metric's direction (throughput: true,
	// latency: false), so that AdjustComparisons can redo the verdict.
	HigherIsBetter bool
	// Paired marks a ComparePaired comparison: P is then a Wilcoxon
	// signed-rank p-value on per-round log ratios and U is its W+.
	Paired bool
	// Verdict sums the comparison up.
	Verdict Verdict
	// Method names the test, the interval and the adjustment the verdict
	// came from (MethodPaired or MethodUnpaired), for every output to
	// state.
	Method string
	// Ratio (paired comparisons) is new/base: the Hodges–Lehmann estimate
	// of the per-round ratio and its interval at the family's level
	// 1 - alpha/Family (Bonferroni), the dual of the signed-rank test:
	// Significant exactly when it excludes 1.
	Ratio Estimate
	// Family is the number of comparisons the adjustment covered.
	Family int

	logRatios []float64
}

// The methods a Comparison names.
const (
	MethodPaired   = "Wilcoxon signed-rank on per-round log ratios, Hodges-Lehmann CI (its dual), Bonferroni-adjusted"
	MethodUnpaired = "Mann-Whitney U, Holm-adjusted"
)

// Compare compares the per-trial values of two configurations. Medians
// get confidence intervals at the given confidence; the difference is
// significant when the two-sided Mann–Whitney p-value is below alpha.
//
// The verdict is "too few trials" when the sample sizes are such that no
// outcome, not even complete separation, could give p < alpha (computed
// from the exact U distribution: 2 vs 2, 3 vs 3 or 3 vs 4 at 0.05, for
// instance). Otherwise a significant difference is "better" or "worse"
// according to higherIsBetter and the sign of the median change (the
// direction of U if the medians are equal), and anything else is "no
// significant difference".
//
// Compare treats the comparison as the only one; when a report makes
// several, call AdjustComparisons on all of them.
func Compare(base, new []float64, higherIsBetter bool, alpha, confidence float64) Comparison {
	c := Comparison{
		Base:           MedianCI(base, confidence),
		New:            MedianCI(new, confidence),
		HigherIsBetter: higherIsBetter,
	}
	c.DeltaPct = (c.New.Center - c.Base.Center) / c.Base.Center * 100
	c.U, c.P = MannWhitney(new, base)
	c.PAdjusted = c.P
	c.Method, c.Family = MethodUnpaired, 1
	c.decide(alpha)
	return c
}

// AdjustComparisons adjusts the comparisons of one report for their
// number, so that the chance of any false "better" or "worse" in the
// report stays below alpha, and redoes PAdjusted, Significant and Verdict.
// Paired comparisons get Bonferroni: their ratio interval is recomputed at
// 1 - alpha/m, so interval and verdict stay duals (Holm's step-down has no
// matching interval). Unpaired ones get Holm–Bonferroni over the unpaired
// comparisons. Comparisons with too few trials stay in the family (they
// were tested) and keep their verdict.
func AdjustComparisons(cs []Comparison, alpha float64) {
	var unpaired []int
	paired := 0
	for i := range cs {
		if cs[i].Paired {
			paired++
		} else {
			unpaired = append(unpaired, i)
		}
	}
	for i := range cs {
		if cs[i].Paired {
			cs[i].setFamily(alpha, paired)
		}
	}
	ps := make([]float64, len(unpaired))
	for k, i := range unpaired {
		ps[k] = cs[i].P
	}
	for k, p := range Holm(ps) {
		c := &cs[unpaired[k]]
		c.PAdjusted, c.Family = p, len(unpaired)
		c.decide(alpha)
	}
}

// decide sets Significant and Verdict of an unpaired comparison from
// PAdjusted (paired ones: setFamily).
func (c *Comparison) decide(alpha float64) {
	c.Significant = false
	switch {
	case !c.Paired && minMannWhitneyP(c.Base.N, c.New.N) >= alpha:
		c.Verdict = TooFewTrials
	case !(c.PAdjusted < alpha):
		c.Verdict = NoDifference
	default:
		c.Significant = true
		up := c.New.Center > c.Base.Center
		if c.New.Center == c.Base.Center {
			up = c.U > float64(c.Base.N*c.New.N)/2
		}
		if up == c.HigherIsBetter {
			c.Verdict = Better
		} else {
			c.Verdict = Worse
		}
	}
}
