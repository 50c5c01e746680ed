package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/web/webtest"
	"github.com/latlab/latlab/internal/wire"
)

// labJSON is the part of `latlab lab --json` that other tools rely on.
type labJSON struct {
	Incomplete bool `json:"incomplete"`
	Placement  struct {
		ClientCPU *int `json:"client_cpu"`
		ServerCPU *int `json:"server_cpu"`
	} `json:"placement"`
	Results []struct {
		Mode       string `json:"mode"`
		Workload   string `json:"workload"`
		Status     string `json:"status"`
		Reason     string `json:"reason"`
		RatePerSec *struct {
			Median *float64 `json:"median"`
			CILow  *float64 `json:"ci_low"`
			CIHigh *float64 `json:"ci_high"`
		} `json:"rate_per_sec"`
		P50Ns       int64 `json:"p50_ns"`
		P99Ns       int64 `json:"p99_ns"`
		RatioVsHost *struct {
			Median *float64 `json:"median"`
			CILow  *float64 `json:"ci_low"`
			CIHigh *float64 `json:"ci_high"`
		} `json:"ratio_vs_host"`
		Significant bool                       `json:"significant"`
		Verdict     string                     `json:"verdict"`
		Attribution map[string]json.RawMessage `json:"attribution"`
	} `json:"results"`
}

// journalFiles returns the journal files in dir.
func journalFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.journal"))
	return m
}

func TestLabJSONContract(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	code, out, stderr := runCLI(t, "lab", "--modes", "host,macvlan,ipvlan-l2", "--workloads", "tcp_rr,udp_rr",
		"-n", "2", "-d", "100ms", "--warmup", "0s", "--json", "--journal-dir", dir, "--attribute")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r labJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Placement.ClientCPU == nil || r.Placement.ServerCPU == nil {
		t.Errorf("placement missing: %s", out)
	}
	if len(r.Results) != 6 {
		t.Fatalf("%d results, want 3 modes × 2 workloads", len(r.Results))
	}
	ipvlanOK := topo.KernelConfig("CONFIG_IPVLAN") != "# CONFIG_IPVLAN is not set"
	for _, res := range r.Results {
		switch {
		case res.Mode == "ipvlan-l2" && !ipvlanOK:
			if res.Status != "skipped" || !strings.Contains(res.Reason, "ipvlan") {
				t.Errorf("ipvlan on a kernel without it: %+v", res)
			}
		case res.Status != "ok":
			t.Errorf("%s %s: %s %s", res.Mode, res.Workload, res.Status, res.Reason)
		default:
			if res.RatePerSec == nil || res.RatePerSec.Median == nil || *res.RatePerSec.Median <= 0 ||
				*res.RatePerSec.CILow > *res.RatePerSec.Median || *res.RatePerSec.CIHigh < *res.RatePerSec.Median {
				t.Errorf("%s %s: bad rate_per_sec %+v", res.Mode, res.Workload, res.RatePerSec)
			}
			if res.P50Ns <= 0 || res.P99Ns < res.P50Ns {
				t.Errorf("%s %s: p50 %d p99 %d", res.Mode, res.Workload, res.P50Ns, res.P99Ns)
			}
			if res.RatioVsHost == nil || res.RatioVsHost.Median == nil {
				t.Errorf("%s %s: no ratio_vs_host", res.Mode, res.Workload)
			} else if res.Mode == "host" && *res.RatioVsHost.Median != 1 {
				t.Errorf("host's ratio to itself is %v", *res.RatioVsHost.Median)
			}
			for _, k := range []string{"net_rx_softirqs_per_txn", "softirq_us_per_txn", "drops", "retransmits", "ebpf_tier"} {
				if _, ok := res.Attribution[k]; !ok {
					t.Errorf("%s %s: attribution lacks %s: %v", res.Mode, res.Workload, k, res.Attribution)
				}
			}
			if res.Mode != "host" && res.Verdict != "too few trials" {
				t.Errorf("2 trials cannot reach significance, verdict %q", res.Verdict)
			}
		}
	}
	if j := journalFiles(t, dir); len(j) != 0 {
		t.Errorf("journal left after a clean run: %v", j)
	}
}

func TestLabUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"lab", "--modes", "host,nosuchmode"},
		{"lab", "--workloads", "tcp_rr,ping"},
		{"lab", "--trials", "0"},
		{"lab", "--baseline", "nope"},
		{"lab", "--format", "xml"},
		{"lab", "--topology", "/nonexistent.yaml"},
	} {
		if code, _, stderr := runCLI(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, stderr)
		}
	}
}

func TestLabPrintTopologyLoadsBack(t *testing.T) {
	code, out, _ := runCLI(t, "lab", "--print-topology")
	if code != ExitOK || !strings.Contains(out, "veth-routed") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if _, err := topo.ParseTopology([]byte(out), "printed"); err != nil {
		t.Fatal(err)
	}
}

func TestCleanupNothingToDo(t *testing.T) {
	testutil.RequireRoot(t)
	code, out, stderr := runCLI(t, "cleanup", "--journal-dir", t.TempDir())
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "nothing to clean") && !strings.Contains(out, "orphan") {
		t.Errorf("output: %q", out)
	}
}

// startLab runs `latlab lab` as a real process and returns it with a
// reader of its stderr.
func startLab(t *testing.T, dir string, args ...string) (*exec.Cmd, *bufio.Reader, func() string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"lab", "--journal-dir", dir}, args...)...)
	cmd.Env = append(os.Environ(), "LATLAB_TEST_MAIN=1")
	var stdout strings.Builder
	cmd.Stdout = &stdout
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewReader(pipe), stdout.String
}

