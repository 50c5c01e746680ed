package experiment

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latlab/latlab/internal/datapath"
	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/probe"
	"github.com/latlab/latlab/internal/server"
	"github.com/latlab/latlab/internal/sidecar"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// LabSpec is what `latlab lab` runs: modes × workloads, in Trials rounds.
type LabSpec struct {
	// Topology to build; nil means topo.Default().
	Topology *topo.Topology `json:"-"`
	// Modes to compare (nil: every mode of the topology).
	Modes []string `json:"modes"`
	// Workloads to run in every mode.
	Workloads []wire.Workload `json:"workloads"`
	// Offloads is the offload axis: presets applied to every interface of
	// the lab before a trial (default: just "default", no change).
	Offloads []offload.Preset `json:"offloads"`
	// Trials, when set, is the fixed number of rounds; every configuration
	// runs once a round. 0 means adaptive: at least MinTrials rounds, then
	// more until every ratio's interval is within TargetCI or Budget is
	// spent (see runRounds).
	Trials int `json:"trials"`
	// TargetCI is the half-width, on the ratio vs the baseline, the
	// adaptive rule stops at (default DefaultTargetCI: 2 points).
	TargetCI float64 `json:"target_ci,omitempty"`
	// Budget bounds the time the adaptive rule spends on rounds (default
	// DefaultBudget); the minimum rounds run whatever it says.
	Budget time.Duration `json:"budget_ns,omitempty"`
	// MinTrials is the adaptive rule's first stop (default: the fewest
	// rounds at which the signed-rank test can reach its Bonferroni level,
	// and at least DefaultMinTrials).
	MinTrials int `json:"min_trials,omitempty"`
	// NoCalibrate runs without placement calibration: with no Placements,
	// the automatic cross-core placement.
	NoCalibrate bool `json:"no_calibrate,omitempty"`
	// Duration and Warmup of each trial (the warm-up is discarded).
	Duration time.Duration `json:"duration_ns"`
	Warmup   time.Duration `json:"warmup_ns"`
	// Sizes is the message-size axis: request and response size in bytes
	// of the request/response workloads (default [64]). tcp_stream keeps
	// its own write size and runs once whatever the sizes.
	Sizes []int `json:"sizes"`
	// Seed makes the round orders reproducible (0: random).
	Seed uint64 `json:"seed"`
	// Baseline is the mode every other mode is compared with.
	Baseline string `json:"baseline"`
	// Placements is the CPU placement axis. Empty: calibrated before the
	// trials (per workload, the candidate placement with the least noise;
	// see calibrate), or with NoCalibrate one placement "auto": client at
	// the end of the allowed set, server at its start (cross core). A
	// placement naming Workloads applies to those workloads only.
	Placements []Placement `json:"placements"`
	// JournalDir holds the journal (default journal.DefaultDir).
	JournalDir string `json:"-"`
	// Undoers are the journal undo handlers RunLab sweeps dead runs'
	// journals with before it starts (nil: UndoHandlers, which knows
	// nothing of Docker runs); internal/cli passes its registry.
	Undoers journal.Undoers `json:"-"`
	// NAT backend for topo (default auto).
	NAT string `json:"-"`
	// Keep leaves the lab up after the run.
	Keep bool `json:"-"`
	// Recorder, if set, receives the run as it happens (the store).
	Recorder Recorder `json:"-"`
	// Interfaces are existing interfaces (outside the lab) the offload
	// presets are applied to as well; they are journalled and restored.
	Interfaces []Target `json:"interfaces,omitempty"`
	// AllowHostNIC permits Interfaces in the caller's own namespace.
	AllowHostNIC bool `json:"-"`
	// Attribute samples kernel evidence over every trial's measured
	// window: /proc counters always, eBPF tracepoints where they load.
	Attribute bool `json:"attribute,omitempty"`
}

// Target is an existing interface: a namespace path ("" for the caller's
// own namespace) and a device.
type Target struct {
	NetNS string `json:"netns"`
	Dev   string `json:"dev"`
}

