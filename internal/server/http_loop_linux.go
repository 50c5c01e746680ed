package server

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/sockio"
	"github.com/latlab/latlab/internal/wire"
)

// httpLoop serves the plain requests of latlab serve's HTTP connections from
// one goroutine with one level-triggered epoll instance, as an nginx worker
// does: one read(2) and one write(2) per request (fewer when requests are
// pipelined), no goroutine switch, no deadline timer. Under a saturating
// client the goroutine-per-connection server spent ~6.2 µs of CPU per
// request and capped the closed-loop comparison with wrk (docs/design.md).
//
// A request that needs more than a fixed response — a body to discard, a
// delay, a response over httpLoopMaxBody, or an error reply — hands its
// connection back to a goroutine running serveHTTP, with the bytes read so
// far and any responses not yet written, in order.
type httpLoop struct {
	s    *Server
	epfd int
	evfd int // eventfd: written when the server stops

	mu    sync.Mutex // guards conns: add runs on the accepting goroutines
	conns map[int32]*loopConn
}

// loopConn is one connection owned by the loop.
type loopConn struct {
	fd      int
	peer    string
	peerIP  netip.Addr // holds one of its HTTP connection slots (admission)
	buf     []byte     // request bytes: buf[r:w] not yet answered
	r, w    int
	out     []byte // responses: out[sent:] not yet written
	sent    int
	closing bool  // Connection: close answered: close once out is written
	eof     bool  // the client has shut down its side: answer what is buffered, then close
	polling bool  // waiting for EPOLLOUT instead of EPOLLIN
	last    int64 // sockio.Nanotime of the last event, for the idle timeout
	head0   int64 // sockio.Nanotime the unanswered head's first byte arrived; 0: none pending
	out0    int64 // sockio.Nanotime a write of out first found the socket full; 0: out drains
}

const (
	// httpLoopMaxBody is the largest body the loop writes itself; larger
	// ones go to serveHTTP, which streams them.
	httpLoopMaxBody = 16 << 10
	// httpLoopMaxHead bounds a response head the loop writes.
	httpLoopMaxHead = 128
)

// newHTTPLoop creates the loop's epoll instance and starts it; the loop
// ends when the server stops.
func newHTTPLoop(s *Server) (*httpLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, err
	}
	l := &httpLoop{s: s, epfd: epfd, evfd: evfd, conns: map[int32]*loopConn{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		l.run()
	}()
	go func() {
		<-s.done
		var one [8]byte
		one[0] = 1
		unix.Write(evfd, one[:])
	}()
	return l, nil
}

// add takes c off the Go netpoller and into the loop; pre holds the bytes
// handleConn already read. The connection holds one of peerIP's HTTP
// connection slots, released when it closes.
func (l *httpLoop) add(c *net.TCPConn, pre []byte, peerIP netip.Addr) {
	peer := c.RemoteAddr().String()
	fd, err := detach(c)
	if err != nil {
		l.s.adm.releaseHTTP(peerIP)
		l.s.cfg.Logger.Warn("http: take over connection", "peer", peer, "err", err)
		return
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		l.s.adm.releaseHTTP(peerIP)
		unix.Close(fd)
		return
	}
	now := sockio.Nanotime()
	lc := &loopConn{fd: fd, peer: peer, peerIP: peerIP, buf: make([]byte, httpMaxRequestHead), out: make([]byte, 0, 4096), last: now, head0: now}
	lc.w = copy(lc.buf, pre)
	// Under mu, so shutdown (which closes the epoll instance and every
	// registered descriptor) cannot run in between.
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns == nil { // the loop has stopped
		l.s.adm.releaseHTTP(peerIP)
		unix.Close(fd)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.s.adm.releaseHTTP(peerIP)
		unix.Close(fd)
		l.s.cfg.Logger.Warn("http: register connection", "peer", peer, "err", err)
		return
	}
	l.conns[int32(fd)] = lc
}

func (l *httpLoop) run() {
	events := make([]unix.EpollEvent, 128)
	sweep := sockio.Nanotime() + int64(time.Second)
	for {
		// Through the runtime: the wait blocks, and other goroutines
		// (accept, sessions) need the P meanwhile.
		n, err := unix.EpollWait(l.epfd, events, 1000)
		if err != nil && err != unix.EINTR {
			l.s.cfg.Logger.Error("http loop: epoll_wait", "err", err)
			l.shutdown()
			return
		}
		now := sockio.Nanotime()
		for i := 0; i < n; i++ {
			fd := events[i].Fd
			if fd == int32(l.evfd) {
				l.shutdown()
				return
			}
			l.mu.Lock()
			c := l.conns[fd]
			l.mu.Unlock()
			if c != nil {
				c.last = now
				l.event(c, events[i].Events)
			}
		}
		if now >= sweep {
			l.sweepIdle(now)
			sweep = now + int64(time.Second)
		}
	}
}

