// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// latlab eBPF datapath programs (tc/TCX, BPF_PROG_TYPE_SCHED_CLS), after
// Cilium's eBPF host routing:
//
//   redirect_peer  on a node's wire ingress: a packet whose FIB route leaves
//                  through an endpoint (a pod's host-side veth, listed in
//                  the endpoints map) gets its MACs rewritten, its TTL or
//                  hop limit decremented, and goes straight into the pod's
//                  end with bpf_redirect_peer (no second backlog pass).
//   fib_redirect   on a pod's host-side veth ingress (pod egress): FIB
//                  lookup, MAC rewrite, TTL decrement, bpf_redirect to the
//                  output device's egress; bpf_redirect_neigh when the
//                  neighbour is not resolved yet.
//
// Anything else (ARP/NDP, local or multicast destinations, TTL about to
// expire, a route the FIB cannot forward) goes on through the stack
// (TC_ACT_OK), which does the slow thing right. The FIB lookup is made with
// tot_len 0: the kernel then checks the skb against the output MTU itself,
// GSO included (a tot_len from the header fails GSO packets as too big).
// Built by bpf2go (see ../gen.go).

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

// Outcome counters (index into the counts map).
enum {
	C_SEEN = 0,        // packets the program ran on
	C_REDIRECT = 1,    // bpf_redirect / bpf_redirect_peer
	C_NEIGH = 2,       // bpf_redirect_neigh (no neighbour yet)
	C_PASS = 3,        // left to the stack
	C_NOT_ENDPOINT = 4,// redirect_peer: route not through an endpoint
	C_MAX = 5,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

// endpoints: ifindexes (in the program's namespace) whose peer
// redirect_peer may send into.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} endpoints SEC(".maps");

static __always_inline void count(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &k);
	if (v)
		*v += 1;
}

static __always_inline int pass(void)
{
	count(C_PASS);
	return TC_ACT_OK;
}

// lookup fills p from the packet's IP header and runs the FIB lookup;
// it returns the BPF_FIB_LKUP_RET_* code, or -1 when the packet is not
// something to forward here (not unicast IP, TTL 1, too short).
static __always_inline int lookup(struct __sk_buff *skb, struct bpf_fib_lookup *p, int *family)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	__builtin_memset(p, 0, sizeof(*p));
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return -1;
		if (ip->ttl <= 1)
			return -1;
		// multicast, broadcast: not ours to forward
		if ((bpf_ntohl(ip->daddr) >> 28) >= 14)
			return -1;
		p->family = AF_INET;
		p->tos = ip->tos;
		p->l4_protocol = ip->protocol;
		p->ipv4_src = ip->saddr;
		p->ipv4_dst = ip->daddr;
		*family = AF_INET;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return -1;
		if (ip6->hop_limit <= 1)
			return -1;
		if (ip6->daddr.in6_u.u6_addr8[0] == 0xff)
			return -1; // multicast (NDP's solicitations among them)
		// link-local destinations (fe80::/10) stay on their link
		if (ip6->daddr.in6_u.u6_addr8[0] == 0xfe && (ip6->daddr.in6_u.u6_addr8[1] & 0xc0) == 0x80)
			return -1;
		p->family = AF_INET6;
		p->flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0FFFFFFF);
		p->l4_protocol = ip6->nexthdr;
		__builtin_memcpy(p->ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(p->ipv6_dst, &ip6->daddr, 16);
		*family = AF_INET6;
	} else {
		return -1;
	}
	p->tot_len = 0; // GSO: let the kernel check the skb against the MTU
	p->ifindex = skb->ingress_ifindex;
	return bpf_fib_lookup(skb, p, sizeof(*p), 0);
}

// forward decrements the TTL (fixing the IPv4 checksum) or hop limit and,
// when mac is set, writes the lookup's MACs. It returns 0 or -1.
static __always_inline int forward(struct __sk_buff *skb, struct bpf_fib_lookup *p, int family, int mac)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	if (family == AF_INET) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return -1;
		// ttl-- with the checksum updated as the kernel's
		// ip_decrease_ttl does (RFC 1624; the TTL is the high byte of
		// its 16-bit word).
		__u32 sum = (__u32)ip->check + (__u32)bpf_htons(0x0100);
		ip->check = (__u16)(sum + (sum >= 0xFFFF));
		ip->ttl--;
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return -1;
		ip6->hop_limit--;
	}
	if (mac) {
		__builtin_memcpy(eth->h_dest, p->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, p->smac, ETH_ALEN);
	}
	return 0;
}

SEC("tc")
int redirect_peer(struct __sk_buff *skb)
{
	struct bpf_fib_lookup p;
	int family = 0;
	count(C_SEEN);
	int rc = lookup(skb, &p, &family);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return pass(); // no neighbour yet: the stack resolves it
	__u32 out = p.ifindex;
	if (!bpf_map_lookup_elem(&endpoints, &out)) {
		count(C_NOT_ENDPOINT);
		return pass();
	}
	if (forward(skb, &p, family, 1) < 0)
		return pass();
	count(C_REDIRECT);
	return bpf_redirect_peer(out, 0);
}

SEC("tc")
int fib_redirect(struct __sk_buff *skb)
{
	struct bpf_fib_lookup p;
	int family = 0;
	count(C_SEEN);
	int rc = lookup(skb, &p, &family);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		if (forward(skb, &p, family, 1) < 0)
			return pass();
		count(C_REDIRECT);
		return bpf_redirect(p.ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		struct bpf_redir_neigh nh;
		__builtin_memset(&nh, 0, sizeof(nh));
		// On NO_NEIGH the lookup has put the next hop (gateway or the
		// destination itself) in p's dst, in p.family's address.
		if (p.family == AF_INET) {
			nh.nh_family = AF_INET;
			nh.ipv4_nh = p.ipv4_dst;
		} else {
			nh.nh_family = AF_INET6;
			__builtin_memcpy(nh.ipv6_nh, p.ipv6_dst, 16);
		}
		if (forward(skb, &p, family, 0) < 0)
			return pass();
		count(C_NEIGH);
		return bpf_redirect_neigh(p.ifindex, &nh, sizeof(nh), 0);
	}
	return pass();
}

char __license[] SEC("license") = "Dual BSD/GPL";
