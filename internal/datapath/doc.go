// Package datapath loads latlab's own eBPF datapath programs and attaches
// them to lab interfaces: Cilium-style host routing for the lab's
// veth-bpf mode (bpf_redirect_peer into a pod on the wire's ingress,
// bpf_fib_lookup + bpf_redirect on the pod's host-side veth). Programs
// attach through TCX where the kernel has it (Linux 6.6+) and a tc clsact
// filter otherwise; each keeps packet counters by outcome.
//
// Nothing is pinned: a TCX link lives as long as the process holds its
// descriptor (it is detached when the process exits, however it dies, and
// when its device goes), and a tc filter lives as long as its device, which
// lives in a journalled lab namespace. So deleting the lab's namespaces
// (latlab cleanup) removes everything a dead run attached.
//
// It imports only netns; topo attaches what a topology's Programs list.
package datapath
