package web_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/report"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/web"
)

func chromiumPath(t *testing.T) string {
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	testutil.SkipIfUnsupported(t, "chromium is not installed (apt-get install chromium; .ci/run does)")
	return ""
}

// chromium runs headless Chromium on url with extra flags and returns
// its stdout.
func chromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// A real browser renders the pages: the DOM it builds has the charts and
// the database's numbers.
func TestChromiumRendersDashboard(t *testing.T) {
	bin := chromiumPath(t)
	f := newFixture(t)
	ts := serve(t, web.Options{Store: f.st, ChangePoints: stepDetector})
	if !strings.HasPrefix(ts.URL, "http://127.0.0.1:") {
		t.Fatalf("test server not on loopback: %s", ts.URL)
	}
	id := f.lab[0]
	dom := chromium(t, bin, "--dump-dom", fmt.Sprintf("%s/runs/%d", ts.URL, id))
	if n := strings.Count(dom, "<svg"); n != 5 {
		t.Errorf("run page DOM has %d svg charts, want 5", n)
	}
	s := summary(t, f.st, id)
	r := result(t, s, "bridge-nat", "tcp_rr")
	mustContain(t, "run DOM", dom, fmt.Sprintf("%.0f", r.RatePerSec.Median), report.Duration(r.P99Ns),
		fmt.Sprintf("%.3f", r.RatioVsHost.Median), "<circle", "<polyline", `class="whisker"`)

	key := "mode%3Dveth-routed%2Fworkload%3Dtcp_rr%2Fsize%3D64%2Foffload%3Ddefault%2Fplacement%3Dauto"
	dom = chromium(t, bin, "--dump-dom", ts.URL+"/history?key="+key)
	if n := strings.Count(dom, "<svg"); n != 3 {
		t.Errorf("history DOM has %d svg charts, want 3", n)
	}
	mustContain(t, "history DOM", dom, `class="pt flag"`, "kernel: 6.1.0-test → 6.9.0-test", fmt.Sprintf("run %d", f.nightly[5]))

	dom = chromium(t, bin, "--dump-dom", ts.URL+"/")
	mustContain(t, "runs DOM", dom, fmt.Sprintf(`href="/runs/%d"`, f.nightly[7]), "nightly")

	// Screenshots, kept in $LATLAB_UI_SCREENSHOTS if set (to look at).
	dir := os.Getenv("LATLAB_UI_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	for name, path := range map[string]string{"run": fmt.Sprintf("/runs/%d", id), "history": "/history?key=" + key, "runs": "/"} {
		png := filepath.Join(dir, name+".png")
		chromium(t, bin, "--window-size=1400,1700", "--screenshot="+png, ts.URL+path)
		if fi, err := os.Stat(png); err != nil || fi.Size() < 10_000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}
