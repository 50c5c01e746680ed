// Command peers runs latlab side by side with the C tools it must keep up
// with — sockperf (TCP and UDP ping-pong) and iperf3 (single stream) — on
// the same path with the same pinning, in interleaved rounds, and prints
// each figure with the latlab/peer ratio.
//
// It is driven by bench/compare-peers.sh, which builds latlab and the veth
// path; see bench/README.md for how to read the output.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latlab/latlab/bench/internal/benchproc"
)

type path struct {
	name     string
	clientNS string // "" = caller's namespace
	serverNS string
	addr     string
}

type metric struct {
	latlab, peer []float64
}

// placement is where both sides of every job run: the same for latlab and
// its peer (the C tools are single-threaded, so their only knob is the
// CPU set).
type placement struct {
	name string
	// taskset: the CPU set of the client's and the server's process
	// (-1: not confined).
	clientSet, serverSet int
	// latlab's own pinning of its timed threads (--cpu, --server-cpu).
	cpu, serverCPU string
	// peerClient, peerServer: the CPU the C tools are confined to.
	peerClient, peerServer int
	// stream: tcp_stream runs here (client and server need a core each).
	stream bool
}

// placements are the three placements a user runs (bench/README.md):
// across two cores, on one core with latlab's runtime threads free, and
// in a one-CPU cpuset (taskset on both, as a small container).
func placements(clientCPU, serverCPU int) map[string]placement {
	c, sv := strconv.Itoa(clientCPU), strconv.Itoa(serverCPU)
	return map[string]placement{
		"cross-core": {name: "cross-core", clientSet: clientCPU, serverSet: serverCPU, cpu: c, serverCPU: sv,
			peerClient: clientCPU, peerServer: serverCPU, stream: true},
		"same-core": {name: "same-core", clientSet: -1, serverSet: -1, cpu: sv, serverCPU: sv,
			peerClient: serverCPU, peerServer: serverCPU},
		"taskset-1cpu": {name: "taskset-1cpu", clientSet: serverCPU, serverSet: serverCPU, cpu: sv, serverCPU: "none",
			peerClient: serverCPU, peerServer: serverCPU},
	}
}

var placementOrder = []string{"cross-core", "same-core", "taskset-1cpu"}

func main() {
	latlab := flag.String("latlab", "bench/out/latlab", "latlab binary")
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	dur := flag.Int("duration", 5, "seconds per run")
	size := flag.Int("size", 64, "message size for the ping-pong workloads")
	clientCPU := flag.Int("client-cpu", 1, "client CPU of the cross-core placement")
	serverCPU := flag.Int("server-cpu", 0, "server CPU (and the one CPU of same-core and taskset-1cpu)")
	only := flag.String("workloads", "tcp_rr,udp_rr,tcp_stream", "comma-separated workloads to compare")
	pls := flag.String("placements", strings.Join(placementOrder, ","), "comma-separated placements: cross-core, same-core, taskset-1cpu (tcp_stream runs cross-core only)")
	attribute := flag.Bool("attribute", false, "also run latlab tcp_rr and udp_rr with --attribute and print their rate over the untraced run's, round by round")
	cc := flag.String("congestion", "", "tcp_stream: congestion control for both latlab (--congestion) and iperf3 (-C); empty keeps the namespace default")
	var paths []path
	flag.Func("path", "NAME:CLIENT_NS:SERVER_NS:ADDR (namespaces may be empty); repeatable", func(s string) error {
		f := strings.Split(s, ":")
		if len(f) != 4 {
			return fmt.Errorf("want NAME:CLIENT_NS:SERVER_NS:ADDR")
		}
		paths = append(paths, path{f[0], f[1], f[2], f[3]})
		return nil
	})
	flag.Parse()
	if len(paths) == 0 {
		paths = []path{{name: "loopback", addr: "127.0.0.1"}}
	}
	r := &runner{latlab: *latlab, dur: *dur, size: *size, cc: *cc, attribute: *attribute}
	all := placements(*clientCPU, *serverCPU)
	for _, n := range strings.Split(*pls, ",") {
		pl, ok := all[strings.TrimSpace(n)]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown placement %q (want some of %s)\n", n, strings.Join(placementOrder, ","))
			os.Exit(2)
		}
		r.placements = append(r.placements, pl)
	}
	for _, w := range strings.Split(*only, ",") {
		w = strings.TrimSpace(w)
		if !slices.Contains(workloads, w) {
			fmt.Fprintf(os.Stderr, "unknown workload %q (want some of %s)\n", w, strings.Join(workloads, ","))
			os.Exit(2)
		}
		r.only = append(r.only, w)
	}
	fmt.Printf("latlab vs C peers: %d interleaved rounds of %ds, %d-byte messages; cross-core: client CPU %d, server CPU %d; same-core and taskset-1cpu on CPU %d\n",
		*rounds, *dur, *size, *clientCPU, *serverCPU, *serverCPU)
	kernel, cpu := benchproc.Host()
	fmt.Printf("kernel %s, %s\n\n", kernel, cpu)
	failed := false
	for _, p := range paths {
		m, err := r.path(p, *rounds)
		if err != nil {
			fmt.Fprintf(os.Stderr, "path %s: %v\n", p.name, err)
			failed = true
			continue
		}
		fmt.Printf("path %s (client ns %q, server ns %q, address %s)\n", p.name, p.clientNS, p.serverNS, p.addr)
		for _, pl := range r.placements {
			fmt.Printf(" placement %s\n", pl.name)
			printTable(os.Stdout, m, pl.name+" ")
		}
		if r.ran != "" {
			fmt.Printf("  tcp_stream congestion control: %s\n\n", r.ran)
		}
	}
	if failed {
		os.Exit(1)
	}
}

