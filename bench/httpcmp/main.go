// Command httpcmp runs latlab's http workload side by side with wrk
// against the same servers — latlab's own HTTP endpoint and nginx — with
// the same connection count, thread count and pinning, in interleaved
// rounds, and prints each figure with the latlab/wrk ratio.
//
// Two comparisons per server:
//
//   - max: closed loop, req/s (latlab ≥ 1.00× wrk is the target).
//   - fixed rate: Debian has no wrk2, so wrk is paced wrk2-style by a Lua
//     delay() hook (paceLua) that keeps a fixed schedule — one request
//     every threads/rate seconds, taken by whichever connection is free —
//     which is exactly latlab --rate's evenly staggered schedule. At a rate
//     far below capacity no request waits for the one before it, so wrk2's
//     intended send time and the actual send time wrk measures from
//     coincide, and wrk's latency is what wrk2 would report. The table
//     compares p50 and p99 (target: within 5%). latlab's late_sends must
//     be ~0 and wrk must reach the rate for the comparison to hold; both
//     are checked and warned about.
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

	"github.com/latlab/latlab/bench/internal/benchproc"
)

type metric struct{ latlab, peer []float64 }

type runner struct {
	latlab        string
	dur           int
	conns, thr    int
	rate          float64
	ccpu, scpu    int
	procs         benchproc.Procs
	servers       []server
	llPort, ngPrt int
	tmp           string
	only          string // "max", "rate" or "" for both
}

type server struct{ name, url string }

