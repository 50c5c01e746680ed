package server

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/latlab/latlab/internal/wire"
)

// latlab serve answers HTTP/1.1 on its one port, next to the latlab
// protocol: handleConn hands a connection whose first bytes are an HTTP
// method to serveHTTP. Any path answers 200 with a body of
// HTTPDefaultBodySize bytes; the query may change that:
//
//	GET /?size=N         N-byte body (0 ≤ N ≤ MaxHTTPBody)
//	GET /?delay=D        answer after D (a Go duration, ≤ MaxHTTPDelay)
//
// Keep-alive is the default (HTTP/1.1), Connection: close and HTTP/1.0 are
// honoured; request bodies (Content-Length) are read and discarded, chunked
// ones refused with 411. Plain requests are answered by one event loop
// (http_loop_linux.go); a connection whose request needs more (a body, a
// delay, a large response, an error) is handed to serveHTTP, a goroutine
// on the runtime's netpoller. The endpoint exists so the lab can run http
// through every mode, and so the client can be compared against a known
// server; it is not pinned and does not report CPU time.

// Limits of the HTTP endpoint.
const (
	HTTPDefaultBodySize = 64
	MaxHTTPBody         = 64 << 20
	MaxHTTPDelay        = 10 * time.Second
)

var httpBody = bytes.Repeat([]byte{'x'}, 64<<10)

// serveHTTP answers HTTP requests on c until the client closes, errs or the
// server stops. pre holds the bytes handleConn already read, owed the
// responses the event loop still owed the client (written first).
func (s *Server) serveHTTP(c net.Conn, pre, owed []byte) {
	defer c.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-s.done:
			c.Close()
		case <-stop:
		}
	}()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if len(owed) > 0 {
		c.SetWriteDeadline(time.Now().Add(s.cfg.HTTPRequestTimeout))
		if _, err := c.Write(owed); err != nil {
			return
		}
		owed = nil
	}
	buf := make([]byte, httpMaxRequestHead)
	w := copy(buf, pre)
	r := 0
	out := make([]byte, 0, 4096)
	for {
		// Read a request head: the keep-alive idle timeout until its first
		// byte, then HTTPHeadTimeout for the whole head (per-read
		// deadlines would let a client send a byte every few seconds
		// forever).
		// The whole request — head, body, delay, response — must be
		// done within HTTPRequestTimeout of its first byte: per-read and
		// per-write deadlines let a drip-reading client hold the
		// connection for an hour with one response.
		end := -1
		var headDeadline, reqDeadline time.Time
		if r < w {
			headDeadline = time.Now().Add(s.cfg.HTTPHeadTimeout)
			reqDeadline = time.Now().Add(s.cfg.HTTPRequestTimeout)
		}
		for {
			if end = wire.IndexCRLFCRLF(buf[r:w]); end >= 0 {
				break
			}
			if r > 0 {
				w = copy(buf, buf[r:w])
				r = 0
			}
			if w == len(buf) {
				s.httpError(c, 431, "request header too large")
				return
			}
			if headDeadline.IsZero() {
				c.SetReadDeadline(time.Now().Add(s.adm.httpIdle()))
			} else {
				c.SetReadDeadline(headDeadline)
			}
			n, err := c.Read(buf[w:])
			if n == 0 && err != nil {
				return
			}
			if headDeadline.IsZero() {
				headDeadline = time.Now().Add(s.cfg.HTTPHeadTimeout)
				reqDeadline = time.Now().Add(s.cfg.HTTPRequestTimeout)
			}
			w += n
		}
		head := buf[r : r+end]
		r += end + 4
		req, ok := parseHTTPRequest(head)
		if !ok {
			s.httpError(c, 400, "bad request")
			return
		}
		if req.chunked && req.hasLength {
			// RFC 9112 §6.1: both framings at once is how requests are smuggled.
			s.httpError(c, 400, "bad request: both Transfer-Encoding and Content-Length")
			return
		}
		// Discard the request body.
		if req.chunked {
			s.httpError(c, 411, "chunked request bodies are not supported; send Content-Length")
			return
		}
		for req.bodyLen > 0 {
			if r == w {
				r, w = 0, 0
				c.SetReadDeadline(reqDeadline)
				n, err := c.Read(buf)
				if n == 0 && err != nil {
					return
				}
				w = n
			}
			k := min(int64(w-r), req.bodyLen)
			r += int(k)
			req.bodyLen -= k
		}
		if r == w {
			r, w = 0, 0
		}
		if req.delay > 0 {
			if time.Until(reqDeadline) < req.delay {
				return // the delay would outlast the request's deadline
			}
			t := time.NewTimer(req.delay)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return
			}
		}
		out = appendHTTPHead(out[:0], req)
		body := req.size
		if req.head {
			body = 0
		}
		// Small bodies go out in the same write as the header.
		for body > 0 && len(out) < cap(out) {
			k := min(int(body), cap(out)-len(out))
			out = append(out, httpBody[:k]...)
			body -= int64(k)
		}
		c.SetWriteDeadline(reqDeadline)
		if _, err := c.Write(out); err != nil {
			return
		}
		for body > 0 {
			k := min(body, int64(len(httpBody)))
			if _, err := c.Write(httpBody[:k]); err != nil {
				return
			}
			body -= k
		}
		if req.close {
			return
		}
	}
}