type runner struct {
	latlab     string
	dur, size  int
	placements []placement
	only       []string // workloads to compare; empty = all
	cc         string   // tcp_stream congestion control ("" = default)
	attribute  bool     // also run latlab's rr jobs with --attribute
	ran        string   // the congestion control each stream tool reported
	procs      benchproc.Procs
}

// workloads are the compared workloads, each a latlab job and a peer job.
var workloads = []string{"tcp_rr", "udp_rr", "tcp_stream"}

func (r *runner) wants(w string) bool { return len(r.only) == 0 || slices.Contains(r.only, w) }

func runOut(ctx context.Context, argv []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return nil, fmt.Errorf("%v: %w\n%s%s", argv, err, out.String(), errb.String())
	}
	return append(out.Bytes(), errb.Bytes()...), nil
}

// metricNames lists the compared figures in print order (each prefixed
// with its placement). CPU µs per transaction is the whole process's CPU
// time (user + system, every thread) over the transactions of the whole
// run (warm-up included), the same way for both tools: latlab's own
// per-thread figure would leave its runtime threads out.
var metricNames = []string{"tcp_rr rate/s", "tcp_rr p50 µs", "tcp_rr client CPU µs/txn", "tcp_rr server CPU µs/txn",
	"udp_rr rate/s", "udp_rr p50 µs", "udp_rr client CPU µs/txn", "udp_rr server CPU µs/txn", "tcp_stream Gbit/s"}

// attrSuffix keys latlab's --attribute rates (see -attribute).
const attrSuffix = " --attribute rate/s"