// Placement pins the client's and server's timed threads, as `latlab bench
// --cpu --server-cpu` does. A spec file writes it as a PlacementSpec
// (server_cpu "auto", "none" or a number); this is the checked form.
type Placement struct {
	Name string `json:"name"`
	// ClientCPUs: nil means automatic (end of the allowed set).
	ClientCPUs []int `json:"client_cpus,omitempty"`
	// ServerCPU: wire.CPUAuto, wire.CPUNone or a CPU.
	ServerCPU int `json:"server_cpu"`
	// Workloads, when set, are the only workloads the placement applies
	// to (calibration gives each workload its own).
	Workloads []wire.Workload `json:"workloads,omitempty"`
}

// autoPlacement is the default placement.
var autoPlacement = Placement{Name: "auto", ServerCPU: wire.CPUAuto}

// Defaults for `latlab lab`.
const (
	DefaultTrials = 10 // rounds of a fixed run when a caller wants one (docker lab's old default)
	// DefaultMinTrials is the adaptive rule's least number of rounds.
	DefaultMinTrials = 6
	// DefaultTargetCI is the default half-width target on ratios (2 points).
	DefaultTargetCI = 0.02
	// DefaultBudget bounds the time of an adaptive run's rounds (the
	// minimum rounds always run).
	DefaultBudget   = 3 * time.Minute
	DefaultDuration = 50 * time.Millisecond
	DefaultWarmup   = 20 * time.Millisecond
	DefaultBaseline = "host"
)

// defaultWorkloads are the workloads `latlab lab` runs by default.
var defaultWorkloads = []wire.Workload{wire.TCPRR, wire.UDPRR, wire.TCPCRR, wire.TCPStream}

// DefaultWorkloads returns a fresh copy of the default workload list.
func DefaultWorkloads() []wire.Workload { return slices.Clone(defaultWorkloads) }

// Defaults fills unset fields.
func (s *LabSpec) Defaults() {
	if s.Topology == nil {
		s.Topology = topo.Default()
	}
	if s.Modes == nil {
		s.Modes = s.Topology.DefaultModeNames()
	}
	if len(s.Workloads) == 0 {
		s.Workloads = DefaultWorkloads()
	}
	if len(s.Offloads) == 0 {
		s.Offloads = []offload.Preset{{Name: offload.PresetDefault}}
	}
	if len(s.Sizes) == 0 {
		s.Sizes = []int{64}
	}
	if len(s.Placements) == 0 && s.NoCalibrate {
		s.Placements = []Placement{autoPlacement}
	}
	if s.Trials == 0 {
		if s.TargetCI == 0 {
			s.TargetCI = DefaultTargetCI
		}
		if s.Budget == 0 {
			s.Budget = DefaultBudget
		}
	}
	if s.Duration == 0 {
		s.Duration = DefaultDuration
	}
	if s.Baseline == "" {
		s.Baseline = DefaultBaseline
	}
	if s.Seed == 0 {
		s.Seed = rand.Uint64()
	}
	if s.JournalDir == "" {
		s.JournalDir = journal.DefaultDir
	}
	if s.NAT == "" {
		s.NAT = topo.NATAuto
	}
}

// undoers is the registry RunLab sweeps with.
func (s *LabSpec) undoers() journal.Undoers {
	if s.Undoers != nil {
		return s.Undoers
	}
	return UndoHandlers()
}

