package hist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Default precision used by latlab.
const (
	DefaultSigDigits = 3
	DefaultMax       = int64(1) << 36 // ~68.7 s in ns
)

// maxAllowedValue bounds maxValue so that bucket arithmetic stays in range.
const maxAllowedValue = int64(1) << 62

// Histogram is a log-linear latency histogram. The zero value is not
// usable; create one with New or NewDefault. It is not safe for concurrent
// use: give each recording thread its own and Merge them afterwards.
type Histogram struct {
	sigDigits   int
	maxValue    int64
	subCount    int64 // sub-buckets per bucket (a power of two)
	subMag      int   // log2(subCount)
	halfMag     int   // log2(subCount/2)
	subMask     int64 // subCount-1
	bucketCount int

	counts []int64
	total  int64
	min    int64
	max    int64
	sum    float64
}

// New returns an empty histogram that tracks values in [0, maxValue] with
// sigDigits significant decimal digits of precision (1..5). Values above
// maxValue are counted in the top bucket, but Max still reports the exact
// largest value recorded. It panics on arguments outside those ranges
// (a programming error, like make with a negative size).
func New(sigDigits int, maxValue int64) *Histogram {
	if sigDigits < 1 || sigDigits > 5 {
		panic(fmt.Sprintf("hist: sigDigits %d outside 1..5", sigDigits))
	}
	if maxValue < 1 || maxValue > maxAllowedValue {
		panic(fmt.Sprintf("hist: maxValue %d outside 1..2^62", maxValue))
	}
	h := &Histogram{sigDigits: sigDigits, maxValue: maxValue}
	single := 2 * int64(math.Pow10(sigDigits))
	h.subMag = bits.Len64(uint64(single - 1)) // ceil(log2(single))
	h.subCount = 1 << h.subMag
	h.halfMag = h.subMag - 1
	h.subMask = h.subCount - 1
	// Smallest number of buckets whose range covers maxValue.
	h.bucketCount = 1
	for r := h.subCount; r <= maxValue; r <<= 1 {
		h.bucketCount++
	}
	h.counts = make([]int64, (h.bucketCount+1)<<h.halfMag)
	h.min = math.MaxInt64
	return h
}

// NewDefault returns New(DefaultSigDigits, DefaultMax).
func NewDefault() *Histogram { return New(DefaultSigDigits, DefaultMax) }

// SigDigits is the histogram's precision in significant decimal digits.
func (h *Histogram) SigDigits() int { return h.sigDigits }

// MaxTrackable is the largest value the buckets resolve; larger values are
// counted in the top bucket.
func (h *Histogram) MaxTrackable() int64 { return h.maxValue }

func (h *Histogram) index(v int64) int {
	b := bits.Len64(uint64(v|h.subMask)) - h.subMag
	sb := v >> uint(b)
	return (b+1)<<h.halfMag + int(sb) - 1<<h.halfMag
}

// lowest returns the smallest value that maps to counts index i.
func (h *Histogram) lowest(i int) int64 {
	b := i>>h.halfMag - 1
	sb := int64(i&(1<<h.halfMag-1)) + 1<<h.halfMag
	if b < 0 {
		sb -= 1 << h.halfMag
		b = 0
	}
	return sb << uint(b)
}

// width returns the number of distinct values that map to index i.
func (h *Histogram) width(i int) int64 {
	b := i>>h.halfMag - 1
	if b < 0 {
		b = 0
	}
	return 1 << uint(b)
}

// Record adds one value. It never allocates; negative values count as 0.
func (h *Histogram) Record(v int64) { h.RecordN(v, 1) }

// RecordN adds n occurrences of v (n <= 0 is ignored).
func (h *Histogram) RecordN(v int64, n int64) {
	if n <= 0 {
		return
	}
	if v < 0 {
		v = 0
	}
	c := v
	if c > h.maxValue {
		c = h.maxValue
	}
	h.counts[h.index(c)] += n
	h.total += n
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.sum += float64(v) * float64(n)
}

