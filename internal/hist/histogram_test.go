package hist

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// exactPercentile is the HDR convention on a sorted slice: the
// ceil(q/100*n)-th smallest value.
func exactPercentile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func datasets(r *rand.Rand) map[string][]int64 {
	const n = 200_000
	uniform := make([]int64, n)
	lognormal := make([]int64, n)
	bimodal := make([]int64, n)
	for i := range uniform {
		uniform[i] = 1000 + r.Int64N(99_000)
		lognormal[i] = int64(math.Exp(10 + 0.7*r.NormFloat64()))
		if r.IntN(100) == 0 {
			bimodal[i] = 100_000_000 + r.Int64N(5_000_000) // a 100ms tail
		} else {
			bimodal[i] = 20_000 + r.Int64N(10_000)
		}
	}
	return map[string][]int64{"uniform": uniform, "lognormal": lognormal, "bimodal": bimodal}
}

func TestPercentilesWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for name, vals := range datasets(r) {
		for _, digits := range []int{2, 3} {
			h := New(digits, DefaultMax)
			for _, v := range vals {
				h.Record(v)
			}
			sorted := slices.Clone(vals)
			slices.Sort(sorted)
			tol := math.Pow10(-digits)
			for _, q := range []float64{1, 10, 50, 90, 99, 99.9, 99.99} {
				want := exactPercentile(sorted, q)
				got := h.Percentile(q)
				if rel := math.Abs(float64(got-want)) / float64(want); rel > tol {
					t.Errorf("%s, %d digits, p%v: got %d, exact %d (rel err %.5f > %v)", name, digits, q, got, want, rel, tol)
				}
				if got < want {
					t.Errorf("%s, %d digits, p%v: got %d below exact %d (HDR reports the bucket's highest equivalent value)", name, digits, q, got, want)
				}
			}
		}
	}
}

func TestExactStats(t *testing.T) {
	h := NewDefault()
	if h.Count() != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 || h.Percentile(50) != 0 || h.StdDev() != 0 {
		t.Fatalf("empty histogram not all zero")
	}
	vals := []int64{123_456, 7, 99_999_999, 4_321}
	var sum int64
	for _, v := range vals {
		h.Record(v)
		sum += v
	}
	if h.Count() != 4 || h.Min() != 7 || h.Max() != 99_999_999 {
		t.Errorf("count/min/max: %d %d %d", h.Count(), h.Min(), h.Max())
	}
	if h.Mean() != float64(sum)/4 {
		t.Errorf("mean %v, want %v", h.Mean(), float64(sum)/4)
	}
	if h.Percentile(0) != 7 || h.Percentile(100) != 99_999_999 {
		t.Errorf("p0 %d p100 %d", h.Percentile(0), h.Percentile(100))
	}
	// A single value: every percentile is that value, exactly (clamping).
	one := NewDefault()
	one.Record(41_234)
	for _, q := range []float64{0, 1, 50, 99.9, 100} {
		if got := one.Percentile(q); got != 41_234 {
			t.Errorf("single value p%v = %d", q, got)
		}
	}
}

func TestOutOfRange(t *testing.T) {
	h := New(3, 1_000_000)
	h.Record(-5)
	h.Record(5_000_000_000)
	if h.Min() != 0 {
		t.Errorf("negative value recorded as %d, want 0", h.Min())
	}
	if h.Max() != 5_000_000_000 {
		t.Errorf("max %d, want the exact out-of-range value", h.Max())
	}
	if h.Count() != 2 {
		t.Errorf("count %d", h.Count())
	}
	if p := h.Percentile(100); p != 5_000_000_000 {
		t.Errorf("p100 %d", p)
	}
}

func TestMergeEqualsRecordingAll(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	all := NewDefault()
	merged := NewDefault()
	for k := 0; k < 5; k++ {
		part := NewDefault()
		for i := 0; i < 10_000; i++ {
			v := int64(math.Exp(9 + float64(k)*0.3 + 0.5*r.NormFloat64()))
			part.Record(v)
			all.Record(v)
		}
		merged.Merge(part)
	}
	if merged.Count() != all.Count() || merged.Min() != all.Min() || merged.Max() != all.Max() || merged.Mean() != all.Mean() {
		t.Fatalf("merged stats differ: %d/%d %d/%d %d/%d", merged.Count(), all.Count(), merged.Min(), all.Min(), merged.Max(), all.Max())
	}
	for _, q := range []float64{50, 90, 99, 99.9} {
		if merged.Percentile(q) != all.Percentile(q) {
			t.Errorf("p%v: merged %d, all %d", q, merged.Percentile(q), all.Percentile(q))
		}
	}
}

