// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// latlab sockmap short-circuit for a sidecar's loopback hop (the
// service-mesh acceleration Cilium and Istio's eBPF plugins ship):
//
//   sockmap_ops  sock_ops on latlab's own cgroup: a TCP connection that
//                becomes established in the configured namespace with the
//                configured port at either end, on a loopback address, is
//                put in the sock hash under its 4-tuple.
//   sockmap_msg  sk_msg on that hash: data a member sends goes straight to
//                the receive queue of its peer (the other end of the same
//                connection) with bpf_msg_redirect_hash(BPF_F_INGRESS),
//                bypassing TCP, netfilter and the loopback device.
//
// Built by bpf2go (see ../gen.go).

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

struct sock_key {
	__u32 family;
	__u32 local_ip[4];
	__u32 remote_ip[4];
	__u32 local_port;  // host order
	__u32 remote_port; // host order
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, struct sock_key);
	__type(value, __u64);
} sock_hash SEC(".maps");

// sockmap_config: the namespace (bpf_get_netns_cookie) and port this
// instance short-circuits.
struct sockmap_config {
	__u64 netns_cookie;
	__u32 port;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sockmap_config);
} sockmap_cfg SEC(".maps");

// Counters: 0 sockets inserted, 1 messages redirected, 2 messages passed.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} sockmap_counts SEC(".maps");

static __always_inline void count(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&sockmap_counts, &k);
	if (v)
		*v += 1;
}

static __always_inline int loopback(__u32 family, __u32 *ip)
{
	if (family == AF_INET)
		return (bpf_ntohl(ip[0]) >> 24) == 127;
	return ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] == bpf_htonl(1);
}

SEC("sockops")
int sockmap_ops(struct bpf_sock_ops *skops)
{
	if (skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB && skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		return 1;
	__u32 zero = 0;
	struct sockmap_config *cfg = bpf_map_lookup_elem(&sockmap_cfg, &zero);
	if (!cfg || bpf_get_netns_cookie(skops) != cfg->netns_cookie)
		return 1;
	struct sock_key k = {};
	k.family = skops->family;
	k.local_port = skops->local_port;
	k.remote_port = bpf_ntohl(skops->remote_port);
	if (k.local_port != cfg->port && k.remote_port != cfg->port)
		return 1;
	if (k.family == AF_INET) {
		k.local_ip[0] = skops->local_ip4;
		k.remote_ip[0] = skops->remote_ip4;
	} else if (k.family == AF_INET6) {
		k.local_ip[0] = skops->local_ip6[0];
		k.local_ip[1] = skops->local_ip6[1];
		k.local_ip[2] = skops->local_ip6[2];
		k.local_ip[3] = skops->local_ip6[3];
		k.remote_ip[0] = skops->remote_ip6[0];
		k.remote_ip[1] = skops->remote_ip6[1];
		k.remote_ip[2] = skops->remote_ip6[2];
		k.remote_ip[3] = skops->remote_ip6[3];
	} else {
		return 1;
	}
	if (!loopback(k.family, k.local_ip) || !loopback(k.family, k.remote_ip))
		return 1;
	if (bpf_sock_hash_update(skops, &sock_hash, &k, BPF_NOEXIST) == 0)
		count(0);
	return 1;
}

SEC("sk_msg")
int sockmap_msg(struct sk_msg_md *msg)
{
	// The peer's key: this socket's tuple seen from the other end.
	struct sock_key k = {};
	k.family = msg->family;
	k.local_port = bpf_ntohl(msg->remote_port);
	k.remote_port = msg->local_port;
	if (k.family == AF_INET) {
		k.local_ip[0] = msg->remote_ip4;
		k.remote_ip[0] = msg->local_ip4;
	} else {
		k.local_ip[0] = msg->remote_ip6[0];
		k.local_ip[1] = msg->remote_ip6[1];
		k.local_ip[2] = msg->remote_ip6[2];
		k.local_ip[3] = msg->remote_ip6[3];
		k.remote_ip[0] = msg->local_ip6[0];
		k.remote_ip[1] = msg->local_ip6[1];
		k.remote_ip[2] = msg->local_ip6[2];
		k.remote_ip[3] = msg->local_ip6[3];
	}
	long rc = bpf_msg_redirect_hash(msg, &sock_hash, &k, BPF_F_INGRESS);
	count(rc == SK_PASS ? 1 : 2);
	return SK_PASS; // redirected, or (no peer) the normal path
}

char __license[] SEC("license") = "Dual BSD/GPL";
