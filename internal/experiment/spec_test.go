package experiment

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
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
	if len(s.Placements) != 2 || s.Placements[1].ServerCPU != 1 || s.Placements[1].ClientCPUs[0] != 1 || s.Placements[0].ServerCPU != wire.CPUAuto {
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
		Modes: []string{"host", "veth-routed"}, Workloads: []wire.Workload{wire.TCPRR, wire.TCPStream},
		Sizes: []int{64, 1024}, Offloads: []offload.Preset{{Name: "default"}, {Name: "mine", Settings: []offload.Setting{{Name: "gro", On: false}}}},
		Placements: []Placement{
			{Name: PlacementSameCore, ClientCPUs: []int{0}, ServerCPU: 0, Workloads: []wire.Workload{wire.TCPRR}},
			{Name: PlacementCrossCore, ClientCPUs: []int{1}, ServerCPU: 0, Workloads: []wire.Workload{wire.TCPStream}},
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

// Every bound of a spec is refused with the line, the field, the value and
// the bound; a value at the bound is accepted.
func TestSpecBounds(t *testing.T) {
	possible, havePossible := PossibleCPUs()
	for _, c := range []struct {
		name, yaml string
		want       string // "" accepted; else a substring of the error (which starts with spec.yaml:LINE:)
		line       int
	}{
		{"trials at the bound", "trials: 1000\n", "", 0},
		{"trials past the bound", "name: x\ntrials: 1001\n", "trials: 1001 outside 1..1000", 2},
		{"trials negative", "trials: -1\n", "trials: -1 outside 1..1000", 1},
		{"min_trials past the bound", "min_trials: 5000\n", "min_trials: 5000 outside 0..1000", 1},
		{"duration at the bound", "duration: 1h\n", "", 0},
		{"duration past the bound", "duration: 1h0m0.001s\n", "duration: 1h0m0.001s: want whole milliseconds, 50ms..1h0m0s", 1},
		{"duration huge", "duration: 2562047h\n", "duration: 2562047h0m0s: want whole milliseconds, 50ms..1h0m0s", 1},
		{"warmup past the bound", "warmup: 11m\n", "warmup: 11m0s: want whole milliseconds, 0..10m0s", 1},
		{"warmup negative", "warmup: -1s\n", "warmup: -1s: want whole milliseconds, 0..10m0s", 1},
		{"budget at the bound", "budget: 24h\n", "", 0},
		{"budget past the bound", "budget: 25h\n", "budget: 25h0m0s outside 0..24h0m0s", 1},
		{"client CPU 0", "placements:\n  - name: p\n    client_cpus: [0]\n    server_cpu: 0\n", "", 0},
		{"client CPU at MaxCPU", "placements:\n  - name: p\n    client_cpus: [0, 4096]\n", "placements[0].client_cpus[1]: CPU 4096: CPU numbers are below 4096", 3},
		{"client CPU negative", "placements:\n  - name: p\n    client_cpus: [-1]\n", "placements[0].client_cpus[0]: CPU -1 is negative", 3},
		{"server CPU huge", "placements:\n  - name: p\n    server_cpu: 99999999\n", "placements[0].server_cpu: CPU 99999999: CPU numbers are below 4096", 3},
		{"server CPU negative", "placements:\n  - name: p\n    server_cpu: -3\n", "placements[0].server_cpu: CPU -3 is negative", 3},
	} {
		_, _, err := ParseSpec([]byte(c.yaml), "spec.yaml")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && err == nil:
			t.Errorf("%s: accepted", c.name)
		case c.want != "":
			prefix := fmt.Sprintf("spec.yaml:%d: ", c.line)
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s:\n got: %v\nwant: %s...%s", c.name, err, prefix, c.want)
			}
		}
	}
	// A CPU this machine cannot have is refused even below MaxCPU.
	if havePossible && possible < MaxCPU {
		_, _, err := ParseSpec([]byte(fmt.Sprintf("placements:\n  - name: p\n    server_cpu: %d\n", possible)), "spec.yaml")
		if err == nil || !strings.Contains(err.Error(), "/sys/devices/system/cpu/possible") {
			t.Errorf("CPU %d on a machine with CPUs 0..%d: %v", possible, possible-1, err)
		}
	}
}

// A spec is one YAML document: a second one is refused at its line, a
// trailing "---" alone is not a document.
func TestSpecMultipleDocuments(t *testing.T) {
	for _, c := range []struct {
		name, yaml, want string
	}{
		{"two documents", "name: a\ntrials: 3\n---\nname: b\n", "spec.yaml:3: multiple YAML documents: a second one starts at line 3"},
		{"three documents", "name: a\n---\n---\nname: b\n", "spec.yaml:3: multiple YAML documents"},
		{"leading separator", "---\nname: a\n", ""},
		{"trailing separator", "name: a\n---\n", ""},
		{"trailing separator and comment", "name: a\n---\n# nothing\n", ""},
		{"empty", "", "spec.yaml: empty"},
		{"syntax error line", "name: a\nmodes: [host\n", "spec.yaml:"},
	} {
		_, _, err := ParseSpec([]byte(c.yaml), "spec.yaml")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %s...", c.name, err, c.want)
		}
	}
}

