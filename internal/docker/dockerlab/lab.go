// Package dockerlab runs `latlab lab`'s comparison on real Docker networks:
// a latlab server in a container on every network mode, a client container
// next to it, and the same interleaved trials and statistics as the
// namespace lab. It produces an experiment.Outcome, so
// experiment.Summarize, report.WriteLab and experiment.StoreRecorder work
// unchanged.
//
// The timed path is the same as lab's: the client runs in this process
// (workload.Run) on threads that enter the client container's network
// namespace (/proc/PID/ns/net); the server runs as `latlab serve` inside its
// container.
package dockerlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/latlab/latlab/internal/docker"
	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/probe"
	"github.com/latlab/latlab/internal/sockio"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// Modes, in the order they are built and reported.
const (
	ModeHost       = "host"        // --network host: server and client in the daemon's namespace, over loopback
	ModeBridge     = "bridge"      // the default bridge (docker0)
	ModeUserBridge = "user-bridge" // a user-defined bridge network
	ModePublished  = "published"   // docker run -p: client on the host, dials the bridge gateway's published port (DNAT)
	ModeMacvlan    = "macvlan"     // a macvlan network on --macvlan-parent, bridge mode
)

var modeDescriptions = map[string]string{
	ModeHost:       "--network host: client and server containers share the daemon's namespace (loopback)",
	ModeBridge:     "default bridge (docker0): two containers, veth + bridge",
	ModeUserBridge: "user-defined bridge network: two containers, veth + bridge",
	ModePublished:  "docker run -p: host-network client dials the published port on the bridge gateway (DNAT)",
	ModeMacvlan:    "macvlan network (bridge mode) on the parent device: two containers",
}

// AllModes lists every mode.
func AllModes() []string {
	return []string{ModeHost, ModeBridge, ModeUserBridge, ModePublished, ModeMacvlan}
}

// Spec is what `latlab docker lab` runs.
type Spec struct {
	// Host is the daemon address (unix:///...); "" means $DOCKER_HOST or
	// the default socket.
	Host string
	// Binary is the latlab to put in the image ("": this process's
	// executable); a dynamically linked one is bundled with its
	// interpreter and shared libraries (docker.RootFiles).
	Binary string
	// Modes to compare (nil: all; macvlan only with MacvlanParent).
	Modes []string
	// MacvlanParent is the parent device of the macvlan network, in the
	// daemon's network namespace; MacvlanSubnet (optional) its subnet.
	MacvlanParent, MacvlanSubnet string
	Workloads                    []wire.Workload
	// Trials fixes the rounds; 0: adaptive, as the lab's (TargetCI,
	// Budget, MinTrials: experiment.LabSpec).
	Trials           int
	TargetCI         float64
	Budget           time.Duration
	MinTrials        int
	Duration, Warmup time.Duration
	// Size of requests and responses (tcp_stream keeps its own).
	Size int
	Seed uint64
	// Baseline is the mode the others are compared with (host).
	Baseline string
	// Port the servers listen on inside their containers (and on the host
	// network for the host mode); PublishedPort is the host port of the
	// published mode.
	Port, PublishedPort int
	// Placement of the timed threads (as lab's --cpu/--server-cpu); an
	// unnamed placement is calibrated per workload in the baseline mode,
	// as the lab's (or, with NoCalibrate, automatic cross core).
	Placement   experiment.Placement
	NoCalibrate bool
	JournalDir  string
	Recorder    experiment.Recorder
	// OnBuilt, if set, is called once the modes are set up.
	OnBuilt func(modes []experiment.ModeInfo, build time.Duration)
}

// Defaults fills unset fields.
func (s *Spec) Defaults() {
	if s.Modes == nil {
		for _, m := range AllModes() {
			if m != ModeMacvlan || s.MacvlanParent != "" {
				s.Modes = append(s.Modes, m)
			}
		}
	}
	if s.Baseline == "" {
		s.Baseline = ModeHost
	}
	if !slices.Contains(s.Modes, s.Baseline) {
		s.Modes = append([]string{s.Baseline}, s.Modes...)
	}
	if len(s.Workloads) == 0 {
		s.Workloads = experiment.DefaultWorkloads()
	}
	if s.Trials == 0 {
		if s.TargetCI == 0 {
			s.TargetCI = experiment.DefaultTargetCI
		}
		if s.Budget == 0 {
			s.Budget = experiment.DefaultBudget
		}
	}
	if s.Duration == 0 {
		s.Duration = experiment.DefaultDuration
	}
	if s.Size == 0 {
		s.Size = 64
	}
	if s.Seed == 0 {
		s.Seed = mrand.Uint64()
	}
	if s.Port == 0 {
		s.Port = wire.DefaultPort
	}
	if s.PublishedPort == 0 {
		s.PublishedPort = 17707
	}
	if s.JournalDir == "" {
		s.JournalDir = journal.DefaultDir
	}
	if s.Placement.Name == "" && s.NoCalibrate {
		s.Placement = experiment.Placement{Name: "auto", ServerCPU: wire.CPUAuto}
	}
}

