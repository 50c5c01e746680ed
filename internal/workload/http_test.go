//go:build linux

package workload

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/server"
	"github.com/latlab/latlab/internal/wire"
)

func httpConfig(target string) Config {
	return Config{Target: target, Workload: wire.HTTP, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond,
		Interval: 100 * time.Millisecond, IOTimeout: 2 * time.Second}
}

func checkHTTP(t *testing.T, res *Result) {
	t.Helper()
	if res.Transactions <= 0 {
		t.Fatalf("no transactions: %+v", res)
	}
	if res.Hist.Count() != res.Transactions {
		t.Errorf("histogram holds %d values, %d transactions", res.Hist.Count(), res.Transactions)
	}
	var sum int64
	for _, iv := range res.Intervals {
		sum += iv.Transactions
	}
	if sum != res.Transactions {
		t.Errorf("intervals hold %d, total %d", sum, res.Transactions)
	}
	var codes int64
	for _, n := range res.StatusCodes {
		codes += n
	}
	if codes != res.Transactions {
		t.Errorf("status codes %v sum to %d, %d transactions", res.StatusCodes, codes, res.Transactions)
	}
	if l := res.Latency; l == nil || !(0 < l.Min && l.Min <= l.P50 && l.P50 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("latency summary: %+v", l)
	}
}

// latlab serve answers HTTP next to its own protocol; every client mode
// runs against it without errors.
func TestHTTPAgainstServe(t *testing.T) {
	srv, _ := startServer(t, server.Config{})
	addr := srv.Addr().String()
	cases := []struct {
		name string
		cfg  func(c *Config)
	}{
		{"host_port", func(c *Config) {}},
		{"url", func(c *Config) { c.Target = "http://" + addr + "/any/path?size=1000" }},
		{"large_body", func(c *Config) { c.Target = "http://" + addr + "/?size=300000" }},
		{"threads", func(c *Config) { c.Flows, c.Threads = 6, 2 }},
		{"no_keepalive", func(c *Config) { c.NoKeepAlive = true; c.Flows = 2 }},
		{"open_loop", func(c *Config) { c.Rate = 2000; c.Flows = 4; c.Threads = 2 }},
		{"post", func(c *Config) {
			c.Method = "POST"
			c.Body = strings.Repeat("b", 5000)
			c.Headers = []string{"X-Test: 1"}
		}},
		{"head", func(c *Config) { c.Method = "HEAD" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := httpConfig(addr)
			tc.cfg(&cfg)
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkHTTP(t, res)
			if n := res.Errors.Total(); n != 0 {
				t.Errorf("errors against latlab serve: %+v", res.Errors)
			}
			if res.StatusCodes["200"] != res.Transactions {
				t.Errorf("status codes %v", res.StatusCodes)
			}
			if cfg.Rate > 0 {
				if res.OpenLoop == nil {
					t.Fatal("no open-loop report")
				}
				if want := cfg.Rate * cfg.Duration.Seconds(); float64(res.Transactions) < 0.8*want || float64(res.Transactions) > 1.05*want {
					t.Errorf("open loop: %d transactions, want about %.0f", res.Transactions, want)
				}
			}
		})
	}
}

