// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// latlab kernel evidence: NET_RX/NET_TX softirq counts, durations and
// raise->entry delays, skb drops by reason, TCP retransmits and run-queue
// delay. Every hook exists three times, one per attach tier (tp_btf,
// raw_tracepoint, classic tracepoint); the loader attaches the best that
// loads, hook by hook. Built by bpf2go (see ../gen.go); no vmlinux.h needed.

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define NET_TX_SOFTIRQ 2
#define NET_RX_SOFTIRQ 3
#define NR_SOFTIRQS 10
#define HSLOTS 32

// Only the field the programs read; CO-RE relocates it against the running
// kernel's BTF.
struct task_struct {
	int pid;
} __attribute__((preserve_access_index));

// sk->__sk_common.skc_net.net->ns.inum: the network namespace of a socket.
struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));
struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));
typedef struct {
	struct net *net;
} __attribute__((preserve_access_index)) possible_net_t;
struct sock_common {
	possible_net_t skc_net;
} __attribute__((preserve_access_index));
struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct vec_stats {
	__u64 count;       // softirq runs (entry/exit pairs)
	__u64 ns;          // total run time
	__u64 raise_count; // entries that followed a raise on this CPU
	__u64 raise_ns;    // total raise->entry delay
	__u64 hist[HSLOTS];       // log2(run time ns)
	__u64 raise_hist[HSLOTS]; // log2(raise->entry delay ns)
};

struct counters {
	struct vec_stats vec[2]; // 0: NET_TX, 1: NET_RX
	__u64 retrans;
	__u64 runq_count;
	__u64 runq_ns;
	__u64 runq_hist[HSLOTS]; // log2(wakeup->run delay ns)
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_SOFTIRQS);
	__type(key, __u32);
	__type(value, __u64);
} entry_ts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_SOFTIRQS);
	__type(key, __u32);
	__type(value, __u64);
} raise_ts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);   // enum skb_drop_reason
	__type(value, __u64); // drops
} drop_reasons SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);   // network namespace inode
	__type(value, __u64); // retransmitted segments
} retrans_by_ns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);   // tid
	__type(value, __u64); // time it became runnable
} wake_ts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); // tid
	__type(value, __u8);
} tids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32); // 1: only the TIDs in tids
} runq_filter SEC(".maps");

// Field offsets of the classic tracepoints, read from their format files
// by the loader (kfree_skb's layout, for one, changed in 6.x).
volatile const __u32 off_softirq_vec = 8;
volatile const __u32 off_kfree_reason = 28;
volatile const __u32 off_retrans_sk = 16;
volatile const __u32 off_wakeup_pid = 24;
volatile const __u32 off_switch_prev_pid = 24;
volatile const __u32 off_switch_prev_state = 32;
volatile const __u32 off_switch_next_pid = 56;

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 r = 0, s;
	s = (v > 0xFFFFFFFFULL) << 5; v >>= s; r |= s;
	s = (v > 0xFFFF) << 4; v >>= s; r |= s;
	s = (v > 0xFF) << 3; v >>= s; r |= s;
	s = (v > 0xF) << 2; v >>= s; r |= s;
	s = (v > 0x3) << 1; v >>= s; r |= s;
	r |= (v >> 1);
	return r < HSLOTS ? r : HSLOTS - 1;
}

static __always_inline struct counters *ctrs(void)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&stats, &k);
}

static __always_inline struct vec_stats *vstats(struct counters *c, __u32 vec)
{
	return vec == NET_RX_SOFTIRQ ? &c->vec[1] : &c->vec[0];
}

static __always_inline int on_softirq_raise(__u32 vec)
{
	if (vec != NET_RX_SOFTIRQ && vec != NET_TX_SOFTIRQ)
		return 0;
	__u64 *ts = bpf_map_lookup_elem(&raise_ts, &vec);
	if (ts && *ts == 0)
		*ts = bpf_ktime_get_ns(); // first raise since the last run
	return 0;
}

static __always_inline int on_softirq_entry(__u32 vec)
{
	if (vec != NET_RX_SOFTIRQ && vec != NET_TX_SOFTIRQ)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 *ts = bpf_map_lookup_elem(&entry_ts, &vec);
	if (ts)
		*ts = now;
	__u64 *r = bpf_map_lookup_elem(&raise_ts, &vec);
	struct counters *c = ctrs();
	if (r && *r && c) {
		__u64 d = now - *r;
		struct vec_stats *v = vstats(c, vec);
		v->raise_count++;
		v->raise_ns += d;
		v->raise_hist[log2_slot(d)]++;
	}
	if (r)
		*r = 0;
	return 0;
}

static __always_inline int on_softirq_exit(__u32 vec)
{
	if (vec != NET_RX_SOFTIRQ && vec != NET_TX_SOFTIRQ)
		return 0;
	__u64 *ts = bpf_map_lookup_elem(&entry_ts, &vec);
	struct counters *c = ctrs();
	if (!ts || *ts == 0 || !c)
		return 0;
	__u64 d = bpf_ktime_get_ns() - *ts;
	*ts = 0;
	struct vec_stats *v = vstats(c, vec);
	v->count++;
	v->ns += d;
	v->hist[log2_slot(d)]++;
	return 0;
}

static __always_inline int on_kfree_skb(__u32 reason)
{
	__u64 one = 1, *n = bpf_map_lookup_elem(&drop_reasons, &reason);
	if (n)
		*n += 1; // per-CPU value: no atomics needed
	else
		bpf_map_update_elem(&drop_reasons, &reason, &one, BPF_NOEXIST);
	return 0;
}

