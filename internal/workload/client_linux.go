package workload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/hist"
	"github.com/latlab/latlab/internal/netns"
	"github.com/latlab/latlab/internal/sockio"
	"github.com/latlab/latlab/internal/wire"
)

// flow is one timed stream of transactions. A flow is dialled and run on
// its own locked, pinned OS thread with blocking system calls: no
// netpoller, no allocation and no lock between the two clock reads.
type flow interface {
	run(r *recorder) error
	close()
}

// dialFlow opens flow idx of a session. It runs on the flow's thread, so
// sockets are created in the right namespace.
func dialFlow(cfg *Config, target netip.AddrPort, session uint64, idx int) (flow, error) {
	switch cfg.Workload {
	case wire.TCPRR:
		return dialTCPRR(cfg, target, session, idx)
	case wire.TCPCRR:
		return newCRR(cfg, target, session, idx)
	case wire.UDPRR:
		return dialUDPRR(cfg, target, session, idx)
	case wire.TCPStream:
		return dialStream(cfg, target, session, idx)
	}
	return nil, fmt.Errorf("unknown workload %q", cfg.Workload)
}

// recorder is a flow's private account of its transactions.
type recorder struct {
	measure, end int64 // sockio.Nanotime: start of measurement, end of run
	interval     int64
	stop         *atomic.Bool

	total *hist.Histogram
	ivals []ivalRec
	warm  int64 // transactions during warm-up
	txns  int64 // measured transactions
	lost  int64
	bytes int64

	// open loop
	paced     bool
	next      int64
	period    int64
	lateAfter int64
	late      int64
	maxBehind int64

	cpu time.Duration
	cc  string // congestion control of the flow's socket

	yieldAt int64 // sockio.Nanotime of the next voluntary reschedule (see turn)
}

type ivalRec struct {
	h     *hist.Histogram
	txns  int64
	lost  int64
	bytes int64
}

// intervalSigDigits is the precision of the per-interval histograms; the
// run's total histogram keeps hist.DefaultSigDigits.
const intervalSigDigits = 2

func newRecorder(cfg *Config, stop *atomic.Bool) *recorder {
	n := int((cfg.Duration + cfg.Interval - 1) / cfg.Interval)
	r := &recorder{
		interval: int64(cfg.Interval),
		stop:     stop,
		total:    hist.NewDefault(),
		ivals:    make([]ivalRec, n),
	}
	for i := range r.ivals {
		r.ivals[i].h = hist.New(intervalSigDigits, hist.DefaultMax)
	}
	return r
}

func (r *recorder) slot(t int64) *ivalRec {
	i := int((t - r.measure) / r.interval)
	if i >= len(r.ivals) {
		i = len(r.ivals) - 1
	}
	return &r.ivals[i]
}

// record accounts one transaction that completed at t1 with latency lat.
func (r *recorder) record(t1, lat int64) {
	if t1 < r.measure {
		r.warm++
		return
	}
	iv := r.slot(t1)
	iv.h.Record(lat)
	iv.txns++
	r.total.Record(lat)
	r.txns++
}

// lose accounts one lost datagram detected at t.
func (r *recorder) lose(t int64) {
	if t < r.measure {
		return
	}
	r.slot(t).lost++
	r.lost++
}

// addBytes accounts stream payload moved at t.
func (r *recorder) addBytes(t int64, n int) {
	if t < r.measure {
		r.warm++
		return
	}
	iv := r.slot(t)
	iv.bytes += int64(n)
	iv.txns++
	r.bytes += int64(n)
	r.txns++
}

// turn returns the start time of the next transaction and whether the run
// goes on. Closed loop: now. Open loop: the intended send time, after
// waiting for it if it is still ahead.
func (r *recorder) turn() (int64, bool) {
	if r.stop.Load() {
		return 0, false
	}
	now := sockio.Nanotime()
	if now >= r.yieldAt {
		now = r.yield(now)
	}
	if !r.paced {
		return now, now < r.end
	}
	t := r.next
	if t >= r.end {
		return 0, false
	}
	r.next += r.period
	if t > now {
		sleepUntil(t)
		return t, true
	}
	if behind := now - t; behind > r.lateAfter && t >= r.measure {
		r.late++
		if behind > r.maxBehind {
			r.maxBehind = behind
		}
	}
	return t, true
}