// Validate checks a defaulted spec.
func (s *Spec) Validate() error {
	for _, m := range s.Modes {
		if _, ok := modeDescriptions[m]; !ok {
			return fmt.Errorf("unknown docker mode %q (have %s)", m, strings.Join(AllModes(), ", "))
		}
	}
	if _, ok := modeDescriptions[s.Baseline]; !ok {
		return fmt.Errorf("unknown baseline mode %q", s.Baseline)
	}
	for _, w := range s.Workloads {
		if _, err := wire.ParseWorkload(string(w)); err != nil {
			return err
		}
	}
	if s.Trials < 0 || s.Trials > 1000 {
		return fmt.Errorf("trials %d outside 1..1000 (0: adaptive)", s.Trials)
	}
	if s.Trials == 0 && (s.TargetCI <= 0 || s.TargetCI >= 1) {
		return fmt.Errorf("target CI %v: want a ratio half-width in (0, 1)", s.TargetCI)
	}
	if s.Duration < 50*time.Millisecond || s.Duration%time.Millisecond != 0 || s.Warmup < 0 || s.Warmup%time.Millisecond != 0 {
		return fmt.Errorf("duration %v (at least 50ms) and warm-up %v must be whole milliseconds", s.Duration, s.Warmup)
	}
	if s.Size < 1 || s.Size > wire.MaxMessageSize {
		return fmt.Errorf("size %d outside 1..%d", s.Size, wire.MaxMessageSize)
	}
	if s.Port < 1 || s.Port > 65535 || s.PublishedPort < 1 || s.PublishedPort > 65535 {
		return fmt.Errorf("ports %d/%d outside 1..65535", s.Port, s.PublishedPort)
	}
	return nil
}

// JournalData is what a "docker" journal entry carries.
type JournalData struct {
	Host  string `json:"host"`
	Label string `json:"label"`
}

// NewRunID returns a fresh run id ("latlab-d3fa9c1e"), used as the journal
// id, the value of the run label and the prefix of object names.
func NewRunID() string {
	var b [4]byte
	rand.Read(b[:])
	return "latlab-d" + hex.EncodeToString(b[:])
}

type mode struct {
	info           experiment.ModeInfo
	server, client *docker.Running
}

// RunLab sets up every mode, runs every (mode, workload) once per round in
// a fresh random order, and removes every labelled object at the end
// (interrupt included: ctx cancelled stops after the trial in progress and
// marks the outcome incomplete). onEvent receives "trial" and "teardown"
// events, as experiment.RunLab sends them; it may be nil.
func RunLab(ctx context.Context, spec Spec, onEvent func(experiment.Event)) (out *experiment.Outcome, err error) {
	spec.Defaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if onEvent == nil {
		onEvent = func(experiment.Event) {}
	}
	bin := spec.Binary
	if bin == "" {
		if bin, err = docker.SelfBinary(); err != nil {
			return nil, err
		}
	} else if err := docker.CheckBinary(bin); err != nil {
		return nil, err
	}
	journal.Sweep(spec.JournalDir, journal.SweepOptions{Handlers: experiment.UndoHandlers()})
	eng, err := docker.Open(ctx, spec.Host)
	if err != nil {
		return nil, err
	}
	defer eng.Close()

	runID := NewRunID()
	j, err := journal.Create(spec.JournalDir, runID, "latlab docker lab")
	if err != nil {
		return nil, err
	}
	data, _ := json.Marshal(JournalData{Host: eng.Host, Label: docker.LabelRun + "=" + runID})
	if err := j.Record(journal.Entry{Kind: docker.JournalKind, Name: runID, Data: data}); err != nil {
		j.Remove()
		return nil, err
	}
	defer func() {
		// Whatever happened (interrupt included): remove every labelled
		// object, then the journal. If removal fails the journal stays for
		// `latlab cleanup`.
		onEvent(experiment.Event{Kind: "teardown"})
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if cerr := eng.Cleanup(cctx, runID); cerr != nil {
			err = errors.Join(err, fmt.Errorf("docker cleanup (run 'latlab cleanup'): %w", cerr))
			j.MarkKept()
			return
		}
		j.Remove()
	}()

	out = &experiment.Outcome{
		Spec: experiment.LabSpec{
			Modes: spec.Modes, Workloads: spec.Workloads, Offloads: []offload.Preset{{Name: offload.PresetDefault}},
			Sizes: []int{spec.Size}, Trials: spec.Trials, TargetCI: spec.TargetCI, Budget: spec.Budget, MinTrials: spec.MinTrials,
			Duration: spec.Duration, Warmup: spec.Warmup, Baseline: spec.Baseline, Seed: spec.Seed,
			JournalDir: spec.JournalDir, Recorder: spec.Recorder, NoCalibrate: spec.NoCalibrate,
		},
		Prefix: runID, NATBackend: "docker", Started: time.Now().UTC(),
	}
	bctx := context.WithoutCancel(ctx) // a half-built run is removed above
	t0 := time.Now()
	img, err := eng.EnsureImage(bctx, bin)
	if err != nil {
		return nil, err
	}
	modes := setup(bctx, eng, &spec, img, runID)
	out.BuildTime = time.Since(t0)
	for _, m := range modes {
		out.Modes = append(out.Modes, m.info)
	}
	if spec.OnBuilt != nil {
		spec.OnBuilt(out.Modes, out.BuildTime)
	}

	var runErr error
	if spec.Placement.Name != "" {
		out.Spec.Placements = []experiment.Placement{spec.Placement}
	} else {
		onEvent(experiment.Event{Kind: "calibrating"})
		if runErr = calibrate(ctx, &spec, modes, out); runErr == nil {
			onEvent(experiment.Event{Kind: "calibrated", Calibration: out.Calibration})
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
		runErr = runTrials(ctx, eng, &spec, modes, out, onEvent)
	}
	out.Finished = time.Now().UTC()
	if begun {
		if err := spec.Recorder.End(out); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("record run: %w", err))
		}
	}
	return out, runErr
}

