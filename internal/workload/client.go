package workload

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/latlab/latlab/internal/hist"
	"github.com/latlab/latlab/internal/wire"
)

// Config describes one client run (`latlab bench`).
type Config struct {
	// Target is HOST[:PORT] of a latlab server; the port defaults to
	// DefaultPort. For the http workload it is a URL
	// (http://HOST[:PORT]/PATH) or HOST[:PORT], which means
	// http://HOST:PORT/.
	Target   string
	Workload wire.Workload
	// ReqSize and RespSize are the message sizes in bytes. For tcp_stream
	// they are the write (forward) or read (reverse) buffer size.
	ReqSize, RespSize int
	// Warmup runs before Duration; its transactions are not recorded.
	Warmup, Duration time.Duration
	// Flows is the number of parallel flows (connections), each on its own
	// OS thread. For http: the number of connections, spread over Threads.
	Flows int
	// Threads is the number of OS threads driving the http connections
	// (each thread runs an epoll loop over Flows/Threads connections).
	// Default 1. Other workloads always use one thread per flow.
	Threads int
	// Method, Headers ("Name: value"), Body and NoKeepAlive shape the http
	// request (default GET, keep-alive).
	Method      string
	Headers     []string
	Body        string
	NoKeepAlive bool
	// Rate, if > 0, runs open loop: Rate transactions per second in total,
	// spread evenly over the flows, with latency measured from each
	// transaction's intended send time.
	Rate float64
	// ClientCPUs pins flow i to ClientCPUs[i%len]. Nil means automatic
	// placement inside the allowed set; see Placement.
	ClientCPUs []int
	// NoPin disables client pinning.
	NoPin bool
	// ServerCPU is CPUAuto, CPUNone or a CPU number for the server's flow
	// threads.
	ServerCPU int
	// Reverse makes tcp_stream flow from server to client.
	Reverse bool
	// Congestion, if set, is the TCP congestion control algorithm of the
	// client's data sockets (tcp_rr, tcp_crr, forward tcp_stream), as
	// iperf3 -C and netperf -K set it. Empty keeps the namespace default
	// (net.ipv4.tcp_congestion_control). Either way the result reports
	// the algorithm the sockets ran.
	Congestion string
	// UDPTimeout is how long udp_rr waits for a response before it counts
	// the datagram as lost and goes on (default 50ms).
	UDPTimeout time.Duration
	// IOTimeout fails a TCP run whose server stops answering (default 10s).
	// For http it is the request timeout: a request without a complete
	// response within it is counted as a timeout error and its connection
	// reopened.
	IOTimeout time.Duration
	// Interval is the length of one entry of the interval series (default 1s).
	Interval time.Duration
	// NetNS is the path of a network namespace to run the client in.
	NetNS string
	// Progress, if set, is called about twice a second with the time run so
	// far (warm-up included) and the total.
	Progress func(done, total time.Duration)
	// Window, if set, is called once, just before the flows start, with the
	// wall-clock bounds of the measured window (after warm-up), so kernel
	// counters can be sampled over exactly the transactions reported.
	Window func(start, end time.Time)
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.Workload == "" {
		c.Workload = wire.TCPRR
	}
	if c.Workload == wire.HTTP {
		c.httpDefaults()
		return
	}
	if c.ReqSize == 0 {
		if c.Workload == wire.TCPStream {
			c.ReqSize = 128 << 10
		} else {
			c.ReqSize = 64
		}
	}
	if c.RespSize == 0 {
		c.RespSize = c.ReqSize
	}
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if c.Flows == 0 {
		c.Flows = 1
	}
	if c.UDPTimeout == 0 {
		c.UDPTimeout = 50 * time.Millisecond
	}
	if c.IOTimeout == 0 {
		c.IOTimeout = 10 * time.Second
	}
	if c.Interval == 0 {
		c.Interval = time.Second
	}
}

