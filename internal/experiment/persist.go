package experiment

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/latlab/latlab/internal/hist"
	"github.com/latlab/latlab/internal/probe"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// Recorder receives a run as it happens: Begin once the lab is built, Trial
// after every trial, End when the run stops (complete or not). RunLab
// reports a Recorder error and stops the run.
type Recorder interface {
	Begin(o *Outcome) error
	Trial(t *TrialResult) error
	End(o *Outcome) error
}

// StoreRecorder writes a run into the store: one transaction per trial, so
// a run killed at any moment keeps every trial that finished.
type StoreRecorder struct {
	Store    *store.Store
	Kind     string // "lab", "run", "watch"
	SpecName string
	// SpecText is stored as the run's spec. Empty: the spec is rendered
	// from what ran (RenderSpec), after SpecHeader's comment lines.
	SpecText   string
	SpecHeader string
	Version    string
	JobName    string
	// RunID is set by Begin.
	RunID int64
}

// runMeta is what a stored run needs beyond its trials to be summarised
// again: kept as the environment's extra JSON.
type runMeta struct {
	Spec       LabSpec             `json:"spec"`
	Prefix     string              `json:"prefix"`
	Modes      []ModeInfo          `json:"modes"`
	NATBackend string              `json:"nat_backend,omitempty"`
	BuildNs    time.Duration       `json:"build_ns"`
	Kept       bool                `json:"kept,omitempty"`
	Notes      map[string][]string `json:"offload_notes,omitempty"`
	EBPFTier   string              `json:"ebpf_tier,omitempty"`
	EBPFUnav   []string            `json:"ebpf_unavailable,omitempty"`
	// Calibration, Precision and Noise: see Outcome.
	Calibration []Calibration   `json:"calibration,omitempty"`
	Precision   []Precision     `json:"precision,omitempty"`
	Noise       *probe.CPUNoise `json:"noise,omitempty"`
}

// trialExtra is per-trial detail the store has no column for.
type trialExtra struct {
	CPUPerTxn   workload.CPUCost   `json:"cpu_us_per_txn"`
	Placement   workload.Placement `json:"placement"`
	Congestion  string             `json:"congestion,omitempty"`
	Attribution *probe.Attribution `json:"attribution,omitempty"`
}

// Begin creates the run and records the environment.
func (r *StoreRecorder) Begin(o *Outcome) error {
	ctx := context.Background()
	text := r.SpecText
	if text == "" {
		b, err := RenderSpec(&o.Spec, r.SpecName, r.SpecHeader)
		if err != nil {
			return err
		}
		text = string(b)
	}
	id, err := r.Store.CreateRun(ctx, &store.Run{
		Started: o.Started, SpecName: r.SpecName, Spec: text, Seed: o.Spec.Seed,
		Version: r.Version, Kind: r.Kind, JobName: r.JobName,
	})
	if err != nil {
		return err
	}
	r.RunID = id
	return r.Store.SetEnvironment(ctx, Environment(id, r.Version, o))
}

// Trial stores one trial.
func (r *StoreRecorder) Trial(t *TrialResult) error {
	st := &store.Trial{
		RunID: r.RunID, Round: t.Round, Order: t.Order, ConfigKey: t.Config.Key(),
		Mode: t.Mode, Workload: string(t.Workload), Offload: t.Offload, Size: t.Size, Placement: t.Placement,
		Error: t.Error,
	}
	if res := t.Result; res != nil {
		st.Transactions, st.DurationS, st.RatePerSec = res.Transactions, res.DurationS, res.RatePerSec
		st.ThroughputBps, st.Lost, st.Started = res.ThroughputBps, res.Lost, res.StartedAt
		if l := res.Latency; l != nil {
			st.P50Ns, st.P90Ns, st.P99Ns, st.P999Ns, st.MaxNs = l.P50, l.P90, l.P99, l.P999, l.Max
		}
		if res.Hist != nil {
			b, err := res.Hist.MarshalBinary()
			if err != nil {
				return err
			}
			st.Hist = b
		}
		b, _ := json.Marshal(trialExtra{CPUPerTxn: res.CPUPerTxn, Placement: res.Placement, Congestion: res.Congestion, Attribution: t.Attribution})
		st.Counters = b
	}
	_, err := r.Store.AddTrial(context.Background(), st)
	return err
}