// setup creates every mode's network and containers; a mode that fails is
// marked failed (or skipped) with the reason and the others go on.
func setup(ctx context.Context, eng *docker.Engine, spec *Spec, img, runID string) []*mode {
	var modes []*mode
	serve := func(listen string) []string { return []string{"serve", "--listen", listen, "--log-level", "warn"} }
	idle := serve("127.0.0.1:0") // a client container only has to stay up
	port := fmt.Sprint(spec.Port)
	pair := func(m *mode, srv, cli docker.Container) error {
		srv.Image, cli.Image, srv.RunID, cli.RunID = img, img, runID, runID
		srv.Name, cli.Name = runID+"-"+m.info.Name+"-server", runID+"-"+m.info.Name+"-client"
		var err error
		if m.server, err = eng.Run(ctx, srv); err != nil {
			return err
		}
		if err := waitServing(ctx, eng, m.server.ID); err != nil {
			return err
		}
		m.client, err = eng.Run(ctx, cli)
		return err
	}
	for _, name := range AllModes() {
		if !slices.Contains(spec.Modes, name) {
			continue
		}
		m := &mode{info: experiment.ModeInfo{Name: name, Description: modeDescriptions[name], Status: "ok"}}
		modes = append(modes, m)
		var err error
		switch name {
		case ModeHost:
			err = pair(m, docker.Container{Network: "host", Cmd: serve(":" + port)}, docker.Container{Network: "host", Cmd: idle})
			m.info.Target = net.JoinHostPort("127.0.0.1", port)
		case ModeBridge:
			err = pair(m, docker.Container{Network: "bridge", Cmd: serve(":" + port)}, docker.Container{Network: "bridge", Cmd: idle})
			if err == nil {
				m.info.Target = net.JoinHostPort(m.server.IP, port)
			}
		case ModeUserBridge:
			nw := runID + "-br"
			if _, err = eng.CreateNetwork(ctx, docker.Network{Name: nw, Driver: "bridge", RunID: runID}); err == nil {
				err = pair(m, docker.Container{Network: nw, Cmd: serve(":" + port)}, docker.Container{Network: nw, Cmd: idle})
			}
			if err == nil {
				m.info.Target = net.JoinHostPort(m.server.IP, port)
			}
		case ModePublished:
			var gw string
			if gw, err = eng.Gateway(ctx, "bridge"); err == nil {
				err = pair(m, docker.Container{Network: "bridge", Cmd: serve(":" + port), Publish: map[int]int{spec.Port: spec.PublishedPort}},
					docker.Container{Network: "host", Cmd: idle})
				m.info.Target = net.JoinHostPort(gw, fmt.Sprint(spec.PublishedPort))
			}
		case ModeMacvlan:
			if spec.MacvlanParent == "" {
				m.info.Status, m.info.Reason = "skipped", "needs --macvlan-parent DEV (a device in the daemon's network namespace)"
				continue
			}
			nw := runID + "-mv"
			if _, err = eng.CreateNetwork(ctx, docker.Network{Name: nw, Driver: "macvlan", Subnet: spec.MacvlanSubnet, RunID: runID,
				Options: map[string]string{"parent": spec.MacvlanParent, "macvlan_mode": "bridge"}}); err == nil {
				err = pair(m, docker.Container{Network: nw, Cmd: serve(":" + port)}, docker.Container{Network: nw, Cmd: idle})
			}
			if err == nil {
				m.info.Target = net.JoinHostPort(m.server.IP, port)
			}
		}
		if err != nil {
			m.info.Status, m.info.Reason = "failed", err.Error()
			continue
		}
		if m.client != nil {
			m.info.ClientNS = m.client.Name + " (" + m.client.NetNS() + ")"
		}
		if m.server != nil {
			m.info.ServerNS = m.server.Name + " (" + m.server.NetNS() + ")"
		}
	}
	return modes
}

