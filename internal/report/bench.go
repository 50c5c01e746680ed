package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latlab/latlab/internal/probe"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// Formats a bench result can be written in.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatCSV   = "csv"
)

// CheckFormat validates an output format name.
func CheckFormat(f string) error {
	switch f {
	case FormatTable, FormatJSON, FormatCSV:
		return nil
	}
	return fmt.Errorf("unknown format %q (want table, json or csv)", f)
}

// WriteBench writes one `latlab bench` result, with its kernel evidence
// when attr is not nil (`--attribute`). out.Percentiles chooses the
// table's latency percentiles (default p50, p90, p99, p99.9) and adds
// "percentiles_ns" to the JSON.
func WriteBench(w io.Writer, out Output, r *workload.Result, attr *probe.Attribution) error {
	switch out.Format {
	case FormatJSON:
		var ps map[string]int64
		if out.Percentiles != nil {
			ps = percentilesOf(r.Hist, out.Percentiles)
		}
		return WriteJSON(w, out.Meta, struct {
			*workload.Result
			Percentiles map[string]int64   `json:"percentiles_ns,omitempty"`
			Attribution *probe.Attribution `json:"attribution,omitempty"`
		}{r, ps, attr})
	case FormatCSV:
		return writeBenchCSV(w, r)
	case FormatTable:
		if err := writeBenchTable(w, r, out.Percentiles); err != nil {
			return err
		}
		if a := attr; a != nil {
			fmt.Fprintf(w, "\nkernel evidence (%s): %.2f NET_RX and %.2f NET_TX softirqs, %.2f µs softirq time per transaction (host-wide);\n",
				a.EBPFTier, a.NetRXSoftirqsPerTxn, a.NetTXSoftirqsPerTxn, a.SoftirqUsPerTxn)
			fmt.Fprintf(w, "  %d drops, %d retransmits, %d time squeezes", a.Drops, a.Retransmits, a.TimeSqueeze)
			if a.RunqDelayUsMean > 0 {
				fmt.Fprintf(w, ", run-queue delay mean %.1f µs p99 %.1f µs", a.RunqDelayUsMean, a.RunqDelayUsP99)
			}
			fmt.Fprintln(w)
		}
		return nil
	}
	return CheckFormat(out.Format)
}

// benchCSVHeader is the column list of the CSV format.
var benchCSVHeader = []string{
	"workload", "target", "flows", "request_size", "response_size", "duration_s", "transactions",
	"rate_per_sec", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "throughput_bps",
	"lost", "loss_ratio", "client_cpu", "server_cpu", "cpu_us_per_txn_client", "cpu_us_per_txn_server",
	"errors",
}

