//go:build linux

package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/netns"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/wire"
)

// Issue 37's attacks (hardening, second pass), each reproduced on loopback.

// trickle writes one byte every 50 ms on each of cs until the test ends or
// the server closes the connection: no read of a server flow ever times
// out, so a flow that looked at its session only on timeouts lived on.
func trickle(t *testing.T, cs []net.Conn) {
	t.Helper()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	for _, c := range cs {
		go func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}()
	}
}

// closedByServer reports whether the server has closed c within d (a read
// returns EOF or a reset, not a timeout).
func closedByServer(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		ne, ok := err.(net.Error)
		return !ok || !ne.Timeout()
	}
}

// Attack (issue 37, 1): flows trickling a byte every 50 ms outlived End, the
// control connection and the session deadline, and the session's admission
// was released 10.2 s later anyway, so the same client opened the next
// session beside its still-running flows. Now a session's end shuts its
// flows' sockets down, and its flows and memory are released only once they
// have ended.
func TestServerFlowsEndWithTheirSession(t *testing.T) {
	srv, _ := startServer(t, Config{MaxFlows: 8, MaxPeerFlows: 8, Grace: 200 * time.Millisecond})
	addr := srv.Addr().String()
	cases := []struct {
		name  string
		hello wire.Hello
		end   func(ctl net.Conn) // how the session ends; nil: its deadline
	}{
		{"tcp_rr, control closed", rrHello(4, 1<<20, 1, time.Minute), func(ctl net.Conn) { ctl.Close() }},
		{"tcp_rr, End", rrHello(4, 1<<20, 1, time.Minute), func(ctl net.Conn) {
			ctl.Write(wire.MarshalEnd())
		}},
		{"tcp_rr, deadline", rrHello(4, 1<<20, 1, time.Second), nil},
		{"tcp_stream, deadline", wire.Hello{Workload: wire.TCPStream, ReqSize: 4096, RespSize: 1, Duration: time.Second, Flows: 4, ServerCPU: wire.CPUNone}, nil},
	}
	for _, tc := range cases {
		ctl, rep := rawHello(t, "127.0.0.2", addr, tc.hello)
		if rep.Status != wire.StatusOK {
			t.Fatalf("%s: session refused: %s", tc.name, rep.Message)
		}
		flows := attachFlows(t, "127.0.0.2", addr, rep.Session, 4)
		trickle(t, flows)
		if !waitFor(5*time.Second, func() bool { return srv.adm.usage().flows == 4 }) {
			t.Fatalf("%s: session not admitted: %+v", tc.name, srv.adm.usage())
		}
		time.Sleep(300 * time.Millisecond) // the flows run, trickled
		t0 := time.Now()
		limit := 5 * time.Second
		if tc.end != nil {
			tc.end(ctl)
		} else {
			limit += tc.hello.Duration + 200*time.Millisecond // the deadline, then as above
		}
		for i, c := range flows {
			if !closedByServer(c, limit) {
				t.Fatalf("%s: flow %d still open %v after its session ended", tc.name, i, time.Since(t0))
			}
		}
		if !waitFor(limit, func() bool { return srv.adm.usage().flows == 0 && srv.adm.usage().sessions == 0 }) {
			t.Fatalf("%s: admission not released after the flows ended: %+v", tc.name, srv.adm.usage())
		}
		ctl.Close()
	}
}

// Attack (issue 37, 1): SIGTERM waited for trickled flows (27 s, and only
// because the client stopped) and for connections waiting for their header.
// Now the server stops within 2 s whatever its clients do.
func TestServerStopsWithin2sUnderTrickle(t *testing.T) {
	srv, err := New(Config{Listen: "127.0.0.1:0", MaxFlows: 16})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	addr := srv.Addr().String()
	_, rep := rawHello(t, "127.0.0.2", addr, rrHello(4, 1<<20, 1, time.Minute))
	if rep.Status != wire.StatusOK {
		t.Fatalf("session refused: %s", rep.Message)
	}
	trickle(t, attachFlows(t, "127.0.0.2", addr, rep.Session, 4))
	_, rep = rawHello(t, "127.0.0.3", addr, wire.Hello{Workload: wire.TCPStream, ReqSize: 4096, RespSize: 1, Duration: time.Minute, Flows: 4, ServerCPU: wire.CPUNone})
	if rep.Status != wire.StatusOK {
		t.Fatalf("stream session refused: %s", rep.Message)
	}
	trickle(t, attachFlows(t, "127.0.0.3", addr, rep.Session, 4))
	dialFrom(t, "127.0.0.4", addr) // silent: waits for its header for 5 s
	slowHTTP := dialFrom(t, "127.0.0.5", addr)
	slowHTTP.Write([]byte("GET /?delay=10s HTTP/1.1\r\nHost: t\r\n\r\n"))
	if !waitFor(5*time.Second, func() bool { return srv.adm.usage().flows == 8 && srv.adm.usage().http == 1 }) {
		t.Fatalf("attack not in place: %+v", srv.adm.usage())
	}
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		t.Logf("stopped in %v", time.Since(t0))
	case <-time.After(2 * time.Second):
		t.Fatalf("server still running 2 s after its context was cancelled")
	}
}

