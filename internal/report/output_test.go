package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/datapath"
	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/hist"
)

var testMeta = Meta{Version: "v0.0.0-test", Command: "test", Host: Host{Kernel: "6.1.0", CPUModel: "Test CPU", Cores: 2}}

// Every JSON document opens with schema_version and the start block, then
// the document's own fields; non-objects are refused.
func TestWriteJSONEnvelope(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, testMeta, map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "{\n  \"schema_version\": 1,\n  \"start\": {") {
		t.Errorf("envelope does not come first:\n%s", b.String())
	}
	var m struct {
		SchemaVersion int  `json:"schema_version"`
		Start         Meta `json:"start"`
		X             int  `json:"x"`
	}
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m.SchemaVersion != SchemaVersion || m.Start != testMeta || m.X != 1 {
		t.Errorf("decoded %+v, %v", m, err)
	}
	b.Reset()
	if err := WriteJSON(&b, testMeta, struct{}{}); err != nil || !json.Valid(b.Bytes()) {
		t.Errorf("empty object: %v %s", err, b.String())
	}
	if err := WriteJSON(&b, testMeta, []int{1}); err == nil {
		t.Error("an array was accepted as a document")
	}
}

func TestParsePercentiles(t *testing.T) {
	ps, err := ParsePercentiles([]string{"50", "p90", " 99.9"})
	if err != nil || len(ps) != 3 || ps[2] != 99.9 {
		t.Errorf("ParsePercentiles: %v %v", ps, err)
	}
	for _, bad := range [][]string{{"0"}, {"101"}, {"x"}, {"50", "50"}, {""}} {
		if _, err := ParsePercentiles(bad); err == nil {
			t.Errorf("ParsePercentiles(%q) accepted", bad)
		}
	}
	if PercentileName(99.9) != "p99.9" || PercentileKey(50) != "50" {
		t.Error("percentile names")
	}
}

// --percentiles chooses bench's latency line and adds percentiles_ns.
func TestWriteBenchPercentiles(t *testing.T) {
	r := sample()
	r.Hist = hist.NewDefault()
	for v := int64(1); v <= 1000; v++ {
		r.Hist.Record(v * 1000)
	}
	var b bytes.Buffer
	out := Output{Format: FormatTable, Percentiles: []float64{75, 99.99}}
	if err := WriteBench(&b, out, r, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "p75 ") || !strings.Contains(b.String(), "p99.99 ") || strings.Contains(b.String(), "p90 ") {
		t.Errorf("table does not print the chosen percentiles:\n%s", b.String())
	}
	b.Reset()
	out.Format = FormatJSON
	out.Meta = testMeta
	if err := WriteBench(&b, out, r, nil); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Start Meta             `json:"start"`
		P     map[string]int64 `json:"percentiles_ns"`
	}
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m.P["75"] == 0 || m.P["99.99"] == 0 || m.Start.Host.Cores != 2 {
		t.Errorf("json: %+v %v", m, err)
	}
}

// --percentiles chooses the lab tables' latency columns.
func TestWriteLabPercentiles(t *testing.T) {
	h := hist.NewDefault()
	for v := int64(1); v <= 1000; v++ {
		h.Record(v * 1000)
	}
	s := &experiment.Summary{Baseline: "host", Workloads: []string{"tcp_rr"}, Offloads: []string{"default"}, Sizes: []int{64},
		Placements: []string{"cross-core"}, Results: []experiment.ModeResult{{Mode: "host", Workload: "tcp_rr", Size: 64,
			Offload: "default", Placement: "cross-core", Status: "ok", Trials: 3, Metric: "rate_per_sec",
			RatePerSec: &experiment.Estimate{Median: 1000, CILow: 900, CIHigh: 1100}, Hist: h}}}
	var b bytes.Buffer
	if err := WriteLab(&b, Output{Format: FormatTable, Percentiles: []float64{90, 99.9}}, s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "p90") || !strings.Contains(b.String(), "p99.9") {
		t.Errorf("table lacks the chosen columns:\n%s", b.String())
	}
	b.Reset()
	if err := WriteLab(&b, Output{Format: FormatJSON, Meta: testMeta, Percentiles: []float64{90}}, s); err != nil {
		t.Fatal(err)
	}
	var m struct {
		SchemaVersion int `json:"schema_version"`
		Results       []struct {
			Mode string           `json:"mode"`
			P    map[string]int64 `json:"percentiles_ns"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m.SchemaVersion != 1 || len(m.Results) == 0 {
		t.Fatalf("json: %+v %v", m, err)
	}
	for _, r := range m.Results {
		if r.P["90"] == 0 {
			t.Errorf("result %s has no p90: %+v (synthetic trials carry histograms?)", r.Mode, r.P)
		}
	}
}

// Every mode with eBPF datapath programs says, under the tables, which
// attached where, at which hook and how.
func TestWriteLabNamesPrograms(t *testing.T) {
	s := &experiment.Summary{Baseline: "host", Workloads: []string{"tcp_rr"}, Offloads: []string{"default"}, Sizes: []int{64},
		Placements: []string{"auto"}, Modes: []experiment.ModeInfo{{Name: "host", Status: "ok"}, {Name: "veth-bpf", Status: "ok",
			Programs: []datapath.Info{{Program: "redirect-peer", NS: "latlab-x-a", Dev: "wire-bpf", Hook: "ingress", Method: "tcx", ID: 7},
				{Program: "fib-redirect", NS: "latlab-x-a", Dev: "lxc0", Hook: "ingress", Method: "tc", ID: 8}}}},
		Results: []experiment.ModeResult{{Mode: "host", Workload: "tcp_rr", Size: 64, Offload: "default", Placement: "auto",
			Status: "ok", Trials: 3, Metric: "rate_per_sec", RatePerSec: &experiment.Estimate{Median: 1000, CILow: 900, CIHigh: 1100}}}}
	var b bytes.Buffer
	if err := WriteLab(&b, Output{Format: FormatTable}, s); err != nil {
		t.Fatal(err)
	}
	want := "veth-bpf: eBPF programs redirect-peer at wire-bpf ingress (tcx), fib-redirect at lxc0 ingress (tc)\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, b.String())
	}
}
