package experiment

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
)

// SpecFile is the YAML form of an experiment (`latlab run SPEC`). `latlab
// lab` runs DefaultSpecFile. Every axis multiplies: modes × workloads ×
// sizes × offloads × placements, each configuration once per round.
type SpecFile struct {
	Name string `yaml:"name"`
	// Topology: "default" (or "default-v6", "default-dual": the same
	// topology in IPv6 or dual-stack), a path to a topology YAML (relative
	// to the spec), or a topology inline.
	Topology yaml.Node `yaml:"topology,omitempty"`
	// Modes to compare (default: all of the topology); Baseline is the
	// mode the others are compared with (default host).
	Modes    []string `yaml:"modes,omitempty"`
	Baseline string   `yaml:"baseline,omitempty"`
	// Workloads: tcp_rr, udp_rr, tcp_crr, tcp_stream.
	Workloads []string `yaml:"workloads,omitempty"`
	// Sizes: request/response sizes in bytes (tcp_stream runs once).
	Sizes []int `yaml:"sizes,omitempty"`
	// Offloads: preset names (default, all-on, all-off, seg-off, gro-off,
	// gro-on, csum-off), "NAME:feature=on|off,...", or {name, settings:
	// {feature: on|off}}.
	Offloads []yaml.Node `yaml:"offloads,omitempty"`
	// Placements: {name, client_cpus: [1], server_cpu: auto|none|N}.
	Placements []PlacementSpec `yaml:"placements,omitempty"`
	// Interfaces that already exist — {netns: NAME or path, dev: eth0} —
	// get the offload presets too (netns empty: the caller's own
	// namespace, only with --allow-host-nic). They are journalled and
	// restored at the end, on signals, and by `latlab cleanup`.
	Interfaces []InterfaceSpec `yaml:"interfaces,omitempty"`
	// Attribute samples kernel evidence over every trial (softirqs,
	// softirq time, drops, retransmits, run-queue delay).
	Attribute bool `yaml:"attribute,omitempty"`
	// Trials fixes the number of rounds; absent or 0: adaptive (rounds
	// until every ratio's interval is within target_ci, at least
	// min_trials, at most budget).
	Trials    int           `yaml:"trials,omitempty"`
	TargetCI  float64       `yaml:"target_ci,omitempty"`
	Budget    time.Duration `yaml:"budget,omitempty"`
	MinTrials int           `yaml:"min_trials,omitempty"`
	// Calibrate: false runs without placement calibration (placements
	// absent: cross core). Absent or true: calibrated when no placements
	// are given.
	Calibrate *bool         `yaml:"calibrate,omitempty"`
	Duration  time.Duration `yaml:"duration,omitempty"`
	Warmup    time.Duration `yaml:"warmup,omitempty"`
	Seed      uint64        `yaml:"seed,omitempty"`
}

// InterfaceSpec names an existing interface.
type InterfaceSpec struct {
	NetNS string `yaml:"netns,omitempty"`
	Dev   string `yaml:"dev"`
}

// PlacementSpec is a placement as written in a spec; ParseSpec checks it
// into a Placement (the one type the rest of experiment uses), and
// RenderSpec writes a Placement back as one.
type PlacementSpec struct {
	Name       string `yaml:"name"`
	ClientCPUs []int  `yaml:"client_cpus,omitempty"`
	ServerCPU  string `yaml:"server_cpu,omitempty"` // auto (default), none, or a CPU: ParseServerCPU
	// Workloads the placement applies to (default: all).
	Workloads []string `yaml:"workloads,omitempty"`
}

