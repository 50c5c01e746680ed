package workload

import (
	"errors"
	"log/slog"
	"time"
)

// ErrNotSupported is returned on platforms without the raw-socket engine.
var ErrNotSupported = errors.New("not supported on this platform")

// ServerConfig configures a latlab server.
type ServerConfig struct {
	// Listen is the TCP and UDP address, e.g. ":7707" (all addresses, IPv4
	// and IPv6), "127.0.0.1:0" or "[::1]:7707". Port 0 picks a free port
	// that is free for both TCP and UDP.
	Listen string
	// NetNS is the path of a network namespace to serve in (empty: the
	// caller's). Every socket the server creates lives there.
	NetNS string
	// Logger receives one line per refused connection and per session. Nil
	// discards.
	Logger *slog.Logger
	// MaxSessions bounds concurrent sessions (default 64).
	MaxSessions int
	// MaxPending bounds connections that have not finished their header yet
	// (default 1024); beyond it new connections are closed at once.
	MaxPending int
	// HandshakeTimeout is how long a connection may take to send its header
	// (default 5s); slower clients are disconnected.
	HandshakeTimeout time.Duration
	// Grace is how long after warm-up+duration a session may stay open
	// before the server ends it (default 60s).
	Grace time.Duration
	// DropEvery makes the server drop every Nth UDP payload datagram it
	// receives. It exists to test loss handling; 0 never drops.
	DropEvery int
}

func (c *ServerConfig) defaults() {
	if c.Listen == "" {
		c.Listen = ":7707"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 64
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 1024
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = handshakeWait
	}
	if c.Grace <= 0 {
		c.Grace = 60 * time.Second
	}
}
