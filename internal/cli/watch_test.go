package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/store"
)

func runWatch(t *testing.T, db string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb}
	cmd := newWatchCmd(e)
	cmd.SetArgs(append([]string{"--db", db}, args...))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestWatchConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("jobs:\n  - name: x\n    schedule: \"@every 5s\"\n    target: {address: \"127.0.0.1:1\"}\n"), 0o644)
	_, _, err := runWatch(t, filepath.Join(dir, "db"), "--config", bad)
	var ue usageError
	if err == nil || !strings.Contains(err.Error(), bad+":3: jobs[0].schedule") || !errorsAs(err, &ue) {
		t.Errorf("bad config: %v", err)
	}
	if _, _, err := runWatch(t, filepath.Join(dir, "db")); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("no --config: %v", err)
	}
}

func TestWatchCheck(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "w.yaml")
	os.WriteFile(cfg, []byte("jobs:\n  - name: path\n    schedule: \"*/20 * * * *\"\n    target: {address: \"127.0.0.1:7707\"}\n"), 0o644)
	out, _, err := runWatch(t, filepath.Join(dir, "db"), "--config", cfg, "--check")
	if err != nil || !strings.Contains(out, `path: target 127.0.0.1:7707, schedule "*/20 * * * *"`) {
		t.Errorf("--check: %q %v", out, err)
	}
	out, _, err = runWatch(t, filepath.Join(dir, "db"), "--config", cfg, "--check", "-o", "json")
	var doc struct {
		SchemaVersion int `json:"schema_version"`
		Jobs          []struct {
			Name, Kind, What, Schedule string
		} `json:"jobs"`
	}
	if err != nil || json.Unmarshal([]byte(out), &doc) != nil || doc.SchemaVersion != 1 || len(doc.Jobs) != 1 ||
		doc.Jobs[0].Kind != "target" || doc.Jobs[0].What != "127.0.0.1:7707" {
		t.Errorf("--check -o json: %q %v", out, err)
	}
	out, _, err = runWatch(t, filepath.Join(dir, "db"), "--config", cfg, "--check", "-o", "csv")
	if err != nil || !strings.HasPrefix(out, "name,kind,what,schedule,next,overlap\npath,target,127.0.0.1:7707,") {
		t.Errorf("--check -o csv: %q %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "db")); err == nil {
		t.Error("watch --check created the database")
	}
}

// --once against a port nothing listens on: every trial fails, the run is
// still recorded (kind watch) and nothing is alerted.
func TestWatchOnceRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("runs workload clients")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	dir := t.TempDir()
	cfg := filepath.Join(dir, "w.yaml")
	os.WriteFile(cfg, []byte("jobs:\n  - name: dead\n    schedule: \"@every 1h\"\n    target:\n      address: \""+addr+
		"\"\n      trials: 2\n      duration: 100ms\n      warmup: 0s\n      server_cpu: none\n"), 0o644)
	db := filepath.Join(dir, "latlab.db")
	_, log, err := runWatch(t, db, "--config", cfg, "--once")
	if err != nil {
		t.Fatalf("--once: %v\n%s", err, log)
	}
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, _ := st.Runs(context.Background(), store.RunFilter{JobName: "dead"})
	if len(runs) != 1 || runs[0].Kind != "watch" || runs[0].Status != store.StatusComplete {
		t.Fatalf("runs: %+v\n%s", runs, log)
	}
	ts, _ := st.Trials(context.Background(), runs[0].ID)
	if len(ts) != 2 || ts[0].Error == "" || ts[0].Mode != "dead" {
		t.Errorf("trials: %+v", ts)
	}
	if !strings.Contains(log, "trial failed") {
		t.Errorf("log:\n%s", log)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// --journal-dir is offered, with journal.DefaultDir as its default.
func TestWatchHelpJournalDir(t *testing.T) {
	out, _, err := runWatch(t, filepath.Join(t.TempDir(), "db"), "--help")
	if err != nil || !strings.Contains(out, "--journal-dir string") || !strings.Contains(out, `(default "`+journal.DefaultDir+`")`) {
		t.Errorf("watch --help (%v):\n%s", err, out)
	}
}
