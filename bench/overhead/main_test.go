package main

import (
	"testing"
	"time"

	"github.com/latlab/latlab/internal/testutil"
)

// The harness keeps working: one short round each way, both measured.
// (The ratio is not judged here: speed is a benchmark, not a test.)
func TestHarnessOneRound(t *testing.T) {
	testutil.RequireRoot(t)
	res, err := measure(1, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.on) != 1 || len(res.off) != 1 || res.on[0] <= 0 || res.off[0] <= 0 || res.tier == "" {
		t.Errorf("%+v", res)
	}
}
