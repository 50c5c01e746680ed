package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

func TestDuration(t *testing.T) {
	for ns, want := range map[int64]string{
		0: "0ns", 812: "812ns", 1000: "1.00µs", 41_234: "41.2µs", 999_999: "1000µs",
		3_050_000: "3.05ms", 1_200_000_000: "1.20s", 125_000_000_000: "125s",
	} {
		if got := Duration(ns); got != want {
			t.Errorf("Duration(%d) = %q, want %q", ns, got, want)
		}
	}
}

func TestBits(t *testing.T) {
	for bps, want := range map[float64]string{
		0: "0.00 bit/s", 999: "999 bit/s", 9.41e9: "9.41 Gbit/s", 28.6e9: "28.6 Gbit/s", 1.5e6: "1.50 Mbit/s",
	} {
		if got := Bits(bps); got != want {
			t.Errorf("Bits(%v) = %q, want %q", bps, got, want)
		}
	}
}

func TestCPUList(t *testing.T) {
	for _, c := range []struct {
		in   []int
		want string
	}{{[]int{0, 1, 2, 3}, "0-3"}, {[]int{0, 2, 3, 4, 7}, "0,2-4,7"}, {[]int{5}, "5"}, {nil, ""}} {
		if got := cpuList(c.in); got != c.want {
			t.Errorf("cpuList(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func sample() *workload.Result {
	return &workload.Result{
		Workload: wire.UDPRR, Target: "127.0.0.1:7707", ReqSize: 64, RespSize: 64, Flows: 1,
		Transactions: 1000, DurationS: 1, RatePerSec: 1000, Lost: 10, LossRatio: 10.0 / 1010,
		Latency:   &workload.Latency{Min: 1000, Mean: 2000, P50: 1900, P90: 2500, P99: 4000, P999: 9000, Max: 12000},
		Placement: workload.Placement{ClientCPU: 1, ServerCPU: 0, ClientPinned: true, ServerPinned: true, AllowedCPUs: []int{0, 1}},
		CPUPerTxn: workload.CPUCost{Client: 1.5, Server: 1.25},
		Intervals: []workload.Interval{{StartS: 0, Transactions: 500}, {StartS: 0.5, Transactions: 500, Lost: 10}},
	}
}

func TestWriteBenchFormats(t *testing.T) {
	r := sample()
	var b bytes.Buffer
	if err := WriteBench(&b, Output{Format: FormatTable}, r, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"udp_rr to 127.0.0.1:7707", "lost", "10 datagrams (0.990%)", "p50 1.90µs", "client cpu 1, server cpu 0 (allowed CPUs 0-1)", "closed loop"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := WriteBench(&b, Output{Format: FormatJSON}, r, nil); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m["lost"].(float64) != 10 {
		t.Errorf("json: %v %v", err, m["lost"])
	}
	b.Reset()
	if err := WriteBench(&b, Output{Format: FormatCSV}, r, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "udp_rr,127.0.0.1:7707,1,64,64,1,1000,1000,2000,1900,2500,4000,9000,12000,0,10,") {
		t.Errorf("csv:\n%s", b.String())
	}
	if err := WriteBench(&b, Output{Format: "xml"}, r, nil); err == nil {
		t.Error("unknown format accepted")
	}
}