// httpError answers an error and drains the connection (its caller
// closes it): closing a socket with unread bytes sends a reset, which can
// reach the client before the status and discard it, so the client saw a
// reset instead of 503 or 431. It shuts down its side, then reads and
// discards for up to httpLinger and httpLingerMax bytes (a lingering
// close), unless MaxPending connections already linger.
func (s *Server) httpError(c net.Conn, code int, msg string) {
	s.rlog.Warn(msg, "http request refused", "peer", c.RemoteAddr().String(), "status", code)
	b := []byte("HTTP/1.1 " + strconv.Itoa(code) + " " + msg + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(b); err != nil {
		return
	}
	if s.lingering.Add(1) > int64(s.cfg.MaxPending) {
		s.lingering.Add(-1)
		return
	}
	defer s.lingering.Add(-1)
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(httpLinger))
	io.CopyN(io.Discard, c, httpLingerMax)
}

// appendHTTPHead appends the response head for req.
func appendHTTPHead(out []byte, req httpRequest) []byte {
	out = append(out, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: "...)
	out = strconv.AppendInt(out, req.size, 10)
	if req.close {
		out = append(out, "\r\nConnection: close"...)
	}
	return append(out, "\r\n\r\n"...)
}

type httpRequest struct {
	head, chunked, close bool
	hasLength            bool // a Content-Length header was present
	bodyLen, size        int64
	delay                time.Duration
}

// parseHTTPRequest parses a request head (without the final CRLFCRLF). It
// refuses (false) what RFC 9112 says a server must reject: Content-Length
// headers that disagree (a smuggling vector: §6.3), an HTTP/1.1 request
// without exactly one Host header (§3.2), a malformed line: a field name
// that is not a token right before its colon, obs-fold, control bytes in a
// line (§5). A request with
// both Transfer-Encoding and Content-Length is returned with chunked and
// hasLength set, for the caller to refuse.
func parseHTTPRequest(head []byte) (httpRequest, bool) {
	req := httpRequest{size: HTTPDefaultBodySize}
	line, rest := head, []byte(nil)
	if i := wire.IndexCRLF(head); i >= 0 {
		line, rest = head[:i], head[i+2:]
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return req, false
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 <= 0 {
		return req, false
	}
	method, target, proto := line[:sp1], line[sp1+1:sp1+1+sp2], line[sp1+2+sp2:]
	if !wire.IsToken(method) || !wire.ValidFieldValue(target) || bytes.ContainsAny(target, " \t") {
		return req, false
	}
	hosts := 0
	switch string(proto) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		req.close = true
		hosts = -1 // Host is optional before 1.1
	default:
		return req, false
	}
	req.head = string(method) == "HEAD"
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		for _, kv := range bytes.Split(target[q+1:], []byte{'&'}) {
			k, v, _ := bytes.Cut(kv, []byte{'='})
			switch string(k) {
			case "size":
				n, err := strconv.ParseInt(string(v), 10, 64)
				if err != nil || n < 0 || n > MaxHTTPBody {
					return req, false
				}
				req.size = n
			case "delay":
				d, err := time.ParseDuration(string(v))
				if err != nil || d < 0 || d > MaxHTTPDelay {
					return req, false
				}
				req.delay = d
			}
		}
	}
	for len(rest) > 0 {
		var h []byte
		if i := wire.IndexCRLF(rest); i >= 0 {
			h, rest = rest[:i], rest[i+2:]
		} else {
			h, rest = rest, nil
		}
		// RFC 9112 §5: a field name is a token directly followed by its
		// colon (whitespace before it → 400, §5.1: it is how
		// "Content-Length : 3" was skipped and the body read as a second
		// request); a line starting with whitespace is obs-fold (→ 400,
		// §5.2); NUL and other control bytes in a value → 400 (§5.5).
		colon := bytes.IndexByte(h, ':')
		if colon <= 0 || !wire.IsToken(h[:colon]) || !wire.ValidFieldValue(h[colon+1:]) {
			return req, false
		}
		name, val := h[:colon], wire.TrimOWS(h[colon+1:])
		switch {
		case wire.ASCIIEqualFold(name, "content-length"):
			v, ok := wire.ParseDec(val)
			if !ok || (req.hasLength && v != req.bodyLen) {
				return req, false
			}
			req.bodyLen, req.hasLength = v, true
		case wire.ASCIIEqualFold(name, "host"):
			if hosts >= 0 {
				hosts++
			}
		case wire.ASCIIEqualFold(name, "transfer-encoding"):
			req.chunked = true
		case wire.ASCIIEqualFold(name, "connection"):
			if wire.ASCIIContainsFold(val, "close") {
				req.close = true
			} else if wire.ASCIIContainsFold(val, "keep-alive") {
				req.close = false
			}
		}
	}
	if hosts == 0 || hosts > 1 {
		return req, false
	}
	return req, true
}

// isHTTPMethod reports whether b (the first bytes of a connection) starts
// with an HTTP method token and a space.
func isHTTPMethod(b []byte) bool {
	for _, m := range []string{"GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "TRACE ", "CONNECT "} {
		n := min(len(m), len(b))
		if n > 0 && string(b[:n]) == m[:n] {
			return true
		}
	}
	return false
}
