package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// bench -w http against latlab serve: the JSON carries errors and status
// codes next to the usual keys, and the table says what closed loop omits.
func TestBenchHTTP(t *testing.T) {
	addr := startServer(t)
	code, out, stderr := runCLI(t, "bench", "-w", "http", "--target", "http://"+addr+"/?size=200",
		"--connections", "2", "--threads", "1", "--duration", "200ms", "--warmup", "50ms", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var m struct {
		Workload     string           `json:"workload"`
		Transactions int64            `json:"transactions"`
		Errors       map[string]int64 `json:"errors"`
		StatusCodes  map[string]int64 `json:"status_codes"`
		Latency      map[string]any   `json:"latency_ns"`
		Flows        int              `json:"flows"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if m.Workload != "http" || m.Transactions == 0 || m.StatusCodes["200"] != m.Transactions || m.Flows != 2 || m.Latency["p99"] == nil {
		t.Errorf("unexpected result: %+v", m)
	}
	for _, k := range []string{"connect", "read", "write", "timeout", "parse", "status"} {
		if v, ok := m.Errors[k]; !ok || v != 0 {
			t.Errorf("errors.%s = %v, %v", k, v, ok)
		}
	}
	code, out, stderr = runCLI(t, "bench", "-w", "http", "--target", addr, "--duration", "100ms", "--warmup", "0s")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"status codes", "200:", "latencies omit time a request would have queued"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "bench", "-w", "http", "--target", addr, "--duration", "100ms", "--warmup", "0s", "--rate", "1000")
	if code != ExitOK || !strings.Contains(out, "latency measured from intended send times") {
		t.Errorf("open loop table:\n%s", out)
	}
	if code, _, _ := runCLI(t, "bench", "-w", "tcp_rr", "--target", addr, "--threads", "2"); code != ExitUsage {
		t.Errorf("--threads with tcp_rr: exit %d, want usage error", code)
	}
	if code, _, _ := runCLI(t, "bench", "-w", "http", "--target", addr, "--connections", "1", "--threads", "2"); code != ExitUsage {
		t.Errorf("more threads than connections: exit %d, want usage error", code)
	}
}
