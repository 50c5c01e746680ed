package datapath

// The generated datapath_bpf{el,eb}.{go,o} and sockmap_bpf{el,eb}.{go,o}
// are committed: building latlab needs no clang. Regenerating needs clang,
// llvm-strip and libbpf-dev.
//go:generate sh -c "go run github.com/cilium/ebpf/cmd/bpf2go -tags linux datapath bpf/datapath.c -- -O2 -g -Wall -I/usr/include/$(uname -m)-linux-gnu"
//go:generate sh -c "go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -type sock_key -type sockmap_config sockmap bpf/sockmap.c -- -O2 -g -Wall -I/usr/include/$(uname -m)-linux-gnu"
