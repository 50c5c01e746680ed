// Package probe gathers the kernel evidence latlab attaches to every trial:
// how many softirqs a transaction cost, how long they ran, what was dropped
// and why, what was retransmitted, and how long threads waited to run.
//
// Two tiers exist. The /proc tier (always available) reads counters the
// kernel already keeps: /proc/softirqs, /proc/stat, /proc/interrupts,
// /proc/net/softnet_stat, the per-namespace /proc/net/snmp and
// /proc/net/netstat, cgroup v2 cpu.stat and PSI. It is cheap and coarse.
// The eBPF tier (LoadEBPF) attaches tracepoint programs that time softirqs,
// count drops by reason and measure run-queue delay.
//
// A Collector reads one source into a Sample; a Registry holds a set of
// collectors and takes a Snapshot of all of them; Delta subtracts two
// snapshots; Attribute turns a delta and a transaction count into the
// per-transaction figures a report shows. Sampler does start/end (and
// optionally per-interval) sampling around a trial.
//
// Nothing in this package changes kernel settings: no sysctl (not even the
// host-wide kernel.bpf_stats_enabled), no interface.
//
// It is one of experiment's workers: it imports only netns of latlab, never
// experiment or another worker (topo, offload, workload, docker).
package probe