func main() {
	r := &runner{}
	flag.StringVar(&r.latlab, "latlab", "bench/out/latlab", "latlab binary")
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	flag.IntVar(&r.dur, "duration", 5, "seconds per run")
	flag.IntVar(&r.conns, "connections", 10, "connections")
	flag.IntVar(&r.thr, "threads", 1, "client threads")
	flag.Float64Var(&r.rate, "rate", 1000, "fixed-rate comparison: requests/s in total (≤ 1000 per thread: wrk's delay() has millisecond ticks)")
	flag.IntVar(&r.ccpu, "client-cpu", 1, "client CPU")
	flag.IntVar(&r.scpu, "server-cpu", 0, "server CPU")
	flag.StringVar(&r.only, "only", "", "run only the max or only the rate comparison")
	flag.Parse()
	if r.only != "" && r.only != "max" && r.only != "rate" {
		fmt.Fprintf(os.Stderr, "-only %q: want max or rate\n", r.only)
		os.Exit(2)
	}
	if r.rate > 1000*float64(r.thr) {
		fmt.Fprintf(os.Stderr, "-rate %.0f: wrk can pace at most 1000 req/s per thread (delay() counts whole milliseconds)\n", r.rate)
		os.Exit(2)
	}
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
		if r.only != "rate" {
			names = append(names, s.name+" max req/s")
		}
		if r.only != "max" {
			names = append(names, s.name+" rate p50 µs", s.name+" rate p99 µs")
		}
	}
	return names
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
	if err := r.procs.Start(benchproc.Pin("", r.scpu, r.latlab, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", r.llPort), "--log-level", "warn")...); err != nil {
		return err
	}
	conf := filepath.Join(r.tmp, "nginx.conf")
	body := strings.Repeat("x", 64)
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, r.tmp, r.ngPrt, body), 0o644); err != nil {
		return err
	}
	if err := r.procs.Start(benchproc.Pin("", r.scpu, "nginx", "-p", r.tmp, "-c", conf)...); err != nil {
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
		r.procs.StopAll()
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
			// Fixed rate: both on the same schedule (one request every
			// threads/rate seconds per thread, see paceLua).
			job{"wrk rate " + s.name, func(ctx context.Context) error {
				w, err := r.wrkRun(ctx, s.url, r.rate)
				if err != nil {
					return err
				}
				if w.rate < 0.98*r.rate {
					fmt.Fprintf(os.Stderr, "warning: wrk reached %.0f of %.0f req/s\n", w.rate, r.rate)
				}
				get(s.name + " rate p50 µs").peer = append(get(s.name+" rate p50 µs").peer, w.p50)
				get(s.name + " rate p99 µs").peer = append(get(s.name+" rate p99 µs").peer, w.p99)
				return nil
			}},
			job{"latlab rate " + s.name, func(ctx context.Context) error {
				l, err := r.latlabRun(ctx, s.url, r.rate)
				if err != nil {
					return err
				}
				if l.OpenLoop.LateSends > l.Transactions/100 {
					fmt.Fprintf(os.Stderr, "warning: latlab fell behind schedule on %d of %d requests\n", l.OpenLoop.LateSends, l.Transactions)
				}
				get(s.name + " rate p50 µs").latlab = append(get(s.name+" rate p50 µs").latlab, float64(l.Latency.P50)/1e3)
				get(s.name + " rate p99 µs").latlab = append(get(s.name+" rate p99 µs").latlab, float64(l.Latency.P99)/1e3)
				return nil
			}},
		)
	}
	if r.only != "" {
		jobs = slices.DeleteFunc(jobs, func(j job) bool { return !strings.Contains(j.name, " "+r.only+" ") })
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
	argv := benchproc.Pin("", r.ccpu, r.latlab, "bench", "-w", "http", "--target", url, "--connections", strconv.Itoa(r.conns),
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

// paceLua paces wrk like wrk2 and like latlab --rate: one request every
// gap µs on a fixed schedule, taken by whichever connection asks next.
// wrk's delay() hook only returns whole milliseconds, so the gap must be
// ≥ 1000 µs for every request to get its own timer tick (otherwise
// requests due in the same millisecond go out together and queue at the
// server, which latlab's evenly staggered schedule never does). The clock
// is clock_gettime(CLOCK_MONOTONIC) through LuaJIT's ffi.
const paceLua = `local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } llb_timespec;
int clock_gettime(int clk, llb_timespec *ts);
]]
local ts = ffi.new("llb_timespec")
local gap_us = %d
local next_us = nil
function delay()
  ffi.C.clock_gettime(1, ts)
  local now = tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
  if next_us == nil then next_us = now end
  local d = next_us - now
  next_us = next_us + gap_us
  if d <= 0 then return 0 end
  return math.floor(d / 1000 + 0.5)
end
`

// wrkRun runs wrk; with rate > 0 wrk is paced by paceLua (rate per thread
// is rate/threads).
func (r *runner) wrkRun(ctx context.Context, url string, rate float64) (wrkResult, error) {
	var res wrkResult
	argv := benchproc.Pin("", r.ccpu, "wrk", "-t", strconv.Itoa(r.thr), "-c", strconv.Itoa(r.conns), "-d", strconv.Itoa(r.dur)+"s", "--latency")
	if rate > 0 {
		script := filepath.Join(r.tmp, "pace.lua")
		gap := int(float64(r.thr) / rate * 1e6)
		if err := os.WriteFile(script, fmt.Appendf(nil, paceLua, gap), 0o644); err != nil {
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

// printTable prints, per figure, the medians of both tools over the rounds
// and their ratio, then the median of the per-round ratios (each round's
// two runs are minutes apart at most, so pairing them cancels the slow
// drift of this shared machine) with its 95% order-statistic CI, and the
// per-round ratios themselves.
func printTable(w io.Writer, m map[string]*metric, names []string) {
	fmt.Fprintf(w, "  %-26s %12s %12s %8s %8s %17s   %s\n", "metric", "latlab", "wrk", "ratio", "paired", "95% CI", "per-round ratios")
	for _, k := range names {
		mm := m[k]
		if mm == nil {
			continue
		}
		fmt.Fprintln(w, benchproc.Row(26, k, mm.latlab, mm.peer))
	}
	fmt.Fprintln(w)
}
