// Command httpcmp runs latlab's http workload side by side with wrk
// against the same servers — latlab's own HTTP endpoint and nginx — with
// the same connection count, thread count and pinning, in interleaved
// rounds, and prints each figure with the latlab/wrk ratio.
//
// Two comparisons per server:
//
//   - max: closed loop, req/s (latlab ≥ 1.00× wrk is the target).
//   - fixed rate: Debian has no wrk2, so wrk is paced with its Lua delay()
//     hook (each connection waits period = connections/rate after each
//     response). At a rate far below capacity no request waits for the one
//     before it, so the intended send time of wrk2 and the actual send time
//     wrk measures from coincide, and wrk's latency is what wrk2 would
//     report. latlab then runs open loop (--rate) at the rate wrk achieved
//     in the same round, and the table compares p50 and p99 (target: within
//     5%). latlab's late_sends must be ~0 for the comparison to hold.
//
// Driven by bench/compare-http.sh; see bench/README.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

type metric struct{ latlab, peer []float64 }

type runner struct {
	latlab        string
	dur           int
	conns, thr    int
	rate          float64
	ccpu, scpu    int
	procs         []*exec.Cmd
	servers       []server
	llPort, ngPrt int
	tmp           string
}

type server struct{ name, url string }

func main() {
	r := &runner{}
	flag.StringVar(&r.latlab, "latlab", "bench/out/latlab", "latlab binary")
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	flag.IntVar(&r.dur, "duration", 5, "seconds per run")
	flag.IntVar(&r.conns, "connections", 10, "connections")
	flag.IntVar(&r.thr, "threads", 1, "client threads")
	flag.Float64Var(&r.rate, "rate", 2000, "fixed-rate comparison: requests/s in total")
	flag.IntVar(&r.ccpu, "client-cpu", 1, "client CPU")
	flag.IntVar(&r.scpu, "server-cpu", 0, "server CPU")
	flag.Parse()
	fmt.Printf("latlab http vs wrk: %d interleaved rounds of %ds, %d connections, %d thread(s), client CPU %d, server CPU %d, fixed rate %.0f/s\n",
		*rounds, r.dur, r.conns, r.thr, r.ccpu, r.scpu, r.rate)
	out, _ := exec.Command("uname", "-r").Output()
	fmt.Printf("kernel %s\n\n", strings.TrimSpace(string(out)))
	m, err := r.compare(*rounds)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	printTable(os.Stdout, m, r.metricNames())
}

func (r *runner) metricNames() []string {
	var names []string
	for _, s := range r.servers {
		names = append(names, s.name+" max req/s", s.name+" rate p50 µs", s.name+" rate p99 µs")
	}
	return names
}

func (r *runner) start(argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %v: %w", argv, err)
	}
	r.procs = append(r.procs, cmd)
	return nil
}

func (r *runner) stopAll() {
	for _, c := range r.procs {
		c.Process.Kill()
		c.Wait()
	}
	r.procs = nil
}

func pin(cpu int, argv ...string) []string {
	return append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
}

