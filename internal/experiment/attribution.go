package experiment

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/latlab/latlab/internal/probe"
	"github.com/latlab/latlab/internal/stats"
)

// AttributionSummary is a configuration's kernel evidence over its trials:
// per-transaction figures are medians over trials, counts are sums.
type AttributionSummary struct {
	NetRXSoftirqsPerTxn float64           `json:"net_rx_softirqs_per_txn"`
	NetTXSoftirqsPerTxn float64           `json:"net_tx_softirqs_per_txn"`
	SoftirqUsPerTxn     float64           `json:"softirq_us_per_txn"`
	SoftirqTimeSource   string            `json:"softirq_time_source,omitempty"`
	Drops               uint64            `json:"drops"`
	DropsByReason       map[string]uint64 `json:"drops_by_reason,omitempty"`
	Retransmits         uint64            `json:"retransmits"`
	TimeSqueeze         uint64            `json:"time_squeeze"`
	RunqDelayUsMean     float64           `json:"runq_delay_us_mean,omitempty"`
	SoftirqRaiseDelayUs float64           `json:"softirq_raise_delay_us_mean,omitempty"`
	EBPFTier            string            `json:"ebpf_tier"`
	Trials              int               `json:"trials"`
	// Explanation compares this configuration with the baseline mode:
	// "+1.0 NET_RX softirq and +0.9 µs softirq time per transaction vs host".
	Explanation string `json:"explanation,omitempty"`
}

func summarizeAttribution(as []*probe.Attribution) *AttributionSummary {
	if len(as) == 0 {
		return nil
	}
	s := &AttributionSummary{Trials: len(as)}
	var rx, tx, us, rq, rd []float64
	for _, a := range as {
		rx = append(rx, a.NetRXSoftirqsPerTxn)
		tx = append(tx, a.NetTXSoftirqsPerTxn)
		us = append(us, a.SoftirqUsPerTxn)
		rq = append(rq, a.RunqDelayUsMean)
		rd = append(rd, a.SoftirqRaiseDelayUsMean)
		s.Drops += a.Drops
		s.Retransmits += a.Retransmits
		s.TimeSqueeze += a.TimeSqueeze
		for r, n := range a.DropsByReason {
			if s.DropsByReason == nil {
				s.DropsByReason = map[string]uint64{}
			}
			s.DropsByReason[r] += n
		}
		s.EBPFTier, s.SoftirqTimeSource = a.EBPFTier, a.SoftirqTimeSource
	}
	s.NetRXSoftirqsPerTxn, s.NetTXSoftirqsPerTxn, s.SoftirqUsPerTxn = stats.Median(rx), stats.Median(tx), stats.Median(us)
	s.RunqDelayUsMean, s.SoftirqRaiseDelayUs = stats.Median(rq), stats.Median(rd)
	return s
}

// explain says what differs from the baseline, per transaction.
func explain(s, base *AttributionSummary, baseline string) string {
	if s == nil || base == nil {
		return ""
	}
	var parts []string
	d := s.NetRXSoftirqsPerTxn - base.NetRXSoftirqsPerTxn
	parts = append(parts, fmt.Sprintf("%+.1f NET_RX softirq", d))
	if dt := s.NetTXSoftirqsPerTxn - base.NetTXSoftirqsPerTxn; math.Abs(dt) >= 0.05 {
		parts = append(parts, fmt.Sprintf("%+.1f NET_TX softirq", dt))
	}
	parts = append(parts, fmt.Sprintf("%+.2f µs softirq time", s.SoftirqUsPerTxn-base.SoftirqUsPerTxn))
	out := strings.Join(parts, ", ") + " per transaction vs " + baseline
	if s.Drops > base.Drops {
		out += fmt.Sprintf("; %d drops (%s)", s.Drops, topReasons(s.DropsByReason))
	}
	if s.Retransmits > 0 {
		out += fmt.Sprintf("; %d retransmits", s.Retransmits)
	}
	return out
}

func topReasons(m map[string]uint64) string {
	type kv struct {
		k string
		v uint64
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v })
	var parts []string
	for i := 0; i < len(l) && i < 3; i++ {
		parts = append(parts, fmt.Sprintf("%s %d", l[i].k, l[i].v))
	}
	if len(parts) == 0 {
		return "softnet/snmp"
	}
	return strings.Join(parts, ", ")
}
