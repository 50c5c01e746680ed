package server

import (
	"context"
	"crypto/rand"
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
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/netns"
	"github.com/latlab/latlab/internal/sockio"
	"github.com/latlab/latlab/internal/wire"
)

// Server answers every latlab workload on one port. Create it with
// New, run it with Serve.
type Server struct {
	cfg     Config
	ln      *net.TCPListener
	udp     *net.UDPConn
	udpFam  int
	udpAddr unix.Sockaddr
	allowed []int

	mu       sync.Mutex
	sessions map[uint64]*session

	adm       *admission            // what each client holds: sessions, flows, buffers, connections
	inflight  atomic.Int64          // connections whose header has not been read yet
	lingering atomic.Int64          // refused HTTP connections being drained (httpError)
	conns     map[net.Conn]struct{} // (under mu) connections handleConn holds: closed when the server stops
	rlog      *rateLimitedLog       // refusals, rate-limited per reason
	wg        sync.WaitGroup

	httpOnce sync.Once
	hloop    *httpLoop // nil if it could not start: serveHTTP per connection
	done     chan struct{}
	once     sync.Once
}

// session is the server's state for one client run.
type session struct {
	id       uint64
	hello    wire.Hello
	peer     string
	peerIP   netip.Addr // the client the session's limits are counted against (peerOf)
	ctlIP    netip.Addr // the control connection's address: UDP replies to any other are bounded
	deadline time.Time
	cpus     []int // server CPU per flow, -1 = unpinned
	resp     []byte
	stop     atomic.Bool
	crr      atomic.Int32 // tcp_crr transactions in progress

	mu       sync.Mutex
	attached []bool
	seen     uint32
	flows    sync.WaitGroup
	fds      map[int]struct{} // the running flows' sockets: end shuts them down

	cpuTime atomic.Int64
	bytes   atomic.Uint64
	txns    atomic.Uint64
	proc0   time.Duration
}

// pollInterval is how often a server flow blocked in a read or write looks
// at its session's stop flag.
const pollInterval = 100 * time.Millisecond

// maxStalls bounds how long a server flow waits for a peer in the middle of
// a message: maxStalls × pollInterval.
const maxStalls = 100

// New binds the TCP and UDP sockets (inside cfg.NetNS, if set).
func New(cfg Config) (*Server, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("server limits: %w", err)
	}
	allowed, err := sockio.AllowedCPUs()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		allowed:  allowed,
		sessions: make(map[uint64]*session),
		conns:    make(map[net.Conn]struct{}),
		done:     make(chan struct{}),
	}
	s.adm = newAdmission(&s.cfg)
	s.rlog = newRateLimitedLog(cfg.Logger, cfg.Now)
	if err := netns.Do(cfg.NetNS, s.listen); err != nil {
		return nil, err
	}
	return s, nil
}

func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// listen binds TCP and UDP to the same port. With port 0 it retries until
// it finds a port free for both.
func (s *Server) listen() error {
	host, port, err := net.SplitHostPort(s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", s.cfg.Listen, err)
	}
	tries := 1
	if port == "0" {
		tries = 32
	}
	var lastErr error
	for i := 0; i < tries; i++ {
		ln, err := net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen tcp %s: %w", s.cfg.Listen, err)
		}
		tcpPort := ln.Addr().(*net.TCPAddr).Port
		lc := net.ListenConfig{Control: reusePort}
		pc, err := lc.ListenPacket(context.Background(), "udp", net.JoinHostPort(host, fmt.Sprint(tcpPort)))
		if err != nil {
			ln.Close()
			lastErr = fmt.Errorf("listen udp %s: %w", net.JoinHostPort(host, fmt.Sprint(tcpPort)), err)
			continue
		}
		s.ln = ln.(*net.TCPListener)
		s.udp = pc.(*net.UDPConn)
		rc, err := s.udp.SyscallConn()
		if err != nil {
			s.closeSockets()
			return fmt.Errorf("udp socket: %w", err)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			s.udpAddr, serr = unix.Getsockname(int(fd))
			if serr == nil {
				s.udpFam, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
			}
		}); err != nil || serr != nil {
			s.closeSockets()
			return fmt.Errorf("inspect udp socket: %w", errors.Join(err, serr))
		}
		return nil
	}
	return lastErr
}

