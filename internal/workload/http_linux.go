package workload

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/netns"
	"github.com/latlab/latlab/internal/sockio"
	"github.com/latlab/latlab/internal/wire"
)

// HTTP client engine.
//
// Each of cfg.Threads OS threads is locked, pinned and drives its share of
// the connections with one level-triggered epoll instance and non-blocking
// sockets, as wrk does: a thread that owns several connections collects
// all their ready responses in one epoll_wait. Nothing on the request path
// allocates: the request is built once, every connection has a fixed read
// buffer, and the response is parsed in place (status line, Content-Length,
// chunked framing, Connection: close) and then discarded. Reads, writes,
// polls that cannot block and open-loop waits skip the runtime's syscall
// bookkeeping (sockio.RawRead, epollWaitNs); only a closed-loop epoll wait that
// may block goes through it.
//
// Closed loop: a connection sends its next request as soon as the previous
// response is complete (after the rest of its epoll batch); latency runs
// from the write to the last byte of the response. Open loop (Rate > 0):
// every connection has its own schedule of Rate/connections requests per
// second (staggered), sends at the intended time or, if the previous
// response is late, as soon as it arrives; latency runs from the intended
// time (wrk2's coordinated-omission correction).

// connection states
const (
	hsIdle       = iota // connected, no request in flight
	hsConnecting        // non-blocking connect in progress
	hsWriting           // request partly written, waiting for EPOLLOUT
	hsReading           // request written, response incomplete
	hsClosing           // --no-keepalive: response complete, awaiting the server's FIN
	hsBackoff           // connect failed; retry at retryAt
	hsClosed            // needs a new connection
)

// response parser states
const (
	psHead = iota
	psBody
	psChunkSize
	psChunkData
	psChunkCRLF
	psTrailer
	psUntilClose
)

const (
	httpBufSize     = 64 << 10
	connectBackoff  = 10 * time.Millisecond
	maxEpollWait    = 50 * time.Millisecond
	closedLoopSpin  = 20 * time.Microsecond // see run
	httpMaxHeadSize = httpBufSize
	// Longest chunk-size line (with extensions) and trailer line the
	// client accepts, CRLF excluded.
	httpMaxChunkLine   = 1024
	httpMaxTrailerLine = 8192
)

type hconn struct {
	idx   int
	fd    int
	state int
	buf   []byte
	r, w  int

	sent     int   // bytes of the request written
	pending  bool  // a request is waiting for the connection to be usable
	start    int64 // latency origin of the request in flight
	deadline int64 // request timeout
	next     int64 // open loop: intended time of the next request
	retryAt  int64
	outReg   bool  // EPOLLOUT registered
	gen      int32 // connection generation, carried in epoll events

	// parser
	ps        int
	remain    int64
	status    int
	keepAlive bool
	noBody    bool
}

type httpThread struct {
	cfg     *Config
	sa      unix.Sockaddr
	fam     int
	req     []byte
	head    bool // HEAD request: responses carry no body
	epfd    int
	conns   []*hconn
	events  []unix.EpollEvent
	r       *recorder
	errs    HTTPErrors
	codes   [600]int64
	timeout int64
	wake    int64
	due     []*hconn // closed loop: connections whose next request waits for the end of the batch
}

