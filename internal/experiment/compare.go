package experiment

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/wire"
)

// Metrics a comparison can be about.
const (
	MetricRate = "rate" // transactions/s (tcp_stream: bits/s)
	MetricP50  = "p50"  // per-trial p50 latency, ns
	MetricP99  = "p99"  // per-trial p99 latency, ns
)

// ComparisonRow is one configuration (or pair of configurations) compared.
type ComparisonRow struct {
	Name string `json:"name"` // what is compared: a config key, or the fields the two sides share
	stats.Comparison
	Unit string `json:"unit"`
}

// CompareOutcomes compares every configuration present in both runs, a
// (old) against b (new), on one metric (unpaired: Mann-Whitney U); p-values are Holm-adjusted across
// all rows.
func CompareOutcomes(a, b *Outcome, metric string) ([]ComparisonRow, error) {
	keys := configKeys(a)
	keysB := configKeys(b)
	var rows []ComparisonRow
	for _, k := range keys {
		kb, name := k, k
		if !slices.Contains(keysB, k) {
			// Calibration may have pinned the other run differently: the
			// same configuration under its one other placement is its
			// partner, and the row says so.
			if other := samePlacementFree(k, keysB); other != "" {
				kb = other
				name = k + " vs placement=" + parseKey(other)["placement"]
			}
		}
		va, unit, higher := values(a, func(c Config) bool { return c.Key() == k }, metric)
		vb, _, _ := values(b, func(c Config) bool { return c.Key() == kb }, metric)
		if len(va) == 0 || len(vb) == 0 {
			continue
		}
		rows = append(rows, ComparisonRow{Name: name, Unit: unit, Comparison: stats.Compare(va, vb, higher, Alpha, Confidence)})
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("the two runs share no configuration with finished trials")
	}
	adjust(rows)
	return rows, nil
}

// CompareConfigs compares two sets of configurations inside one run: those
// matching filter a ("mode=host") against those matching b
// ("mode=veth-routed"), paired on every other field.
func CompareConfigs(o *Outcome, fa, fb, metric string) ([]ComparisonRow, error) {
	ma, err := parseFilter(fa)
	if err != nil {
		return nil, err
	}
	mb, err := parseFilter(fb)
	if err != nil {
		return nil, err
	}
	var rows []ComparisonRow
	for _, k := range configKeys(o) {
		ca := parseKey(k)
		if !matches(ca, ma) {
			continue
		}
		// The partner: the same configuration with b's fields.
		cb := maps(ca)
		for f, v := range mb {
			cb[f] = v
		}
		kb := keyOf(cb)
		// Within one run the two configurations ran in the same rounds:
		// pair them by round and test the per-round ratios.
		ra, unit, higher := roundValues(o, k, metric)
		rb, _, _ := roundValues(o, kb, metric)
		var va, vb []float64
		for round, v := range ra {
			if w, ok := rb[round]; ok {
				va, vb = append(va, v), append(vb, w)
			}
		}
		if len(va) == 0 {
			continue
		}
		var shared []string
		for _, f := range keyFields {
			if _, inA := ma[f]; inA {
				continue
			}
			if _, inB := mb[f]; inB {
				continue
			}
			shared = append(shared, f+"="+ca[f])
		}
		rows = append(rows, ComparisonRow{Name: strings.Join(shared, "/"), Unit: unit, Comparison: stats.ComparePaired(va, vb, higher, Alpha, Confidence)})
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no configurations match %q and %q with finished trials", fa, fb)
	}
	adjust(rows)
	return rows, nil
}

func adjust(rows []ComparisonRow) {
	cs := make([]stats.Comparison, len(rows))
	for i := range rows {
		cs[i] = rows[i].Comparison
	}
	stats.AdjustComparisons(cs, Alpha)
	for i := range rows {
		rows[i].Comparison = cs[i]
	}
}

// values returns the per-trial metric of the trials whose config matches,
// its unit and whether higher is better.
func values(o *Outcome, match func(Config) bool, metric string) ([]float64, string, bool) {
	var out []float64
	unit, higher := "txn/s", true
	for _, t := range o.Trials {
		if t.Result == nil || !match(t.Config) {
			continue
		}
		r := t.Result
		switch metric {
		case MetricP50, MetricP99:
			unit, higher = "ns", false
			if r.Latency == nil {
				continue
			}
			v := r.Latency.P50
			if metric == MetricP99 {
				v = r.Latency.P99
			}
			out = append(out, float64(v))
		default:
			if t.Workload == wire.TCPStream {
				unit = "bit/s"
				out = append(out, r.ThroughputBps)
			} else {
				out = append(out, r.RatePerSec)
			}
		}
	}
	return out, unit, higher
}

// roundValues maps round -> metric for one configuration key.
func roundValues(o *Outcome, key, metric string) (map[int]float64, string, bool) {
	out := map[int]float64{}
	unit, higher := "", true
	for _, t := range o.Trials {
		if t.Config.Key() != key || t.Result == nil {
			continue
		}
		v, u, h := values(&Outcome{Trials: []TrialResult{t}}, func(Config) bool { return true }, metric)
		unit, higher = u, h
		if len(v) == 1 {
			out[t.Round] = v[0]
		}
	}
	return out, unit, higher
}

// samePlacementFree returns the one key of keys equal to k but for the
// placement, or "" when there is none or several.
func samePlacementFree(k string, keys []string) string {
	strip := func(key string) string {
		m := parseKey(key)
		delete(m, "placement")
		return keyOf(m)
	}
	want, found := strip(k), ""
	for _, o := range keys {
		if strip(o) == want {
			if found != "" {
				return ""
			}
			found = o
		}
	}
	return found
}

// configKeys lists the run's configurations in first-seen order.
func configKeys(o *Outcome) []string {
	var keys []string
	for _, t := range o.Trials {
		if k := t.Config.Key(); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

var keyFields = []string{"mode", "workload", "size", "offload", "placement"}

func parseKey(k string) map[string]string {
	m := map[string]string{}
	for _, part := range strings.Split(k, "/") {
		if f, v, ok := strings.Cut(part, "="); ok {
			m[f] = v
		}
	}
	return m
}

func keyOf(m map[string]string) string {
	size, _ := strconv.Atoi(m["size"])
	return Config{Mode: m["mode"], Workload: wire.Workload(m["workload"]), Size: size, Offload: m["offload"], Placement: m["placement"]}.Key()
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func matches(c, filter map[string]string) bool {
	for f, v := range filter {
		if c[f] != v {
			return false
		}
	}
	return true
}

// parseFilter parses "mode=host" or "mode=host/offload=seg-off".
func parseFilter(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == ',' }) {
		f, v, ok := strings.Cut(part, "=")
		if !ok || !slices.Contains(keyFields, f) {
			return nil, fmt.Errorf("configuration filter %q: want FIELD=VALUE with FIELD one of %s", s, strings.Join(keyFields, ", "))
		}
		m[f] = v
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("empty configuration filter")
	}
	return m, nil
}
