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

func main() {
	latlab := flag.String("latlab", "bench/out/latlab", "latlab binary")
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	dur := flag.Int("duration", 5, "seconds per run")
	size := flag.Int("size", 64, "message size for the ping-pong workloads")
	clientCPU := flag.Int("client-cpu", 1, "client CPU")
	serverCPU := flag.Int("server-cpu", 0, "server CPU")
	only := flag.String("workloads", "tcp_rr,udp_rr,tcp_stream", "comma-separated workloads to compare")
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
	r := &runner{latlab: *latlab, dur: *dur, size: *size, ccpu: *clientCPU, scpu: *serverCPU, cc: *cc}
	for _, w := range strings.Split(*only, ",") {
		w = strings.TrimSpace(w)
		if !slices.Contains(workloads, w) {
			fmt.Fprintf(os.Stderr, "unknown workload %q (want some of %s)\n", w, strings.Join(workloads, ","))
			os.Exit(2)
		}
		r.only = append(r.only, w)
	}
	fmt.Printf("latlab vs C peers: %d interleaved rounds of %ds, %d-byte messages, client CPU %d, server CPU %d\n",
		*rounds, *dur, *size, *clientCPU, *serverCPU)
	fmt.Printf("kernel %s, %s\n\n", benchproc.Kernel(), benchproc.CPUModel())
	failed := false
	for _, p := range paths {
		m, err := r.path(p, *rounds)
		if err != nil {
			fmt.Fprintf(os.Stderr, "path %s: %v\n", p.name, err)
			failed = true
			continue
		}
		fmt.Printf("path %s (client ns %q, server ns %q, address %s)\n", p.name, p.clientNS, p.serverNS, p.addr)
		printTable(os.Stdout, m)
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
	ccpu, scpu int
	only       []string // workloads to compare; empty = all
	cc         string   // tcp_stream congestion control ("" = default)
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

// metricNames lists the compared figures in print order.
var metricNames = []string{"tcp_rr rate/s", "tcp_rr p50 µs", "udp_rr rate/s", "udp_rr p50 µs", "tcp_stream Gbit/s"}

func (r *runner) path(p path, rounds int) (map[string]*metric, error) {
	defer r.procs.StopAll()
	const spTCP, spUDP, ipPort, llPort = "11111", "11112", "5201", "7707"
	servers := [][]string{
		benchproc.Pin(p.serverNS, r.scpu, r.latlab, "serve", "--listen", ":"+llPort, "--log-level", "warn"),
		benchproc.Pin(p.serverNS, r.scpu, "sockperf", "sr", "--tcp", "-i", p.addr, "-p", spTCP),
		benchproc.Pin(p.serverNS, r.scpu, "sockperf", "sr", "-i", p.addr, "-p", spUDP),
		benchproc.Pin(p.serverNS, r.scpu, "iperf3", "-s", "-p", ipPort, "-A", strconv.Itoa(r.scpu)),
	}
	for _, s := range servers {
		if err := r.procs.Start(s...); err != nil {
			return nil, err
		}
	}
	time.Sleep(time.Second)
	d := strconv.Itoa(r.dur)
	ll := func(w string, extra ...string) []string {
		argv := append([]string{r.latlab, "bench", "--target", p.addr + ":" + llPort, "--workload", w,
			"--duration", d + "s", "--warmup", "1s", "--cpu", strconv.Itoa(r.ccpu), "--server-cpu", strconv.Itoa(r.scpu), "--json"}, extra...)
		return benchproc.Pin(p.clientNS, r.ccpu, argv...)
	}
	sp := func(udp bool) []string {
		argv := []string{"sockperf", "pp", "-i", p.addr, "-t", d, "-m", strconv.Itoa(r.size), "--mps=max"}
		if udp {
			argv = append(argv, "-p", spUDP)
		} else {
			argv = append(argv, "--tcp", "-p", spTCP)
		}
		return benchproc.Pin(p.clientNS, r.ccpu, argv...)
	}
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
	sz := strconv.Itoa(r.size)
	var llCC, ipCC string // congestion control the stream runs reported
	jobs := []job{
		{"latlab tcp_rr", "tcp_rr", func(ctx context.Context) error {
			res, err := latlabJSON(ctx, ll("tcp_rr", "--size", sz))
			if err == nil {
				get("tcp_rr rate/s").latlab = append(get("tcp_rr rate/s").latlab, res.RatePerSec)
				get("tcp_rr p50 µs").latlab = append(get("tcp_rr p50 µs").latlab, float64(res.Latency.P50)/1e3)
			}
			return err
		}},
		{"sockperf tcp", "tcp_rr", func(ctx context.Context) error {
			rate, p50, err := sockperf(ctx, sp(false))
			if err == nil {
				get("tcp_rr rate/s").peer = append(get("tcp_rr rate/s").peer, rate)
				get("tcp_rr p50 µs").peer = append(get("tcp_rr p50 µs").peer, p50)
			}
			return err
		}},
		{"latlab udp_rr", "udp_rr", func(ctx context.Context) error {
			res, err := latlabJSON(ctx, ll("udp_rr", "--size", sz))
			if err == nil {
				get("udp_rr rate/s").latlab = append(get("udp_rr rate/s").latlab, res.RatePerSec)
				get("udp_rr p50 µs").latlab = append(get("udp_rr p50 µs").latlab, float64(res.Latency.P50)/1e3)
			}
			return err
		}},
		{"sockperf udp", "udp_rr", func(ctx context.Context) error {
			rate, p50, err := sockperf(ctx, sp(true))
			if err == nil {
				get("udp_rr rate/s").peer = append(get("udp_rr rate/s").peer, rate)
				get("udp_rr p50 µs").peer = append(get("udp_rr p50 µs").peer, p50)
			}
			return err
		}},
		{"latlab tcp_stream", "tcp_stream", func(ctx context.Context) error {
			var extra []string
			if r.cc != "" {
				extra = []string{"--congestion", r.cc}
			}
			res, err := latlabJSON(ctx, ll("tcp_stream", extra...))
			if err == nil {
				llCC = res.Congestion
				get("tcp_stream Gbit/s").latlab = append(get("tcp_stream Gbit/s").latlab, res.ThroughputBps/1e9)
			}
			return err
		}},
		{"iperf3", "tcp_stream", func(ctx context.Context) error {
			argv := []string{"iperf3", "-c", p.addr, "-p", ipPort, "-t", d, "-O", "1", "-A", strconv.Itoa(r.ccpu), "-J"}
			if r.cc != "" {
				argv = append(argv, "-C", r.cc)
			}
			bps, cc, err := iperf3(ctx, benchproc.Pin(p.clientNS, r.ccpu, argv...))
			if err == nil {
				ipCC = cc
				get("tcp_stream Gbit/s").peer = append(get("tcp_stream Gbit/s").peer, bps/1e9)
			}
			return err
		}},
	}
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

func printTable(out io.Writer, m map[string]*metric) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "  %-20s %12s %12s %8s %8s %17s   %s\n", "metric", "latlab", "peer", "ratio", "paired", "95% CI", "per-round ratios")
	for _, k := range metricNames {
		mm := m[k]
		if mm == nil {
			continue // workload not compared in this run
		}
		fmt.Fprintln(w, benchproc.Row(20, k, mm.latlab, mm.peer))
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

func latlabJSON(ctx context.Context, argv []string) (llResult, error) {
	var res llResult
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("%v: %w: %s", argv, err, errb.String())
	}
	return res, json.Unmarshal(out, &res)
}

var (
	spValid = regexp.MustCompile(`\[Valid Duration\] RunTime=([0-9.]+) sec; SentMessages=(\d+); ReceivedMessages=(\d+)`)
	spP50   = regexp.MustCompile(`percentile 50\.000 =\s+([0-9.]+)`)
)

// sockperf returns round trips per second and the median round trip in µs
// (sockperf 3.x prints one-way latency, half the round trip).
func sockperf(ctx context.Context, argv []string) (float64, float64, error) {
	out, err := runOut(ctx, argv)
	if err != nil {
		return 0, 0, err
	}
	v := spValid.FindSubmatch(out)
	p := spP50.FindSubmatch(out)
	if v == nil || p == nil {
		return 0, 0, fmt.Errorf("unexpected sockperf output:\n%s", out)
	}
	secs, _ := strconv.ParseFloat(string(v[1]), 64)
	recv, _ := strconv.ParseFloat(string(v[3]), 64)
	half, _ := strconv.ParseFloat(string(p[1]), 64)
	return recv / secs, 2 * half, nil
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