// RunHTTP is Run for the http workload.
func runHTTP(ctx context.Context, cfg Config) (*Result, error) {
	t, err := parseHTTPTarget(cfg.Target, cfg.RespSize)
	if err != nil {
		return nil, err
	}
	req, err := buildHTTPRequest(&cfg, t)
	if err != nil {
		return nil, err
	}
	var ap netip.AddrPort
	if err := netns.Do(cfg.NetNS, func() error {
		ta, err := net.ResolveTCPAddr("tcp", t.addr)
		if err != nil {
			return err
		}
		ap = netip.AddrPortFrom(ta.AddrPort().Addr().Unmap(), ta.AddrPort().Port())
		return nil
	}); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", t.addr, err)
	}
	allowed, err := sockio.AllowedCPUs()
	if err != nil {
		return nil, err
	}
	pc := cfg
	pc.Flows = cfg.Threads
	cpus, err := planClientCPUs(&pc, allowed)
	if err != nil {
		return nil, err
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

	// One P more than locked threads: open-loop threads wait for epoll
	// without releasing their P (see epollWaitNs), and the rest of the
	// process — a server in the same process among it — must still run;
	// in closed loop, sysmon leaves a P in a blocking wait alone while
	// another P is idle instead of taking it away after 20µs.
	// (GOMAXPROCS is process-wide: runs that overlap in one process and
	// both raise it may restore it early; the lab runs one at a time.)
	if need := cfg.Threads + 1; runtime.GOMAXPROCS(0) < need {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(need))
	}
	fam := familyOf(ap.Addr())
	threads := make([]*httpThread, cfg.Threads)
	recs := make([]*recorder, cfg.Threads)
	for i := range threads {
		n := cfg.Flows / cfg.Threads
		if i < cfg.Flows%cfg.Threads {
			n++
		}
		recs[i] = newRecorder(&cfg, &stop)
		threads[i] = &httpThread{cfg: &cfg, sa: sockio.Sockaddr(ap, fam), fam: fam, req: req, head: cfg.Method == "HEAD",
			conns: make([]*hconn, n), r: recs[i], timeout: int64(cfg.IOTimeout)}
	}
	start := make(chan struct{})
	ready := make(chan error, cfg.Threads)
	errs := make([]error, cfg.Threads)
	var wg sync.WaitGroup
	for i := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = threads[i].life(cpus[i], ready, start)
		}()
	}
	var setupErr error
	for range threads {
		if err := <-ready; err != nil && setupErr == nil {
			setupErr = err
		}
	}
	t0 := sockio.Nanotime() + int64(2*time.Millisecond)
	startedAt := time.Now().Add(2 * time.Millisecond)
	conn := 0
	for i, r := range recs {
		r.measure = t0 + int64(cfg.Warmup)
		r.end = r.measure + int64(cfg.Duration)
		if cfg.Rate > 0 {
			perConn := cfg.Rate / float64(cfg.Flows)
			r.paced = true
			r.period = max(int64(float64(time.Second)/perConn), 1)
			r.lateAfter = max(int64(50*time.Microsecond), r.period/10)
			for _, c := range threads[i].conns {
				// Stagger connections evenly inside one period.
				c.next = t0 + int64(conn)*r.period/int64(cfg.Flows)
				conn++
			}
		}
	}
	if err := launch(ctx, &cfg, setupErr, t0, startedAt, start, watchDone, &stop, &wg, errs); err != nil {
		return nil, err
	}
	res := aggregate(&cfg, recs, wire.EndReply{ServerCPU: wire.CPUNone}, allowed, cpus)
	res.Target = t.display
	res.StartedAt = startedAt
	res.RespSize = 0
	res.Threads = cfg.Threads
	res.NoKeepAlive = cfg.NoKeepAlive
	res.Errors = &HTTPErrors{}
	res.StatusCodes = map[string]int64{}
	for _, th := range threads {
		res.Errors.add(&th.errs)
		for code, n := range th.codes {
			if n > 0 {
				res.StatusCodes[strconv.Itoa(code)] += n
			}
		}
	}
	return res, nil
}

// life is a thread's whole life: lock and pin, connect its connections,
// report ready, run, close.
func (th *httpThread) life(cpu int, ready chan<- error, start <-chan struct{}) error {
	if err := sockio.LockThread(th.cfg.NetNS, cpu); err != nil {
		ready <- err
		return nil
	}
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		ready <- fmt.Errorf("epoll_create: %w", err)
		return nil
	}
	th.epfd = epfd
	defer th.closeAll()
	th.events = make([]unix.EpollEvent, max(len(th.conns), 1))
	th.due = make([]*hconn, 0, len(th.conns))
	for i := range th.conns {
		c := &hconn{idx: i, fd: -1, buf: make([]byte, httpBufSize), state: hsClosed}
		th.conns[i] = c
		if !th.cfg.NoKeepAlive {
			if err := th.dialWait(c); err != nil {
				ready <- err
				return nil
			}
		}
	}
	ready <- nil
	<-start
	if th.r.stop.Load() {
		return nil
	}
	sleepUntil(th.r.measure - int64(th.cfg.Warmup))
	cpu0 := sockio.ThreadCPU()
	err = th.run()
	th.r.cpu = sockio.ThreadCPU() - cpu0
	if err != nil {
		th.r.stop.Store(true)
	}
	return err
}

func (th *httpThread) closeAll() {
	for _, c := range th.conns {
		if c != nil && c.fd >= 0 {
			unix.Close(c.fd)
			c.fd = -1
		}
	}
	unix.Close(th.epfd)
}

