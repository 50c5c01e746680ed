package web_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// dashboardQueries returns the PromQL of docs/grafana-latlab.json: every
// panel target's expr and every query variable's query, by where it is.
func dashboardQueries(t *testing.T, d map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	panels, _ := d["panels"].([]any)
	for _, p := range panels {
		p, _ := p.(map[string]any)
		targets, _ := p["targets"].([]any)
		for _, tg := range targets {
			tg, _ := tg.(map[string]any)
			e, ok := tg["expr"].(string)
			if !ok || e == "" {
				t.Errorf("panel %v target %v: no expr", p["title"], tg["refId"])
				continue
			}
			out["panel "+str(p["title"])+" "+str(tg["refId"])] = e
		}
	}
	for _, v := range templateVars(d) {
		if v["type"] != "query" {
			continue
		}
		q, _ := v["query"].(map[string]any)
		e, _ := q["query"].(string)
		if e == "" {
			e, _ = v["query"].(string)
		}
		if e == "" {
			t.Errorf("variable %v: no query", v["name"])
			continue
		}
		out["variable "+str(v["name"])] = e
	}
	return out
}

func str(v any) string { s, _ := v.(string); return s }

func templateVars(d map[string]any) []map[string]any {
	tpl, _ := d["templating"].(map[string]any)
	list, _ := tpl["list"].([]any)
	var out []map[string]any
	for _, v := range list {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

var (
	promIdentRE   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promMatcherRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	labelValuesRE = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)`)
)

// served is what one scrape holds: per metric, per label, its values.
type served map[string]map[string]map[string]bool

// selectors splits a PromQL expression into the latlab metrics it names
// and, for each, the selector's label matchers (name, op, value).
func selectors(expr string) map[string][][3]string {
	out := map[string][][3]string{}
	for i := 0; i < len(expr); {
		loc := promIdentRE.FindStringIndex(expr[i:])
		if loc == nil {
			break
		}
		start, end := i+loc[0], i+loc[1]
		name := expr[start:end]
		i = end
		if start > 0 && (expr[start-1] == '$' || expr[start-1] == '.' || isIdentByte(expr[start-1])) {
			continue // a Grafana variable, a number's tail or inside a word
		}
		if !strings.HasPrefix(name, "latlab_") {
			continue
		}
		ms := out[name]
		rest := strings.TrimLeft(expr[end:], " ")
		if strings.HasPrefix(rest, "{") {
			close := strings.Index(rest, "}")
			for _, m := range promMatcherRE.FindAllStringSubmatch(rest[:close], -1) {
				ms = append(ms, [3]string{m[1], m[2], m[3]})
			}
			i = end + (len(expr[end:]) - len(rest)) + close + 1
		}
		out[name] = ms
	}
	return out
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Every metric the Grafana dashboard queries is served, with the labels
// its selectors and label_values name and, for = matchers on a fixed
// value, that value: the dashboard cannot drift from /metrics. Every
// panel and query uses the datasource variable, so the file works both
// imported and provisioned from a file.
func TestGrafanaDashboardUsesServedMetrics(t *testing.T) {
	b, err := os.ReadFile("../../docs/grafana-latlab.json")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-latlab.json: %v", err)
	}
	body, _ := fullScrape(t)
	have := served{}
	labelNames := map[string]bool{}
	for _, s := range parseExposition(t, body) {
		if have[s.name] == nil {
			have[s.name] = map[string]map[string]bool{}
		}
		for k, v := range s.labels {
			if have[s.name][k] == nil {
				have[s.name][k] = map[string]bool{}
			}
			have[s.name][k][v] = true
			labelNames[k] = true
		}
	}

	qs := dashboardQueries(t, d)
	if len(qs) < 15 {
		t.Fatalf("dashboard has only %d queries", len(qs))
	}
	metrics := map[string]bool{}
	for where, q := range qs {
		for _, lv := range labelValuesRE.FindAllStringSubmatch(q, -1) {
			if have[lv[1]][lv[2]] == nil {
				t.Errorf("%s: label_values(%s, %s): no such served label", where, lv[1], lv[2])
			}
		}
		for name, ms := range selectors(q) {
			if labelNames[name] && have[name] == nil {
				continue // a label in by (...) or label_values
			}
			metrics[name] = true
			if have[name] == nil {
				t.Errorf("%s: %s is not served (%s)", where, name, q)
				continue
			}
			for _, m := range ms {
				vals := have[name][m[0]]
				switch {
				case vals == nil:
					t.Errorf("%s: %s has no label %s", where, name, m[0])
				case m[1] == "=" && !strings.Contains(m[2], "$") && !vals[m[2]]:
					t.Errorf("%s: %s{%s=%q}: no such series", where, name, m[0], m[2])
				}
			}
		}
	}
	if len(metrics) < 12 {
		t.Errorf("dashboard queries only %d metrics: %v", len(metrics), metrics)
	}

	// The data source is a variable of type datasource, and everything
	// refers to it.
	dsVar := ""
	for _, v := range templateVars(d) {
		if v["type"] == "datasource" && v["query"] == "prometheus" {
			dsVar = str(v["name"])
		}
	}
	if dsVar == "" {
		t.Fatal("no datasource variable (type datasource, query prometheus)")
	}
	if _, ok := d["__inputs"]; ok && !strings.HasPrefix(dsVar, "DS_") {
		t.Error("__inputs left beside the datasource variable")
	}
	var check func(where string, v any)
	check = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "datasource" {
					ds, _ := x.(map[string]any)
					if ds["type"] != "prometheus" || ds["uid"] != "${"+dsVar+"}" {
						t.Errorf("%s: datasource %v, want uid ${%s}", where, x, dsVar)
					}
					continue
				}
				check(where+"."+k, x)
			}
		case []any:
			for _, x := range v {
				check(where, x)
			}
		}
	}
	check("dashboard", d)
}

// The expression splitter finds metrics and matchers, not variables or
// labels in by (...).
func TestDashboardSelectors(t *testing.T) {
	got := selectors(`sum by (latlab_job) (increase(latlab_x_total{latlab_job=~"$job",stat="median"}[$__range])) / latlab_y`)
	if len(got["latlab_x_total"]) != 2 || got["latlab_x_total"][1] != [3]string{"stat", "=", "median"} {
		t.Errorf("latlab_x_total: %v", got["latlab_x_total"])
	}
	if _, ok := got["latlab_y"]; !ok {
		t.Errorf("latlab_y missing: %v", got)
	}
	if _, ok := got["latlab_job"]; !ok {
		t.Errorf("by (latlab_job): %v (the caller tells labels from metrics)", got)
	}
}
