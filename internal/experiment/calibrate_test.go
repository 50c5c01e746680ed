package experiment

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/probe"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// fakeProbe answers calibration probes with synthetic rates: per
// placement, a mean round trip and a relative noise.
func fakeProbe(rtt map[string]float64, noise map[string]float64, seed uint64) (ProbeFunc, *[]string) {
	rng := rand.New(rand.NewPCG(seed, 1))
	var calls []string
	return func(ctx context.Context, w wire.Workload, p Placement, d, warm time.Duration) (*workload.Result, error) {
		calls = append(calls, string(w)+"@"+p.Name)
		if rtt[p.Name] == 0 {
			return nil, errors.New("no such CPU")
		}
		us := rtt[p.Name] * (1 + noise[p.Name]*rng.NormFloat64())
		return &workload.Result{Workload: w, RatePerSec: 1e6 / us, Latency: &workload.Latency{P50: int64(us * 1e3)}}, nil
	}, &calls
}

// On a VM where a cross-core round trip waits for an idle vCPU (74 µs, CV
// 18%) and same core is quick and steady (5.6 µs, 1.2%), request/response
// workloads are pinned same core with the figures in the reason, and
// tcp_stream keeps two cores without being probed.
func TestCalibratePicksSteadyPlacement(t *testing.T) {
	probe, calls := fakeProbe(map[string]float64{PlacementSameCore: 5.6, PlacementCrossCore: 74},
		map[string]float64{PlacementSameCore: 0.012, PlacementCrossCore: 0.18}, 1)
	ps, cals, err := Calibrate(context.Background(), []wire.Workload{wire.TCPRR, wire.UDPRR, wire.TCPStream}, []int{0, 1}, 7, probe)
	if err != nil {
		t.Fatal(err)
	}
	if len(*calls) != 2*2*probesPerCandidate {
		t.Errorf("%d probes, want %d (tcp_stream not probed)", len(*calls), 2*2*probesPerCandidate)
	}
	for _, c := range *calls {
		if strings.HasPrefix(c, "tcp_stream") {
			t.Errorf("tcp_stream probed: %s", c)
		}
	}
	if len(cals) != 3 || cals[0].Chosen != PlacementSameCore || cals[1].Chosen != PlacementSameCore || cals[2].Chosen != PlacementCrossCore {
		t.Fatalf("calibration %+v", cals)
	}
	if !strings.Contains(cals[0].Reason, "idle-CPU wake-ups") || !strings.Contains(cals[0].Reason, "µs") || !strings.Contains(cals[2].Reason, "two cores") {
		t.Errorf("reasons: %q / %q", cals[0].Reason, cals[2].Reason)
	}
	if len(ps) != 2 || ps[0].Name != PlacementSameCore || ps[0].ServerCPU != 0 || ps[0].ClientCPUs[0] != 0 ||
		ps[1].Name != PlacementCrossCore || ps[1].ClientCPUs[0] != 1 || len(PlacementsFor(ps, wire.TCPStream)) != 1 ||
		PlacementsFor(ps, wire.TCPStream)[0].Name != PlacementCrossCore {
		t.Errorf("placements %+v", ps)
	}
}

// On a quiet machine where both are steady, cross core (what two
// containers usually get) is kept; with one allowed CPU there is nothing
// to probe and everything shares it.
func TestCalibrateQuietAndOneCPU(t *testing.T) {
	probe, _ := fakeProbe(map[string]float64{PlacementSameCore: 8, PlacementCrossCore: 12},
		map[string]float64{PlacementSameCore: 0.01, PlacementCrossCore: 0.012}, 2)
	_, cals, err := Calibrate(context.Background(), []wire.Workload{wire.TCPRR}, []int{2, 3}, 7, probe)
	if err != nil || cals[0].Chosen != PlacementCrossCore {
		t.Errorf("quiet: %v %+v", err, cals)
	}
	probe, calls := fakeProbe(map[string]float64{PlacementSameCore: 8}, nil, 3)
	ps, cals, err := Calibrate(context.Background(), []wire.Workload{wire.TCPRR, wire.TCPStream}, []int{0}, 7, probe)
	if err != nil || len(*calls) != 0 || len(ps) != 1 || ps[0].Name != PlacementSameCore || cals[1].Chosen != PlacementSameCore ||
		!strings.Contains(cals[1].Reason, "one CPU") {
		t.Errorf("one CPU: %v %d probes %+v %+v", err, len(*calls), ps, cals)
	}
	// Cross-core probes that fail leave same core.
	probe, _ = fakeProbe(map[string]float64{PlacementSameCore: 8}, nil, 4)
	_, cals, _ = Calibrate(context.Background(), []wire.Workload{wire.TCPRR}, []int{0, 1}, 7, probe)
	if cals[0].Chosen != PlacementSameCore || !strings.Contains(cals[0].Reason, "failed") {
		t.Errorf("failed cross: %+v", cals)
	}
}

