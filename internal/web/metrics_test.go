package web_test

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/web"
)

// sample is one parsed series.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// parseExposition is a strict parser of the Prometheus text format
// (0.0.4): every line is a HELP, a TYPE or a sample; HELP and TYPE come
// once per family, before its samples; a family's samples are
// contiguous; label values use only the \\, \" and \n escapes; no series
// appears twice; counters end in _total.
func parseExposition(t *testing.T, text string) []sample {
	t.Helper()
	if !strings.HasSuffix(text, "\n") {
		t.Fatal("exposition does not end with a newline")
	}
	var out []sample
	help, typ := map[string]bool{}, map[string]string{}
	done := map[string]bool{} // families whose samples are over
	cur := ""
	seen := map[string]bool{}
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(f string, a ...any) { t.Fatalf("line %d %q: %s", n+1, line, fmt.Sprintf(f, a...)) }
		if strings.HasPrefix(line, "#") {
			f := strings.SplitN(line, " ", 4)
			if len(f) < 3 || (f[1] != "HELP" && f[1] != "TYPE") {
				fail("bad comment line")
			}
			name := f[2]
			if !metricNameRE.MatchString(name) {
				fail("bad metric name")
			}
			if done[name] || (cur != "" && cur != name) && (help[name] || typ[name] != "") {
				fail("metadata of %s after its samples", name)
			}
			if cur != name {
				if cur != "" {
					done[cur] = true
				}
				cur = name
			}
			switch f[1] {
			case "HELP":
				if help[name] || len(f) != 4 || f[3] == "" {
					fail("duplicate or empty HELP")
				}
				if regexp.MustCompile(`\\[^\\n]`).MatchString(strings.ReplaceAll(f[3], `\\`, "")) {
					fail("bad escape in HELP")
				}
				help[name] = true
			case "TYPE":
				if typ[name] != "" || len(f) != 4 {
					fail("duplicate TYPE")
				}
				switch f[3] {
				case "counter", "gauge", "histogram", "summary", "untyped":
				default:
					fail("bad type %q", f[3])
				}
				if f[3] == "counter" && !strings.HasSuffix(name, "_total") {
					fail("counter without _total")
				}
				typ[name] = f[3]
			}
			continue
		}
		s, rest := parseSample(line, fail)
		if rest != "" {
			fail("trailing %q", rest)
		}
		if s.name != cur {
			if done[s.name] {
				fail("samples of %s are not contiguous", s.name)
			}
			if cur != "" {
				done[cur] = true
			}
			cur = s.name
		}
		if typ[s.name] == "" || !help[s.name] {
			fail("sample before its HELP and TYPE")
		}
		keys := make([]string, 0, len(s.labels))
		for k := range s.labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		id := s.name
		for _, k := range keys {
			id += "," + k + "=" + s.labels[k]
		}
		if seen[id] {
			fail("duplicate series")
		}
		seen[id] = true
		out = append(out, s)
	}
	return out
}

func parseSample(line string, fail func(string, ...any)) (sample, string) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		fail("no value")
	}
	s.name = line[:i]
	if !metricNameRE.MatchString(s.name) {
		fail("bad metric name")
	}
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, `="`)
			if eq < 0 {
				fail("bad label")
			}
			name := rest[:eq]
			if !labelNameRE.MatchString(name) || strings.HasPrefix(name, "__") {
				fail("bad label name %q", name)
			}
			if _, dup := s.labels[name]; dup {
				fail("label %s twice", name)
			}
			rest = rest[eq+2:]
			var v strings.Builder
			for {
				if rest == "" {
					fail("unterminated label value")
				}
				c := rest[0]
				if c == '"' {
					rest = rest[1:]
					break
				}
				if c == '\n' {
					fail("raw newline")
				}
				if c == '\\' {
					if len(rest) < 2 {
						fail("dangling backslash")
					}
					switch rest[1] {
					case '\\':
						v.WriteByte('\\')
					case '"':
						v.WriteByte('"')
					case 'n':
						v.WriteByte('\n')
					default:
						fail("bad escape \\%c", rest[1])
					}
					rest = rest[2:]
					continue
				}
				v.WriteByte(c)
				rest = rest[1:]
			}
			s.labels[name] = v.String()
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
			} else if !strings.HasPrefix(rest, "}") {
				fail("expected , or }")
			}
		}
	}
	if !strings.HasPrefix(rest, " ") {
		fail("no space before the value")
	}
	f := strings.Split(rest[1:], " ")
	if len(f) > 2 {
		fail("too many fields")
	}
	switch f[0] {
	case "NaN":
		s.value = math.NaN()
	case "+Inf":
		s.value = math.Inf(1)
	case "-Inf":
		s.value = math.Inf(-1)
	default:
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil || strings.ContainsAny(f[0], "_xXpP") || strings.EqualFold(f[0], "inf") {
			fail("bad value %q", f[0])
		}
		s.value = v
	}
	if len(f) == 2 {
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			fail("bad timestamp")
		}
	}
	return s, ""
}

