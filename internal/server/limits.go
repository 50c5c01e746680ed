package server

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/latlab/latlab/internal/wire"
)

// Server limits. A server accepts every client that reaches it (it listens
// on all addresses by default, as netserver does), so each resource a
// client can make it hold is bounded twice: in total, and per peer address,
// so that one client cannot take from the others what it cannot take in
// total. docs/security.md states them; `latlab serve --help` names the flags.
const (
	DefaultMaxSessions        = 64
	DefaultMaxPeerSessions    = 16
	DefaultMaxFlows           = 1024                 // locked OS threads for data flows
	DefaultMaxPeerFlows       = 256                  // a quarter: one address cannot exhaust what others need
	DefaultMaxBuffer          = wire.MaxStreamBuffer // largest request, response or stream buffer a session may ask for
	DefaultMaxMemory          = 256 << 20            // all sessions' buffers
	DefaultMaxSessionTime     = time.Hour            // warm-up + duration of one session
	DefaultMaxPending         = 1024
	DefaultMaxPeerPending     = 256
	DefaultMaxHTTPConns       = 4096
	DefaultMaxPeerHTTPConns   = 1024
	DefaultHTTPIdleTimeout    = 15 * time.Second
	DefaultHTTPHeadTimeout    = 10 * time.Second
	DefaultHTTPRequestTimeout = 30 * time.Second // head, body, delay and response of one request together
	httpLightConns            = 4                // a client holding fewer HTTP connections may use the reserved last quarter
	httpLinger                = time.Second      // how long a refused HTTP connection is drained before it is closed
	httpLingerMax             = 256 << 10        // and how many bytes at most
	handshakeWait             = 5 * time.Second  // how long a server waits for a header (Config.HandshakeTimeout)
	DefaultUDPForeignReply    = 1                // reply ≤ this × request size to a datagram peer other than the session's
	maxThreadsHeadroom        = 2048
	runtimeThreadLimit        = 10000 // runtime/debug.SetMaxThreads default
	crrSlack                  = 8     // concurrent crr transactions per session beyond its flows
	udpFlowBuffer             = 65536 // receive buffer of one udp_rr server flow
	crrTxnBuffer              = 16 << 10
	rrReadChunk               = 64 << 10 // a tcp_rr server flow reads (and discards) requests in chunks of this
	pressureIdleTimeout       = time.Second
	quickHeader               = 200 * time.Millisecond // a header sent this soon needs no header-wait slot
	pressureHTTPConnsPercent  = 75
)

// sessionCost is what a session holds while it runs: flows (each a locked
// OS thread, except tcp_crr's transactions) and buffer bytes.
type sessionCost struct {
	flows  int
	memory int64
}

// costOf computes a session's cost from its Hello, before anything is
// allocated.
func costOf(h wire.Hello) sessionCost {
	f := int64(h.Flows)
	c := sessionCost{flows: int(h.Flows)}
	switch h.Workload {
	case wire.TCPRR:
		c.memory = f*int64(min(h.ReqSize, rrReadChunk)) + int64(h.RespSize)
	case wire.TCPStream:
		if h.Reverse {
			c.memory = int64(h.RespSize)
		} else {
			c.memory = f * int64(h.ReqSize)
		}
	case wire.UDPRR:
		c.memory = f * (udpFlowBuffer + int64(h.RespSize))
	case wire.TCPCRR:
		c.memory = int64(h.RespSize) + (f+crrSlack)*crrTxnBuffer
	}
	return c
}

