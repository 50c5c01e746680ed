//go:build linux

package workload

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/server"
	"github.com/latlab/latlab/internal/sockio"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/wire"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs a server on a loopback port until the test ends.
func startServer(t *testing.T, cfg server.Config) (*server.Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("server did not stop within 15s")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return srv, logs
}

func shortConfig(target string, w wire.Workload) Config {
	return Config{Target: target, Workload: w, Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond,
		Interval: 100 * time.Millisecond, ServerCPU: wire.CPUAuto}
}

func checkResult(t *testing.T, cfg Config, res *Result) {
	t.Helper()
	if res.Workload != cfg.Workload {
		t.Errorf("workload %q, want %q", res.Workload, cfg.Workload)
	}
	if res.Transactions <= 0 {
		t.Fatalf("no transactions: %+v", res)
	}
	if got, want := res.RatePerSec, float64(res.Transactions)/cfg.Duration.Seconds(); math.Abs(got-want) > 1e-6*want {
		t.Errorf("rate %v, want transactions/duration = %v", got, want)
	}
	var sum, lost int64
	for _, iv := range res.Intervals {
		sum += iv.Transactions
		lost += iv.Lost
	}
	if sum != res.Transactions {
		t.Errorf("intervals hold %d transactions, total says %d", sum, res.Transactions)
	}
	if lost != res.Lost {
		t.Errorf("intervals hold %d losses, total says %d", lost, res.Lost)
	}
	if want := int((cfg.Duration + cfg.Interval - 1) / cfg.Interval); len(res.Intervals) != want {
		t.Errorf("%d intervals, want %d", len(res.Intervals), want)
	}
	if cfg.Workload != wire.TCPStream {
		l := res.Latency
		if l == nil {
			t.Fatal("no latency summary")
		}
		if !(0 < l.Min && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
			t.Errorf("latency summary out of order: %+v", l)
		}
		if res.Hist.Count() != res.Transactions {
			t.Errorf("histogram holds %d values, %d transactions", res.Hist.Count(), res.Transactions)
		}
		if res.CPUPerTxn.Client <= 0 || res.CPUPerTxn.Server <= 0 {
			t.Errorf("cpu per txn not measured: %+v", res.CPUPerTxn)
		}
	} else if res.ThroughputBps <= 0 {
		t.Errorf("no throughput")
	}
	if res.CPUUtil.Server <= 0 || res.CPUUtil.Client <= 0 {
		t.Errorf("cpu utilization not measured: %+v", res.CPUUtil)
	}
	p := res.Placement
	if !p.ClientPinned || !p.ServerPinned || p.ClientCPU < 0 || p.ServerCPU < 0 {
		t.Errorf("default placement should pin both sides: %+v", p)
	}
	allowed, _ := sockio.AllowedCPUs()
	if len(allowed) >= 2 && p.ClientCPU == p.ServerCPU {
		t.Errorf("default placement put client and server on the same CPU %d with %v allowed", p.ClientCPU, allowed)
	}
}

func TestWorkloadsLoopback(t *testing.T) {
	srv, _ := startServer(t, server.Config{})
	cases := []struct {
		name string
		cfg  func(c *Config)
	}{
		{"tcp_rr", func(c *Config) { c.Workload = wire.TCPRR }},
		{"tcp_rr_large", func(c *Config) { c.Workload = wire.TCPRR; c.ReqSize = 100; c.RespSize = 200000 }},
		{"tcp_crr", func(c *Config) { c.Workload = wire.TCPCRR }},
		{"udp_rr", func(c *Config) { c.Workload = wire.UDPRR }},
		{"tcp_stream", func(c *Config) { c.Workload = wire.TCPStream }},
		{"tcp_stream_reverse", func(c *Config) { c.Workload = wire.TCPStream; c.Reverse = true }},
		{"tcp_rr_2flows", func(c *Config) { c.Workload = wire.TCPRR; c.Flows = 2 }},
		{"udp_rr_3flows", func(c *Config) { c.Workload = wire.UDPRR; c.Flows = 3 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := shortConfig(srv.Addr().String(), "")
			c.cfg(&cfg)
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Defaults()
			checkResult(t, cfg, res)
			if cfg.Workload == wire.UDPRR && res.Lost > res.Transactions/100 {
				t.Errorf("lost %d of %d datagrams on loopback", res.Lost, res.Transactions)
			}
			if cfg.Workload == wire.TCPStream {
				if len(res.FlowBps) != cfg.Flows {
					t.Errorf("%d per-flow throughputs for %d flows", len(res.FlowBps), cfg.Flows)
				}
				if want := "client_to_server"; cfg.Reverse {
					if res.Direction != "server_to_client" {
						t.Errorf("direction %q", res.Direction)
					}
				} else if res.Direction != want {
					t.Errorf("direction %q, want %q", res.Direction, want)
				}
			}
			if len(res.Placement.ClientCPUs) != cfg.Flows {
				t.Errorf("placement lists %d client CPUs for %d flows", len(res.Placement.ClientCPUs), cfg.Flows)
			}
		})
	}
}

func TestIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		testutil.SkipIfUnsupported(t, "no IPv6 loopback: %v", err)
	}
	ln.Close()
	srv, _ := startServer(t, server.Config{Listen: "[::1]:0"})
	for _, w := range []wire.Workload{wire.TCPRR, wire.UDPRR, wire.TCPCRR} {
		cfg := shortConfig(srv.Addr().String(), w)
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s over IPv6: %v", w, err)
		}
		cfg.Defaults()
		checkResult(t, cfg, res)
	}
}

// A dual-stack server (":0") answers IPv4 clients, UDP included (the
// per-flow sockets are AF_INET6 connected to v4-mapped peers).
func TestDualStack(t *testing.T) {
	srv, _ := startServer(t, server.Config{Listen: ":0"})
	target := net.JoinHostPort("127.0.0.1", strings.TrimPrefix(srv.Addr().String()[strings.LastIndex(srv.Addr().String(), ":"):], ":"))
	for _, w := range []wire.Workload{wire.TCPRR, wire.UDPRR} {
		cfg := shortConfig(target, w)
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatalf("%s to dual-stack server over IPv4: %v", w, err)
		}
	}
}

func TestUDPLoss(t *testing.T) {
	srv, _ := startServer(t, server.Config{DropEvery: 10})
	cfg := shortConfig(srv.Addr().String(), wire.UDPRR)
	cfg.UDPTimeout = 5 * time.Millisecond
	cfg.Duration = 600 * time.Millisecond
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sent := res.Transactions + res.Lost
	if res.Lost == 0 || sent < 30 {
		t.Fatalf("lost %d of %d: the lossy server should have dropped every 10th", res.Lost, sent)
	}
	// Every 10th datagram is dropped: 10% loss, counted per timeout.
	if res.LossRatio < 0.07 || res.LossRatio > 0.13 {
		t.Errorf("loss ratio %.3f, want about 0.10 (lost %d, answered %d)", res.LossRatio, res.Lost, res.Transactions)
	}
	// The run went on after each loss: losses are spread over the run, not
	// a stall at the first one.
	withLoss := 0
	for _, iv := range res.Intervals {
		if iv.Lost > 0 {
			withLoss++
		}
	}
	if withLoss < len(res.Intervals)/2 {
		t.Errorf("losses in only %d of %d intervals", withLoss, len(res.Intervals))
	}
}

func TestOpenLoop(t *testing.T) {
	srv, _ := startServer(t, server.Config{})
	for _, w := range []wire.Workload{wire.TCPRR, wire.UDPRR} {
		cfg := shortConfig(srv.Addr().String(), w)
		cfg.Rate = 2000
		cfg.Flows = 2
		cfg.Duration = 500 * time.Millisecond
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := cfg.Rate * cfg.Duration.Seconds()
		if got := float64(res.Transactions + res.Lost); math.Abs(got-want) > 0.05*want {
			t.Errorf("%s: %v transactions at %v/s for %v, want about %v", w, got, cfg.Rate, cfg.Duration, want)
		}
		if res.OpenLoop == nil || res.OpenLoop.TargetRate != cfg.Rate {
			t.Errorf("%s: open-loop report missing: %+v", w, res.OpenLoop)
		}
	}
}

// In open loop, latency counts from the intended send time: when the path
// cannot keep up with the schedule, the reported latency grows with the
// queue and the late sends are counted.
func TestOpenLoopCountsQueueing(t *testing.T) {
	srv, _ := startServer(t, server.Config{})
	cfg := shortConfig(srv.Addr().String(), wire.TCPCRR)
	closed, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Ask for three times what the closed loop could do.
	cfg.Rate = 3 * closed.RatePerSec
	open, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if open.OpenLoop.LateSends < open.Transactions/2 {
		t.Errorf("only %d of %d sends late at 3x capacity", open.OpenLoop.LateSends, open.Transactions)
	}
	if open.Latency.P99 < 10*closed.Latency.P99 {
		t.Errorf("open-loop p99 %v not dominated by queueing (closed-loop p99 %v)",
			time.Duration(open.Latency.P99), time.Duration(closed.Latency.P99))
	}
}

func TestPlacement(t *testing.T) {
	cfg := Config{Flows: 3}
	cpus, err := planClientCPUs(&cfg, []int{4})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cpus {
		if c != 4 {
			t.Errorf("with only CPU 4 allowed, planned %v", cpus)
		}
	}
	cpus, _ = planClientCPUs(&cfg, []int{0, 1})
	if cpus[0] != 1 || cpus[1] != 0 || cpus[2] != 1 {
		t.Errorf("auto placement on [0 1]: %v, want [1 0 1]", cpus)
	}
	cfg.ClientCPUs = []int{7}
	if _, err := planClientCPUs(&cfg, []int{0, 1}); err == nil || !strings.Contains(err.Error(), "allowed") {
		t.Errorf("CPU outside the allowed set: err %v", err)
	}
	cfg.ClientCPUs, cfg.NoPin = nil, true
	cpus, _ = planClientCPUs(&cfg, []int{0, 1})
	if cpus[0] != -1 {
		t.Errorf("NoPin planned %v", cpus)
	}
}