// A lab killed with SIGKILL at any moment leaves only what `latlab
// cleanup` removes completely: no namespace, no journal.
func TestLabKill9ThenCleanup(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	for i, when := range []string{"early", "after-build", "mid-run"} {
		cmd, errs, _ := startLab(t, dir, "--modes", "host,bridge-nat,bridge-nat-dnat,vxlan", "--workloads", "tcp_rr",
			"-n", "100", "-d", "200ms", "--warmup", "0s")
		var prefix string
		switch when {
		case "early":
			// Somewhere inside start-up or the build.
			time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		default:
			line, err := errs.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "lab latlab-") {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no build line: %q %v", line, err)
			}
			prefix = strings.TrimSuffix(strings.Fields(line)[1], ":")
			if when == "mid-run" {
				time.Sleep(time.Duration(300+rand.IntN(400)) * time.Millisecond)
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		go io.Copy(io.Discard, errs)
		if prefix != "" && len(topo.NetNSNames(prefix)) == 0 {
			t.Errorf("%s: the killed lab had no namespaces up; the test proves nothing", when)
		}
		code, out, stderr := runCLI(t, "cleanup", "--journal-dir", dir)
		if code != ExitOK {
			t.Fatalf("%s: cleanup exit %d: %s %s", when, code, out, stderr)
		}
		if prefix != "" {
			if left := topo.NetNSNames(prefix); len(left) > 0 {
				t.Errorf("%s: namespaces left after cleanup: %v", when, left)
			}
		}
		if j := journalFiles(t, dir); len(j) != 0 {
			t.Errorf("%s (%d): journals left after cleanup: %v", when, i, j)
		}
		// A second cleanup has nothing left to do.
		if code, out, _ := runCLI(t, "cleanup", "--journal-dir", dir); code != ExitOK || strings.Contains(out, "removed") {
			t.Errorf("%s: second cleanup: exit %d %q", when, code, out)
		}
	}
}

// SIGINT stops a lab after the current trial: it prints what finished,
// marks it incomplete, exits 1 and tears everything down.
func TestLabSIGINTKeepsFinishedTrials(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	cmd, errs, stdout := startLab(t, dir, "--modes", "host,bridge-nat", "--workloads", "tcp_rr",
		"-n", "100", "-d", "150ms", "--warmup", "0s", "--json")
	line, err := errs.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "lab latlab-") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no build line: %q %v", line, err)
	}
	prefix := strings.TrimSuffix(strings.Fields(line)[1], ":")
	// Wait for at least one finished round (calibration lines come first).
	for {
		l, err := errs.ReadString('\n')
		if err != nil {
			t.Fatalf("progress line: %q %v", l, err)
		}
		if strings.HasPrefix(l, "round 1 done") {
			break
		}
		if !strings.HasPrefix(l, "calibrating") && !strings.HasPrefix(l, "  tcp_rr: ") {
			t.Fatalf("progress line: %q", l)
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	go io.Copy(io.Discard, errs)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != ExitInterrupted {
		t.Errorf("exit: %v, want %d", err, ExitInterrupted)
	}
	var r labJSON
	if err := json.Unmarshal([]byte(stdout()), &r); err != nil {
		t.Fatalf("%v: %q", err, stdout())
	}
	if !r.Incomplete {
		t.Errorf("not marked incomplete")
	}
	for _, res := range r.Results {
		if res.Status != "ok" || res.RatePerSec == nil {
			t.Errorf("finished trials lost: %+v", res)
		}
	}
	if left := topo.NetNSNames(prefix); len(left) > 0 {
		t.Errorf("namespaces left after SIGINT: %v", left)
	}
	if j := journalFiles(t, dir); len(j) != 0 {
		t.Errorf("journal left after SIGINT: %v", j)
	}
}

// --keep leaves the lab up, says how to enter it, and survives the stale
// sweep of the next lab; `latlab cleanup` removes it.
func TestLabKeepThenCleanup(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	code, out, stderr := runCLI(t, "lab", "--keep", "--modes", "host,bridge-nat", "--workloads", "udp_rr",
		"-n", "1", "-d", "100ms", "--warmup", "0s", "--journal-dir", dir, "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r struct {
		Prefix string `json:"prefix"`
		Kept   bool   `json:"kept"`
	}
	json.Unmarshal([]byte(out), &r)
	if !r.Kept || r.Prefix == "" {
		t.Fatalf("not marked kept: %s", out)
	}
	t.Cleanup(func() { runCLI(t, "cleanup", "--journal-dir", dir) })
	if !strings.Contains(stderr, "nsenter --net=/var/run/netns/"+r.Prefix+"-c-bridge") || !strings.Contains(stderr, "latlab cleanup") {
		t.Errorf("no instructions to enter the namespaces:\n%s", stderr)
	}
	if left := topo.NetNSNames(r.Prefix); len(left) < 3 {
		t.Fatalf("kept lab has namespaces %v", left)
	}
	// Another lab's start-up sweep must leave the kept lab alone.
	if code, _, stderr := runCLI(t, "lab", "--modes", "host", "--workloads", "udp_rr", "-n", "1", "-d", "50ms",
		"--warmup", "0s", "--journal-dir", dir, "-q"); code != ExitOK {
		t.Fatalf("second lab: %s", stderr)
	}
	if left := topo.NetNSNames(r.Prefix); len(left) < 3 {
		t.Fatalf("the next lab swept a kept lab: %v", left)
	}
	code, out, _ = runCLI(t, "cleanup", "--journal-dir", dir)
	if code != ExitOK || !strings.Contains(out, "removed netns "+r.Prefix+"-a") {
		t.Errorf("cleanup: exit %d\n%s", code, out)
	}
	if left := topo.NetNSNames(r.Prefix); len(left) != 0 {
		t.Errorf("left after cleanup: %v", left)
	}
}

// An offload matrix on a pre-existing interface, killed with SIGKILL while
// a preset is applied: `latlab cleanup` restores the interface from the
// journalled snapshot.
func TestOffloadRunKill9ThenCleanupRestores(t *testing.T) {
	testutil.RequireRoot(t)
	_, ns := testutil.NewNetNS(t)
	testutil.NewVeth(t, ns, "mine0", "mine1")
	tsoOn := func() bool {
		info, err := offload.Show(ns, "mine0")
		if err != nil {
			t.Fatal(err)
		}
		f, _ := info.Features.Get("tx-tcp-segmentation")
		return f.Active
	}
	if !tsoOn() {
		t.Fatal("a new veth starts with TSO on")
	}
	spec := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(spec, []byte("name: k\nmodes: [host]\nworkloads: [udp_rr]\noffloads: [seg-off]\ninterfaces: [{netns: "+ns+", dev: mine0}]\ntrials: 100\nduration: 100ms\nwarmup: 0s\n"), 0o644)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "run", spec, "--journal-dir", dir, "--no-store")
	cmd.Env = append(os.Environ(), "LATLAB_TEST_MAIN=1")
	pipe, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	errs := bufio.NewReader(pipe)
	for {
		l, err := errs.ReadString('\n')
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no progress: %v", err)
		}
		if strings.HasPrefix(l, "round 1 done") {
			break
		}
	}
	if tsoOn() {
		t.Error("seg-off is not applied during the run; the test proves nothing")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	go io.Copy(io.Discard, errs)
	code, out, stderr := runCLI(t, "cleanup", "--journal-dir", dir)
	if code != ExitOK || !strings.Contains(out, "restored offloads of mine0") {
		t.Fatalf("cleanup: %d\n%s%s", code, out, stderr)
	}
	if !tsoOn() {
		t.Errorf("cleanup did not restore TSO on mine0")
	}
}