// dialWait opens a keep-alive connection before the run starts; failing
// here fails the run (a target that does not answer at all is a usage
// problem, not a measurement).
func (th *httpThread) dialWait(c *hconn) error {
	if err := th.connect(c); err != nil {
		return fmt.Errorf("connect to %s: %w", th.cfg.Target, err)
	}
	if c.state == hsConnecting {
		pfd := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLOUT}}
		for {
			n, err := unix.Poll(pfd, 5000)
			if err == unix.EINTR {
				continue
			}
			if n == 0 {
				return fmt.Errorf("connect to %s: timed out", th.cfg.Target)
			}
			break
		}
		if err := soError(c.fd); err != nil {
			return fmt.Errorf("connect to %s: %w", th.cfg.Target, err)
		}
		c.state = hsIdle
		th.setOut(c, false)
	}
	return nil
}

func soError(fd int) error {
	e, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if e != 0 {
		return unix.Errno(e)
	}
	return nil
}

// connect starts a non-blocking connect and registers the socket.
func (th *httpThread) connect(c *hconn) error {
	fd, err := unix.Socket(th.fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("create socket: %w", err)
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c.fd, c.r, c.w, c.ps, c.outReg = fd, 0, 0, psHead, true
	c.gen++
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT, Fd: int32(c.idx), Pad: c.gen}
	if err := unix.EpollCtl(th.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		th.drop(c)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	err = unix.Connect(fd, th.sa)
	switch err {
	case nil:
		c.state = hsIdle
		th.setOut(c, false)
	case unix.EINPROGRESS, unix.EINTR:
		c.state = hsConnecting
		c.deadline = sockio.Nanotime() + th.timeout
		th.arm(c.deadline)
	default:
		th.drop(c)
		return err
	}
	return nil
}

func (th *httpThread) setOut(c *hconn, on bool) {
	if c.outReg == on {
		return
	}
	c.outReg = on
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.idx), Pad: c.gen}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	unix.EpollCtl(th.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
}

// drop closes a connection (closing removes it from epoll).
func (th *httpThread) drop(c *hconn) {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
	c.state = hsClosed
}

func (th *httpThread) arm(t int64) {
	if t < th.wake {
		th.wake = t
	}
}

// fail ends the request in flight with an error of the given class and
// starts over on a new connection.
func (th *httpThread) fail(c *hconn, class *int64, now int64) {
	if now >= th.r.measure && now < th.r.end {
		*class++
	}
	th.drop(c)
	c.pending = false
	th.reopen(c, now)
}

// reopen gets a closed connection going again. In closed loop a new request
// is queued at once; in open loop the schedule decides.
func (th *httpThread) reopen(c *hconn, now int64) {
	if th.cfg.NoKeepAlive {
		c.state = hsClosed
		if !th.r.paced {
			th.send(c, now)
		}
		return
	}
	if err := th.connect(c); err != nil {
		if now >= th.r.measure && now < th.r.end {
			th.errs.Connect++
		}
		c.state = hsBackoff
		c.retryAt = now + int64(connectBackoff)
		th.arm(c.retryAt)
		return
	}
	if !th.r.paced && c.state == hsIdle {
		th.send(c, now)
	} else if !th.r.paced {
		c.pending = true
		c.start = 0
	}
}

// send starts a request with latency origin t0. A connection that is not
// usable yet queues it.
func (th *httpThread) send(c *hconn, t0 int64) {
	switch c.state {
	case hsClosed:
		// --no-keepalive (or a lost connection): the connect is part of the
		// transaction.
		c.pending, c.start = true, t0
		if err := th.connect(c); err != nil {
			th.countErr(&th.errs.Connect, t0)
			c.pending = false
			c.state = hsBackoff
			c.retryAt = sockio.Nanotime() + int64(connectBackoff)
			th.arm(c.retryAt)
			return
		}
		if c.state != hsIdle {
			return
		}
	case hsIdle:
	default:
		c.pending, c.start = true, t0
		return
	}
	c.pending = false
	c.start = t0
	c.sent = 0
	c.ps = psHead
	c.deadline = sockio.Nanotime() + th.timeout
	th.arm(c.deadline)
	th.write(c)
}

func (th *httpThread) countErr(class *int64, t int64) {
	if t >= th.r.measure && t < th.r.end {
		*class++
	}
}

func (th *httpThread) write(c *hconn) {
	for c.sent < len(th.req) {
		n, err := sockio.RawWrite(c.fd, th.req[c.sent:])
		if n > 0 {
			c.sent += n
			continue
		}
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			c.state = hsWriting
			th.setOut(c, true)
			return
		}
		th.fail(c, &th.errs.Write, sockio.Nanotime())
		return
	}
	c.state = hsReading
	th.setOut(c, false)
}

