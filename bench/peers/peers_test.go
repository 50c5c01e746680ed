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
	all := placements(1, 0)
	r := &runner{latlab: bin, dur: 1, size: 64}
	for _, n := range placementOrder {
		r.placements = append(r.placements, all[n])
	}
	m, err := r.path(path{name: "loopback", addr: "127.0.0.1"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, pl := range r.placements {
		for _, k := range metricNames {
			mm := m[pl.name+" "+k]
			if k == "tcp_stream Gbit/s" && !pl.stream {
				if mm != nil {
					t.Errorf("%s: tcp_stream ran on one core", pl.name)
				}
				continue
			}
			// Server CPU is counted in 10ms ticks: a 1s run of a fast
			// server may show none.
			server := strings.Contains(k, "server CPU")
			if mm == nil || len(mm.latlab) != 1 || len(mm.peer) != 1 || (!server && (mm.latlab[0] <= 0 || mm.peer[0] <= 0)) {
				t.Errorf("%s %s not measured on both sides: %+v", pl.name, k, mm)
			}
		}
		var b strings.Builder
		printTable(&b, m, pl.name+" ")
		if !strings.Contains(b.String(), "tcp_rr client CPU µs/txn") {
			t.Errorf("table:\n%s", b.String())
		}
	}
}