// find returns the value of the one sample of name whose labels include
// want.
func find(t *testing.T, ss []sample, name string, want ...string) float64 {
	t.Helper()
	var got []float64
	for _, s := range ss {
		if s.name != name {
			continue
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			if s.labels[want[i]] != want[i+1] {
				ok = false
			}
		}
		if ok {
			got = append(got, s.value)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%s%v: %d samples", name, want, len(got))
	}
	return got[0]
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	// One more run, still running, to count.
	if _, err := f.st.CreateRun(t.Context(), &store.Run{Kind: "run", SpecName: "x"}); err != nil {
		t.Fatal(err)
	}
	alerts := fakeAlerts{
		{Name: "p99 \"up\"\\n\nagain", Job: "nightly", ConfigKey: "mode=veth-routed/workload=tcp_rr", Metric: "p99", State: web.AlertFiring},
		{Name: "rate", Job: "nightly", Metric: "rate", State: web.AlertResolved},
	}
	last := time.Date(2026, 3, 9, 1, 2, 3, 0, time.UTC)
	sched := fakeSched{Running: true, Jobs: []web.JobHealth{{Name: "nightly", LastRun: last, LastError: "boom \"x\"\nline2", Runs: 7, Failures: 2}}}
	ts := serve(t, web.Options{Store: f.st, Alerts: alerts, Scheduler: sched, Version: "v1.2.3-test"})
	code, body, h := get(t, nil, ts.URL+"/metrics")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("%d %q", code, h.Get("Content-Type"))
	}
	ss := parseExposition(t, body)

	if v := find(t, ss, "latlab_build_info", "version", "v1.2.3-test", "goversion", runtime.Version()); v != 1 {
		t.Errorf("build info %v", v)
	}
	if v := find(t, ss, "latlab_runs", "status", "complete"); v != 10 {
		t.Errorf("complete runs %v", v)
	}
	if v := find(t, ss, "latlab_runs", "status", "running"); v != 1 {
		t.Errorf("running runs %v", v)
	}
	if v := find(t, ss, "latlab_runs", "status", "incomplete"); v != 0 {
		t.Errorf("incomplete runs %v", v)
	}
	// Last-run figures of job nightly come from its newest run.
	id := f.nightly[len(f.nightly)-1]
	run, _ := f.st.Run(t.Context(), id)
	if v := find(t, ss, "latlab_last_run_id", "latlab_job", "nightly"); v != float64(id) {
		t.Errorf("last nightly run %v, want %d", v, id)
	}
	if v := find(t, ss, "latlab_last_run_duration_seconds", "latlab_job", "nightly"); !near(v, run.Finished.Sub(run.Started).Seconds()) {
		t.Errorf("duration %v", v)
	}
	if v := find(t, ss, "latlab_last_run_timestamp_seconds", "latlab_job", "nightly"); !near(v, float64(run.Finished.UnixNano())/1e9) {
		t.Errorf("timestamp %v", v)
	}
	s := summary(t, f.st, id)
	r := result(t, s, "veth-routed", "tcp_rr")
	cfg := []string{"latlab_job", "nightly", "kind", "watch", "mode", "veth-routed", "workload", "tcp_rr", "size", "64", "offload", "default", "placement", "auto"}
	with := func(kv ...string) []string { return append(append([]string{}, cfg...), kv...) }
	for stat, want := range map[string]float64{"median": r.RatePerSec.Median, "ci_low": r.RatePerSec.CILow, "ci_high": r.RatePerSec.CIHigh} {
		if v := find(t, ss, "latlab_rate_per_second", with("stat", stat)...); !near(v, want) {
			t.Errorf("rate %s %v want %v", stat, v, want)
		}
	}
	for stat, want := range map[string]float64{"median": r.RatioVsHost.Median, "ci_low": r.RatioVsHost.CILow, "ci_high": r.RatioVsHost.CIHigh} {
		if v := find(t, ss, "latlab_rate_vs_baseline_ratio", with("stat", stat)...); !near(v, want) {
			t.Errorf("ratio %s %v want %v", stat, v, want)
		}
	}
	if v := find(t, ss, "latlab_latency_seconds", with("percentile", "p50")...); !near(v, float64(r.P50Ns)/1e9) {
		t.Errorf("p50 %v", v)
	}
	if v := find(t, ss, "latlab_latency_seconds", with("percentile", "p99")...); !near(v, float64(r.P99Ns)/1e9) {
		t.Errorf("p99 %v", v)
	}
	st := result(t, s, "host", "tcp_stream")
	if v := find(t, ss, "latlab_throughput_bytes_per_second", "latlab_job", "nightly", "mode", "host", "stat", "median"); !near(v, st.ThroughputBps.Median/8) {
		t.Errorf("throughput %v", v)
	}
	// The lab job ("" job, kind lab) has its own series.
	if v := find(t, ss, "latlab_last_run_id", "latlab_job", "", "kind", "lab"); v != float64(f.lab[1]) {
		t.Errorf("last lab run %v", v)
	}
	// Alerts and scheduler: names that are safe pass as they are; free
	// text (quotes, newlines, backslashes) only in a bounded, sanitised
	// form that still tells series apart.
	if v := find(t, ss, "latlab_alert", "metric", "p99", "config", "mode=veth-routed/workload=tcp_rr", "state", "firing"); v != 1 {
		t.Errorf("firing alert %v", v)
	}
	for _, smp := range ss {
		if smp.name == "latlab_alert" && smp.labels["metric"] == "p99" {
			if a := smp.labels["alert"]; !strings.HasPrefix(a, "x_p99") || strings.ContainsAny(a, "\"\\\n") || len(a) > 256 {
				t.Errorf("alert label %q: not sanitised", a)
			}
		}
	}
	if v := find(t, ss, "latlab_alert", "alert", "rate", "state", "resolved"); v != 0 {
		t.Errorf("resolved alert %v", v)
	}
	if v := find(t, ss, "latlab_alerts", "state", "firing"); v != 1 {
		t.Errorf("firing count %v", v)
	}
	if v := find(t, ss, "latlab_scheduler_last_run_failed", "latlab_job", "nightly"); v != 1 {
		t.Errorf("last run failed %v", v)
	}
	for _, smp := range ss {
		for k, v := range smp.labels {
			if strings.Contains(v, "boom") {
				t.Errorf("%s: the job's error is in label %s=%q", smp.name, k, v)
			}
		}
	}
	if v := find(t, ss, "latlab_scheduler_last_run_timestamp_seconds", "latlab_job", "nightly"); v != float64(last.Unix()) {
		t.Errorf("last run %v", v)
	}
	if v := find(t, ss, "latlab_scheduler_failures_total", "latlab_job", "nightly"); v != 2 {
		t.Errorf("failures %v", v)
	}
	if v := find(t, ss, "latlab_scheduler_runs_total", "latlab_job", "nightly"); v != 7 {
		t.Errorf("runs %v", v)
	}
	if v := find(t, ss, "latlab_scrape_errors"); v != 0 {
		t.Errorf("scrape errors %v", v)
	}

	// Without the watch half: availability gauges say so.
	ts = serve(t, web.Options{Store: f.st})
	_, body, _ = get(t, nil, ts.URL+"/metrics")
	ss = parseExposition(t, body)
	if find(t, ss, "latlab_alerts_available") != 0 || find(t, ss, "latlab_scheduler_available") != 0 {
		t.Error("availability gauges")
	}
}

