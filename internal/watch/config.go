package watch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
)

// Config is a watch configuration: jobs run on schedules.
type Config struct {
	File string
	Jobs []*Job
}

// Overlap policies: what a job that falls due while another job runs does.
const (
	OverlapWait = "wait" // run as soon as the other finishes (missed ticks coalesce into one run)
	OverlapSkip = "skip" // skip this tick; run at the next one
)

// DefaultBaselineRuns is the size of a {last: N} baseline when none is
// given.
const DefaultBaselineRuns = 5

// Job is one scheduled measurement.
type Job struct {
	Name         string
	ScheduleText string
	Schedule     Schedule
	Overlap      string
	// Exactly one of Spec (a lab spec, from SpecFile) and Target is set.
	SpecFile string
	Spec     *experiment.LabSpec
	SpecName string
	SpecText string
	Target   *TargetSpec
	Baseline BaselineSpec
	// Confirm is how many consecutive runs must regress before an alert
	// opens (default DefaultConfirm).
	Confirm int
	Alerts  []AlertSpec
}

// TargetSpec is a job measuring a server that already runs.
type TargetSpec struct {
	// Address is HOST:PORT of a running `latlab serve`.
	Address string
	// NetNS is the path of the namespace the client runs in ("": the
	// caller's own).
	NetNS      string
	Workloads  []wire.Workload
	Sizes      []int
	Trials     int
	Duration   time.Duration
	Warmup     time.Duration
	ClientCPUs []int
	ServerCPU  int
}

// BaselineSpec says what a run is compared with: the last N good runs of
// the job before it, or one pinned run.
type BaselineSpec struct {
	Last   int
	Pinned int64
}

// AlertSpec is where alerts go: a webhook (JSON POST) or a command (the
// alert JSON on stdin).
type AlertSpec struct {
	Webhook string
	Command []string
}

type rawConfig struct {
	Jobs []rawJob `yaml:"jobs"`
}

type rawJob struct {
	Name     string       `yaml:"name"`
	Schedule string       `yaml:"schedule"`
	Overlap  string       `yaml:"overlap"`
	Spec     string       `yaml:"spec"`
	Target   *rawTarget   `yaml:"target"`
	Baseline *rawBaseline `yaml:"baseline"`
	Confirm  int          `yaml:"confirm"`
	Alerts   []rawAlert   `yaml:"alerts"`
}

type rawTarget struct {
	Address    string         `yaml:"address"`
	NetNS      string         `yaml:"netns"`
	Workloads  []string       `yaml:"workloads"`
	Sizes      []int          `yaml:"sizes"`
	Trials     int            `yaml:"trials"`
	Duration   time.Duration  `yaml:"duration"`
	Warmup     *time.Duration `yaml:"warmup"`
	ClientCPUs []int          `yaml:"client_cpus"`
	ServerCPU  string         `yaml:"server_cpu"`
}

type rawBaseline struct {
	Last   int   `yaml:"last"`
	Pinned int64 `yaml:"pinned"`
}

type rawAlert struct {
	Webhook string   `yaml:"webhook"`
	Command []string `yaml:"command"`
}

var allowedFields = map[string]string{
	"watch.rawConfig":   "jobs",
	"watch.rawJob":      "name, schedule, overlap, spec, target, baseline, confirm, alerts",
	"watch.rawTarget":   "address, netns, workloads, sizes, trials, duration, warmup, client_cpus, server_cpu",
	"watch.rawBaseline": "last, pinned",
	"watch.rawAlert":    "webhook, command",
}

// jobNameRE is what a job name may be: it is stored with every run of the
// job and becomes a Prometheus label value on /metrics.
var jobNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// DefaultConfirm is how many consecutive runs must regress before an
// alert opens: one run's drift on a shared machine easily passes a 3–5%
// minimum effect (see docs/watch.md for the measured rates).
const DefaultConfirm = 2

// Target job defaults.
const (
	DefaultTargetTrials   = 7
	DefaultTargetDuration = 2 * time.Second
	DefaultTargetWarmup   = 500 * time.Millisecond
)

// LoadConfig reads and validates a watch configuration. Spec files are
// read relative to it.
func LoadConfig(path string) (*Config, error) {
	b, err := topo.ReadSpecFile(path)
	if err != nil {
		return nil, fmt.Errorf("read watch config: %w", err)
	}
	return ParseConfig(b, path)
}

