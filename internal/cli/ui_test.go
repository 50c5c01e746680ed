package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/web/webtest"
)

// syncBuf is a goroutine-safe buffer for a command's stderr.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func uiDB(t *testing.T) (string, int64) {
	db := filepath.Join(t.TempDir(), "ui.db")
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id := webtest.Record(t, st, webtest.Run{Started: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Samples: 300})
	return db, id
}

// startUI runs `latlab ui` on 127.0.0.1:0 and returns its base URL.
func startUI(t *testing.T, db string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuf{}
	e := &env{stdout: io.Discard, stderr: stderr}
	cmd := newUICmd(e)
	cmd.SetArgs(append([]string{"--db", db, "--listen", "127.0.0.1:0"}, args...))
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ui: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("ui did not stop")
		}
	})
	re := regexp.MustCompile(`on (http://127\.0\.0\.1:\d+)/`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("ui exited: %v\n%s", err, stderr.String())
		default:
		}
	}
	t.Fatalf("ui did not start: %s", stderr.String())
	return ""
}

func httpGet(t *testing.T, url string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if len(hdr) == 2 {
		req.Header.Set(hdr[0], hdr[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestUIServesDatabase(t *testing.T) {
	db, id := uiDB(t)
	u := startUI(t, db)
	code, body := httpGet(t, u+"/")
	if code != 200 || !strings.Contains(body, fmt.Sprintf(`href="/runs/%d"`, id)) {
		t.Errorf("runs: %d", code)
	}
	code, body = httpGet(t, fmt.Sprintf("%s/runs/%d", u, id))
	if code != 200 || strings.Count(body, "<svg") < 3 {
		t.Errorf("run: %d", code)
	}
	if code, body := httpGet(t, u+"/metrics"); code != 200 || !strings.Contains(body, `latlab_runs{status="complete"} 1`) ||
		!strings.Contains(body, `version="`+Version()+`"`) {
		t.Errorf("metrics: %d (want latlab_build_info with version %q)\n%s", code, Version(), body)
	}
	resp, err := http.Post(u+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

func TestUITokenFromEnv(t *testing.T) {
	db, _ := uiDB(t)
	t.Setenv("LATLAB_UI_TOKEN", "tok-env")
	u := startUI(t, db)
	if code, _ := httpGet(t, u+"/metrics"); code != 401 {
		t.Errorf("without token: %d", code)
	}
	if code, _ := httpGet(t, u+"/metrics", "Authorization", "Bearer tok-env"); code != 200 {
		t.Errorf("with token: %d", code)
	}
	u2 := startUI(t, db, "--token", "tok-flag")
	if code, _ := httpGet(t, u2+"/", "Authorization", "Bearer tok-flag"); code != 200 {
		t.Errorf("--token: %d", code)
	}
	if code, _ := httpGet(t, u2+"/", "Authorization", "Bearer tok-env"); code != 401 {
		t.Errorf("--token overrides the env: %d", code)
	}
}

func TestUIBadListen(t *testing.T) {
	db, _ := uiDB(t)
	e := &env{stdout: io.Discard, stderr: io.Discard}
	cmd := newUICmd(e)
	cmd.SetArgs([]string{"--db", db, "--listen", "256.0.0.1:x"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	var ue usageError
	if err := cmd.ExecuteContext(context.Background()); !errors.As(err, &ue) {
		t.Errorf("bad --listen: %v", err)
	}
}

func TestReportHTML(t *testing.T) {
	db, id := uiDB(t)
	run := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		cmd := newReportCmd(&env{stdout: &out, stderr: &errb})
		cmd.SetArgs(append([]string{"--db", db}, args...))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.ExecuteContext(context.Background())
		return out.String(), errb.String(), err
	}
	file := filepath.Join(t.TempDir(), "r.html")
	if _, stderr, err := run(fmt.Sprint(id), "--html", file); err != nil || !strings.Contains(stderr, file) {
		t.Fatalf("report: %v %s", err, stderr)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	if !strings.HasPrefix(html, "<!DOCTYPE html>") || strings.Count(html, "<svg") < 3 || !strings.Contains(html, "<style>") ||
		!strings.Contains(html, "veth-routed") {
		t.Errorf("report content:\n%.500s", html)
	}
	if m := regexp.MustCompile(`(?i)(src|href|action)\s*=\s*["']?\s*(https?:|//|/)`).FindString(html); m != "" {
		t.Errorf("report is not self-contained: %q", m)
	}
	if m := regexp.MustCompile(`(?i)<(script|link|img|iframe)|url\(`).FindString(html); m != "" {
		t.Errorf("report loads %q", m)
	}
	// Latest run by default, to stdout.
	out, _, err := run("--html", "-")
	if err != nil || !strings.Contains(out, fmt.Sprintf("Run %d", id)) || !strings.Contains(out, "<svg") {
		t.Errorf("report to stdout: %v", err)
	}
	var ue usageError
	if _, _, err := run(fmt.Sprint(id)); !errors.As(err, &ue) {
		t.Errorf("no --html: %v", err)
	}
	if _, _, err := run("999", "--html", file); err == nil || !strings.Contains(err.Error(), "run 999 is not in") {
		t.Errorf("missing run: %v", err)
	}
}