func writeBenchCSV(w io.Writer, r *workload.Result) error {
	cw := csv.NewWriter(w)
	cw.Write(benchCSVHeader)
	lat := r.Latency
	if lat == nil {
		lat = &workload.Latency{}
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	cw.Write([]string{
		string(r.Workload), r.Target, strconv.Itoa(r.Flows), strconv.Itoa(r.ReqSize), strconv.Itoa(r.RespSize),
		f(r.DurationS), i(r.Transactions), f(round(r.RatePerSec, 2)), f(round(lat.Mean, 1)), i(lat.P50), i(lat.P90),
		i(lat.P99), i(lat.P999), i(lat.Max), f(round(r.ThroughputBps, 0)), i(r.Lost), f(r.LossRatio),
		strconv.Itoa(r.Placement.ClientCPU), strconv.Itoa(r.Placement.ServerCPU),
		f(round(r.CPUPerTxn.Client, 3)), f(round(r.CPUPerTxn.Server, 3)), i(errTotal(r)),
	})
	cw.Flush()
	return cw.Error()
}

// errTotal is the http workload's failed requests (0 for the others).
func errTotal(r *workload.Result) int64 {
	if r.Errors == nil {
		return 0
	}
	return r.Errors.Total()
}

func round(v float64, digits int) float64 {
	s := strconv.FormatFloat(v, 'f', digits, 64)
	out, _ := strconv.ParseFloat(s, 64)
	return out
}

// Duration formats nanoseconds for people: 812ns, 41.2µs, 3.05ms, 1.20s.
func Duration(ns int64) string {
	d := float64(ns)
	switch {
	case ns < 1000:
		return fmt.Sprintf("%dns", ns)
	case ns < 1000_000:
		return trim3(d/1e3) + "µs"
	case ns < 1000_000_000:
		return trim3(d/1e6) + "ms"
	}
	return trim3(d/1e9) + "s"
}

// trim3 prints three significant digits.
func trim3(v float64) string {
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// Bits formats a bit rate: 9.41 Gbit/s.
func Bits(bps float64) string {
	units := []string{"bit/s", "Kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"}
	i := 0
	for bps >= 1000 && i < len(units)-1 {
		bps /= 1000
		i++
	}
	return trim3(bps) + " " + units[i]
}

func cpuName(cpu int, pinned bool) string {
	if !pinned || cpu < 0 {
		return "unpinned"
	}
	return "cpu " + strconv.Itoa(cpu)
}

// benchPercentiles is the latency line's percentiles: "p50 X  p90 Y ...",
// the summary's four by default, else ps read from the histogram.
func benchPercentiles(r *workload.Result, ps []float64) string {
	l := r.Latency
	var parts []string
	if ps == nil || r.Hist == nil || r.Hist.Count() == 0 {
		ps = []float64{50, 90, 99, 99.9}
		for i, v := range []int64{l.P50, l.P90, l.P99, l.P999} {
			parts = append(parts, PercentileName(ps[i])+" "+Duration(v))
		}
		return strings.Join(parts, "  ")
	}
	for _, p := range ps {
		parts = append(parts, PercentileName(p)+" "+Duration(r.Hist.Percentile(p)))
	}
	return strings.Join(parts, "  ")
}

func writeBenchTable(w io.Writer, r *workload.Result, ps []float64) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	flows := "1 flow"
	if r.Flows != 1 {
		flows = fmt.Sprintf("%d flows", r.Flows)
	}
	sizes := fmt.Sprintf("%d/%d B", r.ReqSize, r.RespSize)
	if r.Workload == wire.TCPStream {
		sizes = fmt.Sprintf("%d B buffers, %s", r.ReqSize, strings.ReplaceAll(r.Direction, "_", " "))
	}
	if r.Workload == wire.HTTP {
		sizes = fmt.Sprintf("%d connections", r.Flows)
		if r.Flows == 1 {
			sizes = "1 connection"
		}
		flows = fmt.Sprintf("%d threads, keep-alive", r.Threads)
		if r.Threads == 1 {
			flows = "1 thread, keep-alive"
		}
		if r.NoKeepAlive {
			flows = strings.Replace(flows, "keep-alive", "a new connection per request", 1)
		}
	}
	fmt.Fprintf(tw, "%s to %s\t%s, %s, %v measured after %v warm-up\n", r.Workload, r.Target, sizes, flows,
		time.Duration(r.DurationS*float64(time.Second)), time.Duration(r.WarmupS*float64(time.Second)))
	if r.Workload == wire.TCPStream {
		fmt.Fprintf(tw, "throughput\t%s", Bits(r.ThroughputBps))
		if len(r.FlowBps) > 1 {
			parts := make([]string, len(r.FlowBps))
			for i, b := range r.FlowBps {
				parts[i] = Bits(b)
			}
			fmt.Fprintf(tw, " (flows: %s)", strings.Join(parts, ", "))
		}
		fmt.Fprintln(tw)
	} else {
		fmt.Fprintf(tw, "transactions\t%d (%.1f/s)\n", r.Transactions, r.RatePerSec)
		if l := r.Latency; l != nil {
			fmt.Fprintf(tw, "latency\tmean %s  %s  max %s\n", Duration(int64(l.Mean)), benchPercentiles(r, ps), Duration(l.Max))
		}
	}
	if r.Workload == wire.UDPRR {
		fmt.Fprintf(tw, "lost\t%d datagrams (%.3f%%)\n", r.Lost, 100*r.LossRatio)
	}
	if e := r.Errors; e != nil {
		fmt.Fprintf(tw, "errors\t%d: connect %d, read %d, write %d, timeout %d, malformed %d, non-2xx %d\n",
			e.Total(), e.Connect, e.Read, e.Write, e.Timeout, e.Parse, e.Status)
		codes := make([]string, 0, len(r.StatusCodes))
		for c := range r.StatusCodes {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		for i, c := range codes {
			codes[i] = fmt.Sprintf("%s: %d", c, r.StatusCodes[c])
		}
		fmt.Fprintf(tw, "status codes\t%s\n", strings.Join(codes, ", "))
	}
	if ol := r.OpenLoop; ol != nil {
		fmt.Fprintf(tw, "open loop\ttarget %.0f/s; latency measured from intended send times; %d sends more than %s behind schedule (worst %s)\n",
			ol.TargetRate, ol.LateSends, Duration(ol.LateAfterNs), Duration(ol.MaxBehindNs))
	} else if r.Workload == wire.HTTP {
		fmt.Fprintf(tw, "closed loop\teach connection waits for a response before the next request: latencies omit time a request would have queued (use --rate for open loop)\n")
	} else if r.Workload != wire.TCPStream {
		fmt.Fprintf(tw, "closed loop\teach flow waits for a response before the next request: latencies omit time a request would have queued (use --rate for open loop)\n")
	}
	p := r.Placement
	fmt.Fprintf(tw, "placement\tclient %s, server %s (allowed CPUs %s)\n",
		cpuName(p.ClientCPU, p.ClientPinned), cpuName(p.ServerCPU, p.ServerPinned), cpuList(p.AllowedCPUs))
	if r.Congestion != "" {
		fmt.Fprintf(tw, "congestion	%s (client sockets)\n", r.Congestion)
	}
	if r.Workload == wire.TCPStream {
		fmt.Fprintf(tw, "cpu\tclient %.0f%%, server %.0f%% of one core\n", 100*r.CPUUtil.Client, 100*r.CPUUtil.Server)
	} else if r.Workload == wire.HTTP {
		fmt.Fprintf(tw, "cpu per txn\tclient %.2fµs (server not measured: any HTTP server)\n", r.CPUPerTxn.Client)
	} else {
		fmt.Fprintf(tw, "cpu per txn\tclient %.2fµs, server %.2fµs\n", r.CPUPerTxn.Client, r.CPUPerTxn.Server)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Intervals) > 1 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		if r.Workload == wire.TCPStream {
			fmt.Fprintln(tw, "t(s)\tthroughput\t")
			for _, iv := range r.Intervals {
				fmt.Fprintf(tw, "%.1f\t%s\t\n", iv.StartS, Bits(iv.ThroughputBps))
			}
		} else {
			fmt.Fprintln(tw, "t(s)\ttxns\trate/s\tp50\tp99\tmax\tlost\t")
			for _, iv := range r.Intervals {
				fmt.Fprintf(tw, "%.1f\t%d\t%.0f\t%s\t%s\t%s\t%d\t\n", iv.StartS, iv.Transactions, iv.RatePerSec,
					Duration(iv.P50Ns), Duration(iv.P99Ns), Duration(iv.MaxNs), iv.Lost)
			}
		}
		return tw.Flush()
	}
	return nil
}

// cpuList formats a CPU set compactly: 0-3,6.
func cpuList(cpus []int) string {
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", cpus[i], cpus[j]))
		} else {
			parts = append(parts, strconv.Itoa(cpus[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
