package watch

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/experiment"
)

// Unit tests of ParseConfig's phases; TestConfigValidationGoldens and
// TestConfigBounds check the whole.

func TestDecodeConfig(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		jobs       int
		err        string // the error, "" for none
	}{
		{"jobs", "jobs:\n  - name: a\n  - name: b\n", 2, ""},
		{"no jobs yet", "jobs: []\n", 0, ""},
		{"empty", "", 0, "c.yaml: empty: want jobs: [...]"},
		{"only a comment", "# nothing\n", 0, "c.yaml: empty: want jobs: [...]"},
		{"unknown field names the allowed", "jobs:\n  - nme: a\n", 0,
			"c.yaml:2: field nme not found (allowed: name, schedule, overlap, spec, target, baseline, confirm, alerts)"},
		{"unknown top-level field", "job: []\n", 0, "c.yaml:1: field job not found (allowed: jobs)"},
		{"wrong type", "jobs:\n  - confirm: x\n", 0, "c.yaml:2: cannot unmarshal !!str `x` into int"},
		{"syntax", "jobs: [\n", 0, "c.yaml:1: did not find expected node content"},
		{"second document", "jobs: []\n---\njobs: []\n", 0, "c.yaml:2: multiple YAML documents: a second one starts at line 2 ('---'); put everything in one document"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc, root, err := decodeConfig([]byte(c.yaml), "c.yaml")
			if c.err != "" {
				var se *experiment.SpecError
				if err == nil || err.Error() != c.err || !errors.As(err, &se) {
					t.Fatalf("error %v, want %s", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rc.Jobs) != c.jobs || root == nil {
				t.Errorf("%d jobs, root %v", len(rc.Jobs), root)
			}
		})
	}
}

// parsed decodes yaml and returns a parser over it with its first job.
func parsed(t *testing.T, yaml string) (*configParser, rawJob) {
	t.Helper()
	rc, root, err := decodeConfig([]byte(yaml), "testdata/config/c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return &configParser{file: "testdata/config/c.yaml", root: root}, rc.Jobs[0]
}

func TestCheckJobName(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		seen       []string
		err        string
	}{
		{"fine", "jobs:\n  - name: nightly.v2_x\n", nil, ""},
		{"missing: the job's line", "jobs:\n  - schedule: x\n", nil, "testdata/config/c.yaml:2: jobs[0].name: a job needs a name"},
		{"unsafe", "jobs:\n  - schedule: x\n    name: 'a b'\n", nil, `testdata/config/c.yaml:3: jobs[0].name: "a b": want letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit (it names the job's runs and metrics)`},
		{"repeated", "jobs:\n  - name: a\n", []string{"a"}, `testdata/config/c.yaml:2: jobs[0].name: job "a" given twice`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, rj := parsed(t, c.yaml)
			names := map[string]bool{}
			for _, n := range c.seen {
				names[n] = true
			}
			err := p.checkJobName(rj.Name, "jobs[0]", p.jobLines(0), names)
			if got := errString(err); got != c.err {
				t.Fatalf("error %q, want %q", got, c.err)
			}
			if err == nil && !names[rj.Name] {
				t.Error("name not recorded")
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestParseJobSource(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		lab, tgt   bool
		err        string
	}{
		{"lab spec relative to the config", "jobs:\n  - name: a\n    spec: lab.yaml\n", true, false, ""},
		{"target", "jobs:\n  - name: a\n    target: {address: 'h:1'}\n", false, true, ""},
		{"both", "jobs:\n  - name: a\n    spec: lab.yaml\n    target: {address: 'h:1'}\n", false, false,
			"testdata/config/c.yaml:4: jobs[0]: give spec or target, not both"},
		{"neither", "jobs:\n  - name: a\n", false, false,
			"testdata/config/c.yaml:2: jobs[0]: give spec: FILE (a lab spec) or target: {address: HOST:PORT}"},
		{"missing spec", "jobs:\n  - name: a\n    spec: nope.yaml\n", false, false,
			"testdata/config/c.yaml:3: jobs[0].spec: stat testdata/config/nope.yaml: no such file or directory"},
		{"bad target, with the config's file", "jobs:\n  - name: a\n    target:\n      address: nope\n", false, false,
			`testdata/config/c.yaml:4: jobs[0].target.address: "nope": want HOST:PORT`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, rj := parsed(t, c.yaml)
			j := &Job{}
			err := p.parseJobSource(j, rj, "jobs[0]", p.jobLines(0))
			if got := errString(err); !strings.HasPrefix(got, c.err) || (c.err == "") != (got == "") {
				t.Fatalf("error %q, want %q", got, c.err)
			}
			if (j.Spec != nil) != c.lab || (j.Target != nil) != c.tgt {
				t.Errorf("spec %v target %v", j.Spec != nil, j.Target != nil)
			}
			if c.lab && (j.SpecFile != "testdata/config/lab.yaml" || j.SpecText == "" || j.SpecName == "") {
				t.Errorf("spec file %q name %q", j.SpecFile, j.SpecName)
			}
		})
	}
}

func TestParseBaseline(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       BaselineSpec
		err        string
	}{
		{"none: zero, for the defaults", "", BaselineSpec{}, ""},
		{"last", "{last: 7}", BaselineSpec{Last: 7}, ""},
		{"last at the bound", "{last: 100}", BaselineSpec{Last: 100}, ""},
		{"pinned", "{pinned: 42}", BaselineSpec{Pinned: 42}, ""},
		{"both", "{last: 3, pinned: 4}", BaselineSpec{}, "testdata/config/c.yaml:3: jobs[0].baseline: give last: N or pinned: RUN, not both"},
		{"last too large", "{last: 101}", BaselineSpec{}, "testdata/config/c.yaml:3: jobs[0].baseline.last: 101 outside 1..100"},
		{"last negative", "\n      last: -1", BaselineSpec{}, "testdata/config/c.yaml:4: jobs[0].baseline.last: -1 outside 1..100"},
		{"pinned negative", "{pinned: -2}", BaselineSpec{}, "testdata/config/c.yaml:3: jobs[0].baseline.pinned: -2 is not a run id"},
		{"empty", "{}", BaselineSpec{}, "testdata/config/c.yaml:3: jobs[0].baseline: want {last: N} or {pinned: RUN}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			y := "jobs:\n  - name: a\n"
			if c.yaml != "" {
				y += "    baseline: " + c.yaml + "\n"
			}
			p, rj := parsed(t, y)
			got, err := p.parseBaseline(rj.Baseline, "jobs[0]", p.jobLines(0))
			if errString(err) != c.err || got != c.want {
				t.Errorf("%+v, %v; want %+v, %q", got, err, c.want, c.err)
			}
		})
	}
}

