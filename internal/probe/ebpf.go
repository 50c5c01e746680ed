package probe

import (
	"maps"
	"time"
)

// HistSlots is the number of log2 histogram buckets.
const HistSlots = 32

// Hist is a log2 histogram of nanoseconds: bucket i counts values v with
// floor(log2(v)) == i (bucket 0 also holds 0); the last bucket is open.
type Hist [HistSlots]uint64

// Count is the number of values in the histogram.
func (h *Hist) Count() uint64 {
	var n uint64
	for _, v := range h {
		n += v
	}
	return n
}

// Percentile returns the upper bound (ns) of the bucket holding the p-th
// percentile, 0 for an empty histogram: a factor-of-two estimate.
func (h *Hist) Percentile(p float64) uint64 {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(p / 100 * float64(n))
	var seen uint64
	for i, v := range h {
		seen += v
		if seen > rank || seen == n {
			return 1<<(i+1) - 1
		}
	}
	return 1<<HistSlots - 1
}

func (h Hist) sub(a Hist) Hist {
	var d Hist
	for i := range h {
		d[i] = sub(h[i], a[i], 0)
	}
	return d
}

// VecStats times one softirq vector.
type VecStats struct {
	// Count is the number of runs (entry/exit pairs) per CPU; NS their total
	// duration.
	Count Counter `json:"count"`
	NS    Counter `json:"ns"`
	// RaiseCount runs followed a raise on the same CPU; RaiseNS is the
	// total raise->entry delay.
	RaiseCount Counter `json:"raise_count"`
	RaiseNS    Counter `json:"raise_ns"`
	Hist       Hist    `json:"hist"`
	RaiseHist  Hist    `json:"raise_hist"`
}

func (v VecStats) sub(a VecStats) VecStats {
	return VecStats{
		Count: subCounter(v.Count, a.Count), NS: subCounter(v.NS, a.NS),
		RaiseCount: subCounter(v.RaiseCount, a.RaiseCount), RaiseNS: subCounter(v.RaiseNS, a.RaiseNS),
		Hist: v.Hist.sub(a.Hist), RaiseHist: v.RaiseHist.sub(a.RaiseHist),
	}
}

func subCounter(b, a Counter) Counter {
	d := Delta(&Sample{Counters: map[string]Counter{"c": a}}, &Sample{Counters: map[string]Counter{"c": b}})
	return d.Counters["c"]
}

// EBPFCounters are the cumulative eBPF counters, or after DeltaEBPF the
// difference of two readings. Everything is host-wide except
// RetransByNetNS, which is keyed by network namespace inode (NetNSInode).
type EBPFCounters struct {
	Time    time.Time     `json:"time"`
	Elapsed time.Duration `json:"elapsed,omitempty"`
	// Tier is the weakest tier among the attached hooks; Hooks gives each
	// hook's.
	Tier  string            `json:"tier"`
	Hooks map[string]string `json:"hooks"`
	NetRX VecStats          `json:"net_rx"`
	NetTX VecStats          `json:"net_tx"`
	// DropsByReason counts kfree_skb by enum skb_drop_reason, named as the
	// kernel's BTF names them without the SKB_DROP_REASON_ prefix
	// ("NO_SOCKET"), or "reason_N".
	DropsByReason  map[string]uint64 `json:"drops_by_reason"`
	Retransmits    Counter           `json:"retransmits"`
	RetransByNetNS map[uint32]uint64 `json:"retrans_by_netns"`
	// RunqCount/RunqNS/RunqHist: wakeup (or preemption) to running, for
	// the registered TIDs or every task.
	RunqCount Counter `json:"runq_count"`
	RunqNS    Counter `json:"runq_ns"`
	RunqHist  Hist    `json:"runq_hist"`
}

// DeltaEBPF returns b - a.
func DeltaEBPF(a, b *EBPFCounters) *EBPFCounters {
	d := &EBPFCounters{
		Time: b.Time, Elapsed: b.Time.Sub(a.Time), Tier: b.Tier, Hooks: maps.Clone(b.Hooks),
		NetRX: b.NetRX.sub(a.NetRX), NetTX: b.NetTX.sub(a.NetTX),
		DropsByReason: map[string]uint64{}, RetransByNetNS: map[uint32]uint64{},
		Retransmits: subCounter(b.Retransmits, a.Retransmits),
		RunqCount:   subCounter(b.RunqCount, a.RunqCount), RunqNS: subCounter(b.RunqNS, a.RunqNS),
		RunqHist: b.RunqHist.sub(a.RunqHist),
	}
	for k, v := range b.DropsByReason {
		if x := sub(v, a.DropsByReason[k], 0); x > 0 {
			d.DropsByReason[k] = x
		}
	}
	for k, v := range b.RetransByNetNS {
		if x := sub(v, a.RetransByNetNS[k], 0); x > 0 {
			d.RetransByNetNS[k] = x
		}
	}
	return d
}

// notDrops are kfree_skb reasons that are not drops.
var notDrops = map[string]bool{"SKB_NOT_DROPPED_YET": true, "SKB_CONSUMED": true}

// AddEBPF overlays eBPF evidence (a DeltaEBPF) on a /proc attribution:
// softirq counts and times come from the attached softirq hooks, drops
// from kfree_skb by reason, and the tier is set. HostRetransmits is the
// eBPF (host-wide) count; Retransmits stays the namespace's snmp count.
func (a *Attribution) AddEBPF(d *EBPFCounters) {
	if d == nil {
		return
	}
	a.EBPFTier = d.Tier
	txns := a.Transactions
	_, entry := d.Hooks["softirq_entry"]
	_, exit := d.Hooks["softirq_exit"]
	if entry && exit {
		a.NetRXSoftirqsPerTxn = perTxn(d.NetRX.Count.Total, txns)
		a.NetTXSoftirqsPerTxn = perTxn(d.NetTX.Count.Total, txns)
		a.SoftirqUsPerTxn = perTxn(d.NetRX.NS.Total+d.NetTX.NS.Total, txns) / 1000
		a.SoftirqTimeSource = "ebpf_net_rx_tx"
	}
	if _, ok := d.Hooks["softirq_raise"]; ok && d.NetRX.RaiseCount.Total > 0 {
		a.SoftirqRaiseDelayUsMean = float64(d.NetRX.RaiseNS.Total) / float64(d.NetRX.RaiseCount.Total) / 1000
	}
	if _, ok := d.Hooks["kfree_skb"]; ok {
		a.DropsByReason = map[string]uint64{}
		var n uint64
		for k, v := range d.DropsByReason {
			if notDrops[k] {
				continue
			}
			a.DropsByReason[k] = v
			n += v
		}
		a.HostDrops = n
	}
	if _, ok := d.Hooks["tcp_retransmit_skb"]; ok {
		a.HostRetransmits = d.Retransmits.Total
	}
	if _, ok := d.Hooks["sched_switch"]; ok && d.RunqCount.Total > 0 {
		a.RunqDelayUsMean = float64(d.RunqNS.Total) / float64(d.RunqCount.Total) / 1000
		a.RunqDelayUsP99 = float64(d.RunqHist.Percentile(99)) / 1000
	}
}
