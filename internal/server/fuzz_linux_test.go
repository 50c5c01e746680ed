//go:build linux

package server

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/latlab/latlab/internal/wire"
)

// A fuzz target for the HTTP endpoint's request parser. The server's
// framing loop (serveHTTP, httpLoop.serve: finding heads, discarding
// bodies) reads sockets directly and is reached here only through
// parseHTTPRequest.

var fuzzRequests = []string{
	"GET / HTTP/1.1\r\nHost: x",
	"GET /?size=1024&delay=1ms HTTP/1.1\r\nHost: 127.0.0.1:7707\r\nUser-Agent: latlab",
	"HEAD /?size=0 HTTP/1.1\r\nhost: x\r\nConnection: close",
	"GET / HTTP/1.0",
	"GET / HTTP/1.0\r\nConnection: keep-alive",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 27",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\nContent-Length: 0",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5",
	"GET / HTTP/1.1",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b",
	"GET /?size=99999999999 HTTP/1.1\r\nHost: x",
	"GET /?delay=-1s HTTP/1.1\r\nHost: x",
	"GET  HTTP/1.1\r\nHost: x",
	"GET / HTTP/2.0\r\nHost: x",
	"GET / HTTP/1.1\r\nbad header",
	"POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 3",
	"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b",
	"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b",
}

func FuzzParseHTTPRequest(f *testing.F) {
	for _, r := range fuzzRequests {
		f.Add([]byte(r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// The server hands the parser one head without its final CRLFCRLF.
		head := b
		if i := wire.IndexCRLFCRLF(b); i >= 0 {
			head = b[:i]
		}
		req, ok := parseHTTPRequest(head)
		if !ok {
			return
		}
		if req.size < 0 || req.size > MaxHTTPBody || req.delay < 0 || req.delay > MaxHTTPDelay || req.bodyLen < 0 {
			t.Fatalf("out of bounds request accepted: %+v", req)
		}
		if req.bodyLen > 0 && !req.hasLength {
			t.Fatalf("body of %d bytes without Content-Length: %+v", req.bodyLen, req)
		}
		// RFC 9112 §5 (issue 37): an accepted head has no control bytes
		// but tab and its CRLFs, no obs-fold line, no whitespace before a
		// header's colon.
		lines := bytes.Split(head, []byte("\r\n"))
		for i, l := range lines {
			for _, c := range l {
				if (c < ' ' && c != '\t') || c == 0x7f {
					t.Fatalf("accepted a head with control byte %#x in line %q", c, l)
				}
			}
			if i == 0 {
				continue
			}
			if len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
				t.Fatalf("accepted obs-fold line %q", l)
			}
			if name, _, _ := bytes.Cut(l, []byte(":")); bytes.ContainsAny(name, " \t") {
				t.Fatalf("accepted whitespace in field name %q", name)
			}
		}
		if req.size > httpLoopMaxBody {
			return
		}
		// What the server answers must be one complete HTTP/1.1 response,
		// to the byte, with the keep-alive the request asked for. (latlab's
		// own client parser lives in internal/workload; net/http's is the
		// reference here, and FuzzHTTPResponse fuzzes latlab's.)
		resp := appendHTTPResponse(nil, req)
		method := "GET"
		if req.head {
			method = "HEAD"
		}
		br := bufio.NewReader(bytes.NewReader(resp))
		r, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("response %q to %+v: %v", resp, req, err)
		}
		got, err := io.ReadAll(r.Body)
		want := req.size
		if req.head {
			want = 0
		}
		if err != nil || r.StatusCode != 200 || r.Close != req.close || int64(len(got)) != want || br.Buffered() != 0 {
			t.Fatalf("response %q to %+v: status %d, close %v, %d body bytes (want %d), %d bytes after it, err %v",
				resp, req, r.StatusCode, r.Close, len(got), want, br.Buffered(), err)
		}
	})
}
