package watch

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST zones below, whatever the machine has installed

	"go.yaml.in/yaml/v3"
)

// fuzzZones: UTC, a zone with an hour DST gap at 02:00, one whose DST
// changes at midnight and one with a 30-minute DST shift.
var fuzzZones = func() []*time.Location {
	locs := []*time.Location{time.UTC}
	for _, name := range []string{"America/New_York", "America/Santiago", "Australia/Lord_Howe"} {
		if l, err := time.LoadLocation(name); err == nil {
			locs = append(locs, l)
		}
	}
	return locs
}()

// FuzzParseSchedule: a job's schedule is outside input. ParseSchedule
// returns an error or a schedule whose Next is strictly later, a whole
// minute for cron specs, matching every field, and never the zero time
// (an accepted schedule fires).
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"@every 30m", "*/15 * * * *", "5 3 * * *", "0 9-17/4 * * 1-5", "0 0 * * 7", "30 12 1,15 * *",
		"0 0 13 * 5", "@hourly", "@daily", "@weekly", "@monthly", "@midnight", "0 0 29 2 *", "0 0 30 2 *", "0 0 31 4,6 *",
		"", "@every 10s", "@every x", "@yearly", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
		"* * * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *", "* * * JAN *", "0 2 * * *", "30 0 * * *", "1-59/30 * * * *",
		"1-59/9223372036854775807 * * * *"} { // found by review: the step overflowed the loop

		f.Add(s, int64(1773482850), uint8(0)) // 2026-03-14 10:07:30 UTC
		f.Add(s, int64(1772953200), uint8(1)) // near the 2026 US DST change
	}
	f.Fuzz(func(t *testing.T, s string, at int64, zone uint8) {
		loc := fuzzZones[int(zone)%len(fuzzZones)]
		sch, err := ParseSchedule(s, loc)
		if err != nil {
			return
		}
		// Any time from 1970 to 2170.
		const span = 200 * 365 * 24 * 3600
		from := time.Unix(((at%span)+span)%span, 0).In(loc)
		next := sch.Next(from)
		if next.IsZero() {
			t.Fatalf("%q from %v: never due", s, from)
		}
		if !next.After(from) {
			t.Fatalf("%q from %v: next %v is not later", s, from, next)
		}
		switch c := sch.(type) {
		case every:
			if d := time.Duration(c); next.Sub(from) > d {
				t.Fatalf("%q from %v: next %v is more than %v later", s, from, next, d)
			}
		case *cronSpec:
			n := next.In(loc)
			if n.Second() != 0 || n.Nanosecond() != 0 {
				t.Fatalf("%q: next %v is not a whole minute", s, n)
			}
			if c.min&(1<<n.Minute()) == 0 || c.hour&(1<<n.Hour()) == 0 || c.month&(1<<int(n.Month())) == 0 || !c.dayMatches(n) {
				t.Fatalf("%q from %v: next %v does not match", s, from, n)
			}
		}
	})
}

// unsafeSpecPath reports whether b names a spec file (jobs[].spec) that
// ParseConfig would read from outside testdata/config: a fuzzer must not
// open /dev/zero or a FIFO.
func unsafeSpecPath(b []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return false
		}
		var walk func(n *yaml.Node, depth int) bool
		seen := map[*yaml.Node]bool{}
		walk = func(n *yaml.Node, depth int) bool {
			if n == nil || seen[n] {
				return false
			}
			seen[n] = true
			if n.Kind == yaml.AliasNode {
				return walk(n.Alias, depth)
			}
			for i, c := range n.Content {
				if n.Kind == yaml.MappingNode && i%2 == 0 && i+1 < len(n.Content) {
					k, v := c, n.Content[i+1]
					if k.Kind == yaml.AliasNode && k.Alias != nil {
						k = k.Alias
					}
					if v.Kind == yaml.AliasNode && v.Alias != nil {
						v = v.Alias
					}
					if k.Value == "spec" && (filepath.IsAbs(v.Value) || strings.Contains(v.Value, "..")) {
						return true
					}
				}
				if walk(c, depth+1) {
					return true
				}
			}
			return false
		}
		if walk(&doc, 0) {
			return true
		}
	}
}

// FuzzParseConfig: a watch configuration is outside input. ParseConfig
// returns an error or jobs that are complete: a schedule, exactly one of
// spec and target, a baseline and a confirm count in range.
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/config/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("jobs:\n  - name: a\n    schedule: '@every 1h'\n    target: {address: '[::1]:7707', warmup: 0s, server_cpu: none, client_cpus: [0]}\n    confirm: 10\n"))
	f.Add([]byte("jobs: []\n"))
	f.Add([]byte(""))
	const file = "testdata/config/fuzz.yaml" // relative specs are the testdata's
	f.Fuzz(func(t *testing.T, b []byte) {
		if unsafeSpecPath(b) {
			t.Skip("spec path outside testdata/config")
		}
		cfg, err := ParseConfig(b, file)
		if err != nil {
			return
		}
		if len(cfg.Jobs) == 0 {
			t.Fatal("accepted a config without jobs")
		}
		names := map[string]bool{}
		for _, j := range cfg.Jobs {
			if j.Name == "" || names[j.Name] {
				t.Fatalf("job name %q empty or repeated", j.Name)
			}
			names[j.Name] = true
			if j.Schedule == nil {
				t.Fatalf("job %q has no schedule", j.Name)
			}
			if (j.Spec == nil) == (j.Target == nil) {
				t.Fatalf("job %q: spec %v, target %v: want exactly one", j.Name, j.Spec != nil, j.Target != nil)
			}
			if j.Confirm < 1 || j.Confirm > 10 || (j.Baseline.Last == 0) == (j.Baseline.Pinned == 0) {
				t.Fatalf("job %q: confirm %d, baseline %+v", j.Name, j.Confirm, j.Baseline)
			}
			if j.Overlap != OverlapWait && j.Overlap != OverlapSkip {
				t.Fatalf("job %q: overlap %q", j.Name, j.Overlap)
			}
			if tg := j.Target; tg != nil && (len(tg.Workloads) == 0 || len(tg.Sizes) == 0 || tg.Trials < 1 || tg.Duration <= 0 || tg.Warmup < 0) {
				t.Fatalf("job %q: incomplete target %+v", j.Name, tg)
			}
		}
	})
}
