package experiment

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// Calibration is what the lab measured, before its trials, to pick each
// workload's CPU placement: short interleaved probes of every candidate
// placement in the baseline mode, and the one that resolves a mode's cost
// best that the workload can run on. A mode's cost is time added to every
// transaction (microseconds in the stack, the same whatever the
// placement), so the placement to measure it on is the one whose time per
// transaction is steadiest in microseconds: probe-to-probe CV × time per
// transaction. A cross-core round trip that waits ~70 µs for an idle vCPU
// to wake swings by microseconds and buries a 1 µs cost that a 5 µs
// same-core round trip shows as 15%.
type Calibration struct {
	Workload wire.Workload `json:"workload"`
	// Chosen names the placement the trials ran.
	Chosen string `json:"chosen"`
	// Reason says why, in words (printed in the header).
	Reason     string  `json:"reason"`
	Candidates []Probe `json:"candidates"`
}

// Probe is one candidate placement's calibration figures.
type Probe struct {
	Placement Placement `json:"placement"`
	// Probes is how many short runs were measured; RatePerSec their
	// median rate; CV their probe-to-probe coefficient of variation from
	// successive differences (slow drift between probes, which the
	// interleaved rounds cancel, left out); RoundTripUs the median round
	// trip (request/response workloads); JitterUs the noise in time per
	// transaction, CV × 1e6/RatePerSec, that the choice minimises.
	Probes      int     `json:"probes"`
	RatePerSec  float64 `json:"rate_per_sec"`
	CV          float64 `json:"cv"`
	RoundTripUs float64 `json:"round_trip_us,omitempty"`
	JitterUs    float64 `json:"jitter_us"`
	Error       string  `json:"error,omitempty"`
}

// Calibration settings: probesPerCandidate runs of probeDuration (after
// probeWarmup) per candidate and workload, interleaved. A cross-core
// candidate is kept while its jitter (µs per transaction) is within
// preferCrossWithin of same core's: on a quiet machine cross core is what
// two containers usually get.
const (
	probesPerCandidate = 5
	probeDuration      = 100 * time.Millisecond
	probeWarmup        = 30 * time.Millisecond
	preferCrossWithin  = 2
)

// Candidate placement names.
const (
	PlacementSameCore  = "same-core"
	PlacementCrossCore = "cross-core"
)

// candidatePlacements are the placements a machine with these allowed CPUs
// offers: same core (client and server on the first CPU) and, with two
// CPUs or more, cross core (client on the last, server on the first).
func candidatePlacements(allowed []int) []Placement {
	first := allowed[0]
	c := []Placement{{Name: PlacementSameCore, ClientCPUs: []int{first}, ServerCPU: first}}
	if len(allowed) > 1 {
		c = append(c, Placement{Name: PlacementCrossCore, ClientCPUs: []int{allowed[len(allowed)-1]}, ServerCPU: first})
	}
	return c
}

// ProbeFunc runs one short calibration probe of workload w with placement
// p (Duration probeDuration after probeWarmup) in the baseline mode.
type ProbeFunc func(ctx context.Context, w wire.Workload, p Placement, duration, warmup time.Duration) (*workload.Result, error)