// The stopping rule on synthetic trials: a quiet group stops at the
// target after the minimum rounds; a group too noisy for the budget stops
// and says how many rounds it needed; fixed runs run exactly Trials.
func TestRunRoundsStoppingRule(t *testing.T) {
	configs := []Config{
		{Mode: "host", Workload: wire.TCPRR, Size: 64, Offload: "default", Placement: "p"},
		{Mode: "veth", Workload: wire.TCPRR, Size: 64, Offload: "default", Placement: "p"},
		{Mode: "host", Workload: wire.TCPCRR, Size: 64, Offload: "default", Placement: "p"},
		{Mode: "veth", Workload: wire.TCPCRR, Size: 64, Offload: "default", Placement: "p"},
	}
	rng := rand.New(rand.NewPCG(5, 5))
	run := func(ctx context.Context, c Config) (*workload.Result, *probe.Attribution, error) {
		time.Sleep(time.Millisecond) // what a round costs, for the budget
		noise := 0.003
		if c.Workload == wire.TCPCRR {
			noise = 0.3
		}
		rate := 1000.0
		if c.Mode == "veth" {
			rate = 900
		}
		return &workload.Result{Workload: c.Workload, RatePerSec: rate * (1 + noise*rng.NormFloat64())}, nil, nil
	}
	spec := &LabSpec{Baseline: "host", TargetCI: 0.02, Budget: time.Second, Seed: 1,
		Workloads: []wire.Workload{wire.TCPRR, wire.TCPCRR}, Sizes: []int{64},
		Offloads: []offload.Preset{{Name: "default"}}, Placements: []Placement{{Name: "p"}}}
	out := &Outcome{Spec: *spec, Modes: []ModeInfo{{Name: "host", Status: "ok"}, {Name: "veth", Status: "ok"}}}
	if err := RunRounds(context.Background(), spec, out, configs, nil, run, func(Event) {}); err != nil {
		t.Fatal(err)
	}
	if len(out.Precision) != 2 {
		t.Fatalf("precision %+v", out.Precision)
	}
	rr, crr := out.Precision[0], out.Precision[1]
	if rr.Stopped != "target" || !rr.Met() || rr.Rounds != spec.MinTrials {
		t.Errorf("quiet group: %+v (min %d)", rr, spec.MinTrials)
	}
	if crr.Stopped != "budget" || crr.Met() || crr.NeededRounds <= crr.Rounds {
		t.Errorf("noisy group: %+v", crr)
	}
	s := Summarize(out)
	if !strings.Contains(s.TooNoisy, "tcp_crr") || strings.Contains(s.TooNoisy, "tcp_rr/") {
		t.Errorf("too noisy line: %q", s.TooNoisy)
	}
	if r := findResult(s, "veth", "tcp_rr"); r == nil || r.Verdict != "worse" || r.RatioVsHost.CIHigh >= 1 || r.RatioVsHost.CIHigh-r.RatioVsHost.CILow > 0.04 {
		t.Errorf("tcp_rr veth: %+v", r)
	}

	fixed := &LabSpec{Baseline: "host", Trials: 3, Seed: 1}
	out = &Outcome{Spec: *fixed}
	if err := RunRounds(context.Background(), fixed, out, configs, nil, run, func(Event) {}); err != nil {
		t.Fatal(err)
	}
	if len(out.Trials) != 12 || out.Precision[0].Stopped != "fixed" || out.Precision[0].Rounds != 3 {
		t.Errorf("fixed: %d trials, %+v", len(out.Trials), out.Precision)
	}
}

func findResult(s *Summary, mode, w string) *ModeResult {
	for i := range s.Results {
		if s.Results[i].Mode == mode && s.Results[i].Workload == w {
			return &s.Results[i]
		}
	}
	return nil
}