func (s *Server) closeSockets() {
	if s.ln != nil {
		s.ln.Close()
	}
	if s.udp != nil {
		s.udp.Close()
	}
}

// Addr is the address the server listens on (TCP and UDP share the port).
func (s *Server) Addr() netip.AddrPort {
	return s.ln.Addr().(*net.TCPAddr).AddrPort()
}

// httpLoop returns the HTTP event loop, started on first use.
func (s *Server) httpLoop() *httpLoop {
	s.httpOnce.Do(func() {
		l, err := newHTTPLoop(s)
		if err != nil {
			s.cfg.Logger.Warn("http event loop unavailable; serving http with a goroutine per connection", "err", err)
			return
		}
		s.hloop = l
	})
	return s.hloop
}

// Close stops the server; Serve returns once sessions have wound down.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.closeSockets()
		// Whatever clients do, nothing outlives the server by more than a
		// system call: connections still in handleConn are closed, and
		// every session's flow sockets shut down.
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		for _, ss := range s.sessions {
			ss.end()
		}
		s.mu.Unlock()
	})
	return nil
}

// track registers c, which handleConn holds until it returns, so Close can
// close it; false once the server has stopped.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return false
	default:
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Serve answers clients until ctx is cancelled or Close is called.
func (s *Server) Serve(ctx context.Context) error {
	s.cfg.Logger.Info("serving", "addr", s.Addr().String(), "allowed_cpus", s.allowed)
	// At least two Ps, even in a one-CPU cpuset (where the runtime starts
	// with GOMAXPROCS=1): a flow thread blocked in read(2) keeps its P in
	// the syscall state, and with no P idle sysmon takes it away after
	// 20µs and wakes another runtime thread to hold it, on that same CPU,
	// once per round trip that waits that long. With a P idle it leaves
	// the waiting P alone. (Process-wide, restored when Serve returns.)
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-s.done:
		}
		s.Close()
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.udpLoop()
	}()
	var acceptErr error
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
			default:
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					continue
				}
				if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
					s.cfg.Logger.Warn("accept: out of file descriptors, backing off", "err", err)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				acceptErr = fmt.Errorf("accept: %w", err)
				s.Close()
			}
			break
		}
		if s.inflight.Add(1) > int64(s.cfg.MaxPending)*4 {
			s.inflight.Add(-1)
			s.rlog.Warn("too many connections awaiting their header", "closed connection", "peer", c.RemoteAddr().String())
			c.Close()
			continue
		}
		peer := peerOf(c.RemoteAddr().(*net.TCPAddr).AddrPort())
		if !s.track(c) {
			s.inflight.Add(-1)
			c.Close()
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.handleConn(c, peer)
		}()
	}
	s.Close() // ends every session and closes what handleConn holds
	s.wg.Wait()
	return acceptErr
}

func (s *Server) refuse(c net.Conn, reason string, args ...any) {
	s.rlog.Warn(reason, "closed connection", append([]any{"peer", c.RemoteAddr().String()}, args...)...)
	c.Close()
}

