package watch

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/workload"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestConfigValidationGoldens(t *testing.T) {
	files, _ := filepath.Glob("testdata/config/bad-*.yaml")
	if len(files) < 10 {
		t.Fatalf("only %d bad configs", len(files))
	}
	for _, f := range files {
		_, err := LoadConfig(f)
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

func TestConfigOK(t *testing.T) {
	c, err := LoadConfig("testdata/config/ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Jobs) != 2 {
		t.Fatalf("%d jobs", len(c.Jobs))
	}
	lab, tg := c.Jobs[0], c.Jobs[1]
	if lab.Spec == nil || lab.SpecName != "watched" || lab.Overlap != OverlapWait || lab.Baseline.Last != 7 ||
		len(lab.Alerts) != 2 || lab.Alerts[1].Command[2] != "latlab" || lab.Spec.Baseline != "host" {
		t.Errorf("lab job: %+v", lab)
	}
	want := time.Date(2026, 1, 2, 3, 0, 0, 0, time.Local)
	if got := lab.Schedule.Next(time.Date(2026, 1, 1, 4, 0, 0, 0, time.Local)); !got.Equal(want) {
		t.Errorf("lab schedule next %v", got)
	}
	tt := tg.Target
	if tt == nil || tt.Address != "10.0.0.2:7707" || tt.NetNS != "/var/run/netns/latlab-client" && tt.NetNS != "/run/netns/latlab-client" ||
		len(tt.Workloads) != 2 || tt.Workloads[1] != workload.UDPRR || tt.Trials != 5 || tt.Duration != time.Second ||
		tt.Warmup != DefaultTargetWarmup || tg.Overlap != OverlapSkip || tg.Baseline.Pinned != 42 || tt.Sizes[0] != 64 {
		t.Errorf("target job: %+v %+v", tg, tt)
	}
}