// DefaultSpecYAML is the spec `latlab lab` runs (`latlab lab --print-spec`).
func DefaultSpecYAML() []byte {
	return []byte(fmt.Sprintf(`# The experiment 'latlab lab' runs. Save it, edit it, run it with 'latlab run FILE'.
name: lab
topology: default          # "default" (IPv4), "default-v6", "default-dual", a topology YAML file, or a topology inline (latlab lab --print-topology)
# modes: [host, bridge-nat, bridge-nat-dnat, veth-routed, macvlan, ipvlan-l2, ipvlan-l3, netkit, vxlan]   # default: all
baseline: %s
workloads: [tcp_rr, udp_rr, tcp_crr, tcp_stream]
sizes: [64]                # request/response bytes; tcp_stream keeps 128 KiB writes
offloads: [default]        # presets: default, all-on, all-off, seg-off, gro-off, gro-on, csum-off, or NAME:tso=off,gro=on
# placements:              # absent: calibrated per workload before the trials (same core vs cross core,
#   - name: cross-core     #   the steadier wins; tcp_stream always cross core). Pin them like this:
#     client_cpus: [1]
#     server_cpu: 0
#     workloads: [tcp_rr]  # optional: only these workloads
# calibrate: false         # no calibration: without placements, client on the last CPU, server on the first
# trials: 10               # fixed rounds; absent: adaptive, as below
target_ci: %g              # adaptive: rounds until every ratio's interval is within ±this (0.02: 2 points)
budget: %v                 # ... or until this much time is spent on rounds
# min_trials: 8            # adaptive's first stop (default: enough for the signed-rank test to reach its level)
duration: %v
warmup: %v
seed: 0                    # 0: random (the run records the seed it used)
`, DefaultBaseline, DefaultTargetCI, DefaultBudget, DefaultDuration, DefaultWarmup))
}

// RenderSpec writes the spec file of exactly the experiment spec
// describes — flags folded in, placements as calibrated, the seed it ran
// with — so that `latlab run` of it repeats the experiment. header
// (comment lines) goes first.
func RenderSpec(spec *LabSpec, name, header string) ([]byte, error) {
	sf := SpecFile{Name: name, Modes: spec.Modes, Baseline: spec.Baseline, Sizes: spec.Sizes, Attribute: spec.Attribute,
		Trials: spec.Trials, Duration: spec.Duration, Warmup: spec.Warmup, Seed: spec.Seed}
	if spec.Trials == 0 {
		sf.TargetCI, sf.Budget, sf.MinTrials = spec.TargetCI, spec.Budget, spec.MinTrials
	}
	if spec.NoCalibrate {
		f := false
		sf.Calibrate = &f
	}
	t := spec.Topology
	if t == nil {
		t = topo.Default()
	}
	got, err := t.YAML()
	if err != nil {
		return nil, fmt.Errorf("render spec: %w", err)
	}
	if name := builtinName(got); name != "" {
		sf.Topology = yaml.Node{Kind: yaml.ScalarNode, Value: name}
	} else if err := yaml.Unmarshal(got, &sf.Topology); err != nil {
		return nil, fmt.Errorf("render spec: topology: %w", err)
	} else if sf.Topology.Kind == yaml.DocumentNode {
		sf.Topology = *sf.Topology.Content[0]
	}
	for _, w := range spec.Workloads {
		sf.Workloads = append(sf.Workloads, string(w))
	}
	for _, p := range spec.Offloads {
		v := p.Name
		if def, err := offload.ParsePreset(p.Name); err != nil || !slices.Equal(def.Settings, p.Settings) {
			var parts []string
			for _, st := range p.Settings {
				parts = append(parts, st.String())
			}
			v = p.Name + ":" + strings.Join(parts, ",")
		}
		sf.Offloads = append(sf.Offloads, yaml.Node{Kind: yaml.ScalarNode, Value: v})
	}
	for _, p := range spec.Placements {
		ps := PlacementSpec{Name: p.Name, ClientCPUs: p.ClientCPUs, ServerCPU: FormatServerCPU(p.ServerCPU)}
		for _, w := range p.Workloads {
			ps.Workloads = append(ps.Workloads, string(w))
		}
		sf.Placements = append(sf.Placements, ps)
	}
	for _, in := range spec.Interfaces {
		sf.Interfaces = append(sf.Interfaces, InterfaceSpec{NetNS: in.NetNS, Dev: in.Dev})
	}
	var buf bytes.Buffer
	buf.WriteString(header)
	if header != "" && !strings.HasSuffix(header, "\n") {
		buf.WriteByte('\n')
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&sf); err != nil {
		return nil, fmt.Errorf("render spec: %w", err)
	}
	return buf.Bytes(), nil
}

// SpecError is a validation error at a place in a spec file.
type SpecError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *SpecError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// LoadSpec reads and validates a spec file into a runnable LabSpec.
func LoadSpec(path string) (*LabSpec, string, error) {
	b, err := topo.ReadSpecFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read spec: %w", err)
	}
	return ParseSpec(b, path)
}

