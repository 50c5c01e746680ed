package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/report"
	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/web"
	"github.com/latlab/latlab/internal/web/webtest"
)

// fixture is a database with two lab runs and eight runs of job
// "nightly" whose veth-routed latency jumps (and kernel changes) at the
// sixth run.
type fixture struct {
	st      *store.Store
	lab     []int64
	nightly []int64
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "ui.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st}
	for i := 0; i < 2; i++ {
		f.lab = append(f.lab, webtest.Record(t, st, webtest.Run{Started: base.Add(time.Duration(i) * time.Hour), Seed: uint64(i),
			Modes: []string{"host", "veth-routed", "bridge-nat"}, LatUs: []float64{20, 26, 31}, FailTrial: i == 1}))
	}
	for i := 0; i < 8; i++ {
		lat, kernel := 26.0, "6.1.0-test"
		if i >= 5 {
			lat, kernel = 40, "6.9.0-test"
		}
		f.nightly = append(f.nightly, webtest.Record(t, st, webtest.Run{Started: base.Add(time.Duration(24+i) * time.Hour),
			Kind: "watch", Job: "nightly", Seed: uint64(100 + i), Modes: []string{"host", "veth-routed"}, LatUs: []float64{20, lat},
			Kernel: kernel, Samples: 500}))
	}
	return f
}

// stepDetector is a stand-in for the watch half's change-point
// detection: a jump of more than 20% between neighbours.
func stepDetector(xs []float64) []int {
	var out []int
	for i := 1; i < len(xs); i++ {
		if xs[i-1] != 0 && math.Abs(xs[i]/xs[i-1]-1) > 0.2 {
			out = append(out, i)
		}
	}
	return out
}

type fakeAlerts []web.AlertView

func (a fakeAlerts) Alerts(context.Context) ([]web.AlertView, error) { return a, nil }

type fakeSched web.SchedulerHealth

func (s fakeSched) Health() web.SchedulerHealth { return web.SchedulerHealth(s) }

func serve(t testing.TB, o web.Options) *httptest.Server {
	t.Helper()
	s, err := web.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

func get(t testing.TB, c *http.Client, url string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func mustContain(t *testing.T, what, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Errorf("%s: missing %q", what, s)
		}
	}
}

func summary(t testing.TB, st *store.Store, id int64) *experiment.Summary {
	t.Helper()
	o, _, err := experiment.LoadOutcome(context.Background(), st, id)
	if err != nil {
		t.Fatal(err)
	}
	return experiment.Summarize(o)
}

func result(t testing.TB, s *experiment.Summary, mode, wl string) experiment.ModeResult {
	t.Helper()
	for _, r := range s.Results {
		if r.Mode == mode && r.Workload == wl {
			return r
		}
	}
	t.Fatalf("no result %s/%s", mode, wl)
	return experiment.ModeResult{}
}

func TestRunsPagePaginates(t *testing.T) {
	f := newFixture(t)
	ts := serve(t, web.Options{Store: f.st, PageSize: 4})
	code, body, _ := get(t, nil, ts.URL+"/")
	if code != 200 {
		t.Fatalf("GET /: %d %s", code, body)
	}
	// Newest first: the last four nightly runs.
	for _, id := range f.nightly[4:] {
		mustContain(t, "page 1", body, fmt.Sprintf(`href="/runs/%d"`, id))
	}
	if strings.Contains(body, fmt.Sprintf(`href="/runs/%d"`, f.nightly[3])) {
		t.Error("page 1 shows a run of page 2")
	}
	mustContain(t, "page 1", body, `href="/?page=2"`, "older", "watch", "nightly", "complete")
	code, body, _ = get(t, nil, ts.URL+"/?page=3")
	mustContain(t, "page 3", body, fmt.Sprintf(`href="/runs/%d"`, f.lab[0]), "newer")
	if code != 200 || strings.Contains(body, "older") {
		t.Errorf("page 3 (last): %d, has a next link", code)
	}
	// The failed trial is counted.
	_, body, _ = get(t, nil, ts.URL+"/?kind=lab")
	if !regexp.MustCompile(`<td class="num">36</td><td class="num">1</td>`).MatchString(body) {
		t.Errorf("kind=lab: run %d should show 36 trials, 1 failed", f.lab[1])
	}
	if code, _, _ := get(t, nil, ts.URL+"/?page=x"); code != 400 {
		t.Errorf("bad page: %d", code)
	}
}

