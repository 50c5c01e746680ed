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
	"github.com/latlab/latlab/internal/topo"
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
	// Undoers are the journal undo handlers RunLab sweeps dead runs'
	// journals with first (nil: experiment.UndoHandlers and UndoHandlers);
	// internal/cli passes its registry.
	Undoers  journal.Undoers
	Recorder experiment.Recorder
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
	if s.Undoers == nil {
		s.Undoers = experiment.UndoHandlers().With(UndoHandlersFor(s.Host))
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
// a fresh random order (experiment.RunTestbed over the containers), and
// removes every labelled object at the end (interrupt included: ctx
// cancelled stops after the trial in progress and marks the outcome
// incomplete). onEvent receives the events experiment.RunLab sends but
// "built" (Spec.OnBuilt is called instead); it may be nil.
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
	journal.Sweep(spec.JournalDir, journal.SweepOptions{Handlers: spec.Undoers})
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
	tb := &testbed{eng: eng, modes: setup(bctx, eng, &spec, img, runID)}
	out.BuildTime = time.Since(t0)
	out.Modes = tb.Modes()
	if spec.OnBuilt != nil {
		spec.OnBuilt(out.Modes, out.BuildTime)
	}

	if spec.Placement.Name != "" {
		out.Spec.Placements = []experiment.Placement{spec.Placement}
	}
	return out, experiment.RunTestbed(ctx, tb, j, out, onEvent)
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

// testbed is the Docker lab as an experiment.Testbed: every mode's server
// runs in its container (started and waited for by setup), the client in
// this process on threads in the client container's network namespace.
type testbed struct {
	eng   *docker.Engine
	modes []*mode
}

// Modes lists the modes as setup left them.
func (t *testbed) Modes() []experiment.ModeInfo {
	var ms []experiment.ModeInfo
	for _, m := range t.modes {
		ms = append(ms, m.info)
	}
	return ms
}

// Serve has nothing to start: the servers came up with their containers.
func (t *testbed) Serve(func(experiment.Event)) (func(), error) { return func() {}, nil }

// Trial runs the client in the client container's namespace; when it
// fails, the error says whether the server container is still alive.
func (t *testbed) Trial(ctx context.Context, tr experiment.Trial) (*workload.Result, *probe.Attribution, error) {
	i := slices.IndexFunc(t.modes, func(m *mode) bool { return m.info.Name == tr.Mode && m.info.Status == experiment.StatusOK })
	if i < 0 {
		return nil, nil, fmt.Errorf("run trial: docker mode %s is not up", tr.Mode)
	}
	m := t.modes[i]
	res, attr, err := experiment.RunClient(ctx, m.client.NetNS(), m.info.Target, tr)
	if err != nil && ctx.Err() == nil {
		if aerr := t.eng.Alive(context.WithoutCancel(ctx), m.server.ID); aerr != nil {
			err = fmt.Errorf("%w (%v)", err, aerr)
		}
	}
	return res, attr, err
}

// Interfaces is empty: offload presets are not applied to containers.
func (t *testbed) Interfaces() ([]topo.Iface, error) { return nil, nil }