// Errors inside a topology written inline in a spec name the spec's own
// line of the offending value, whatever comes before the topology.
func TestSpecInlineTopologyLines(t *testing.T) {
	const head = "# an experiment\nname: inline\n\nbaseline: m\n"
	topo := func(body string) string { return head + "topology:\n" + body } // topology: is line 5
	const good = "  name: mine\n  base:\n    namespaces: [a, b]\n  modes:\n    - name: m\n      client: a\n      server: b\n      target: 10.0.0.2:7707\n"
	if s, _, err := ParseSpec([]byte(topo(good)), "spec.yaml"); err != nil || s.Topology.Name != "mine" {
		t.Fatalf("good inline topology: %v", err)
	}
	for _, c := range []struct {
		name, body string
		line       int
		want       string
	}{
		{"unknown field in a mode", strings.Replace(good, "      target:", "      colour: red\n      target:", 1), 13,
			"topology: field colour not found in a mode (allowed: name, description, client, server, target, listen, sidecar, opt_in, namespaces, links, routes, sysctls, nat, programs)"},
		{"unknown field in base", strings.Replace(good, "    namespaces: [a, b]\n", "    namespaces: [a, b]\n    bridges: []\n", 1), 9,
			"topology: field bridges not found in base"},
		{"bad target", strings.Replace(good, "10.0.0.2:7707", "nowhere", 1), 13, `topology: mode m: target "nowhere": want IP:PORT`},
		{"undefined namespace", strings.Replace(good, "server: b", "server: zz", 1), 12, `topology: mode m: server namespace "zz" is not defined`},
		{"bad MTU in a link", strings.Replace(good, "    namespaces: [a, b]\n", "    namespaces: [a, b]\n    links:\n      - {kind: bridge, ns: a, name: br0}\n      - kind: bridge\n        ns: a\n        name: br1\n        mtu: 70000\n", 1), 14,
			"topology: base: link a/br1: mtu 70000 outside 68..65535"},
		{"wrong type", strings.Replace(good, "    namespaces: [a, b]\n", "    namespaces: [a, b]\n    links:\n      - {kind: bridge, ns: a, name: br0, mtu: big}\n", 1), 10,
			"topology: cannot unmarshal !!str `big` into int"},
	} {
		_, _, err := ParseSpec([]byte(topo(c.body)), "spec.yaml")
		prefix := fmt.Sprintf("spec.yaml:%d: ", c.line)
		if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got: %v\nwant: %s%s\n%s", c.name, err, prefix, c.want, topo(c.body))
		}
	}
}

// A topology file a spec names reports its own file and line.
func TestSpecTopologyFileLines(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.yaml"), []byte("name: t\nbase:\n  namespaces: [a]\nmodes:\n  - name: m\n    client: a\n    server: a\n    target: bad\n---\nname: u\n"), 0o644)
	spec := filepath.Join(dir, "s.yaml")
	_, _, err := ParseSpec([]byte("name: s\ntopology: t.yaml\n"), spec)
	want := spec + ":2: topology: " + filepath.Join(dir, "t.yaml") + ":9: multiple YAML documents"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v\nwant %s...", err, want)
	}
	os.WriteFile(filepath.Join(dir, "t.yaml"), []byte("name: t\nbase:\n  namespaces: [a]\nmodes:\n  - name: m\n    client: a\n    server: a\n    target: bad\n"), 0o644)
	_, _, err = ParseSpec([]byte("name: s\ntopology: t.yaml\n"), spec)
	want = spec + ":2: topology: " + filepath.Join(dir, "t.yaml") + ":8: mode m: target \"bad\""
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v\nwant %s...", err, want)
	}
}

// A spec built from flags (or by a watch job) meets the same bounds as a
// spec file: `latlab lab --duration 100h` is refused, not run for days.
func TestLabSpecValidateBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*LabSpec)
		want string
	}{
		{"duration", func(s *LabSpec) { s.Duration = 100 * time.Hour }, "trial duration"},
		{"short duration", func(s *LabSpec) { s.Duration = 10 * time.Millisecond }, "trial duration"},
		{"warm-up", func(s *LabSpec) { s.Warmup = time.Hour }, "warm-up"},
		{"budget", func(s *LabSpec) { s.Budget = 25 * time.Hour }, "budget"},
		{"client CPU", func(s *LabSpec) { s.Placements = []Placement{{Name: "p", ClientCPUs: []int{MaxCPU}, ServerCPU: 0}} }, "placement p: client CPU"},
		{"server CPU", func(s *LabSpec) { s.Placements = []Placement{{Name: "p", ServerCPU: 1 << 20}} }, "placement p: server CPU"},
		{"negative client CPU", func(s *LabSpec) { s.Placements = []Placement{{Name: "p", ClientCPUs: []int{-3}, ServerCPU: 0}} }, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s LabSpec
			s.Defaults()
			if err := s.Validate(); err != nil {
				t.Fatalf("defaults: %v", err)
			}
			tc.edit(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
	// The automatic and unpinned server placements are not CPU numbers.
	var s LabSpec
	s.Defaults()
	s.Placements = []Placement{{Name: "a", ServerCPU: wire.CPUAuto}, {Name: "n", ServerCPU: wire.CPUNone}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

// A lab over the IPv6 or dual-stack default topology records it by name,
// and `latlab run` of that spec builds the same topology.
func TestRenderSpecFamilyTopology(t *testing.T) {
	for _, fam := range []topo.Family{topo.Family4, topo.Family6, topo.FamilyDual} {
		in := &LabSpec{Modes: []string{"host", "bridge-nat"}, Topology: topo.DefaultFamily(fam), Trials: 3}
		b, err := RenderSpec(in, "fam", "")
		if err != nil {
			t.Fatal(err)
		}
		if want := "topology: " + fam.Name() + "\n"; !strings.Contains(string(b), want) {
			t.Errorf("family %s: spec lacks %q:\n%s", fam, want, b)
		}
		out, _, err := ParseSpec(b, "fam.yaml")
		if err != nil {
			t.Fatalf("family %s: %v\n%s", fam, err, b)
		}
		got, _ := out.Topology.YAML()
		want, _ := topo.DefaultFamily(fam).YAML()
		if !bytes.Equal(got, want) {
			t.Errorf("family %s: the parsed spec builds another topology:\n%s", fam, got)
		}
	}
}
