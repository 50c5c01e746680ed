//go:build linux

package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// Each test here reproduces one attack on `latlab serve` from issue 17
// (a hostile client on loopback) and checks that it is refused or bounded.
// Hostile and good clients use different loopback source addresses
// (127.0.0.0/8 is all local), since limits are per client address.

func dialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawHello opens a control connection from src and sends h; it returns the
// connection (kept open: the session lives while it does) and the reply.
func rawHello(t testing.TB, src, addr string, h wire.Hello) (net.Conn, wire.HelloReply) {
	t.Helper()
	c := dialFrom(t, src, addr)
	b, _ := h.MarshalBinary()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatalf("send hello: %v", err)
	}
	rep, err := wire.ReadHelloReply(c)
	if err != nil {
		t.Fatalf("read hello reply: %v", err)
	}
	c.SetDeadline(time.Time{})
	return c, rep
}

func rrHello(flows uint16, req, resp uint32, d time.Duration) wire.Hello {
	return wire.Hello{Workload: wire.TCPRR, ReqSize: req, RespSize: resp, Duration: d, Flows: flows, ServerCPU: wire.CPUNone}
}

// attachFlows attaches n tcp data flows of session id from src.
func attachFlows(t testing.TB, src, addr string, id uint64, n int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	for i := 0; i < n; i++ {
		c := dialFrom(t, src, addr)
		a := wire.Attach{Kind: wire.KindAttach, Session: id, Flow: uint32(i)}
		b, _ := a.MarshalBinary()
		if _, err := c.Write(b); err != nil {
			t.Fatalf("attach flow %d: %v", i, err)
		}
		cs = append(cs, c)
	}
	return cs
}

func threads(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// Attack: 42 sessions × 256 flows from one client, each flow an OS thread,
// killed the server at the runtime's 10,000-thread limit. Now flows are
// bounded in total and per client, refused with "busy" naming the flag.
func TestServerBoundsFlowsPerClientAndTotal(t *testing.T) {
	srv, _ := startServer(t, Config{MaxFlows: 24, MaxPeerFlows: 16})
	addr := srv.Addr().String()
	_, r1 := rawHello(t, "127.0.0.2", addr, rrHello(16, 1, 1, time.Minute))
	if r1.Status != wire.StatusOK {
		t.Fatalf("first session refused: %s", r1.Message)
	}
	_, r2 := rawHello(t, "127.0.0.2", addr, rrHello(1, 1, 1, time.Minute))
	if r2.Status != wire.StatusBusy || !strings.Contains(r2.Message, "--max-peer-flows") {
		t.Fatalf("17th flow of one client: status %d %q, want busy naming --max-peer-flows", r2.Status, r2.Message)
	}
	_, r3 := rawHello(t, "127.0.0.3", addr, rrHello(8, 1, 1, time.Minute))
	if r3.Status != wire.StatusOK {
		t.Fatalf("another client refused: %s", r3.Message)
	}
	_, r4 := rawHello(t, "127.0.0.4", addr, rrHello(1, 1, 1, time.Minute))
	if r4.Status != wire.StatusBusy || !strings.Contains(r4.Message, "--max-flows") {
		t.Fatalf("25th flow: status %d %q, want busy naming --max-flows", r4.Status, r4.Message)
	}
	// The admitted flows really run on threads, and those are bounded.
	before := threads(t)
	attachFlows(t, "127.0.0.2", addr, r1.Session, 16)
	if !waitFor(5*time.Second, func() bool { return srv.adm.usage().sessions == 2 && threads(t) >= before+8 }) {
		t.Logf("threads %d → %d", before, threads(t))
	}
	if n := threads(t); n > before+24+16 {
		t.Errorf("threads %d after attaching 16 flows (started with %d): more than the flow limit allows", n, before)
	}
}

func TestServerConfigKeepsThreadsUnderRuntimeLimit(t *testing.T) {
	var c Config
	c.defaults()
	if err := c.validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if c.MaxFlows+maxThreadsHeadroom > runtimeThreadLimit {
		t.Errorf("default MaxFlows %d too close to the runtime's %d threads", c.MaxFlows, runtimeThreadLimit)
	}
	c.MaxFlows = 9000
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "10000") {
		t.Errorf("MaxFlows 9000 accepted (err %v)", err)
	}
	if _, err := New(Config{Listen: "127.0.0.1:0", MaxFlows: 20000}); err == nil {
		t.Error("New accepted 20000 flows")
	}
}

