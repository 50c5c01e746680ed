package cli

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/testutil"
)

func TestHistoryEmptyDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	code, out, _ := runCLI(t, "runs", "--db", db)
	if code != ExitOK || !strings.Contains(out, "no runs yet") {
		t.Errorf("runs on an empty db: %d %q", code, out)
	}
	code, out, _ = runCLI(t, "runs", "--db", db, "--json")
	if code != ExitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("runs --json on an empty db: %d %q", code, out)
	}
	if code, _, stderr := runCLI(t, "show", "--db", db); code != ExitFailed || !strings.Contains(stderr, "no runs") {
		t.Errorf("show on an empty db: %d %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "compare", "x", "y", "--db", db); code != ExitUsage {
		t.Errorf("compare x y: exit %d, want usage", code)
	}
}

func TestRunSpecInvalidNamesFileAndLine(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(f, []byte("name: x\nworkloads:\n  - tcp_rr\n  - ping\n"), 0o644)
	code, _, stderr := runCLI(t, "run", f, "--db", filepath.Join(t.TempDir(), "h.db"))
	if code != ExitUsage || !strings.Contains(stderr, f+":4: workloads[1]") || !strings.Contains(stderr, "tcp_stream") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// Two recorded runs, then every history command on them, and the benchstat
// export through the real benchstat.
func TestHistoryCommandsEndToEnd(t *testing.T) {
	testutil.RequireRoot(t)
	db := filepath.Join(t.TempDir(), "h.db")
	spec := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(spec, []byte("name: small\nmodes: [macvlan]\nworkloads: [tcp_rr, tcp_stream]\ntrials: 3\nduration: 100ms\nwarmup: 0s\n"), 0o644)
	jd := t.TempDir()
	for i := 0; i < 2; i++ {
		if code, _, stderr := runCLI(t, "run", spec, "--db", db, "--journal-dir", jd, "-q"); code != ExitOK {
			t.Fatalf("run %d: %s", i, stderr)
		}
	}
	code, out, _ := runCLI(t, "runs", "--db", db, "--json")
	var runs []struct {
		ID       int64     `json:"id"`
		Started  time.Time `json:"started"`
		Status   string    `json:"status"`
		SpecName string    `json:"spec_name"`
		Trials   int       `json:"trials"`
	}
	if err := json.Unmarshal([]byte(out), &runs); code != ExitOK || err != nil {
		t.Fatalf("runs --json: %d %v %s", code, err, out)
	}
	if len(runs) != 2 || runs[0].ID <= runs[1].ID || runs[0].Status != "complete" || runs[0].SpecName != "small" ||
		runs[0].Trials != 12 || runs[0].Started.IsZero() {
		t.Fatalf("runs: %+v", runs)
	}
	newest, oldest := strconv.FormatInt(runs[0].ID, 10), strconv.FormatInt(runs[1].ID, 10)

	code, out, _ = runCLI(t, "show", "--db", db)
	if code != ExitOK || !strings.Contains(out, "run "+newest) || !strings.Contains(out, "macvlan") || !strings.Contains(out, "tcp_stream") {
		t.Errorf("show: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "compare", oldest, newest, "--db", db)
	if code != ExitOK || !strings.Contains(out, "mode=macvlan/workload=tcp_rr") || !strings.Contains(out, "run "+oldest) {
		t.Errorf("compare runs: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "compare", "latest", "mode=host", "mode=macvlan", "--db", db, "--json", "--metric", "p99")
	var cmp struct {
		Rows []struct {
			Name    string `json:"name"`
			Unit    string `json:"unit"`
			Verdict string `json:"verdict"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(out), &cmp); code != ExitOK || err != nil || len(cmp.Rows) != 1 ||
		cmp.Rows[0].Unit != "ns" || !strings.Contains(cmp.Rows[0].Name, "workload=tcp_rr") {
		t.Errorf("compare configs: %d %v\n%s", code, err, out)
	}
	code, out, _ = runCLI(t, "export", "--db", db, "--format", "csv")
	if code != ExitOK || strings.Count(out, "\n") != 13 || !strings.HasPrefix(out, "run,round,order,mode") {
		t.Errorf("export csv: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "export", "--db", db)
	if code != ExitOK || strings.Count(out, "BenchmarkLatlab/mode=") != 12 {
		t.Fatalf("export benchstat: %d\n%s", code, out)
	}
	// The real benchstat must accept it and pivot on the mode.
	f := filepath.Join(t.TempDir(), "lab.txt")
	os.WriteFile(f, []byte(out), 0o644)
	bs := filepath.Join(t.TempDir(), "benchstat")
	if b, err := exec.Command("go", "build", "-o", bs, "golang.org/x/perf/cmd/benchstat").CombinedOutput(); err != nil {
		t.Fatalf("build benchstat: %v\n%s", err, b)
	}
	b, err := exec.Command(bs, "-col", "/mode", f).CombinedOutput()
	if err != nil || !strings.Contains(string(b), "host") || !strings.Contains(string(b), "macvlan") || !strings.Contains(string(b), "txn/s") {
		t.Errorf("benchstat -col /mode: %v\n%s", err, b)
	}
}

// A run killed with SIGKILL keeps the trials that finished; the next
// command marks it incomplete.
func TestKilledRunKeepsFinishedTrials(t *testing.T) {
	testutil.RequireRoot(t)
	db := filepath.Join(t.TempDir(), "h.db")
	jd := t.TempDir()
	cmd, errs, _ := startLab(t, jd, "--db", db, "--modes", "host", "--workloads", "udp_rr", "-n", "100", "-d", "100ms", "--warmup", "0s")
	for {
		l, err := errs.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, "round 2 done") {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	go io.Copy(io.Discard, errs)
	runCLI(t, "cleanup", "--journal-dir", jd)
	code, out, _ := runCLI(t, "runs", "--db", db, "--json")
	var runs []struct {
		Status string `json:"status"`
		Trials int    `json:"trials"`
	}
	json.Unmarshal([]byte(out), &runs)
	if code != ExitOK || len(runs) != 1 || runs[0].Status != "incomplete" || runs[0].Trials < 2 {
		t.Fatalf("after kill -9: %d %s", code, out)
	}
	if code, out, _ := runCLI(t, "show", "--db", db); code != ExitOK || !strings.Contains(out, "INCOMPLETE") {
		t.Errorf("show of the killed run: %d\n%s", code, out)
	}
}
