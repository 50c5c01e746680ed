package probe

// Tiers of evidence, best first.
const (
	TierTPBTF    = "tp_btf"
	TierRawTP    = "raw_tracepoint"
	TierTP       = "tracepoint"
	TierProc     = "proc"
	tierUnloaded = ""
)

// dropKeys are the /proc counters that count packets the kernel dropped
// (ListenDrops already includes ListenOverflows; Udp InErrors includes
// RcvbufErrors).
var dropKeys = []string{
	KeySoftnetDrop,
	"snmp.Ip.InDiscards",
	KeyUDPInErrors,
	KeyUDPNoPorts,
	KeyListenDrops,
	"netstat.TcpExt.TCPBacklogDrop",
	"netstat.TcpExt.TCPRcvQDrop",
	"netstat.TcpExt.TCPZeroWindowDrop",
	"netstat.TcpExt.TCPOFODrop",
}

// Attribution is the kernel evidence of one trial, per transaction where it
// makes sense. Softirq and softnet figures are host-wide (every CPU, every
// namespace); snmp/netstat figures are those of the sampled namespace.
type Attribution struct {
	Transactions int64 `json:"transactions"`
	// NetRXSoftirqsPerTxn and NetTXSoftirqsPerTxn count softirq runs (from
	// /proc/softirqs, or the eBPF entry count when loaded).
	NetRXSoftirqsPerTxn float64 `json:"net_rx_softirqs_per_txn"`
	NetTXSoftirqsPerTxn float64 `json:"net_tx_softirqs_per_txn"`
	// SoftirqUsPerTxn is softirq time per transaction. From /proc/stat it
	// counts every softirq vector in 10 ms ticks: coarse, useful only over
	// many transactions (SoftirqTimeSource says which). From eBPF it is the
	// measured NET_RX+NET_TX run time.
	SoftirqUsPerTxn   float64 `json:"softirq_us_per_txn"`
	SoftirqTimeSource string  `json:"softirq_time_source"`
	// Drops sums softnet backlog drops and the namespace's snmp drop
	// counters (DropsBySource), or with eBPF the kfree_skb drops.
	Drops         uint64            `json:"drops"`
	DropsBySource map[string]uint64 `json:"drops_by_source,omitempty"`
	// DropsByReason and HostDrops (their sum) are host-wide kfree_skb
	// drops from eBPF.
	DropsByReason map[string]uint64 `json:"drops_by_reason,omitempty"`
	HostDrops     uint64            `json:"host_drops,omitempty"`
	// Retransmits are the namespace's (snmp RetransSegs); HostRetransmits
	// every namespace's, from eBPF.
	Retransmits     uint64 `json:"retransmits"`
	HostRetransmits uint64 `json:"host_retransmits,omitempty"`
	TimeSqueeze     uint64 `json:"time_squeeze"`
	// ThrottledUs is the cgroup's CPU throttling; CPUPressureUs the
	// cgroup's (or, without one, the host's) PSI "some" stall time.
	ThrottledUs   uint64 `json:"throttled_us,omitempty"`
	CPUPressureUs uint64 `json:"cpu_pressure_us,omitempty"`
	// eBPF-only figures.
	SoftirqRaiseDelayUsMean float64 `json:"softirq_raise_delay_us_mean,omitempty"`
	RunqDelayUsMean         float64 `json:"runq_delay_us_mean,omitempty"`
	RunqDelayUsP99          float64 `json:"runq_delay_us_p99,omitempty"`
	// EBPFTier is the tier the figures come from: tp_btf, raw_tracepoint,
	// tracepoint, or proc when eBPF is not in use.
	EBPFTier    string            `json:"ebpf_tier"`
	Unavailable map[string]string `json:"unavailable,omitempty"`
}

func perTxn(v uint64, txns int64) float64 {
	if txns <= 0 {
		return 0
	}
	return float64(v) / float64(txns)
}

// Attribute computes the attribution of a /proc delta (nil allowed) over
// txns transactions. Use AttributeEBPF to add eBPF counters.
func Attribute(d *Sample, txns int64) Attribution {
	a := Attribution{Transactions: txns, EBPFTier: TierProc, SoftirqTimeSource: "proc_stat_ticks"}
	if d == nil {
		return a
	}
	get := func(k string) uint64 { v, _ := d.Total(k); return v }
	a.NetRXSoftirqsPerTxn = perTxn(get(KeyNetRX), txns)
	a.NetTXSoftirqsPerTxn = perTxn(get(KeyNetTX), txns)
	a.SoftirqUsPerTxn = perTxn(get(KeySoftirqUs), txns)
	for _, k := range dropKeys {
		if v, ok := d.Total(k); ok && v > 0 {
			if a.DropsBySource == nil {
				a.DropsBySource = map[string]uint64{}
			}
			a.DropsBySource[k] = v
			a.Drops += v
		}
	}
	a.Retransmits = get(KeyRetransSegs)
	a.TimeSqueeze = get(KeyTimeSqueeze)
	a.ThrottledUs = get(KeyCgroupThrotUs)
	if v, ok := d.Total(KeyCgroupPSISome); ok {
		a.CPUPressureUs = v
	} else {
		a.CPUPressureUs = get(KeyPSICPUSome)
	}
	if len(d.Unavailable) > 0 {
		a.Unavailable = d.Unavailable
	}
	return a
}