// yield reschedules the flow's goroutine between transactions and returns
// the time after it. A flow that never reschedules (its raw or blocking
// calls never go through the scheduler) is preempted by sysmon every 10ms:
// by a signal that interrupts the call in flight (EINTR), and, if it sits
// in a blocking syscall, by taking its P away, which also resets sysmon to
// waking every 20µs for the next millisecond or so — ~5,000 wake-ups a
// second on the flow's CPU. A voluntary yield every 5ms costs a couple of
// thread switches instead (Go 1.26, see docs/design.md).
func (r *recorder) yield(now int64) int64 {
	if r.yieldAt != 0 {
		runtime.Gosched()
		now = sockio.Nanotime()
	}
	r.yieldAt = now + sockio.YieldEvery
	return now
}

// sleepUntil waits for the monotonic time t: nanosleep for the bulk (with
// the thread's timer slack at 1ns), then a short spin for precision.
func sleepUntil(t int64) {
	const spin = 60 * int64(time.Microsecond)
	for {
		d := t - sockio.Nanotime()
		if d <= 0 {
			return
		}
		if d > 2*spin {
			ts := unix.NsecToTimespec(d - spin)
			unix.Nanosleep(&ts, nil)
		}
	}
}

// Run executes one client run against a latlab server.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Workload == wire.HTTP {
		return runHTTP(ctx, cfg)
	}
	addr := TargetAddr(cfg.Target)
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("resolve target %s: %w", addr, err)
	}
	target := netip.AddrPortFrom(ta.AddrPort().Addr().Unmap(), ta.AddrPort().Port())
	allowed, err := sockio.AllowedCPUs()
	if err != nil {
		return nil, err
	}
	cpus, err := planClientCPUs(&cfg, allowed)
	if err != nil {
		return nil, err
	}

	var ctrl net.Conn
	if err := netns.Do(cfg.NetNS, func() error {
		var err error
		ctrl, err = net.DialTimeout("tcp", target.String(), 5*time.Second)
		return err
	}); err != nil {
		return nil, fmt.Errorf("connect to latlab server at %s: %w", target, err)
	}
	defer ctrl.Close()
	h := cfg.hello()
	hb, _ := h.MarshalBinary()
	ctrl.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := ctrl.Write(hb); err != nil {
		return nil, fmt.Errorf("send hello to %s: %w", target, err)
	}
	rep, err := wire.ReadHelloReply(ctrl)
	if err != nil {
		return nil, fmt.Errorf("handshake with %s (is it a latlab server?): %w", target, err)
	}
	if rep.Status != wire.StatusOK {
		return nil, fmt.Errorf("server %s refused the run: %s: %s", target, wire.StatusText(rep.Status), rep.Message)
	}
	ctrl.SetDeadline(time.Time{})

	// One P per flow thread and two more. tcp_rr and udp_rr flows block in
	// raw read(2)/write(2) (sockio.RawRead), keeping their P, so the rest of the
	// process (progress, the end of the run, a server in the same process)
	// needs Ps of its own; and with a P idle, sysmon leaves a P in a
	// blocking runtime call alone instead of handing it away after 20µs.
	// Under `taskset -c 0` the runtime starts with GOMAXPROCS=1, where each
	// such handoff woke a runtime thread on the flow's only CPU.
	// (Process-wide: overlapping runs in one process may restore it early;
	// the lab runs one at a time.)
	if need := cfg.Flows + 2; runtime.GOMAXPROCS(0) < need {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(need))
	}

	var stop atomic.Bool
	watchDone := make(chan struct{})
	defer close(watchDone)
	go func() {
		select {
		case <-ctx.Done():
			stop.Store(true)
		case <-watchDone:
		}
	}()

	recs := make([]*recorder, cfg.Flows)
	for i := range recs {
		recs[i] = newRecorder(&cfg, &stop)
	}
	start := make(chan struct{})
	ready := make(chan error, cfg.Flows)
	errs := make([]error, cfg.Flows)
	var wg sync.WaitGroup
	for i := 0; i < cfg.Flows; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = runFlow(&cfg, target, rep.Session, i, cpus[i], recs[i], ready, start)
		}()
	}
	var setupErr error
	for i := 0; i < cfg.Flows; i++ {
		if err := <-ready; err != nil && setupErr == nil {
			setupErr = err
		}
	}
	t0 := sockio.Nanotime() + int64(2*time.Millisecond)
	startedAt := time.Now().Add(2 * time.Millisecond)
	for i, r := range recs {
		r.measure = t0 + int64(cfg.Warmup)
		r.end = r.measure + int64(cfg.Duration)
		if cfg.Rate > 0 {
			perFlow := cfg.Rate / float64(cfg.Flows)
			r.paced = true
			r.period = int64(float64(time.Second) / perFlow)
			if r.period < 1 {
				r.period = 1
			}
			// Stagger flows evenly inside one period.
			r.next = t0 + int64(i)*r.period/int64(cfg.Flows)
			r.lateAfter = max(int64(50*time.Microsecond), r.period/10)
		}
	}
	if err := launch(ctx, &cfg, setupErr, t0, startedAt, start, watchDone, &stop, &wg, errs); err != nil {
		return nil, err
	}

	ctrl.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := ctrl.Write(wire.MarshalEnd()); err != nil {
		return nil, fmt.Errorf("send end to %s: %w", target, err)
	}
	end, err := wire.ReadEndReply(ctrl)
	if err != nil {
		return nil, fmt.Errorf("collect server account from %s: %w", target, err)
	}
	if end.Status != wire.StatusOK {
		return nil, fmt.Errorf("server %s: %s", target, wire.StatusText(end.Status))
	}
	res := aggregate(&cfg, recs, end, allowed, cpus)
	res.Target = target.String()
	res.StartedAt = startedAt
	return res, nil
}

