package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/latlab/latlab/internal/hist"
)

// trials returns n histograms of values ~ scale × lognormal(ln 50µs,
// 0.4) with a per-trial drift of a few percent (trial-to-trial variation,
// what the cluster bootstrap is about).
func trials(n, perTrial int, scale float64, seed uint64) []*hist.Histogram {
	r := rand.New(rand.NewPCG(seed, 7))
	hs := make([]*hist.Histogram, n)
	for i := range hs {
		h := hist.NewDefault()
		drift := 1 + 0.03*r.NormFloat64()
		for range perTrial {
			h.Record(int64(scale * drift * 50e3 * math.Exp(0.4*r.NormFloat64())))
		}
		hs[i] = h
	}
	return hs
}

func mergedPercentile(hs []*hist.Histogram, q float64) int64 {
	m := hist.NewDefault()
	for _, h := range hs {
		m.Merge(h)
	}
	return m.Percentile(q)
}

// The sparse resampled merge must give exactly what Merge+Percentile give,
// including repeated trials, extreme percentiles and the min/max clamp.
func TestSidePercentileMatchesHist(t *testing.T) {
	hs := trials(3, 2000, 1, 1)
	hs[2].Record(7)          // an exact min below every bucket bound
	hs[1].Record(40_000_000) // a lone high value
	s, _ := newSide(hs)
	// Multiplicities per trial; nil means every trial once.
	weights := [][]int64{nil, {2, 0, 1}, {0, 1, 0}, {0, 0, 3}, {1, 1, 0}}
	for _, w := range weights {
		picked := hs
		if w != nil {
			picked = nil
			for i, k := range w {
				for range k {
					picked = append(picked, hs[i])
				}
			}
		}
		for _, q := range []float64{0, 0.01, 1, 50, 90, 99, 99.9, 99.99, 100} {
			if got, want := s.percentile(w, q), mergedPercentile(picked, q); got != want {
				t.Errorf("weights %v q %v: sparse %d, hist %d", w, q, got, want)
			}
		}
	}
}

func TestBootstrapQuantileRatio(t *testing.T) {
	den := trials(7, 20000, 1, 10)
	num := trials(7, 20000, 1.2, 20) // independent draws, p99 truly ×1.2
	same := trials(7, 20000, 1, 30)  // same distribution as den
	tests := []struct {
		name     string
		num, den []*hist.Histogram
		q        float64
		contains []float64
		excludes []float64
	}{
		{"p99 scaled by 1.2", num, den, 99, []float64{1.2}, []float64{1.0}},
		{"p50 scaled by 1.2", num, den, 50, []float64{1.2}, []float64{1.0}},
		{"same distribution", same, den, 99, []float64{1.0}, []float64{1.2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := BootstrapQuantileRatio(tc.num, tc.den, tc.q, 1000, 0.95, rand.New(rand.NewPCG(1, 2)))
			want := float64(mergedPercentile(tc.num, tc.q)) / float64(mergedPercentile(tc.den, tc.q))
			if e.Center != want {
				t.Errorf("Center %v, want merged-percentile ratio %v", e.Center, want)
			}
			if e.TooFew || e.N != 7 || e.Confidence != 0.95 || e.Skipped != 0 || !(e.Lo <= e.Center && e.Center <= e.Hi) {
				t.Errorf("bad estimate %+v", e)
			}
			for _, x := range tc.contains {
				if x < e.Lo || x > e.Hi {
					t.Errorf("CI [%v, %v] does not contain %v", e.Lo, e.Hi, x)
				}
			}
			for _, x := range tc.excludes {
				if x >= e.Lo && x <= e.Hi {
					t.Errorf("CI [%v, %v] contains %v", e.Lo, e.Hi, x)
				}
			}
		})
	}
}

func TestBootstrapDeterministic(t *testing.T) {
	den := trials(5, 5000, 1, 1)
	num := trials(5, 5000, 1.1, 2)
	run := func(seed uint64) Estimate {
		return BootstrapQuantileRatio(num, den, 99, 500, 0.9, rand.New(rand.NewPCG(seed, 0)))
	}
	a, b, c := run(42), run(42), run(43)
	if a != b {
		t.Errorf("same seed, different results: %+v vs %+v", a, b)
	}
	if a.Lo == c.Lo && a.Hi == c.Hi {
		t.Errorf("different seeds, identical interval %+v: rng not used?", a)
	}
	if a.Center != c.Center {
		t.Errorf("Center depends on the seed: %v vs %v", a.Center, c.Center)
	}
	if nilRNG := BootstrapQuantileRatio(num, den, 99, 500, 0.9, nil); nilRNG != BootstrapQuantileRatio(num, den, 99, 500, 0.9, nil) {
		t.Errorf("nil rng not deterministic")
	}
}

func TestBootstrapTooFew(t *testing.T) {
	hs := trials(3, 1000, 1, 1)
	empty := hist.NewDefault()
	zero := hist.NewDefault()
	zero.Record(0)
	rng := func() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }
	tests := []struct {
		name     string
		num, den []*hist.Histogram
		n        int
		skipped  int
		tooFew   bool
	}{
		{"one trial", hs[:1], hs, 1, 0, true},
		{"no trials", nil, hs, 0, 0, true},
		{"nil and empty skipped", []*hist.Histogram{hs[0], nil, empty}, hs, 1, 2, true},
		{"zero denominator", hs, []*hist.Histogram{zero, zero}, 2, 0, true},
		{"two trials with an empty one", []*hist.Histogram{hs[0], empty, hs[1]}, hs, 2, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := BootstrapQuantileRatio(tc.num, tc.den, 99, 100, 0.95, rng())
			if e.TooFew != tc.tooFew || e.N != tc.n || e.Skipped != tc.skipped {
				t.Errorf("got %+v, want N %d Skipped %d TooFew %v", e, tc.n, tc.skipped, tc.tooFew)
			}
			if e.TooFew && (e.Center != 0 || e.Lo != 0 || e.Hi != 0 || e.Confidence != 0) {
				t.Errorf("TooFew estimate pretends: %+v", e)
			}
		})
	}
}

// BenchmarkBootstrapQuantileRatio: 7+7 trials of default (27k-bucket)
// histograms with 100k values each, 1000 iterations, p99.
func BenchmarkBootstrapQuantileRatio(b *testing.B) {
	den := trials(7, 100000, 1, 1)
	num := trials(7, 100000, 1.2, 2)
	b.ReportAllocs()
	for b.Loop() {
		BootstrapQuantileRatio(num, den, 99, 1000, 0.95, rand.New(rand.NewPCG(1, 2)))
	}
}

// draw must resample with replacement: multiplicities summing to the
// number of trials, some trials drawn more than once.
func TestDraw(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	w := make([]int64, 7)
	repeats := 0
	for range 100 {
		draw(w, rng)
		var sum int64
		for _, k := range w {
			sum += k
			if k > 1 {
				repeats++
			}
		}
		if sum != int64(len(w)) {
			t.Fatalf("multiplicities %v sum to %d, want %d", w, sum, len(w))
		}
	}
	if repeats == 0 {
		t.Errorf("no trial ever drawn twice in 100 draws of 7")
	}
}