// Validate checks a defaulted spec.
func (s *LabSpec) Validate() error {
	if err := s.Topology.Validate(); err != nil {
		return err
	}
	for _, m := range s.Modes {
		if _, ok := s.Topology.Mode(m); !ok {
			return fmt.Errorf("unknown mode %q (have %s)", m, strings.Join(s.Topology.ModeNames(), ", "))
		}
	}
	if len(s.Modes) == 0 {
		return errors.New("no modes to run")
	}
	if _, ok := s.Topology.Mode(s.Baseline); !ok {
		return fmt.Errorf("baseline mode %q is not in the topology", s.Baseline)
	}
	for _, w := range s.Workloads {
		if _, err := wire.ParseWorkload(string(w)); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, p := range s.Offloads {
		if p.Name == "" || seen[p.Name] {
			return fmt.Errorf("offload presets need distinct names (%q)", p.Name)
		}
		seen[p.Name] = true
	}
	for _, sz := range s.Sizes {
		if sz < 1 || sz > wire.MaxMessageSize {
			return fmt.Errorf("size %d outside 1..%d", sz, wire.MaxMessageSize)
		}
	}
	seenP := map[string]bool{}
	for _, p := range s.Placements {
		if p.Name == "" || seenP[p.Name] {
			return fmt.Errorf("placements need distinct names (%q)", p.Name)
		}
		seenP[p.Name] = true
	}
	if len(s.Placements) > 0 {
		for _, w := range s.Workloads {
			if len(PlacementsFor(s.Placements, w)) == 0 {
				return fmt.Errorf("no placement applies to workload %s", w)
			}
		}
	}
	for _, t := range s.Interfaces {
		if t.Dev == "" {
			return fmt.Errorf("an interface needs a device name")
		}
		if s.AllowHostNIC {
			continue
		}
		// By identity, not by string: netns: /proc/1/ns/net, or a name
		// bind-mounted from the host's namespace, is the host too.
		host, err := topo.IsHostNetNS(t.NetNS)
		if err != nil {
			return fmt.Errorf("interface %s: cannot tell whether its namespace is the host's, refused: %w", t.Dev, err)
		}
		if host {
			where := "the caller's own namespace"
			if t.NetNS != "" {
				where = t.NetNS + ", the host's (or the caller's own) namespace"
			}
			return fmt.Errorf("interface %s is in %s: refused without --allow-host-nic (it would be journalled and restored, but it is the host's NIC)", t.Dev, where)
		}
	}
	if s.Trials < 0 || s.Trials > maxRounds {
		return fmt.Errorf("trials %d outside 1..%d (0: adaptive)", s.Trials, maxRounds)
	}
	if s.Trials == 0 && (s.TargetCI <= 0 || s.TargetCI >= 1) {
		return fmt.Errorf("target CI %v: want a ratio half-width in (0, 1), e.g. 0.02 for 2 points", s.TargetCI)
	}
	if s.Budget < 0 || s.Budget > MaxBudget {
		return fmt.Errorf("budget %v outside 0..%v", s.Budget, MaxBudget)
	}
	if s.MinTrials < 0 || s.MinTrials > maxRounds {
		return fmt.Errorf("minimum trials %d outside 0..%d", s.MinTrials, maxRounds)
	}
	// The same bounds as a spec file's, whichever way the spec was made
	// (flags, a file, a watch job).
	if err := CheckTrialDuration(s.Duration); err != nil {
		return fmt.Errorf("trial duration %w", err)
	}
	if err := CheckWarmup(s.Warmup); err != nil {
		return fmt.Errorf("warm-up %w", err)
	}
	for _, p := range s.Placements {
		for _, c := range p.ClientCPUs {
			if err := CheckCPU(c); err != nil {
				return fmt.Errorf("placement %s: client %w", p.Name, err)
			}
		}
		if p.ServerCPU >= 0 {
			if err := CheckCPU(p.ServerCPU); err != nil {
				return fmt.Errorf("placement %s: server %w", p.Name, err)
			}
		}
	}
	return nil
}

// TrialResult is one trial: one configuration in one round.
type TrialResult struct {
	Round int `json:"round"`
	Order int `json:"order"` // position within the round
	Config
	Result *workload.Result `json:"result,omitempty"`
	Error  string           `json:"error,omitempty"`
	// Attribution is the kernel evidence of the measured window
	// (LabSpec.Attribute).
	Attribution *probe.Attribution `json:"attribution,omitempty"`
}

// Config is one point of the experiment's matrix.
type Config struct {
	Mode      string        `json:"mode"`
	Workload  wire.Workload `json:"workload"`
	Size      int           `json:"size"` // 0 for tcp_stream (its own write size)
	Offload   string        `json:"offload"`
	Placement string        `json:"placement"`
}

// Key names the configuration: "mode=host/workload=tcp_rr/size=64/offload=default/placement=auto".
func (c Config) Key() string {
	return fmt.Sprintf("mode=%s/workload=%s/size=%d/offload=%s/placement=%s", c.Mode, c.Workload, c.Size, c.Offload, c.Placement)
}

// ModeInfo is a mode's build status.
type ModeInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
	ClientNS    string `json:"client_netns"`
	ServerNS    string `json:"server_netns"`
	Target      string `json:"target"`
	// Programs are the mode's eBPF datapath programs as attached: which,
	// on which device, at which hook, through TCX or tc.
	Programs []datapath.Info `json:"programs,omitempty"`
}

