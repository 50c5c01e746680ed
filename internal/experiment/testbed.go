package experiment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/probe"
	"github.com/latlab/latlab/internal/sockio"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// StatusOK is the ModeInfo.Status of a mode that is up: only such modes
// run trials (the others are "skipped" or "failed", with a reason).
const StatusOK = string(topo.StatusOK)

// Testbed is where a lab's clients and servers run: the namespace lab
// (topo's namespaces, servers in this process; RunLab), Docker containers
// (dockerlab), and whatever comes next (eBPF datapath modes, Kubernetes
// pods). RunTestbed is the one trial loop over it — calibration,
// interleaved rounds and the stopping rule, offload presets, attribution,
// the recorder — so a testbed only says what it has set up and runs single
// trials. Setting it up and taking it down stay with its owner.
type Testbed interface {
	// Modes lists the testbed's modes in report order, each with its
	// status and where its client and server are (ModeInfo); trials run
	// in the modes whose Status is StatusOK.
	Modes() []ModeInfo
	// Serve makes the server of every running mode ready for trials and
	// returns a function that stops what Serve started (a no-op for a
	// testbed whose servers came up with it). A server that stops
	// unexpectedly is reported through onEvent as a "server-error" event.
	Serve(onEvent func(Event)) (stop func(), err error)
	// Trial runs one trial of a running mode: the client, placed as
	// t.Placement says, against the mode's server for t.Warmup and then
	// t.Duration. RunClient does it for a client this process runs in a
	// network namespace it can enter.
	Trial(ctx context.Context, t Trial) (*workload.Result, *probe.Attribution, error)
	// Interfaces lists the testbed's own interfaces that offload presets
	// apply to (NS a namespace path, "" the caller's). They go away with
	// the testbed, so they are not journalled; nil leaves the presets to
	// LabSpec.Interfaces alone.
	Interfaces() ([]topo.Iface, error)
}

// Trial is one trial as a Testbed runs it: a configuration's mode,
// workload, size and placement, and how long to measure.
type Trial struct {
	Mode     string
	Workload wire.Workload
	// Size is the request and response size in bytes; 0 keeps the
	// workload's own (tcp_stream).
	Size      int
	Placement Placement
	// Duration is the measured window, after Warmup (discarded).
	Duration, Warmup time.Duration
	// Attribute samples kernel evidence over the measured window in the
	// client's namespace: /proc counters, and eBPF through EBPF when set.
	Attribute bool
	EBPF      *probe.EBPF
}

// RunTestbed runs out.Spec (defaulted and validated) on tb: it calibrates
// the placements when the spec names none ("calibrating" and "calibrated"
// events; the chosen placements go into out.Spec.Placements), begins the
// spec's recorder, runs every configuration of the running modes in
// interleaved rounds until RunRounds stops, ends the recorder and sets
// out.Finished. j journals what the run changes outside tb (offload
// snapshots of LabSpec.Interfaces). When ctx is cancelled it stops after
// the trial in progress and keeps what finished. onEvent (nil: none) is
// called from one goroutine at a time.
func RunTestbed(ctx context.Context, tb Testbed, j *journal.Journal, out *Outcome, onEvent func(Event)) error {
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	// Servers report from their own goroutines: serialise the callback.
	var mu sync.Mutex
	report := onEvent
	onEvent = func(e Event) { mu.Lock(); defer mu.Unlock(); report(e) }
	spec := &out.Spec

	var runErr error
	if len(spec.Placements) == 0 {
		onEvent(Event{Kind: "calibrating"})
		runErr = calibrate(ctx, tb, spec, out)
		if runErr == nil {
			onEvent(Event{Kind: "calibrated", Calibration: out.Calibration})
		}
	}
	begun := false
	if spec.Recorder != nil && runErr == nil {
		if err := spec.Recorder.Begin(out); err != nil {
			runErr = fmt.Errorf("record run: %w", err)
		} else {
			begun = true
		}
	}
	if runErr == nil {
		runErr = runTrials(ctx, tb, j, out, onEvent)
	}
	out.Finished = time.Now().UTC()
	if begun {
		if err := spec.Recorder.End(out); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("record run: %w", err))
		}
	}
	return runErr
}

// calibrate runs placement calibration in tb's baseline mode and folds the
// chosen placements into spec, what was measured into out.Calibration.
func calibrate(ctx context.Context, tb Testbed, spec *LabSpec, out *Outcome) error {
	if !slices.ContainsFunc(tb.Modes(), func(m ModeInfo) bool { return m.Name == spec.Baseline && m.Status == StatusOK }) {
		return fmt.Errorf("calibrate placement: baseline mode %s is not up", spec.Baseline)
	}
	allowed, err := sockio.AllowedCPUs()
	if err != nil {
		return fmt.Errorf("calibrate placement: %w", err)
	}
	stop, err := tb.Serve(func(Event) {})
	if err != nil {
		return err
	}
	defer stop()
	probe := func(ctx context.Context, w wire.Workload, p Placement, d, warm time.Duration) (*workload.Result, error) {
		res, _, err := tb.Trial(ctx, Trial{Mode: spec.Baseline, Workload: w, Size: spec.Sizes[0], Placement: p, Duration: d, Warmup: warm})
		return res, err
	}
	ps, cals, err := Calibrate(ctx, spec.Workloads, allowed, spec.Seed, probe)
	if err != nil {
		return err
	}
	spec.Placements, out.Calibration = ps, cals
	return nil
}

