package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/latlab/latlab/internal/hist"
)

// DefaultBootstrapIters is the number of bootstrap iterations used when
// BootstrapQuantileRatio is given iters <= 0.
const DefaultBootstrapIters = 1000

// BootstrapQuantileRatio estimates the ratio of a latency percentile of
// two configurations, each measured in several trials, with a percentile
// cluster bootstrap over whole trials.
//
// q is a percentile in [0, 100], exactly as in hist.Histogram.Percentile
// (99 for p99, not 0.99). The point estimate Center is
// Merge(num...).Percentile(q) / Merge(den...).Percentile(q): percentiles
// of merged histograms, never averages of per-trial percentiles. Each
// bootstrap iteration draws len(num) numerator trials and len(den)
// denominator trials with replacement, independently for the two sides,
// merges each side's draw and takes the same ratio; Lo and Hi are the
// (1-confidence)/2 and (1+confidence)/2 quantiles of the iters ratios.
// Resampling whole trials keeps the trial-to-trial variation, which
// dominates at high percentiles, in the interval.
//
// Nil and empty trials are skipped (counted in Skipped). TooFew is set
// when either side has fewer than 2 trials left, or when the denominator
// percentile is 0; the other fields are then zero. Confidence is the
// nominal level: with few trials (say under 10 a side) a percentile
// bootstrap is known to be somewhat too narrow.
//
// The draws come only from rng, so a fixed seed gives a fixed result; a
// nil rng means rand.New(rand.NewPCG(1, 2)).
func BootstrapQuantileRatio(num, den []*hist.Histogram, q float64, iters int, confidence float64, rng *rand.Rand) Estimate {
	if iters <= 0 {
		iters = DefaultBootstrapIters
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 2))
	}
	ns, skipN := newSide(num)
	ds, skipD := newSide(den)
	e := Estimate{N: min(len(ns.trials), len(ds.trials)), Skipped: skipN + skipD}
	if e.N < 2 {
		e.TooFew = true
		return e
	}
	qn, qd := ns.percentile(nil, q), ds.percentile(nil, q)
	if qd == 0 {
		e.TooFew = true
		return e
	}
	e.Center = float64(qn) / float64(qd)
	e.Confidence = confidence

	// wN[i] is how many times numerator trial i was drawn; likewise wD.
	wN, wD := make([]int64, len(ns.trials)), make([]int64, len(ds.trials))
	ratios := make([]float64, 0, iters)
	for range iters {
		draw(wN, rng)
		draw(wD, rng)
		d := ds.percentile(wD, q)
		if d == 0 {
			e.Skipped++
			continue
		}
		ratios = append(ratios, float64(ns.percentile(wN, q))/float64(d))
	}
	if len(ratios) == 0 {
		return Estimate{N: e.N, TooFew: true, Skipped: e.Skipped}
	}
	slices.Sort(ratios)
	b := float64(len(ratios))
	lo := int(math.Floor((1 - confidence) / 2 * b))
	hi := int(math.Ceil((1+confidence)/2*b)) - 1
	e.Lo = ratios[min(max(lo, 0), len(ratios)-1)]
	e.Hi = ratios[min(max(hi, 0), len(ratios)-1)]
	return e
}

// draw fills w with the multiplicities of len(w) draws with replacement.
func draw(w []int64, rng *rand.Rand) {
	clear(w)
	for range w {
		w[rng.IntN(len(w))]++
	}
}

// side is one configuration's trials, converted once so that a resampled
// merge never touches 27k-counter histograms: values are the distinct
// bucket upper bounds of all its trials, and each trial keeps its
// cumulative count at every one of them. The merged cumulative count of a
// draw is then a weighted sum over trials, monotone in the value, and the
// percentile is a binary search: O(trials × log(values)) per iteration.
// Memory: trials × distinct buckets × 8 bytes.
type side struct {
	values []int64 // distinct bucket upper bounds, ascending
	trials []trial
}

type trial struct {
	cum      []int64 // cum[j]: values in buckets with upper bound <= values[j]
	total    int64
	min, max int64 // exact extremes, as hist.Histogram.Min/Max
}

// newSide converts the histograms; nil or empty ones are skipped. Trials
// of one layout share bucket bounds; mixed layouts are merged by upper
// bound, a close approximation of hist's Merge.
func newSide(hs []*hist.Histogram) (*side, int) {
	s := &side{}
	skipped := 0
	var kept []*hist.Histogram
	for _, h := range hs {
		if h == nil || h.Count() == 0 {
			skipped++
			continue
		}
		kept = append(kept, h)
		h.ForEach(func(_, hi, _ int64) { s.values = append(s.values, hi) })
	}
	slices.Sort(s.values)
	s.values = slices.Compact(s.values)
	for _, h := range kept {
		t := trial{cum: make([]int64, len(s.values)), total: h.Count(), min: h.Min(), max: h.Max()}
		h.ForEach(func(_, hi, n int64) {
			j, _ := slices.BinarySearch(s.values, hi)
			t.cum[j] += n
		})
		for j := 1; j < len(t.cum); j++ {
			t.cum[j] += t.cum[j-1]
		}
		s.trials = append(s.trials, t)
	}
	return s, skipped
}

// percentile returns Percentile(q) of the merge of the trials, trial i
// taken w[i] times (every trial once if w is nil), computed as hist does:
// the upper bound of the bucket holding the ceil(q/100*count)-th value,
// clamped to the exact [min, max] of the merged trials.
func (s *side) percentile(w []int64, q float64) int64 {
	weight := func(i int) int64 {
		if w == nil {
			return 1
		}
		return w[i]
	}
	var total int64
	mn, mx := int64(math.MaxInt64), int64(0)
	for i, t := range s.trials {
		if weight(i) > 0 {
			total += weight(i) * t.total
			mn, mx = min(mn, t.min), max(mx, t.max)
		}
	}
	if q <= 0 || math.IsNaN(q) {
		return mn
	}
	if q >= 100 {
		return mx
	}
	rank := max(int64(math.Ceil(q/100*float64(total))), 1)
	// First value at which the merged cumulative count reaches rank.
	j := sort.Search(len(s.values), func(j int) bool {
		var cum int64
		for i, t := range s.trials {
			cum += weight(i) * t.cum[j]
		}
		return cum >= rank
	})
	if j == len(s.values) {
		return mx
	}
	return min(max(s.values[j], mn), mx)
}
