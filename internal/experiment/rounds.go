package experiment

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/latlab/latlab/internal/probe"
	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// maxRounds bounds every run, fixed or adaptive.
const maxRounds = 1000

// Precision is where one group of configurations compared with each other
// (the modes of one workload, size, offload and placement) stands: the
// widest ratio interval's half-width against the target, and why its
// rounds stopped.
type Precision struct {
	Workload  wire.Workload `json:"workload"`
	Size      int           `json:"size"`
	Offload   string        `json:"offload"`
	Placement string        `json:"placement"`
	Rounds    int           `json:"rounds"`
	// HalfWidth is the widest (Bonferroni-adjusted) ratio interval's
	// half-width, (hi-lo)/2, over the group's modes; +Inf is written as
	// -1 (too few rounds for an interval).
	HalfWidth float64 `json:"half_width"`
	// Widest names the mode with that interval.
	Widest string  `json:"widest_mode,omitempty"`
	Target float64 `json:"target,omitempty"`
	// Stopped: "fixed" (--trials), "target" (reached), "budget" (would
	// not be reached within it), "max-rounds", "interrupted", or "" while
	// running.
	Stopped string `json:"stopped,omitempty"`
	// NeededRounds estimates the rounds the target needs (budget stops):
	// rounds × (half-width/target)².
	NeededRounds int `json:"needed_rounds,omitempty"`
	// SpentS is the time the group's trials took, warm-ups included:
	// how the budget was spent.
	SpentS float64 `json:"spent_s"`
}

// Met reports whether the group reached its target.
func (p Precision) Met() bool { return p.HalfWidth >= 0 && p.HalfWidth <= p.Target }

// TrialFunc runs one trial of a configuration.
type TrialFunc func(ctx context.Context, c Config) (*workload.Result, *probe.Attribution, error)

// RunRounds runs configs in interleaved rounds and adds the trials to out.
// Each round runs every active configuration once: the groups (one table:
// the modes of a workload, size, offload and placement) in a fresh random
// order from spec.Seed, each group's modes back to back in a fresh random
// order (roundOrder). With spec.Trials set it runs exactly that many
// rounds. Otherwise (adaptive) it runs at least MinTrials rounds (by
// default the fewest at which the signed-rank test can reach its
// Bonferroni level), then, after every round, evaluates each group: a
// group whose widest ratio interval is within spec.TargetCI stops; the
// others go on while their estimated remaining rounds fit the rest of
// spec.Budget (cheapest first), the rest paused; when none fits, all
// that are left share the rest of the budget, then stop and say what
// they needed. Every group's state ends up in out.Precision.
// cpus are the CPUs whose steal and run-queue wait are reported
// (out.Noise).
func RunRounds(ctx context.Context, spec *LabSpec, out *Outcome, configs []Config, cpus []int, run TrialFunc, onEvent func(Event)) error {
	groups, members := groupConfigs(configs)
	prec := make([]Precision, len(groups))
	family := map[int]int{}
	for i, g := range groups {
		prec[i] = Precision{Workload: g.Workload, Size: g.Size, Offload: g.Offload, Placement: g.Placement, Target: spec.TargetCI, HalfWidth: -1}
		family[i] = max(1, len(members[i])-1)
	}
	minRounds := spec.Trials
	if spec.Trials == 0 {
		fam := 1
		for _, f := range family {
			fam = max(fam, f)
		}
		minRounds = max(spec.MinTrials, DefaultMinTrials, stats.MinRoundsFor(Alpha, fam))
		spec.MinTrials, out.Spec.MinTrials = minRounds, minRounds
	}
	active := make([]bool, len(groups))
	for i := range active {
		active[i] = true
	}
	cost := make([]time.Duration, len(groups)) // per-round cost, measured
	costN := make([]int, len(groups))

	var noiseStart *probe.CPUSample
	if s, err := probe.SampleCPUs("/proc"); err == nil {
		noiseStart = s
	}
	defer func() {
		if noiseStart != nil {
			if s, err := probe.SampleCPUs("/proc"); err == nil {
				out.Noise = noiseStart.Noise(s, cpus)
			}
		}
		for i := range prec {
			prec[i].SpentS = cost[i].Seconds()
		}
		out.Precision = prec
	}()

	rng := rand.New(rand.NewPCG(spec.Seed, 0x1a7))
	done := 0
	start := time.Now()
	total := len(configs) * minRounds
	for round := 1; round <= maxRounds; round++ {
		if spec.Trials > 0 && round > spec.Trials {
			break
		}
		if round > minRounds && spec.Trials == 0 {
			if !decide(out, spec, groups, members, active, prec, cost, costN, time.Since(start)) {
				break
			}
			onEvent(Event{Kind: "precision", Precision: slices.Clone(prec), Round: round - 1})
		}
		if spec.Trials == 0 && round > minRounds {
			total = done + remainingTrials(prec, members, active, spec.Budget-time.Since(start), time.Since(start)/time.Duration(max(done, 1)))
		}
		order := roundOrder(rng, members, active)
		for i, c := range order {
			if ctx.Err() != nil {
				markStopped(prec, "interrupted")
				out.Incomplete = true
				return nil
			}
			tr := TrialResult{Round: round, Order: i, Config: c}
			t0 := time.Now()
			res, attr, err := run(ctx, c)
			if err != nil {
				if ctx.Err() != nil {
					// Interrupted mid-trial: the partial trial is not kept.
					markStopped(prec, "interrupted")
					out.Incomplete = true
					return nil
				}
				tr.Error = err.Error()
			} else {
				tr.Result, tr.Attribution = res, attr
			}
			g := groupIndex(groups, c)
			cost[g] += time.Since(t0)
			done++
			if err := out.AddTrial(tr, spec.Recorder, onEvent, done, max(total, done), start, i == len(order)-1); err != nil {
				return err
			}
		}
		for i := range groups {
			if active[i] {
				costN[i]++
				prec[i].Rounds++ // rounds it ran: a paused group skips some
			}
		}
	}
	// Fixed runs and runs that hit maxRounds: say where they stand.
	for i, g := range groups {
		if prec[i].Stopped == "" {
			prec[i].HalfWidth, prec[i].Widest = halfWidth(out, spec, g, members[i])
			prec[i].Stopped = "fixed"
			if spec.Trials == 0 {
				prec[i].Stopped = "max-rounds"
			}
		}
	}
	return nil
}