// trialConfig is one configuration with the preset and placement it names.
type trialConfig struct {
	Config
	off   offload.Preset
	place Placement
}

// configs lists the matrix: every running mode × workload × size ×
// offload preset × placement, in that order.
func configs(spec *LabSpec, modes []ModeInfo) []trialConfig {
	var cs []trialConfig
	for _, m := range modes {
		if m.Status != StatusOK {
			continue
		}
		for _, w := range spec.Workloads {
			sizes := spec.Sizes
			if w == wire.TCPStream {
				sizes = []int{0}
			}
			for _, sz := range sizes {
				for _, o := range spec.Offloads {
					for _, p := range PlacementsFor(spec.Placements, w) {
						pc := Config{Mode: m.Name, Workload: w, Size: sz, Offload: o.Name, Placement: p.Name}
						cs = append(cs, trialConfig{pc, o, p})
					}
				}
			}
		}
	}
	return cs
}

// runTrials starts tb's servers, sets up the offload axis and attribution
// the spec asks for, and runs the configurations through RunRounds.
func runTrials(ctx context.Context, tb Testbed, j *journal.Journal, out *Outcome, onEvent func(Event)) (err error) {
	spec := &out.Spec
	cs := configs(spec, tb.Modes())
	if len(cs) == 0 {
		return nil
	}
	stop, err := tb.Serve(onEvent)
	if err != nil {
		return err
	}
	defer stop()
	var axis *offloadAxis
	if len(spec.Offloads) > 1 || spec.Offloads[0].Name != offload.PresetDefault {
		own, err := tb.Interfaces()
		if err != nil {
			return err
		}
		if axis, err = newOffloadAxis(own, spec.Interfaces, j, spec.AllowHostNIC); err != nil {
			return err
		}
		defer func() {
			// Interfaces that existed before the run are put back and
			// verified whatever happened (interrupt included).
			err = errors.Join(err, axis.restoreTargets())
			out.OffloadNotes = axis.notes()
			axis.close()
		}()
	}

	var ebpf *probe.EBPF
	if spec.Attribute {
		out.EBPFTier = "proc"
		eb, err := probe.LoadEBPF()
		if err != nil {
			out.EBPFUnavailable = append(out.EBPFUnavailable, err.Error())
		} else {
			ebpf = eb
			defer eb.Close()
			out.EBPFTier = eb.Tier()
			for _, u := range eb.Unavailable() {
				out.EBPFUnavailable = append(out.EBPFUnavailable, fmt.Sprint(u))
			}
		}
	}
	byKey := map[Config]trialConfig{}
	var public []Config
	for _, c := range cs {
		byKey[c.Config] = c
		public = append(public, c.Config)
	}
	run := func(ctx context.Context, pc Config) (*workload.Result, *probe.Attribution, error) {
		c := byKey[pc]
		if axis != nil {
			if err := axis.apply(c.off); err != nil {
				return nil, nil, err
			}
		}
		return tb.Trial(ctx, Trial{Mode: c.Mode, Workload: c.Workload, Size: c.Size, Placement: c.place,
			Duration: spec.Duration, Warmup: spec.Warmup, Attribute: spec.Attribute, EBPF: ebpf})
	}
	return RunRounds(ctx, spec, out, public, PinnedCPUs(spec.Placements), run, onEvent)
}

// RunClient runs t's client in this process on threads in network
// namespace netns (a path; "" the caller's), dialling target, and with
// t.Attribute the kernel evidence of its measured window: the timed path
// of every testbed whose client namespace this process can enter.
func RunClient(ctx context.Context, netns, target string, t Trial) (*workload.Result, *probe.Attribution, error) {
	cfg := workload.Config{
		Target:     target,
		Workload:   t.Workload,
		Warmup:     t.Warmup,
		Duration:   t.Duration,
		NetNS:      netns,
		ClientCPUs: t.Placement.ClientCPUs,
		ServerCPU:  t.Placement.ServerCPU,
		Interval:   t.Duration,
		IOTimeout:  5 * time.Second,
	}
	if t.Size > 0 {
		cfg.ReqSize, cfg.RespSize = t.Size, t.Size
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	var sched *probe.Scheduled
	if t.Attribute {
		s := &probe.Sampler{Registry: probe.DefaultRegistry(probe.Options{NetNS: cfg.NetNS}), EBPF: t.EBPF}
		cfg.Window = func(start, end time.Time) { sched = probe.Schedule(s, start, end) }
	}
	res, err := workload.Run(ctx, cfg)
	w, _ := sched.Wait() // a collector that fails is reported in Unavailable
	if err != nil {
		return nil, nil, err
	}
	if w == nil {
		return res, nil, nil
	}
	a := w.Attribute(res.Transactions)
	return res, &a, nil
}

// PinnedCPUs lists the CPUs the placements pin, for the noise report.
func PinnedCPUs(ps []Placement) []int {
	var cpus []int
	for _, p := range ps {
		cpus = append(cpus, p.ClientCPUs...)
		if p.ServerCPU >= 0 {
			cpus = append(cpus, p.ServerCPU)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus)
}