// Attack: 2 sessions × 256 flows × 1 MiB requests took RSS from 30 to 554
// MB: buffers were sized by what the client asked. Now tcp_rr requests are
// read in 64 KiB chunks, and buffers are budgeted before allocation.
func TestServerBoundsBufferMemory(t *testing.T) {
	srv, _ := startServer(t, Config{MaxMemory: 128 << 20})
	addr := srv.Addr().String()
	for i := 0; i < 2; i++ {
		_, r := rawHello(t, "127.0.0.2", addr, rrHello(256, 1<<20, 1<<20, time.Minute))
		if i == 0 && r.Status != wire.StatusOK {
			t.Fatalf("256 × 1 MiB tcp_rr refused: %s", r.Message)
		}
		if i == 1 && r.Status != wire.StatusBusy {
			t.Fatalf("second 256 × 1 MiB session: status %d, want busy (client over a quarter of the budget)", r.Status)
		}
	}
	if u := srv.adm.usage(); u.memory > 32<<20 || u.memory < 16<<20 {
		t.Errorf("256 × 1 MiB tcp_rr session accounted %d bytes, want 17 MiB (64 KiB read chunks + one response)", u.memory)
	}
	stream := wire.Hello{Workload: wire.TCPStream, ReqSize: 4 << 20, RespSize: 1, Duration: time.Minute, Flows: 256, ServerCPU: wire.CPUNone}
	_, r := rawHello(t, "127.0.0.3", addr, stream)
	if r.Status != wire.StatusBusy || !strings.Contains(r.Message, "--max-memory") {
		t.Fatalf("256 × 4 MiB stream: status %d %q, want busy naming --max-memory", r.Status, r.Message)
	}
	// The server-side maximum buffer.
	srv2, _ := startServer(t, Config{MaxBuffer: 64 << 10})
	_, r = rawHello(t, "127.0.0.2", srv2.Addr().String(), rrHello(1, 1<<20, 1, time.Minute))
	if r.Status != wire.StatusBadRequest || !strings.Contains(r.Message, "--max-buffer") {
		t.Fatalf("1 MiB request with --max-buffer 64KiB: status %d %q", r.Status, r.Message)
	}
}

// A tcp_rr request larger than the read chunk still round-trips whole.
func TestServerLargeRequestsChunked(t *testing.T) {
	srv, _ := startServer(t, Config{})
	res, err := workload.Run(context.Background(), workload.Config{Workload: wire.TCPRR, Target: srv.Addr().String(), ReqSize: 300 << 10, RespSize: 10,
		Duration: 200 * time.Millisecond, NoPin: true, ServerCPU: wire.CPUNone})
	if err != nil {
		t.Fatal(err)
	}
	if res.Transactions == 0 {
		t.Fatal("no transactions with 300 KiB requests")
	}
}

// Attack: 64 sessions asking for 24 h kept every other client "busy" for a
// day. Now sessions are capped per client and in length.
func TestServerBoundsSessionsPerClientAndTime(t *testing.T) {
	srv, _ := startServer(t, Config{MaxPeerSessions: 2})
	addr := srv.Addr().String()
	_, r := rawHello(t, "127.0.0.2", addr, rrHello(1, 1, 1, 24*time.Hour))
	if r.Status != wire.StatusBadRequest || !strings.Contains(r.Message, "--max-session-time") {
		t.Fatalf("24 h session: status %d %q, want refused naming --max-session-time", r.Status, r.Message)
	}
	for i := 0; i < 2; i++ {
		if _, r := rawHello(t, "127.0.0.2", addr, rrHello(1, 1, 1, 50*time.Minute)); r.Status != wire.StatusOK {
			t.Fatalf("session %d refused: %s", i, r.Message)
		}
	}
	if _, r := rawHello(t, "127.0.0.2", addr, rrHello(1, 1, 1, time.Minute)); r.Status != wire.StatusBusy || !strings.Contains(r.Message, "--max-peer-sessions") {
		t.Fatalf("third session of one client: status %d %q", r.Status, r.Message)
	}
	res, err := workload.Run(context.Background(), workload.Config{Workload: wire.TCPRR, Target: addr, Duration: 100 * time.Millisecond, NoPin: true, ServerCPU: wire.CPUNone})
	if err != nil || res.Transactions == 0 {
		t.Fatalf("another client could not run beside a hoarding one: %v", err)
	}
}