const nginxConf = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:%[2]d;
    location / { default_type application/octet-stream; return 200 "%[3]s"; }
  }
}
`

// startServers starts latlab serve and nginx, both pinned to the server
// CPU, each answering a 64-byte body.
func (r *runner) startServers() error {
	var err error
	if r.tmp, err = os.MkdirTemp("", "latlab-httpcmp-"); err != nil {
		return err
	}
	if r.llPort == 0 {
		r.llPort, r.ngPrt = 17707, 18080
	}
	if err := r.start(pin(r.scpu, r.latlab, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", r.llPort), "--log-level", "warn")...); err != nil {
		return err
	}
	conf := filepath.Join(r.tmp, "nginx.conf")
	body := strings.Repeat("x", 64)
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, r.tmp, r.ngPrt, body), 0o644); err != nil {
		return err
	}
	if err := r.start(pin(r.scpu, "nginx", "-p", r.tmp, "-c", conf)...); err != nil {
		return err
	}
	r.servers = []server{
		{"latlab-serve", fmt.Sprintf("http://127.0.0.1:%d/", r.llPort)},
		{"nginx", fmt.Sprintf("http://127.0.0.1:%d/", r.ngPrt)},
	}
	time.Sleep(500 * time.Millisecond)
	return nil
}

func (r *runner) compare(rounds int) (map[string]*metric, error) {
	defer func() {
		r.stopAll()
		if r.tmp != "" {
			os.RemoveAll(r.tmp)
		}
	}()
	if err := r.startServers(); err != nil {
		return nil, err
	}
	m := map[string]*metric{}
	get := func(k string) *metric {
		if m[k] == nil {
			m[k] = &metric{}
		}
		return m[k]
	}
	type job struct {
		name string
		fn   func(context.Context) error
	}
	var jobs []job
	for _, s := range r.servers {
		jobs = append(jobs,
			job{"latlab max " + s.name, func(ctx context.Context) error {
				res, err := r.latlabRun(ctx, s.url, 0)
				if err == nil {
					get(s.name + " max req/s").latlab = append(get(s.name+" max req/s").latlab, res.RatePerSec)
				}
				return err
			}},
			job{"wrk max " + s.name, func(ctx context.Context) error {
				res, err := r.wrkRun(ctx, s.url, 0)
				if err == nil {
					get(s.name + " max req/s").peer = append(get(s.name+" max req/s").peer, res.rate)
				}
				return err
			}},
			// The fixed-rate pair runs wrk first, then latlab at the rate
			// wrk achieved.
			job{"wrk+latlab rate " + s.name, func(ctx context.Context) error {
				w, err := r.wrkRun(ctx, s.url, r.rate)
				if err != nil {
					return err
				}
				l, err := r.latlabRun(ctx, s.url, w.rate)
				if err != nil {
					return err
				}
				if l.OpenLoop.LateSends > l.Transactions/100 {
					fmt.Fprintf(os.Stderr, "warning: latlab fell behind schedule on %d of %d requests\n", l.OpenLoop.LateSends, l.Transactions)
				}
				get(s.name + " rate p50 µs").peer = append(get(s.name+" rate p50 µs").peer, w.p50)
				get(s.name + " rate p99 µs").peer = append(get(s.name+" rate p99 µs").peer, w.p99)
				get(s.name + " rate p50 µs").latlab = append(get(s.name+" rate p50 µs").latlab, float64(l.Latency.P50)/1e3)
				get(s.name + " rate p99 µs").latlab = append(get(s.name+" rate p99 µs").latlab, float64(l.Latency.P99)/1e3)
				return nil
			}},
		)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := 1; round <= rounds; round++ {
		order := slices.Clone(jobs)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var names []string
		for _, j := range order {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(2*r.dur+30)*time.Second)
			err := j.fn(ctx)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round, j.name, err)
			}
			names = append(names, j.name)
		}
		fmt.Fprintf(os.Stderr, "round %d/%d: %s\n", round, rounds, strings.Join(names, ", "))
	}
	return m, nil
}

type llResult struct {
	RatePerSec   float64 `json:"rate_per_sec"`
	Transactions int64   `json:"transactions"`
	Latency      struct {
		P50 int64 `json:"p50"`
		P99 int64 `json:"p99"`
	} `json:"latency_ns"`
	OpenLoop struct {
		LateSends int64 `json:"late_sends"`
	} `json:"open_loop"`
	Errors map[string]int64 `json:"errors"`
}

func (r *runner) latlabRun(ctx context.Context, url string, rate float64) (llResult, error) {
	var res llResult
	argv := pin(r.ccpu, r.latlab, "bench", "-w", "http", "--target", url, "--connections", strconv.Itoa(r.conns),
		"--threads", strconv.Itoa(r.thr), "--duration", strconv.Itoa(r.dur)+"s", "--warmup", "1s",
		"--cpu", strconv.Itoa(r.ccpu), "--json")
	if rate > 0 {
		argv = append(argv, "--rate", strconv.FormatFloat(rate, 'f', 1, 64))
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("%v: %w: %s", argv, err, errb.String())
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return res, err
	}
	for k, v := range res.Errors {
		if v != 0 {
			return res, fmt.Errorf("latlab against %s: %d %s errors", url, v, k)
		}
	}
	return res, nil
}

type wrkResult struct{ rate, p50, p99 float64 }

var (
	wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPct  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkErr  = regexp.MustCompile(`(Socket errors|Non-2xx)`)
)

// wrkRun runs wrk; with rate > 0 each connection pauses connections/rate
// seconds after each response (wrk's Lua delay(), in whole milliseconds).
func (r *runner) wrkRun(ctx context.Context, url string, rate float64) (wrkResult, error) {
	var res wrkResult
	argv := pin(r.ccpu, "wrk", "-t", strconv.Itoa(r.thr), "-c", strconv.Itoa(r.conns), "-d", strconv.Itoa(r.dur)+"s", "--latency")
	if rate > 0 {
		script := filepath.Join(r.tmp, "delay.lua")
		ms := float64(r.conns) / rate * 1000
		if err := os.WriteFile(script, fmt.Appendf(nil, "function delay() return %d end\n", int(ms+0.5)), 0o644); err != nil {
			return res, err
		}
		argv = append(argv, "-s", script)
	}
	argv = append(argv, url)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var outb, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &errb
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("%v: %w: %s", argv, err, errb.String())
	}
	return parseWrk(outb.Bytes())
}

func parseWrk(out []byte) (wrkResult, error) {
	var res wrkResult
	rm := wrkRate.FindSubmatch(out)
	pm := wrkPct.FindAllSubmatch(out, -1)
	if rm == nil || len(pm) != 2 {
		return res, fmt.Errorf("unexpected wrk output:\n%s", out)
	}
	if wrkErr.Match(out) {
		return res, fmt.Errorf("wrk saw errors:\n%s", out)
	}
	res.rate, _ = strconv.ParseFloat(string(rm[1]), 64)
	for _, p := range pm {
		v, _ := strconv.ParseFloat(string(p[2]), 64)
		switch string(p[3]) {
		case "ms":
			v *= 1e3
		case "s":
			v *= 1e6
		}
		if string(p[1]) == "50" {
			res.p50 = v
		} else {
			res.p99 = v
		}
	}
	return res, nil
}

func printTable(w io.Writer, m map[string]*metric, names []string) {
	fmt.Fprintf(w, "  %-26s %12s %12s %8s   %s\n", "metric", "latlab", "wrk", "ratio", "per-round ratios")
	for _, k := range names {
		mm := m[k]
		if mm == nil {
			continue
		}
		var ratios []string
		for i := range mm.latlab {
			ratios = append(ratios, fmt.Sprintf("%.3f", mm.latlab[i]/mm.peer[i]))
		}
		fmt.Fprintf(w, "  %-26s %12.2f %12.2f %8.3f   %s\n", k, median(mm.latlab), median(mm.peer),
			median(mm.latlab)/median(mm.peer), strings.Join(ratios, " "))
	}
	fmt.Fprintln(w)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