// The parser itself must refuse what Prometheus refuses.
func TestParserIsStrict(t *testing.T) {
	for _, bad := range []string{
		"x 1\n", // no TYPE
		"# HELP x h\n# TYPE x gauge\nx{a=\"\\t\"} 1\n",                                     // bad escape
		"# HELP x h\n# TYPE x gauge\nx 1\nx 2\n",                                           // duplicate
		"# HELP x h\n# TYPE x gauge\nx 1\n# HELP y h\n# TYPE y gauge\ny 1\nx{a=\"b\"} 1\n", // not contiguous
		"# HELP x h\n# TYPE x counter\nx 1\n",                                              // counter name
		"# HELP x h\n# TYPE x gauge\nx 1,5\n",
	} {
		ft := &testing.T{}
		func() {
			defer func() { recover() }()
			done := make(chan bool)
			go func() {
				defer close(done)
				parseExposition(ft, bad)
			}()
			<-done
		}()
		if !ft.Failed() {
			t.Errorf("accepted %q", bad)
		}
	}
}

// fullScrape serves /metrics with every family present (alerts, a
// scheduler whose job has every timestamp and a failed last run, a
// tcp_stream result) and returns the response to a GET with hdr.
func fullScrape(t *testing.T, hdr ...string) (string, http.Header) {
	t.Helper()
	f := newFixture(t)
	now := time.Now()
	ts := serve(t, web.Options{Store: f.st, Version: "v0.0.0-test",
		Alerts: fakeAlerts{{Name: "p99 mode=host", Job: "nightly", ConfigKey: "mode=host", Metric: "p99", State: web.AlertFiring}},
		Scheduler: fakeSched{Running: true, Jobs: []web.JobHealth{{Name: "nightly", LastRun: now, LastSuccess: now, NextRun: now.Add(time.Hour),
			LastError: "dial tcp: connection refused", Runs: 3, Failures: 1}}}})
	code, body, h := get(t, nil, ts.URL+"/metrics", hdr...)
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	return body, h
}

