package workload

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latlab/latlab/internal/wire"
)

// MaxHTTPConnections bounds --connections for the http workload.
const MaxHTTPConnections = 16384

// HTTPErrors counts failed requests by class. A failed request never
// contributes a latency; it is counted here and the connection is reopened.
type HTTPErrors struct {
	// Connect: a (re)connection failed (refused, unreachable, reset
	// during the handshake).
	Connect int64 `json:"connect"`
	// Read and Write: the socket failed or the server closed it while a
	// request was in flight.
	Read  int64 `json:"read"`
	Write int64 `json:"write"`
	// Timeout: no complete response within the request timeout.
	Timeout int64 `json:"timeout"`
	// Parse: a response that is not valid HTTP/1.x (bad status line or
	// header, bad chunk framing, oversized header, bytes after a response).
	Parse int64 `json:"parse"`
	// Status: complete responses whose status is not 2xx (the codes are in
	// Result.StatusCodes). These are also transactions: their latency is in
	// the histogram, as wrk counts them.
	Status int64 `json:"status"`
}

// Total is the number of failed requests (status errors included).
func (e *HTTPErrors) Total() int64 {
	return e.Connect + e.Read + e.Write + e.Timeout + e.Parse + e.Status
}

func (e *HTTPErrors) add(o *HTTPErrors) {
	e.Connect += o.Connect
	e.Read += o.Read
	e.Write += o.Write
	e.Timeout += o.Timeout
	e.Parse += o.Parse
	e.Status += o.Status
}

// httpTarget is a parsed --target for the http workload.
type httpTarget struct {
	host    string // Host header
	addr    string // HOST:PORT to dial
	path    string // request target (path and query)
	display string // the URL as reported
}

// parseHTTPTarget accepts http://HOST[:PORT][/PATH] or a bare HOST:PORT
// (what `latlab lab` passes), which becomes http://HOST:PORT/ — with
// ?size=RESP when respSize > 0, so a lab's size axis sets the body size of
// latlab's own endpoint.
func parseHTTPTarget(target string, respSize int) (httpTarget, error) {
	var t httpTarget
	if !strings.Contains(target, "://") {
		// A bare host[:port]: anything that would end the authority part
		// of a URL (or is not part of a host at all) is refused rather
		// than silently moved into the path or query.
		if i := strings.IndexFunc(target, func(r rune) bool {
			return r <= ' ' || r >= 0x7f || strings.ContainsRune("/?#@\\", r)
		}); i >= 0 {
			return t, fmt.Errorf("http target %q: %q is not allowed in host[:port] (give a full http:// URL for a path)", target, target[i:i+1])
		}
		path := "/"
		if respSize > 0 {
			path = "/?size=" + strconv.Itoa(respSize)
		}
		target = "http://" + TargetAddr(target) + path
	}
	u, err := url.Parse(target)
	if err != nil {
		return t, fmt.Errorf("http target %q: %w", target, err)
	}
	if u.Scheme != "http" {
		return t, fmt.Errorf("http target %q: only http:// is supported (no TLS)", target)
	}
	if u.Host == "" {
		return t, fmt.Errorf("http target %q: no host", target)
	}
	t.host = u.Host
	t.addr = u.Host
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		t.addr = net.JoinHostPort(strings.Trim(u.Host, "[]"), "80")
	}
	if h, _, err := net.SplitHostPort(t.addr); err != nil || strings.ContainsAny(h, "[]") {
		return t, fmt.Errorf("http target %q: %q is not a host:port", target, t.addr)
	}
	t.path = u.RequestURI()
	t.display = u.String()
	return t, nil
}

// buildHTTPRequest is the request every connection sends, built once.
func buildHTTPRequest(cfg *Config, t httpTarget) ([]byte, error) {
	method := cfg.Method
	if method == "" {
		method = "GET"
	}
	for _, r := range method {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return nil, fmt.Errorf("method %q is not an HTTP token", method)
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, t.path)
	has := map[string]bool{}
	var hdrs bytes.Buffer
	for _, h := range cfg.Headers {
		name, val, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(val, "\r\n") {
			return nil, fmt.Errorf("header %q: want \"Name: value\"", h)
		}
		has[strings.ToLower(name)] = true
		fmt.Fprintf(&hdrs, "%s: %s\r\n", name, strings.TrimSpace(val))
	}
	if !has["host"] {
		fmt.Fprintf(&b, "Host: %s\r\n", t.host)
	}
	if !has["user-agent"] {
		b.WriteString("User-Agent: latlab\r\n")
	}
	b.Write(hdrs.Bytes())
	if (len(cfg.Body) > 0 || method == "POST" || method == "PUT" || method == "PATCH") && !has["content-length"] {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(cfg.Body))
	}
	if cfg.NoKeepAlive && !has["connection"] {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(cfg.Body)
	return b.Bytes(), nil
}

func (c *Config) validateHTTP() error {
	if c.Target == "" {
		return fmt.Errorf("no target: give an URL, e.g. http://127.0.0.1:7707/")
	}
	t, err := parseHTTPTarget(c.Target, c.RespSize)
	if err != nil {
		return err
	}
	if _, err := buildHTTPRequest(c, t); err != nil {
		return err
	}
	if c.Flows < 1 || c.Flows > MaxHTTPConnections {
		return fmt.Errorf("connections %d outside [1, %d]", c.Flows, MaxHTTPConnections)
	}
	if c.Threads < 1 || c.Threads > c.Flows {
		return fmt.Errorf("threads %d outside [1, connections=%d]", c.Threads, c.Flows)
	}
	if c.Duration <= 0 || c.Warmup < 0 || c.Warmup+c.Duration > wire.MaxDuration {
		return fmt.Errorf("warm-up %v + duration %v must be positive and at most %v", c.Warmup, c.Duration, wire.MaxDuration)
	}
	if c.Rate < 0 || c.Rate != c.Rate || c.Rate > 1e9 {
		return fmt.Errorf("rate %v must be a positive number of requests per second", c.Rate)
	}
	if c.Reverse {
		return fmt.Errorf("reverse direction applies to tcp_stream only")
	}
	if c.Interval < 10*time.Millisecond {
		return fmt.Errorf("interval %v too short (minimum 10ms)", c.Interval)
	}
	if c.IOTimeout < time.Millisecond {
		return fmt.Errorf("request timeout %v too short", c.IOTimeout)
	}
	return nil
}

func (c *Config) httpDefaults() {
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if c.Flows == 0 {
		c.Flows = 1
	}
	if c.Threads == 0 {
		c.Threads = 1
	}
	if c.IOTimeout == 0 {
		c.IOTimeout = 10 * time.Second
	}
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	c.ReqSize = len(c.Body)
}
