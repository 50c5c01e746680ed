// Package workload owns the measurement itself: the client engines for
// tcp_rr, udp_rr, tcp_crr and tcp_stream (speaking the latlab protocol,
// internal/wire, to a latlab server) and http (HTTP/1.1 against any
// server), on locked, pinned OS threads with raw blocking sockets,
// recording into hist histograms: Run, Config, Result, Latency, Summarize.
//
// It sits below experiment: it imports only hist, netns, wire and sockio
// of latlab, never server (its tests start one), experiment, topo, stats,
// store, report or cli (flags are cli's).
package workload
