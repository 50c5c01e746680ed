package server

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/latlab/latlab/internal/wire"
)

// Config configures a latlab server. Every limit has a default (the
// Default* constants) that applies when the field is zero; docs/security.md
// explains each.
type Config struct {
	// Listen is the TCP and UDP address, e.g. ":7707" (all addresses, IPv4
	// and IPv6), "127.0.0.1:0" or "[::1]:7707". Port 0 picks a free port
	// that is free for both TCP and UDP.
	Listen string
	// NetNS is the path of a network namespace to serve in (empty: the
	// caller's). Every socket the server creates lives there.
	NetNS string
	// Logger receives one line per refused connection and per session. Nil
	// discards. Refusals are rate-limited per reason.
	Logger *slog.Logger

	// MaxSessions bounds concurrent sessions, MaxPeerSessions those of one
	// client address.
	MaxSessions, MaxPeerSessions int
	// MaxFlows bounds the data flows of all sessions (each tcp_rr,
	// tcp_stream and udp_rr flow is served by a locked OS thread; tcp_crr
	// flows count too), MaxPeerFlows those of one client address. MaxFlows
	// must stay well under the Go runtime's 10,000-thread limit.
	MaxFlows, MaxPeerFlows int
	// MaxBuffer is the largest request, response or stream buffer a
	// session may ask for (at most MaxStreamBuffer).
	MaxBuffer int
	// MaxMemory bounds the buffer bytes of all sessions together; one
	// client address may hold at most a quarter of it. Buffers are allocated
	// only after a session is admitted.
	MaxMemory int64
	// MaxSessionTime bounds a session's warm-up + duration.
	MaxSessionTime time.Duration
	// MaxPending bounds connections that have not finished their header yet,
	// MaxPeerPending those of one client address; beyond them new
	// connections are closed at once.
	MaxPending, MaxPeerPending int
	// HandshakeTimeout is how long a connection may take to send its header
	// (default 5s; shortened for an address holding many header slots).
	HandshakeTimeout time.Duration
	// Grace is how long after warm-up+duration a session may stay open
	// before the server ends it (default 60s).
	Grace time.Duration
	// MaxHTTPConns bounds open HTTP connections, MaxPeerHTTPConns those of
	// one client address; beyond them a connection gets 503.
	MaxHTTPConns, MaxPeerHTTPConns int
	// HTTPIdleTimeout closes a keep-alive connection idle that long
	// (shortened to 1s while more than 75% of MaxHTTPConns are open);
	// HTTPHeadTimeout bounds the time from a request head's first byte to
	// its last (slowloris). HTTPRequestTimeout bounds a whole request:
	// from its head's first byte until the last byte of its response,
	// body, delay and response write included (a drip-reading client).
	HTTPIdleTimeout, HTTPHeadTimeout, HTTPRequestTimeout time.Duration
	// DropEvery makes the server drop every Nth UDP payload datagram it
	// receives. It exists to test loss handling; 0 never drops.
	DropEvery int
	// Now is the clock (nil: time.Now). Tests use it for the log limiter.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = ":7707"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	setInt := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	setDur := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	setInt(&c.MaxSessions, DefaultMaxSessions)
	setInt(&c.MaxPeerSessions, min(DefaultMaxPeerSessions, c.MaxSessions))
	setInt(&c.MaxFlows, DefaultMaxFlows)
	setInt(&c.MaxPeerFlows, min(DefaultMaxPeerFlows, c.MaxFlows))
	setInt(&c.MaxBuffer, DefaultMaxBuffer)
	if c.MaxMemory <= 0 {
		c.MaxMemory = DefaultMaxMemory
	}
	setDur(&c.MaxSessionTime, DefaultMaxSessionTime)
	setInt(&c.MaxPending, DefaultMaxPending)
	setInt(&c.MaxPeerPending, min(DefaultMaxPeerPending, c.MaxPending))
	setDur(&c.HandshakeTimeout, handshakeWait)
	setDur(&c.Grace, 60*time.Second)
	setInt(&c.MaxHTTPConns, DefaultMaxHTTPConns)
	setInt(&c.MaxPeerHTTPConns, min(DefaultMaxPeerHTTPConns, c.MaxHTTPConns))
	setDur(&c.HTTPIdleTimeout, DefaultHTTPIdleTimeout)
	setDur(&c.HTTPHeadTimeout, DefaultHTTPHeadTimeout)
	setDur(&c.HTTPRequestTimeout, DefaultHTTPRequestTimeout)
	c.HTTPRequestTimeout = max(c.HTTPRequestTimeout, c.HTTPHeadTimeout)
	// A per-client limit above its total means the total.
	c.MaxPeerSessions = min(c.MaxPeerSessions, c.MaxSessions)
	c.MaxPeerFlows = min(c.MaxPeerFlows, c.MaxFlows)
	c.MaxPeerPending = min(c.MaxPeerPending, c.MaxPending)
	c.MaxPeerHTTPConns = min(c.MaxPeerHTTPConns, c.MaxHTTPConns)
}

// validate refuses limits the server could not honour.
func (c *Config) validate() error {
	switch {
	case c.MaxFlows > runtimeThreadLimit-maxThreadsHeadroom:
		return fmt.Errorf("max flows %d: each flow is an OS thread and the Go runtime stops at %d; at most %d",
			c.MaxFlows, runtimeThreadLimit, runtimeThreadLimit-maxThreadsHeadroom)
	case c.MaxBuffer > wire.MaxStreamBuffer:
		return fmt.Errorf("max buffer %d exceeds the protocol's %d", c.MaxBuffer, wire.MaxStreamBuffer)
	case c.MaxSessionTime > wire.MaxDuration:
		return fmt.Errorf("max session time %v exceeds the protocol's %v", c.MaxSessionTime, wire.MaxDuration)
	}
	return nil
}
