// Package wire owns what latlab's client and server both read and write:
// the one-port protocol (every message opens with Magic and Version; Hello
// and HelloReply, Attach, End and EndReply, their encoding and validation),
// the workload names (Workload, ParseWorkload, TCPRR ... HTTP), the limits
// of the protocol both sides check (MaxMessageSize, MaxStreamBuffer,
// MaxFlows, MaxDuration, MinUDPSize) and the HTTP/1.1 framing helpers the
// HTTP client and the HTTP endpoint parse with.
//
// It is bytes only: no sockets, no system calls, no state. It imports
// nothing of latlab, so workload (the client), server and everything above
// them can use it.
package wire