// handleConn reads a connection's header and dispatches it.
//
// A client that sends its header within quickHeader (every latlab client
// and HTTP client writes at once after connecting) never waits for a slot,
// so a burst of a thousand connections from one address is served. A
// connection still silent after quickHeader takes one of peer's
// header-wait slots (MaxPeerPending of them, MaxPending in all) for the
// rest of its handshake timeout, or is closed: idle connections cannot
// crowd out other clients.
func (s *Server) handleConn(c net.Conn, peer netip.Addr) {
	released, slot := false, false
	release := func() {
		if !released {
			released = true
			s.inflight.Add(-1)
			if slot {
				s.adm.releasePending(peer)
			}
		}
	}
	defer release()
	start := time.Now()
	c.SetReadDeadline(start.Add(min(quickHeader, s.cfg.HandshakeTimeout)))
	hdr := make([]byte, wire.HelloLen)
	n, err := io.ReadFull(c, hdr[:8])
	if ne, ok := err.(net.Error); ok && ne.Timeout() && quickHeader < s.cfg.HandshakeTimeout {
		wait, ok := s.adm.admitPending(peer)
		if !ok {
			s.refuse(c, "too many connections awaiting their header")
			return
		}
		slot = true
		c.SetReadDeadline(start.Add(wait))
		_, err = io.ReadFull(c, hdr[n:8])
	}
	if err != nil {
		s.refuse(c, "no header", "err", err)
		return
	}
	if string(hdr[:4]) != wire.Magic && isHTTPMethod(hdr[:8]) {
		release()
		if err := s.adm.admitHTTP(peer); err != nil {
			s.httpError(c, 503, "too many connections")
			s.refuse(c, "http connection limit", "err", err)
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			if l := s.httpLoop(); l != nil {
				l.add(tc, hdr[:8], peer) // http_loop_linux.go
				return
			}
		}
		defer s.adm.releaseHTTP(peer)
		s.serveHTTP(c, hdr[:8], nil) // http_linux.go
		return
	}
	if string(hdr[:4]) != wire.Magic {
		s.refuse(c, "not a latlab client (bad magic)", "got", fmt.Sprintf("%q", hdr[:4]))
		return
	}
	switch hdr[6] {
	case wire.KindHello:
		if _, err := io.ReadFull(c, hdr[8:wire.HelloLen]); err != nil {
			s.refuse(c, "short hello", "err", err)
			return
		}
		h, status, err := wire.DecodeHello(hdr)
		if err == nil {
			if err = s.checkLimits(h); err != nil {
				status = wire.StatusBadRequest
			}
		}
		if err != nil {
			rep := wire.HelloReply{Status: status, Message: err.Error()}
			b, _ := rep.MarshalBinary()
			c.SetWriteDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
			c.Write(b)
			s.refuse(c, "bad hello", "err", err)
			return
		}
		release()
		s.handleControl(c, h, peer)
	case wire.KindAttach, wire.KindCRR:
		if _, err := io.ReadFull(c, hdr[8:wire.AttachLen]); err != nil {
			s.refuse(c, "short attach", "err", err)
			return
		}
		a, err := wire.DecodeAttach(hdr[:wire.AttachLen])
		if err != nil {
			s.refuse(c, "bad attach", "err", err)
			return
		}
		ss := s.lookup(a.Session)
		if ss == nil {
			s.refuse(c, "attach to unknown session")
			return
		}
		if a.Kind == wire.KindCRR {
			if ss.hello.Workload != wire.TCPCRR || a.Flow >= uint32(ss.hello.Flows) {
				s.refuse(c, "crr transaction does not match its session", "session", ss.id)
				return
			}
			// A closed-loop client has at most one transaction per flow
			// open (plus a few the server has answered but not yet closed).
			if n := ss.crr.Add(1); n > int32(ss.hello.Flows)+crrSlack {
				ss.crr.Add(-1)
				s.refuse(c, "too many crr transactions open for the session's flows", "session", ss.id)
				return
			}
			defer ss.crr.Add(-1)
			release()
			s.serveCRR(c, ss)
			return
		}
		if ss.hello.Workload != wire.TCPRR && ss.hello.Workload != wire.TCPStream {
			s.refuse(c, "tcp data connection for a "+string(ss.hello.Workload)+" session")
			return
		}
		if err := ss.claim(a.Flow); err != nil {
			s.refuse(c, err.Error(), "session", ss.id)
			return
		}
		release()
		s.serveTCPFlow(c, ss, int(a.Flow))
	default:
		if v := binary.BigEndian.Uint16(hdr[4:]); v != wire.Version {
			s.refuse(c, "unsupported protocol version", "version", v, "want", wire.Version)
			return
		}
		s.refuse(c, "unknown message kind", "kind", hdr[6])
	}
}

func (s *Server) lookup(id uint64) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

func (ss *session) claim(flow uint32) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if flow >= uint32(len(ss.attached)) {
		return fmt.Errorf("flow %d outside session's %d flows", flow, len(ss.attached))
	}
	if ss.attached[flow] {
		return fmt.Errorf("flow %d attached twice", flow)
	}
	if ss.stop.Load() {
		return errors.New("session already ended")
	}
	ss.attached[flow] = true
	ss.seen++
	ss.flows.Add(1)
	return nil
}

func (ss *session) stopped() bool {
	return ss.stop.Load() || time.Now().After(ss.deadline)
}