func TestRunPageShowsTablesAndCharts(t *testing.T) {
	f := newFixture(t)
	ts := serve(t, web.Options{Store: f.st})
	id := f.lab[0]
	code, body, _ := get(t, nil, fmt.Sprintf("%s/runs/%d", ts.URL, id))
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	s := summary(t, f.st, id)
	for _, mode := range []string{"veth-routed", "bridge-nat"} {
		r := result(t, s, mode, "tcp_rr")
		mustContain(t, mode, body, fmt.Sprintf("%.0f", r.RatePerSec.Median), fmt.Sprintf("[%.0f, %.0f]", r.RatePerSec.CILow, r.RatePerSec.CIHigh),
			report.Duration(r.P50Ns), report.Duration(r.P99Ns), fmt.Sprintf("%.3f", r.RatioVsHost.Median),
			fmt.Sprintf("[%.3f, %.3f]", r.RatioVsHost.CILow, r.RatioVsHost.CIHigh), r.Verdict)
	}
	st := result(t, s, "veth-routed", "tcp_stream")
	mustContain(t, "stream", body, report.Bits(st.ThroughputBps.Median), "tcp_stream")
	// Two groups: rate and ratio charts each, plus a latency plot for tcp_rr.
	if n := strings.Count(body, "<svg"); n != 5 {
		t.Errorf("%d charts, want 5", n)
	}
	mustContain(t, "charts", body, "latency percentiles", `class="whisker"`, "p99.9", "<polyline", "ratio vs host")
	mustContain(t, "history links", body, `href="/history?key=mode%3Dveth-routed%2Fworkload%3Dtcp_rr%2Fsize%3D64%2Foffload%3Ddefault%2Fplacement%3Dauto"`)
	if code, _, _ := get(t, nil, ts.URL+"/runs/99999"); code != 404 {
		t.Errorf("missing run: %d", code)
	}
	if code, _, _ := get(t, nil, ts.URL+"/runs/abc"); code != 400 {
		t.Errorf("bad run id: %d", code)
	}
}

func TestHistoryMarksChangePointsAndSuspects(t *testing.T) {
	f := newFixture(t)
	key := experiment.Config{Mode: "veth-routed", Workload: "tcp_rr", Size: 64, Offload: "default", Placement: "auto"}.Key()
	u := "/history?key=" + strings.ReplaceAll(key, "/", "%2F")

	ts := serve(t, web.Options{Store: f.st})
	code, body, _ := get(t, nil, ts.URL+u)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	mustContain(t, "no detector", body, "Change-point detection is not available", "10 runs")
	if strings.Contains(body, `class="pt flag"`) {
		t.Error("change point marked without a detector")
	}

	ts = serve(t, web.Options{Store: f.st, ChangePoints: stepDetector})
	_, body, _ = get(t, nil, ts.URL+u)
	// The lab runs share the key: the jump is between the last nightly
	// run at 26 µs and the first at 40 µs.
	before, after := f.nightly[4], f.nightly[5]
	mustContain(t, "detector", body, `class="pt flag"`, `class="marker"`,
		fmt.Sprintf(`between <a href="/runs/%d">run %d</a> and <a href="/runs/%d">run %d</a>`, before, before, after, after),
		"kernel: 6.1.0-test → 6.9.0-test", `class="changed"`)
	if strings.Contains(body, "not available") {
		t.Error("detector present but page says not available")
	}
	// Per-run medians in the table match the trials.
	trials, _ := f.st.Trials(context.Background(), after)
	var rates []float64
	for _, tr := range trials {
		if tr.ConfigKey == key {
			rates = append(rates, tr.RatePerSec)
		}
	}
	if len(rates) != 6 {
		t.Fatalf("%d trials of %s in run %d", len(rates), key, after)
	}
	med := stats.Median(rates)
	mustContain(t, "run median", body, fmt.Sprintf("%.0f", med))

	_, body, _ = get(t, nil, ts.URL+"/history")
	mustContain(t, "index", body, "mode=veth-routed/workload=tcp_rr", "mode=bridge-nat/workload=tcp_stream")
	if code, _, _ := get(t, nil, ts.URL+"/history?key=nope"); code != 404 {
		t.Errorf("unknown key: %d", code)
	}
}

