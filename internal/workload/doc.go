// Package workload owns the measurement itself: the one-port wire protocol
// (Hello/Attach/End), the server (`latlab serve`), and the client engines
// for tcp_rr, udp_rr, tcp_crr, tcp_stream and http on locked, pinned OS
// threads with raw blocking sockets, recording into hist histograms.
//
// It sits below experiment: it imports only hist and netns from latlab,
// never experiment, topo, stats, store, report or cli (flags are cli's).
package workload