// addFD registers a flow's socket, so that end can shut it down; false if
// the session has already ended (the flow must not start).
func (ss *session) addFD(fd int) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.stop.Load() {
		return false
	}
	ss.fds[fd] = struct{}{}
	return true
}

// closeFD unregisters fd and closes it. Unregistered first, under mu, so
// end never shuts down a descriptor number the process has reused.
func (ss *session) closeFD(fd int) {
	ss.mu.Lock()
	delete(ss.fds, fd)
	ss.mu.Unlock()
	unix.Close(fd)
}

// end stops the session: every flow's socket is shut down, so a flow
// blocked in a read, a write or a poll returns at once, whatever its peer
// sends (a byte every 50 ms kept timeouts from ever firing), and no new
// flow starts.
func (ss *session) end() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.stop.Store(true)
	for fd := range ss.fds {
		unix.Shutdown(fd, unix.SHUT_RDWR)
	}
}

func (s *Server) cpuFor(h wire.Hello, flow int) int {
	switch {
	case h.ServerCPU == wire.CPUNone:
		return -1
	case h.ServerCPU >= 0:
		return int(h.ServerCPU)
	}
	return s.allowed[flow%len(s.allowed)]
}

// handleControl runs one session's control connection: reply to the Hello,
// wait for End, report the server's account.
func (s *Server) handleControl(c net.Conn, h wire.Hello, peer netip.Addr) {
	defer c.Close()
	reply := func(r wire.HelloReply) {
		b, _ := r.MarshalBinary()
		c.SetWriteDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
		c.Write(b)
	}
	if h.ServerCPU >= 0 && !slices.Contains(s.allowed, int(h.ServerCPU)) {
		msg := fmt.Sprintf("server CPU %d is not in the server's allowed set %v", h.ServerCPU, s.allowed)
		reply(wire.HelloReply{Status: wire.StatusBadRequest, Message: msg})
		s.cfg.Logger.Warn("refused session", "peer", c.RemoteAddr().String(), "reason", msg)
		return
	}
	// Admission first: nothing the session asks for is allocated before
	// the limits have accepted it.
	cost := costOf(h)
	if err := s.adm.admitSession(peer, cost); err != nil {
		reply(wire.HelloReply{Status: wire.StatusBusy, Message: err.Error()})
		s.rlog.Warn("session limit", "refused session", "peer", c.RemoteAddr().String(), "err", err)
		return
	}
	defer s.adm.releaseSession(peer, cost)
	var idb [8]byte
	rand.Read(idb[:])
	ss := &session{
		id:       binary.BigEndian.Uint64(idb[:]),
		hello:    h,
		peer:     c.RemoteAddr().String(),
		peerIP:   peer,
		ctlIP:    addrOf(c.RemoteAddr().(*net.TCPAddr).AddrPort()),
		deadline: time.Now().Add(h.Warmup + h.Duration + s.cfg.Grace),
		attached: make([]bool, h.Flows),
		fds:      make(map[int]struct{}, h.Flows),
		cpus:     make([]int, h.Flows),
		proc0:    processCPU(),
	}
	for i := range ss.cpus {
		ss.cpus[i] = s.cpuFor(h, i)
	}
	respSize := h.RespSize
	if h.Workload == wire.TCPStream && !h.Reverse {
		respSize = 0
	}
	ss.resp = make([]byte, respSize)
	s.mu.Lock()
	select {
	case <-s.done:
		ss.stop.Store(true) // Close has run: attaches are refused
	default:
	}
	s.sessions[ss.id] = ss
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ss.id)
		s.mu.Unlock()
	}()
	first := int32(ss.cpus[0])
	if first < 0 {
		first = wire.CPUNone
	}
	reply(wire.HelloReply{Status: wire.StatusOK, Session: ss.id, ServerCPU: first})
	log := s.cfg.Logger.With("session", fmt.Sprintf("%016x", ss.id), "peer", ss.peer)
	log.Info("session start", "workload", h.Workload, "flows", h.Flows, "req", h.ReqSize, "resp", h.RespSize,
		"warmup", h.Warmup, "duration", h.Duration, "server_cpu", ss.cpus[0])

	// Wait for End. The session's deadline is a hard cap (the control
	// connection's read deadline), and the server's own lifetime also ends
	// the session.
	c.SetReadDeadline(ss.deadline)
	endErr := make(chan error, 1)
	go func() {
		b := make([]byte, wire.EndLen)
		if _, err := io.ReadFull(c, b); err != nil {
			endErr <- err
			return
		}
		endErr <- wire.DecodeEnd(b)
	}()
	var err error
	select {
	case err = <-endErr:
	case <-s.done:
		err = errors.New("server shutting down")
		c.Close()
	}
	// Shut the flows' sockets down and wait until every flow has ended:
	// the deferred release gives back the session's flows and memory only
	// then, so a client cannot hold flows past its session and open the
	// next one.
	ss.end()
	waited := make(chan struct{})
	go func() { ss.flows.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(2 * time.Second):
		log.Warn("flows still running 2s after the session ended; waiting for them")
		<-waited
	}
	if err != nil {
		log.Warn("session aborted", "reason", err)
		return
	}
	rep := wire.EndReply{
		Status:    wire.StatusOK,
		CPUTime:   time.Duration(ss.cpuTime.Load()),
		Bytes:     ss.bytes.Load(),
		Txns:      ss.txns.Load(),
		FlowsSeen: ss.seen,
		ServerCPU: first,
	}
	if h.Workload == wire.TCPCRR {
		rep.CPUTime = processCPU() - ss.proc0
		rep.ProcessCPU = true
	}
	b, _ := rep.MarshalBinary()
	c.SetWriteDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	if _, err := c.Write(b); err != nil {
		log.Warn("send end reply", "err", err)
		return
	}
	log.Info("session end", "txns", rep.Txns, "bytes", rep.Bytes, "cpu", rep.CPUTime)
}

