package experiment

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/latlab/latlab/internal/hist"
	"github.com/latlab/latlab/internal/probe"
	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/workload"
)

// Statistical settings of a lab summary.
const (
	Confidence = 0.95
	Alpha      = 0.05
	// bootstrapIters for the CI of the p99 ratio.
	bootstrapIters = 1000
)

// Interval is a median with its confidence interval. Confidence is the
// level actually reached (order statistics reach discrete levels); TooFew
// says the trials were too few to reach 95% at all.
type Interval struct {
	Median     float64 `json:"median"`
	CILow      float64 `json:"ci_low"`
	CIHigh     float64 `json:"ci_high"`
	Confidence float64 `json:"confidence"`
	TooFew     bool    `json:"too_few_trials,omitempty"`
}

func interval(e stats.Estimate) *Interval {
	return &Interval{Median: e.Center, CILow: e.Lo, CIHigh: e.Hi, Confidence: e.Confidence, TooFew: e.TooFew}
}

// ModeResult is one (mode, workload) configuration summarised over its
// trials. Its JSON form is documented in docs/lab-json.md.
type ModeResult struct {
	Mode     string `json:"mode"`
	Workload string `json:"workload"`
	// Size is the request/response size (0 for tcp_stream).
	Size int `json:"size"`
	// Offload is the offload preset the trials ran with ("default": the
	// interfaces as the lab built them).
	Offload string `json:"offload"`
	// Placement names the CPU placement.
	Placement string `json:"placement"`
	Status    string `json:"status"` // ok, skipped, failed
	Reason    string `json:"reason,omitempty"`
	Trials    int    `json:"trials"`
	Failed    int    `json:"failed_trials,omitempty"`
	// Metric names what rate_per_sec's comparison is about: "rate_per_sec"
	// for request/response workloads, "throughput_bps" for tcp_stream.
	Metric        string    `json:"metric"`
	RatePerSec    *Interval `json:"rate_per_sec,omitempty"`
	ThroughputBps *Interval `json:"throughput_bps,omitempty"`
	// P50Ns and P99Ns come from the histograms of all trials merged.
	P50Ns int64 `json:"p50_ns,omitempty"`
	P99Ns int64 `json:"p99_ns,omitempty"`
	Lost  int64 `json:"lost,omitempty"`
	// RatioVsHost is the metric of this mode over the baseline's, paired
	// by round; P99RatioVsHost is the p99 latency ratio with a cluster
	// bootstrap CI over whole trials.
	RatioVsHost    *Interval `json:"ratio_vs_host,omitempty"`
	P99RatioVsHost *Interval `json:"p99_ratio_vs_host,omitempty"`
	// PValue is the Holm-adjusted p-value against the baseline (Wilcoxon
	// signed-rank on the per-round log ratios: trials are paired by
	// round); Significant is PValue < 0.05; Verdict says it in words.
	PValue      *float64          `json:"p_value,omitempty"`
	Significant bool              `json:"significant"`
	Verdict     string            `json:"verdict,omitempty"`
	CPUPerTxn   *workload.CPUCost `json:"cpu_us_per_txn,omitempty"`
	// VsOffload compares this result with the same mode and workload under
	// the first offload preset (present when there are several presets).
	VsOffload *OffloadComparison `json:"vs_offload,omitempty"`
	// Attribution is the kernel evidence (--attribute).
	Attribution *AttributionSummary `json:"attribution,omitempty"`
}

// OffloadComparison is a result against the same mode and workload under
// another offload preset.
type OffloadComparison struct {
	Preset      string    `json:"preset"`
	Ratio       *Interval `json:"ratio"`
	P99Ratio    *Interval `json:"p99_ratio,omitempty"`
	PValue      float64   `json:"p_value"`
	Significant bool      `json:"significant"`
	Verdict     string    `json:"verdict"`
}

