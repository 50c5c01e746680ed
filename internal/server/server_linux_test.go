//go:build linux

package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs a server on a loopback port until the test ends.
func startServer(t *testing.T, cfg Config) (*Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("server did not stop within 15s")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return srv, logs
}

// validHello is a Hello the server accepts.
func validHello() wire.Hello {
	return wire.Hello{Workload: wire.TCPRR, ReqSize: 64, RespSize: 1024, Warmup: 250 * time.Millisecond,
		Duration: 5 * time.Second, Flows: 2, ServerCPU: wire.CPUAuto}
}

// Bad input never takes the server down: each bad client gets its
// connection closed with a logged reason and a good client still runs.
func TestServerBadInput(t *testing.T) {
	srv, logs := startServer(t, Config{HandshakeTimeout: 300 * time.Millisecond, Grace: 300 * time.Millisecond})
	addr := srv.Addr().String()
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// expectClosed waits for the server to close c and returns what it sent.
	expectClosed := func(t *testing.T, c net.Conn) []byte {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		// Closing with unread input makes the kernel send a reset: that
		// is a close too. A timeout is not.
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("server did not close the connection: %v", err)
		}
		return b
	}
	hello := func(mut func(b []byte)) []byte {
		h := validHello()
		b, _ := h.MarshalBinary()
		if mut != nil {
			mut(b)
		}
		return b
	}
	cases := []struct {
		name   string
		send   []byte
		status int // expected reply status, -1 for none
		log    string
	}{
		{"garbage", []byte("SSH-2.0-OpenSSH_9.2\r\n"), -1, "bad magic"},
		{"wrong version", hello(func(b []byte) { b[5] = 7 }), int(wire.StatusBadVersion), "bad hello"},
		{"oversized", hello(func(b []byte) { b[12] = 0x7f }), int(wire.StatusBadRequest), "response size"},
		{"unknown kind", hello(func(b []byte) { b[6] = 77 }), -1, "unknown message kind"},
		{"attach to nothing", func() []byte {
			a := wire.Attach{Kind: wire.KindAttach, Session: 1}
			b, _ := a.MarshalBinary()
			return b
		}(), -1, "unknown session"},
		{"crr to nothing", func() []byte { a := wire.Attach{Kind: wire.KindCRR, Session: 1}; b, _ := a.MarshalBinary(); return b }(), -1, "unknown session"},
		{"slow", []byte("LLA"), -1, "no header"},
		{"silent", nil, -1, "no header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := dial(t)
			if len(c.send) > 0 {
				conn.Write(c.send)
			}
			got := expectClosed(t, conn)
			if c.status >= 0 {
				rep, err := wire.ReadHelloReply(bytes.NewReader(got))
				if err != nil {
					t.Fatalf("no reply before close: %v (%q)", err, got)
				}
				if rep.Status != byte(c.status) || rep.Message == "" {
					t.Errorf("reply %+v, want status %d with a message", rep, c.status)
				}
			}
			deadline := time.Now().Add(2 * time.Second)
			for !strings.Contains(logs.String(), c.log) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(logs.String(), c.log) {
				t.Errorf("log does not give the reason %q", c.log)
			}
		})
	}
	// Half-open: a session whose client vanishes after the hello is ended
	// by the server after warm-up+duration+grace.
	t.Run("half-open", func(t *testing.T) {
		conn := dial(t)
		h := validHello()
		h.Duration, h.Warmup = 100*time.Millisecond, 0
		b, _ := h.MarshalBinary()
		conn.Write(b)
		rep, err := wire.ReadHelloReply(conn)
		if err != nil || rep.Status != wire.StatusOK {
			t.Fatalf("hello: %+v %v", rep, err)
		}
		expectClosed(t, conn)
		if srv.lookup(rep.Session) != nil {
			t.Error("session still registered after its deadline")
		}
	})
	res, err := workload.Run(context.Background(), workload.Config{Target: addr, Workload: wire.TCPRR,
		Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond, Interval: 100 * time.Millisecond, ServerCPU: wire.CPUAuto})
	if err != nil {
		t.Fatalf("good client after bad ones: %v", err)
	}
	if res.Transactions == 0 {
		t.Fatal("good client ran no transactions")
	}
}

// The server bounds connections that have not sent their header.
func TestServerPendingLimit(t *testing.T) {
	srv, logs := startServer(t, Config{MaxPending: 2, HandshakeTimeout: 2 * time.Second})
	var conns []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(logs.String(), "too many connections") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "too many connections") {
		t.Error("server accepted more pending connections than MaxPending")
	}
}