// A group that cannot reach its target in the budget left is paused, not
// given up on: the groups that fit run first (without it), and once they
// are done it goes on alone with what is left, and only then stops
// ("budget"), with its rounds counted as the rounds it ran.
func TestRunRoundsPausesThenResumes(t *testing.T) {
	var configs []Config
	for _, w := range []wire.Workload{wire.TCPRR, wire.UDPRR, wire.TCPCRR} {
		for _, m := range []string{"host", "veth"} {
			configs = append(configs, Config{Mode: m, Workload: w, Size: 64, Offload: "default", Placement: "p"})
		}
	}
	noise := map[wire.Workload]float64{wire.TCPRR: 0.003, wire.UDPRR: 0.03, wire.TCPCRR: 0.3}
	rng := rand.New(rand.NewPCG(7, 7))
	run := func(ctx context.Context, c Config) (*workload.Result, *probe.Attribution, error) {
		time.Sleep(time.Millisecond)
		rate := 1000.0
		if c.Mode == "veth" {
			rate = 900
		}
		return &workload.Result{Workload: c.Workload, RatePerSec: rate * (1 + noise[c.Workload]*rng.NormFloat64())}, nil, nil
	}
	spec := &LabSpec{Baseline: "host", TargetCI: 0.02, Budget: 1500 * time.Millisecond, Seed: 3,
		Workloads: []wire.Workload{wire.TCPRR, wire.UDPRR, wire.TCPCRR}, Sizes: []int{64},
		Offloads: []offload.Preset{{Name: "default"}}, Placements: []Placement{{Name: "p"}}}
	out := &Outcome{Spec: *spec, Modes: []ModeInfo{{Name: "host", Status: "ok"}, {Name: "veth", Status: "ok"}}}
	if err := RunRounds(context.Background(), spec, out, configs, nil, run, func(Event) {}); err != nil {
		t.Fatal(err)
	}
	rr, udp, crr := out.Precision[0], out.Precision[1], out.Precision[2]
	if rr.Stopped != "target" || udp.Stopped != "target" || crr.Stopped != "budget" {
		t.Fatalf("stopped: %q %q %q", rr.Stopped, udp.Stopped, crr.Stopped)
	}
	if udp.Rounds <= rr.Rounds {
		t.Fatalf("udp_rr met its target in %d rounds, no later than tcp_rr's %d: nothing to pause behind", udp.Rounds, rr.Rounds)
	}
	// Global round numbers at which tcp_crr ran, and trial counts.
	var crrRounds []int
	perGroup := map[wire.Workload]int{}
	lastUDP := 0
	for _, tr := range out.Trials {
		perGroup[tr.Workload]++
		switch tr.Workload {
		case wire.TCPCRR:
			if tr.Mode == "host" {
				crrRounds = append(crrRounds, tr.Round)
			}
		case wire.UDPRR:
			lastUDP = max(lastUDP, tr.Round)
		}
	}
	for w, p := range map[wire.Workload]Precision{wire.TCPRR: rr, wire.UDPRR: udp, wire.TCPCRR: crr} {
		if perGroup[w] != 2*p.Rounds {
			t.Errorf("%s: %d trials for %d rounds", w, perGroup[w], p.Rounds)
		}
	}
	paused, resumed := false, false
	for i, r := range crrRounds {
		if i > 0 && r > crrRounds[i-1]+1 {
			paused = true
		}
		if r > lastUDP {
			resumed = true
		}
	}
	if !paused || !resumed || crr.Rounds <= rr.Rounds {
		t.Errorf("tcp_crr ran rounds %v (udp_rr's last %d): paused %v, resumed %v", crrRounds, lastUDP, paused, resumed)
	}
	if crr.NeededRounds <= crr.Rounds || crr.HalfWidth <= crr.Target {
		t.Errorf("tcp_crr: %+v", crr)
	}
}

// Comparably noisy placements (the same CV) do not resolve a mode's cost
// alike: the cost is microseconds added to each transaction, and a
// cross-core round trip fifteen times longer swings by fifteen times the
// microseconds. Calibration picks same core and says why; the CV-only rule
// it replaced picked cross core ("as steady") and hid the penalty.
func TestCalibrateWeighsTheModeCostsShare(t *testing.T) {
	probe, _ := fakeProbe(map[string]float64{PlacementSameCore: 5, PlacementCrossCore: 74},
		map[string]float64{PlacementSameCore: 0.04, PlacementCrossCore: 0.04}, 5)
	_, cals, err := Calibrate(context.Background(), []wire.Workload{wire.TCPRR}, []int{0, 1}, 7, probe)
	if err != nil {
		t.Fatal(err)
	}
	c := cals[0]
	if c.Chosen != PlacementSameCore || !strings.Contains(c.Reason, "jitter") || !strings.Contains(c.Reason, "bury a mode's cost") {
		t.Fatalf("chose %s: %s", c.Chosen, c.Reason)
	}
	same, cross := c.Candidates[0], c.Candidates[1]
	if same.Placement.Name != PlacementSameCore {
		same, cross = cross, same
	}
	if cross.JitterUs < 5*same.JitterUs {
		t.Errorf("jitter cross %.3g µs vs same %.3g µs: want the cross-core one several times larger", cross.JitterUs, same.JitterUs)
	}
}