// launch is the tail both engines' Run share: if setup failed, stop every
// flow; otherwise announce the measured window (Config.Window). Then
// release the flows waiting on start, report progress, wait for them, and
// return the first failure.
func launch(ctx context.Context, cfg *Config, setupErr error, t0 int64, startedAt time.Time, start chan struct{},
	watchDone <-chan struct{}, stop *atomic.Bool, wg *sync.WaitGroup, errs []error) error {
	if setupErr != nil {
		stop.Store(true)
	} else if cfg.Window != nil {
		ws := startedAt.Add(cfg.Warmup)
		cfg.Window(ws, ws.Add(cfg.Duration))
	}
	close(start)
	if setupErr == nil && cfg.Progress != nil {
		go progress(*cfg, t0, watchDone, stop)
	}
	wg.Wait()
	if setupErr != nil {
		return setupErr
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("run interrupted: %w", ctx.Err())
	}
	return nil
}

func progress(cfg Config, t0 int64, done <-chan struct{}, stop *atomic.Bool) {
	total := cfg.Warmup + cfg.Duration
	tk := time.NewTicker(500 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-done:
			return
		case <-tk.C:
			if stop.Load() {
				return
			}
			el := time.Duration(sockio.Nanotime() - t0)
			if el > total {
				el = total
			}
			cfg.Progress(el, total)
			if el >= total {
				return
			}
		}
	}
}

// planClientCPUs decides where each flow's thread runs. Automatic placement
// takes CPUs from the end of the allowed set while the server's automatic
// placement takes them from the start, so on a 2-CPU machine client and
// server land on different cores, and a restricted mask (taskset -c 3) is
// never escaped.
func planClientCPUs(cfg *Config, allowed []int) ([]int, error) {
	cpus := make([]int, cfg.Flows)
	for i := range cpus {
		switch {
		case cfg.NoPin:
			cpus[i] = -1
		case len(cfg.ClientCPUs) > 0:
			c := cfg.ClientCPUs[i%len(cfg.ClientCPUs)]
			if !slices.Contains(allowed, c) {
				return nil, fmt.Errorf("client CPU %d is outside this process's allowed CPUs %v (taskset or cgroup cpuset)", c, allowed)
			}
			cpus[i] = c
		default:
			n := len(allowed)
			cpus[i] = allowed[(n-1-i%n+n)%n]
		}
	}
	return cpus, nil
}