// serveCRR answers one tcp_crr transaction: read the request, send the
// response, close (the server closes first so TIME_WAIT stays on the
// server, not on the client's ephemeral ports).
func (s *Server) serveCRR(c net.Conn, ss *session) {
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	if _, err := io.CopyN(io.Discard, c, int64(ss.hello.ReqSize)); err != nil {
		s.cfg.Logger.Warn("crr transaction failed", "peer", c.RemoteAddr().String(), "err", err)
		return
	}
	if _, err := c.Write(ss.resp); err != nil {
		s.cfg.Logger.Warn("crr transaction failed", "peer", c.RemoteAddr().String(), "err", err)
		return
	}
	ss.txns.Add(1)
}

// serveTCPFlow takes the connection off the Go netpoller and serves it with
// blocking system calls on a pinned, locked OS thread.
func (s *Server) serveTCPFlow(c net.Conn, ss *session, flow int) {
	defer ss.flows.Done()
	fd, err := detach(c.(*net.TCPConn))
	if err != nil {
		s.cfg.Logger.Warn("take over data connection", "err", err)
		return
	}
	if !ss.addFD(fd) {
		unix.Close(fd)
		return
	}
	defer ss.closeFD(fd)
	// Go's net package turns Nagle off on every accepted connection; a
	// stream keeps it on, as iperf3 does, request/response turns it off.
	nodelay := 0
	if ss.hello.Workload == wire.TCPRR {
		nodelay = 1
	}
	if err := errors.Join(unix.SetNonblock(fd, false), sockio.SetTimeouts(fd, pollInterval, pollInterval),
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, nodelay)); err != nil {
		s.cfg.Logger.Warn("configure data connection", "err", err)
		return
	}
	// Pinning needs no namespace: the socket already exists.
	if err := sockio.LockThread("", ss.cpus[flow]); err != nil {
		s.cfg.Logger.Warn("pin flow", "err", err)
		return
	}
	cpu0 := sockio.ThreadCPU()
	switch {
	case ss.hello.Workload == wire.TCPRR:
		s.rrLoop(fd, ss)
	case ss.hello.Reverse:
		streamSend(fd, ss)
	default:
		streamRecv(fd, ss)
	}
	ss.cpuTime.Add(int64(sockio.ThreadCPU() - cpu0))
}

