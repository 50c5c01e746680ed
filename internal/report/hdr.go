package report

import (
	"fmt"
	"io"
	"slices"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/hist"
	"github.com/latlab/latlab/internal/store"
)

// Export formats read by HdrHistogram's own tools.
const (
	// FormatHlog is HdrHistogram's interval log (the .hlog that
	// HistogramLogProcessor, HdrHistogramVisualizer and
	// HistogramLogAnalyzer read): one compressed histogram per trial, tagged
	// with its configuration's key.
	FormatHlog = "hlog"
	// FormatHgrm is HdrHistogram's percentile distribution (the .hgrm that
	// the online plotter and hdr-plot read) of one configuration, its
	// trials merged, values in microseconds.
	FormatHgrm = "hgrm"
)

// hgrmScale turns latlab's nanoseconds into microseconds: the .hgrm value
// column has three decimals, so milliseconds (the plotters' default label)
// would round a 5 µs same-core round trip to 0.005.
const hgrmScale = 1e3

// toHDR copies a latlab histogram into an HdrHistogram one of the same
// precision, each bucket's count at the bucket's lowest value (so every
// value keeps its bucket: both libraries use the same bucket layout for a
// given number of significant digits).
func toHDR(h *hist.Histogram) (*hdrhistogram.Histogram, error) {
	out := hdrhistogram.New(1, max(h.MaxTrackable(), 2), h.SigDigits())
	var err error
	h.ForEach(func(lo, _ int64, n int64) {
		if err == nil {
			err = out.RecordValues(max(lo, 0), n)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("copy histogram into HdrHistogram: %w", err)
	}
	return out, nil
}

// WriteHlog writes every trial's latency histogram of a run as an
// HdrHistogram interval log (format V1.3, compressed V2 histograms). Trials
// carry no wall-clock times of their own, so they are laid end to end from
// the run's start in the order they ran, each as long as its warm-up plus
// measured window; the tag is the configuration's key
// (mode=…/workload=…/size=…/offload=…/placement=…), which HdrHistogram's
// log processor selects with -tag. tcp_stream trials have no latency and
// are left out.
func WriteHlog(w io.Writer, run *store.Run, o *experiment.Outcome) error {
	lw := hdrhistogram.NewHistogramLogWriter(w)
	start := run.Started.UnixMilli()
	if err := lw.OutputComment(fmt.Sprintf("latlab run %d: %s, latency in nanoseconds, one interval per trial", run.ID, run.SpecName)); err != nil {
		return fmt.Errorf("write hlog header: %w", err)
	}
	if err := lw.OutputLogFormatVersion(); err != nil {
		return fmt.Errorf("write hlog header: %w", err)
	}
	if err := lw.OutputStartTime(start); err != nil {
		return fmt.Errorf("write hlog header: %w", err)
	}
	lw.SetBaseTime(start)
	if err := lw.OutputBaseTime(start); err != nil {
		return fmt.Errorf("write hlog header: %w", err)
	}
	if err := lw.OutputLegend(); err != nil {
		return fmt.Errorf("write hlog header: %w", err)
	}
	at := start
	for _, t := range o.Trials {
		r := t.Result
		if r == nil {
			continue
		}
		begin := at + int64((r.WarmupS)*1e3)
		end := begin + int64(r.DurationS*1e3)
		at = end
		if r.Hist == nil || r.Hist.Count() == 0 {
			continue
		}
		h, err := toHDR(r.Hist)
		if err != nil {
			return fmt.Errorf("trial %d/%d %s: %w", t.Round, t.Order, t.Config.Key(), err)
		}
		h.SetStartTimeMs(begin)
		h.SetEndTimeMs(end)
		h.SetTag(t.Config.Key())
		if err := lw.OutputIntervalHistogram(h); err != nil {
			return fmt.Errorf("write hlog trial %d/%d %s: %w", t.Round, t.Order, t.Config.Key(), err)
		}
	}
	return nil
}

// WriteHgrm writes the percentile distribution of one configuration's
// trials, merged, in HdrHistogram's .hgrm layout (values in microseconds).
// which selects the configuration: its key, or any part of it that only one
// configuration's key contains ("mode=macvlan/workload=tcp_rr"); it may be
// empty when the run has a single configuration with latencies.
func WriteHgrm(w io.Writer, o *experiment.Outcome, which string) error {
	var keys []string
	merged := map[string]*hist.Histogram{}
	for _, t := range o.Trials {
		if t.Result == nil || t.Result.Hist == nil || t.Result.Hist.Count() == 0 {
			continue
		}
		k := t.Config.Key()
		if which != "" && !strings.Contains(k, which) {
			continue
		}
		if m, ok := merged[k]; ok {
			m.Merge(t.Result.Hist)
			continue
		}
		keys = append(keys, k)
		merged[k] = t.Result.Hist.Clone()
	}
	switch {
	case len(keys) == 0 && which == "":
		return fmt.Errorf("hgrm: the run has no latency histograms")
	case len(keys) == 0:
		return fmt.Errorf("hgrm: no configuration with latencies matches %q", which)
	case len(keys) > 1:
		slices.Sort(keys)
		return fmt.Errorf("hgrm: %d configurations match %q; name one with --config:\n  %s", len(keys), which, strings.Join(keys, "\n  "))
	}
	h, err := toHDR(merged[keys[0]])
	if err != nil {
		return fmt.Errorf("hgrm %s: %w", keys[0], err)
	}
	if _, err := h.PercentilesPrint(w, 5, hgrmScale); err != nil {
		return fmt.Errorf("write hgrm %s: %w", keys[0], err)
	}
	return nil
}
