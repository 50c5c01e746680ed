package cli

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/probe"
	"github.com/latlab/latlab/internal/report"
	"github.com/latlab/latlab/internal/sockio"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

func newBenchCmd(e *env) *cobra.Command {
	var (
		cfg                workload.Config
		wl, cpu, serverCPU string
		size               int
		quiet              bool
		attribute          bool
		calibrate          bool
		netns              string
		connections        int
		out                *outputFlags
	)
	cmd := &cobra.Command{
		Use:   "bench --target HOST[:PORT] [--workload W]",
		Short: "Run one workload against a latlab server (or any HTTP server)",
		Long: fmt.Sprintf(`Bench runs one workload against a running 'latlab serve' and reports every
transaction's latency from an HDR histogram (never an average of averages),
the rate, CPU cost per transaction on both sides, and where both sides ran.

Workloads:
  tcp_rr      request/response on one connection per flow (netperf TCP_RR)
  tcp_crr     connect + request + response + close per transaction
  udp_rr      datagram ping-pong; a lost datagram is counted after
              --udp-timeout and the run goes on
  tcp_stream  bulk transfer; --reverse makes the server send
  http        HTTP/1.1 requests against any HTTP server (--target is a URL,
              http://HOST[:PORT]/PATH; a bare HOST:PORT means /, which
              'latlab serve' answers too): --connections spread over
              --threads OS threads, keep-alive unless --no-keepalive;
              failed requests are counted by class (connect, read, write,
              timeout, parse) and responses by status code

Closed loop (default): each flow sends its next request when the previous
response arrives. Open loop (--rate R): R transactions/s in total at fixed
intended times; latency is measured from the intended send time, so a stall
shows up as the queueing it causes (coordinated omission corrected).

Placement: by default each flow's thread is pinned to a CPU taken from the
end of the allowed set (taskset/cpuset are respected) and the server pins
its thread from the start of its own set, so on a 2-CPU machine they run on
different cores. Unpinned runs on a small machine swing by tens of percent.

Output: -o table (default), json (docs/bench-json.md) or csv; --json is -o
json; --percentiles 50,90,99,99.9 chooses the latency percentiles printed.

The default port is %d. Exit codes: 0 ok, 1 run failed, 2 bad usage.`, wire.DefaultPort),
		Example: `  latlab bench --target 127.0.0.1 --workload tcp_rr --duration 5s --size 64 --json
  latlab bench --target 10.0.0.2:7707 --workload udp_rr --rate 20000
  latlab bench --target [::1] --workload tcp_stream --flows 2 --reverse
  latlab bench --target 127.0.0.1 --cpu 0 --server-cpu 0     # same core
  latlab bench -w http --target http://10.0.0.2/ --connections 32 --threads 2 --rate 10000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.Target == "" {
				return usagef("--target is required: the address of a running 'latlab serve'")
			}
			w, err := wire.ParseWorkload(wl)
			if err != nil {
				return usageError{err}
			}
			cfg.Workload = w
			f := cmd.Flags()
			if w == wire.HTTP {
				if f.Changed("connections") {
					cfg.Flows = connections
				}
				for _, name := range []string{"size", "req-size", "reverse", "udp-timeout", "server-cpu", "congestion"} {
					if f.Changed(name) {
						return usagef("--%s does not apply to the http workload", name)
					}
				}
			} else {
				for _, name := range []string{"connections", "threads", "method", "header", "body", "no-keepalive"} {
					if f.Changed(name) {
						return usagef("--%s applies to the http workload only", name)
					}
				}
			}
			if f.Changed("size") && !f.Changed("req-size") {
				cfg.ReqSize = size
			}
			if f.Changed("size") && !f.Changed("resp-size") {
				cfg.RespSize = size
			}
			output, err := out.result()
			if err != nil {
				return err
			}
			if cfg.ClientCPUs, cfg.NoPin, err = experiment.ParseClientCPUs(strings.ToLower(cpu)); err != nil {
				return usagef("--cpu: %v", err)
			}
			if cfg.ServerCPU, err = experiment.ParseServerCPU(strings.ToLower(serverCPU)); err != nil {
				return usagef("--server-cpu: %v", err)
			}
			if cfg.NetNS, err = resolveNetNS(cmd.Context(), netns); err != nil {
				return err
			}
			if cfg.Flows < 1 {
				return usagef("--flows %d: want at least 1", cfg.Flows)
			}
			if f.Changed("size") && size < 1 {
				return usagef("--size %d: want at least 1 byte", size)
			}
			cfg.Defaults()
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			if calibrate {
				if f.Changed("cpu") || f.Changed("server-cpu") {
					return usagef("--calibrate picks --cpu and --server-cpu itself: give one or the other")
				}
				if err := calibrateBench(cmd.Context(), e, &cfg, quiet); err != nil {
					return err
				}
			}
			if e.stderrIsTTY && !quiet {
				cfg.Progress = func(done, total time.Duration) {
					fmt.Fprintf(e.stderr, "\r%s %s/%s ", cfg.Workload, done.Round(100*time.Millisecond), total)
				}
			}
			var sched *probe.Scheduled
			if attribute {
				eb, err := probe.LoadEBPF()
				if err != nil {
					fmt.Fprintf(e.stderr, "latlab: eBPF unavailable, attributing from /proc counters: %v\n", err)
				} else {
					defer eb.Close()
				}
				s := &probe.Sampler{Registry: probe.DefaultRegistry(probe.Options{NetNS: cfg.NetNS}), EBPF: eb}
				cfg.Window = func(start, end time.Time) { sched = probe.Schedule(s, start, end) }
			}
			res, err := workload.Run(cmd.Context(), cfg)
			if cfg.Progress != nil {
				fmt.Fprint(e.stderr, "\r\033[K")
			}
			win, _ := sched.Wait()
			if err != nil {
				return err
			}
			var attr *probe.Attribution
			if win != nil {
				a := win.Attribute(res.Transactions)
				attr = &a
			}
			return report.WriteBench(e.stdout, output, res, attr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Target, "target", "", "server address HOST[:PORT] (required); http: a URL")
	f.StringVarP(&wl, "workload", "w", "tcp_rr", "tcp_rr, tcp_crr, udp_rr, tcp_stream or http")
	f.IntVarP(&size, "size", "s", 0, "request and response size in bytes; tcp_stream: buffer size (default 64, tcp_stream 131072)")
	f.IntVar(&cfg.ReqSize, "req-size", 0, "request size in bytes (overrides --size)")
	f.IntVar(&cfg.RespSize, "resp-size", 0, "response size in bytes (overrides --size)")
	f.DurationVarP(&cfg.Duration, "duration", "d", 5*time.Second, "measured duration")
	f.DurationVar(&cfg.Warmup, "warmup", time.Second, "warm-up before measuring (discarded)")
	f.IntVarP(&cfg.Flows, "flows", "P", 1, "parallel flows (connections), each on its own thread")
	f.Float64Var(&cfg.Rate, "rate", 0, "open loop: total transactions per second (0: closed loop)")
	f.StringVar(&cpu, "cpu", "auto", "client CPUs: auto, none, or a list like 1 or 0,1 or 2-3")
	f.StringVar(&serverCPU, "server-cpu", "auto", "server CPU: auto, none or a CPU number")
	f.BoolVar(&cfg.Reverse, "reverse", false, "tcp_stream: the server sends, the client receives")
	f.StringVar(&cfg.Congestion, "congestion", "", "TCP congestion control of the client's data sockets, e.g. cubic or bbr (default: the namespace's net.ipv4.tcp_congestion_control); the result reports what ran")
	f.DurationVar(&cfg.UDPTimeout, "udp-timeout", 50*time.Millisecond, "udp_rr: wait this long for a response before counting it lost")
	f.DurationVar(&cfg.IOTimeout, "timeout", 10*time.Second, "fail the run if the server stops answering for this long; http: request timeout (counted as an error, the connection is reopened)")
	f.DurationVar(&cfg.Interval, "interval", time.Second, "length of one entry of the interval series")
	f.IntVar(&connections, "connections", 1, "http: connections (like --flows), spread over --threads")
	f.IntVar(&cfg.Threads, "threads", 1, "http: OS threads driving the connections, each pinned, with one epoll loop")
	f.StringVar(&cfg.Method, "method", "GET", "http: request method")
	f.StringArrayVarP(&cfg.Headers, "header", "H", nil, "http: extra request header \"Name: value\" (repeatable)")
	f.StringVar(&cfg.Body, "body", "", "http: request body (sent with Content-Length)")
	f.BoolVar(&cfg.NoKeepAlive, "no-keepalive", false, "http: one connection per request (Connection: close); latency includes the connect")
	f.StringVar(&netns, "netns", "", "run the client inside this network namespace: a name under /var/run/netns, a path (/proc/PID/ns/net), or a running Docker container (name or ID; $DOCKER_HOST)")
	out = addOutput(cmd, report.FormatTable, report.FormatJSON, report.FormatCSV).withPercentiles("50,90,99,99.9")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress line on a terminal")
	f.BoolVar(&calibrate, "calibrate", false, "first pick the placement as 'latlab lab' does: a few short probes same core vs cross core against the target (the server must be a latlab server that pins on request), the steadier wins; printed on stderr")
	f.BoolVar(&attribute, "attribute", false, "attach kernel evidence of the measured window: softirqs and softirq time per transaction, drops, retransmits, run-queue delay")
	cmd.RegisterFlagCompletionFunc("workload", fixedCompletion(workloadNames()...))
	cmd.RegisterFlagCompletionFunc("cpu", cpuCompletion)
	cmd.RegisterFlagCompletionFunc("server-cpu", cpuCompletion)
	cmd.RegisterFlagCompletionFunc("netns", netnsCompletion)
	cmd.RegisterFlagCompletionFunc("congestion", congestionCompletion)
	cmd.RegisterFlagCompletionFunc("method", fixedCompletion("GET", "HEAD", "POST", "PUT", "DELETE"))
	return cmd
}

// calibrateBench runs lab's placement calibration against the bench's
// target and pins cfg to the placement chosen for its workload.
func calibrateBench(ctx context.Context, e *env, cfg *workload.Config, quiet bool) error {
	allowed, err := sockio.AllowedCPUs()
	if err != nil {
		return fmt.Errorf("calibrate placement: %w", err)
	}
	probe := func(ctx context.Context, w wire.Workload, p experiment.Placement, d, warm time.Duration) (*workload.Result, error) {
		c := *cfg
		c.Duration, c.Warmup, c.Interval = d, warm, d
		c.ClientCPUs, c.ServerCPU, c.NoPin = p.ClientCPUs, p.ServerCPU, false
		c.Progress, c.Window, c.Rate = nil, nil, 0
		return workload.Run(ctx, c)
	}
	ps, cals, err := experiment.Calibrate(ctx, []wire.Workload{cfg.Workload}, allowed, rand.Uint64(), probe)
	if err != nil {
		return err
	}
	p := experiment.PlacementsFor(ps, cfg.Workload)[0]
	cfg.ClientCPUs, cfg.ServerCPU, cfg.NoPin = p.ClientCPUs, p.ServerCPU, false
	if !quiet {
		fmt.Fprintf(e.stderr, "calibrated placement: %s\n", cals[0])
	}
	return nil
}
