package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"

	"github.com/latlab/latlab/internal/stats"
)

// blockedOrder is one round of a blocked design: the workloads in a fresh
// random order and, within each, its jobs (every mode, every tool) back to
// back in a fresh random order, so the runs a ratio pairs are seconds
// apart — the design `latlab lab` uses (docs/experiments.md).
func blockedOrder(rng *rand.Rand, jobs []job, workloads []string) []job {
	ws := slices.Clone(workloads)
	rng.Shuffle(len(ws), func(i, j int) { ws[i], ws[j] = ws[j], ws[i] })
	var out []job
	for _, w := range ws {
		var block []job
		for _, j := range jobs {
			if j.workload == w {
				block = append(block, j)
			}
		}
		rng.Shuffle(len(block), func(i, j int) { block[i], block[j] = block[j], block[i] })
		out = append(out, block...)
	}
	return out
}

// labRatio is the lab's own statistic on a tool's per-round rates: the
// Hodges–Lehmann estimate of the ratio to the baseline with its
// signed-rank interval at the Bonferroni level of the table (alpha 0.05
// over the modes compared), as `latlab lab` prints it.
type labRatio struct {
	Median    float64 `json:"median"`
	Lo        float64 `json:"ci_low"`
	Hi        float64 `json:"ci_high"`
	Level     float64 `json:"level"`
	HalfWidth float64 `json:"half_width_points"` // (hi − lo)/2 × 100
	TooFew    bool    `json:"too_few_rounds,omitempty"`
}

// labRatios computes labRatio for every mode but the baseline of one tool's
// series (pick selects the tool).
func labRatios(order []string, baseline string, s map[string]*series, pick func(*series) []float64) map[string]*labRatio {
	base := s[baseline]
	if base == nil || len(pick(base)) == 0 {
		return nil
	}
	var modes []string
	var cmps []stats.Comparison
	for _, m := range order {
		if m == baseline || s[m] == nil || len(pick(s[m])) == 0 {
			continue
		}
		modes = append(modes, m)
		cmps = append(cmps, stats.ComparePaired(pick(base), pick(s[m]), true, 0.05, 0.95))
	}
	stats.AdjustComparisons(cmps, 0.05)
	out := map[string]*labRatio{}
	for i, c := range cmps {
		if c.Ratio.TooFew || math.IsInf(c.Ratio.Lo, 0) || math.IsInf(c.Ratio.Hi, 0) || math.IsNaN(c.Ratio.Center) {
			// No interval at this level yet (too few rounds): the
			// estimate only, flagged (JSON has no infinities).
			out[modes[i]] = &labRatio{Median: c.Ratio.Center, Lo: c.Ratio.Center, Hi: c.Ratio.Center, TooFew: true}
			continue
		}
		out[modes[i]] = &labRatio{Median: c.Ratio.Center, Lo: c.Ratio.Lo, Hi: c.Ratio.Hi, Level: c.Ratio.Confidence,
			HalfWidth: (c.Ratio.Hi - c.Ratio.Lo) / 2 * 100, TooFew: c.Ratio.TooFew}
	}
	return out
}

// labResult is what the side-by-side reads of `latlab lab -o json`.
type labResult struct {
	Trials  int `json:"trials"`
	Results []struct {
		Mode     string `json:"mode"`
		Workload string `json:"workload"`
		Ratio    *struct {
			Median float64 `json:"median"`
			Lo     float64 `json:"ci_low"`
			Hi     float64 `json:"ci_high"`
		} `json:"ratio_vs_host"`
	} `json:"results"`
	Started  string `json:"started"`
	Finished string `json:"finished"`
}

// sideBySide prints, per mode of each workload the reference measured, the
// reference protocol's lab-statistic ratio and half-width next to
// `latlab lab`'s, the half-width ratio (latlab / reference) and how far the
// two ratios differ. It reports whether latlab is within hwWithin× the
// reference's half-width and agreeWithin points of its ratio everywhere.
func sideBySide(out io.Writer, ref report, lab labResult, hwWithin, agreeWithin float64) (ok bool) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	fmt.Fprintf(w, "reference: sockperf, blocked rounds, %d rounds of %ds; latlab lab: %d rounds; kernel %s, %s\n",
		ref.Rounds, ref.Seconds, lab.Trials, ref.Kernel, ref.CPU)
	ok = true
	for _, t := range ref.Tables {
		fmt.Fprintf(w, "%s: ratio vs host ± half-width (points), at the lab's Bonferroni level\n", t.Workload)
		fmt.Fprintf(w, "  %-16s %22s %22s %10s %8s\n", "mode", "reference (sockperf)", "latlab lab", "hw ratio", "Δ points")
		for _, r := range t.Rows {
			if r.SockperfLab == nil {
				continue
			}
			var got *labRatio
			for _, lr := range lab.Results {
				if lr.Mode == r.Mode && lr.Workload == t.Workload && lr.Ratio != nil {
					got = &labRatio{Median: lr.Ratio.Median, Lo: lr.Ratio.Lo, Hi: lr.Ratio.Hi, HalfWidth: (lr.Ratio.Hi - lr.Ratio.Lo) / 2 * 100}
				}
			}
			ref := r.SockperfLab
			if got == nil {
				fmt.Fprintf(w, "  %-16s %14.3f ±%5.1f %22s\n", r.Mode, ref.Median, ref.HalfWidth, "-")
				ok = false
				continue
			}
			if ref.TooFew {
				fmt.Fprintf(w, "  %-16s %14.3f (too few) %14.3f ±%5.1f %10s %+8.1f\n", r.Mode, ref.Median, got.Median, got.HalfWidth, "-", (got.Median-ref.Median)*100)
				ok = false
				continue
			}
			hwr := got.HalfWidth / ref.HalfWidth
			d := (got.Median - ref.Median) * 100
			mark := ""
			if hwr > hwWithin || math.Abs(d) > agreeWithin {
				mark, ok = "  ✗", false
			}
			fmt.Fprintf(w, "  %-16s %14.3f ±%5.1f %14.3f ±%5.1f %10.2f %+8.1f%s\n", r.Mode, ref.Median, ref.HalfWidth, got.Median, got.HalfWidth, hwr, d, mark)
		}
	}
	verdict := "yes"
	if !ok {
		verdict = "no"
	}
	fmt.Fprintf(w, "latlab within %.1f× the reference's half-width and %.1f points of its ratio: %s\n", hwWithin, agreeWithin, verdict)
	return ok
}

// compareFiles is `labpeers -reference REF.json -lab-result LAB.json`.
func compareFiles(refFile, labFile string, hwWithin, agreeWithin float64) error {
	var ref report
	var lab labResult
	for _, f := range []struct {
		path string
		v    any
	}{{refFile, &ref}, {labFile, &lab}} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, f.v); err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	if !sideBySide(os.Stdout, ref, lab, hwWithin, agreeWithin) {
		return errNotWithin
	}
	return nil
}
