// Package sockio holds the low-level helpers the client engines
// (internal/workload) and the server (internal/server) share on their
// timed paths: raw blocking socket I/O (RawRead, RawWrite, ReadFull,
// ReadDiscard, WriteFull, RecvBurst, PollFor, ErrTimeout), socket creation
// and timeouts (Socket, Sockaddr, SetTimeouts), wiring a goroutine to a
// pinned OS thread inside a network namespace (LockThread), the CPUs the
// process may run on (AllowedCPUs), a thread's CPU time (ThreadCPU) and the
// runtime's monotonic clock with the flows' voluntary yield period
// (Nanotime, YieldEvery).
//
// It imports only netns of latlab: never wire, workload or server, which
// both import it. A helper only one side needs stays in that side's
// package.
package sockio