// Attack: 2,000 idle connections filled the 1,024 header-wait slots; every
// other client was reset. Now a client address holds at most MaxPeerPending
// of them, and tcp_crr transactions release theirs once their header is in.
func TestServerHeaderSlotsPerClient(t *testing.T) {
	srv, logs := startServer(t, Config{MaxPeerPending: 8, HandshakeTimeout: 3 * time.Second})
	addr := srv.Addr().String()
	var idle []net.Conn
	for i := 0; i < 40; i++ {
		idle = append(idle, dialFrom(t, "127.0.0.2", addr))
	}
	// Beyond the 8 slots the server closes at once.
	closed := 0
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			closed++
		}
	}
	if closed < 40-8 {
		t.Errorf("%d of 40 idle connections closed at once, want ≥ 32 (8 slots per client)", closed)
	}
	res, err := workload.Run(context.Background(), workload.Config{Workload: wire.TCPRR, Target: addr, Duration: 100 * time.Millisecond, NoPin: true, ServerCPU: wire.CPUNone})
	if err != nil || res.Transactions == 0 {
		t.Fatalf("a good client beside 40 idle connections: %v", err)
	}
	if !strings.Contains(logs.String(), "too many connections awaiting their header") {
		t.Error("refusals not logged")
	}
}

func TestServerCRRReleasesHeaderSlot(t *testing.T) {
	srv, _ := startServer(t, Config{MaxPending: 2, MaxPeerPending: 2})
	res, err := workload.Run(context.Background(), workload.Config{Workload: wire.TCPCRR, Target: srv.Addr().String(), Duration: 300 * time.Millisecond,
		NoPin: true, ServerCPU: wire.CPUNone})
	if err != nil {
		t.Fatal(err)
	}
	if res.Transactions < 20 {
		t.Fatalf("tcp_crr with 2 header slots: %d transactions", res.Transactions)
	}
}

// Attacks on the HTTP endpoint: idle keep-alives held forever, slowloris
// (timeouts were per read), a connection flood.
func TestServerHTTPConnectionLimitsAndTimeouts(t *testing.T) {
	srv, _ := startServer(t, Config{MaxPeerHTTPConns: 20, HTTPIdleTimeout: time.Second, HTTPHeadTimeout: time.Second})
	addr := srv.Addr().String()
	get := func(c net.Conn) (string, error) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET /?size=1 HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
			return "", err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line), err
	}
	var kept []net.Conn
	codes := map[string]int{}
	for i := 0; i < 30; i++ {
		c := dialFrom(t, "127.0.0.3", addr)
		line, _ := get(c)
		codes[line]++
		if strings.Contains(line, " 200 ") {
			kept = append(kept, c)
		}
	}
	if codes["HTTP/1.1 200 OK"] != 20 || codes["HTTP/1.1 503 too many connections"] != 10 {
		t.Fatalf("30 keep-alives from one client with a per-client cap of 20: %v", codes)
	}
	good := dialFrom(t, "127.0.0.1", addr)
	if line, err := get(good); line != "HTTP/1.1 200 OK" {
		t.Fatalf("good client beside a flood: %q %v", line, err)
	}
	// Slowloris: a byte every 300 ms keeps no per-read timer from firing,
	// but the head timeout (1 s) ends it. Once through the event loop, once
	// through the goroutine path (after a request with a body).
	slow := func(c net.Conn) time.Duration {
		t0 := time.Now()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		for _, b := range []byte("GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") {
			if _, err := c.Write([]byte{b}); err != nil {
				return time.Since(t0)
			}
			time.Sleep(300 * time.Millisecond)
		}
		return -1
	}
	if d := slow(dialFrom(t, "127.0.0.4", addr)); d < 0 || d > 6*time.Second {
		t.Errorf("slowloris through the event loop still open after %v", d)
	}
	viaGoroutine := dialFrom(t, "127.0.0.4", addr)
	io.WriteString(viaGoroutine, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
	if _, err := bufio.NewReader(viaGoroutine).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if d := slow(viaGoroutine); d < 0 || d > 6*time.Second {
		t.Errorf("slowloris through serveHTTP still open after %v", d)
	}
	// Idle keep-alives are closed after the idle timeout and give back
	// their slots.
	for _, c := range kept {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("idle keep-alive not closed after the idle timeout: %v", err)
		}
	}
	if !waitFor(3*time.Second, func() bool { return srv.adm.usage().http <= 1 }) {
		t.Errorf("HTTP slots not released: %+v", srv.adm.usage())
	}
}