// testHTTPServer is a misbehaving HTTP server: behave decides, per request
// (numbered from 1 over the whole server), what goes back.
func testHTTPServer(t *testing.T, behave func(n int64, c net.Conn) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// Read one request head (the client sends no body here).
					for {
						l, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if l == "\r\n" {
							break
						}
					}
					if !behave(n.Add(1), c) {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

// Open loop: a server that stalls 100ms once per second shows the stall in
// p99 (requests queued behind it are charged from their intended time).
// Closed loop: the same stall costs one slow request, and the report says
// latencies omit queued time.
func TestHTTPStall(t *testing.T) {
	for _, open := range []bool{true, false} {
		t.Run(fmt.Sprintf("open=%v", open), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			var mu sync.Mutex
			nextStall := start.Add(350 * time.Millisecond)
			addr := testHTTPServer(t, func(n int64, c net.Conn) bool {
				mu.Lock()
				stall := time.Now().After(nextStall)
				if stall {
					nextStall = nextStall.Add(time.Second)
				}
				mu.Unlock()
				if stall {
					time.Sleep(100 * time.Millisecond)
				}
				_, err := io.WriteString(c, okResponse)
				return err == nil
			})
			cfg := httpConfig(addr)
			cfg.Warmup, cfg.Duration = 100*time.Millisecond, time.Second
			if open {
				cfg.Rate = 2000
			}
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkHTTP(t, res)
			p99 := time.Duration(res.Latency.P99)
			if open {
				if p99 < 80*time.Millisecond {
					t.Errorf("open loop p99 %v does not show the 100ms stall", p99)
				}
				if res.OpenLoop == nil || res.OpenLoop.LateSends == 0 {
					t.Errorf("open loop: no late sends counted behind the stall: %+v", res.OpenLoop)
				}
			} else {
				if res.OpenLoop != nil {
					t.Error("closed loop reports open loop")
				}
				if time.Duration(res.Latency.Max) < 100*time.Millisecond {
					t.Errorf("closed loop max %v misses the stall", time.Duration(res.Latency.Max))
				}
				if p99 > 50*time.Millisecond {
					t.Errorf("closed loop p99 %v: expected the stall to be one request (coordinated omission)", p99)
				}
			}
		})
	}
}

// Misbehaving servers give counted errors and a run that finishes.
func TestHTTPErrors(t *testing.T) {
	cases := []struct {
		name   string
		behave func(n int64, c net.Conn) bool
		check  func(t *testing.T, res *Result)
	}{
		{"status_500", func(n int64, c net.Conn) bool {
			resp := okResponse
			if n%2 == 0 {
				resp = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nerr"
			}
			_, err := io.WriteString(c, resp)
			return err == nil
		}, func(t *testing.T, res *Result) {
			if res.StatusCodes["500"] == 0 || res.StatusCodes["200"] == 0 || res.Errors.Status != res.StatusCodes["500"] {
				t.Errorf("codes %v, errors %+v", res.StatusCodes, res.Errors)
			}
		}},
		{"reset", func(n int64, c net.Conn) bool {
			if n%5 == 0 {
				c.(*net.TCPConn).SetLinger(0)
				return false // RST with the request in flight
			}
			_, err := io.WriteString(c, okResponse)
			return err == nil
		}, func(t *testing.T, res *Result) {
			if res.Errors.Read == 0 {
				t.Errorf("resets not counted as read errors: %+v", res.Errors)
			}
		}},
		{"malformed", func(n int64, c net.Conn) bool {
			resp := okResponse
			switch n % 4 {
			case 1:
				resp = "HTZP/9.9 OK\r\n\r\n"
			case 2:
				resp = "HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n"
			}
			_, err := io.WriteString(c, resp)
			return err == nil
		}, func(t *testing.T, res *Result) {
			if res.Errors.Parse == 0 {
				t.Errorf("malformed responses not counted: %+v", res.Errors)
			}
		}},
		{"chunked_and_close", func(n int64, c net.Conn) bool {
			if n%3 == 0 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
				return false
			}
			_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\n\r\n")
			return err == nil
		}, func(t *testing.T, res *Result) {
			if res.Errors.Total() != 0 {
				t.Errorf("valid responses counted as errors: %+v", res.Errors)
			}
		}},
		{"hang", func(n int64, c net.Conn) bool {
			if n%10 == 0 {
				time.Sleep(200 * time.Millisecond) // never answers within the timeout
				return false
			}
			_, err := io.WriteString(c, okResponse)
			return err == nil
		}, func(t *testing.T, res *Result) {
			if res.Errors.Timeout == 0 {
				t.Errorf("timeouts not counted: %+v", res.Errors)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := testHTTPServer(t, tc.behave)
			cfg := httpConfig(addr)
			cfg.Flows, cfg.IOTimeout = 2, 30*time.Millisecond
			done := make(chan struct{})
			var res *Result
			var err error
			go func() {
				defer close(done)
				res, err = Run(context.Background(), cfg)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("run did not finish")
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Transactions == 0 {
				t.Fatalf("no transactions: %+v", res)
			}
			tc.check(t, res)
		})
	}
}

// A connection refused mid-run counts connect errors; refused at the start
// fails the run with a clear message.
func TestHTTPConnectErrors(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := Run(context.Background(), httpConfig(addr))
	if err == nil || !strings.Contains(err.Error(), "connect to") {
		t.Errorf("run against nothing: %v", err)
	}
	cfg := httpConfig(addr)
	cfg.NoKeepAlive = true // connects during the run
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors.Connect == 0 || res.Transactions != 0 {
		t.Errorf("refused connects: %+v, %d transactions", res.Errors, res.Transactions)
	}
}

func TestHTTPTarget(t *testing.T) {
	for _, tc := range []struct {
		in         string
		size       int
		addr, path string
	}{
		{"127.0.0.1:8080", 0, "127.0.0.1:8080", "/"},
		{"10.0.0.2:7707", 256, "10.0.0.2:7707", "/?size=256"},
		{"http://[::1]/x?y=1", 0, "[::1]:80", "/x?y=1"},
		{"http://localhost:81", 0, "localhost:81", "/"},
		{"127.0.0.1", 0, "127.0.0.1:7707", "/"},
	} {
		got, err := parseHTTPTarget(tc.in, tc.size)
		if err != nil || got.addr != tc.addr || got.path != tc.path {
			t.Errorf("%q: %+v %v, want %s %s", tc.in, got, err, tc.addr, tc.path)
		}
	}
	if _, err := parseHTTPTarget("https://x/", 0); err == nil {
		t.Error("https accepted")
	}
	cfg := Config{Workload: wire.HTTP, Target: "x:1", Method: "GET", Headers: []string{"Host: other", "X-A: b"}, NoKeepAlive: true}
	req, _ := buildHTTPRequest(&cfg, httpTarget{host: "x:1", path: "/"})
	if want := "GET / HTTP/1.1\r\nUser-Agent: latlab\r\nHost: other\r\nX-A: b\r\nConnection: close\r\n\r\n"; string(req) != want {
		t.Errorf("request %q, want %q", req, want)
	}
}