// runFlow is a flow goroutine's whole life: lock and pin its thread, dial,
// report ready, wait for the start, run, close.
func runFlow(cfg *Config, target netip.AddrPort, session uint64, idx, cpu int, r *recorder, ready chan<- error, start <-chan struct{}) error {
	if err := sockio.LockThread(cfg.NetNS, cpu); err != nil {
		ready <- err
		return nil
	}
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	f, err := dialFlow(cfg, target, session, idx)
	if err != nil {
		ready <- fmt.Errorf("flow %d: %w", idx, err)
		return nil
	}
	defer f.close()
	if c, ok := f.(interface{ congestion() string }); ok {
		r.cc = c.congestion()
	}
	ready <- nil
	<-start
	if r.stop.Load() {
		return nil
	}
	sleepUntil(r.measure - int64(cfg.Warmup))
	cpu0 := sockio.ThreadCPU()
	err = f.run(r)
	r.cpu = sockio.ThreadCPU() - cpu0
	if err != nil {
		r.stop.Store(true) // one broken flow ends the run
		return fmt.Errorf("flow %d: %w", idx, err)
	}
	return nil
}

func aggregate(cfg *Config, recs []*recorder, end wire.EndReply, allowed, cpus []int) *Result {
	res := &Result{
		Workload:  cfg.Workload,
		ReqSize:   cfg.ReqSize,
		RespSize:  cfg.RespSize,
		Flows:     cfg.Flows,
		DurationS: cfg.Duration.Seconds(),
		WarmupS:   cfg.Warmup.Seconds(),
		Hist:      hist.NewDefault(),
	}
	n := len(recs[0].ivals)
	res.Intervals = make([]Interval, n)
	ivh := make([]*hist.Histogram, n)
	for i := range ivh {
		ivh[i] = hist.New(intervalSigDigits, hist.DefaultMax)
	}
	var clientCPU time.Duration
	var all int64
	for _, r := range recs {
		res.Hist.Merge(r.total)
		res.Transactions += r.txns
		res.Lost += r.lost
		all += r.txns + r.warm
		clientCPU += r.cpu
		for i := range r.ivals {
			ivh[i].Merge(r.ivals[i].h)
			res.Intervals[i].Transactions += r.ivals[i].txns
			res.Intervals[i].Lost += r.ivals[i].lost
			res.Intervals[i].ThroughputBps += float64(r.ivals[i].bytes)
		}
		if cfg.Workload == wire.TCPStream {
			res.FlowBps = append(res.FlowBps, float64(r.bytes)*8/cfg.Duration.Seconds())
			res.ThroughputBps += float64(r.bytes) * 8 / cfg.Duration.Seconds()
		}
	}
	for i := range res.Intervals {
		iv := &res.Intervals[i]
		iv.StartS = (time.Duration(i) * cfg.Interval).Seconds()
		length := cfg.Interval
		if rest := cfg.Duration - time.Duration(i)*cfg.Interval; rest < length {
			length = rest
		}
		iv.RatePerSec = float64(iv.Transactions) / length.Seconds()
		if cfg.Workload == wire.TCPStream {
			iv.ThroughputBps = iv.ThroughputBps * 8 / length.Seconds()
		} else {
			iv.ThroughputBps = 0
			if ivh[i].Count() > 0 {
				iv.P50Ns, iv.P99Ns, iv.MaxNs = ivh[i].Percentile(50), ivh[i].Percentile(99), ivh[i].Max()
			}
		}
	}
	res.RatePerSec = float64(res.Transactions) / cfg.Duration.Seconds()
	if cfg.Workload != wire.TCPStream {
		res.Latency = Summarize(res.Hist)
	} else {
		res.Direction = "client_to_server"
		if cfg.Reverse {
			res.Direction = "server_to_client"
		}
	}
	if cfg.Workload == wire.UDPRR {
		if sent := res.Transactions + res.Lost; sent > 0 {
			res.LossRatio = float64(res.Lost) / float64(sent)
		}
	}
	if cfg.Rate > 0 {
		ol := &OpenLoop{TargetRate: cfg.Rate, LateAfterNs: recs[0].lateAfter}
		for _, r := range recs {
			ol.LateSends += r.late
			ol.MaxBehindNs = max(ol.MaxBehindNs, r.maxBehind)
		}
		res.OpenLoop = ol
	}
	res.Congestion = recs[0].cc
	res.Placement = Placement{
		ClientCPU:    cpus[0],
		ServerCPU:    int(end.ServerCPU),
		ClientCPUs:   cpus,
		ClientPinned: cpus[0] >= 0,
		ServerPinned: end.ServerCPU >= 0,
		AllowedCPUs:  allowed,
	}
	if end.ServerCPU < 0 {
		res.Placement.ServerCPU = -1
	}
	wall := (cfg.Warmup + cfg.Duration).Seconds()
	res.CPUUtil = CPUCost{Client: clientCPU.Seconds() / wall, Server: end.CPUTime.Seconds() / wall}
	if cfg.Workload != wire.TCPStream {
		if all > 0 {
			res.CPUPerTxn.Client = float64(clientCPU.Microseconds()) / float64(all)
		}
		if end.Txns > 0 {
			res.CPUPerTxn.Server = float64(end.CPUTime.Microseconds()) / float64(end.Txns)
		}
	}
	return res
}

