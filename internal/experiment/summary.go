package experiment

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/latlab/latlab/internal/hist"
	"github.com/latlab/latlab/internal/probe"
	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// Statistical settings of a lab summary.
const (
	Confidence = 0.95
	Alpha      = 0.05
	// bootstrapIters for the CI of the p99 ratio.
	bootstrapIters = 1000
)

// Estimate is a median with its confidence interval. Confidence is the
// level actually reached (order statistics reach discrete levels); TooFew
// says the trials were too few to reach 95% at all.
type Estimate struct {
	Median     float64 `json:"median"`
	CILow      float64 `json:"ci_low"`
	CIHigh     float64 `json:"ci_high"`
	Confidence float64 `json:"confidence"`
	TooFew     bool    `json:"too_few_trials,omitempty"`
}

// EstimateOf is e in the form an Outcome's summary and the reports carry.
func EstimateOf(e stats.Estimate) *Estimate {
	return &Estimate{Median: e.Center, CILow: e.Lo, CIHigh: e.Hi, Confidence: e.Confidence, TooFew: e.TooFew}
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
	RatePerSec    *Estimate `json:"rate_per_sec,omitempty"`
	ThroughputBps *Estimate `json:"throughput_bps,omitempty"`
	// P50Ns and P99Ns come from the histograms of all trials merged.
	P50Ns int64 `json:"p50_ns,omitempty"`
	P99Ns int64 `json:"p99_ns,omitempty"`
	// Hist is the merged histogram P50Ns and P99Ns come from (nil when no
	// trial measured latency), for other percentiles (--percentiles).
	Hist *hist.Histogram `json:"-"`
	Lost int64           `json:"lost,omitempty"`
	// RatioVsHost is the metric of this mode over the baseline's, paired
	// by round: the Hodges–Lehmann estimate of the per-round ratio and its
	// interval at the Bonferroni level of the table (Summary.Statistics),
	// the dual of the verdict's test (TooFew: the range of the per-round
	// ratios, no interval). P99RatioVsHost is the p99 latency ratio with a
	// cluster bootstrap CI over whole trials.
	RatioVsHost    *Estimate `json:"ratio_vs_host,omitempty"`
	P99RatioVsHost *Estimate `json:"p99_ratio_vs_host,omitempty"`
	// CV is the trial-to-trial coefficient of variation of the metric.
	CV float64 `json:"cv"`
	// OutlierRounds flags rounds whose ratio to the baseline lies far
	// from the others (more than 3.5 scaled MADs and 1%): kept (the
	// rank test is robust to them), reported so a user can look.
	OutlierRounds []Outlier `json:"outlier_rounds,omitempty"`
	// PValue is the Bonferroni-adjusted p-value against the baseline
	// (Wilcoxon signed-rank on the per-round log ratios: trials are
	// paired by round); Significant is PValue ≤ 0.05, which is exactly
	// when RatioVsHost's interval excludes 1; Verdict says it in words.
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

// Outlier is a round whose ratio stands apart.
type Outlier struct {
	Round  int     `json:"round"`
	Ratio  float64 `json:"ratio"`
	Median float64 `json:"median_ratio"`
}

// Statistics names the statistics behind a summary's verdicts.
type Statistics struct {
	Test       string  `json:"test"`
	Interval   string  `json:"interval"`
	Adjustment string  `json:"adjustment"`
	Alpha      float64 `json:"alpha"`
	// Family is the largest number of comparisons in one table (the
	// Bonferroni divisor); Level the ratio intervals' confidence there.
	Family int     `json:"family"`
	Level  float64 `json:"level"`
}

// OffloadComparison is a result against the same mode and workload under
// another offload preset.
type OffloadComparison struct {
	Preset      string    `json:"preset"`
	Ratio       *Estimate `json:"ratio"`
	P99Ratio    *Estimate `json:"p99_ratio,omitempty"`
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
	// PlacementOf maps each workload to the placement its trials ran.
	PlacementOf map[string]Placement `json:"placement_of,omitempty"`
	// Calibration, Precision and Noise: see Outcome.
	Calibration []Calibration   `json:"calibration,omitempty"`
	Precision   []Precision     `json:"precision,omitempty"`
	Noise       *probe.CPUNoise `json:"noise,omitempty"`
	// TargetCI and BudgetS are the adaptive rule's (0 with fixed trials).
	TargetCI float64 `json:"target_ci,omitempty"`
	BudgetS  float64 `json:"budget_s,omitempty"`
	// TooNoisy is one line for the top of the report when some ratio
	// missed its target or the CPUs were stolen from, with the fix it
	// suggests; empty otherwise.
	TooNoisy   string       `json:"too_noisy,omitempty"`
	Statistics Statistics   `json:"statistics"`
	Modes      []ModeInfo   `json:"modes"`
	Results    []ModeResult `json:"results"`
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
	s.Calibration, s.Precision, s.Noise = o.Calibration, o.Precision, o.Noise
	if o.Spec.Trials == 0 {
		s.TargetCI, s.BudgetS = o.Spec.TargetCI, o.Spec.Budget.Seconds()
		s.Trials = 0 // the most rounds any group ran
		for _, p := range o.Precision {
			s.Trials = max(s.Trials, p.Rounds)
		}
		if len(o.Precision) == 0 {
			for _, t := range o.Trials {
				s.Trials = max(s.Trials, t.Round)
			}
		}
	}
	s.PlacementOf = map[string]Placement{}
	for _, w := range o.Spec.Workloads {
		s.Workloads = append(s.Workloads, string(w))
		sizes := o.Spec.Sizes
		if w == wire.TCPStream {
			sizes = []int{0}
		}
		pls := PlacementsFor(o.Spec.Placements, w)
		if len(pls) == 1 {
			s.PlacementOf[string(w)] = pls[0]
		}
		for _, sz := range sizes {
			for _, p := range pls {
				pl := p.Name
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
	s.Statistics = Statistics{Test: "Wilcoxon signed-rank on per-round log ratios (paired by round)",
		Interval: "Hodges-Lehmann (the test's dual: significant exactly when it excludes 1)", Adjustment: "Bonferroni across each table's comparisons", Alpha: Alpha, Family: 1}
	fam := map[Config]int{}
	for _, r := range s.Results {
		if r.PValue != nil {
			g := r.Config()
			g.Mode = ""
			fam[g]++
		}
	}
	for _, n := range fam {
		s.Statistics.Family = max(s.Statistics.Family, n)
	}
	s.Statistics.Level = 1 - Alpha/float64(s.Statistics.Family)
	s.TooNoisy = tooNoisy(s)
	return s
}

// tooNoisy writes the one line a run too noisy to answer gets at the top.
func tooNoisy(s *Summary) string {
	var missed, also []string
	worstNeed, worstScale := 0, 0.0 // rounds needed; and over rounds run
	for _, p := range s.Precision {
		if p.Stopped == "budget" || p.Stopped == "max-rounds" || ((p.Stopped == "fixed") && p.Target > 0 && !p.Met()) {
			if len(missed) == 0 {
				missed = append(missed, p.String())
			} else {
				missed = append(missed, fmt.Sprintf("%s ±%.1f", p.Workload, p.HalfWidth*100))
				also = append(also, missed[len(missed)-1])
			}
			worstNeed = max(worstNeed, p.NeededRounds)
			if p.Rounds > 0 {
				worstScale = max(worstScale, float64(p.NeededRounds)/float64(p.Rounds))
			}
		}
	}
	steal := 0.0
	if s.Noise != nil {
		steal = s.Noise.MaxSteal()
	}
	var parts []string
	if len(missed) > 0 {
		line := fmt.Sprintf("too noisy to reach ±%.1f points within the budget: %s", s.TargetCI*100, missed[0])
		if len(missed) > 1 {
			line += " (also " + strings.Join(also, ", ") + ")"
		}
		fix := "; rerun with a larger --budget or on a quieter machine"
		if worstNeed > 0 && worstScale > 0 {
			need := time.Duration(float64(s.BudgetS)*worstScale*float64(time.Second)).Round(time.Minute) + time.Minute
			fix = fmt.Sprintf("; rerun with --budget %v or on a quieter machine", need)
			if need > 10*secs(s.BudgetS) || worstNeed >= maxRounds {
				fix = fmt.Sprintf("; trials vary by up to %.0f%% (cv), too much for any practical budget: find what else loads this machine, or pin a quieter placement (--cpu, --server-cpu)", maxCV(s)*100)
			}
		}
		parts = append(parts, line+fix)
	}
	if s.Noise != nil && s.Noise.PressurePct > 10 {
		parts = append(parts, fmt.Sprintf("tasks waited for a CPU %.0f%% of the time (CPU pressure): something else competes for the CPUs", s.Noise.PressurePct))
	}
	if steal > 5 {
		parts = append(parts, fmt.Sprintf("the hypervisor stole %.0f%% of a pinned CPU: results swing with the neighbours; rerun when the host is quieter", steal))
	}
	return strings.Join(parts, "; ")
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// maxCV is the largest trial CV of the summary's results.
func maxCV(s *Summary) float64 {
	m := 0.0
	for _, r := range s.Results {
		m = max(m, r.CV)
	}
	return m
}

// summarizeGroup summarises every mode for one workload and offload
// preset, each against the baseline mode, Bonferroni-adjusted within the
// group (groupComparisons).
func summarizeGroup(o *Outcome, g Config, rng *rand.Rand) []ModeResult {
	w := g.Workload
	at := func(mode string) Config { c := g; c.Mode = mode; return c }
	base := collect(o, at(o.Spec.Baseline))
	var ok []string
	for _, mi := range o.Modes {
		if mi.Status == "ok" {
			ok = append(ok, mi.Name)
		}
	}
	cmps := groupComparisons(o, g, o.Spec.Baseline, ok)
	var rows []ModeResult
	for _, mi := range o.Modes {
		r := ModeResult{Mode: mi.Name, Workload: string(w), Size: g.Size, Offload: g.Offload, Placement: g.Placement,
			Status: mi.Status, Reason: mi.Reason, Metric: "rate_per_sec"}
		if w == wire.TCPStream {
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
		r.RatePerSec = EstimateOf(stats.MedianCI(c.rates, Confidence))
		if w == wire.TCPStream {
			r.ThroughputBps = EstimateOf(stats.MedianCI(c.values, Confidence))
		}
		r.CV = cv(c.values)
		if c.merged != nil && c.merged.Count() > 0 {
			r.P50Ns, r.P99Ns = c.merged.Percentile(50), c.merged.Percentile(99)
			r.Hist = c.merged
		}
		r.Lost = c.lost
		r.Attribution = summarizeAttribution(c.attrs)
		if mi.Name != o.Spec.Baseline && r.Attribution != nil {
			r.Attribution.Explanation = explain(r.Attribution, summarizeAttribution(base.attrs), o.Spec.Baseline)
		}
		r.CPUPerTxn = &workload.CPUCost{Client: stats.Median(c.cpuClient), Server: stats.Median(c.cpuServer)}
		switch cmp, found := cmps[mi.Name]; {
		case mi.Name == o.Spec.Baseline:
			r.RatioVsHost = &Estimate{Median: 1, CILow: 1, CIHigh: 1, Confidence: 1}
		case found:
			r.RatioVsHost = ratioEstimate(cmp, c, base)
			_, r.P99RatioVsHost = ratios(c, base, rng)
			r.OutlierRounds = outliers(c, base)
			p := cmp.PAdjusted
			r.PValue = &p
			r.Significant = cmp.Significant
			r.Verdict = string(cmp.Verdict)
		}
		rows = append(rows, r)
	}
	return rows
}

// ratioEstimate turns a paired comparison's ratio into an Estimate; with
// too few rounds for an interval at the adjusted level it is the range of
// the per-round ratios, marked TooFew.
func ratioEstimate(c stats.Comparison, a, b series) *Estimate {
	e := c.Ratio
	if !e.TooFew {
		return &Estimate{Median: e.Center, CILow: e.Lo, CIHigh: e.Hi, Confidence: e.Confidence}
	}
	num, den := pairByRound(a, b)
	iv := &Estimate{Median: e.Center, CILow: math.Inf(1), CIHigh: 0, TooFew: true}
	for i := range num {
		r := num[i] / den[i]
		iv.CILow, iv.CIHigh = min(iv.CILow, r), max(iv.CIHigh, r)
	}
	if len(num) == 0 {
		iv.CILow = 0
	}
	return iv
}

// outliers flags rounds whose ratio to the baseline is more than 3.5
// scaled MADs (and 1%) from the median ratio.
func outliers(a, b series) []Outlier {
	num, den := pairByRound(a, b)
	if len(num) < 5 {
		return nil
	}
	var rounds []int
	for _, r := range a.rounds {
		if slices.Contains(b.rounds, r) {
			rounds = append(rounds, r)
		}
	}
	lr := make([]float64, len(num))
	for i := range num {
		lr[i] = math.Log(num[i] / den[i])
	}
	med := stats.Median(lr)
	dev := make([]float64, len(lr))
	for i, x := range lr {
		dev[i] = math.Abs(x - med)
	}
	mad := 1.4826 * stats.Median(dev)
	var out []Outlier
	for i, x := range lr {
		if d := math.Abs(x - med); d > 3.5*mad && d > 0.01 {
			out = append(out, Outlier{Round: rounds[i], Ratio: math.Exp(x), Median: math.Exp(med)})
		}
	}
	return out
}

// compareOffloads compares every mode under each preset with the same mode
// under the first preset, Bonferroni-adjusted across the workload's
// comparisons.
func compareOffloads(o *Outcome, first string, rows []ModeResult, rng *rand.Rand) {
	var cmps []stats.Comparison
	var idx []int
	var sers [][2]series
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
		_, p99 := ratios(c, base, rng)
		r.VsOffload = &OffloadComparison{Preset: first, P99Ratio: p99}
		num, den := pairByRound(c, base)
		cmps = append(cmps, stats.ComparePaired(den, num, true, Alpha, Confidence))
		idx = append(idx, i)
		sers = append(sers, [2]series{c, base})
	}
	stats.AdjustComparisons(cmps, Alpha)
	for k, c := range cmps {
		v := rows[idx[k]].VsOffload
		v.Ratio = ratioEstimate(c, sers[k][0], sers[k][1])
		v.PValue, v.Significant, v.Verdict = c.PAdjusted, c.Significant, string(c.Verdict)
	}
}

// ratios pairs a with b by round (metric ratio) and bootstraps the p99
// ratio over whole trials.
func ratios(a, b series, rng *rand.Rand) (ratio, p99 *Estimate) {
	num, den := pairByRound(a, b)
	if e, err := stats.PairedRatio(num, den, Confidence); err == nil && e.N > 0 {
		ratio = EstimateOf(e)
	}
	if len(a.hists) > 0 && len(b.hists) > 0 {
		e := stats.BootstrapQuantileRatio(a.hists, b.hists, 99, bootstrapIters, Confidence, rng)
		if e.N > 0 && !e.TooFew && !math.IsNaN(e.Center) {
			p99 = EstimateOf(e)
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
	return Config{Mode: r.Mode, Workload: wire.Workload(r.Workload), Size: r.Size, Offload: r.Offload, Placement: r.Placement}
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
		if w == wire.TCPStream {
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

// String renders an interval compactly, for logs.
func (iv *Estimate) String() string {
	if iv == nil {
		return "-"
	}
	return fmt.Sprintf("%.4g [%.4g, %.4g]", iv.Median, iv.CILow, iv.CIHigh)
}