// lab --against RUN --fail-on gates a pipeline on a stored run: a run
// far faster than this machine can be makes this one "worse" (exit 3,
// after the table and the comparison), a far slower one does not; the
// stored run is checked before anything is built.
func TestLabFailOnAgainst(t *testing.T) {
	testutil.RequireRoot(t)
	db := filepath.Join(t.TempDir(), "d.db")
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	fast := webtest.Record(t, st, webtest.Run{Seed: 1, Workloads: []wire.Workload{wire.TCPRR}, Modes: []string{"host", "macvlan"}, LatUs: []float64{0.2, 0.2}})
	slow := webtest.Record(t, st, webtest.Run{Seed: 2, Workloads: []wire.Workload{wire.TCPRR}, Modes: []string{"host", "macvlan"}, LatUs: []float64{1e5, 1e5}})
	st.Close()
	args := []string{"lab", "--db", db, "--no-store", "--journal-dir", t.TempDir(), "-q", "--modes", "macvlan", "--workloads", "tcp_rr",
		"--trials", "6", "-d", "100ms", "--warmup", "0s", "--cpu", "0", "--server-cpu", "0"}
	code, out, stderr := runCLI(t, append(args, "--against", strconv.FormatInt(fast, 10), "--fail-on", "worse")...)
	if code != ExitRegressed || !strings.Contains(out, fmt.Sprintf("against run %d", fast)) || !strings.Contains(stderr, "--fail-on worse: 2 configuration(s) regressed") {
		t.Errorf("against a faster run: exit %d, want %d\n%s\n%s", code, ExitRegressed, out, stderr)
	}
	code, out, stderr = runCLI(t, append(args, "--against", strconv.FormatInt(slow, 10), "--fail-on", "worse")...)
	if code != ExitOK || !strings.Contains(out, "better") {
		t.Errorf("against a slower run: exit %d, want 0\n%s\n%s", code, out, stderr)
	}
	if code, _, stderr := runCLI(t, append(args, "--against", "999")...); code == ExitOK || !strings.Contains(stderr, "--against 999: run 999 is not in") {
		t.Errorf("against a missing run: exit %d %s", code, stderr)
	}
	if code, _, _ := runCLI(t, append(args, "--fail-on", "worse")...); code != ExitUsage {
		t.Errorf("--fail-on without --against: exit %d, want %d", code, ExitUsage)
	}
}

// lab --json-stream writes the run as JSON lines as it goes: start first,
// a line per trial while it runs, the summary last; -o beside it is a
// usage error.
func TestLabJSONStream(t *testing.T) {
	testutil.RequireRoot(t)
	args := []string{"lab", "--no-store", "--journal-dir", t.TempDir(), "-q", "--modes", "macvlan", "--workloads", "udp_rr",
		"--trials", "3", "-d", "100ms", "--warmup", "0s", "--json-stream"}
	code, out, stderr := runCLI(t, args...)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var events []string
	trials := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct {
			Event string `json:"event"`
			Trial *struct {
				Result *struct {
					Transactions int64 `json:"transactions"`
				} `json:"result"`
			} `json:"trial"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("not a JSON line: %v\n%s", err, l)
		}
		events = append(events, ev.Event)
		if ev.Event == "trial" {
			if ev.Trial == nil || ev.Trial.Result == nil || ev.Trial.Result.Transactions == 0 {
				t.Errorf("trial line without transactions: %s", l)
			}
			trials++
		}
	}
	if len(events) < 3 || events[0] != "start" || events[1] != "built" || events[len(events)-1] != "summary" || trials != 6 {
		t.Errorf("events %v (%d trials), want start, built, ..., 6 trials, ..., summary", events, trials)
	}
	if code, _, _ := runCLI(t, append(args, "-o", "json")...); code != ExitUsage {
		t.Errorf("--json-stream -o json: exit %d, want %d", code, ExitUsage)
	}
}