// pin runs argv confined to cpu (taskset; -1: not confined), inside ns.
func pin(ns string, cpu int, argv ...string) []string {
	if cpu < 0 {
		if ns == "" {
			return argv
		}
		return append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	return benchproc.Pin(ns, cpu, argv...)
}

func (r *runner) path(p path, rounds int) (map[string]*metric, error) {
	defer r.procs.StopAll()
	type job struct {
		name     string
		workload string
		fn       func(context.Context) error
	}
	m := map[string]*metric{}
	get := func(k string) *metric {
		if m[k] == nil {
			m[k] = &metric{}
		}
		return m[k]
	}
	var jobs []job
	var llCC, ipCC string // congestion control the stream runs reported
	d := strconv.Itoa(r.dur)
	sz := strconv.Itoa(r.size)
	total := float64(r.dur) // seconds of a whole run, warm-up included, for CPU per transaction
	for i, pl := range r.placements {
		// Each placement has its servers, on ports of their own.
		port := func(base int) string { return strconv.Itoa(base + 10*i) }
		spTCP, spUDP, ipPort, llPort := port(11111), port(11112), port(5201), port(7707)
		llSrv := pin(p.serverNS, pl.serverSet, r.latlab, "serve", "--listen", ":"+llPort, "--log-level", "warn")
		spTCPSrv := pin(p.serverNS, pl.peerServer, "sockperf", "sr", "--tcp", "-i", p.addr, "-p", spTCP)
		spUDPSrv := pin(p.serverNS, pl.peerServer, "sockperf", "sr", "-i", p.addr, "-p", spUDP)
		var llPID, spTCPPID, spUDPPID int
		for _, s := range []struct {
			argv []string
			pid  *int
		}{{llSrv, &llPID}, {spTCPSrv, &spTCPPID}, {spUDPSrv, &spUDPPID}} {
			pid, err := r.procs.StartPID(s.argv...)
			if err != nil {
				return nil, err
			}
			*s.pid = pid
		}
		if pl.stream {
			if _, err := r.procs.StartPID(pin(p.serverNS, pl.peerServer, "iperf3", "-s", "-p", ipPort, "-A", strconv.Itoa(pl.peerServer))...); err != nil {
				return nil, err
			}
		}
		ll := func(w string, extra ...string) []string {
			argv := append([]string{r.latlab, "bench", "--target", p.addr + ":" + llPort, "--workload", w,
				"--duration", d + "s", "--warmup", "1s", "--cpu", pl.cpu, "--server-cpu", pl.serverCPU, "--json"}, extra...)
			return pin(p.clientNS, pl.clientSet, argv...)
		}
		sp := func(udp bool) []string {
			argv := []string{"sockperf", "pp", "-i", p.addr, "-t", d, "-m", sz, "--mps=max"}
			if udp {
				argv = append(argv, "-p", spUDP)
			} else {
				argv = append(argv, "--tcp", "-p", spTCP)
			}
			return pin(p.clientNS, pl.peerClient, argv...)
		}
		pre := pl.name + " "
		rr := func(w string, srvPID int, udp bool) []job {
			return []job{
				{pre + "latlab " + w, w, func(ctx context.Context) error {
					before := benchproc.ProcCPU(llPID)
					res, cpu, err := latlabJSON(ctx, ll(w, "--size", sz))
					if err == nil {
						srv := benchproc.ProcCPU(llPID) - before
						txns := res.RatePerSec * (total + 1) // + the 1s warm-up
						get(pre + w + " rate/s").latlab = append(get(pre+w+" rate/s").latlab, res.RatePerSec)
						get(pre + w + " p50 µs").latlab = append(get(pre+w+" p50 µs").latlab, float64(res.Latency.P50)/1e3)
						get(pre + w + " client CPU µs/txn").latlab = append(get(pre+w+" client CPU µs/txn").latlab, cpu.Seconds()*1e6/txns)
						get(pre + w + " server CPU µs/txn").latlab = append(get(pre+w+" server CPU µs/txn").latlab, srv.Seconds()*1e6/txns)
					}
					return err
				}},
				{pre + "sockperf " + w, w, func(ctx context.Context) error {
					before := benchproc.ProcCPU(srvPID)
					sr, cpu, err := sockperf(ctx, sp(udp))
					if err == nil {
						srv := benchproc.ProcCPU(srvPID) - before
						get(pre + w + " rate/s").peer = append(get(pre+w+" rate/s").peer, sr.rate)
						get(pre + w + " p50 µs").peer = append(get(pre+w+" p50 µs").peer, sr.p50)
						get(pre + w + " client CPU µs/txn").peer = append(get(pre+w+" client CPU µs/txn").peer, cpu.Seconds()*1e6/sr.total)
						get(pre + w + " server CPU µs/txn").peer = append(get(pre+w+" server CPU µs/txn").peer, srv.Seconds()*1e6/sr.total)
					}
					return err
				}},
			}
		}
		jobs = append(jobs, rr("tcp_rr", spTCPPID, false)...)
		jobs = append(jobs, rr("udp_rr", spUDPPID, true)...)
		if r.attribute {
			for _, w := range []string{"tcp_rr", "udp_rr"} {
				jobs = append(jobs, job{pre + "latlab " + w + " --attribute", w, func(ctx context.Context) error {
					res, _, err := latlabJSON(ctx, ll(w, "--size", sz, "--attribute"))
					if err == nil {
						get(pre + w + attrSuffix).latlab = append(get(pre+w+attrSuffix).latlab, res.RatePerSec)
					}
					return err
				}})
			}
		}
		if pl.stream {
			jobs = append(jobs,
				job{pre + "latlab tcp_stream", "tcp_stream", func(ctx context.Context) error {
					var extra []string
					if r.cc != "" {
						extra = []string{"--congestion", r.cc}
					}
					res, _, err := latlabJSON(ctx, ll("tcp_stream", extra...))
					if err == nil {
						llCC = res.Congestion
						get(pre + "tcp_stream Gbit/s").latlab = append(get(pre+"tcp_stream Gbit/s").latlab, res.ThroughputBps/1e9)
					}
					return err
				}},
				job{pre + "iperf3", "tcp_stream", func(ctx context.Context) error {
					argv := []string{"iperf3", "-c", p.addr, "-p", ipPort, "-t", d, "-O", "1", "-A", strconv.Itoa(pl.peerClient), "-J"}
					if r.cc != "" {
						argv = append(argv, "-C", r.cc)
					}
					bps, cc, err := iperf3(ctx, pin(p.clientNS, pl.peerClient, argv...))
					if err == nil {
						ipCC = cc
						get(pre + "tcp_stream Gbit/s").peer = append(get(pre+"tcp_stream Gbit/s").peer, bps/1e9)
					}
					return err
				}})
		}
	}
	time.Sleep(time.Second)
	jobs = slices.DeleteFunc(jobs, func(j job) bool { return !r.wants(j.workload) })
	defer func() {
		r.ran = ""
		if llCC != "" || ipCC != "" {
			r.ran = fmt.Sprintf("latlab %s, iperf3 %s", llCC, ipCC)
		}
	}()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := 1; round <= rounds; round++ {
		order := slices.Clone(jobs)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var names []string
		for _, j := range order {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.dur+30)*time.Second)
			err := j.fn(ctx)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round, j.name, err)
			}
			names = append(names, j.name)
		}
		fmt.Fprintf(os.Stderr, "%s round %d/%d: %s\n", p.name, round, rounds, strings.Join(names, ", "))
	}
	return m, nil
}