// peerOf is the client a limit is counted against: the IP without port,
// zone or IPv4-in-IPv6 mapping, and for IPv6 its /64 (the smallest prefix
// a site is given: one host may use every address in it, so counting /128s
// let a single client multiply every per-client limit).
func peerOf(ap netip.AddrPort) netip.Addr {
	a := addrOf(ap)
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// addrOf is ap's IP without port, zone or IPv4-in-IPv6 mapping.
func addrOf(ap netip.AddrPort) netip.Addr { return ap.Addr().Unmap().WithZone("") }

// peerName names the client p (a peerOf) in messages.
func peerName(p netip.Addr) string {
	if p.Is6() {
		return p.String() + "/64"
	}
	return p.String()
}

// peerUse is one peer's share of the server.
type peerUse struct {
	sessions, flows int
	memory          int64
	pending         int
	http            int
}

func (u peerUse) zero() bool {
	return u.sessions == 0 && u.flows == 0 && u.memory == 0 && u.pending == 0 && u.http == 0
}

// admission is the server's account of what every peer holds. All methods
// are safe for concurrent use.
type admission struct {
	cfg *Config

	mu    sync.Mutex
	total peerUse
	peers map[netip.Addr]peerUse
}

func newAdmission(cfg *Config) *admission {
	return &admission{cfg: cfg, peers: map[netip.Addr]peerUse{}}
}

func (a *admission) update(p netip.Addr, fn func(*peerUse)) {
	u := a.peers[p]
	fn(&u)
	if u.zero() {
		delete(a.peers, p)
	} else {
		a.peers[p] = u
	}
}

// admitSession reserves c for a session from peer p, or says which limit
// refuses it.
func (a *admission) admitSession(p netip.Addr, c sessionCost) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.peers[p]
	cfg := a.cfg
	switch {
	case a.total.sessions+1 > cfg.MaxSessions:
		return fmt.Errorf("server has %d sessions running (its limit, --max-sessions)", a.total.sessions)
	case u.sessions+1 > cfg.MaxPeerSessions:
		return fmt.Errorf("%s already runs %d sessions here (per-client limit, --max-peer-sessions)", peerName(p), u.sessions)
	case a.total.flows+c.flows > cfg.MaxFlows:
		return fmt.Errorf("%d flows would exceed the server's %d (%d in use; --max-flows)", c.flows, cfg.MaxFlows, a.total.flows)
	case u.flows+c.flows > cfg.MaxPeerFlows:
		return fmt.Errorf("%d flows would exceed the %d one client may hold (%s holds %d; --max-peer-flows)", c.flows, cfg.MaxPeerFlows, peerName(p), u.flows)
	case a.total.memory+c.memory > cfg.MaxMemory:
		return fmt.Errorf("the session needs %s of buffers; the server has %s of its %s left (--max-memory)",
			fmtBytes(c.memory), fmtBytes(cfg.MaxMemory-a.total.memory), fmtBytes(cfg.MaxMemory))
	case u.memory+c.memory > cfg.MaxMemory/4:
		return fmt.Errorf("the session needs %s of buffers; one client may hold at most %s (a quarter of --max-memory) and %s holds %s",
			fmtBytes(c.memory), fmtBytes(cfg.MaxMemory/4), peerName(p), fmtBytes(u.memory))
	}
	add := func(x *peerUse) { x.sessions++; x.flows += c.flows; x.memory += c.memory }
	add(&a.total)
	a.update(p, add)
	return nil
}

// releaseSession returns what admitSession reserved.
func (a *admission) releaseSession(p netip.Addr, c sessionCost) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sub := func(x *peerUse) { x.sessions--; x.flows -= c.flows; x.memory -= c.memory }
	sub(&a.total)
	a.update(p, sub)
}

// admitPending reserves a header-wait slot for a new connection from p and
// returns how long it may take to send its header: the full handshake
// timeout, shortened for a peer that already holds many slots, so slots a
// client hoards expire quickly.
func (a *admission) admitPending(p netip.Addr) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.peers[p]
	if a.total.pending >= a.cfg.MaxPending || u.pending >= a.cfg.MaxPeerPending {
		return 0, false
	}
	a.total.pending++
	a.update(p, func(x *peerUse) { x.pending++ })
	wait := a.cfg.HandshakeTimeout
	if u.pending >= 16 {
		wait = max(wait/5, 200*time.Millisecond)
	}
	return wait, true
}

func (a *admission) releasePending(p netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total.pending--
	a.update(p, func(x *peerUse) { x.pending-- })
}

// admitHTTP reserves an HTTP connection for p.
func (a *admission) admitHTTP(p netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.peers[p]
	switch {
	case a.total.http >= a.cfg.MaxHTTPConns:
		return fmt.Errorf("server holds %d HTTP connections (--max-http-conns)", a.total.http)
	case u.http >= a.cfg.MaxPeerHTTPConns:
		return fmt.Errorf("%s holds %d HTTP connections (per-client limit, --max-peer-http-conns)", peerName(p), u.http)
	case u.http >= httpLightConns && a.total.http >= a.cfg.MaxHTTPConns-a.cfg.MaxHTTPConns/4:
		// The last quarter is kept for clients holding few connections:
		// a few addresses refilling every slot they free cannot lock
		// everyone else out, however fast they refill.
		return fmt.Errorf("server holds %d of its %d HTTP connections; the last quarter is kept for clients holding fewer than %d and %s holds %d (--max-http-conns)",
			a.total.http, a.cfg.MaxHTTPConns, httpLightConns, peerName(p), u.http)
	}
	a.total.http++
	a.update(p, func(x *peerUse) { x.http++ })
	return nil
}

