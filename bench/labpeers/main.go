// Command labpeers checks latlab's lab ratios against the C tool sockperf
// through the lab's own paths: given the JSON of a lab left up with
// `latlab lab --keep`, it serves latlab and sockperf (TCP and UDP) in every
// mode's server namespace, runs `latlab bench` and `sockperf ping-pong` from
// every mode's client namespace in interleaved rounds (a fresh random order
// each round), and prints, per workload, each tool's rate and its ratio to
// the host mode, and how far the two tools' ratios differ.
//
// It is driven by bench/compare-lab.sh, which brings the lab up and tears it
// down; see bench/labpeers.md for how to read the output.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/latlab/latlab/bench/internal/benchproc"
	"github.com/latlab/latlab/internal/stats"
)

const (
	latlabPort   = 7707              // the lab's latlab server port
	dnatMode     = "bridge-nat-dnat" // reached through a published port that DNATs only latlabPort
	sockperfBase = 11111             // first sockperf port; each server gets a TCP and a UDP port
	agreePoints  = 2.0               // the ratios agree when they differ by at most this many points
)

var workloadNames = []string{"tcp_rr", "udp_rr"}

// errNotWithin: -reference found latlab outside the bounds.
var errNotWithin = errors.New("not within the bounds")

// labMode is one entry of the lab JSON's modes[].
type labMode struct {
	Name     string `json:"name"`
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	ClientNS string `json:"client_netns"`
	ServerNS string `json:"server_netns"`
	Target   string `json:"target"`
}

// labInfo is what labpeers reads of `latlab lab --json`.
type labInfo struct {
	Prefix   string    `json:"prefix"`
	Baseline string    `json:"baseline"`
	Modes    []labMode `json:"modes"`
	// PlacementOf is the placement the lab's calibration chose per
	// workload (absent when the lab was pinned).
	PlacementOf map[string]struct {
		Name       string `json:"name"`
		ClientCPUs []int  `json:"client_cpus"`
		ServerCPU  int    `json:"server_cpu"`
	} `json:"placement_of"`
}

// parseLab reads the lab JSON. Modes whose status is not ok are returned in
// skipped with their reason; the baseline defaults to host.
func parseLab(r io.Reader) (info labInfo, ok, skipped []labMode, err error) {
	if err := json.NewDecoder(r).Decode(&info); err != nil {
		return info, nil, nil, fmt.Errorf("lab JSON: %w", err)
	}
	if info.Baseline == "" {
		info.Baseline = "host"
	}
	for _, m := range info.Modes {
		if m.Status != "ok" {
			skipped = append(skipped, m)
			continue
		}
		if m.ClientNS == "" || m.ServerNS == "" || m.Target == "" {
			return info, nil, nil, fmt.Errorf("lab JSON: mode %s lacks client_netns, server_netns or target", m.Name)
		}
		ok = append(ok, m)
	}
	if !slices.ContainsFunc(ok, func(m labMode) bool { return m.Name == info.Baseline }) {
		return info, nil, nil, fmt.Errorf("lab JSON: baseline mode %q is not up", info.Baseline)
	}
	return info, ok, skipped, nil
}

// endpoint is where one mode's traffic goes.
type endpoint struct {
	Mode     string `json:"mode"`
	ClientNS string `json:"client_netns"`
	ServerNS string `json:"server_netns"`
	Target   string `json:"target"`                 // latlab's HOST:PORT, as the lab uses it
	Sockperf string `json:"sockperf_tcp,omitempty"` // HOST:PORT of the TCP sockperf server ("" = none)
	SockUDP  string `json:"sockperf_udp,omitempty"` // HOST:PORT of the UDP sockperf server
	Note     string `json:"note,omitempty"`         // why sockperf is not run, if it is not
	host     string // target address
	spTCP    int
	spUDP    int
}

// server is the set of servers one (server namespace, latlab port) needs.
type server struct {
	NS     string
	Host   string // address sockperf binds (the modes' target address)
	Listen int    // latlab serve port
	SpTCP  int    // 0 = no sockperf here
	SpUDP  int
}