// roundOrder is one round's trials: the active groups in a fresh random
// order, each group's configurations back to back, themselves shuffled.
// The modes a ratio pairs run within one group's stretch of the round
// (seconds apart, not the whole round): on a shared machine throughput
// drifts over seconds, and what drifts between a mode's trial and its
// baseline's lands in the ratio.
func roundOrder(rng *rand.Rand, members [][]Config, active []bool) []Config {
	var gs []int
	for i := range members {
		if active[i] {
			gs = append(gs, i)
		}
	}
	rng.Shuffle(len(gs), func(i, j int) { gs[i], gs[j] = gs[j], gs[i] })
	var order []Config
	for _, g := range gs {
		ms := slices.Clone(members[g])
		rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		order = append(order, ms...)
	}
	return order
}

// decide evaluates the groups still open (not stopped) after a round and
// sets which run the next one (active); false when none is left to run.
// A group that does not fit the budget is paused, not stopped: the
// projection behind that is rough (one outlying round at 8 rounds can
// multiply it tenfold), and once the groups that fit are done, the ones
// left share what is left of the budget — the request/response ones
// (isRR) if any is left, the others then stopping where they are. They
// stop ("budget") when it is spent.
func decide(out *Outcome, spec *LabSpec, groups []Config, members [][]Config, active []bool, prec []Precision, cost []time.Duration, costN []int, elapsed time.Duration) bool {
	type want struct {
		i    int
		left time.Duration
	}
	var wants []want
	for i, g := range groups {
		p := &prec[i]
		if p.Stopped != "" {
			continue
		}
		if active[i] {
			p.HalfWidth, p.Widest = halfWidth(out, spec, g, members[i])
		}
		active[i] = false
		if p.HalfWidth >= 0 && p.HalfWidth <= spec.TargetCI {
			p.Stopped, p.NeededRounds = "target", 0
			continue
		}
		p.NeededRounds = neededRounds(p.Rounds, p.HalfWidth, spec.TargetCI)
		perRound := cost[i] / time.Duration(max(costN[i], 1))
		wants = append(wants, want{i, perRound * time.Duration(p.NeededRounds-p.Rounds)})
	}
	slices.SortFunc(wants, func(a, b want) int { return int(a.left - b.left) })
	left := spec.Budget - elapsed
	n := 0
	for _, w := range wants {
		// A group goes on when what it still needs fits what is left of
		// the budget, after the cheaper groups that go on too.
		if w.left <= left {
			left -= w.left
			active[w.i] = true
			n++
		}
	}
	if n == 0 && len(wants) > 0 && spec.Budget-elapsed > 0 {
		// None can reach the target in time: the budget left still buys
		// rounds. The request/response groups (tcp_rr, udp_rr: the
		// question the lab exists for, and the cheapest to narrow) share
		// it; the others stop where they are and report what they
		// reached. Without request/response groups left, all share it.
		rr := slices.ContainsFunc(wants, func(w want) bool { return isRR(groups[w.i].Workload) })
		for _, w := range wants {
			if rr && !isRR(groups[w.i].Workload) {
				prec[w.i].Stopped = "budget"
				continue
			}
			active[w.i] = true
			n++
		}
	}
	if n == 0 {
		for _, w := range wants {
			prec[w.i].Stopped = "budget"
		}
	}
	return n > 0
}

