//go:build linux

package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

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