// httpStatus sends raw on a new connection from src and returns the status
// line of the first response ("" if the connection closed without one).
func httpStatus(t *testing.T, src, addr, raw string) string {
	t.Helper()
	c := dialFrom(t, src, addr)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("send %q: %v", raw, err)
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// Attack (issue 37, 5): header syntax more lenient than RFC 9112.
// "Content-Length : 3" was ignored and the body read as a second request;
// "Transfer-Encoding : chunked" beside a Content-Length got 200; obs-fold and
// NUL bytes were accepted. Each is 400 now, through the event loop and
// through serveHTTP (after a request with a body moved the connection there).
func TestServerHTTPStrictHeaderSyntax(t *testing.T) {
	srv, _ := startServer(t, Config{})
	addr := srv.Addr().String()
	bad := map[string]string{
		"space before colon":      "POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 3\r\n\r\nGET",
		"tab before colon":        "GET / HTTP/1.1\r\nHost\t: t\r\n\r\n",
		"TE with space and CL":    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc",
		"obs-fold":                "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n",
		"obs-fold with colon":     "GET / HTTP/1.1\r\nHost: t\r\n X-A: b\r\n\r\n",
		"NUL in value":            "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n",
		"bare LF in value":        "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\nContent-Length: 5\r\n\r\n",
		"control in name":         "GET / HTTP/1.1\r\nHost: t\r\nX\x01A: a\r\n\r\n",
		"NUL in target":           "GET /\x00 HTTP/1.1\r\nHost: t\r\n\r\n",
		"separator in field name": "GET / HTTP/1.1\r\nHost: t\r\nX(A): a\r\n\r\n",
	}
	for name, raw := range bad {
		if got := httpStatus(t, "127.0.0.2", addr, raw); !strings.HasPrefix(got, "HTTP/1.1 400 ") {
			t.Errorf("%s through the event loop: %q, want 400", name, got)
		}
		// The same request after one with a body: serveHTTP parses it.
		if got := httpStatus(t, "127.0.0.2", addr, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx"+raw); got != "HTTP/1.1 200 OK" {
			t.Errorf("%s: first request: %q", name, got)
		}
		c := dialFrom(t, "127.0.0.2", addr)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx"+raw)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: first response: %v", name, err)
		}
		io.Copy(io.Discard, resp.Body)
		if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 400 ") {
			t.Errorf("%s through serveHTTP: %q, want 400", name, line)
		}
	}
	// What stays valid: OWS around values, tabs in values, obs-text.
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost:t\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: t\r\nX-A: \ta b\t\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: t\r\nX-A: caf\xc3\xa9\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: t\r\nX-A!#$%&'*+-.^_`|~: 1\r\n\r\n",
	} {
		if got := httpStatus(t, "127.0.0.2", addr, raw); got != "HTTP/1.1 200 OK" {
			t.Errorf("valid request %q: %q", raw, got)
		}
	}
}