// detach takes a connection off the Go netpoller: it returns a duplicate of
// the connection's descriptor that is not registered with the runtime's
// epoll, and closes the connection (which removes the original from epoll).
// (*net.TCPConn).File would register its duplicate with epoll again (as a
// socket), edge-triggered for reads and writes, and File.Fd only makes it
// blocking: every segment queued to the socket would then also run the
// epoll callback, on the sending CPU on loopback, for nobody.
func detach(c *net.TCPConn) (int, error) {
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := rc.Control(func(s uintptr) {
		fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	})
	if cerr != nil {
		return -1, cerr
	}
	if err != nil {
		return -1, fmt.Errorf("dup: %w", err)
	}
	return fd, nil
}

func (s *Server) rrLoop(fd int, ss *session) {
	// The request is read and discarded in chunks: the server's buffer
	// does not grow with what the client asks for.
	req := make([]byte, min(ss.hello.ReqSize, rrReadChunk))
	size := int(ss.hello.ReqSize)
	var n uint64
	defer func() { ss.txns.Add(n) }()
	yieldAt := sockio.Nanotime() + sockio.YieldEvery
	for {
		// Reschedule now and then, as the client's flows do (see
		// recorder.yield): a flow that only ever blocks in read(2) has its
		// P taken every 10ms, and sysmon then polls every 20µs for a while.
		if now := sockio.Nanotime(); now >= yieldAt {
			runtime.Gosched()
			yieldAt = now + sockio.YieldEvery
		}
		err := sockio.ReadDiscard(fd, req, size, maxStalls)
		if err == sockio.ErrTimeout {
			if ss.stopped() {
				return
			}
			continue
		}
		if err != nil {
			if err != io.EOF && !ss.stop.Load() { // not the shutdown of end
				s.cfg.Logger.Warn("tcp_rr flow ended", "session", fmt.Sprintf("%016x", ss.id), "err", err)
			}
			return
		}
		if err := sockio.WriteFull(fd, ss.resp, maxStalls, false); err != nil {
			return
		}
		n++
	}
}

func streamRecv(fd int, ss *session) {
	buf := make([]byte, ss.hello.ReqSize)
	var total uint64
	defer func() { ss.bytes.Add(total) }()
	if err := unix.SetNonblock(fd, true); err != nil {
		return
	}
	for {
		n, err := sockio.RecvBurst(fd, buf, pollInterval, true)
		total += uint64(n)
		if err != nil {
			return // EOF or error
		}
		if n == 0 && ss.stopped() {
			return
		}
	}
}

// streamSend writes on the non-blocking socket while it takes data; when
// it is full (the client reads slower, or not at all) it waits in a poll
// that releases the thread's P, so a client that stops reading cannot hold
// up the goroutines serving other clients.
func streamSend(fd int, ss *session) {
	var total uint64
	defer func() { ss.bytes.Add(total) }()
	if err := unix.SetNonblock(fd, true); err != nil {
		return
	}
	for !ss.stopped() {
		n, err := sockio.RawWrite(fd, ss.resp)
		if n > 0 {
			total += uint64(n)
			continue
		}
		switch err {
		case unix.EINTR:
		case unix.EAGAIN:
			if sockio.PollFor(fd, unix.POLLOUT, pollInterval, true) != nil {
				return
			}
		default:
			return // the client closed: EPIPE or ECONNRESET
		}
	}
}

// udpLoop reads UDP attach datagrams on the shared socket and starts a flow
// for each new one.
func (s *Server) udpLoop() {
	buf := make([]byte, 2048)
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			s.cfg.Logger.Warn("udp read", "err", err)
			return
		}
		a, err := wire.DecodeAttach(buf[:n])
		if err != nil || a.Kind != wire.KindUDP {
			s.cfg.Logger.Debug("ignored udp datagram", "peer", from.String(), "len", n)
			continue
		}
		ss := s.lookup(a.Session)
		if ss == nil || ss.hello.Workload != wire.UDPRR {
			s.rlog.Warn("udp attach to unknown session", "ignored udp attach", "peer", from.String())
			continue
		}
		if err := ss.claim(a.Flow); err != nil {
			// A retransmitted attach that raced the flow's own socket.
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer ss.flows.Done()
			s.serveUDPFlow(ss, a, from)
		}()
	}
}