// waitServing waits until the server container has printed that it serves.
func waitServing(ctx context.Context, eng *docker.Engine, id string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		rc, err := eng.Client().ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
		if err == nil {
			var b strings.Builder
			buf := make([]byte, 4096)
			for b.Len() < 1<<16 {
				n, err := rc.Read(buf)
				b.Write(buf[:n])
				if err != nil {
					break
				}
			}
			rc.Close()
			if strings.Contains(b.String(), "serving on") {
				return nil
			}
		}
		if err := eng.Alive(ctx, id); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server container %s did not start serving within 15s", id[:12])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type config struct {
	m     *mode
	wl    wire.Workload
	size  int
	place experiment.Placement
}

func runTrials(ctx context.Context, eng *docker.Engine, spec *Spec, modes []*mode, out *experiment.Outcome, onEvent func(experiment.Event)) error {
	byKey := map[experiment.Config]config{}
	var configs []experiment.Config
	for _, m := range modes {
		if m.info.Status != "ok" {
			continue
		}
		for _, w := range spec.Workloads {
			sz := spec.Size
			if w == wire.TCPStream {
				sz = 0
			}
			for _, p := range experiment.PlacementsFor(out.Spec.Placements, w) {
				pc := experiment.Config{Mode: m.info.Name, Workload: w, Size: sz, Offload: offload.PresetDefault, Placement: p.Name}
				byKey[pc] = config{m, w, sz, p}
				configs = append(configs, pc)
			}
		}
	}
	if len(configs) == 0 {
		return nil
	}
	run := func(ctx context.Context, pc experiment.Config) (*workload.Result, *probe.Attribution, error) {
		c := byKey[pc]
		res, err := runOne(ctx, spec, c, spec.Duration, spec.Warmup)
		if err != nil && ctx.Err() == nil {
			if aerr := eng.Alive(context.WithoutCancel(ctx), c.m.server.ID); aerr != nil {
				err = fmt.Errorf("%w (%v)", err, aerr)
			}
		}
		return res, nil, err
	}
	return experiment.RunRounds(ctx, &out.Spec, out, configs, experiment.PinnedCPUs(out.Spec.Placements), run, onEvent)
}

// calibrate picks the placements in the baseline mode, as the lab does.
func calibrate(ctx context.Context, spec *Spec, modes []*mode, out *experiment.Outcome) error {
	var base *mode
	for _, m := range modes {
		if m.info.Name == spec.Baseline && m.info.Status == "ok" {
			base = m
		}
	}
	if base == nil {
		return fmt.Errorf("calibrate placement: baseline mode %s did not start", spec.Baseline)
	}
	allowed, err := sockio.AllowedCPUs()
	if err != nil {
		return fmt.Errorf("calibrate placement: %w", err)
	}
	probeFn := func(ctx context.Context, w wire.Workload, p experiment.Placement, d, warm time.Duration) (*workload.Result, error) {
		return runOne(ctx, spec, config{base, w, spec.Size, p}, d, warm)
	}
	ps, cals, err := experiment.Calibrate(ctx, spec.Workloads, allowed, spec.Seed, probeFn)
	if err != nil {
		return err
	}
	out.Spec.Placements, out.Calibration = ps, cals
	return nil
}

// runOne is experiment's runOne with the client in the client container's
// network namespace.
func runOne(ctx context.Context, spec *Spec, c config, duration, warmup time.Duration) (*workload.Result, error) {
	cfg := workload.Config{
		Target:     c.m.info.Target,
		Workload:   c.wl,
		Warmup:     warmup,
		Duration:   duration,
		NetNS:      c.m.client.NetNS(),
		ClientCPUs: c.place.ClientCPUs,
		ServerCPU:  c.place.ServerCPU,
		Interval:   duration,
		IOTimeout:  5 * time.Second,
	}
	if c.size > 0 {
		cfg.ReqSize, cfg.RespSize = c.size, c.size
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return workload.Run(ctx, cfg)
}
