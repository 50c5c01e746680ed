package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/web"
)

// The runs list takes ?page and ?limit within bounds only, shows exactly
// one page, and reads one page of runs (plus one) from the store.
func TestRunsPagingBounded(t *testing.T) {
	f := newFixture(t) // 10 runs
	ts := serve(t, web.Options{Store: f.st, PageSize: 100000})
	for _, q := range []string{"limit=0", "limit=-1", "limit=501", "limit=99999999999999999999", "limit=x",
		"page=0", "page=-5", "page=1000001", "page=1e3"} {
		if code, body, _ := get(t, nil, ts.URL+"/?"+q); code != 400 || !strings.Contains(body, "want ") {
			t.Errorf("?%s: %d, want 400 naming the bounds", q, code)
		}
	}
	before := f.st.RowsRead()
	code, body, _ := get(t, nil, ts.URL+"/?limit=3&page=2")
	if code != 200 {
		t.Fatalf("limit=3 page=2: %d", code)
	}
	if n := f.st.RowsRead() - before; n > 3+1+3 {
		t.Errorf("a page of 3 read %d rows: want at most 4 runs and 3 trial counts", n)
	}
	// Newest first: page 2 of 3 is nightly[2..4], newest first.
	for i, id := range f.nightly {
		shown := strings.Contains(body, fmt.Sprintf(`href="/runs/%d"`, id))
		if want := i >= 2 && i <= 4; shown != want {
			t.Errorf("nightly run %d (index %d) shown: %v, want %v", id, i, shown, want)
		}
	}
	mustContain(t, "page 2", body, "runs 4–6", `href="/?limit=3&amp;page=3"`, `href="/?limit=3"`)
	// The configured page size is capped too.
	if _, body, _ := get(t, nil, ts.URL+"/"); !strings.Contains(body, "runs 1–10") {
		t.Error("page size 100000: not capped/served")
	}
}

// /metrics reads the store's run summary, not every run: with thousands
// of runs a scrape reads a handful of rows, and the same number with ten
// times fewer. Counts stay exact.
func TestMetricsReadsAnAggregate(t *testing.T) {
	rowsPerScrape := func(n int) (int64, []sample) {
		f := newFixture(t) // 10 runs with trials
		ctx := t.Context()
		t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range n {
			r := store.Run{Kind: "watch", JobName: "nightly", Started: t0.Add(time.Duration(i) * time.Minute),
				Finished: t0.Add(time.Duration(i)*time.Minute + time.Second), Status: store.StatusIncomplete, Spec: strings.Repeat("x", 1000)}
			if _, err := f.st.CreateRun(ctx, &r); err != nil {
				t.Fatal(err)
			}
		}
		ts := serve(t, web.Options{Store: f.st})
		get(t, nil, ts.URL+"/metrics") // warm the view cache
		before := f.st.RowsRead()
		_, body, _ := get(t, nil, ts.URL+"/metrics")
		return f.st.RowsRead() - before, parseExposition(t, body)
	}
	small, _ := rowsPerScrape(100)
	big, ss := rowsPerScrape(3000)
	t.Logf("rows read per scrape: %d over 110 runs, %d over 3,010", small, big)
	if big > 20 || big != small {
		t.Errorf("a scrape read %d rows over 3,010 runs and %d over 110: want a few, independent of the number of runs", big, small)
	}
	if v := find(t, ss, "latlab_runs", "status", "incomplete"); v != 3000 {
		t.Errorf("incomplete runs %v, want 3000", v)
	}
	if v := find(t, ss, "latlab_runs", "status", "complete"); v != 10 {
		t.Errorf("complete runs %v, want 10", v)
	}
}

// A job name that is not a safe label (from an old database or another
// writer) is reported in a sanitised form, never raw.
func TestMetricsSanitiseStoredNames(t *testing.T) {
	f := newFixture(t)
	evil := "evil\"} 1\nlatlab_runs{status=\"complete\"} 999"
	r := store.Run{Kind: "watch", JobName: evil, Started: time.Now(), Finished: time.Now(), Status: store.StatusComplete}
	if _, err := f.st.CreateRun(t.Context(), &r); err != nil {
		t.Fatal(err)
	}
	ts := serve(t, web.Options{Store: f.st})
	_, body, _ := get(t, nil, ts.URL+"/metrics")
	ss := parseExposition(t, body) // strict: fails on an injected line
	found := false
	for _, s := range ss {
		if s.name == "latlab_last_run_id" && s.value == float64(r.ID) {
			found = true
			if j := s.labels["latlab_job"]; !strings.HasPrefix(j, "x_evil") || strings.ContainsAny(j, "\"{}\n ") {
				t.Errorf("job label %q", j)
			}
		}
	}
	if !found {
		t.Error("the run with the odd job name is not reported")
	}
	if v := find(t, ss, "latlab_runs", "status", "complete"); v != 11 {
		t.Errorf("complete runs %v", v)
	}
}