// run is the thread's event loop.
func (th *httpThread) run() error {
	r := th.r
	now := sockio.Nanotime()
	th.wake = now
	lastEv := now
	if !r.paced {
		for _, c := range th.conns {
			th.send(c, now)
		}
	}
	for {
		now = sockio.Nanotime()
		if now >= r.end || r.stop.Load() {
			return nil
		}
		if now >= th.wake {
			th.timers(now)
		}
		wait := min(th.wake, r.end, now+int64(maxEpollWait)) - now
		if r.paced {
			// Wake early and poll for the last stretch before a send, as
			// sleepUntil does: a timed wake-up is tens of µs late, and
			// in open loop that lag would be charged to the server.
			const spin = 60 * int64(time.Microsecond)
			wait = max(wait-spin, 0)
		}
		if !r.paced && now-lastEv < int64(closedLoopSpin) {
			// Closed loop: poll instead of sleeping while responses
			// are still coming in. A server answering within
			// microseconds would otherwise find the client asleep after
			// every batch, and both sides would pay a wake-up (an IPI
			// and a context switch) that wrk, whose loop does not run
			// dry at these rates, does not pay. With the default
			// cross-core placement the spin takes nothing from the
			// server; on a shared core the server's wake-up preempts it.
			// Measured: +5-10% req/s against both latlab serve and
			// nginx (bench/compare-http.sh).
			wait = 0
		}
		n, err := epollWaitNs(th.epfd, th.events, wait, r.paced)
		if n > 0 {
			lastEv = now
		}
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for i := 0; i < n; i++ {
			ev := &th.events[i]
			if c := th.conns[ev.Fd]; c.gen == ev.Pad && c.fd >= 0 {
				// (An event for a connection closed earlier in this batch
				// must not touch its successor.)
				th.event(c, ev.Events)
			}
		}
		// Send the batch's next requests together after reading all its
		// responses, in wrk's order (wrk writes on the following EPOLLOUT
		// round): reads and writes do not interleave, and the server can
		// find several requests per wake-up.
		if len(th.due) > 0 {
			now = sockio.Nanotime()
			for _, c := range th.due {
				if c.state == hsIdle && c.fd >= 0 {
					th.send(c, now)
				}
			}
			th.due = th.due[:0]
		}
	}
}

// timers handles what is due at now — open-loop sends, timeouts, connect
// retries — and sets th.wake to the next due time.
func (th *httpThread) timers(now int64) {
	r := th.r
	th.wake = r.end
	for _, c := range th.conns {
		switch c.state {
		case hsConnecting, hsWriting, hsReading, hsClosing:
			if now >= c.deadline {
				if c.state == hsClosing {
					// The response was complete; only the FIN is late.
					th.drop(c)
					th.reopen(c, now)
				} else {
					th.fail(c, &th.errs.Timeout, now)
				}
				continue
			}
			th.arm(c.deadline)
		case hsBackoff:
			if now >= c.retryAt {
				if th.cfg.NoKeepAlive {
					c.state = hsClosed
					if !r.paced {
						th.send(c, now)
					}
				} else {
					th.reopen(c, now)
				}
				continue
			}
			th.arm(c.retryAt)
		}
		if r.paced {
			th.pace(c, now)
		}
	}
}

// pace sends c's next scheduled request when it is due and the connection
// is free.
func (th *httpThread) pace(c *hconn, now int64) {
	r := th.r
	if c.pending || !(c.state == hsIdle || c.state == hsClosed) {
		return
	}
	if c.next > now {
		th.arm(c.next)
		return
	}
	t := c.next
	if t >= r.end {
		return
	}
	c.next += r.period
	if behind := now - t; behind > r.lateAfter && t >= r.measure {
		r.late++
		r.maxBehind = max(r.maxBehind, behind)
	}
	th.send(c, t)
	if c.state == hsIdle || c.state == hsClosed {
		th.arm(c.next)
	}
}

func (th *httpThread) event(c *hconn, ev uint32) {
	switch c.state {
	case hsConnecting:
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		now := sockio.Nanotime()
		if err := soError(c.fd); err != nil {
			th.countErr(&th.errs.Connect, now)
			th.drop(c)
			c.state = hsBackoff
			c.retryAt = now + int64(connectBackoff)
			c.pending = false
			th.arm(c.retryAt)
			return
		}
		c.state = hsIdle
		th.setOut(c, false)
		if c.pending {
			t0 := c.start
			if t0 == 0 {
				t0 = now
			}
			th.send(c, t0)
		} else if th.r.paced {
			th.pace(c, now)
		}
	case hsWriting:
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			th.write(c)
		}
		if c.state == hsReading && ev&unix.EPOLLIN != 0 {
			th.read(c)
		}
	case hsReading, hsClosing, hsIdle:
		th.read(c)
	}
}