// serveUDPFlow answers one UDP flow from a socket connected to the client,
// sharing the server's port through SO_REUSEPORT (the kernel prefers the
// connected socket for that peer's datagrams).
func (s *Server) serveUDPFlow(ss *session, a wire.Attach, peer netip.AddrPort) {
	log := s.cfg.Logger.With("session", fmt.Sprintf("%016x", ss.id), "peer", peer.String())
	if err := sockio.LockThread(s.cfg.NetNS, ss.cpus[a.Flow]); err != nil {
		log.Warn("udp flow", "err", err)
		return
	}
	fd, err := sockio.Socket(s.udpFam, unix.SOCK_DGRAM)
	if err != nil {
		log.Warn("udp flow", "err", err)
		return
	}
	if !ss.addFD(fd) {
		unix.Close(fd)
		return
	}
	defer ss.closeFD(fd)
	if s.udpFam == unix.AF_INET6 {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		log.Warn("udp flow: set SO_REUSEPORT", "err", err)
		return
	}
	if err := unix.Bind(fd, s.udpAddr); err != nil {
		log.Warn("udp flow: bind", "err", err)
		return
	}
	if err := unix.Connect(fd, sockio.Sockaddr(peer, s.udpFam)); err != nil {
		log.Warn("udp flow: connect", "err", err)
		return
	}
	if err := sockio.SetTimeouts(fd, pollInterval, pollInterval); err != nil {
		log.Warn("udp flow", "err", err)
		return
	}
	ack := make([]byte, wire.AttachLen)
	a.Put(ack)
	if _, err := unix.Write(fd, ack); err != nil {
		log.Warn("udp flow: ack", "err", err)
		return
	}
	buf := make([]byte, udpFlowBuffer)
	resp := make([]byte, ss.hello.RespSize)
	// A datagram peer other than the address that opened the session over
	// TCP may be a spoofed victim: its replies are no larger than what it
	// sent (DefaultUDPForeignReply × the request), so the server cannot be
	// used to amplify traffic toward someone else.
	foreign := addrOf(peer) != ss.ctlIP
	if foreign {
		s.rlog.Warn("udp flow from another address than its session", "udp replies bounded by request size",
			"peer", peer.String(), "session_peer", ss.ctlIP.String())
	}
	cpu0 := sockio.ThreadCPU()
	var received, answered uint64
	drop := uint64(s.cfg.DropEvery)
	yieldAt := sockio.Nanotime() + sockio.YieldEvery
	for !ss.stopped() {
		if now := sockio.Nanotime(); now >= yieldAt { // see rrLoop
			runtime.Gosched()
			yieldAt = now + sockio.YieldEvery
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if err != unix.ECONNREFUSED {
				log.Warn("udp flow ended", "err", err)
			}
			break
		}
		if n >= wire.AttachLen && string(buf[:4]) == wire.Magic {
			unix.Write(fd, ack) // the client missed the first ack
			continue
		}
		if n < wire.MinUDPSize {
			continue
		}
		received++
		if drop > 0 && received%drop == 0 {
			continue
		}
		copy(resp[:wire.MinUDPSize], buf[:wire.MinUDPSize])
		out := resp
		if foreign && len(out) > n*DefaultUDPForeignReply {
			out = out[:n*DefaultUDPForeignReply]
		}
		if _, err := unix.Write(fd, out); err == nil {
			answered++
		}
	}
	ss.cpuTime.Add(int64(sockio.ThreadCPU() - cpu0))
	ss.txns.Add(answered)
}

// checkLimits refuses a Hello the server's own limits do not allow (the
// protocol's are checked by DecodeHello).
func (s *Server) checkLimits(h wire.Hello) error {
	buf := uint32(s.cfg.MaxBuffer)
	if h.ReqSize > buf || h.RespSize > buf {
		return fmt.Errorf("%w: request %d / response %d bytes: this server allows at most %d per buffer (serve --max-buffer)",
			wire.ErrProtocol, h.ReqSize, h.RespSize, buf)
	}
	if h.Warmup+h.Duration > s.cfg.MaxSessionTime {
		return fmt.Errorf("%w: warm-up %v + duration %v: this server allows sessions of at most %v (serve --max-session-time)",
			wire.ErrProtocol, h.Warmup, h.Duration, s.cfg.MaxSessionTime)
	}
	return nil
}