// Attack: udp_rr asking 65,507-byte replies to 8-byte requests is an
// 8,188× amplifier toward whatever source address a datagram claims.
// Replies to an address other than the session's own are no larger than
// the request.
func TestServerUDPNoAmplificationToOtherAddresses(t *testing.T) {
	srv, _ := startServer(t, Config{})
	addr := srv.Addr().String()
	_, rep := rawHello(t, "127.0.0.1", addr, wire.Hello{Workload: wire.UDPRR, ReqSize: 8, RespSize: 65507, Duration: time.Minute, Flows: 2, ServerCPU: wire.CPUNone})
	if rep.Status != wire.StatusOK {
		t.Fatal(rep.Message)
	}
	reply := func(src string, flow uint32) int {
		u, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, net.UDPAddrFromAddrPort(srv.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		a := wire.Attach{Kind: wire.KindUDP, Session: rep.Session, Flow: flow}
		b, _ := a.MarshalBinary()
		buf := make([]byte, 70000)
		u.SetDeadline(time.Now().Add(5 * time.Second))
		for {
			u.Write(b)
			u.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, err := u.Read(buf); err == nil && n == wire.AttachLen {
				break
			}
		}
		u.SetReadDeadline(time.Now().Add(5 * time.Second))
		u.Write([]byte("12345678"))
		n, err := u.Read(buf)
		if err != nil {
			t.Fatalf("udp reply to %s: %v", src, err)
		}
		return n
	}
	if n := reply("127.0.0.1", 0); n != 65507 {
		t.Errorf("the session's own address got %d bytes, want 65507", n)
	}
	if n := reply("127.0.0.9", 1); n > 8 {
		t.Errorf("another address got %d bytes for an 8-byte request: amplification", n)
	}
}

// Attack: two idle, non-reading tcp_stream flows made other clients wait:
// the flows' raw blocking writes held a P for up to 100 ms each. With one
// P, a ticking goroutine shows how long it is kept off the CPU.
func TestServerNonReadingStreamDoesNotStarve(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	srv, _ := startServer(t, Config{})
	addr := srv.Addr().String()
	h := wire.Hello{Workload: wire.TCPStream, ReqSize: 128 << 10, RespSize: 128 << 10, Reverse: true, Duration: time.Minute, Flows: 2, ServerCPU: wire.CPUNone}
	_, rep := rawHello(t, "127.0.0.2", addr, h)
	if rep.Status != wire.StatusOK {
		t.Fatal(rep.Message)
	}
	attachFlows(t, "127.0.0.2", addr, rep.Session, 2) // never read
	time.Sleep(300 * time.Millisecond)                // the socket buffers fill
	var gaps []time.Duration
	last := time.Now()
	for i := 0; i < 200; i++ {
		time.Sleep(2 * time.Millisecond)
		now := time.Now()
		gaps = append(gaps, now.Sub(last))
		last = now
	}
	slices.Sort(gaps)
	// Blocking writes with a 100 ms timeout hold the only P ~100 ms at a
	// time: the 90th percentile would be near 100 ms.
	if p90 := gaps[len(gaps)*9/10]; p90 > 40*time.Millisecond {
		t.Errorf("with two non-reading stream flows, a 2 ms ticker's p90 gap is %v: server flows hold the P", p90)
	}
}

func TestRateLimitedLog(t *testing.T) {
	var buf syncBuffer
	now := time.Unix(0, 0)
	l := newRateLimitedLog(slogTo(&buf), func() time.Time { return now })
	for i := 0; i < 100; i++ {
		l.Warn("flood", "closed connection", "i", i)
	}
	l.Warn("other", "closed connection")
	if n := strings.Count(buf.String(), "reason=flood"); n != 10 {
		t.Errorf("%d flood lines in one window, want 10", n)
	}
	now = now.Add(11 * time.Second)
	l.Warn("flood", "closed connection")
	if !strings.Contains(buf.String(), `msg="suppressed similar messages" reason=flood count=90`) {
		t.Errorf("no suppression summary:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "reason=other") {
		t.Error("another reason was suppressed with the flood")
	}
}

// counts for the load test's report
type attackCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (a *attackCounts) add(k string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]int{}
	}
	a.m[k]++
}

func (a *attackCounts) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := make([]string, 0, len(a.m))
	for k := range a.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, a.m[k])
	}
	return b.String()
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