// read takes what the socket has and advances the parser.
func (th *httpThread) read(c *hconn) {
	if c.w == len(c.buf) {
		if c.r == 0 {
			th.fail(c, &th.errs.Parse, sockio.Nanotime()) // header larger than the buffer
			return
		}
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	n, err := sockio.RawRead(c.fd, c.buf[c.w:])
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	now := sockio.Nanotime()
	if err != nil || n == 0 {
		switch {
		case c.state == hsClosing && err == nil:
			// The server's FIN after a Connection: close response.
			th.drop(c)
			th.reopen(c, now)
		case c.state == hsReading && c.ps == psUntilClose && err == nil:
			th.complete(c, now)
		case c.state == hsIdle || c.state == hsClosing:
			// The server closed an idle keep-alive connection.
			th.drop(c)
			th.reopen(c, now)
		default:
			th.fail(c, &th.errs.Read, now)
		}
		return
	}
	c.w += n
	if c.state != hsReading {
		// Bytes nobody asked for.
		th.fail(c, &th.errs.Parse, now)
		return
	}
	done, ok := th.parse(c)
	if !ok {
		th.fail(c, &th.errs.Parse, now)
		return
	}
	if done {
		if c.r != c.w {
			th.fail(c, &th.errs.Parse, now) // bytes after the response (we never pipeline)
			return
		}
		th.complete(c, now)
	}
}

// complete accounts a finished response and starts the connection's next
// request (closed loop) or waits for the schedule (open loop).
func (th *httpThread) complete(c *hconn, now int64) {
	if now < th.r.end {
		th.r.record(now, now-c.start)
	}
	if now >= th.r.measure && now < th.r.end {
		if c.status >= 0 && c.status < len(th.codes) {
			th.codes[c.status]++
		}
		if c.status < 200 || c.status > 299 {
			th.errs.Status++
		}
	}
	c.r, c.w = 0, 0
	switch {
	case th.cfg.NoKeepAlive || (!c.keepAlive && c.ps != psUntilClose):
		// Let the server close first, so TIME_WAIT stays on its side.
		c.state = hsClosing
		c.deadline = now + th.timeout
		th.arm(c.deadline)
	case c.ps == psUntilClose:
		th.drop(c)
		th.reopen(c, now)
	default:
		c.state = hsIdle
		if !th.r.paced {
			// Closed loop: the next request goes out after this epoll
			// batch, with the other connections' (see run).
			th.due = append(th.due, c)
		} else {
			th.pace(c, now)
		}
	}
}

// parse advances the response parser over c.buf[c.r:c.w]. It returns done
// when the response is complete, ok=false on malformed input.
func (th *httpThread) parse(c *hconn) (done, ok bool) {
	for {
		b := c.buf[c.r:c.w]
		switch c.ps {
		case psHead:
			end := wire.IndexCRLFCRLF(b)
			if end < 0 {
				return false, len(b) < httpMaxHeadSize
			}
			if end+4 > httpMaxHeadSize {
				return false, false
			}
			if !th.parseHead(c, b[:end]) {
				return false, false
			}
			c.r += end + 4
			if c.status >= 100 && c.status < 200 {
				c.ps = psHead // 100 Continue and friends: the real response follows
				continue
			}
		case psBody:
			k := min(int64(len(b)), c.remain)
			c.r += int(k)
			c.remain -= k
			if c.remain > 0 {
				return false, true
			}
			return true, true
		case psUntilClose:
			c.r = c.w
			return false, true
		case psChunkSize:
			// The limit is on the line, wherever TCP cut it.
			i := wire.IndexCRLF(b)
			if i < 0 {
				return false, len(b) <= httpMaxChunkLine // a line of max-1 bytes may have its CR but not yet its LF
			}
			if i >= httpMaxChunkLine {
				return false, false
			}
			size, ok := wire.ParseHexSize(b[:i])
			if !ok {
				return false, false
			}
			c.r += i + 2
			if size == 0 {
				c.ps = psTrailer
			} else {
				c.remain = size
				c.ps = psChunkData
			}
		case psChunkData:
			k := min(int64(len(b)), c.remain)
			c.r += int(k)
			c.remain -= k
			if c.remain > 0 {
				return false, true
			}
			c.ps = psChunkCRLF
		case psChunkCRLF:
			if len(b) < 2 {
				return false, true
			}
			if b[0] != '\r' || b[1] != '\n' {
				return false, false
			}
			c.r += 2
			c.ps = psChunkSize
		case psTrailer:
			i := wire.IndexCRLF(b)
			if i < 0 {
				return false, len(b) <= httpMaxTrailerLine
			}
			if i >= httpMaxTrailerLine {
				return false, false
			}
			c.r += i + 2
			if i == 0 {
				return true, true
			}
		}
	}
}

// parseHead reads the status line and the framing headers of head (without
// the final CRLFCRLF) and sets the body state.
func (th *httpThread) parseHead(c *hconn, head []byte) bool {
	line, rest := head, []byte(nil)
	if i := wire.IndexCRLF(head); i >= 0 {
		line, rest = head[:i], head[i+2:]
	}
	// HTTP/1.x SSS[ reason]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return false
	}
	st := 0
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return false
		}
		st = st*10 + int(d-'0')
	}
	if st < 100 {
		return false
	}
	c.status = st
	c.keepAlive = line[7] == '1'
	cl, chunked := int64(-1), false
	for len(rest) > 0 {
		var h []byte
		if i := wire.IndexCRLF(rest); i >= 0 {
			h, rest = rest[:i], rest[i+2:]
		} else {
			h, rest = rest, nil
		}
		colon := -1
		for i, ch := range h {
			if ch == ':' {
				colon = i
				break
			}
		}
		if colon <= 0 {
			return false
		}
		name, val := h[:colon], wire.TrimOWS(h[colon+1:])
		switch {
		case wire.ASCIIEqualFold(name, "content-length"):
			v, ok := wire.ParseDec(val)
			if !ok || (cl >= 0 && cl != v) {
				return false
			}
			cl = v
		case wire.ASCIIEqualFold(name, "transfer-encoding"):
			if !wire.ASCIIHasSuffixFold(val, "chunked") {
				return false // other codings cannot be framed
			}
			chunked = true
		case wire.ASCIIEqualFold(name, "connection"):
			if wire.ASCIIContainsFold(val, "close") {
				c.keepAlive = false
			} else if wire.ASCIIContainsFold(val, "keep-alive") {
				c.keepAlive = true
			}
		}
	}
	switch {
	case th.head || st == 204 || st == 304 || st < 200:
		c.ps, c.remain = psBody, 0
	case chunked:
		c.ps = psChunkSize
	case cl >= 0:
		c.ps, c.remain = psBody, cl
	default:
		c.ps = psUntilClose
		c.keepAlive = false
	}
	return true
}