func TestAlertsPage(t *testing.T) {
	f := newFixture(t)
	ts := serve(t, web.Options{Store: f.st})
	_, body, _ := get(t, nil, ts.URL+"/alerts")
	mustContain(t, "none", body, "Alerts are not available", "Scheduler health is not available")

	alerts := fakeAlerts{
		{Name: "p99-regression", Job: "nightly", ConfigKey: "mode=veth-routed/workload=tcp_rr/size=64/offload=default/placement=auto",
			Metric: "p99", State: web.AlertFiring, Since: base, RunID: f.nightly[5], Message: "p99 up 54% <script>alert(1)</script>"},
		{Name: "rate-drop", Job: "nightly", Metric: "rate", State: web.AlertResolved, Since: base},
	}
	sched := fakeSched{Running: true, Jobs: []web.JobHealth{{Name: "nightly", LastRun: base, LastError: "lab: ipvlan missing", Runs: 3, Failures: 1}}}
	ts = serve(t, web.Options{Store: f.st, Alerts: alerts, Scheduler: sched})
	_, body, _ = get(t, nil, ts.URL+"/alerts")
	mustContain(t, "alerts", body, "1 firing.", `class="firing">firing`, "p99-regression", fmt.Sprintf(`href="/runs/%d"`, f.nightly[5]),
		"&lt;script&gt;", "lab: ipvlan missing", "running")
	if strings.Contains(body, "<script>") {
		t.Error("alert message not escaped")
	}
	if strings.Index(body, "p99-regression") > strings.Index(body, "rate-drop") {
		t.Error("firing alerts should come first")
	}
}

func TestDiffPage(t *testing.T) {
	f := newFixture(t)
	ts := serve(t, web.Options{Store: f.st})
	a, b := f.nightly[4], f.nightly[5]
	_, body, _ := get(t, nil, fmt.Sprintf("%s/diff?a=%d&b=%d", ts.URL, a, b))
	mustContain(t, "diff", body, `<tr class="changed"><th>kernel</th><td><code>6.1.0-test</code></td><td><code>6.9.0-test</code></td></tr>`)
	if strings.Contains(body, "<th>cpu_model</th>") {
		t.Error("unchanged fields shown without all=1")
	}
	_, body, _ = get(t, nil, fmt.Sprintf("%s/diff?a=%d&b=%d&all=1", ts.URL, a, b))
	mustContain(t, "diff all", body, "<th>cpu_model</th>", "<th>sysctls.")
	_, body, _ = get(t, nil, fmt.Sprintf("%s/diff?a=%d&b=%d", ts.URL, f.lab[0], f.nightly[0]))
	mustContain(t, "diff modes", body, "extra.modes[bridge-nat].name", "run.kind")
	if code, _, _ := get(t, nil, fmt.Sprintf("%s/diff?a=%d&b=424242", ts.URL, a)); code != 404 {
		t.Errorf("diff with a missing run: %d", code)
	}
	// The runs page links /diff?b=N: A defaults to the run before N of
	// its kind and job.
	code, body, _ := get(t, nil, fmt.Sprintf("%s/diff?b=%d", ts.URL, b))
	if code != 200 {
		t.Fatalf("diff?b=%d: %d", b, code)
	}
	mustContain(t, "diff b only", body, fmt.Sprintf(`name="a" value="%d"`, a),
		`<tr class="changed"><th>kernel</th><td><code>6.1.0-test</code></td><td><code>6.9.0-test</code></td></tr>`)
	_, body, _ = get(t, nil, fmt.Sprintf("%s/diff?b=%d", ts.URL, f.nightly[0]))
	mustContain(t, "diff b first", body, "is the first run of its kind and job")
	if code, _, _ := get(t, nil, ts.URL+"/diff?b=424242"); code != 404 {
		t.Errorf("diff?b= a missing run: %d", code)
	}
}

// A chart title wider than the chart wraps onto more lines (the history
// page's titles carry the configuration key) instead of being clipped.
func TestChartTitleWraps(t *testing.T) {
	key := "mode=veth-routed/workload=tcp_stream/size=0/offload=default/placement=auto"
	c := web.Chart{Title: key + ": throughput per run (median over trials, 95% CI)", Width: 600, Height: 280,
		Series: []web.Series{{Name: "x", Points: []web.Point{{X: 0, Y: 1}, {X: 1, Y: 2}}}}}
	svg := string(c.SVG())
	n := strings.Count(svg, "<tspan")
	if n < 2 {
		t.Fatalf("title not wrapped:\n%s", svg)
	}
	for _, part := range strings.Split(svg, "<tspan")[1:] {
		text := part[strings.Index(part, ">")+1 : strings.Index(part, "</tspan>")]
		if len(text)*7 > 600-64-16 {
			t.Errorf("title line %q is wider than the chart", text)
		}
	}
	joined := ""
	for _, part := range strings.Split(svg, "<tspan")[1:] {
		joined += part[strings.Index(part, ">")+1:strings.Index(part, "</tspan>")] + " "
	}
	if !strings.Contains(strings.ReplaceAll(joined, "/ ", "/"), key) {
		t.Errorf("title lines lost text: %q", joined)
	}
}