// Outcome is everything a lab run produced: the raw trials, before any
// statistics.
type Outcome struct {
	Spec       LabSpec       `json:"spec"`
	Prefix     string        `json:"prefix"`
	Modes      []ModeInfo    `json:"modes"`
	NATBackend string        `json:"nat_backend,omitempty"`
	BuildTime  time.Duration `json:"build_ns"`
	Trials     []TrialResult `json:"trials"`
	Started    time.Time     `json:"started"`
	Finished   time.Time     `json:"finished"`
	// Incomplete is set when the run was interrupted: the trials that
	// finished are kept.
	Incomplete bool `json:"incomplete"`
	// Kept is set when the lab was left up (--keep).
	Kept bool `json:"kept"`
	// OffloadNotes lists, per preset, what the kernel refused.
	OffloadNotes map[string][]string `json:"offload_notes,omitempty"`
	// EBPFTier is the attribution tier (tp_btf, raw_tracepoint,
	// tracepoint, proc); EBPFUnavailable says what did not load and why.
	EBPFTier        string   `json:"ebpf_tier,omitempty"`
	EBPFUnavailable []string `json:"ebpf_unavailable,omitempty"`
	// Calibration is what placement calibration measured and chose (the
	// chosen placements are in Spec.Placements).
	Calibration []Calibration `json:"calibration,omitempty"`
	// Precision says, per group of configurations compared with each
	// other, the ratio half-width reached and why its rounds stopped.
	Precision []Precision `json:"precision,omitempty"`
	// Noise is CPU steal and run-queue wait on the pinned CPUs over the
	// trials.
	Noise *probe.CPUNoise `json:"noise,omitempty"`
}

// Event reports progress.
type Event struct {
	Kind string // "built", "calibrating", "calibrated", "trial", "precision", "teardown", "server-error"
	// For "trial": the trial just finished.
	Trial *TrialResult
	// Done and Total count trials; Elapsed is time since the first trial;
	// ETA estimates the rest.
	Done, Total int
	Round       int
	Elapsed     time.Duration
	ETA         time.Duration
	// EndOfRound is set on the last trial of a round.
	EndOfRound bool
	// Lab is set for "built".
	Lab *topo.Lab
	// Err is set for "server-error": a server stopped unexpectedly.
	Err error
	// Calibration is set for "calibrated".
	Calibration []Calibration
	// Precision is set for "precision": after a round of an adaptive
	// run, where every group stands.
	Precision []Precision
}

// RunLab builds the lab, starts a server in every server namespace, runs
// every (mode, workload) configuration once per round in a fresh random
// order (RunTestbed over the namespace lab), and tears everything down
// (unless Keep). When ctx is cancelled it stops after the trial in
// progress, keeps what finished, and marks the outcome incomplete. onEvent
// may be nil.
func RunLab(ctx context.Context, spec LabSpec, onEvent func(Event)) (*Outcome, error) {
	spec.Defaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	// Leftovers of runs that died (kill -9) go first; live runs and kept
	// labs are left alone.
	journal.Sweep(spec.JournalDir, journal.SweepOptions{Handlers: spec.undoers()})

	out := &Outcome{Spec: spec, Started: time.Now().UTC()}
	prefix := topo.NewPrefix()
	j, err := journal.Create(spec.JournalDir, prefix, "latlab lab")
	if err != nil {
		return nil, err
	}
	// Build on a context that is not cancelled by a signal mid-build: the
	// build takes milliseconds and a half-built lab is torn down below.
	lab, err := topo.Build(context.WithoutCancel(ctx), spec.Topology, topo.BuildOptions{
		Prefix: prefix, Modes: spec.Modes, Journal: j, NAT: spec.NAT,
	})
	if err != nil {
		j.Remove()
		return nil, err
	}
	tb := labTestbed{lab}
	out.Prefix, out.NATBackend, out.BuildTime = lab.Prefix, lab.NATBackend, lab.BuildTime
	out.Modes = tb.Modes()
	onEvent(Event{Kind: "built", Lab: lab})

	runErr := RunTestbed(ctx, tb, j, out, onEvent)
	onEvent(Event{Kind: "teardown"})
	if spec.Keep {
		out.Kept = true
		if err := lab.Keep(); err != nil {
			return out, err
		}
	} else if err := lab.Teardown(); err != nil {
		return out, errors.Join(runErr, err)
	}
	return out, runErr
}