var epollPwait2Missing atomic.Bool

// epollWaitNs waits up to ns nanoseconds: epoll_pwait2 (Linux 5.11+) for
// sub-millisecond open-loop timing, epoll_wait (rounded up to 1ms) before.
// A poll (ns == 0) skips the runtime's syscall bookkeeping, as sockio.RawRead
// does, and so does a wait with raw set. Other waits go through it, so
// that the thread's P serves other goroutines meanwhile (a server in the
// same process, in tests and in the lab, would otherwise starve for up to
// the wait). Open loop waits raw: its latency is measured across the
// wake-up, and in a 14-round A/B against wrk on the same schedule (nginx,
// 1000 req/s) its p99 came out 1.18x wrk's through the runtime and 1.06x
// raw; runHTTP keeps a spare P for everything else.
func epollWaitNs(epfd int, events []unix.EpollEvent, ns int64, raw bool) (int, error) {
	if ns < 0 {
		ns = 0
	}
	if !epollPwait2Missing.Load() {
		ts := unix.NsecToTimespec(ns)
		var n uintptr
		var e unix.Errno
		if ns == 0 || raw {
			n, _, e = unix.RawSyscall6(unix.SYS_EPOLL_PWAIT2, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
				uintptr(len(events)), uintptr(unsafe.Pointer(&ts)), 0, 0)
		} else {
			n, _, e = unix.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
				uintptr(len(events)), uintptr(unsafe.Pointer(&ts)), 0, 0)
		}
		if e == 0 {
			return int(n), nil
		}
		if e != unix.ENOSYS {
			return 0, e
		}
		epollPwait2Missing.Store(true)
	}
	return unix.EpollWait(epfd, events, int((ns+999999)/1000000))
}