static __always_inline int on_retransmit(__u64 sk)
{
	struct counters *c = ctrs();
	if (c)
		c->retrans++;
	__u32 inum = BPF_CORE_READ((struct sock *)sk, __sk_common.skc_net.net, ns.inum);
	__u64 one = 1, *n = bpf_map_lookup_elem(&retrans_by_ns, &inum);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&retrans_by_ns, &inum, &one, BPF_NOEXIST);
	return 0;
}

static __always_inline int wanted(__u32 pid)
{
	if (pid == 0)
		return 0;
	__u32 k = 0, *on = bpf_map_lookup_elem(&runq_filter, &k);
	if (!on || !*on)
		return 1;
	return bpf_map_lookup_elem(&tids, &pid) != 0;
}

static __always_inline int on_wakeup(__u32 pid)
{
	if (!wanted(pid))
		return 0;
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&wake_ts, &pid, &now, BPF_ANY);
	return 0;
}

// prev_state: TASK_RUNNING (0) in the raw arguments; in the classic
// tracepoint a preempted task reads TASK_REPORT_MAX (0x100). Both have a
// zero low byte; every sleeping state has a bit there.
static __always_inline int on_switch(__u32 prev, __u64 prev_state, __u32 next)
{
	__u64 now = bpf_ktime_get_ns();
	if ((prev_state & 0xff) == 0 && wanted(prev))
		bpf_map_update_elem(&wake_ts, &prev, &now, BPF_ANY); // preempted: runnable again
	__u64 *ts = bpf_map_lookup_elem(&wake_ts, &next);
	if (!ts)
		return 0;
	__u64 d = now - *ts;
	bpf_map_delete_elem(&wake_ts, &next);
	struct counters *c = ctrs();
	if (c) {
		c->runq_count++;
		c->runq_ns += d;
		c->runq_hist[log2_slot(d)]++;
	}
	return 0;
}

static __always_inline __u32 task_pid(__u64 p)
{
	int pid = 0;
	bpf_core_read(&pid, sizeof(pid), &((struct task_struct *)p)->pid);
	return pid;
}

static __always_inline __u64 tp_field(void *ctx, __u32 off, __u32 size)
{
	__u64 v = 0;
	if (size == 8)
		bpf_probe_read_kernel(&v, 8, ctx + off);
	else
		bpf_probe_read_kernel(&v, 4, ctx + off);
	return v;
}

// Tier 1: tp_btf. Tier 2: raw_tracepoint. Both see the tracepoint's
// arguments as an array of u64.
#define ARGS_PROGS(hook, body)                                                  \
	SEC("tp_btf/" #hook) int btf_##hook(__u64 *args) { body; }              \
	SEC("raw_tracepoint/" #hook) int raw_##hook(struct bpf_raw_tracepoint_args *ctx) \
	{                                                                       \
		__u64 *args = ctx->args; (void)args;                                \
		body;                                                           \
	}

ARGS_PROGS(softirq_raise, return on_softirq_raise(args[0]))
ARGS_PROGS(softirq_entry, return on_softirq_entry(args[0]))
ARGS_PROGS(softirq_exit, return on_softirq_exit(args[0]))
// kfree_skb(skb, location, reason[, rx_sk])
ARGS_PROGS(kfree_skb, return on_kfree_skb(args[2]))
// tcp_retransmit_skb(sk, skb)
ARGS_PROGS(tcp_retransmit_skb, return on_retransmit(args[0]))
ARGS_PROGS(sched_wakeup, return on_wakeup(task_pid(args[0])))
ARGS_PROGS(sched_wakeup_new, return on_wakeup(task_pid(args[0])))
// sched_switch(preempt, prev, next, prev_state) (Linux 5.18+)
ARGS_PROGS(sched_switch, return on_switch(task_pid(args[1]), args[3], task_pid(args[2])))

// Tier 3: classic tracepoints, fields at the offsets of the format files.
SEC("tracepoint/irq/softirq_raise")
int tp_softirq_raise(void *ctx) { return on_softirq_raise(tp_field(ctx, off_softirq_vec, 4)); }
SEC("tracepoint/irq/softirq_entry")
int tp_softirq_entry(void *ctx) { return on_softirq_entry(tp_field(ctx, off_softirq_vec, 4)); }
SEC("tracepoint/irq/softirq_exit")
int tp_softirq_exit(void *ctx) { return on_softirq_exit(tp_field(ctx, off_softirq_vec, 4)); }
SEC("tracepoint/skb/kfree_skb")
int tp_kfree_skb(void *ctx) { return on_kfree_skb(tp_field(ctx, off_kfree_reason, 4)); }
SEC("tracepoint/tcp/tcp_retransmit_skb")
int tp_tcp_retransmit_skb(void *ctx) { return on_retransmit(tp_field(ctx, off_retrans_sk, 8)); }
SEC("tracepoint/sched/sched_wakeup")
int tp_sched_wakeup(void *ctx) { return on_wakeup(tp_field(ctx, off_wakeup_pid, 4)); }
SEC("tracepoint/sched/sched_wakeup_new")
int tp_sched_wakeup_new(void *ctx) { return on_wakeup(tp_field(ctx, off_wakeup_pid, 4)); }
SEC("tracepoint/sched/sched_switch")
int tp_sched_switch(void *ctx)
{
	return on_switch(tp_field(ctx, off_switch_prev_pid, 4), tp_field(ctx, off_switch_prev_state, 8),
			 tp_field(ctx, off_switch_next_pid, 4));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
