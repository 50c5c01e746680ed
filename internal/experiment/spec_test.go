package experiment

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/workload"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Every invalid spec is refused with file:line, the field and the allowed
// values; the messages are pinned by goldens (go test -update).
func TestSpecValidationGoldens(t *testing.T) {
	files, _ := filepath.Glob("testdata/spec/bad-*.yaml")
	if len(files) < 8 {
		t.Fatalf("only %d bad specs", len(files))
	}
	for _, f := range files {
		_, _, err := LoadSpec(f)
		if err == nil {
			t.Errorf("%s: accepted", f)
			continue
		}
		golden := strings.TrimSuffix(f, ".yaml") + ".golden"
		if *update {
			os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644)
		}
		want, _ := os.ReadFile(golden)
		if err.Error()+"\n" != string(want) {
			t.Errorf("%s:\n got: %s\nwant: %s", f, err, want)
		}
		if !strings.HasPrefix(err.Error(), f+":") {
			t.Errorf("%s: error does not start with the file name: %v", f, err)
		}
	}
}

func TestSpecMatrixParsed(t *testing.T) {
	s, name, err := LoadSpec("testdata/spec/ok-matrix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if name != "offload-matrix" || s.Trials != 5 || s.Duration != 300*time.Millisecond || s.Seed != 7 || s.Warmup != DefaultWarmup {
		t.Errorf("scalars: %s %+v", name, s)
	}
	if len(s.Modes) != 3 || s.Modes[0] != "host" {
		t.Errorf("the baseline must be added to the modes: %v", s.Modes)
	}
	if len(s.Offloads) != 3 || s.Offloads[2].Name != "mine" || len(s.Offloads[2].Settings) != 2 {
		t.Errorf("offloads: %+v", s.Offloads)
	}
	if len(s.Placements) != 2 || s.Placements[1].ServerCPU != 1 || s.Placements[1].ClientCPUs[0] != 1 || s.Placements[0].ServerCPU != workload.CPUAuto {
		t.Errorf("placements: %+v", s.Placements)
	}
	s.Defaults()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

// `latlab lab` is the default spec: parsing it gives the same plan as the
// built-in defaults (placements calibrated, rounds adaptive).
func TestDefaultSpecIsTheLabDefault(t *testing.T) {
	s, name, err := ParseSpec(DefaultSpecYAML(), "default.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, DefaultSpecYAML())
	}
	s.Defaults()
	var d LabSpec
	d.Defaults()
	if name != "lab" || s.Trials != d.Trials || s.Duration != d.Duration || s.Warmup != DefaultWarmup ||
		len(s.Workloads) != len(d.Workloads) || len(s.Modes) != len(d.Modes) || s.Baseline != d.Baseline ||
		len(s.Offloads) != 1 || s.Offloads[0].Name != "default" || len(s.Sizes) != 1 || s.Sizes[0] != 64 ||
		len(s.Placements) != 0 || s.NoCalibrate || s.TargetCI != DefaultTargetCI || s.Budget != DefaultBudget || s.Trials != 0 {
		t.Errorf("default spec %+v differs from the defaults %+v", s, d)
	}
}

// RenderSpec writes back what ParseSpec reads: every axis, the
// calibrated placements with their workloads, the adaptive settings and
// the seed survive the round trip.
func TestRenderSpecRoundTrip(t *testing.T) {
	in := &LabSpec{
		Modes: []string{"host", "veth-routed"}, Workloads: []workload.Workload{workload.TCPRR, workload.TCPStream},
		Sizes: []int{64, 1024}, Offloads: []offload.Preset{{Name: "default"}, {Name: "mine", Settings: []offload.Setting{{Name: "gro", On: false}}}},
		Placements: []Placement{
			{Name: PlacementSameCore, ClientCPUs: []int{0}, ServerCPU: 0, Workloads: []workload.Workload{workload.TCPRR}},
			{Name: PlacementCrossCore, ClientCPUs: []int{1}, ServerCPU: 0, Workloads: []workload.Workload{workload.TCPStream}},
		},
		TargetCI: 0.015, Budget: 90 * time.Second, MinTrials: 9, Duration: 200 * time.Millisecond, Warmup: 20 * time.Millisecond,
		Seed: 12345, Baseline: "host",
	}
	b, err := RenderSpec(in, "again", "# header\n")
	if err != nil {
		t.Fatal(err)
	}
	out, name, err := ParseSpec(b, "again.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if name != "again" || !strings.HasPrefix(string(b), "# header\n") || !slices.Equal(out.Modes, in.Modes) || !slices.Equal(out.Workloads, in.Workloads) ||
		!slices.Equal(out.Sizes, in.Sizes) || len(out.Offloads) != 2 || out.Offloads[1].Name != "mine" || len(out.Offloads[1].Settings) != 1 ||
		out.TargetCI != in.TargetCI || out.Budget != in.Budget || out.MinTrials != 9 || out.Seed != 12345 || out.Trials != 0 ||
		out.Duration != in.Duration || out.Warmup != in.Warmup || len(out.Placements) != 2 ||
		!slices.Equal(out.Placements[0].Workloads, in.Placements[0].Workloads) || out.Placements[1].ServerCPU != 0 || out.Placements[1].ClientCPUs[0] != 1 {
		t.Errorf("round trip changed the spec:\n%s\n%+v", b, out)
	}
	// A fixed run renders its trials, a run without calibration says so.
	in.Trials, in.NoCalibrate, in.Placements = 7, true, nil
	b, _ = RenderSpec(in, "fixed", "")
	out, _, err = ParseSpec(b, "fixed.yaml")
	if err != nil || out.Trials != 7 || !out.NoCalibrate || out.TargetCI != 0 {
		t.Errorf("fixed: %v %+v\n%s", err, out, b)
	}
}