func TestParseAlerts(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []AlertSpec
		err        string
	}{
		{"none", "", nil, ""},
		{"webhook and command", "\n      - webhook: https://h/x\n      - command: [sh, -c, 'cat']", []AlertSpec{{Webhook: "https://h/x"}, {Command: []string{"sh", "-c", "cat"}}}, ""},
		{"both in one", "\n      - {webhook: 'http://h', command: [a]}", nil, "testdata/config/c.yaml:4: jobs[0].alerts[0]: give webhook or command, not both"},
		{"not http", "\n      - webhook: https://h\n      - webhook: ftp://h", nil, `testdata/config/c.yaml:5: jobs[0].alerts[1].webhook: "ftp://h": want an http:// or https:// URL`},
		{"no host", "\n      - webhook: 'http://'", nil, `testdata/config/c.yaml:4: jobs[0].alerts[0].webhook: "http://": want an http:// or https:// URL`},
		{"empty program", "\n      - command: ['']", nil, "testdata/config/c.yaml:4: jobs[0].alerts[0].command: empty program name"},
		{"empty hook", "\n      - {}", nil, "testdata/config/c.yaml:4: jobs[0].alerts[0]: want {webhook: URL} or {command: [PROGRAM, ARGS...]}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			y := "jobs:\n  - name: a\n"
			if c.yaml != "" {
				y += "    alerts:" + c.yaml + "\n"
			}
			p, rj := parsed(t, y)
			got, err := p.parseAlerts(rj.Alerts, "jobs[0]", p.jobLines(0))
			if errString(err) != c.err || !slices.EqualFunc(got, c.want, func(a, b AlertSpec) bool {
				return a.Webhook == b.Webhook && slices.Equal(a.Command, b.Command)
			}) {
				t.Errorf("%+v, %v; want %+v, %q", got, err, c.want, c.err)
			}
		})
	}
}

func TestParseJob(t *testing.T) {
	const head = "jobs:\n  - name: a\n    target: {address: 'h:1'}\n"
	for _, c := range []struct {
		name, yaml string
		err        string
	}{
		{"fine, fields left out stay zero", head + "    schedule: '@every 1h'\n", ""},
		{"no schedule", head, `testdata/config/c.yaml:2: jobs[0].schedule: required ("@every 30m" or a 5-field cron expression)`},
		{"bad schedule", head + "    schedule: 'x'\n", `testdata/config/c.yaml:4: jobs[0].schedule: "x": want 5 fields`},
		{"bad overlap", head + "    schedule: '@every 1h'\n    overlap: never\n", `testdata/config/c.yaml:5: jobs[0].overlap: "never" (allowed: wait, skip)`},
		{"confirm too large", head + "    schedule: '@every 1h'\n    confirm: 11\n", "testdata/config/c.yaml:5: jobs[0].confirm: 11 outside 1..10"},
		{"confirm negative", head + "    schedule: '@every 1h'\n    confirm: -1\n", "testdata/config/c.yaml:5: jobs[0].confirm: -1 outside 1..10"},
		{"the name first", "jobs:\n  - confirm: 11\n", "testdata/config/c.yaml:2: jobs[0].name: a job needs a name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, rj := parsed(t, c.yaml)
			j, err := p.parseJob(0, rj, map[string]bool{})
			if got := errString(err); !strings.HasPrefix(got, c.err) || (c.err == "") != (got == "") {
				t.Fatalf("error %q, want %q", got, c.err)
			}
			if err == nil && (j.Name != "a" || j.Schedule == nil || j.Target == nil || j.Overlap != "" || j.Confirm != 0 || j.Baseline != (BaselineSpec{})) {
				t.Errorf("job %+v", j)
			}
		})
	}
}

func TestJobDefaults(t *testing.T) {
	for _, c := range []struct {
		name    string
		in, out Job
	}{
		{"all left out", Job{}, Job{Overlap: OverlapWait, Baseline: BaselineSpec{Last: DefaultBaselineRuns}, Confirm: DefaultConfirm}},
		{"all given", Job{Overlap: OverlapSkip, Baseline: BaselineSpec{Pinned: 3}, Confirm: 1}, Job{Overlap: OverlapSkip, Baseline: BaselineSpec{Pinned: 3}, Confirm: 1}},
		{"last given", Job{Baseline: BaselineSpec{Last: 9}}, Job{Overlap: OverlapWait, Baseline: BaselineSpec{Last: 9}, Confirm: DefaultConfirm}},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := c.in
			jobDefaults(&j)
			if j.Overlap != c.out.Overlap || j.Baseline != c.out.Baseline || j.Confirm != c.out.Confirm {
				t.Errorf("%+v, want %+v", j, c.out)
			}
		})
	}
}