// event handles one readiness report for c.
func (l *httpLoop) event(c *loopConn, ev uint32) {
	if c.sent < len(c.out) {
		if !l.flush(c) || c.sent < len(c.out) {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !c.closing && !c.eof {
		if c.w == len(c.buf) && c.r > 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		}
		if c.w == len(c.buf) {
			l.handoff(c) // a head larger than the buffer: serveHTTP answers 431
			return
		}
		n, err := sockio.RawRead(c.fd, c.buf[c.w:])
		switch {
		case n > 0:
			if c.r == c.w {
				c.head0 = sockio.Nanotime() // the first byte of a new head
			}
			c.w += n
		case err == unix.EAGAIN || err == unix.EINTR:
		case err == nil:
			c.eof = true
		default:
			l.closeConn(c)
			return
		}
	}
	if l.serve(c) && c.eof && c.sent == len(c.out) {
		l.closeConn(c) // everything the client sent before its FIN is answered
	}
}

// serve answers c's complete buffered requests, writing as it goes. It
// returns false once c has left the loop (closed or handed off).
func (l *httpLoop) serve(c *loopConn) bool {
	for {
		r0 := c.r
		for {
			end := wire.IndexCRLFCRLF(c.buf[c.r:c.w])
			if end < 0 {
				break
			}
			req, ok := parseHTTPRequest(c.buf[c.r : c.r+end])
			if !ok || req.chunked || req.bodyLen > 0 || req.delay > 0 || req.size > httpLoopMaxBody {
				if len(c.out) > 0 {
					break // written first: handoff never copies more than one full out
				}
				l.handoff(c)
				return false
			}
			need := len(c.out) + httpLoopMaxHead + int(req.size)
			if need > httpLoopMaxOut {
				break // the client reads what is there first
			}
			if need > cap(c.out) {
				// Grown once, straight to httpLoopMaxOut and never past
				// it: RSSBound counts on it (growing by doubling left
				// ~50 KiB of garbage per connection).
				grown := make([]byte, len(c.out), httpLoopMaxOut)
				copy(grown, c.out)
				c.out = grown
			}
			c.r += end + 4
			c.out = appendHTTPResponse(c.out, req)
			if req.close {
				c.closing = true
				break
			}
		}
		if c.r == c.w {
			c.r, c.w = 0, 0
			c.head0 = 0
		} else if c.r != r0 {
			c.head0 = sockio.Nanotime() // what is left is the start of the next head
		}
		if len(c.out) == 0 {
			return true
		}
		if !l.flush(c) {
			return false
		}
		if c.sent < len(c.out) || c.closing {
			return true // waiting for EPOLLOUT, or closed after the flush
		}
	}
}

// flush writes c's pending responses. It returns false once c has been
// closed (a write error, or everything written on a closing connection).
func (l *httpLoop) flush(c *loopConn) bool {
	for c.sent < len(c.out) {
		n, err := sockio.RawWrite(c.fd, c.out[c.sent:])
		switch {
		case n > 0:
			c.sent += n
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			if c.out0 == 0 {
				c.out0 = sockio.Nanotime()
			}
			if !c.polling {
				c.polling = true
				l.watch(c, unix.EPOLLOUT)
			}
			return true
		default:
			l.closeConn(c)
			return false
		}
	}
	c.out, c.sent, c.out0 = c.out[:0], 0, 0
	if c.closing {
		l.closeConn(c)
		return false
	}
	if c.polling {
		c.polling = false
		l.watch(c, unix.EPOLLIN)
	}
	return true
}

func (l *httpLoop) watch(c *loopConn, events uint32) {
	ev := unix.EpollEvent{Events: events, Fd: int32(c.fd)}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
}

// forget takes c out of the loop without closing its descriptor.
func (l *httpLoop) forget(c *loopConn) {
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	l.mu.Lock()
	delete(l.conns, int32(c.fd))
	l.mu.Unlock()
}

func (l *httpLoop) closeConn(c *loopConn) {
	l.forget(c)
	unix.Close(c.fd)
	l.s.adm.releaseHTTP(c.peerIP)
}

// handoff gives c to a goroutine running serveHTTP, which first writes the
// responses the loop still owes, then answers the buffered bytes.
func (l *httpLoop) handoff(c *loopConn) {
	l.forget(c)
	f := os.NewFile(uintptr(c.fd), "http")
	nc, err := net.FileConn(f) // a duplicate, registered with the netpoller
	f.Close()
	if err != nil {
		l.s.adm.releaseHTTP(c.peerIP)
		l.s.cfg.Logger.Warn("http: hand connection back", "peer", c.peer, "err", err)
		return
	}
	pre := append([]byte(nil), c.buf[c.r:c.w]...)
	owed := append([]byte(nil), c.out[c.sent:]...)
	l.s.wg.Add(1)
	go func() {
		defer l.s.wg.Done()
		defer l.s.adm.releaseHTTP(c.peerIP)
		l.s.serveHTTP(nc, pre, owed)
	}()
}

// sweepIdle closes connections idle longer than the keep-alive timeout,
// those whose request head has been arriving for longer than the head
// timeout (a client sending a byte now and then: slowloris), and those
// whose responses have waited for the client to read them for longer than
// the request timeout (a client reading a byte now and then).
func (l *httpLoop) sweepIdle(now int64) {
	var idle []*loopConn
	idleFor := int64(l.s.adm.httpIdle())
	headFor := int64(l.s.cfg.HTTPHeadTimeout)
	reqFor := int64(l.s.cfg.HTTPRequestTimeout)
	l.mu.Lock()
	for _, c := range l.conns {
		if now-c.last > idleFor || (c.head0 != 0 && now-c.head0 > headFor) || (c.out0 != 0 && now-c.out0 > reqFor) {
			idle = append(idle, c)
		}
	}
	l.mu.Unlock()
	for _, c := range idle {
		l.closeConn(c)
	}
}

func (l *httpLoop) shutdown() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for fd, c := range l.conns {
		unix.Close(int(fd))
		l.s.adm.releaseHTTP(c.peerIP)
	}
	l.conns = nil
	unix.Close(l.epfd)
	unix.Close(l.evfd)
}

// appendHTTPResponse appends the response to req, body included (the loop
// answers bodies of at most httpLoopMaxBody bytes).
func appendHTTPResponse(out []byte, req httpRequest) []byte {
	out = appendHTTPHead(out, req)
	if !req.head {
		out = append(out, httpBody[:req.size]...)
	}
	return out
}
