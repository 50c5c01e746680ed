package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/latlab/latlab/internal/netns"
)

// Config says where a sidecar listens and where it forwards.
type Config struct {
	// NetNS is the namespace (a path) the proxy listens and dials in;
	// never "" (the caller's own).
	NetNS string
	// Listen is the loopback ADDR:PORT the client dials (TCP and UDP).
	Listen string
	// Upstream is the server's ADDR:PORT.
	Upstream string
}

// Limits of the UDP relay: one upstream socket per client address, closed
// after UDPIdle without traffic; at most MaxUDPPeers at once.
const (
	UDPIdle     = 30 * time.Second
	MaxUDPPeers = 4096
	bufSize     = 64 << 10
	dialers     = 4
)

// Proxy is a running sidecar.
type Proxy struct {
	cfg  Config
	ln   *net.TCPListener
	pc   *net.UDPConn
	dial chan dialReq

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
	peers map[string]*udpPeer
}

type dialReq struct {
	network string
	reply   chan dialRes
}

type dialRes struct {
	c   net.Conn
	err error
}

type udpPeer struct {
	up   *net.UDPConn
	last time.Time
}

// Start opens the sidecar's TCP listener and UDP socket inside cfg.NetNS
// and starts forwarding; Close stops it.
//
// Equivalent to: ip netns exec NS envoy (a TCP proxy listener on LISTEN
// with UPSTREAM as its only cluster), or socat TCP-LISTEN:PORT,fork
// TCP:UPSTREAM.
func Start(cfg Config) (*Proxy, error) {
	what := fmt.Sprintf("start sidecar %s -> %s in %s", cfg.Listen, cfg.Upstream, cfg.NetNS)
	if cfg.NetNS == "" {
		return nil, fmt.Errorf("%s: no namespace given (never the caller's own)", what)
	}
	p := &Proxy{cfg: cfg, dial: make(chan dialReq), conns: map[net.Conn]bool{}, peers: map[string]*udpPeer{}}
	err := netns.Do(cfg.NetNS, func() error {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return err
		}
		pc, err := net.ListenPacket("udp", cfg.Listen)
		if err != nil {
			ln.Close()
			return err
		}
		p.ln, p.pc = ln.(*net.TCPListener), pc.(*net.UDPConn)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	// Dialers: goroutines on threads that entered the namespace, so the
	// upstream sockets are created there.
	ready := make(chan error, dialers)
	for range dialers {
		p.wg.Add(1)
		go p.dialer(ready)
	}
	for range dialers {
		if err := <-ready; err != nil {
			p.Close()
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	p.wg.Add(3)
	go p.acceptTCP()
	go p.relayUDP()
	go p.sweepUDP()
	return p, nil
}

// Addr is the address the sidecar listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops the sidecar and closes every connection it holds.
func (p *Proxy) Close() error {
	p.cancel()
	if p.ln != nil {
		p.ln.Close()
	}
	if p.pc != nil {
		p.pc.Close()
	}
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	for _, peer := range p.peers {
		peer.up.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// dialer serves dial requests from a thread inside the namespace. The
// thread is never unlocked: it exits with the goroutine.
func (p *Proxy) dialer(ready chan<- error) {
	defer p.wg.Done()
	runtime.LockOSThread()
	if err := netns.Enter(p.cfg.NetNS); err != nil {
		ready <- err
		return
	}
	ready <- nil
	d := net.Dialer{Timeout: 5 * time.Second}
	for {
		select {
		case <-p.ctx.Done():
			return
		case r := <-p.dial:
			c, err := d.DialContext(p.ctx, r.network, p.cfg.Upstream)
			r.reply <- dialRes{c, err}
		}
	}
}

// upstream dials the server from inside the namespace.
func (p *Proxy) upstream(network string) (net.Conn, error) {
	r := dialReq{network: network, reply: make(chan dialRes, 1)}
	select {
	case p.dial <- r:
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
	res := <-r.reply
	return res.c, res.err
}

// track registers a connection for Close; false when the proxy is
// closing (the connection is closed).
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) acceptTCP() {
	defer p.wg.Done()
	for {
		c, err := p.ln.AcceptTCP()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and friends: back off
			continue
		}
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go p.serveTCP(c)
	}
}

// serveTCP forwards one client connection to a fresh upstream one, both
// ways, until either side is done.
func (p *Proxy) serveTCP(c *net.TCPConn) {
	defer p.wg.Done()
	defer p.untrack(c)
	uc, err := p.upstream("tcp")
	if err != nil {
		return // the client sees its connection closed
	}
	if !p.track(uc) {
		return
	}
	defer p.untrack(uc)
	up := uc.(*net.TCPConn)
	c.SetNoDelay(true)
	up.SetNoDelay(true)
	done := make(chan struct{}, 2)
	go func() { pipe(up, c); done <- struct{}{} }()
	go func() { pipe(c, up); done <- struct{}{} }()
	<-done
	<-done
}

// pipe copies src to dst with read(2)/write(2) — never splice, which
// io.Copy would use between TCP connections — then half-closes dst.
func pipe(dst, src *net.TCPConn) {
	buf := make([]byte, bufSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.CloseRead()
				return
			}
		}
		if err != nil {
			dst.CloseWrite()
			return
		}
	}
}

// relayUDP forwards each client's datagrams through an upstream socket of
// its own (so the server's answers come back to that client).
func (p *Proxy) relayUDP() {
	defer p.wg.Done()
	buf := make([]byte, bufSize)
	for {
		n, from, err := p.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			continue
		}
		key := from.String()
		p.mu.Lock()
		peer := p.peers[key]
		p.mu.Unlock()
		if peer == nil {
			peer = p.newPeer(key, from.String())
			if peer == nil {
				continue // at MaxUDPPeers, or the dial failed: dropped, as UDP may be
			}
		}
		p.mu.Lock()
		peer.last = time.Now()
		p.mu.Unlock()
		peer.up.Write(buf[:n])
	}
}

// newPeer dials an upstream socket for client key and starts relaying
// its answers back.
func (p *Proxy) newPeer(key, client string) *udpPeer {
	p.mu.Lock()
	full := len(p.peers) >= MaxUDPPeers
	p.mu.Unlock()
	if full {
		return nil
	}
	c, err := p.upstream("udp")
	if err != nil {
		return nil
	}
	peer := &udpPeer{up: c.(*net.UDPConn), last: time.Now()}
	dst, err := net.ResolveUDPAddr("udp", client)
	if err != nil {
		c.Close()
		return nil
	}
	p.mu.Lock()
	if p.ctx.Err() != nil {
		p.mu.Unlock()
		c.Close()
		return nil
	}
	p.peers[key] = peer
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, bufSize)
		for {
			n, err := peer.up.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				if errors.Is(err, net.ErrClosed) || p.ctx.Err() != nil {
					return
				}
				continue // ECONNREFUSED from an ICMP error: keep relaying
			}
			p.pc.WriteToUDP(buf[:n], dst)
		}
	}()
	return peer
}

// sweepUDP closes upstream sockets idle for UDPIdle.
func (p *Proxy) sweepUDP() {
	defer p.wg.Done()
	t := time.NewTicker(UDPIdle / 3)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-t.C:
			p.mu.Lock()
			for k, peer := range p.peers {
				if now.Sub(peer.last) > UDPIdle {
					peer.up.Close()
					delete(p.peers, k)
				}
			}
			p.mu.Unlock()
		}
	}
}