// Attack (issue 37, 5): per-client limits counted one IPv6 /128, so one
// host using many addresses of its /64 multiplied every per-client limit.
// In a namespace the test creates, four addresses of one /64 share one
// client's HTTP connections; an address of another /64 is another client.
func TestServerIPv6ClientIsItsSlash64(t *testing.T) {
	nsName, nsPath := testutil.NewNetNS(t)
	addrs := []string{"2001:db8:1::1", "2001:db8:1::2", "2001:db8:1::3", "2001:db8:1::4", "2001:db8:1:0:ffff::5", "2001:db8:2::1"}
	for _, a := range addrs {
		if out, err := exec.Command("ip", "-n", nsName, "-6", "addr", "add", a+"/64", "dev", "lo", "nodad").CombinedOutput(); err != nil {
			t.Fatalf("ip addr add %s in the test namespace: %v: %s", a, err, out)
		}
	}
	srv, _ := startServer(t, Config{Listen: "[2001:db8:1::1]:0", NetNS: nsPath, MaxPeerHTTPConns: 4})
	addr := srv.Addr().String()
	get := func(src string) string {
		var c net.Conn
		err := netns.Do(nsPath, func() error {
			var err error
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
			c, err = d.Dial("tcp", addr)
			return err
		})
		if err != nil {
			t.Fatalf("dial %s from %s: %v", addr, src, err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line)
	}
	for _, src := range addrs[:4] {
		if got := get(src); got != "HTTP/1.1 200 OK" {
			t.Fatalf("connection from %s (within the limit of 4): %q", src, got)
		}
	}
	if got := get(addrs[4]); !strings.HasPrefix(got, "HTTP/1.1 503 ") {
		t.Errorf("5th connection from the same /64 (%s): %q, want 503", addrs[4], got)
	}
	if got := get(addrs[5]); got != "HTTP/1.1 200 OK" {
		t.Errorf("connection from another /64 (%s): %q, want 200", addrs[5], got)
	}
	if p := peerOf(netip.MustParseAddrPort("[2001:db8:1:0:ffff::5]:80")); peerName(p) != "2001:db8:1::/64" {
		t.Errorf("peerName(peerOf(...)) = %q", peerName(p))
	}
}

// dialSmallRcvBuf dials addr from src with a 4 KiB receive buffer, so the
// server's responses back up on loopback as they would on a slow link.
func dialSmallRcvBuf(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second,
		Control: func(network, address string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
		}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dripRead reads 64 bytes every 200 ms from c until it fails or stop
// closes.
func dripRead(c net.Conn, stop chan struct{}) {
	buf := make([]byte, 64)
	for {
		select {
		case <-stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
	}
}

// Attack (issue 37, 2): body reads and response writes had a fresh 60 s
// deadline each, so one response drip-read held a connection (and its
// slot) for about an hour, and pipelined ?delay=10s requests had no overall
// deadline. Now a request — head, body, delay and response — has
// HTTPRequestTimeout in all, in the event loop and in serveHTTP. (What the
// server had already handed to the kernel's send buffer, up to a few MiB
// on loopback, is the kernel's: the slot is what the limit protects.)
func TestServerHTTPWholeRequestDeadline(t *testing.T) {
	srv, _ := startServer(t, Config{HTTPRequestTimeout: 2 * time.Second, HTTPHeadTimeout: 2 * time.Second})
	addr := srv.Addr().String()
	for _, tc := range []struct{ name, req string }{
		// Small responses, more than the kernel's buffers hold: the
		// event loop writes them.
		{"event loop", strings.Repeat("GET /?size=16000 HTTP/1.1\r\nHost: t\r\n\r\n", 400)},
		// A large one: serveHTTP streams it.
		{"serveHTTP", "GET /?size=67108864 HTTP/1.1\r\nHost: t\r\n\r\n"},
	} {
		c := dialSmallRcvBuf(t, "127.0.0.2", addr)
		if _, err := io.WriteString(c, tc.req); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		go dripRead(c, stop)
		t0 := time.Now()
		if !waitFor(2*time.Second, func() bool { return srv.adm.usage().http == 1 }) {
			t.Fatalf("%s: connection not admitted: %+v", tc.name, srv.adm.usage())
		}
		released := waitFor(15*time.Second, func() bool { return srv.adm.usage().http == 0 })
		close(stop)
		c.Close()
		t.Logf("%s: slot released after %v", tc.name, time.Since(t0))
		if d := time.Since(t0); !released || d > 8*time.Second {
			t.Errorf("%s: drip-read responses held the slot %v (released %v; request timeout 2 s)", tc.name, d, released)
		}
	}
	// A delay longer than the request may take is not waited out.
	c := dialFrom(t, "127.0.0.2", addr)
	io.WriteString(c, "GET /?delay=6s HTTP/1.1\r\nHost: t\r\n\r\n")
	t0 := time.Now()
	if !closedByServer(c, 10*time.Second) || time.Since(t0) > 4*time.Second {
		t.Errorf("a 6 s delay with a 2 s request timeout held the connection %v", time.Since(t0))
	}
	// Delays within it are still served.
	if got := httpStatus(t, "127.0.0.2", addr, "GET /?delay=100ms HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"); got != "HTTP/1.1 200 OK" {
		t.Errorf("a 100 ms delay: %q", got)
	}
	if !waitFor(5*time.Second, func() bool { return srv.adm.usage().http == 0 }) {
		t.Errorf("HTTP slots not released: %+v", srv.adm.usage())
	}
}

// Attack (issue 37, 2): with --max-http-conns 64 --max-peer-http-conns 16,
// five addresses refilling every freed slot with slow requests locked a
// well-behaved client out (0 of 19 requests answered). The last quarter of
// the slots is now kept for clients holding fewer than httpLightConns, so
// hoarders cannot refill it however fast they try.
func TestServerHTTPSlotsCannotBeHoarded(t *testing.T) {
	srv, _ := startServer(t, Config{MaxHTTPConns: 64, MaxPeerHTTPConns: 16, HTTPRequestTimeout: 3 * time.Second})
	addr := srv.Addr().String()
	stop := make(chan struct{})
	var hoarders sync.WaitGroup
	t.Cleanup(func() { close(stop); hoarders.Wait() })
	for a := 0; a < 5; a++ {
		src := fmt.Sprintf("127.0.0.%d", 11+a)
		for k := 0; k < 20; k++ { // more than the 16 each may hold: every freed slot is retried at once
			hoarders.Add(1)
			go func() {
				defer hoarders.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
					c, err := d.Dial("tcp", addr)
					if err != nil {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					io.WriteString(c, strings.Repeat("GET /?delay=2s HTTP/1.1\r\nHost: t\r\n\r\n", 4))
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					io.Copy(io.Discard, c) // until the server closes it
					c.Close()
				}
			}()
		}
	}
	if !waitFor(10*time.Second, func() bool { return srv.adm.usage().http >= 48 }) {
		t.Fatalf("hoarders did not take the slots: %+v", srv.adm.usage())
	}
	ok, n := 0, 20
	for i := 0; i < n; i++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
		if c, err := d.Dial("tcp", addr); err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
			if line, _ := bufio.NewReader(c).ReadString('\n'); strings.TrimSpace(line) == "HTTP/1.1 200 OK" {
				ok++
			}
			c.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("good client: %d of %d answered beside 5 hoarding addresses (%+v)", ok, n, srv.adm.usage())
	if ok*100 < n*80 {
		t.Errorf("good client: %d of %d requests answered, want at least 80%%", ok, n)
	}
}

// Attack (issue 37, 2): 503 and 431 were written and the socket closed with
// the client's bytes unread, so the kernel sent a reset that could reach
// the client before the status. They are drained now (lingering close).
func TestServerHTTPErrorsDrainedNotReset(t *testing.T) {
	srv, _ := startServer(t, Config{MaxPeerHTTPConns: 1})
	addr := srv.Addr().String()
	hold := dialFrom(t, "127.0.0.2", addr)
	io.WriteString(hold, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
	bufio.NewReader(hold).ReadString('\n')
	big := strings.Repeat("x", 512<<10)
	for want, raw := range map[string]string{
		"503": "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 524288\r\n\r\n" + big,
		"431": "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + big + "\r\n\r\n",
	} {
		src := "127.0.0.2" // holds its one connection: 503
		if want == "431" {
			src = "127.0.0.3"
		}
		c := dialFrom(t, src, addr)
		go func() {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, raw)
		}()
		time.Sleep(200 * time.Millisecond) // the server answers while bytes are still arriving
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if !strings.HasPrefix(line, "HTTP/1.1 "+want+" ") {
			t.Errorf("want %s: read %q, %v", want, line, err)
		}
	}
}

// Attack (issue 37, 3): the RSS bound counted 24 KiB per HTTP connection,
// but one that pipelines and never reads holds its 16 KiB head buffer and
// up to 64 KiB of pending responses (3,000 of them: 398 MiB). The bound is
// now computed from what each connection can hold; this drives that worst
// case in a child server with the default limits — connections whose head
// buffer is full of pipelined requests and whose out buffer is full —
// and checks the child's RSS growth per connection against httpConnRSS,
// and its RSS against RSSBound.
func TestServerHTTPMemoryWorstCase(t *testing.T) {
	p := startChildServer(t)
	time.Sleep(300 * time.Millisecond)
	rss0, _ := procStatus(p.cmd.Process.Pid)
	const n = 400
	reqs := strings.Repeat("GET /?size=16000 HTTP/1.1\r\nHost: t\r\n\r\n", 16000/40)
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c := dialSmallRcvBuf(t, fmt.Sprintf("127.0.0.%d", 20+i%4), p.addr)
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, reqs); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// The server answers until each connection's buffers are full, then
	// waits: RSS settles.
	var rss int64
	prev := int64(-1)
	for i := 0; i < 50; i++ {
		time.Sleep(200 * time.Millisecond)
		rss, _ = procStatus(p.cmd.Process.Pid)
		if rss == prev {
			break
		}
		prev = rss
	}
	per := (rss - rss0) / n
	t.Logf("child RSS %d MiB → %d MiB with %d never-reading pipelining connections: %d KiB each (bound %d KiB)",
		rss0>>20, rss>>20, n, per>>10, httpConnRSS>>10)
	if per > httpConnRSS {
		t.Errorf("each connection costs %d KiB of RSS, more than the %d KiB RSSBound counts", per>>10, httpConnRSS>>10)
	}
	if per < 32<<10 {
		t.Errorf("each connection costs only %d KiB: the worst case was not driven", per>>10)
	}
	if bound := RSSBound(Config{}); rss > bound {
		t.Errorf("RSS %d MiB over the bound %d MiB", rss>>20, bound>>20)
	}
	for _, c := range conns {
		c.Close()
	}
	p.stop(t)
}

// A tcp_crr session holds at most its flows + crrSlack transactions open at
// once; one more is closed at once.
func TestServerBoundsCRRTransactions(t *testing.T) {
	srv, _ := startServer(t, Config{})
	addr := srv.Addr().String()
	h := wire.Hello{Workload: wire.TCPCRR, ReqSize: 64, RespSize: 64, Duration: time.Minute, Flows: 1, ServerCPU: wire.CPUNone}
	_, rep := rawHello(t, "127.0.0.2", addr, h)
	if rep.Status != wire.StatusOK {
		t.Fatalf("session refused: %s", rep.Message)
	}
	open := func() net.Conn {
		c := dialFrom(t, "127.0.0.2", addr)
		b, _ := (&wire.Attach{Kind: wire.KindCRR, Session: rep.Session}).MarshalBinary()
		c.Write(b) // and no request: the transaction stays open
		return c
	}
	for i := 0; i < 1+crrSlack; i++ {
		open()
	}
	if !waitFor(5*time.Second, func() bool { return srv.lookup(rep.Session).crr.Load() == 1+crrSlack }) {
		t.Fatalf("transactions open: %d, want %d", srv.lookup(rep.Session).crr.Load(), 1+crrSlack)
	}
	if !closedByServer(open(), 3*time.Second) {
		t.Errorf("transaction %d of a 1-flow session not closed", 2+crrSlack)
	}
}

// Attack (issue 37, 1), as measured: with --max-flows 64, two addresses
// trickling into their flows and opening the next session as soon as the
// last one's admission was released held 114 live flows (123 threads)
// after 30 s. Now the next session is admitted only once the last one's
// flows have ended: flows in use never pass the limit, nor do threads.
func TestServerTricklingSessionsStayUnderFlowLimit(t *testing.T) {
	srv, _ := startServer(t, Config{MaxFlows: 64, MaxPeerFlows: 32, Grace: 200 * time.Millisecond})
	addr := srv.Addr().String()
	base := threads(t)
	var peakThreads, peakFlows int
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			peakThreads = max(peakThreads, threads(t))
			peakFlows = max(peakFlows, srv.adm.usage().flows)
		}
	}()
	var wg sync.WaitGroup
	admitted := make([]int, 2)
	for a := range 2 {
		src := fmt.Sprintf("127.0.0.%d", 30+a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for end := time.Now().Add(4 * time.Second); time.Now().Before(end); {
				c := dialFrom(t, src, addr)
				b, _ := (&wire.Hello{Workload: wire.TCPRR, ReqSize: 1 << 20, RespSize: 1, Duration: time.Minute, Flows: 32, ServerCPU: wire.CPUNone}).MarshalBinary()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.Write(b)
				rep, err := wire.ReadHelloReply(c)
				if err != nil || rep.Status != wire.StatusOK {
					c.Close()
					time.Sleep(20 * time.Millisecond)
					continue
				}
				admitted[a]++
				flows := attachFlows(t, src, addr, rep.Session, 32)
				trickle(t, flows)
				time.Sleep(300 * time.Millisecond)
				c.Close() // the session ends; its flows would trickle on
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	t.Logf("sessions admitted %v; peak flows %d, peak threads %d (started with %d)", admitted, peakFlows, peakThreads, base)
	if peakFlows > 64 {
		t.Errorf("flows in use peaked at %d, over --max-flows 64", peakFlows)
	}
	if peakThreads > base+64+32 {
		t.Errorf("threads peaked at %d, started with %d: more than 64 flows' worth", peakThreads, base)
	}
	if admitted[0] < 2 || admitted[1] < 2 {
		t.Errorf("sessions admitted %v: a client whose sessions ended could not open the next", admitted)
	}
	if !waitFor(5*time.Second, func() bool { return srv.adm.usage().flows == 0 }) {
		t.Errorf("flows still admitted after every session ended: %+v", srv.adm.usage())
	}
}