// Count is the number of values recorded.
func (h *Histogram) Count() int64 { return h.total }

// Min is the smallest value recorded (exact); 0 if empty.
func (h *Histogram) Min() int64 {
	if h.total == 0 {
		return 0
	}
	return h.min
}

// Max is the largest value recorded (exact); 0 if empty.
func (h *Histogram) Max() int64 { return h.max }

// Mean is the exact arithmetic mean; 0 if empty.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// StdDev is the standard deviation computed from bucket midpoints.
func (h *Histogram) StdDev() float64 {
	if h.total == 0 {
		return 0
	}
	mean := h.Mean()
	var acc float64
	h.ForEach(func(lo, hi, n int64) {
		d := (float64(lo)+float64(hi))/2 - mean
		acc += d * d * float64(n)
	})
	return math.Sqrt(acc / float64(h.total))
}

// Percentile returns the value below which q percent of the values fall:
// the highest value equivalent to the bucket holding the
// ceil(q/100*count)-th smallest value, clamped to [Min, Max]. q <= 0 gives
// Min, q >= 100 gives Max, an empty histogram 0.
func (h *Histogram) Percentile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	if q <= 0 || math.IsNaN(q) {
		return h.Min()
	}
	if q >= 100 {
		return h.max
	}
	rank := int64(math.Ceil(q / 100 * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	var cum int64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		cum += c
		if cum >= rank {
			v := h.lowest(i) + h.width(i) - 1
			return min(max(v, h.Min()), h.max)
		}
	}
	return h.max
}

// ForEach calls fn for every non-empty bucket in ascending order with the
// inclusive range of values it holds and its count.
func (h *Histogram) ForEach(fn func(lo, hi int64, count int64)) {
	for i, c := range h.counts {
		if c != 0 {
			lo := h.lowest(i)
			fn(lo, lo+h.width(i)-1, c)
		}
	}
}

func (h *Histogram) sameLayout(o *Histogram) bool {
	return h.sigDigits == o.sigDigits && len(h.counts) == len(o.counts)
}

// Merge adds every value of o into h. Histograms of different precision or
// range merge too: o's buckets are re-recorded at their midpoints, so the
// result is as precise as the coarser of the two.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.total == 0 {
		return
	}
	if h.sameLayout(o) {
		for i, c := range o.counts {
			h.counts[i] += c
		}
		h.total += o.total
		h.sum += o.sum
	} else {
		// Midpoints must not move the exact extremes or the exact sum.
		sum, mn, mx := h.sum, h.min, h.max
		for i, c := range o.counts {
			if c != 0 {
				lo := o.lowest(i)
				h.RecordN(lo+(o.width(i)-1)/2, c)
			}
		}
		h.sum, h.min, h.max = sum+o.sum, mn, mx
	}
	if o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
}

// Reset empties the histogram, keeping its layout and memory.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.total, h.max, h.sum = 0, 0, 0
	h.min = math.MaxInt64
}

// Clone returns an independent copy.
func (h *Histogram) Clone() *Histogram {
	c := *h
	c.counts = append([]int64(nil), h.counts...)
	return &c
}

// ErrCorrupt is wrapped by every UnmarshalBinary error.
var ErrCorrupt = errors.New("corrupt histogram encoding")

const encodingVersion = 1

// maxDecodedCounters bounds the layout UnmarshalBinary will allocate.
const maxDecodedCounters = 1 << 22

