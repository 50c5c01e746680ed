package workload

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
)

// Fuzz targets for the HTTP client's response parser and target parser
// (the endpoint's request parser has FuzzParseHTTPRequest in
// internal/server).

var fuzzResponses = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 64\r\n\r\n" + strings.Repeat("x", 64),
	"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nerr",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.0 200 OK\r\n\r\nuntil close",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTZP/9.9 OK\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
}

// responseOutcome is how the client ends up after reading a response:
// result is "done" (complete, nothing after it), "parse" (malformed, or
// bytes after the response), "head-too-large" or "incomplete" (the input
// ended first; for a read-until-close body a FIN would complete it).
type responseOutcome struct {
	result    string
	status    int
	keepAlive bool
	ps        int
	consumed  int // input bytes handed to the parser
}

// parseResponse feeds in to the client's parser as httpThread.read does,
// in reads of at most chunk bytes, through the connection's 64 KiB buffer.
func parseResponse(in []byte, head bool, chunk int) responseOutcome {
	th := &httpThread{head: head}
	c := &hconn{buf: make([]byte, httpBufSize), ps: psHead, status: -1}
	fed := 0
	out := func(r string) responseOutcome {
		return responseOutcome{result: r, status: c.status, keepAlive: c.keepAlive, ps: c.ps, consumed: fed}
	}
	for fed < len(in) {
		if c.w == len(c.buf) {
			if c.r == 0 {
				return out("head-too-large")
			}
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		}
		n := copy(c.buf[c.w:], in[fed:min(len(in), fed+chunk)])
		c.w += n
		fed += n
		done, ok := th.parse(c)
		if c.r < 0 || c.r > c.w {
			panic(fmt.Sprintf("parser position %d outside [0, %d]", c.r, c.w))
		}
		if !ok {
			return out("parse")
		}
		if done {
			if c.r != c.w || fed < len(in) {
				return out("parse") // bytes after the response
			}
			return out("done")
		}
	}
	return out("incomplete")
}

func FuzzHTTPResponse(f *testing.F) {
	for _, r := range fuzzResponses {
		f.Add([]byte(r), false, uint16(0))
		f.Add([]byte(r), true, uint16(7))
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool, split uint16) {
		if len(in) > 4*httpBufSize {
			return
		}
		whole := parseResponse(in, head, len(in))
		if whole.result == "done" && (whole.status < 100 || whole.status > 999) {
			t.Fatalf("status %d accepted", whole.status)
		}
		// TCP may deliver the response in any pieces: the verdict must not
		// depend on where they are cut.
		chunk := 1 + int(split)%(len(in)+1)
		part := parseResponse(in, head, chunk)
		if part.result != whole.result || part.status != whole.status || part.keepAlive != whole.keepAlive {
			t.Fatalf("in one read: %+v; in reads of %d bytes: %+v", whole, chunk, part)
		}
	})
}

func FuzzParseHTTPTarget(f *testing.F) {
	for _, tc := range []struct {
		in   string
		size int
	}{
		{"127.0.0.1:8080", 0}, {"10.0.0.2:7707", 256}, {"http://[::1]/x?y=1", 0}, {"http://localhost:81", 0},
		{"127.0.0.1", 0}, {"https://x/", 0}, {"http://user@host:1/p#frag", 0}, {"[fe80::1%eth0]:7707", 64},
	} {
		f.Add(tc.in, tc.size)
	}
	f.Fuzz(func(t *testing.T, target string, size int) {
		tg, err := parseHTTPTarget(target, size)
		if err != nil {
			return
		}
		if _, _, err := net.SplitHostPort(tg.addr); err != nil {
			t.Fatalf("%q: dial address %q: %v", target, tg.addr, err)
		}
		req, err := buildHTTPRequest(&Config{}, tg)
		if err != nil {
			return
		}
		// The request every connection sends must be well-formed HTTP/1.1:
		// METHOD SP TARGET SP HTTP/1.1, then header lines with a colon,
		// no stray CR, LF or control bytes.
		head, _, ok := bytes.Cut(req, []byte("\r\n\r\n"))
		if !ok {
			t.Fatalf("%q: request %q has no end of head", target, req)
		}
		lines := strings.Split(string(head), "\r\n")
		parts := strings.Split(lines[0], " ")
		if len(parts) != 3 || parts[1] == "" || parts[1][0] != '/' || parts[2] != "HTTP/1.1" {
			t.Fatalf("%q: malformed request line %q", target, lines[0])
		}
		for _, l := range lines {
			if strings.ContainsFunc(l, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
				t.Fatalf("%q: control byte in request line or header %q", target, l)
			}
		}
		for _, l := range lines[1:] {
			if name, _, ok := strings.Cut(l, ":"); !ok || name == "" || strings.ContainsAny(name, " \t") {
				t.Fatalf("%q: malformed header %q", target, l)
			}
		}
	})
}