// AddTrial appends a finished trial, records it (rec may be nil) and
// reports it with progress: done of total trials since start.
func (o *Outcome) AddTrial(tr TrialResult, rec Recorder, onEvent func(Event), done, total int, start time.Time, endOfRound bool) error {
	o.Trials = append(o.Trials, tr)
	t := &o.Trials[len(o.Trials)-1]
	if rec != nil {
		if err := rec.Trial(t); err != nil {
			return fmt.Errorf("record trial: %w", err)
		}
	}
	el := time.Since(start)
	onEvent(Event{Kind: "trial", Trial: t, Done: done, Total: total, Round: tr.Round, Elapsed: el,
		ETA: time.Duration(float64(el) / float64(done) * float64(total-done)), EndOfRound: endOfRound})
	return nil
}

// labTestbed is the namespace lab as a Testbed: a mode's client runs in
// this process in the mode's client namespace, its server in this process
// in the server namespace (startServers).
type labTestbed struct{ lab *topo.Lab }

// Modes lists the lab's modes as they were built.
func (t labTestbed) Modes() []ModeInfo {
	var ms []ModeInfo
	for _, m := range t.lab.Modes {
		ms = append(ms, ModeInfo{
			Name: m.Mode.Name, Description: m.Mode.Description, Status: string(m.Status), Reason: m.Reason,
			ClientNS: m.ClientNS, ServerNS: m.ServerNS, Target: m.Mode.Target, Programs: m.Programs,
		})
	}
	return ms
}

// Serve starts the lab's servers (startServers).
func (t labTestbed) Serve(onEvent func(Event)) (func(), error) { return startServers(t.lab, onEvent) }

// Trial runs the client in the mode's client namespace (RunClient).
func (t labTestbed) Trial(ctx context.Context, tr Trial) (*workload.Result, *probe.Attribution, error) {
	m := t.lab.Mode(tr.Mode)
	if m == nil {
		return nil, nil, fmt.Errorf("run trial: no mode %s in lab %s", tr.Mode, t.lab.Prefix)
	}
	return RunClient(ctx, topo.NetNSPath(m.ClientNS), m.Mode.Target, tr)
}

// Interfaces lists every interface of the lab: wire ends, bridges, veth
// ends, macvlans and vxlan devices, by namespace path.
func (t labTestbed) Interfaces() ([]topo.Iface, error) {
	ifs, err := t.lab.Interfaces()
	if err != nil {
		return nil, err
	}
	for k := range ifs {
		ifs[k].NS = topo.NetNSPath(ifs[k].NS)
	}
	return ifs, nil
}

// startServers starts one latlab server in every namespace a selected mode
// serves from, and each mode's sidecar, and returns a function that stops
// them all.
func startServers(lab *topo.Lab, onEvent func(Event)) (func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var proxies []*sidecar.Proxy
	stop := func() {
		for _, p := range proxies {
			p.Close()
		}
		cancel()
		wg.Wait()
	}
	for _, m := range lab.Modes {
		if m.Status != topo.StatusOK || m.Mode.Sidecar == nil {
			continue
		}
		p, err := sidecar.Start(sidecar.Config{NetNS: topo.NetNSPath(m.ClientNS), Listen: m.Mode.Target, Upstream: m.Mode.Sidecar.Upstream})
		if err != nil {
			stop()
			return nil, fmt.Errorf("start sidecar for mode %s: %w", m.Mode.Name, err)
		}
		proxies = append(proxies, p)
	}
	started := map[string]bool{}
	for _, m := range lab.Modes {
		if m.Status != topo.StatusOK {
			continue
		}
		listen := m.Mode.Listen
		if listen == "" {
			listen = fmt.Sprintf(":%d", topo.DefaultPort)
		}
		key := m.ServerNS + " " + listen
		if started[key] {
			continue
		}
		started[key] = true
		srv, err := server.New(server.Config{Listen: listen, NetNS: topo.NetNSPath(m.ServerNS)})
		if err != nil {
			stop()
			return nil, fmt.Errorf("start server for mode %s in %s: %w", m.Mode.Name, m.ServerNS, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx); err != nil && ctx.Err() == nil {
				onEvent(Event{Kind: "server-error", Err: fmt.Errorf("server in %s: %w", m.ServerNS, err)})
			}
		}()
	}
	return stop, nil
}