// ParseSpec parses and validates a spec; file names it in errors and
// anchors relative topology paths. It returns the runnable spec and the
// spec's name.
func ParseSpec(b []byte, file string) (*LabSpec, string, error) {
	doc, err := topo.SingleDocument(b)
	if err != nil {
		return nil, "", specErrorFrom(err, file)
	}
	if doc == nil {
		return nil, "", &SpecError{File: file, Msg: "empty: want a spec ('latlab lab --print-spec' prints one)"}
	}
	root := yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{doc}}
	var sf SpecFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&sf); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			// "line 7: field colour not found in type experiment.SpecFile"
			msg := te.Errors[0]
			line := 0
			if strings.HasPrefix(msg, "line ") {
				rest := strings.TrimPrefix(msg, "line ")
				if n, after, ok := strings.Cut(rest, ": "); ok {
					line, _ = strconv.Atoi(n)
					msg = after
				}
			}
			msg = strings.Replace(msg, " in type experiment.SpecFile", " (allowed: name, topology, modes, baseline, workloads, sizes, offloads, placements, interfaces, attribute, trials, target_ci, budget, min_trials, calibrate, duration, warmup, seed)", 1)
			msg = strings.Replace(msg, " in type experiment.PlacementSpec", " (allowed: name, client_cpus, server_cpu, workloads)", 1)
			return nil, "", &SpecError{File: file, Line: line, Msg: msg}
		}
		return nil, "", &SpecError{File: file, Msg: err.Error()}
	}
	at := func(path ...any) int { return YAMLLine(&root, path...) }
	fail := func(line int, field, format string, args ...any) error {
		return &SpecError{File: file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	spec := &LabSpec{Trials: sf.Trials, Duration: sf.Duration, Warmup: sf.Warmup, Seed: sf.Seed, Baseline: sf.Baseline, Attribute: sf.Attribute,
		TargetCI: sf.TargetCI, Budget: sf.Budget, MinTrials: sf.MinTrials, NoCalibrate: sf.Calibrate != nil && !*sf.Calibrate}
	if sf.TargetCI < 0 || sf.TargetCI >= 1 {
		return nil, "", fail(at("target_ci"), "target_ci", "%v: want a ratio half-width in (0, 1), e.g. 0.02 for 2 points", sf.TargetCI)
	}
	if sf.Budget < 0 || sf.Budget > MaxBudget {
		return nil, "", fail(at("budget"), "budget", "%v outside 0..%v (0 or absent: %v)", sf.Budget, MaxBudget, DefaultBudget)
	}
	if sf.MinTrials < 0 || sf.MinTrials > MaxTrials {
		return nil, "", fail(at("min_trials"), "min_trials", "%d outside 0..%d (0 or absent: what the test needs)", sf.MinTrials, MaxTrials)
	}
	if sf.Name == "" {
		sf.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}

	// Topology.
	switch t := &sf.Topology; {
	case t.Kind == 0:
		spec.Topology = topo.Default()
	case t.Kind == yaml.ScalarNode && isBuiltin(t.Value):
		spec.Topology, _ = topo.Named(t.Value)
	case t.Kind == yaml.ScalarNode:
		p := t.Value
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(file), p)
		}
		tp, err := topo.LoadTopology(p)
		if err != nil {
			return nil, "", fail(t.Line, "topology", "%v", err)
		}
		spec.Topology = tp
	case t.Kind == yaml.MappingNode:
		// Decoded from the spec's own node: errors carry the spec's lines.
		tp, err := topo.ParseTopologyNode(t, file)
		if err != nil {
			var te *topo.Error
			if errors.As(err, &te) {
				return nil, "", fail(max(te.Line, t.Line), "topology", "%s", te.Msg)
			}
			return nil, "", fail(t.Line, "topology", "%v", err)
		}
		spec.Topology = tp
	default:
		return nil, "", fail(t.Line, "topology", "want \"default\", \"default-v6\", \"default-dual\", a file name or a topology mapping")
	}
	names := spec.Topology.ModeNames()
	for i, m := range sf.Modes {
		if _, ok := spec.Topology.Mode(m); !ok {
			return nil, "", fail(at("modes", i), fmt.Sprintf("modes[%d]", i), "unknown mode %q (allowed: %s)", m, strings.Join(names, ", "))
		}
	}
	spec.Modes = sf.Modes
	if spec.Baseline == "" {
		spec.Baseline = DefaultBaseline
	}
	if _, ok := spec.Topology.Mode(spec.Baseline); !ok {
		return nil, "", fail(at("baseline"), "baseline", "unknown mode %q (allowed: %s)", spec.Baseline, strings.Join(names, ", "))
	}
	if len(spec.Modes) > 0 && !slices.Contains(spec.Modes, spec.Baseline) {
		spec.Modes = append([]string{spec.Baseline}, spec.Modes...)
	}
	for i, w := range sf.Workloads {
		wl, err := wire.ParseWorkload(w)
		if err != nil {
			return nil, "", fail(at("workloads", i), fmt.Sprintf("workloads[%d]", i), "unknown workload %q (allowed: tcp_rr, tcp_crr, udp_rr, tcp_stream, http)", w)
		}
		spec.Workloads = append(spec.Workloads, wl)
	}
	for i, sz := range sf.Sizes {
		if sz < 1 || sz > wire.MaxMessageSize {
			return nil, "", fail(at("sizes", i), fmt.Sprintf("sizes[%d]", i), "%d bytes outside 1..%d", sz, wire.MaxMessageSize)
		}
	}
	spec.Sizes = sf.Sizes
	seen := map[string]bool{}
	for i := range sf.Offloads {
		n := &sf.Offloads[i]
		p, err := parsePresetNode(n)
		if err != nil {
			return nil, "", fail(n.Line, fmt.Sprintf("offloads[%d]", i), "%v", err)
		}
		if seen[p.Name] {
			return nil, "", fail(n.Line, fmt.Sprintf("offloads[%d]", i), "preset %q given twice", p.Name)
		}
		seen[p.Name] = true
		spec.Offloads = append(spec.Offloads, p)
	}
	seen = map[string]bool{}
	for i, ps := range sf.Placements {
		field := fmt.Sprintf("placements[%d]", i)
		if ps.Name == "" {
			return nil, "", fail(at("placements", i), field, "a placement needs a name")
		}
		if seen[ps.Name] {
			return nil, "", fail(at("placements", i), field, "placement %q given twice", ps.Name)
		}
		seen[ps.Name] = true
		p := Placement{Name: ps.Name, ClientCPUs: ps.ClientCPUs}
		if len(ps.ClientCPUs) > MaxCPU {
			return nil, "", fail(at("placements", i, "client_cpus"), field+".client_cpus", "%d CPUs, at most %d", len(ps.ClientCPUs), MaxCPU)
		}
		for k, c := range ps.ClientCPUs {
			if err := CheckCPU(c); err != nil {
				return nil, "", fail(at("placements", i, "client_cpus", k), fmt.Sprintf("%s.client_cpus[%d]", field, k), "%v", err)
			}
		}
		n, err := ParseServerCPU(ps.ServerCPU)
		if err == nil && n >= 0 {
			err = CheckCPU(n)
		}
		if err != nil {
			return nil, "", fail(at("placements", i, "server_cpu"), field+".server_cpu", "%v", err)
		}
		p.ServerCPU = n
		for k, w := range ps.Workloads {
			wl, err := wire.ParseWorkload(w)
			if err != nil {
				return nil, "", fail(at("placements", i, "workloads", k), fmt.Sprintf("%s.workloads[%d]", field, k), "unknown workload %q", w)
			}
			p.Workloads = append(p.Workloads, wl)
		}
		spec.Placements = append(spec.Placements, p)
	}
	for i, in := range sf.Interfaces {
		if in.Dev == "" {
			return nil, "", fail(at("interfaces", i), fmt.Sprintf("interfaces[%d]", i), "dev is required")
		}
		ns := in.NetNS
		if ns != "" && !strings.Contains(ns, "/") {
			ns = topo.NetNSPath(ns)
		}
		spec.Interfaces = append(spec.Interfaces, Target{NetNS: ns, Dev: in.Dev})
	}
	if len(sf.Interfaces) > 0 && len(sf.Offloads) == 0 {
		return nil, "", fail(at("interfaces"), "interfaces", "interfaces only take offload presets: add offloads: [...]")
	}
	if sf.Trials < 0 || sf.Trials > MaxTrials {
		return nil, "", fail(at("trials"), "trials", "%d outside 1..%d (0 or absent: adaptive)", sf.Trials, MaxTrials)
	}
	if err := CheckTrialDuration(sf.Duration); sf.Duration != 0 && err != nil {
		return nil, "", fail(at("duration"), "duration", "%v", err)
	}
	if err := CheckWarmup(sf.Warmup); err != nil {
		return nil, "", fail(at("warmup"), "warmup", "%v", err)
	}
	if sf.Trials == 0 {
		spec.Trials = 0 // Defaults fills it
	}
	if sf.Warmup == 0 && at("warmup") == 0 {
		spec.Warmup = DefaultWarmup
	}
	return spec, sf.Name, nil
}

