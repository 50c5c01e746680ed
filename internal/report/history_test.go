package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/hist"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

var update = flag.Bool("update", false, "rewrite golden files")

// synthetic builds a run with known numbers: host at ~1000/s, veth-routed
// 10% slower, 7 rounds, deterministic histograms.
func synthetic() (*store.Run, *experiment.Outcome) {
	o := &experiment.Outcome{Spec: experiment.LabSpec{Trials: 7, Baseline: "host", Seed: 1,
		Workloads: []wire.Workload{wire.TCPRR}, Sizes: []int{64}}}
	for round := 1; round <= 7; round++ {
		for i, mode := range []string{"host", "veth-routed"} {
			rate := 1000 + float64(round*7%5)*10
			lat := int64(50_000 + round*100)
			if mode == "veth-routed" {
				rate *= 0.9
				lat = lat * 11 / 10
			}
			h := hist.NewDefault()
			for k := int64(0); k < 100; k++ {
				h.Record(lat + k*50)
			}
			o.Trials = append(o.Trials, experiment.TrialResult{Round: round, Order: i,
				Config: experiment.Config{Mode: mode, Workload: wire.TCPRR, Size: 64, Offload: "default", Placement: "auto"},
				Result: &workload.Result{Workload: wire.TCPRR, Transactions: int64(rate / 2), DurationS: 0.5, RatePerSec: rate,
					Hist: h, Latency: workload.Summarize(h)}})
		}
	}
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	return &store.Run{ID: 7, Started: t0, Finished: t0.Add(time.Minute), Status: store.StatusComplete, SpecName: "synthetic", Seed: 1, Kind: "run"}, o
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update to accept):\n%s", name, got)
	}
}

func TestCompareGolden(t *testing.T) {
	_, o := synthetic()
	rows, err := experiment.CompareConfigs(o, "mode=host", "mode=veth-routed", experiment.MetricRate)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Verdict != "worse" || !rows[0].Significant {
		t.Errorf("a consistent 10%% drop over 7 rounds must be significant and worse: %+v", rows)
	}
	for _, f := range []string{FormatTable, FormatCSV, FormatJSON} {
		var b bytes.Buffer
		if err := WriteComparison(&b, Output{Format: f, Meta: testMeta}, "mode=host", "mode=veth-routed", rows); err != nil {
			t.Fatal(err)
		}
		golden(t, "compare."+f+".golden", b.Bytes())
	}
}

func TestExportGolden(t *testing.T) {
	run, o := synthetic()
	for _, f := range []string{FormatBenchstat, FormatCSV} {
		var b bytes.Buffer
		if err := WriteExport(&b, Output{Format: f}, run, o); err != nil {
			t.Fatal(err)
		}
		golden(t, "export."+f+".golden", b.Bytes())
	}
}
