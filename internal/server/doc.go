// Package server is `latlab serve`: one port that answers the latlab
// protocol (internal/wire) over TCP and UDP — control sessions, and tcp_rr,
// tcp_crr, tcp_stream and udp_rr flows on locked, pinned OS threads — and
// HTTP/1.1 next to it (an epoll event loop for plain requests, a goroutine
// per connection for the rest). Config and the Default* constants bound
// what clients can make it hold, in total and per client address; RSSBound
// states the memory that follows (docs/security.md).
//
// It imports wire, sockio and netns of latlab; never workload (the client:
// only its tests use workload, as a client), nor experiment or anything
// above it (flags are cli's).
package server