// Summary is a lab run summarised: what `latlab lab` prints.
type Summary struct {
	Prefix     string    `json:"prefix"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
	Incomplete bool      `json:"incomplete"`
	Kept       bool      `json:"kept,omitempty"`
	Trials     int       `json:"trials"`
	DurationS  float64   `json:"duration_s"`
	WarmupS    float64   `json:"warmup_s"`
	Seed       uint64    `json:"seed"`
	Baseline   string    `json:"baseline"`
	Workloads  []string  `json:"workloads"`
	Offloads   []string  `json:"offloads"`
	Sizes      []int     `json:"sizes"`
	Placements []string  `json:"placements"`
	// OffloadNotes lists, per preset, what the kernel refused to change.
	OffloadNotes map[string][]string `json:"offload_notes,omitempty"`
	// EBPFTier and EBPFUnavailable describe attribution (--attribute).
	EBPFTier        string   `json:"ebpf_tier,omitempty"`
	EBPFUnavailable []string `json:"ebpf_unavailable,omitempty"`
	BuildMs         float64  `json:"build_ms"`
	NATBackend      string   `json:"nat_backend,omitempty"`
	// Congestion is the TCP congestion control the client's sockets ran
	// (the first TCP trial's; lab namespaces inherit the host default).
	Congestion string             `json:"congestion,omitempty"`
	Placement  workload.Placement `json:"placement"`
	Modes      []ModeInfo         `json:"modes"`
	Results    []ModeResult       `json:"results"`
}

// Summarize turns raw trials into medians, CIs, ratios against the
// baseline and significance. Percentiles come from merged histograms,
// never from averaged percentiles. seed drives the bootstrap.
func Summarize(o *Outcome) *Summary {
	s := &Summary{
		Prefix: o.Prefix, Started: o.Started, Finished: o.Finished, Incomplete: o.Incomplete, Kept: o.Kept,
		Trials: o.Spec.Trials, DurationS: o.Spec.Duration.Seconds(), WarmupS: o.Spec.Warmup.Seconds(),
		Seed: o.Spec.Seed, Baseline: o.Spec.Baseline, Modes: o.Modes,
		BuildMs: float64(o.BuildTime.Microseconds()) / 1000, NATBackend: o.NATBackend,
	}
	for _, t := range o.Trials {
		if t.Result != nil {
			s.Placement = t.Result.Placement
			break
		}
	}
	for _, t := range o.Trials {
		if t.Result != nil && t.Result.Congestion != "" {
			s.Congestion = t.Result.Congestion
			break
		}
	}
	rng := rand.New(rand.NewPCG(o.Spec.Seed, 0xb007))
	s.OffloadNotes = o.OffloadNotes
	s.EBPFTier, s.EBPFUnavailable = o.EBPFTier, o.EBPFUnavailable
	for _, p := range o.Spec.Offloads {
		s.Offloads = append(s.Offloads, p.Name)
	}
	s.Sizes = o.Spec.Sizes
	for _, p := range o.Spec.Placements {
		s.Placements = append(s.Placements, p.Name)
	}
	for _, w := range o.Spec.Workloads {
		s.Workloads = append(s.Workloads, string(w))
		sizes := o.Spec.Sizes
		if w == workload.TCPStream {
			sizes = []int{0}
		}
		for _, sz := range sizes {
			for _, pl := range s.Placements {
				first := len(s.Results)
				for _, off := range s.Offloads {
					g := Config{Workload: w, Size: sz, Offload: off, Placement: pl}
					s.Results = append(s.Results, summarizeGroup(o, g, rng)...)
				}
				if len(s.Offloads) > 1 {
					compareOffloads(o, s.Offloads[0], s.Results[first:], rng)
				}
			}
		}
	}
	return s
}

// summarizeGroup summarises every mode for one workload and offload
// preset, each against the baseline mode, Holm-adjusted within the group.
func summarizeGroup(o *Outcome, g Config, rng *rand.Rand) []ModeResult {
	w := g.Workload
	at := func(mode string) Config { c := g; c.Mode = mode; return c }
	base := collect(o, at(o.Spec.Baseline))
	var rows []ModeResult
	var cmps []stats.Comparison
	var cmpRows []int
	for _, mi := range o.Modes {
		r := ModeResult{Mode: mi.Name, Workload: string(w), Size: g.Size, Offload: g.Offload, Placement: g.Placement,
			Status: mi.Status, Reason: mi.Reason, Metric: "rate_per_sec"}
		if w == workload.TCPStream {
			r.Metric = "throughput_bps"
		}
		if mi.Status != "ok" {
			rows = append(rows, r)
			continue
		}
		c := collect(o, at(mi.Name))
		r.Trials, r.Failed = len(c.values), c.failed
		if len(c.values) == 0 {
			r.Status = "failed"
			r.Reason = c.firstErr
			if r.Reason == "" {
				r.Reason = "no trial ran (interrupted)"
			}
			rows = append(rows, r)
			continue
		}
		r.RatePerSec = interval(stats.MedianCI(c.rates, Confidence))
		if w == workload.TCPStream {
			r.ThroughputBps = interval(stats.MedianCI(c.values, Confidence))
		}
		if c.merged != nil && c.merged.Count() > 0 {
			r.P50Ns, r.P99Ns = c.merged.Percentile(50), c.merged.Percentile(99)
		}
		r.Lost = c.lost
		r.Attribution = summarizeAttribution(c.attrs)
		if mi.Name != o.Spec.Baseline && r.Attribution != nil {
			r.Attribution.Explanation = explain(r.Attribution, summarizeAttribution(base.attrs), o.Spec.Baseline)
		}
		r.CPUPerTxn = &workload.CPUCost{Client: median(c.cpuClient), Server: median(c.cpuServer)}
		switch {
		case mi.Name == o.Spec.Baseline:
			r.RatioVsHost = &Interval{Median: 1, CILow: 1, CIHigh: 1, Confidence: 1}
		case len(base.values) > 0:
			r.RatioVsHost, r.P99RatioVsHost = ratios(c, base, rng)
			num, den := pairByRound(c, base)
			cmps = append(cmps, stats.ComparePaired(den, num, true, Alpha, Confidence))
			cmpRows = append(cmpRows, len(rows))
		}
		rows = append(rows, r)
	}
	stats.AdjustComparisons(cmps, Alpha)
	for i, c := range cmps {
		r := &rows[cmpRows[i]]
		p := c.PAdjusted
		r.PValue = &p
		r.Significant = c.Significant
		r.Verdict = string(c.Verdict)
	}
	return rows
}

// compareOffloads compares every mode under each preset with the same mode
// under the first preset, Holm-adjusted across the workload's comparisons.
func compareOffloads(o *Outcome, first string, rows []ModeResult, rng *rand.Rand) {
	var cmps []stats.Comparison
	var idx []int
	for i := range rows {
		r := &rows[i]
		if r.Offload == first || r.Status != "ok" {
			continue
		}
		cfg := r.Config()
		c := collect(o, cfg)
		cfg.Offload = first
		base := collect(o, cfg)
		if len(base.values) == 0 {
			continue
		}
		ratio, p99 := ratios(c, base, rng)
		r.VsOffload = &OffloadComparison{Preset: first, Ratio: ratio, P99Ratio: p99}
		num, den := pairByRound(c, base)
		cmps = append(cmps, stats.ComparePaired(den, num, true, Alpha, Confidence))
		idx = append(idx, i)
	}
	stats.AdjustComparisons(cmps, Alpha)
	for k, c := range cmps {
		v := rows[idx[k]].VsOffload
		v.PValue, v.Significant, v.Verdict = c.PAdjusted, c.Significant, string(c.Verdict)
	}
}

// ratios pairs a with b by round (metric ratio) and bootstraps the p99
// ratio over whole trials.
func ratios(a, b series, rng *rand.Rand) (ratio, p99 *Interval) {
	num, den := pairByRound(a, b)
	if e, err := stats.PairedRatio(num, den, Confidence); err == nil && e.N > 0 {
		ratio = interval(e)
	}
	if len(a.hists) > 0 && len(b.hists) > 0 {
		e := stats.BootstrapQuantileRatio(a.hists, b.hists, 99, bootstrapIters, Confidence, rng)
		if e.N > 0 && !e.TooFew && !math.IsNaN(e.Center) {
			p99 = interval(e)
		}
	}
	return ratio, p99
}

// series is one configuration's trials.
type series struct {
	rounds    []int
	values    []float64 // the comparison metric per trial
	rates     []float64
	hists     []*hist.Histogram
	merged    *hist.Histogram
	lost      int64
	failed    int
	firstErr  string
	cpuClient []float64
	cpuServer []float64
	attrs     []*probe.Attribution
}

// Config returns the configuration a result summarises.
func (r *ModeResult) Config() Config {
	return Config{Mode: r.Mode, Workload: workload.Workload(r.Workload), Size: r.Size, Offload: r.Offload, Placement: r.Placement}
}

func collect(o *Outcome, cfg Config) series {
	var s series
	w := cfg.Workload
	for _, t := range o.Trials {
		if t.Config != cfg {
			continue
		}
		if t.Result == nil {
			s.failed++
			if s.firstErr == "" {
				s.firstErr = t.Error
			}
			continue
		}
		r := t.Result
		s.rounds = append(s.rounds, t.Round)
		v := r.RatePerSec
		if w == workload.TCPStream {
			v = r.ThroughputBps
		}
		s.values = append(s.values, v)
		s.rates = append(s.rates, r.RatePerSec)
		s.lost += r.Lost
		s.cpuClient = append(s.cpuClient, r.CPUPerTxn.Client)
		s.cpuServer = append(s.cpuServer, r.CPUPerTxn.Server)
		if t.Attribution != nil {
			s.attrs = append(s.attrs, t.Attribution)
		}
		if r.Hist != nil && r.Hist.Count() > 0 {
			s.hists = append(s.hists, r.Hist)
			if s.merged == nil {
				s.merged = r.Hist.Clone()
			} else {
				s.merged.Merge(r.Hist)
			}
		}
	}
	return s
}

// pairByRound lines up two series by the round their trials ran in.
func pairByRound(a, b series) (num, den []float64) {
	for i, r := range a.rounds {
		if j := slices.Index(b.rounds, r); j >= 0 {
			num = append(num, a.values[i])
			den = append(den, b.values[j])
		}
	}
	return num, den
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// String renders an interval compactly, for logs.
func (iv *Interval) String() string {
	if iv == nil {
		return "-"
	}
	return fmt.Sprintf("%.4g [%.4g, %.4g]", iv.Median, iv.CILow, iv.CIHigh)
}
