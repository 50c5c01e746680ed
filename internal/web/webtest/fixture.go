package webtest

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/hist"
	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// Run describes a synthetic run. Zero fields take the defaults noted.
type Run struct {
	Started time.Time // default: now
	Kind    string    // default "lab"
	Job     string
	Spec    string // spec name, default "synthetic"
	// Modes and their latency in µs (median of the synthetic
	// distribution); the first is the baseline. Default host 20,
	// veth-routed 26.
	Modes  []string
	LatUs  []float64
	Trials int // rounds, default 6
	// Workloads, default tcp_rr and tcp_stream.
	Workloads []wire.Workload
	// Samples per trial histogram, default 2000.
	Samples int
	Seed    uint64
	// Kernel, when set, replaces the recorded kernel release.
	Kernel     string
	Incomplete bool
	// FailTrial makes the first trial of the last mode fail.
	FailTrial bool
}

// Record writes r into st and returns the run id.
func Record(tb testing.TB, st *store.Store, r Run) int64 {
	tb.Helper()
	if r.Started.IsZero() {
		r.Started = time.Now()
	}
	if r.Kind == "" {
		r.Kind = "lab"
	}
	if r.Spec == "" {
		r.Spec = "synthetic"
	}
	if len(r.Modes) == 0 {
		r.Modes, r.LatUs = []string{"host", "veth-routed"}, []float64{20, 26}
	}
	if r.Trials == 0 {
		r.Trials = 6
	}
	if len(r.Workloads) == 0 {
		r.Workloads = []wire.Workload{wire.TCPRR, wire.TCPStream}
	}
	if r.Samples == 0 {
		r.Samples = 2000
	}
	rng := rand.New(rand.NewPCG(r.Seed, 42))
	o := &experiment.Outcome{
		Spec: experiment.LabSpec{Modes: r.Modes, Workloads: r.Workloads, Offloads: []offload.Preset{{Name: "default"}},
			Trials: r.Trials, Duration: 700 * time.Millisecond, Warmup: 200 * time.Millisecond, Sizes: []int{64},
			Seed: r.Seed + 1, Baseline: r.Modes[0], Placements: []experiment.Placement{{Name: "auto", ServerCPU: wire.CPUAuto}}},
		Prefix: "latlab-x", Started: r.Started, Incomplete: r.Incomplete,
	}
	for _, m := range r.Modes {
		o.Modes = append(o.Modes, experiment.ModeInfo{Name: m, Description: m, Status: "ok"})
	}
	rec := &experiment.StoreRecorder{Store: st, Kind: r.Kind, SpecName: r.Spec, SpecText: "name: " + r.Spec + "\n", Version: "test", JobName: r.Job}
	if err := rec.Begin(o); err != nil {
		tb.Fatal(err)
	}
	t0 := r.Started
	for round := 0; round < r.Trials; round++ {
		order := 0
		for _, w := range r.Workloads {
			for mi, m := range r.Modes {
				size := 64
				if w == wire.TCPStream {
					size = 0
				}
				tr := &experiment.TrialResult{Round: round, Order: order,
					Config: experiment.Config{Mode: m, Workload: w, Size: size, Offload: "default", Placement: "auto"}}
				order++
				t0 = t0.Add(time.Second)
				if r.FailTrial && round == 0 && mi == len(r.Modes)-1 && w == r.Workloads[0] {
					tr.Error = "synthetic failure"
				} else {
					tr.Result = result(rng, w, r.LatUs[mi], r.Samples, t0)
				}
				o.Trials = append(o.Trials, *tr)
				if err := rec.Trial(tr); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	o.Finished = t0.Add(time.Second)
	if err := rec.End(o); err != nil {
		tb.Fatal(err)
	}
	if r.Kernel != "" {
		ctx := context.Background()
		e, err := st.Environment(ctx, rec.RunID)
		if err != nil {
			tb.Fatal(err)
		}
		e.Kernel = r.Kernel
		if err := st.SetEnvironment(ctx, &e); err != nil {
			tb.Fatal(err)
		}
	}
	return rec.RunID
}

// result is one trial: a log-normal latency distribution around latUs
// with a slow tail, its rate and histogram.
func result(rng *rand.Rand, w wire.Workload, latUs float64, n int, at time.Time) *workload.Result {
	h := hist.NewDefault()
	jitter := 1 + 0.03*rng.NormFloat64()
	var sum float64
	for i := 0; i < n; i++ {
		v := latUs * 1000 * jitter * math.Exp(0.15*rng.NormFloat64())
		if rng.IntN(100) == 0 {
			v *= 3 + 5*rng.Float64()
		}
		h.Record(int64(v))
		sum += v
	}
	res := &workload.Result{Workload: w, Transactions: int64(n), DurationS: 0.7, StartedAt: at, Hist: h, Latency: workload.Summarize(h)}
	res.RatePerSec = float64(n) / (sum / 1e9)
	if w == wire.TCPStream {
		res.ThroughputBps = 8 * 1e9 / latUs * 1000 * jitter
		res.RatePerSec = 0
	}
	return res
}