// MarshalBinary encodes the histogram compactly: a header (version,
// precision, range, min, max, count, sum) and the non-empty buckets as
// varint (index delta, count) pairs.
func (h *Histogram) MarshalBinary() ([]byte, error) {
	b := []byte{'H', 'L', encodingVersion, byte(h.sigDigits)}
	b = binary.AppendUvarint(b, uint64(h.maxValue))
	b = binary.AppendUvarint(b, uint64(h.Min()))
	b = binary.AppendUvarint(b, uint64(h.max))
	b = binary.AppendUvarint(b, uint64(h.total))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(h.sum))
	nz := 0
	for _, c := range h.counts {
		if c != 0 {
			nz++
		}
	}
	b = binary.AppendUvarint(b, uint64(nz))
	prev := -1
	for i, c := range h.counts {
		if c != 0 {
			b = binary.AppendUvarint(b, uint64(i-prev))
			b = binary.AppendUvarint(b, uint64(c))
			prev = i
		}
	}
	return b, nil
}

// UnmarshalBinary replaces h with the decoded histogram. It never panics
// on malformed input; every error wraps ErrCorrupt.
func (h *Histogram) UnmarshalBinary(data []byte) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if len(data) < 4 || data[0] != 'H' || data[1] != 'L' {
		return bad("missing header")
	}
	if data[2] != encodingVersion {
		return bad("encoding version %d, want %d", data[2], encodingVersion)
	}
	sig := int(data[3])
	p := data[4:]
	next := func(what string) (uint64, error) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, bad("truncated %s", what)
		}
		p = p[n:]
		return v, nil
	}
	var hdr [4]uint64
	for i, what := range []string{"range", "min", "max", "count"} {
		v, err := next(what)
		if err != nil {
			return err
		}
		hdr[i] = v
	}
	maxValue, mn, mx, total := hdr[0], hdr[1], hdr[2], hdr[3]
	if sig < 1 || sig > 5 {
		return bad("precision %d outside 1..5", sig)
	}
	if maxValue < 1 || maxValue > uint64(maxAllowedValue) {
		return bad("range %d outside 1..2^62", maxValue)
	}
	if mn > mx || mx > math.MaxInt64 || total > math.MaxInt64 {
		return bad("min %d, max %d, count %d inconsistent", mn, mx, total)
	}
	// Check the layout's size before allocating it.
	subMag := bits.Len64(uint64(2*int64(math.Pow10(sig)) - 1))
	buckets := 1
	for r := int64(1) << subMag; r <= int64(maxValue); r <<= 1 {
		buckets++
	}
	if (buckets+1)<<(subMag-1) > maxDecodedCounters {
		return bad("layout of %d counters too large", (buckets+1)<<(subMag-1))
	}
	if len(p) < 8 {
		return bad("truncated sum")
	}
	sum := math.Float64frombits(binary.LittleEndian.Uint64(p))
	p = p[8:]
	if math.IsNaN(sum) || math.IsInf(sum, 0) || sum < 0 {
		return bad("sum %v", sum)
	}
	nz, err := next("bucket count")
	if err != nil {
		return err
	}
	out := New(sig, int64(maxValue))
	if nz > uint64(len(out.counts)) {
		return bad("%d buckets in a layout of %d", nz, len(out.counts))
	}
	idx := -1
	var seen uint64
	for k := uint64(0); k < nz; k++ {
		d, err := next("bucket index")
		if err != nil {
			return err
		}
		c, err := next("bucket count")
		if err != nil {
			return err
		}
		if d == 0 || d > uint64(len(out.counts)) || idx+int(d) >= len(out.counts) {
			return bad("bucket index out of range")
		}
		if c == 0 || c > math.MaxInt64-seen {
			return bad("bucket count %d", c)
		}
		idx += int(d)
		out.counts[idx] = int64(c)
		seen += c
	}
	if len(p) != 0 {
		return bad("%d trailing bytes", len(p))
	}
	if seen != total {
		return bad("buckets hold %d values, header says %d", seen, total)
	}
	out.total = int64(total)
	out.sum = sum
	if total > 0 {
		out.min, out.max = int64(mn), int64(mx)
	} else if mn != 0 || mx != 0 {
		return bad("empty histogram with min %d max %d", mn, mx)
	}
	*h = *out
	return nil
}