// Upper bounds of a spec's numbers (watch configs share them). A value
// past one is a typo or an attack, never an experiment: refused with the
// field, the value and the bound.
const (
	// MaxTrials bounds trials and min_trials (the rounds of a run).
	MaxTrials = maxRounds
	// MinTrialDuration and MaxTrialDuration bound one trial's measured
	// window; MaxWarmup its warm-up.
	MinTrialDuration = 50 * time.Millisecond
	MaxTrialDuration = time.Hour
	MaxWarmup        = 10 * time.Minute
	// MaxBudget bounds an adaptive run's time for rounds.
	MaxBudget = 24 * time.Hour
	// MaxCPU bounds CPU numbers whatever the machine (the kernel's
	// largest common NR_CPUS); CheckCPU also refuses CPUs this machine
	// cannot have.
	MaxCPU = 4096
)

// CheckTrialDuration refuses a trial duration that is not whole
// milliseconds within MinTrialDuration..MaxTrialDuration.
func CheckTrialDuration(d time.Duration) error {
	if d < MinTrialDuration || d > MaxTrialDuration || d%time.Millisecond != 0 {
		return fmt.Errorf("%v: want whole milliseconds, %v..%v", d, MinTrialDuration, MaxTrialDuration)
	}
	return nil
}

// CheckWarmup refuses a warm-up that is negative, longer than MaxWarmup
// or not whole milliseconds.
func CheckWarmup(d time.Duration) error {
	if d < 0 || d > MaxWarmup || d%time.Millisecond != 0 {
		return fmt.Errorf("%v: want whole milliseconds, 0..%v", d, MaxWarmup)
	}
	return nil
}