// ParseConfig parses and validates a watch configuration; errors are
// *experiment.SpecError with file:line. It decodes the document
// (decodeConfig), checks and converts each job (parseJob) and fills in
// the defaults the job left out (jobDefaults).
func ParseConfig(b []byte, file string) (*Config, error) {
	rc, root, err := decodeConfig(b, file)
	if err != nil {
		return nil, err
	}
	p := &configParser{file: file, root: root}
	if len(rc.Jobs) == 0 {
		return nil, p.fail(p.at("jobs"), "jobs", "no jobs")
	}
	cfg := &Config{File: file}
	names := map[string]bool{}
	for i, rj := range rc.Jobs {
		j, err := p.parseJob(i, rj, names)
		if err != nil {
			return nil, err
		}
		jobDefaults(j)
		cfg.Jobs = append(cfg.Jobs, j)
	}
	return cfg, nil
}

// decodeConfig reads one YAML document into a rawConfig, refusing unknown
// fields (the error names the allowed ones); root is the document's node
// tree, for the line numbers of later errors.
func decodeConfig(b []byte, file string) (*rawConfig, *yaml.Node, error) {
	doc, err := topo.SingleDocument(b)
	if err != nil {
		var te *topo.Error
		if errors.As(err, &te) {
			return nil, nil, &experiment.SpecError{File: file, Line: te.Line, Msg: te.Msg}
		}
		return nil, nil, &experiment.SpecError{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if doc == nil {
		return nil, nil, &experiment.SpecError{File: file, Msg: "empty: want jobs: [...]"}
	}
	root := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{doc}}
	var rc rawConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rc); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg, line := te.Errors[0], 0
			if rest, ok := strings.CutPrefix(msg, "line "); ok {
				if n, after, ok := strings.Cut(rest, ": "); ok {
					line, _ = strconv.Atoi(n)
					msg = after
				}
			}
			for typ, allowed := range allowedFields {
				msg = strings.Replace(msg, " in type "+typ, " (allowed: "+allowed+")", 1)
			}
			return nil, nil, &experiment.SpecError{File: file, Line: line, Msg: msg}
		}
		if errors.Is(err, io.EOF) {
			return nil, nil, &experiment.SpecError{File: file, Msg: "empty: want jobs: [...]"}
		}
		return nil, nil, &experiment.SpecError{File: file, Msg: err.Error()}
	}
	return &rc, root, nil
}

// configParser checks the jobs of a decoded configuration; its errors
// name the file, the line and the field.
type configParser struct {
	file string
	root *yaml.Node
}

// at is the line of the node at path in the document (0: not found).
func (p *configParser) at(path ...any) int { return experiment.YAMLLine(p.root, path...) }

