package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/server"
	"github.com/latlab/latlab/internal/sockio"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestMain lets a test re-run this binary as latlab itself (for signals and
// exit codes of a real process).
func TestMain(m *testing.M) {
	if os.Getenv("LATLAB_TEST_MAIN") == "1" {
		os.Exit(Run(os.Args[1:], os.Stdout, os.Stderr))
	}
	// Runs recorded by tests go to a throwaway database, never the
	// system's (subprocesses inherit it).
	dir, err := os.MkdirTemp("", "latlab-cli-test")
	if err != nil {
		panic(err)
	}
	os.Setenv("LATLAB_DB", filepath.Join(dir, "test.db"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func startServer(t *testing.T) string {
	t.Helper()
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv.Addr().String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != ExitOK || !strings.HasPrefix(out, "latlab ") || !strings.Contains(out, "protocol 1") {
		t.Errorf("version: code %d, %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"frobnicate"},
		{"bench"},
		{"bench", "--target", "127.0.0.1", "--workload", "tcp_xx"},
		{"bench", "--target", "127.0.0.1", "--cpu", "x"},
		{"bench", "--target", "127.0.0.1", "--server-cpu", "-3"},
		{"bench", "--target", "127.0.0.1", "--format", "xml"},
		{"bench", "--target", "127.0.0.1", "--no-such-flag"},
		{"bench", "--target", "127.0.0.1", "--flows", "0"},
		{"bench", "--target", "127.0.0.1", "--size", "2000000"},
		{"bench", "--target", "127.0.0.1", "--workload", "tcp_stream", "--rate", "100"},
		{"bench", "--target", "127.0.0.1", "--workload", "udp_rr", "--size", "4"},
		{"serve", "--listen", "nonsense"},
		{"serve", "extra-arg"},
		{"version", "extra-arg"},
		{"lab", "--family", "5"},
		{"lab", "--family", "6", "--topology", "my.yaml"},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != ExitUsage {
			t.Errorf("latlab %s: exit %d, want %d (stderr %q)", strings.Join(args, " "), code, ExitUsage, stderr)
		}
		if !strings.Contains(stderr, "latlab: ") {
			t.Errorf("latlab %s: no error message: %q", strings.Join(args, " "), stderr)
		}
	}
}

func TestRunFailedExitCode(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	code, _, stderr := runCLI(t, "bench", "--target", addr, "--duration", "100ms")
	if code != ExitFailed {
		t.Errorf("bench against nothing: exit %d, want %d (%s)", code, ExitFailed, stderr)
	}
	if !strings.Contains(stderr, "connect to latlab server") {
		t.Errorf("error does not say what failed: %q", stderr)
	}
}

// The JSON keys other tools script against (docs/bench-json.md).
func TestBenchJSONContract(t *testing.T) {
	addr := startServer(t)
	for _, w := range wire.Workloads {
		code, out, stderr := runCLI(t, "bench", "--target", addr, "--workload", string(w),
			"--duration", "300ms", "--warmup", "100ms", "--interval", "100ms", "--json")
		if code != ExitOK {
			t.Fatalf("%s: exit %d: %s", w, code, stderr)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", w, err, out)
		}
		keys := []string{"workload", "transactions", "duration_s", "rate_per_sec", "lost",
			"placement.client_cpu", "placement.server_cpu", "cpu_us_per_txn.client", "cpu_us_per_txn.server", "intervals"}
		if w == wire.TCPStream {
			keys = append(keys, "throughput_bps")
		} else {
			keys = append(keys, "latency_ns.mean", "latency_ns.p50", "latency_ns.p90", "latency_ns.p99", "latency_ns.p999", "latency_ns.max")
		}
		for _, k := range keys {
			var v any = m
			for _, part := range strings.Split(k, ".") {
				obj, ok := v.(map[string]any)
				if !ok {
					v = nil
					break
				}
				v = obj[part]
			}
			if v == nil {
				t.Errorf("%s: JSON lacks %s", w, k)
			}
		}
		if m["workload"] != string(w) {
			t.Errorf("workload %v, want %s", m["workload"], w)
		}
		if iv, _ := m["intervals"].([]any); len(iv) != 3 {
			t.Errorf("%s: %d intervals, want 3", w, len(iv))
		}
	}
}

func TestBenchCSVAndTable(t *testing.T) {
	addr := startServer(t)
	code, out, stderr := runCLI(t, "bench", "--target", addr, "--workload", "udp_rr", "--duration", "200ms", "--warmup", "0s", "--format", "csv")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 2 || len(rows[0]) != len(rows[1]) || rows[0][0] != "workload" || rows[1][0] != "udp_rr" {
		t.Fatalf("csv: %v %q", err, out)
	}
	code, out, stderr = runCLI(t, "bench", "--target", addr, "--duration", "200ms", "--warmup", "0s", "--rate", "1000")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"tcp_rr to 127.0.0.1:", "transactions", "p99.9", "open loop", "placement", "cpu per txn"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestHelpGolden(t *testing.T) {
	for _, cmd := range []string{"bench", "serve", "lab", "cleanup"} {
		code, out, _ := runCLI(t, cmd, "--help")
		if code != ExitOK {
			t.Fatalf("%s --help: exit %d", cmd, code)
		}
		golden := filepath.Join("testdata", cmd+"-help.golden")
		if *update {
			os.MkdirAll("testdata", 0o755)
			os.WriteFile(golden, []byte(out), 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if out != string(want) {
			t.Errorf("%s --help differs from %s (go test -update to accept):\n%s", cmd, golden, out)
		}
	}
}

// A real `latlab serve` process stops cleanly, exit 0, on SIGTERM and SIGINT.
func TestServeSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(os.Args[0], "serve", "--listen", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), "LATLAB_TEST_MAIN=1")
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || !strings.Contains(line, "serving on") {
			cmd.Process.Kill()
			t.Fatalf("no serving line: %q %v", line, err)
		}
		addr := strings.Fields(line[strings.Index(line, "serving on ")+len("serving on "):])[0]
		if code, _, stderr := runCLI(t, "bench", "--target", addr, "--duration", "200ms", "--warmup", "0s"); code != 0 {
			t.Fatalf("bench against the subprocess server: %s", stderr)
		}
		cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%v: serve exited with %v, want 0", sig, err)
			}
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Errorf("%v: serve did not stop within 5s", sig)
		}
	}
}

// Automatic placement stays inside an inherited affinity mask: a client
// started under `taskset -c N` pins only to N.
func TestBenchInheritedAffinity(t *testing.T) {
	taskset := testutil.RequireTool(t, "taskset")
	allowed, err := sockio.AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	only := allowed[len(allowed)-1]
	addr := startServer(t)
	cmd := exec.Command(taskset, "-c", strconv.Itoa(only), os.Args[0], "bench", "--target", addr,
		"--duration", "200ms", "--warmup", "0s", "--flows", "2", "--json")
	cmd.Env = append(os.Environ(), "LATLAB_TEST_MAIN=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench under taskset: %v", err)
	}
	var res workload.Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Placement.AllowedCPUs) != 1 || res.Placement.AllowedCPUs[0] != only {
		t.Errorf("allowed CPUs %v, want [%d]", res.Placement.AllowedCPUs, only)
	}
	for _, c := range res.Placement.ClientCPUs {
		if c != only {
			t.Errorf("flow pinned to CPU %d outside the inherited mask [%d]", c, only)
		}
	}
}

// bench --calibrate probes same core and cross core against the target,
// says what it chose and why, and runs pinned there; it refuses to be
// combined with explicit pins.
func TestBenchCalibrate(t *testing.T) {
	addr := startServer(t)
	code, out, stderr := runCLI(t, "bench", "--target", addr, "--calibrate", "--duration", "200ms", "--warmup", "0s", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "calibrated placement: tcp_rr: ") || !strings.Contains(stderr, "CV") {
		t.Errorf("stderr does not say what was calibrated: %q", stderr)
	}
	var r struct {
		Placement struct {
			ClientCPUs   []int `json:"client_cpus"`
			ServerCPU    int   `json:"server_cpu"`
			ClientPinned bool  `json:"client_pinned"`
		} `json:"placement"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || !r.Placement.ClientPinned || len(r.Placement.ClientCPUs) != 1 {
		t.Fatalf("placement %+v %v", r.Placement, err)
	}
	same := strings.Contains(stderr, ": same-core (") || strings.Contains(stderr, ": same-core ")
	if same != (r.Placement.ClientCPUs[0] == r.Placement.ServerCPU) {
		t.Errorf("said %q but ran client %v server %d", stderr, r.Placement.ClientCPUs, r.Placement.ServerCPU)
	}
	if code, _, _ := runCLI(t, "bench", "--target", addr, "--calibrate", "--cpu", "0"); code != ExitUsage {
		t.Errorf("--calibrate with --cpu: exit %d, want usage", code)
	}
}
