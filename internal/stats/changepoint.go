package stats

import (
	"math"
	"math/rand/v2"
	"slices"
)

// CPOptions tune ChangePoints. Zero fields take the defaults.
type CPOptions struct {
	// Permutations is the number of permutations of the significance test
	// (default 199: p-values down to 0.005).
	Permutations int
	// Alpha is the significance level a change point must reach (default
	// 0.05). On a series without any shift, the chance of reporting one
	// is about Alpha: each further split is only tested once the previous
	// one was accepted.
	Alpha float64
	// MinSize is the smallest number of points on either side of a change
	// point (default 3, at least 2).
	MinSize int
}

func (o *CPOptions) defaults() {
	if o.Permutations <= 0 {
		o.Permutations = 199
	}
	if o.Alpha <= 0 {
		o.Alpha = 0.05
	}
	if o.MinSize < 2 {
		o.MinSize = 3
	}
}

// ChangePoint is a point where a series shifts.
type ChangePoint struct {
	// Index is the first point after the shift (series[Index] is the
	// first run of the new level).
	Index int
	// BeforeMedian and AfterMedian are the medians of the segments either
	// side, up to the neighbouring change points; BeforeCI and AfterCI
	// their 95% order-statistic intervals.
	BeforeMedian, AfterMedian float64
	BeforeCI, AfterCI         Estimate
	// P is the permutation p-value at which the point was accepted; Q the
	// E-Divisive statistic.
	P, Q float64
}

// ChangePoints finds the points where the distribution of series shifts,
// with E-Divisive means (Matteson & James 2014, with exponent 1, as
// MongoDB's signal-processing and Apache Otava use it): hierarchical
// bisection, each time splitting the segment at the point that maximises
// the energy-distance statistic Q between its two sides, and keeping the
// split only if a permutation test (points shuffled within each current
// segment, rng) finds Q significant at Alpha. The result is ordered by
// Index. NaN points are ignored (indices still refer to series).
func ChangePoints(series []float64, opts CPOptions, rng *rand.Rand) []ChangePoint {
	opts.defaults()
	// Compact away NaNs, remembering where each point came from.
	var xs []float64
	var pos []int
	for i, v := range series {
		if !math.IsNaN(v) {
			xs = append(xs, v)
			pos = append(pos, i)
		}
	}
	var cuts []int             // accepted split points in xs, sorted
	pq := map[int][2]float64{} // split → p, Q
	scratch := make([]float64, len(xs))
	for {
		bounds := append(append([]int{0}, cuts...), len(xs))
		// The best candidate over all current segments.
		bestQ, bestTau := 0.0, -1
		for s := 0; s+1 < len(bounds); s++ {
			lo, hi := bounds[s], bounds[s+1]
			tau, q := bestSplit(xs[lo:hi], opts.MinSize)
			if tau >= 0 && q > bestQ {
				bestQ, bestTau = q, lo+tau
			}
		}
		if bestTau < 0 {
			break
		}
		// Permutation test: shuffle within every segment, take the best Q.
		exceed := 0
		for range opts.Permutations {
			copy(scratch, xs)
			maxQ := 0.0
			for s := 0; s+1 < len(bounds); s++ {
				seg := scratch[bounds[s]:bounds[s+1]]
				rng.Shuffle(len(seg), func(i, j int) { seg[i], seg[j] = seg[j], seg[i] })
				if _, q := bestSplit(seg, opts.MinSize); q > maxQ {
					maxQ = q
				}
			}
			if maxQ >= bestQ {
				exceed++
			}
		}
		p := float64(exceed+1) / float64(opts.Permutations+1)
		if p >= opts.Alpha {
			break
		}
		cuts = append(cuts, bestTau)
		slices.Sort(cuts)
		pq[bestTau] = [2]float64{p, bestQ}
	}
	out := make([]ChangePoint, 0, len(cuts))
	for k, c := range cuts {
		lo, hi := 0, len(xs)
		if k > 0 {
			lo = cuts[k-1]
		}
		if k+1 < len(cuts) {
			hi = cuts[k+1]
		}
		before, after := MedianCI(xs[lo:c], 0.95), MedianCI(xs[c:hi], 0.95)
		out = append(out, ChangePoint{
			Index: pos[c], BeforeMedian: before.Center, AfterMedian: after.Center,
			BeforeCI: before, AfterCI: after, P: pq[c][0], Q: pq[c][1],
		})
	}
	return out
}

// bestSplit returns the split tau (xs[:tau] | xs[tau:]) maximising the
// E-Divisive statistic
//
//	Q(tau) = tau(n-tau)/n · (2/(tau(n-tau)) Σ|a-b| − Σ|a-a'|/C(tau,2) − Σ|b-b'|/C(n-tau,2))
//
// over tau in [minSize, n-minSize], and that Q; -1 if no split fits. It
// runs in O(n²): the within-side sums are built incrementally.
func bestSplit(xs []float64, minSize int) (int, float64) {
	n := len(xs)
	if n < 2*minSize {
		return -1, 0
	}
	// left[t]: Σ|xi-xk| over i<k<t; right[t]: over t<=j<k<n.
	left := make([]float64, n+1)
	right := make([]float64, n+1)
	for t := 1; t <= n; t++ {
		s := 0.0
		for i := 0; i < t-1; i++ {
			s += math.Abs(xs[i] - xs[t-1])
		}
		left[t] = left[t-1] + s
	}
	for t := n - 1; t >= 0; t-- {
		s := 0.0
		for j := t + 1; j < n; j++ {
			s += math.Abs(xs[t] - xs[j])
		}
		right[t] = right[t+1] + s
	}
	total := left[n]
	bestTau, bestQ := -1, math.Inf(-1)
	for tau := minSize; tau <= n-minSize; tau++ {
		a, b := float64(tau), float64(n-tau)
		between := total - left[tau] - right[tau]
		q := a * b / float64(n) * (2*between/(a*b) - left[tau]/(a*(a-1)/2) - right[tau]/(b*(b-1)/2))
		if q > bestQ {
			bestTau, bestQ = tau, q
		}
	}
	return bestTau, bestQ
}
