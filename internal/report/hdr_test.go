package report

import (
	"bytes"
	"io"
	"math"
	"strings"
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// TestHlogReadsBackWithHdrHistogram writes a run as an interval log and
// reads it with HdrHistogram's own log reader: one interval per trial, in
// order, tagged with the configuration, the same count and percentiles as
// latlab's histogram (to the histogram's precision).
func TestHlogReadsBackWithHdrHistogram(t *testing.T) {
	run, o := synthetic()
	var buf bytes.Buffer
	if err := WriteHlog(&buf, run, o); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#[StartTime: ", "#[BaseTime: ", `"StartTimestamp","Interval_Length"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("hlog lacks %q:\n%s", want, buf.String())
		}
	}
	r := hdrhistogram.NewHistogramLogReader(&buf)
	var prevStart int64
	for i, tr := range o.Trials {
		h, err := r.NextIntervalHistogram()
		if err != nil || h == nil {
			t.Fatalf("interval %d: %v (nil=%v)", i, err, h == nil)
		}
		if h.Tag() != tr.Config.Key() {
			t.Errorf("interval %d tag %q, want %q", i, h.Tag(), tr.Config.Key())
		}
		if h.TotalCount() != tr.Result.Hist.Count() {
			t.Errorf("interval %d count %d, want %d", i, h.TotalCount(), tr.Result.Hist.Count())
		}
		for _, q := range []float64{50, 90, 99, 100} {
			got, want := float64(h.ValueAtQuantile(q)), float64(tr.Result.Hist.Percentile(q))
			if math.Abs(got-want) > want*1e-3 {
				t.Errorf("interval %d p%v = %v, latlab says %v", i, q, got, want)
			}
		}
		if i > 0 && h.StartTimeMs()-prevStart != 500 {
			t.Errorf("interval %d starts %d ms after the previous, want 500 (trials laid end to end)", i, h.StartTimeMs()-prevStart)
		}
		prevStart = h.StartTimeMs()
	}
	if h, err := r.NextIntervalHistogram(); h != nil || (err != nil && err != io.EOF) {
		t.Errorf("extra interval after the last trial: %v %v", h, err)
	}
}

func TestHgrm(t *testing.T) {
	_, o := synthetic()
	var buf bytes.Buffer
	if err := WriteHgrm(&buf, o, "mode=veth-routed"); err != nil {
		t.Fatal(err)
	}
	golden(t, "veth-routed.hgrm", buf.Bytes())
	if !strings.Contains(buf.String(), "Total count    =          700]") {
		t.Errorf("hgrm does not merge the 7 trials of 100 values:\n%s", buf.String())
	}
	err := WriteHgrm(io.Discard, o, "")
	if err == nil || !strings.Contains(err.Error(), "2 configurations match") || !strings.Contains(err.Error(), "mode=host/") {
		t.Errorf("two configurations, no selection: err = %v, want one listing the keys", err)
	}
	if err := WriteHgrm(io.Discard, o, "mode=macvlan"); err == nil || !strings.Contains(err.Error(), `no configuration with latencies matches "mode=macvlan"`) {
		t.Errorf("unmatched selection: err = %v", err)
	}
}
