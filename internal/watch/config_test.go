package watch

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/wire"
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
		len(tt.Workloads) != 2 || tt.Workloads[1] != wire.UDPRR || tt.Trials != 5 || tt.Duration != time.Second ||
		tt.Warmup != DefaultTargetWarmup || tg.Overlap != OverlapSkip || tg.Baseline.Pinned != 42 || tt.Sizes[0] != 64 {
		t.Errorf("target job: %+v %+v", tg, tt)
	}
}

// A target job's numbers are bounded, a job name is a safe label, an
// impossible schedule and a second YAML document are refused: each with
// file:line, the field, the value and the bound.
func TestConfigBounds(t *testing.T) {
	job := func(target string) string {
		return "jobs:\n  - name: j\n    schedule: \"@every 1h\"\n    target:\n      address: 10.0.0.2:7707\n" + target
	}
	for _, c := range []struct {
		name, yaml, want string // want: "" accepted, else the error's start
	}{
		{"defaults", job(""), ""},
		{"trials at the bound", job("      trials: 1000\n"), ""},
		{"trials past the bound", job("      trials: 1001\n"), "w.yaml:6: jobs[0].target.trials: 1001 outside 1..1000"},
		{"duration at the bound", job("      duration: 1h\n"), ""},
		{"duration past the bound", job("      duration: 61m\n"), "w.yaml:6: jobs[0].target.duration: 1h1m0s: want whole milliseconds, 50ms..1h0m0s"},
		{"warmup past the bound", job("      warmup: 1h\n"), "w.yaml:6: jobs[0].target.warmup: 1h0m0s: want whole milliseconds, 0..10m0s"},
		{"client CPU past the bound", job("      client_cpus: [0, 5000]\n"), "w.yaml:6: jobs[0].target.client_cpus[1]: CPU 5000: CPU numbers are below 4096"},
		{"server CPU past the bound", job("      server_cpu: 4096\n"), "w.yaml:6: jobs[0].target.server_cpu: CPU 4096: CPU numbers are below 4096"},
		{"server CPU negative", job("      server_cpu: -1\n"), "w.yaml:6: jobs[0].target.server_cpu: CPU -1 is negative"},
		{"impossible schedule", strings.Replace(job(""), `"@every 1h"`, `"0 0 31 2 *"`, 1), `w.yaml:3: jobs[0].schedule: "0 0 31 2 *": never fires`},
		{"schedule too rare", strings.Replace(job(""), `"@every 1h"`, `"@every 9000h"`, 1), `w.yaml:3: jobs[0].schedule: @every 9000h0m0s: outside 1m..8784h0m0s`},
		{"job name with a newline", strings.Replace(job(""), "name: j", `name: "a\nb"`, 1), `w.yaml:2: jobs[0].name: "a\nb": want letters, digits`},
		{"job name with a quote", strings.Replace(job(""), "name: j", `name: 'a"b'`, 1), `w.yaml:2: jobs[0].name: "a\"b": want letters`},
		{"job name too long", strings.Replace(job(""), "name: j", "name: "+strings.Repeat("x", 65), 1), "w.yaml:2: jobs[0].name:"},
		{"job name at the bound", strings.Replace(job(""), "name: j", "name: "+strings.Repeat("x", 64), 1), ""},
		{"second document", job("") + "---\njobs: []\n", "w.yaml:6: multiple YAML documents: a second one starts at line 6"},
		{"trailing separator", job("") + "---\n", ""},
		{"empty", "", "w.yaml: empty"},
	} {
		_, err := ParseConfig([]byte(c.yaml), "w.yaml")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%s:\n got: %v\nwant: %s...", c.name, err, c.want)
		}
	}
}