// End marks the run complete or incomplete and refreshes what the run
// learnt (offload notes).
func (r *StoreRecorder) End(o *Outcome) error {
	ctx := context.Background()
	if err := r.Store.SetEnvironment(ctx, Environment(r.RunID, r.Version, o)); err != nil {
		return err
	}
	status := store.StatusComplete
	if o.Incomplete {
		status = store.StatusIncomplete
	}
	return r.Store.FinishRun(ctx, r.RunID, status, o.Finished)
}

// Environment snapshots the machine for a run: kernel, CPU, latlab
// version, a few networking sysctls (read only), and the run's own
// metadata.
func Environment(runID int64, version string, o *Outcome) *store.Environment {
	e := &store.Environment{RunID: runID, Version: version, Cores: runtime.NumCPU(), CPUModel: cpuModel()}
	e.Kernel = kernelRelease()
	sys := map[string]string{}
	for _, k := range []string{"net.core.busy_poll", "net.core.busy_read", "net.core.default_qdisc", "net.core.netdev_budget",
		"net.ipv4.tcp_congestion_control", "net.ipv4.tcp_autocorking", "net.ipv4.tcp_low_latency"} {
		if b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(k, ".", "/")); err == nil {
			sys[k] = strings.TrimSpace(string(b))
		}
	}
	e.Sysctls, _ = json.Marshal(sys)
	e.Extra, _ = json.Marshal(runMeta{Spec: o.Spec, Prefix: o.Prefix, Modes: o.Modes, NATBackend: o.NATBackend,
		BuildNs: o.BuildTime, Kept: o.Kept, Notes: o.OffloadNotes, EBPFTier: o.EBPFTier, EBPFUnav: o.EBPFUnavailable,
		Calibration: o.Calibration, Precision: o.Precision, Noise: o.Noise})
	return e
}

// HostFingerprint is the machine as Environment records it: the kernel
// release, the CPU model and the number of cores.
func HostFingerprint() (kernel, cpu string, cores int) {
	return kernelRelease(), cpuModel(), runtime.NumCPU()
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// LoadOutcome rebuilds a stored run's Outcome, so it can be summarised,
// compared and exported like a fresh one.
func LoadOutcome(ctx context.Context, st *store.Store, runID int64) (*Outcome, *store.Run, error) {
	run, err := st.Run(ctx, runID)
	if err != nil {
		return nil, nil, err
	}
	env, err := st.Environment(ctx, runID)
	if err != nil {
		return nil, nil, fmt.Errorf("run %d: %w", runID, err)
	}
	var meta runMeta
	if len(env.Extra) > 0 {
		if err := json.Unmarshal(env.Extra, &meta); err != nil {
			return nil, nil, fmt.Errorf("run %d: environment: %w", runID, err)
		}
	}
	o := &Outcome{
		Spec: meta.Spec, Prefix: meta.Prefix, Modes: meta.Modes, NATBackend: meta.NATBackend, BuildTime: meta.BuildNs,
		Started: run.Started, Finished: run.Finished, Incomplete: run.Status != store.StatusComplete, Kept: meta.Kept,
		OffloadNotes: meta.Notes, EBPFTier: meta.EBPFTier, EBPFUnavailable: meta.EBPFUnav,
		Calibration: meta.Calibration, Precision: meta.Precision, Noise: meta.Noise,
	}
	trials, err := st.Trials(ctx, runID)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range trials {
		tr := TrialResult{Round: t.Round, Order: t.Order, Error: t.Error, Config: Config{
			Mode: t.Mode, Workload: wire.Workload(t.Workload), Size: t.Size, Offload: t.Offload, Placement: t.Placement,
		}}
		if t.Error == "" {
			res := &workload.Result{
				Workload: tr.Workload, Transactions: t.Transactions, DurationS: t.DurationS, RatePerSec: t.RatePerSec,
				ThroughputBps: t.ThroughputBps, Lost: t.Lost, StartedAt: t.Started,
			}
			if len(t.Hist) > 0 {
				h := &hist.Histogram{}
				if err := h.UnmarshalBinary(t.Hist); err != nil {
					return nil, nil, fmt.Errorf("run %d trial %d: histogram: %w", runID, t.ID, err)
				}
				res.Hist = h
				res.Latency = workload.Summarize(h)
			}
			var x trialExtra
			if json.Unmarshal(t.Counters, &x) == nil {
				res.CPUPerTxn, res.Placement, res.Congestion = x.CPUPerTxn, x.Placement, x.Congestion
				tr.Attribution = x.Attribution
			}
			tr.Result = res
		}
		o.Trials = append(o.Trials, tr)
	}
	return o, &run, nil
}
