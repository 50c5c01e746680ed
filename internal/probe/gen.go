package probe

// The generated probe_bpf{el,eb}.{go,o} are committed: building latlab
// needs no clang. Regenerating needs clang, llvm-strip and libbpf-dev.
//go:generate sh -c "go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -type counters -type vec_stats probe bpf/probe.c -- -O2 -g -Wall -I/usr/include/$(uname -m)-linux-gnu"