func printTable(out io.Writer, m map[string]*metric, prefix string) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "  %-26s %12s %12s %8s %8s %17s   %s\n", "metric", "latlab", "peer", "ratio", "paired", "95% CI", "per-round ratios")
	for _, k := range metricNames {
		mm := m[prefix+k]
		if mm == nil {
			continue // workload not compared in this placement
		}
		fmt.Fprintln(w, benchproc.Row(26, k, mm.latlab, mm.peer))
	}
	// --attribute against the same round's untraced latlab run.
	for _, wl := range []string{"tcp_rr", "udp_rr"} {
		a, u := m[prefix+wl+attrSuffix], m[prefix+wl+" rate/s"]
		if a == nil || u == nil || len(a.latlab) != len(u.latlab) {
			continue
		}
		fmt.Fprintln(w, benchproc.Row(26, wl+" --attribute/untraced", a.latlab, u.latlab))
	}
	fmt.Fprintln(w)
	return w.Flush()
}

type llResult struct {
	Congestion    string  `json:"congestion"`
	RatePerSec    float64 `json:"rate_per_sec"`
	ThroughputBps float64 `json:"throughput_bps"`
	Latency       struct {
		P50 int64 `json:"p50"`
	} `json:"latency_ns"`
}

// latlabJSON runs a latlab bench and returns its result and the CPU time
// (user + system) of the whole process.
func latlabJSON(ctx context.Context, argv []string) (llResult, time.Duration, error) {
	var res llResult
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return res, 0, fmt.Errorf("%v: %w: %s", argv, err, errb.String())
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return res, cpu, json.Unmarshal(out, &res)
}

var (
	spValid = regexp.MustCompile(`\[Valid Duration\] RunTime=([0-9.]+) sec; SentMessages=(\d+); ReceivedMessages=(\d+)`)
	spP50   = regexp.MustCompile(`percentile 50\.000 =\s+([0-9.]+)`)
	spTotal = regexp.MustCompile(`\[Total Run\] RunTime=[0-9.]+ sec; Warm up time=\d+ msec; SentMessages=\d+; ReceivedMessages=(\d+)`)
)

type spResult struct {
	rate, p50 float64 // round trips/s over the valid duration; median round trip, µs
	total     float64 // round trips of the whole run (warm-up included)
}

// sockperf runs a sockperf client and returns its figures (sockperf 3.x
// prints one-way latency, half the round trip) and the CPU time (user +
// system) of its process.
func sockperf(ctx context.Context, argv []string) (spResult, time.Duration, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var ob bytes.Buffer
	cmd.Stdout, cmd.Stderr = &ob, &ob
	if err := cmd.Run(); err != nil {
		return spResult{}, 0, fmt.Errorf("%v: %w\n%s", argv, err, ob.String())
	}
	out := ob.Bytes()
	v := spValid.FindSubmatch(out)
	t := spTotal.FindSubmatch(out)
	p := spP50.FindSubmatch(out)
	if v == nil || p == nil || t == nil {
		return spResult{}, 0, fmt.Errorf("unexpected sockperf output:\n%s", out)
	}
	secs, _ := strconv.ParseFloat(string(v[1]), 64)
	recv, _ := strconv.ParseFloat(string(v[3]), 64)
	all, _ := strconv.ParseFloat(string(t[1]), 64)
	half, _ := strconv.ParseFloat(string(p[1]), 64)
	return spResult{rate: recv / secs, p50: 2 * half, total: all}, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// iperf3 returns the bits/s the receiver counted and the sender's congestion
// control.
func iperf3(ctx context.Context, argv []string) (float64, string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out, err := cmd.Output()
	if err != nil {
		return 0, "", fmt.Errorf("%v: %w: %s", argv, err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			SenderCC string `json:"sender_tcp_congestion"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, "", err
	}
	return res.End.SumReceived.BitsPerSecond, res.End.SenderCC, nil
}