// isRR reports whether a workload is a request/response one whose
// ratios the budget left goes to first.
func isRR(w wire.Workload) bool { return w == wire.TCPRR || w == wire.UDPRR }

// neededRounds extrapolates: an interval's half-width shrinks as
// 1/√rounds.
func neededRounds(rounds int, hw, target float64) int {
	if hw < 0 || math.IsInf(hw, 0) {
		return rounds * 2
	}
	n := int(math.Ceil(float64(rounds) * (hw / target) * (hw / target)))
	return min(max(n, rounds+1), maxRounds)
}

// remainingTrials estimates the trials the active groups still need, at
// most what the budget left buys at perTrial each.
func remainingTrials(prec []Precision, members [][]Config, active []bool, left, perTrial time.Duration) int {
	n := 0
	for i := range prec {
		if active[i] {
			n += max(prec[i].NeededRounds-prec[i].Rounds, 1) * len(members[i])
		}
	}
	if perTrial > 0 {
		n = min(n, max(int(left/perTrial), 1))
	}
	return n
}

func markStopped(prec []Precision, why string) {
	for i := range prec {
		if prec[i].Stopped == "" {
			prec[i].Stopped = why
		}
	}
}

// groupConfigs groups configurations by everything but the mode.
func groupConfigs(configs []Config) ([]Config, [][]Config) {
	var groups []Config
	var members [][]Config
	for _, c := range configs {
		g := c
		g.Mode = ""
		i := slices.Index(groups, g)
		if i < 0 {
			groups = append(groups, g)
			members = append(members, nil)
			i = len(groups) - 1
		}
		members[i] = append(members[i], c)
	}
	return groups, members
}

func groupIndex(groups []Config, c Config) int {
	c.Mode = ""
	return slices.Index(groups, c)
}

// halfWidth is the widest ratio interval's half-width in a group, from the
// same comparisons the summary makes; -1 when some mode has no interval
// yet (too few rounds).
func halfWidth(out *Outcome, spec *LabSpec, g Config, members []Config) (float64, string) {
	var modes []string
	for _, m := range members {
		modes = append(modes, m.Mode)
	}
	cmps := groupComparisons(out, g, spec.Baseline, modes)
	worst, widest := 0.0, ""
	for _, m := range modes {
		c, ok := cmps[m]
		if !ok {
			continue
		}
		if c.Ratio.TooFew || math.IsInf(c.Ratio.Hi, 0) {
			return -1, m
		}
		if hw := (c.Ratio.Hi - c.Ratio.Lo) / 2; hw > worst {
			worst, widest = hw, m
		}
	}
	return worst, widest
}

// groupComparisons compares every mode of a group with the baseline,
// paired by round and Bonferroni-adjusted across the group: the one place
// the summary and the stopping rule get their statistics from.
func groupComparisons(o *Outcome, g Config, baseline string, modes []string) map[string]stats.Comparison {
	at := func(mode string) Config { c := g; c.Mode = mode; return c }
	base := collect(o, at(baseline))
	var cmps []stats.Comparison
	var names []string
	for _, m := range modes {
		if m == baseline || len(base.values) == 0 {
			continue
		}
		c := collect(o, at(m))
		if len(c.values) == 0 {
			continue
		}
		num, den := pairByRound(c, base)
		cmps = append(cmps, stats.ComparePaired(den, num, true, Alpha, Confidence))
		names = append(names, m)
	}
	stats.AdjustComparisons(cmps, Alpha)
	out := map[string]stats.Comparison{}
	for i, n := range names {
		out[n] = cmps[i]
	}
	return out
}

// String says where a group stands, for the header.
func (p Precision) String() string {
	name := string(p.Workload)
	if p.Size > 0 {
		name += fmt.Sprintf("/%dB", p.Size)
	}
	if p.Offload != "" && p.Offload != "default" {
		name += "/" + p.Offload
	}
	hw := "no interval yet"
	if p.HalfWidth >= 0 {
		hw = fmt.Sprintf("±%.1f points", p.HalfWidth*100)
	}
	switch p.Stopped {
	case "target":
		return fmt.Sprintf("%s: %s after %d rounds (target ±%.1f)", name, hw, p.Rounds, p.Target*100)
	case "budget":
		return fmt.Sprintf("%s: %s after %d rounds, widest %s; target ±%.1f needs ~%d rounds: beyond the budget", name, hw, p.Rounds, p.Widest, p.Target*100, p.NeededRounds)
	default:
		return fmt.Sprintf("%s: %s after %d rounds (%s)", name, hw, p.Rounds, p.Stopped)
	}
}