// --- tcp_rr ---

type tcpRR struct {
	fd        int
	req, resp []byte
	timeout   time.Duration // the socket's SO_RCVTIMEO (sockio.ReadFull's raw)
}

// dialTCP opens a blocking TCP connection to target and sends an Attach.
// Request/response flows set TCP_NODELAY (as netperf and sockperf do);
// streams leave Nagle on (as iperf3 does).
func dialTCP(cfg *Config, target netip.AddrPort, a wire.Attach, nodelay bool) (int, error) {
	fam := familyOf(target.Addr())
	fd, err := sockio.Socket(fam, unix.SOCK_STREAM)
	if err != nil {
		return -1, err
	}
	if err := setCongestion(fd, cfg.Congestion); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Connect(fd, sockio.Sockaddr(target, fam)); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect data socket to %s: %w", target, err)
	}
	if nodelay {
		if err := setNoDelay(fd); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	if err := sockio.SetTimeouts(fd, cfg.IOTimeout, cfg.IOTimeout); err != nil {
		unix.Close(fd)
		return -1, err
	}
	hdr, _ := a.MarshalBinary()
	if err := sockio.WriteFull(fd, hdr, 0, false); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("attach data socket: %w", err)
	}
	return fd, nil
}

func dialTCPRR(cfg *Config, target netip.AddrPort, session uint64, idx int) (flow, error) {
	fd, err := dialTCP(cfg, target, wire.Attach{Kind: wire.KindAttach, Session: session, Flow: uint32(idx)}, true)
	if err != nil {
		return nil, err
	}
	return &tcpRR{fd: fd, req: make([]byte, cfg.ReqSize), resp: make([]byte, cfg.RespSize), timeout: cfg.IOTimeout}, nil
}

func (f *tcpRR) run(r *recorder) error {
	for {
		t0, ok := r.turn()
		if !ok {
			return nil
		}
		if err := sockio.WriteFull(f.fd, f.req, 0, true); err != nil {
			return fmt.Errorf("send request: %w", err)
		}
		if err := sockio.ReadFull(f.fd, f.resp, 0, f.timeout); err != nil {
			return fmt.Errorf("read response: %w", err)
		}
		t1 := sockio.Nanotime()
		r.record(t1, t1-t0)
	}
}

func (f *tcpRR) close() { unix.Close(f.fd) }

func (f *tcpRR) congestion() string { return congestionOf(f.fd) }

// --- tcp_crr ---

type tcpCRR struct {
	fam     int
	sa      unix.Sockaddr
	req     []byte // Attach header + request
	resp    []byte
	timeout unix.Timeval
	cc      string // --congestion, set on every socket
	ccName  string // what a socket of this flow runs
}