func TestReadOnly(t *testing.T) {
	f := newFixture(t)
	ts := serve(t, web.Options{Store: f.st, Token: "s3cret"})
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		req, _ := http.NewRequest(m, ts.URL+"/", strings.NewReader("x"))
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d Allow=%q", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	req, _ := http.NewRequest("HEAD", ts.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("HEAD: %d", resp.StatusCode)
	}
}

func TestToken(t *testing.T) {
	f := newFixture(t)
	ts := serve(t, web.Options{Store: f.st, Token: "s3cret"})
	for _, path := range []string{"/", "/metrics", fmt.Sprintf("/runs/%d", f.lab[0]), "/history", "/alerts", "/diff", "/nope"} {
		if code, body, h := get(t, nil, ts.URL+path); code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || strings.Contains(body, "veth") {
			t.Errorf("%s without a token: %d", path, code)
		}
		if code, _, _ := get(t, nil, ts.URL+path, "Authorization", "Bearer wrong"); code != 401 {
			t.Errorf("%s with a wrong token: %d", path, code)
		}
	}
	if code, _, _ := get(t, nil, ts.URL+"/", "Authorization", "Bearer s3cret"); code != 200 {
		t.Errorf("with the token: %d", code)
	}
	if code, _, _ := get(t, nil, ts.URL+"/metrics", "Authorization", "bearer s3cret"); code != 200 {
		t.Errorf("scheme is case-insensitive: %d", code)
	}
	// A browser: ?token= once sets a cookie and redirects without it.
	jar := &cookieJar{}
	c := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if strings.Contains(r.URL.RawQuery, "token") {
			return errors.New("redirected with the token")
		}
		return nil
	}}
	if code, body, _ := get(t, c, ts.URL+"/?token=s3cret&page=1"); code != 200 || !strings.Contains(body, "Runs") {
		t.Errorf("?token=: %d", code)
	}
	if code, _, _ := get(t, c, ts.URL+"/alerts"); code != 200 {
		t.Errorf("cookie: %d", code)
	}
	if code, _, _ := get(t, nil, ts.URL+"/?token=wrong"); code != 401 {
		t.Errorf("?token=wrong: %d", code)
	}
}

type cookieJar struct{ cs []*http.Cookie }

func (j *cookieJar) SetCookies(_ *url.URL, cs []*http.Cookie) { j.cs = append(j.cs, cs...) }
func (j *cookieJar) Cookies(*url.URL) []*http.Cookie          { return j.cs }

func TestLoopbackOnlyRefusesOtherHosts(t *testing.T) {
	f := newFixture(t)
	ts := serve(t, web.Options{Store: f.st, LoopbackOnly: true})
	req, _ := http.NewRequest("GET", ts.URL+"/", nil)
	req.Host = "evil.example:80"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("foreign Host: %d", resp.StatusCode)
	}
	if code, _, _ := get(t, nil, ts.URL+"/"); code != 200 {
		t.Errorf("127.0.0.1: %d", code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	ts := serve(t, web.Options{Store: f.st})
	_, _, h := get(t, nil, ts.URL+"/")
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
}

// A saved report is one self-contained file: inline CSS and SVG, nothing
// fetched, no links to a server.
func TestReportIsSelfContained(t *testing.T) {
	f := newFixture(t)
	var b strings.Builder
	if err := web.WriteRunReport(context.Background(), &b, f.st, f.lab[1]); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	CheckSelfContained(t, html)
	s := summary(t, f.st, f.lab[1])
	r := result(t, s, "bridge-nat", "tcp_rr")
	mustContain(t, "report", html, "<style>", "<svg", fmt.Sprintf("%.0f", r.RatePerSec.Median), report.Duration(r.P99Ns),
		"1 failed", "latency percentiles")
	if err := web.WriteRunReport(context.Background(), io.Discard, f.st, 777); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing run: %v", err)
	}
}

// CheckSelfContained fails unless html loads nothing and links nowhere.
func CheckSelfContained(t *testing.T, html string) {
	t.Helper()
	if m := regexp.MustCompile(`(?i)(src|href|action)\s*=\s*["']?\s*(https?:|//|/)`).FindString(html); m != "" {
		t.Errorf("report references %q", m)
	}
	if m := regexp.MustCompile(`(?i)<(script|link|img|iframe)|url\(`).FindString(html); m != "" {
		t.Errorf("report has %q", m)
	}
}