func (a *admission) releaseHTTP(p netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total.http--
	a.update(p, func(x *peerUse) { x.http-- })
}

// httpIdle is how long an idle keep-alive connection stays open: the
// configured timeout, or pressureIdleTimeout while the server holds more
// than pressureHTTPConnsPercent of its HTTP connection limit.
func (a *admission) httpIdle() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.total.http*100 > a.cfg.MaxHTTPConns*pressureHTTPConnsPercent {
		return min(pressureIdleTimeout, a.cfg.HTTPIdleTimeout)
	}
	return a.cfg.HTTPIdleTimeout
}

// usage returns the totals (for tests and logs).
func (a *admission) usage() peerUse {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// rateLimitedLog logs at most burst messages per reason per window and
// then one line saying how many it suppressed, so a flood of refused
// connections cannot flood the log (or the disk behind it).
type rateLimitedLog struct {
	log    *slog.Logger
	window time.Duration
	burst  int
	now    func() time.Time

	mu      sync.Mutex
	reasons map[string]*logBucket
}

type logBucket struct {
	start      time.Time
	n          int
	suppressed int
}

func newRateLimitedLog(log *slog.Logger, now func() time.Time) *rateLimitedLog {
	return &rateLimitedLog{log: log, window: 10 * time.Second, burst: 10, now: now, reasons: map[string]*logBucket{}}
}

// Warn logs msg with args unless reason has used its burst in this window.
func (r *rateLimitedLog) Warn(reason, msg string, args ...any) {
	r.mu.Lock()
	t := r.now()
	b := r.reasons[reason]
	if b == nil {
		if len(r.reasons) > 1024 { // reasons are fixed strings; a bound all the same
			clear(r.reasons)
		}
		b = &logBucket{start: t}
		r.reasons[reason] = b
	}
	var flushed int
	if t.Sub(b.start) >= r.window {
		flushed = b.suppressed
		b.start, b.n, b.suppressed = t, 0, 0
	}
	b.n++
	ok := b.n <= r.burst
	if !ok {
		b.suppressed++
	}
	r.mu.Unlock()
	if flushed > 0 {
		r.log.Warn("suppressed similar messages", "reason", reason, "count", flushed, "window", r.window)
	}
	if ok {
		r.log.Warn(msg, append([]any{"reason", reason}, args...)...)
	}
}

// What one connection or flow costs beyond the budgeted buffers, for the
// RSS bound below. Computed from what each kind can hold, not measured on
// a friendly load (issue 37: a connection that pipelines and never reads
// holds far more than the 24 KiB once assumed):
//
//   - an HTTP connection in the event loop: its 16 KiB head buffer and
//     its pending responses (the out buffer, never grown past
//     httpLoopMaxOut = 64 KiB, one response included); on the serveHTTP
//     path a copy of the buffered bytes (≤ 16 KiB), its own head buffer,
//     a 4 KiB response buffer and two goroutine stacks. 32 KiB on top for
//     the runtime's bookkeeping and garbage not yet collected.
//   - a connection before its header (4 × MaxPending of them can wait),
//     and a refused HTTP connection being drained (MaxPending at most): a
//     goroutine with its stack and its header or drain buffer.
//   - a flow: its locked thread's touched stack and state.
//
// TestServerHTTPMemoryWorstCase drives the HTTP worst case and checks the
// process's RSS against it.
const (
	// httpMaxRequestHead is the largest request head (431 beyond).
	httpMaxRequestHead = 16 << 10
	// httpLoopMaxOut bounds a connection's unwritten responses in the
	// event loop (the out buffer never grows past it): pipelined requests
	// past it wait until the client reads.
	httpLoopMaxOut = 64 << 10

	httpConnRSS   = httpMaxRequestHead + httpLoopMaxOut + 32<<10
	pendingRSS    = 16 << 10
	flowRSS       = 64 << 10
	serverBaseRSS = 64 << 20
)

// RSSBound is the resident memory a server with cfg's limits stays
// under, whatever its clients do: the buffer budget plus the fixed cost of
// every connection and flow the limits admit. docs/security.md states it.
func RSSBound(cfg Config) int64 {
	cfg.defaults()
	return cfg.MaxMemory + int64(cfg.MaxHTTPConns)*httpConnRSS + (4+1)*int64(cfg.MaxPending)*pendingRSS +
		int64(cfg.MaxFlows)*flowRSS + serverBaseRSS
}
