//go:build linux

package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// A standard client (net/http) gets correct answers from the endpoint.
func TestHTTPServeEndpoint(t *testing.T) {
	srv, _ := startServer(t, Config{})
	base := "http://" + srv.Addr().String()
	resp, err := http.Get(base + "/?size=12345&delay=20ms")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(b) != 12345 {
		t.Errorf("status %d, %d bytes", resp.StatusCode, len(b))
	}
	resp, err = http.Post(base+"/", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(b) != HTTPDefaultBodySize {
		t.Errorf("POST: status %d, %d bytes", resp.StatusCode, len(b))
	}
	resp, err = http.Get(base + "/?size=-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("bad query: status %d, want 400", resp.StatusCode)
	}
}

// latlab serve's HTTP event loop: pipelined requests are answered in order,
// including across a hand-off to the per-connection server (a request with
// a body or a delay, a large response), HEAD and HTTP/1.0, Connection:
// close, a half-closed client, an oversized head and a malformed request.
func TestHTTPServeLoop(t *testing.T) {
	srv, _ := startServer(t, Config{})
	addr := srv.Addr().String()
	exchange := func(t *testing.T, send string, halfClose bool) string {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
		if halfClose {
			c.(*net.TCPConn).CloseWrite()
		}
		// Every case ends with the server closing; one that refuses a
		// request may reset with the client's bytes still unread.
		b, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read: %v (after %q)", err, b)
		}
		return string(b)
	}
	head := func(size int, extra string) string {
		return "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " + strconv.Itoa(size) + extra + "\r\n\r\n"
	}
	body := func(n int) string { return strings.Repeat("x", n) }
	const bad400 = "HTTP/1.1 400 bad request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	big := 100000
	for _, tc := range []struct {
		name, send string
		half       bool
		want       string
	}{
		{"pipelined", "GET /?size=3 HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /?size=0 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false,
			head(3, "") + "xxx" + head(64, "") + head(0, "\r\nConnection: close")},
		{"http/1.0", "GET /?size=5 HTTP/1.0\r\n\r\n", false, head(5, "\r\nConnection: close") + body(5)},
		{"half-closed client", "GET /?size=2 HTTP/1.1\r\nHost: a\r\n\r\nGET /?size=1 HTTP/1.1\r\nHost: a\r\n\r\n", true, head(2, "") + "xx" + head(1, "") + "x"},
		{"hand-off keeps order", "GET /?size=1 HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /?size=2&delay=1ms HTTP/1.1\r\nHost: a\r\n\r\n" +
			"GET /?size=" + strconv.Itoa(big) + " HTTP/1.1\r\nHost: a\r\n\r\nGET /?size=4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false,
			head(1, "") + "x" + head(64, "") + body(64) + head(2, "") + "xx" + head(big, "") + body(big) + head(4, "\r\nConnection: close") + "xxxx"},
		{"half-closed, more than the output cap", strings.Repeat("GET /?size=16384 HTTP/1.1\r\nHost: a\r\n\r\n", 10), true,
			strings.Repeat(head(16384, "")+body(16384), 10)},
		{"malformed", "GET /?size=1 HTTP/1.1\r\nHost: a\r\n\r\nNONSENSE\r\n\r\n", false,
			head(1, "") + "x" + "HTTP/1.1 400 bad request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		// RFC 9112: disagreeing Content-Lengths (§6.3), both framings
		// (§6.1) and a missing or repeated Host (§3.2) are refused; the
		// smuggled second request is never executed.
		{"content-length 27 then 0", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 27\r\nContent-Length: 0\r\n\r\n" +
			"GET /?size=9 HTTP/1.1\r\nHost: a\r\n\r\n", false, bad400},
		{"content-length 0 then 27", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 27\r\n\r\n" +
			"GET /?size=9 HTTP/1.1\r\nHost: a\r\n\r\n", false, bad400},
		{"same content-length twice", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", false,
			head(64, "\r\nConnection: close") + body(64)},
		{"transfer-encoding and content-length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false,
			"HTTP/1.1 400 bad request: both Transfer-Encoding and Content-Length\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"http/1.1 without host", "GET / HTTP/1.1\r\n\r\n", false, bad400},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false, bad400},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", httpMaxRequestHead) + "\r\n\r\n", false,
			"HTTP/1.1 431 request header too large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := exchange(t, tc.send, tc.half); got != tc.want {
				if len(got) > 300 || len(tc.want) > 300 {
					t.Errorf("got %d bytes, want %d", len(got), len(tc.want))
				} else {
					t.Errorf("got  %q\nwant %q", got, tc.want)
				}
			}
		})
	}
	// Many keep-alive connections at once, through latlab's own client.
	cfg := workload.Config{Workload: wire.HTTP, Target: "http://" + addr + "/", Flows: 64, Threads: 2,
		Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond}
	res, err := workload.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Transactions == 0 || res.Errors.Total() != 0 || res.StatusCodes["200"] != res.Transactions {
		t.Errorf("64 connections: %d transactions, errors %+v, codes %v", res.Transactions, res.Errors, res.StatusCodes)
	}
}