// newCRR prepares a tcp_crr flow. A throwaway socket checks --congestion
// before the run and learns the algorithm the flow's sockets will run.
func newCRR(cfg *Config, target netip.AddrPort, session uint64, idx int) (flow, error) {
	fam := familyOf(target.Addr())
	fd, err := sockio.Socket(fam, unix.SOCK_STREAM)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := setCongestion(fd, cfg.Congestion); err != nil {
		return nil, err
	}
	req := make([]byte, wire.AttachLen+cfg.ReqSize)
	a := wire.Attach{Kind: wire.KindCRR, Session: session, Flow: uint32(idx)}
	a.Put(req)
	return &tcpCRR{fam: fam, sa: sockio.Sockaddr(target, fam), req: req, cc: cfg.Congestion, ccName: congestionOf(fd),
		resp: make([]byte, cfg.RespSize+1), timeout: unix.NsecToTimeval(cfg.IOTimeout.Nanoseconds())}, nil
}

func (f *tcpCRR) congestion() string { return f.ccName }

func (f *tcpCRR) run(r *recorder) error {
	for {
		t0, ok := r.turn()
		if !ok {
			return nil
		}
		if err := f.once(); err != nil {
			return err
		}
		t1 := sockio.Nanotime()
		r.record(t1, t1-t0)
	}
}

// once is one transaction: connect, request, response, close. The server
// closes first; reading its FIN before closing keeps the client's ports out
// of TIME_WAIT, so long runs do not exhaust them.
func (f *tcpCRR) once() error {
	fd, err := unix.Socket(f.fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("create socket: %w", err)
	}
	defer unix.Close(fd)
	// One setsockopt inside the timed window (~0.3µs of a ~100µs
	// transaction): without it a server that vanishes mid-transaction would
	// hang the flow forever, beyond the reach of cancellation.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &f.timeout); err != nil {
		return fmt.Errorf("set SO_RCVTIMEO: %w", err)
	}
	// Only with --congestion: one more setsockopt in the timed window, as
	// the algorithm must be chosen before connect.
	if err := setCongestion(fd, f.cc); err != nil {
		return err
	}
	if err := unix.Connect(fd, f.sa); err != nil {
		if err == unix.EADDRNOTAVAIL {
			return fmt.Errorf("connect: %w (ephemeral ports exhausted; lower the rate or widen net.ipv4.ip_local_port_range)", err)
		}
		return fmt.Errorf("connect: %w", err)
	}
	if err := sockio.WriteFull(fd, f.req, 0, false); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	want := len(f.resp) - 1
	if err := sockio.ReadFull(fd, f.resp[:want], 0, 0); err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	for {
		n, err := unix.Read(fd, f.resp[want:])
		if n == 0 && err == nil {
			return nil // FIN
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("await close: %w", err)
		}
		return errors.New("server sent more than the response size")
	}
}

func (f *tcpCRR) close() {}

// --- udp_rr ---

type udpRR struct {
	fd        int
	req, resp []byte
	timeout   int64 // ns: the socket's SO_RCVTIMEO, --udp-timeout
}