func TestMergeAcrossPrecision(t *testing.T) {
	fine := New(3, DefaultMax)
	coarse := New(2, DefaultMax)
	r := rand.New(rand.NewPCG(5, 6))
	var vals []int64
	for i := 0; i < 50_000; i++ {
		v := 10_000 + r.Int64N(1_000_000)
		vals = append(vals, v)
		coarse.Record(v)
	}
	fine.Merge(coarse)
	slices.Sort(vals)
	if fine.Count() != coarse.Count() || fine.Min() != vals[0] || fine.Max() != vals[len(vals)-1] {
		t.Fatalf("merge across precision lost counts or extremes")
	}
	for _, q := range []float64{50, 99} {
		want := exactPercentile(vals, q)
		if rel := math.Abs(float64(fine.Percentile(q)-want)) / float64(want); rel > 0.01 {
			t.Errorf("p%v after cross-precision merge: %d vs %d", q, fine.Percentile(q), want)
		}
	}
	if math.Abs(fine.Mean()-coarse.Mean()) > 1e-9*coarse.Mean() {
		t.Errorf("mean changed by merge: %v vs %v", fine.Mean(), coarse.Mean())
	}
}

func TestResetClone(t *testing.T) {
	h := NewDefault()
	h.Record(10)
	c := h.Clone()
	h.Reset()
	if h.Count() != 0 || h.Max() != 0 || c.Count() != 1 || c.Max() != 10 {
		t.Errorf("reset/clone: h %d/%d, clone %d/%d", h.Count(), h.Max(), c.Count(), c.Max())
	}
	h.Record(5)
	if h.Min() != 5 {
		t.Errorf("min after reset %d", h.Min())
	}
}

func TestForEachCoversCount(t *testing.T) {
	h := NewDefault()
	for v := int64(0); v < 100_000; v += 37 {
		h.Record(v)
	}
	var n, prevHi int64 = 0, -1
	h.ForEach(func(lo, hi, c int64) {
		if lo <= prevHi || hi < lo {
			t.Fatalf("buckets out of order: [%d,%d] after %d", lo, hi, prevHi)
		}
		prevHi = hi
		n += c
	})
	if n != h.Count() {
		t.Errorf("ForEach saw %d values of %d", n, h.Count())
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, h := range []*Histogram{NewDefault(), New(2, 1<<30), New(5, 1<<20)} {
		for i := 0; i < 1000; i++ {
			h.Record(r.Int64N(1 << 22))
		}
		b, err := h.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Histogram
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if back.Count() != h.Count() || back.Min() != h.Min() || back.Max() != h.Max() || back.Mean() != h.Mean() ||
			back.SigDigits() != h.SigDigits() || !slices.Equal(back.counts, h.counts) {
			t.Errorf("round trip differs")
		}
	}
	var e Histogram
	b, _ := NewDefault().MarshalBinary()
	if err := e.UnmarshalBinary(b); err != nil || e.Count() != 0 {
		t.Errorf("empty round trip: %v", err)
	}
	if len(b) > 40 {
		t.Errorf("empty histogram encodes to %d bytes", len(b))
	}
}

func TestUnmarshalRejects(t *testing.T) {
	h := NewDefault()
	h.Record(1000)
	good, _ := h.MarshalBinary()
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("XX"), good[2:]...),
		"version":   append([]byte{'H', 'L', 9}, good[3:]...),
		"precision": append([]byte{'H', 'L', 1, 9}, good[4:]...),
		"truncated": good[:len(good)-1],
		"trailing":  append(slices.Clone(good), 0),
	} {
		var x Histogram
		if err := x.UnmarshalBinary(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", name, err)
		}
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	h := NewDefault()
	v := int64(1)
	if n := testing.AllocsPerRun(1000, func() { h.Record(v); v = v*3 + 7 }); n != 0 {
		t.Errorf("Record allocates %v times per call", n)
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, h := range []*Histogram{NewDefault(), New(1, 1000), New(4, 1<<40)} {
		h.Record(12345)
		h.Record(7)
		b, _ := h.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Histogram
		if err := h.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := h.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var again Histogram
		if err := again.UnmarshalBinary(out); err != nil {
			t.Fatalf("re-encoded histogram does not decode: %v", err)
		}
		if again.Count() != h.Count() || again.Percentile(50) != h.Percentile(50) {
			t.Fatal("re-encoding changed the histogram")
		}
	})
}

func BenchmarkRecord(b *testing.B) {
	h := NewDefault()
	b.ReportAllocs()
	v := int64(20_000)
	for i := 0; i < b.N; i++ {
		h.Record(v + int64(i&1023))
	}
}

func BenchmarkPercentile(b *testing.B) {
	h := NewDefault()
	for i := int64(0); i < 100_000; i++ {
		h.Record(10_000 + i*7)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.Percentile(99)
	}
}

func BenchmarkMerge(b *testing.B) {
	a, c := NewDefault(), NewDefault()
	c.Record(1000)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		a.Merge(c)
	}
}