// plan maps the lab's modes to endpoints and the servers they need: one
// latlab server per (server namespace, port) — bridge-nat has a port of its
// own, as in the lab — and, next to it, a TCP and a UDP sockperf server on
// ports from sockperfBase on. bridge-nat-dnat's published port forwards only
// latlab's port, so sockperf is not run there.
func plan(modes []labMode) ([]endpoint, []server, error) {
	var eps []endpoint
	var srvs []server
	next := sockperfBase
	for _, m := range modes {
		host, port, err := net.SplitHostPort(m.Target)
		if err != nil {
			return nil, nil, fmt.Errorf("mode %s: target %q: %w", m.Name, m.Target, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, nil, fmt.Errorf("mode %s: target %q: bad port", m.Name, m.Target)
		}
		ep := endpoint{Mode: m.Name, ClientNS: m.ClientNS, ServerNS: m.ServerNS, Target: m.Target, host: host}
		dnat := m.Name == dnatMode
		listen := p
		if dnat {
			listen = latlabPort // the published port DNATs to the server's own latlab port
			ep.Note = fmt.Sprintf("no sockperf: the published port %d forwards only latlab's port %d", p, latlabPort)
		}
		i := slices.IndexFunc(srvs, func(s server) bool { return s.NS == m.ServerNS && s.Listen == listen })
		if i < 0 {
			srvs = append(srvs, server{NS: m.ServerNS, Host: host, Listen: listen})
			i = len(srvs) - 1
		}
		s := &srvs[i]
		if !dnat {
			if s.SpTCP == 0 {
				s.SpTCP, s.SpUDP = next, next+1
				next += 2
			}
			ep.spTCP, ep.spUDP = s.SpTCP, s.SpUDP
			ep.Sockperf = net.JoinHostPort(host, strconv.Itoa(s.SpTCP))
			ep.SockUDP = net.JoinHostPort(host, strconv.Itoa(s.SpUDP))
		}
		eps = append(eps, ep)
	}
	return eps, srvs, nil
}

// nsenter returns argv run under `taskset -c cpu` inside the named network
// namespace (never `ip netns exec`, which also remounts /sys).
func nsenter(ns string, cpu int, argv ...string) []string {
	return append([]string{"taskset", "-c", strconv.Itoa(cpu), "nsenter", "--net=/var/run/netns/" + ns}, argv...)
}

// serverArgv lists the command lines of s's servers.
func serverArgv(latlab string, cpu int, s server) [][]string {
	out := [][]string{{"taskset", "-c", strconv.Itoa(cpu), latlab, "serve", "--netns", s.NS,
		"--listen", ":" + strconv.Itoa(s.Listen), "--log-level", "warn"}}
	if s.SpTCP != 0 {
		out = append(out,
			nsenter(s.NS, cpu, "sockperf", "sr", "--tcp", "-i", s.Host, "-p", strconv.Itoa(s.SpTCP)),
			nsenter(s.NS, cpu, "sockperf", "sr", "-i", s.Host, "-p", strconv.Itoa(s.SpUDP)))
	}
	return out
}

// procs are the servers labpeers started. Each runs in a process group of
// its own (so a terminal's Ctrl-C reaches only labpeers, which stops them in
// order) and is killed by the kernel if labpeers dies first.
type procs struct {
	cmds []*exec.Cmd
	done []chan struct{}
}

func (p *procs) start(argv []string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = childAttr()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %v: %w", argv, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.cmds = append(p.cmds, cmd)
	p.done = append(p.done, done)
	return nil
}

// alive fails when a server has already exited (a port in use, a missing
// namespace).
func (p *procs) alive() error {
	for i, c := range p.cmds {
		select {
		case <-p.done[i]:
			return fmt.Errorf("server %v exited: %v %s", c.Args, c.ProcessState, c.Stderr.(*bytes.Buffer).String())
		default:
		}
	}
	return nil
}

// stop kills and reaps every server.
func (p *procs) stop() {
	for i, c := range p.cmds {
		c.Process.Kill()
		<-p.done[i]
	}
	p.cmds, p.done = nil, nil
}

// job is one measurement of one round.
type job struct {
	mode, workload, tool string // tool: "latlab" or "sockperf"
	argv                 []string
}

func (j job) name() string { return j.mode + " " + j.workload + " " + j.tool }

type config struct {
	latlab     string
	secs, size int
	ccpu, scpu int
	workloads  []string
	// tools run: "latlab", "sockperf" (none named: both); blocked: the design of
	// the rounds (blockedOrder), else every job shuffled.
	tools   []string
	blocked bool
}

// jobs lists one round's measurements, in plan order.
func (c config) jobs(eps []endpoint) []job {
	d, sz := strconv.Itoa(c.secs), strconv.Itoa(c.size)
	runs := func(tool string) bool { return len(c.tools) == 0 || slices.Contains(c.tools, tool) }
	var out []job
	for _, ep := range eps {
		for _, w := range c.workloads {
			if runs("latlab") {
				out = append(out, job{ep.Mode, w, "latlab", []string{"taskset", "-c", strconv.Itoa(c.ccpu), c.latlab, "bench",
					"-w", w, "--size", sz, "--netns", ep.ClientNS, "--target", ep.Target, "-d", d + "s", "--warmup", "1s",
					"--cpu", strconv.Itoa(c.ccpu), "--server-cpu", "none", "--json", "--quiet"}})
			}
			if ep.spTCP == 0 || !runs("sockperf") {
				continue
			}
			argv := []string{"sockperf", "ping-pong", "-i", ep.host, "-m", sz, "--mps=max", "-t", d}
			if w == "tcp_rr" {
				argv = append(argv, "--tcp", "-p", strconv.Itoa(ep.spTCP))
			} else {
				argv = append(argv, "-p", strconv.Itoa(ep.spUDP))
			}
			out = append(out, job{ep.Mode, w, "sockperf", nsenter(ep.ClientNS, c.ccpu, argv...)})
		}
	}
	return out
}

func runOut(ctx context.Context, argv []string) ([]byte, []byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = childAttr()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, nil, fmt.Errorf("%v: %w\n%s%s", argv, err, out.String(), errb.String())
	}
	return out.Bytes(), errb.Bytes(), nil
}