func TestExplicitPlacement(t *testing.T) {
	allowed, _ := sockio.AllowedCPUs()
	srv, _ := startServer(t, server.Config{})
	cfg := shortConfig(srv.Addr().String(), wire.TCPRR)
	last := allowed[len(allowed)-1]
	cfg.ClientCPUs = []int{last}
	cfg.ServerCPU = last
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Placement.ClientCPU != last || res.Placement.ServerCPU != last {
		t.Errorf("asked for both on CPU %d, got %+v", last, res.Placement)
	}
	cfg.ServerCPU = 4095
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "allowed set") {
		t.Errorf("server CPU outside its allowed set: err %v", err)
	}
	cfg.ServerCPU = wire.CPUNone
	cfg.NoPin, cfg.ClientCPUs = true, nil
	res, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Placement.ClientPinned || res.Placement.ServerPinned || res.Placement.ServerCPU != -1 {
		t.Errorf("unpinned run reports %+v", res.Placement)
	}
}

func TestConcurrentClients(t *testing.T) {
	srv, _ := startServer(t, server.Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, w := range []wire.Workload{wire.TCPRR, wire.UDPRR, wire.TCPCRR, wire.TCPStream} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := shortConfig(srv.Addr().String(), w)
			if _, err := Run(context.Background(), cfg); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCancel(t *testing.T) {
	srv, _ := startServer(t, server.Config{})
	cfg := shortConfig(srv.Addr().String(), wire.TCPRR)
	cfg.Duration = 30 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, cfg)
	if err == nil {
		t.Fatal("cancelled run reported success")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("cancel took %v", el)
	}
	// The server is still fine.
	if _, err := Run(context.Background(), shortConfig(srv.Addr().String(), wire.TCPRR)); err != nil {
		t.Errorf("after a cancelled run: %v", err)
	}
}

func TestNoServer(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := Run(context.Background(), shortConfig(addr, wire.TCPRR))
	if err == nil || !strings.Contains(err.Error(), "connect to latlab server") {
		t.Errorf("no server: err %v", err)
	}
}

func TestNetNS(t *testing.T) {
	_, path := testutil.NewNetNS(t)
	srv, _ := startServer(t, server.Config{NetNS: path, Listen: "127.0.0.1:0"})
	// The server is in the namespace: the caller's loopback does not reach it.
	if c, err := net.DialTimeout("tcp", srv.Addr().String(), 200*time.Millisecond); err == nil {
		c.Close()
		t.Error("server in a namespace answered on the caller's loopback")
	}
	for _, w := range wire.Workloads {
		cfg := shortConfig(srv.Addr().String(), w)
		cfg.NetNS = path
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s inside netns: %v", w, err)
		}
		if res.Transactions == 0 {
			t.Errorf("%s inside netns: no transactions", w)
		}
	}
}

// The result names the congestion control the client's sockets ran: the
// namespace default, or the one --congestion asked for.
func TestCongestion(t *testing.T) {
	def, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if err != nil {
		t.Skipf("no congestion control sysctl: %v", err)
	}
	srv, _ := startServer(t, server.Config{})
	addr := srv.Addr().String()

	cfg := shortConfig(addr, wire.TCPRR)
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Congestion, strings.TrimSpace(string(def)); got != want {
		t.Errorf("default run reports congestion %q, the namespace default is %q", got, want)
	}
	// reno is built into every kernel with TCP and always allowed.
	for _, w := range []wire.Workload{wire.TCPStream, wire.TCPCRR} {
		cfg := shortConfig(addr, w)
		cfg.Congestion = "reno"
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s with reno: %v", w, err)
		}
		if res.Congestion != "reno" {
			t.Errorf("%s: --congestion reno ran %q", w, res.Congestion)
		}
		checkResult(t, cfg, res)
	}
	cfg.Workload, cfg.Congestion = wire.TCPRR, "nosuchcc"
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "this kernel offers") {
		t.Errorf("unknown algorithm: err %v, want one listing what the kernel offers", err)
	}
	for _, bad := range []func(c *Config){
		func(c *Config) { c.Workload = wire.UDPRR },
		func(c *Config) { c.Workload, c.Reverse = wire.TCPStream, true },
		func(c *Config) { c.Congestion = "cubic; rm" },
		func(c *Config) { c.Congestion = strings.Repeat("x", 16) },
	} {
		c := shortConfig(addr, wire.TCPRR)
		c.Congestion = "reno"
		bad(&c)
		c.Defaults()
		if err := c.Validate(); err == nil {
			t.Errorf("config %+v validated", c)
		}
	}
}