func (p *configParser) fail(line int, field, format string, args ...any) error {
	return &experiment.SpecError{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// jobLines returns the line of path inside job i, or the job's own line
// where path is not in the document.
func (p *configParser) jobLines(i int) func(path ...any) int {
	return func(path ...any) int {
		if l := p.at(append([]any{"jobs", i}, path...)...); l > 0 {
			return l
		}
		return p.at("jobs", i)
	}
}

// parseJob checks job i and converts it, field by field in the order
// errors are reported: name (unique across names), schedule, overlap,
// what it measures, baseline, confirm and alerts. Left-out fields stay
// zero (jobDefaults).
func (p *configParser) parseJob(i int, rj rawJob, names map[string]bool) (*Job, error) {
	jf := fmt.Sprintf("jobs[%d]", i)
	line := p.jobLines(i)
	j := &Job{Name: rj.Name, ScheduleText: rj.Schedule, Overlap: rj.Overlap}
	if err := p.checkJobName(rj.Name, jf, line, names); err != nil {
		return nil, err
	}
	if rj.Schedule == "" {
		return nil, p.fail(line(), jf+".schedule", "required (\"@every 30m\" or a 5-field cron expression)")
	}
	s, err := ParseSchedule(rj.Schedule, nil)
	if err != nil {
		return nil, p.fail(line("schedule"), jf+".schedule", "%v", err)
	}
	j.Schedule = s
	switch rj.Overlap {
	case "", OverlapWait, OverlapSkip:
	default:
		return nil, p.fail(line("overlap"), jf+".overlap", "%q (allowed: wait, skip)", rj.Overlap)
	}
	if err := p.parseJobSource(j, rj, jf, line); err != nil {
		return nil, err
	}
	if j.Baseline, err = p.parseBaseline(rj.Baseline, jf, line); err != nil {
		return nil, err
	}
	if rj.Confirm != 0 && (rj.Confirm < 1 || rj.Confirm > 10) {
		return nil, p.fail(line("confirm"), jf+".confirm", "%d outside 1..10", rj.Confirm)
	}
	j.Confirm = rj.Confirm
	if j.Alerts, err = p.parseAlerts(rj.Alerts, jf, line); err != nil {
		return nil, err
	}
	return j, nil
}

// checkJobName refuses a missing, unsafe or repeated job name, and adds
// it to names.
func (p *configParser) checkJobName(name, jf string, line func(...any) int, names map[string]bool) error {
	if name == "" {
		return p.fail(line(), jf+".name", "a job needs a name")
	}
	if !jobNameRE.MatchString(name) {
		return p.fail(line("name"), jf+".name", "%q: want letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit (it names the job's runs and metrics)", name)
	}
	if names[name] {
		return p.fail(line("name"), jf+".name", "job %q given twice", name)
	}
	names[name] = true
	return nil
}

// parseJobSource sets what job j measures: exactly one of a lab spec
// (read relative to the config file and parsed) and a target.
func (p *configParser) parseJobSource(j *Job, rj rawJob, jf string, line func(...any) int) error {
	switch {
	case rj.Spec != "" && rj.Target != nil:
		return p.fail(line("target"), jf, "give spec or target, not both")
	case rj.Spec == "" && rj.Target == nil:
		return p.fail(line(), jf, "give spec: FILE (a lab spec) or target: {address: HOST:PORT}")
	case rj.Spec != "":
		path := rj.Spec
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(p.file), path)
		}
		text, err := topo.ReadSpecFile(path)
		if err != nil {
			return p.fail(line("spec"), jf+".spec", "%v", err)
		}
		spec, name, err := experiment.ParseSpec(text, path)
		if err != nil {
			return p.fail(line("spec"), jf+".spec", "%v", err)
		}
		j.SpecFile, j.Spec, j.SpecName, j.SpecText = path, spec, name, string(text)
	default:
		t, err := parseTarget(rj.Target, func(path ...any) int {
			return line(append([]any{"target"}, path...)...)
		}, jf+".target")
		if err != nil {
			var se *experiment.SpecError
			if errors.As(err, &se) {
				se.File = p.file
			}
			return err
		}
		j.Target = t
	}
	return nil
}

// parseBaseline checks a job's baseline: {last: N} or {pinned: RUN};
// none gives the zero BaselineSpec (jobDefaults).
func (p *configParser) parseBaseline(b *rawBaseline, jf string, line func(...any) int) (BaselineSpec, error) {
	if b == nil {
		return BaselineSpec{}, nil
	}
	switch {
	case b.Last != 0 && b.Pinned != 0:
		return BaselineSpec{}, p.fail(line("baseline"), jf+".baseline", "give last: N or pinned: RUN, not both")
	case b.Last < 0 || b.Last > 100:
		return BaselineSpec{}, p.fail(line("baseline", "last"), jf+".baseline.last", "%d outside 1..100", b.Last)
	case b.Pinned < 0:
		return BaselineSpec{}, p.fail(line("baseline", "pinned"), jf+".baseline.pinned", "%d is not a run id", b.Pinned)
	case b.Last == 0 && b.Pinned == 0:
		return BaselineSpec{}, p.fail(line("baseline"), jf+".baseline", "want {last: N} or {pinned: RUN}")
	}
	return BaselineSpec{Last: b.Last, Pinned: b.Pinned}, nil
}

// parseAlerts checks a job's alert hooks: each a webhook (an http or
// https URL) or a command, not both.
func (p *configParser) parseAlerts(ras []rawAlert, jf string, line func(...any) int) ([]AlertSpec, error) {
	var out []AlertSpec
	for k, ra := range ras {
		af := fmt.Sprintf("%s.alerts[%d]", jf, k)
		switch {
		case ra.Webhook != "" && len(ra.Command) > 0:
			return nil, p.fail(line("alerts", k), af, "give webhook or command, not both")
		case ra.Webhook != "":
			u, err := url.Parse(ra.Webhook)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, p.fail(line("alerts", k, "webhook"), af+".webhook", "%q: want an http:// or https:// URL", ra.Webhook)
			}
		case len(ra.Command) > 0:
			if ra.Command[0] == "" {
				return nil, p.fail(line("alerts", k, "command"), af+".command", "empty program name")
			}
		default:
			return nil, p.fail(line("alerts", k), af, "want {webhook: URL} or {command: [PROGRAM, ARGS...]}")
		}
		out = append(out, AlertSpec{Webhook: ra.Webhook, Command: ra.Command})
	}
	return out, nil
}