// parseLatlab returns the rate of a `latlab bench --json` result.
func parseLatlab(out []byte) (float64, error) {
	var res struct {
		RatePerSec float64 `json:"rate_per_sec"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("latlab JSON: %w", err)
	}
	if res.RatePerSec <= 0 {
		return 0, fmt.Errorf("latlab JSON: no rate_per_sec")
	}
	return res.RatePerSec, nil
}

// As bench/peers (a main package, so not importable) parses sockperf 3.x.
var spValid = regexp.MustCompile(`\[Valid Duration\] RunTime=([0-9.]+) sec; SentMessages=(\d+); ReceivedMessages=(\d+)`)

// parseSockperf returns the round trips per second of a ping-pong run: the
// replies received over the valid duration (sockperf's own warm-up and
// cool-down left out).
func parseSockperf(out []byte) (float64, error) {
	v := spValid.FindSubmatch(out)
	if v == nil {
		return 0, fmt.Errorf("unexpected sockperf output:\n%s", out)
	}
	secs, _ := strconv.ParseFloat(string(v[1]), 64)
	recv, _ := strconv.ParseFloat(string(v[3]), 64)
	if secs <= 0 || recv <= 0 {
		return 0, fmt.Errorf("sockperf measured nothing: %s", v[0])
	}
	return recv / secs, nil
}

func (j job) run(ctx context.Context) (float64, error) {
	out, errb, err := runOut(ctx, j.argv)
	if err != nil {
		return 0, err
	}
	if j.tool == "latlab" {
		return parseLatlab(out)
	}
	return parseSockperf(append(out, errb...))
}

// series holds one mode's per-round rates of one workload; index i of every
// slice is round i.
type series struct{ latlab, sockperf []float64 }

// data[workload][mode]
type data map[string]map[string]*series

func (d data) get(w, m string) *series {
	if d[w] == nil {
		d[w] = map[string]*series{}
	}
	if d[w][m] == nil {
		d[w][m] = &series{}
	}
	return d[w][m]
}

// ratio is a median of per-round ratios with its order-statistic CI.
type ratio struct {
	Median     float64 `json:"median"`
	Lo         float64 `json:"ci_low"`
	Hi         float64 `json:"ci_high"`
	Confidence float64 `json:"confidence"`
	TooFew     bool    `json:"too_few_rounds"`
}

func pairedRatio(num, den []float64) *ratio {
	if len(num) == 0 || len(num) != len(den) {
		return nil
	}
	e, err := stats.PairedRatio(num, den, 0.95)
	if err != nil || e.N == 0 {
		return nil
	}
	return &ratio{Median: e.Center, Lo: e.Lo, Hi: e.Hi, Confidence: e.Confidence, TooFew: e.TooFew}
}

// row is one mode of one workload's table.
type row struct {
	Mode          string    `json:"mode"`
	LatlabRate    float64   `json:"latlab_rate_per_sec"`             // median over rounds
	SockperfRate  float64   `json:"sockperf_rate_per_sec,omitempty"` // median over rounds
	LatlabRatio   *ratio    `json:"latlab_ratio_vs_host,omitempty"`
	SockperfRatio *ratio    `json:"sockperf_ratio_vs_host,omitempty"`
	DeltaPoints   *float64  `json:"delta_points,omitempty"` // (latlab ratio − sockperf ratio) × 100
	Note          string    `json:"note,omitempty"`
	LatlabRates   []float64 `json:"latlab_rates"`
	SockperfRates []float64 `json:"sockperf_rates,omitempty"`
	// LatlabLab and SockperfLab are the ratios by the lab's own statistic
	// (Hodges–Lehmann, signed-rank interval, Bonferroni over the table).
	LatlabLab   *labRatio `json:"latlab_lab_ratio,omitempty"`
	SockperfLab *labRatio `json:"sockperf_lab_ratio,omitempty"`
}

type table struct {
	Workload string `json:"workload"`
	Rows     []row  `json:"modes"`
	// Agree is whether every mode's two ratios differ by at most
	// agreePoints; nil when no mode but the baseline has both.
	Agree       *bool   `json:"agree"`
	MaxAbsDelta float64 `json:"max_abs_delta_points"`
}

// summarize builds one workload's table from its series, modes in order,
// ratios paired by round with the baseline's.
func summarize(w string, order []string, baseline string, s map[string]*series, notes map[string]string) table {
	t := table{Workload: w}
	base := s[baseline]
	if base == nil {
		base = &series{}
	}
	compared := false
	latLab := labRatios(order, baseline, s, func(x *series) []float64 { return x.latlab })
	spLab := labRatios(order, baseline, s, func(x *series) []float64 { return x.sockperf })
	for _, m := range order {
		ms := s[m]
		if ms == nil {
			continue
		}
		r := row{Mode: m, Note: notes[m], LatlabRates: ms.latlab, SockperfRates: ms.sockperf,
			LatlabRate: benchproc.Median(ms.latlab), SockperfRate: benchproc.Median(ms.sockperf)}
		r.LatlabRatio = pairedRatio(ms.latlab, base.latlab)
		r.SockperfRatio = pairedRatio(ms.sockperf, base.sockperf)
		r.LatlabLab, r.SockperfLab = latLab[m], spLab[m]
		if r.LatlabRatio != nil && r.SockperfRatio != nil {
			d := (r.LatlabRatio.Median - r.SockperfRatio.Median) * 100
			r.DeltaPoints = &d
			if m != baseline {
				compared = true
				t.MaxAbsDelta = math.Max(t.MaxAbsDelta, math.Abs(d))
			}
		}
		t.Rows = append(t.Rows, r)
	}
	if compared {
		a := t.MaxAbsDelta <= agreePoints
		t.Agree = &a
	}
	return t
}

func fmtRatio(r *ratio) string {
	switch {
	case r == nil:
		return "-"
	case r.TooFew:
		return fmt.Sprintf("%.3f", r.Median)
	}
	return fmt.Sprintf("%.3f [%.3f, %.3f]", r.Median, r.Lo, r.Hi)
}

func fmtRate(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

// printTable writes one workload's table.
func printTable(out io.Writer, t table, rounds int) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "%s: rate/s (median over rounds) and ratio vs host (median of per-round ratios)\n", t.Workload)
	width := len("mode")
	for _, r := range t.Rows {
		width = max(width, len(r.Mode))
	}
	fmt.Fprintf(w, "  %-*s %10s %10s %24s %24s %8s\n", width, "mode", "latlab", "sockperf", "latlab ratio", "sockperf ratio", "Δ points")
	tooFew := false
	for _, r := range t.Rows {
		d := "-"
		if r.DeltaPoints != nil {
			d = fmt.Sprintf("%+.1f", *r.DeltaPoints)
		}
		for _, x := range []*ratio{r.LatlabRatio, r.SockperfRatio} {
			tooFew = tooFew || (x != nil && x.TooFew)
		}
		fmt.Fprintf(w, "  %-*s %10s %10s %24s %24s %8s", width, r.Mode, fmtRate(r.LatlabRate), fmtRate(r.SockperfRate),
			fmtRatio(r.LatlabRatio), fmtRatio(r.SockperfRatio), d)
		if r.Note != "" {
			fmt.Fprintf(w, "   (%s)", r.Note)
		}
		fmt.Fprintln(w)
	}
	if tooFew {
		fmt.Fprintf(w, "  (%d rounds: a 95%% CI of the ratios needs at least 6)\n", rounds)
	}
	switch {
	case t.Agree == nil:
		fmt.Fprintf(w, "  agree within %g points: n/a (no mode but host has both ratios)\n", agreePoints)
	default:
		yes := "no"
		if *t.Agree {
			yes = "yes"
		}
		fmt.Fprintf(w, "  agree within %g points: %s (max |Δ| = %.1f points)\n", agreePoints, yes, t.MaxAbsDelta)
	}
	fmt.Fprintln(w)
	return w.Flush()
}

type report struct {
	Lab         string     `json:"lab"`
	Kernel      string     `json:"kernel"`
	CPU         string     `json:"cpu_model"`
	Rounds      int        `json:"rounds"`
	Planned     int        `json:"rounds_planned"`
	Incomplete  bool       `json:"incomplete"`
	Error       string     `json:"error,omitempty"`
	Seconds     int        `json:"seconds"`
	Size        int        `json:"size"`
	ClientCPU   int        `json:"client_cpu"`
	ServerCPU   int        `json:"server_cpu"`
	Seed        uint64     `json:"seed"`
	Baseline    string     `json:"baseline"`
	Endpoints   []endpoint `json:"endpoints"`
	Skipped     []labMode  `json:"skipped_modes,omitempty"`
	Tables      []table    `json:"workloads"`
	AgreePoints float64    `json:"agree_points"`
	Blocked     bool       `json:"blocked"`
	// WallSeconds is how long the rounds took, servers' start included.
	WallSeconds float64 `json:"wall_seconds"`
}

func main() {
	labFile := flag.String("lab", "", "JSON of `latlab lab --keep --json` (required)")
	latlab := flag.String("latlab", "bench/out/latlab", "latlab binary")
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	secs := flag.Int("duration", 5, "seconds per run (whole seconds: sockperf -t)")
	size := flag.Int("size", 64, "message size")
	ccpu := flag.Int("client-cpu", -1, "client CPU (latlab bench --cpu and taskset); -1: the placement the lab calibrated for tcp_rr")
	scpu := flag.Int("server-cpu", -1, "server CPU (taskset of every server); -1: as the lab calibrated")
	only := flag.String("workloads", "tcp_rr,udp_rr", "comma-separated workloads: tcp_rr, udp_rr")
	seed := flag.Uint64("seed", 0, "seed of the round orders (0: random; printed)")
	asJSON := flag.Bool("json", false, "write JSON instead of tables")
	tools := flag.String("tools", "latlab,sockperf", "tools to run through every mode: latlab, sockperf or both")
	blocked := flag.Bool("blocked", false, "blocked rounds: each workload's runs back to back in a fresh order (the lab's design), instead of every run shuffled")
	refFile := flag.String("reference", "", "with -lab-result: print a reference run's (-json output) ratios beside a `latlab lab -o json` run's and exit (1: not within -hw-within/-agree-within)")
	labResultFile := flag.String("lab-result", "", "`latlab lab -o json` output to set beside -reference")
	hwWithin := flag.Float64("hw-within", 1.2, "with -reference: latlab's half-width may be at most this multiple of the reference's")
	agreeWithin := flag.Float64("agree-within", 2.5, "with -reference: latlab's ratio may differ from the reference's by at most this many points")
	flag.Parse()
	if *refFile != "" || *labResultFile != "" {
		if err := compareFiles(*refFile, *labResultFile, *hwWithin, *agreeWithin); err != nil {
			if err != errNotWithin {
				fatal(err)
			}
			os.Exit(1)
		}
		return
	}
	if *labFile == "" || *rounds < 1 || *secs < 1 {
		fmt.Fprintln(os.Stderr, "labpeers: need -lab FILE, -rounds ≥ 1 and -duration ≥ 1")
		os.Exit(2)
	}
	var c config
	for _, w := range strings.Split(*only, ",") {
		w = strings.TrimSpace(w)
		if !slices.Contains(workloadNames, w) {
			fmt.Fprintf(os.Stderr, "labpeers: unknown workload %q (want some of %s)\n", w, strings.Join(workloadNames, ","))
			os.Exit(2)
		}
		c.workloads = append(c.workloads, w)
	}
	f, err := os.Open(*labFile)
	if err != nil {
		fatal(err)
	}
	info, modes, skipped, err := parseLab(f)
	f.Close()
	if err != nil {
		fatal(err)
	}
	if p, ok := info.PlacementOf["tcp_rr"]; ok && len(p.ClientCPUs) == 1 && p.ServerCPU >= 0 {
		if *ccpu < 0 {
			*ccpu = p.ClientCPUs[0]
		}
		if *scpu < 0 {
			*scpu = p.ServerCPU
		}
		fmt.Fprintf(os.Stderr, "placement: the lab's calibration chose %s for tcp_rr (client CPU %d, server CPU %d)\n", p.Name, p.ClientCPUs[0], p.ServerCPU)
	}
	*ccpu, *scpu = max(*ccpu, 0), max(*scpu, 0)
	c = config{latlab: *latlab, secs: *secs, size: *size, ccpu: *ccpu, scpu: *scpu, workloads: c.workloads,
		tools: strings.Split(*tools, ","), blocked: *blocked}
	for _, t := range c.tools {
		if t != "latlab" && t != "sockperf" {
			fmt.Fprintf(os.Stderr, "labpeers: unknown tool %q (want latlab, sockperf or both)\n", t)
			os.Exit(2)
		}
	}
	eps, srvs, err := plan(modes)
	if err != nil {
		fatal(err)
	}
	if *seed == 0 {
		*seed = rand.Uint64()
	}
	kernel, cpu := benchproc.Host()
	rep := report{Lab: info.Prefix, Kernel: kernel, CPU: cpu,
		Planned: *rounds, Seconds: *secs, Size: *size, ClientCPU: *ccpu, ServerCPU: *scpu, Seed: *seed,
		Baseline: info.Baseline, Endpoints: eps, Skipped: skipped, AgreePoints: agreePoints}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep.Blocked = c.blocked
	t0 := time.Now()
	d, runErr := measure(ctx, c, eps, srvs, *rounds, *seed, &rep.Rounds)
	rep.WallSeconds = time.Since(t0).Seconds()
	if runErr != nil {
		rep.Incomplete = true
		rep.Error = runErr.Error()
		fmt.Fprintf(os.Stderr, "labpeers: %v\n", runErr)
	}
	order := make([]string, len(eps))
	notes := map[string]string{}
	for i, ep := range eps {
		order[i] = ep.Mode
		if ep.Note != "" {
			notes[ep.Mode] = ep.Note
		}
	}
	for _, w := range c.workloads {
		rep.Tables = append(rep.Tables, summarize(w, order, info.Baseline, d[w], notes))
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fatal(fmt.Errorf("write JSON: %w", err))
		}
	} else {
		printReport(os.Stdout, rep)
	}
	if runErr != nil {
		os.Exit(1)
	}
}

func printReport(out io.Writer, rep report) {
	fmt.Fprintf(out, "latlab vs sockperf through lab %s: %d rounds of %ds (of %d planned), %d-byte messages, client CPU %d, server CPU %d, seed %d\n",
		rep.Lab, rep.Rounds, rep.Seconds, rep.Planned, rep.Size, rep.ClientCPU, rep.ServerCPU, rep.Seed)
	fmt.Fprintf(out, "kernel %s, %s\n", rep.Kernel, rep.CPU)
	for _, m := range rep.Skipped {
		fmt.Fprintf(out, "mode %s %s: %s\n", m.Name, m.Status, m.Reason)
	}
	fmt.Fprintln(out)
	if rep.Rounds == 0 {
		fmt.Fprintln(out, "no round finished")
		return
	}
	for _, t := range rep.Tables {
		printTable(out, t, rep.Rounds)
	}
}

// measure starts the servers, runs the rounds and stops the servers. It
// returns the series of the rounds that finished (*done of them) and why it
// stopped early, if it did.
func measure(ctx context.Context, c config, eps []endpoint, srvs []server, rounds int, seed uint64, done *int) (data, error) {
	d := data{}
	var p procs
	defer p.stop()
	for _, s := range srvs {
		for _, argv := range serverArgv(c.latlab, c.scpu, s) {
			if err := p.start(argv); err != nil {
				return d, err
			}
		}
	}
	select {
	case <-ctx.Done():
		return d, errors.New("interrupted")
	case <-time.After(time.Second):
	}
	if err := p.alive(); err != nil {
		return d, err
	}
	jobs := c.jobs(eps)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := 1; round <= rounds; round++ {
		start := time.Now()
		order := slices.Clone(jobs)
		if c.blocked {
			order = blockedOrder(rng, jobs, c.workloads)
		} else {
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		got := make([]float64, len(order))
		for i, j := range order {
			jctx, cancel := context.WithTimeout(ctx, time.Duration(c.secs+30)*time.Second)
			v, err := j.run(jctx)
			cancel()
			if ctx.Err() != nil {
				return d, fmt.Errorf("interrupted in round %d", round)
			}
			if err != nil {
				if aerr := p.alive(); aerr != nil {
					err = fmt.Errorf("%w (%v)", err, aerr)
				}
				return d, fmt.Errorf("round %d, %s: %w", round, j.name(), err)
			}
			got[i] = v
		}
		for i, j := range order { // only whole rounds count: the ratios pair by round
			s := d.get(j.workload, j.mode)
			if j.tool == "latlab" {
				s.latlab = append(s.latlab, got[i])
			} else {
				s.sockperf = append(s.sockperf, got[i])
			}
		}
		*done = round
		fmt.Fprintf(os.Stderr, "round %d/%d: %d runs in %.0fs\n", round, rounds, len(order), time.Since(start).Seconds())
	}
	return d, nil
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "labpeers: %v\n", err)
	os.Exit(1)
}