// Validate checks a defaulted Config.
func (c *Config) Validate() error {
	if _, err := wire.ParseWorkload(string(c.Workload)); err != nil {
		return err
	}
	if c.Workload == wire.HTTP {
		return c.validateHTTP()
	}
	if c.Target == "" {
		return fmt.Errorf("no target: give the address of a running `latlab serve`")
	}
	if c.Flows < 1 || c.Flows > wire.MaxFlows {
		return fmt.Errorf("flows %d outside [1, %d]", c.Flows, wire.MaxFlows)
	}
	if c.Duration <= 0 || c.Warmup < 0 || c.Warmup+c.Duration > wire.MaxDuration {
		return fmt.Errorf("warm-up %v + duration %v must be positive and at most %v", c.Warmup, c.Duration, wire.MaxDuration)
	}
	if c.Duration%time.Millisecond != 0 || c.Warmup%time.Millisecond != 0 {
		return fmt.Errorf("duration and warm-up have millisecond resolution")
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return fmt.Errorf("rate %v must be a positive number of transactions per second", c.Rate)
	}
	if c.Rate > 0 && c.Workload == wire.TCPStream {
		return fmt.Errorf("--rate applies to request/response workloads, not tcp_stream")
	}
	if c.Reverse && c.Workload != wire.TCPStream {
		return fmt.Errorf("reverse direction applies to tcp_stream only")
	}
	if c.Congestion != "" {
		if err := validCongestion(c.Congestion); err != nil {
			return err
		}
		if c.Workload == wire.UDPRR {
			return fmt.Errorf("--congestion applies to TCP workloads, not udp_rr")
		}
		if c.Reverse {
			return fmt.Errorf("--congestion sets the client's sockets, and with --reverse the server sends; set net.ipv4.tcp_congestion_control in the server's namespace instead")
		}
	}
	if c.Interval < 10*time.Millisecond {
		return fmt.Errorf("interval %v too short (minimum 10ms)", c.Interval)
	}
	if c.ServerCPU < wire.CPUNone {
		return fmt.Errorf("server CPU %d invalid", c.ServerCPU)
	}
	h := c.hello()
	return h.Validate()
}

func (c *Config) hello() wire.Hello {
	return wire.Hello{
		Workload:  c.Workload,
		ReqSize:   uint32(c.ReqSize),
		RespSize:  uint32(c.RespSize),
		Warmup:    c.Warmup,
		Duration:  c.Duration,
		Flows:     uint16(c.Flows),
		Reverse:   c.Reverse,
		ServerCPU: int32(c.ServerCPU),
	}
}

// validCongestion checks the shape of an algorithm name (the kernel's
// TCP_CA_NAME_MAX is 16 bytes with the NUL); whether the kernel has it is
// only known when a socket asks.
func validCongestion(name string) error {
	if len(name) > 15 {
		return fmt.Errorf("congestion control %q: name longer than 15 bytes", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("congestion control %q: not an algorithm name (see /proc/sys/net/ipv4/tcp_available_congestion_control)", name)
		}
	}
	return nil
}

// TargetAddr returns the target with the default port filled in.
func TargetAddr(target string) string {
	if _, _, err := net.SplitHostPort(target); err == nil {
		return target
	}
	h := strings.TrimSuffix(strings.TrimPrefix(target, "["), "]")
	return net.JoinHostPort(h, strconv.Itoa(wire.DefaultPort))
}