// jobDefaults fills in what a checked job left out: overlap wait, a
// baseline of the last DefaultBaselineRuns runs, DefaultConfirm. (A
// target's defaults are parseTarget's.)
func jobDefaults(j *Job) {
	if j.Overlap == "" {
		j.Overlap = OverlapWait
	}
	if j.Baseline == (BaselineSpec{}) {
		j.Baseline = BaselineSpec{Last: DefaultBaselineRuns}
	}
	if j.Confirm == 0 {
		j.Confirm = DefaultConfirm
	}
}

func parseTarget(rt *rawTarget, at func(path ...any) int, tf string) (*TargetSpec, error) {
	fail := func(line int, field, format string, args ...any) error {
		return &experiment.SpecError{Line: line, Field: tf + field, Msg: fmt.Sprintf(format, args...)}
	}
	t := &TargetSpec{Address: rt.Address, Trials: rt.Trials, Duration: rt.Duration, Warmup: DefaultTargetWarmup,
		Sizes: rt.Sizes, ClientCPUs: rt.ClientCPUs, ServerCPU: wire.CPUAuto}
	if rt.Address == "" {
		return nil, fail(at(), ".address", "required: HOST:PORT of a running latlab serve")
	}
	if _, port, err := net.SplitHostPort(rt.Address); err != nil || port == "" {
		return nil, fail(at("address"), ".address", "%q: want HOST:PORT", rt.Address)
	}
	switch ns := rt.NetNS; {
	case ns == "":
	case strings.Contains(ns, "/"):
		if !filepath.IsAbs(ns) {
			return nil, fail(at("netns"), ".netns", "%q: a path must be absolute", ns)
		}
		t.NetNS = ns
	case strings.ContainsAny(ns, " \t"):
		return nil, fail(at("netns"), ".netns", "%q: not a namespace name", ns)
	default:
		t.NetNS = topo.NetNSPath(ns)
	}
	if len(rt.Workloads) == 0 {
		t.Workloads = []wire.Workload{wire.TCPRR}
	}
	for i, w := range rt.Workloads {
		wl, err := wire.ParseWorkload(w)
		if err != nil {
			return nil, fail(at("workloads", i), fmt.Sprintf(".workloads[%d]", i), "unknown workload %q (allowed: tcp_rr, tcp_crr, udp_rr, tcp_stream, http)", w)
		}
		if slices.Contains(t.Workloads, wl) {
			return nil, fail(at("workloads", i), fmt.Sprintf(".workloads[%d]", i), "%s given twice", wl)
		}
		t.Workloads = append(t.Workloads, wl)
	}
	for i, sz := range rt.Sizes {
		if sz < 1 || sz > wire.MaxMessageSize {
			return nil, fail(at("sizes", i), fmt.Sprintf(".sizes[%d]", i), "%d bytes outside 1..%d", sz, wire.MaxMessageSize)
		}
	}
	if len(t.Sizes) == 0 {
		t.Sizes = []int{64}
	}
	if t.Trials == 0 {
		t.Trials = DefaultTargetTrials
	}
	if t.Trials < 1 || t.Trials > experiment.MaxTrials {
		return nil, fail(at("trials"), ".trials", "%d outside 1..%d", rt.Trials, experiment.MaxTrials)
	}
	if t.Duration == 0 {
		t.Duration = DefaultTargetDuration
	}
	if err := experiment.CheckTrialDuration(t.Duration); err != nil {
		return nil, fail(at("duration"), ".duration", "%v", err)
	}
	if rt.Warmup != nil {
		t.Warmup = *rt.Warmup
	}
	if err := experiment.CheckWarmup(t.Warmup); err != nil {
		return nil, fail(at("warmup"), ".warmup", "%v", err)
	}
	if len(t.ClientCPUs) > experiment.MaxCPU {
		return nil, fail(at("client_cpus"), ".client_cpus", "%d CPUs, at most %d", len(t.ClientCPUs), experiment.MaxCPU)
	}
	for i, c := range t.ClientCPUs {
		if err := experiment.CheckCPU(c); err != nil {
			return nil, fail(at("client_cpus", i), fmt.Sprintf(".client_cpus[%d]", i), "%v", err)
		}
	}
	n, err := experiment.ParseServerCPU(rt.ServerCPU)
	if err == nil && n >= 0 {
		err = experiment.CheckCPU(n)
	}
	if err != nil {
		return nil, fail(at("server_cpu"), ".server_cpu", "%v", err)
	}
	t.ServerCPU = n
	return t, nil
}