// The blocked design on a drifting machine: the rate drifts slowly (a
// sinusoid over three rounds), the same for every mode, and a mode is 10%
// slower. Pairing a mode with its baseline in one group's stretch of the
// round (roundOrder) cancels the drift; pairing them anywhere in a round
// of every group shuffled together (the design roundOrder replaced) does
// not: the per-round log ratios spread over twice as wide.
func TestBlockedOrderCancelsDrift(t *testing.T) {
	var configs []Config
	for _, w := range []wire.Workload{wire.TCPRR, wire.UDPRR, wire.TCPCRR, wire.TCPStream} {
		for _, m := range []string{"host", "bridge-nat", "veth-routed", "macvlan", "vxlan", "ipvlan-l2"} {
			configs = append(configs, Config{Mode: m, Workload: w, Size: 64, Offload: "default", Placement: "p"})
		}
	}
	_, members := groupConfigs(configs)
	active := []bool{true, true, true, true}
	spread := func(blocked bool) float64 {
		rng := rand.New(rand.NewPCG(11, 12))
		var lr []float64
		tick := 0
		for range 16 {
			var order []Config
			if blocked {
				order = roundOrder(rng, members, active)
			} else {
				order = slices.Clone(configs)
				rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			}
			rate := map[string]float64{}
			for _, c := range order {
				drift := 1 + 0.15*math.Sin(2*math.Pi*float64(tick)/float64(3*len(configs)))
				tick++
				if c.Workload == wire.TCPRR {
					r := 1000 * drift
					if c.Mode == "veth-routed" {
						r *= 0.9
					}
					rate[c.Mode] = r
				}
			}
			lr = append(lr, math.Log(rate["veth-routed"]/rate["host"]))
		}
		var sum, ss float64
		for _, x := range lr {
			sum += x
		}
		mean := sum / float64(len(lr))
		for _, x := range lr {
			ss += (x - mean) * (x - mean)
		}
		return math.Sqrt(ss / float64(len(lr)-1))
	}
	b, u := spread(true), spread(false)
	if b*2 > u {
		t.Errorf("per-round log-ratio SD: blocked %.4f, unblocked %.4f: want blocked at most half", b, u)
	}
	t.Logf("per-round log-ratio SD under drift: blocked %.4f, unblocked %.4f", b, u)
}

// When no group can reach its target in the budget, what is left goes to
// the request/response groups: tcp_rr runs on until the budget is spent,
// tcp_crr stops after the minimum rounds and reports what it reached; the
// time each group took is recorded.
func TestRunRoundsBudgetGoesToRR(t *testing.T) {
	var configs []Config
	for _, w := range []wire.Workload{wire.TCPRR, wire.TCPCRR} {
		for _, m := range []string{"host", "veth"} {
			configs = append(configs, Config{Mode: m, Workload: w, Size: 64, Offload: "default", Placement: "p"})
		}
	}
	rng := rand.New(rand.NewPCG(9, 9))
	run := func(ctx context.Context, c Config) (*workload.Result, *probe.Attribution, error) {
		time.Sleep(time.Millisecond)
		return &workload.Result{Workload: c.Workload, RatePerSec: 1000 * (1 + 0.3*rng.NormFloat64())}, nil, nil
	}
	spec := &LabSpec{Baseline: "host", TargetCI: 0.005, Budget: 400 * time.Millisecond, Seed: 3,
		Workloads: []wire.Workload{wire.TCPRR, wire.TCPCRR}, Sizes: []int{64},
		Offloads: []offload.Preset{{Name: "default"}}, Placements: []Placement{{Name: "p"}}}
	out := &Outcome{Spec: *spec, Modes: []ModeInfo{{Name: "host", Status: "ok"}, {Name: "veth", Status: "ok"}}}
	if err := RunRounds(context.Background(), spec, out, configs, nil, run, func(Event) {}); err != nil {
		t.Fatal(err)
	}
	rr, crr := out.Precision[0], out.Precision[1]
	if rr.Workload != wire.TCPRR || crr.Workload != wire.TCPCRR {
		t.Fatalf("precision order: %+v", out.Precision)
	}
	if rr.Stopped != "budget" || crr.Stopped != "budget" || crr.Rounds != spec.MinTrials || rr.Rounds < 2*crr.Rounds {
		t.Errorf("tcp_rr %d rounds (%s), tcp_crr %d (%s), minimum %d: want tcp_crr stopped at the minimum and tcp_rr given the rest",
			rr.Rounds, rr.Stopped, crr.Rounds, crr.Stopped, spec.MinTrials)
	}
	if rr.SpentS <= crr.SpentS || crr.SpentS <= 0 {
		t.Errorf("spent: tcp_rr %.3fs, tcp_crr %.3fs", rr.SpentS, crr.SpentS)
	}
}