var safeLabelValueRE = regexp.MustCompile(`^[A-Za-z0-9_.:+=/, -]*$`)

// The exposition passes promlint with zero problems, and latlab's own
// rules on top: ratios end in _ratio, label values are names, never free
// text.
func TestMetricsPromlint(t *testing.T) {
	body, _ := fullScrape(t)
	families := map[string]bool{}
	for _, s := range parseExposition(t, body) {
		families[s.name] = true
	}
	for _, want := range []string{"latlab_build_info", "latlab_rate_per_second", "latlab_throughput_bytes_per_second", "latlab_latency_seconds",
		"latlab_rate_vs_baseline_ratio", "latlab_alert", "latlab_scheduler_last_run_failed", "latlab_scheduler_runs_total", "latlab_scrape_errors"} {
		if !families[want] {
			t.Errorf("%s not served: the lint below would not see it", want)
		}
	}
	l := promlint.New(strings.NewReader(body))
	l.AddCustomValidations(func(mf *dto.MetricFamily) []error {
		var errs []error
		if words := strings.Split(mf.GetName(), "_"); slices.Contains(words, "ratio") && words[len(words)-1] != "ratio" {
			errs = append(errs, errors.New(`a ratio's name ends in "_ratio"`))
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if !safeLabelValueRE.MatchString(lp.GetValue()) {
					errs = append(errs, fmt.Errorf("label %s=%q is not a name", lp.GetName(), lp.GetValue()))
				}
			}
		}
		return errs
	})
	problems, err := l.Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// A scraper that asks for OpenMetrics gets it; one that asks for nothing
// gets the text format.
func TestMetricsOpenMetrics(t *testing.T) {
	body, h := fullScrape(t, "Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text; version=1.0.0") {
		t.Fatalf("Content-Type %q", ct)
	}
	if !strings.HasSuffix(body, "# EOF\n") {
		t.Error("no # EOF at the end")
	}
	// OpenMetrics names a counter's family without _total; its sample
	// keeps it.
	for _, want := range []string{"# TYPE latlab_scheduler_runs counter\n", "\nlatlab_scheduler_runs_total{latlab_job=\"nightly\"} 3.0\n",
		"# TYPE latlab_build_info gauge\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
	_, h = fullScrape(t)
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type without Accept: %q", ct)
	}
}