// Calibrate picks a placement per workload by probing every candidate the
// allowed CPUs offer, interleaved, and returns the placements (each naming
// the workloads it serves) and what was measured. It takes well under
// 10 s: probesPerCandidate × (probeDuration + probeWarmup) per candidate
// and request/response workload; tcp_stream is not probed (it always
// needs two cores).
func Calibrate(ctx context.Context, workloads []wire.Workload, allowed []int, seed uint64, probe ProbeFunc) ([]Placement, []Calibration, error) {
	if len(allowed) == 0 {
		return nil, nil, fmt.Errorf("calibrate placement: no CPU allowed")
	}
	cands := candidatePlacements(allowed)
	var cals []Calibration
	// Probes: every (workload, candidate) probesPerCandidate times, in
	// shuffled rounds so drift hits candidates alike.
	type key struct {
		w wire.Workload
		p int
	}
	rates := map[key][]float64{}
	rtts := map[key][]float64{}
	errs := map[key]string{}
	var probed []wire.Workload
	for _, w := range workloads {
		if w != wire.TCPStream && len(cands) > 1 {
			probed = append(probed, w)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0xca1))
	for r := 0; r < probesPerCandidate && len(probed) > 0; r++ {
		var order []key
		for _, w := range probed {
			for i := range cands {
				order = append(order, key{w, i})
			}
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, k := range order {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			res, err := probe(ctx, k.w, cands[k.p], probeDuration, probeWarmup)
			if err != nil {
				errs[k] = err.Error()
				continue
			}
			rates[k] = append(rates[k], res.RatePerSec)
			if res.Latency != nil && res.Latency.P50 > 0 {
				rtts[k] = append(rtts[k], float64(res.Latency.P50)/1e3)
			}
		}
	}
	chosen := map[string][]wire.Workload{}
	for _, w := range workloads {
		cal := Calibration{Workload: w}
		for i, p := range cands {
			k := key{w, i}
			pr := Probe{Placement: p, Probes: len(rates[k]), RatePerSec: stats.Median(rates[k]), CV: successiveCV(rates[k]), RoundTripUs: stats.Median(rtts[k]), Error: errs[k]}
			if pr.RatePerSec > 0 {
				pr.JitterUs = pr.CV * 1e6 / pr.RatePerSec
			}
			cal.Candidates = append(cal.Candidates, pr)
		}
		cal.Chosen, cal.Reason = choosePlacement(w, cal.Candidates, len(allowed))
		cals = append(cals, cal)
		chosen[cal.Chosen] = append(chosen[cal.Chosen], w)
	}
	var out []Placement
	for _, p := range cands {
		if ws := chosen[p.Name]; len(ws) > 0 {
			p.Workloads = ws
			out = append(out, p)
		}
	}
	return out, cals, nil
}

// choosePlacement picks among probed candidates (same core first, then
// cross core) and says why.
func choosePlacement(w wire.Workload, cands []Probe, ncpu int) (string, string) {
	if ncpu == 1 {
		return PlacementSameCore, "one CPU allowed: client and server share it"
	}
	if w == wire.TCPStream {
		return PlacementCrossCore, "tcp_stream needs two cores: on one, sender and receiver take turns and measure the scheduler"
	}
	same, cross := cands[0], cands[1]
	switch {
	case same.Probes < 3 && cross.Probes < 3:
		return PlacementCrossCore, fmt.Sprintf("calibration probes failed (%s): cross core by default", firstNonEmpty(same.Error, cross.Error))
	case same.Probes < 3:
		return PlacementCrossCore, "same-core probes failed: " + same.Error
	case cross.Probes < 3:
		return PlacementSameCore, "cross-core probes failed: " + cross.Error
	}
	fig := func(p Probe) string {
		if p.RoundTripUs > 0 {
			return fmt.Sprintf("%.3g µs", p.RoundTripUs)
		}
		return fmt.Sprintf("%.3g/s", p.RatePerSec)
	}
	what := "round trip"
	if same.RoundTripUs == 0 || cross.RoundTripUs == 0 {
		what = "rate"
	}
	figures := fmt.Sprintf("cross-core %s %s vs %s same core, CV %.1f%% vs %.1f%%, jitter %.2g vs %.2g µs per transaction",
		what, fig(cross), fig(same), cross.CV*100, same.CV*100, cross.JitterUs, same.JitterUs)
	if same.JitterUs*preferCrossWithin < cross.JitterUs {
		why := "cross-core transactions swing by more microseconds than a mode's cost"
		if cross.RoundTripUs > 3*same.RoundTripUs && same.RoundTripUs > 0 {
			why = "idle-CPU wake-ups dominate every cross-core round trip and bury a mode's cost"
		}
		return PlacementSameCore, figures + ": " + why + "; pinned same core"
	}
	return PlacementCrossCore, figures + ": cross core resolves a mode's cost as well; pinned cross core"
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// successiveCV is the coefficient of variation estimated from successive
// differences (von Neumann): √(Σ(x[i+1]−x[i])² / 2(n−1)) over the mean.
// A slow drift that moves every candidate alike, and that interleaved
// rounds cancel, barely enters it; the probe-to-probe noise they cannot
// cancel does. 0 for fewer than two values.
func successiveCV(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	var sum, ss float64
	for i, x := range xs {
		sum += x
		if i > 0 {
			ss += (x - xs[i-1]) * (x - xs[i-1])
		}
	}
	mean := sum / float64(len(xs))
	if mean == 0 {
		return 0
	}
	return math.Sqrt(ss/float64(2*(len(xs)-1))) / math.Abs(mean)
}

// PlacementsFor returns the placements that apply to workload w: those
// naming it, and those naming no workload.
func PlacementsFor(ps []Placement, w wire.Workload) []Placement {
	var out []Placement
	for _, p := range ps {
		if len(p.Workloads) == 0 || slices.Contains(p.Workloads, w) {
			out = append(out, p)
		}
	}
	return out
}

// String is the header's line for the workload.
func (c Calibration) String() string {
	return fmt.Sprintf("%s: %s (%s)", c.Workload, c.Chosen, strings.TrimSpace(c.Reason))
}

// cv is the coefficient of variation (sample standard deviation over the
// mean); 0 for fewer than two values.
func cv(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	if mean == 0 {
		return 0
	}
	return math.Sqrt(ss/float64(len(xs)-1)) / math.Abs(mean)
}
