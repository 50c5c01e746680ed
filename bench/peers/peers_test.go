package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/testutil"
)

// The comparison harness itself must keep working: one short round on
// loopback against the real sockperf and iperf3, every figure parsed.
// (The figures are not judged here: speed is a benchmark, not a test.)
func TestHarnessLoopback(t *testing.T) {
	for _, tool := range []string{"sockperf", "iperf3", "taskset"} {
		testutil.RequireTool(t, tool)
	}
	bin := filepath.Join(t.TempDir(), "latlab")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/latlab/latlab/cmd/latlab").CombinedOutput(); err != nil {
		t.Fatalf("build latlab: %v\n%s", err, out)
	}
	r := &runner{latlab: bin, dur: 1, size: 64, ccpu: 0, scpu: 0}
	m, err := r.path(path{name: "loopback", addr: "127.0.0.1"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range metricNames {
		mm := m[k]
		if mm == nil || len(mm.latlab) != 1 || len(mm.peer) != 1 || mm.latlab[0] <= 0 || mm.peer[0] <= 0 {
			t.Errorf("%s not measured on both sides: %+v", k, mm)
		}
	}
	var b strings.Builder
	printTable(&b, m)
	if !strings.Contains(b.String(), "tcp_rr rate/s") {
		t.Errorf("table:\n%s", b.String())
	}
}