// specErrorFrom turns a YAML or topology parse error into a SpecError of
// file, keeping its line.
func specErrorFrom(err error, file string) error {
	var te *topo.Error
	if errors.As(err, &te) {
		return &SpecError{File: file, Line: te.Line, Msg: te.Msg}
	}
	return &SpecError{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}

// parsePresetNode reads an offload preset: a string, or {name, settings}.
func parsePresetNode(n *yaml.Node) (offload.Preset, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return offload.ParsePreset(n.Value)
	case yaml.MappingNode:
		var m struct {
			Name     string            `yaml:"name"`
			Settings map[string]string `yaml:"settings"`
		}
		if err := n.Decode(&m); err != nil {
			return offload.Preset{}, err
		}
		if m.Name == "" || len(m.Settings) == 0 {
			return offload.Preset{}, fmt.Errorf("a preset mapping needs name and settings ({tso: off, gro: on})")
		}
		var parts []string
		for k, v := range m.Settings {
			parts = append(parts, k+"="+v)
		}
		slices.Sort(parts)
		return offload.ParsePreset(m.Name + ":" + strings.Join(parts, ","))
	}
	return offload.Preset{}, fmt.Errorf("want a preset name or {name, settings}")
}

// YAMLLine finds the line of a value in a YAML document by path: mapping
// keys (string) and sequence indexes (int). 0 when absent. Validation
// errors of spec-like files (specs, watch configs) use it for file:line.
func YAMLLine(n *yaml.Node, path ...any) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return 0
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return 0
			}
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return 0
			}
			n = n.Content[k]
		}
	}
	return n.Line
}

// builtinName names the built-in topology whose YAML is y ("default",
// "default-v6", "default-dual"), or "" when y is none of them.
func builtinName(y []byte) string {
	for _, f := range []topo.Family{topo.Family4, topo.Family6, topo.FamilyDual} {
		if def, err := topo.DefaultFamily(f).YAML(); err == nil && bytes.Equal(y, def) {
			return f.Name()
		}
	}
	return ""
}

// isBuiltin reports whether a spec's topology: names a built-in topology
// rather than a file.
func isBuiltin(name string) bool {
	_, ok := topo.Named(name)
	return ok
}