func dialUDPRR(cfg *Config, target netip.AddrPort, session uint64, idx int) (flow, error) {
	fam := familyOf(target.Addr())
	fd, err := sockio.Socket(fam, unix.SOCK_DGRAM)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (flow, error) {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Connect(fd, sockio.Sockaddr(target, fam)); err != nil {
		return fail(fmt.Errorf("connect udp socket to %s: %w", target, err))
	}
	// Attach: retry a few times, the datagram or its ack may be lost.
	if err := sockio.SetTimeouts(fd, 200*time.Millisecond, 0); err != nil {
		return fail(err)
	}
	a := wire.Attach{Kind: wire.KindUDP, Session: session, Flow: uint32(idx)}
	hdr, _ := a.MarshalBinary()
	buf := make([]byte, 2048)
	attached := false
	for try := 0; try < 10 && !attached; try++ {
		if _, err := unix.Write(fd, hdr); err != nil && err != unix.ECONNREFUSED {
			return fail(fmt.Errorf("send udp attach: %w", err))
		}
		for {
			n, err := unix.Read(fd, buf)
			if err != nil {
				break // timeout or ICMP refusal: send again
			}
			if back, err := wire.DecodeAttach(buf[:n]); err == nil && back == a {
				attached = true
				break
			}
		}
	}
	if !attached {
		return fail(fmt.Errorf("udp attach to %s: no answer after 10 tries (is UDP port %d blocked?)", target, target.Port()))
	}
	if err := sockio.SetTimeouts(fd, cfg.UDPTimeout, cfg.IOTimeout); err != nil {
		return fail(err)
	}
	return &udpRR{fd: fd, req: make([]byte, cfg.ReqSize), resp: make([]byte, max(cfg.RespSize, 2048)), timeout: int64(cfg.UDPTimeout)}, nil
}

func (f *udpRR) run(r *recorder) error {
	var seq uint64
	for {
		t0, ok := r.turn()
		if !ok {
			return nil
		}
		seq++
		binary.LittleEndian.PutUint64(f.req, seq)
		_, err := sockio.RawWrite(f.fd, f.req)
		for err == unix.EINTR { // a signal before the datagram went out
			_, err = sockio.RawWrite(f.fd, f.req)
		}
		if err != nil {
			if err == unix.ECONNREFUSED || err == unix.ENOBUFS || err == unix.EAGAIN {
				r.lose(sockio.Nanotime())
				continue
			}
			return fmt.Errorf("send datagram: %w", err)
		}
		for {
			n, err := sockio.RawRead(f.fd, f.resp)
			if err != nil {
				// A signal's EINTR restarts the wait with a whole
				// timeout: past the timeout since the turn began (the
				// send, or its scheduled time) it is one.
				if err == unix.EINTR && sockio.Nanotime()-t0 <= f.timeout {
					continue
				}
				if err == unix.EINTR {
					err = unix.EAGAIN
				}
				if err == unix.EAGAIN || err == unix.ECONNREFUSED {
					r.lose(sockio.Nanotime())
					break
				}
				return fmt.Errorf("read datagram: %w", err)
			}
			if n >= wire.MinUDPSize && binary.LittleEndian.Uint64(f.resp) == seq {
				t1 := sockio.Nanotime()
				r.record(t1, t1-t0)
				break
			}
			// A late answer to an earlier, already counted-lost datagram,
			// or a repeated attach ack: not ours, keep waiting.
		}
	}
}

func (f *udpRR) close() { unix.Close(f.fd) }

// --- tcp_stream ---

type stream struct {
	fd      int
	buf     []byte
	reverse bool
	timeout time.Duration // --timeout: longest wait for the peer
}

func dialStream(cfg *Config, target netip.AddrPort, session uint64, idx int) (flow, error) {
	fd, err := dialTCP(cfg, target, wire.Attach{Kind: wire.KindAttach, Session: session, Flow: uint32(idx)}, false)
	if err != nil {
		return nil, err
	}
	size := cfg.ReqSize
	if cfg.Reverse {
		size = cfg.RespSize
	}
	f := &stream{fd: fd, buf: make([]byte, size), reverse: cfg.Reverse, timeout: cfg.IOTimeout}
	if cfg.Reverse {
		// The receiving side waits in poll and drains (sockio.RecvBurst).
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("set data socket non-blocking: %w", err)
		}
	}
	return f, nil
}

func (f *stream) run(r *recorder) error {
	last := sockio.Nanotime() // reverse: when data last arrived
	for {
		if r.stop.Load() {
			return nil
		}
		var n int
		var err error
		if f.reverse {
			n, err = sockio.RecvBurst(f.fd, f.buf, f.timeout, false)
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			if n == 0 && err == nil {
				// Woken without data (a signal, or the timeout).
				if sockio.Nanotime()-last < int64(f.timeout) {
					continue
				}
				err = unix.EAGAIN
			}
		} else {
			n, err = sockio.RawWrite(f.fd, f.buf)
		}
		t := sockio.Nanotime()
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				return fmt.Errorf("stream stalled for %v: %w", f.timeout, sockio.ErrTimeout)
			}
			return fmt.Errorf("stream: %w", err)
		}
		r.addBytes(t, n)
		last = t
		if t >= r.end {
			return nil
		}
	}
}

func (f *stream) congestion() string { return congestionOf(f.fd) }

func (f *stream) close() {
	unix.Shutdown(f.fd, unix.SHUT_WR)
	unix.Close(f.fd)
}
