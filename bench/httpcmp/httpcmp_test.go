package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/testutil"
)

// The comparison harness must keep working: one short round against the
// real wrk and nginx, every figure parsed. (Speed is a benchmark, not a
// test: the figures are not judged here.)
func TestHarnessLoopback(t *testing.T) {
	for _, tool := range []string{"wrk", "nginx", "taskset"} {
		testutil.RequireTool(t, tool)
	}
	bin := filepath.Join(t.TempDir(), "latlab")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/latlab/latlab/cmd/latlab").CombinedOutput(); err != nil {
		t.Fatalf("build latlab: %v\n%s", err, out)
	}
	r := &runner{latlab: bin, dur: 1, conns: 2, thr: 1, rate: 500, ccpu: 0, scpu: 0, llPort: 27707, ngPrt: 28080}
	m, err := r.compare(1)
	if err != nil {
		t.Fatal(err)
	}
	names := r.metricNames()
	if len(names) != 6 {
		t.Fatalf("metrics %v", names)
	}
	for _, k := range names {
		mm := m[k]
		if mm == nil || len(mm.latlab) != 1 || len(mm.peer) != 1 || mm.latlab[0] <= 0 || mm.peer[0] <= 0 {
			t.Errorf("%s not measured on both sides: %+v", k, mm)
		}
	}
	var b strings.Builder
	printTable(&b, m, names)
	if !strings.Contains(b.String(), "nginx max req/s") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestParseWrk(t *testing.T) {
	out := `Running 1s test @ http://127.0.0.1:18080/
  1 threads and 2 connections
  Latency Distribution
     50%   42.00us
     75%   50.00us
     90%   60.00us
     99%    1.20ms
  40000 requests in 1.00s, 5.00MB read
Requests/sec:  39990.12
Transfer/sec:      5.00MB
`
	r, err := parseWrk([]byte(out))
	if err != nil || r.rate != 39990.12 || r.p50 != 42 || r.p99 != 1200 {
		t.Errorf("%+v %v", r, err)
	}
}
