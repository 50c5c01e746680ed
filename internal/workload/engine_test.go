//go:build linux

package workload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/testutil"
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
func startServer(t *testing.T, cfg ServerConfig) (*Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := NewServer(cfg)
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

func shortConfig(target string, w Workload) Config {
	return Config{Target: target, Workload: w, Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond,
		Interval: 100 * time.Millisecond, ServerCPU: CPUAuto}
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
	if cfg.Workload != TCPStream {
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
	allowed, _ := AllowedCPUs()
	if len(allowed) >= 2 && p.ClientCPU == p.ServerCPU {
		t.Errorf("default placement put client and server on the same CPU %d with %v allowed", p.ClientCPU, allowed)
	}
}

func TestWorkloadsLoopback(t *testing.T) {
	srv, _ := startServer(t, ServerConfig{})
	cases := []struct {
		name string
		cfg  func(c *Config)
	}{
		{"tcp_rr", func(c *Config) { c.Workload = TCPRR }},
		{"tcp_rr_large", func(c *Config) { c.Workload = TCPRR; c.ReqSize = 100; c.RespSize = 200000 }},
		{"tcp_crr", func(c *Config) { c.Workload = TCPCRR }},
		{"udp_rr", func(c *Config) { c.Workload = UDPRR }},
		{"tcp_stream", func(c *Config) { c.Workload = TCPStream }},
		{"tcp_stream_reverse", func(c *Config) { c.Workload = TCPStream; c.Reverse = true }},
		{"tcp_rr_2flows", func(c *Config) { c.Workload = TCPRR; c.Flows = 2 }},
		{"udp_rr_3flows", func(c *Config) { c.Workload = UDPRR; c.Flows = 3 }},
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
			if cfg.Workload == UDPRR && res.Lost > res.Transactions/100 {
				t.Errorf("lost %d of %d datagrams on loopback", res.Lost, res.Transactions)
			}
			if cfg.Workload == TCPStream {
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
	srv, _ := startServer(t, ServerConfig{Listen: "[::1]:0"})
	for _, w := range []Workload{TCPRR, UDPRR, TCPCRR} {
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
	srv, _ := startServer(t, ServerConfig{Listen: ":0"})
	target := net.JoinHostPort("127.0.0.1", strings.TrimPrefix(srv.Addr().String()[strings.LastIndex(srv.Addr().String(), ":"):], ":"))
	for _, w := range []Workload{TCPRR, UDPRR} {
		cfg := shortConfig(target, w)
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatalf("%s to dual-stack server over IPv4: %v", w, err)
		}
	}
}

func TestUDPLoss(t *testing.T) {
	srv, _ := startServer(t, ServerConfig{DropEvery: 10})
	cfg := shortConfig(srv.Addr().String(), UDPRR)
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
	srv, _ := startServer(t, ServerConfig{})
	for _, w := range []Workload{TCPRR, UDPRR} {
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
	srv, _ := startServer(t, ServerConfig{})
	cfg := shortConfig(srv.Addr().String(), TCPCRR)
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
	allowed, _ := AllowedCPUs()
	srv, _ := startServer(t, ServerConfig{})
	cfg := shortConfig(srv.Addr().String(), TCPRR)
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
	cfg.ServerCPU = CPUNone
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
	srv, _ := startServer(t, ServerConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, w := range []Workload{TCPRR, UDPRR, TCPCRR, TCPStream} {
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
	srv, _ := startServer(t, ServerConfig{})
	cfg := shortConfig(srv.Addr().String(), TCPRR)
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
	if _, err := Run(context.Background(), shortConfig(srv.Addr().String(), TCPRR)); err != nil {
		t.Errorf("after a cancelled run: %v", err)
	}
}

func TestNoServer(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := Run(context.Background(), shortConfig(addr, TCPRR))
	if err == nil || !strings.Contains(err.Error(), "connect to latlab server") {
		t.Errorf("no server: err %v", err)
	}
}

// Bad input never takes the server down: each bad client gets its
// connection closed with a logged reason and a good client still runs.
func TestServerBadInput(t *testing.T) {
	srv, logs := startServer(t, ServerConfig{HandshakeTimeout: 300 * time.Millisecond, Grace: 300 * time.Millisecond})
	addr := srv.Addr().String()
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// expectClosed waits for the server to close c and returns what it sent.
	expectClosed := func(t *testing.T, c net.Conn) []byte {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		// Closing with unread input makes the kernel send a reset: that
		// is a close too. A timeout is not.
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("server did not close the connection: %v", err)
		}
		return b
	}
	hello := func(mut func(b []byte)) []byte {
		h := validHello()
		b, _ := h.MarshalBinary()
		if mut != nil {
			mut(b)
		}
		return b
	}
	cases := []struct {
		name   string
		send   []byte
		status int // expected reply status, -1 for none
		log    string
	}{
		{"garbage", []byte("SSH-2.0-OpenSSH_9.2\r\n"), -1, "bad magic"},
		{"wrong version", hello(func(b []byte) { b[5] = 7 }), int(StatusBadVersion), "bad hello"},
		{"oversized", hello(func(b []byte) { b[12] = 0x7f }), int(StatusBadRequest), "response size"},
		{"unknown kind", hello(func(b []byte) { b[6] = 77 }), -1, "unknown message kind"},
		{"attach to nothing", func() []byte { a := Attach{Kind: kindAttach, Session: 1}; b, _ := a.MarshalBinary(); return b }(), -1, "unknown session"},
		{"crr to nothing", func() []byte { a := Attach{Kind: kindCRR, Session: 1}; b, _ := a.MarshalBinary(); return b }(), -1, "unknown session"},
		{"slow", []byte("LLA"), -1, "no header"},
		{"silent", nil, -1, "no header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := dial(t)
			if len(c.send) > 0 {
				conn.Write(c.send)
			}
			got := expectClosed(t, conn)
			if c.status >= 0 {
				rep, err := readHelloReply(bytes.NewReader(got))
				if err != nil {
					t.Fatalf("no reply before close: %v (%q)", err, got)
				}
				if rep.Status != byte(c.status) || rep.Message == "" {
					t.Errorf("reply %+v, want status %d with a message", rep, c.status)
				}
			}
			deadline := time.Now().Add(2 * time.Second)
			for !strings.Contains(logs.String(), c.log) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(logs.String(), c.log) {
				t.Errorf("log does not give the reason %q", c.log)
			}
		})
	}
	// Half-open: a session whose client vanishes after the hello is ended
	// by the server after warm-up+duration+grace.
	t.Run("half-open", func(t *testing.T) {
		conn := dial(t)
		h := validHello()
		h.Duration, h.Warmup = 100*time.Millisecond, 0
		b, _ := h.MarshalBinary()
		conn.Write(b)
		rep, err := readHelloReply(conn)
		if err != nil || rep.Status != StatusOK {
			t.Fatalf("hello: %+v %v", rep, err)
		}
		expectClosed(t, conn)
		if srv.lookup(rep.Session) != nil {
			t.Error("session still registered after its deadline")
		}
	})
	res, err := Run(context.Background(), shortConfig(addr, TCPRR))
	if err != nil {
		t.Fatalf("good client after bad ones: %v", err)
	}
	if res.Transactions == 0 {
		t.Fatal("good client ran no transactions")
	}
}

// The server bounds connections that have not sent their header.
func TestServerPendingLimit(t *testing.T) {
	srv, logs := startServer(t, ServerConfig{MaxPending: 2, HandshakeTimeout: 2 * time.Second})
	var conns []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(logs.String(), "too many connections") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "too many connections") {
		t.Error("server accepted more pending connections than MaxPending")
	}
}

func TestNetNS(t *testing.T) {
	_, path := testutil.NewNetNS(t)
	srv, _ := startServer(t, ServerConfig{NetNS: path, Listen: "127.0.0.1:0"})
	// The server is in the namespace: the caller's loopback does not reach it.
	if c, err := net.DialTimeout("tcp", srv.Addr().String(), 200*time.Millisecond); err == nil {
		c.Close()
		t.Error("server in a namespace answered on the caller's loopback")
	}
	for _, w := range Workloads {
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
	srv, _ := startServer(t, ServerConfig{})
	addr := srv.Addr().String()

	cfg := shortConfig(addr, TCPRR)
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Congestion, strings.TrimSpace(string(def)); got != want {
		t.Errorf("default run reports congestion %q, the namespace default is %q", got, want)
	}
	// reno is built into every kernel with TCP and always allowed.
	for _, w := range []Workload{TCPStream, TCPCRR} {
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
	cfg.Workload, cfg.Congestion = TCPRR, "nosuchcc"
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "this kernel offers") {
		t.Errorf("unknown algorithm: err %v, want one listing what the kernel offers", err)
	}
	for _, bad := range []func(c *Config){
		func(c *Config) { c.Workload = UDPRR },
		func(c *Config) { c.Workload, c.Reverse = TCPStream, true },
		func(c *Config) { c.Congestion = "cubic; rm" },
		func(c *Config) { c.Congestion = strings.Repeat("x", 16) },
	} {
		c := shortConfig(addr, TCPRR)
		c.Congestion = "reno"
		bad(&c)
		c.Defaults()
		if err := c.Validate(); err == nil {
			t.Errorf("config %+v validated", c)
		}
	}
}