// Result is the outcome of one run. Its JSON form is documented in
// docs/bench-json.md.
type Result struct {
	Workload      wire.Workload `json:"workload"`
	Target        string        `json:"target"`
	Direction     string        `json:"direction,omitempty"`
	ReqSize       int           `json:"request_size"`
	RespSize      int           `json:"response_size"`
	Flows         int           `json:"flows"`
	Transactions  int64         `json:"transactions"`
	DurationS     float64       `json:"duration_s"`
	WarmupS       float64       `json:"warmup_s"`
	RatePerSec    float64       `json:"rate_per_sec"`
	Latency       *Latency      `json:"latency_ns,omitempty"`
	ThroughputBps float64       `json:"throughput_bps,omitempty"`
	FlowBps       []float64     `json:"flow_throughput_bps,omitempty"`
	Lost          int64         `json:"lost"`
	LossRatio     float64       `json:"loss_ratio"`
	OpenLoop      *OpenLoop     `json:"open_loop,omitempty"`
	// http only: threads driving the connections (flows), failed requests
	// by class, and complete responses by status code.
	Threads     int              `json:"threads,omitempty"`
	NoKeepAlive bool             `json:"no_keepalive,omitempty"`
	Errors      *HTTPErrors      `json:"errors,omitempty"`
	StatusCodes map[string]int64 `json:"status_codes,omitempty"`
	// Congestion is the TCP congestion control algorithm the client's data
	// sockets ran (TCP workloads; empty for udp_rr and http).
	Congestion string     `json:"congestion,omitempty"`
	Placement  Placement  `json:"placement"`
	CPUPerTxn  CPUCost    `json:"cpu_us_per_txn"`
	CPUUtil    CPUCost    `json:"cpu_utilization"`
	Intervals  []Interval `json:"intervals"`
	StartedAt  time.Time  `json:"started_at"`

	// Hist holds every measured transaction's latency (merged over flows).
	Hist *hist.Histogram `json:"-"`
}

// Latency summarizes a histogram in nanoseconds.
type Latency struct {
	Min    int64   `json:"min"`
	Mean   float64 `json:"mean"`
	StdDev float64 `json:"stddev"`
	P50    int64   `json:"p50"`
	P90    int64   `json:"p90"`
	P99    int64   `json:"p99"`
	P999   int64   `json:"p999"`
	Max    int64   `json:"max"`
}

// Summarize computes a Latency from h; nil if h is empty.
func Summarize(h *hist.Histogram) *Latency {
	if h == nil || h.Count() == 0 {
		return nil
	}
	return &Latency{
		Min: h.Min(), Mean: h.Mean(), StdDev: h.StdDev(),
		P50: h.Percentile(50), P90: h.Percentile(90), P99: h.Percentile(99),
		P999: h.Percentile(99.9), Max: h.Max(),
	}
}

// OpenLoop reports on a constant-rate run.
type OpenLoop struct {
	TargetRate float64 `json:"target_rate_per_sec"`
	// LateSends counts transactions that started more than LateAfterNs
	// after their intended send time: the client could not keep the rate
	// (the server or the path was slower than the schedule).
	LateSends   int64 `json:"late_sends"`
	LateAfterNs int64 `json:"late_after_ns"`
	// MaxBehindNs is the largest lag between intended and actual send.
	MaxBehindNs int64 `json:"max_behind_ns"`
}

// Placement reports where the client's and server's timed threads ran.
// A CPU of -1 means that side was not pinned.
type Placement struct {
	ClientCPU    int   `json:"client_cpu"`
	ServerCPU    int   `json:"server_cpu"`
	ClientCPUs   []int `json:"client_cpus"`
	ClientPinned bool  `json:"client_pinned"`
	ServerPinned bool  `json:"server_pinned"`
	AllowedCPUs  []int `json:"allowed_cpus"`
}

// CPUCost is a client/server pair of CPU figures.
type CPUCost struct {
	Client float64 `json:"client"`
	Server float64 `json:"server"`
}

// Interval is one entry of the per-interval series.
type Interval struct {
	StartS        float64 `json:"start_s"`
	Transactions  int64   `json:"transactions"`
	RatePerSec    float64 `json:"rate_per_sec"`
	P50Ns         int64   `json:"p50_ns,omitempty"`
	P99Ns         int64   `json:"p99_ns,omitempty"`
	MaxNs         int64   `json:"max_ns,omitempty"`
	ThroughputBps float64 `json:"throughput_bps,omitempty"`
	Lost          int64   `json:"lost,omitempty"`
}
